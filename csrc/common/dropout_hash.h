// dropout_hash.h: the attention dropout mask, shared by the CPU kernel (csrc/cpu/attention.cpp) and
// the CUDA kernels (csrc/cuda/attention.cu) so that one seed drops the same probabilities on every
// device; kg.reference.attention_dropout_keep is the same function in NumPy.
//
// A counter-based generator: whether probability P[b, i, j] (batch index b, query i, key j of an
// L x S score matrix) survives is a pure function of (seed, b, i, j), so backward regenerates
// forward's mask from the seed, and any tile order gives the same mask:
//   counter = (b * L + i) * S + j,   z = splitmix64(seed + (counter + 1) * 0x9E3779B97F4A7C15)
//   kept  <=>  (z >> 32) >= floor(p * 2^32)
// (the splitmix64 stream of the seed at position counter). Survivors are scaled by 1 / (1 - p).
//
// Host and device code: compiled by the C++ compiler for the CPU module and by nvcc for the GPU.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define KG_HD __host__ __device__
#else
#define KG_HD
#endif

namespace kg {
namespace dropout {

// The splitmix64 output function (Steele, Lea, Flood 2014): a bijective 64-bit mix.
KG_HD inline uint64_t splitmix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// floor(p * 2^32): the high 32 bits of z must reach it for a probability to be kept (p = 1: none).
KG_HD inline uint64_t keep_threshold(double p) { return static_cast<uint64_t>(p * 4294967296.0); }

// The factor of a kept probability, 1 / (1 - p) (0 for p = 1, where nothing is kept).
template <typename T>
KG_HD inline T kept_scale(double p) {
    return p < 1 ? static_cast<T>(1 / (1 - p)) : T(0);
}

// Whether probability (b, i, j) of an L x S score matrix is kept.
KG_HD inline bool keeps(uint64_t seed, uint64_t threshold, int64_t b, int64_t i, int64_t j, int64_t L,
                        int64_t S) {
    const uint64_t counter = static_cast<uint64_t>((b * L + i) * S + j);
    return (splitmix64(seed + (counter + 1) * 0x9E3779B97F4A7C15ull) >> 32) >= threshold;
}

}  // namespace dropout
}  // namespace kg
