"""CUDA backend: `CudaArray`, a strided view of device memory, and the functions of `cpu.__all__`
over it with NumPy's semantics, each computed on the device by a CUDA kernel of `kernelgrad._cuda`
(a GPU) or `kernelgrad._cuda_emu` (the same kernels on the CPU emulator).

A CudaArray is (storage, element offset, shape, element strides, NumPy dtype), like a NumPy array
without the data: views (slices, transposes, broadcasts, reshapes that need no copy) share the
storage; everything else launches a kernel. The only host<->device copies are `from_numpy`,
`to_numpy` and the few scalars an operation must read to know its result's shape (the count of a
boolean mask, an index error); nothing computes on the host.

Pointers: a kernel gets `a._ptr` (an int), which does not keep `a` alive. Every array whose pointer
is passed must be bound to a name until the call returns: `_m.k(ascontiguous(x)._ptr)` would give
the copy back to the allocator's cache before the kernel reads it.
"""
import builtins
import math

import numpy as np

from .. import cuda as _cuda_api
from .cpu import __all__ as _CPU_ALL

_m = _cuda_api._module_or_raise()

__all__ = list(_CPU_ALL) + ["is_contiguous", "CudaArray"]

_CODES = {np.dtype(np.bool_): 0, np.dtype(np.int64): 1, np.dtype(np.float16): 2, np.dtype(np.float32): 3,
          np.dtype(np.float64): 4}
_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_BOOL, _INT64, _F64 = np.dtype(np.bool_), np.dtype(np.int64), np.dtype(np.float64)


def _dtype(d):
    """A supported NumPy dtype from anything np.dtype accepts (other widths map to int64/float64)."""
    d = np.dtype(d)
    if d in _CODES:
        return d
    if d.kind in "iu":
        return _INT64
    if d.kind == "f":
        return _F64
    raise TypeError(f"dtype {d} is not supported on CUDA")


def _contiguous_strides(shape):
    strides, step = [], 1
    for s in reversed(shape):
        strides.append(step)
        step *= max(s, 1)
    return tuple(reversed(strides))


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class CudaArray:
    """A strided view of CUDA device memory (the CUDA backend's array type; see the module doc)."""

    __slots__ = ("_storage", "_offset", "shape", "_strides", "dtype", "__weakref__")

    # NumPy must not turn a CudaArray into an object array or silently copy it to the host
    __array_ufunc__ = None

    def __init__(self, storage, offset, shape, strides, dtype):
        self._storage = storage
        self._offset = offset
        self.shape = tuple(shape)
        self._strides = tuple(strides)
        self.dtype = dtype

    # --- NumPy-like attributes
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return _numel(self.shape)

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def strides(self):
        """Strides in bytes, as NumPy reports them."""
        return tuple(s * self.dtype.itemsize for s in self._strides)

    @property
    def T(self):
        return transpose(self)

    @property
    def _ptr(self):
        return self._storage.ptr + self._offset * self.dtype.itemsize if self._storage is not None else 0

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self):
        return f"CudaArray(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, *args, **kwargs):
        raise TypeError("a CUDA array cannot be converted to a NumPy array implicitly; copy it with to_numpy()")

    # --- methods NumPy code calls on arrays
    def reshape(self, *shape):
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def astype(self, dtype, copy=True):
        return astype(self, dtype) if not copy else _convert(self, _dtype(dtype))

    def copy(self):
        return copy(self)

    def transpose(self, *axes):
        return transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    def sum(self, axis=None, keepdims=False, dtype=None):
        return sum(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def __getitem__(self, index):
        return getitem(self, index)

    def __setitem__(self, index, value):
        setitem(self, index, value)

    # --- operators
    def __add__(self, o): return add(self, o)
    def __radd__(self, o): return add(o, self)
    def __sub__(self, o): return subtract(self, o)
    def __rsub__(self, o): return subtract(o, self)
    def __mul__(self, o): return multiply(self, o)
    def __rmul__(self, o): return multiply(o, self)
    def __truediv__(self, o): return divide(self, o)
    def __rtruediv__(self, o): return divide(o, self)
    def __floordiv__(self, o): return floor_divide(self, o)
    def __rfloordiv__(self, o): return floor_divide(o, self)
    def __mod__(self, o): return remainder(self, o)
    def __rmod__(self, o): return remainder(o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __neg__(self): return negative(self)
    def __abs__(self): return abs(self)
    def __invert__(self): return logical_not(self)
    def __and__(self, o): return logical_and(self, o)
    def __or__(self, o): return logical_or(self, o)
    def __eq__(self, o): return equal(self, o) if _is_operand(o) else NotImplemented
    def __ne__(self, o): return not_equal(self, o) if _is_operand(o) else NotImplemented
    def __lt__(self, o): return less(self, o)
    def __le__(self, o): return less_equal(self, o)
    def __gt__(self, o): return greater(self, o)
    def __ge__(self, o): return greater_equal(self, o)

    def __iadd__(self, o): return add(self, o, out=self)
    def __isub__(self, o): return subtract(self, o, out=self)
    def __imul__(self, o): return multiply(self, o, out=self)
    def __itruediv__(self, o): return divide(self, o, out=self)

    __hash__ = None


def _is_operand(x):
    return isinstance(x, (CudaArray, bool, int, float, np.generic))


def _new(shape, dtype):
    shape = tuple(int(s) for s in shape)
    for s in shape:
        if s < 0:
            raise ValueError(f"negative dimensions are not allowed: {shape}")
    n = _numel(shape) * dtype.itemsize
    return CudaArray(_m.Storage(n) if n else None, 0, shape, _contiguous_strides(shape), dtype)


def is_contiguous(a):
    if a.size == 0:  # as NumPy: an empty array is contiguous whatever its strides
        return True
    expected = 1
    for s, st in zip(reversed(a.shape), reversed(a._strides)):
        if s != 1 and st != expected:
            return False
        expected *= s
    return True


# --- conversion between host and device
def from_numpy(arr):
    arr = np.asarray(arr)
    dt = _dtype(arr.dtype)
    arr = np.asarray(arr, dtype=dt, order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
    out = _new(arr.shape, dt)
    _m.copy_from_host(out._ptr, arr)
    return out


def to_numpy(a):
    a = ascontiguous(a)
    out = np.empty(a.shape, dtype=a.dtype)
    _m.copy_to_host(out, a._ptr)
    return out


def _scalar(value, dtype):
    """A 0-d device array holding value (written by the fill kernel: no host copy)."""
    out = _new((), dtype)
    _fill(out, value)
    return out


def _fill(a, value):
    if a.dtype == _INT64:
        ival = int(value)
        if not -2**63 <= ival < 2**63:
            raise OverflowError(f"value {value} does not fit in int64")
        _m.fill(_CODES[a.dtype], a._ptr, list(a._strides), list(a.shape), float(ival), ival)
    else:
        _m.fill(_CODES[a.dtype], a._ptr, list(a._strides), list(a.shape), float(value), 0)


def _operand(x, dtype=None):
    """x as a CudaArray (scalars become 0-d device arrays of `dtype`, or of their own type)."""
    if isinstance(x, CudaArray):
        return x if dtype is None or x.dtype == dtype else _convert(x, dtype)
    if isinstance(x, np.ndarray) and x.ndim > 0:
        raise TypeError("cannot mix a NumPy array with CUDA arrays; move it to the device first")
    if dtype is None:
        dtype = _dtype(np.result_type(x))
    return _scalar(np.asarray(x).item() if isinstance(x, np.ndarray) else x, dtype)


def asarray(x, dtype=None):
    if isinstance(x, CudaArray):
        return x if dtype is None else astype(x, dtype)
    if isinstance(x, (bool, int, float, np.generic)) and not isinstance(x, complex):
        return _scalar(x, _dtype(dtype if dtype is not None else np.result_type(x)))
    return from_numpy(np.asarray(x, dtype=dtype))


# --- creation
def empty(shape, dtype=np.float64):
    return _new(_shape_tuple(shape), _dtype(dtype))


def zeros(shape, dtype=np.float64):
    out = empty(shape, dtype)
    _fill(out, 0)
    return out


def full(shape, value, dtype=None):
    out = empty(shape, dtype if dtype is not None else np.result_type(value))
    _fill(out, value)
    return out


def _shape_tuple(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def arange(start, stop, step, dtype):
    """NumPy's arange(start, stop, step) computed in float64 (int64 for an integer dtype), as dtype."""
    dtype = _dtype(dtype)
    n = builtins.max(0, math.ceil((stop - start) / step))
    if dtype.kind in "iub":
        out = _new((n,), _INT64)
        _m.arange(1, out._ptr, n, 0.0, 0.0, int(start), int(step))
        return astype(out, dtype)
    out = _new((n,), _F64)
    _m.arange(4, out._ptr, n, float(start), float(step), 0, 0)
    return astype(out, dtype)


def linspace(start, stop, num, dtype):
    """NumPy's linspace: start + i * (stop - start) / (num - 1) in float64, the last value exactly stop."""
    out = _new((num,), _F64)
    step = (stop - start) / (num - 1) if num > 1 else 0.0
    _m.arange(4, out._ptr, num, float(start), float(step), 0, 0)
    if num > 1:
        _fill(out[num - 1:], stop)
    return astype(out, dtype)


def eye(n, m=None, dtype=np.float64):
    m = n if m is None else m
    out = zeros((n, m), dtype)
    k = builtins.min(n, m)
    if k:
        _fill(CudaArray(out._storage, 0, (k,), (m + 1,), out.dtype), 1)
    return out


# --- conversions and copies
def _copy_into(dst, src):
    """dst[...] = src (broadcast to dst's shape, converted to dst's dtype)."""
    src = broadcast_to(src, dst.shape)
    _m.copy(_CODES[dst.dtype], dst._ptr, list(dst._strides), _CODES[src.dtype], src._ptr, list(src._strides),
            list(dst.shape))


def _convert(a, dtype):
    out = _new(a.shape, dtype)
    _copy_into(out, a)
    return out


def astype(a, dtype):
    dtype = _dtype(dtype)
    return a if a.dtype == dtype else _convert(a, dtype)


def copy(a):
    return _convert(a, a.dtype)


def ascontiguous(a):
    return a if is_contiguous(a) else copy(a)


def may_share_memory(a, b):
    return isinstance(a, CudaArray) and isinstance(b, CudaArray) and a._storage is not None and \
        a._storage is b._storage


# --- shape (views where possible)
def _broadcast_shapes(*shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError("operands could not be broadcast together with shapes " +
                         " ".join(str(s) for s in shapes)) from None


def broadcast_to(a, shape):
    shape = tuple(shape)
    if a.shape == shape:
        return a
    if len(shape) < a.ndim:
        raise ValueError(f"cannot broadcast shape {a.shape} to {shape}")
    lead = len(shape) - a.ndim
    strides = [0] * lead
    for s, n, st in zip(shape[lead:], a.shape, a._strides):
        if n == s:
            strides.append(st)
        elif n == 1:
            strides.append(0)
        else:
            raise ValueError(f"cannot broadcast shape {a.shape} to {shape}")
    return CudaArray(a._storage, a._offset, shape, strides, a.dtype)


def transpose(a, axes=None):
    axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(int(x) % builtins.max(a.ndim, 1) for x in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"axes {axes} don't match array of {a.ndim} dims")
    return CudaArray(a._storage, a._offset, [a.shape[i] for i in axes], [a._strides[i] for i in axes], a.dtype)


def _infer_shape(shape, n):
    shape = list(_shape_tuple(shape))
    if shape.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in shape:
        rest = _numel([s for s in shape if s != -1])
        if rest == 0 or n % rest:
            raise ValueError(f"cannot reshape array of size {n} into shape {tuple(shape)}")
        shape[shape.index(-1)] = n // rest
    if _numel(shape) != n:
        raise ValueError(f"cannot reshape array of size {n} into shape {tuple(shape)}")
    return tuple(shape)


def _view_strides(a, shape):
    """Strides that view a (as is) with `shape`, or None when the reshape needs a copy."""
    old = [(s, st) for s, st in zip(a.shape, a._strides) if s != 1]
    strides = [0] * len(shape)
    i = len(shape) - 1
    j = len(old) - 1
    while i >= 0:
        if shape[i] == 1:
            strides[i] = 0
            i -= 1
            continue
        if j < 0:
            return None
        # take old dims (from the back) until their product covers a run of new dims
        size_old, st_old = old[j]
        chunk_new, first_new = shape[i], i
        while chunk_new < size_old and first_new > 0:
            first_new -= 1
            chunk_new *= shape[first_new]
        chunk_old, first_old = size_old, j
        while chunk_old < chunk_new and first_old > 0:
            if old[first_old - 1][1] != old[first_old][1] * old[first_old][0]:
                return None
            first_old -= 1
            chunk_old *= old[first_old][0]
        if chunk_old != chunk_new:
            return None
        step = old[j][1]
        for k in range(i, first_new - 1, -1):
            strides[k] = step
            step *= shape[k]
        i, j = first_new - 1, first_old - 1
    return strides


def reshape(a, shape):
    shape = _infer_shape(shape, a.size)
    if shape == a.shape:
        return a
    if a.size == 0:
        return CudaArray(a._storage, a._offset, shape, _contiguous_strides(shape), a.dtype)
    strides = _view_strides(a, shape)
    if strides is None:
        a = copy(a)
        strides = _contiguous_strides(shape)
    return CudaArray(a._storage, a._offset, shape, strides, a.dtype)


def concatenate(arrays, axis=0):
    arrays = [_operand(x) for x in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    nd = arrays[0].ndim
    axis = int(axis) % builtins.max(nd, 1)
    dtype = np.result_type(*[x.dtype for x in arrays])
    shape = list(arrays[0].shape)
    shape[axis] = builtins.sum(x.shape[axis] for x in arrays)
    out = _new(shape, _dtype(dtype))
    at = 0
    for x in arrays:
        index = [slice(None)] * nd
        index[axis] = slice(at, at + x.shape[axis])
        _copy_into(getitem(out, tuple(index)), x)
        at += x.shape[axis]
    return out


def _tri(a, k, lower):
    rows, cols = a.shape[-2], a.shape[-1]
    r = reshape(arange(0, rows, 1, _INT64), (rows, 1))
    c = reshape(arange(0, cols, 1, _INT64), (1, cols))
    keep = less_equal(subtract(c, r), k) if lower else greater_equal(subtract(c, r), k)
    return where(keep, a, _scalar(0, a.dtype))


def tril(a, k=0):
    return _tri(a, k, True)


def triu(a, k=0):
    return _tri(a, k, False)


# --- elementwise
def _result_type(*xs):
    return _dtype(np.result_type(*[x.dtype if isinstance(x, CudaArray) else x for x in xs]))


def _out_for(out, shape, dtype):
    if out is None:
        return _new(shape, dtype)
    if not isinstance(out, CudaArray) or out.shape != tuple(shape):
        raise ValueError(f"out: expected a CUDA array of shape {tuple(shape)}")
    return out


def _broadcast_operands(dtypes, *xs):
    """The operands as device arrays of `dtypes` (one each), broadcast to their common shape."""
    xs = [_operand(x, d) for x, d in zip(xs, dtypes)]
    shape = _broadcast_shapes(*[x.shape for x in xs])
    return shape, [broadcast_to(x, shape) for x in xs]


def _binary(op, a, b, out=None, dtype=None):
    dtype = dtype or _result_type(a, b)
    shape, (a, b) = _broadcast_operands((dtype, dtype), a, b)
    if out is not None and out.dtype != dtype:
        tmp = _binary(op, a, b)
        _copy_into(out, tmp)
        return out
    out = _out_for(out, shape, dtype)
    _m.binary(op, _CODES[dtype], out._ptr, list(out._strides), a._ptr, list(a._strides), b._ptr,
              list(b._strides), list(shape))
    return out


def _make_binary(op, true_divide=False, bool_as_int=False):
    def fn(a, b, out=None):
        dtype = _result_type(a, b)
        if true_divide and dtype.kind in "biu":
            dtype = _F64
        if bool_as_int and dtype == _BOOL:  # NumPy has no bool loop for these: bools compute as integers
            dtype = _INT64
        return _binary(op, a, b, out, dtype)

    fn.__name__ = op
    return fn


add = _make_binary("add")
subtract = _make_binary("subtract")
multiply = _make_binary("multiply")
divide = _make_binary("divide", true_divide=True)
floor_divide = _make_binary("floor_divide", bool_as_int=True)
trunc_divide = _make_binary("trunc_divide")
remainder = _make_binary("remainder", bool_as_int=True)
power = _make_binary("power", bool_as_int=True)
maximum = _make_binary("maximum")
minimum = _make_binary("minimum")


def _unary(op, a, float_result):
    a = _operand(a)
    dtype = a.dtype
    if float_result and dtype.kind in "biu":
        dtype = _F64
    a = astype(a, dtype)
    out = _new(a.shape, dtype)
    _m.unary(op, _CODES[dtype], out._ptr, list(out._strides), a._ptr, list(a._strides), list(a.shape))
    return out


def _make_unary(op, float_result=True):
    def fn(a):
        return _unary(op, a, float_result)

    fn.__name__ = op
    return fn


negative = _make_unary("negative", float_result=False)
abs = _make_unary("abs", float_result=False)
sign = _make_unary("sign", float_result=False)
exp = _make_unary("exp")
log = _make_unary("log")
log1p = _make_unary("log1p")
sqrt = _make_unary("sqrt")
rsqrt = _make_unary("rsqrt")
sin = _make_unary("sin")
cos = _make_unary("cos")
tanh = _make_unary("tanh")
sigmoid = _make_unary("sigmoid")
erf = _make_unary("erf")
erfc = _make_unary("erfc")


def _predicate(op, a):
    a = _operand(a)
    out = _new(a.shape, _BOOL)
    _m.predicate(op, _CODES[a.dtype], out._ptr, list(out._strides), a._ptr, list(a._strides), list(a.shape))
    return out


def isnan(a):
    return _predicate("isnan", a)


def isfinite(a):
    return _predicate("isfinite", a)


def logical_not(a):
    return _predicate("logical_not", a)


def _compare(op, a, b):
    dtype = _result_type(a, b)
    shape, (a, b) = _broadcast_operands((dtype, dtype), a, b)
    out = _new(shape, _BOOL)
    _m.compare(op, _CODES[dtype], out._ptr, list(out._strides), a._ptr, list(a._strides), b._ptr,
               list(b._strides), list(shape))
    return out


def _make_compare(op):
    def fn(a, b):
        return _compare(op, a, b)

    fn.__name__ = op
    return fn


equal = _make_compare("equal")
not_equal = _make_compare("not_equal")
less = _make_compare("less")
less_equal = _make_compare("less_equal")
greater = _make_compare("greater")
greater_equal = _make_compare("greater_equal")


def logical_and(a, b):
    return _binary("logical_and", a, b, dtype=_BOOL)


def logical_or(a, b):
    return _binary("logical_or", a, b, dtype=_BOOL)


def where(cond, a, b):
    dtype = _result_type(a, b)
    shape, (cond, a, b) = _broadcast_operands((_BOOL, dtype, dtype), cond, a, b)
    out = _new(shape, dtype)
    _m.where(_CODES[dtype], out._ptr, list(out._strides), cond._ptr, list(cond._strides), a._ptr,
             list(a._strides), b._ptr, list(b._strides), list(shape))
    return out


def clip(a, lo, hi):
    out = a
    if lo is not None:
        out = maximum(out, lo)
    if hi is not None:
        out = minimum(out, hi)
    return out if out is not a else copy(a)


# --- reductions: the reduced axes are moved last and made contiguous, then one row per output
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(int(x) for x in axis)
    else:
        axes = (int(axis),)
    for x in axes:
        if not -builtins.max(ndim, 1) <= x < builtins.max(ndim, 1):
            raise np.exceptions.AxisError(x, ndim)
    return tuple(sorted({x % ndim for x in axes})) if ndim else ()


def _rows(a, axes):
    """(contiguous (M, R) array of a with `axes` last, kept shape, reduced shape)."""
    keep = [d for d in range(a.ndim) if d not in axes]
    moved = transpose(a, keep + list(axes)) if a.ndim else a
    M = _numel([a.shape[d] for d in keep])
    R = _numel([a.shape[d] for d in axes])
    rows = reshape(ascontiguous(moved), (M, R))
    kept = tuple(1 if d in axes else a.shape[d] for d in range(a.ndim))
    out_shape = tuple(a.shape[d] for d in keep)
    return rows, kept, out_shape


def _reduce(op, a, axis, keepdims, dtype):
    a = _operand(a)
    axes = _axes(axis, a.ndim)
    if dtype is not None:
        a = astype(a, dtype)
    rows, kept, shape = _rows(a, axes)
    M, R = rows.shape
    if op in ("max", "min") and R == 0 and M:
        raise ValueError(f"zero-size array to reduction operation {'maximum' if op == 'max' else 'minimum'} "
                         "which has no identity")
    out = _new((M,), rows.dtype)
    if M:
        _m.reduce(op, _CODES[rows.dtype], out._ptr, rows._ptr, M, R)
    return reshape(out, kept if keepdims else shape)


def sum(a, axis=None, keepdims=False, dtype=None):
    a = _operand(a)
    if dtype is None and a.dtype.kind in "biu":
        dtype = _INT64
    return _reduce("sum", a, axis, keepdims, dtype)


def prod(a, axis=None, keepdims=False, dtype=None):
    a = _operand(a)
    if dtype is None and a.dtype.kind in "biu":
        dtype = _INT64
    return _reduce("prod", a, axis, keepdims, dtype)


def amax(a, axis=None, keepdims=False):
    return _reduce("max", a, axis, keepdims, None)


def amin(a, axis=None, keepdims=False):
    return _reduce("min", a, axis, keepdims, None)


def all(a, axis=None, keepdims=False):
    return _reduce("all", a, axis, keepdims, _BOOL)


def any(a, axis=None, keepdims=False):
    return _reduce("any", a, axis, keepdims, _BOOL)


def _arg_reduce(is_max, a, axis, keepdims):
    a = _operand(a)
    if axis is None:
        flat = reshape(a, (-1,))
        if flat.size == 0:
            raise ValueError(f"attempt to get {'argmax' if is_max else 'argmin'} of an empty sequence")
        out = _arg_reduce(is_max, flat, 0, False)
        return reshape(out, (1,) * a.ndim) if keepdims else out
    (ax,) = _axes(axis, a.ndim) or (0,)
    rows, kept, shape = _rows(a, (ax,) if a.ndim else ())
    M, R = rows.shape
    if R == 0 and M:
        raise ValueError(f"attempt to get {'argmax' if is_max else 'argmin'} of an empty sequence")
    out = _new((M,), _INT64)
    if M:
        _m.arg_reduce(is_max, _CODES[rows.dtype], out._ptr, rows._ptr, M, R)
    return reshape(out, kept if keepdims else shape)


def argmax(a, axis=None, keepdims=False):
    return _arg_reduce(True, a, axis, keepdims)


def argmin(a, axis=None, keepdims=False):
    return _arg_reduce(False, a, axis, keepdims)


def _scan(op, a, axis):
    a = _operand(a)
    if a.dtype.kind in "biu":
        a = astype(a, _INT64)
    if axis is None:
        a, axis = reshape(a, (-1,)), 0
    ax = int(axis) % builtins.max(a.ndim, 1)
    perm = [d for d in range(a.ndim) if d != ax] + [ax]
    rows, _, _ = _rows(a, (ax,))
    out = _new(rows.shape, a.dtype)
    _m.scan(op, _CODES[a.dtype], out._ptr, rows._ptr, rows.shape[0], rows.shape[1])
    moved = reshape(out, [a.shape[d] for d in perm])
    return transpose(moved, [perm.index(d) for d in range(a.ndim)])


def cumprod(a, axis=None):
    return _scan("cumprod", a, axis)


def cumsum(a, axis=None):
    return _scan("cumsum", a, axis)


# --- indexing
def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _expand_index(a, index):
    """The index as a tuple without Ellipsis; python bools are refused (NumPy's 0-d masks)."""
    if not isinstance(index, tuple):
        index = (index,)
    used = 0
    for i in index:
        if isinstance(i, (bool, np.bool_)):
            raise IndexError("a boolean scalar index is not supported on CUDA; use None or a mask tensor")
        if isinstance(i, CudaArray):
            used += i.ndim if i.dtype == _BOOL else 1
        elif i is not None and i is not Ellipsis:
            used += 1
    if builtins.sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > a.ndim:
        raise IndexError(f"too many indices for array: array is {a.ndim}-dimensional, but {used} were indexed")
    out = []
    for i in index:
        if i is Ellipsis:
            out.extend([slice(None)] * (a.ndim - used))
        else:
            out.append(i)
    if not builtins.any(i is Ellipsis for i in index):
        out.extend([slice(None)] * (a.ndim - used))
    return out


def _basic_view(a, index):
    """The view of a by ints, slices and None (each advanced entry keeps its dim, marked as such):
    (view, positions in the view of the advanced entries)."""
    shape, strides, offset = [], [], a._offset
    advanced = []
    d = 0
    for i in index:
        if i is None:
            shape.append(1)
            strides.append(0)
        elif isinstance(i, slice):
            start, stop, step = i.indices(a.shape[d])
            n = len(range(start, stop, step))
            if n:
                offset += start * a._strides[d]
            shape.append(n)
            strides.append(a._strides[d] * step)
            d += 1
        elif _is_int(i):
            size = a.shape[d]
            if not -size <= i < size:
                raise IndexError(f"index {i} is out of bounds for axis {d} with size {size}")
            offset += (int(i) % size) * a._strides[d]
            d += 1
        else:  # an int64 index array: its dim stays, chosen later
            advanced.append(len(shape))
            shape.append(a.shape[d])
            strides.append(a._strides[d])
            d += 1
    return CudaArray(a._storage, offset, shape, strides, a.dtype), advanced


def _advanced_plan(a, index):
    """For an index with arrays: (view, index arrays broadcast, their dims in the view, out shape,
    the data strides and index strides over the out shape)."""
    items = []
    for i in index:  # masks -> their nonzero coordinates; ints among arrays are 0-d index arrays
        if isinstance(i, CudaArray) and i.dtype == _BOOL:
            items.extend(nonzero(i))
        elif isinstance(i, CudaArray):
            if i.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer (or boolean) type")
            items.append(astype(i, _INT64))
        elif _is_int(i):
            items.append(_scalar(int(i), _INT64))
        else:
            items.append(i)
    view, dims = _basic_view(a, items)
    arrays = [x for x in items if isinstance(x, CudaArray)]
    bshape = _broadcast_shapes(*[x.shape for x in arrays])
    arrays = [broadcast_to(x, bshape) for x in arrays]
    rest = [d for d in range(view.ndim) if d not in dims]
    adjacent = dims == list(range(dims[0], dims[0] + len(dims)))
    nb = len(bshape)
    if adjacent:
        before = [d for d in rest if d < dims[0]]
        after = [d for d in rest if d > dims[0]]
    else:
        before, after = [], rest
    out_shape = tuple([view.shape[d] for d in before] + list(bshape) + [view.shape[d] for d in after])
    data_strides = [view._strides[d] for d in before] + [0] * nb + [view._strides[d] for d in after]
    index_strides = [[0] * len(before) + list(x._strides) + [0] * len(after) for x in arrays]
    return view, arrays, dims, out_shape, data_strides, index_strides


def _run_index(mode, values, view, arrays, dims, out_shape, data_strides, index_strides):
    values = broadcast_to(values, out_shape)
    err = _m.index(mode, _CODES[view.dtype], values._ptr, list(values._strides), view._ptr, data_strides,
                   [x._ptr for x in arrays], index_strides, [view.shape[d] for d in dims],
                   [view._strides[d] for d in dims], list(out_shape))
    if err is not None:
        bad, k = err
        raise IndexError(f"index {bad} is out of bounds for axis {dims[k]} with size {view.shape[dims[k]]}")


def _has_arrays(index):
    return builtins.any(isinstance(i, CudaArray) for i in index)


def getitem(a, index):
    index = _expand_index(a, index)
    if not _has_arrays(index):
        return _basic_view(a, index)[0]
    view, arrays, dims, out_shape, data_strides, index_strides = _advanced_plan(a, index)
    out = _new(out_shape, a.dtype)
    _run_index("get", out, view, arrays, dims, out_shape, data_strides, index_strides)
    return out


def setitem(a, index, value):
    index = _expand_index(a, index)
    value = _operand(value, a.dtype)
    if not _has_arrays(index):
        _copy_into(_basic_view(a, index)[0], value)
        return
    plan = _advanced_plan(a, index)
    _run_index("put", value, *plan)


def index_add(a, index, value):
    """a[index] += value, accumulating where an advanced index repeats."""
    index = _expand_index(a, index)
    value = _operand(value, a.dtype)
    if not _has_arrays(index):
        view = _basic_view(a, index)[0]
        add(view, value, out=view)
        return
    plan = _advanced_plan(a, index)
    _run_index("add", value, *plan)


def nonzero(a):
    """NumPy's nonzero: one int64 array of coordinates per dim (a row-major walk of the mask)."""
    a = ascontiguous(astype(a, _BOOL))
    storage, count = _m.nonzero(a._ptr, list(a.shape))
    nd = a.ndim
    coords = CudaArray(storage if count * nd else None, 0, (count, nd), (nd, 1), _INT64)
    return tuple(coords[:, d] for d in range(nd))


def _along(a, axis, index, values_strides):
    """The index plan of gather/scatter_add along `axis`, looping over index's shape."""
    data_strides = [0 if d == axis else a._strides[d] for d in range(a.ndim)]
    return (a, [index], [axis], index.shape, data_strides, [list(index._strides)])


def gather(a, axis, index):
    """out[i, j, ...] = a[..., index[i, j, ...], ...] along `axis`."""
    index = astype(index, _INT64)
    out = _new(index.shape, a.dtype)
    _run_index("get", out, *_along(a, axis, index, out._strides))
    return out


def scatter_add(a, axis, index, src):
    """a[..., index[i, j, ...], ...] += src[i, j, ...] along `axis`."""
    index = astype(index, _INT64)
    src = _operand(src, a.dtype)
    src = CudaArray(src._storage, src._offset, index.shape, src._strides, src.dtype)  # src[:index.shape]
    _run_index("add", src, *_along(a, axis, index, src._strides))


# --- matmul
def matmul(a, b):
    """(..., M, K) @ (..., K, N) -> (..., M, N); batch dims broadcast (as views)."""
    a, b = _operand(a), _operand(b)
    dtype = _result_type(a, b)
    if dtype == _BOOL:
        raise TypeError("matmul is not defined for bool arrays on CUDA")
    a, b = astype(a, dtype), astype(b, dtype)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("matmul: both operands must have at least 2 dims (the caller promotes 1-D)")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match in the contracted dim")
    batch = _broadcast_shapes(a.shape[:-2], b.shape[:-2])
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    out = _new(batch + (M, N), dtype)
    if out.size == 0:
        return out
    a3 = _as_batch3(broadcast_to(a, batch + a.shape[-2:]))
    b3 = _as_batch3(broadcast_to(b, batch + b.shape[-2:]))
    c3 = _as_batch3(out)
    _m.matmul(_CODES[dtype], c3._ptr, list(c3._strides), a3._ptr, list(a3._strides), b3._ptr, list(b3._strides),
              c3.shape[0], M, N, K)
    return out


def _as_batch3(x):
    """(batch..., R, C) as (B, R, C): a view when the batch dims merge, else a copy."""
    lead = x.shape[:-2]
    if len(lead) == 1:
        return x
    if not lead:
        return CudaArray(x._storage, x._offset, (1,) + x.shape, (0,) + x._strides, x.dtype)
    strides = _view_strides(x, (_numel(lead),) + x.shape[-2:])
    if strides is None:
        x = copy(x)
        strides = _contiguous_strides((_numel(lead),) + x.shape[-2:])
    return CudaArray(x._storage, x._offset, (_numel(lead),) + x.shape[-2:], strides, x.dtype)


# --- random: counter-based Philox streams keyed by the generator's seed (kernelgrad/random.py)
def _counters(gen):
    return gen.initial_seed(), gen._cuda_offset


def _draw(kind, gen, shape, dtype):
    dtype = _dtype(dtype)
    out = _new(_shape_tuple(shape), dtype)
    seed, offset = _counters(gen)
    used = getattr(_m, "random_" + kind)(_CODES[dtype], out._ptr, out.size, seed, offset)
    gen._cuda_offset += used
    return out


def uniform(gen, shape, dtype):
    return _draw("uniform", gen, shape, dtype)


def normal(gen, shape, dtype):
    return _draw("normal", gen, shape, dtype)


def integers(gen, low, high, shape):
    out = _new(_shape_tuple(shape), _INT64)
    seed, offset = _counters(gen)
    gen._cuda_offset += _m.random_integers(out._ptr, out.size, int(low), int(high), seed, offset)
    return out


def permutation(gen, n):
    out = _new((int(n),), _INT64)
    seed, offset = _counters(gen)
    gen._cuda_offset += _m.randperm(out._ptr, int(n), seed, offset)
    return out


# --- the kernel families, one module each (cuda_<family>.py), over the helpers above
# (family imports go here)
from .cuda_conv import *  # noqa: E402,F401,F403
from .cuda_pool import *  # noqa: E402,F401,F403
from .cuda_norm import *  # noqa: E402,F401,F403
from .cuda_attention import *  # noqa: E402,F401,F403


# --- the named kernels of the other families arrive with their CUDA versions (issues 4 and 5)
def _no_kernel(name):
    def fn(*args, **kwargs):
        raise RuntimeError(f"{name} has no CUDA kernel yet; run it on the CPU (tensor.cpu())")

    fn.__name__ = name
    return fn


for _name in _CPU_ALL:
    if _name not in globals():
        globals()[_name] = _no_kernel(_name)
del _name
