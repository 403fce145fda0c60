// bind_conv.cpp: the conv2d kernels of csrc/cpu/conv2d.h in kernelgrad._C.
//
// Checks every argument (conv_checks.h, shared with the CUDA binding), makes C-contiguous inputs (a copy only when
// needed), allocates the output and releases the GIL around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "cpu/conv2d.h"
#include "python/conv_checks.h"

namespace py = pybind11;

namespace {

using kg::conv_checks::ArrayMeta;
using kg::conv_checks::Pair;
using kg::cpu::Conv2dShape;

// a as a C-contiguous, aligned array of native T: a itself when it is one already, else a copy.
// (The caller has checked that a is float32 or float64 of T's size.)
template <typename T>
using Contiguous = py::array_t<T, py::array::c_style | py::detail::npy_api::NPY_ARRAY_ALIGNED_>;

template <typename T>
Contiguous<T> contiguous(const py::array& a) {
    auto c = Contiguous<T>::ensure(a);
    if (!c) throw py::error_already_set();
    return c;
}

template <typename T>
std::optional<Contiguous<T>> contiguous(const std::optional<py::array>& a) {
    if (!a) return std::nullopt;
    return contiguous<T>(*a);
}

// ----------------------------------------------------------------------------------------------
// The three kernels on checked arguments

template <typename T>
py::array forward_typed(const py::array& x_in, const py::array& w_in,
                        const std::optional<py::array>& bias_in, const Conv2dShape& sz, bool plain) {
    const auto x = contiguous<T>(x_in), w = contiguous<T>(w_in);
    const auto bias = contiguous<T>(bias_in);
    py::array_t<T> out({sz.N, sz.K, sz.OH, sz.OW});
    T* o = out.mutable_data();
    const T *xp = x.data(), *wp = w.data(), *bp = bias ? bias->data() : nullptr;
    {
        py::gil_scoped_release no_gil;
        plain ? kg::cpu::conv2d_forward_plain(o, xp, wp, bp, sz)
              : kg::cpu::conv2d_forward(o, xp, wp, bp, sz);
    }
    return std::move(out);
}

template <typename T>
py::array backward_input_typed(const py::array& dout_in, const py::array& w_in,
                               const std::optional<py::array>& bias_in, const Conv2dShape& sz,
                               bool plain) {
    const auto dout = contiguous<T>(dout_in), w = contiguous<T>(w_in);
    const auto bias = contiguous<T>(bias_in);
    py::array_t<T> dx({sz.N, sz.C, sz.H, sz.W});
    T* o = dx.mutable_data();
    const T *dp = dout.data(), *wp = w.data(), *bp = bias ? bias->data() : nullptr;
    {
        py::gil_scoped_release no_gil;
        plain ? kg::cpu::conv2d_backward_input_plain(o, dp, wp, bp, sz)
              : kg::cpu::conv2d_backward_input(o, dp, wp, bp, sz);
    }
    return std::move(dx);
}

template <typename T>
py::array backward_weight_typed(const py::array& x_in, const py::array& dout_in, const Conv2dShape& sz,
                                bool plain) {
    const auto x = contiguous<T>(x_in), dout = contiguous<T>(dout_in);
    py::array_t<T> dw({sz.K, sz.C / sz.groups, sz.R, sz.S});
    T* o = dw.mutable_data();
    const T *xp = x.data(), *dp = dout.data();
    {
        py::gil_scoped_release no_gil;
        plain ? kg::cpu::conv2d_backward_weight_plain(o, xp, dp, sz)
              : kg::cpu::conv2d_backward_weight(o, xp, dp, sz);
    }
    return std::move(dw);
}

// ----------------------------------------------------------------------------------------------
// Bindings

py::array conv2d_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                         const Pair& stride, const Pair& padding, const Pair& dilation, int64_t groups,
                         const Pair& output_size, bool plain) {
    const Conv2dShape sz = kg::conv_checks::forward_shape(ArrayMeta::of(x), ArrayMeta::of(weight), ArrayMeta::of(bias),
                                                          stride, padding, dilation, groups, output_size);
    return x.dtype().itemsize() == 4 ? forward_typed<float>(x, weight, bias, sz, plain)
                                     : forward_typed<double>(x, weight, bias, sz, plain);
}

py::array conv2d_backward_input(const py::array& grad_output, const py::array& weight,
                                const std::optional<py::array>& bias, const Pair& input_size,
                                const Pair& stride, const Pair& padding, const Pair& dilation,
                                int64_t groups, bool plain) {
    const Conv2dShape sz = kg::conv_checks::backward_input_shape(ArrayMeta::of(grad_output), ArrayMeta::of(weight),
                                                                 ArrayMeta::of(bias), input_size, stride, padding,
                                                                 dilation, groups);
    return grad_output.dtype().itemsize() == 4
               ? backward_input_typed<float>(grad_output, weight, bias, sz, plain)
               : backward_input_typed<double>(grad_output, weight, bias, sz, plain);
}

py::array conv2d_backward_weight(const py::array& x, const py::array& grad_output, const Pair& kernel_size,
                                 const Pair& stride, const Pair& padding, const Pair& dilation,
                                 int64_t groups, bool plain) {
    const Conv2dShape sz = kg::conv_checks::backward_weight_shape(ArrayMeta::of(x), ArrayMeta::of(grad_output),
                                                                  kernel_size, stride, padding, dilation, groups);
    return x.dtype().itemsize() == 4 ? backward_weight_typed<float>(x, grad_output, sz, plain)
                                     : backward_weight_typed<double>(x, grad_output, sz, plain);
}

}  // namespace

void bind_conv(py::module_& m) {
    using py::arg;
    const std::string geometry_doc =
        "stride, padding, dilation: (h, w) pairs, stride and dilation >= 1, padding >= 0: the top and\n"
        "left zero padding (the bottom and right padding is what the sizes imply). groups divides C\n"
        "and K. Arrays: float32 or float64 (one dtype), any strides (made contiguous). plain=True runs\n"
        "the plain loop kernel instead of the GEMM one (for tests). The GIL is released.";
    m.def("conv2d_forward", &conv2d_forward, arg("x"), arg("weight"), arg("bias"), arg("stride"),
          arg("padding"), arg("dilation"), arg("groups"), arg("output_size"), arg("plain") = false,
          ("conv2d_forward(x, weight, bias, stride, padding, dilation, groups, output_size) -> out\n\n"
           "out (N, K, OH, OW) = conv2d(x (N, C, H, W), weight (K, C/groups, R, S)) + bias (K,) or\n"
           "None; output_size = (OH, OW) >= 1.\n" + geometry_doc).c_str());
    m.def("conv2d_backward_input", &conv2d_backward_input, arg("grad_output"), arg("weight"), arg("bias"),
          arg("input_size"), arg("stride"), arg("padding"), arg("dilation"), arg("groups"),
          arg("plain") = false,
          ("conv2d_backward_input(grad_output, weight, bias, input_size, stride, padding, dilation,\n"
           "groups) -> dx\n\n"
           "dx (N, C, H, W): the gradient of conv2d with respect to its input, for grad_output\n"
           "(N, K, OH, OW) and weight (K, C/groups, R, S); input_size = (H, W) >= 1. Plus bias (C,) per\n"
           "channel when given: this is conv_transpose2d.\n" + geometry_doc).c_str());
    m.def("conv2d_backward_weight", &conv2d_backward_weight, arg("x"), arg("grad_output"),
          arg("kernel_size"), arg("stride"), arg("padding"), arg("dilation"), arg("groups"),
          arg("plain") = false,
          ("conv2d_backward_weight(x, grad_output, kernel_size, stride, padding, dilation, groups)\n"
           "-> dw\n\n"
           "dw (K, C/groups, R, S): the gradient of conv2d with respect to its weight, for x\n"
           "(N, C, H, W) and grad_output (N, K, OH, OW); kernel_size = (R, S) >= 1.\n" + geometry_doc)
              .c_str());
}
