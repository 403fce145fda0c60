// emu/device.h: what a kernel body sees under the emulator, with CUDA's names: the qualifiers,
// threadIdx/blockIdx/blockDim/gridDim, __shared__, __syncthreads, the warp collectives (shuffles,
// votes, __syncwarp, reductions), atomics and the math intrinsics.
//
// How it maps (see emu/scheduler.cpp for the scheduler itself):
//   - every CUDA thread of a block is a fiber; all fibers of a block run on one OS thread, so
//     `__shared__` is `static thread_local` and shared by exactly the threads of one block;
//   - threadIdx & co. are read from per-OS-thread variables that the scheduler sets before it
//     resumes a fiber;
//   - __syncthreads() and the warp collectives are macros that pass their call site (file, line)
//     to the scheduler, which suspends the fiber until the barrier or the warp's group (the lanes
//     named in the mask) is complete, and reports misuse naming the sites involved;
//   - atomics are real atomic operations (GCC __atomic builtins), correct whatever runs the blocks;
//   - fast-math intrinsics (__expf, __fdividef, ...) are the exact functions: compare results with
//     GPU-like tolerances.
#pragma once

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cuda/emu/types.h"

// ---------------------------------------------------------------------------------------------
// Qualifiers

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local
#define __constant__

// ---------------------------------------------------------------------------------------------
// Built-in variables

namespace kg {
namespace emu {

struct Builtins {
    uint3 thread_idx, block_idx, block_dim, grid_dim;
};
extern thread_local Builtins builtins;

inline uint3 thread_idx() { return builtins.thread_idx; }
inline uint3 block_idx() { return builtins.block_idx; }
inline dim3 block_dim() { return dim3(builtins.block_dim); }
inline dim3 grid_dim() { return dim3(builtins.grid_dim); }

}  // namespace emu
}  // namespace kg

#define threadIdx (::kg::emu::thread_idx())
#define blockIdx (::kg::emu::block_idx())
#define blockDim (::kg::emu::block_dim())
#define gridDim (::kg::emu::grid_dim())
constexpr int warpSize = 32;

// ---------------------------------------------------------------------------------------------
// Barriers and warp collectives: each call names its site so that misuse can be reported

namespace kg {
namespace emu {

enum class Collective : uint8_t {
    syncwarp, shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all, reduce_add, reduce_min, reduce_max
};

// Block barrier; returns the number of threads whose predicate was non-zero.
int syncthreads(const char* file, int line, int predicate);
// One lane's part in a warp collective; `value` holds the lane's operand (the bits of a shuffled
// value, a predicate, or a sign-extended integer), `arg` the source lane, delta or lane mask.
uint64_t warp_collective(Collective op, const char* file, int line, unsigned mask, uint64_t value,
                         int arg, int width);
unsigned activemask();

template <typename T>
T shuffle(Collective op, const char* file, int line, unsigned mask, T var, int arg, int width = 32) {
    static_assert(std::is_arithmetic<T>::value && sizeof(T) <= 8,
                  "warp shuffles take int, unsigned, long long, float or double values");
    uint64_t bits = 0;
    std::memcpy(&bits, &var, sizeof(T));
    bits = warp_collective(op, file, line, mask, bits, arg, width);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

template <typename T>
T reduce(Collective op, const char* file, int line, unsigned mask, T value) {
    static_assert(std::is_same<T, int>::value || std::is_same<T, unsigned>::value,
                  "__reduce_*_sync take int or unsigned values");
    const int64_t wide = value;  // sign- or zero-extended: min/max are exact, add wraps mod 2^32
    return static_cast<T>(warp_collective(op, file, line, mask, static_cast<uint64_t>(wide), 0, 32));
}

inline void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu) {
    warp_collective(Collective::syncwarp, file, line, mask, 0, 0, 32);
}

}  // namespace emu
}  // namespace kg

#define __syncthreads() ((void)::kg::emu::syncthreads(__FILE__, __LINE__, 0))
#define __syncthreads_count(pred) (::kg::emu::syncthreads(__FILE__, __LINE__, (pred) ? 1 : 0))
#define __syncthreads_and(pred) \
    (::kg::emu::syncthreads(__FILE__, __LINE__, (pred) ? 1 : 0) == (int)(blockDim.x * blockDim.y * blockDim.z))
#define __syncthreads_or(pred) (::kg::emu::syncthreads(__FILE__, __LINE__, (pred) ? 1 : 0) != 0)
#define __syncwarp(...) ::kg::emu::syncwarp(__FILE__, __LINE__, ##__VA_ARGS__)
#define __activemask() (::kg::emu::activemask())

#define __shfl_sync(mask, ...) \
    ::kg::emu::shuffle(::kg::emu::Collective::shfl, __FILE__, __LINE__, mask, __VA_ARGS__)
#define __shfl_up_sync(mask, ...) \
    ::kg::emu::shuffle(::kg::emu::Collective::shfl_up, __FILE__, __LINE__, mask, __VA_ARGS__)
#define __shfl_down_sync(mask, ...) \
    ::kg::emu::shuffle(::kg::emu::Collective::shfl_down, __FILE__, __LINE__, mask, __VA_ARGS__)
#define __shfl_xor_sync(mask, ...) \
    ::kg::emu::shuffle(::kg::emu::Collective::shfl_xor, __FILE__, __LINE__, mask, __VA_ARGS__)

#define __ballot_sync(mask, pred)                                                                \
    static_cast<unsigned>(::kg::emu::warp_collective(::kg::emu::Collective::ballot, __FILE__,    \
                                                     __LINE__, mask, (pred) ? 1 : 0, 0, 32))
#define __any_sync(mask, pred)                                                                   \
    static_cast<int>(::kg::emu::warp_collective(::kg::emu::Collective::any, __FILE__, __LINE__, \
                                                mask, (pred) ? 1 : 0, 0, 32))
#define __all_sync(mask, pred)                                                                   \
    static_cast<int>(::kg::emu::warp_collective(::kg::emu::Collective::all, __FILE__, __LINE__, \
                                                mask, (pred) ? 1 : 0, 0, 32))

#define __reduce_add_sync(mask, value) \
    ::kg::emu::reduce(::kg::emu::Collective::reduce_add, __FILE__, __LINE__, mask, value)
#define __reduce_min_sync(mask, value) \
    ::kg::emu::reduce(::kg::emu::Collective::reduce_min, __FILE__, __LINE__, mask, value)
#define __reduce_max_sync(mask, value) \
    ::kg::emu::reduce(::kg::emu::Collective::reduce_max, __FILE__, __LINE__, mask, value)

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---------------------------------------------------------------------------------------------
// Atomics: relaxed read-modify-write, as on the GPU; float and double through compare-and-swap

namespace kg {
namespace emu {

template <typename T, typename F>
T atomic_update(T* address, F update) {
    T old;
    __atomic_load(address, &old, __ATOMIC_RELAXED);
    T desired = update(old);
    while (!__atomic_compare_exchange(address, &old, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        desired = update(old);
    return old;
}

}  // namespace emu
}  // namespace kg

#define KG_EMU_INTEGER_ATOMICS(T)                                                                     \
    inline T atomicAdd(T* a, T v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }              \
    inline T atomicSub(T* a, T v) { return __atomic_fetch_sub(a, v, __ATOMIC_RELAXED); }              \
    inline T atomicAnd(T* a, T v) { return __atomic_fetch_and(a, v, __ATOMIC_RELAXED); }              \
    inline T atomicOr(T* a, T v) { return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); }                \
    inline T atomicXor(T* a, T v) { return __atomic_fetch_xor(a, v, __ATOMIC_RELAXED); }              \
    inline T atomicExch(T* a, T v) { return __atomic_exchange_n(a, v, __ATOMIC_RELAXED); }            \
    inline T atomicMax(T* a, T v) {                                                                   \
        return ::kg::emu::atomic_update(a, [v](T old) { return old < v ? v : old; });                 \
    }                                                                                                 \
    inline T atomicMin(T* a, T v) {                                                                   \
        return ::kg::emu::atomic_update(a, [v](T old) { return v < old ? v : old; });                 \
    }                                                                                                 \
    inline T atomicCAS(T* a, T compare, T v) {                                                        \
        __atomic_compare_exchange_n(a, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);       \
        return compare;                                                                               \
    }

KG_EMU_INTEGER_ATOMICS(int)
KG_EMU_INTEGER_ATOMICS(unsigned int)
KG_EMU_INTEGER_ATOMICS(unsigned long long)
KG_EMU_INTEGER_ATOMICS(long long)
#undef KG_EMU_INTEGER_ATOMICS

inline float atomicAdd(float* a, float v) {
    return ::kg::emu::atomic_update(a, [v](float old) { return old + v; });
}
inline double atomicAdd(double* a, double v) {
    return ::kg::emu::atomic_update(a, [v](double old) { return old + v; });
}
inline float atomicExch(float* a, float v) {
    float old;
    __atomic_exchange(a, &v, &old, __ATOMIC_RELAXED);
    return old;
}

// ---------------------------------------------------------------------------------------------
// Math: the C library's functions are CUDA's; the intrinsics map to exact versions

inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { *s = sinf(x), *c = cosf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x != x ? 0.0f : fminf(fmaxf(x, 0.0f), 1.0f); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
// sin(pi x), cos(pi x): CUDA's exact-reduction trig (glibc has none before 2.41). x mod 2 is exact.
inline double sinpi(double x) {
    const double t = x - 2.0 * nearbyint(0.5 * x);  // [-1, 1]
    return t == 1.0 || t == -1.0 || t == 0.0 ? copysign(0.0, x) : sin(3.14159265358979323846 * t);
}
inline double cospi(double x) {
    const double t = fabs(x - 2.0 * nearbyint(0.5 * x));  // [0, 1]
    return t == 0.5 ? 0.0 : cos(3.14159265358979323846 * t);
}
inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
inline double normcdf(double x) { return 0.5 * erfc(-x * 0.70710678118654752); }

// Conversions: _rn rounds to nearest even, _rz toward zero, _rd down, _ru up
inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(truncf(x)); }
inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(nearbyintf(x)); }
inline long long __float2ll_rn(float x) { return static_cast<long long>(nearbyintf(x)); }
inline int __double2int_rn(double x) { return static_cast<int>(nearbyint(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }
inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
inline float __double2float_rn(double x) { return static_cast<float>(x); }

// Reinterpretations
#define KG_EMU_BIT_CAST(name, From, To) \
    inline To name(From x) { To y; std::memcpy(&y, &x, sizeof(y)); return y; }
KG_EMU_BIT_CAST(__float_as_int, float, int)
KG_EMU_BIT_CAST(__float_as_uint, float, unsigned)
KG_EMU_BIT_CAST(__int_as_float, int, float)
KG_EMU_BIT_CAST(__uint_as_float, unsigned, float)
KG_EMU_BIT_CAST(__double_as_longlong, double, long long)
KG_EMU_BIT_CAST(__longlong_as_double, long long, double)
#undef KG_EMU_BIT_CAST

// Integer intrinsics
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
inline int __mul24(int a, int b) { return a * b; }
inline unsigned __umul24(unsigned a, unsigned b) { return a * b; }
inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) {
    return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}

template <typename T>
inline T __ldg(const T* p) { return *p; }

// min/max as CUDA declares them for device code
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline unsigned min(int a, unsigned b) { return min(static_cast<unsigned>(a), b); }
inline unsigned max(int a, unsigned b) { return max(static_cast<unsigned>(a), b); }
inline unsigned min(unsigned a, int b) { return min(a, static_cast<unsigned>(b)); }
inline unsigned max(unsigned a, int b) { return max(a, static_cast<unsigned>(b)); }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// ---------------------------------------------------------------------------------------------
// Dynamic shared memory: the launch's buffer, exactly the bytes the launch asked for and refilled
// with 0xFF (NaN) before every block

namespace kg {
namespace emu {
void* dynamic_smem();
}  // namespace emu
}  // namespace kg
