// attention.cu: fused scaled dot-product attention (FlashAttention-2) on CUDA cores (see attention.h).
//
//   O = softmax(scale * Q K^T + mask) V,   per batch index b: Q (L x E), K (S x E), V (S x Ev)
//
// Tiles are Br = Bc = 32 rows; a block is 4 warps (128 threads). Every kernel works on a 32 x 32
// tile of scores at a time, each warp owning 8 of its rows and lane x its column x; products run
// through shared 32 x 32 tiles of the operands. Head dims are runtime values: the contractions over
// E and Ev loop over 32-column tiles, and a block accumulates G groups of 32 output columns in
// registers (G = 1, 2 or 4 from the head dim; float64 at most 2, which keeps its registers in
// bounds), more columns going to more blocks (blockIdx.z), which then recompute the scores.
//
// Kernels:
//   attention_forward_kernel      a block per (b, query tile Q_i, column chunk of O). Over key tiles
//                                 K_j, V_j (causal: only those with a key j <= the tile's last query):
//       S_ij = scale * Q_i K_j^T + mask,   m_new = max(m, rowmax(S_ij)),   P_ij = exp(S_ij - m_new),
//       l = exp(m - m_new) l + rowsum(P_ij),   O_i = exp(m - m_new) O_i + dropout(P_ij) V_j
//                                 and at the end O_i /= l, LSE_i = m + log(l) (the online softmax).
//   attention_delta_kernel        D = rowsum(dO * O), a thread per row.
//   attention_backward_dkdv_kernel  a block per (b, key tile K_j, column chunk of dK and dV). Over
//                                 query tiles Q_i (causal: those with a query i >= the tile's first key),
//                                 P_ij recomputed from LSE, all as transposes (warps own keys):
//       P_ij = exp(S_ij - LSE_i),   dP_ij = dO_i V_j^T,   dS_ij = scale * P_ij * (Z * dP_ij - D_i),
//       dV_j += (Z * P_ij)^T dO_i,   dK_j += dS_ij^T Q_i              (Z: the dropout factors)
//   attention_backward_dq_kernel  a block per (b, query tile Q_i, column chunk of dQ), over key tiles:
//       the same P_ij and dS_ij,   dQ_i += dS_ij K_j
// Two backward kernels instead of one with atomic dQ updates: every gradient element is summed by
// one thread in a fixed order, so the results do not depend on the schedule.
#include "cuda/attention.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "common/dropout_hash.h"
#include "cuda/allocator.h"
#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
constexpr int Br = 32, Bc = 32;             // query rows and key rows of a tile (the paper's names)
constexpr int kTile = 32;                   // edge of the shared tiles the products work on
static_assert(Br == kTile && Bc == kTile, "the tile products work on square kTile x kTile tiles");
constexpr int kPad = kTile + 1;             // shared tile row length: lane x reads row x conflict-free
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;    // 128
constexpr int kRows = kTile / kWarps;       // 8 tile rows per warp

// Column groups of 32 a block accumulates in registers, at most.
template <typename T>
constexpr int kMaxGroups = sizeof(T) == 4 ? 4 : 2;

// Blocks per multiprocessor the register budget must allow (__launch_bounds__): 4 (128 registers)
// for float kernels with at most 16 accumulators per thread, else 2 (up to 255). Without a bound
// ptxas aims at occupancy steps (80, 128, 168 registers) and may spill a few bytes there; with
// these, every instantiation is spill-free on sm_80 and sm_90 (ptxas of CUDA 13), with room: the
// float G = 1 kernels fit in about 64 registers.
template <typename T, int accumulators>
constexpr int kMinBlocks = sizeof(T) == 4 && accumulators <= 16 ? 4 : 2;

template <typename T>
__device__ inline T infinity() { return T(INFINITY); }

// Loops that must not be unrolled fully: the 32 steps over a shared tile (unroll 4), and the
// per-element softmax steps over a warp's 8 tile rows (not at all: unrolled, nvcc interleaves 8
// masks, dropout hashes and exps and runs out of registers).
#if defined(__CUDACC__)
#define KG_UNROLL_4 _Pragma("unroll 4")
#define KG_NO_UNROLL _Pragma("unroll 1")
#else
#define KG_UNROLL_4
#define KG_NO_UNROLL
#endif

// ----------------------------------------------------------------------------------------------
// One call's arguments (passed by value to every kernel)

template <typename T>
struct Problem {
    MatrixBatch<T> Q, K, V, dO;  // dO: backward only
    AttentionMask<T> mask;
    Shape batch;
    bool dropout;                // p > 0
    uint64_t seed, threshold;    // common/dropout_hash.h
    T kept;                      // 1 / (1 - p)
    T scale;
    int64_t L, S, E, Ev;
};

// One matrix of a batch: element (r, c) at p[r * rs + c * cs] for r < rows, c < cols.
template <typename T>
struct Matrix {
    const T* p;
    int64_t rs, cs, rows, cols;
};

// The element offset of matrix b of a batch with strides `stride` (C order over the batch shape).
__device__ inline int64_t batch_offset(const Shape& batch, const int64_t (&stride)[kMaxDims], int64_t b) {
    int64_t offset = 0;
    KG_UNROLL
    for (int d = kMaxDims - 1; d >= 0; --d) {
        if (d < batch.ndim) {
            offset += b % batch.size[d] * stride[d];
            b /= batch.size[d];
        }
    }
    return offset;
}

template <typename T>
__device__ inline Matrix<T> matrix(const MatrixBatch<T>& m, const Shape& batch, int64_t b, int64_t rows,
                                   int64_t cols) {
    return {m.ptr ? m.ptr + batch_offset(batch, m.batch_stride, b) : nullptr, m.rs, m.cs, rows, cols};
}

// What a block of batch index b reads.
template <typename T>
struct Head {
    Matrix<T> Q, K, V, dO;        // (L, E), (S, E), (S, Ev), (L, Ev)
    Matrix<uint8_t> keep;         // (L, S), p null: no bool mask
    Matrix<T> add;                // (L, S), p null: no float mask

    __device__ Head(const Problem<T>& pr, int64_t b)
        : Q(matrix(pr.Q, pr.batch, b, pr.L, pr.E)),
          K(matrix(pr.K, pr.batch, b, pr.S, pr.E)),
          V(matrix(pr.V, pr.batch, b, pr.S, pr.Ev)),
          dO(matrix(pr.dO, pr.batch, b, pr.L, pr.Ev)),
          keep(matrix(pr.mask.keep, pr.batch, b, pr.L, pr.S)),
          add(matrix(pr.mask.add, pr.batch, b, pr.L, pr.S)) {}
};

// ----------------------------------------------------------------------------------------------
// Scores and dropout

// S[i, j] = scale * s + mask for s = q_i . k_j; removed scores, and (i, j) outside L x S (the
// padding of the last tiles), are -inf. The order of the CPU kernel: scale, add, keep, causal.
template <typename T>
__device__ inline T score(const Problem<T>& pr, const Head<T>& h, T s, int64_t i, int64_t j) {
    if (i >= pr.L || j >= pr.S) return -infinity<T>();
    T x = pr.scale * s;
    if (h.add.p) x += h.add.p[i * h.add.rs + j * h.add.cs];
    if (h.keep.p && !h.keep.p[i * h.keep.rs + j * h.keep.cs]) x = -infinity<T>();
    if (pr.mask.causal && j > i) x = -infinity<T>();
    return x;
}

// Z[b, i, j]: 1 without dropout; else 1 / (1 - p) where the hash keeps probability (b, i, j), 0 where not.
template <typename T>
__device__ inline T dropout_factor(const Problem<T>& pr, int64_t b, int64_t i, int64_t j) {
    if (!pr.dropout) return T(1);
    return dropout::keeps(pr.seed, pr.threshold, b, i, j, pr.L, pr.S) ? pr.kept : T(0);
}

// max that propagates NaN from either side (a NaN score makes its row NaN, as on the CPU)
template <typename T>
__device__ inline T nan_max(T a, T b) { return (a != a || a > b) ? a : b; }

// ----------------------------------------------------------------------------------------------
// Tile products, shared by the three kernels. A warp owns tile rows row0 .. row0 + kRows - 1.

__device__ inline int lane_id() { return threadIdx.x % kWarp; }
__device__ inline int warp_row0() { return threadIdx.x / kWarp * kRows; }

// tile[r][c] = M[r0 + r, c0 + c] for r, c < 32, zero outside M (coalesced when M.cs == 1). A
// thread keeps one column and steps its pointer down the rows (no 64-bit index products per element:
// they cost most of the kernels' registers).
template <typename T>
__device__ inline void load_tile(T (*tile)[kPad], const Matrix<T>& M, int64_t r0, int64_t c0) {
    constexpr int kStep = kThreads / kTile;  // rows per pass of the block
    const int c = threadIdx.x % kTile, r_first = threadIdx.x / kTile;
    const bool column_in = c0 + c < M.cols;
    const int rows = M.rows - r0 < kTile ? static_cast<int>(M.rows - r0) : kTile;  // rows of M in the tile
    const T* p = M.p + (r0 + r_first) * M.rs + (c0 + c) * M.cs;
    for (int r = r_first; r < kTile; r += kStep, p += kStep * M.rs) tile[r][c] = column_in && r < rows ? *p : T(0);
}

// X_s[row0 + k][lane] = sum_{e < A.cols} A[a0 + row0 + k, e] * B[b0 + lane, e]: the warp's rows
// of A times the 32 rows of B (one per lane), through shared tiles of 32 columns, into the warp's
// rows of X_s (S = Q K^T, dP = dO V^T, and their transposes). A_s, B_s: (32, kPad) shared scratch.
template <typename T>
__device__ inline void dot_rows(T (*X_s)[kPad], const Matrix<T>& A, int64_t a0, const Matrix<T>& B, int64_t b0,
                                T (*A_s)[kPad], T (*B_s)[kPad]) {
    const int lane = lane_id(), row0 = warp_row0();
    T acc[kRows];
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) acc[k] = T(0);
    for (int64_t e0 = 0; e0 < A.cols; e0 += kTile) {
        __syncthreads();  // the previous readers of A_s, B_s are done
        load_tile(A_s, A, a0, e0);
        load_tile(B_s, B, b0, e0);
        __syncthreads();
        KG_UNROLL_4
        for (int e = 0; e < kTile; ++e) {
            const T b = B_s[lane][e];
            KG_UNROLL
            for (int k = 0; k < kRows; ++k) acc[k] += A_s[row0 + k][e] * b;
        }
    }
    __syncwarp(kFullMask);  // the warp's earlier readers of its rows of X_s are done
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) X_s[row0 + k][lane] = acc[k];
}

// acc[k][t] += sum_{r < 32} W_s[row0 + k][r] * C[r0 + r, c0 + 32 t + lane] for t < G: the warp's
// rows of a weight tile (P or dS, written by the warp itself) times 32 rows of C (V, dO, Q or K),
// G groups of 32 columns from c0. C_s: (32, kPad) shared scratch.
template <typename T, int G>
__device__ inline void accumulate(T (&acc)[kRows][G], const T (*W_s)[kPad], const Matrix<T>& C, int64_t r0,
                                  int64_t c0, T (*C_s)[kPad]) {
    const int lane = lane_id(), row0 = warp_row0();
    KG_UNROLL
    for (int t = 0; t < G; ++t) {
        if (c0 + t * kTile < C.cols) {  // the same in the whole block
            __syncthreads();  // C_s's previous readers are done; W_s is written
            load_tile(C_s, C, r0, c0 + t * kTile);
            __syncthreads();
            KG_UNROLL_4
            for (int r = 0; r < kTile; ++r) {
                const T c = C_s[r][lane];
                KG_UNROLL
                for (int k = 0; k < kRows; ++k) acc[k][t] += W_s[row0 + k][r] * c;
            }
        }
    }
}

// out[r, c0 + 32 t + lane] = acc[k][t] for the warp's rows r = r0 + row0 + k < rows and
// columns < cols.  out: (rows, cols) C-contiguous
template <typename T, int G>
__device__ inline void store_rows(T* out, const T (&acc)[kRows][G], int64_t r0, int64_t rows, int64_t c0,
                                  int64_t cols) {
    const int lane = lane_id(), row0 = warp_row0();
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) {
        const int64_t r = r0 + row0 + k;
        KG_UNROLL
        for (int t = 0; t < G; ++t) {
            const int64_t c = c0 + t * kTile + lane;
            if (r < rows && c < cols) out[r * cols + c] = acc[k][t];
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Forward

// O (BH, L, Ev), LSE (BH, L). Grid: (BH * tiles, 1, column chunks of G * 32 columns of O).
// The row statistics m, l of tile row row0 + k live in lane k of the warp, which takes the row max
// and sum over the row in shared memory (3 __syncwarp per key tile instead of 10 shuffles per row).
template <typename T, int G>
__global__ void __launch_bounds__(kThreads, (kMinBlocks<T, kRows * G>))
    attention_forward_kernel(T* O, T* LSE, const Problem<T> pr, int64_t tiles) {
    __shared__ T A_s[kTile][kPad], B_s[kTile][kPad];
    __shared__ T S_s[kTile][kPad];            // S_ij, then P_ij
    __shared__ T P_s[kTile][kPad];            // dropout(P_ij)
    __shared__ T m_s[kTile], alpha_s[kTile];  // per row: m_new and exp(m - m_new); at the end 1 / l
    const int64_t b = blockIdx.x / tiles, i0 = blockIdx.x % tiles * Br, c0 = int64_t(blockIdx.z) * G * kTile;
    const int lane = lane_id(), row0 = warp_row0();
    const int own = row0 + lane;  // lanes < kRows: the tile row whose m and l they keep
    const Head<T> h(pr, b);

    T m = -infinity<T>(), l = T(0);  // running max and sum of row `own`
    T O_i[kRows][G];                 // the warp's rows of O_i, columns c0 + 32 t + lane
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) {
        KG_UNROLL
        for (int t = 0; t < G; ++t) O_i[k][t] = T(0);
    }

    // causal: keys after the tile's last query are removed for every row
    const int64_t S_end = pr.mask.causal && i0 + Br < pr.S ? i0 + Br : pr.S;
    for (int64_t j0 = 0; j0 < S_end; j0 += Bc) {
        // S_ij = scale * Q_i K_j^T + mask
        dot_rows(S_s, h.Q, i0, h.K, j0, A_s, B_s);
        KG_NO_UNROLL
        for (int k = 0; k < kRows; ++k) {
            const int r = row0 + k;
            S_s[r][lane] = score(pr, h, S_s[r][lane], i0 + r, j0 + lane);
        }
        __syncwarp(kFullMask);
        // m_new = max(m, rowmax(S_ij)) (NaN if any is NaN),  alpha = exp(m - m_new)
        if (lane < kRows) {
            T m_new = m;
            for (int c = 0; c < kTile; ++c) m_new = nan_max(m_new, S_s[own][c]);
            // every key so far removed (m_new = -inf): P = 0, and l, O_i stay 0
            alpha_s[own] = m_new == -infinity<T>() ? T(1) : exp(m - m_new);
            m_s[own] = m = m_new;
        }
        __syncwarp(kFullMask);
        // P_ij = exp(S_ij - m_new),  O_i = alpha O_i
        KG_NO_UNROLL
        for (int k = 0; k < kRows; ++k) {
            const int r = row0 + k;
            const T m_new = m_s[r], p = m_new == -infinity<T>() ? T(0) : exp(S_s[r][lane] - m_new);
            S_s[r][lane] = p;
            P_s[r][lane] = p * dropout_factor(pr, b, i0 + r, j0 + lane);
        }
        KG_UNROLL
        for (int k = 0; k < kRows; ++k) {
            KG_UNROLL
            for (int t = 0; t < G; ++t) O_i[k][t] *= alpha_s[row0 + k];
        }
        __syncwarp(kFullMask);
        // l = alpha l + rowsum(P_ij)
        if (lane < kRows) {
            T rowsum = T(0);
            for (int c = 0; c < kTile; ++c) rowsum += S_s[own][c];
            l = alpha_s[own] * l + rowsum;
        }
        // O_i += dropout(P_ij) V_j
        accumulate<T, G>(O_i, P_s, h.V, j0, c0, A_s);
    }

    // O_i /= l,  LSE_i = m + log(l);  a fully masked row (l = 0) keeps O = 0 and gets LSE = +inf
    if (lane < kRows) {
        alpha_s[own] = l > T(0) ? T(1) / l : T(1);
        const int64_t i = i0 + own;
        if (blockIdx.z == 0 && i < pr.L) LSE[b * pr.L + i] = l > T(0) ? m + log(l) : infinity<T>();
    }
    __syncwarp(kFullMask);
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) {
        KG_UNROLL
        for (int t = 0; t < G; ++t) O_i[k][t] *= alpha_s[row0 + k];
    }
    store_rows<T, G>(O + b * pr.L * pr.Ev, O_i, i0, pr.L, c0, pr.Ev);
}

// ----------------------------------------------------------------------------------------------
// Backward

// D[row] = sum_c dO[row, c] * O[row, c] for the rows = BH * L rows, a thread per row (a cheap
// O(L Ev) pass beside the O(L S E) kernels; each row's cache lines serve 32 of its steps).
//   D: (BH, L)
template <typename T>
__global__ void __launch_bounds__(kThreads)
    attention_delta_kernel(T* D, const T* O, const Problem<T> pr, int64_t rows) {
    KG_GRID_STRIDE_LOOP(row, rows) {
        const int64_t b = row / pr.L, i = row % pr.L;
        const Matrix<T> dO = matrix(pr.dO, pr.batch, b, pr.L, pr.Ev);
        const T* dO_row = dO.p + i * dO.rs;  // (Ev,) with stride dO.cs
        const T* O_row = O + row * pr.Ev;    // (Ev,)
        T d = T(0);
        for (int64_t c = 0; c < pr.Ev; ++c) d += dO_row[c * dO.cs] * O_row[c];
        D[row] = d;
    }
}

// The softmax gradient at score (i, j) of a tile pair, from s = q_i . k_j and dp = dO_i . v_j:
//   P = exp(S - LSE_i) (0 where S = -inf or LSE_i = +inf),  dS = scale * P * (Z * dP - D_i),
// and Z * P, the probability dropout let through.
template <typename T>
struct SoftmaxGrad {
    T dS, P_kept;
};

template <typename T>
__device__ inline SoftmaxGrad<T> softmax_grad(const Problem<T>& pr, const Head<T>& h, int64_t b, int64_t i,
                                              int64_t j, T s, T dp, T lse_i, T D_i) {
    const T p = exp(score(pr, h, s, i, j) - lse_i);
    const T z = dropout_factor(pr, b, i, j);
    return {pr.scale * p * (z * dp - D_i), z * p};
}

// dK (BH, S, E), dV (BH, S, Ev). Grid: (BH * key tiles, 1, column chunks of G * 32 columns of dK
// and of dV). Warps own keys: the tiles here are transposes, P_s = P_ij^T, dS_s = dS_ij^T.
template <typename T, int G>
__global__ void __launch_bounds__(kThreads, (kMinBlocks<T, 2 * kRows * G>))
    attention_backward_dkdv_kernel(T* dK, T* dV, const T* LSE, const T* D, const Problem<T> pr, int64_t tiles) {
    __shared__ T A_s[kTile][kPad], B_s[kTile][kPad], P_s[kTile][kPad], dS_s[kTile][kPad];
    const int64_t b = blockIdx.x / tiles, j0 = blockIdx.x % tiles * Bc, c0 = int64_t(blockIdx.z) * G * kTile;
    const int lane = lane_id(), row0 = warp_row0();
    const Head<T> h(pr, b);

    T dK_j[kRows][G], dV_j[kRows][G];
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) {
        KG_UNROLL
        for (int t = 0; t < G; ++t) dK_j[k][t] = dV_j[k][t] = T(0);
    }

    // causal: query tiles wholly before key j0 see none of this tile
    for (int64_t i0 = pr.mask.causal ? j0 / Br * Br : 0; i0 < pr.L; i0 += Br) {
        dot_rows(P_s, h.K, j0, h.Q, i0, A_s, B_s);    // S_ij^T = K_j Q_i^T (P_ij^T below)
        dot_rows(dS_s, h.V, j0, h.dO, i0, A_s, B_s);  // dP_ij^T = V_j dO_i^T (dS_ij^T below)
        const int64_t i = i0 + lane;                    // this lane's query
        const T lse_i = i < pr.L ? LSE[b * pr.L + i] : infinity<T>();
        const T D_i = i < pr.L ? D[b * pr.L + i] : T(0);
        KG_NO_UNROLL
        for (int k = 0; k < kRows; ++k) {
            const int r = row0 + k;
            const SoftmaxGrad<T> g = softmax_grad(pr, h, b, i, j0 + r, P_s[r][lane], dS_s[r][lane], lse_i, D_i);
            dS_s[r][lane] = g.dS;
            P_s[r][lane] = g.P_kept;
        }
        // dV_j += (Z * P_ij)^T dO_i,  dK_j += dS_ij^T Q_i
        accumulate<T, G>(dV_j, P_s, h.dO, i0, c0, A_s);
        accumulate<T, G>(dK_j, dS_s, h.Q, i0, c0, A_s);
    }
    store_rows<T, G>(dK + b * pr.S * pr.E, dK_j, j0, pr.S, c0, pr.E);
    store_rows<T, G>(dV + b * pr.S * pr.Ev, dV_j, j0, pr.S, c0, pr.Ev);
}

// dQ (BH, L, E). Grid: (BH * query tiles, 1, column chunks of G * 32 columns of dQ).
template <typename T, int G>
__global__ void __launch_bounds__(kThreads, (kMinBlocks<T, kRows * G>))
    attention_backward_dq_kernel(T* dQ, const T* LSE, const T* D, const Problem<T> pr, int64_t tiles) {
    __shared__ T A_s[kTile][kPad], B_s[kTile][kPad], S_s[kTile][kPad], dS_s[kTile][kPad];
    __shared__ T lse_s[Br], D_s[Br];  // LSE_i, D_i of the tile's rows
    const int64_t b = blockIdx.x / tiles, i0 = blockIdx.x % tiles * Br, c0 = int64_t(blockIdx.z) * G * kTile;
    const int lane = lane_id(), row0 = warp_row0();
    const Head<T> h(pr, b);

    if (threadIdx.x < Br) {
        const int64_t i = i0 + threadIdx.x;
        lse_s[threadIdx.x] = i < pr.L ? LSE[b * pr.L + i] : infinity<T>();
        D_s[threadIdx.x] = i < pr.L ? D[b * pr.L + i] : T(0);
    }
    __syncthreads();
    T dQ_i[kRows][G];
    KG_UNROLL
    for (int k = 0; k < kRows; ++k) {
        KG_UNROLL
        for (int t = 0; t < G; ++t) dQ_i[k][t] = T(0);
    }

    const int64_t S_end = pr.mask.causal && i0 + Br < pr.S ? i0 + Br : pr.S;
    for (int64_t j0 = 0; j0 < S_end; j0 += Bc) {
        dot_rows(S_s, h.Q, i0, h.K, j0, A_s, B_s);     // S_ij = Q_i K_j^T
        dot_rows(dS_s, h.dO, i0, h.V, j0, A_s, B_s);   // dP_ij = dO_i V_j^T (dS_ij below)
        KG_NO_UNROLL
        for (int k = 0; k < kRows; ++k) {
            const int r = row0 + k;
            dS_s[r][lane] = softmax_grad(pr, h, b, i0 + r, j0 + lane, S_s[r][lane], dS_s[r][lane], lse_s[r], D_s[r]).dS;
        }
        // dQ_i += dS_ij K_j
        accumulate<T, G>(dQ_i, dS_s, h.K, j0, c0, A_s);
    }
    store_rows<T, G>(dQ + b * pr.L * pr.E, dQ_i, i0, pr.L, c0, pr.E);
}

// ----------------------------------------------------------------------------------------------
// Launch helpers

int64_t tiles_of(int64_t n, int tile) { return (n + tile - 1) / tile; }

// The fewest column groups of 32 that cover n columns, at most kMaxGroups<T>.
template <typename T>
int groups_for(int64_t n) {
    return n <= kTile ? 1 : (n <= 2 * kTile || kMaxGroups<T> == 2) ? 2 : 4;
}

// body(std::integral_constant<int, G>{}): the kernels instantiated for G = groups_for<T>(...)
template <typename T, typename Body>
void with_groups(int G, Body&& body) {
    if (G == 1)
        body(std::integral_constant<int, 1>{});
    else if (G == 2)
        body(std::integral_constant<int, 2>{});
    else if constexpr (kMaxGroups<T> >= 4)
        body(std::integral_constant<int, 4>{});
}

// The grid of a kernel with blocks per (batch index, tile) along x and chunks of G * 32 of the
// n output columns along z.
dim3 grid_of(int64_t BH, int64_t tiles, int64_t n, int G) {
    const int64_t blocks = BH * tiles, chunks = n > 0 ? (n + G * kTile - 1) / (G * kTile) : 1;
    if (blocks > 2147483647 || chunks > 65535)
        throw std::invalid_argument("attention: too many tiles or head dims for one CUDA grid");
    return dim3(static_cast<unsigned>(blocks), 1, static_cast<unsigned>(chunks));
}

int64_t numel(const Shape& batch) {
    int64_t n = 1;
    for (int d = 0; d < batch.ndim; ++d) n *= batch.size[d];
    return n;
}

template <typename T>
Problem<T> problem(const MatrixBatch<T>& Q, const MatrixBatch<T>& K, const MatrixBatch<T>& V,
                   const MatrixBatch<T>& dO, const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                   const Shape& batch, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    return Problem<T>{Q, K, V, dO, mask, batch, dropout.p > 0, dropout.seed, dropout::keep_threshold(dropout.p),
                      dropout::kept_scale<T>(dropout.p), scale, L, S, E, Ev};
}

// Device scratch for one call (the caching allocator makes this cheap).
class DeviceBuffer {
public:
    explicit DeviceBuffer(size_t nbytes) : ptr_(device_alloc(nbytes)) {}
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { device_free(ptr_); }
    template <typename T>
    T* get() const { return static_cast<T*>(ptr_); }

private:
    void* ptr_;
};

// O, LSE of attention_forward for the batch of BH matrices.
template <typename T>
void forward(T* O, T* LSE, const Problem<T>& pr, int64_t BH) {
    const int64_t tiles = tiles_of(pr.L, Br);
    if (BH * tiles == 0) return;
    const int G = groups_for<T>(pr.Ev);
    with_groups<T>(G, [&](auto g) {
        launch(attention_forward_kernel<T, decltype(g)::value>, grid_of(BH, tiles, pr.Ev, G), kThreads, 0, nullptr,
               O, LSE, pr, tiles);
    });
}

// dQ, dK, dV of attention_backward for the batch of BH matrices.
template <typename T>
void backward(T* dQ, T* dK, T* dV, const T* O, const T* LSE, const Problem<T>& pr, int64_t BH) {
    const int64_t L = pr.L, E = pr.E, Ev = pr.Ev, query_tiles = tiles_of(L, Br), key_tiles = tiles_of(pr.S, Bc);

    // D = rowsum(dO * O)
    const DeviceBuffer D_buffer(static_cast<size_t>(BH * L) * sizeof(T));
    T* D = D_buffer.get<T>();  // (BH, L)
    if (BH * L > 0)
        launch(attention_delta_kernel<T>, grid_for(BH * L, kThreads), kThreads, 0, nullptr, D, O, pr,
               BH * L);

    // dK, dV: their column chunks cover both E and Ev
    if (BH * key_tiles > 0) {
        const int64_t n = E > Ev ? E : Ev;
        const int G = groups_for<T>(n);
        with_groups<T>(G, [&](auto g) {
            launch(attention_backward_dkdv_kernel<T, decltype(g)::value>, grid_of(BH, key_tiles, n, G), kThreads,
                   0, nullptr, dK, dV, LSE, D, pr, key_tiles);
        });
    }
    // dQ
    if (BH * query_tiles > 0 && E > 0) {
        const int G = groups_for<T>(E);
        with_groups<T>(G, [&](auto g) {
            launch(attention_backward_dq_kernel<T, decltype(g)::value>, grid_of(BH, query_tiles, E, G), kThreads, 0,
                   nullptr, dQ, LSE, D, pr, query_tiles);
        });
    }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Entry points (declared in attention.h)

template <typename T>
void attention_forward(T* O, T* LSE, const MatrixBatch<T>& Q, const MatrixBatch<T>& K,
                       const MatrixBatch<T>& V, const AttentionMask<T>& mask, AttentionDropout dropout,
                       T scale, const Shape& batch, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    forward(O, LSE, problem(Q, K, V, MatrixBatch<T>{}, mask, dropout, scale, batch, L, S, E, Ev), numel(batch));
}

template <typename T>
void attention_backward(T* dQ, T* dK, T* dV, const MatrixBatch<T>& dO, const T* O, const T* LSE,
                        const MatrixBatch<T>& Q, const MatrixBatch<T>& K, const MatrixBatch<T>& V,
                        const AttentionMask<T>& mask, AttentionDropout dropout, T scale,
                        const Shape& batch, int64_t L, int64_t S, int64_t E, int64_t Ev) {
    backward(dQ, dK, dV, O, LSE, problem(Q, K, V, dO, mask, dropout, scale, batch, L, S, E, Ev), numel(batch));
}

#define KG_ATTENTION_INSTANTIATE(T)                                                                          \
    template void attention_forward<T>(T*, T*, const MatrixBatch<T>&, const MatrixBatch<T>&,                 \
                                       const MatrixBatch<T>&, const AttentionMask<T>&, AttentionDropout, T,  \
                                       const Shape&, int64_t, int64_t, int64_t, int64_t);                    \
    template void attention_backward<T>(T*, T*, T*, const MatrixBatch<T>&, const T*, const T*,               \
                                        const MatrixBatch<T>&, const MatrixBatch<T>&, const MatrixBatch<T>&, \
                                        const AttentionMask<T>&, AttentionDropout, T, const Shape&, int64_t, \
                                        int64_t, int64_t, int64_t);
KG_ATTENTION_INSTANTIATE(float)
KG_ATTENTION_INSTANTIATE(double)
#undef KG_ATTENTION_INSTANTIATE

}  // namespace cuda
}  // namespace kg
