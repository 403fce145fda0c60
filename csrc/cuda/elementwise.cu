// elementwise.cu: n-d strided elementwise kernels (see elementwise.h). One grid-stride kernel per
// operand count; the op is a run-time code, the same for every thread (no divergence), and the
// element type a template parameter. Half values are computed in float.
//
//   out[off_0(i)] = f(in_1[off_1(i)], ..., in_k[off_k(i)])    for i in [0, numel)
//
// with off_j(i) the Layout's offsets of the i-th element of the loop (size[0] outermost).
#include "cuda/elementwise.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// sin and cos. CUDA's sin/cos reduce huge arguments (Payne-Hanek) in a local-memory array, which
// the strict build forbids; instead x / pi mod 2 is formed here and sinpi/cospi, whose own
// reduction is exact, finish. 1/pi is split into four doubles (212 bits); x times each is split
// exactly into two doubles by fma, and each product is reduced mod 2 exactly (a double's value mod
// 2 is exact), so the only errors are the final sum's: ~2^-53 of a turn, for every float and for
// doubles up to ~2^150 (larger doubles would need more terms of 1/pi).

__device__ inline double mod2(double v) { return v - 2.0 * rint(0.5 * v); }  // exact, in [-1, 1]

__device__ inline double reduced_turns(double x) {  // x / pi mod 2
    constexpr double kInvPi0 = 0.3183098861837907, kInvPi1 = -1.9678676675182486e-17,
                     kInvPi2 = -1.0721436282893004e-33, kInvPi3 = 8.053563926594112e-50;
    const double terms[4] = {kInvPi0, kInvPi1, kInvPi2, kInvPi3};
    double sum = 0.0, carry = 0.0;  // a compensated (TwoSum) sum of the exact pieces
    KG_UNROLL
    for (int j = 0; j < 8; ++j) {
        const double p = x * terms[j / 2];
        const double piece = mod2(j % 2 == 0 ? p : fma(x, terms[j / 2], -p));
        const double t = sum + piece, back = t - sum;
        carry += (sum - (t - back)) + (piece - back);
        sum = mod2(t);
    }
    return sum + carry;
}

template <typename C>
__device__ inline C sine(C x) {
    if (!isfinite(x)) return x - x;  // NaN, and NaN for +-inf
    return C(sinpi(reduced_turns(static_cast<double>(x))));
}

template <typename C>
__device__ inline C cosine(C x) {
    if (!isfinite(x)) return x - x;
    return C(cospi(reduced_turns(static_cast<double>(x))));
}

// ---------------------------------------------------------------------------------------------
// Scalar functions, C = compute type (bool, int64_t, float, double)

template <typename C>
__device__ inline C unary_value(UnaryOp op, C x) {
    if constexpr (std::is_floating_point<C>::value) {
        switch (op) {
            case UnaryOp::negative: return -x;
            case UnaryOp::abs: return fabs(x);
            case UnaryOp::sign: return x > C(0) ? C(1) : (x < C(0) ? C(-1) : x);  // 0 -> 0, NaN -> NaN
            case UnaryOp::exp: return exp(x);
            case UnaryOp::log: return log(x);
            case UnaryOp::log1p: return log1p(x);
            case UnaryOp::sqrt: return sqrt(x);
            case UnaryOp::rsqrt: return C(1) / sqrt(x);
            case UnaryOp::sin: return sine(x);
            case UnaryOp::cos: return cosine(x);
            case UnaryOp::tanh: return tanh(x);
            case UnaryOp::sigmoid: {  // 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) for x < 0
                const C e = exp(-fabs(x));
                return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
            }
            case UnaryOp::erf: return erf(x);
            case UnaryOp::erfc: return erfc(x);
        }
        return x;
    } else if constexpr (std::is_same<C, bool>::value) {
        return op == UnaryOp::negative ? !x : x;  // abs and sign of bool are the identity
    } else {  // int64: -INT64_MIN wraps to itself, as in NumPy (computed unsigned: no overflow)
        using U = typename std::make_unsigned<C>::type;
        switch (op) {
            case UnaryOp::negative: return C(U(0) - U(x));
            case UnaryOp::abs: return x < 0 ? C(U(0) - U(x)) : x;
            case UnaryOp::sign: return C((x > 0) - (x < 0));
            default: return x;  // float ops: the binding converts int64 to float first
        }
    }
}

template <typename C>
__device__ inline bool predicate_value(PredicateOp op, C x) {
    switch (op) {
        case PredicateOp::isnan:
            if constexpr (std::is_floating_point<C>::value) return x != x;
            return false;
        case PredicateOp::isfinite:
            if constexpr (std::is_floating_point<C>::value) return isfinite(x);
            return true;
        case PredicateOp::logical_not: return !(x != C(0));
    }
    return false;
}

// NumPy's floor division and remainder (npy_divmod): the remainder takes the divisor's sign, the
// quotient is exact where a - remainder is, and division by zero gives NumPy's inf/NaN.
template <typename C>
__device__ inline void float_divmod(C a, C b, C* quotient, C* remainder) {
    C mod = fmod(a, b);
    if (b == C(0)) {
        *remainder = mod;
        *quotient = a / b;
        return;
    }
    C div = (a - mod) / b;
    if (mod != C(0)) {
        if ((b < C(0)) != (mod < C(0))) {
            mod += b;
            div -= C(1);
        }
    } else {
        mod = copysign(C(0), b);
    }
    C floordiv;
    if (div != C(0)) {
        floordiv = floor(div);
        if (div - floordiv > C(0.5)) floordiv += C(1);
    } else {
        floordiv = copysign(C(0), a / b);
    }
    *quotient = floordiv;
    *remainder = mod;
}

// Integer power by squaring, wrapping around on overflow as NumPy's does (the products are taken
// unsigned: signed overflow is undefined behaviour).
template <typename C>
__device__ inline C int_power(C base, C exponent) {
    using U = typename std::make_unsigned<C>::type;
    if (exponent < 0) return base == 1 ? C(1) : (base == -1 ? (exponent % 2 ? C(-1) : C(1)) : C(0));
    U result = 1, b = U(base);
    while (exponent > 0) {
        if (exponent & 1) result *= b;
        b *= b;
        exponent >>= 1;
    }
    return C(result);
}

template <typename C>
__device__ inline C binary_value(BinaryOp op, C a, C b) {
    if constexpr (std::is_floating_point<C>::value) {
        C q, r;
        switch (op) {
            case BinaryOp::add: return a + b;
            case BinaryOp::subtract: return a - b;
            case BinaryOp::multiply: return a * b;
            case BinaryOp::divide: return a / b;
            case BinaryOp::floor_divide: float_divmod(a, b, &q, &r); return q;
            case BinaryOp::trunc_divide: return trunc(a / b);
            case BinaryOp::remainder: float_divmod(a, b, &q, &r); return r;
            case BinaryOp::power: return pow(a, b);
            case BinaryOp::maximum: return (a != a || a > b) ? a : b;  // NaN propagates
            case BinaryOp::minimum: return (a != a || a < b) ? a : b;
            case BinaryOp::logical_and: return C(a != C(0) && b != C(0));
            case BinaryOp::logical_or: return C(a != C(0) || b != C(0));
        }
        return a;
    } else if constexpr (std::is_same<C, bool>::value) {
        switch (op) {  // NumPy's bool arithmetic: + and max are or, * and min are and
            case BinaryOp::add: case BinaryOp::maximum: case BinaryOp::logical_or: return a || b;
            case BinaryOp::multiply: case BinaryOp::minimum: case BinaryOp::logical_and: return a && b;
            case BinaryOp::subtract: return a != b;
            case BinaryOp::power: return a || !b;
            default: return b ? a : false;  // divisions: x / True = x, x / False = 0
        }
    } else {  // int64, as in NumPy: division by zero gives 0, overflow wraps around (two's complement)
        // computed unsigned where it can overflow: signed overflow is undefined behaviour, and
        // INT64_MIN / -1 (and INT64_MIN % -1) traps on x86, where the emulator runs
        using U = typename std::make_unsigned<C>::type;
        switch (op) {
            case BinaryOp::add: return C(U(a) + U(b));
            case BinaryOp::subtract: return C(U(a) - U(b));
            case BinaryOp::multiply: return C(U(a) * U(b));
            case BinaryOp::divide: case BinaryOp::trunc_divide:
                if (b == 0) return C(0);
                return b == -1 ? C(U(0) - U(a)) : a / b;
            case BinaryOp::floor_divide: {
                if (b == 0) return C(0);
                if (b == -1) return C(U(0) - U(a));
                const C q = a / b;
                return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
            }
            case BinaryOp::remainder: {
                if (b == 0 || b == -1) return C(0);
                const C r = a % b;
                return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
            }
            case BinaryOp::power: return int_power(a, b);
            case BinaryOp::maximum: return a > b ? a : b;
            case BinaryOp::minimum: return a < b ? a : b;
            case BinaryOp::logical_and: return C(a != 0 && b != 0);
            case BinaryOp::logical_or: return C(a != 0 || b != 0);
        }
        return a;
    }
}

template <typename C>
__device__ inline bool compare_value(CompareOp op, C a, C b) {
    switch (op) {
        case CompareOp::equal: return a == b;
        case CompareOp::not_equal: return a != b;
        case CompareOp::less: return a < b;
        case CompareOp::less_equal: return a <= b;
        case CompareOp::greater: return a > b;
        case CompareOp::greater_equal: return a >= b;
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// Kernels: out, then inputs, then the layout

template <typename To, typename Ti>
__global__ void copy_kernel(To* out, const Ti* in, Layout<2> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[2];
        l.offsets(i, off);
        out[off[0]] = convert<To>(in[off[1]]);
    }
}

template <typename T>
__global__ void unary_kernel(T* out, const T* in, UnaryOp op, Layout<2> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[2];
        l.offsets(i, off);
        out[off[0]] = store<T>(unary_value(op, load(in[off[1]])));
    }
}

template <typename T>
__global__ void predicate_kernel(bool* out, const T* in, PredicateOp op, Layout<2> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[2];
        l.offsets(i, off);
        out[off[0]] = predicate_value(op, load(in[off[1]]));
    }
}

template <typename T>
__global__ void binary_kernel(T* out, const T* a, const T* b, BinaryOp op, Layout<3> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[3];
        l.offsets(i, off);
        out[off[0]] = store<T>(binary_value(op, load(a[off[1]]), load(b[off[2]])));
    }
}

template <typename T>
__global__ void compare_kernel(bool* out, const T* a, const T* b, CompareOp op, Layout<3> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[3];
        l.offsets(i, off);
        out[off[0]] = compare_value(op, load(a[off[1]]), load(b[off[2]]));
    }
}

template <typename T>
__global__ void where_kernel(T* out, const bool* cond, const T* a, const T* b, Layout<4> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[4];
        l.offsets(i, off);
        out[off[0]] = cond[off[1]] ? a[off[2]] : b[off[3]];
    }
}

template <typename T>
__global__ void fill_kernel(T* out, T value, Layout<1> l) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[1];
        l.offsets(i, off);
        out[off[0]] = value;
    }
}

template <typename T>
__global__ void arange_kernel(T* out, int64_t n, double start, double step, int64_t istart, int64_t istep) {
    KG_GRID_STRIDE_LOOP(i, n) {
        if constexpr (std::is_same<T, int64_t>::value)
            out[i] = istart + i * istep;
        else
            out[i] = convert<T>(start + static_cast<double>(i) * step);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launchers

void copy(DType out_t, void* out, DType in_t, const void* in, const Layout<2>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(out_t, [&](auto out_tag) {
        using To = decltype(out_tag);
        dispatch_dtype(in_t, [&](auto in_tag) {
            using Ti = decltype(in_tag);
            launch(copy_kernel<To, Ti>, grid_for(l.numel), kBlock, 0, nullptr, static_cast<To*>(out),
                   static_cast<const Ti*>(in), l);
        });
    });
}

void unary(UnaryOp op, DType dtype, void* out, const void* in, const Layout<2>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(unary_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, static_cast<T*>(out),
               static_cast<const T*>(in), op, l);
    });
}

void predicate(PredicateOp op, DType dtype, bool* out, const void* in, const Layout<2>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(predicate_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, out, static_cast<const T*>(in), op, l);
    });
}

void binary(BinaryOp op, DType dtype, void* out, const void* a, const void* b, const Layout<3>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(binary_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, static_cast<T*>(out),
               static_cast<const T*>(a), static_cast<const T*>(b), op, l);
    });
}

void compare(CompareOp op, DType dtype, bool* out, const void* a, const void* b, const Layout<3>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(compare_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, out, static_cast<const T*>(a),
               static_cast<const T*>(b), op, l);
    });
}

void where(DType dtype, void* out, const bool* cond, const void* a, const void* b, const Layout<4>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(where_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, static_cast<T*>(out), cond,
               static_cast<const T*>(a), static_cast<const T*>(b), l);
    });
}

void fill(DType dtype, void* out, double value, int64_t ivalue, const Layout<1>& l) {
    if (l.numel == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        T v;
        if constexpr (std::is_same<T, int64_t>::value)
            v = ivalue;
        else
            v = convert<T>(value);
        launch(fill_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, static_cast<T*>(out), v, l);
    });
}

void arange(DType dtype, void* out, int64_t n, double start, double step, int64_t istart, int64_t istep) {
    if (n == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(arange_kernel<T>, grid_for(n), kBlock, 0, nullptr, static_cast<T*>(out), n, start, step, istart,
               istep);
    });
}

}  // namespace cuda
}  // namespace kg
