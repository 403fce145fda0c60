// norm.h: layer norm and batch norm on the device, float32 and float64 (T = float or double). The
// same operations and formulas as the CPU kernels (csrc/cpu/norm.h):
//
// Layer norm: each of `rows` rows of D contiguous values (the trailing normalized_shape) is
// normalised by its own statistics, then scaled and shifted elementwise by w and b (D values):
//   mean = sum(x) / D,   var = sum((x - mean)^2) / D,   rstd = 1 / sqrt(var + eps)
//   y = (x - mean) rstd w + b                         (w = 1, b = 0 when absent)
// backward, xhat = (x - mean) rstd, g = dy w:
//   dx = rstd (g - (sum(g) + xhat sum(g xhat)) / D)
//   dw = sum over rows of dy xhat,   db = sum over rows of dy
//
// Batch norm: x is (N, C, L) (L = product of the spatial dims, 1 for (N, C)); channel c is
// normalised by statistics over its M = N L values, then scaled and shifted by w[c], b[c]:
//   mean[c] = sum x / M,   var[c] = sum (x - mean)^2 / M   (biased; training's batch statistics)
//   y = (x - mean) rstd w + b,   rstd = 1 / sqrt(var + eps)
// backward, xhat = (x - mean) rstd:
//   dw[c] = sum dy xhat,   db[c] = sum dy
//   dx = w rstd (dy - (db + xhat dw) / M)   when mean, var are the batch's (training: they depend on x)
//   dx = w rstd dy                          when they are running statistics (constants)
//
// Every pointer is a device pointer; the launches are on the default stream.
#pragma once

#include <cstdint>

namespace kg {
namespace cuda {

// ----------------------------------------------------------------------------------------------
// layer norm

//   y, x: (rows, D);  mean, rstd: (rows);  w, b: (D) or null
template <typename T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t D, T eps);

//   dx, dy, x: (rows, D);  dw, db: (D) or null (not wanted);  mean, rstd: (rows);  w: (D) or null
template <typename T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                         int64_t rows, int64_t D);

// ----------------------------------------------------------------------------------------------
// batch norm

// The batch statistics of each channel.
//   mean, var: (C);  x: (N, C, L)
template <typename T>
void batch_norm_stats(T* mean, T* var, const T* x, int64_t N, int64_t C, int64_t L);

//   y, x: (N, C, L);  mean, var: (C);  w, b: (C) or null
template <typename T>
void batch_norm_forward(T* y, const T* x, const T* mean, const T* var, const T* w, const T* b, int64_t N, int64_t C,
                        int64_t L, T eps);

// training: mean and var are the batch statistics of x (dx includes their gradient).
//   dx, dy, x: (N, C, L);  dw, db: (C);  mean, var: (C);  w: (C) or null
template <typename T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* var, const T* w,
                         int64_t N, int64_t C, int64_t L, T eps, bool training);

}  // namespace cuda
}  // namespace kg
