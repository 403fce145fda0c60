"""Tensor creation: from data, filled, ranges, random."""
import numbers

import numpy as np

from . import _dtype as D
from ._device import CPU, as_device
from ._errors import DataError
from .backend import backend_for
from .random import _gen
from .tensor import Tensor


def _shape(size, what):
    """`f(2, 3)`, `f((2, 3))` and `f([2, 3])` all mean shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor) and s.numel() == 1 and not s.dtype.is_floating_point:
            s = s.item()
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{what}: size must be a sequence of ints, got {type(s).__name__}")
        if s < 0:
            raise RuntimeError(f"{what}: trying to create tensor with negative dimension {s}: {list(size)}")
        out.append(int(s))
    return tuple(out)


def _finish(data, device, requires_grad):
    t = Tensor._make(data, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _on(device):
    device = as_device(device) or CPU
    return device, backend_for(device)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays or tensors)."""
    dtype = D.as_dtype(dtype, "tensor")
    if isinstance(data, Tensor):
        src_device = data.device
        arr = backend_for(src_device).to_numpy(data._data).copy()
        device = device if device is not None else src_device
    else:
        arr = _to_numpy(data, dtype)
    if dtype is None:
        dtype = D.from_numpy_dtype(arr.dtype, "tensor")
    device, B = _on(device)
    return _finish(B.from_numpy(np.array(arr, dtype=dtype.np, copy=True)), device, requires_grad)


def _to_numpy(data, dtype):
    """Infer the dtype like PyTorch: Python floats -> default float dtype, ints -> int64."""
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, (np.generic, numbers.Number)):
        if isinstance(data, complex):
            raise TypeError("tensor: complex numbers are not supported")
        if isinstance(data, int) and not -2**63 <= data < 2**63:
            raise OverflowError(f"tensor: value {data} does not fit in int64")
        arr = np.asarray(data)
        if dtype is None and arr.dtype.kind == "f" and not isinstance(data, np.generic):
            arr = arr.astype(D.get_default_dtype().np)
        return arr
    if isinstance(data, (list, tuple)):
        if any(isinstance(x, Tensor) for x in data):
            data = [x.tolist() if isinstance(x, Tensor) else x for x in data]
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"tensor: expected a regular (rectangular) nested sequence: {e}") from None
        if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
            raise OverflowError(f"tensor: value {int(arr.max())} does not fit in int64")
        if arr.dtype == object and any(isinstance(v, int) and not isinstance(v, bool) for v in np.ravel(arr)):
            raise OverflowError("tensor: an integer value does not fit in int64")
        if arr.dtype == object or arr.dtype.kind in "USc":
            raise DataError(f"tensor: could not infer a numeric dtype from {type(data).__name__} data")
        if dtype is None and arr.dtype.kind == "f":
            arr = arr.astype(D.get_default_dtype().np)
        if arr.size == 0 and dtype is None:
            arr = arr.astype(D.get_default_dtype().np)
        return arr
    if hasattr(data, "__array__"):
        return np.asarray(data)
    raise TypeError(f"tensor: could not convert data of type {type(data).__name__} to a tensor")


def as_tensor(data, dtype=None, device=None):
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype) and (device is None or data.device == device):
        return data
    if isinstance(data, np.ndarray) and (device is None or as_device(device) == CPU):
        t = from_numpy(data)
        return t if dtype is None else t.to(dtype=dtype)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(a):
    """A CPU tensor sharing memory with the NumPy array `a`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype not in D._FROM_NP:
        raise TypeError(
            f"from_numpy: can't convert an array of dtype {a.dtype}; supported: float16, float32, float64, int64, bool"
        )
    return Tensor._make(a, CPU)


def from_dlpack(obj):
    """A CPU tensor sharing memory with any object that implements the DLPack protocol."""
    if isinstance(obj, Tensor):
        return obj
    return from_numpy(np.from_dlpack(obj))


def _filled(what, size, value, dtype, device, requires_grad):
    dtype = D.as_dtype(dtype, what)
    if dtype is None:
        dtype = D.get_default_dtype() if value is None else D.scalar_dtype(value)
    device, B = _on(device)
    shape = _shape(size, what)
    data = B.empty(shape, dtype=dtype.np) if value is None else B.full(shape, value, dtype=dtype.np)
    return _finish(data, device, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _filled("zeros", size, 0.0, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _filled("ones", size, 1.0, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _filled("empty", size, None, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if isinstance(size, (int, np.integer)):
        size = (size,)
    return _filled("full", (tuple(size),), fill_value, dtype, device, requires_grad)


def _like(t, what):
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(t).__name__}")


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    _like(t, "zeros_like")
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    _like(t, "ones_like")
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    _like(t, "empty_like")
    return empty(t.shape, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    _like(t, "full_like")
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"arange: {name} must be a number, got {type(v).__name__}")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign (start={start}, end={end}, step={step})")
    dtype = D.as_dtype(dtype, "arange")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = D.int64 if is_int else D.get_default_dtype()
    device, B = _on(device)
    return _finish(B.arange(start, end, step, dtype.np), device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    dtype = D.as_dtype(dtype, "linspace") or D.get_default_dtype()
    device, B = _on(device)
    return _finish(B.linspace(start, end, steps, dtype.np), device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    m = n if m is None else m
    for name, v in (("n", n), ("m", m)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"eye: {name} must be a non-negative int, got {v!r}")
    dtype = D.as_dtype(dtype, "eye") or D.get_default_dtype()
    device, B = _on(device)
    return _finish(B.eye(n, m, dtype=dtype.np), device, requires_grad)


# --- random
def _random(what, size, dtype, device, generator, requires_grad, draw):
    dtype = D.as_dtype(dtype, what) or D.get_default_dtype()
    if not dtype.is_floating_point:
        raise TypeError(f"{what}: expected a floating point dtype, got {dtype.name}")
    device, B = _on(device)
    data = draw(B, _gen(generator), _shape(size, what), dtype.np)
    return _finish(data, device, requires_grad)


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return _random("rand", size, dtype, device, generator, requires_grad, lambda B, g, s, d: B.uniform(g, s, d))


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    return _random("randn", size, dtype, device, generator, requires_grad, lambda B, g, s, d: B.normal(g, s, d))


def randint(low, high=None, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniform on [low, high); `randint(high, size)` and `randint(low, high, size)`."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: missing the size argument (a tuple)")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    dtype = D.as_dtype(dtype, "randint") or D.int64
    device, B = _on(device)
    data = B.integers(_gen(generator), low, high, _shape((tuple(size),), "randint"))
    if dtype != D.int64:
        data = B.astype(data, dtype.np)
    return _finish(data, device, requires_grad)


def randperm(n, generator=None, dtype=None, device=None):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be a non-negative int, got {n!r}")
    device, B = _on(device)
    data = B.permutation(_gen(generator), int(n))
    dtype = D.as_dtype(dtype, "randperm") or D.int64
    return _finish(B.astype(data, dtype.np), device, False)
