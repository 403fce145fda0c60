"""kg.nn.functional (imported as F): PyTorch's functional API over kernelgrad's ops."""
import math
import numbers
import warnings

import numpy as np

from .. import _dtype as D
from .._errors import DeviceError, DTypeError, ShapeError
from ..autograd.grad_mode import no_grad
from ..ops import conv as _conv
from ..ops import linalg as L
from ..ops import pool as P
from ..ops import norm as _norm
from ..ops import softmax as _softmax
from ..ops._util import normalize_dim
from ..tensor import Tensor, where
from . import _functions as _fn


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
            raise DeviceError(f"linear: {name} is on {x.device} but input is on {input.device}")
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


# --- activations (the module forms are in nn/modules/activation.py)
def _check_input(input, what):
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{what}: expected a floating point input, got {input.dtype.name}")
    return input


def relu6(input, inplace=False):
    return hardtanh(input, 0.0, 6.0, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val); the gradient is 1 strictly inside the interval."""
    _check_input(input, "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    out = _fn.Hardtanh.apply(input, min_val, max_val)
    return _inplace(input, out, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    _check_input(input, "leaky_relu")
    return _inplace(input, where(input > 0, input, input * negative_slope), inplace)


def prelu(input, weight):
    """max(0, x) + weight * min(0, x); weight has 1 element, or one per channel (dim 1)."""
    _check_input(input, "prelu")
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: expected weight to be a Tensor, got {type(weight).__name__}")
    n = weight.numel()
    if n != 1:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if weight.ndim != 1 or n != channels:
            raise ShapeError(
                f"prelu: mismatch of parameter numbers and input channel size. Found parameter numbers = {n} "
                f"and channel size = {channels}."
            )
        weight = weight.reshape((n,) + (1,) * (input.ndim - 2))
    else:
        weight = weight.reshape(())
    return where(input > 0, input, weight * input)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha (e^x - 1) otherwise (e^x taken of min(x, 0): no overflow, no nan gradient)."""
    _check_input(input, "elu")
    return _inplace(input, where(input > 0, input, alpha * (input.clamp(max=0).exp() - 1)), inplace)


def gelu(input, approximate="none"):
    """x Phi(x) with Phi the standard normal CDF (exact, via erf); approximate="tanh" uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    _check_input(input, "gelu")
    if approximate == "none":
        return _fn.Gelu.apply(input)
    if approximate == "tanh":
        inner = math.sqrt(2 / math.pi) * (input + 0.044715 * input * input * input)
        return 0.5 * input * (1 + inner.tanh())
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(input, inplace=False):
    _check_input(input, "silu")
    return _inplace(input, input * input.sigmoid(), inplace)


def mish(input, inplace=False):
    _check_input(input, "mish")
    return _inplace(input, input * _fn.Log1pExp.apply(input).tanh(), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold."""
    _check_input(input, "softplus")
    bx = input * beta
    return where(bx > threshold, input, _fn.Log1pExp.apply(bx) / beta)


def softsign(input):
    _check_input(input, "softsign")
    return input / (1 + input.abs())


def _inplace(input, out, inplace):
    return input.copy_(out) if inplace else out


# --- dropout and embedding
def dropout(input, p=0.5, training=True, inplace=False):
    """Inverted dropout: each element is zeroed with probability p (a mask drawn from kg.rand on the
    input's device) and the survivors are scaled by 1/(1-p), so the expectation is unchanged.
    training=False (or p=0) returns the input."""
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout: expected input to be a Tensor, got {type(input).__name__}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return _inplace(input, input * 0, inplace)
    from ..creation import rand

    keep = rand(input.shape, dtype=input.dtype, device=input.device) < 1 - p
    return _inplace(input, input * (keep.to(dtype=input.dtype) * (1 / (1 - p))), inplace)


def embedding(input, weight, padding_idx=None):
    """weight[input]: rows of the (num_embeddings, embedding_dim) table picked by int64 indices of
    any shape. The row at padding_idx gets no gradient."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("embedding: expected input and weight to be Tensors")
    if input.dtype != D.int64:
        raise DTypeError(
            f"embedding: Expected tensor for argument #1 'indices' to have scalar type Long; but got {input.dtype.name} instead"
        )
    if weight.ndim != 2:
        raise ShapeError(f"embedding: 'weight' must be 2-D, got shape {list(weight.shape)}")
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within num_embeddings ({num})")
        padding_idx %= num
    if input.numel():
        lo, hi = int(input.amin().item()), int(input.amax().item())
        if lo < 0 or hi >= num:
            raise IndexError(f"embedding: index {lo if lo < 0 else hi} is out of range for {num} embeddings")
    out = weight[input]
    if padding_idx is not None and weight.requires_grad:
        out = where((input == padding_idx).unsqueeze(-1), out.detach(), out)
    return out


# --- losses
def _reduce(loss, reduction):
    """Apply a reduction already validated by _check_reduction."""
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _check_reduction(reduction, allowed=("none", "mean", "sum")):
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _loss_inputs(input, target, what, broadcast_warning=True):
    """Both Tensors; a target of a different size broadcasts with a warning (PyTorch's behaviour
    for the regression losses) or raises ValueError (broadcast_warning=False)."""
    for name, x in (("input", input), ("target", target)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{what}: expected {name} to be a Tensor, got {type(x).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{what}: expected a floating point input, got {input.dtype.name}")
    if target.shape != input.shape:
        if not broadcast_warning:
            raise ShapeError(
                f"{what}: Using a target size ({list(target.shape)}) that is different to the input size "
                f"({list(input.shape)}) is deprecated. Please ensure they have the same size."
            )
        try:
            np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ShapeError(
                f"{what}: the size of target {list(target.shape)} does not broadcast with the size of input "
                f"{list(input.shape)}"
            ) from None
        warnings.warn(
            f"{what}: Using a target size ({list(target.shape)}) that is different to the input size "
            f"({list(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
    if target.dtype != input.dtype:
        target = target.to(dtype=input.dtype)
    return input, target


def mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    input, target = _loss_inputs(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    _check_reduction(reduction)
    input, target = _loss_inputs(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta = 0: l1_loss)."""
    _check_reduction(reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss does not support negative values for beta, got {beta}")
    input, target = _loss_inputs(input, target, "smooth_l1_loss")
    d = (input - target).abs()
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere."""
    _check_reduction(reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got {delta}")
    input, target = _loss_inputs(input, target, "huber_loss")
    d = (input - target).abs()
    return _reduce(where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-w (y log x + (1 - y) log(1 - x)) on probabilities x in [0, 1]; each log is clamped to
    >= -100, so x = 0 or 1 gives a finite loss and gradient."""
    _check_reduction(reduction)
    input, target = _loss_inputs(input, target, "binary_cross_entropy", broadcast_warning=False)
    if input.numel():
        lo, hi = input.detach().amin().item(), input.detach().amax().item()
        if not (0 <= lo and hi <= 1):
            raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1")
    loss = _fn.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _weight(weight, input, "binary_cross_entropy")
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """BCE of sigmoid(x) computed from the logits x without forming sigmoid(x):
    (1 - y) x + (1 + (pos_weight - 1) y) softplus(-x), softplus(-x) = -log sigmoid(x) (stable)."""
    _check_reduction(reduction)
    input, target = _loss_inputs(input, target, "binary_cross_entropy_with_logits", broadcast_warning=False)
    log_sig_neg = _fn.Log1pExp.apply(-input)  # -log sigmoid(x)
    if pos_weight is not None:
        pw = _weight(pos_weight, input, "binary_cross_entropy_with_logits", "pos_weight")
        loss = (1 - target) * input + (1 + (pw - 1) * target) * log_sig_neg
    else:
        loss = (1 - target) * input + log_sig_neg
    if weight is not None:
        loss = loss * _weight(weight, input, "binary_cross_entropy_with_logits")
    return _reduce(loss, reduction)


def _weight(w, input, what, name="weight"):
    if not isinstance(w, Tensor):
        raise TypeError(f"{what}: expected {name} to be a Tensor, got {type(w).__name__}")
    try:
        np.broadcast_shapes(w.shape, input.shape)
    except ValueError:
        raise ShapeError(f"{what}: {name} of shape {list(w.shape)} does not broadcast to input shape {list(input.shape)}") from None
    return w if w.dtype == input.dtype else w.to(dtype=input.dtype)


def kl_div(input, target, reduction="mean", log_target=False):
    """Pointwise KL divergence with input = log q: y (log y - input), or e^y (y - input) when the
    target is given as log probabilities too. "batchmean" divides the sum by the batch size."""
    _check_reduction(reduction, ("none", "mean", "sum", "batchmean"))
    input, target = _loss_inputs(input, target, "kl_div")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target > 0  # y log y is taken as 0 at y = 0
        loss = where(positive, target * where(positive, target, 1.0).log(), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support size."
            "'batchmean' divides only by the batch size, and aligns with the KL div math definition.",
            UserWarning,
            stacklevel=2,
        )
    return _reduce(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    """x where y = 1, max(0, margin - x) where y = -1."""
    _check_reduction(reduction)
    input, target = _loss_inputs(input, target, "hinge_embedding_loss")
    margin_clamp = (margin - input).clamp(min=0)
    loss = where(target != 1, margin_clamp, 0.0) + where(target != -1, input, 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    """max(0, -y (x1 - x2) + margin)."""
    _check_reduction(reduction)
    for name, x in (("input1", input1), ("input2", input2), ("target", target)):
        if not isinstance(x, Tensor):
            raise TypeError(f"margin_ranking_loss: expected {name} to be a Tensor, got {type(x).__name__}")
    if not (input1.ndim == input2.ndim == target.ndim):
        raise ShapeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: input1: "
            f"{list(input1.shape)}, input2: {list(input2.shape)}, target: {list(target.shape)} "
        )
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 x2) / (max(|x1|, eps) max(|x2|, eps)) along dim (x1 and x2 broadcast)."""
    for name, x in (("x1", x1), ("x2", x2)):
        _check_input(x, "cosine_similarity")
    n1 = x1.norm(dim=dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(dim=dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


# --- convolution (ops/conv.py; the modules are in nn/modules/conv.py)
_CONV_MINIMUM = {
    "stride": (1, "non-positive stride is not supported"),
    "dilation": (1, "dilation should be greater than zero"),
    "padding": (0, "negative padding is not supported"),
    "output_padding": (0, "negative output_padding is not supported"),
}


def _conv_pair(value, name, what):
    """An int, or a sequence of 1 or 2 ints, as an (h, w) pair checked against _CONV_MINIMUM."""
    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and all(is_int(v) for v in value) and len(value) in (1, 2):
        pair = (int(value[0]), int(value[-1]))
    elif isinstance(value, (tuple, list)) and all(is_int(v) for v in value):
        raise ShapeError(
            f"{what}: expected {name} to be a single integer value or a list of 2 values to match the "
            f"convolution dimensions, but got {name}={list(value)}"
        )
    else:
        raise TypeError(f"{what}: expected {name} to be an int or a pair of ints, got {value!r}")
    minimum, message = _CONV_MINIMUM[name]
    if min(pair) < minimum:
        raise ShapeError(f"{what}: {message}, got {name}={pair}")
    return pair


def _conv_operands(what, input, weight, bias, groups, weight_layout):
    """Types, dtypes, devices and ranks shared by conv2d and conv_transpose2d; returns 4-D input."""
    for name, t in (("input", input), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected {name} to be a Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{what}: expected bias to be a Tensor or None, got {type(bias).__name__}")
    if input.dtype not in (D.float32, D.float64):
        raise DTypeError(f"{what}: expected input to be float32 or float64, got {input.dtype.name}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise DTypeError(f"{what}: expected {name} to have the dtype of input ({input.dtype.name}), got {t.dtype.name}")
        if t is not None and t.device != input.device:
            raise DeviceError(f"{what}: {name} is on {t.device} but input is on {input.device}")
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool):
        raise TypeError(f"{what}: expected groups to be an int, got {groups!r}")
    if groups < 1:
        raise ShapeError(f"{what}: non-positive groups is not supported, got groups={groups}")
    if input.ndim not in (3, 4):
        raise ShapeError(
            f"{what}: Expected 3D (unbatched) or 4D (batched) input to {what}, but got input of size: {list(input.shape)}"
        )
    if weight.ndim != 4:
        raise ShapeError(f"{what}: expected weight to be 4-D {weight_layout}, got weight of size {list(weight.shape)}")
    return input if input.ndim == 4 else input.unsqueeze(0)


def _conv_bias_shape(what, bias, channels, weight):
    if bias is not None and bias.shape != (channels,):
        raise ShapeError(
            f"{what}: Given weight of size {list(weight.shape)}, expected bias to be 1-dimensional with "
            f"{channels} elements, but got bias of size {list(bias.shape)} instead"
        )


def _conv2d_padding(padding, stride, extent, what):
    """((top, left), (bottom, right)) for conv2d's padding; extent = the dilated kernel size."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ShapeError(f"{what}: padding='same' is not supported for strided convolutions")
            # dilation * (kernel - 1) in total, the odd one (if any) at the bottom / right, as PyTorch
            return tuple((e - 1) // 2 for e in extent), tuple(e - 1 - (e - 1) // 2 for e in extent)
        raise ShapeError(f"{what}: Invalid padding string '{padding}', should be one of ('valid', 'same')")
    ph, pw = _conv_pair(padding, "padding", what)
    return (ph, pw), (ph, pw)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of input (N, C, H, W) or (C, H, W) with weight (K, C/groups, kH, kW), + bias (K,):

        out[n, k, oh, ow] = bias[k] + sum_{c, r, s} weight[k, c, r, s] * input[n, g*C/groups + c, oh*sh - ph + r*dh, ow*sw - pw + s*dw]

    (g: the group of k; zeros outside the image). stride, dilation: int or pair; padding: int, pair,
    "valid" or "same" (stride 1; an odd total padding puts the extra row / column at the bottom / right)."""
    what = "conv2d"
    x = _conv_operands(what, input, weight, bias, groups, "(out_channels, in_channels / groups, kH, kW)")
    stride, dilation = _conv_pair(stride, "stride", what), _conv_pair(dilation, "dilation", what)
    _, C, H, W = x.shape
    K, Cg, R, S = weight.shape
    if K % groups != 0:
        raise ShapeError(
            f"{what}: Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
            f"weight of size {list(weight.shape)} instead"
        )
    if C != Cg * groups:
        raise ShapeError(
            f"{what}: Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(x.shape)} to "
            f"have {Cg * groups} channels, but got {C} channels instead"
        )
    _conv_bias_shape(what, bias, K, weight)
    extent = (dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1)
    (top, left), (bottom, right) = _conv2d_padding(padding, stride, extent, what)
    padded = (H + top + bottom, W + left + right)
    if padded[0] < extent[0] or padded[1] < extent[1] or R < 1 or S < 1:
        raise ShapeError(
            f"{what}: Calculated padded input size per channel: ({padded[0]} x {padded[1]}). Kernel size: "
            f"({extent[0]} x {extent[1]}). Kernel size can't be greater than actual input size"
        )
    output_size = ((padded[0] - extent[0]) // stride[0] + 1, (padded[1] - extent[1]) // stride[1] + 1)
    geo = _conv.ConvGeometry(stride, (top, left), dilation, groups)
    out = _conv.Conv2d.apply(x, weight, bias, geo, output_size)
    return out if input.ndim == 4 else out.squeeze(0)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The gradient of conv2d with respect to its input, as a layer: input (N, C_in, H, W) or (C_in, H, W),
    weight (C_in, C_out/groups, kH, kW), bias (C_out,) -> (N, C_out, OH, OW) with
    OH = (H - 1)*sh - 2*ph + dh*(kH - 1) + output_padding_h + 1 (OW likewise);
    output_padding (< stride or < dilation) adds rows / columns at the bottom / right."""
    what = "conv_transpose2d"
    x = _conv_operands(what, input, weight, bias, groups, "(in_channels, out_channels / groups, kH, kW)")
    stride, dilation = _conv_pair(stride, "stride", what), _conv_pair(dilation, "dilation", what)
    if isinstance(padding, str):
        raise TypeError(f"{what}: expected padding to be an int or a pair of ints, got {padding!r}")
    padding = _conv_pair(padding, "padding", what)
    output_padding = _conv_pair(output_padding, "output_padding", what)
    _, C_in, H, W = x.shape
    _, Cog, R, S = weight.shape
    if weight.shape[0] % groups != 0:
        raise ShapeError(
            f"{what}: Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got "
            f"weight of size {list(weight.shape)} instead"
        )
    if C_in != weight.shape[0]:
        raise ShapeError(
            f"{what}: Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} to "
            f"have {weight.shape[0]} channels, but got {C_in} channels instead"
        )
    _conv_bias_shape(what, bias, Cog * groups, weight)
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ShapeError(
            f"{what}: output padding must be smaller than either stride or dilation, but got output_padding="
            f"{output_padding}, stride={stride}, dilation={dilation}"
        )
    output_size = tuple(
        (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        for i, s, p, d, k, op in zip((H, W), stride, padding, dilation, (R, S), output_padding)
    )
    if min(output_size) < 1 or R < 1 or S < 1:
        raise ShapeError(
            f"{what}: Given input size per channel: ({H} x {W}). Calculated output size per channel: "
            f"({output_size[0]} x {output_size[1]}). Output size is too small"
        )
    geo = _conv.ConvGeometry(stride, padding, dilation, groups)
    out = _conv.ConvTranspose2d.apply(x, weight, bias, geo, output_size)
    return out if input.ndim == 4 else out.squeeze(0)
# --- softmax, log_softmax, cross_entropy, nll_loss, layer_norm, batch_norm (ops/softmax.py, ops/norm.py)
def _check_kernel_input(input, what):
    """A float32 or float64 Tensor (the dtypes of the softmax and normalisation kernels)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if input.dtype not in (D.float32, D.float64):
        raise DTypeError(f"{what}: expected a float32 or float64 input, got {input.dtype.name}")
    return input


def _check_like(t, name, input, what, numel=None):
    """An optional Tensor argument with input's dtype and device (and numel elements)."""
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected {name} to be a Tensor or None, got {type(t).__name__}")
    if numel is not None and t.numel() != numel:
        raise ShapeError(f"{what}: {name} should contain {numel} elements not {t.numel()}")
    if t.dtype != input.dtype:
        raise DTypeError(f"{what}: expected {name} to be {input.dtype.name} like the input, got {t.dtype.name}")
    if t.device != input.device:
        raise DeviceError(f"{what}: {name} is on {t.device} but the input is on {input.device}")
    return t


def _softmax_along(input, dim, dtype, log, what):
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if dtype is not None:
        input = input.to(dtype=D.as_dtype(dtype, what))
    _check_kernel_input(input, what)
    if dim is None:  # PyTorch's implicit choice (deprecated)
        warnings.warn(f"Implicit dimension choice for {what} has been deprecated. Change the call to include "
                      "dim=X as an argument.", UserWarning, stacklevel=3)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return _softmax.Softmax.apply(input, normalize_dim(dim, input.ndim, what), log)


def softmax(input, dim=None, *, dtype=None):
    """exp(x - max) / sum(exp(x - max)) along dim; dtype: cast the input first."""
    return _softmax_along(input, dim, dtype, False, "softmax")


def log_softmax(input, dim=None, *, dtype=None):
    """(x - max) - log(sum(exp(x - max))) along dim; dtype: cast the input first."""
    return _softmax_along(input, dim, dtype, True, "log_softmax")


def _class_inputs(input, target, weight, ignore_index, what, allow_probs):
    """Checked (input, target, weight, probs, unbatched) of the classification losses: input
    (N, C, d1, ...) (an unbatched (C,) becomes (1, C)); target int64 class indices (N, d1, ...), each
    in [0, C) or == ignore_index, or with allow_probs class probabilities of input's shape; weight
    None or (C,)."""
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: expected {name} to be a Tensor, got {type(t).__name__}")
    if not input.dtype.is_floating_point:
        raise DTypeError(f"{what}: expected a floating point input, got {input.dtype.name}")
    if input.ndim == 0:
        raise ShapeError(f"{what}: expected input of shape (C,) or (N, C, d1, ...), got a 0-d tensor")
    if target.device != input.device:
        raise DeviceError(f"{what}: target is on {target.device} but the input is on {input.device}")
    C = input.shape[1] if input.ndim > 1 else input.shape[0]
    probs = allow_probs and target.shape == input.shape
    if probs:
        if not target.dtype.is_floating_point:
            raise DTypeError(f"{what}: expected a floating point target for class probabilities (the input's "
                             f"shape), got {target.dtype.name}")
        if ignore_index >= 0:
            raise RuntimeError(f"{what}: ignore_index is not supported for floating point target")
        target = target.to(dtype=input.dtype)
    else:
        if target.dtype != D.int64:
            raise DTypeError(f"{what}: expected target dtype to be int64 (class indices), got {target.dtype.name}")
        expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
        if target.shape != expected:
            if input.ndim > 1 and target.ndim > 0 and target.shape[0] != input.shape[0]:
                raise ShapeError(f"{what}: Expected input batch_size ({input.shape[0]}) to match target batch_size "
                                 f"({target.shape[0]}).")
            raise ShapeError(f"{what}: expected target of shape {list(expected)} for input of shape "
                             f"{list(input.shape)} (class indices: the input's shape without dim 1), got "
                             f"{list(target.shape)}")
        out_of_range = (target != ignore_index) & ((target < 0) | (target >= C))
        if bool(out_of_range.any()):
            value = int(target[out_of_range].reshape(-1)[0])
            raise IndexError(f"{what}: Target {value} is out of bounds (expected a class index in [0, {C - 1}] "
                             f"or ignore_index={ignore_index})")
    weight = _check_like(weight, "weight", input, what)
    if weight is not None and weight.shape != (C,):
        raise ShapeError(f"{what}: weight tensor should be defined either for all {C} classes or no classes but "
                         f"got weight tensor of shape: {list(weight.shape)}")
    if input.ndim == 1:
        return input.unsqueeze(0), target.unsqueeze(0), weight, probs, True
    return input, target, weight, probs, False


def _kept_weight(target, weight, ignore_index, dtype):
    """The divisor of a "mean" over class-index targets: sum of weight[t] over the kept positions."""
    kept = target != ignore_index
    if weight is None:
        return kept.sum().to(dtype=dtype)
    return where(kept, weight[where(kept, target, 0)], 0.0).sum()


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """log_softmax + NLL loss in one kernel. input: logits (N, C, d1, ...) or (C,); target: int64
    class indices (N, d1, ...) (or ()) or class probabilities of input's shape. Label smoothing
    mixes the target with the uniform distribution. "mean" divides by the sum of the weights of the
    targets that are not ignore_index (class indices) or by the number of positions (probabilities)."""
    _check_reduction(reduction)
    _check_kernel_input(input, "cross_entropy")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) or \
            not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    input, target, weight, probs, unbatched = _class_inputs(input, target, weight, ignore_index, "cross_entropy",
                                                            allow_probs=True)
    loss = _softmax.CrossEntropy.apply(input, target, weight, ignore_index, float(label_smoothing))
    if reduction == "mean":
        return loss.sum() / (loss.numel() if probs else _kept_weight(target, weight, ignore_index, loss.dtype))
    if reduction == "none" and unbatched:
        return loss.squeeze(0)
    return _reduce(loss, reduction)


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """-weight[t] * input[t] at each position, input being log-probabilities (N, C, d1, ...) or (C,)
    and t the int64 class index (N, d1, ...) (or ()); 0 where t == ignore_index. "mean" divides by
    the sum of the weights of the targets that are not ignored."""
    _check_reduction(reduction)
    input, target, weight, _, unbatched = _class_inputs(input, target, weight, ignore_index, "nll_loss",
                                                        allow_probs=False)
    kept = target != ignore_index
    t = where(kept, target, 0)
    picked = input.gather(1, t.unsqueeze(1)).squeeze(1)
    loss = where(kept, -(picked if weight is None else weight[t] * picked), 0.0)
    if reduction == "mean":
        return loss.sum() / _kept_weight(target, weight, ignore_index, loss.dtype)
    if reduction == "none" and unbatched:
        return loss.squeeze(0)
    return _reduce(loss, reduction)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing dims given by normalized_shape (each sample by its own mean and
    biased variance), then scale by weight and shift by bias (both of normalized_shape)."""
    _check_kernel_input(input, "layer_norm")
    if not isinstance(normalized_shape, (tuple, list)) or \
            any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in normalized_shape):
        raise TypeError(f"layer_norm: expected normalized_shape to be a tuple or list of ints, got "
                        f"{normalized_shape!r}")
    shape = tuple(int(s) for s in normalized_shape)
    if not shape:
        raise ShapeError("layer_norm: Expected normalized_shape to be at least 1-dimensional, i.e., containing at "
                         "least one element, but got normalized_shape = []")
    if len(shape) > input.ndim or input.shape[input.ndim - len(shape):] != shape:
        raise ShapeError(f"layer_norm: Given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}")
    for name, p in (("weight", weight), ("bias", bias)):
        if _check_like(p, name, input, "layer_norm") is not None and p.shape != shape:
            raise ShapeError(f"layer_norm: Expected {name} to be of same shape as normalized_shape, but got {name} "
                             f"of shape {list(p.shape)} and normalized_shape = {list(shape)}")
    return _norm.LayerNorm.apply(input, weight, bias, len(shape), float(eps))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise each channel (dim 1) of (N, C) or (N, C, d1, ...), then scale by weight and shift by
    bias (C,). training: by the batch's mean and biased variance, and running_mean / running_var
    (when given) are updated in place, running = (1 - momentum) running + momentum batch, with the
    unbiased variance; otherwise by running_mean and running_var."""
    _check_kernel_input(input, "batch_norm")
    if input.ndim < 2:
        raise ShapeError(f"batch_norm: expected input of shape (N, C) or (N, C, d1, ...), got {list(input.shape)}")
    C = input.shape[1]
    running_mean, running_var, weight, bias = (
        _check_like(t, name, input, "batch_norm", numel=C)
        for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)))
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must be both given or both None")
    M = input.numel() // C if C else 0
    if training and M <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {list(input.shape)}")
    if not training and running_mean is None:
        raise RuntimeError("batch_norm: running_mean must be defined in evaluation mode")
    weight, bias = (None if p is None else p.reshape(C) for p in (weight, bias))
    stats = (None, None) if training else (running_mean.reshape(C), running_var.reshape(C))
    out, mean, var = _norm.BatchNorm.apply(input, weight, bias, *stats, float(eps))
    if training and running_mean is not None:
        with no_grad():
            running_mean.mul_(1 - momentum).add_(mean.reshape(running_mean.shape) * momentum)
            running_var.mul_(1 - momentum).add_(var.reshape(running_var.shape) * (momentum * M / (M - 1)))
    return out


# --- pooling, unpooling, upsampling and padding (ops in ops/pool.py, kernels in csrc/cpu/pool2d,
# upsample, pad2d; the module forms are in nn/modules/pooling.py). Pairs are (height, width).
def _pool_input(input, what):
    """The input as (N, C, H, W), and whether it came unbatched as (C, H, W)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if input.dtype not in (D.float32, D.float64):
        raise DTypeError(f"{what}: expected a float32 or float64 input, got {input.dtype.name}")
    if input.ndim not in (3, 4) or 0 in input.shape[-3:]:
        raise ShapeError(
            f"{what}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input with non-zero C, H and W, "
            f"got shape {list(input.shape)}"
        )
    return (input.unsqueeze(0), True) if input.ndim == 3 else (input, False)


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _int_pair(value, what, name):
    """An int, or a sequence of one or two ints, as a (height, width) tuple."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not all(_is_int(v) for v in items):
        raise TypeError(f"{what}: expected {name} to be an int or a tuple of ints, got {value!r}")
    if len(items) not in (1, 2):
        raise ShapeError(f"{what}: {name} must either be a single int, or a tuple of two ints, got {value!r}")
    return (int(items[0]), int(items[-1]))


def _check_min(pair, least, what, name):
    if min(pair) < least:
        raise ShapeError(f"{what}: expected {name} >= {least}, got {pair}")


def _pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """How many windows fit along an axis: floor (ceil with ceil_mode) of
    (size + 2 padding - dilation (kernel - 1) - 1) / stride, plus 1; with ceil_mode the last window
    must start inside the input or the left padding."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pool_geometry(what, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Checked (kernel_size, stride, padding, dilation) pairs of a pooling over x (N, C, H, W);
    stride None (or empty) means kernel_size, as in PyTorch."""
    kernel = _int_pair(kernel_size, what, "kernel_size")
    stride = kernel if stride is None or stride in ((), []) else _int_pair(stride, what, "stride")
    padding, dilation = _int_pair(padding, what, "padding"), _int_pair(dilation, what, "dilation")
    _check_min(kernel, 1, what, "kernel_size")
    _check_min(stride, 1, what, "stride")
    _check_min(padding, 0, what, "padding")
    _check_min(dilation, 1, what, "dilation")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ShapeError(
            f"{what}: pad should be at most half of the kernel size, but got padding={padding} and kernel_size={kernel}"
        )
    in_hw = x.shape[2:]
    out_hw = tuple(_pool_output_size(*axis, ceil_mode) for axis in zip(in_hw, kernel, stride, padding, dilation))
    if min(out_hw) < 1:
        raise ShapeError(
            f"{what}: given input size {in_hw}, the calculated output size {out_hw} is too small: the "
            f"kernel (kernel_size={kernel}, dilation={dilation}) does not fit the input padded by {padding}"
        )
    return kernel, stride, padding, dilation


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """The maximum of each window (the input padded with -inf). With return_indices, also the
    position h * W + w of each maximum in its input plane (int64), as max_unpool2d takes it. Ties go
    to the first maximum in row-major order; a NaN is the maximum."""
    x, unbatched = _pool_input(input, "max_pool2d")
    geometry = _pool_geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    result = P.max_pool2d(x, *geometry, bool(ceil_mode), bool(return_indices))
    if unbatched:
        result = tuple(t.squeeze(0) for t in result) if return_indices else result.squeeze(0)
    return result


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """The mean of each window (the input padded with zeros): the sum divided by divisor_override,
    else by the window's size clipped to the padded input (count_include_pad) or to the input."""
    x, unbatched = _pool_input(input, "avg_pool2d")
    kernel, stride, padding, _ = _pool_geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"avg_pool2d: expected divisor_override to be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ShapeError("avg_pool2d: divisor must be not zero (divisor_override=0)")
        divisor_override = int(divisor_override)
    out = P.avg_pool2d(x, kernel, stride, padding, bool(ceil_mode), bool(count_include_pad), divisor_override)
    return out.squeeze(0) if unbatched else out


def _adaptive_output_size(what, x, output_size):
    """output_size (an int, or a pair whose None entries keep the input's size) as a checked pair."""
    items = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(items) != 2:
        raise ShapeError(f"{what}: output_size must be an int or a pair, got {output_size!r}")
    items = tuple(x.shape[2 + i] if v is None else v for i, v in enumerate(items))
    if not all(_is_int(v) for v in items):
        raise TypeError(f"{what}: expected output_size to hold ints or None, got {output_size!r}")
    _check_min(items, 0, what, "output_size")
    return tuple(int(v) for v in items)


def adaptive_avg_pool2d(input, output_size):
    """The mean over output_size windows that tile the input: window o of an axis of size I
    covers [floor(o * I / O), ceil((o + 1) * I / O))."""
    x, unbatched = _pool_input(input, "adaptive_avg_pool2d")
    out = P.adaptive_avg_pool2d(x, _adaptive_output_size("adaptive_avg_pool2d", x, output_size))
    return out.squeeze(0) if unbatched else out


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """The maximum over adaptive_avg_pool2d's windows, with indices as in max_pool2d."""
    x, unbatched = _pool_input(input, "adaptive_max_pool2d")
    out, indices = P.adaptive_max_pool2d(x, _adaptive_output_size("adaptive_max_pool2d", x, output_size))
    if unbatched:
        out, indices = out.squeeze(0), indices.squeeze(0)
    return (out, indices) if return_indices else out


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Zeros with each input value placed at its index (h * W + w in its output plane), undoing
    max_pool2d(..., return_indices=True) but for the non-maxima. Output size: output_size (2
    entries, or 4 of which the last 2 are used, each strictly within stride of the default), else
    the default (H - 1) * stride - 2 * padding + kernel_size. An index outside the output plane
    raises IndexError."""
    what = "max_unpool2d"
    x, unbatched = _pool_input(input, what)
    if not isinstance(indices, Tensor):
        raise TypeError(f"{what}: expected indices to be a Tensor, got {type(indices).__name__}")
    if indices.dtype != D.int64:
        raise DTypeError(f"{what}: elements in indices should be type int64 but got: {indices.dtype.name}")
    if indices.shape != input.shape:
        raise ShapeError(
            f"{what}: expected indices of the input's shape {list(input.shape)}, got {list(indices.shape)}"
        )
    if indices.device != input.device:
        raise DeviceError(f"{what}: indices are on {indices.device} but the input is on {input.device}")
    kernel = _int_pair(kernel_size, what, "kernel_size")
    stride = kernel if stride is None else _int_pair(stride, what, "stride")
    padding = _int_pair(padding, what, "padding")
    _check_min(kernel, 1, what, "kernel_size")
    _check_min(stride, 1, what, "stride")
    _check_min(padding, 0, what, "padding")
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p in zip(x.shape[2:], kernel, stride, padding))
    size = default
    if output_size is not None:
        size = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,)
        size = size[2:] if len(size) == 4 else size
        if len(size) != 2:
            raise ShapeError(
                f"{what}: output_size should be a sequence containing 2 or 4 elements, but got {output_size!r}"
            )
        if not all(_is_int(v) for v in size):
            raise TypeError(f"{what}: expected output_size to hold ints, got {output_size!r}")
        for d in range(2):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            if not lo < size[d] < hi:
                raise ShapeError(
                    f'{what}: invalid output_size "{output_size}" (dim {d} must be between {lo} and {hi})'
                )
    if min(size) < 0:
        raise ShapeError(f"{what}: output_size must contain non-negative spatial dimensions, but got {size}")
    out = P.max_unpool2d(x, indices.unsqueeze(0) if unbatched else indices, tuple(int(v) for v in size))
    return out.squeeze(0) if unbatched else out


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resample the spatial dims of an (N, C, L) or (N, C, H, W) input to `size`, or to
    floor(input size * scale_factor) (exactly one of the two; an int or one per spatial dim).
    mode "nearest": PyTorch's nearest (source floor(dst * scale)); "bilinear" (4-D input only):
    align_corners=True maps the corner pixels' centres onto each other, False (the default) their
    edges. A given scale_factor sets the source step (1 / scale_factor) as in PyTorch without
    recompute_scale_factor."""
    what = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if mode not in ("nearest", "bilinear"):
        raise NotImplementedError(f"{what}: mode {mode!r} is not supported; kernelgrad has 'nearest' and 'bilinear'")
    if align_corners is not None and mode == "nearest":
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: linear | bilinear | bicubic | trilinear"
        )
    if mode == "bilinear" and input.ndim != 4:
        raise NotImplementedError(f"{what}: got {input.ndim}-D input, but bilinear mode needs 4-D input (N, C, H, W)")
    if input.ndim not in (3, 4):
        raise NotImplementedError(
            f"{what}: nearest mode takes 3-D (N, C, L) or 4-D (N, C, H, W) input, got shape {list(input.shape)}"
        )
    if input.dtype not in (D.float32, D.float64):
        raise DTypeError(f"{what}: expected a float32 or float64 input, got {input.dtype.name}")
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    dims, in_size = input.ndim - 2, input.shape[2:]
    given = size if size is not None else scale_factor
    values = tuple(given) if isinstance(given, (tuple, list)) else (given,) * dims
    name = "size" if size is not None else "scale_factor"
    if len(values) != dims:
        raise ValueError(
            f"{what}: input and {name} must have the same number of spatial dimensions, but got input with "
            f"spatial dimensions of {list(in_size)} and {name} {given!r}"
        )
    if size is not None:
        if not all(_is_int(v) for v in values):
            raise TypeError(f"{what}: expected size to be an int or a tuple of ints, got {size!r}")
        out_size, scales = tuple(int(v) for v in values), None
    else:
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            raise TypeError(f"{what}: expected scale_factor to be a number or a tuple of numbers, got {scale_factor!r}")
        scales = tuple(float(v) for v in values)
        out_size = tuple(int(n * s) for n, s in zip(in_size, scales))
    if min(in_size) < 1 or min(out_size) < 1:
        raise ShapeError(
            f"{what}: input and output sizes should be greater than 0, but got input {in_size} and output {out_size}"
        )
    if dims == 1:  # (N, C, L) as (N, C, 1, L)
        x, out_size = input.unsqueeze(2), (1,) + out_size
        scales = None if scales is None else (1.0,) + scales
    else:
        x = input
    if mode == "nearest":
        out = P.upsample_nearest2d(x, out_size, scales)
    else:
        out = P.upsample_bilinear2d(x, out_size, bool(align_corners), scales)
    return out.squeeze(2) if dims == 1 else out


def pad(input, pad, mode="constant", value=0.0):
    """Pad the last len(pad) // 2 dims; pad = (before, after) per dim, the last dim first (negative
    amounts crop). mode "constant" fills with value, any number of dims; "reflect" mirrors about
    the edge element (not repeated; each pad must be smaller than its dim) and "replicate" repeats
    it, for the last dim of a 2-D or 3-D input (len(pad) == 2) or the last two dims of a 3-D or
    4-D input (len(pad) == 4)."""
    what = "pad"
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if not isinstance(pad, (tuple, list)) or not all(_is_int(p) for p in pad):
        raise TypeError(f"{what}: expected pad to be a tuple of ints, got {pad!r}")
    if len(pad) % 2:
        raise ShapeError(f"{what}: padding length must be divisible by 2, got {len(pad)}")
    k = len(pad) // 2  # padded dims
    if k > input.ndim:
        raise ShapeError(
            f"{what}: padding length should be less than or equal to two times the input dimension but got "
            f"padding length {len(pad)} and input of dimension {input.ndim}"
        )
    pad = tuple(int(p) for p in pad)
    sizes = input.shape[input.ndim - k:]
    out_sizes = tuple(n + pad[2 * (k - 1 - i)] + pad[2 * (k - 1 - i) + 1] for i, n in enumerate(sizes))
    if mode == "constant":
        if min(out_sizes, default=0) < 0:
            raise ShapeError(f"{what}: pad {pad} of dims of size {sizes} gives negative sizes {out_sizes}")
        return P.ConstantPad.apply(input, pad, 0 if value is None else value)  # None: PyTorch's default
    if mode not in ("reflect", "replicate"):
        raise NotImplementedError(
            f"{what}: mode {mode!r} is not supported; kernelgrad has 'constant', 'reflect' and 'replicate'"
        )
    if value:
        raise ShapeError(f'{what}: padding mode "{mode}" doesn\'t take in value argument (got value={value!r})')
    if k not in (1, 2) or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"{what}: padding size {len(pad)} is not supported for {input.ndim}-D input in mode {mode!r}; "
            "supported: 2-D or 3-D input with padding size 2 (the last dim), 3-D or 4-D input with size 4 (the last 2)"
        )
    if input.dtype not in (D.float32, D.float64):
        raise DTypeError(f"{what}: mode {mode!r} expects a float32 or float64 input, got {input.dtype.name}")
    batch = input.ndim - k - 1  # 1 if the first dim is a batch dim (which may be empty), else 0
    if 0 in input.shape[batch:]:
        raise ShapeError(f"{what}: expected non-zero dims but for an optional batch dim, got shape {list(input.shape)}")
    if mode == "reflect":
        for i, n in enumerate(sizes):
            before, after = pad[2 * (k - 1 - i)], pad[2 * (k - 1 - i) + 1]
            if before >= n or after >= n:
                raise ShapeError(
                    f"{what}: padding size should be less than the corresponding input dimension in reflect mode, "
                    f"but got padding ({before}, {after}) at dimension {input.ndim - k + i} of input "
                    f"{list(input.shape)}"
                )
    if min(out_sizes) < 0:
        raise ShapeError(f"{what}: pad {pad} of dims of size {sizes} gives negative sizes {out_sizes}")
    lead = input.shape[:input.ndim - k]
    planes = int(np.prod(lead, dtype=np.int64))
    x = input.reshape(planes, 1, *((1,) * (2 - k) + sizes))  # (planes, 1, H, W), H = 1 for a 1-D pad
    out = P.pad2d(x, pad + (0, 0) * (2 - k), mode)
    return out.reshape(*lead, *out_sizes)


# --- attention
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(scale * query key^T + attn_mask) value, one fused kernel (FlashAttention-2, CPU and CUDA).

    query (..., L, E), key (..., S, E), value (..., S, Ev): float32 or float64, batch dims broadcast;
    returns (..., L, Ev). attn_mask, broadcastable to (..., L, S): bool (True keeps a score) or of the
    query's dtype (added to the scores); it gets no gradient, so a mask that requires grad is refused.
    is_causal keeps key j <= query i (top-left aligned) and refuses an explicit mask. scale defaults
    to 1/sqrt(E). dropout_p > 0 drops attention weights (always: training flags live in the modules)
    with a mask drawn from kg's default generator, survivors scaled by 1/(1-p). A row whose every key
    is masked gives zeros and zero gradients (PyTorch gives NaN). Memory O(L + S) per head.
    """
    from .. import random as _random
    from .._errors import ArgumentError, DeviceError
    from ..autograd import is_grad_enabled
    from ..ops.attention import ScaledDotProductAttention
    from ..backend import backend_for

    what = "scaled_dot_product_attention"
    for name, x in (("query", query), ("key", key), ("value", value)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{what}: expected {name} to be a Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ShapeError(f"{what}: expected {name} to have at least 2 dims, got shape {list(x.shape)}")
    if query.dtype not in (D.float32, D.float64):
        raise DTypeError(f"{what}: expected query of dtype float32 or float64, got {query.dtype.name}")
    for name, x in (("key", key), ("value", value)):
        if x.dtype != query.dtype:
            raise DTypeError(f"{what}: expected query, key and value of one dtype, got query "
                             f"{query.dtype.name} and {name} {x.dtype.name}")
        if x.device != query.device:
            raise DeviceError(f"{what}: {name} is on {x.device} but query is on {query.device}")
    (L, E), (S, Ek), Sv = query.shape[-2:], key.shape[-2:], value.shape[-2]
    if Ek != E:
        raise ShapeError(f"{what}: expected key.shape[-1] == query.shape[-1] (E), got query {list(query.shape)} "
                         f"and key {list(key.shape)}")
    if Sv != S:
        raise ShapeError(f"{what}: expected key and value of one length S (dim -2), got key {list(key.shape)} "
                         f"and value {list(value.shape)}")
    if E == 0:
        raise ShapeError(f"{what}: expected a head dim E > 0, got query {list(query.shape)}")
    try:
        batch = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2])
    except ValueError:
        raise ShapeError(f"{what}: the batch dims of query {list(query.shape)}, key {list(key.shape)} and value "
                         f"{list(value.shape)} do not broadcast") from None
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"{what}: expected attn_mask to be a Tensor or None, got {type(attn_mask).__name__}")
        if attn_mask.dtype not in (D.bool_, query.dtype):
            raise DTypeError(f"{what}: expected attn_mask of dtype bool or the query's {query.dtype.name}, "
                             f"got {attn_mask.dtype.name}")
        if attn_mask.device != query.device:
            raise DeviceError(f"{what}: attn_mask is on {attn_mask.device} but query is on {query.device}")
        target = batch + (L, S)
        try:
            ok = np.broadcast_shapes(attn_mask.shape, target) == target
        except ValueError:
            ok = False
        if not ok:
            raise ShapeError(f"{what}: attn_mask of shape {list(attn_mask.shape)} does not broadcast to "
                             f"(..., L, S) = {list(target)}")
        if is_causal:
            raise ArgumentError(f"{what}: an explicit attn_mask cannot be combined with is_causal=True")
        if attn_mask.requires_grad and is_grad_enabled():
            raise NotImplementedError(f"{what}: attn_mask gets no gradient; pass attn_mask.detach() "
                                      "(a mask that requires grad is not supported)")
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, numbers.Real) or not 0.0 <= dropout_p <= 1.0:
        raise ArgumentError(f"{what}: dropout probability has to be between 0 and 1, but got {dropout_p}")
    if scale is None:
        scale = 1.0 / math.sqrt(E)
    elif isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"{what}: expected scale to be a float or None, got {type(scale).__name__}")
    if not hasattr(backend_for(query.device), "attention_forward"):
        raise NotImplementedError(f"{what}: not implemented on {query.device} yet")
    seed = int(_random.default_generator._np.integers(0, 2**64, dtype=np.uint64)) if dropout_p > 0 else 0
    return ScaledDotProductAttention.apply(query, key, value, attn_mask, bool(is_causal), float(scale),
                                           float(dropout_p), seed)
