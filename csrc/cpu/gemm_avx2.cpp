// gemm_avx2.cpp: the AVX2 + FMA GEMM micro-kernels, compiled with -mavx2 -mfma (as is vec_avx2.cpp);
// gemm.cpp calls into it only after __builtin_cpu_supports("avx2") && ("fma") said yes.
//
//   C (6 x NR) = Ap (6 x kc) @ Bp (kc x NR) + beta * C,   NR = 2 vectors = 16 floats / 8 doubles
//
// One template for both dtypes: per k, load the two vectors of B row p, broadcast each of the
// six A values of column p and FMA into 6 x 2 = 12 ymm accumulators (plus 2 for B, 1 for A:
// 15 of the 16 ymm registers).
#include <immintrin.h>

#include "cpu/gemm.h"
#include "cpu/ymm.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// 6 x (2 vectors) micro-kernel

template <typename T>
inline void ukernel_6x2v(int64_t kc, const T* __restrict Ap, const T* __restrict Bp,
                         T* __restrict C, ptrdiff_t rsc, T beta) {
    using Y = Ymm<T>;
    using V = typename Y::V;
    constexpr int MR = 6, W = Y::width;

    for (int i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(C + i * rsc), _MM_HINT_T0);

    V c[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) c[i][0] = c[i][1] = Y::zero();

    // c[i] += Ap[p, i] * Bp[p, :] for p in [0, kc)
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
        const V b0 = Y::load(Bp), b1 = Y::load(Bp + W);
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            const V a = Y::broadcast(Ap + i);
            c[i][0] = Y::fmadd(a, b0, c[i][0]);
            c[i][1] = Y::fmadd(a, b1, c[i][1]);
        }
        Ap += MR;
        Bp += 2 * W;
    }

    // C = c + beta * C (beta == 0: C is not read, it may hold NaN)
    if (beta == T(0)) {
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            Y::storeu(C + i * rsc, c[i][0]);
            Y::storeu(C + i * rsc + W, c[i][1]);
        }
    } else {
        const V vbeta = Y::set1(beta);
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
            Y::storeu(C + i * rsc, Y::fmadd(vbeta, Y::loadu(C + i * rsc), c[i][0]));
            Y::storeu(C + i * rsc + W, Y::fmadd(vbeta, Y::loadu(C + i * rsc + W), c[i][1]));
        }
    }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Entry points (declared in gemm.h)

static_assert(GemmBlocking<float>::MR == 6 && GemmBlocking<float>::NR == 2 * Ymm<float>::width,
              "float blocking must match the 6 x 16 kernel");
static_assert(GemmBlocking<double>::MR == 6 && GemmBlocking<double>::NR == 2 * Ymm<double>::width,
              "double blocking must match the 6 x 8 kernel");

void gemm_ukernel_avx2(int64_t kc, const float* Ap, const float* Bp, float* C, ptrdiff_t rsc,
                       float beta) {
    ukernel_6x2v(kc, Ap, Bp, C, rsc, beta);
}
void gemm_ukernel_avx2(int64_t kc, const double* Ap, const double* Bp, double* C, ptrdiff_t rsc,
                       double beta) {
    ukernel_6x2v(kc, Ap, Bp, C, rsc, beta);
}

}  // namespace cpu
}  // namespace kg
