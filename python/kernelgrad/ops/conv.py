"""2-D convolution on the conv kernels: conv2d, conv_transpose2d and conv2d's weight gradient.

The three are the bilinear map out = conv(x, w) and its two adjoints, so the backward of each is
made of the other two (and, all three being Functions, double backward works to any order):

    Conv2d            out (N, K, OH, OW) = conv(x (N, C, H, W), w (K, C/groups, R, S)) + b (K,)
                      dx = ConvTranspose2d(dout, w),  dw = Conv2dWeightGrad(x, dout),  db = dout summed over N, OH, OW
    ConvTranspose2d   y (N, C, H, W) = the gradient of conv(., w) with respect to its input, applied to
                      d (N, K, OH, OW), + b (C,) per channel: conv_transpose2d
                      dd = Conv2d(dy, w),  dw = Conv2dWeightGrad(dy, d),  db = dy summed over N, H, W
    Conv2dWeightGrad  dw (K, C/groups, R, S) = the gradient of conv(x, .) with respect to w, applied to d
                      dx = ConvTranspose2d(d, ddw),  dd = Conv2d(x, ddw)

All three take the convolution's ConvGeometry, seen from conv2d's side (x is its input, d its output).
"""
from typing import NamedTuple

from ..autograd import Function
from ._util import new, xp


class ConvGeometry(NamedTuple):
    stride: tuple[int, int]
    padding: tuple[int, int]  # top, left; the bottom / right padding is what the sizes imply
    dilation: tuple[int, int]
    groups: int


def _data(t):
    return None if t is None else t._data


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, w, b, geo, output_size):
        n = ctx.needs_input_grad
        ctx.save_for_backward(x if n[1] else None, w if n[0] else None)
        ctx.geo, ctx.x_size, ctx.kernel_size = geo, x.shape[2:], w.shape[2:]
        return new(xp(x).conv2d_forward(x._data, w._data, _data(b), *geo, output_size), x.device)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        n = ctx.needs_input_grad
        gx = ConvTranspose2d.apply(g, w, None, ctx.geo, ctx.x_size) if n[0] else None
        gw = Conv2dWeightGrad.apply(x, g, ctx.geo, ctx.kernel_size) if n[1] else None
        gb = g.sum(dim=(0, 2, 3)) if n[2] else None
        return gx, gw, gb, None, None


class ConvTranspose2d(Function):
    @staticmethod
    def forward(ctx, d, w, b, geo, input_size):
        n = ctx.needs_input_grad
        ctx.save_for_backward(d if n[1] else None, w if n[0] else None)
        ctx.geo, ctx.d_size, ctx.kernel_size = geo, d.shape[2:], w.shape[2:]
        return new(xp(d).conv2d_backward_input(d._data, w._data, _data(b), input_size, *geo), d.device)

    @staticmethod
    def backward(ctx, g):
        d, w = ctx.saved_tensors
        n = ctx.needs_input_grad
        gd = Conv2d.apply(g, w, None, ctx.geo, ctx.d_size) if n[0] else None
        gw = Conv2dWeightGrad.apply(g, d, ctx.geo, ctx.kernel_size) if n[1] else None
        gb = g.sum(dim=(0, 2, 3)) if n[2] else None
        return gd, gw, gb, None, None


class Conv2dWeightGrad(Function):
    @staticmethod
    def forward(ctx, x, d, geo, kernel_size):
        n = ctx.needs_input_grad
        ctx.save_for_backward(x if n[1] else None, d if n[0] else None)
        ctx.geo, ctx.x_size, ctx.d_size = geo, x.shape[2:], d.shape[2:]
        return new(xp(x).conv2d_backward_weight(x._data, d._data, kernel_size, *geo), x.device)

    @staticmethod
    def backward(ctx, g):
        x, d = ctx.saved_tensors
        n = ctx.needs_input_grad
        gx = ConvTranspose2d.apply(d, g, None, ctx.geo, ctx.x_size) if n[0] else None
        gd = Conv2d.apply(x, g, None, ctx.geo, ctx.d_size) if n[1] else None
        return gx, gd, None, None
