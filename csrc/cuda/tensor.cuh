// tensor.cuh: what the device-array kernels share (elementwise, reduce, index, random, gemm):
//   - DType: the element types of kernelgrad tensors, with the same codes in Python
//     (backend/cuda.py, _DTYPE_CODES);
//   - Half: float16 storage (IEEE binary16 bits); arithmetic happens in float, as in PyTorch;
//   - Layout<N>: the shape of an elementwise loop and the element strides of its N operands, with
//     the per-element offsets computed by fully unrolled loops (constant indices keep every
//     array in registers: the strict nvcc build fails on local-memory use);
//   - KG_DISPATCH_DTYPE: run a generic lambda with the C++ type of a DType.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/kg_cuda.cuh"

// Full unrolling of the fixed-trip loops over dims and operands (their arrays then stay in registers)
#if defined(__CUDACC__)
#define KG_UNROLL _Pragma("unroll")
#else
#define KG_UNROLL _Pragma("GCC unroll 16")
#endif

namespace kg {
namespace cuda {

enum class DType : int { Bool = 0, Int64 = 1, Float16 = 2, Float32 = 3, Float64 = 4 };

constexpr int kMaxDims = 8;      // dims of an elementwise loop after coalescing
constexpr int kBlock = 256;      // threads per block of the elementwise kernels
constexpr int kMaxGrid = 65535;  // grid-stride loops cover the rest

inline size_t dtype_size(DType t) {
    switch (t) {
        case DType::Bool: return 1;
        case DType::Int64: return 8;
        case DType::Float16: return 2;
        case DType::Float32: return 4;
        case DType::Float64: return 8;
    }
    throw std::invalid_argument("unknown dtype code " + std::to_string(static_cast<int>(t)));
}

// ---------------------------------------------------------------------------------------------
// float16 storage: conversions by integer arithmetic, so the nvcc and emulator builds agree bit for
// bit (round to nearest even; overflow to inf; NaN stays NaN).

struct Half {
    uint16_t bits;
};

__host__ __device__ inline float half_to_float(Half h) {
    const uint32_t sign = (h.bits & 0x8000u) << 16, exp = (h.bits >> 10) & 0x1fu, man = h.bits & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1fu) {
        bits = sign | 0x7f800000u | (man << 13);  // inf or NaN
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);  // normal: rebias 15 -> 127
    } else if (man == 0) {
        bits = sign;  // zero
    } else {  // subnormal: man * 2^-24, exact in float
        float f = static_cast<float>(man) * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

__host__ __device__ inline Half float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u)  // inf, or NaN (kept quiet)
        return Half{static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u))};
    if (abs >= 0x477ff000u) return Half{static_cast<uint16_t>(sign | 0x7c00u)};  // rounds past 65504
    if (abs < 0x38800000u) {  // below 2^-14: subnormal half, rounded to a multiple of 2^-24
        if (abs < 0x33000000u) return Half{sign};  // below half the smallest subnormal
        const uint32_t shift = 126u - (abs >> 23), man = (abs & 0x7fffffu) | 0x800000u;
        uint32_t h = man >> shift;
        const uint32_t rest = man & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
        if (rest > halfway || (rest == halfway && (h & 1u))) ++h;
        return Half{static_cast<uint16_t>(sign | h)};
    }
    uint32_t h = ((abs >> 23) - 112u) << 10 | ((abs >> 13) & 0x3ffu);
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
    return Half{static_cast<uint16_t>(sign | h)};
}

// The type arithmetic happens in: float for Half, the type itself otherwise.
template <typename T> struct ComputeOf { using type = T; };
template <> struct ComputeOf<Half> { using type = float; };
template <typename T> using compute_t = typename ComputeOf<T>::type;

template <typename T>
__host__ __device__ inline compute_t<T> load(const T& v) { return v; }
template <>
__host__ __device__ inline float load<Half>(const Half& v) { return half_to_float(v); }

// Conversion between any two element types with NumPy's rules: to bool is "!= 0" (NaN is true),
// a float NaN or out-of-range value to int64 is INT64_MIN (what x86 gives NumPy).
template <typename To, typename From>
__host__ __device__ inline To convert(From v) {
    if constexpr (std::is_same<To, From>::value) {
        return v;
    } else if constexpr (std::is_same<From, Half>::value) {
        return convert<To>(half_to_float(v));
    } else if constexpr (std::is_same<To, Half>::value) {
        return float_to_half(static_cast<float>(v));
    } else if constexpr (std::is_same<To, bool>::value) {
        return v != From(0);
    } else if constexpr (std::is_same<To, int64_t>::value && std::is_floating_point<From>::value) {
        return (v >= From(-9.2233720368547758e18) && v < From(9.2233720368547758e18))
                   ? static_cast<int64_t>(v) : INT64_MIN;
    } else {
        return static_cast<To>(v);
    }
}

template <typename T>
__host__ __device__ inline T store(compute_t<T> v) { return convert<T>(v); }

// ---------------------------------------------------------------------------------------------
// Layout<N>: an n-d loop over `numel` elements (size[0] outermost) and the strides, in elements,
// of N operands. offsets(i) gives each operand's element offset of the loop's i-th element.

template <int N>
struct Layout {
    int ndim;
    int64_t numel;
    int64_t size[kMaxDims];
    int64_t stride[N][kMaxDims];

    __host__ __device__ void offsets(int64_t i, int64_t (&off)[N]) const {
KG_UNROLL
        for (int k = 0; k < N; ++k) off[k] = 0;
KG_UNROLL
        for (int d = kMaxDims - 1; d >= 0; --d) {
            if (d < ndim) {
                const int64_t c = i % size[d];
                i /= size[d];
KG_UNROLL
                for (int k = 0; k < N; ++k) off[k] += c * stride[k][d];
            }
        }
    }
};

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int block = kBlock) {
    const int64_t blocks = (n + block - 1) / block;
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxGrid ? kMaxGrid : blocks));
}

#define KG_GRID_STRIDE_LOOP(i, n)                                                              \
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);     \
         i += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Run `body` (a generic lambda taking a value of the element type, e.g. `[&](auto tag) { using T =
// decltype(tag); ... }`) with the C++ type of `dtype`.
template <typename F>
void dispatch_dtype(DType dtype, F&& body) {
    switch (dtype) {
        case DType::Bool: body(bool{}); return;
        case DType::Int64: body(int64_t{}); return;
        case DType::Float16: body(Half{}); return;
        case DType::Float32: body(float{}); return;
        case DType::Float64: body(double{}); return;
    }
    throw std::invalid_argument("unknown dtype code " + std::to_string(static_cast<int>(dtype)));
}

}  // namespace cuda
}  // namespace kg
