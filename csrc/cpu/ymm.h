// ymm.h: one 256-bit AVX register of float (8 lanes) or double (4 lanes) behind one set of names,
// so that each AVX2 kernel is written once for both dtypes.
//
// Include only from the translation units compiled with -mavx2 -mfma (gemm_avx2.cpp,
// vec_avx2.cpp): every function here is AVX2 code, and a copy of it emitted into a baseline
// translation unit could be picked by the linker and run on a CPU without AVX2.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace kg {
namespace cpu {

template <typename T> struct Ymm;

template <> struct Ymm<float> {
    using V = __m256;
    static constexpr int width = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V load(const float* p) { return _mm256_load_ps(p); }  // 32-byte aligned
    static V loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a * b + c
    static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a * b
    // max/min return b when either operand is NaN (the x86 rule)
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static V min(V a, V b) { return _mm256_min_ps(a, b); }
    static V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static V less(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }  // all-ones lanes where a < b
    static V select(V mask, V a, V b) { return _mm256_blendv_ps(b, a, mask); }  // mask ? a : b
    static V is_nan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
    static bool any(V mask) { return _mm256_movemask_ps(mask) != 0; }

    // Lanes [0, n) of the row tail (0 < n < 8): the mask of the lanes, a masked load (0 elsewhere)
    // and a masked store.
    static V tail_mask(int64_t n) {
        return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    }
    static V maskload(const float* p, V mask) { return _mm256_maskload_ps(p, _mm256_castps_si256(mask)); }
    static void maskstore(float* p, V mask, V v) { _mm256_maskstore_ps(p, _mm256_castps_si256(mask), v); }

    // p * 2^k for integer-valued k with |k| <= 252: two power-of-two factors 2^(k/2), built in the
    // exponent bits, each a normal number; the product over- or underflows (to inf, a denormal
    // or 0) exactly as IEEE multiplication does.
    static V mul_pow2(V p, V k) {
        const __m256i ki = _mm256_cvtps_epi32(k);
        const __m256i k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
        const __m256i bias = _mm256_set1_epi32(127);
        const V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, bias), 23));
        const V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, bias), 23));
        return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    }

    static float hsum(V v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
    static float hmax(V v) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    }
};

template <> struct Ymm<double> {
    using V = __m256d;
    static constexpr int width = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double x) { return _mm256_set1_pd(x); }
    static V load(const double* p) { return _mm256_load_pd(p); }
    static V loadu(const double* p) { return _mm256_loadu_pd(p); }
    static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
    static V max(V a, V b) { return _mm256_max_pd(a, b); }
    static V min(V a, V b) { return _mm256_min_pd(a, b); }
    static V round(V a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static V less(V a, V b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
    static V select(V mask, V a, V b) { return _mm256_blendv_pd(b, a, mask); }
    static V is_nan(V a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
    static bool any(V mask) { return _mm256_movemask_pd(mask) != 0; }

    static V tail_mask(int64_t n) {
        return _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)));
    }
    static V maskload(const double* p, V mask) { return _mm256_maskload_pd(p, _mm256_castpd_si256(mask)); }
    static void maskstore(double* p, V mask, V v) { _mm256_maskstore_pd(p, _mm256_castpd_si256(mask), v); }

    // p * 2^k for integer-valued k with |k| <= 2044, as for float (exponent bias 1023, 52 bits).
    static V mul_pow2(V p, V k) {
        const __m128i ki = _mm256_cvtpd_epi32(k);
        const __m128i k1 = _mm_srai_epi32(ki, 1), k2 = _mm_sub_epi32(ki, k1);
        const __m256i bias = _mm256_set1_epi64x(1023);
        const V s1 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(k1), bias), 52));
        const V s2 = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(k2), bias), 52));
        return _mm256_mul_pd(_mm256_mul_pd(p, s1), s2);
    }

    static double hsum(V v) {
        const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    }
    static double hmax(V v) {
        const __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
    }
};

}  // namespace cpu
}  // namespace kg
