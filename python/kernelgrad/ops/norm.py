"""Layer norm and batch norm on their kernels (formulas in kg.reference.norm and csrc/cpu/norm.h).

Forward saves the statistics (per row for layer norm, per channel for batch norm); backward gives
dx, dweight and dbias in one kernel call. The backward is itself a Function, so a gradient taken
with create_graph=True is part of the graph; differentiating it again raises a clear error (the
second derivatives are not implemented).
"""
from ..autograd import Function
from ._util import data_or_none, new, xp


class LayerNorm(Function):
    """y = (x - mean) rstd weight + bias over the last normalized_ndim dims of x."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_ndim, eps):
        y, mean, rstd = xp(x).layer_norm(x._data, normalized_ndim, data_or_none(weight), data_or_none(bias), eps)
        ctx.save_for_backward(x, weight, new(mean, x.device), new(rstd, x.device))
        ctx.normalized_ndim = normalized_ndim
        return new(y, x.device)

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dx, dw, db = LayerNormBackward.apply(dy, x, weight, mean, rstd, ctx.normalized_ndim, needs[1], needs[2])
        return dx, dw, db, None, None


class LayerNormBackward(Function):
    """(dx, dweight or None, dbias or None) in one pass over the rows."""

    @staticmethod
    def forward(ctx, dy, x, weight, mean, rstd, normalized_ndim, weight_grad, bias_grad):
        dx, dw, db = xp(x).layer_norm_backward(dy._data, x._data, mean._data, rstd._data, data_or_none(weight),
                                               normalized_ndim, weight_grad, bias_grad)
        return tuple(None if g is None else new(g, x.device) for g in (dx, dw, db))

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "layer_norm: double backward is not supported (the gradient of layer_norm, taken with "
            "create_graph=True, cannot be differentiated again)"
        )


class BatchNorm(Function):
    """y = (x - mean) rstd weight + bias per channel (dim 1). With running statistics (mean, var
    given: eval) they are constants; without (None: training) the batch's are used, and returned
    (as outputs without gradient) for the caller to update its running statistics."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps):
        y, mean, var = xp(x).batch_norm(x._data, data_or_none(running_mean), data_or_none(running_var),
                                        data_or_none(weight), data_or_none(bias), eps)
        training = running_mean is None
        mean, var = (new(mean, x.device), new(var, x.device)) if training else (running_mean, running_var)
        ctx.save_for_backward(x, weight, mean, var)
        ctx.eps, ctx.training = eps, training
        mean, var = mean.detach(), var.detach()
        ctx.mark_non_differentiable(mean, var)
        return new(y, x.device), mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        x, weight, mean, var = ctx.saved_tensors
        needs = ctx.needs_input_grad
        dx, dw, db = BatchNormBackward.apply(dy, x, weight, mean, var, ctx.eps, ctx.training)
        return dx, dw if needs[1] else None, db if needs[2] else None, None, None, None


class BatchNormBackward(Function):
    """(dx, dweight, dbias) in two passes over x (the channel sums, then dx)."""

    @staticmethod
    def forward(ctx, dy, x, weight, mean, var, eps, training):
        dx, dw, db = xp(x).batch_norm_backward(dy._data, x._data, mean._data, var._data, data_or_none(weight), eps,
                                               training)
        return new(dx, x.device), new(dw, x.device), new(db, x.device)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "batch_norm: double backward is not supported (the gradient of batch_norm, taken with "
            "create_graph=True, cannot be differentiated again)"
        )
