// attention_avx2.cpp: the AVX2 + FMA row kernels of the attention softmax (float32). Compiled with
// -mavx2 -mfma; attention.cpp calls them only when the GEMM runs its AVX2 micro-kernel (the CPU
// has AVX2 and FMA).
//
//   attention_row_max_avx2:  max(m0, max(x[0:n])), NaN if any is NaN
//   attention_exp_sum_avx2:  x[c] = exp(x[c] - shift), returning sum(x)
//
// exp: Cody-Waite range reduction x = n ln2 + r (|r| <= ln2 / 2) and the degree-5 polynomial of
// Cephes' expf for e^r (relative error ~2 float32 ulp), times 2^n built in the exponent bits.
// Below ln(FLT_MIN) the result is 0 (exp(-inf) = 0 exactly, as masked scores need); NaN stays NaN.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "cpu/attention.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// exp of 8 floats

inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f);    // e^hi < FLT_MAX
    const __m256 lo = _mm256_set1_ps(-87.3365447505531f);   // e^lo = FLT_MIN
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);

    const __m256 kept = _mm256_cmp_ps(x, lo, _CMP_NLT_UQ);  // x >= lo, or NaN
    x = _mm256_min_ps(hi, x);                                // (NaN passes through)
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, ln2_hi, x);
    r = _mm256_fnmadd_ps(n, ln2_lo, r);

    // e^r = 1 + r + r^2 (c2 + c3 r + ... + c7 r^5)
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 e_r = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));

    // 2^n: n + 127 in the exponent field
    const __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(e_r, _mm256_castsi256_ps(pow2n)), kept);
}

float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Row kernels (declared in attention.h)

float attention_row_max_avx2(const float* x, int64_t n, float m0) {
    __m256 m = _mm256_set1_ps(m0), nan = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        const __m256 v = _mm256_loadu_ps(x + c);
        m = _mm256_max_ps(v, m);                                  // ignores a NaN in v ...
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));  // ... so NaN is tracked here
    }
    float m_all = _mm256_movemask_ps(nan) ? NAN : hmax(m);
    for (; c < n; ++c) m_all = x[c] > m_all || std::isnan(x[c]) ? x[c] : m_all;
    return m_all;
}

float attention_exp_sum_avx2(float* x, int64_t n, float shift) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + c), s));
        _mm256_storeu_ps(x + c, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (c < n) {  // the last n - c < 8 values, padded with -inf (whose exp is 0)
        float tail[8];
        std::fill(std::copy(x + c, x + n, tail), tail + 8, -INFINITY);
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(tail), s));
        _mm256_storeu_ps(tail, e);
        std::copy(tail, tail + (n - c), x + c);
        sum = _mm256_add_ps(sum, e);
    }
    return hsum(sum);
}

}  // namespace cpu
}  // namespace kg
