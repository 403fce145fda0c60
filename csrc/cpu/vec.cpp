// vec.cpp: the plain ("generic") primitives, the run-time choice between them and the AVX2 ones
// (vec_avx2.cpp), and the thread count of the memory-bound kernels. Formulas in vec.h.
#include "cpu/vec.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/isa.h"
#include "cpu/parallel.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Generic primitives: plain loops, one accumulator

template <typename T>
T max_generic(const T* x, int64_t n) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < n; ++i) m = x[i] > m || x[i] != x[i] ? x[i] : m;  // NaN sticks
    return m;
}

template <typename T>
T sum_generic(const T* x, T x0, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i] - x0;
    return s;
}

template <typename T>
T dot_generic(const T* a, T a0, const T* b, T b0, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += (a[i] - a0) * (b[i] - b0);
    return s;
}

template <typename T>
T exp_sum_generic(T* y, const T* x, T x0, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) {
        const T e = std::exp(x[i] - x0);
        if (y) y[i] = e;
        s += e;
    }
    return s;
}

template <typename T>
void col_max_generic(T* m, const T* x, int64_t rows, int64_t stride, int64_t w) {
    std::fill(m, m + w, -std::numeric_limits<T>::infinity());
    for (int64_t d = 0; d < rows; ++d)
        for (int64_t j = 0; j < w; ++j) m[j] = x[d * stride + j] > m[j] ? x[d * stride + j] : m[j];
}

template <typename T>
void col_exp_sum_generic(T* s, T* e, const T* x, const T* x0, int64_t rows, int64_t stride, int64_t w) {
    if (s) std::fill(s, s + w, T(0));
    for (int64_t d = 0; d < rows; ++d)
        for (int64_t j = 0; j < w; ++j) {
            const T v = std::exp(x[d * stride + j] - (x0 ? x0[j] : T(0)));
            if (e) e[d * stride + j] = v;
            if (s) s[j] += v;
        }
}

template <typename T>
constexpr VecOps<T> generic_ops{&max_generic<T>,     &sum_generic<T>,     &dot_generic<T>,
                                &exp_sum_generic<T>, &col_max_generic<T>, &col_exp_sum_generic<T>};

// ----------------------------------------------------------------------------------------------
// Run-time choice

#ifdef KG_VEC_AVX2
IsaChoice g_isa{true};
#else
IsaChoice g_isa{false};
#endif

// Below this many values per thread, waking another thread costs more than it saves.
constexpr int64_t kMinElementsPerThread = int64_t(1) << 14;

}  // namespace

template <>
const VecOps<float>& vec_ops<float>() {
#ifdef KG_VEC_AVX2
    if (g_isa.avx2()) return vec_ops_avx2_float;
#endif
    return generic_ops<float>;
}

template <>
const VecOps<double>& vec_ops<double>() {
#ifdef KG_VEC_AVX2
    if (g_isa.avx2()) return vec_ops_avx2_double;
#endif
    return generic_ops<double>;
}

const char* vec_isa() { return g_isa.name(); }

bool vec_set_isa(const char* name) { return g_isa.set(name); }

int memory_bound_threads(int64_t elements) {
    return static_cast<int>(std::clamp<int64_t>(elements / kMinElementsPerThread, 1, get_num_threads()));
}

}  // namespace cpu
}  // namespace kg
