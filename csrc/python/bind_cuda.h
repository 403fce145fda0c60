// bind_cuda.h: the parts of the CUDA modules (_cuda and _cuda_emu, csrc/python/module_cuda.cpp),
// one bind_cuda_<family>.cpp each.
#pragma once

#include <pybind11/pybind11.h>

namespace kg {
namespace cuda {

void bind_cuda_tensor(pybind11::module_& m);  // device memory, elementwise, reductions, indexing
void bind_cuda_attention(pybind11::module_& m);  // fused scaled dot-product attention

}  // namespace cuda
}  // namespace kg
