"""Softmax, log-softmax and cross-entropy on their fused kernels (formulas in kg.reference.softmax
and csrc/cpu/softmax.h).

softmax / log_softmax save their output y; cross-entropy saves only the per-position log-sum-exp
(the N x C probabilities are recomputed by the backward kernel, never stored). Each backward is
itself a Function calling the backward kernel, so a gradient taken with create_graph=True is part
of the graph: softmax's and log_softmax's have their own backward (double backward, to any order);
differentiating cross-entropy's gradient raises a clear error.
"""
from ..autograd import Function
from ._util import data_or_none, new, xp


class Softmax(Function):
    """y = softmax(x) (log=False) or log_softmax(x) (log=True) along dim."""

    @staticmethod
    def forward(ctx, x, dim, log):
        B = xp(x)
        y = new((B.log_softmax if log else B.softmax)(x._data, dim), x.device)
        ctx.save_for_backward(y)
        ctx.dim, ctx.log = dim, log
        return y

    @staticmethod
    def backward(ctx, dy):
        (y,) = ctx.saved_tensors
        return SoftmaxBackward.apply(y, dy, ctx.dim, ctx.log), None, None


class SoftmaxBackward(Function):
    """dx = y (dy - S), S = sum(dy y) (softmax), or dx = dy - exp(y) S, S = sum(dy) (log_softmax),
    sums along dim. Its own backward, for the gradient u of dx:
        softmax:      d/d dy = y (u - sum(u y))  (this op again, on u),   d/dy = u (dy - S) - dy sum(u y)
        log_softmax:  d/d dy = u - sum(u exp(y)),                         d/dy = -u exp(y) S
    """

    @staticmethod
    def forward(ctx, y, dy, dim, log):
        B = xp(y)
        ctx.save_for_backward(y, dy)
        ctx.dim, ctx.log = dim, log
        return new((B.log_softmax_backward if log else B.softmax_backward)(y._data, dy._data, dim), y.device)

    @staticmethod
    def backward(ctx, u):
        y, dy = ctx.saved_tensors
        dim, needs = ctx.dim, ctx.needs_input_grad
        g_y = g_dy = None
        if ctx.log:
            e = y.exp()
            if needs[0]:
                g_y = -u * e * dy.sum(dim, keepdim=True)
            if needs[1]:
                g_dy = u - (u * e).sum(dim, keepdim=True)
        else:
            if needs[0]:
                g_y = u * (dy - (dy * y).sum(dim, keepdim=True)) - dy * (u * y).sum(dim, keepdim=True)
            if needs[1]:
                g_dy = SoftmaxBackward.apply(y, u, dim, False)
        return g_y, g_dy, None, None


class CrossEntropy(Function):
    """Per-position losses of logits x (N, C, d1, ...) against class indices (int64 target of shape
    (N, d1, ...)) or class probabilities (a float target of x's shape); the caller reduces them.

    A probability target's gradient is d loss / d P[c] = (1 - eps) w[c] (lse - x[c]) (tensor ops)."""

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index, label_smoothing):
        B = xp(x)
        if target.dtype.is_floating_point:
            loss, lse = B.cross_entropy_probs(x._data, target._data, data_or_none(weight), label_smoothing)
        else:
            loss, lse = B.cross_entropy(x._data, target._data, data_or_none(weight), ignore_index, label_smoothing)
        ctx.save_for_backward(x, target, weight, new(lse, x.device))
        ctx.options = (ignore_index, label_smoothing)
        return new(loss, x.device)

    @staticmethod
    def backward(ctx, g):
        x, target, weight, lse = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx = CrossEntropyBackward.apply(g, x, lse, target, weight, *ctx.options) if needs[0] else None
        g_target = None
        if needs[1]:
            w = 1.0 if weight is None else weight.reshape((-1,) + (1,) * (x.ndim - 2))
            g_target = (1 - ctx.options[1]) * w * (lse.unsqueeze(1) - x) * g.unsqueeze(1)
        return gx, g_target, None, None, None


class CrossEntropyBackward(Function):
    """dx of the per-position cross-entropy losses, given their gradient dloss (one kernel call)."""

    @staticmethod
    def forward(ctx, dloss, x, lse, target, weight, ignore_index, label_smoothing):
        B = xp(x)
        w = data_or_none(weight)
        if target.dtype.is_floating_point:
            dx = B.cross_entropy_probs_backward(dloss._data, x._data, lse._data, target._data, w, label_smoothing)
        else:
            dx = B.cross_entropy_backward(dloss._data, x._data, lse._data, target._data, w, ignore_index,
                                          label_smoothing)
        return new(dx, x.device)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "cross_entropy: double backward is not supported (the gradient of cross_entropy, taken with "
            "create_graph=True, cannot be differentiated again)"
        )
