// gemm.cpp: the GEMM driver (BLIS structure) and the portable micro-kernel.
//
//   C (M x N) = A (M x K) @ B (K x N) + beta * C,   float32 and float64, general strides
//
// Versions held here:
//   - ukernel_generic: plain C++ loops over the packed panels (compiled for baseline x86-64);
//   - the driver: packing, the five loops around the micro-kernel, threading, edge tiles;
//   - packed entry points (gemm_pack_a/b, gemm_packed): the packing and the macro-kernel, for a
//     caller that packs an operand once and multiplies it many times (attention).
// The AVX2 + FMA micro-kernel lives in gemm_avx2.cpp and is picked at run time.
//
// Loop nest (BLIS):
//   for jc in N step NC:                         B block  Bp = B[pc:pc+KC, jc:jc+NC]  (L3, shared)
//     for pc in K step KC:                       pack Bp into NR-column panels (all threads)
//       for ic in M step MC:                     A block  Ap = A[ic:ic+MC, pc:pc+KC]  (L2, per thread)
//         pack Ap into MR-row panels
//         for jr in NC step NR:                  one KC x NR micro-panel of Bp (L1)
//           for ir in MC step MR:
//             C[ic+ir : +MR, jc+jr : +NR] (+)= Ap[ir] @ Bp[jr]      (micro-kernel)
// The first pc block applies the caller's beta, later ones accumulate (beta = 1).
// Packing goes through GemmOperand: a strided matrix, or a caller's hook (conv2d's implicit im2col).
#include "cpu/gemm.h"

#include <algorithm>

#include "cpu/aligned.h"
#include "cpu/isa.h"
#include "cpu/parallel.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Micro-kernel choice

template <typename T>
using Ukernel = void (*)(int64_t kc, const T* Ap, const T* Bp, T* C, ptrdiff_t rsc, T beta);

#ifdef KG_GEMM_AVX2
IsaChoice g_isa{true};
#else
IsaChoice g_isa{false};
#endif

// C (MR x NR, row stride rsc) = Ap (MR x kc) @ Bp (kc x NR) + beta * C
template <typename T>
void ukernel_generic(int64_t kc, const T* Ap, const T* Bp, T* C, ptrdiff_t rsc, T beta) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    T c[MR][NR] = {};
    for (int64_t p = 0; p < kc; ++p, Ap += MR, Bp += NR)
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) c[i][j] += Ap[i] * Bp[j];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j)
            C[i * rsc + j] = beta == T(0) ? c[i][j] : c[i][j] + beta * C[i * rsc + j];
}

template <typename T>
Ukernel<T> current_ukernel() {
#ifdef KG_GEMM_AVX2
    if (g_isa.avx2()) return static_cast<Ukernel<T>>(&gemm_ukernel_avx2);
#endif
    return &ukernel_generic<T>;
}

// ----------------------------------------------------------------------------------------------
// Packing

// Pack n rows (along a panel) x kc columns (along K) of src into R-wide panels, zero-padding the
// last panel:  dst[q * R * kc + p * R + r] = src[(q * R + r) * s_r + p * s_k]
// A block: R = MR, s_r = rsa, s_k = csa.   B block: R = NR, s_r = csb, s_k = rsb.
template <int R, typename T>
void pack_panels(T* dst, const T* src, ptrdiff_t s_r, ptrdiff_t s_k, int64_t n, int64_t kc) {
    for (int64_t r0 = 0; r0 < n; r0 += R, dst += R * kc, src += R * s_r) {
        const int64_t rows = std::min<int64_t>(R, n - r0);
        if (rows == R) {
            for (int64_t p = 0; p < kc; ++p)
                for (int r = 0; r < R; ++r) dst[p * R + r] = src[r * s_r + p * s_k];
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                for (int64_t r = 0; r < rows; ++r) dst[p * R + r] = src[r * s_r + p * s_k];
                for (int64_t r = rows; r < R; ++r) dst[p * R + r] = T(0);
            }
        }
    }
}

// Rows [i0, i0 + n) x columns [p0, p0 + kc) of op_b (see GemmOperand) into R-row panels.
template <int R, typename T>
void pack_operand(const GemmOperand<T>& op, T* dst, int64_t b, int64_t i0, int64_t n, int64_t p0,
                  int64_t kc) {
    if (n <= 0) return;
    if (op.pack)
        op.pack(op.ctx, dst, b, i0, n, p0, kc);
    else
        pack_panels<R>(dst, op.ptrs[b] + i0 * op.rs + p0 * op.ks, op.rs, op.ks, n, kc);
}

// ----------------------------------------------------------------------------------------------
// Macro-kernel: the jr and ir loops over one packed A block and a range of B panels

// C[0:m, 0:n] = tile + beta * C, for tiles the micro-kernel cannot store directly
// (m < MR, n < NR, or a non-unit column stride): it writes a full MR x NR local tile first.
template <typename T>
void edge_tile(Ukernel<T> uk, int64_t kc, const T* Ap, const T* Bp, T* C, ptrdiff_t rsc,
               ptrdiff_t csc, int64_t m, int64_t n, T beta) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    alignas(kAlign) T tile[MR * NR];
    uk(kc, Ap, Bp, tile, NR, T(0));
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            T& c = C[i * rsc + j * csc];
            c = beta == T(0) ? tile[i * NR + j] : tile[i * NR + j] + beta * c;
        }
}

// C[0:mc, jr0*NR : jr1*NR] = Ap (mc x kc) @ Bp[:, panels jr0..jr1) + beta * C   (nc: B block width)
// C(i, j) is at C[i * rsc + (j / NR) * psc + (j % NR) * csc]: psc = NR * csc for a strided C.
template <typename T>
void macro_kernel(Ukernel<T> uk, T* C, ptrdiff_t rsc, ptrdiff_t csc, ptrdiff_t psc, const T* Ap,
                  const T* Bp, int64_t mc, int64_t nc, int64_t kc, int64_t jr0, int64_t jr1, T beta) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    for (int64_t jr = jr0; jr < jr1; ++jr) {
        const int64_t n = std::min<int64_t>(NR, nc - jr * NR);
        const T* Bp_j = Bp + jr * NR * kc;  // (kc x NR)
        for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min<int64_t>(MR, mc - ir);
            const T* Ap_i = Ap + ir * kc;  // (MR x kc)
            T* C_ij = C + ir * rsc + jr * psc;
            if (m == MR && n == NR && csc == 1)
                uk(kc, Ap_i, Bp_j, C_ij, rsc, beta);
            else
                edge_tile(uk, kc, Ap_i, Bp_j, C_ij, rsc, csc, m, n, beta);
        }
    }
}

// ----------------------------------------------------------------------------------------------
// One GEMM on a team of threads

// n items split into `parts` near-equal parts: part idx is [part_begin(idx), part_begin(idx + 1))
inline int64_t part_begin(int64_t n, int64_t parts, int64_t idx) { return n * idx / parts; }

// Packing one element of A takes about as long as this many multiply-adds in the micro-kernel
// (which retires 2 x 8 or more per cycle): a rough weight, used only to choose between
// splitting M and splitting N across threads.
constexpr int64_t kPackCostInFmas = 64;

// Threads form a tm x tn grid: tm splits the rows of C (each thread packs its own A blocks),
// tn splits the B panels of each NC block. Pick the grid whose slowest thread has the least
// work, counting its micro-tiles and its A packing.
template <typename T>
int rows_of_thread_grid(int nt, int64_t M, int64_t N) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR, NC = GemmBlocking<T>::NC;
    const int64_t m_panels = (M + MR - 1) / MR;
    const int64_t n_panels = (std::min<int64_t>(N, NC) + NR - 1) / NR;
    int best_tm = nt;
    int64_t best_cost = -1;
    for (int tm = nt; tm >= 1; --tm) {
        if (nt % tm != 0) continue;
        const int tn = nt / tm;
        const int64_t rows = (m_panels + tm - 1) / tm * MR;
        const int64_t cols = (n_panels + tn - 1) / tn * NR;
        const int64_t cost = rows * (cols + kPackCostInFmas);
        if (best_cost < 0 || cost < best_cost) best_cost = cost, best_tm = tm;
    }
    return best_tm;
}

// Thread tid of a team of nt computes its share of C[b] = A[b] @ B[b] + beta * C[b] for every b
// in [b0, b1) (K > 0). Bp: the team's two KC x NC buffers (Bp_size apart), used in turn, so that
// one barrier per B block suffices: a buffer is repacked only two blocks later, after every thread
// has passed the barrier of the block in between. Ap: this thread's MC x KC buffer.
// Every thread of the team runs the same b/jc/pc loops, so the barriers match.
template <typename T>
void gemm_team(Ukernel<T> uk, T* const* C, ptrdiff_t rsc, ptrdiff_t csc, const GemmOperand<T>& A,
               const GemmOperand<T>& B, int64_t b0, int64_t b1, int64_t M, int64_t N, int64_t K,
               T beta, T* Bp, int64_t Bp_size, T* Ap, int tid, int nt) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    constexpr int MC = GemmBlocking<T>::MC, KC = GemmBlocking<T>::KC, NC = GemmBlocking<T>::NC;

    const int tm = rows_of_thread_grid<T>(nt, M, N), tn = nt / tm;
    const int tid_m = tid / tn, tid_n = tid % tn;
    const int64_t m_panels = (M + MR - 1) / MR;
    const int64_t m0 = std::min(M, part_begin(m_panels, tm, tid_m) * MR);
    const int64_t m1 = std::min(M, part_begin(m_panels, tm, tid_m + 1) * MR);

    int64_t block = 0;  // B blocks packed so far: picks the buffer
    for (int64_t b = b0; b < b1; ++b) {
        for (int64_t jc = 0; jc < N; jc += NC) {
            const int64_t nc = std::min<int64_t>(NC, N - jc);
            const int64_t n_panels = (nc + NR - 1) / NR;
            const int64_t jr0 = part_begin(n_panels, tn, tid_n), jr1 = part_begin(n_panels, tn, tid_n + 1);
            for (int64_t pc = 0; pc < K; pc += KC, ++block) {
                const int64_t kc = std::min<int64_t>(KC, K - pc);
                const T beta_pc = pc == 0 ? beta : T(1);
                T* Bp_block = Bp + (block % 2) * Bp_size;

                // Bp_block = B[b][pc:pc+kc, jc:jc+nc], its NR panels shared out over the whole team
                const int64_t p0 = part_begin(n_panels, nt, tid), p1 = part_begin(n_panels, nt, tid + 1);
                pack_operand<NR>(B, Bp_block + p0 * NR * kc, b, jc + p0 * NR,
                                 std::min(nc, p1 * NR) - p0 * NR, pc, kc);
                if (nt > 1) {
#pragma omp barrier
                }

                for (int64_t ic = m0; ic < m1; ic += MC) {
                    const int64_t mc = std::min<int64_t>(MC, m1 - ic);
                    // Ap = A[b][ic:ic+mc, pc:pc+kc]
                    pack_operand<MR>(A, Ap, b, ic, mc, pc, kc);
                    macro_kernel(uk, C[b] + ic * rsc + jc * csc, rsc, csc, NR * csc, Ap, Bp_block,
                                 mc, nc, kc, jr0, jr1, beta_pc);
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Batched driver: threads over the batch, or a team per GEMM

// Below this many multiply-adds per thread, waking another thread costs more than it saves.
constexpr int64_t kMinFmasPerThread = int64_t(1) << 15;

// Called from inside a parallel region (a caller threading over its own work), the GEMM runs on
// the calling thread: a nested region would have one thread, not the team gemm_team expects.
int threads_for(int64_t fmas) {
    const int available = in_parallel() ? 1 : get_num_threads();
    return static_cast<int>(std::clamp<int64_t>(fmas / kMinFmasPerThread, 1, available));
}

// Matrix-vector product, for GEMMs with one output column (or row, by symmetry: C(i, j) =
// sum_p A(i, p) B(j, p) is symmetric in the two operands): packing a 16-wide panel for a single
// column would waste 15/16 of the micro-kernel.
//   c(i) = sum_p X(i, p) y(p) + beta c(i)
//   c: (M,) at C[i * cs];  X: (M, K) at X[i * xs + p * xk];  y: (K,) at y[p * yk]
// Rows of X contiguous (xk == 1): a dot product per row. Columns contiguous (xs == 1): the
// columns are added up instead, c += X(:, p) y(p), in chunks of rows that stay in cache.
template <typename T>
void gemv(T* C, ptrdiff_t cs, const T* X, ptrdiff_t xs, ptrdiff_t xk, const T* y, ptrdiff_t yk,
          int64_t M, int64_t K, T beta) {
    const int nt = threads_for(M * K);
    if (xs == 1 && xk != 1) {
        constexpr int64_t chunk = 1024;  // rows per chunk: the partial sums stay in L1
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t i0 = 0; i0 < M; i0 += chunk) {
            const int64_t rows = std::min(chunk, M - i0);
            T acc[chunk] = {};
            for (int64_t p = 0; p < K; ++p) {
                const T* x = X + i0 + p * xk;
                const T yp = y[p * yk];
#pragma omp simd
                for (int64_t r = 0; r < rows; ++r) acc[r] += x[r] * yp;
            }
            for (int64_t r = 0; r < rows; ++r) {
                T& c = C[(i0 + r) * cs];
                c = beta == T(0) ? acc[r] : acc[r] + beta * c;
            }
        }
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < M; ++i) {
        const T* x = X + i * xs;
        T s = 0;
        if (xk == 1 && yk == 1) {  // 8 independent partial sums: vectorised, no add chain
            T part[8] = {};
            int64_t p = 0;
            for (; p + 8 <= K; p += 8)
                for (int u = 0; u < 8; ++u) part[u] += x[p + u] * y[p + u];
            for (; p < K; ++p) s += x[p] * y[p];
            for (int u = 0; u < 8; ++u) s += part[u];
        } else {
            for (int64_t p = 0; p < K; ++p) s += x[p * xk] * y[p * yk];
        }
        T& c = C[i * cs];
        c = beta == T(0) ? s : s + beta * c;
    }
}

template <typename T>
void gemm_batched_impl(T* const* C, ptrdiff_t rsc, ptrdiff_t csc, const GemmOperand<T>& A,
                       const GemmOperand<T>& B, int64_t batch, int64_t M, int64_t N, int64_t K,
                       T beta) {
    constexpr int MR = GemmBlocking<T>::MR, NR = GemmBlocking<T>::NR;
    constexpr int MC = GemmBlocking<T>::MC, KC = GemmBlocking<T>::KC, NC = GemmBlocking<T>::NC;
    if (batch <= 0 || M <= 0 || N <= 0) return;

    if (K <= 0) {  // C = beta * C
        for (int64_t b = 0; b < batch; ++b)
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                    T& c = C[b][i * rsc + j * csc];
                    c = beta == T(0) ? T(0) : beta * c;
                }
        return;
    }
    if ((N == 1 || M == 1) && !A.pack && !B.pack) {
        for (int64_t b = 0; b < batch; ++b) {
            if (N == 1)
                gemv(C[b], rsc, A.ptrs[b], A.rs, A.ks, B.ptrs[b], B.ks, M, K, beta);
            else
                gemv(C[b], csc, B.ptrs[b], B.rs, B.ks, A.ptrs[b], A.ks, N, K, beta);
        }
        return;
    }

    const Ukernel<T> uk = current_ukernel<T>();
    const int64_t fmas = M * N * K;
    const int nt_all = threads_for(fmas * batch);
    // Threads over the batch when that splits evenly enough, or when one GEMM is too small to split.
    const bool over_batch =
        batch >= nt_all && nt_all > 1 &&
        (batch % nt_all == 0 || batch >= 4 * nt_all || threads_for(fmas) < nt_all);
    const int teams = over_batch ? nt_all : 1;
    const int team_size = over_batch ? 1 : threads_for(fmas);

    // Scratch: two B blocks per team, one A block per thread.
    const int64_t Bp_size = round_to_lines<T>(std::min<int64_t>(K, KC) *
                                              std::min<int64_t>((N + NR - 1) / NR * NR, NC));
    const int64_t Ap_size = round_to_lines<T>(std::min<int64_t>(K, KC) *
                                              std::min<int64_t>((M + MR - 1) / MR * MR, MC));
    Buffer<T> Bp = alloc_aligned<T>(teams * 2 * Bp_size);
    Buffer<T> Ap = alloc_aligned<T>(teams * team_size * Ap_size);

    if (over_batch) {  // dynamic: on a shared machine a descheduled thread does not hold up its share
#pragma omp parallel for num_threads(teams) schedule(dynamic)
        for (int64_t b = 0; b < batch; ++b) {
            const int t = thread_id();
            gemm_team(uk, C, rsc, csc, A, B, b, b + 1, M, N, K, beta, Bp.get() + t * 2 * Bp_size,
                      Bp_size, Ap.get() + t * Ap_size, 0, 1);
        }
    } else if (team_size == 1) {
        gemm_team(uk, C, rsc, csc, A, B, 0, batch, M, N, K, beta, Bp.get(), Bp_size, Ap.get(), 0, 1);
    } else {
#pragma omp parallel num_threads(team_size)
        {
            const int t = thread_id();
            gemm_team(uk, C, rsc, csc, A, B, 0, batch, M, N, K, beta, Bp.get(), Bp_size,
                      Ap.get() + t * Ap_size, t, team_size);
        }
    }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Entry points (declared in gemm.h)

// Strided A (M x K) is op_b(i, p) = A[b][i * rsa + p * csa]; strided B (K x N) is seen through
// its transpose, op_b(j, p) = B[b][j * csb + p * rsb].
void gemm_batched(float* const* C, ptrdiff_t rsc, ptrdiff_t csc,
                  const float* const* A, ptrdiff_t rsa, ptrdiff_t csa,
                  const float* const* B, ptrdiff_t rsb, ptrdiff_t csb,
                  int64_t batch, int64_t M, int64_t N, int64_t K, float beta) {
    gemm_batched_impl<float>(C, rsc, csc, {A, rsa, csa}, {B, csb, rsb}, batch, M, N, K, beta);
}
void gemm_batched(double* const* C, ptrdiff_t rsc, ptrdiff_t csc,
                  const double* const* A, ptrdiff_t rsa, ptrdiff_t csa,
                  const double* const* B, ptrdiff_t rsb, ptrdiff_t csb,
                  int64_t batch, int64_t M, int64_t N, int64_t K, double beta) {
    gemm_batched_impl<double>(C, rsc, csc, {A, rsa, csa}, {B, csb, rsb}, batch, M, N, K, beta);
}

void gemm_batched(float* const* C, ptrdiff_t rsc, ptrdiff_t csc, const GemmOperand<float>& A,
                  const GemmOperand<float>& B, int64_t batch, int64_t M, int64_t N, int64_t K,
                  float beta) {
    gemm_batched_impl(C, rsc, csc, A, B, batch, M, N, K, beta);
}
void gemm_batched(double* const* C, ptrdiff_t rsc, ptrdiff_t csc, const GemmOperand<double>& A,
                  const GemmOperand<double>& B, int64_t batch, int64_t M, int64_t N, int64_t K,
                  double beta) {
    gemm_batched_impl(C, rsc, csc, A, B, batch, M, N, K, beta);
}

// Packed operands: A (M x K) as op(i, p) = A[i * rs + p * cs], B (K x N) through its transpose.
template <typename T>
void pack_a_impl(T* Ap, const T* A, ptrdiff_t rs, ptrdiff_t cs, int64_t M, int64_t K) {
    pack_panels<GemmBlocking<T>::MR>(Ap, A, rs, cs, M, K);
}
template <typename T>
void pack_b_impl(T* Bp, const T* B, ptrdiff_t rs, ptrdiff_t cs, int64_t K, int64_t N) {
    pack_panels<GemmBlocking<T>::NR>(Bp, B, cs, rs, N, K);
}
template <typename T>
void gemm_packed_impl(T* C, ptrdiff_t rsc, ptrdiff_t psc, const T* Ap, const T* Bp, int64_t M,
                      int64_t N, int64_t K, T beta) {
    constexpr int NR = GemmBlocking<T>::NR;
    if (M <= 0 || N <= 0) return;
    macro_kernel(current_ukernel<T>(), C, rsc, 1, psc, Ap, Bp, M, N, K, 0, (N + NR - 1) / NR, beta);
}

void gemm_pack_a(float* Ap, const float* A, ptrdiff_t rs, ptrdiff_t cs, int64_t M, int64_t K) {
    pack_a_impl(Ap, A, rs, cs, M, K);
}
void gemm_pack_a(double* Ap, const double* A, ptrdiff_t rs, ptrdiff_t cs, int64_t M, int64_t K) {
    pack_a_impl(Ap, A, rs, cs, M, K);
}
void gemm_pack_b(float* Bp, const float* B, ptrdiff_t rs, ptrdiff_t cs, int64_t K, int64_t N) {
    pack_b_impl(Bp, B, rs, cs, K, N);
}
void gemm_pack_b(double* Bp, const double* B, ptrdiff_t rs, ptrdiff_t cs, int64_t K, int64_t N) {
    pack_b_impl(Bp, B, rs, cs, K, N);
}
void gemm_packed(float* C, ptrdiff_t rsc, ptrdiff_t psc, const float* Ap, const float* Bp, int64_t M,
                 int64_t N, int64_t K, float beta) {
    gemm_packed_impl(C, rsc, psc, Ap, Bp, M, N, K, beta);
}
void gemm_packed(double* C, ptrdiff_t rsc, ptrdiff_t psc, const double* Ap, const double* Bp,
                 int64_t M, int64_t N, int64_t K, double beta) {
    gemm_packed_impl(C, rsc, psc, Ap, Bp, M, N, K, beta);
}

void gemm(float* C, ptrdiff_t rsc, ptrdiff_t csc, const float* A, ptrdiff_t rsa, ptrdiff_t csa,
          const float* B, ptrdiff_t rsb, ptrdiff_t csb, int64_t M, int64_t N, int64_t K,
          float beta) {
    gemm_batched(&C, rsc, csc, &A, rsa, csa, &B, rsb, csb, 1, M, N, K, beta);
}
void gemm(double* C, ptrdiff_t rsc, ptrdiff_t csc, const double* A, ptrdiff_t rsa, ptrdiff_t csa,
          const double* B, ptrdiff_t rsb, ptrdiff_t csb, int64_t M, int64_t N, int64_t K,
          double beta) {
    gemm_batched(&C, rsc, csc, &A, rsa, csa, &B, rsb, csb, 1, M, N, K, beta);
}

const char* gemm_isa() { return g_isa.name(); }

bool gemm_set_isa(const char* name) { return g_isa.set(name); }

}  // namespace cpu
}  // namespace kg
