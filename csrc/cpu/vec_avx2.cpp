// vec_avx2.cpp: the AVX2 + FMA primitives (formulas in vec.h), one template each for float
// (8 lanes) and double (4 lanes). Compiled with -mavx2 -mfma; vec.cpp hands these out only after
// __builtin_cpu_supports("avx2") && ("fma") said yes.
//
// Row reductions walk a row in blocks of four vectors into four independent accumulators (an add
// or a max has several cycles of latency: a single chain would leave the units idle), then single
// vectors, then the last n % width values with masked loads and stores. Column primitives walk
// the rows in memory order, vectorised across the positions.
//
// exp (Cephes-style range reduction, Taylor polynomial):
//   exp(x) = 2^k exp(r),   k = round(x / ln2),   r = x - k ln2 in [-ln2/2, ln2/2]
//   ln2 = ln2_hi + ln2_lo, with ln2_hi short enough that k * ln2_hi is exact: r keeps full precision.
//   exp(r) = sum_{j <= d} r^j / j!   (Horner, FMA), d = 7 for float (truncation < 6e-9 relative),
//                                                   d = 13 for double (< 5e-18): within ~1 ulp.
//   2^k goes into the exponent bits (Ymm::mul_pow2), so results below the smallest normal number
//   are denormals or 0 and results above the largest are inf, as with std::exp. x is first clamped
//   to [lo, hi], outside of which exp is already 0 / inf; -inf gives 0, +inf gives inf, NaN gives NaN.
#include <type_traits>

#include "cpu/vec.h"
#include "cpu/ymm.h"

namespace kg {
namespace cpu {
namespace {

template <typename T>
using V = typename Ymm<T>::V;

// ----------------------------------------------------------------------------------------------
// exp

template <typename T> struct ExpConstants;
template <> struct ExpConstants<float> {
    static constexpr float lo = -110.0f, hi = 89.0f;  // exp(-110) < half the smallest denormal; exp(89) > FLT_MAX
    static constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    static constexpr int degree = 7;
};
template <> struct ExpConstants<double> {
    static constexpr double lo = -750.0, hi = 710.0;
    static constexpr double ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
    static constexpr int degree = 13;
};

// 1 / j! for j = 0..13: the Taylor coefficients of exp
constexpr double kInvFactorial[14] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800,
};

template <typename T>
inline V<T> vexp(V<T> x) {
    using Y = Ymm<T>;
    using C = ExpConstants<T>;
    // max/min return their second operand when one is NaN: written this way round, NaN passes through
    const V<T> xc = Y::min(Y::set1(C::hi), Y::max(Y::set1(C::lo), x));
    const V<T> k = Y::round(Y::mul(xc, Y::set1(T(1.4426950408889634))));  // x / ln2
    V<T> r = Y::fnmadd(k, Y::set1(C::ln2_hi), xc);
    r = Y::fnmadd(k, Y::set1(C::ln2_lo), r);
    V<T> p = Y::set1(T(kInvFactorial[C::degree]));
#pragma GCC unroll 16
    for (int j = C::degree - 1; j >= 0; --j) p = Y::fmadd(p, r, Y::set1(T(kInvFactorial[j])));
    return Y::mul_pow2(p, k);
}

// ----------------------------------------------------------------------------------------------
// Row reductions

// max(a, b) per lane, NaN where either is NaN (Y::max alone returns b when a is NaN)
template <typename T>
inline V<T> max_nan(V<T> a, V<T> b) {
    using Y = Ymm<T>;
    return Y::select(Y::is_nan(a), a, Y::max(a, b));
}

// max_i x[i], NaN if any x[i] is NaN
template <typename T>
T max_avx2(const T* x, int64_t n) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const V<T> ninf = Y::set1(T(-__builtin_inf()));  // a builtin: no std inline function in this file
    V<T> m[4] = {ninf, ninf, ninf, ninf};
    int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) m[u] = max_nan<T>(m[u], Y::loadu(x + i + u * W));
    }
    for (; i + W <= n; i += W) m[0] = max_nan<T>(m[0], Y::loadu(x + i));
    if (i < n) {
        const V<T> mask = Y::tail_mask(n - i);
        m[0] = max_nan<T>(m[0], Y::select(mask, Y::maskload(x + i, mask), ninf));
    }
    const V<T> all = max_nan<T>(max_nan<T>(m[0], m[1]), max_nan<T>(m[2], m[3]));
    return Y::any(Y::is_nan(all)) ? T(__builtin_nan("")) : Y::hmax(all);
}

// sum_i (x[i] - x0)
template <typename T>
T sum_avx2(const T* x, T x0, int64_t n) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const V<T> v0 = Y::set1(x0);
    V<T> s[4] = {Y::zero(), Y::zero(), Y::zero(), Y::zero()};
    int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) s[u] = Y::add(s[u], Y::sub(Y::loadu(x + i + u * W), v0));
    }
    for (; i + W <= n; i += W) s[0] = Y::add(s[0], Y::sub(Y::loadu(x + i), v0));
    if (i < n) {
        const V<T> mask = Y::tail_mask(n - i);
        s[0] = Y::add(s[0], Y::select(mask, Y::sub(Y::maskload(x + i, mask), v0), Y::zero()));
    }
    return Y::hsum(Y::add(Y::add(s[0], s[1]), Y::add(s[2], s[3])));
}

// sum_i (a[i] - a0) (b[i] - b0)
template <typename T>
T dot_avx2(const T* a, T a0, const T* b, T b0, int64_t n) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const V<T> va0 = Y::set1(a0), vb0 = Y::set1(b0);
    V<T> s[4] = {Y::zero(), Y::zero(), Y::zero(), Y::zero()};
    int64_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) {
            const int64_t j = i + u * W;
            s[u] = Y::fmadd(Y::sub(Y::loadu(a + j), va0), Y::sub(Y::loadu(b + j), vb0), s[u]);
        }
    }
    for (; i + W <= n; i += W) s[0] = Y::fmadd(Y::sub(Y::loadu(a + i), va0), Y::sub(Y::loadu(b + i), vb0), s[0]);
    if (i < n) {
        const V<T> mask = Y::tail_mask(n - i);
        const V<T> d = Y::mul(Y::sub(Y::maskload(a + i, mask), va0), Y::sub(Y::maskload(b + i, mask), vb0));
        s[0] = Y::add(s[0], Y::select(mask, d, Y::zero()));
    }
    return Y::hsum(Y::add(Y::add(s[0], s[1]), Y::add(s[2], s[3])));
}

// y[i] = exp(x[i] - x0) (y may be null or x), returns the sum. One accumulator: the exp of each
// vector is long, and independent of the previous one, so the adds are never the bottleneck.
template <typename T>
T exp_sum_avx2(T* y, const T* x, T x0, int64_t n) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const V<T> v0 = Y::set1(x0);
    V<T> s = Y::zero();
    int64_t i = 0;
    for (; i + W <= n; i += W) {
        const V<T> e = vexp<T>(Y::sub(Y::loadu(x + i), v0));
        if (y) Y::storeu(y + i, e);
        s = Y::add(s, e);
    }
    if (i < n) {
        const V<T> mask = Y::tail_mask(n - i);
        const V<T> e = Y::select(mask, vexp<T>(Y::sub(Y::maskload(x + i, mask), v0)), Y::zero());
        if (y) Y::maskstore(y + i, mask, e);
        s = Y::add(s, e);
    }
    return Y::hsum(s);
}

// ----------------------------------------------------------------------------------------------
// Column primitives: w positions side by side, x[d * stride + j]. The rows d are walked in memory
// order; the running value of each position lives in the output array (m or s: w values, in L1),
// updated a vector of positions at a time, the last w % width positions with masked loads and
// stores; or, for at most four vectors of positions (attention's panels of 16 queries), in
// registers. Both give the same results (the same operations in the same order).

// The vector of positions at p: every lane, or (Tail) the lanes in mask, `fill` in the others.
template <typename T, bool Tail>
inline V<T> load_columns(const T* p, V<T> mask, V<T> fill) {
    if constexpr (Tail) {
        return Ymm<T>::select(mask, Ymm<T>::maskload(p, mask), fill);
    } else {
        return Ymm<T>::loadu(p);
    }
}

template <typename T, bool Tail>
inline void store_columns(T* p, V<T> mask, V<T> v) {
    if constexpr (Tail) {
        Ymm<T>::maskstore(p, mask, v);
    } else {
        Ymm<T>::storeu(p, v);
    }
}

// fn(j, mask, tail) for each vector of positions [j, j + width) of w: the full vectors with
// tail = std::false_type{}, then the partial one, if any, with its lane mask and std::true_type{}.
template <typename T, typename Fn>
inline void for_each_column_vector(int64_t w, Fn fn) {
    using Y = Ymm<T>;
    int64_t j = 0;
    for (; j + Y::width <= w; j += Y::width) fn(j, Y::zero(), std::false_type{});
    if (j < w) fn(j, Y::tail_mask(w - j), std::true_type{});
}

// A narrow block (w <= 4 vectors) keeps the running values in registers: no load and store of
// them per row, no dependency through memory from one row to the next.
// fn(nv, tail, mask) with nv = std::integral_constant<int, NV>, NV = ceil(w / width) <= 4 vectors
// covering the positions, tail = std::bool_constant: the last vector is partial, its lanes in mask.
// Returns false, without calling fn, when w is wider.
template <typename T, typename Fn>
inline bool with_column_registers(int64_t w, Fn fn) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const int nv = static_cast<int>((w + W - 1) / W);
    if (w <= 0 || nv > 4) return false;
    const V<T> mask = Y::tail_mask(w - (nv - 1) * W);  // all lanes when the last vector is full
    const auto call = [&](auto NV) {
        if (w % W == 0) fn(NV, std::false_type{}, mask);
        else fn(NV, std::true_type{}, mask);
    };
    switch (nv) {
        case 1: call(std::integral_constant<int, 1>{}); break;
        case 2: call(std::integral_constant<int, 2>{}); break;
        case 3: call(std::integral_constant<int, 3>{}); break;
        default: call(std::integral_constant<int, 4>{}); break;
    }
    return true;
}

// m[j] = max_d x[d * stride + j]
template <typename T>
void col_max_avx2(T* m, const T* x, int64_t rows, int64_t stride, int64_t w) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const V<T> ninf = Y::set1(T(-__builtin_inf()));
    const bool done = with_column_registers<T>(w, [&](auto nv, auto tail, V<T> mask) {
        constexpr int NV = decltype(nv)::value;
        constexpr bool Tail = decltype(tail)::value;
        V<T> acc[NV];
#pragma GCC unroll 4
        for (int u = 0; u < NV; ++u) acc[u] = ninf;
        for (int64_t d = 0; d < rows; ++d) {
            const T* xd = x + d * stride;  // (w)
#pragma GCC unroll 4
            for (int u = 0; u < NV - 1; ++u) acc[u] = Y::max(acc[u], Y::loadu(xd + u * W));
            acc[NV - 1] = Y::max(acc[NV - 1], load_columns<T, Tail>(xd + (NV - 1) * W, mask, ninf));
        }
#pragma GCC unroll 4
        for (int u = 0; u < NV - 1; ++u) Y::storeu(m + u * W, acc[u]);
        store_columns<T, Tail>(m + (NV - 1) * W, mask, acc[NV - 1]);
    });
    if (done) return;
    for_each_column_vector<T>(w, [&](int64_t j, V<T> mask, auto tail) {
        store_columns<T, decltype(tail)::value>(m + j, mask, ninf);
    });
    for (int64_t d = 0; d < rows; ++d) {
        const T* xd = x + d * stride;  // (w)
        for_each_column_vector<T>(w, [&](int64_t j, V<T> mask, auto tail) {
            constexpr bool Tail = decltype(tail)::value;
            const V<T> v = Y::max(load_columns<T, Tail>(m + j, mask, ninf), load_columns<T, Tail>(xd + j, mask, ninf));
            store_columns<T, Tail>(m + j, mask, v);
        });
    }
}

// e[d * stride + j] = exp(x[d * stride + j] - x0[j]) (e may be null or x; x0 null: 0) and
// s[j] = its sum over d (s may be null)
template <typename T>
void col_exp_sum_avx2(T* s, T* e, const T* x, const T* x0, int64_t rows, int64_t stride, int64_t w) {
    using Y = Ymm<T>;
    constexpr int W = Y::width;
    const bool done = with_column_registers<T>(w, [&](auto nv, auto tail, V<T> mask) {
        constexpr int NV = decltype(nv)::value;
        constexpr bool Tail = decltype(tail)::value;
        V<T> shift[NV], acc[NV];
#pragma GCC unroll 4
        for (int u = 0; u < NV; ++u) {
            const bool part = Tail && u == NV - 1;
            shift[u] = !x0 ? Y::zero() : part ? load_columns<T, true>(x0 + u * W, mask, Y::zero()) : Y::loadu(x0 + u * W);
            acc[u] = Y::zero();
        }
        for (int64_t d = 0; d < rows; ++d) {
            const T* xd = x + d * stride;  // (w)
            T* ed = e ? e + d * stride : nullptr;
#pragma GCC unroll 4
            for (int u = 0; u < NV - 1; ++u) {
                const V<T> v = vexp<T>(Y::sub(Y::loadu(xd + u * W), shift[u]));
                if (ed) Y::storeu(ed + u * W, v);
                acc[u] = Y::add(acc[u], v);
            }
            V<T> v = vexp<T>(Y::sub(load_columns<T, Tail>(xd + (NV - 1) * W, mask, Y::zero()), shift[NV - 1]));
            if constexpr (Tail) v = Y::select(mask, v, Y::zero());
            if (ed) store_columns<T, Tail>(ed + (NV - 1) * W, mask, v);
            acc[NV - 1] = Y::add(acc[NV - 1], v);
        }
        if (s) {
#pragma GCC unroll 4
            for (int u = 0; u < NV - 1; ++u) Y::storeu(s + u * W, acc[u]);
            store_columns<T, Tail>(s + (NV - 1) * W, mask, acc[NV - 1]);
        }
    });
    if (done) return;
    if (s) {
        for_each_column_vector<T>(w, [&](int64_t j, V<T> mask, auto tail) {
            store_columns<T, decltype(tail)::value>(s + j, mask, Y::zero());
        });
    }
    for (int64_t d = 0; d < rows; ++d) {
        const T* xd = x + d * stride;  // (w)
        T* ed = e ? e + d * stride : nullptr;
        for_each_column_vector<T>(w, [&](int64_t j, V<T> mask, auto tail) {
            constexpr bool Tail = decltype(tail)::value;
            const V<T> shift = x0 ? load_columns<T, Tail>(x0 + j, mask, Y::zero()) : Y::zero();
            V<T> v = vexp<T>(Y::sub(load_columns<T, Tail>(xd + j, mask, Y::zero()), shift));
            if constexpr (Tail) v = Y::select(mask, v, Y::zero());
            if (ed) store_columns<T, Tail>(ed + j, mask, v);
            if (s) store_columns<T, Tail>(s + j, mask, Y::add(load_columns<T, Tail>(s + j, mask, Y::zero()), v));
        });
    }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// The tables (declared in vec.h)

const VecOps<float> vec_ops_avx2_float{&max_avx2<float>,     &sum_avx2<float>,     &dot_avx2<float>,
                                       &exp_sum_avx2<float>, &col_max_avx2<float>, &col_exp_sum_avx2<float>};
const VecOps<double> vec_ops_avx2_double{&max_avx2<double>,     &sum_avx2<double>,     &dot_avx2<double>,
                                         &exp_sum_avx2<double>, &col_max_avx2<double>, &col_exp_sum_avx2<double>};

}  // namespace cpu
}  // namespace kg
