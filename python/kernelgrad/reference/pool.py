"""Pooling, unpooling, upsampling and padding of (N, C, H, W) arrays, as PyTorch defines them.

Pooling windows. Along each spatial axis (size I), output o of a pooling reads the positions

    o * stride - padding + j * dilation,    j = 0 .. kernel - 1

where positions outside [0, I) are padding (-inf for max pooling, 0 for average pooling), and

    O = floor((I + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1

windows fit (ceil instead of floor with ceil_mode, then dropping a last window that would start in
the right padding). With kernel K, no dilation and no padding this is O = (I - K) / S + 1.

- max pooling: the maximum of each window and its index h * W + w in the input plane; ties go to
  the first maximum in row-major window order; a NaN is the maximum (the last NaN wins).
  Backward: each output gradient is added at its index (windows that overlap accumulate).
- average pooling: the window's sum divided by divisor_override, or by the window's size clipped
  to the padded input (count_include_pad) or to the input. Backward: each output gradient,
  divided the same way, is added to every position of its window.
- adaptive pooling to O outputs: window o is [floor(o * I / O), ceil((o + 1) * I / O)).
- max unpooling: zeros of the output size with each input value placed at its index.
  Backward: the gradient gathered at the indices.

Upsampling (F.interpolate), per axis with scale = 1 / scale_factor when a scale factor was given,
else in / out:
- nearest: output o reads src(o) = min(floor(o * scale), in - 1), computed in float32;
- bilinear: src(o) = o * (in - 1) / (out - 1) with align_corners (0 if out == 1), else
  max(scale * (o + 0.5) - 0.5, 0); the output mixes floor(src) and the next position (clamped)
  with weights 1 - l and l, l = src - floor(src); in 2-D rows and columns separately.
Both copy when out == in (and nearest reads o // 2 when out == 2 * in), as PyTorch does.
Backward: each output gradient is added to the positions it read, with the same weights.

Padding (F.pad): pad = (left, right, top, bottom, ...) pairs for the last dims, last dim first;
negative pads crop. constant fills with a value; reflect mirrors about the edge element (which is
not repeated); replicate repeats the edge element. Backward: each output gradient is added to the
input element it came from (zero where constant padding filled in).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "pool_output_size", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_max_pool2d", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "max_unpool2d",
    "max_unpool2d_backward", "nearest_source_index", "linear_source_index", "upsample_nearest2d",
    "upsample_nearest2d_backward", "upsample_bilinear2d", "upsample_bilinear2d_backward", "pad", "pad_backward",
]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# --- pooling windows

def pool_output_size(size, kernel, stride, padding=0, dilation=1, ceil_mode=False):
    """The number of windows along an axis of `size` positions (may be <= 0: nothing fits)."""
    room = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (room + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:  # the last window starts in the right padding
        out -= 1
    return out


def _windows(x, kernel_size, stride, padding, dilation, ceil_mode, fill):
    """Every pooling window of x as a view (N, C, OH, OW, kh, kw) of x padded with `fill` (more of
    it at the bottom and right when ceil_mode's last window reaches past the padding)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    H, W = x.shape[2:]
    OH = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    OW = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    extra_h = max((OH - 1) * sh + span_h - (H + 2 * ph), 0)
    extra_w = max((OW - 1) * sw + span_w - (W + 2 * pw), 0)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)), constant_values=fill)
    win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :OH, :OW]


def _argmax(flat):
    """Index of the maximum along the last axis: the first maximum, or the last NaN if any."""
    first_max = flat.argmax(-1)  # NumPy's argmax also returns NaN, but the first one
    nan = np.isnan(flat)
    last_nan = flat.shape[-1] - 1 - nan[..., ::-1].argmax(-1)
    return np.where(nan.any(-1), last_nan, first_max)


# --- max pooling

def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(out, indices), both (N, C, OH, OW); indices are h * W + w in the input plane (int64)."""
    kernel_size = _pair(kernel_size)
    stride = kernel_size if stride is None else _pair(stride)
    padding, dilation = _pair(padding), _pair(dilation)
    win = _windows(x, kernel_size, stride, padding, dilation, ceil_mode, -np.inf)
    N, C, OH, OW, kh, kw = win.shape
    flat = win.reshape(N, C, OH, OW, kh * kw)
    k = _argmax(flat)
    out = np.take_along_axis(flat, k[..., None], -1)[..., 0]
    i, j = np.divmod(k, kw)  # the tap's row and column in the window
    h = np.arange(OH)[:, None] * stride[0] - padding[0] + i * dilation[0]
    w = np.arange(OW)[None, :] * stride[1] - padding[1] + j * dilation[1]
    return out, (h * x.shape[3] + w).astype(np.int64)


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of max_pool2d (and adaptive_max_pool2d): grad_out added at the indices."""
    N, C, H, W = input_shape
    grad = np.zeros((N * C, H * W), grad_out.dtype)
    planes = np.arange(N * C)[:, None]
    np.add.at(grad, (planes, indices.reshape(N * C, -1)), grad_out.reshape(N * C, -1))
    return grad.reshape(input_shape)


# --- average pooling

def _avg_divisor(size, out, kernel, stride, padding, count_include_pad):
    """Per output along one axis: the window's extent, clipped to the padded input or, without
    count_include_pad, to the input."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


def _avg_geometry(x_hw, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """(kernel, stride, padding as pairs; the (OH, OW) divisors)."""
    kernel_size = _pair(kernel_size)
    stride = kernel_size if stride is None else _pair(stride)
    padding = _pair(padding)
    (H, W), (kh, kw), (sh, sw), (ph, pw) = x_hw, kernel_size, stride, padding
    OH = pool_output_size(H, kh, sh, ph, 1, ceil_mode)
    OW = pool_output_size(W, kw, sw, pw, 1, ceil_mode)
    if divisor_override:
        divisor = np.full((OH, OW), divisor_override)
    else:
        divisor = (_avg_divisor(H, OH, kh, sh, ph, count_include_pad)[:, None]
                   * _avg_divisor(W, OW, kw, sw, pw, count_include_pad)[None, :])
    return kernel_size, stride, padding, divisor


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    kernel_size, stride, padding, divisor = _avg_geometry(
        x.shape[2:], kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    win = _windows(x, kernel_size, stride, padding, (1, 1), ceil_mode, 0)
    return (win.sum(axis=(-2, -1)) / divisor).astype(x.dtype)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d: each grad_out / divisor added to every tap of its window."""
    (kh, kw), (sh, sw), (ph, pw), divisor = _avg_geometry(
        input_shape[2:], kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    N, C, H, W = input_shape
    OH, OW = grad_out.shape[2:]
    g = grad_out / divisor
    # gradient of the padded input, as long as the windows reach (ceil_mode may pass the padding)
    grad = np.zeros((N, C, max((OH - 1) * sh + kh, H + 2 * ph), max((OW - 1) * sw + kw, W + 2 * pw)))
    for i in range(kh):
        for j in range(kw):
            grad[:, :, i:i + sh * OH:sh, j:j + sw * OW:sw] += g
    return grad[:, :, ph:ph + H, pw:pw + W].astype(grad_out.dtype)


# --- adaptive pooling

def _adaptive_windows(size, out):
    """[(start, end)] of the adaptive windows along one axis: floor(o*I/O) to ceil((o+1)*I/O)."""
    return [((o * size) // out, -((-(o + 1) * size) // out)) for o in range(out)]


def adaptive_avg_pool2d(x, output_size):
    N, C, H, W = x.shape
    OH, OW = output_size
    out = np.empty((N, C, OH, OW), x.dtype)
    for oh, (h0, h1) in enumerate(_adaptive_windows(H, OH)):
        for ow, (w0, w1) in enumerate(_adaptive_windows(W, OW)):
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


def adaptive_avg_pool2d_backward(grad_out, input_shape):
    H, W = input_shape[2:]
    OH, OW = grad_out.shape[2:]
    grad = np.zeros(input_shape, grad_out.dtype)
    for oh, (h0, h1) in enumerate(_adaptive_windows(H, OH)):
        for ow, (w0, w1) in enumerate(_adaptive_windows(W, OW)):
            grad[:, :, h0:h1, w0:w1] += grad_out[:, :, oh, ow, None, None] / ((h1 - h0) * (w1 - w0))
    return grad


def adaptive_max_pool2d(x, output_size):
    """(out, indices) as max_pool2d gives them, over the adaptive windows."""
    N, C, H, W = x.shape
    OH, OW = output_size
    out = np.empty((N, C, OH, OW), x.dtype)
    indices = np.empty((N, C, OH, OW), np.int64)
    for oh, (h0, h1) in enumerate(_adaptive_windows(H, OH)):
        for ow, (w0, w1) in enumerate(_adaptive_windows(W, OW)):
            flat = x[:, :, h0:h1, w0:w1].reshape(N, C, -1)
            k = _argmax(flat)
            out[:, :, oh, ow] = np.take_along_axis(flat, k[..., None], -1)[..., 0]
            indices[:, :, oh, ow] = (h0 + k // (w1 - w0)) * W + w0 + k % (w1 - w0)
    return out, indices


# --- max unpooling

def max_unpool2d(x, indices, output_size):
    """(N, C, *output_size) zeros with x[n, c].flat[i] placed at indices[n, c].flat[i] (a repeated
    index keeps the last value); an index outside the output plane raises IndexError."""
    N, C = x.shape[:2]
    OH, OW = output_size
    idx = indices.reshape(N * C, -1)
    if idx.size and (idx.min() < 0 or idx.max() >= OH * OW):
        raise IndexError(f"max_unpool2d: an index is outside the output plane of size {OH}x{OW}")
    out = np.zeros((N * C, OH * OW), x.dtype)
    out[np.arange(N * C)[:, None], idx] = x.reshape(N * C, -1)
    return out.reshape(N, C, OH, OW)


def max_unpool2d_backward(grad_out, indices):
    """Gradient of max_unpool2d: grad_out gathered at the indices (the shape of the indices)."""
    N, C = grad_out.shape[:2]
    g = grad_out.reshape(N * C, -1)
    return g[np.arange(N * C)[:, None], indices.reshape(N * C, -1)].reshape(indices.shape)


# --- upsampling

def _source_step(in_size, out_size, scale_factor, dtype):
    """PyTorch's source step per output step, in `dtype`: 1 / scale_factor if given, else in / out."""
    return dtype(1.0 / scale_factor) if scale_factor else dtype(in_size) / dtype(out_size)


def nearest_source_index(in_size, out_size, scale_factor=None):
    """src(o) for o in range(out_size), in float32 arithmetic (as PyTorch, for every dtype)."""
    o = np.arange(out_size)
    if out_size == in_size:
        return o
    if out_size == 2 * in_size:
        return o // 2
    scale = _source_step(in_size, out_size, scale_factor, np.float32)
    return np.minimum(np.floor(o.astype(np.float32) * scale).astype(np.int64), in_size - 1)


def linear_source_index(in_size, out_size, align_corners, scale_factor=None, dtype=np.float32):
    """(i0, i1, l0, l1): output o = l0[o] * x[i0[o]] + l1[o] * x[i1[o]], in `dtype` arithmetic."""
    o = np.arange(out_size)
    if out_size == in_size:
        return o, o, np.ones(out_size, dtype), np.zeros(out_size, dtype)
    if align_corners:
        scale = dtype(in_size - 1) / dtype(out_size - 1) if out_size > 1 else dtype(0)
        src = scale * o.astype(dtype)
    else:
        scale = _source_step(in_size, out_size, scale_factor, dtype)
        src = np.maximum(scale * (o.astype(dtype) + dtype(0.5)) - dtype(0.5), dtype(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.where(i0 < in_size - 1, i0 + 1, i0)
    l1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    return i0, i1, (1 - l1).astype(dtype), l1


def upsample_nearest2d(x, output_size, scale_factors=(None, None)):
    rows = nearest_source_index(x.shape[2], output_size[0], scale_factors[0])
    cols = nearest_source_index(x.shape[3], output_size[1], scale_factors[1])
    return x[:, :, rows[:, None], cols[None, :]]


def upsample_nearest2d_backward(grad_out, input_shape, scale_factors=(None, None)):
    rows = nearest_source_index(input_shape[2], grad_out.shape[2], scale_factors[0])
    cols = nearest_source_index(input_shape[3], grad_out.shape[3], scale_factors[1])
    grad = np.zeros(input_shape, grad_out.dtype)
    np.add.at(grad, (slice(None), slice(None), rows[:, None], cols[None, :]), grad_out)
    return grad


def upsample_bilinear2d(x, output_size, align_corners, scale_factors=(None, None)):
    h0, h1, a0, a1 = linear_source_index(x.shape[2], output_size[0], align_corners, scale_factors[0], x.dtype.type)
    w0, w1, b0, b1 = linear_source_index(x.shape[3], output_size[1], align_corners, scale_factors[1], x.dtype.type)
    top, bottom = x[:, :, h0], x[:, :, h1]  # (N, C, OH, W): the two source rows of each output row
    a0, a1 = a0[:, None], a1[:, None]
    return a0 * (b0 * top[..., w0] + b1 * top[..., w1]) + a1 * (b0 * bottom[..., w0] + b1 * bottom[..., w1])


def upsample_bilinear2d_backward(grad_out, input_shape, align_corners, scale_factors=(None, None)):
    dtype = grad_out.dtype.type
    OH, OW = grad_out.shape[2:]
    h0, h1, a0, a1 = linear_source_index(input_shape[2], OH, align_corners, scale_factors[0], dtype)
    w0, w1, b0, b1 = linear_source_index(input_shape[3], OW, align_corners, scale_factors[1], dtype)
    grad = np.zeros(input_shape, grad_out.dtype)
    for rows, a in ((h0, a0), (h1, a1)):
        for cols, b in ((w0, b0), (w1, b1)):
            at = (slice(None), slice(None), rows[:, None], cols[None, :])
            np.add.at(grad, at, grad_out * a[:, None] * b[None, :])
    return grad


# --- padding

def pad(x, pads, mode="constant", value=0.0):
    """F.pad: pads = (before, after) pairs for the last dims, the last dim first."""
    pairs = [(0, 0)] * (x.ndim - len(pads) // 2) + [tuple(pads[i:i + 2]) for i in range(len(pads) - 2, -1, -2)]
    grow = [(max(b, 0), max(a, 0)) for b, a in pairs]
    numpy_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    out = np.pad(x, grow, numpy_mode, **({"constant_values": value} if mode == "constant" else {}))
    # negative pads crop what is then the edge (PyTorch pads first, then crops)
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(pairs, out.shape))
    return out[crop]


def pad_backward(grad_out, input_shape, pads, mode="constant"):
    """Gradient of pad: each output gradient added to the input element it came from."""
    if mode == "constant":
        return pad(grad_out, [-p for p in pads])  # cropping what was added, zeros for what was cropped
    source = pad(np.arange(np.prod(input_shape)).reshape(input_shape), pads, mode)  # flat source of each output
    grad = np.zeros(int(np.prod(input_shape)), grad_out.dtype)
    np.add.at(grad, source.ravel(), grad_out.ravel())
    return grad.reshape(input_shape)
