"""kg.nn.functional (imported as F): PyTorch's functional API over kernelgrad's ops."""
from .. import _dtype as D
from .._errors import DTypeError, ShapeError
from ..ops import linalg as L
from ..tensor import Tensor


def linear(input, weight, bias=None):
    """y = x W^T + b, x: (..., in_features), W: (out_features, in_features), b: (out_features,)."""
    for name, x in (("input", input), ("weight", weight)):
        if not isinstance(x, Tensor):
            raise TypeError(f"linear: expected {name} to be a Tensor, got {type(x).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"linear: expected bias to be a Tensor or None, got {type(bias).__name__}")
    if weight.ndim != 2:
        raise ShapeError(f"linear: expected weight to be 2-D (out_features, in_features), got shape {list(weight.shape)}")
    if input.ndim == 0:
        raise ShapeError("linear: input must be at least 1-D, got a 0-d tensor")
    if input.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input has {input.shape[-1]} features in its last dim but weight expects "
            f"{weight.shape[1]} (weight shape {list(weight.shape)})"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: expected bias of shape [{weight.shape[0]}], got {list(bias.shape)}")
    for name, x in (("weight", weight), ("bias", bias)):
        if x is not None and x.dtype != input.dtype:
            raise DTypeError(f"linear: {name} is {x.dtype.name} but input is {input.dtype.name}")
        if x is not None and x.device != input.device:
            raise RuntimeError(f"linear: {name} is on {x.device} but input is on {input.device}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"linear: expected a floating point input, got {input.dtype.name}")
    if input.ndim == 1:
        return L.Linear.apply(input.unsqueeze(0), weight, bias).squeeze(0)
    return L.Linear.apply(input, weight, bias)


def one_hot(tensor, num_classes=-1):
    """(...,) int64 class indices -> (..., num_classes) int64 with a 1 at each index."""
    from ..creation import arange

    if not isinstance(tensor, Tensor) or tensor.dtype != D.int64:
        raise DTypeError("one_hot is only applicable to index tensor of dtype int64")
    if tensor.numel() == 0 and num_classes == -1:
        raise RuntimeError("one_hot: can not infer total number of classes from empty tensor")
    lo = int(tensor.min().item()) if tensor.numel() else 0
    hi = int(tensor.max().item()) if tensor.numel() else -1
    if lo < 0:
        raise RuntimeError("one_hot: Class values must be non-negative.")
    if num_classes == -1:
        num_classes = hi + 1
    elif hi >= num_classes:
        raise RuntimeError(f"one_hot: Class values must be smaller than num_classes ({num_classes}), got {hi}")
    classes = arange(num_classes, device=tensor.device)
    return (tensor.unsqueeze(-1) == classes).long()


def relu(input):
    return input.relu()


def sigmoid(input):
    return input.sigmoid()


def tanh(input):
    return input.tanh()
