// attention.h: fused scaled dot-product attention on the CPU (FlashAttention-2), float32 and float64.
//
//   O = softmax(scale * Q K^T + mask) V    for each batch-head b: Q (L x E), K (S x E), V (S x Ev)
//
// Forward keeps only O and the log-sum-exp of every score row, LSE = m + log(l); backward
// recomputes the probabilities tile by tile from LSE. Memory: O(L + S) per head and O(Br x Bc)
// scratch per thread, never an L x S matrix.
//
// Conventions (API.md): a bool mask keeps True, a float mask is added to the scores, causal keeps
// key j <= query i (top-left aligned). A row whose every key is masked gives O = 0, LSE = +inf and
// zero gradients. Dropout zeroes each probability P[b, i, j] when a counter-based hash of
// (seed, b, i, j) says so (common/dropout_hash.h, shared with the CUDA kernels;
// kg.reference.attention_dropout_keep is the same function in NumPy) and scales the survivors by
// 1 / (1 - p); backward regenerates the same mask.
//
// This header holds declarations only (see gemm.h for why).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kg {
namespace cpu {

// ----------------------------------------------------------------------------------------------
// Arguments

// A batch of matrices: matrix b has element (r, c) at ptr[b][r * rs + c * cs] (any strides, 0 too).
template <typename T>
struct MatrixBatch {
    const T* const* ptr;
    ptrdiff_t rs, cs;
};

// What removes or shifts scores before the softmax. At most one of keep / add is set.
template <typename T>
struct AttentionMask {
    const uint8_t* const* keep = nullptr;  // [BH] -> (L, S) bool mask: 0 removes score (i, j)
    const T* const* add = nullptr;         // [BH] -> (L, S) float mask, added to score (i, j)
    ptrdiff_t rs = 0, cs = 0;              // element strides of either (0: broadcast)
    bool causal = false;                   // removes j > i
};

// Dropout on the attention probabilities; off when p == 0.
struct AttentionDropout {
    double p = 0;
    uint64_t seed = 0;
};

// ----------------------------------------------------------------------------------------------
// Kernels (T = float or double)

// O = softmax(scale * Q K^T + mask) V, and LSE, for every batch-head b in [0, BH).
//   O:   (BH, L, Ev) C-contiguous        LSE: (BH, L) C-contiguous
//   Q:   [BH] -> (L, E)                  K: [BH] -> (S, E)         V: [BH] -> (S, Ev)
template <typename T>
void attention_forward(T* O, T* LSE, MatrixBatch<T> Q, MatrixBatch<T> K, MatrixBatch<T> V,
                       const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                       int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev);

// dQ, dK, dV of the forward above for the output gradient dO.
//   dQ: (BH, L, E)   dK: (BH, S, E)   dV: (BH, S, Ev), all C-contiguous
//   dO: [BH] -> (L, Ev)   O: (BH, L, Ev), LSE: (BH, L) as written by attention_forward
//   Q, K, V, mask, dropout, scale: as given to attention_forward
template <typename T>
void attention_backward(T* dQ, T* dK, T* dV, MatrixBatch<T> dO, const T* O, const T* LSE,
                        MatrixBatch<T> Q, MatrixBatch<T> K, MatrixBatch<T> V,
                        const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                        int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev);

}  // namespace cpu
}  // namespace kg
