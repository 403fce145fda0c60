// selftest.cu: small kernels that exercise what every later kernel relies on, compiled by nvcc
// into kernelgrad._cuda and by the host compiler into the emulator module kernelgrad._cuda_emu:
//   - vector add with a grid-stride loop;
//   - a block reduction (shared memory, __syncthreads, warp 0 finishing with shuffles);
//   - a shared-memory tile transpose (32x33 tile: the padding column avoids bank conflicts);
//   - a neighbour read with and without its barrier (the emulator's schedules expose the bug);
//   - atomics, warp votes and reductions, shuffle scans and broadcasts, __syncthreads_count;
//   - kernels with planted bugs that the emulator must report (plant_bug).
// The tests (tests/test_cuda_emulator.py) check each against NumPy.
#include "cuda/selftest.h"

#include <climits>
#include <cmath>
#include <stdexcept>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace selftest {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;

int ceil_div(int a, int b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Vector add

__global__ void vector_add_kernel(float* out, const float* a, const float* b, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) out[i] = a[i] + b[i];
}

// ---------------------------------------------------------------------------------------------
// Block sum: each warp reduces its values with shuffles, lane 0 of each warp stores the warp's sum
// in shared memory, and after the barrier warp 0 alone reduces those sums.

__device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFullMask, v, offset);
    return v;
}

// partial (gridDim.x) = per-block sums of x (n); blockDim.x is a multiple of 32.
__global__ void block_sum_kernel(float* partial, const float* x, int n) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float v = 0.0f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
    v = warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < static_cast<int>(blockDim.x / 32) ? warp_sums[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) partial[blockIdx.x] = v;
    }
}

// ---------------------------------------------------------------------------------------------
// Transpose: blocks of 32 x 8 threads move 32 x 32 tiles, each thread 4 rows.

constexpr int kTile = 32, kTileRows = 8;

// out (cols, rows) = in (rows, cols)^T
__global__ void transpose_kernel(float* out, const float* in, int rows, int cols) {
    __shared__ float tile[kTile][kTile + 1];
    int x = blockIdx.x * kTile + threadIdx.x;  // column of in
    int y = blockIdx.y * kTile + threadIdx.y;  // row of in
    for (int j = 0; j < kTile; j += kTileRows)
        if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
    __syncthreads();
    x = blockIdx.y * kTile + threadIdx.x;  // column of out
    y = blockIdx.x * kTile + threadIdx.y;  // row of out
    for (int j = 0; j < kTile; j += kTileRows)
        if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

// ---------------------------------------------------------------------------------------------
// Neighbour shift: out (n), x (n); dynamic shared memory of blockDim.x floats.

__global__ void neighbour_shift_kernel(float* out, const float* x, int n, bool with_barrier) {
    KG_DYNAMIC_SMEM(float, buf);
    const int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? x[i] : 0.0f;
    if (with_barrier) __syncthreads();
    const int next = t + 1 < static_cast<int>(blockDim.x) ? t + 1 : t;
    if (i < n) out[i] = buf[next];
}

// ---------------------------------------------------------------------------------------------
// Atomics

// hist (nbins), bins (n), weights (n)
__global__ void histogram_kernel(float* hist, const int* bins, const float* weights, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        atomicAdd(&hist[bins[i]], weights[i]);
}

// Float max by compare-and-swap on the bits: retry while another thread changed the value first.
__device__ float atomic_max_float(float* address, float value) {
    int* bits = reinterpret_cast<int*>(address);
    int old = *bits, assumed;
    do {
        assumed = old;
        if (__int_as_float(assumed) >= value) break;
        old = atomicCAS(bits, assumed, __float_as_int(value));
    } while (old != assumed);
    return __int_as_float(old);
}

__global__ void atomics_kernel(int* result_int, float* result_float, unsigned* result_count, double* result_sum,
                               const int* xi, const float* xf, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        atomicMax(&result_int[0], xi[i]);
        atomicMin(&result_int[1], xi[i]);
        atomic_max_float(result_float, xf[i]);
        if (xf[i] > 0.0f) atomicAdd(result_count, 1u);
        atomicAdd(result_sum, static_cast<double>(xf[i]));
    }
}

// ---------------------------------------------------------------------------------------------
// Warp votes, reductions and shuffles. Every lane of a launched warp takes part (lanes past n with
// neutral values), so the full mask is right.

__global__ void warp_vote_kernel(unsigned* ballot, int* any, int* all, int* sum, const int* pred, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int p = i < n ? pred[i] : 0;
    const unsigned b = __ballot_sync(kFullMask, p != 0);
    const int a = __any_sync(kFullMask, p != 0);
    const int l = __all_sync(kFullMask, p != 0);
    const int s = __reduce_add_sync(kFullMask, p);
    if (threadIdx.x % 32 == 0 && i < n) {
        ballot[i / 32] = b, any[i / 32] = a, all[i / 32] = l, sum[i / 32] = s;
    }
}

// Hillis-Steele inclusive scan within segments of `width` lanes.
__global__ void warp_scan_kernel(int* out, const int* x, int n, int width) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int lane = threadIdx.x % width;
    int v = i < n ? x[i] : 0;
    for (int d = 1; d < width; d *= 2) {
        const int u = __shfl_up_sync(kFullMask, v, d, width);
        if (lane >= d) v += u;
    }
    if (i < n) out[i] = v;
}

// Butterfly: after log2(width) exchanges every lane holds its segment's sum.
__global__ void warp_allreduce_kernel(float* out, const float* x, int n, int width) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = i < n ? x[i] : 0.0f;
    for (int m = width / 2; m > 0; m /= 2) v += __shfl_xor_sync(kFullMask, v, m, width);
    if (i < n) out[i] = v;
}

__global__ void warp_broadcast_kernel(float* out, const float* x, int n, int src_lane, int width) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const float v = __shfl_sync(kFullMask, i < n ? x[i] : 0.0f, src_lane, width);
    if (i < n) out[i] = v;
}

// counts (gridDim.x), pred (n)
__global__ void block_count_kernel(int* counts, const int* pred, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int count = __syncthreads_count(i < n && pred[i] != 0);
    if (threadIdx.x == 0) counts[blockIdx.x] = count;
}

// ---------------------------------------------------------------------------------------------
// Uninitialised memory

__global__ void write_even_kernel(float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && i % 2 == 0) out[i] = static_cast<float>(i);
}

__global__ void read_dynamic_smem_kernel(float* out, int n) {
    KG_DYNAMIC_SMEM(float, buf);
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = buf[i];
}

// Two instantiations, two kernels: one keeps the default dynamic shared memory limit, the other
// raises it. out (n) = n-1, ..., 0 through n floats of shared memory.
template <int Variant>
__global__ void fill_smem_kernel(float* out, int n) {
    KG_DYNAMIC_SMEM(float, buf);
    for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = static_cast<float>(i);
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = buf[n - 1 - i];
}

// ---------------------------------------------------------------------------------------------
// Planted bugs, each launched on one block; out holds 2048 floats.

// Half the block waits at one barrier, half at another.
__global__ void divergent_barrier_kernel(float* out) {
    if (threadIdx.x < 16) {
        __syncthreads();
        out[threadIdx.x] = 1.0f;
    } else {
        __syncthreads();
        out[threadIdx.x] = 2.0f;
    }
}

// Thread 5 returns before the barrier the others wait at.
__global__ void exited_thread_barrier_kernel(float* out) {
    if (threadIdx.x == 5) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// A full mask in a block of 48 threads: warp 1 has lanes 0-15 only.
__global__ void mask_names_missing_lane_kernel(float* out) {
    out[threadIdx.x] = __shfl_down_sync(kFullMask, static_cast<float>(threadIdx.x), 1);
}

// Lane 3 returns; the others shuffle with a mask that names it.
__global__ void mask_names_returned_lane_kernel(float* out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_xor_sync(kFullMask, 1.0f, 1);
}

// Every lane passes mask 0x1, which names only lane 0.
__global__ void mask_without_caller_kernel(float* out) { out[threadIdx.x] = __shfl_sync(0x1u, 1.0f, 0); }

// Lanes 0-15 and 16-31 reach different shuffles, both with the full mask.
__global__ void different_collectives_kernel(float* out) {
    float v = static_cast<float>(threadIdx.x);
    if (threadIdx.x < 16)
        v = __shfl_xor_sync(kFullMask, v, 1);
    else
        v = __shfl_xor_sync(kFullMask, v, 2);
    out[threadIdx.x] = v;
}

// Lane 31 leaves lane 0 out of its mask at the same __syncwarp.
__global__ void different_masks_kernel(float* out) {
    __syncwarp(threadIdx.x == 31 ? 0xfffffffeu : kFullMask);
    out[threadIdx.x] = 1.0f;
}

// Lanes 0-15 shuffle among themselves but read lane 20.
__global__ void read_outside_mask_kernel(float* out) {
    if (threadIdx.x < 16) out[threadIdx.x] = __shfl_sync(0x0000ffffu, 1.0f, 20);
}

// Lane 0 waits at a barrier while lanes 1-31 wait for it at a shuffle.
__global__ void barrier_inside_warp_collective_kernel(float* out) {
    float v = 1.0f;
    if (threadIdx.x == 0)
        __syncthreads();
    else
        v = __shfl_xor_sync(kFullMask, v, 1);
    out[threadIdx.x] = v;
}

// Reads one float past the end of its input (ASan reports it under the sanitizer build).
__global__ void read_past_end_kernel(float* out, const float* x, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) out[i] = x[i];  // the bug: <= instead of <
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Host entry points

void vector_add(float* out, const float* a, const float* b, int n, int grid, int block) {
    kg::launch(vector_add_kernel, dim3(grid), dim3(block), 0, nullptr, out, a, b, n);
}

float block_sum(float* partial, const float* x, int n, int grid, int block) {
    if (block % 32 != 0 || block < 32 || block > 1024)
        throw std::invalid_argument("block_sum: block must be a multiple of 32 from 32 to 1024");
    kg::launch(block_sum_kernel, dim3(grid), dim3(block), 0, nullptr, partial, x, n);
    kg::launch(block_sum_kernel, dim3(1), dim3(block), 0, nullptr, partial, partial, grid);
    float total = 0.0f;
    KG_CUDA_CHECK(cudaMemcpy(&total, partial, sizeof total, cudaMemcpyDeviceToHost));
    return total;
}

void transpose(float* out, const float* in, int rows, int cols) {
    kg::launch(transpose_kernel, dim3(ceil_div(cols, kTile), ceil_div(rows, kTile)), dim3(kTile, kTileRows), 0,
               nullptr, out, in, rows, cols);
}

void neighbour_shift(float* out, const float* x, int n, int block, bool with_barrier) {
    kg::launch(neighbour_shift_kernel, dim3(ceil_div(n, block)), dim3(block), block * sizeof(float), nullptr, out,
               x, n, with_barrier);
}

void histogram(float* hist, const int* bins, const float* weights, int n, int nbins) {
    KG_CUDA_CHECK(cudaMemset(hist, 0, nbins * sizeof(float)));
    kg::launch(histogram_kernel, dim3(4), dim3(128), 0, nullptr, hist, bins, weights, n);
}

void atomics(int* result_int, float* result_float, unsigned* result_count, double* result_sum, const int* xi,
             const float* xf, int n) {
    const int init_int[2] = {INT_MIN, INT_MAX};
    const float init_float = -INFINITY;
    KG_CUDA_CHECK(cudaMemcpy(result_int, init_int, sizeof init_int, cudaMemcpyHostToDevice));
    KG_CUDA_CHECK(cudaMemcpy(result_float, &init_float, sizeof init_float, cudaMemcpyHostToDevice));
    KG_CUDA_CHECK(cudaMemset(result_count, 0, sizeof(unsigned)));
    KG_CUDA_CHECK(cudaMemset(result_sum, 0, sizeof(double)));
    kg::launch(atomics_kernel, dim3(3), dim3(64), 0, nullptr, result_int, result_float, result_count, result_sum,
               xi, xf, n);
}

void warp_vote(unsigned* ballot, int* any, int* all, int* sum, const int* pred, int n) {
    kg::launch(warp_vote_kernel, dim3(ceil_div(n, 64)), dim3(64), 0, nullptr, ballot, any, all, sum, pred, n);
}

void warp_scan(int* out, const int* x, int n, int width) {
    kg::launch(warp_scan_kernel, dim3(ceil_div(n, 128)), dim3(128), 0, nullptr, out, x, n, width);
}

void warp_allreduce(float* out, const float* x, int n, int width) {
    kg::launch(warp_allreduce_kernel, dim3(ceil_div(n, 128)), dim3(128), 0, nullptr, out, x, n, width);
}

void warp_broadcast(float* out, const float* x, int n, int src_lane, int width) {
    kg::launch(warp_broadcast_kernel, dim3(ceil_div(n, 128)), dim3(128), 0, nullptr, out, x, n, src_lane, width);
}

void block_count(int* counts, const int* pred, int n, int block) {
    kg::launch(block_count_kernel, dim3(ceil_div(n, block)), dim3(block), 0, nullptr, counts, pred, n);
}

void write_even(float* out, int n) {
    kg::launch(write_even_kernel, dim3(ceil_div(n, 128)), dim3(128), 0, nullptr, out, n);
}

void read_dynamic_smem(float* out, int n) {
    kg::launch(read_dynamic_smem_kernel, dim3(1), dim3(64), n * sizeof(float), nullptr, out, n);
}

void fill_smem(float* out, int smem_bytes, bool opt_in) {
    const int n = smem_bytes / static_cast<int>(sizeof(float));
    if (opt_in) {
        KG_CUDA_CHECK(cudaFuncSetAttribute(fill_smem_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
        kg::launch(fill_smem_kernel<1>, dim3(1), dim3(256), smem_bytes, nullptr, out, n);
    } else {
        kg::launch(fill_smem_kernel<0>, dim3(1), dim3(256), smem_bytes, nullptr, out, n);
    }
}

float stream_roundtrip(float* out, const float* x, int n) {
    const size_t bytes = n * sizeof(float);
    cudaStream_t stream;
    cudaEvent_t start, stop;
    float* d = nullptr;
    KG_CUDA_CHECK(cudaStreamCreate(&stream));
    KG_CUDA_CHECK(cudaEventCreate(&start));
    KG_CUDA_CHECK(cudaEventCreate(&stop));
    KG_CUDA_CHECK(cudaMalloc(&d, bytes));
    KG_CUDA_CHECK(cudaMemcpyAsync(d, x, bytes, cudaMemcpyHostToDevice, stream));
    KG_CUDA_CHECK(cudaEventRecord(start, stream));
    kg::launch(vector_add_kernel, dim3(ceil_div(n, 256)), dim3(256), 0, stream, d, d, d, n);
    KG_CUDA_CHECK(cudaEventRecord(stop, stream));
    KG_CUDA_CHECK(cudaMemcpyAsync(out, d, bytes, cudaMemcpyDeviceToHost, stream));
    KG_CUDA_CHECK(cudaStreamSynchronize(stream));
    KG_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = -1.0f;
    KG_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    KG_CUDA_CHECK(cudaFree(d));
    KG_CUDA_CHECK(cudaEventDestroy(start));
    KG_CUDA_CHECK(cudaEventDestroy(stop));
    KG_CUDA_CHECK(cudaStreamDestroy(stream));
    return ms;
}

std::vector<std::string> bug_names() {
    return {"divergent_barrier",     "exited_thread_barrier", "mask_names_missing_lane",
            "mask_names_returned_lane", "mask_without_caller",   "different_collectives",
            "different_masks",       "read_outside_mask",     "barrier_inside_warp_collective",
            "too_many_threads",      "block_dim_too_large",   "zero_block_dim",        "grid_too_large",
            "too_much_dynamic_smem"};
}

void plant_bug(const std::string& name, float* scratch) {
    float* out = scratch;
    if (name == "divergent_barrier") kg::launch(divergent_barrier_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "exited_thread_barrier") kg::launch(exited_thread_barrier_kernel, dim3(1), dim3(64), 0, nullptr, out);
    else if (name == "mask_names_missing_lane") kg::launch(mask_names_missing_lane_kernel, dim3(1), dim3(48), 0, nullptr, out);
    else if (name == "mask_names_returned_lane") kg::launch(mask_names_returned_lane_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "mask_without_caller") kg::launch(mask_without_caller_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "different_collectives") kg::launch(different_collectives_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "different_masks") kg::launch(different_masks_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "read_outside_mask") kg::launch(read_outside_mask_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "barrier_inside_warp_collective")
        kg::launch(barrier_inside_warp_collective_kernel, dim3(1), dim3(32), 0, nullptr, out);
    else if (name == "too_many_threads") kg::launch(write_even_kernel, dim3(1), dim3(64, 17), 0, nullptr, out, 2048);
    else if (name == "block_dim_too_large") kg::launch(write_even_kernel, dim3(1), dim3(1025), 0, nullptr, out, 2048);
    else if (name == "zero_block_dim") kg::launch(write_even_kernel, dim3(1), dim3(32, 0), 0, nullptr, out, 2048);
    else if (name == "grid_too_large") kg::launch(write_even_kernel, dim3(1, 65536), dim3(32), 0, nullptr, out, 2048);
    else if (name == "too_much_dynamic_smem")
        kg::launch(read_dynamic_smem_kernel, dim3(1), dim3(32), 48 * 1024 + 4, nullptr, out, 1);
    else if (name == "read_past_end") kg::launch(read_past_end_kernel, dim3(1), dim3(64), 0, nullptr, out + 1024, out + 2047, 1);
    else throw std::invalid_argument("plant_bug: unknown bug '" + name + "'");
}

std::vector<int> last_error_probe() {
    std::vector<int> codes;
    try {
        kg::launch(write_even_kernel, dim3(1), dim3(2048), 0, nullptr, nullptr, 0);
        codes.push_back(0);
    } catch (const kg::CudaError& e) {
        codes.push_back(e.code());
    }
    codes.push_back(cudaGetLastError());
    int host_value = 0;
    codes.push_back(cudaFree(&host_value));
    codes.push_back(cudaPeekAtLastError());
    codes.push_back(cudaPeekAtLastError());
    codes.push_back(cudaGetLastError());
    codes.push_back(cudaGetLastError());
    return codes;
}

}  // namespace selftest
}  // namespace kg
