"""CPU backend: NumPy arrays. NumPy does elementwise, reduction and shape work; the C++ kernels in
`kernelgrad._C` do the named kernels (matmul here; convolution, pooling, ... in later files).

Every backend module provides the names in `__all__` with these semantics (NumPy's), so ops can be
written once for every device.
"""
import numpy as np

from .. import _C

__all__ = [
    # creation and conversion
    "asarray", "empty", "zeros", "full", "arange", "linspace", "eye", "to_numpy", "from_numpy",
    # elementwise
    "add", "subtract", "multiply", "divide", "floor_divide", "trunc_divide", "remainder", "power", "negative",
    "exp", "log", "log1p", "sqrt", "abs", "sign", "sin", "cos", "tanh", "maximum", "minimum",
    "where", "clip", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_not", "logical_and", "logical_or", "isfinite", "isnan", "sigmoid", "rsqrt",
    # reductions
    "sum", "prod", "amax", "amin", "argmax", "argmin", "all", "any", "cumprod",
    # shape and memory
    "reshape", "transpose", "broadcast_to", "concatenate", "tril", "triu", "copy", "ascontiguous",
    "getitem", "setitem", "may_share_memory", "index_add", "gather", "scatter_add", "astype", "is_contiguous",
    "nonzero", "cumsum",
    # kernels
    "matmul", "erf", "erfc",
    "softmax", "log_softmax", "softmax_backward", "log_softmax_backward", "cross_entropy", "cross_entropy_backward", "cross_entropy_probs", "cross_entropy_probs_backward", "layer_norm", "layer_norm_backward", "batch_norm", "batch_norm_backward",  # noqa: E501
    "max_pool2d", "max_pool2d_with_indices", "max_pool2d_backward", "adaptive_max_pool2d", "avg_pool2d", "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "max_unpool2d", "max_unpool2d_backward", "upsample_nearest2d", "upsample_nearest2d_backward", "upsample_bilinear2d", "upsample_bilinear2d_backward", "pad2d", "pad2d_backward",
    "attention_forward", "attention_backward",
    # random
    "uniform", "normal", "integers", "permutation",
]
__all__ += ["conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward"]

# --- creation and conversion
asarray = np.asarray
empty = np.empty
zeros = np.zeros
full = np.full
eye = np.eye


def arange(start, stop, step, dtype):
    """start, start + step, ... below stop, computed in float64 (int64 for an integer dtype), as dtype."""
    wide = np.int64 if np.dtype(dtype).kind in "iub" else np.float64
    return np.arange(start, stop, step, dtype=wide).astype(dtype, copy=False)


def linspace(start, stop, num, dtype):
    return np.linspace(start, stop, num).astype(dtype, copy=False)


def to_numpy(a):
    return a


def from_numpy(a):
    return a


# --- elementwise (NumPy ufuncs keep the dtype of their inputs). IEEE results (inf, nan) are the
# answer, as in PyTorch, so NumPy's floating-point warnings are silenced for these calls only.
def _quiet(ufunc):
    def call(*args, **kwargs):
        with np.errstate(all="ignore"):
            return ufunc(*args, **kwargs)

    call.__name__ = ufunc.__name__
    return call


add = _quiet(np.add)
subtract = _quiet(np.subtract)
multiply = _quiet(np.multiply)
divide = _quiet(np.divide)
floor_divide = _quiet(np.floor_divide)
remainder = _quiet(np.remainder)


@_quiet
def trunc_divide(a, b):
    q = np.trunc(np.true_divide(a, b))
    return q.astype(np.result_type(a, b), copy=False)

power = _quiet(np.power)
negative = np.negative
exp = _quiet(np.exp)
log = _quiet(np.log)
log1p = _quiet(np.log1p)
sqrt = _quiet(np.sqrt)
abs = np.abs
sign = np.sign
sin = np.sin
cos = np.cos
tanh = np.tanh
maximum = np.maximum
minimum = np.minimum
where = np.where
clip = np.clip
equal = np.equal
not_equal = np.not_equal
less = np.less
less_equal = np.less_equal
greater = np.greater
greater_equal = np.greater_equal
logical_not = np.logical_not
logical_and = np.logical_and
logical_or = np.logical_or
isfinite = np.isfinite
isnan = np.isnan


@_quiet
def sigmoid(x):
    # 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0: no overflow either side
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@_quiet
def rsqrt(x):
    return 1 / np.sqrt(x)


# --- reductions (axis: None, int or tuple)
sum = np.sum
prod = np.prod
amax = np.amax
amin = np.amin
argmax = np.argmax
argmin = np.argmin
all = np.all
any = np.any
cumprod = np.cumprod

# --- shape and memory
reshape = np.reshape
transpose = np.transpose
broadcast_to = np.broadcast_to
concatenate = np.concatenate
tril = np.tril
triu = np.triu


def copy(a):
    return np.array(a, copy=True, order="C")


def ascontiguous(a):
    return np.ascontiguousarray(a)


def astype(a, npdtype):
    return a.astype(npdtype, copy=False)


may_share_memory = np.may_share_memory
nonzero = np.nonzero
cumsum = np.cumsum


def is_contiguous(a):
    return bool(a.flags["C_CONTIGUOUS"])


def getitem(a, index):
    return a[index]


def setitem(a, index, value):
    a[index] = value


def index_add(a, index, value):
    """a[index] += value, accumulating where an advanced index repeats."""
    np.add.at(a, index, value)


def _along(index, axis):
    idx = list(np.indices(index.shape, sparse=True))
    idx[axis] = index
    return tuple(idx)


def gather(a, axis, index):
    """out[i, j, ...] = a[..., index[i, j, ...], ...] along `axis`; index may be smaller than `a`
    in the other dims."""
    return a[_along(index, axis)]


def scatter_add(a, axis, index, src):
    """a[..., index[i, j, ...], ...] += src[i, j, ...] along `axis` (index and src have one shape)."""
    src = src[tuple(slice(0, n) for n in index.shape)]
    np.add.at(a, _along(index, axis), src)


# --- kernels
erf = _C.erf  # (x) -> erf(x), float32 / float64
erfc = _C.erfc  # (x) -> erfc(x) = 1 - erf(x), accurate for large x


def matmul(a, b):
    """(..., M, K) @ (..., K, N) -> (..., M, N); batch dims broadcast (as views, no copies)."""
    if a.dtype not in (np.float32, np.float64):
        return np.matmul(a, b)  # int64 and float16 are not kernels: NumPy computes them
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    return _C.matmul(a, b)


# --- random: `gen` is a kg.Generator; the CPU stream is its numpy.random.Generator (Philox)
def uniform(gen, shape, npdtype):
    return gen._np.random(shape, dtype=np.float64).astype(npdtype, copy=False) if npdtype != np.float32 \
        else gen._np.random(shape, dtype=np.float32)


def normal(gen, shape, npdtype):
    if npdtype == np.float32:
        return gen._np.standard_normal(shape, dtype=np.float32)
    return gen._np.standard_normal(shape).astype(npdtype, copy=False)


def integers(gen, low, high, shape):
    return gen._np.integers(low, high, size=shape, dtype=np.int64)


def permutation(gen, n):
    return gen._np.permutation(n).astype(np.int64)


# --- convolution (csrc/cpu/conv2d.cpp). Geometry arguments are (h, w) pairs; padding is the top and
# left zero padding, the bottom and right padding is what the output (or input) size implies.
def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, output_size):
    """x (N, C, H, W) conv weight (K, C/groups, R, S) + bias (K,) or None -> (N, K, *output_size)."""
    return _C.conv2d_forward(x, weight, bias, stride, padding, dilation, groups, output_size)


def conv2d_backward_input(grad_output, weight, bias, input_size, stride, padding, dilation, groups):
    """d conv2d / d x for grad_output (N, K, OH, OW) -> (N, C, *input_size), plus bias (C,) or None
    per channel (conv_transpose2d is this with its bias)."""
    return _C.conv2d_backward_input(grad_output, weight, bias, input_size, stride, padding, dilation, groups)


def conv2d_backward_weight(x, grad_output, kernel_size, stride, padding, dilation, groups):
    """d conv2d / d weight for x (N, C, H, W) and grad_output (N, K, OH, OW) -> (K, C/groups, *kernel_size)."""
    return _C.conv2d_backward_weight(x, grad_output, kernel_size, stride, padding, dilation, groups)
# --- kernels: softmax, cross-entropy, layer norm, batch norm (csrc/cpu/softmax.cpp, norm.cpp).
# Arrays of any strides in, new C-contiguous arrays out; x's float dtype throughout.
softmax = _C.softmax  # (x, dim) -> y
log_softmax = _C.log_softmax  # (x, dim) -> y
softmax_backward = _C.softmax_backward  # (y, dy, dim) -> dx
log_softmax_backward = _C.log_softmax_backward  # (y, dy, dim) -> dx
# x (N, C, d1, ...), int64 target (N, d1, ...), weight (C,) or None -> per-position (loss, lse)
cross_entropy = _C.cross_entropy  # (x, target, weight, ignore_index, label_smoothing)
# (dloss, x, lse, target, weight, ignore_index, label_smoothing) -> dx
cross_entropy_backward = _C.cross_entropy_backward
# the same with class-probability targets of x's shape
cross_entropy_probs = _C.cross_entropy_probs  # (x, target, weight, label_smoothing) -> (loss, lse)
cross_entropy_probs_backward = _C.cross_entropy_probs_backward  # (dloss, x, lse, target, weight, label_smoothing)
# over the last normalized_ndim dims: (x, normalized_ndim, weight, bias, eps) -> (y, mean, rstd)
layer_norm = _C.layer_norm
layer_norm_backward = _C.layer_norm_backward  # (dy, x, mean, rstd, weight, normalized_ndim, weight_grad, bias_grad)
# x (N, C, d1, ...); mean, var: (C,) running statistics, or None for the batch's -> (y, mean, var)
batch_norm = _C.batch_norm  # (x, mean, var, weight, bias, eps)
batch_norm_backward = _C.batch_norm_backward  # (dy, x, mean, var, weight, eps, training) -> (dx, dweight, dbias)
# --- pooling, unpooling, upsampling, reflect / replicate padding: the _C kernels of
# csrc/cpu/pool2d.h, upsample.h and pad2d.h, as they are (arguments and errors in
# csrc/python/bind_pool.cpp). Arrays are (N, C, H, W), any strides; pairs are (height, width).
#   max_pool2d(x, kernel, stride, padding, dilation, ceil_mode) -> out
#   max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode) -> (out, int64 indices h * W + w)
#   adaptive_max_pool2d(x, out_hw) -> (out, indices);  max_pool2d_backward(g, indices, in_hw)
#   avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
#   avg_pool2d_backward(g, in_hw, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
#   adaptive_avg_pool2d(x, out_hw);  adaptive_avg_pool2d_backward(g, in_hw)
#   max_unpool2d(x, indices, out_hw);  max_unpool2d_backward(g, indices) (also undoes max_pool2d_backward)
#   upsample_nearest2d(x, out_hw, scale_factors or None);  _backward(g, in_hw, scale_factors)
#   upsample_bilinear2d(x, out_hw, align_corners, scale_factors);  _backward(g, in_hw, align_corners, ...)
#   pad2d(x, (left, right, top, bottom), "reflect" | "replicate");  pad2d_backward(g, in_hw, pad, mode)
max_pool2d = _C.max_pool2d
max_pool2d_with_indices = _C.max_pool2d_with_indices
max_pool2d_backward = _C.max_pool2d_backward
adaptive_max_pool2d = _C.adaptive_max_pool2d
avg_pool2d = _C.avg_pool2d
avg_pool2d_backward = _C.avg_pool2d_backward
adaptive_avg_pool2d = _C.adaptive_avg_pool2d
adaptive_avg_pool2d_backward = _C.adaptive_avg_pool2d_backward
max_unpool2d = _C.max_unpool2d
max_unpool2d_backward = _C.max_unpool2d_backward
upsample_nearest2d = _C.upsample_nearest2d
upsample_nearest2d_backward = _C.upsample_nearest2d_backward
upsample_bilinear2d = _C.upsample_bilinear2d
upsample_bilinear2d_backward = _C.upsample_bilinear2d_backward
pad2d = _C.pad2d
pad2d_backward = _C.pad2d_backward
# --- attention (the fused kernel: csrc/cpu/attention.cpp)
def _attention_views(q, k, v, attn_mask):
    """q, k, v broadcast to one batch shape, and attn_mask to (*batch, L, S): views, no copies."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (np.broadcast_to(x, batch + x.shape[-2:]) for x in (q, k, v))
    if attn_mask is not None:
        attn_mask = np.broadcast_to(attn_mask, batch + (q.shape[-2], k.shape[-2]))
    return q, k, v, attn_mask


def attention_forward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
    """(out (*batch, L, Ev), lse (*batch, L)) of softmax(scale * q k^T + mask) v, with dropout
    p = dropout_p from `seed`; q (..., L, E), k (..., S, E), v (..., S, Ev) batch dims broadcast."""
    q, k, v, attn_mask = _attention_views(q, k, v, attn_mask)
    return _C.attention_forward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed)


def attention_backward(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale, dropout_p, seed):
    """(dq, dk, dv), each of the broadcast batch shape, for attention_forward's out and lse."""
    q, k, v, attn_mask = _attention_views(q, k, v, attn_mask)
    return _C.attention_backward(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale, dropout_p, seed)
