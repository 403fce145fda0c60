"""kg.nn.functional (imported as F): PyTorch's functional API over kernelgrad's ops."""
import math
import numbers
import warnings

import numpy as np

from .. import _dtype as D
from .._errors import DTypeError, ShapeError
from ..ops import linalg as L
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


# --- attention
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(scale * query key^T + attn_mask) value, one fused kernel (FlashAttention-2 on the CPU).

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
    (L, E), (S, Ek), (Sv, Ev) = query.shape[-2:], key.shape[-2:], value.shape[-2:]
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
