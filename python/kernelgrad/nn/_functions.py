"""Autograd Functions behind some of kg.nn.functional: forward on the backend arrays, backward in
tensor ops (so double backward works).

    erf(x)            = 2/sqrt(pi) int_0^x e^{-t^2} dt          d/dx = 2/sqrt(pi) e^{-x^2}
    gelu(x)           = x Phi(x),  Phi(x) = (1 + erf(x/sqrt2))/2 d/dx = Phi(x) + x phi(x)
    log1p_exp(x)      = log(1 + e^x) (softplus)                 d/dx = sigmoid(x)
    hardtanh(x)       = clamp(x, lo, hi)                        d/dx = 1 on lo < x < hi (open)
    bce(x, y)         = -(y log x + (1-y) log(1-x)), logs >= -100
                                                  d/dx = (x - y) / max(x(1-x), 1e-12)

erf and erfc are backend kernels (the C library's, to ~1 ulp); the normal CDF is taken from the
accurate side of each tail: Phi(x) = erfc(-x/sqrt2)/2.
"""
import math

from ..autograd import Function
from ..ops._util import new, xp

_SQRT1_2 = 1 / math.sqrt(2)


def normal_cdf_array(B, x):
    """Phi(x) = erfc(-x/sqrt2)/2 of a backend array, in x's dtype."""
    return B.multiply(B.erfc(B.multiply(x, x.dtype.type(-_SQRT1_2))), x.dtype.type(0.5))


class Erf(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(xp(a).erf(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * (2 / math.sqrt(math.pi)) * (-a * a).exp()


class Gelu(Function):
    """gelu(x) = x Phi(x) (the exact, erf form)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        B = xp(a)
        return new(B.multiply(a._data, normal_cdf_array(B, a._data)), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        cdf = 0.5 * (1 + Erf.apply(a * _SQRT1_2))
        pdf = (-0.5 * a * a).exp() * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + a * pdf)


class Log1pExp(Function):
    """softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}): no overflow for any x."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        B = xp(a)
        d = a._data
        return new(B.astype(B.add(B.maximum(d, 0), B.log1p(B.exp(B.negative(B.abs(d))))), d.dtype), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * a.sigmoid()


class Hardtanh(Function):
    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.bounds = (lo, hi)
        B = xp(a)
        return new(B.astype(B.clip(a._data, lo, hi), a._data.dtype), a.device)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        lo, hi = ctx.bounds
        return g * ((a > lo) & (a < hi)), None, None


def _clamped_logs(x):
    """(log x, log(1 - x)), each clamped to >= -100 as PyTorch's BCE does (log 0 = -100)."""
    return x.log().clamp(min=-100), (1 - x).log().clamp(min=-100)


class BinaryCrossEntropy(Function):
    """Unreduced, unweighted BCE of probabilities x against targets y."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        log_x, log_1mx = _clamped_logs(x)
        return -(y * log_x + (1 - y) * log_1mx)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        n = ctx.needs_input_grad
        gx = g * (x - y) / ((1 - x) * x).clamp(min=1e-12) if n[0] else None
        gy = None
        if n[1]:
            log_x, log_1mx = _clamped_logs(x)
            gy = g * (log_1mx - log_x)
        return gx, gy
