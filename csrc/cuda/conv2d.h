// conv2d.h: 2-D convolution on CUDA (NCHW) as GEMMs on the GEMM of gemm.h, with the two data
// movements that turn a convolution into a matrix product:
//
//   cols[c * R * S + r * S + s, n * OH * OW + oh * OW + ow] = x[n, c, ih, iw]  (0 in the padding)
//       ih = oh * stride_h - pad_h + r * dil_h,   iw = ow * stride_w - pad_w + s * dil_w
//
// Channel c = g * Cg + ci, so the rows of group g are one block and cols is (groups, Cg*R*S,
// N*OH*OW). Then, with dout as (groups, Kg, N*OH*OW) and w as (groups, Kg, Cg*R*S):
//   forward          out  = w @ cols          (one batched GEMM over the groups)
//   backward-weight  dw   = dout @ cols^T
//   backward-input   dcols = w^T @ dout, then dx = col2im(dcols): each pixel gathers the column
//                    entries that read it (no atomics, deterministic).
// The caller (python/kernelgrad/backend/cuda_conv.py) does the GEMMs and the layout changes.
#pragma once

#include "common/conv2d_shape.h"
#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

// cols (C*R*S, N*OH*OW) <- x (N, C, H, W), contiguous; float32 or float64
void im2col(DType dtype, void* cols, const void* x, const Conv2dShape& s);
// dx (N, C, H, W) = the sum of the entries of dcols (C*R*S, N*OH*OW) that read each pixel
void col2im(DType dtype, void* dx, const void* dcols, const Conv2dShape& s);

}  // namespace cuda
}  // namespace kg
