// aligned.h: 64-byte aligned scratch buffers, for the GEMM's packed panels (its micro-kernel reads
// them with aligned vector loads) and for the kernels that keep packed panels of their own
// (attention). Plain C++: include from baseline translation units only (see gemm.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace kg {
namespace cpu {

struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
};
template <typename T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

constexpr int64_t kAlign = 64;  // bytes: a cache line, and enough for aligned ymm loads

// n elements rounded up to whole cache lines, so consecutive slices of one buffer stay aligned
template <typename T>
int64_t round_to_lines(int64_t n) {
    constexpr int64_t per_line = kAlign / sizeof(T);
    return (n + per_line - 1) / per_line * per_line;
}

// n uninitialised elements, 64-byte aligned
template <typename T>
Buffer<T> alloc_aligned(int64_t n) {
    void* p = std::aligned_alloc(kAlign, std::max<int64_t>(round_to_lines<T>(n), 1) * sizeof(T));
    if (!p) throw std::bad_alloc();
    return Buffer<T>(static_cast<T*>(p));
}

}  // namespace cpu
}  // namespace kg
