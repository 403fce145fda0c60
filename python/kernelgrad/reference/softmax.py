"""Softmax, log-softmax, cross-entropy and NLL loss, as torch.nn.functional defines them.

    softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m)      along `dim`, m = max_j x_j
    log_softmax(x)_i = (x_i - m) - log sum_j exp(x_j - m)
(subtracting m changes nothing mathematically and keeps exp from overflowing).

Backward, for y = softmax(x) or y = log_softmax(x) and the gradient dy of y:
    softmax:      dx = y * (dy - sum(dy * y))
    log_softmax:  dx = dy - exp(y) * sum(dy)

Cross-entropy of logits x (N, C, d1, ...) (classes on dim 1; (C,) is one sample) is the NLL loss
of logp = log_softmax(x, 1). At each position, with class weights w (all 1 when None):
    class-index target t:  loss = -(1 - eps) w[t] logp[t] - (eps / C) sum_c w[c] logp[c]
                           (0 where t == ignore_index; eps = label_smoothing)
    probability target P:  loss = -sum_c w[c] q[c] logp[c],  q = (1 - eps) P + eps / C
Reductions: "none" keeps the per-position losses, "sum" adds them, "mean" divides the sum by the
sum of w[t] over the positions that are not ignored (class indices) or by the number of
positions (probabilities). The backward goes through log_softmax by the chain rule.
"""
import numpy as np


def softmax(x, dim):
    e = np.exp(x - np.max(x, axis=dim, keepdims=True))
    return e / np.sum(e, axis=dim, keepdims=True)


def log_softmax(x, dim):
    shifted = x - np.max(x, axis=dim, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))


def softmax_backward(y, dy, dim):
    """dx for y = softmax(x, dim)."""
    return y * (dy - np.sum(dy * y, axis=dim, keepdims=True))


def log_softmax_backward(y, dy, dim):
    """dx for y = log_softmax(x, dim)."""
    return dy - np.exp(y) * np.sum(dy, axis=dim, keepdims=True)


# --- cross-entropy and NLL loss


def _class_axis(w, ndim):
    """w (C,) shaped to broadcast along dim 1 of an (N, C, d1, ...) array."""
    return np.reshape(w, (1, -1) + (1,) * (ndim - 2))


def _batched(x, target):
    """An unbatched sample (x: (C,)) as a batch of one."""
    if x.ndim == 1:
        return x[np.newaxis], np.asarray(target)[np.newaxis], True
    return x, np.asarray(target), False


def _nll_parts(logp, target, weight, ignore_index, label_smoothing):
    """Per-position losses of class-index targets, their gradients with respect to logp, and the
    mean's divisor (the sum of w[t] over the positions that are not ignored)."""
    C, eps = logp.shape[1], label_smoothing
    w = np.ones(C, logp.dtype) if weight is None else np.asarray(weight, logp.dtype)
    kept = target != ignore_index
    t = np.where(kept, target, 0)
    logp_t = np.take_along_axis(logp, np.expand_dims(t, 1), axis=1)[:, 0]
    loss = -(1 - eps) * w[t] * logp_t
    if eps > 0:
        loss = loss - eps / C * np.sum(_class_axis(w, logp.ndim) * logp, axis=1)
    loss = np.where(kept, loss, 0)
    # d loss / d logp: -(1 - eps) w[t] at c = t, and -(eps / C) w[c] at every c
    onehot = (np.expand_dims(t, 1) == _class_axis(np.arange(C), logp.ndim)).astype(logp.dtype)  # (N, C, d1, ...)
    dloss_dlogp = -((1 - eps) * onehot * np.expand_dims(w[t], 1) + eps / C * _class_axis(w, logp.ndim))
    dloss_dlogp = np.where(np.expand_dims(kept, 1), dloss_dlogp, 0)
    return loss, dloss_dlogp, np.sum(np.where(kept, w[t], 0))


def _prob_parts(logp, target, weight, label_smoothing):
    C = logp.shape[1]
    q = (1 - label_smoothing) * target + label_smoothing / C
    if weight is not None:
        q = q * _class_axis(np.asarray(weight, logp.dtype), logp.ndim)
    positions = logp.size // C if C else 0
    return np.sum(-q * logp, axis=1), -q, positions


def _reduce(loss, reduction, divisor):
    if reduction == "none":
        return loss
    with np.errstate(invalid="ignore", divide="ignore"):  # mean of nothing: nan, as in torch
        return np.sum(loss) / divisor if reduction == "mean" else np.sum(loss)


def _scale_grad(grad, loss_shape, reduction, divisor):
    """The gradient of each per-position loss, from the gradient of the reduced loss."""
    grad = np.asarray(grad)
    if reduction == "none":
        return grad.reshape(loss_shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.broadcast_to(grad / divisor if reduction == "mean" else grad, loss_shape)


def _cross_entropy_parts(x, target, weight, ignore_index, label_smoothing):
    logp = log_softmax(x, 1)
    if np.issubdtype(np.asarray(target).dtype, np.floating):
        return (logp,) + _prob_parts(logp, np.asarray(target, x.dtype), weight, label_smoothing)
    return (logp,) + _nll_parts(logp, target, weight, ignore_index, label_smoothing)


def cross_entropy(x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits x (N, C, d1, ...) or (C,) against int class indices (N, d1, ...)
    or float class probabilities (x's shape)."""
    x, target, unbatched = _batched(np.asarray(x), target)
    _, loss, _, divisor = _cross_entropy_parts(x, target, weight, ignore_index, label_smoothing)
    out = _reduce(loss, reduction, divisor)
    return out[0] if unbatched and reduction == "none" else out


def cross_entropy_backward(grad, x, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """dx for cross_entropy(x, target, ...), given the gradient of its (reduced) output."""
    x, target, unbatched = _batched(np.asarray(x), target)
    logp, loss, dloss_dlogp, divisor = _cross_entropy_parts(x, target, weight, ignore_index, label_smoothing)
    g = _scale_grad(grad, loss.shape, reduction, divisor)
    dx = log_softmax_backward(logp, np.expand_dims(g, 1) * dloss_dlogp, 1)
    return dx[0] if unbatched else dx


def nll_loss(x, target, weight=None, ignore_index=-100, reduction="mean"):
    """NLL loss of log-probabilities x (N, C, d1, ...) or (C,) and class indices: -w[t] x[t]."""
    x, target, unbatched = _batched(np.asarray(x), target)
    loss, _, divisor = _nll_parts(x, target, weight, ignore_index, 0.0)
    out = _reduce(loss, reduction, divisor)
    return out[0] if unbatched and reduction == "none" else out


def nll_loss_backward(grad, x, target, weight=None, ignore_index=-100, reduction="mean"):
    """dx for nll_loss(x, target, ...): -w[t] g at each target, 0 elsewhere."""
    x, target, unbatched = _batched(np.asarray(x), target)
    loss, dloss_dx, divisor = _nll_parts(x, target, weight, ignore_index, 0.0)
    dx = np.expand_dims(_scale_grad(grad, loss.shape, reduction, divisor), 1) * dloss_dx
    return dx[0] if unbatched else dx
