// attention.h: fused scaled dot-product attention on CUDA (FlashAttention-2), float32 and float64.
//
//   O = softmax(scale * Q K^T + mask) V    for each batch index b: Q (L x E), K (S x E), V (S x Ev)
//
// The semantics of the CPU kernel (csrc/cpu/attention.h), which the tests compare against: a bool
// mask keeps True, a float mask is added to the scores, causal keeps key j <= query i (top-left
// aligned); a row whose every key is masked gives O = 0, LSE = +inf and zero gradients; a NaN score
// makes its row NaN. Dropout zeroes probability P[b, i, j] by the counter-based hash of
// common/dropout_hash.h (the CPU's function: one seed drops the same probabilities on both
// devices) and scales the survivors by 1 / (1 - p); backward regenerates the mask from the seed.
// Memory: O and LSE, and a (BH, L) vector in backward; never an L x S matrix.
//
// Every pointer is a device pointer; strides are in elements (any sign, 0 for broadcast).
#pragma once

#include <cstdint>

#include "cuda/index.h"  // Shape
#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

// ----------------------------------------------------------------------------------------------
// Arguments

// A batch of strided matrices over the call's batch shape (a Shape of at most kMaxDims dims, batch
// index b walked in C order): matrix b, at batch coordinates (c_0, ..., c_{n-1}), has element
// (r, col) at ptr[sum_d c_d * batch_stride[d] + r * rs + col * cs].
template <typename T>
struct MatrixBatch {
    const T* ptr;
    int64_t batch_stride[kMaxDims];
    int64_t rs, cs;
};

// What removes or shifts scores before the softmax. At most one of keep.ptr / add.ptr is set.
template <typename T>
struct AttentionMask {
    MatrixBatch<uint8_t> keep;  // (*batch, L, S) bool mask: 0 removes score (i, j); ptr null: none
    MatrixBatch<T> add;         // (*batch, L, S) float mask, added to score (i, j); ptr null: none
    bool causal;                // removes j > i
};

// Dropout on the attention probabilities; off when p == 0.
struct AttentionDropout {
    double p;
    uint64_t seed;
};

// ----------------------------------------------------------------------------------------------
// Kernels (T = float or double); BH = the batch shape's element count

// O = softmax(scale * Q K^T + mask) V, and LSE = the log-sum-exp of every score row.
//   O:   (BH, L, Ev) C-contiguous        LSE: (BH, L) C-contiguous
//   Q:   (*batch, L, E)                  K: (*batch, S, E)         V: (*batch, S, Ev)
template <typename T>
void attention_forward(T* O, T* LSE, const MatrixBatch<T>& Q, const MatrixBatch<T>& K,
                       const MatrixBatch<T>& V, const AttentionMask<T>& mask, AttentionDropout dropout,
                       T scale, const Shape& batch, int64_t L, int64_t S, int64_t E, int64_t Ev);

// dQ, dK, dV of the forward above for the output gradient dO.
//   dQ: (BH, L, E)   dK: (BH, S, E)   dV: (BH, S, Ev), all C-contiguous
//   dO: (*batch, L, Ev)   O: (BH, L, Ev), LSE: (BH, L) as written by attention_forward
//   Q, K, V, mask, dropout, scale: as given to attention_forward
template <typename T>
void attention_backward(T* dQ, T* dK, T* dV, const MatrixBatch<T>& dO, const T* O, const T* LSE,
                        const MatrixBatch<T>& Q, const MatrixBatch<T>& K, const MatrixBatch<T>& V,
                        const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                        const Shape& batch, int64_t L, int64_t S, int64_t E, int64_t Ev);

}  // namespace cuda
}  // namespace kg
