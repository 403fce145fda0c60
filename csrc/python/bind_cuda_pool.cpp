// bind_cuda_pool.cpp: the CUDA pooling, unpooling, upsampling and padding kernels
// (csrc/cuda/pool2d.h, upsample.h, pad2d.h) as functions of the CUDA modules, with the names,
// arguments and errors of kernelgrad._C's (bind_pool.cpp; the checks are pool_args.h, shared).
//
// Every function takes the CUDA backend's arrays (python/kernelgrad/backend/cuda_pool.py is the
// one caller): (N, C, H, W) CudaArrays, float32 or float64 (indices int64), C-contiguous (the
// caller copies strided ones); they are read through .dtype, .shape, ._strides and ._ptr. Each
// output comes back as (Storage, shape), a new C-contiguous device array for the caller to wrap
// (Storage None when it is empty). Bad indices are found on the device: the kernels leave the
// position of the first one in a device word, and only then is that one index copied back for
// the IndexError. The GIL is released around the kernels.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/kg_cuda.cuh"
#include "cuda/pad2d.h"
#include "cuda/pool2d.h"
#include "cuda/upsample.h"
#include "python/bind_cuda.h"
#include "python/pool_args.h"

namespace py = pybind11;

namespace {

using namespace kg::pool_args;
using kg::cuda::kNoBadIndex;
using kg::cuda::PoolWindow;

// ----------------------------------------------------------------------------------------------
// Device arrays of the CUDA backend

py::handle storage_class;  // the module's Storage (set by bind_cuda_pool; the module keeps it alive)

// The device pointer of a CudaArray, checked to be C-contiguous (when it is not empty)
template <typename T>
T* ptr(const py::handle& a, const std::string& fn, const char* name) {
    const auto shape = a.attr("shape").cast<std::vector<int64_t>>();
    const auto strides = a.attr("_strides").cast<std::vector<int64_t>>();
    int64_t expected = 1;
    bool contiguous = true;
    for (size_t d = shape.size(); d-- > 0;) {
        contiguous = contiguous && (shape[d] == 1 || strides[d] == expected);
        expected *= shape[d];
    }
    if (!contiguous && expected != 0)
        throw py::value_error(fn + ": expected " + name + " to be C-contiguous (the backend copies it first)");
    return reinterpret_cast<T*>(a.attr("_ptr").cast<uintptr_t>());
}

// A new C-contiguous device array of `shape` with elements of T: (Storage or None, shape)
template <typename T>
struct Output {
    py::object storage;
    std::vector<py::ssize_t> shape;
    T* data = nullptr;

    explicit Output(std::vector<py::ssize_t> shape_) : shape(std::move(shape_)) {
        size_t n = sizeof(T);
        for (const py::ssize_t s : shape) n *= static_cast<size_t>(s);
        if (n == 0) {
            storage = py::none();
            return;
        }
        storage = storage_class(n);
        data = reinterpret_cast<T*>(storage.attr("ptr").cast<uintptr_t>());
    }
    py::tuple result() const { return py::make_tuple(storage, py::tuple(py::cast(shape))); }
};

// Device memory for the length of one call (error words, scratch)
class Scratch {
public:
    explicit Scratch(size_t nbytes) : ptr_(kg::cuda::device_alloc(nbytes)) {}
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    ~Scratch() { kg::cuda::device_free(ptr_); }
    template <typename T>
    T* get() const { return static_cast<T*>(ptr_); }

private:
    void* ptr_;
};

// f(T()) for T = float or double, the dtype of x (already checked)
template <class F>
py::object dispatch(const py::handle& x, F&& f) {
    if (x.attr("dtype").attr("itemsize").cast<int64_t>() == 4) return f(float());
    return f(double());
}

// Runs kernel(first_bad) without the GIL, first_bad a device word set to kNoBadIndex; if the
// kernel left the position of a bad index there, raises the CPU's IndexError for that index of
// `indices` (device, contiguous) in planes of H x W.
template <class Kernel>
void checking_indices(const std::string& fn, const int64_t* indices, int64_t H, int64_t W, Kernel&& kernel) {
    Scratch word(sizeof(unsigned long long));
    unsigned long long first = kNoBadIndex;
    int64_t bad = 0;
    {
        py::gil_scoped_release no_gil;
        KG_CUDA_CHECK(cudaMemset(word.get<void>(), 0xFF, sizeof(unsigned long long)));
        kernel(word.get<unsigned long long>());
        KG_CUDA_CHECK(cudaMemcpy(&first, word.get<void>(), sizeof(first), cudaMemcpyDeviceToHost));
        if (first != kNoBadIndex)
            KG_CUDA_CHECK(cudaMemcpy(&bad, indices + first, sizeof(bad), cudaMemcpyDeviceToHost));
    }
    if (first != kNoBadIndex) throw_bad_index(fn, bad, H, W);
}

// The CUDA kernels' pooling geometry (pool_args.h checks it)
Pool2d<PoolWindow> max_pool_geometry(const std::string& fn, const Nchw& s, Pair kernel, Pair stride, Pair padding,
                                     Pair dilation, bool ceil_mode) {
    return kg::pool_args::max_pool_geometry<PoolWindow>(fn, s, kernel, stride, padding, dilation, ceil_mode,
                                                        kg::cuda::pool_output_size,
                                                        kg::cuda::pool_windows_touch_input);
}

Pool2d<PoolWindow> avg_geometry(const std::string& fn, int64_t H, int64_t W, Pair kernel, Pair stride, Pair padding,
                                bool ceil_mode, std::optional<int64_t> divisor_override) {
    return kg::pool_args::avg_geometry<PoolWindow>(fn, H, W, kernel, stride, padding, ceil_mode, divisor_override,
                                                   kg::cuda::pool_output_size);
}

// ----------------------------------------------------------------------------------------------
// Max pooling

// max_pool2d(_with_indices): the maxima, and their indices when with_indices
py::object max_pool(const std::string& fn, const py::handle& x, Pair kernel, Pair stride, Pair padding,
                    Pair dilation, bool ceil_mode, bool with_indices) {
    const Nchw s = float_nchw(x, fn, "input");
    if (with_indices) check_int32_positions(s, fn);
    const auto g = max_pool_geometry(fn, s, kernel, stride, padding, dilation, ceil_mode);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        Output<T> out(s.with_hw(g.OH, g.OW));
        std::optional<Output<int64_t>> indices;
        if (with_indices) indices.emplace(s.with_hw(g.OH, g.OW));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::max_pool2d_forward(out.data, indices ? indices->data : nullptr, xp, s.planes(), s.H, s.W,
                                         g.OH, g.OW, g.rows, g.cols);
        }
        if (!indices) return out.result();
        return py::make_tuple(out.result(), indices->result());
    });
}

py::object adaptive_max_pool2d(const py::handle& x, Pair output_size) {
    const std::string fn = "adaptive_max_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    check_int32_positions(s, fn);
    check_at_least({s.H, s.W}, 1, fn, "the input's (H, W)");
    check_at_least(output_size, 0, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        Output<T> out(s.with_hw(OH, OW));
        Output<int64_t> indices(s.with_hw(OH, OW));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::adaptive_max_pool2d_forward(out.data, indices.data, xp, s.planes(), s.H, s.W, OH, OW);
        }
        return py::make_tuple(out.result(), indices.result());
    });
}

py::object max_pool2d_backward(const py::handle& grad_output, const py::handle& indices, Pair input_size) {
    const std::string fn = "max_pool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_indices(indices, grad_output, fn, "grad_output");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* dy = ptr<const T>(grad_output, fn, "grad_output");
        const int64_t* idx = ptr<const int64_t>(indices, fn, "indices");
        Output<T> dx(s.with_hw(H, W));
        checking_indices(fn, idx, H, W, [&](unsigned long long* first_bad) {
            kg::cuda::max_pool2d_backward(dx.data, dy, idx, s.planes(), H * W, s.H * s.W, first_bad);
        });
        return dx.result();
    });
}

// ----------------------------------------------------------------------------------------------
// Average pooling

py::object avg_pool2d(const py::handle& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode,
                      bool count_include_pad, std::optional<int64_t> divisor_override) {
    const std::string fn = "avg_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    const auto g = avg_geometry(fn, s.H, s.W, kernel, stride, padding, ceil_mode, divisor_override);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        Output<T> out(s.with_hw(g.OH, g.OW));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::avg_pool2d_forward(out.data, xp, s.planes(), s.H, s.W, g.OH, g.OW, g.rows, g.cols,
                                         count_include_pad, divisor_override.value_or(0));
        }
        return out.result();
    });
}

py::object avg_pool2d_backward(const py::handle& grad_output, Pair input_size, Pair kernel, Pair stride,
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
        const T* dy = ptr<const T>(grad_output, fn, "grad_output");
        Output<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::avg_pool2d_backward(dx.data, dy, s.planes(), H, W, g.OH, g.OW, g.rows, g.cols,
                                          count_include_pad, divisor_override.value_or(0));
        }
        return dx.result();
    });
}

py::object adaptive_avg_pool2d(const py::handle& x, Pair output_size) {
    const std::string fn = "adaptive_avg_pool2d";
    const Nchw s = float_nchw(x, fn, "input");
    check_at_least({s.H, s.W}, 1, fn, "the input's (H, W)");
    check_at_least(output_size, 0, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        Output<T> out(s.with_hw(OH, OW));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::adaptive_avg_pool2d_forward(out.data, xp, s.planes(), s.H, s.W, OH, OW);
        }
        return out.result();
    });
}

py::object adaptive_avg_pool2d_backward(const py::handle& grad_output, Pair input_size) {
    const std::string fn = "adaptive_avg_pool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* dy = ptr<const T>(grad_output, fn, "grad_output");
        Output<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::adaptive_avg_pool2d_backward(dx.data, dy, s.planes(), H, W, s.H, s.W);
        }
        return dx.result();
    });
}

// ----------------------------------------------------------------------------------------------
// Max unpooling

py::object max_unpool2d(const py::handle& x, const py::handle& indices, Pair output_size) {
    const std::string fn = "max_unpool2d";
    const Nchw s = float_nchw(x, fn, "input");
    check_indices(indices, x, fn, "input");
    check_at_least(output_size, 0, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        const int64_t* idx = ptr<const int64_t>(indices, fn, "indices");
        Output<T> out(s.with_hw(OH, OW));
        Scratch last(static_cast<size_t>(s.planes() * OH * OW) * sizeof(unsigned long long));
        checking_indices(fn, idx, OH, OW, [&](unsigned long long* first_bad) {
            kg::cuda::max_unpool2d_forward(out.data, last.get<unsigned long long>(), xp, idx, s.planes(), s.H * s.W,
                                           OH * OW, first_bad);
        });
        return out.result();
    });
}

py::object max_unpool2d_backward(const py::handle& grad_output, const py::handle& indices) {
    const std::string fn = "max_unpool2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    const auto [H, W] = unpool_indices_hw(indices, s, grad_output, fn);
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* dy = ptr<const T>(grad_output, fn, "grad_output");
        const int64_t* idx = ptr<const int64_t>(indices, fn, "indices");
        Output<T> dx(s.with_hw(H, W));
        checking_indices(fn, idx, s.H, s.W, [&](unsigned long long* first_bad) {
            kg::cuda::max_unpool2d_backward(dx.data, dy, idx, s.planes(), H * W, s.H * s.W, first_bad);
        });
        return dx.result();
    });
}

// ----------------------------------------------------------------------------------------------
// Upsampling

// The forward of nearest or bilinear upsampling: kernel(out, x, planes, H, W, OH, OW)
template <class Kernel>
py::object upsample(const std::string& fn, const py::handle& x, Pair output_size, Kernel&& kernel) {
    const Nchw s = float_nchw(x, fn, "input");
    check_at_least({s.H, s.W}, 1, fn, "the input's (H, W)");
    check_at_least(output_size, 1, fn, "output_size");
    const int64_t OH = output_size[0], OW = output_size[1];
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        Output<T> out(s.with_hw(OH, OW));
        {
            py::gil_scoped_release no_gil;
            kernel(out.data, xp, s.planes(), s.H, s.W, OH, OW);
        }
        return out.result();
    });
}

// The backward of nearest or bilinear upsampling: kernel(dx, dy, planes, H, W, OH, OW)
template <class Kernel>
py::object upsample_backward(const std::string& fn, const py::handle& grad_output, Pair input_size,
                             Kernel&& kernel) {
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    check_at_least({s.H, s.W}, 1, fn, "grad_output's (H, W)");
    check_at_least(input_size, 1, fn, "input_size");
    const int64_t H = input_size[0], W = input_size[1];
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* dy = ptr<const T>(grad_output, fn, "grad_output");
        Output<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kernel(dx.data, dy, s.planes(), H, W, s.H, s.W);
        }
        return dx.result();
    });
}

py::object upsample_nearest2d(const py::handle& x, Pair output_size, const Scales& scales) {
    const std::string fn = "upsample_nearest2d";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample(fn, x, output_size, [&](auto* out, const auto* in, auto... sizes) {
        kg::cuda::upsample_nearest2d_forward(out, in, sizes..., sf[0], sf[1]);
    });
}

py::object upsample_nearest2d_backward(const py::handle& grad_output, Pair input_size, const Scales& scales) {
    const std::string fn = "upsample_nearest2d_backward";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample_backward(fn, grad_output, input_size, [&](auto* dx, const auto* dy, auto... sizes) {
        kg::cuda::upsample_nearest2d_backward(dx, dy, sizes..., sf[0], sf[1]);
    });
}

py::object upsample_bilinear2d(const py::handle& x, Pair output_size, bool align_corners, const Scales& scales) {
    const std::string fn = "upsample_bilinear2d";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample(fn, x, output_size, [&](auto* out, const auto* in, auto... sizes) {
        kg::cuda::upsample_bilinear2d_forward(out, in, sizes..., align_corners, sf[0], sf[1]);
    });
}

py::object upsample_bilinear2d_backward(const py::handle& grad_output, Pair input_size, bool align_corners,
                                         const Scales& scales) {
    const std::string fn = "upsample_bilinear2d_backward";
    const std::array<double, 2> sf = scale_factors(scales, fn);
    return upsample_backward(fn, grad_output, input_size, [&](auto* dx, const auto* dy, auto... sizes) {
        kg::cuda::upsample_bilinear2d_backward(dx, dy, sizes..., align_corners, sf[0], sf[1]);
    });
}

// ----------------------------------------------------------------------------------------------
// Reflect / replicate padding; pad = (left, right, top, bottom) as in F.pad

py::object pad2d(const py::handle& x, std::array<int64_t, 4> pad, const std::string& mode) {
    const std::string fn = "pad2d";
    const Nchw s = float_nchw(x, fn, "input");
    const bool reflect = is_reflect(mode, fn);
    const Pair out_size = padded_size(fn, s.H, s.W, pad, reflect);
    return dispatch(x, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* xp = ptr<const T>(x, fn, "input");
        Output<T> out(s.with_hw(out_size[0], out_size[1]));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::pad2d_forward(out.data, xp, s.planes(), s.H, s.W, pad[2], pad[3], pad[0], pad[1], reflect);
        }
        return out.result();
    });
}

py::object pad2d_backward(const py::handle& grad_output, Pair input_size, std::array<int64_t, 4> pad,
                           const std::string& mode) {
    const std::string fn = "pad2d_backward";
    const Nchw s = float_nchw(grad_output, fn, "grad_output");
    const bool reflect = is_reflect(mode, fn);
    const int64_t H = input_size[0], W = input_size[1];
    check_grad_hw(s, padded_size(fn, H, W, pad, reflect), fn, "input_size padded");
    return dispatch(grad_output, [&](auto t) -> py::object {
        using T = decltype(t);
        const T* dy = ptr<const T>(grad_output, fn, "grad_output");
        Output<T> dx(s.with_hw(H, W));
        {
            py::gil_scoped_release no_gil;
            kg::cuda::pad2d_backward(dx.data, dy, s.planes(), H, W, pad[2], pad[3], pad[0], pad[1], reflect);
        }
        return dx.result();
    });
}

}  // namespace

namespace kg {
namespace cuda {

// ----------------------------------------------------------------------------------------------
// Module functions (the kernelgrad._C signatures; every result (Storage, shape), see the top)

void bind_cuda_pool(py::module_& m) {
    using py::arg;
    storage_class = m.attr("Storage");
    m.def("max_pool2d", [](const py::handle& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                           bool ceil_mode) {
        return max_pool("max_pool2d", x, kernel, stride, padding, dilation, ceil_mode, false);
    }, arg("input"), arg("kernel_size"), arg("stride"), arg("padding"), arg("dilation"), arg("ceil_mode"));
    m.def("max_pool2d_with_indices", [](const py::handle& x, Pair kernel, Pair stride, Pair padding, Pair dilation,
                                        bool ceil_mode) {
        return max_pool("max_pool2d_with_indices", x, kernel, stride, padding, dilation, ceil_mode, true);
    }, arg("input"), arg("kernel_size"), arg("stride"), arg("padding"), arg("dilation"), arg("ceil_mode"));
    m.def("adaptive_max_pool2d", &::adaptive_max_pool2d, arg("input"), arg("output_size"));
    m.def("max_pool2d_backward", &::max_pool2d_backward, arg("grad_output"), arg("indices"), arg("input_size"));
    m.def("avg_pool2d", &::avg_pool2d, arg("input"), arg("kernel_size"), arg("stride"), arg("padding"),
          arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"));
    m.def("avg_pool2d_backward", &::avg_pool2d_backward, arg("grad_output"), arg("input_size"), arg("kernel_size"),
          arg("stride"), arg("padding"), arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"));
    m.def("adaptive_avg_pool2d", &::adaptive_avg_pool2d, arg("input"), arg("output_size"));
    m.def("adaptive_avg_pool2d_backward", &::adaptive_avg_pool2d_backward, arg("grad_output"), arg("input_size"));
    m.def("max_unpool2d", &::max_unpool2d, arg("input"), arg("indices"), arg("output_size"));
    m.def("max_unpool2d_backward", &::max_unpool2d_backward, arg("grad_output"), arg("indices"));
    m.def("upsample_nearest2d", &::upsample_nearest2d, arg("input"), arg("output_size"), arg("scale_factors"));
    m.def("upsample_nearest2d_backward", &::upsample_nearest2d_backward, arg("grad_output"), arg("input_size"),
          arg("scale_factors"));
    m.def("upsample_bilinear2d", &::upsample_bilinear2d, arg("input"), arg("output_size"), arg("align_corners"),
          arg("scale_factors"));
    m.def("upsample_bilinear2d_backward", &::upsample_bilinear2d_backward, arg("grad_output"), arg("input_size"),
          arg("align_corners"), arg("scale_factors"));
    m.def("pad2d", &::pad2d, arg("input"), arg("pad"), arg("mode"));
    m.def("pad2d_backward", &::pad2d_backward, arg("grad_output"), arg("input_size"), arg("pad"), arg("mode"));
}

}  // namespace cuda
}  // namespace kg
