// bind_cuda_random.cpp: the Philox random-number kernels of the CUDA modules (csrc/cuda/random.h).
// Outputs are contiguous device arrays passed as ints (pointers into a live Storage), seeds and
// offsets Python ints in [0, 2^64). Every function returns the number of 128-bit Philox counters it
// consumed: the caller advances its offset by that so that no counter is used twice per seed.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "cuda/random.h"
#include "python/bind_cuda.h"

namespace py = pybind11;

namespace kg {
namespace cuda {

namespace {

const char* const kDTypeNames[] = {"bool", "int64", "float16", "float32", "float64"};

DType float_dtype(int code, const char* fn) {
    if (code < 0 || code > 4) throw py::value_error(std::string(fn) + ": unknown dtype code " + std::to_string(code));
    const DType dtype = static_cast<DType>(code);
    if (dtype != DType::Float16 && dtype != DType::Float32 && dtype != DType::Float64)
        throw py::value_error(std::string(fn) + ": dtype " + kDTypeNames[code] +
                              " is not a floating type (float16, float32 or float64)");
    return dtype;
}

void check_size(int64_t n, const char* fn) {
    if (n < 0) throw py::value_error(std::string(fn) + ": negative size " + std::to_string(n));
}

template <typename T>
T* dev(uintptr_t p) { return reinterpret_cast<T*>(p); }

}  // namespace

void bind_cuda_random(py::module_& m) {
    m.def("random_raw", [](uintptr_t out, int64_t n, uint64_t seed, uint64_t offset) {
        check_size(n, "random_raw");
        py::gil_scoped_release release;
        return random_raw(dev<uint32_t>(out), n, seed, offset);
    }, py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"),
       "uint32 out (n) = the raw Philox4x32-10 stream; returns the counters consumed, ceil(n / 4)");

    m.def("random_uniform", [](int dtype_code, uintptr_t out, int64_t n, uint64_t seed, uint64_t offset) {
        const DType dtype = float_dtype(dtype_code, "random_uniform");
        check_size(n, "random_uniform");
        py::gil_scoped_release release;
        return random_uniform(dtype, dev<void>(out), n, seed, offset);
    }, py::arg("dtype_code"), py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"),
       "out (n) uniform in [0, 1); returns the counters consumed: ceil(n / 4), float64 ceil(n / 2)");

    m.def("random_normal", [](int dtype_code, uintptr_t out, int64_t n, uint64_t seed, uint64_t offset) {
        const DType dtype = float_dtype(dtype_code, "random_normal");
        check_size(n, "random_normal");
        py::gil_scoped_release release;
        return random_normal(dtype, dev<void>(out), n, seed, offset);
    }, py::arg("dtype_code"), py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"),
       "out (n) standard normal (Box-Muller); returns the counters consumed: ceil(n / 4), float64 ceil(n / 2)");

    m.def("random_integers", [](uintptr_t out, int64_t n, int64_t low, int64_t high, uint64_t seed, uint64_t offset) {
        check_size(n, "random_integers");
        if (low >= high)
            throw py::value_error("random_integers: low (" + std::to_string(low) + ") must be less than high (" +
                                  std::to_string(high) + ")");
        py::gil_scoped_release release;
        return random_integers(dev<int64_t>(out), n, low, high, seed, offset);
    }, py::arg("out_ptr"), py::arg("n"), py::arg("low"), py::arg("high"), py::arg("seed"), py::arg("offset"),
       "int64 out (n) uniform in [low, high); returns the counters consumed: ceil(n / 2) when "
       "high - low <= 2^32, else n");

    m.def("randperm", [](uintptr_t out, int64_t n, uint64_t seed, uint64_t offset) {
        check_size(n, "randperm");
        py::gil_scoped_release release;
        return randperm(dev<int64_t>(out), n, seed, offset);
    }, py::arg("out_ptr"), py::arg("n"), py::arg("seed"), py::arg("offset"),
       "int64 out (n) = a random permutation of 0..n-1; returns the counters consumed, ceil(n / 2)");
}

}  // namespace cuda
}  // namespace kg
