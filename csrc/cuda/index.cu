// index.cu: indexing by index arrays and nonzero (see index.h).
#include "cuda/index.h"

#include <cstdint>
#include <type_traits>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

template <typename T>
__device__ inline void accumulate(T* address, T value) {
    if constexpr (std::is_same<T, int64_t>::value)
        atomicAdd(reinterpret_cast<unsigned long long*>(address), static_cast<unsigned long long>(value));
    else if constexpr (std::is_floating_point<T>::value)
        atomicAdd(address, value);
}

__device__ inline void report(int64_t* error, int64_t value, int k) {
    if (atomicCAS(reinterpret_cast<unsigned long long*>(error), 0ull, 1ull) == 0ull) {
        error[1] = value;
        error[2] = k;
    }
}

template <typename T>
__global__ void index_kernel(T* values, T* data, IndexSpec spec, IndexLayout l, IndexMode mode, int64_t* error) {
    KG_GRID_STRIDE_LOOP(i, l.numel) {
        int64_t off[2 + kMaxIndices];
        l.offsets(i, off);
        int64_t at = off[1];
        bool ok = true;
KG_UNROLL
        for (int k = 0; k < kMaxIndices; ++k) {
            if (k < spec.count) {
                int64_t v = spec.index[k][off[2 + k]];
                const int64_t w = v < 0 ? v + spec.dim_size[k] : v;
                if (w < 0 || w >= spec.dim_size[k]) {
                    report(error, v, k);
                    ok = false;
                }
                at += w * spec.dim_stride[k];
            }
        }
        if (!ok) continue;
        switch (mode) {
            case IndexMode::get: values[off[0]] = data[at]; break;
            case IndexMode::put: data[at] = values[off[0]]; break;
            case IndexMode::add: accumulate(data + at, values[off[0]]); break;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// nonzero: one block; thread t counts the true elements of its chunk of the mask, thread 0 turns
// the counts into starting positions (an exclusive scan), then each thread writes its chunk's
// coordinates from its position: the row-major order of the mask.

constexpr int kScanThreads = 256;

__global__ void nonzero_kernel(int64_t* out, int64_t* count, const bool* mask, int64_t n, Shape shape) {
    __shared__ int64_t start[kScanThreads];
    const int64_t chunk = (n + kScanThreads - 1) / kScanThreads;
    const int64_t begin = threadIdx.x * chunk, end = begin + chunk < n ? begin + chunk : n;
    int64_t mine = 0;
    for (int64_t i = begin; i < end; ++i) mine += mask[i] ? 1 : 0;
    start[threadIdx.x] = mine;
    __syncthreads();
    if (threadIdx.x == 0) {
        int64_t total = 0;
        for (int t = 0; t < kScanThreads; ++t) {
            const int64_t c = start[t];
            start[t] = total;
            total += c;
        }
        *count = total;
    }
    __syncthreads();
    if (out == nullptr) return;
    int64_t row = start[threadIdx.x];
    for (int64_t i = begin; i < end; ++i) {
        if (!mask[i]) continue;
        int64_t rest = i;
KG_UNROLL
        for (int d = kMaxDims - 1; d >= 0; --d) {
            if (d < shape.ndim) {
                out[row * shape.ndim + d] = rest % shape.size[d];
                rest /= shape.size[d];
            }
        }
        ++row;
    }
}

}  // namespace

void index(IndexMode mode, DType dtype, void* values, void* data, const IndexSpec& spec, const IndexLayout& l,
           int64_t* error) {
    if (l.numel == 0) return;
    if (mode == IndexMode::add && (dtype == DType::Float16 || dtype == DType::Bool))
        throw std::invalid_argument("index accumulation supports int64, float32 and float64 on CUDA");
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        launch(index_kernel<T>, grid_for(l.numel), kBlock, 0, nullptr, static_cast<T*>(values), static_cast<T*>(data),
               spec, l, mode, error);
    });
}

void nonzero(int64_t* out, int64_t* count, const bool* mask, int64_t n, const Shape& shape) {
    launch(nonzero_kernel, 1, kScanThreads, 0, nullptr, out, count, mask, n, shape);
}

}  // namespace cuda
}  // namespace kg
