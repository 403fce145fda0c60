// allocator.h: device memory for tensors. A caching allocator: freed blocks go to free lists
// binned by their rounded size and are handed out again without cudaMalloc/cudaFree; the cache
// is returned to the driver by empty_cache(), or when cudaMalloc runs out of memory (then the
// allocation is retried once). One stream (the default one) orders every kernel, so a block freed
// on the host can be reused by the next launch at once.
//
// Sizes round up to 512 bytes (so any element type and float4 loads are aligned), and above 1 MiB
// to a multiple of 1 MiB. Under the emulator a reused block is filled with 0xFF bytes again (NaN
// in float and double), as fresh cudaMalloc memory is, so a kernel that leaves part of its output
// unwritten shows NaN instead of an old tensor's values.
#pragma once

#include <cstddef>

namespace kg {
namespace cuda {

void* device_alloc(size_t nbytes);  // nullptr for 0 bytes; throws kg::CudaError when out of memory
void device_free(void* ptr);        // nullptr is ignored

size_t memory_allocated();  // bytes in blocks handed out (rounded sizes)
size_t memory_reserved();   // bytes held from the driver: handed out plus cached
size_t max_memory_allocated();
void reset_peak_memory_stats();
void empty_cache();  // cudaFree every cached block

}  // namespace cuda
}  // namespace kg
