// bind_cuda_norm.cpp: the CUDA modules' bindings of the softmax, cross-entropy, layer-norm and
// batch-norm kernels (csrc/cuda/softmax.h, csrc/cuda/norm.h). As in bind_cuda_tensor.cpp, device
// pointers travel as ints (0 for an absent optional array) and sizes as ints; the one caller,
// python/kernelgrad/backend/cuda_norm.py, checks the arguments (the CPU binding's checks and
// messages), makes the inputs contiguous and allocates the outputs. Here: the dtype code chooses
// float or double, and the GIL is released around the launches.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "cuda/norm.h"
#include "cuda/softmax.h"
#include "python/bind_cuda.h"

namespace py = pybind11;

namespace kg {
namespace cuda {

namespace {

template <typename T = void>
T* dev(uintptr_t p) { return reinterpret_cast<T*>(p); }

// Run body(T{}) with T the C++ type of a float32 (3) or float64 (4) dtype code, the GIL released.
template <typename F>
void with_float_type(const char* fn, int code, F&& body) {
    if (code != 3 && code != 4)
        throw py::type_error(std::string(fn) + ": expected a float32 or float64 array (dtype code 3 or 4), got code " +
                             std::to_string(code));
    py::gil_scoped_release release;
    if (code == 3)
        body(float{});
    else
        body(double{});
}

}  // namespace

void bind_cuda_norm(py::module_& m) {
    // --- softmax along dim of (outer, dim, inner)
    m.def("softmax_forward", [](int t, uintptr_t y, uintptr_t x, int64_t outer, int64_t dim, int64_t inner, bool log) {
        with_float_type("softmax_forward", t, [&](auto tag) {
            using T = decltype(tag);
            softmax_forward(dev<T>(y), dev<const T>(x), outer, dim, inner, log);
        });
    });
    m.def("softmax_backward", [](int t, uintptr_t dx, uintptr_t y, uintptr_t dy, int64_t outer, int64_t dim,
                                 int64_t inner, bool log) {
        with_float_type("softmax_backward", t, [&](auto tag) {
            using T = decltype(tag);
            softmax_backward(dev<T>(dx), dev<const T>(y), dev<const T>(dy), outer, dim, inner, log);
        });
    });

    // --- cross-entropy over x (N, C, D); error: a device uint64 (see softmax.h)
    m.def("cross_entropy_forward", [](int t, uintptr_t loss, uintptr_t lse, uintptr_t x, uintptr_t target,
                                      uintptr_t weight, int64_t N, int64_t C, int64_t D, int64_t ignore_index,
                                      double eps, uintptr_t error) {
        with_float_type("cross_entropy_forward", t, [&](auto tag) {
            using T = decltype(tag);
            cross_entropy_forward(dev<T>(loss), dev<T>(lse), dev<const T>(x), dev<const int64_t>(target),
                                  dev<const T>(weight), N, C, D, ignore_index, T(eps), dev<unsigned long long>(error));
        });
    });
    m.def("cross_entropy_backward", [](int t, uintptr_t dx, uintptr_t dloss, uintptr_t x, uintptr_t lse,
                                       uintptr_t target, uintptr_t weight, int64_t N, int64_t C, int64_t D,
                                       int64_t ignore_index, double eps, uintptr_t error) {
        with_float_type("cross_entropy_backward", t, [&](auto tag) {
            using T = decltype(tag);
            cross_entropy_backward(dev<T>(dx), dev<const T>(dloss), dev<const T>(x), dev<const T>(lse),
                                   dev<const int64_t>(target), dev<const T>(weight), N, C, D, ignore_index, T(eps),
                                   dev<unsigned long long>(error));
        });
    });
    m.def("cross_entropy_probs_forward", [](int t, uintptr_t loss, uintptr_t lse, uintptr_t x, uintptr_t target,
                                            uintptr_t weight, int64_t N, int64_t C, int64_t D, double eps) {
        with_float_type("cross_entropy_probs_forward", t, [&](auto tag) {
            using T = decltype(tag);
            cross_entropy_probs_forward(dev<T>(loss), dev<T>(lse), dev<const T>(x), dev<const T>(target),
                                        dev<const T>(weight), N, C, D, T(eps));
        });
    });
    m.def("cross_entropy_probs_backward", [](int t, uintptr_t dx, uintptr_t dloss, uintptr_t x, uintptr_t lse,
                                             uintptr_t target, uintptr_t weight, int64_t N, int64_t C, int64_t D,
                                             double eps) {
        with_float_type("cross_entropy_probs_backward", t, [&](auto tag) {
            using T = decltype(tag);
            cross_entropy_probs_backward(dev<T>(dx), dev<const T>(dloss), dev<const T>(x), dev<const T>(lse),
                                         dev<const T>(target), dev<const T>(weight), N, C, D, T(eps));
        });
    });

    // --- layer norm over rows of D
    m.def("layer_norm_forward", [](int t, uintptr_t y, uintptr_t mean, uintptr_t rstd, uintptr_t x, uintptr_t w,
                                   uintptr_t b, int64_t rows, int64_t D, double eps) {
        with_float_type("layer_norm_forward", t, [&](auto tag) {
            using T = decltype(tag);
            layer_norm_forward(dev<T>(y), dev<T>(mean), dev<T>(rstd), dev<const T>(x), dev<const T>(w),
                               dev<const T>(b), rows, D, T(eps));
        });
    });
    m.def("layer_norm_backward", [](int t, uintptr_t dx, uintptr_t dw, uintptr_t db, uintptr_t dy, uintptr_t x,
                                    uintptr_t mean, uintptr_t rstd, uintptr_t w, int64_t rows, int64_t D) {
        with_float_type("layer_norm_backward", t, [&](auto tag) {
            using T = decltype(tag);
            layer_norm_backward(dev<T>(dx), dev<T>(dw), dev<T>(db), dev<const T>(dy), dev<const T>(x),
                                dev<const T>(mean), dev<const T>(rstd), dev<const T>(w), rows, D);
        });
    });

    // --- batch norm over (N, C, L)
    m.def("batch_norm_stats", [](int t, uintptr_t mean, uintptr_t var, uintptr_t x, int64_t N, int64_t C, int64_t L) {
        with_float_type("batch_norm_stats", t, [&](auto tag) {
            using T = decltype(tag);
            batch_norm_stats(dev<T>(mean), dev<T>(var), dev<const T>(x), N, C, L);
        });
    });
    m.def("batch_norm_forward", [](int t, uintptr_t y, uintptr_t x, uintptr_t mean, uintptr_t var, uintptr_t w,
                                   uintptr_t b, int64_t N, int64_t C, int64_t L, double eps) {
        with_float_type("batch_norm_forward", t, [&](auto tag) {
            using T = decltype(tag);
            batch_norm_forward(dev<T>(y), dev<const T>(x), dev<const T>(mean), dev<const T>(var), dev<const T>(w),
                               dev<const T>(b), N, C, L, T(eps));
        });
    });
    m.def("batch_norm_backward", [](int t, uintptr_t dx, uintptr_t dw, uintptr_t db, uintptr_t dy, uintptr_t x,
                                    uintptr_t mean, uintptr_t var, uintptr_t w, int64_t N, int64_t C, int64_t L,
                                    double eps, bool training) {
        with_float_type("batch_norm_backward", t, [&](auto tag) {
            using T = decltype(tag);
            batch_norm_backward(dev<T>(dx), dev<T>(dw), dev<T>(db), dev<const T>(dy), dev<const T>(x),
                                dev<const T>(mean), dev<const T>(var), dev<const T>(w), N, C, L, T(eps), training);
        });
    });
}

}  // namespace cuda
}  // namespace kg
