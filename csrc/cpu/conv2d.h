// conv2d.h: 2-D convolution on the CPU (NCHW), float32 and float64.
//
//   out[n, k, oh, ow] = bias[k] + sum_{c < Cg, r < R, s < S} w[k, c, r, s] * x[n, g*Cg + c, ih, iw]
//       ih = oh * stride_h - pad_h + r * dil_h,   iw = ow * stride_w - pad_w + s * dil_w
//       g = k / Kg (the group of output channel k), Cg = C / groups, Kg = K / groups;
//       x is zero outside [0, H) x [0, W) (the padding).
//
// The three kernels are the map and its two adjoints. conv_transpose2d is conv2d_backward_input
// (with its bias); its gradients are conv2d_forward and conv2d_backward_weight with roles swapped.
//
// Versions (conv2d.cpp):
//   - *_plain: the sum above as loops, one term at a time (the readable baseline the fast
//     kernels are tested against);
//   - the fast ones, GEMMs on the GEMM of gemm.h: forward packs the im2col matrix straight from
//     the image (no buffer), backward-input is a GEMM into a column buffer then a col2im
//     scatter-add, backward-weight is a GEMM per group over the output positions of all images
//     (one part of them per thread), packed straight from x and dout.
#pragma once

#include <cstdint>

#include "common/conv2d_shape.h"

namespace kg {
namespace cpu {

using Conv2dShape = ::kg::Conv2dShape;  // csrc/common/conv2d_shape.h

// ----------------------------------------------------------------------------------------------
// Fast kernels (threads: get_num_threads())

// out = conv2d(x, w) + bias
//   out: (N, K, OH, OW), x: (N, C, H, W), w: (K, C/groups, R, S), bias: (K) or nullptr
void conv2d_forward(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& s);
void conv2d_forward(double* out, const double* x, const double* w, const double* bias,
                    const Conv2dShape& s);

// dx = d out / d x applied to dout, plus bias_c per channel (conv_transpose2d's bias):
//   dx[n, c, ih, iw] = bias_c[c] + sum of dout[n, k, oh, ow] * w[k, c - g*Cg, r, s] over the terms
//                      of the forward sum that read x[n, c, ih, iw]
//   dx: (N, C, H, W), dout: (N, K, OH, OW), w: (K, C/groups, R, S), bias_c: (C) or nullptr
void conv2d_backward_input(float* dx, const float* dout, const float* w, const float* bias_c,
                           const Conv2dShape& s);
void conv2d_backward_input(double* dx, const double* dout, const double* w, const double* bias_c,
                           const Conv2dShape& s);

// dw[k, c, r, s] = sum_{n, oh, ow} dout[n, k, oh, ow] * x[n, g*Cg + c, ih, iw]
//   dw: (K, C/groups, R, S), x: (N, C, H, W), dout: (N, K, OH, OW)
void conv2d_backward_weight(float* dw, const float* x, const float* dout, const Conv2dShape& s);
void conv2d_backward_weight(double* dw, const double* x, const double* dout, const Conv2dShape& s);

// ----------------------------------------------------------------------------------------------
// Plain kernels: the same three maps (same arguments), one term of the sum at a time

void conv2d_forward_plain(float* out, const float* x, const float* w, const float* bias,
                          const Conv2dShape& s);
void conv2d_forward_plain(double* out, const double* x, const double* w, const double* bias,
                          const Conv2dShape& s);
void conv2d_backward_input_plain(float* dx, const float* dout, const float* w, const float* bias_c,
                                 const Conv2dShape& s);
void conv2d_backward_input_plain(double* dx, const double* dout, const double* w, const double* bias_c,
                                 const Conv2dShape& s);
void conv2d_backward_weight_plain(float* dw, const float* x, const float* dout, const Conv2dShape& s);
void conv2d_backward_weight_plain(double* dw, const double* x, const double* dout, const Conv2dShape& s);

}  // namespace cpu
}  // namespace kg
