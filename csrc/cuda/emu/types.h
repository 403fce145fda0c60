// emu/types.h: the CUDA types the emulator shares with host code, under CUDA's own names:
// dim3/uint3, the vector types (float4, ...), cudaError_t and the other runtime enums, the
// stream and event handles, cudaDeviceProp. Values and field names match the CUDA 13 headers so
// that code written against the emulator compiles unchanged with nvcc.
#pragma once

#include <cstddef>

// ---------------------------------------------------------------------------------------------
// Vector types (uint3 among them) with CUDA's alignments (a misaligned float4 access is a UBSan report here, as it
// is a misaligned-address fault on a GPU)

#define KG_EMU_VECTOR_TYPES(T, name)                                                     \
    struct alignas(sizeof(T) * 2) name##2 { T x, y; };                                   \
    struct name##3 { T x, y, z; };                                                       \
    struct alignas(sizeof(T) * 4 > 16 ? 16 : sizeof(T) * 4) name##4 { T x, y, z, w; };   \
    inline name##2 make_##name##2(T x, T y) { return name##2{x, y}; }                    \
    inline name##3 make_##name##3(T x, T y, T z) { return name##3{x, y, z}; }            \
    inline name##4 make_##name##4(T x, T y, T z, T w) { return name##4{x, y, z, w}; }

KG_EMU_VECTOR_TYPES(float, float)
KG_EMU_VECTOR_TYPES(double, double)
KG_EMU_VECTOR_TYPES(int, int)
KG_EMU_VECTOR_TYPES(unsigned int, uint)
KG_EMU_VECTOR_TYPES(signed char, char)
KG_EMU_VECTOR_TYPES(unsigned char, uchar)
#undef KG_EMU_VECTOR_TYPES

// ---------------------------------------------------------------------------------------------
// dim3: the launch-configuration type, 1 in every dimension not given

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

// ---------------------------------------------------------------------------------------------
// Errors (values as in CUDA's driver_types.h)

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorInsufficientDriver = 35,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxBlockDimX = 2,
    cudaDevAttrMaxBlockDimY = 3,
    cudaDevAttrMaxBlockDimZ = 4,
    cudaDevAttrMaxGridDimX = 5,
    cudaDevAttrMaxGridDimY = 6,
    cudaDevAttrMaxGridDimZ = 7,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

// ---------------------------------------------------------------------------------------------
// Handles: pointers to opaque structs, as in CUDA (0 is the default stream)

struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02

// ---------------------------------------------------------------------------------------------
// Device properties: the subset of CUDA's cudaDeviceProp fields the emulator fills in

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    int regsPerBlock;
    int warpSize;
    int maxThreadsPerBlock;
    int maxThreadsDim[3];
    int maxGridSize[3];
    size_t totalConstMem;
    int major;
    int minor;
    int multiProcessorCount;
    int l2CacheSize;
    int maxThreadsPerMultiProcessor;
    size_t sharedMemPerMultiprocessor;
    size_t sharedMemPerBlockOptin;
};
