// bind_special.cpp: erf and erfc (csrc/cpu/special.h) as functions of kernelgrad._C.
//
// Each takes a float32 or float64 NumPy array of any shape (TypeError otherwise), works on a
// C-contiguous copy when the input is strided, releases the GIL and returns a new array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "cpu/special.h"

namespace py = pybind11;

namespace {

template <typename T>
py::array apply(py::array_t<T, py::array::c_style | py::array::forcecast> x,
                void (*kernel)(T*, const T*, int64_t)) {
    py::array_t<T> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    const T* src = x.data();
    T* dst = y.mutable_data();
    const int64_t n = x.size();
    {
        py::gil_scoped_release release;
        kernel(dst, src, n);
    }
    return y;
}

py::array dispatch(const py::array& x, const char* fn, void (*kf)(float*, const float*, int64_t),
                   void (*kd)(double*, const double*, int64_t)) {
    const py::dtype dt = x.dtype();
    if (dt.kind() == 'f' && dt.itemsize() == 4) return apply<float>(x, kf);
    if (dt.kind() == 'f' && dt.itemsize() == 8) return apply<double>(x, kd);
    throw py::type_error(std::string(fn) + ": expected x to be float32 or float64, got " +
                         std::string(py::str(dt)));
}

}  // namespace

void bind_special(py::module_& m) {
    m.def("erf", [](const py::array& x) { return dispatch(x, "erf", &kg::cpu::erf<float>, &kg::cpu::erf<double>); },
          py::arg("x"), "erf(x) elementwise; float32 or float64");
    m.def("erfc", [](const py::array& x) { return dispatch(x, "erfc", &kg::cpu::erfc<float>, &kg::cpu::erfc<double>); },
          py::arg("x"), "erfc(x) = 1 - erf(x) elementwise, accurate for large x; float32 or float64");
}
