"""CUDA convolution: conv2d and its two adjoints as batched GEMMs over the groups, on the im2col /
col2im kernels of csrc/cuda/conv2d.cu (see conv2d.h for the layouts) and the CUDA matmul.

    cols (G, Cg*R*S, N*P)  = im2col(x)                     P = OH * OW, G = groups
    forward          out   = w (G, Kg, Cg*R*S) @ cols      -> (K, N, P), permuted to (N, K, OH, OW)
    backward-weight  dw    = dout^T (G, Kg, N*P) @ cols^T  -> (K, Cg, R, S)
    backward-input   dx    = col2im(w^T @ dout^T)          -> (N, C, H, W)
Arguments are checked by the CPU binding's checks (csrc/python/conv_checks.h), shared.
"""
from .cuda import _CODES, _m, _new, add, ascontiguous, copy, matmul, reshape, transpose

__all__ = ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"]


def _meta(a):
    return (a.dtype.kind, a.dtype.itemsize, str(a.dtype), list(a.shape))


def _meta_or_none(a):
    return None if a is None else _meta(a)


def _cols(x, geo):
    """im2col of x as (G, Cg*R*S, N*P)."""
    N, C, _, _, _, R, S, OH, OW = geo[:9]
    G = geo[15]
    cols = _new((C * R * S, N * OH * OW), x.dtype)
    # the contiguous copy of a strided x is held in a name until im2col has run: a temporary's block
    # goes back to the caching allocator as soon as its pointer is read, and another allocation (another
    # thread's, while the binding has released the GIL) could take and overwrite it before the kernel reads it
    xc = ascontiguous(x)
    _m.im2col(_CODES[x.dtype], cols._ptr, xc._ptr, list(geo))
    return reshape(cols, (G, C // G * R * S, N * OH * OW))


def _weight_matrix(weight, geo):
    """w (K, Cg, R, S) as (G, Kg, Cg*R*S)."""
    C, K, R, S, G = geo[1], geo[4], geo[5], geo[6], geo[15]
    return reshape(ascontiguous(weight), (G, K // G, C // G * R * S))


def _dout_matrix(grad_output, geo):
    """dout (N, K, OH, OW) as (G, Kg, N*P): a permuted copy."""
    N, K, OH, OW, G = geo[0], geo[4], geo[7], geo[8], geo[15]
    return reshape(copy(transpose(grad_output, (1, 0, 2, 3))), (G, K // G, N * OH * OW))


def _plus_bias(a, bias):
    return copy(a) if bias is None else add(a, reshape(bias, (1, -1, 1, 1)))


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, output_size):
    """x (N, C, H, W) conv weight (K, C/groups, R, S) + bias (K,) or None -> (N, K, *output_size)."""
    geo = _m.conv2d_forward_shape(_meta(x), _meta(weight), _meta_or_none(bias), stride, padding, dilation, groups,
                                  output_size)
    N, K, OH, OW = geo[0], geo[4], geo[7], geo[8]
    out = matmul(_weight_matrix(weight, geo), _cols(x, geo))  # (G, Kg, N*P)
    return _plus_bias(transpose(reshape(out, (K, N, OH, OW)), (1, 0, 2, 3)), bias)


def conv2d_backward_input(grad_output, weight, bias, input_size, stride, padding, dilation, groups):
    """d conv2d / d x for grad_output (N, K, OH, OW) -> (N, C, *input_size), plus bias (C,) or None."""
    geo = _m.conv2d_backward_input_shape(_meta(grad_output), _meta(weight), _meta_or_none(bias), input_size, stride,
                                         padding, dilation, groups)
    N, C, H, W = geo[:4]
    dcols = matmul(transpose(_weight_matrix(weight, geo), (0, 2, 1)), _dout_matrix(grad_output, geo))
    dx = _new((N, C, H, W), grad_output.dtype)
    dcols = ascontiguous(dcols)  # (contiguous already: matmul's output) held until col2im has run, as in _cols
    _m.col2im(_CODES[dx.dtype], dx._ptr, dcols._ptr, list(geo))
    return dx if bias is None else add(dx, reshape(bias, (1, C, 1, 1)))


def conv2d_backward_weight(x, grad_output, kernel_size, stride, padding, dilation, groups):
    """d conv2d / d weight for x (N, C, H, W) and grad_output (N, K, OH, OW) -> (K, C/groups, *kernel_size)."""
    geo = _m.conv2d_backward_weight_shape(_meta(x), _meta(grad_output), kernel_size, stride, padding, dilation, groups)
    C, K, R, S, G = geo[1], geo[4], geo[5], geo[6], geo[15]
    dw = matmul(_dout_matrix(grad_output, geo), transpose(_cols(x, geo), (0, 2, 1)))  # (G, Kg, Cg*R*S)
    return reshape(dw, (K, C // G, R, S))
