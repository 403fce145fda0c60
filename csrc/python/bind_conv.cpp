// bind_conv.cpp: the conv2d kernels of csrc/cpu/conv2d.h in kernelgrad._C.
//
// Checks every argument (TypeError for dtypes, ValueError for shapes and values, naming the
// argument, what was expected and what was given), makes C-contiguous inputs (a copy only when
// needed), allocates the output and releases the GIL around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "cpu/conv2d.h"

namespace py = pybind11;

namespace {

using Pair = std::array<int64_t, 2>;
using kg::cpu::Conv2dShape;

// ----------------------------------------------------------------------------------------------
// Argument checks

std::string shape_of(const py::array& a) { return py::str(a.attr("shape")); }
std::string str(const Pair& p) { return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")"; }

[[noreturn]] void value_error(const char* fn, const std::string& msg) {
    throw py::value_error(std::string(fn) + ": " + msg);
}

void check_float(const char* fn, const char* name, const py::array& a) {
    const py::dtype dt = a.dtype();
    if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8))
        throw py::type_error(std::string(fn) + ": expected " + name + " to be float32 or float64, got " +
                             std::string(py::str(dt)));
}

// a has ref's dtype (byte order aside), ref being float32 or float64
void check_same_dtype(const char* fn, const char* name, const py::array& a, const char* ref_name,
                      const py::array& ref) {
    if (a.dtype().kind() != 'f' || a.dtype().itemsize() != ref.dtype().itemsize())
        throw py::type_error(std::string(fn) + ": expected " + name + " to have the dtype of " + ref_name +
                             " (" + std::string(py::str(ref.dtype())) + "), got " +
                             std::string(py::str(a.dtype())));
}

void check_ndim(const char* fn, const char* name, const py::array& a, py::ssize_t ndim,
                const char* layout) {
    if (a.ndim() != ndim)
        value_error(fn, std::string("expected ") + name + " to be " + std::to_string(ndim) + "-D " +
                            layout + ", got shape " + shape_of(a));
}

void check_at_least(const char* fn, const char* name, const Pair& p, int64_t low) {
    if (p[0] < low || p[1] < low)
        value_error(fn, std::string("expected ") + name + " >= " + std::to_string(low) + ", got " +
                            str(p));
}

// grad_output (N, K, OH, OW) with OH, OW >= 1
void check_grad_output(const char* fn, const py::array& grad_output) {
    check_ndim(fn, "grad_output", grad_output, 4, "(N, K, OH, OW)");
    if (grad_output.shape(2) < 1 || grad_output.shape(3) < 1)
        value_error(fn, "expected grad_output to have OH, OW >= 1, got shape " + shape_of(grad_output));
}

// The geometry arguments every binding takes, checked; the sizes are filled in by the caller.
Conv2dShape geometry(const char* fn, const Pair& stride, const Pair& padding, const Pair& dilation,
                     int64_t groups) {
    check_at_least(fn, "stride", stride, 1);
    check_at_least(fn, "padding", padding, 0);
    check_at_least(fn, "dilation", dilation, 1);
    if (groups < 1) value_error(fn, "expected groups >= 1, got " + std::to_string(groups));
    Conv2dShape sz{};
    sz.stride_h = stride[0], sz.stride_w = stride[1];
    sz.pad_h = padding[0], sz.pad_w = padding[1];
    sz.dil_h = dilation[0], sz.dil_w = dilation[1];
    sz.groups = groups;
    return sz;
}

// Checks a weight w (K, C / groups, R, S) against C and groups; sets sz.C, sz.K, sz.R, sz.S.
void set_channels(const char* fn, Conv2dShape& sz, int64_t C, const char* C_from, const py::array& w) {
    check_ndim(fn, "weight", w, 4, "(K, C / groups, R, S)");
    if (C % sz.groups != 0 || w.shape(0) % sz.groups != 0)
        value_error(fn, "expected groups = " + std::to_string(sz.groups) + " to divide the channels C = " +
                            std::to_string(C) + " (" + C_from + ") and K = weight.shape[0] = " +
                            std::to_string(w.shape(0)));
    if (w.shape(1) != C / sz.groups)
        value_error(fn, "expected weight.shape[1] == C / groups = " + std::to_string(C / sz.groups) +
                            " (C = " + C_from + "), got weight of shape " + shape_of(w));
    if (w.shape(2) < 1 || w.shape(3) < 1)
        value_error(fn, "expected a kernel of at least 1 x 1, got weight of shape " + shape_of(w));
    sz.C = C, sz.K = w.shape(0), sz.R = w.shape(2), sz.S = w.shape(3);
}

void check_bias(const char* fn, const std::optional<py::array>& bias, int64_t n, const char* what,
                const char* ref_name, const py::array& ref) {
    if (!bias) return;
    check_same_dtype(fn, "bias", *bias, ref_name, ref);
    if (bias->ndim() != 1 || bias->shape(0) != n)
        value_error(fn, "expected bias of shape (" + std::to_string(n) + ",) (" + what + "), got shape " +
                            shape_of(*bias));
}

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
    const char* fn = "conv2d_forward";
    check_float(fn, "x", x);
    check_same_dtype(fn, "weight", weight, "x", x);
    check_ndim(fn, "x", x, 4, "(N, C, H, W)");
    Conv2dShape sz = geometry(fn, stride, padding, dilation, groups);
    set_channels(fn, sz, x.shape(1), "x.shape[1]", weight);
    check_at_least(fn, "output_size", output_size, 1);
    check_bias(fn, bias, sz.K, "K = weight.shape[0]", "x", x);
    sz.N = x.shape(0), sz.H = x.shape(2), sz.W = x.shape(3);
    sz.OH = output_size[0], sz.OW = output_size[1];
    return x.dtype().itemsize() == 4 ? forward_typed<float>(x, weight, bias, sz, plain)
                                     : forward_typed<double>(x, weight, bias, sz, plain);
}

py::array conv2d_backward_input(const py::array& grad_output, const py::array& weight,
                                const std::optional<py::array>& bias, const Pair& input_size,
                                const Pair& stride, const Pair& padding, const Pair& dilation,
                                int64_t groups, bool plain) {
    const char* fn = "conv2d_backward_input";
    check_float(fn, "grad_output", grad_output);
    check_same_dtype(fn, "weight", weight, "grad_output", grad_output);
    check_grad_output(fn, grad_output);
    Conv2dShape sz = geometry(fn, stride, padding, dilation, groups);
    check_ndim(fn, "weight", weight, 4, "(K, C / groups, R, S)");
    set_channels(fn, sz, weight.shape(1) * groups, "weight.shape[1] * groups", weight);
    if (grad_output.shape(1) != sz.K)
        value_error(fn, "expected grad_output.shape[1] == K = weight.shape[0] = " + std::to_string(sz.K) +
                            ", got grad_output of shape " + shape_of(grad_output));
    check_at_least(fn, "input_size", input_size, 1);
    check_bias(fn, bias, sz.C, "C = weight.shape[1] * groups", "grad_output", grad_output);
    sz.N = grad_output.shape(0), sz.H = input_size[0], sz.W = input_size[1];
    sz.OH = grad_output.shape(2), sz.OW = grad_output.shape(3);
    return grad_output.dtype().itemsize() == 4
               ? backward_input_typed<float>(grad_output, weight, bias, sz, plain)
               : backward_input_typed<double>(grad_output, weight, bias, sz, plain);
}

py::array conv2d_backward_weight(const py::array& x, const py::array& grad_output, const Pair& kernel_size,
                                 const Pair& stride, const Pair& padding, const Pair& dilation,
                                 int64_t groups, bool plain) {
    const char* fn = "conv2d_backward_weight";
    check_float(fn, "x", x);
    check_same_dtype(fn, "grad_output", grad_output, "x", x);
    check_ndim(fn, "x", x, 4, "(N, C, H, W)");
    check_grad_output(fn, grad_output);
    Conv2dShape sz = geometry(fn, stride, padding, dilation, groups);
    check_at_least(fn, "kernel_size", kernel_size, 1);
    if (grad_output.shape(0) != x.shape(0))
        value_error(fn, "expected x and grad_output to have the same batch size N, got shapes " +
                            shape_of(x) + " and " + shape_of(grad_output));
    if (x.shape(1) % groups != 0 || grad_output.shape(1) % groups != 0)
        value_error(fn, "expected groups = " + std::to_string(groups) + " to divide C = x.shape[1] = " +
                            std::to_string(x.shape(1)) + " and K = grad_output.shape[1] = " +
                            std::to_string(grad_output.shape(1)));
    sz.N = x.shape(0), sz.C = x.shape(1), sz.H = x.shape(2), sz.W = x.shape(3);
    sz.K = grad_output.shape(1), sz.R = kernel_size[0], sz.S = kernel_size[1];
    sz.OH = grad_output.shape(2), sz.OW = grad_output.shape(3);
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
