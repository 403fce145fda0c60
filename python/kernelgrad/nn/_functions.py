"""Autograd Functions behind some of kg.nn.functional: forward on the backend arrays, backward in
tensor ops (so double backward works).

    erf(x)            = 2/sqrt(pi) int_0^x e^{-t^2} dt          d/dx = 2/sqrt(pi) e^{-x^2}
    gelu(x)           = x Phi(x),  Phi(x) = (1 + erf(x/sqrt2))/2 d/dx = Phi(x) + x phi(x)
    log1p_exp(x)      = log(1 + e^x) (softplus)                 d/dx = sigmoid(x)
    hardtanh(x)       = clamp(x, lo, hi)                        d/dx = 1 on lo < x < hi (open)
    bce(x, y)         = -(y log x + (1-y) log(1-x)), logs >= -100
                                                  d/dx = (x - y) / max(x(1-x), 1e-12)

erf has no closed form and NumPy has none: it is evaluated in float64 from two expansions, each
used where it converges fast and without cancellation (both accurate to ~1e-15 relative):
    |x| < 2.5:  erf(x)  = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1))  (positive terms)
    |x| >= 2.5: erfc(x) = e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
                (Laplace's continued fraction, evaluated from the tail)
"""
import math

import numpy as np

from ..autograd import Function
from ..ops._util import new, xp

_ERF_SPLIT = 2.5
_ERF_TERMS = 40  # series terms / continued-fraction depth: both reach ~1e-15 relative at the split
_ERFC_CAP = 30.0  # erfc(x) underflows to 0 in float64 well before this; caps x*x away from overflow
_SQRT1_2 = 1 / math.sqrt(2)


def _erf_erfc_abs(B, a):
    """(erf(a), erfc(a)) for a float64 array a >= 0, each to full relative accuracy where it is small."""
    erf = B.empty(a.shape, dtype=np.float64)
    erfc = B.empty(a.shape, dtype=np.float64)
    small = B.less(a, _ERF_SPLIT)
    big = B.logical_not(small)

    s = B.getitem(a, small)  # series: term_n = term_{n-1} * 2 s^2 / (2n + 1)
    term, total, two_s2 = s, s, B.multiply(B.multiply(s, s), 2.0)
    for n in range(1, _ERF_TERMS):
        term = B.divide(B.multiply(term, two_s2), 2 * n + 1)
        total = B.add(total, term)
    e = B.multiply(B.multiply(B.exp(B.negative(B.multiply(s, s))), total), 2 / math.sqrt(math.pi))
    B.setitem(erf, small, e)
    B.setitem(erfc, small, B.subtract(1.0, e))

    z = B.minimum(B.getitem(a, big), _ERFC_CAP)  # continued fraction, innermost level first
    t = z
    for k in range(_ERF_TERMS, 0, -1):
        t = B.add(z, B.divide(k / 2, t))
    c = B.divide(B.exp(B.negative(B.multiply(z, z))), B.multiply(t, math.sqrt(math.pi)))
    B.setitem(erfc, big, c)
    B.setitem(erf, big, B.subtract(1.0, c))
    return erf, erfc


def erf_array(B, x):
    """erf of a backend array (any float dtype; computed in float64, returned in x's dtype)."""
    x64 = B.astype(x, np.float64)
    erf_abs, _ = _erf_erfc_abs(B, B.abs(x64))
    return B.astype(B.multiply(B.sign(x64), erf_abs), x.dtype)


def normal_cdf_array(B, x):
    """Phi(x) = erfc(-x/sqrt2)/2, from the accurate side of each tail."""
    z = B.multiply(B.astype(x, np.float64), _SQRT1_2)
    erf_abs, erfc_abs = _erf_erfc_abs(B, B.abs(z))
    return B.multiply(B.where(B.greater_equal(z, 0), B.add(1.0, erf_abs), erfc_abs), 0.5)


class Erf(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return new(erf_array(xp(a), a._data), a.device)

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
        return new(B.astype(B.multiply(a._data, normal_cdf_array(B, a._data)), a._data.dtype), a.device)

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
