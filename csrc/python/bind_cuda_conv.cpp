// bind_cuda_conv.cpp: the convolution part of the CUDA modules: the argument checks shared with
// the CPU binding (conv_checks.h, on (dtype kind, itemsize, dtype name, shape) descriptions of the
// device arrays) and the im2col / col2im kernels of csrc/cuda/conv2d.h. The GEMMs and layouts are
// python/kernelgrad/backend/cuda_conv.py's.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/conv2d_shape.h"
#include "cuda/conv2d.h"
#include "python/bind_cuda.h"
#include "python/conv_checks.h"

namespace py = pybind11;

namespace kg {
namespace cuda {

namespace {

using conv_checks::ArrayMeta;
using conv_checks::Pair;
using Meta = std::tuple<std::string, int, std::string, std::vector<int64_t>>;  // kind, itemsize, name, shape
using Geometry = std::array<int64_t, 16>;  // Conv2dShape's fields in order

ArrayMeta meta(const Meta& m) {
    const auto& kind = std::get<0>(m);
    return ArrayMeta{kind.empty() ? '?' : kind[0], std::get<1>(m), std::get<2>(m), std::get<3>(m)};
}

std::optional<ArrayMeta> meta(const std::optional<Meta>& m) {
    return m ? std::optional<ArrayMeta>(meta(*m)) : std::nullopt;
}

Geometry to_geometry(const Conv2dShape& s) {
    return {s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.OH, s.OW, s.stride_h, s.stride_w, s.pad_h, s.pad_w,
            s.dil_h, s.dil_w, s.groups};
}

Conv2dShape from_geometry(const Geometry& g) {
    return Conv2dShape{g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
                       g[14], g[15]};
}

DType float_dtype(int code) {
    if (code != static_cast<int>(DType::Float32) && code != static_cast<int>(DType::Float64))
        throw py::type_error("conv2d: expected float32 or float64 arrays");
    return static_cast<DType>(code);
}

}  // namespace

void bind_cuda_conv(py::module_& m) {
    m.def("conv2d_forward_shape", [](const Meta& x, const Meta& w, const std::optional<Meta>& bias, const Pair& stride,
                                     const Pair& padding, const Pair& dilation, int64_t groups, const Pair& output_size) {
        return to_geometry(conv_checks::forward_shape(meta(x), meta(w), meta(bias), stride, padding, dilation, groups,
                                                      output_size));
    });
    m.def("conv2d_backward_input_shape", [](const Meta& dout, const Meta& w, const std::optional<Meta>& bias,
                                            const Pair& input_size, const Pair& stride, const Pair& padding,
                                            const Pair& dilation, int64_t groups) {
        return to_geometry(conv_checks::backward_input_shape(meta(dout), meta(w), meta(bias), input_size, stride,
                                                             padding, dilation, groups));
    });
    m.def("conv2d_backward_weight_shape", [](const Meta& x, const Meta& dout, const Pair& kernel_size,
                                             const Pair& stride, const Pair& padding, const Pair& dilation,
                                             int64_t groups) {
        return to_geometry(conv_checks::backward_weight_shape(meta(x), meta(dout), kernel_size, stride, padding,
                                                              dilation, groups));
    });
    m.def("im2col", [](int dtype, uintptr_t cols, uintptr_t x, const Geometry& g) {
        const DType t = float_dtype(dtype);
        py::gil_scoped_release release;
        im2col(t, reinterpret_cast<void*>(cols), reinterpret_cast<const void*>(x), from_geometry(g));
    }, "cols (C*R*S, N*OH*OW) <- x (N, C, H, W), both contiguous");
    m.def("col2im", [](int dtype, uintptr_t dx, uintptr_t dcols, const Geometry& g) {
        const DType t = float_dtype(dtype);
        py::gil_scoped_release release;
        col2im(t, reinterpret_cast<void*>(dx), reinterpret_cast<const void*>(dcols), from_geometry(g));
    }, "dx (N, C, H, W) <- the column entries of dcols (C*R*S, N*OH*OW) that read each pixel");
}

}  // namespace cuda
}  // namespace kg
