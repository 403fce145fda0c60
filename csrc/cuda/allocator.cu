// allocator.cu: the caching device allocator (see allocator.h).
#include "cuda/allocator.h"

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(1) << 20;

size_t round_size(size_t n) {
    const size_t unit = n > kLargeRound ? kLargeRound : kSmallRound;
    return (n + unit - 1) / unit * unit;
}

struct Cache {
    std::mutex mutex;
    std::map<size_t, std::vector<void*>> free_blocks;  // rounded size -> cached blocks of that size
    std::unordered_map<void*, size_t> live;            // block handed out -> its rounded size
    size_t allocated = 0, reserved = 0, peak = 0;

    void release_cached() {  // with the mutex held
        for (auto& bin : free_blocks)
            for (void* p : bin.second) {
                cudaFree(p);
                reserved -= bin.first;
            }
        free_blocks.clear();
    }
};

Cache& cache() {
    static Cache* c = new Cache();  // never destroyed: tensors may be freed during interpreter exit
    return *c;
}

}  // namespace

void* device_alloc(size_t nbytes) {
    if (nbytes == 0) return nullptr;
    const size_t size = round_size(nbytes);
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    void* ptr = nullptr;
    auto bin = c.free_blocks.find(size);
    if (bin != c.free_blocks.end() && !bin->second.empty()) {
        ptr = bin->second.back();
        bin->second.pop_back();
#if defined(KG_CUDA_EMU)
        KG_CUDA_CHECK(cudaMemset(ptr, 0xff, size));
#endif
    } else {
        cudaError_t e = cudaMalloc(&ptr, size);
        if (e == cudaErrorMemoryAllocation) {  // give the cache back to the driver and try once more
            cudaGetLastError();
            c.release_cached();
            e = cudaMalloc(&ptr, size);
        }
        if (e != cudaSuccess)
            throw CudaError(e, "cudaMalloc of " + std::to_string(size) + " bytes (" +
                                   std::to_string(c.allocated) + " bytes allocated, " +
                                   std::to_string(c.reserved) + " reserved)");
        c.reserved += size;
    }
    c.live.emplace(ptr, size);
    c.allocated += size;
    if (c.allocated > c.peak) c.peak = c.allocated;
    return ptr;
}

void device_free(void* ptr) {
    if (ptr == nullptr) return;
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.live.find(ptr);
    if (it == c.live.end()) return;  // not ours (cannot happen through the binding)
    c.allocated -= it->second;
    c.free_blocks[it->second].push_back(ptr);
    c.live.erase(it);
}

size_t memory_allocated() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    return cache().allocated;
}

size_t memory_reserved() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    return cache().reserved;
}

size_t max_memory_allocated() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    return cache().peak;
}

void reset_peak_memory_stats() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().peak = cache().allocated;
}

void empty_cache() {
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().release_cached();
}

}  // namespace cuda
}  // namespace kg
