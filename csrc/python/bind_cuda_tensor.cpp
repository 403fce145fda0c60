// bind_cuda_tensor.cpp: the device-array layer of the CUDA modules (_cuda and _cuda_emu): device
// memory (Storage, the caching allocator's statistics, host<->device copies) and the elementwise,
// reduction and indexing kernels. Device pointers travel through Python as ints (Storage.ptr plus
// a byte offset) next to shapes and element strides; python/kernelgrad/backend/cuda.py is the one
// caller and keeps every pointer inside a live Storage.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/allocator.h"
#include "cuda/elementwise.h"
#include "cuda/index.h"
#include "cuda/kg_cuda.cuh"
#include "cuda/reduce.h"
#include "python/bind_cuda.h"

namespace py = pybind11;

namespace kg {
namespace cuda {

namespace {

using Dims = std::vector<int64_t>;

// A block of device memory owned by a Python object; given back to the cache when it dies.
class Storage {
public:
    explicit Storage(size_t nbytes) : nbytes_(nbytes), ptr_(device_alloc(nbytes)) {}
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    ~Storage() { device_free(ptr_); }
    uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(ptr_); }
    size_t nbytes() const { return nbytes_; }

private:
    size_t nbytes_;
    void* ptr_;
};

template <typename T = void>
T* dev(uintptr_t p) { return reinterpret_cast<T*>(p); }

DType dtype_of(int code) {
    if (code < 0 || code > 4) throw py::value_error("unknown dtype code " + std::to_string(code));
    return static_cast<DType>(code);
}

template <typename E>
E op_named(const std::unordered_map<std::string, E>& table, const std::string& name, const char* what) {
    auto it = table.find(name);
    if (it == table.end()) throw py::value_error(std::string("unknown ") + what + " '" + name + "'");
    return it->second;
}

// The loop over `shape` with the element strides of N operands, dims of size 1 dropped and
// neighbouring dims merged where every operand steps through them as through one dim.
template <int N>
Layout<N> make_layout(const Dims& shape, const std::array<const Dims*, N>& strides) {
    for (int k = 0; k < N; ++k)
        if (strides[k]->size() != shape.size()) throw py::value_error("strides and shape differ in length");
    Layout<N> l{};
    l.numel = 1;
    for (int64_t s : shape) l.numel *= s;
    int nd = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
        if (shape[d] == 1) continue;
        bool merge = nd > 0;
        for (int k = 0; k < N && merge; ++k) merge = l.stride[k][nd - 1] == (*strides[k])[d] * shape[d];
        if (merge) {
            l.size[nd - 1] *= shape[d];
            for (int k = 0; k < N; ++k) l.stride[k][nd - 1] = (*strides[k])[d];
            continue;
        }
        if (nd == kMaxDims) throw py::value_error("more than 8 non-mergeable dims in one CUDA elementwise operation");
        l.size[nd] = shape[d];
        for (int k = 0; k < N; ++k) l.stride[k][nd] = (*strides[k])[d];
        ++nd;
    }
    l.ndim = nd;
    return l;
}

void check_host_array(const py::array& a, const char* what) {
    if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(what) + ": expected a C-contiguous array");
}

const std::unordered_map<std::string, UnaryOp> kUnary = {
    {"negative", UnaryOp::negative}, {"abs", UnaryOp::abs}, {"sign", UnaryOp::sign}, {"exp", UnaryOp::exp},
    {"log", UnaryOp::log}, {"log1p", UnaryOp::log1p}, {"sqrt", UnaryOp::sqrt}, {"rsqrt", UnaryOp::rsqrt},
    {"sin", UnaryOp::sin}, {"cos", UnaryOp::cos}, {"tanh", UnaryOp::tanh}, {"sigmoid", UnaryOp::sigmoid},
    {"erf", UnaryOp::erf}, {"erfc", UnaryOp::erfc}};
const std::unordered_map<std::string, PredicateOp> kPredicate = {
    {"isnan", PredicateOp::isnan}, {"isfinite", PredicateOp::isfinite}, {"logical_not", PredicateOp::logical_not}};
const std::unordered_map<std::string, BinaryOp> kBinary = {
    {"add", BinaryOp::add}, {"subtract", BinaryOp::subtract}, {"multiply", BinaryOp::multiply},
    {"divide", BinaryOp::divide}, {"floor_divide", BinaryOp::floor_divide},
    {"trunc_divide", BinaryOp::trunc_divide}, {"remainder", BinaryOp::remainder}, {"power", BinaryOp::power},
    {"maximum", BinaryOp::maximum}, {"minimum", BinaryOp::minimum}, {"logical_and", BinaryOp::logical_and},
    {"logical_or", BinaryOp::logical_or}};
const std::unordered_map<std::string, CompareOp> kCompare = {
    {"equal", CompareOp::equal}, {"not_equal", CompareOp::not_equal}, {"less", CompareOp::less},
    {"less_equal", CompareOp::less_equal}, {"greater", CompareOp::greater},
    {"greater_equal", CompareOp::greater_equal}};
const std::unordered_map<std::string, ReduceOp> kReduce = {
    {"sum", ReduceOp::sum}, {"prod", ReduceOp::prod}, {"max", ReduceOp::max},
    {"min", ReduceOp::min}, {"all", ReduceOp::all}, {"any", ReduceOp::any}};
const std::unordered_map<std::string, ScanOp> kScan = {{"cumsum", ScanOp::cumsum}, {"cumprod", ScanOp::cumprod}};
const std::unordered_map<std::string, IndexMode> kIndexMode = {
    {"get", IndexMode::get}, {"put", IndexMode::put}, {"add", IndexMode::add}};

// A small device buffer for a kernel's error report or count, read back after the launch.
struct Scratch {
    explicit Scratch(size_t n) : storage(n * sizeof(int64_t)), n(n) {
        KG_CUDA_CHECK(cudaMemset(dev(storage.ptr()), 0, n * sizeof(int64_t)));
    }
    int64_t* get() const { return dev<int64_t>(storage.ptr()); }
    std::vector<int64_t> read() const {
        std::vector<int64_t> host(n);
        KG_CUDA_CHECK(cudaMemcpy(host.data(), get(), n * sizeof(int64_t), cudaMemcpyDeviceToHost));
        return host;
    }
    Storage storage;
    size_t n;
};

}  // namespace

void bind_cuda_tensor(py::module_& m) {
    // --- device memory
    py::class_<Storage>(m, "Storage", "A block of device memory from the caching allocator")
        .def(py::init<size_t>(), py::arg("nbytes"))
        .def_property_readonly("ptr", &Storage::ptr)
        .def_property_readonly("nbytes", &Storage::nbytes);
    m.def("memory_allocated", &memory_allocated);
    m.def("memory_reserved", &memory_reserved);
    m.def("max_memory_allocated", &max_memory_allocated);
    m.def("reset_peak_memory_stats", &reset_peak_memory_stats);
    m.def("empty_cache", &empty_cache);
    m.def("synchronize", [] {
        py::gil_scoped_release release;
        KG_CUDA_CHECK(cudaDeviceSynchronize());
    });

    m.def("copy_from_host", [](uintptr_t dst, py::array src) {
        check_host_array(src, "copy_from_host");
        const size_t n = static_cast<size_t>(src.nbytes());
        if (n == 0) return;
        const void* host = src.data();
        py::gil_scoped_release release;
        KG_CUDA_CHECK(cudaMemcpy(dev(dst), host, n, cudaMemcpyHostToDevice));
    }, py::arg("dst"), py::arg("src"));
    m.def("copy_to_host", [](py::array dst, uintptr_t src) {
        check_host_array(dst, "copy_to_host");
        if (!dst.writeable()) throw py::value_error("copy_to_host: the destination array is read-only");
        const size_t n = static_cast<size_t>(dst.nbytes());
        if (n == 0) return;
        void* host = dst.mutable_data();
        py::gil_scoped_release release;
        KG_CUDA_CHECK(cudaMemcpy(host, dev(src), n, cudaMemcpyDeviceToHost));
    }, py::arg("dst"), py::arg("src"));

    // --- elementwise (strides in elements; pointers already offset)
    m.def("copy", [](int out_t, uintptr_t out, const Dims& os, int in_t, uintptr_t in, const Dims& is,
                     const Dims& shape) {
        const auto l = make_layout<2>(shape, {&os, &is});
        py::gil_scoped_release release;
        copy(dtype_of(out_t), dev(out), dtype_of(in_t), dev(in), l);
    });
    m.def("unary", [](const std::string& op, int t, uintptr_t out, const Dims& os, uintptr_t in, const Dims& is,
                      const Dims& shape) {
        const auto code = op_named(kUnary, op, "unary op");
        const auto l = make_layout<2>(shape, {&os, &is});
        py::gil_scoped_release release;
        unary(code, dtype_of(t), dev(out), dev(in), l);
    });
    m.def("predicate", [](const std::string& op, int t, uintptr_t out, const Dims& os, uintptr_t in,
                          const Dims& is, const Dims& shape) {
        const auto code = op_named(kPredicate, op, "predicate");
        const auto l = make_layout<2>(shape, {&os, &is});
        py::gil_scoped_release release;
        predicate(code, dtype_of(t), dev<bool>(out), dev(in), l);
    });
    m.def("binary", [](const std::string& op, int t, uintptr_t out, const Dims& os, uintptr_t a, const Dims& as,
                       uintptr_t b, const Dims& bs, const Dims& shape) {
        const auto code = op_named(kBinary, op, "binary op");
        const auto l = make_layout<3>(shape, {&os, &as, &bs});
        py::gil_scoped_release release;
        binary(code, dtype_of(t), dev(out), dev(a), dev(b), l);
    });
    m.def("compare", [](const std::string& op, int t, uintptr_t out, const Dims& os, uintptr_t a, const Dims& as,
                        uintptr_t b, const Dims& bs, const Dims& shape) {
        const auto code = op_named(kCompare, op, "comparison");
        const auto l = make_layout<3>(shape, {&os, &as, &bs});
        py::gil_scoped_release release;
        compare(code, dtype_of(t), dev<bool>(out), dev(a), dev(b), l);
    });
    m.def("where", [](int t, uintptr_t out, const Dims& os, uintptr_t c, const Dims& cs, uintptr_t a,
                      const Dims& as, uintptr_t b, const Dims& bs, const Dims& shape) {
        const auto l = make_layout<4>(shape, {&os, &cs, &as, &bs});
        py::gil_scoped_release release;
        where(dtype_of(t), dev(out), dev<bool>(c), dev(a), dev(b), l);
    });
    m.def("fill", [](int t, uintptr_t out, const Dims& os, const Dims& shape, double value, int64_t ivalue) {
        const auto l = make_layout<1>(shape, {&os});
        py::gil_scoped_release release;
        fill(dtype_of(t), dev(out), value, ivalue, l);
    });
    m.def("arange", [](int t, uintptr_t out, int64_t n, double start, double step, int64_t istart, int64_t istep) {
        py::gil_scoped_release release;
        arange(dtype_of(t), dev(out), n, start, step, istart, istep);
    });

    // --- reductions and scans over contiguous (M, R)
    m.def("reduce", [](const std::string& op, int t, uintptr_t out, uintptr_t in, int64_t M, int64_t R) {
        const auto code = op_named(kReduce, op, "reduction");
        py::gil_scoped_release release;
        reduce_rows(code, dtype_of(t), dev(out), dev(in), M, R);
    });
    m.def("arg_reduce", [](bool is_max, int t, uintptr_t out, uintptr_t in, int64_t M, int64_t R) {
        py::gil_scoped_release release;
        arg_reduce_rows(is_max, dtype_of(t), dev<int64_t>(out), dev(in), M, R);
    });
    m.def("scan", [](const std::string& op, int t, uintptr_t out, uintptr_t in, int64_t M, int64_t R) {
        const auto code = op_named(kScan, op, "scan");
        py::gil_scoped_release release;
        scan_rows(code, dtype_of(t), dev(out), dev(in), M, R);
    });

    // --- indexing. Returns None, or (bad index, which index array) for an index out of range.
    m.def("index", [](const std::string& mode, int t, uintptr_t values, const Dims& vs, uintptr_t data,
                      const Dims& ds, const std::vector<uintptr_t>& index, const std::vector<Dims>& index_strides,
                      const Dims& dim_size, const Dims& dim_stride, const Dims& shape) -> py::object {
        const auto code = op_named(kIndexMode, mode, "index mode");
        const size_t k = index.size();
        if (k > static_cast<size_t>(kMaxIndices) || index_strides.size() != k || dim_size.size() != k ||
            dim_stride.size() != k)
            throw py::value_error("index: at most 6 index arrays, each with strides, a dim size and a dim stride");
        IndexSpec spec{};
        spec.count = static_cast<int>(k);
        std::array<const Dims*, 2 + kMaxIndices> strides{};
        const Dims zeros(shape.size(), 0);
        strides[0] = &vs;
        strides[1] = &ds;
        for (int j = 0; j < kMaxIndices; ++j) {
            strides[2 + j] = static_cast<size_t>(j) < k ? &index_strides[j] : &zeros;
            if (static_cast<size_t>(j) < k) {
                spec.index[j] = dev<const int64_t>(index[j]);
                spec.dim_size[j] = dim_size[j];
                spec.dim_stride[j] = dim_stride[j];
            }
        }
        const auto l = make_layout<2 + kMaxIndices>(shape, strides);
        std::vector<int64_t> error;
        {
            py::gil_scoped_release release;
            Scratch scratch(3);
            kg::cuda::index(code, dtype_of(t), dev(values), dev(data), spec, l, scratch.get());
            error = scratch.read();
        }
        if (error[0] == 0) return py::none();
        return py::make_tuple(error[1], error[2]);
    });
    m.def("nonzero", [](uintptr_t mask, const Dims& shape) {
        if (shape.size() > static_cast<size_t>(kMaxDims)) throw py::value_error("nonzero: at most 8 dims on CUDA");
        Shape s{};
        s.ndim = static_cast<int>(shape.size());
        int64_t n = 1;
        for (size_t d = 0; d < shape.size(); ++d) s.size[d] = shape[d], n *= shape[d];
        Scratch count(1);
        {
            py::gil_scoped_release release;
            if (n > 0) nonzero(nullptr, count.get(), dev<bool>(mask), n, s);
        }
        const int64_t total = count.read()[0];
        auto out = std::make_unique<Storage>(static_cast<size_t>(total * s.ndim) * sizeof(int64_t));
        if (total > 0 && s.ndim > 0) {
            py::gil_scoped_release release;
            nonzero(dev<int64_t>(out->ptr()), count.get(), dev<bool>(mask), n, s);
        }
        return py::make_tuple(std::move(out), total);
    });
}

}  // namespace cuda
}  // namespace kg
