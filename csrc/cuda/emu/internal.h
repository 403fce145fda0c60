// emu/internal.h: what the emulator's runtime (runtime.cpp) and scheduler (scheduler.cpp) share.
#pragma once

#include <cstddef>
#include <string>

#include "cuda/emu/types.h"

namespace kg {
namespace emu {

// Record `code` as this host thread's last error, with a message saying what exactly went wrong;
// returns `code`.
cudaError_t record_error(cudaError_t code, std::string detail);

// The dynamic shared memory a launch of `kernel` may ask for (cudaFuncSetAttribute).
size_t dynamic_smem_limit(const void* kernel);

// Whether `stream` is the default stream or one that cudaStreamCreate made and not yet destroyed.
bool is_valid_stream(cudaStream_t stream);

}  // namespace emu
}  // namespace kg
