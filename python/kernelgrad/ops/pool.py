"""Pooling, unpooling, upsampling and padding on (N, C, H, W) tensors, over the backend kernels.

Most of these ops are linear in their input, y = A x, with a kernel for A and one for its
adjoint A^T (the backward): average and adaptive average pooling, nearest and bilinear
upsampling, reflect and replicate padding, max unpooling (for given indices), and the backward of
max pooling (a scatter by the saved indices, whose adjoint is the gather of max_unpool2d's
backward). `LinearMap` runs any such pair: its backward is A^T g, and the backward of that is
A gg again, so every one of them has double backward.

    max pooling    y = the window maxima; the kernel also returns their indices
                   dx = dy added at the indices          (linear in dy: a LinearMap)
    max unpooling  y = zeros with x placed at the indices
                   dx = dy gathered at the indices
    constant pad   y = x inside a border of `value` (negative pads crop)
                   dx = dy padded by the negated pads with zeros (crops the border, zero-fills
                   what was cropped): a constant pad again
"""
from ..autograd import Function, is_grad_enabled
from ._util import new, xp


class LinearMap(Function):
    """y = A x for a linear map given by two backend calls on arrays: fn(B, a) = A a and
    adjoint(B, g) = A^T g, with B the backend of the tensor's device."""

    @staticmethod
    def forward(ctx, x, fn, adjoint):
        ctx.maps = (fn, adjoint)
        return new(fn(xp(x), x._data), x.device)

    @staticmethod
    def backward(ctx, g):
        fn, adjoint = ctx.maps
        return LinearMap.apply(g, adjoint, fn), None, None


class MaxPool2d(Function):
    """(values, int64 indices) of a max pooling; pool(B, a) runs the backend kernel
    (max_pool2d_with_indices or adaptive_max_pool2d) on an array."""

    @staticmethod
    def forward(ctx, x, pool):
        out, idx = pool(xp(x), x._data)
        indices = new(idx, x.device)
        ctx.save_for_backward(indices)
        ctx.input_hw = x.shape[2:]
        ctx.set_materialize_grads(False)  # the indices never get a gradient: no zeros for them
        return new(out, x.device), indices

    @staticmethod
    def backward(ctx, g, _):
        (indices,) = ctx.saved_tensors
        idx, hw = indices._data, ctx.input_hw
        return LinearMap.apply(g, lambda B, a: B.max_pool2d_backward(a, idx, hw),  # scatter ...
                               lambda B, a: B.max_unpool2d_backward(a, idx)), None  # ... and its adjoint


def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    """The maxima, and their indices when asked for; without a gradient to come and without
    return_indices, the cheaper kernel that finds the values only."""
    geometry = (kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices and not (is_grad_enabled() and x.requires_grad):
        return new(xp(x).max_pool2d(x._data, *geometry), x.device)
    out, indices = MaxPool2d.apply(x, lambda B, a: B.max_pool2d_with_indices(a, *geometry))
    return (out, indices) if return_indices else out


def adaptive_max_pool2d(x, output_size):
    return MaxPool2d.apply(x, lambda B, a: B.adaptive_max_pool2d(a, output_size))


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    geometry = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    hw = x.shape[2:]
    return LinearMap.apply(x, lambda B, a: B.avg_pool2d(a, *geometry),
                           lambda B, g: B.avg_pool2d_backward(g, hw, *geometry))


def adaptive_avg_pool2d(x, output_size):
    hw = x.shape[2:]
    return LinearMap.apply(x, lambda B, a: B.adaptive_avg_pool2d(a, output_size),
                           lambda B, g: B.adaptive_avg_pool2d_backward(g, hw))


def max_unpool2d(x, indices, output_size):
    """A repeated index keeps one value (the last) in the forward but gathers the gradient for
    every occurrence, as PyTorch does; with distinct indices the two are exact adjoints."""
    idx = indices._data
    return LinearMap.apply(x, lambda B, a: B.max_unpool2d(a, idx, output_size),
                           lambda B, g: B.max_unpool2d_backward(g, idx))


def upsample_nearest2d(x, output_size, scale_factors):
    hw = x.shape[2:]
    return LinearMap.apply(x, lambda B, a: B.upsample_nearest2d(a, output_size, scale_factors),
                           lambda B, g: B.upsample_nearest2d_backward(g, hw, scale_factors))


def upsample_bilinear2d(x, output_size, align_corners, scale_factors):
    hw = x.shape[2:]
    return LinearMap.apply(x, lambda B, a: B.upsample_bilinear2d(a, output_size, align_corners, scale_factors),
                           lambda B, g: B.upsample_bilinear2d_backward(g, hw, align_corners, scale_factors))


def pad2d(x, pad, mode):
    """Reflect or replicate padding of the last two dims; pad = (left, right, top, bottom)."""
    hw = x.shape[2:]
    return LinearMap.apply(x, lambda B, a: B.pad2d(a, pad, mode), lambda B, g: B.pad2d_backward(g, hw, pad, mode))


class ConstantPad(Function):
    """x inside a border of `value`; pad = (before, after) pairs for the last dims, the last dim
    first (F.pad's order); negative pads crop."""

    @staticmethod
    def forward(ctx, x, pad, value):
        ctx.pad = pad
        B = xp(x)
        shape, src, dst = list(x.shape), [slice(None)] * x.ndim, [slice(None)] * x.ndim
        for k in range(len(pad) // 2):
            d, before, after = x.ndim - 1 - k, pad[2 * k], pad[2 * k + 1]
            src[d] = slice(max(-before, 0), x.shape[d] - max(-after, 0))  # what is kept of x ...
            shape[d] = x.shape[d] + before + after
            dst[d] = slice(max(before, 0), shape[d] - max(after, 0))  # ... and where it goes
        out = B.full(tuple(shape), value, dtype=x._data.dtype)
        B.setitem(out, tuple(dst), B.getitem(x._data, tuple(src)))
        return new(out, x.device)

    @staticmethod
    def backward(ctx, g):
        return ConstantPad.apply(g, tuple(-p for p in ctx.pad), 0), None, None
