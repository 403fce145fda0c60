// index.h: gather/scatter by index arrays (advanced indexing, index assignment and accumulation,
// gather and scatter_add along a dim), and nonzero. Every pointer is a device pointer.
#pragma once

#include <cstdint>

#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

constexpr int kMaxIndices = 6;  // index arrays in one indexing operation

// The loop runs over the shape of `values`; Layout operand 0 is `values`, operand 1 the element
// offset in `data` of everything the index arrays do not choose, operands 2.. the int64 index
// arrays (strides 0 where they broadcast). The chosen element of data is
//
//   data[off_1(i) + sum_k wrap(index_k[off_{2+k}(i)]) * dim_stride[k]]
//
// where wrap adds dim_size[k] to a negative index. An index outside [-dim_size, dim_size) is not
// followed; the first one found is written to error (3): (1, the index, k), which the caller reads.
struct IndexSpec {
    int count;
    const int64_t* index[kMaxIndices];
    int64_t dim_size[kMaxIndices];
    int64_t dim_stride[kMaxIndices];
};
using IndexLayout = Layout<2 + kMaxIndices>;

enum class IndexMode : int {
    get,  // values = data[...]
    put,  // data[...] = values (a repeated index keeps one of its values)
    add,  // data[...] += values, accumulating repeats (atomics; float16 and bool are not supported)
};
void index(IndexMode mode, DType dtype, void* values, void* data, const IndexSpec& spec, const IndexLayout& layout,
           int64_t* error);

// Coordinates of the true elements of mask (n, contiguous, of shape `shape` (ndim)) in row-major
// order. With out == nullptr only *count (a device int64) is written; then out (count, ndim).
struct Shape {
    int ndim;
    int64_t size[kMaxDims];
};
void nonzero(int64_t* out, int64_t* count, const bool* mask, int64_t n, const Shape& shape);

}  // namespace cuda
}  // namespace kg
