// module_cpu.cpp: the pybind11 module kernelgrad._C, the CPU kernels seen from Python.
//
// The only file that touches pybind11: it checks dtypes, shapes and strides, raises
// TypeError/ValueError naming the argument, allocates outputs, and releases the GIL around
// the kernels in csrc/cpu.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace py = pybind11;

void bind_conv(py::module_& m);  // bind_conv.cpp
void bind_norm(py::module_& m);  // bind_norm.cpp: softmax, cross-entropy, layer norm, batch norm
void bind_pool(py::module_& m);  // bind_pool.cpp
void bind_attention(py::module_& m);  // bind_attention.cpp
void bind_special(py::module_& m);  // bind_special.cpp: erf, erfc

namespace {

// ----------------------------------------------------------------------------------------------
// Argument checks

std::string shape_of(const py::array& a) { return py::str(a.attr("shape")); }
std::string dtype_of(const py::array& a) { return py::str(a.dtype()); }

bool is_float32_or_64(const py::array& a) {
    const py::dtype dt = a.dtype();
    return dt.kind() == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8);
}

// The array as the kernels can read it in place: native byte order, aligned data, and strides
// that are whole elements (any sign, zero included). Anything else becomes a C-contiguous copy.
py::array readable_in_place(py::array a) {
    if (!a.dtype().attr("isnative").cast<bool>())
        return a.attr("astype")(a.dtype().attr("newbyteorder")("="));
    const auto itemsize = static_cast<ptrdiff_t>(a.itemsize());
    bool usable = reinterpret_cast<std::uintptr_t>(a.data()) % itemsize == 0;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) usable = usable && a.strides(d) % itemsize == 0;
    return usable ? a : py::array(a.attr("copy")());
}

// ----------------------------------------------------------------------------------------------
// matmul

// out (..., M, N) = a (..., M, K) @ b (..., K, N), one GEMM per batch index; a and b have the
// same batch shape (any strides, 0 included), out is a new C-contiguous array.
template <typename T>
py::array matmul_typed(const py::array& a, const py::array& b) {
    const py::ssize_t nb = a.ndim() - 2;  // batch dimensions
    const int64_t M = a.shape(nb), K = a.shape(nb + 1), N = b.shape(nb + 1);

    std::vector<py::ssize_t> out_shape(a.shape(), a.shape() + nb);
    out_shape.push_back(M);
    out_shape.push_back(N);
    py::array_t<T> out(out_shape);
    if (out.size() == 0) return std::move(out);

    // One base pointer per batch index: walk the batch multi-index like an odometer.
    const int64_t batch = out.size() / (M * N);
    std::vector<const T*> A_ptrs(batch), B_ptrs(batch);
    std::vector<T*> C_ptrs(batch);
    std::vector<py::ssize_t> idx(nb, 0);
    const char* a_at = static_cast<const char*>(a.data());
    const char* b_at = static_cast<const char*>(b.data());
    T* C = out.mutable_data();
    for (int64_t i = 0; i < batch; ++i) {
        A_ptrs[i] = reinterpret_cast<const T*>(a_at);
        B_ptrs[i] = reinterpret_cast<const T*>(b_at);
        C_ptrs[i] = C + i * M * N;
        for (py::ssize_t d = nb - 1; d >= 0; --d) {  // next index; byte offsets follow the strides
            a_at += a.strides(d);
            b_at += b.strides(d);
            if (++idx[d] < a.shape(d)) break;
            a_at -= a.strides(d) * a.shape(d);
            b_at -= b.strides(d) * b.shape(d);
            idx[d] = 0;
        }
    }

    const ptrdiff_t sz = sizeof(T);
    const ptrdiff_t rsa = a.strides(nb) / sz, csa = a.strides(nb + 1) / sz;
    const ptrdiff_t rsb = b.strides(nb) / sz, csb = b.strides(nb + 1) / sz;
    {
        py::gil_scoped_release no_gil;
        kg::cpu::gemm_batched(C_ptrs.data(), N, 1, A_ptrs.data(), rsa, csa, B_ptrs.data(), rsb, csb,
                              batch, M, N, K, T(0));
    }
    return std::move(out);
}

py::array matmul(py::array a, py::array b) {
    if (!is_float32_or_64(a) || !is_float32_or_64(b) ||
        a.dtype().itemsize() != b.dtype().itemsize())
        throw py::type_error("matmul: expected a and b to have the same dtype (float32 or float64), got " +
                             dtype_of(a) + " and " + dtype_of(b));
    if (a.ndim() < 2)
        throw py::value_error("matmul: expected a to have at least 2 dimensions (..., M, K), got shape " +
                              shape_of(a));
    if (b.ndim() < 2)
        throw py::value_error("matmul: expected b to have at least 2 dimensions (..., K, N), got shape " +
                              shape_of(b));
    if (a.ndim() != b.ndim() ||
        !std::equal(a.shape(), a.shape() + a.ndim() - 2, b.shape()))
        throw py::value_error(
            "matmul: expected a and b to have the same batch shape (all but the last two dimensions), "
            "got a of shape " + shape_of(a) + " and b of shape " + shape_of(b));
    if (a.shape(a.ndim() - 1) != b.shape(b.ndim() - 2))
        throw py::value_error("matmul: expected a.shape[-1] == b.shape[-2] (K), got a of shape " +
                              shape_of(a) + " and b of shape " + shape_of(b));

    a = readable_in_place(std::move(a));
    b = readable_in_place(std::move(b));
    return a.dtype().itemsize() == 4 ? matmul_typed<float>(a, b) : matmul_typed<double>(a, b);
}

// ----------------------------------------------------------------------------------------------
// Threads and micro-kernel choice

void set_num_threads(int n) {
    if (n < 1)
        throw py::value_error("set_num_threads: expected n >= 1, got " + std::to_string(n));
    kg::cpu::set_num_threads(n);
}

void set_isa(const std::string& name) {
    if (!kg::cpu::gemm_set_isa(name.c_str()))
        throw py::value_error("_set_isa: expected 'auto' or 'generic', got '" + name + "'");
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Module

PYBIND11_MODULE(_C, m) {
    m.doc() = "kernelgrad CPU kernels (C++, OpenMP). NumPy arrays in, new NumPy arrays out.";

    m.def("matmul", &matmul, py::arg("a"), py::arg("b"),
          "matmul(a, b) -> (..., M, N) C-contiguous array: a (..., M, K) @ b (..., K, N).\n\n"
          "a and b: float32 or float64 (the same), ndim >= 2, identical batch shapes (broadcast\n"
          "beforehand; stride-0 batch dimensions are fine), any strides. The GIL is released.");
    m.def("set_num_threads", &set_num_threads, py::arg("n"),
          "Number of threads the CPU kernels use (n >= 1).");
    m.def("get_num_threads", &kg::cpu::get_num_threads,
          "Number of threads the CPU kernels use (default: OMP_NUM_THREADS, else the cores).");
    m.def("cpu_isa", &kg::cpu::gemm_isa, "GEMM micro-kernel in use: 'avx2' or 'generic'.");
    m.def("_set_isa", &set_isa, py::arg("name"),
          "Testing hook: 'generic' forces the portable GEMM micro-kernel, 'auto' picks by CPU.");
    bind_conv(m);
    bind_norm(m);
    bind_pool(m);
    bind_attention(m);
    bind_special(m);

    // KERNELGRAD_ISA=generic (or auto) at import time
    if (const char* isa = std::getenv("KERNELGRAD_ISA"); isa != nullptr && *isa != '\0') {
        if (!kg::cpu::gemm_set_isa(isa)) {
            const std::string msg = std::string("KERNELGRAD_ISA: expected 'auto' or 'generic', got '") +
                                    isa + "'; using 'auto'";
            if (PyErr_WarnEx(PyExc_RuntimeWarning, msg.c_str(), 1) != 0) throw py::error_already_set();
        }
    }
}
