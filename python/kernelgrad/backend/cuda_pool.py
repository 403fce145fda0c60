"""CUDA pooling, unpooling, upsampling and reflect / replicate padding: the kernels of
csrc/cuda/pool2d.cu, upsample.cu and pad2d.cu (binding csrc/python/bind_cuda_pool.cpp) with the
CPU backend's signatures, semantics and errors (see the comment block on them in backend/cpu.py;
the binding checks every argument with the CPU binding's code, csrc/python/pool_args.h).

Inputs of any strides are made contiguous here (a copy kernel); the binding returns each output
as (Storage, shape), a new contiguous device array, wrapped here in a CudaArray.
"""
import numpy as np

from .cuda import CudaArray, _contiguous_strides, _m, ascontiguous

__all__ = ["max_pool2d", "max_pool2d_with_indices", "max_pool2d_backward", "adaptive_max_pool2d", "avg_pool2d",
           "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "max_unpool2d",
           "max_unpool2d_backward", "upsample_nearest2d", "upsample_nearest2d_backward", "upsample_bilinear2d",
           "upsample_bilinear2d_backward", "pad2d", "pad2d_backward"]

_INT64 = np.dtype(np.int64)


def _c(a):
    """An input as the binding takes it: a contiguous CudaArray."""
    if not isinstance(a, CudaArray):
        raise TypeError(f"expected a CUDA array, got {type(a).__name__}")
    return ascontiguous(a)


def _wrap(result, dtype):
    storage, shape = result
    return CudaArray(storage, 0, shape, _contiguous_strides(shape), dtype)


# --- pooling
def max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode):
    return _wrap(_m.max_pool2d(_c(x), kernel_size, stride, padding, dilation, ceil_mode), x.dtype)


def max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode):
    out, indices = _m.max_pool2d_with_indices(_c(x), kernel_size, stride, padding, dilation, ceil_mode)
    return _wrap(out, x.dtype), _wrap(indices, _INT64)


def adaptive_max_pool2d(x, output_size):
    out, indices = _m.adaptive_max_pool2d(_c(x), output_size)
    return _wrap(out, x.dtype), _wrap(indices, _INT64)


def max_pool2d_backward(grad_output, indices, input_size):
    return _wrap(_m.max_pool2d_backward(_c(grad_output), _c(indices), input_size), grad_output.dtype)


def avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    return _wrap(_m.avg_pool2d(_c(x), kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override),
                 x.dtype)


def avg_pool2d_backward(grad_output, input_size, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override):
    return _wrap(_m.avg_pool2d_backward(_c(grad_output), input_size, kernel_size, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override), grad_output.dtype)


def adaptive_avg_pool2d(x, output_size):
    return _wrap(_m.adaptive_avg_pool2d(_c(x), output_size), x.dtype)


def adaptive_avg_pool2d_backward(grad_output, input_size):
    return _wrap(_m.adaptive_avg_pool2d_backward(_c(grad_output), input_size), grad_output.dtype)


# --- unpooling
def max_unpool2d(x, indices, output_size):
    return _wrap(_m.max_unpool2d(_c(x), _c(indices), output_size), x.dtype)


def max_unpool2d_backward(grad_output, indices):
    return _wrap(_m.max_unpool2d_backward(_c(grad_output), _c(indices)), grad_output.dtype)


# --- upsampling
def upsample_nearest2d(x, output_size, scale_factors):
    return _wrap(_m.upsample_nearest2d(_c(x), output_size, scale_factors), x.dtype)


def upsample_nearest2d_backward(grad_output, input_size, scale_factors):
    return _wrap(_m.upsample_nearest2d_backward(_c(grad_output), input_size, scale_factors), grad_output.dtype)


def upsample_bilinear2d(x, output_size, align_corners, scale_factors):
    return _wrap(_m.upsample_bilinear2d(_c(x), output_size, align_corners, scale_factors), x.dtype)


def upsample_bilinear2d_backward(grad_output, input_size, align_corners, scale_factors):
    return _wrap(_m.upsample_bilinear2d_backward(_c(grad_output), input_size, align_corners, scale_factors),
                 grad_output.dtype)


# --- reflect / replicate padding; pad = (left, right, top, bottom)
def pad2d(x, pad, mode):
    return _wrap(_m.pad2d(_c(x), pad, mode), x.dtype)


def pad2d_backward(grad_output, input_size, pad, mode):
    return _wrap(_m.pad2d_backward(_c(grad_output), input_size, pad, mode), grad_output.dtype)
