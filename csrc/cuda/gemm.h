// gemm.h: batched strided matrix multiply on the GPU (the classic SGEMM ladder, see gemm.cu).
//
//   C[b] (M x N) = A[b] (M x K) @ B[b] (K x N)        for b in [0, batch)
//
// Every pointer is a device pointer. Each operand comes with three strides in elements, in the
// order (batch, row, col): element (b, i, j) of C is c[b * cs[0] + i * cs[1] + j * cs[2]], and
// likewise for A and B. Strides may be anything: a transposed view has row stride 1, a broadcast
// batch has batch stride 0, a negative stride walks backwards. C is written, never read, and must
// not overlap A or B. K == 0 writes zeros.
#pragma once

#include <cstdint>

#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

// The kernels, slowest to fastest, and which element types each one takes:
//   naive: one thread per element of C                      int64, float16, float32, float64
//   smem:  32 x 32 tiles of A and B in shared memory        float32, float64
//   reg2d: 128 x 128 block tiles, an 8 x 8 register tile    float32 (float64: 64 x 64 and 4 x 4)
//          per thread
//   vec:   reg2d with float4 global loads and stores        float32
// automatic: vec for float32 (reg2d where vec does not apply), reg2d for float64, naive for int64
// and float16.
// vec reads A and B along whichever of their dims has stride 1, and writes C along its rows, 4
// elements at a time: it needs 16-byte aligned pointers, the other strides and the sizes along
// those dims multiples of 4; where an operand does not have them, vec runs reg2d instead. bool has
// no matmul here (the caller converts).
enum class GemmVersion : int { automatic, naive, smem, reg2d, vec };
constexpr GemmVersion kGemmVersions[] = {GemmVersion::automatic, GemmVersion::naive, GemmVersion::smem,
                                         GemmVersion::reg2d, GemmVersion::vec};
const char* gemm_version_name(GemmVersion version);  // "auto", "naive", "smem", "reg2d", "vec"

// The version gemm() runs for these arguments (never automatic). Throws std::invalid_argument when
// `version` does not take `dtype`.
GemmVersion gemm_version(GemmVersion version, DType dtype,
                         const void* c, const int64_t c_strides[3],
                         const void* a, const int64_t a_strides[3],
                         const void* b, const int64_t b_strides[3],
                         int64_t batch, int64_t M, int64_t N, int64_t K);

// c (batch, M, N) = a (batch, M, K) @ b (batch, K, N), all of `dtype`; accumulates in the compute
// type (float for float16, exact int64 arithmetic for int64, wrapping on overflow).
void gemm(GemmVersion version, DType dtype,
          void* c, const int64_t c_strides[3],
          const void* a, const int64_t a_strides[3],
          const void* b, const int64_t b_strides[3],
          int64_t batch, int64_t M, int64_t N, int64_t K);

}  // namespace cuda
}  // namespace kg
