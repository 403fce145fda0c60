// kg_cuda.cuh: the one header every .cu file (and the CUDA binding) includes. It makes one source
// build two ways:
//   - by nvcc (__CUDACC__) for real GPUs, into kernelgrad._cuda: <cuda_runtime.h>;
//   - by the host C++ compiler with KG_CUDA_EMU defined, into kernelgrad._cuda_emu: the emulator
//     (cuda/emu/emu.h), which runs every CUDA thread of a block as a fiber on the CPU.
// Host-only C++ files of the nvcc build (the binding) get the runtime API and the error helpers.
//
// Kernels are launched with kg::launch only, never with <<<>>> (the emulator has no such syntax),
// and take dynamic shared memory with KG_DYNAMIC_SMEM only:
//
//   kg::launch(my_kernel, grid, block, smem_bytes, stream, out, x, n);   // throws kg::CudaError
//   KG_DYNAMIC_SMEM(float, tile);                                        // float* tile
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#if defined(KG_CUDA_EMU)
#include "cuda/emu/emu.h"
#else
#include <cuda_runtime.h>
#endif

namespace kg {

// ---------------------------------------------------------------------------------------------
// Errors: a failing CUDA call becomes a C++ exception (RuntimeError in Python)

class CudaError : public std::runtime_error {
public:
    CudaError(cudaError_t code, const std::string& where)
        : std::runtime_error(describe(code, where)), code_(code) {}
    cudaError_t code() const { return code_; }

private:
    static std::string describe(cudaError_t code, const std::string& where) {
        std::string text = std::string("CUDA error ") + std::to_string(static_cast<int>(code)) + " " +
                           cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ") in " + where;
#if defined(KG_CUDA_EMU)
        const std::string detail = emu::last_error_detail();
        if (!detail.empty()) text += ": " + detail;
#endif
        return text;
    }
    cudaError_t code_;
};

inline void check(cudaError_t code, const char* where) {
    if (code != cudaSuccess) throw CudaError(code, where);
}

#define KG_CUDA_CHECK(call) ::kg::check((call), #call)

// ---------------------------------------------------------------------------------------------
// Kernel launch and dynamic shared memory

#if defined(KG_CUDA_EMU)

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream,
            Args&&... args) {
    emu::launch_typed(kernel, grid, block, dynamic_smem, stream, std::forward<Args>(args)...);
    check(cudaGetLastError(), "kernel launch");
}

#define KG_DYNAMIC_SMEM(T, name) T* const name = static_cast<T*>(::kg::emu::dynamic_smem())

#elif defined(__CUDACC__)

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream,
            Args&&... args) {
    static_assert(sizeof...(Params) == sizeof...(Args),
                  "kg::launch: the number of arguments does not match the kernel's parameters");
    kernel<<<grid, block, dynamic_smem, stream>>>(std::forward<Args>(args)...);
    check(cudaGetLastError(), "kernel launch");
}

// One byte array for every kernel: `extern __shared__ T name[]` with different T in different
// kernels of one file is a redeclaration error, and the array must be aligned for any T.
#define KG_DYNAMIC_SMEM(T, name)                                   \
    extern __shared__ __align__(16) unsigned char kg_dynamic_smem_[]; \
    T* const name = reinterpret_cast<T*>(kg_dynamic_smem_)

#endif

}  // namespace kg
