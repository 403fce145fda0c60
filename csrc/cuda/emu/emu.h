// emu/emu.h: the CUDA emulator as a kernel source sees it. Included (only) by cuda/kg_cuda.cuh
// when KG_CUDA_EMU is defined, in place of <cuda_runtime.h>; the .cu files are then compiled by
// the host C++ compiler into kernelgrad._cuda_emu.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda/emu/device.h"
#include "cuda/emu/runtime.h"
#include "cuda/emu/types.h"

namespace kg {
namespace emu {

// kernel<<<grid, block, smem, stream>>>(args...): the arguments are converted to the kernel's
// parameter types once, as CUDA does, and every thread calls the kernel on its own copy of them.
template <typename... Params, typename... Args>
cudaError_t launch_typed(void (*kernel)(Params...), dim3 grid, dim3 block, size_t dynamic_smem,
                         cudaStream_t stream, Args&&... args) {
    static_assert(sizeof...(Params) == sizeof...(Args),
                  "kg::launch: the number of arguments does not match the kernel's parameters");
    struct Closure {
        void (*kernel)(Params...);
        std::tuple<std::decay_t<Params>...> args;
    };
    const Closure closure{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
    void (*invoke)(const void*) = [](const void* p) {
        const Closure& c = *static_cast<const Closure*>(p);
        std::apply(c.kernel, c.args);
    };
    return launch_kernel(reinterpret_cast<const void*>(kernel), grid, block, dynamic_smem, stream,
                         invoke, &closure);
}

}  // namespace emu
}  // namespace kg
