// pool_args.h: the argument checks of the pooling, unpooling, upsampling and padding bindings,
// shared by the CPU module (bind_pool.cpp, NumPy arrays) and the CUDA modules (bind_cuda_pool.cpp,
// the CUDA backend's CudaArrays), so that both devices reject bad input with the same errors:
// TypeError for dtypes, ValueError for shapes and values, IndexError for indices out of range;
// each message names the function, the argument, what was expected and what was given.
//
// Arrays are read through their Python attributes (.dtype, .ndim, .shape), which NumPy arrays and
// CudaArrays both have. The window arithmetic (output sizes, windows that miss the input) is each
// device's own, passed in by the caller. Pairs are (height, width).
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace kg {
namespace pool_args {

namespace py = pybind11;

using Pair = std::array<int64_t, 2>;
using Scales = std::optional<std::array<double, 2>>;

inline std::string str(const py::handle& h) { return py::str(h); }
inline std::string pair_str(Pair p) { return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")"; }

// ----------------------------------------------------------------------------------------------
// Arrays

// An (N, C, H, W) array's sizes
struct Nchw {
    int64_t N, C, H, W;
    int64_t planes() const { return N * C; }
    std::vector<py::ssize_t> with_hw(int64_t h, int64_t w) const { return {N, C, h, w}; }
};

inline bool has_dtype(const py::handle& a, char kind, std::initializer_list<int64_t> itemsizes) {
    const py::object dt = a.attr("dtype");
    if (str(dt.attr("kind")) != std::string(1, kind)) return false;
    const int64_t size = dt.attr("itemsize").cast<int64_t>();
    for (const int64_t s : itemsizes)
        if (size == s) return true;
    return false;
}

// A float32 / float64 array with 4 dimensions
inline Nchw float_nchw(const py::handle& a, const std::string& fn, const char* name) {
    if (!has_dtype(a, 'f', {4, 8}))
        throw py::type_error(fn + ": expected " + name + " to be float32 or float64, got " + str(a.attr("dtype")));
    if (a.attr("ndim").cast<int64_t>() != 4)
        throw py::value_error(fn + ": expected " + name + " to have 4 dimensions (N, C, H, W), got shape " +
                              str(a.attr("shape")));
    const auto shape = a.attr("shape").cast<std::array<int64_t, 4>>();
    return {shape[0], shape[1], shape[2], shape[3]};
}

inline void check_int64(const py::handle& indices, const std::string& fn) {
    if (!has_dtype(indices, 'i', {8}))
        throw py::type_error(fn + ": expected indices to be int64, got " + str(indices.attr("dtype")));
}

// An int64 array of the shape `like` has
inline void check_indices(const py::handle& indices, const py::handle& like, const std::string& fn,
                          const char* like_name) {
    check_int64(indices, fn);
    if (!indices.attr("shape").equal(like.attr("shape")))
        throw py::value_error(fn + ": expected indices of the shape of " + like_name + " " + str(like.attr("shape")) +
                              ", got " + str(indices.attr("shape")));
}

// max_unpool2d_backward's indices: int64 (N, C, H, W) with grad_output's N and C; returns (H, W)
inline Pair unpool_indices_hw(const py::handle& indices, const Nchw& grad, const py::handle& grad_output,
                              const std::string& fn) {
    check_int64(indices, fn);
    const auto shape = indices.attr("shape").cast<std::vector<int64_t>>();
    if (shape.size() != 4 || shape[0] != grad.N || shape[1] != grad.C)
        throw py::value_error(fn + ": expected indices of shape (N, C, H, W) = (" + std::to_string(grad.N) + ", " +
                              std::to_string(grad.C) + ", H, W) like grad_output " +
                              str(grad_output.attr("shape")) + ", got " + str(indices.attr("shape")));
    return {shape[2], shape[3]};
}

// The max pooling kernels keep positions within a plane as int32
inline void check_int32_positions(const Nchw& s, const std::string& fn) {
    constexpr int64_t limit = int64_t(1) << 31;
    if (s.H >= limit || s.W >= limit)
        throw py::value_error(fn + ": expected H and W < 2**31, got (" + std::to_string(s.H) + ", " +
                              std::to_string(s.W) + ")");
}

// The error for an index outside planes of H x W (bad: the first such index in the array)
[[noreturn]] inline void throw_bad_index(const std::string& fn, int64_t bad, int64_t H, int64_t W) {
    throw py::index_error(fn + ": index " + std::to_string(bad) + " is out of range for planes of size " +
                          std::to_string(H) + "x" + std::to_string(W) + " (expected 0 <= index < " +
                          std::to_string(H * W) + ")");
}

// grad_output's (H, W) must be `expected` (`what` says why)
inline void check_grad_hw(const Nchw& s, Pair expected, const std::string& fn, const std::string& what) {
    if (s.H != expected[0] || s.W != expected[1])
        throw py::value_error(fn + ": expected grad_output of spatial size " + pair_str(expected) + " (" + what +
                              "), got " + pair_str({s.H, s.W}));
}

// ----------------------------------------------------------------------------------------------
// Values

inline void check_at_least(Pair p, int64_t min, const std::string& fn, const char* name) {
    if (p[0] < min || p[1] < min)
        throw py::value_error(fn + ": expected " + name + " >= " + std::to_string(min) + ", got " + pair_str(p));
}

// Window sizes, strides, dilations and pads are int32 in PyTorch; the bound also keeps the
// kernels' index arithmetic (products of two of them) far from int64 overflow.
constexpr int64_t kMaxArg = (int64_t(1) << 31) - 1;

inline void check_at_most(Pair p, int64_t max, const std::string& fn, const char* name) {
    if (p[0] > max || p[1] > max)
        throw py::value_error(fn + ": expected " + name + " <= " + std::to_string(max) + ", got " + pair_str(p));
}

// ----------------------------------------------------------------------------------------------
// Pooling geometry. Window is the device's window type {kernel, stride, pad, dilation};
// output_size(size, window, ceil_mode) and touches_input(size, out, window) its rules.

template <class Window>
struct Pool2d {
    Window rows, cols;
    int64_t OH, OW;
};

// The windows of a pooling over an H x W input, checked, and its output size (>= 1)
template <class Window, class OutputSize>
Pool2d<Window> pool_geometry(const std::string& fn, int64_t H, int64_t W, Pair kernel, Pair stride, Pair padding,
                             Pair dilation, bool ceil_mode, OutputSize output_size) {
    check_at_least(kernel, 1, fn, "kernel_size");
    check_at_least(stride, 1, fn, "stride");
    check_at_least(padding, 0, fn, "padding");
    check_at_least(dilation, 1, fn, "dilation");
    check_at_most(kernel, kMaxArg, fn, "kernel_size");
    check_at_most(stride, kMaxArg, fn, "stride");
    check_at_most(dilation, kMaxArg, fn, "dilation");  // padding <= kernel_size / 2 follows
    if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2)
        throw py::value_error(fn + ": expected padding <= kernel_size / 2, got padding " + pair_str(padding) +
                              " and kernel_size " + pair_str(kernel));
    const Window rows{kernel[0], stride[0], padding[0], dilation[0]};
    const Window cols{kernel[1], stride[1], padding[1], dilation[1]};
    const int64_t OH = output_size(H, rows, ceil_mode), OW = output_size(W, cols, ceil_mode);
    if (OH < 1 || OW < 1)
        throw py::value_error(fn + ": the kernel (kernel_size " + pair_str(kernel) + ", dilation " +
                              pair_str(dilation) + ") does not fit the input of size " + pair_str({H, W}) +
                              " with padding " + pair_str(padding) + ": the output size would be " +
                              pair_str({OH, OW}));
    return {rows, cols, OH, OW};
}

// The checked geometry of a max pooling (also: every window must touch the input)
template <class Window, class OutputSize, class TouchesInput>
Pool2d<Window> max_pool_geometry(const std::string& fn, const Nchw& s, Pair kernel, Pair stride, Pair padding,
                                 Pair dilation, bool ceil_mode, OutputSize output_size, TouchesInput touches_input) {
    const Pool2d<Window> g =
        pool_geometry<Window>(fn, s.H, s.W, kernel, stride, padding, dilation, ceil_mode, output_size);
    if (!touches_input(s.H, g.OH, g.rows) || !touches_input(s.W, g.OW, g.cols))
        throw py::value_error(fn + ": a dilated window lies entirely in the padding (kernel_size " + pair_str(kernel) +
                              ", padding " + pair_str(padding) + ", dilation " + pair_str(dilation) +
                              ", input size " + pair_str({s.H, s.W}) + ")");
    return g;
}

// The checked geometry of an average pooling (undilated)
template <class Window, class OutputSize>
Pool2d<Window> avg_geometry(const std::string& fn, int64_t H, int64_t W, Pair kernel, Pair stride, Pair padding,
                            bool ceil_mode, std::optional<int64_t> divisor_override, OutputSize output_size) {
    if (divisor_override == 0) throw py::value_error(fn + ": expected divisor_override != 0, got 0");
    return pool_geometry<Window>(fn, H, W, kernel, stride, padding, {1, 1}, ceil_mode, output_size);
}

// ----------------------------------------------------------------------------------------------
// Upsampling and padding

// The scale factors as the kernels take them: 0 for "not given"
inline std::array<double, 2> scale_factors(const Scales& scales, const std::string& fn) {
    if (!scales) return {0.0, 0.0};
    if (!((*scales)[0] > 0) || !((*scales)[1] > 0))
        throw py::value_error(fn + ": expected scale_factors > 0, got (" + std::to_string((*scales)[0]) + ", " +
                              std::to_string((*scales)[1]) + ")");
    return *scales;
}

// True for "reflect", false for "replicate"
inline bool is_reflect(const std::string& mode, const std::string& fn) {
    if (mode == "reflect") return true;
    if (mode == "replicate") return false;
    throw py::value_error(fn + ": expected mode 'reflect' or 'replicate', got '" + mode + "'");
}

// The padded size of an H x W input, checked (>= 0; reflect: every pad < the size it pads);
// pad = (left, right, top, bottom)
inline Pair padded_size(const std::string& fn, int64_t H, int64_t W, std::array<int64_t, 4> pad, bool reflect) {
    const auto [left, right, top, bottom] = pad;
    for (const int64_t p : pad)
        if (p < -kMaxArg || p > kMaxArg)
            throw py::value_error(fn + ": expected every pad in [-2**31 + 1, 2**31 - 1], got " + std::to_string(p));
    if (H < 1 || W < 1)
        throw py::value_error(fn + ": expected an input of non-zero (H, W), got " + pair_str({H, W}));
    if (reflect && (left >= W || right >= W || top >= H || bottom >= H))
        throw py::value_error(fn + ": reflect padding must be smaller than the padded dimension, got pad (" +
                              std::to_string(left) + ", " + std::to_string(right) + ", " + std::to_string(top) +
                              ", " + std::to_string(bottom) + ") for an input of size " + pair_str({H, W}));
    const Pair out{H + top + bottom, W + left + right};
    if (out[0] < 0 || out[1] < 0)
        throw py::value_error(fn + ": the padded size " + pair_str(out) + " of an input of size " + pair_str({H, W}) +
                              " must be >= 0");
    return out;
}

}  // namespace pool_args
}  // namespace kg
