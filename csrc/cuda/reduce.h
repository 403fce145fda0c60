// reduce.h: reductions and scans over the last axis of a contiguous (M, R) array; the caller
// moves the reduced axes last (a permuting copy) first. Every pointer is a device pointer.
#pragma once

#include <cstdint>

#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

// sum/prod accumulate in the compute type (float for float16); max/min propagate NaN; all/any
// take bool input. R == 0 gives the identity (0, 1, true, false); max/min need R > 0.
enum class ReduceOp : int { sum, prod, max, min, all, any };
// out (M) = op over r of in (M, R); out has in's dtype
void reduce_rows(ReduceOp op, DType dtype, void* out, const void* in, int64_t M, int64_t R);
// int64 out (M) = the first r where in (M, R) is largest (is_max) or smallest; NaN counts as the
// extreme, as in NumPy. R > 0.
void arg_reduce_rows(bool is_max, DType dtype, int64_t* out, const void* in, int64_t M, int64_t R);

enum class ScanOp : int { cumsum, cumprod };
// out (M, R) = inclusive scan of in (M, R) along r
void scan_rows(ScanOp op, DType dtype, void* out, const void* in, int64_t M, int64_t R);

}  // namespace cuda
}  // namespace kg
