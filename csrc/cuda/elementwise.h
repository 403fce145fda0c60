// elementwise.h: the n-d strided elementwise kernels behind every device-array operation that is
// not a named kernel: copies with dtype conversion (contiguous copies, permutes, broadcasts,
// slicing, concatenation, astype), unary math, binary arithmetic with broadcasting, comparisons,
// where, fill and arange. Every pointer is a device pointer; strides are in elements and may be 0
// (broadcast) or negative (reversed views). Operands of unary/binary/compare/where have one dtype
// (the caller converts first, with copy); outputs of predicates and comparisons are bool.
#pragma once

#include <cstdint>

#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

enum class UnaryOp : int {
    negative, abs, sign, exp, log, log1p, sqrt, rsqrt, sin, cos, tanh, sigmoid, erf, erfc,
};
enum class PredicateOp : int { isnan, isfinite, logical_not };
enum class BinaryOp : int {
    add, subtract, multiply, divide, floor_divide, trunc_divide, remainder, power, maximum, minimum,
    logical_and, logical_or,
};
enum class CompareOp : int { equal, not_equal, less, less_equal, greater, greater_equal };

// out (layout, out_t) = in (layout, in_t) converted (NumPy's casting rules)
void copy(DType out_t, void* out, DType in_t, const void* in, const Layout<2>& layout);
// out = op(in), one dtype (float ops on int64/bool are not defined: convert to float first)
void unary(UnaryOp op, DType dtype, void* out, const void* in, const Layout<2>& layout);
// bool out = op(in)
void predicate(PredicateOp op, DType dtype, bool* out, const void* in, const Layout<2>& layout);
// out = a op b, one dtype (NumPy semantics: floor_divide and remainder follow Python's signs)
void binary(BinaryOp op, DType dtype, void* out, const void* a, const void* b, const Layout<3>& layout);
// bool out = a op b
void compare(CompareOp op, DType dtype, bool* out, const void* a, const void* b, const Layout<3>& layout);
// out = cond ? a : b
void where(DType dtype, void* out, const bool* cond, const void* a, const void* b, const Layout<4>& layout);
// out = value (int64 out takes ivalue exactly; other dtypes convert value)
void fill(DType dtype, void* out, double value, int64_t ivalue, const Layout<1>& layout);
// out (n), contiguous = start + i * step computed in double (int64: in int64)
void arange(DType dtype, void* out, int64_t n, double start, double step, int64_t istart, int64_t istep);

}  // namespace cuda
}  // namespace kg
