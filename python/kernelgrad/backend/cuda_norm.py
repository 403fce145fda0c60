"""CUDA backend, softmax and normalisation family: softmax, log_softmax, cross-entropy, layer norm and
batch norm with their backward, on the kernels of csrc/cuda/softmax.cu and norm.cu (bindings in
csrc/python/bind_cuda_norm.cpp).

Signatures, results and errors are the CPU backend's (backend/cpu.py; the checks and messages of
csrc/python/bind_norm.cpp): float32 or float64 arrays of any strides in (made contiguous on the
device, a copy only when they are not), new contiguous arrays of x's dtype out; TypeError for a
dtype, ValueError for a shape or a value, IndexError for a class index out of range (found by the
kernel, which reports the first such position; the host reads that report, and the bad value).
"""
import operator

import numpy as np

from .cuda import _CODES, CudaArray, _m, _new, _numel, ascontiguous, reshape, to_numpy, zeros

__all__ = [
    "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy", "cross_entropy_backward",
    "cross_entropy_probs", "cross_entropy_probs_backward", "layer_norm", "layer_norm_backward", "batch_norm",
    "batch_norm_backward",
]

_F32, _F64, _I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)


# --- argument checks
def _shape(s):
    return str(tuple(s))  # NumPy's spelling: (3,), (2, 3), ()


def _float_arg(fn, name, a):
    """a float32 or float64 CUDA array, contiguous: the array that sets the dtype of the call."""
    if not isinstance(a, CudaArray):
        raise TypeError(f"{fn}: expected {name} to be a CUDA array, got {type(a).__name__}")
    if a.dtype not in (_F32, _F64):
        raise TypeError(f"{fn}: expected {name} to be float32 or float64, got {a.dtype}")
    return ascontiguous(a)


def _array_arg(fn, name, a, dtype):
    if not isinstance(a, CudaArray):
        raise TypeError(f"{fn}: expected {name} to be a CUDA array of {dtype}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{fn}: expected {name} to be {dtype}, got {a.dtype}")
    return ascontiguous(a)


def _optional_arg(fn, name, a, dtype):
    return None if a is None else _array_arg(fn, name, a, dtype)


def _expect_shape(fn, name, a, want, what):
    if a is not None and tuple(a.shape) != tuple(want):
        raise ValueError(f"{fn}: expected {name} of shape {_shape(want)} ({what}), got {_shape(a.shape)}")


def _ptr(a):
    """The device address of an optional array (0: absent)."""
    return 0 if a is None else a._ptr


def _label_smoothing(fn, value):
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise ValueError(f"{fn}: expected label_smoothing in [0, 1], got {value}")
    return value


# --- softmax, log_softmax and their backward: along dim of (outer, dim, inner)
def _lines(fn, shape, dim):
    """(outer, dim, inner) of shape along dim (a 0-d array is one value)."""
    dim, n = operator.index(dim), max(len(shape), 1)
    if not -n <= dim < n:
        raise ValueError(f"{fn}: expected dim in [{-n}, {n - 1}] for an array of {len(shape)} dimensions, got {dim}")
    if not shape:
        return 1, 1, 1
    d = dim % n
    return _numel(shape[:d]), shape[d], _numel(shape[d + 1:])


def _softmax(fn, x, dim, log):
    x = _float_arg(fn, "x", x)
    outer, n, inner = _lines(fn, x.shape, dim)
    y = _new(x.shape, x.dtype)
    if y.size:
        _m.softmax_forward(_CODES[x.dtype], y._ptr, x._ptr, outer, n, inner, log)
    return y


def _softmax_backward(fn, y, dy, dim, log):
    y = _float_arg(fn, "y", y)
    dy = _array_arg(fn, "dy", dy, y.dtype)
    _expect_shape(fn, "dy", dy, y.shape, "the shape of y")
    outer, n, inner = _lines(fn, y.shape, dim)
    dx = _new(y.shape, y.dtype)
    if dx.size:
        _m.softmax_backward(_CODES[y.dtype], dx._ptr, y._ptr, dy._ptr, outer, n, inner, log)
    return dx


def softmax(x, dim):
    """y = exp(x - max) / sum(exp(x - max)) along dim."""
    return _softmax("softmax", x, dim, False)


def log_softmax(x, dim):
    """y = (x - max) - log(sum(exp(x - max))) along dim."""
    return _softmax("log_softmax", x, dim, True)


def softmax_backward(y, dy, dim):
    """dx = y * (dy - sum(dy * y)), y = softmax(x)."""
    return _softmax_backward("softmax_backward", y, dy, dim, False)


def log_softmax_backward(y, dy, dim):
    """dx = dy - exp(y) * sum(dy), y = log_softmax(x)."""
    return _softmax_backward("log_softmax_backward", y, dy, dim, True)


# --- cross-entropy: x (N, C, d1, ...), D = d1 * ...; losses and lse of shape (N, d1, ...)
def _class_dims(fn, x):
    if x.ndim < 2:
        raise ValueError(f"{fn}: expected x of shape (N, C, d1, ...) with at least 2 dimensions, got {_shape(x.shape)}")
    return x.shape[0], x.shape[1], _numel(x.shape[2:]), (x.shape[0],) + tuple(x.shape[2:])


_POSITIONS = "(N, d1, ...) for x of shape (N, C, d1, ...)"


def _class_target_args(fn, x, target, weight):
    """Checked (target, weight, N, C, D, positions) of the class-index forms."""
    target = _array_arg(fn, "target", target, _I64)
    weight = _optional_arg(fn, "weight", weight, x.dtype)
    N, C, D, positions = _class_dims(fn, x)
    _expect_shape(fn, "target", target, positions, _POSITIONS)
    return target, weight, N, C, D, positions


def _class_launch(fn, kernel, target, C, ignore_index, *args):
    """Run a class-index kernel (its last argument: the error report), then raise for a bad target."""
    error = zeros((1,), _I64)
    kernel(*args, error._ptr)
    bad = int(to_numpy(error)[0])  # positions - the first bad position, or 0
    if bad:
        value = int(to_numpy(reshape(target, (-1,))[target.size - bad]))
        raise IndexError(f"{fn}: target {value} is out of bounds: expected a class index in [0, {C - 1}] or "
                         f"ignore_index ({ignore_index})")


def cross_entropy(x, target, weight, ignore_index, label_smoothing):
    """(loss, lse) at each position of x (N, C, d1, ...) with int64 class indices target (N, d1, ...)."""
    fn = "cross_entropy"
    x = _float_arg(fn, "x", x)
    target, weight, N, C, D, positions = _class_target_args(fn, x, target, weight)
    _expect_shape(fn, "weight", weight, (C,), "(C,)")
    eps, ignore_index = _label_smoothing(fn, label_smoothing), operator.index(ignore_index)
    loss, lse = _new(positions, x.dtype), _new(positions, x.dtype)
    if loss.size:
        _class_launch(fn, _m.cross_entropy_forward, target, C, ignore_index, _CODES[x.dtype], loss._ptr, lse._ptr,
                      x._ptr, target._ptr, _ptr(weight), N, C, D, ignore_index, eps)
    return loss, lse


def cross_entropy_backward(dloss, x, lse, target, weight, ignore_index, label_smoothing):
    """dx (x's shape) of cross_entropy's per-position losses, given their gradient dloss."""
    fn = "cross_entropy_backward"
    x = _float_arg(fn, "x", x)
    dloss, lse = _array_arg(fn, "dloss", dloss, x.dtype), _array_arg(fn, "lse", lse, x.dtype)
    target, weight, N, C, D, positions = _class_target_args(fn, x, target, weight)
    _expect_shape(fn, "dloss", dloss, positions, "the shape of target")
    _expect_shape(fn, "lse", lse, positions, "the shape of target")
    _expect_shape(fn, "weight", weight, (C,), "(C,)")
    eps, ignore_index = _label_smoothing(fn, label_smoothing), operator.index(ignore_index)
    dx = _new(x.shape, x.dtype)
    if target.size:  # (also when C == 0: every target must then be ignore_index)
        _class_launch(fn, _m.cross_entropy_backward, target, C, ignore_index, _CODES[x.dtype], dx._ptr, dloss._ptr,
                      x._ptr, lse._ptr, target._ptr, _ptr(weight), N, C, D, ignore_index, eps)
    return dx


def cross_entropy_probs(x, target, weight, label_smoothing):
    """(loss, lse) at each position of x (N, C, d1, ...) with class probabilities target of x's shape."""
    fn = "cross_entropy_probs"
    x = _float_arg(fn, "x", x)
    target = _array_arg(fn, "target", target, x.dtype)
    weight = _optional_arg(fn, "weight", weight, x.dtype)
    N, C, D, positions = _class_dims(fn, x)
    _expect_shape(fn, "target", target, x.shape, "class probabilities: the shape of x")
    _expect_shape(fn, "weight", weight, (C,), "(C,)")
    eps = _label_smoothing(fn, label_smoothing)
    loss, lse = _new(positions, x.dtype), _new(positions, x.dtype)
    if loss.size:
        _m.cross_entropy_probs_forward(_CODES[x.dtype], loss._ptr, lse._ptr, x._ptr, target._ptr, _ptr(weight), N, C,
                                       D, eps)
    return loss, lse


def cross_entropy_probs_backward(dloss, x, lse, target, weight, label_smoothing):
    """dx (x's shape) of cross_entropy_probs's per-position losses, given their gradient dloss."""
    fn = "cross_entropy_probs_backward"
    x = _float_arg(fn, "x", x)
    target = _array_arg(fn, "target", target, x.dtype)
    dloss, lse = _array_arg(fn, "dloss", dloss, x.dtype), _array_arg(fn, "lse", lse, x.dtype)
    weight = _optional_arg(fn, "weight", weight, x.dtype)
    N, C, D, positions = _class_dims(fn, x)
    _expect_shape(fn, "target", target, x.shape, "class probabilities: the shape of x")
    _expect_shape(fn, "dloss", dloss, positions, _POSITIONS)
    _expect_shape(fn, "lse", lse, positions, _POSITIONS)
    _expect_shape(fn, "weight", weight, (C,), "(C,)")
    eps = _label_smoothing(fn, label_smoothing)
    dx = _new(x.shape, x.dtype)
    if dx.size:
        _m.cross_entropy_probs_backward(_CODES[x.dtype], dx._ptr, dloss._ptr, x._ptr, lse._ptr, target._ptr,
                                        _ptr(weight), N, C, D, eps)
    return dx


# --- layer norm: rows of the last normalized_ndim dims
def _row_dims(fn, x, normalized_ndim):
    """(rows, D, leading shape, normalized shape) of x with k = normalized_ndim trailing dims."""
    k = operator.index(normalized_ndim)
    if not 1 <= k <= x.ndim:
        raise ValueError(f"{fn}: expected normalized_ndim in [1, {x.ndim}] for x of shape {_shape(x.shape)}, got {k}")
    lead, norm = tuple(x.shape[:x.ndim - k]), tuple(x.shape[x.ndim - k:])
    return _numel(lead), _numel(norm), lead, norm


def layer_norm(x, normalized_ndim, weight, bias, eps):
    """(y, mean, rstd): each row of the last normalized_ndim dims normalised, then scaled and shifted."""
    fn = "layer_norm"
    x = _float_arg(fn, "x", x)
    weight, bias = _optional_arg(fn, "weight", weight, x.dtype), _optional_arg(fn, "bias", bias, x.dtype)
    rows, D, lead, norm = _row_dims(fn, x, normalized_ndim)
    _expect_shape(fn, "weight", weight, norm, "the normalized shape")
    _expect_shape(fn, "bias", bias, norm, "the normalized shape")
    y, mean, rstd = _new(x.shape, x.dtype), _new(lead, x.dtype), _new(lead, x.dtype)
    _m.layer_norm_forward(_CODES[x.dtype], y._ptr, _ptr(mean), _ptr(rstd), x._ptr, _ptr(weight), _ptr(bias), rows, D,
                          float(eps))
    return y, mean, rstd


def layer_norm_backward(dy, x, mean, rstd, weight, normalized_ndim, weight_grad, bias_grad):
    """(dx, dweight or None, dbias or None)."""
    fn = "layer_norm_backward"
    x = _float_arg(fn, "x", x)
    dy = _array_arg(fn, "dy", dy, x.dtype)
    mean, rstd = _array_arg(fn, "mean", mean, x.dtype), _array_arg(fn, "rstd", rstd, x.dtype)
    weight = _optional_arg(fn, "weight", weight, x.dtype)
    rows, D, lead, norm = _row_dims(fn, x, normalized_ndim)
    _expect_shape(fn, "dy", dy, x.shape, "the shape of x")
    _expect_shape(fn, "mean", mean, lead, "the leading, not normalized, dims of x")
    _expect_shape(fn, "rstd", rstd, lead, "the leading, not normalized, dims of x")
    _expect_shape(fn, "weight", weight, norm, "the normalized shape")
    dx = _new(x.shape, x.dtype)
    dw = _new(norm, x.dtype) if weight_grad else None
    db = _new(norm, x.dtype) if bias_grad else None
    _m.layer_norm_backward(_CODES[x.dtype], dx._ptr, _ptr(dw), _ptr(db), dy._ptr, x._ptr, _ptr(mean), _ptr(rstd),
                           _ptr(weight), rows, D)
    return dx, dw, db


# --- batch norm: x (N, C, d1, ...), L = d1 * ...
def _channel_dims(fn, x):
    if x.ndim < 2:
        raise ValueError(f"{fn}: expected x of shape (N, C, d1, ...) with at least 2 dimensions, got {_shape(x.shape)}")
    return x.shape[0], x.shape[1], _numel(x.shape[2:])


def batch_norm(x, mean, var, weight, bias, eps):
    """(y, mean, var): mean and var (C,) to normalise with, or both None for the batch's (biased
    variance), which are then returned."""
    fn = "batch_norm"
    x = _float_arg(fn, "x", x)
    mean, var = _optional_arg(fn, "mean", mean, x.dtype), _optional_arg(fn, "var", var, x.dtype)
    weight, bias = _optional_arg(fn, "weight", weight, x.dtype), _optional_arg(fn, "bias", bias, x.dtype)
    N, C, L = _channel_dims(fn, x)
    if (mean is None) != (var is None):
        raise ValueError(f"{fn}: expected mean and var to be both given (running statistics) or both None (batch "
                         f"statistics), got only {'mean' if mean is not None else 'var'}")
    for name, a in (("mean", mean), ("var", var), ("weight", weight), ("bias", bias)):
        _expect_shape(fn, name, a, (C,), "(C,)")
    code = _CODES[x.dtype]
    if mean is None:
        mean, var = _new((C,), x.dtype), _new((C,), x.dtype)
        _m.batch_norm_stats(code, _ptr(mean), _ptr(var), x._ptr, N, C, L)
    y = _new(x.shape, x.dtype)
    _m.batch_norm_forward(code, y._ptr, x._ptr, _ptr(mean), _ptr(var), _ptr(weight), _ptr(bias), N, C, L, float(eps))
    return y, mean, var


def batch_norm_backward(dy, x, mean, var, weight, eps, training):
    """(dx, dweight, dbias); training: mean and var are x's batch statistics (their gradient flows
    into dx), otherwise constants (running statistics)."""
    fn = "batch_norm_backward"
    x = _float_arg(fn, "x", x)
    dy = _array_arg(fn, "dy", dy, x.dtype)
    mean, var = _array_arg(fn, "mean", mean, x.dtype), _array_arg(fn, "var", var, x.dtype)
    weight = _optional_arg(fn, "weight", weight, x.dtype)
    N, C, L = _channel_dims(fn, x)
    _expect_shape(fn, "dy", dy, x.shape, "the shape of x")
    for name, a in (("mean", mean), ("var", var), ("weight", weight)):
        _expect_shape(fn, name, a, (C,), "(C,)")
    dx, dw, db = _new(x.shape, x.dtype), _new((C,), x.dtype), _new((C,), x.dtype)
    _m.batch_norm_backward(_CODES[x.dtype], dx._ptr, _ptr(dw), _ptr(db), dy._ptr, x._ptr, _ptr(mean), _ptr(var),
                           _ptr(weight), N, C, L, float(eps), bool(training))
    return dx, dw, db
