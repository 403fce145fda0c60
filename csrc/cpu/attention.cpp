// attention.cpp: fused scaled dot-product attention (FlashAttention-2) on the GEMM micro-kernel.
//
//   O = softmax(scale * Q K^T + mask) V,   per batch-head b: Q (L x E), K (S x E), V (S x Ev)
//
// Forward, per batch-head and query tile Q_i (Br rows), over key tiles K_j, V_j (Bc rows):
//   S_ij = scale * Q_i K_j^T + mask                         (GEMM)
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
//
// Packing (gemm.h, "Operands packed once"): the micro-kernel reads A as MR-row panels and B as
// NR-column panels, and writes C a row at a time, i.e. as the NR-column panels of a later B. So
//   - what is reused is packed once: K and V per work item in forward, Q and dO per work item
//     and K_j, V_j per key tile in backward;
//   - a tile of probabilities is computed in the orientation in which the next product reads it
//     as B, straight from the GEMM's output: forward computes S_ij^T = K_j Q_i^T (queries along
//     the panels) for O_i^T += V_j^T P_ij^T; backward computes S_ij (keys along the panels) for
//     dV_j^T += dO_i^T P_ij and dK_j^T += Q_i^T dS_ij. Only dS_ij, the A of dQ_i += dS_ij K_j, is
//     repacked. O_i^T, dK_j^T and dV_j^T are transposed once, when written out.
// The softmax steps run on whole NR-wide panels with the shared vector primitives (vec.h); scale
// is folded into the packed Q, and backward's shift by LSE_i into the GEMM (an extra column -LSE_i
// of Q_i against a row of ones of K_j^T), so P_ij = exp of the GEMM's output, one call per tile.
#include "cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/dropout_hash.h"
#include "cpu/aligned.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// Query rows per tile (Br) and key rows per tile (Bc). A tile of S_ij (64 KiB in float32) stays in
// L2 next to the packed K and V of the head (512 KiB at S = 1024, E = Ev = 64). Operands are packed
// once, so the tile size matters little: 96 to 256 timed within 2% of 128 at E = 64.
constexpr int64_t Br = 128, Bc = 128;

template <typename T>
constexpr T kInf = std::numeric_limits<T>::infinity();

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

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
// One call: what every tile reads

template <typename T>
struct Problem {
    MatrixBatch<T> Q, K, V;          // [BH] -> (L, E), (S, E), (S, Ev)
    const AttentionMask<T>& mask;
    DropoutFactors<T> dropout;
    T scale;
    int64_t L, S, E, Ev;
    const VecOps<T>& vec = vec_ops<T>();

    // keys a query tile [i0, i0 + rows) sees: all S, or with causal only j < i0 + rows
    int64_t keys_seen(int64_t i0, int64_t rows) const { return mask.causal ? std::min(S, i0 + rows) : S; }

    // whether the mask (or causality) adds to or removes any score of the tile pair
    // (causal: some key j0 + k is after some query i0 + r, i.e. the last key is after the first query)
    bool masks(int64_t i0, int64_t j0, int64_t cols) const {
        return mask.add || mask.keep || (mask.causal && j0 + cols - 1 > i0);
    }
};

// ----------------------------------------------------------------------------------------------
// Mask and dropout along a strip of scores: n scores (i + c di, j + c dj), c < n, of head b

// s[c] += mask, or -inf where the mask (or causality: key after query) removes the score
template <typename T>
void mask_strip(T* s, const Problem<T>& pr, int64_t b, int64_t i, int64_t j, int64_t di, int64_t dj,
                int64_t n) {
    const AttentionMask<T>& mask = pr.mask;
    const ptrdiff_t at = i * mask.rs + j * mask.cs, step = di * mask.rs + dj * mask.cs;
    if (mask.add)
        for (int64_t c = 0; c < n; ++c) s[c] += mask.add[b][at + c * step];
    if (mask.keep)
        for (int64_t c = 0; c < n; ++c) s[c] = mask.keep[b][at + c * step] ? s[c] : -kInf<T>;
    if (mask.causal)
        for (int64_t c = 0; c < n; ++c) s[c] = j + c * dj > i + c * di ? -kInf<T> : s[c];
}

// Z[c] = the dropout factor of score (i + c di, j + c dj)
template <typename T>
void dropout_strip(T* Z, const Problem<T>& pr, int64_t b, int64_t i, int64_t j, int64_t di, int64_t dj,
                   int64_t n) {
    if (di == 0 && dj == 1) {
        pr.dropout.row(Z, b, i, j, n);
    } else {
        for (int64_t c = 0; c < n; ++c) pr.dropout.row(Z + c, b, i + c * di, j + c * dj, 1);
    }
}

// ----------------------------------------------------------------------------------------------
// Work items on threads, each thread with its own scratch

// Work items (batch-head b, chunk of its tiles), at least two per thread where the tiles allow.
struct Chunks {
    int64_t per_head, tiles;
    Chunks(int64_t BH, int64_t tiles)
        : per_head(std::clamp<int64_t>((2 * get_num_threads() + BH - 1) / std::max<int64_t>(BH, 1), 1,
                                       std::max<int64_t>(tiles, 1))),
          tiles(tiles) {}
    // chunk c of a head: tiles [begin(c), begin(c + 1)), near-equal parts
    int64_t begin(int64_t c) const { return tiles * c / per_head; }
};

// body(item, scratch) for every item in [0, n), items spread over the threads dynamically
// (causal tiles differ in cost); Scratch(pr) is made once per thread.
template <typename Scratch, typename T, typename Body>
void for_each_item(int64_t n, const Problem<T>& pr, Body body) {
    const int nt = static_cast<int>(std::clamp<int64_t>(n, 1, get_num_threads()));
#pragma omp parallel num_threads(nt)
    {
        Scratch scratch(pr);
#pragma omp for schedule(dynamic)
        for (int64_t item = 0; item < n; ++item) body(item, scratch);
    }
}

inline int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// ----------------------------------------------------------------------------------------------
// Forward

template <typename T>
struct ForwardScratch {
    static constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    int64_t Kp_tile, Vp_tile;
    Buffer<T> Kp;  // K_j, key tile j at j * Kp_tile: MR-row panels, kc = E (A of S_ij^T)
    Buffer<T> Vp;  // V_j^T, at j * Vp_tile: MR-row panels, kc = cols (A of O_i^T)
    Buffer<T> Qp;  // (scale Q_i)^T: NR-column panels, kc = E (B of S_ij^T)
    Buffer<T> St;  // S_ij^T, then P_ij^T: NR-column panels (queries), kc = cols (B of O_i^T)
    Buffer<T> Ot;  // O_i^T (Ev, Br)
    std::vector<T> m, l, alpha;      // (Br,): running max and sum of each query, rescale of O_i
    std::vector<T> shift, tile_max, tile_sum;  // (NR,): of one panel of queries in one key tile
    std::vector<T> Z;                // (NR,): dropout factors

    explicit ForwardScratch(const Problem<T>& pr)
        : Kp_tile(round_to_lines<T>(round_up(Bc, MR) * pr.E)),
          Vp_tile(round_to_lines<T>(round_up(pr.Ev, MR) * Bc)),
          Kp(alloc_aligned<T>(tiles(pr.S, Bc) * Kp_tile)),
          Vp(alloc_aligned<T>(tiles(pr.S, Bc) * Vp_tile)),
          Qp(alloc_aligned<T>(round_up(Br, NR) * pr.E)),
          St(alloc_aligned<T>(round_up(Br, NR) * Bc)),
          Ot(alloc_aligned<T>(pr.Ev * Br)),
          m(Br), l(Br), alpha(Br), shift(NR), tile_max(NR), tile_sum(NR), Z(NR) {}
};

// O_i = softmax(S_i) V and LSE_i for the query tile Q_i = Q[b][i0 : i0 + rows], with K and V of
// head b packed in scratch (key tiles up to keys_seen).
//   O: (BH, L, Ev), LSE: (BH, L)
template <typename T>
void forward_tile(T* O, T* LSE, const Problem<T>& pr, int64_t b, int64_t i0, int64_t rows,
                  ForwardScratch<T>& sc) {
    constexpr int NR = GemmBlocking<T>::NR;
    const int64_t E = pr.E, Ev = pr.Ev;
    T *Qp = sc.Qp.get(), *St = sc.St.get(), *Ot = sc.Ot.get();
    T *m = sc.m.data(), *l = sc.l.data(), *alpha = sc.alpha.data();

    // Qp = (scale Q_i)^T, Q_i^T (E x rows) read by strides
    gemm_pack_b(Qp, pr.Q.ptr[b] + i0 * pr.Q.rs, pr.Q.cs, pr.Q.rs, E, rows);
    for (int64_t x = 0; x < round_up(rows, NR) * E; ++x) Qp[x] *= pr.scale;
    std::fill(Ot, Ot + Ev * Br, T(0));
    std::fill(m, m + rows, -kInf<T>);
    std::fill(l, l + rows, T(0));

    const int64_t S_end = pr.keys_seen(i0, rows);
    for (int64_t j0 = 0; j0 < S_end; j0 += Bc) {
        const int64_t cols = std::min(Bc, pr.S - j0);  // whole key tiles: they are packed whole
        const int64_t j = j0 / Bc;

        // S_ij^T = K_j (scale Q_i)^T + mask^T, (cols x rows) as NR-query panels
        gemm_packed(St, NR, NR * cols, sc.Kp.get() + j * sc.Kp_tile, Qp, cols, rows, E, T(0));

        for (int64_t q0 = 0; q0 < rows; q0 += NR) {
            const int64_t w = std::min<int64_t>(NR, rows - q0);
            T* P = St + q0 * cols;  // (cols, NR): score (i0 + q0 + c, j0 + k) at P[k * NR + c]
            if (pr.masks(i0 + q0, j0, cols))
                for (int64_t k = 0; k < cols; ++k) mask_strip(P + k * NR, pr, b, i0 + q0, j0 + k, 1, 0, w);

            // per query q: m_new = max(m, max_k S_ij^T[k, q]) (NaN sticks),  alpha = exp(m - m_new),
            // P_ij^T[k, q] = exp(S_ij^T[k, q] - m_new),  l = alpha l + sum_k P_ij^T[k, q]
            // (every key so far removed: m_new = -inf, P = 0, shifted by 0 instead of -inf)
            T *shift = sc.shift.data(), *mx = sc.tile_max.data(), *sum = sc.tile_sum.data();
            pr.vec.col_max(mx, P, cols, NR, w);
            for (int64_t c = 0; c < w; ++c) {
                const int64_t q = q0 + c;
                const T m_new = mx[c] > m[q] || mx[c] != mx[c] ? mx[c] : m[q];
                alpha[q] = m_new == -kInf<T> ? T(0) : std::exp(m[q] - m_new);
                shift[c] = m_new == -kInf<T> ? T(0) : m_new;
                m[q] = m_new;
            }
            pr.vec.col_exp_sum(sum, P, P, shift, cols, NR, w);
            for (int64_t c = 0; c < w; ++c) l[q0 + c] = alpha[q0 + c] * l[q0 + c] + sum[c];

            if (pr.dropout.on()) {
                T* Z = sc.Z.data();
                for (int64_t k = 0; k < cols; ++k) {
                    dropout_strip(Z, pr, b, i0 + q0, j0 + k, 1, 0, w);
                    for (int64_t c = 0; c < w; ++c) P[k * NR + c] *= Z[c];
                }
            }
        }

        // O_i^T = alpha O_i^T + V_j^T dropout(P_ij)^T
        for (int64_t c = 0; c < Ev; ++c)
            for (int64_t q = 0; q < rows; ++q) Ot[c * Br + q] *= alpha[q];
        gemm_packed(Ot, Br, NR, sc.Vp.get() + j * sc.Vp_tile, St, Ev, rows, cols, T(1));
    }

    // O_i = O_i^T^T / l,  LSE_i = m + log(l);  a fully masked row (l = 0) keeps O = 0, LSE = +inf
    T* O_i = O + (b * pr.L + i0) * Ev;  // (rows, Ev)
    T* LSE_i = LSE + b * pr.L + i0;     // (rows,)
    for (int64_t r = 0; r < rows; ++r) {
        const T inv_l = l[r] > 0 ? 1 / l[r] : T(1);
        for (int64_t c = 0; c < Ev; ++c) O_i[r * Ev + c] = Ot[c * Br + r] * inv_l;
        LSE_i[r] = l[r] > 0 ? m[r] + std::log(l[r]) : kInf<T>;
    }
}

// Query tiles [t0, t1) of head b: pack the head's keys and values the tiles see, then each tile.
template <typename T>
void forward_item(T* O, T* LSE, const Problem<T>& pr, int64_t b, int64_t t0, int64_t t1,
                  ForwardScratch<T>& sc) {
    const int64_t i_last = (t1 - 1) * Br;
    const int64_t S_end = pr.keys_seen(i_last, std::min(Br, pr.L - i_last));
    for (int64_t j0 = 0; j0 < S_end; j0 += Bc) {
        const int64_t cols = std::min(Bc, pr.S - j0), j = j0 / Bc;
        const T* K_j = pr.K.ptr[b] + j0 * pr.K.rs;  // (cols, E)
        const T* V_j = pr.V.ptr[b] + j0 * pr.V.rs;  // (cols, Ev), read as V_j^T (Ev, cols)
        gemm_pack_a(sc.Kp.get() + j * sc.Kp_tile, K_j, pr.K.rs, pr.K.cs, cols, pr.E);
        gemm_pack_a(sc.Vp.get() + j * sc.Vp_tile, V_j, pr.V.cs, pr.V.rs, pr.Ev, cols);
    }
    for (int64_t t = t0; t < t1; ++t) forward_tile(O, LSE, pr, b, t * Br, std::min(Br, pr.L - t * Br), sc);
}

// ----------------------------------------------------------------------------------------------
// Backward

// What backward reads besides the Problem.
template <typename T>
struct Gradients {
    MatrixBatch<T> dO;  // [BH] -> (L, Ev)
    const T* LSE;       // (BH, L)
    const T* D;         // (BH, L): rowsum(dO * O)
};

template <typename T>
struct BackwardScratch {
    static constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    // query tile i of the head, at i * the tile size: MR-row panels
    int64_t Qa_tile, dOa_tile, dOt_tile, Qt_tile;
    Buffer<T> Qa;   // (scale Q_i | -LSE_i), kc = E + 1 (A of S_ij - LSE_i)
    Buffer<T> dOa;  // dO_i, kc = Ev (A of dP_ij)
    Buffer<T> dOt;  // dO_i^T, kc = rows (A of dV_j^T)
    Buffer<T> Qt;   // Q_i^T, kc = rows (A of dK_j^T)
    // key tile j: NR-column panels
    Buffer<T> Kb;   // (K_j | 1)^T, kc = E + 1 (B of S_ij - LSE_i)
    Buffer<T> Vb;   // V_j^T, kc = Ev (B of dP_ij)
    Buffer<T> Kc;   // K_j, kc = cols (B of dQ_i)
    Buffer<T> dKt, dVt;  // dK_j^T (E, Bc), dV_j^T (Ev, Bc)
    // tile pair
    Buffer<T> P;    // P_ij: NR-column panels (keys), kc = rows (B of dV_j^T)
    Buffer<T> dS;   // dP_ij, then dS_ij: as P_ij (B of dK_j^T)
    Buffer<T> dSa;  // dS_ij: MR-row panels, kc = cols (A of dQ_i)
    std::vector<T> aug;  // (max(Br, Bc), E + 1): (scale Q_i | -LSE_i) or (K_j | 1) before packing
    std::vector<T> Z;    // (NR,): dropout factors

    explicit BackwardScratch(const Problem<T>& pr)
        : Qa_tile(round_to_lines<T>(round_up(Br, MR) * (pr.E + 1))),
          dOa_tile(round_to_lines<T>(round_up(Br, MR) * pr.Ev)),
          dOt_tile(round_to_lines<T>(round_up(pr.Ev, MR) * Br)),
          Qt_tile(round_to_lines<T>(round_up(pr.E, MR) * Br)),
          Qa(alloc_aligned<T>(tiles(pr.L, Br) * Qa_tile)),
          dOa(alloc_aligned<T>(tiles(pr.L, Br) * dOa_tile)),
          dOt(alloc_aligned<T>(tiles(pr.L, Br) * dOt_tile)),
          Qt(alloc_aligned<T>(tiles(pr.L, Br) * Qt_tile)),
          Kb(alloc_aligned<T>(round_up(Bc, NR) * (pr.E + 1))),
          Vb(alloc_aligned<T>(round_up(Bc, NR) * pr.Ev)),
          Kc(alloc_aligned<T>(round_up(pr.E, NR) * Bc)),
          dKt(alloc_aligned<T>(pr.E * Bc)),
          dVt(alloc_aligned<T>(pr.Ev * Bc)),
          P(alloc_aligned<T>(round_up(Bc, NR) * Br)),
          dS(alloc_aligned<T>(round_up(Bc, NR) * Br)),
          dSa(alloc_aligned<T>(round_up(Br, MR) * Bc)),
          aug(std::max(Br, Bc) * (pr.E + 1)),
          Z(NR) {}
};

// dS_ij (rows x cols, NR-column panels, kc = rows) into MR-row panels, kc = cols (gemm.h layouts)
template <typename T>
void repack_as_a(T* dSa, const T* dS, int64_t rows, int64_t cols) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    for (int64_t q0 = 0; q0 < rows; q0 += MR) {
        const int64_t n = std::min<int64_t>(MR, rows - q0);
        T* dst = dSa + q0 * cols;  // (cols, MR)
        for (int64_t k = 0; k < cols; ++k) {
            const T* src = dS + k / NR * NR * rows + q0 * NR + k % NR;  // column k, rows q0.. (stride NR)
            for (int64_t r = 0; r < MR; ++r) dst[k * MR + r] = r < n ? src[r * NR] : T(0);
        }
    }
}

// dK_j, dV_j of the key tile K_j = K[b][j0 : j0 + cols] over every query tile it meets, and its
// terms of dQ_b (head b's dQ, or a partial one), with head b's query tiles packed in scratch.
//   dQ_b: (L, E), dK: (BH, S, E), dV: (BH, S, Ev)
template <typename T>
void backward_key_tile(T* dQ_b, T* dK, T* dV, const Problem<T>& pr, const Gradients<T>& gr, int64_t b,
                       int64_t j0, int64_t cols, BackwardScratch<T>& sc) {
    constexpr int NR = GemmBlocking<T>::NR;
    const int64_t E = pr.E, Ev = pr.Ev;
    const T* K_j = pr.K.ptr[b] + j0 * pr.K.rs;  // (cols, E)
    const T* V_j = pr.V.ptr[b] + j0 * pr.V.rs;  // (cols, Ev)
    T *P = sc.P.get(), *dS = sc.dS.get(), *dKt = sc.dKt.get(), *dVt = sc.dVt.get();

    // Kb = (K_j | 1)^T,  Vb = V_j^T,  Kc = K_j
    T* aug = sc.aug.data();  // (cols, E + 1)
    for (int64_t k = 0; k < cols; ++k) {
        for (int64_t p = 0; p < E; ++p) aug[k * (E + 1) + p] = K_j[k * pr.K.rs + p * pr.K.cs];
        aug[k * (E + 1) + E] = T(1);
    }
    gemm_pack_b(sc.Kb.get(), aug, 1, E + 1, E + 1, cols);
    gemm_pack_b(sc.Vb.get(), V_j, pr.V.cs, pr.V.rs, Ev, cols);
    gemm_pack_b(sc.Kc.get(), K_j, pr.K.rs, pr.K.cs, cols, E);
    std::fill(dKt, dKt + E * Bc, T(0));
    std::fill(dVt, dVt + Ev * Bc, T(0));

    // causal: query tiles wholly before key j0 see none of this tile
    for (int64_t i0 = pr.mask.causal ? j0 / Br * Br : 0; i0 < pr.L; i0 += Br) {
        const int64_t rows = std::min(Br, pr.L - i0), t = i0 / Br;

        // P_ij = exp(S_ij - LSE_i), S_ij - LSE_i = (scale Q_i | -LSE_i) (K_j | 1)^T + mask
        // (LSE = +inf, a fully masked row: P = 0)
        gemm_packed(P, NR, NR * rows, sc.Qa.get() + t * sc.Qa_tile, sc.Kb.get(), rows, cols, E + 1, T(0));
        if (pr.masks(i0, j0, cols))
            for (int64_t k0 = 0; k0 < cols; k0 += NR)
                for (int64_t r = 0; r < rows; ++r)
                    mask_strip(P + k0 * rows + r * NR, pr, b, i0 + r, j0 + k0, 0, 1, std::min<int64_t>(NR, cols - k0));
        pr.vec.exp_sum(P, P, T(0), round_up(cols, NR) * rows);

        // dP_ij = dO_i V_j^T;  dS_ij = scale P_ij (Z dP_ij - D_i),  P_ij <- Z P_ij
        gemm_packed(dS, NR, NR * rows, sc.dOa.get() + t * sc.dOa_tile, sc.Vb.get(), rows, cols, Ev, T(0));
        const T scale = pr.scale;
        for (int64_t k0 = 0; k0 < cols; k0 += NR) {
            for (int64_t r = 0; r < rows; ++r) {
                T* __restrict p = P + k0 * rows + r * NR;    // (NR,): keys j0 + k0.. of query i0 + r
                T* __restrict ds = dS + k0 * rows + r * NR;  // (NR,)
                const T d = gr.D[b * pr.L + i0 + r];
                if (pr.dropout.on()) {
                    T* Z = sc.Z.data();
                    dropout_strip(Z, pr, b, i0 + r, j0 + k0, 0, 1, std::min<int64_t>(NR, cols - k0));
                    for (int64_t c = 0; c < std::min<int64_t>(NR, cols - k0); ++c) {
                        ds[c] = scale * p[c] * (Z[c] * ds[c] - d);
                        p[c] *= Z[c];
                    }
                } else {
                    for (int c = 0; c < NR; ++c) ds[c] = scale * p[c] * (ds[c] - d);
                }
            }
        }

        // dV_j^T += dO_i^T P_ij,  dK_j^T += Q_i^T dS_ij,  dQ_i += dS_ij K_j
        gemm_packed(dVt, Bc, NR, sc.dOt.get() + t * sc.dOt_tile, P, Ev, cols, rows, T(1));
        gemm_packed(dKt, Bc, NR, sc.Qt.get() + t * sc.Qt_tile, dS, E, cols, rows, T(1));
        repack_as_a(sc.dSa.get(), dS, rows, cols);
        gemm_packed(dQ_b + i0 * E, E, NR, sc.dSa.get(), sc.Kc.get(), rows, E, cols, T(1));
    }

    // dK_j = dK_j^T^T,  dV_j = dV_j^T^T
    T* dK_j = dK + (b * pr.S + j0) * E;   // (cols, E)
    T* dV_j = dV + (b * pr.S + j0) * Ev;  // (cols, Ev)
    for (int64_t k = 0; k < cols; ++k) {
        for (int64_t p = 0; p < E; ++p) dK_j[k * E + p] = dKt[p * Bc + k];
        for (int64_t p = 0; p < Ev; ++p) dV_j[k * Ev + p] = dVt[p * Bc + k];
    }
}

// Key tiles [k0, k1) of head b: pack the head's query tiles that see them, then each key tile.
template <typename T>
void backward_item(T* dQ_b, T* dK, T* dV, const Problem<T>& pr, const Gradients<T>& gr, int64_t b,
                   int64_t k0, int64_t k1, BackwardScratch<T>& sc) {
    if (k0 == k1) return;
    const int64_t E = pr.E, Ev = pr.Ev;
    for (int64_t i0 = pr.mask.causal ? k0 * Bc / Br * Br : 0; i0 < pr.L; i0 += Br) {
        const int64_t rows = std::min(Br, pr.L - i0), t = i0 / Br;
        const T* Q_i = pr.Q.ptr[b] + i0 * pr.Q.rs;     // (rows, E)
        const T* dO_i = gr.dO.ptr[b] + i0 * gr.dO.rs;  // (rows, Ev)
        T* aug = sc.aug.data();                        // (rows, E + 1) = (scale Q_i | -LSE_i)
        for (int64_t r = 0; r < rows; ++r) {
            for (int64_t p = 0; p < E; ++p) aug[r * (E + 1) + p] = pr.scale * Q_i[r * pr.Q.rs + p * pr.Q.cs];
            aug[r * (E + 1) + E] = -gr.LSE[b * pr.L + i0 + r];
        }
        gemm_pack_a(sc.Qa.get() + t * sc.Qa_tile, aug, E + 1, 1, rows, E + 1);
        gemm_pack_a(sc.dOa.get() + t * sc.dOa_tile, dO_i, gr.dO.rs, gr.dO.cs, rows, Ev);
        gemm_pack_a(sc.dOt.get() + t * sc.dOt_tile, dO_i, gr.dO.cs, gr.dO.rs, Ev, rows);
        gemm_pack_a(sc.Qt.get() + t * sc.Qt_tile, Q_i, pr.Q.cs, pr.Q.rs, E, rows);
    }
    for (int64_t j = k0; j < k1; ++j)
        backward_key_tile(dQ_b, dK, dV, pr, gr, b, j * Bc, std::min(Bc, pr.S - j * Bc), sc);
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Entry points (declared in attention.h)

template <typename T>
void attention_forward(T* O, T* LSE, MatrixBatch<T> Q, MatrixBatch<T> K, MatrixBatch<T> V,
                       const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                       int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    const Problem<T> pr{Q, K, V, mask, DropoutFactors<T>(dropout, L, S), scale, L, S, E, Ev};
    // work items: (batch-head b, chunk c of its query tiles)
    const Chunks ch(BH, tiles(L, Br));
    for_each_item<ForwardScratch<T>>(BH * ch.per_head, pr, [&](int64_t item, ForwardScratch<T>& sc) {
        const int64_t b = item / ch.per_head, c = item % ch.per_head;
        if (ch.begin(c) < ch.begin(c + 1)) forward_item(O, LSE, pr, b, ch.begin(c), ch.begin(c + 1), sc);
    });
}

template <typename T>
void attention_backward(T* dQ, T* dK, T* dV, MatrixBatch<T> dO, const T* O, const T* LSE,
                        MatrixBatch<T> Q, MatrixBatch<T> K, MatrixBatch<T> V,
                        const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                        int64_t BH, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    const Problem<T> pr{Q, K, V, mask, DropoutFactors<T>(dropout, L, S), scale, L, S, E, Ev};

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

    // work items (batch-head b, chunk c of its key tiles); chunk 0 accumulates dQ[b] in place,
    // chunk c > 0 into dQ_parts[c - 1][b]
    const Chunks ch(BH, tiles(S, Bc));
    const int64_t size = L * E;
    std::fill(dQ, dQ + BH * size, T(0));
    std::vector<T> dQ_parts((ch.per_head - 1) * BH * size);  // (chunks - 1, BH, L, E), zeros
    for_each_item<BackwardScratch<T>>(BH * ch.per_head, pr, [&](int64_t item, BackwardScratch<T>& sc) {
        const int64_t b = item / ch.per_head, c = item % ch.per_head;
        T* dQ_b = (c == 0 ? dQ : dQ_parts.data() + (c - 1) * BH * size) + b * size;  // (L, E)
        backward_item(dQ_b, dK, dV, pr, gr, b, ch.begin(c), ch.begin(c + 1), sc);
    });
    if (ch.per_head > 1) {  // dQ += the other chunks' parts
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
        for (int64_t x = 0; x < BH * size; ++x)
            for (int64_t c = 1; c < ch.per_head; ++c) dQ[x] += dQ_parts[(c - 1) * BH * size + x];
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
