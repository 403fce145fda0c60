"""Elementwise ops with broadcasting: forward on the backend arrays, backward in tensor ops.

d(a+b) = g, g          d(a*b) = g*b, g*a         d(a/b) = g/b, -g*a/b^2
d(a^b) = g*b*a^(b-1), g*a^b*log(a)               d(exp a) = g*exp(a) ...
Gradients of broadcast operands are summed back to the operand's shape (sum_to).
"""
from ..autograd import Function
from ._util import new, sum_to, xp


# --- binary arithmetic
class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return new(xp(a).add(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        n = ctx.needs_input_grad
        return (sum_to(g, sa) if n[0] else None), (sum_to(g, sb) if n[1] else None)


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return new(xp(a).subtract(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        n = ctx.needs_input_grad
        return (sum_to(g, sa) if n[0] else None), (sum_to(-g, sb) if n[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        n = ctx.needs_input_grad
        # save only what the other gradient needs, so that `y *= 2` stays differentiable
        ctx.save_for_backward(a if n[1] else None, b if n[0] else None)
        ctx.shapes = (a.shape, b.shape)
        return new(xp(a).multiply(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        sa, sb = ctx.shapes
        n = ctx.needs_input_grad
        return (sum_to(g * b, sa) if n[0] else None), (sum_to(g * a, sb) if n[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        n = ctx.needs_input_grad
        ctx.save_for_backward(a if n[1] else None, b)
        ctx.shapes = (a.shape, b.shape)
        return new(xp(a).divide(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        sa, sb = ctx.shapes
        n = ctx.needs_input_grad
        ga = sum_to(g / b, sa) if n[0] else None
        gb = sum_to(-g * a / (b * b), sb) if n[1] else None
        return ga, gb


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        out = new(xp(a).power(a._data, b._data), a.device)
        ctx.save_for_backward(a, b, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, g):
        from ..tensor import where

        a, b, out = ctx.saved_tensors
        n = ctx.needs_input_grad
        # d a^b / da = b a^(b-1), taken as 0 where b == 0 (also at a == 0, as PyTorch does)
        ga = sum_to(where(b == 0, 0.0, g * b * a ** (b - 1)), a.shape) if n[0] else None
        gb = None
        if n[1]:
            # d a^b / db = a^b log a; where a == 0 (and b >= 0) PyTorch takes it as 0
            gb = sum_to(where(a == 0, 0.0, g * out * a.log()), b.shape)
        return ga, gb


class Maximum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return new(xp(a).maximum(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _minmax_grads(ctx, g, a > b, a == b)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return new(xp(a).minimum(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _minmax_grads(ctx, g, a < b, a == b)


def _minmax_grads(ctx, g, a_wins, tie):
    """The winner takes the gradient; ties split it in half (PyTorch's rule)."""
    a, b = ctx.saved_tensors
    share = a_wins.to(g.dtype) + 0.5 * tie.to(g.dtype)
    n = ctx.needs_input_grad
    return (sum_to(g * share, a.shape) if n[0] else None), (sum_to(g * (1 - share), b.shape) if n[1] else None)


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return new(xp(a).where(cond._data, a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        from ..tensor import where

        (cond,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        n = ctx.needs_input_grad
        ga = sum_to(where(cond, g, 0.0), sa) if n[1] else None
        gb = sum_to(where(cond, 0.0, g), sb) if n[2] else None
        return None, ga, gb


# --- unary math
class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return new(xp(a).negative(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = new(xp(a).exp(a._data), a.device)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(xp(a).log(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / a


class Log1p(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(xp(a).log1p(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g / (a + 1)


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = new(xp(a).sqrt(a._data), a.device)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (2 * out)


class Rsqrt(Function):
    @staticmethod
    def forward(ctx, a):
        out = new(xp(a).rsqrt(a._data), a.device)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return -0.5 * g * out * out * out


class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(xp(a).abs(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * a.sign()


class Sign(Function):
    @staticmethod
    def forward(ctx, a):
        return new(xp(a).sign(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        return g * 0


class Sin(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(xp(a).sin(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * a.cos()


class Cos(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(xp(a).cos(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return -g * a.sin()


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = new(xp(a).tanh(a._data), a.device)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (1 - out * out)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, a):
        out = new(xp(a).sigmoid(a._data), a.device)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out * (1 - out)


class Relu(Function):
    @staticmethod
    def forward(ctx, a):
        out = new(xp(a).maximum(a._data, 0).astype(a._data.dtype, copy=False), a.device)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * (out > 0)


class Clamp(Function):
    """clamp(a, lo, hi) with scalar bounds; the gradient passes where lo <= a <= hi."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        B = xp(a)
        inside = B.full(a.shape, True)
        if lo is not None:
            inside = B.logical_and(inside, B.greater_equal(a._data, lo))
        if hi is not None:
            inside = B.logical_and(inside, B.less_equal(a._data, hi))
        ctx.save_for_backward(new(inside, a.device))  # a mask, so clamp_ may overwrite a
        return new(B.clip(a._data, lo, hi).astype(a._data.dtype, copy=False), a.device)

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved_tensors
        return g * inside, None, None


class Cast(Function):
    """Change dtype and/or device; the gradient goes back to the input's dtype and device."""

    @staticmethod
    def forward(ctx, a, dtype, device):
        from ..backend import backend_for

        ctx.src = (a.dtype, a.device)
        data = a._data
        if device != a.device:
            data = backend_for(device).from_numpy(xp(a).to_numpy(data))
        if dtype != a.dtype:
            data = backend_for(device).astype(data, dtype.np)
        return new(data, device)

    @staticmethod
    def backward(ctx, g):
        dtype, device = ctx.src
        return g.to(device=device, dtype=dtype), None, None
