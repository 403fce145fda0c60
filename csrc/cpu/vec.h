// vec.h: the primitives of the memory-bound kernels (softmax, log-softmax, cross-entropy, layer
// norm, batch norm): reductions over n contiguous values (a row) or along a strided dimension (a
// block of columns), and a vectorised exp.
//
//   max(x, n)               = max_i x[i]                          (-inf when n == 0, NaN if any is)
//   sum(x, x0, n)           = sum_i (x[i] - x0)
//   dot(a, a0, b, b0, n)    = sum_i (a[i] - a0) * (b[i] - b0)
//   exp_sum(y, x, x0, n)    : e[i] = exp(x[i] - x0) is stored in y[i] (unless y is null);
//                             returns sum_i e[i]
//
// The shifts x0, a0, b0 make these "centred" sums, computed element by element: a variance is
// dot(x, mean, x, mean, n), never sum(x^2) - n mean^2, so nothing cancels.
//
// Column primitives: the same along a strided dimension, for w positions side by side whose
// values at one index d are contiguous (x[d * stride + j], j < w), vectorised across j, one call
// for the whole (rows, w) block:
//   col_max(m, x, rows, stride, w)             : m[j] = max_d x[d, j]
//   col_exp_sum(s, e, x, x0, rows, stride, w)  : e[d, j] = exp(x[d, j] - x0[j]) is stored in
//                                                e[d * stride + j] (unless e is null);
//                                                s[j] = sum_d e[d, j] (unless s is null); x0 null: 0
//
// Two implementations of the table, chosen once at run time like the GEMM micro-kernel:
//   - "generic": vec.cpp, plain loops and std::exp: the readable version, for any CPU;
//   - "avx2":    vec_avx2.cpp (compiled with -mavx2 -mfma): 8 floats / 4 doubles per step, four
//                accumulators in the row reductions, a polynomial exp. Used when the CPU has AVX2
//                and FMA.
//
// This header holds declarations only (no inline code), so that vec_avx2.cpp can include it
// without emitting an AVX2-compiled copy of a shared inline function.
#pragma once

#include <cstdint>

namespace kg {
namespace cpu {

// ----------------------------------------------------------------------------------------------
// The primitives: one table of functions per dtype

template <typename T>
struct VecOps {
    T (*max)(const T* x, int64_t n);                             // x: (n,)
    T (*sum)(const T* x, T x0, int64_t n);                       // x: (n,)
    T (*dot)(const T* a, T a0, const T* b, T b0, int64_t n);     // a, b: (n,)
    T (*exp_sum)(T* y, const T* x, T x0, int64_t n);             // y: (n,) or null, x: (n,); y may be x
    // m, s, x0: (w);  x, e: (rows, stride), columns [0, w) used; e may be x
    void (*col_max)(T* m, const T* x, int64_t rows, int64_t stride, int64_t w);
    void (*col_exp_sum)(T* s, T* e, const T* x, const T* x0, int64_t rows, int64_t stride, int64_t w);
};

// The table in use (float or double).
template <typename T> const VecOps<T>& vec_ops();
template <> const VecOps<float>& vec_ops<float>();
template <> const VecOps<double>& vec_ops<double>();

// "avx2" or "generic".
const char* vec_isa();
// "auto": avx2 when the CPU has AVX2 and FMA (and the build has the code), else generic;
// "generic": force the plain loops. Returns false (and changes nothing) for any other name.
bool vec_set_isa(const char* name);

// The AVX2 tables (vec_avx2.cpp): use only when the CPU has AVX2 and FMA.
extern const VecOps<float> vec_ops_avx2_float;
extern const VecOps<double> vec_ops_avx2_double;

// ----------------------------------------------------------------------------------------------
// Threads for the kernels built on these primitives

// Threads for a memory-bound pass over `elements` values: get_num_threads(), fewer when a
// thread would get too little work to pay for waking it.
int memory_bound_threads(int64_t elements);

}  // namespace cpu
}  // namespace kg
