// bind_pool.cpp: the pooling, unpooling, upsampling and padding kernels (csrc/cpu/pool2d.h,
// upsample.h, pad2d.h) seen from Python as functions of kernelgrad._C.
//
// Every function takes (N, C, H, W) NumPy arrays (float32 or float64; indices int64), checks
// every argument with pool_args.h (the checks the CUDA modules share: TypeError for dtypes,
// ValueError for shapes and values, IndexError for indices out of range; each message names the
// function, the argument, what was expected and what was given), makes C-contiguous copies of
// strided inputs, releases the GIL around the kernel and returns new C-contiguous arrays. Pairs
// are (height, width).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cpu/pad2d.h"
#include "cpu/pool2d.h"
#include "cpu/upsample.h"
#include "python/pool_args.h"

namespace py = pybind11;

namespace {

using namespace kg::pool_args;
using kg::cpu::PoolWindow;

// The array as a C-contiguous array of T (a copy only when it is not one already); its dtype has
// been checked, so nothing is converted.
template <typename T>
py::array_t<T, py::array::c_style> c_contiguous(const py::array& a) {
    return py::array_t<T, py::array::c_style | py::array::forcecast>(a);
}

// f(T()) for T = float or double, the dtype of x (already checked)
template <class F>
py::object dispatch(const py::array& x, F&& f) {
    if (x.dtype().itemsize() == 4) return f(float());
    return f(double());
}

// The CPU kernels' pooling geometry (pool_args.h checks it)
Pool2d<PoolWindow> max_pool_geometry(const std::string& fn, const Nchw& s, Pair kernel, Pair stride, Pair padding,
                                     Pair dilation, bool ceil_mode) {
    return kg::pool_args::max_pool_geometry<PoolWindow>(fn, s, kernel, stride, padding, dilation, ceil_mode,
                                                        kg::cpu::pool_output_size,
                                                        kg::cpu::pool_windows_touch_input);
}

Pool2d<PoolWindow> avg_geometry(const std::string& fn, int64_t H, int64_t W, Pair kernel, Pair stride, Pair padding,
                                bool ceil_mode, std::optional<int64_t> divisor_override) {
    return kg::pool_args::avg_geometry<PoolWindow>(fn, H, W, kernel, stride, padding, ceil_mode, divisor_override,
                                                   kg::cpu::pool_output_size);
}

// The IndexError for the first index of idx outside planes of H x W
[[noreturn]] void throw_first_bad_index(const std::string& fn, const py::array_t<int64_t, py::array::c_style>& idx,
                                        int64_t H, int64_t W) {
    const int64_t* p = idx.data();
    int64_t bad = 0;
    for (py::ssize_t i = 0; i < idx.size(); ++i)
        if (p[i] < 0 || p[i] >= H * W) {
            bad = p[i];
            break;
        }
    throw_bad_index(fn, bad, H, W);
}

// ----------------------------------------------------------------------------------------------
// Max pooling

py::object max_pool2d(const py::array& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                      bool ceil_mode) {
    const std::string fn = "max_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    const auto g = max_pool_geometry(fn, s, kernel, stride, padding, dilation, ceil_mode);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(g.OH, g.OW));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::max_pool2d_forward(out.mutable_data(), xc.data(), s.planes(), s.H, s.W, g.OH, g.OW,
                                        g.rows, g.cols);
        }
        return std::move(out);
    });
}

py::object max_pool2d_with_indices(const py::array& x, Pair kernel, Pair stride, Pair padding,
                                   Pair dilation, bool ceil_mode) {
    const std::string fn = "max_pool2d_with_indices";
    const Nchw s = float_nchw(x, fn, "input");
    check_int32_positions(s, fn);
    const auto g = max_pool_geometry(fn, s, kernel, stride, padding, dilation, ceil_mode);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(g.OH, g.OW));
        py::array_t<int64_t> indices(s.with_hw(g.OH, g.OW));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::max_pool2d_with_indices_forward(out.mutable_data(), indices.mutable_data(), xc.data(),
                                                     s.planes(), s.H, s.W, g.OH, g.OW, g.rows, g.cols);
        }
        return py::make_tuple(out, indices);
    });
}

py::object adaptive_max_pool2d(const py::array& x, Pair output_size) {
    const std::string fn = "adaptive_max_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    check_int32_positions(s, fn);
    check_at_least({s.H, s.W}, 1, fn, "the input's (H, W)");
    check_at_least(output_size, 0, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(OH, OW));
        py::array_t<int64_t> indices(s.with_hw(OH, OW));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::adaptive_max_pool2d_forward(out.mutable_data(), indices.mutable_data(), xc.data(),
                                                 s.planes(), s.H, s.W, OH, OW);
        }
        return py::make_tuple(out, indices);
    });
}

py::object max_pool2d_backward(const py::array& grad_output, const py::array& indices, Pair input_size) {
    const std::string fn = "max_pool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_indices(indices, grad_output, fn, "grad_output");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto gc = c_contiguous<T>(grad_output);
        const auto ic = c_contiguous<int64_t>(indices);
        py::array_t<T> dx(s.with_hw(H, W));
        bool ok;
        {
            py::gil_scoped_release no_gil;
            ok = kg::cpu::max_pool2d_backward(dx.mutable_data(), gc.data(), ic.data(), s.planes(), H * W,
                                              s.H * s.W);
        }
        if (!ok) throw_first_bad_index(fn, ic, H, W);
        return std::move(dx);
    });
}

// ----------------------------------------------------------------------------------------------
// Average pooling

py::object avg_pool2d(const py::array& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode,
                      bool count_include_pad, std::optional<int64_t> divisor_override) {
    const std::string fn = "avg_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    const auto g = avg_geometry(fn, s.H, s.W, kernel, stride, padding, ceil_mode, divisor_override);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(g.OH, g.OW));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::avg_pool2d_forward(out.mutable_data(), xc.data(), s.planes(), s.H, s.W, g.OH, g.OW,
                                        g.rows, g.cols, count_include_pad, divisor_override.value_or(0));
        }
        return std::move(out);
    });
}

py::object avg_pool2d_backward(const py::array& grad_output, Pair input_size, Pair kernel, Pair stride,
                               Pair padding, bool ceil_mode, bool count_include_pad,
                               std::optional<int64_t> divisor_override) {
    const std::string fn = "avg_pool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    const auto g = avg_geometry(fn, H, W, kernel, stride, padding, ceil_mode, divisor_override);
    check_grad_hw(s, {g.OH, g.OW}, fn, "the output for input_size " + pair_str(input_size));
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto gc = c_contiguous<T>(grad_output);
        py::array_t<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::avg_pool2d_backward(dx.mutable_data(), gc.data(), s.planes(), H, W, g.OH, g.OW, g.rows,
                                         g.cols, count_include_pad, divisor_override.value_or(0));
        }
        return std::move(dx);
    });
}

py::object adaptive_avg_pool2d(const py::array& x, Pair output_size) {
    const std::string fn = "adaptive_avg_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    check_at_least({s.H, s.W}, 1, fn, "the input's (H, W)");
    check_at_least(output_size, 0, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(OH, OW));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::adaptive_avg_pool2d_forward(out.mutable_data(), xc.data(), s.planes(), s.H, s.W, OH, OW);
        }
        return std::move(out);
    });
}

py::object adaptive_avg_pool2d_backward(const py::array& grad_output, Pair input_size) {
    const std::string fn = "adaptive_avg_pool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto gc = c_contiguous<T>(grad_output);
        py::array_t<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::adaptive_avg_pool2d_backward(dx.mutable_data(), gc.data(), s.planes(), H, W, s.H, s.W);
        }
        return std::move(dx);
    });
}

// ----------------------------------------------------------------------------------------------
// Max unpooling

py::object max_unpool2d(const py::array& x, const py::array& indices, Pair output_size) {
    const std::string fn = "max_unpool2d";
    const Nchw s = float_nchw(x, fn, "input");
    check_indices(indices, x, fn, "input");
    check_at_least(output_size, 0, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        const auto ic = c_contiguous<int64_t>(indices);
        py::array_t<T> out(s.with_hw(OH, OW));
        bool ok;
        {
            py::gil_scoped_release no_gil;
            ok = kg::cpu::max_unpool2d_forward(out.mutable_data(), xc.data(), ic.data(), s.planes(),
                                               s.H * s.W, OH * OW);
        }
        if (!ok) throw_first_bad_index(fn, ic, OH, OW);
        return std::move(out);
    });
}

py::object max_unpool2d_backward(const py::array& grad_output, const py::array& indices) {
    const std::string fn = "max_unpool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    const auto [H, W] = unpool_indices_hw(indices, s, grad_output, fn);
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto gc = c_contiguous<T>(grad_output);
        const auto ic = c_contiguous<int64_t>(indices);
        py::array_t<T> dx(s.with_hw(H, W));
        bool ok;
        {
            py::gil_scoped_release no_gil;
            ok = kg::cpu::max_unpool2d_backward(dx.mutable_data(), gc.data(), ic.data(), s.planes(), H * W,
                                                s.H * s.W);
        }
        if (!ok) throw_first_bad_index(fn, ic, s.H, s.W);
        return std::move(dx);
    });
}

// ----------------------------------------------------------------------------------------------
// Upsampling

// The forward of nearest or bilinear upsampling: kernel(out, x, planes, H, W, OH, OW, ...)
template <class Kernel>
py::object upsample(const std::string& fn, const py::array& x, Pair output_size, Kernel&& kernel) {
    const Nchw s = float_nchw(x, fn, "input");
    check_at_least({s.H, s.W}, 1, fn, "the input's (H, W)");
    check_at_least(output_size, 1, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(OH, OW));
        {
            py::gil_scoped_release no_gil;
            kernel(out.mutable_data(), xc.data(), s.planes(), s.H, s.W, OH, OW);
        }
        return std::move(out);
    });
}

// The backward of nearest or bilinear upsampling: kernel(dx, dy, planes, H, W, OH, OW, ...)
template <class Kernel>
py::object upsample_backward(const std::string& fn, const py::array& grad_output, Pair input_size,
                             Kernel&& kernel) {
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_at_least({s.H, s.W}, 1, fn, "grad_output's (H, W)");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto gc = c_contiguous<T>(grad_output);
        py::array_t<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kernel(dx.mutable_data(), gc.data(), s.planes(), H, W, s.H, s.W);
        }
        return std::move(dx);
    });
}

py::object upsample_nearest2d(const py::array& x, Pair output_size, const Scales& scales) {
    const std::string fn = "upsample_nearest2d";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample(fn, x, output_size, [&](auto* out, const auto* in, auto... sizes) {
        kg::cpu::upsample_nearest2d_forward(out, in, sizes..., sf[0], sf[1]);
    });
}

py::object upsample_nearest2d_backward(const py::array& grad_output, Pair input_size, const Scales& scales) {
    const std::string fn = "upsample_nearest2d_backward";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample_backward(fn, grad_output, input_size, [&](auto* dx, const auto* dy, auto... sizes) {
        kg::cpu::upsample_nearest2d_backward(dx, dy, sizes..., sf[0], sf[1]);
    });
}

py::object upsample_bilinear2d(const py::array& x, Pair output_size, bool align_corners, const Scales& scales) {
    const std::string fn = "upsample_bilinear2d";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample(fn, x, output_size, [&](auto* out, const auto* in, auto... sizes) {
        kg::cpu::upsample_bilinear2d_forward(out, in, sizes..., align_corners, sf[0], sf[1]);
    });
}

py::object upsample_bilinear2d_backward(const py::array& grad_output, Pair input_size, bool align_corners,
                                        const Scales& scales) {
    const std::string fn = "upsample_bilinear2d_backward";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample_backward(fn, grad_output, input_size, [&](auto* dx, const auto* dy, auto... sizes) {
        kg::cpu::upsample_bilinear2d_backward(dx, dy, sizes..., align_corners, sf[0], sf[1]);
    });
}

// ----------------------------------------------------------------------------------------------
// Reflect / replicate padding; pad = (left, right, top, bottom) as in F.pad

kg::cpu::PadMode pad_mode(const std::string& mode, const std::string& fn) {
    return is_reflect(mode, fn) ? kg::cpu::PadMode::reflect : kg::cpu::PadMode::replicate;
}

py::object pad2d(const py::array& x, std::array<int64_t, 4> pad, const std::string& mode) {
    const std::string fn = "pad2d";
    const Nchw s = float_nchw(x, fn, "input");
    const kg::cpu::PadMode m = pad_mode(mode, fn);
    const Pair out_size = padded_size(fn, s.H, s.W, pad, m == kg::cpu::PadMode::reflect);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto xc = c_contiguous<T>(x);
        py::array_t<T> out(s.with_hw(out_size[0], out_size[1]));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::pad2d_forward(out.mutable_data(), xc.data(), s.planes(), s.H, s.W, pad[2], pad[3], pad[0],
                                   pad[1], m);
        }
        return std::move(out);
    });
}

py::object pad2d_backward(const py::array& grad_output, Pair input_size, std::array<int64_t, 4> pad,
                          const std::string& mode) {
    const std::string fn = "pad2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    const kg::cpu::PadMode m = pad_mode(mode, fn);
    const int64_t H = input_size[0], W = input_size[1];
    const Pair out = padded_size(fn, H, W, pad, m == kg::cpu::PadMode::reflect);
    check_grad_hw(s, out, fn, "input_size padded");
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const auto gc = c_contiguous<T>(grad_output);
        py::array_t<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kg::cpu::pad2d_backward(dx.mutable_data(), gc.data(), s.planes(), H, W, pad[2], pad[3], pad[0],
                                    pad[1], m);
        }
        return std::move(dx);
    });
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Module functions

void bind_pool(py::module_& m) {
    using py::arg;
    m.def("max_pool2d", &max_pool2d, arg("input"), arg("kernel_size"), arg("stride"), arg("padding"),
          arg("dilation"), arg("ceil_mode"),
          "max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode) -> out (N, C, OH, OW)\n"
          "for input (N, C, H, W): the maxima only.");
    m.def("max_pool2d_with_indices", &max_pool2d_with_indices, arg("input"), arg("kernel_size"), arg("stride"),
          arg("padding"), arg("dilation"), arg("ceil_mode"),
          "max_pool2d_with_indices(...) -> (out, indices): also the int64 index h * W + w of each maximum.");
    m.def("adaptive_max_pool2d", &adaptive_max_pool2d, arg("input"), arg("output_size"),
          "adaptive_max_pool2d(input, output_size) -> (out, indices), out (N, C, *output_size).");
    m.def("max_pool2d_backward", &max_pool2d_backward, arg("grad_output"), arg("indices"), arg("input_size"),
          "Gradient of either max pooling: grad_output added at the indices of (N, C, *input_size) zeros.");
    m.def("avg_pool2d", &avg_pool2d, arg("input"), arg("kernel_size"), arg("stride"), arg("padding"),
          arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"),
          "avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)");
    m.def("avg_pool2d_backward", &avg_pool2d_backward, arg("grad_output"), arg("input_size"), arg("kernel_size"),
          arg("stride"), arg("padding"), arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"),
          "Gradient of avg_pool2d for an input of spatial size input_size.");
    m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d, arg("input"), arg("output_size"),
          "adaptive_avg_pool2d(input, output_size) -> (N, C, *output_size)");
    m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, arg("grad_output"), arg("input_size"),
          "Gradient of adaptive_avg_pool2d for an input of spatial size input_size.");
    m.def("max_unpool2d", &max_unpool2d, arg("input"), arg("indices"), arg("output_size"),
          "max_unpool2d(input, indices, output_size): (N, C, *output_size) zeros with input placed at the\n"
          "per-plane flat indices; IndexError for an index outside the output plane.");
    m.def("max_unpool2d_backward", &max_unpool2d_backward, arg("grad_output"), arg("indices"),
          "Gradient of max_unpool2d: grad_output gathered at the indices, of the indices' shape.");
    m.def("upsample_nearest2d", &upsample_nearest2d, arg("input"), arg("output_size"), arg("scale_factors"),
          "Nearest upsampling to output_size; scale_factors (or None) set the source step as in PyTorch.");
    m.def("upsample_nearest2d_backward", &upsample_nearest2d_backward, arg("grad_output"), arg("input_size"),
          arg("scale_factors"), "Gradient of upsample_nearest2d.");
    m.def("upsample_bilinear2d", &upsample_bilinear2d, arg("input"), arg("output_size"), arg("align_corners"),
          arg("scale_factors"), "Bilinear upsampling to output_size (PyTorch's source-index rule).");
    m.def("upsample_bilinear2d_backward", &upsample_bilinear2d_backward, arg("grad_output"), arg("input_size"),
          arg("align_corners"), arg("scale_factors"), "Gradient of upsample_bilinear2d.");
    m.def("pad2d", &pad2d, arg("input"), arg("pad"), arg("mode"),
          "pad2d(input, (left, right, top, bottom), 'reflect' | 'replicate'); negative pads crop.");
    m.def("pad2d_backward", &pad2d_backward, arg("grad_output"), arg("input_size"), arg("pad"), arg("mode"),
          "Gradient of pad2d (the edges accumulate).");
}
