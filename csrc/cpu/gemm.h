// gemm.h: general matrix multiply on the CPU, float32 and float64.
//
//   C (M x N) = A (M x K) @ B (K x N) + beta * C        (beta == 0: C is written, never read)
//
// Every operand has a general row stride and column stride, in elements (ptrdiff_t), so
// transposed, strided and broadcast (stride 0) operands are handled while packing, never by a
// separate copy; an operand may also be given by a packing hook (GemmOperand). The driver is the
// BLIS one: five loops (NC, KC, MC, NR, MR) around an MR x NR micro-kernel that reads packed,
// 64-byte aligned panels of A and B.
//
// Micro-kernels (chosen once at run time, see gemm_set_isa):
//   - "avx2":    gemm_avx2.cpp, compiled with -mavx2 -mfma: 6 x 16 floats / 6 x 8
//                doubles, 12 ymm accumulators, FMA.
//   - "generic": gemm.cpp, plain C++ loops over the same packed panels (baseline x86-64 or any CPU).
//
// This header holds declarations only (no inline code), so that gemm_avx2.cpp can include it
// without emitting any AVX2-compiled copy of a shared inline function.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kg {
namespace cpu {

// ----------------------------------------------------------------------------------------------
// GEMM entry points

// C = A @ B + beta * C, using get_num_threads() OpenMP threads (one thread when called from
// inside a parallel region: kernels that thread over their own tiles call it per tile).
//   C: (M, N) at C[i * rsc + j * csc]
//   A: (M, K) at A[i * rsa + p * csa]
//   B: (K, N) at B[p * rsb + j * csb]
void gemm(float* C, ptrdiff_t rsc, ptrdiff_t csc,
          const float* A, ptrdiff_t rsa, ptrdiff_t csa,
          const float* B, ptrdiff_t rsb, ptrdiff_t csb,
          int64_t M, int64_t N, int64_t K, float beta);
void gemm(double* C, ptrdiff_t rsc, ptrdiff_t csc,
          const double* A, ptrdiff_t rsa, ptrdiff_t csa,
          const double* B, ptrdiff_t rsb, ptrdiff_t csb,
          int64_t M, int64_t N, int64_t K, double beta);

// C[b] = A[b] @ B[b] + beta * C[b] for b in [0, batch): the same shapes and strides for every
// matrix of the batch, one base pointer per matrix (pointers may repeat, e.g. a broadcast operand;
// the C matrices must not overlap). Many matrices: threads split the batch; few: each GEMM is
// split across threads.
//   C[b]: (M, N), A[b]: (M, K), B[b]: (K, N), strides as in gemm()
void gemm_batched(float* const* C, ptrdiff_t rsc, ptrdiff_t csc,
                  const float* const* A, ptrdiff_t rsa, ptrdiff_t csa,
                  const float* const* B, ptrdiff_t rsb, ptrdiff_t csb,
                  int64_t batch, int64_t M, int64_t N, int64_t K, float beta);
void gemm_batched(double* const* C, ptrdiff_t rsc, ptrdiff_t csc,
                  const double* const* A, ptrdiff_t rsa, ptrdiff_t csa,
                  const double* const* B, ptrdiff_t rsb, ptrdiff_t csb,
                  int64_t batch, int64_t M, int64_t N, int64_t K, double beta);

// ----------------------------------------------------------------------------------------------
// Operands read through a packing hook

// An operand of gemm_batched below. The GEMM reads its operands only while packing blocks of them
// into panels, so an operand may also be a matrix that is never stored, such as the im2col matrix
// of a convolution (conv2d.cpp packs it straight from the image). The operand is seen as an
// (n x K) matrix op_b for each batch index b: A[b] itself for A (n = M), B[b]^T for B (n = N).
//   - strided (pack == nullptr): op_b(i, p) = ptrs[b][i * rs + p * ks]
//   - hook: pack(ctx, dst, b, i0, n, p0, kc) writes rows [i0, i0 + n) x columns [p0, p0 + kc) of
//     op_b (n >= 1) as R-row panels, R = MR for A and NR for B, the rows after n zero:
//         dst[q * R * kc + p * R + r] = op_b(i0 + q * R + r, p0 + p)
//     It is called by several threads at once (on disjoint dst).
template <typename T>
struct GemmOperand {
    const T* const* ptrs = nullptr;
    ptrdiff_t rs = 0, ks = 0;
    void (*pack)(const void* ctx, T* dst, int64_t b, int64_t i0, int64_t n, int64_t p0,
                 int64_t kc) = nullptr;
    const void* ctx = nullptr;
};

// C[b] = A[b] @ B[b] + beta * C[b] for b in [0, batch), as gemm_batched above (same threading),
// with the operands given as GemmOperand (strided or packed by a hook).
void gemm_batched(float* const* C, ptrdiff_t rsc, ptrdiff_t csc, const GemmOperand<float>& A,
                  const GemmOperand<float>& B, int64_t batch, int64_t M, int64_t N, int64_t K,
                  float beta);
void gemm_batched(double* const* C, ptrdiff_t rsc, ptrdiff_t csc, const GemmOperand<double>& A,
                  const GemmOperand<double>& B, int64_t batch, int64_t M, int64_t N, int64_t K,
                  double beta);

// ----------------------------------------------------------------------------------------------
// Operands packed once, multiplied many times

// A kernel that multiplies the same operand many times (attention: K and V of a head against
// every query tile) packs it once and calls the macro-kernel itself. Packed layouts, with MR, NR
// from GemmBlocking<T> below and the rows or columns past M or N zero:
//   gemm_pack_a: A (M x K) at A[i * rs + p * cs]  ->  MR-row panels,
//                Ap[(i / MR) * MR * K + p * MR + i % MR], round_up(M, MR) * K values
//   gemm_pack_b: B (K x N) at B[p * rs + j * cs]  ->  NR-column panels,
//                Bp[(j / NR) * NR * K + p * NR + j % NR], round_up(N, NR) * K values
// Bp must be 64-byte aligned (alloc_aligned, aligned.h): the micro-kernel reads it with aligned loads.
// gemm_packed: C = Ap @ Bp + beta * C on the calling thread, any K (no cache blocking), with
//   C(i, j) at C[i * rsc + (j / NR) * psc + j % NR]. A row-major C has psc = NR; rsc = NR and
//   psc = NR * M write C itself as the packed B (K' = M) of a later product.
void gemm_pack_a(float* Ap, const float* A, ptrdiff_t rs, ptrdiff_t cs, int64_t M, int64_t K);
void gemm_pack_a(double* Ap, const double* A, ptrdiff_t rs, ptrdiff_t cs, int64_t M, int64_t K);
void gemm_pack_b(float* Bp, const float* B, ptrdiff_t rs, ptrdiff_t cs, int64_t K, int64_t N);
void gemm_pack_b(double* Bp, const double* B, ptrdiff_t rs, ptrdiff_t cs, int64_t K, int64_t N);
void gemm_packed(float* C, ptrdiff_t rsc, ptrdiff_t psc, const float* Ap, const float* Bp, int64_t M,
                 int64_t N, int64_t K, float beta);
void gemm_packed(double* C, ptrdiff_t rsc, ptrdiff_t psc, const double* Ap, const double* Bp,
                 int64_t M, int64_t N, int64_t K, double beta);

// ----------------------------------------------------------------------------------------------
// Micro-kernel choice

// The micro-kernel family in use: "avx2" or "generic".
const char* gemm_isa();
// "auto": avx2 when the CPU has AVX2 and FMA (and the build has the kernel), else generic;
// "generic": force the portable kernel. Returns false (and changes nothing) for any other name.
bool gemm_set_isa(const char* name);

// ----------------------------------------------------------------------------------------------
// Register blocking and cache blocking (shared by both micro-kernel families, so packing is one
// code path). MR x NR is the micro-tile; MC x KC is the packed block of A (L2), KC x NC the packed
// block of B (L3), KC x NR one micro-panel of B (L1).

template <typename T> struct GemmBlocking;
template <> struct GemmBlocking<float> {
    static constexpr int MR = 6, NR = 16, MC = 144, KC = 256, NC = 4080;
};
template <> struct GemmBlocking<double> {
    static constexpr int MR = 6, NR = 8, MC = 72, KC = 256, NC = 4080;
};

// ----------------------------------------------------------------------------------------------
// Micro-kernels: one full MR x NR tile with unit column stride,
//   C (MR x NR, row stride rsc, column stride 1) = Ap (MR x kc) @ Bp (kc x NR) + beta * C
//   Ap: kc columns of MR contiguous values (Ap[p * MR + i]);
//   Bp: kc rows of NR contiguous values (Bp[p * NR + j]), 64-byte aligned.
// Edge tiles and non-unit column strides go through a local tile in the driver.

void gemm_ukernel_avx2(int64_t kc, const float* Ap, const float* Bp, float* C, ptrdiff_t rsc,
                       float beta);
void gemm_ukernel_avx2(int64_t kc, const double* Ap, const double* Bp, double* C, ptrdiff_t rsc,
                       double beta);

}  // namespace cpu
}  // namespace kg
