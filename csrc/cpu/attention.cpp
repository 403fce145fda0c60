// attention.cpp: fused scaled dot-product attention (FlashAttention-2) on the GEMM kernel.
//
//   O = softmax(scale * Q K^T + mask) V,   per batch-head b: Q (L x E), K (S x E), V (S x Ev)
//
// Forward, per batch-head and query tile Q_i (Br rows), over key tiles K_j, V_j (Bc rows):
//   S_ij = scale * Q_i K_j^T + mask                    (GEMM; K_j^T is read by strides, not copied)
//   m_new = max(m, rowmax(S_ij)),   P_ij = exp(S_ij - m_new)
//   l = exp(m - m_new) l + rowsum(P_ij),   O_i = exp(m - m_new) O_i + dropout(P_ij) V_j   (GEMM)
// and at the end O_i /= l, LSE_i = m + log(l): one division per row.
//
// Backward, with D = rowsum(dO * O) and P_ij = exp(S_ij - LSE_i) recomputed tile by tile, per
// batch-head and key tile K_j, V_j (dK_j, dV_j belong to one thread), over query tiles Q_i:
//   dV_j += dropout(P_ij)^T dO_i,   dP_ij = dropout(dO_i V_j^T),   dS_ij = P_ij * (dP_ij - D_i),
//   dK_j += scale * dS_ij^T Q_i,    dQ_i += scale * dS_ij K_j
// dQ_i gets a term from every key tile: a work item is a head's whole run of key tiles, or, when
// there are fewer heads than threads can share, a chunk of it with its own dQ buffer (O(L) per
// extra chunk), summed at the end. No atomics, and the five GEMMs of the paper per tile pair.
#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/dropout_hash.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// Query rows per tile (Br) and key rows per tile (Bc). S_ij and dP_ij (Br x Bc, 64 KiB each in
// float32) stay in L2; every GEMM call packs its operands, and 128 x 128 tiles amortise that
// (64 x 64 was about 25% slower at E = 64, larger tiles no faster).
constexpr int64_t Br = 128, Bc = 128;

template <typename T>
constexpr T kInf = std::numeric_limits<T>::infinity();

// ----------------------------------------------------------------------------------------------
// Dropout: a counter-based generator (common/dropout_hash.h, shared with the CUDA kernels), so
// backward regenerates forward's mask from the seed

// Z[b, i, j]: 0 where dropout removes probability (b, i, j), 1 / (1 - p) where it keeps it.
template <typename T>
class DropoutFactors {
  public:
    DropoutFactors(AttentionDropout d, int64_t L, int64_t S)
        : on_(d.p > 0), seed_(d.seed), threshold_(dropout::keep_threshold(d.p)),
          kept_(dropout::kept_scale<T>(d.p)), L_(L), S_(S) {}

    bool on() const { return on_; }

    // Z[0:n] = Z[b, i, j0 : j0 + n]
    void row(T* Z, int64_t b, int64_t i, int64_t j0, int64_t n) const {
        for (int64_t c = 0; c < n; ++c)
            Z[c] = dropout::keeps(seed_, threshold_, b, i, j0 + c, L_, S_) ? kept_ : T(0);
    }

  private:
    bool on_;
    uint64_t seed_, threshold_;
    T kept_;
    int64_t L_, S_;
};

// ----------------------------------------------------------------------------------------------
// Row kernels of the softmax: the shared row primitives (vec.h: plain or AVX2, chosen at run time)

template <typename T>
struct RowKernels {
    const VecOps<T>& ops = vec_ops<T>();

    // max(m0, max(x[0:n])), NaN if any is NaN (a row of NaN scores gives NaN, not "masked")
    T max(const T* x, int64_t n, T m0) const {
        const T mx = ops.max(x, n);
        if (m0 != m0 || mx != mx) return std::numeric_limits<T>::quiet_NaN();
        return mx > m0 ? mx : m0;
    }
    // x[c] = exp(x[c] - shift) for c in [0, n); returns the sum of the new x
    T exp_sum(T* x, int64_t n, T shift) const { return ops.exp_sum(x, x, shift, n); }
};

// ----------------------------------------------------------------------------------------------
// One call: what every tile reads

template <typename T>
struct Problem {
    MatrixBatch<T> Q, K, V;          // [BH] -> (L, E), (S, E), (S, Ev)
    const AttentionMask<T>& mask;
    DropoutFactors<T> dropout;
    T scale;
    int64_t L, S, E, Ev;
    RowKernels<T> row;

    // keys a query tile [i0, i0 + rows) sees: all S, or with causal only j < i0 + rows
    int64_t keys_seen(int64_t i0, int64_t rows) const { return mask.causal ? std::min(S, i0 + rows) : S; }
};

// ----------------------------------------------------------------------------------------------
// Work items on threads, each thread with its own tile scratch

template <typename T>
struct Scratch {
    std::vector<T> S_ij = std::vector<T>(Br * Bc);   // (Br, Bc): scores, then P_ij
    std::vector<T> dP_ij = std::vector<T>(Br * Bc);  // (Br, Bc): dP_ij, then dS_ij (backward)
    std::vector<T> m = std::vector<T>(Br);           // running row max
    std::vector<T> l = std::vector<T>(Br);           // running row sum
    std::vector<T> Z = std::vector<T>(Bc);           // dropout factors of one row
};

// body(item, scratch) for every item in [0, n), items spread over the threads dynamically
// (causal tiles differ in cost).
template <typename T, typename Body>
void for_each_item(int64_t n, Body body) {
    const int nt = static_cast<int>(std::clamp<int64_t>(n, 1, get_num_threads()));
#pragma omp parallel num_threads(nt)
    {
        Scratch<T> scratch;
#pragma omp for schedule(dynamic)
        for (int64_t item = 0; item < n; ++item) body(item, scratch);
    }
}

// ----------------------------------------------------------------------------------------------
// Scores of one tile pair, shared by forward and backward

// S_ij (rows x cols, row stride Bc) = scale * Q_i K_j^T + mask, removed scores = -inf,
// for Q_i = Q[b][i0 : i0 + rows], K_j = K[b][j0 : j0 + cols].
template <typename T>
void scores(T* S_ij, const Problem<T>& pr, int64_t b, int64_t i0, int64_t j0, int64_t rows, int64_t cols) {
    const AttentionMask<T>& mask = pr.mask;
    const T* Q_i = pr.Q.ptr[b] + i0 * pr.Q.rs;  // (rows, E)
    const T* K_j = pr.K.ptr[b] + j0 * pr.K.rs;  // (cols, E), read as K_j^T (E, cols)
    gemm(S_ij, Bc, 1, Q_i, pr.Q.rs, pr.Q.cs, K_j, pr.K.cs, pr.K.rs, rows, cols, pr.E, T(0));
    for (int64_t r = 0; r < rows; ++r) {
        T* s = S_ij + r * Bc;  // (cols,)
        for (int64_t c = 0; c < cols; ++c) s[c] *= pr.scale;
        const ptrdiff_t at = (i0 + r) * mask.rs + j0 * mask.cs;
        if (mask.add) {
            const T* a = mask.add[b] + at;  // (cols,) with stride mask.cs
            for (int64_t c = 0; c < cols; ++c) s[c] += a[c * mask.cs];
        }
        if (mask.keep) {
            const uint8_t* k = mask.keep[b] + at;  // (cols,) with stride mask.cs
            for (int64_t c = 0; c < cols; ++c) s[c] = k[c * mask.cs] ? s[c] : -kInf<T>;
        }
        if (mask.causal)  // key j0 + c is removed when it is after query i0 + r
            for (int64_t c = std::max<int64_t>(0, i0 + r + 1 - j0); c < cols; ++c) s[c] = -kInf<T>;
    }
}

// ----------------------------------------------------------------------------------------------
// Forward: one query tile

// O_i = softmax(S_i) V and LSE_i for the query tile Q_i = Q[b][i0 : i0 + rows].
//   O: (BH, L, Ev), LSE: (BH, L)
template <typename T>
void forward_tile(T* O, T* LSE, const Problem<T>& pr, int64_t b, int64_t i0, int64_t rows,
                  Scratch<T>& scratch) {
    const int64_t Ev = pr.Ev;
    T* O_i = O + (b * pr.L + i0) * Ev;  // (rows, Ev), accumulated in place
    T* LSE_i = LSE + b * pr.L + i0;     // (rows,)
    T *S_ij = scratch.S_ij.data(), *m = scratch.m.data(), *l = scratch.l.data();
    std::fill(O_i, O_i + rows * Ev, T(0));
    std::fill(m, m + rows, -kInf<T>);
    std::fill(l, l + rows, T(0));

    const int64_t S_end = pr.keys_seen(i0, rows);
    for (int64_t j0 = 0; j0 < S_end; j0 += Bc) {
        const int64_t cols = std::min(Bc, S_end - j0);
        scores(S_ij, pr, b, i0, j0, rows, cols);

        // m_new = max(m, rowmax(S_ij)),  P_ij = exp(S_ij - m_new),
        // l = exp(m - m_new) l + rowsum(P_ij),  O_i = exp(m - m_new) O_i
        for (int64_t r = 0; r < rows; ++r) {
            T* s = S_ij + r * Bc;  // (cols,): S_ij row r, then P_ij row r
            const T m_new = pr.row.max(s, cols, m[r]);
            if (m_new == -kInf<T>) {  // every key so far removed: P = 0, and l, O_i stay 0
                std::fill(s, s + cols, T(0));
                continue;
            }
            const T rowsum = pr.row.exp_sum(s, cols, m_new);
            const T alpha = std::exp(m[r] - m_new);  // 0 when m = -inf
            l[r] = alpha * l[r] + rowsum;
            m[r] = m_new;
            if (alpha != T(1))
                for (int64_t c = 0; c < Ev; ++c) O_i[r * Ev + c] *= alpha;
            if (pr.dropout.on()) {
                T* Z = scratch.Z.data();
                pr.dropout.row(Z, b, i0 + r, j0, cols);
                for (int64_t c = 0; c < cols; ++c) s[c] *= Z[c];
            }
        }

        // O_i += P_ij V_j
        const T* V_j = pr.V.ptr[b] + j0 * pr.V.rs;  // (cols, Ev)
        gemm(O_i, Ev, 1, S_ij, Bc, 1, V_j, pr.V.rs, pr.V.cs, rows, Ev, cols, T(1));
    }

    // O_i /= l,  LSE_i = m + log(l);  a fully masked row (l = 0) keeps O = 0 and gets LSE = +inf
    for (int64_t r = 0; r < rows; ++r) {
        if (l[r] > 0) {
            const T inv_l = 1 / l[r];
            for (int64_t c = 0; c < Ev; ++c) O_i[r * Ev + c] *= inv_l;
            LSE_i[r] = m[r] + std::log(l[r]);
        } else {
            LSE_i[r] = kInf<T>;
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Backward: the dS_ij of one tile pair, then a key tile over every query tile

// What backward reads besides the Problem.
template <typename T>
struct Gradients {
    MatrixBatch<T> dO;  // [BH] -> (L, Ev)
    const T* LSE;       // (BH, L)
    const T* D;         // (BH, L): rowsum(dO * O)
};

// For the tile pair (Q_i, K_j) with Q_i = Q[b][i0 : i0 + rows], K_j = K[b][j0 : j0 + cols]:
//   S_ij -> P_ij = exp(S_ij - LSE_i)                        (in scratch.S_ij; LSE = +inf: P = 0)
//   dP_ij = dO_i V_j^T,   dS_ij = scale * P_ij * (Z * dP_ij - D_i)     (in scratch.dP_ij)
//   P_ij <- Z * P_ij                                        (the probabilities dropout let through)
template <typename T>
void softmax_grad_tile(const Problem<T>& pr, const Gradients<T>& gr, int64_t b, int64_t i0, int64_t j0,
                       int64_t rows, int64_t cols, Scratch<T>& scratch) {
    T *P = scratch.S_ij.data(), *dP = scratch.dP_ij.data(), *Z = scratch.Z.data();
    scores(P, pr, b, i0, j0, rows, cols);
    const T* dO_i = gr.dO.ptr[b] + i0 * gr.dO.rs;  // (rows, Ev)
    const T* V_j = pr.V.ptr[b] + j0 * pr.V.rs;     // (cols, Ev), read as V_j^T (Ev, cols)
    gemm(dP, Bc, 1, dO_i, gr.dO.rs, gr.dO.cs, V_j, pr.V.cs, pr.V.rs, rows, cols, pr.Ev, T(0));

    const T scale = pr.scale;
    for (int64_t r = 0; r < rows; ++r) {
        T* p = P + r * Bc;    // (cols,)
        T* dp = dP + r * Bc;  // (cols,)
        const int64_t row = b * pr.L + i0 + r;
        const T d = gr.D[row];
        pr.row.exp_sum(p, cols, gr.LSE[row]);
        if (pr.dropout.on()) {
            pr.dropout.row(Z, b, i0 + r, j0, cols);
            for (int64_t c = 0; c < cols; ++c) {
                dp[c] = scale * p[c] * (Z[c] * dp[c] - d);
                p[c] *= Z[c];
            }
        } else {
            for (int64_t c = 0; c < cols; ++c) dp[c] = scale * p[c] * (dp[c] - d);
        }
    }
}

// dK_j, dV_j of the key tile K_j = K[b][j0 : j0 + cols] over every query tile, and its terms of
// dQ_b (head b's dQ, or a partial one).
//   dQ_b: (L, E), dK: (BH, S, E), dV: (BH, S, Ev)
template <typename T>
void backward_key_tile(T* dQ_b, T* dK, T* dV, const Problem<T>& pr, const Gradients<T>& gr, int64_t b,
                       int64_t j0, int64_t cols, Scratch<T>& scratch) {
    const int64_t E = pr.E, Ev = pr.Ev;
    T* dK_j = dK + (b * pr.S + j0) * E;   // (cols, E)
    T* dV_j = dV + (b * pr.S + j0) * Ev;  // (cols, Ev)
    const T* K_j = pr.K.ptr[b] + j0 * pr.K.rs;  // (cols, E)
    std::fill(dK_j, dK_j + cols * E, T(0));
    std::fill(dV_j, dV_j + cols * Ev, T(0));
    const T *P = scratch.S_ij.data(), *dS = scratch.dP_ij.data();

    // causal: query tiles wholly before key j0 see none of this tile
    for (int64_t i0 = pr.mask.causal ? j0 / Br * Br : 0; i0 < pr.L; i0 += Br) {
        const int64_t rows = std::min(Br, pr.L - i0);
        softmax_grad_tile(pr, gr, b, i0, j0, rows, cols, scratch);
        const T* dO_i = gr.dO.ptr[b] + i0 * gr.dO.rs;  // (rows, Ev)
        const T* Q_i = pr.Q.ptr[b] + i0 * pr.Q.rs;     // (rows, E)
        // dV_j += P_ij^T dO_i,  dK_j += dS_ij^T Q_i   (P_ij^T, dS_ij^T by strides),  dQ_i += dS_ij K_j
        gemm(dV_j, Ev, 1, P, 1, Bc, dO_i, gr.dO.rs, gr.dO.cs, cols, Ev, rows, T(1));
        gemm(dK_j, E, 1, dS, 1, Bc, Q_i, pr.Q.rs, pr.Q.cs, cols, E, rows, T(1));
        gemm(dQ_b + i0 * E, E, 1, dS, Bc, 1, K_j, pr.K.rs, pr.K.cs, rows, E, cols, T(1));
    }
}

// n items split into `parts` near-equal parts: part idx is [part_begin(idx), part_begin(idx + 1))
inline int64_t part_begin(int64_t n, int64_t parts, int64_t idx) { return n * idx / parts; }

inline int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

}  // namespace

// ----------------------------------------------------------------------------------------------
// Entry points (declared in attention.h)

template <typename T>
void attention_forward(T* O, T* LSE, MatrixBatch<T> Q, MatrixBatch<T> K, MatrixBatch<T> V,
                       const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                       int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    const Problem<T> pr{Q, K, V, mask, DropoutFactors<T>(dropout, L, S), scale, L, S, E, Ev, {}};
    const int64_t nq = tiles(L, Br);
    // work items: (batch-head b, query tile i)
    for_each_item<T>(BH * nq, [&](int64_t item, Scratch<T>& scratch) {
        const int64_t b = item / nq, i0 = item % nq * Br;
        forward_tile(O, LSE, pr, b, i0, std::min(Br, L - i0), scratch);
    });
}

template <typename T>
void attention_backward(T* dQ, T* dK, T* dV, MatrixBatch<T> dO, const T* O, const T* LSE,
                        MatrixBatch<T> Q, MatrixBatch<T> K, MatrixBatch<T> V,
                        const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                        int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    const Problem<T> pr{Q, K, V, mask, DropoutFactors<T>(dropout, L, S), scale, L, S, E, Ev, {}};

    // D[b, i] = rowsum(dO * O)[b, i]
    std::vector<T> D(BH * L);  // (BH, L)
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t row = 0; row < BH * L; ++row) {
        const T* dO_row = dO.ptr[row / L] + row % L * dO.rs;  // (Ev,) with stride dO.cs
        const T* O_row = O + row * Ev;                        // (Ev,)
        T d = 0;
        for (int64_t c = 0; c < Ev; ++c) d += dO_row[c * dO.cs] * O_row[c];
        D[row] = d;
    }
    const Gradients<T> gr{dO, LSE, D.data()};

    // work items (batch-head b, chunk c of its key tiles), at least two per thread where the key
    // tiles allow; chunk 0 accumulates dQ[b] in place, chunk c > 0 into dQ_parts[c - 1][b]
    const int64_t nk = tiles(S, Bc), size = L * E;
    const int64_t chunks = std::clamp<int64_t>((2 * get_num_threads() + BH - 1) / BH, 1, std::max<int64_t>(nk, 1));
    std::fill(dQ, dQ + BH * size, T(0));
    std::vector<T> dQ_parts((chunks - 1) * BH * size);  // (chunks - 1, BH, L, E), zeros
    for_each_item<T>(BH * chunks, [&](int64_t item, Scratch<T>& scratch) {
        const int64_t b = item / chunks, c = item % chunks;
        T* dQ_b = (c == 0 ? dQ : dQ_parts.data() + (c - 1) * BH * size) + b * size;  // (L, E)
        for (int64_t j = part_begin(nk, chunks, c); j < part_begin(nk, chunks, c + 1); ++j)
            backward_key_tile(dQ_b, dK, dV, pr, gr, b, j * Bc, std::min(Bc, S - j * Bc), scratch);
    });
    if (chunks > 1) {  // dQ += the other chunks' parts
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
        for (int64_t x = 0; x < BH * size; ++x)
            for (int64_t c = 1; c < chunks; ++c) dQ[x] += dQ_parts[(c - 1) * BH * size + x];
    }
}

// ----------------------------------------------------------------------------------------------
// float32 and float64

#define KG_ATTENTION_INSTANTIATE(T)                                                              \
    template void attention_forward<T>(T*, T*, MatrixBatch<T>, MatrixBatch<T>, MatrixBatch<T>,  \
                                       const AttentionMask<T>&, AttentionDropout, T, int64_t,    \
                                       int64_t, int64_t, int64_t, int64_t);                      \
    template void attention_backward<T>(T*, T*, T*, MatrixBatch<T>, const T*, const T*,          \
                                        MatrixBatch<T>, MatrixBatch<T>, MatrixBatch<T>,          \
                                        const AttentionMask<T>&, AttentionDropout, T, int64_t,   \
                                        int64_t, int64_t, int64_t, int64_t);
KG_ATTENTION_INSTANTIATE(float)
KG_ATTENTION_INSTANTIATE(double)
#undef KG_ATTENTION_INSTANTIATE

}  // namespace cpu
}  // namespace kg
