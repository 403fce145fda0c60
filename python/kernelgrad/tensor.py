"""kg.Tensor: an array on a device (a backend array: NumPy on the CPU), its dtype, and its place in
the autograd graph. Every op goes through an autograd Function in `ops/`; this file normalises
arguments the way PyTorch does and handles views and in-place updates.

Views (reshape, permute, expand, basic indexing, split, detach) share memory and a version counter
with their base. An in-place op computes its result out of place, writes it into the tensor's
memory and moves the tensor to the new graph node; on a view it also rebases the base, so the
gradient of `y[0].mul_(2)` flows through `y` as it does in PyTorch.
"""
import collections
import numbers
import sys

import numpy as np

from . import _dtype as D
from ._device import CPU, as_device
from ._errors import ArgumentError, DeviceError, DTypeError, IndexRangeError, ShapeError
from .autograd.function import AccumulateGrad, Function
from .autograd.grad_mode import is_grad_enabled, no_grad
from .backend import backend_for
from .ops import elementwise as E
from .ops import indexing as I
from .ops import linalg as L
from .ops import reduction as R
from .ops import shape as S
from .ops._util import normalize_dim, normalize_dims

_Number = (numbers.Number, np.generic)

MaxMin = collections.namedtuple("MaxMin", ["values", "indices"])


def _is_scalar(x):
    return isinstance(x, _Number) and not isinstance(x, complex)


def _shape_args(args, what):
    """`f(2, 3)`, `f((2, 3))` and `f([2, 3])` all mean (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    for s in args:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{what}: expected ints, got {type(s).__name__}")
    return tuple(int(s) for s in args)


class Tensor:
    __slots__ = ("_data", "_device", "_dtype", "_requires_grad", "_grad", "grad_fn", "_output_nr",
                 "_version", "_base", "_view_fn", "_accum", "__weakref__")

    # NumPy defers to our reflected operators (np_array + tensor -> Tensor.__radd__)
    __array_ufunc__ = None

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, data=None, *, dtype=None, device=None, requires_grad=False):
        """`kg.Tensor(data)` behaves like `kg.tensor(data)`; prefer the latter."""
        from .creation import tensor

        t = tensor([] if data is None else data, dtype=dtype, device=device, requires_grad=requires_grad)
        Tensor._init(self, t._data, t._device)
        self._requires_grad = t._requires_grad

    @staticmethod
    def _make(data, device=CPU):
        t = object.__new__(Tensor)
        if isinstance(data, np.generic):
            data = np.asarray(data)
        Tensor._init(t, data, device)
        return t

    @staticmethod
    def _from_array(a):
        return Tensor._make(np.asarray(a), CPU)

    def _init(self, data, device):
        dt = D._FROM_NP.get(data.dtype)
        if dt is None:
            dt = D.from_numpy_dtype(data.dtype)
            data = backend_for(device).astype(data, dt.np)
        self._data = data
        self._device = device
        self._dtype = dt
        self._requires_grad = False
        self._grad = None
        self.grad_fn = None
        self._output_nr = 0
        self._version = [0]
        self._base = None
        self._view_fn = None
        self._accum = None

    # --- attributes
    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def ndim(self):
        return len(self._data.shape)

    def dim(self):
        return self.ndim

    def size(self, dim=None):
        if dim is None:
            return self.shape
        return self.shape[normalize_dim(dim, self.ndim)] if self.ndim else 1

    def numel(self):
        n = 1
        for s in self._data.shape:
            n *= s
        return n

    def element_size(self):
        return self._dtype.itemsize

    def is_floating_point(self):
        return self._dtype.is_floating_point

    def is_contiguous(self):
        return bool(self._data.flags["C_CONTIGUOUS"]) if isinstance(self._data, np.ndarray) else \
            backend_for(self._device).is_contiguous(self._data)

    @property
    def is_cuda(self):
        return self._device.type == "cuda"

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want to use a "
                    "computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach()."
                )
            return self
        if requires_grad and not self._dtype.is_floating_point:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, got {self._dtype.name}"
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None, got {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(
                    f"assigned grad has data of a different size: {list(value.shape)} vs {list(self.shape)}"
                )
            if value.device != self.device:
                raise RuntimeError(f"assigned grad is on {value.device}, the tensor on {self.device}")
        self._grad = value

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        self._data, self._device, self._dtype = value._data, value._device, value._dtype

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        if self.ndim < 2:
            raise ShapeError(f"mT: tensor of dimension {self.ndim} must have at least 2 dimensions")
        return self.transpose(-2, -1)

    # --- conversion
    def numpy(self):
        if self._requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self._device.type != "cpu":
            raise TypeError(
                f"can't convert {self._device.type} device tensor to numpy. Use Tensor.cpu() to copy the tensor to host memory first."
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return np.array(a, copy=True) if copy else a

    def __dlpack__(self, *args, **kwargs):
        if self._requires_grad:
            raise RuntimeError("Can't export a tensor that requires grad with DLPack; use tensor.detach()")
        return self.numpy().__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.numpy().__dlpack_device__()

    def _host(self):
        return backend_for(self._device).to_numpy(self._data)

    def item(self):
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._host().reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is ambiguous")
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        return id(self)

    def __deepcopy__(self, memo):
        if not self.is_leaf:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol at the moment"
            )
        if id(self) in memo:
            return memo[id(self)]
        t = Tensor._make(backend_for(self._device).copy(self._data), self._device)
        t._requires_grad = self._requires_grad
        if self._grad is not None:
            t._grad = self._grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t

    def __repr__(self):
        body = np.array2string(self._host(), separator=", ", prefix="tensor(", precision=4)
        extra = []
        if self._dtype not in (D.get_default_dtype(), D.int64, D.bool_) or (self.numel() == 0 and self._dtype != D.float32):
            extra.append(f"dtype={self._dtype!r}")
        if self._device.type != "cpu":
            extra.append(f"device='{self._device}'")
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    def to(self, *args, **kwargs):
        """`.to(dtype)`, `.to(device)`, `.to(device, dtype)`, `.to(other)`, or by keyword."""
        device, dtype = parse_to_args(args, kwargs)
        device = device or self._device
        dtype = dtype or self._dtype
        if device.type == "cuda" and device.index is None:
            device = as_device("cuda")
        if device == self._device and dtype == self._dtype:
            return self
        backend_for(device)  # a clear error now if that device is missing
        return E.Cast.apply(self, dtype, device)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def float(self):
        return self.to(dtype=D.float32)

    def double(self):
        return self.to(dtype=D.float64)

    def half(self):
        return self.to(dtype=D.float16)

    def long(self):
        return self.to(dtype=D.int64)

    def bool(self):
        return self.to(dtype=D.bool_)

    def type_as(self, other):
        return self.to(dtype=other.dtype)

    def detach(self):
        t = Tensor._make(self._data, self._device)
        t._version = self._version
        return t

    def detach_(self):
        if self._base is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn, self._requires_grad = None, False
        return self

    def clone(self):
        return S.Clone.apply(self)

    def contiguous(self):
        return self if self.is_contiguous() else S.Clone.apply(self)

    # --- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd import backward

        if inputs is not None:
            raise NotImplementedError("backward(inputs=...) is not supported; use kg.autograd.grad")
        backward(self, gradient, retain_graph, create_graph)

    def retain_grad(self):
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None:
            return
        import weakref

        node = self.grad_fn
        if getattr(node, "_retained", None) is None:
            node._retained = {}
        node._retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self):
        r = getattr(self.grad_fn, "_retained", None) if self.grad_fn is not None else None
        return bool(r) and self._output_nr in r and r[self._output_nr]() is self

    def register_hook(self, hook):
        """hook(grad) -> new grad or None, called when the gradient for this tensor is computed."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        node, i = self._grad_edge()
        node._add_tensor_hook(i, hook)
        hooks = node._hooks[i]

        class _Handle:
            def remove(self_inner):
                if hook in hooks:
                    hooks.remove(hook)

        return _Handle()

    def _grad_edge(self):
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        if self._accum is None:
            self._accum = AccumulateGrad(self)
        return (self._accum, 0)

    def _set_grad_fn(self, node, i):
        self.grad_fn = node
        self._output_nr = i
        self._requires_grad = True

    def _alias(self):
        t = Tensor._make(self._data, self._device)
        t._version = self._version
        return t

    def _accumulate_grad(self, g, create_graph):
        if self._grad is None:
            if create_graph:
                self._grad = g
            elif _private_gradient(g):  # nobody else can see this buffer: keep it, as PyTorch does
                self._grad = Tensor._make(g._data, g.device)
            else:
                self._grad = Tensor._make(backend_for(g.device).copy(g._data), g.device)
        elif create_graph or self._grad.requires_grad:
            self._grad = self._grad + g
        else:
            backend_for(self._device).add(self._grad._data, g._data, out=self._grad._data)

    # --- views and in-place machinery
    def _view(self, fn):
        """out = fn(self), recorded as a view of self's base when it shares self's memory."""
        return self._mark_view(fn(self), fn)

    def _mark_view(self, out, fn):
        if backend_for(self._device).may_share_memory(out._data, self._data):
            out._version = self._version
            if self._base is None:
                out._base, out._view_fn = self, fn
            else:
                parent = self._view_fn
                out._base, out._view_fn = self._base, (lambda b: fn(parent(b)))
        return out

    def _check_inplace(self):
        if not is_grad_enabled():
            return
        if self.is_leaf and self._requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
        b = self._base
        if b is not None and b.is_leaf and b._requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")

    def _write(self, index, data):
        try:
            backend_for(self._device).setitem(self._data, index, data)
        except ValueError as e:
            if "read-only" in str(e):
                raise RuntimeError(
                    "unsupported operation: more than one element of the written-to tensor refers to a "
                    "single memory location (or the memory is read-only). Please clone() the tensor "
                    "before performing the operation."
                ) from None
            raise ShapeError(f"setitem: {e}") from None
        self._version[0] += 1

    def _inplace(self, result, what):
        """Finish an in-place op whose out-of-place `result` was computed from self."""
        if result.shape != self.shape:
            raise ShapeError(
                f"{what}: output with shape {list(self.shape)} doesn't match the broadcast shape {list(result.shape)}"
            )
        if result.dtype != self._dtype:
            if not D.can_cast(result.dtype, self._dtype):
                raise DTypeError(
                    f"{what}: result type {result.dtype.name} can't be cast to the desired output type {self._dtype.name}"
                )
            result = result.to(dtype=self._dtype)
        self._write(Ellipsis, result._data)
        if result._requires_grad and is_grad_enabled():
            self._set_grad_fn(result.grad_fn, result._output_nr)
            if self._base is not None:
                self._rebase_view()
        return self

    def _rebase_view(self):
        """self (a view of base) was written in place: base becomes 'base with the view replaced'."""
        base, fn = self._base, self._view_fn
        new_base = _ViewWrite.apply(base, self, fn)
        base._set_grad_fn(new_base.grad_fn, 0)
        v = fn(base)
        self._set_grad_fn(v.grad_fn, v._output_nr)

    def _binary_inplace(self, cls, other, what, true_div=False):
        self._check_inplace()
        a, b = _operands(self, other, what, true_div)
        if a is self and b._requires_grad and is_grad_enabled():
            a = self.clone()  # d/d other may need self's value from before the write
        return self._inplace(cls.apply(a, b), what)

    def __iadd__(self, other):
        return self._binary_inplace(E.Add, other, "add_")

    def __isub__(self, other):
        return self._binary_inplace(E.Sub, other, "sub_")

    def __imul__(self, other):
        return self._binary_inplace(E.Mul, other, "mul_")

    def __itruediv__(self, other):
        return self._binary_inplace(E.Div, other, "div_", true_div=True)

    def add_(self, other, alpha=1):
        return self.__iadd__(other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return self.__isub__(other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self.__imul__(other)

    def div_(self, other):
        return self.__itruediv__(other)

    def fill_(self, value):
        self[...] = value
        return self

    def zero_(self):
        return self.fill_(0)

    def copy_(self, src):
        if not isinstance(src, Tensor):
            raise TypeError(f"copy_: expected src to be a Tensor, got {type(src).__name__}")
        self[...] = src.to(device=self._device)
        return self

    def clamp_(self, min=None, max=None):
        self._check_inplace()
        return self._inplace(self.clamp(min, max), "clamp_")

    clip_ = clamp_

    # --- indexing
    def __getitem__(self, index):
        index = _index(index, self)
        return self._view(lambda t: I.GetItem.apply(t, index))

    def __setitem__(self, index, value):
        index = _index(index, self)
        if isinstance(value, Tensor):
            if value.device != self._device:
                raise DeviceError(f"setitem: value is on {value.device} but the tensor is on {self._device}")
            if value.dtype != self._dtype:
                value = value.to(dtype=self._dtype)
        else:
            from .creation import tensor

            value = tensor(value, dtype=self._dtype, device=self._device)
        self._check_inplace()
        if is_grad_enabled() and (self._requires_grad or value._requires_grad):
            self._inplace(I.SetItem.apply(self, value, index), "setitem")
        else:
            self._write(index, value._data)

    def gather(self, dim, index):
        dim = normalize_dim(dim, self.ndim)
        _check_index_tensor(index, self, "gather")
        if index.ndim != self.ndim:
            raise ShapeError(f"gather: index has {index.ndim} dims but input has {self.ndim}; they must match")
        for d in range(self.ndim):
            if d != dim and index.shape[d] > self.shape[d]:
                raise ShapeError(f"gather: index size {index.shape[d]} exceeds input size {self.shape[d]} at dim {d}")
        _check_index_range(index, self.shape[dim] if self.ndim else 1, "gather")
        return I.Gather.apply(self, dim, index)

    def scatter_add(self, dim, index, src):
        dim = normalize_dim(dim, self.ndim)
        _check_index_tensor(index, self, "scatter_add")
        if not isinstance(src, Tensor):
            raise TypeError(f"scatter_add: expected src to be a Tensor, got {type(src).__name__}")
        if src.device != self._device:
            raise DeviceError(f"scatter_add: src is on {src.device} but self is on {self._device}")
        if index.ndim != self.ndim or src.ndim != self.ndim:
            raise ShapeError("scatter_add: index, src and self must have the same number of dimensions")
        for d in range(self.ndim):
            if index.shape[d] > src.shape[d] or (d != dim and index.shape[d] > self.shape[d]):
                raise ShapeError(f"scatter_add: index size {index.shape[d]} at dim {d} exceeds src or self")
        _check_index_range(index, self.shape[dim] if self.ndim else 1, "scatter_add")
        if src.dtype != self._dtype:
            src = src.to(dtype=self._dtype)
        return I.ScatterAdd.apply(self, dim, index, src)

    def scatter_add_(self, dim, index, src):
        self._check_inplace()
        return self._inplace(self.scatter_add(dim, index, src), "scatter_add_")

    def masked_fill(self, mask, value):
        if not isinstance(mask, Tensor) or mask.dtype != D.bool_:
            raise DTypeError("masked_fill: expected mask to be a bool Tensor")
        if isinstance(value, Tensor) and value.ndim != 0:
            raise ShapeError(f"masked_fill: only supports a 0-dimensional value tensor, got {value.ndim} dims")
        _broadcast_shape(self.shape, mask.shape, "masked_fill")
        value = value.to(dtype=self._dtype) if isinstance(value, Tensor) else _const(value, self._dtype, self._device)
        return where(mask, value, self)

    def masked_fill_(self, mask, value):
        self._check_inplace()
        return self._inplace(self.masked_fill(mask, value), "masked_fill_")

    # --- arithmetic
    def __add__(self, other):
        return _binary(E.Add, self, other, "add")

    def __radd__(self, other):
        return _binary(E.Add, other, self, "add")

    def __sub__(self, other):
        return _binary(E.Sub, self, other, "sub")

    def __rsub__(self, other):
        return _binary(E.Sub, other, self, "sub")

    def __mul__(self, other):
        return _binary(E.Mul, self, other, "mul")

    def __rmul__(self, other):
        return _binary(E.Mul, other, self, "mul")

    def __truediv__(self, other):
        return _binary(E.Div, self, other, "div", true_div=True)

    def __rtruediv__(self, other):
        return _binary(E.Div, other, self, "div", true_div=True)

    def __floordiv__(self, other):
        return _nograd_binary("floor_divide", self, other)

    def __rfloordiv__(self, other):
        return _nograd_binary("floor_divide", other, self)

    def __mod__(self, other):
        return _nograd_binary("remainder", self, other)

    def __pow__(self, other):
        return _binary(E.Pow, self, other, "pow")

    def __rpow__(self, other):
        return _binary(E.Pow, other, self, "pow")

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        if self._dtype == D.bool_:
            raise DTypeError("Negation, the `-` operator, on a bool tensor is not supported. Use `~` instead.")
        return E.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __invert__(self):
        if self._dtype != D.bool_:
            raise TypeError("~ (bitwise not) is only supported on bool tensors")
        return _new_nograd(backend_for(self._device).logical_not(self._data), self._device)

    def __and__(self, other):
        return _logical("logical_and", self, other)

    __rand__ = __and__

    def __or__(self, other):
        return _logical("logical_or", self, other)

    __ror__ = __or__

    def __eq__(self, other):
        return _compare("equal", self, other)

    def __ne__(self, other):
        return _compare("not_equal", self, other)

    def __lt__(self, other):
        return _compare("less", self, other)

    def __le__(self, other):
        return _compare("less_equal", self, other)

    def __gt__(self, other):
        return _compare("greater", self, other)

    def __ge__(self, other):
        return _compare("greater_equal", self, other)

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def add(self, other, alpha=1):
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, alpha=1):
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other):
        return self * other

    def div(self, other, rounding_mode=None):
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return self // other
        if rounding_mode == "trunc":
            return _nograd_binary("trunc_divide", self, other)
        raise ArgumentError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")

    def pow(self, exponent):
        return self ** exponent

    def matmul(self, other):
        return matmul(self, other)

    # --- math
    def _float_unary(self, cls):
        x = self if self._dtype.is_floating_point else self.to(dtype=D.get_default_dtype())
        return cls.apply(x)

    def exp(self):
        return self._float_unary(E.Exp)

    def log(self):
        return self._float_unary(E.Log)

    def log1p(self):
        return self._float_unary(E.Log1p)

    def sqrt(self):
        return self._float_unary(E.Sqrt)

    def rsqrt(self):
        return self._float_unary(E.Rsqrt)

    def sin(self):
        return self._float_unary(E.Sin)

    def cos(self):
        return self._float_unary(E.Cos)

    def tanh(self):
        return self._float_unary(E.Tanh)

    def sigmoid(self):
        return self._float_unary(E.Sigmoid)

    def abs(self):
        if self._dtype == D.bool_:
            raise DTypeError("abs: not implemented for bool tensors")
        return E.Abs.apply(self)

    def sign(self):
        return E.Sign.apply(self)

    def relu(self):
        return E.Relu.apply(self)

    def square(self):
        return self * self

    def neg(self):
        return -self

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ArgumentError("clamp: at least one of 'min' or 'max' must not be None")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self
            if min is not None:
                out = maximum(out, min if isinstance(min, Tensor) else _const(min, self._dtype, self._device))
            if max is not None:
                out = minimum(out, max if isinstance(max, Tensor) else _const(max, self._dtype, self._device))
            return out
        for name, v in (("min", min), ("max", max)):
            if v is not None and not _is_scalar(v):
                raise TypeError(f"clamp: {name} must be a number or a Tensor, got {type(v).__name__}")
        x = self
        if not self._dtype.is_floating_point and any(isinstance(v, float) for v in (min, max)):
            x = self.to(dtype=D.get_default_dtype())
        return E.Clamp.apply(x, min, max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def where(self, condition, other):
        return where(condition, self, other)

    def isnan(self):
        return _new_nograd(backend_for(self._device).isnan(self._data), self._device)

    def isfinite(self):
        return _new_nograd(backend_for(self._device).isfinite(self._data), self._device)

    # --- reductions
    def sum(self, dim=None, keepdim=False, dtype=None):
        dims = normalize_dims(dim, self.ndim)
        dtype = D.as_dtype(dtype, "sum") or (self._dtype if self._dtype.is_floating_point else D.int64)
        return R.Sum.apply(self, dims, keepdim, dtype)

    def mean(self, dim=None, keepdim=False, dtype=None):
        dtype = D.as_dtype(dtype, "mean") or self._dtype
        if not dtype.is_floating_point:
            raise DTypeError(
                f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
                f"complex dtype. Got: {self._dtype.name}"
            )
        x = self.to(dtype=dtype)
        dims = normalize_dims(dim, self.ndim)
        return x.sum(dims, keepdim) / _count(self.shape, dims)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """sum((x - mean)^2) / (N - correction), correction=1 by default (Bessel)."""
        if correction is None:
            correction = 1 if unbiased is None else int(bool(unbiased))
        if not self._dtype.is_floating_point:
            raise DTypeError(f"var: expected a floating point tensor, got {self._dtype.name}")
        dims = normalize_dims(dim, self.ndim)
        d = self - self.mean(dims, keepdim=True)
        n = max(_count(self.shape, dims) - correction, 0)  # n == 0 gives nan (or inf), as in PyTorch
        return (d * d).sum(dims, keepdim) / n

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def _reduce_minmax(self, dim, keepdim, is_max, what):
        if isinstance(dim, Tensor):
            return maximum(self, dim) if is_max else minimum(self, dim)
        if self.numel() == 0 and (dim is None or self.shape[normalize_dim(dim, self.ndim)] == 0):
            raise ShapeError(f"{what}(): Expected reduction dim to be specified for input.numel() == 0, "
                             "or the reduced dim has size 0")
        if dim is None:
            return R.AMax.apply(self, tuple(range(self.ndim)), False, is_max)
        if self.ndim == 0:
            normalize_dim(dim, 0)
            return MaxMin(self.clone(), zeros_like_int(self))
        d = normalize_dim(dim, self.ndim)
        return MaxMin(*R.MaxDim.apply(self, d, keepdim, is_max))

    def max(self, dim=None, keepdim=False):
        return self._reduce_minmax(dim, keepdim, True, "max")

    def min(self, dim=None, keepdim=False):
        return self._reduce_minmax(dim, keepdim, False, "min")

    def amax(self, dim=None, keepdim=False):
        if self.numel() == 0:
            raise ShapeError("amax(): Expected reduction dim to be specified for input.numel() == 0")
        return R.AMax.apply(self, normalize_dims(dim if dim != () else None, self.ndim), keepdim, True)

    def amin(self, dim=None, keepdim=False):
        if self.numel() == 0:
            raise ShapeError("amin(): Expected reduction dim to be specified for input.numel() == 0")
        return R.AMax.apply(self, normalize_dims(dim if dim != () else None, self.ndim), keepdim, False)

    def _arg(self, dim, keepdim, is_max):
        B = backend_for(self._device)
        if self.numel() == 0:
            raise ShapeError("argmax/argmin: expected a non-empty tensor")
        f = B.argmax if is_max else B.argmin
        if dim is None:
            out = f(B.reshape(self._data, (-1,)))
            if keepdim:
                out = B.reshape(B.asarray(out), (1,) * self.ndim)
        else:
            d = normalize_dim(dim, self.ndim)
            out = f(self._data, axis=d, keepdims=keepdim) if self.ndim else B.asarray(0)
        return _new_nograd(B.astype(B.asarray(out), np.int64), self._device)

    def argmax(self, dim=None, keepdim=False):
        return self._arg(dim, keepdim, True)

    def argmin(self, dim=None, keepdim=False):
        return self._arg(dim, keepdim, False)

    def prod(self, dim=None, keepdim=False, dtype=None):
        dims = normalize_dims(dim, self.ndim)
        dtype = D.as_dtype(dtype, "prod") or (self._dtype if self._dtype.is_floating_point else D.int64)
        return R.Prod.apply(self.to(dtype=dtype) if dtype.is_floating_point else self, dims, keepdim, dtype)

    def logsumexp(self, dim=None, keepdim=False):
        """log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the max (stable)."""
        x = self if self._dtype.is_floating_point else self.to(dtype=D.get_default_dtype())
        dims = normalize_dims(dim, self.ndim)
        if x.numel() == 0:
            return x.exp().sum(dims, keepdim).log()
        with no_grad():
            m = x.amax(dims, keepdim=True)
            m = where(m.isfinite(), m, 0.0)
        out = (x - m).exp().sum(dims, keepdim=True).log() + m
        return out if keepdim else out.reshape(tuple(s for i, s in enumerate(out.shape) if i not in dims))

    def softmax(self, dim, dtype=None):
        from .nn.functional import softmax

        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        from .nn.functional import log_softmax

        return log_softmax(self, dim, dtype=dtype)

    def norm(self, p="fro", dim=None, keepdim=False):
        if not self._dtype.is_floating_point:
            raise DTypeError(f"norm: expected a floating point tensor, got {self._dtype.name}")
        dims = normalize_dims(dim, self.ndim)
        if p in ("fro", 2, 2.0):
            return R.Norm2.apply(self, dims, keepdim)
        if p in (float("inf"), "inf"):
            return self.abs().amax(dims, keepdim)
        if p in (float("-inf"), "-inf"):
            return self.abs().amin(dims, keepdim)
        if p == 1:
            return self.abs().sum(dims, keepdim)
        if p == 0:
            return (self != 0).to(dtype=self._dtype).sum(dims, keepdim)
        if isinstance(p, str) or not _is_scalar(p):
            raise ArgumentError(f"norm: unsupported p={p!r}")
        return (self.abs() ** p).sum(dims, keepdim) ** (1.0 / p)

    def all(self, dim=None, keepdim=False):
        B = backend_for(self._device)
        return _new_nograd(B.asarray(B.all(self._data, axis=normalize_dims(dim, self.ndim), keepdims=keepdim)), self._device)

    def any(self, dim=None, keepdim=False):
        B = backend_for(self._device)
        return _new_nograd(B.asarray(B.any(self._data, axis=normalize_dims(dim, self.ndim), keepdims=keepdim)), self._device)

    # --- shape
    def reshape(self, *shape):
        shape = _infer_shape(_shape_args(shape, "reshape"), self.numel())
        if shape == self.shape:
            return self._view(S.Alias.apply)
        return self._view(lambda t: S.Reshape.apply(t, shape))

    def view(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], D.dtype):
            raise NotImplementedError("view(dtype) is not supported")
        shape = _infer_shape(_shape_args(shape, "view"), self.numel())
        out = self.reshape(shape)
        if out._base is None and out.numel() > 1 and self.numel() > 0:
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one dimension "
                "spans across two contiguous subspaces). Use .reshape(...) instead."
            )
        return out

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = normalize_dim(start_dim, self.ndim), normalize_dim(end_dim, self.ndim)
        if s > e:
            raise ArgumentError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
        shp = self.shape
        n = 1
        for v in shp[s:e + 1]:
            n *= v
        return self.reshape(shp[:s] + (n,) + shp[e + 1:])

    def unflatten(self, dim, sizes):
        d = normalize_dim(dim, self.ndim)
        sizes = _infer_shape(tuple(sizes), self.shape[d])
        return self.reshape(self.shape[:d] + sizes + self.shape[d + 1:])

    def squeeze(self, dim=None):
        dims = normalize_dims(dim, self.ndim)
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1)))

    def unsqueeze(self, dim):
        d = normalize_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def permute(self, *dims):
        dims = _shape_args(dims, "permute")
        if len(dims) != self.ndim:
            raise ShapeError(f"permute: number of dims {len(dims)} doesn't match the tensor's {self.ndim} dims")
        dims = tuple(normalize_dim(d, self.ndim) for d in dims)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"permute: repeated dim in {dims}")
        return self._view(lambda t: S.Permute.apply(t, dims))

    def transpose(self, dim0, dim1):
        if self.ndim == 0:
            return self._view(S.Alias.apply)
        d0, d1 = normalize_dim(dim0, self.ndim), normalize_dim(dim1, self.ndim)
        dims = list(range(self.ndim))
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return self.permute(dims)

    swapaxes = transpose

    def t(self):
        if self.ndim > 2:
            raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.T

    def expand(self, *sizes):
        sizes = _shape_args(sizes, "expand")
        if len(sizes) < self.ndim:
            raise ShapeError(
                f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to the "
                f"number of dimensions in the tensor ({self.ndim})"
            )
        lead = len(sizes) - self.ndim
        shape = []
        for i, s in enumerate(sizes):
            cur = self.shape[i - lead] if i >= lead else None
            if s == -1:
                if cur is None:
                    raise ShapeError("expand: -1 is not allowed in a leading, non-existing dimension")
                s = cur
            elif cur is not None and cur != s and cur != 1:
                raise ShapeError(
                    f"expand: the expanded size of the tensor ({s}) must match the existing size ({cur}) "
                    f"at non-singleton dimension {i}. Target sizes: {list(sizes)}. Tensor sizes: {list(self.shape)}"
                )
            shape.append(s)
        shape = tuple(shape)
        if shape == self.shape:
            return self
        return self._view(lambda t: S.Expand.apply(t, shape))

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, shape):
        return self.expand(shape)

    def repeat(self, *sizes):
        sizes = _shape_args(sizes, "repeat")
        if len(sizes) < self.ndim:
            raise ShapeError(
                "repeat: number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"
            )
        if any(s < 0 for s in sizes):
            raise ArgumentError(f"repeat: repeats must be non-negative, got {list(sizes)}")
        return S.Repeat.apply(self, sizes)

    def split(self, split_size_or_sections, dim=0):
        d = normalize_dim(dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(split_size_or_sections, bool):
            step = int(split_size_or_sections)
            if step <= 0 and not (step == 0 and n == 0):
                raise ArgumentError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, n - i) for i in range(0, n, step)] if n else [0]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != n or any(s < 0 for s in sizes):
                raise ShapeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                    f"dimension {d}), but got split_sizes={sizes}"
                )
        outs = S.Split.apply(self, tuple(sizes), d)
        start = 0
        for out, s in zip(outs, sizes):  # each piece is a view of self: self[:, ..., start:start+s]
            sl = (slice(None),) * d + (slice(start, start + s),)
            self._mark_view(out, lambda t, sl=sl: I.GetItem.apply(t, sl))
            start += s
        return outs

    def chunk(self, chunks, dim=0):
        if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
            raise ArgumentError(f"chunk: chunks must be a positive int, got {chunks!r}")
        n = self.shape[normalize_dim(dim, self.ndim)]
        step = -(-n // chunks) if n else 1
        return self.split(step, dim)

    def unbind(self, dim=0):
        d = normalize_dim(dim, self.ndim)
        return tuple(p.squeeze(d) for p in self.split(1, d)) if self.shape[d] else ()

    def tril(self, diagonal=0):
        if self.ndim < 2:
            raise ShapeError(f"tril: input tensor must have at least 2 dimensions, got {self.ndim}")
        return S.Tril.apply(self, int(diagonal), True)

    def triu(self, diagonal=0):
        if self.ndim < 2:
            raise ShapeError(f"triu: input tensor must have at least 2 dimensions, got {self.ndim}")
        return S.Tril.apply(self, int(diagonal), False)


# --- helpers used above and by the module-level functions
def _private_gradient(g):
    """True when the engine holds the only references to gradient g and to its memory, so a leaf
    may keep the buffer instead of copying it. The counts are the references this check itself
    makes: g from the engine's buffer list, _accumulate_grad's and this function's parameters and
    getrefcount's argument; the array from g, the local name and getrefcount's argument. Anything
    more (a user's root gradient, a hook that kept it, a retained grad, a second leaf given the
    same tensor, a view) makes it shared, and it is copied."""
    d = g._data
    return (isinstance(d, np.ndarray) and d.base is None and d.flags.writeable and d.flags.c_contiguous
            and sys.getrefcount(g) <= 4 and sys.getrefcount(d) <= 3)


def parse_to_args(args, kwargs):
    """(device or None, dtype or None) from the arguments of `.to(...)` (Tensor and Module)."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, D.dtype) or a in (float, int, bool):
            dtype = a
        elif isinstance(a, str) or hasattr(a, "type"):
            device = a
        else:
            raise TypeError(f"to() received an invalid argument of type {type(a).__name__}")
    return as_device(device), D.as_dtype(dtype, "to")


class _ViewWrite(Function):
    """new_base = base with fn(base) replaced by `value` (memory already holds it: a view was written
    in place). d/dbase = g with the view region zeroed; d/dvalue = fn(g)."""

    @staticmethod
    def forward(ctx, base, value, fn):
        ctx.fn = fn
        return Tensor._make(base._data, base.device)

    @staticmethod
    def backward(ctx, g):
        return _ZeroView.apply(g, ctx.fn), ctx.fn(g), None


class _ZeroView(Function):
    @staticmethod
    def forward(ctx, g, fn):
        ctx.fn = fn
        out = g.clone()
        fn(out)._write(Ellipsis, 0)
        return out

    @staticmethod
    def backward(ctx, gg):
        return _ZeroView.apply(gg, ctx.fn), None


def _new_nograd(data, device):
    return Tensor._make(data, device)


def zeros_like_int(t):
    B = backend_for(t.device)
    return _new_nograd(B.zeros(t.shape, dtype=np.int64), t.device)


def _const(value, dtype, device):
    return Tensor._make(backend_for(device).asarray(value, dtype=dtype.np), device)


def _count(shape, dims):
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _infer_shape(shape, numel):
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if -1 in shape:
        if known == 0 or numel % known:
            raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if s == -1 else s for s in shape)
    elif known != numel:
        raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def _broadcast_shape(a, b, what):
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        raise ShapeError(
            f"{what}: the shapes {list(a)} and {list(b)} are not broadcastable"
        ) from None


def _device_of(a, b, what):
    da = a.device if isinstance(a, Tensor) else None
    db = b.device if isinstance(b, Tensor) else None
    if da is not None and db is not None and da != db:
        # a 0-d CPU tensor may join a CUDA op, as in PyTorch
        if a.ndim == 0 and da.type == "cpu":
            return db
        if b.ndim == 0 and db.type == "cpu":
            return da
        raise DeviceError(
            f"{what}: Expected all tensors to be on the same device, but found at least two devices, {da} and {db}!"
        )
    return da or db


def _operand(x, dtype, device):
    if isinstance(x, Tensor):
        if x.device != device:
            x = x.to(device=device)
        return x if x.dtype == dtype else x.to(dtype=dtype)
    return _const(x, dtype, device)


def _check_operand(x, what):
    if isinstance(x, Tensor) or _is_scalar(x):
        return
    raise TypeError(f"{what}: unsupported operand type {type(x).__name__} (expected a Tensor or a number)")


def _operands(a, b, what, true_div=False):
    _check_operand(a, what)
    _check_operand(b, what)
    dtype = D.result_type(a, b)
    if true_div and not dtype.is_floating_point:
        dtype = D.get_default_dtype()
    device = _device_of(a, b, what)
    a, b = _operand(a, dtype, device), _operand(b, dtype, device)
    _broadcast_shape(a.shape, b.shape, what)
    return a, b


def _binary(cls, a, b, what, true_div=False):
    if not (isinstance(a, Tensor) or _is_scalar(a)) or not (isinstance(b, Tensor) or _is_scalar(b)):
        if isinstance(a, (np.ndarray, list)) or isinstance(b, (np.ndarray, list)):
            from .creation import tensor

            a = tensor(a) if not isinstance(a, Tensor) and not _is_scalar(a) else a
            b = tensor(b) if not isinstance(b, Tensor) and not _is_scalar(b) else b
        else:
            return NotImplemented
    if cls is E.Pow and _is_scalar(b) and isinstance(a, Tensor) and not a.dtype.is_floating_point and b < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    a, b = _operands(a, b, what, true_div)
    if a.dtype == D.bool_ and cls in (E.Sub,):
        raise DTypeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use `^` or logical_xor() instead.")
    return cls.apply(a, b)


def _nograd_binary(name, a, b):
    a, b = _operands(a, b, name)
    return _new_nograd(getattr(backend_for(a.device), name)(a._data, b._data), a.device)


def _compare(name, a, b):
    if not (isinstance(b, Tensor) or _is_scalar(b)):
        return NotImplemented
    a, b = _operands(a, b, name)
    return _new_nograd(getattr(backend_for(a.device), name)(a._data, b._data), a.device)


def _logical(name, a, b):
    if not (isinstance(b, Tensor) or isinstance(b, (bool, np.bool_))):
        return NotImplemented
    a, b = _operands(a, b, name)
    if a.dtype != D.bool_:
        raise DTypeError(f"{name}: only bool tensors are supported, got {a.dtype.name}")
    return _new_nograd(getattr(backend_for(a.device), name)(a._data, b._data), a.device)


def _check_index_tensor(index, t, what):
    if not isinstance(index, Tensor):
        raise TypeError(f"{what}: expected index to be a Tensor, got {type(index).__name__}")
    if index.dtype != D.int64:
        raise DTypeError(f"{what}(): Expected dtype int64 for index, got {index.dtype.name}")
    if index.device != t.device:
        raise DeviceError(f"{what}: index is on {index.device} but input is on {t.device}")


def _check_index_range(index, size, what):
    if index.numel() == 0:
        return
    lo, hi = int(index.amin().item()), int(index.amax().item())
    if lo < 0 or hi >= size:
        raise IndexRangeError(f"{what}: index {lo if lo < 0 else hi} is out of bounds for dimension with size {size}")


def _index(index, t):
    """Turn an index into one the backend understands: tensors become backend arrays."""
    items = index if isinstance(index, tuple) else (index,)
    B = backend_for(t.device)
    out = []
    for i in items:
        if isinstance(i, Tensor):
            if i.dtype.is_floating_point:
                raise IndexError("tensors used as indices must be long, int or bool tensors")
            if i.device != t.device:
                raise DeviceError(f"indices are on {i.device} but the indexed tensor is on {t.device}")
            out.append(i._data)
        elif isinstance(i, (list, np.ndarray)):
            arr = np.asarray(i)
            if arr.size == 0:
                arr = arr.astype(np.int64)
            elif arr.dtype.kind not in "iub":
                raise IndexError("tensors used as indices must be long, int or bool tensors")
            out.append(B.from_numpy(arr))
        elif isinstance(i, slice):
            for name in ("start", "stop", "step"):
                v = getattr(i, name)
                if isinstance(v, Tensor):
                    v = int(v)
                if v is not None and not isinstance(v, (int, np.integer)):
                    raise TypeError(f"slice indices must be integers or None, got {type(v).__name__}")
            if i.step is not None and int(i.step) <= 0:
                raise ValueError("step must be greater than zero")
            out.append(slice(*(int(v) if v is not None else None for v in (i.start, i.stop, i.step))))
        elif i is None or i is Ellipsis or isinstance(i, (bool, np.bool_, int, np.integer)):
            out.append(i)
        else:
            raise TypeError(f"invalid index of type {type(i).__name__}")
    if not any(i is Ellipsis for i in out):
        out.append(Ellipsis)  # t[0] on a 1-D tensor: a 0-d view, not a copied scalar
    return tuple(out)


# --- module-level functions that need Tensor (the rest live in functions.py)
def where(condition, input, other):
    if not isinstance(condition, Tensor) or condition.dtype != D.bool_:
        raise DTypeError("where: expected condition to be a bool Tensor")
    _check_operand(input, "where")
    _check_operand(other, "where")
    dtype = D.result_type(input, other)
    device = condition.device
    for x in (input, other):
        device = _device_of(condition, x, "where")
    a, b = _operand(input, dtype, device), _operand(other, dtype, device)
    _broadcast_shape(_broadcast_shape(condition.shape, a.shape, "where"), b.shape, "where")
    return E.Where.apply(condition, a, b)


def maximum(a, b):
    return _binary(E.Maximum, a, b, "maximum")


def minimum(a, b):
    return _binary(E.Minimum, a, b, "minimum")


def matmul(a, b):
    """1-D, 2-D and batched (broadcast) matrix products, with torch.matmul's rules."""
    for name, x in (("input", a), ("other", b)):
        if not isinstance(x, Tensor):
            raise TypeError(f"matmul: expected {name} to be a Tensor, got {type(x).__name__}")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"matmul: both arguments need to be at least 1D, but they are {a.ndim}D and {b.ndim}D"
        )
    if a.dtype != b.dtype:
        raise DTypeError(f"matmul: expected both operands to have the same dtype, but got {a.dtype.name} and {b.dtype.name}")
    if a.dtype == D.bool_:
        raise DTypeError("matmul: bool tensors are not supported")
    _device_of(a, b, "matmul")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ShapeError(
            f"matmul: shapes {list(a.shape)} and {list(b.shape)} cannot be multiplied "
            f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})"
        )
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    _broadcast_shape(a2.shape[:-2], b2.shape[:-2], "matmul (batch dims)")
    out = L.Matmul.apply(a2, b2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    if a.ndim == 1:
        out = out.squeeze(-1 if b.ndim == 1 else -2)
    return out
