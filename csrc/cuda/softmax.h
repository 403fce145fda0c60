// softmax.h: softmax and log-softmax along one dimension, their backward, and cross-entropy
// (log-softmax and negative log-likelihood fused), on the device, float32 and float64 (T = float
// or double). The same operations and formulas as the CPU kernels (csrc/cpu/softmax.h):
//
// Layout: C-contiguous arrays seen as (outer, dim, inner); the op runs along `dim` (stride
// `inner`) at each of the outer * inner positions. For cross-entropy x is (N, C, D): classes on
// dim 1, D the product of the trailing dims (1 for (N, C)).
//
//   softmax:           y = exp(x - m) / s,    m = max x,  s = sum exp(x - m)
//   log_softmax:       y = (x - m) - log s
//   softmax backward:      dx = y (dy - sum(dy y))
//   log_softmax backward:  dx = dy - exp(y) sum(dy)
//
//   cross-entropy at one position, lse = m + log s over the C classes, p = exp(x - lse), class
//   weights w (all 1 when weight is null), label smoothing eps in [0, 1]:
//     class-index target t (loss and gradient 0 where t == ignore_index):
//       loss = (1 - eps) w[t] (lse - x[t]) + (eps / C) sum_c w[c] (lse - x[c])
//       dx[c] = dloss (A p[c] - (1 - eps) w[t] [c == t] - (eps / C) w[c]),  A = (1 - eps) w[t] + (eps / C) sum_k w[k]
//     probability target P (q = (1 - eps) P + eps / C):
//       loss = sum_c w[c] q[c] (lse - x[c])
//       dx[c] = dloss (p[c] sum_k w[k] q[k] - w[c] q[c])
//
// Every pointer is a device pointer; the launches are on the default stream. A class index that is
// neither in [0, C) nor ignore_index is not followed: the first such position (in memory order)
// is reported through `error` (one device uint64, 0 before the call): it becomes N D - position,
// so 0 still means none. The caller reads it and raises.
#pragma once

#include <cstdint>

namespace kg {
namespace cuda {

// ----------------------------------------------------------------------------------------------
// softmax / log_softmax

// y = softmax(x) (log = false) or log_softmax(x) (log = true) along dim
//   y, x: (outer, dim, inner)
template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t dim, int64_t inner, bool log);

// dx from y (the forward's output) and dy
//   dx, y, dy: (outer, dim, inner)
template <typename T>
void softmax_backward(T* dx, const T* y, const T* dy, int64_t outer, int64_t dim, int64_t inner, bool log);

// ----------------------------------------------------------------------------------------------
// cross-entropy with class-index targets

//   loss, lse: (N, D);  x: (N, C, D);  target: (N, D);  weight: (C) or null;  error: ()
template <typename T>
void cross_entropy_forward(T* loss, T* lse, const T* x, const int64_t* target, const T* weight, int64_t N,
                           int64_t C, int64_t D, int64_t ignore_index, T eps, unsigned long long* error);

//   dx: (N, C, D);  dloss, lse: (N, D);  x: (N, C, D);  target: (N, D);  weight: (C) or null;  error: ()
template <typename T>
void cross_entropy_backward(T* dx, const T* dloss, const T* x, const T* lse, const int64_t* target,
                            const T* weight, int64_t N, int64_t C, int64_t D, int64_t ignore_index, T eps,
                            unsigned long long* error);

// ----------------------------------------------------------------------------------------------
// cross-entropy with probability targets

//   loss, lse: (N, D);  x, target: (N, C, D);  weight: (C) or null
template <typename T>
void cross_entropy_probs_forward(T* loss, T* lse, const T* x, const T* target, const T* weight, int64_t N,
                                 int64_t C, int64_t D, T eps);

//   dx: (N, C, D);  dloss, lse: (N, D);  x, target: (N, C, D);  weight: (C) or null
template <typename T>
void cross_entropy_probs_backward(T* dx, const T* dloss, const T* x, const T* lse, const T* target,
                                  const T* weight, int64_t N, int64_t C, int64_t D, T eps);

}  // namespace cuda
}  // namespace kg
