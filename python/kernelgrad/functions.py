"""Module-level forms of the tensor ops (`kg.exp(x)`, `kg.cat(...)`, ...)."""

from .autograd.grad_mode import no_grad

from . import _dtype as D
from ._errors import ShapeError
from .ops import shape as S
from .ops._util import normalize_dim
from .tensor import Tensor, _device_of, matmul, maximum, minimum, where  # noqa: F401


def _t(x, what):
    if not isinstance(x, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(x).__name__}")
    return x


def _method(name):
    def fn(input, *args, **kwargs):
        return getattr(_t(input, name), name)(*args, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"kg.{name}(input, ...) is input.{name}(...)."
    return fn


_METHODS = ["exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sign", "sin", "cos", "tanh", "sigmoid", "relu",
              "clamp", "clip", "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin",
              "prod", "logsumexp", "norm", "all", "any", "reshape", "flatten", "unflatten", "squeeze",
              "unsqueeze", "permute", "transpose", "swapaxes", "t", "split", "chunk", "unbind", "gather",
              "scatter_add", "masked_fill", "tril", "triu", "square", "neg", "isnan", "isfinite", "clone",
              "add", "sub", "mul", "div", "repeat", "expand"]
for _name in _METHODS:
    globals()[_name] = _method(_name)

__all__ = _METHODS + ["negative", "multiply", "subtract", "divide", "pow", "bmm", "mm", "dot", "cat",
                      "concatenate", "stack", "allclose", "isclose", "equal", "is_tensor", "numel", "matmul", "maximum",
                      "minimum", "where"]

negative = globals()["neg"]
multiply = globals()["mul"]
subtract = globals()["sub"]
divide = globals()["div"]


def pow(input, exponent):
    return input ** exponent


def bmm(input, mat2):
    """(B, N, M) @ (B, M, P) -> (B, N, P); no broadcasting."""
    for name, x in (("input", input), ("mat2", mat2)):
        _t(x, "bmm")
        if x.ndim != 3:
            raise ShapeError(f"bmm: expected {name} to be a 3-D tensor, got {x.ndim}-D")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"bmm: batch sizes differ: {input.shape[0]} and {mat2.shape[0]}")
    return matmul(input, mat2)


def mm(input, mat2):
    for name, x in (("input", input), ("mat2", mat2)):
        _t(x, "mm")
        if x.ndim != 2:
            raise ShapeError(f"mm: expected {name} to be a 2-D tensor, got {x.ndim}-D")
    return matmul(input, mat2)


def dot(input, other):
    for name, x in (("input", input), ("other", other)):
        _t(x, "dot")
        if x.ndim != 1:
            raise ShapeError(f"dot: expected {name} to be a 1-D tensor, got {x.ndim}-D")
    return matmul(input, other)


def cat(tensors, dim=0):
    """Join tensors along an existing dim; dtypes promote as in PyTorch."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError("cat: expected a sequence of Tensors")
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of Tensors")
    for k, t in enumerate(tensors):
        _t(t, f"cat (element {k})")
    ref = tensors[0]
    d = normalize_dim(dim, ref.ndim)
    if ref.ndim == 0:
        raise ShapeError("cat: zero-dimensional tensor (at position 0) cannot be concatenated")
    dtype = ref.dtype
    for k, t in enumerate(tensors):
        _device_of(ref, t, "cat")
        if t.ndim != ref.ndim:
            raise ShapeError(f"cat: Tensors must have same number of dimensions: got {ref.ndim} and {t.ndim}")
        for i in range(ref.ndim):
            if i != d and t.shape[i] != ref.shape[i]:
                raise ShapeError(
                    f"cat: Sizes of tensors must match except in dimension {d}. Expected size {ref.shape[i]} "
                    f"but got size {t.shape[i]} for tensor number {k} in the list."
                )
        dtype = D.promote(dtype, t.dtype)
    tensors = [t.to(dtype=dtype) for t in tensors]
    return S.Cat.apply(d, *tensors)


concatenate = cat


def stack(tensors, dim=0):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError("stack: expected a non-empty sequence of Tensors")
    ref = _t(tensors[0], "stack")
    for k, t in enumerate(tensors):
        if _t(t, "stack").shape != ref.shape:
            raise ShapeError(
                f"stack expects each tensor to be equal size, but got {list(ref.shape)} at entry 0 and "
                f"{list(t.shape)} at entry {k}"
            )
    d = normalize_dim(dim, ref.ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], d)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other| elementwise (equal infinities are close; NaN only with
    equal_nan), computed on the tensors' device."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("isclose: expected input and other to be Tensors")
    with no_grad():
        a, b = input.detach(), other.detach()
        if not a.is_floating_point() and not b.is_floating_point():
            return a == b
        finite = (a - b).abs() <= atol + rtol * b.abs()
        close = (a == b) | (finite & a.isfinite() & b.isfinite())
        if equal_nan:
            close = close | (a.isnan() & b.isnan())
        return close


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol=rtol, atol=atol, equal_nan=equal_nan).all())


def equal(input, other):
    return input.shape == other.shape and bool((input == other).all())


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(input):
    return _t(input, "numel").numel()
