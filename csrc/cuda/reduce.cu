// reduce.cu: row reductions and scans over contiguous (M, R) arrays (see reduce.h).
//
//   out[m] = op_{r < R} in[m, R]
//
// Two shapes of launch, one reduction code:
//   - many rows (the common case: sums over a batch's features, max over classes): one warp per
//     row, each lane striding over r, then a shuffle tree;
//   - few long rows (R >= kLongRow and M < the number of warps a GPU keeps busy): one block per
//     row, warps reduce with shuffles, warp 0 reduces the per-warp results from shared memory.
// Accumulators: the compute type (float for float16; int for bool, since warp shuffles take no bool).
#include "cuda/reduce.h"

#include <cmath>
#include <cstdint>
#include <climits>
#include <type_traits>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
constexpr int64_t kLongRow = 8192;
constexpr int64_t kFewRows = 512;

template <typename T> struct AccOf { using type = compute_t<T>; };
template <> struct AccOf<bool> { using type = int; };
template <typename T> using acc_t = typename AccOf<T>::type;

// (std::numeric_limits is host-only under nvcc)
template <typename A>
__device__ inline A lowest() {
    if constexpr (std::is_floating_point<A>::value) return -A(INFINITY);
    if constexpr (std::is_same<A, int64_t>::value) return INT64_MIN;
    return A(INT_MIN);
}

template <typename A>
__device__ inline A highest() {
    if constexpr (std::is_floating_point<A>::value) return A(INFINITY);
    if constexpr (std::is_same<A, int64_t>::value) return INT64_MAX;
    return A(INT_MAX);
}

template <typename A>
__device__ inline A identity(ReduceOp op) {
    switch (op) {
        case ReduceOp::sum: case ReduceOp::any: return A(0);
        case ReduceOp::prod: case ReduceOp::all: return A(1);
        case ReduceOp::max: return lowest<A>();
        case ReduceOp::min: return highest<A>();
    }
    return A(0);
}

template <typename A>
__device__ inline bool is_nan(A v) {
    if constexpr (std::is_floating_point<A>::value) return v != v;
    return false;
}

// an int64 sum or product wraps around on overflow, as NumPy's does (computed unsigned: signed
// overflow is undefined behaviour)
template <typename A>
__device__ inline A wrapping_add(A a, A b) {
    if constexpr (std::is_integral<A>::value) {
        using U = typename std::make_unsigned<A>::type;
        return A(U(a) + U(b));
    }
    return a + b;
}

template <typename A>
__device__ inline A wrapping_mul(A a, A b) {
    if constexpr (std::is_integral<A>::value) {
        using U = typename std::make_unsigned<A>::type;
        return A(U(a) * U(b));
    }
    return a * b;
}

template <typename A>
__device__ inline A combine(ReduceOp op, A a, A b) {
    switch (op) {
        case ReduceOp::sum: return wrapping_add(a, b);
        case ReduceOp::prod: return wrapping_mul(a, b);
        case ReduceOp::max: return (is_nan(a) || a > b) ? a : b;  // NaN propagates
        case ReduceOp::min: return (is_nan(a) || a < b) ? a : b;
        case ReduceOp::all: return A(a != A(0) && b != A(0));
        case ReduceOp::any: return A(a != A(0) || b != A(0));
    }
    return a;
}

template <typename A>
__device__ inline A warp_reduce(ReduceOp op, A v) {
    for (int offset = kWarp / 2; offset > 0; offset /= 2) v = combine(op, v, __shfl_down_sync(kFullMask, v, offset));
    return v;
}

// One warp's part of a row: lanes stride over r from `first` by `step`. A floating-point sum is
// compensated (Kahan): each lane adds R / step terms one after the other, and a plain running float
// sum of n terms drifts like n * eps (1e6 float32 terms over 512 lanes: 1.4e-5, where NumPy's
// pairwise sum stays within a few eps). The compensation is reset when it is NaN, so that an
// infinite term or an overflow gives the plain sum's inf instead of inf - inf = NaN.
template <typename T>
__device__ inline acc_t<T> partial(ReduceOp op, const T* row, int64_t R, int64_t first, int64_t step) {
    using A = acc_t<T>;
    if constexpr (std::is_floating_point<A>::value) {
        if (op == ReduceOp::sum) {
            A s = A(0), c = A(0);
            for (int64_t r = first; r < R; r += step) {
                const A y = static_cast<A>(load(row[r])) - c;
                const A t = s + y;
                c = (t - s) - y;
                if (is_nan(c)) c = A(0);
                s = t;
            }
            return s;
        }
    }
    A v = identity<A>(op);
    for (int64_t r = first; r < R; r += step) v = combine(op, v, static_cast<acc_t<T>>(load(row[r])));
    return v;
}

// out (M) <- in (M, R): warp w of the grid reduces rows w, w + warps, ...
template <typename T>
__global__ void reduce_warp_per_row_kernel(T* out, const T* in, int64_t M, int64_t R, ReduceOp op) {
    const int lane = threadIdx.x % kWarp;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
    for (int64_t m = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; m < M; m += warps) {
        const acc_t<T> v = warp_reduce(op, partial(op, in + m * R, R, lane, kWarp));
        if (lane == 0) out[m] = convert<T>(v);
    }
}

// out (M) <- in (M, R): block b reduces rows b, b + gridDim.x, ...
template <typename T>
__global__ void reduce_block_per_row_kernel(T* out, const T* in, int64_t M, int64_t R, ReduceOp op) {
    __shared__ acc_t<T> warp_results[kWarp];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nwarps = blockDim.x / kWarp;
    for (int64_t m = blockIdx.x; m < M; m += gridDim.x) {
        acc_t<T> v = warp_reduce(op, partial(op, in + m * R, R, threadIdx.x, blockDim.x));
        if (lane == 0) warp_results[warp] = v;
        __syncthreads();
        if (warp == 0) {
            v = warp_reduce(op, lane < nwarps ? warp_results[lane] : identity<acc_t<T>>(op));
            if (lane == 0) out[m] = convert<T>(v);
        }
        __syncthreads();  // warp_results is rewritten for the next row
    }
}

// ---------------------------------------------------------------------------------------------
// argmax / argmin: (value, index) pairs; index -1 marks a lane that saw nothing

template <typename A>
__device__ inline bool arg_better(bool is_max, A a, int64_t ia, A b, int64_t ib) {
    if (ib < 0) return ia >= 0;
    if (ia < 0) return false;
    if (is_nan(a)) return !is_nan(b) || ia < ib;  // the first NaN wins
    if (is_nan(b)) return false;
    if (a == b) return ia < ib;
    return is_max ? a > b : a < b;
}

template <typename T>
__global__ void arg_reduce_kernel(int64_t* out, const T* in, int64_t M, int64_t R, bool is_max) {
    using A = compute_t<T>;  // bool compares as bool; warps shuffle it as int
    using S = typename std::conditional<std::is_same<A, bool>::value, int, A>::type;
    const int lane = threadIdx.x % kWarp;
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarp);
    for (int64_t m = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp; m < M; m += warps) {
        const T* row = in + m * R;
        S v = S(0);
        int64_t iv = -1;
        for (int64_t r = lane; r < R; r += kWarp) {
            const S x = static_cast<S>(load(row[r]));
            if (arg_better(is_max, x, r, v, iv)) v = x, iv = r;
        }
        for (int offset = kWarp / 2; offset > 0; offset /= 2) {
            const S w = __shfl_down_sync(kFullMask, v, offset);
            const int64_t iw = __shfl_down_sync(kFullMask, iv, offset);
            if (arg_better(is_max, w, iw, v, iv)) v = w, iv = iw;
        }
        if (lane == 0) out[m] = iv;
    }
}

// ---------------------------------------------------------------------------------------------
// Scans: one thread per row, sequential along r (rows are short where the library scans)

template <typename T>
__global__ void scan_kernel(T* out, const T* in, int64_t M, int64_t R, ScanOp op) {
    using A = acc_t<T>;
    KG_GRID_STRIDE_LOOP(m, M) {
        A acc = op == ScanOp::cumsum ? A(0) : A(1);
        for (int64_t r = 0; r < R; ++r) {
            const A x = static_cast<A>(load(in[m * R + r]));
            acc = op == ScanOp::cumsum ? wrapping_add(acc, x) : wrapping_mul(acc, x);
            out[m * R + r] = convert<T>(acc);
        }
    }
}

unsigned warp_grid(int64_t rows) { return grid_for(rows * kWarp); }

}  // namespace

void reduce_rows(ReduceOp op, DType dtype, void* out, const void* in, int64_t M, int64_t R) {
    if (M == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        T* o = static_cast<T*>(out);
        const T* x = static_cast<const T*>(in);
        if (R >= kLongRow && M < kFewRows)
            launch(reduce_block_per_row_kernel<T>, static_cast<unsigned>(M), 512, 0, nullptr, o, x, M, R, op);
        else
            launch(reduce_warp_per_row_kernel<T>, warp_grid(M), kBlock, 0, nullptr, o, x, M, R, op);
    });
}

void arg_reduce_rows(bool is_max, DType dtype, int64_t* out, const void* in, int64_t M, int64_t R) {
    if (M == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(arg_reduce_kernel<T>, warp_grid(M), kBlock, 0, nullptr, out, static_cast<const T*>(in), M, R, is_max);
    });
}

void scan_rows(ScanOp op, DType dtype, void* out, const void* in, int64_t M, int64_t R) {
    if (M == 0 || R == 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(scan_kernel<T>, grid_for(M), kBlock, 0, nullptr, static_cast<T*>(out), static_cast<const T*>(in), M, R,
               op);
    });
}

}  // namespace cuda
}  // namespace kg
