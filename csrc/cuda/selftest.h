// selftest.h: small kernels that prove the two CUDA builds (nvcc and the emulator) work, and that
// the emulator catches the bugs it promises to catch. Host-side entry points, callable from plain
// C++ (the binding): every pointer is a device pointer (cudaMalloc'ed), every function launches
// with kg::launch and throws kg::CudaError (std::runtime_error) when a CUDA call or launch fails.
#pragma once

#include <string>
#include <vector>

namespace kg {
namespace selftest {

// out (n) = a (n) + b (n), with a grid-stride loop over `grid` blocks of `block` threads.
void vector_add(float* out, const float* a, const float* b, int n, int grid, int block);

// sum of x (n): per-block shared-memory + shuffle reductions finished by warp 0, then one block
// over the partial sums. partial (grid) is scratch. block is a multiple of 32.
float block_sum(float* partial, const float* x, int n, int grid, int block);

// out (cols, rows) = in (rows, cols) transposed through a 32x33 shared-memory tile.
void transpose(float* out, const float* in, int rows, int cols);

// out[i] = x[i + 1] within each block of `block` threads (the block's last thread keeps x[i]; past
// n reads 0). Without the barrier between the shared-memory write and the neighbour's read the
// result depends on the thread schedule: that is the bug it demonstrates.
void neighbour_shift(float* out, const float* x, int n, int block, bool with_barrier);

// hist (nbins) = sum of weights (n) per bin (bins (n) in [0, nbins)), by float atomicAdd.
void histogram(float* hist, const int* bins, const float* weights, int n, int nbins);

// Whole-array reductions by atomics: result_int (2) = {max, min} of xi (n) by atomicMax/atomicMin;
// result_float (1) = max of xf (n) by an atomicCAS loop; result_count (1) = count of xf > 0 by
// unsigned atomicAdd; result_sum (1) = sum of xf by double atomicAdd.
void atomics(int* result_int, float* result_float, unsigned* result_count, double* result_sum, const int* xi,
             const float* xf, int n);

// Per warp of 32 consecutive elements (pred padded with 0 to whole warps; warps = ceil(n / 32)):
// ballot (warps), any (warps), all (warps), sum (warps) of pred (n) by __reduce_add_sync.
void warp_vote(unsigned* ballot, int* any, int* all, int* sum, const int* pred, int n);

// Per segment of `width` lanes (a power of 2 up to 32): out (n) = inclusive prefix sums of x (n)
// by __shfl_up_sync; allreduce: every lane gets the segment's sum by __shfl_xor_sync; broadcast:
// every lane gets the value of lane src_lane of its segment by __shfl_sync.
void warp_scan(int* out, const int* x, int n, int width);
void warp_allreduce(float* out, const float* x, int n, int width);
void warp_broadcast(float* out, const float* x, int n, int src_lane, int width);

// counts (ceil(n / block)) = number of pred (n) != 0 per block, by __syncthreads_count.
void block_count(int* counts, const int* pred, int n, int block);

// Writes out[i] = i for even i only (odd entries keep what was there).
void write_even(float* out, int n);

// out (n) = the dynamic shared memory of a block as the launch left it (never written).
void read_dynamic_smem(float* out, int n);

// out (smem_bytes / 4) = the reverse of 0, 1, 2, ... through `smem_bytes` of dynamic shared
// memory; with opt_in, first raises the kernel's limit to smem_bytes with cudaFuncSetAttribute.
// The two cases use two different kernels, so the limit set by one does not affect the other.
void fill_smem(float* out, int smem_bytes, bool opt_in);

// out (n) = x (n) + x through a created stream: async copies in and out, the vector add launched on
// the stream, events around it; returns the events' elapsed milliseconds. out and x are host memory.
float stream_roundtrip(float* out, const float* x, int n);

// Launch one of the kernels with a planted bug that the emulator reports (bug_names()), or
// "read_past_end", an off-by-one read that only AddressSanitizer sees; scratch holds 2048 floats.
std::vector<std::string> bug_names();
void plant_bug(const std::string& name, float* scratch);

// CUDA's last-error semantics: {code of a failed launch (block of 2048 threads), cudaGetLastError
// after it, then after a failing cudaFree: cudaPeekAtLastError twice, cudaGetLastError twice}.
std::vector<int> last_error_probe();

}  // namespace selftest
}  // namespace kg
