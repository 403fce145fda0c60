"""2-D convolution and transposed convolution (NCHW), as torch.nn.functional defines them.

conv2d: x (N, C, H, W), w (K, C/groups, R, S), bias (K,) -> out (N, K, OH, OW)

    out[n, k, oh, ow] = bias[k] + sum_{c, r, s} w[k, c, r, s] * xpad[n, g*Cg + c, oh*sh + r*dh, ow*sw + s*dw]

    xpad is x with `top`/`bottom` rows and `left`/`right` columns of zeros; g = k // Kg is the group of
    output channel k (Kg = K / groups output and Cg = C / groups input channels per group), and
    OH = (H + top + bottom - dh*(R-1) - 1) // sh + 1 (OW likewise).
    padding: an int or an (h, w) pair pads both sides; "valid" is no padding; "same" (stride 1 only)
    pads dh*(R-1) rows in total, half on top and the odd one, if any, at the bottom (as PyTorch).

conv_transpose2d: x (N, C_in, H, W), w (C_in, C_out/groups, R, S), bias (C_out,) -> out (N, C_out, OH, OW)

    full[n, g*Cog + d, ih*sh + r*dh, iw*sw + s*dw] += x[n, c, ih, iw] * w[c, d, r, s]   (c in group g)
    out = full[:, :, ph : ph + OH, pw : pw + OW] + bias
    OH = (H - 1)*sh - 2*ph + dh*(R-1) + output_padding_h + 1 (OW likewise)

    It is the gradient of conv2d (with the same w, stride, padding, dilation, groups) with respect to
    conv2d's input, applied to x.

Backward (both): every kernel tap (r, s) touches a strided slice of the padded (or full) image, so
the gradients are a loop over the taps; see conv2d_backward and conv_transpose2d_backward.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


def conv2d_padding(padding, kernel_size, dilation):
    """((top, bottom), (left, right)) for conv2d's `padding` argument."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
        return tuple((t // 2, t - t // 2) for t in total)
    return tuple((p, p) for p in _pair(padding))


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d on 4-D NumPy arrays."""
    x, w = np.asarray(x), np.asarray(w)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    K, Cg, R, S = w.shape
    Kg = K // groups
    (top, bottom), (left, right) = conv2d_padding(padding, (R, S), (dh, dw))
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    # windows[n, c, oh, ow, r, s] = xpad[n, c, oh*sh + r*dh, ow*sw + s*dw]
    windows = sliding_window_view(xpad, (dh * (R - 1) + 1, dw * (S - 1) + 1), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw, ::dh, ::dw]
    # per group: sum over (c, r, s) of windows (N, Cg, OH, OW, R, S) and w (Kg, Cg, R, S) -> (N, OH, OW, Kg)
    out = np.concatenate(
        [np.tensordot(windows[:, g * Cg:(g + 1) * Cg], w[g * Kg:(g + 1) * Kg], axes=([1, 4, 5], [1, 2, 3]))
         for g in range(groups)],
        axis=3,
    ).transpose(0, 3, 1, 2)
    if bias is not None:
        out = out + np.asarray(bias)[:, None, None]
    return np.ascontiguousarray(out)


def conv2d_backward(grad_out, x, w, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of out = conv2d(x, w, bias, ...) for grad_out: (grad_x, grad_w, grad_bias).

    Tap (r, s) adds w[k, c, r, s] * xpad[n, c, r*dh + oh*sh, s*dw + ow*sw] to out[n, k, oh, ow], so
    for each tap and group:
        grad_w[k, c, r, s] = sum_{n, oh, ow} grad_out[n, k, oh, ow] * xpad[n, c, r*dh + oh*sh, s*dw + ow*sw]
        grad_xpad[n, c, r*dh + oh*sh, s*dw + ow*sw] += sum_k grad_out[n, k, oh, ow] * w[k, c, r, s]
    grad_x is grad_xpad without the padding, and grad_bias[k] = sum_{n, oh, ow} grad_out[n, k, oh, ow].
    """
    g, x, w = np.asarray(grad_out), np.asarray(x), np.asarray(w)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    K, Cg, R, S = w.shape
    Kg = K // groups
    H, W = x.shape[2:]
    OH, OW = g.shape[2:]
    (top, bottom), (left, right) = conv2d_padding(padding, (R, S), (dh, dw))
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))

    grad_xpad = np.zeros_like(xpad)
    grad_w = np.zeros_like(w)
    for r in range(R):
        for s in range(S):
            rows = slice(r * dh, r * dh + (OH - 1) * sh + 1, sh)  # the xpad rows tap r read, one per oh
            cols = slice(s * dw, s * dw + (OW - 1) * sw + 1, sw)
            for grp in range(groups):
                ks, cs = slice(grp * Kg, (grp + 1) * Kg), slice(grp * Cg, (grp + 1) * Cg)
                grad_w[ks, :, r, s] = np.einsum("nkhw,nchw->kc", g[:, ks], xpad[:, cs, rows, cols], optimize=True)
                grad_xpad[:, cs, rows, cols] += np.einsum("nkhw,kc->nchw", g[:, ks], w[ks, :, r, s], optimize=True)
    grad_x = grad_xpad[:, :, top:top + H, left:left + W]
    return np.ascontiguousarray(grad_x), grad_w, g.sum(axis=(0, 2, 3))


def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d on 4-D NumPy arrays."""
    x, w = np.asarray(x), np.asarray(w)
    full, crop = _transposed_canvas(x.shape, w.shape, groups, stride, padding, output_padding, dilation, x.dtype)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    C_in, Cog, R, S = w.shape
    Cg = C_in // groups
    H, W = x.shape[2:]
    for r in range(R):
        for s in range(S):
            rows = slice(r * dh, r * dh + (H - 1) * sh + 1, sh)  # the rows of `full` tap r writes, one per ih
            cols = slice(s * dw, s * dw + (W - 1) * sw + 1, sw)
            for grp in range(groups):
                cs, ds = slice(grp * Cg, (grp + 1) * Cg), slice(grp * Cog, (grp + 1) * Cog)
                full[:, ds, rows, cols] += np.einsum("nchw,cd->ndhw", x[:, cs], w[cs, :, r, s], optimize=True)
    out = full[crop]
    if bias is not None:
        out = out + np.asarray(bias)[:, None, None]
    return np.ascontiguousarray(out)


def conv_transpose2d_backward(grad_out, x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Gradients of out = conv_transpose2d(x, w, bias, ...) for grad_out: (grad_x, grad_w, grad_bias).

    grad_full is grad_out put back on the full canvas (zeros where the padding cropped it); tap (r, s)
    added x[n, c, ih, iw] * w[c, d, r, s] to full[n, d, ih*sh + r*dh, iw*sw + s*dw], so per tap and group:
        grad_x[n, c, ih, iw] += sum_d grad_full[n, d, ih*sh + r*dh, iw*sw + s*dw] * w[c, d, r, s]
        grad_w[c, d, r, s] = sum_{n, ih, iw} grad_full[n, d, ih*sh + r*dh, iw*sw + s*dw] * x[n, c, ih, iw]
    and grad_bias[d] = sum_{n, oh, ow} grad_out[n, d, oh, ow].
    """
    g, x, w = np.asarray(grad_out), np.asarray(x), np.asarray(w)
    grad_full, crop = _transposed_canvas(x.shape, w.shape, groups, stride, padding, output_padding, dilation,
                                         g.dtype)
    grad_full[crop] = g
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    C_in, Cog, R, S = w.shape
    Cg = C_in // groups
    H, W = x.shape[2:]
    grad_x = np.zeros_like(x)
    grad_w = np.zeros_like(w)
    for r in range(R):
        for s in range(S):
            rows = slice(r * dh, r * dh + (H - 1) * sh + 1, sh)
            cols = slice(s * dw, s * dw + (W - 1) * sw + 1, sw)
            for grp in range(groups):
                cs, ds = slice(grp * Cg, (grp + 1) * Cg), slice(grp * Cog, (grp + 1) * Cog)
                g_rs = grad_full[:, ds, rows, cols]  # (N, Cog, H, W)
                grad_x[:, cs] += np.einsum("ndhw,cd->nchw", g_rs, w[cs, :, r, s], optimize=True)
                grad_w[cs, :, r, s] = np.einsum("ndhw,nchw->cd", g_rs, x[:, cs], optimize=True)
    return grad_x, grad_w, g.sum(axis=(0, 2, 3))


def _transposed_canvas(x_shape, w_shape, groups, stride, padding, output_padding, dilation, dtype):
    """The zero `full` canvas (N, C_out, full_h, full_w) of conv_transpose2d, and the index that crops
    the output (N, C_out, OH, OW) out of it."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = map(_pair, (stride, padding, output_padding, dilation))
    N, _, H, W = x_shape
    _, Cog, R, S = w_shape
    full_h = (H - 1) * sh + dh * (R - 1) + 1 + oph
    full_w = (W - 1) * sw + dw * (S - 1) + 1 + opw
    OH, OW = full_h - 2 * ph, full_w - 2 * pw
    crop = (slice(None), slice(None), slice(ph, ph + OH), slice(pw, pw + OW))
    return np.zeros((N, Cog * groups, full_h, full_w), dtype), crop
