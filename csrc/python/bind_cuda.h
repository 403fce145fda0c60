// bind_cuda.h: the parts of the CUDA modules (_cuda and _cuda_emu, csrc/python/module_cuda.cpp),
// one bind_cuda_<family>.cpp each.
#pragma once

#include <pybind11/pybind11.h>

namespace kg {
namespace cuda {

void bind_cuda_tensor(pybind11::module_& m);  // device memory, elementwise, reductions, indexing
void bind_cuda_conv(pybind11::module_& m);    // conv2d: argument checks, im2col / col2im
void bind_cuda_random(pybind11::module_& m);  // Philox streams: raw, uniform, normal, integers, randperm
void bind_cuda_gemm(pybind11::module_& m);    // batched strided matmul
void bind_cuda_pool(pybind11::module_& m);    // pooling, unpooling, upsampling, reflect/replicate padding
void bind_cuda_norm(pybind11::module_& m);    // softmax, cross-entropy, layer norm, batch norm
void bind_cuda_attention(pybind11::module_& m);  // fused scaled dot-product attention

}  // namespace cuda
}  // namespace kg
