// emu/runtime.h: the CUDA runtime API as the emulator provides it (one device, "device" memory is
// host memory, every call synchronous), plus the launch entry point behind kg::launch.
//
// Strictness, so that bugs a GPU hides show up here:
//   - cudaMalloc allocates exactly the bytes asked for (ASan sees off-by-one reads that a GPU's
//     256-byte rounding hides) and fills them with 0xFF bytes, a NaN in float and double;
//   - cudaMemcpy/cudaMemset check that the device side lies inside one live allocation;
//   - the last error follows CUDA: every failing call records it, cudaGetLastError returns and
//     clears it, cudaPeekAtLastError only returns it. A fault inside a kernel (a barrier or warp
//     collective misuse) is reported as cudaErrorLaunchFailure but, unlike on a GPU, it is not
//     sticky: the process keeps a usable device, so one test's planted bug does not fail the rest.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/emu/types.h"

// ---------------------------------------------------------------------------------------------
// Errors

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

// ---------------------------------------------------------------------------------------------
// Device

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();

// ---------------------------------------------------------------------------------------------
// Memory

cudaError_t cudaMalloc(void** ptr, size_t size);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t size) {
    return cudaMalloc(reinterpret_cast<void**>(ptr), size);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream = nullptr);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);

// ---------------------------------------------------------------------------------------------
// Streams and events (work runs at the call, so synchronising only checks the handle)

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t event);

// ---------------------------------------------------------------------------------------------
// Kernel attributes: the dynamic shared memory a kernel may use (48 KiB unless raised; at most the
// device's opt-in maximum)

namespace kg {
namespace emu {
cudaError_t set_kernel_attribute(const void* kernel, cudaFuncAttribute attr, int value);
}  // namespace emu
}  // namespace kg

template <typename F>
cudaError_t cudaFuncSetAttribute(F* kernel, cudaFuncAttribute attr, int value) {
    return kg::emu::set_kernel_attribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// ---------------------------------------------------------------------------------------------
// The emulator's own controls and the launch entry point

namespace kg {
namespace emu {

// Device limits the launch checks against (those of an sm_90 GPU).
constexpr int kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {2147483647u, 65535u, 65535u};
constexpr size_t kDefaultDynamicSmem = 48 * 1024;
constexpr size_t kMaxDynamicSmemOptin = 227 * 1024;

// The order in which the threads of a block are started and resumed: "forward" (thread 0 first,
// the default), "reverse", or "random:SEED". The environment variable KERNELGRAD_EMU_SCHEDULE
// sets the initial value; set_schedule throws std::invalid_argument on anything else.
void set_schedule(const char* spec);
const char* schedule();

// The message that goes with the last error this host thread recorded ("" if none): which
// barrier, which lanes, which limit. kg::CudaError appends it to CUDA's own error string.
const char* last_error_detail();

// Run a kernel: grid x block threads, each calling invoke(closure) as a fiber. Returns the error
// (also recorded as the last error); see emu/emu.h for the typed wrapper.
cudaError_t launch_kernel(const void* kernel, dim3 grid, dim3 block, size_t dynamic_smem,
                          cudaStream_t stream, void (*invoke)(const void*), const void* closure);

// Micro-benchmarks of the fiber machinery, in nanoseconds: one bare context switch, and one
// thread's pass through __syncthreads() in a 1024-thread block (two switches plus scheduling).
double context_switch_ns(int iterations);
double syncthreads_ns(int iterations);

}  // namespace emu
}  // namespace kg
