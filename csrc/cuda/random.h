// random.h: counter-based random numbers on the device. Philox4x32-10 (Salmon, Moraes, Dror and
// Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011) maps a 128-bit counter and a 64-bit
// key to 128 random bits with no state, so every thread computes its own numbers and the result
// does not depend on the launch configuration or the schedule.
//
// The stream of a call (seed, offset): key = seed (low word first), and the j-th Philox block of
// the call uses the 128-bit counter offset + j (the 64-bit offset plus j, carried into the third
// word). Element i of an output comes from block j = i / K, where K, the elements drawn from one
// block, depends on what is drawn:
//
//   raw uint32, uniform and normal float32/float16       K = 4  (32 bits each)
//   uniform and normal float64                            K = 2  (64 bits each)
//   integers with high - low <= 2^32, randperm's keys    K = 2  (64 bits each)
//   integers with high - low >  2^32                     K = 1  (128 bits each)
//
// Each launcher returns the blocks (counters) it consumed, ceil(n / K): a caller that advances its
// offset by that never reuses a counter under the same seed.
#pragma once

#include <cstdint>

#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

// ---------------------------------------------------------------------------------------------
// Philox4x32-10: ten rounds of two 32x32->64-bit multiplications, the key bumped by the Weyl
// constants between rounds.

constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;  // round multipliers
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;  // key bumps (golden ratio, sqrt(3) - 1)

__host__ __device__ inline uint4 philox4x32_10(uint4 counter, uint32_t k0, uint32_t k1) {
    uint4 x = counter;
KG_UNROLL
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * x.x, p1 = static_cast<uint64_t>(kPhiloxM1) * x.z;
        const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
        const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
        x = uint4{hi1 ^ x.y ^ k0, lo1, hi0 ^ x.w ^ k1, lo0};
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
    return x;
}

// The j-th block of the stream (seed, offset): counter offset + j as a 128-bit number.
__host__ __device__ inline uint4 philox_block(uint64_t seed, uint64_t offset, uint64_t j) {
    const uint64_t c = offset + j;
    const uint32_t carry = c < offset ? 1u : 0u;
    return philox4x32_10(uint4{static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), carry, 0u},
                         static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// ---------------------------------------------------------------------------------------------
// Launchers: contiguous outputs of n elements, n >= 0; each returns the counters consumed.

// out (n) = the raw 32-bit words of the stream
uint64_t random_raw(uint32_t* out, int64_t n, uint64_t seed, uint64_t offset);
// out (n, dtype float16/float32/float64) uniform in [0, 1), never 1: float16 from 11 bits,
// float32 from 24, float64 from 53 (multiples of 2^-11, 2^-24, 2^-53)
uint64_t random_uniform(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset);
// out (n, dtype float16/float32/float64) standard normal by Box-Muller
uint64_t random_normal(DType dtype, void* out, int64_t n, uint64_t seed, uint64_t offset);
// int64 out (n) uniform in [low, high), low < high
uint64_t random_integers(int64_t* out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset);
// int64 out (n) = a uniformly random permutation of 0..n-1, sorted on the device
uint64_t randperm(int64_t* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace cuda
}  // namespace kg
