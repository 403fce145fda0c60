// emu/runtime.cpp: the emulated CUDA runtime API (see runtime.h): errors, the device, memory,
// streams, events and kernel attributes. Kernel launches are in scheduler.cpp.
#include "cuda/emu/runtime.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "cuda/emu/internal.h"

// The handle types are opaque to users; here they are what the emulator keeps per handle.
struct CUstream_st {
    unsigned flags;
};
struct CUevent_st {
    unsigned flags;
    bool recorded;
    std::chrono::steady_clock::time_point time;
};

namespace kg {
namespace emu {

// ---------------------------------------------------------------------------------------------
// Errors: per host thread, like CUDA's

namespace {
thread_local cudaError_t last_error = cudaSuccess;
thread_local std::string last_detail;
}  // namespace

cudaError_t record_error(cudaError_t code, std::string detail) {
    last_error = code;
    last_detail = std::move(detail);
    return code;
}

const char* last_error_detail() { return last_detail.c_str(); }

// ---------------------------------------------------------------------------------------------
// Registries: live allocations (for the checks in cudaMemcpy/cudaMemset/cudaFree), streams,
// events and kernel attributes

namespace {

std::mutex registry_mutex;
std::map<uintptr_t, size_t> allocations;  // start -> size
std::set<const CUstream_st*> streams;
std::set<const CUevent_st*> events;
std::unordered_map<const void*, size_t> smem_limits;
size_t allocated_bytes = 0;

constexpr size_t kTotalMemory = size_t(16) << 30;  // what cudaMemGetInfo and the properties report

// Whether [p, p + count) lies inside one live allocation.
bool is_device_range(const void* p, size_t count) {
    const auto start = reinterpret_cast<uintptr_t>(p);
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = allocations.upper_bound(start);
    if (it == allocations.begin()) return false;
    --it;
    return start >= it->first && start - it->first <= it->second && count <= it->second - (start - it->first);
}

bool is_device_pointer(const void* p) { return is_device_range(p, 1); }

std::string describe_pointer(const void* p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%p", p);
    return buf;
}

cudaError_t check_device_range(const char* call, const char* role, const void* p, size_t count) {
    if (is_device_range(p, count)) return cudaSuccess;
    return record_error(cudaErrorInvalidValue, std::string(call) + ": the " + role + " [" + describe_pointer(p) +
                                                   ", +" + std::to_string(count) +
                                                   " bytes) is not inside one cudaMalloc'ed allocation");
}

}  // namespace

bool is_valid_stream(cudaStream_t stream) {
    if (stream == nullptr) return true;
    std::lock_guard<std::mutex> lock(registry_mutex);
    return streams.count(stream) != 0;
}

size_t dynamic_smem_limit(const void* kernel) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto it = smem_limits.find(kernel);
    return it == smem_limits.end() ? kDefaultDynamicSmem : it->second;
}

cudaError_t set_kernel_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return record_error(cudaErrorInvalidValue, "cudaFuncSetAttribute: the emulator knows only "
                                                   "cudaFuncAttributeMaxDynamicSharedMemorySize");
    if (kernel == nullptr) return record_error(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: null kernel");
    if (value < 0 || static_cast<size_t>(value) > kMaxDynamicSmemOptin)
        return record_error(cudaErrorInvalidValue,
                            "cudaFuncSetAttribute: " + std::to_string(value) +
                                " bytes of dynamic shared memory is outside 0.." + std::to_string(kMaxDynamicSmemOptin) +
                                " (the device's opt-in maximum)");
    std::lock_guard<std::mutex> lock(registry_mutex);
    smem_limits[kernel] = static_cast<size_t>(value);
    return cudaSuccess;
}

}  // namespace emu
}  // namespace kg

using kg::emu::record_error;

// ---------------------------------------------------------------------------------------------
// Errors

cudaError_t cudaGetLastError() {
    const cudaError_t e = kg::emu::last_error;
    kg::emu::last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError() { return kg::emu::last_error; }

const char* cudaGetErrorName(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInitializationError: return "cudaErrorInitializationError";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
        case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
        case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
        case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
        case cudaErrorNoDevice: return "cudaErrorNoDevice";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
        case cudaErrorNotReady: return "cudaErrorNotReady";
        case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
        case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorNotSupported: return "cudaErrorNotSupported";
        case cudaErrorUnknown: return "cudaErrorUnknown";
    }
    return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInitializationError: return "initialization error";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorInvalidDevicePointer: return "invalid device pointer";
        case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
        case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
        case cudaErrorInvalidDeviceFunction: return "invalid device function";
        case cudaErrorNoDevice: return "no CUDA-capable device is detected";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        case cudaErrorInvalidResourceHandle: return "invalid resource handle";
        case cudaErrorNotReady: return "device not ready";
        case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
        case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
        case cudaErrorLaunchFailure: return "unspecified launch failure";
        case cudaErrorNotSupported: return "operation not supported";
        case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}

// ---------------------------------------------------------------------------------------------
// Device: one, with an sm_90 GPU's limits

cudaError_t cudaGetDeviceCount(int* count) {
    if (count == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDeviceCount: null pointer");
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    if (device == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDevice: null pointer");
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0)
        return record_error(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(device) +
                                                        "): the emulator has one device, 0");
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (prop == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDeviceProperties: null pointer");
    if (device != 0) return record_error(cudaErrorInvalidDevice, "cudaGetDeviceProperties: no device " + std::to_string(device));
    using namespace kg::emu;
    std::memset(prop, 0, sizeof *prop);
    std::snprintf(prop->name, sizeof prop->name, "kernelgrad CUDA emulator (CPU)");
    prop->totalGlobalMem = kTotalMemory;
    prop->sharedMemPerBlock = kDefaultDynamicSmem;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = kMaxThreadsPerBlock;
    for (int d = 0; d < 3; ++d) {
        prop->maxThreadsDim[d] = static_cast<int>(kMaxBlockDim[d]);
        prop->maxGridSize[d] = static_cast<int>(kMaxGridDim[d]);
    }
    prop->totalConstMem = 65536;
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->l2CacheSize = 50 << 20;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->sharedMemPerMultiprocessor = 228 * 1024;
    prop->sharedMemPerBlockOptin = kMaxDynamicSmemOptin;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    cudaDeviceProp p;
    if (value == nullptr) return record_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: null pointer");
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) return cudaErrorInvalidDevice;
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
        case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
        case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
        case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
        case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
        case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
        case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(p.sharedMemPerBlock); break;
        case cudaDevAttrWarpSize: *value = p.warpSize; break;
        case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
        case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
        case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(p.sharedMemPerBlockOptin); break;
        default:
            return record_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " +
                                                           std::to_string(static_cast<int>(attr)) +
                                                           " is not emulated");
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

// ---------------------------------------------------------------------------------------------
// Memory

cudaError_t cudaMalloc(void** ptr, size_t size) {
    using namespace kg::emu;
    if (ptr == nullptr) return record_error(cudaErrorInvalidValue, "cudaMalloc: null pointer");
    *ptr = nullptr;
    if (size == 0) return cudaSuccess;
    // Exactly `size` bytes (no rounding), 256-byte aligned like the GPU's allocations.
    void* p = nullptr;
    if (posix_memalign(&p, 256, size) != 0)
        return record_error(cudaErrorMemoryAllocation, "cudaMalloc: " + std::to_string(size) + " bytes");
    std::memset(p, 0xFF, size);  // NaN in float and double: unwritten outputs show
    std::lock_guard<std::mutex> lock(registry_mutex);
    allocations[reinterpret_cast<uintptr_t>(p)] = size;
    allocated_bytes += size;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
    using namespace kg::emu;
    if (ptr == nullptr) return cudaSuccess;
    {
        std::lock_guard<std::mutex> lock(registry_mutex);
        auto it = allocations.find(reinterpret_cast<uintptr_t>(ptr));
        if (it != allocations.end()) {
            allocated_bytes -= it->second;
            allocations.erase(it);
            std::free(ptr);
            return cudaSuccess;
        }
    }
    return record_error(cudaErrorInvalidValue,
                        "cudaFree(" + describe_pointer(ptr) + "): not the start of a live cudaMalloc'ed allocation");
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
    using namespace kg::emu;
    if (count == 0) return cudaSuccess;
    if (kind == cudaMemcpyDefault)  // unified addressing: the pointers say which side they are on
        kind = is_device_pointer(src) ? (is_device_pointer(dst) ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                                      : (is_device_pointer(dst) ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
    cudaError_t e = cudaSuccess;
    switch (kind) {
        case cudaMemcpyHostToHost: break;
        case cudaMemcpyHostToDevice: e = check_device_range("cudaMemcpy", "destination", dst, count); break;
        case cudaMemcpyDeviceToHost: e = check_device_range("cudaMemcpy", "source", src, count); break;
        case cudaMemcpyDeviceToDevice:
            e = check_device_range("cudaMemcpy", "destination", dst, count);
            if (e == cudaSuccess) e = check_device_range("cudaMemcpy", "source", src, count);
            break;
        default:
            return record_error(cudaErrorInvalidMemcpyDirection,
                                "cudaMemcpy: kind " + std::to_string(static_cast<int>(kind)));
    }
    if (e != cudaSuccess) return e;
    if (dst == nullptr || src == nullptr) return record_error(cudaErrorInvalidValue, "cudaMemcpy: null pointer");
    std::memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
    if (!kg::emu::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaMemcpyAsync: the stream is not live");
    return cudaMemcpy(dst, src, count, kind);
}

cudaError_t cudaMemset(void* ptr, int value, size_t count) {
    using namespace kg::emu;
    if (count == 0) return cudaSuccess;
    const cudaError_t e = check_device_range("cudaMemset", "range", ptr, count);
    if (e != cudaSuccess) return e;
    std::memset(ptr, value, count);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
    if (!kg::emu::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaMemsetAsync: the stream is not live");
    return cudaMemset(ptr, value, count);
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
    using namespace kg::emu;
    if (free == nullptr || total == nullptr) return record_error(cudaErrorInvalidValue, "cudaMemGetInfo: null pointer");
    std::lock_guard<std::mutex> lock(registry_mutex);
    *total = kTotalMemory;
    *free = allocated_bytes < kTotalMemory ? kTotalMemory - allocated_bytes : 0;
    return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------
// Streams

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
    using namespace kg::emu;
    if (stream == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamCreate: null pointer");
    *stream = new CUstream_st{flags};
    std::lock_guard<std::mutex> lock(registry_mutex);
    streams.insert(*stream);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    using namespace kg::emu;
    {
        std::lock_guard<std::mutex> lock(registry_mutex);
        if (stream != nullptr && streams.erase(stream) == 1) {
            delete stream;
            return cudaSuccess;
        }
    }
    return record_error(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: not a live stream");
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (!kg::emu::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: not a live stream");
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
    using namespace kg::emu;
    if (!is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: not a live stream");
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (events.count(event) == 0)
        return record_error(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: not a live event");
    return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------
// Events: a record takes the time at once, since all work before it has already run

namespace {
cudaError_t check_event(const char* call, cudaEvent_t event) {
    using namespace kg::emu;
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (event != nullptr && events.count(event) == 1) return cudaSuccess;
    return record_error(cudaErrorInvalidResourceHandle, std::string(call) + ": not a live event");
}
}  // namespace

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
    using namespace kg::emu;
    if (event == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventCreate: null pointer");
    *event = new CUevent_st{flags, false, {}};
    std::lock_guard<std::mutex> lock(registry_mutex);
    events.insert(*event);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (check_event("cudaEventRecord", event) != cudaSuccess) return cudaErrorInvalidResourceHandle;
    if (!kg::emu::is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "cudaEventRecord: not a live stream");
    event->recorded = true;
    event->time = std::chrono::steady_clock::now();
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) { return check_event("cudaEventSynchronize", event); }

cudaError_t cudaEventQuery(cudaEvent_t event) { return check_event("cudaEventQuery", event); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (ms == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventElapsedTime: null pointer");
    if (check_event("cudaEventElapsedTime", start) != cudaSuccess ||
        check_event("cudaEventElapsedTime", end) != cudaSuccess)
        return cudaErrorInvalidResourceHandle;
    if (!start->recorded || !end->recorded || ((start->flags | end->flags) & cudaEventDisableTiming))
        return record_error(cudaErrorInvalidResourceHandle,
                            "cudaEventElapsedTime: both events must be recorded, with timing enabled");
    *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    using namespace kg::emu;
    {
        std::lock_guard<std::mutex> lock(registry_mutex);
        if (event != nullptr && events.erase(event) == 1) {
            delete event;
            return cudaSuccess;
        }
    }
    return record_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy: not a live event");
}
