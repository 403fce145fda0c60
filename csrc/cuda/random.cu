// random.cu: random numbers from the Philox4x32-10 stream (see random.h for the counter layout).
//
// One kernel draws every distribution: thread j (grid-stride) computes Philox block j of the call
// and turns its four 32-bit words into K elements, j*K .. j*K+K-1, by a Draw (raw words, uniform,
// normal, integers). randperm sorts random 64-bit keys on the device with a bitonic network.
//
// The plain reference of all of it (NumPy, uint32 arithmetic) is in tests/test_cuda_random.py,
// which checks these kernels bit for bit against it (normals to rounding).
#include "cuda/random.h"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/allocator.h"
#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// Bits of a Philox block. k is a compile-time constant wherever these are called (unrolled loops),
// so the selects fold away and the block stays in registers.

__device__ inline uint32_t word(const uint4& x, int k) {
    return k == 0 ? x.x : (k == 1 ? x.y : (k == 2 ? x.z : x.w));
}

// k-th 64 bits: words 2k (high half) and 2k + 1
__device__ inline uint64_t bits64(const uint4& x, int k) {
    return static_cast<uint64_t>(word(x, 2 * k)) << 32 | word(x, 2 * k + 1);
}

// floor(a * b / 2^64)
__device__ inline uint64_t mul_hi64(uint64_t a, uint64_t b) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
}

// Uniform doubles from 32 or 53 bits: [0, 1) and (0, 1] (the latter feeds log). Exact in double.
__device__ inline double closed_open_32(uint32_t w) { return static_cast<double>(w) * 0x1p-32; }
__device__ inline double open_closed_32(uint32_t w) { return (static_cast<double>(w) + 1.0) * 0x1p-32; }
__device__ inline double closed_open_53(uint64_t b) { return static_cast<double>(b >> 11) * 0x1p-53; }
__device__ inline double open_closed_53(uint64_t b) { return (static_cast<double>(b >> 11) + 1.0) * 0x1p-53; }

// Box-Muller: u1 in (0, 1], u2 in [0, 1) give two independent standard normals
//   z0 = r cos(2 pi u2), z1 = r sin(2 pi u2),  r = sqrt(-2 log u1).
// In double for every dtype: one code path, float results correct to their last bit, and no
// float sinf/cosf (their huge-argument reduction lives in local memory, which the strict build
// forbids); sinpi/cospi reduce exactly. With 32-bit u1 the float tails reach |z| = 6.66.
__device__ inline void box_muller(double u1, double u2, double* z0, double* z1) {
    const double r = sqrt(-2.0 * log(u1));
    *z0 = r * cospi(2.0 * u2);
    *z1 = r * sinpi(2.0 * u2);
}

// ---------------------------------------------------------------------------------------------
// Draws: `value_type`, K (elements per Philox block) and operator()(block, v) filling v[0..K).

struct RawDraw {
    using value_type = uint32_t;
    static constexpr int K = 4;
    __device__ void operator()(const uint4& x, uint32_t (&v)[K]) const {
KG_UNROLL
        for (int k = 0; k < K; ++k) v[k] = word(x, k);
    }
};

// [0, 1) on a grid the type holds exactly, so rounding never reaches 1: float16 k * 2^-11
// (11 bits: a float16 in [0.5, 1) has 11 significant bits), float32 k * 2^-24, float64 k * 2^-53.
template <typename T> struct UniformDraw;

template <>
struct UniformDraw<Half> {
    using value_type = Half;
    static constexpr int K = 4;
    __device__ void operator()(const uint4& x, Half (&v)[K]) const {
KG_UNROLL
        for (int k = 0; k < K; ++k) v[k] = float_to_half(static_cast<float>(word(x, k) >> 21) * 0x1p-11f);
    }
};

template <>
struct UniformDraw<float> {
    using value_type = float;
    static constexpr int K = 4;
    __device__ void operator()(const uint4& x, float (&v)[K]) const {
KG_UNROLL
        for (int k = 0; k < K; ++k) v[k] = static_cast<float>(word(x, k) >> 8) * 0x1p-24f;
    }
};

template <>
struct UniformDraw<double> {
    using value_type = double;
    static constexpr int K = 2;
    __device__ void operator()(const uint4& x, double (&v)[K]) const {
KG_UNROLL
        for (int k = 0; k < K; ++k) v[k] = closed_open_53(bits64(x, k));
    }
};

// float16/float32: two Box-Muller pairs from the four words (u1 = word 2p, u2 = word 2p + 1);
// float64: one pair from two 53-bit uniforms.
template <typename T>
struct NormalDraw {
    using value_type = T;
    static constexpr int K = 4;
    __device__ void operator()(const uint4& x, T (&v)[K]) const {
KG_UNROLL
        for (int p = 0; p < 2; ++p) {
            double z0, z1;
            box_muller(open_closed_32(word(x, 2 * p)), closed_open_32(word(x, 2 * p + 1)), &z0, &z1);
            v[2 * p] = convert<T>(static_cast<float>(z0));
            v[2 * p + 1] = convert<T>(static_cast<float>(z1));
        }
    }
};

template <>
struct NormalDraw<double> {
    using value_type = double;
    static constexpr int K = 2;
    __device__ void operator()(const uint4& x, double (&v)[K]) const {
        box_muller(open_closed_53(bits64(x, 0)), closed_open_53(bits64(x, 1)), &v[0], &v[1]);
    }
};

// Integers in [low, low + range): Lemire's multiply-shift, low + floor(b * range / 2^bits), without
// rejection (a rejection loop would make the counters a call consumes depend on the values).
// Each of the `range` results is hit by floor or ceil of 2^bits / range of the 2^bits inputs, so
// its probability is off by a relative range / 2^bits at most: with 64 bits for range <= 2^32
// (bias <= 2^-32) and 128 bits above (bias < 2^-64), far below what any test of a sample can see.
constexpr uint64_t kSmallRange = uint64_t(1) << 32;

struct SmallIntegerDraw {
    using value_type = int64_t;
    static constexpr int K = 2;
    uint64_t low, range;  // low as two's-complement bits: low + offset wraps correctly
    __device__ void operator()(const uint4& x, int64_t (&v)[K]) const {
KG_UNROLL
        for (int k = 0; k < K; ++k) v[k] = static_cast<int64_t>(low + mul_hi64(bits64(x, k), range));
    }
};

struct LargeIntegerDraw {
    using value_type = int64_t;
    static constexpr int K = 1;
    uint64_t low, range;
    // floor((hi * 2^64 + lo) * range / 2^128) = hi64(hi * range + hi64(lo * range)); no overflow:
    // hi * range + (2^64 - 1) < 2^128
    __device__ void operator()(const uint4& x, int64_t (&v)[K]) const {
        const unsigned __int128 t =
            static_cast<unsigned __int128>(bits64(x, 0)) * range + mul_hi64(bits64(x, 1), range);
        v[0] = static_cast<int64_t>(low + static_cast<uint64_t>(t >> 64));
    }
};

// ---------------------------------------------------------------------------------------------
// The one drawing kernel: out (n) contiguous; block j of the stream gives elements j*K .. j*K+K-1.

template <typename Draw>
__global__ void draw_kernel(typename Draw::value_type* out, int64_t n, uint64_t seed, uint64_t offset, Draw draw) {
    using T = typename Draw::value_type;
    constexpr int K = Draw::K;
    const int64_t blocks = (n + K - 1) / K;
    KG_GRID_STRIDE_LOOP(j, blocks) {
        T v[K];
        draw(philox_block(seed, offset, static_cast<uint64_t>(j)), v);
KG_UNROLL
        for (int k = 0; k < K; ++k)
            if (j * K + k < n) out[j * K + k] = v[k];
    }
}

template <typename Draw>
uint64_t draw_n(typename Draw::value_type* out, int64_t n, uint64_t seed, uint64_t offset, Draw draw) {
    if (n < 0) throw std::invalid_argument("random: negative size " + std::to_string(n));
    const int64_t blocks = (n + Draw::K - 1) / Draw::K;
    if (blocks > 0) launch(draw_kernel<Draw>, grid_for(blocks), kBlock, 0, nullptr, out, n, seed, offset, draw);
    return static_cast<uint64_t>(blocks);
}

// Run body(T{}) with the C++ type of a floating dtype.
template <typename F>
uint64_t dispatch_float(DType dtype, const char* what, F&& body) {
    switch (dtype) {
        case DType::Float16: return body(Half{});
        case DType::Float32: return body(float{});
        case DType::Float64: return body(double{});
        default: break;
    }
    throw std::invalid_argument(std::string(what) + ": expected float16, float32 or float64, got dtype code " +
                                std::to_string(static_cast<int>(dtype)));
}

// ---------------------------------------------------------------------------------------------
// randperm: sort (key, index) pairs by random 64-bit key, the index breaking ties (so the order is
// total and the result always a permutation; a tie between two of n keys has probability about
// n^2 / 2^65, and then only biases the order of that pair). Bitonic sort over P = 2^m >= n pairs,
// the P - n padding pairs carrying the largest key and indices >= n so they sort last.
//
// The network: for k = 2, 4, ..., P and j = k/2, ..., 1, element i (with i & j == 0) and i + j are
// put in ascending order where i & k == 0, descending otherwise. Steps with j < kSortTile never
// cross a tile of kSortTile elements, so they run in shared memory, many steps per launch
// (bitonic_tile_kernel); only the steps with j >= kSortTile go through global memory, one launch
// each (bitonic_step_kernel). With m = log2(P / kSortTile): m (m + 1) / 2 step launches and m + 1
// tile launches (one for P <= kSortTile).

constexpr int kSortTile = 1024;  // elements per shared-memory tile: 16 KiB of keys and indices

__device__ inline void order_pair(uint64_t* key, int64_t* index, int64_t a, int64_t b, bool ascending) {
    const uint64_t ka = key[a], kb = key[b];
    const int64_t ia = index[a], ib = index[b];
    const bool a_after_b = ka > kb || (ka == kb && ia > ib);
    if (a_after_b == ascending) {
        key[a] = kb, key[b] = ka;
        index[a] = ib, index[b] = ia;
    }
}

// The t-th of the P / 2 pairs of step j: i with i & j == 0, partner i + j
__device__ inline int64_t pair_first(int64_t t, int64_t j) { return ((t & ~(j - 1)) << 1) | (t & (j - 1)); }

// key, index (P): random keys for i < n, the largest key for the padding; index = i
__global__ void randperm_keys_kernel(uint64_t* key, int64_t* index, int64_t n, int64_t P, uint64_t seed,
                                     uint64_t offset) {
    KG_GRID_STRIDE_LOOP(j, P / 2) {
        const uint4 x = philox_block(seed, offset, static_cast<uint64_t>(j));
KG_UNROLL
        for (int k = 0; k < 2; ++k) {
            const int64_t i = 2 * j + k;
            key[i] = i < n ? bits64(x, k) : ~uint64_t(0);
            index[i] = i;
        }
    }
}

// One step (k, j) of the network, j >= the tile: thread t orders pair t.
__global__ void bitonic_step_kernel(uint64_t* key, int64_t* index, int64_t P, int64_t k, int64_t j) {
    KG_GRID_STRIDE_LOOP(t, P / 2) {
        const int64_t i = pair_first(t, j);
        order_pair(key, index, i, i + j, (i & k) == 0);
    }
}

// Stages k = k_first, ..., k_last, each with its steps j = min(k, tile) / 2, ..., 1, on tiles of
// `tile` = min(P, kSortTile) elements in shared memory; tile / 2 threads, one pair each per step.
// The last launch (k_last == P) writes the sorted indices of the first n pairs to out instead of
// back to key/index.
__global__ void bitonic_tile_kernel(int64_t* out, uint64_t* key, int64_t* index, int64_t n, int64_t P,
                                    int64_t k_first, int64_t k_last) {
    __shared__ uint64_t tile_key[kSortTile];
    __shared__ int64_t tile_index[kSortTile];
    const int tile = static_cast<int>(P < kSortTile ? P : kSortTile);
    const int64_t stride = static_cast<int64_t>(gridDim.x) * tile;
    for (int64_t base = static_cast<int64_t>(blockIdx.x) * tile; base < P; base += stride) {
        for (int e = threadIdx.x; e < tile; e += blockDim.x) {
            tile_key[e] = key[base + e];
            tile_index[e] = index[base + e];
        }
        __syncthreads();
        for (int64_t k = k_first; k <= k_last; k *= 2) {
            for (int j = static_cast<int>(k < tile ? k : tile) / 2; j > 0; j /= 2) {
                const int i = static_cast<int>(pair_first(threadIdx.x, j));
                order_pair(tile_key, tile_index, i, i + j, ((base + i) & k) == 0);
                __syncthreads();
            }
        }
        for (int e = threadIdx.x; e < tile; e += blockDim.x) {
            if (k_last == P) {
                if (base + e < n) out[base + e] = tile_index[e];
            } else {
                key[base + e] = tile_key[e];
                index[base + e] = tile_index[e];
            }
        }
        __syncthreads();  // the tile is reloaded for the next base
    }
}

// Device scratch for one call, freed on every path out
class Scratch {
public:
    explicit Scratch(size_t nbytes) : ptr_(device_alloc(nbytes)) {}
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() { device_free(ptr_); }
    void* get() const { return ptr_; }

private:
    void* ptr_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launchers

uint64_t random_raw(uint32_t* out, int64_t n, uint64_t seed, uint64_t offset) {
    return draw_n(out, n, seed, offset, RawDraw{});
}

uint64_t random_uniform(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset) {
    return dispatch_float(dtype, "random_uniform", [&](auto tag) {
        using T = decltype(tag);
        return draw_n(static_cast<T*>(out), n, seed, offset, UniformDraw<T>{});
    });
}

uint64_t random_normal(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset) {
    return dispatch_float(dtype, "random_normal", [&](auto tag) {
        using T = decltype(tag);
        return draw_n(static_cast<T*>(out), n, seed, offset, NormalDraw<T>{});
    });
}

uint64_t random_integers(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
    if (low >= high)
        throw std::invalid_argument("random_integers: low (" + std::to_string(low) + ") must be less than high (" +
                                    std::to_string(high) + ")");
    const uint64_t ulow = static_cast<uint64_t>(low), range = static_cast<uint64_t>(high) - ulow;
    if (range <= kSmallRange) return draw_n(out, n, seed, offset, SmallIntegerDraw{ulow, range});
    return draw_n(out, n, seed, offset, LargeIntegerDraw{ulow, range});
}

uint64_t randperm(int64_t* out, int64_t n, uint64_t seed, uint64_t offset) {
    if (n < 0 || n > (int64_t(1) << 56))
        throw std::invalid_argument("randperm: size " + std::to_string(n) + " out of range [0, 2^56]");
    if (n == 0) return 0;
    int64_t P = 2;
    while (P < n) P *= 2;
    Scratch scratch(static_cast<size_t>(P) * (sizeof(uint64_t) + sizeof(int64_t)));
    uint64_t* key = static_cast<uint64_t*>(scratch.get());
    int64_t* index = reinterpret_cast<int64_t*>(key + P);

    launch(randperm_keys_kernel, grid_for(P / 2), kBlock, 0, nullptr, key, index, n, P, seed, offset);
    const int64_t tile = P < kSortTile ? P : kSortTile;
    const unsigned tiles = grid_for(P / tile, 1), threads = static_cast<unsigned>(tile / 2);
    launch(bitonic_tile_kernel, tiles, threads, 0, nullptr, out, key, index, n, P, int64_t(2), tile);
    for (int64_t k = 2 * tile; k <= P; k *= 2) {
        for (int64_t j = k / 2; j >= tile; j /= 2)
            launch(bitonic_step_kernel, grid_for(P / 2), kBlock, 0, nullptr, key, index, P, k, j);
        launch(bitonic_tile_kernel, tiles, threads, 0, nullptr, out, key, index, n, P, k, k);
    }
    return static_cast<uint64_t>((n + 1) / 2);
}

}  // namespace cuda
}  // namespace kg
