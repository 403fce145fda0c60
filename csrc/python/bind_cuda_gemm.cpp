// bind_cuda_gemm.cpp: the batched strided matmul of the CUDA modules (csrc/cuda/gemm.h). As in
// bind_cuda_tensor.cpp, device pointers travel as ints and strides are in elements, in the order
// (batch, row, col) for each operand:
//   matmul(dtype_code, c_ptr, c_strides, a_ptr, a_strides, b_ptr, b_strides, batch, M, N, K, version="auto")
//   matmul_version(...the same...) -> the name of the kernel matmul would run ("vec" falls back to
//   "reg2d" for operands it cannot read in aligned float4s)
// dtype codes: 0 bool (rejected), 1 int64, 2 float16, 3 float32, 4 float64.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/gemm.h"
#include "python/bind_cuda.h"

namespace py = pybind11;

namespace kg {
namespace cuda {

namespace {

using Strides = std::vector<int64_t>;

struct MatmulArgs {
    GemmVersion version;
    DType dtype;
    void* c;
    const void* a;
    const void* b;
    int64_t cs[3], as[3], bs[3];
    int64_t batch, M, N, K;
};

void copy_strides(int64_t (&to)[3], const Strides& from, const char* name) {
    if (from.size() != 3)
        throw py::value_error(std::string("matmul: ") + name + " must have 3 strides (batch, row, col), got " +
                              std::to_string(from.size()));
    for (int d = 0; d < 3; ++d) to[d] = from[d];
}

MatmulArgs check_args(int dtype, uintptr_t c, const Strides& cs, uintptr_t a, const Strides& as, uintptr_t b,
                      const Strides& bs, int64_t batch, int64_t M, int64_t N, int64_t K, const std::string& version) {
    MatmulArgs args{};
    bool known = false;
    for (GemmVersion v : kGemmVersions)
        if (version == gemm_version_name(v)) args.version = v, known = true;
    if (!known)
        throw py::value_error("matmul: unknown version '" + version + "' (auto, naive, smem, reg2d or vec)");
    if (dtype < 0 || dtype > 4) throw py::value_error("matmul: unknown dtype code " + std::to_string(dtype));
    if (static_cast<DType>(dtype) == DType::Bool) throw py::value_error("matmul: bool operands are not supported");
    if (batch < 0 || M < 0 || N < 0 || K < 0) throw py::value_error("matmul: negative size");
    args.dtype = static_cast<DType>(dtype);
    args.c = reinterpret_cast<void*>(c);
    args.a = reinterpret_cast<const void*>(a);
    args.b = reinterpret_cast<const void*>(b);
    copy_strides(args.cs, cs, "c_strides");
    copy_strides(args.as, as, "a_strides");
    copy_strides(args.bs, bs, "b_strides");
    args.batch = batch, args.M = M, args.N = N, args.K = K;
    return args;
}

}  // namespace

void bind_cuda_gemm(py::module_& m) {
    m.def("matmul", [](int dtype, uintptr_t c, const Strides& cs, uintptr_t a, const Strides& as, uintptr_t b,
                       const Strides& bs, int64_t batch, int64_t M, int64_t N, int64_t K, const std::string& version) {
        const MatmulArgs x = check_args(dtype, c, cs, a, as, b, bs, batch, M, N, K, version);
        py::gil_scoped_release release;
        gemm(x.version, x.dtype, x.c, x.cs, x.a, x.as, x.b, x.bs, x.batch, x.M, x.N, x.K);
    }, py::arg("dtype_code"), py::arg("c_ptr"), py::arg("c_strides"), py::arg("a_ptr"), py::arg("a_strides"),
       py::arg("b_ptr"), py::arg("b_strides"), py::arg("batch"), py::arg("M"), py::arg("N"), py::arg("K"),
       py::arg("version") = "auto",
       "c[b] (M, N) = a[b] (M, K) @ b[b] (K, N) for b < batch; device pointers as ints, element strides "
       "(batch, row, col)");
    m.def("matmul_version", [](int dtype, uintptr_t c, const Strides& cs, uintptr_t a, const Strides& as,
                               uintptr_t b, const Strides& bs, int64_t batch, int64_t M, int64_t N, int64_t K,
                               const std::string& version) {
        const MatmulArgs x = check_args(dtype, c, cs, a, as, b, bs, batch, M, N, K, version);
        return std::string(gemm_version_name(
            gemm_version(x.version, x.dtype, x.c, x.cs, x.a, x.as, x.b, x.bs, x.batch, x.M, x.N, x.K)));
    }, py::arg("dtype_code"), py::arg("c_ptr"), py::arg("c_strides"), py::arg("a_ptr"), py::arg("a_strides"),
       py::arg("b_ptr"), py::arg("b_strides"), py::arg("batch"), py::arg("M"), py::arg("N"), py::arg("K"),
       py::arg("version") = "auto", "The kernel matmul() would run for these arguments");
}

}  // namespace cuda
}  // namespace kg
