// block_reduce.cuh: reductions over the threads that work on one line of values, and the walks that
// hand the lines of an array to them. Shared by softmax.cu (softmax, cross-entropy) and norm.cu
// (layer norm, batch norm).
//
// A group is the set of threads that share a line:
//   ThreadGroup  one thread: nothing to combine;
//   WarpGroup    the 32 lanes of a warp: a butterfly of __shfl_xor_sync (every lane ends with the
//                result);
//   BlockGroup   the whole block (a multiple of 32 threads): each warp's butterfly, the warps'
//                results through shared memory, then every warp combines those (two barriers).
// A thread takes the values lane, lane + size, ... of its line (KG_GROUP_LOOP) and accumulates
// them privately; g.reduce(v, op, identity) combines the group's values with op (associative and
// commutative) and returns the result to every thread; g.sum(v) adds (v: T or Pair<T>).
//
// A line is `n` values at element stride `step` from `base`: the lines of an (outer, dim, inner)
// array along dim are at base = o dim inner + j (o < outer, j < inner), step = inner, and are
// numbered line = o inner + j. launch_lines picks the walk:
//   inner > 1            a thread per line: neighbouring threads take neighbouring j, so each
//                        load of a warp is one coalesced access (no dim is moved or copied);
//   inner == 1, dim <= kThreadLine  a thread per row too: a warp would leave most lanes idle and
//                        spend more shuffles than the row has values;
//   inner == 1, dim <= kWarpLine    a warp per row (a 128-thread block takes 4 rows);
//   inner == 1, longer rows         a block per row, of block_threads(dim) threads.
// The body is a functor, body(g, base, n, step, line), run by every thread of the group with the
// same arguments (so its reductions and branches are uniform over the group).
#pragma once

#include <cstdint>

#include "cuda/kg_cuda.cuh"
#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kLineBlock = 128;          // threads per block of the thread and warp walks
constexpr int64_t kThreadLine = 16;      // longest row a single thread takes
constexpr int64_t kWarpLine = 1024;      // longest row a warp takes (32 values per lane)
constexpr int kMaxLineThreads = 512;     // largest block of the block walk (<= 128 registers each)

// Two sums reduced together (one butterfly of two shuffles instead of two butterflies).
template <typename T>
struct Pair {
    T a, b;
};

template <typename T>
__device__ inline Pair<T> operator+(Pair<T> x, Pair<T> y) {
    return {x.a + y.a, x.b + y.b};
}

struct Add {
    template <typename V>
    __device__ V operator()(V x, V y) const { return x + y; }
};

// ---------------------------------------------------------------------------------------------
// Shuffles of the reduced types (a struct goes member by member)

template <typename T>
__device__ inline T shfl_xor(T v, int lane_mask) {
    return __shfl_xor_sync(kFullMask, v, lane_mask);
}

template <typename T>
__device__ inline Pair<T> shfl_xor(Pair<T> v, int lane_mask) {
    return {shfl_xor(v.a, lane_mask), shfl_xor(v.b, lane_mask)};
}

// ---------------------------------------------------------------------------------------------
// Groups

#define KG_GROUP_LOOP(k, g, n) for (int64_t k = (g).lane(); k < (n); k += (g).size())

struct ThreadGroup {
    __device__ int lane() const { return 0; }
    __device__ int size() const { return 1; }
    template <typename V, typename Op>
    __device__ V reduce(V v, Op, V) const { return v; }
    template <typename V>
    __device__ V sum(V v) const { return v; }
};

struct WarpGroup {
    __device__ int lane() const { return threadIdx.x % kWarpSize; }
    __device__ int size() const { return kWarpSize; }
    // butterfly: after the step of offset k every lane holds op over its aligned run of 2k lanes
    template <typename V, typename Op>
    __device__ V reduce(V v, Op op, V) const {
        for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = op(v, shfl_xor(v, offset));
        return v;
    }
    template <typename V>
    __device__ V sum(V v) const { return reduce(v, Add{}, V{}); }
};

struct BlockGroup {
    __device__ int lane() const { return threadIdx.x; }
    __device__ int size() const { return blockDim.x; }
    template <typename V, typename Op>
    __device__ V reduce(V v, Op op, V identity) const {
        __shared__ V warp_results[kWarpSize];
        const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
        v = WarpGroup{}.reduce(v, op, identity);
        if (lane == 0) warp_results[warp] = v;
        __syncthreads();
        v = WarpGroup{}.reduce(lane < static_cast<int>(blockDim.x / kWarpSize) ? warp_results[lane] : identity, op,
                               identity);
        __syncthreads();  // warp_results is written again by the next reduction
        return v;
    }
    template <typename V>
    __device__ V sum(V v) const { return reduce(v, Add{}, V{}); }
};

// Threads of a block that reduces n values: about 8 values each, whole warps, 32 to kMaxLineThreads.
inline int block_threads(int64_t n) {
    const int64_t warps = (n + 8 * kWarpSize - 1) / (8 * kWarpSize);
    return static_cast<int>(warps < 1 ? kWarpSize : (warps * kWarpSize > kMaxLineThreads ? kMaxLineThreads
                                                                                         : warps * kWarpSize));
}

// ---------------------------------------------------------------------------------------------
// The walks over the lines of an (outer, dim, inner) array

template <typename Body>
__global__ void lines_by_thread_kernel(Body body, int64_t outer, int64_t dim, int64_t inner) {
    KG_GRID_STRIDE_LOOP(p, outer * inner) {
        const int64_t o = p / inner, j = p - o * inner;
        body(ThreadGroup{}, o * dim * inner + j, dim, inner, p);
    }
}

template <typename Body>
__global__ void lines_by_warp_kernel(Body body, int64_t rows, int64_t dim) {
    const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / kWarpSize);
    for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize; r < rows; r += warps)
        body(WarpGroup{}, r * dim, dim, int64_t(1), r);
}

template <typename Body>
__global__ void __launch_bounds__(kMaxLineThreads) lines_by_block_kernel(Body body, int64_t rows, int64_t dim) {
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) body(BlockGroup{}, r * dim, dim, int64_t(1), r);
}

template <typename Body>
void launch_lines(const Body& body, int64_t outer, int64_t dim, int64_t inner) {
    if (outer == 0 || inner == 0) return;
    if (inner > 1 || dim <= kThreadLine) {
        launch(lines_by_thread_kernel<Body>, grid_for(outer * inner, kLineBlock), kLineBlock, 0, nullptr, body, outer,
               dim, inner);
    } else if (dim <= kWarpLine) {
        launch(lines_by_warp_kernel<Body>, grid_for(outer * kWarpSize, kLineBlock), kLineBlock, 0, nullptr, body,
               outer, dim);
    } else {
        const unsigned blocks = static_cast<unsigned>(outer < kMaxGrid ? outer : kMaxGrid);
        launch(lines_by_block_kernel<Body>, blocks, block_threads(dim), 0, nullptr, body, outer, dim);
    }
}

}  // namespace cuda
}  // namespace kg
