// conv_checks.h: the argument checks of the conv2d bindings, shared by the CPU binding
// (bind_conv.cpp, NumPy arrays) and the CUDA binding (bind_cuda_conv.cpp, device arrays described
// by dtype and shape). Each entry point's check returns the convolution's Conv2dShape or throws
// TypeError (dtypes) / ValueError (shapes and values) naming the argument, what was expected and
// what was given.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/conv2d_shape.h"

namespace kg {
namespace conv_checks {

namespace py = pybind11;
using Pair = std::array<int64_t, 2>;

// What the checks look at: dtype and shape.
struct ArrayMeta {
    char kind;  // NumPy's dtype kind: 'f', 'i', 'b', ...
    int itemsize;
    std::string dtype;
    std::vector<int64_t> shape;

    static ArrayMeta of(const py::array& a) {
        ArrayMeta m{a.dtype().kind(), static_cast<int>(a.dtype().itemsize()), std::string(py::str(a.dtype())), {}};
        for (py::ssize_t d = 0; d < a.ndim(); ++d) m.shape.push_back(a.shape(d));
        return m;
    }
    static std::optional<ArrayMeta> of(const std::optional<py::array>& a) {
        return a ? std::optional<ArrayMeta>(of(*a)) : std::nullopt;
    }
    int64_t ndim() const { return static_cast<int64_t>(shape.size()); }
    int64_t dim(int d) const { return shape[static_cast<size_t>(d)]; }
    std::string shape_str() const {
        std::string s = "(";
        for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
        return s + (shape.size() == 1 ? ",)" : ")");
    }
};

inline std::string str(const Pair& p) { return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")"; }

[[noreturn]] inline void value_error(const char* fn, const std::string& msg) {
    throw py::value_error(std::string(fn) + ": " + msg);
}

inline void check_float(const char* fn, const char* name, const ArrayMeta& a) {
    if (a.kind != 'f' || (a.itemsize != 4 && a.itemsize != 8))
        throw py::type_error(std::string(fn) + ": expected " + name + " to be float32 or float64, got " + a.dtype);
}

// a has ref's dtype (byte order aside), ref being float32 or float64
inline void check_same_dtype(const char* fn, const char* name, const ArrayMeta& a, const char* ref_name,
                             const ArrayMeta& ref) {
    if (a.kind != 'f' || a.itemsize != ref.itemsize)
        throw py::type_error(std::string(fn) + ": expected " + name + " to have the dtype of " + ref_name + " (" +
                             ref.dtype + "), got " + a.dtype);
}

inline void check_ndim(const char* fn, const char* name, const ArrayMeta& a, int64_t ndim, const char* layout) {
    if (a.ndim() != ndim)
        value_error(fn, std::string("expected ") + name + " to be " + std::to_string(ndim) + "-D " + layout +
                            ", got shape " + a.shape_str());
}

inline void check_at_least(const char* fn, const char* name, const Pair& p, int64_t low) {
    if (p[0] < low || p[1] < low)
        value_error(fn, std::string("expected ") + name + " >= " + std::to_string(low) + ", got " + str(p));
}

// grad_output (N, K, OH, OW) with OH, OW >= 1
inline void check_grad_output(const char* fn, const ArrayMeta& grad_output) {
    check_ndim(fn, "grad_output", grad_output, 4, "(N, K, OH, OW)");
    if (grad_output.dim(2) < 1 || grad_output.dim(3) < 1)
        value_error(fn, "expected grad_output to have OH, OW >= 1, got shape " + grad_output.shape_str());
}

// The geometry arguments every binding takes, checked; the sizes are filled in by the caller.
inline Conv2dShape geometry(const char* fn, const Pair& stride, const Pair& padding, const Pair& dilation,
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
inline void set_channels(const char* fn, Conv2dShape& sz, int64_t C, const char* C_from, const ArrayMeta& w) {
    check_ndim(fn, "weight", w, 4, "(K, C / groups, R, S)");
    if (C % sz.groups != 0 || w.dim(0) % sz.groups != 0)
        value_error(fn, "expected groups = " + std::to_string(sz.groups) + " to divide the channels C = " +
                            std::to_string(C) + " (" + C_from + ") and K = weight.shape[0] = " +
                            std::to_string(w.dim(0)));
    if (w.dim(1) != C / sz.groups)
        value_error(fn, "expected weight.shape[1] == C / groups = " + std::to_string(C / sz.groups) + " (C = " +
                            C_from + "), got weight of shape " + w.shape_str());
    if (w.dim(2) < 1 || w.dim(3) < 1)
        value_error(fn, "expected a kernel of at least 1 x 1, got weight of shape " + w.shape_str());
    sz.C = C, sz.K = w.dim(0), sz.R = w.dim(2), sz.S = w.dim(3);
}

inline void check_bias(const char* fn, const std::optional<ArrayMeta>& bias, int64_t n, const char* what,
                       const char* ref_name, const ArrayMeta& ref) {
    if (!bias) return;
    check_same_dtype(fn, "bias", *bias, ref_name, ref);
    if (bias->ndim() != 1 || bias->dim(0) != n)
        value_error(fn, "expected bias of shape (" + std::to_string(n) + ",) (" + what + "), got shape " +
                            bias->shape_str());
}

// --- the three entry points

inline Conv2dShape forward_shape(const ArrayMeta& x, const ArrayMeta& weight, const std::optional<ArrayMeta>& bias,
                                 const Pair& stride, const Pair& padding, const Pair& dilation, int64_t groups,
                                 const Pair& output_size) {
    const char* fn = "conv2d_forward";
    check_float(fn, "x", x);
    check_same_dtype(fn, "weight", weight, "x", x);
    check_ndim(fn, "x", x, 4, "(N, C, H, W)");
    Conv2dShape sz = geometry(fn, stride, padding, dilation, groups);
    set_channels(fn, sz, x.dim(1), "x.shape[1]", weight);
    check_at_least(fn, "output_size", output_size, 1);
    check_bias(fn, bias, sz.K, "K = weight.shape[0]", "x", x);
    sz.N = x.dim(0), sz.H = x.dim(2), sz.W = x.dim(3);
    sz.OH = output_size[0], sz.OW = output_size[1];
    return sz;
}

inline Conv2dShape backward_input_shape(const ArrayMeta& grad_output, const ArrayMeta& weight,
                                        const std::optional<ArrayMeta>& bias, const Pair& input_size,
                                        const Pair& stride, const Pair& padding, const Pair& dilation,
                                        int64_t groups) {
    const char* fn = "conv2d_backward_input";
    check_float(fn, "grad_output", grad_output);
    check_same_dtype(fn, "weight", weight, "grad_output", grad_output);
    check_grad_output(fn, grad_output);
    Conv2dShape sz = geometry(fn, stride, padding, dilation, groups);
    check_ndim(fn, "weight", weight, 4, "(K, C / groups, R, S)");
    set_channels(fn, sz, weight.dim(1) * groups, "weight.shape[1] * groups", weight);
    if (grad_output.dim(1) != sz.K)
        value_error(fn, "expected grad_output.shape[1] == K = weight.shape[0] = " + std::to_string(sz.K) +
                            ", got grad_output of shape " + grad_output.shape_str());
    check_at_least(fn, "input_size", input_size, 1);
    check_bias(fn, bias, sz.C, "C = weight.shape[1] * groups", "grad_output", grad_output);
    sz.N = grad_output.dim(0), sz.H = input_size[0], sz.W = input_size[1];
    sz.OH = grad_output.dim(2), sz.OW = grad_output.dim(3);
    return sz;
}

inline Conv2dShape backward_weight_shape(const ArrayMeta& x, const ArrayMeta& grad_output, const Pair& kernel_size,
                                         const Pair& stride, const Pair& padding, const Pair& dilation,
                                         int64_t groups) {
    const char* fn = "conv2d_backward_weight";
    check_float(fn, "x", x);
    check_same_dtype(fn, "grad_output", grad_output, "x", x);
    check_ndim(fn, "x", x, 4, "(N, C, H, W)");
    check_grad_output(fn, grad_output);
    Conv2dShape sz = geometry(fn, stride, padding, dilation, groups);
    check_at_least(fn, "kernel_size", kernel_size, 1);
    if (grad_output.dim(0) != x.dim(0))
        value_error(fn, "expected x and grad_output to have the same batch size N, got shapes " + x.shape_str() +
                            " and " + grad_output.shape_str());
    if (x.dim(1) % groups != 0 || grad_output.dim(1) % groups != 0)
        value_error(fn, "expected groups = " + std::to_string(groups) + " to divide C = x.shape[1] = " +
                            std::to_string(x.dim(1)) + " and K = grad_output.shape[1] = " +
                            std::to_string(grad_output.dim(1)));
    sz.N = x.dim(0), sz.C = x.dim(1), sz.H = x.dim(2), sz.W = x.dim(3);
    sz.K = grad_output.dim(1), sz.R = kernel_size[0], sz.S = kernel_size[1];
    sz.OH = grad_output.dim(2), sz.OW = grad_output.dim(3);
    return sz;
}

}  // namespace conv_checks
}  // namespace kg
