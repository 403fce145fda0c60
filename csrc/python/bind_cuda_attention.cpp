// bind_cuda_attention.cpp: the fused attention kernels of the CUDA modules (csrc/cuda/attention.h).
//
// python/kernelgrad/backend/cuda_attention.py is the caller: it checks shapes and dtypes (with the
// CPU binding's messages), allocates the outputs, and passes device pointers (ints) with element
// strides over the full shape (*batch, rows, cols) of every operand. Here the batch dims of size 1
// are dropped, the operands become the kernels' MatrixBatch arguments, the sizes and options are
// checked again (a wrong call is an error, never a crash), and the GIL is released around the
// launches.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda/attention.h"
#include "python/bind_cuda.h"

namespace py = pybind11;

namespace kg {
namespace cuda {

namespace {

using Dims = std::vector<int64_t>;

// The call's batch shape without its dims of size 1 (at most kMaxDims remain).
struct Batch {
    Shape shape{};
    std::vector<size_t> kept;  // the dims of the full batch shape that remain
    size_t ndim = 0;           // dims of the full batch shape
};

Batch batch_of(const char* fn, const Dims& batch) {
    Batch b;
    b.ndim = batch.size();
    for (size_t d = 0; d < batch.size(); ++d) {
        if (batch[d] < 0) throw py::value_error(std::string(fn) + ": negative batch size");
        if (batch[d] == 1) continue;
        if (b.shape.ndim == kMaxDims)
            throw py::value_error(std::string(fn) + ": more than " + std::to_string(kMaxDims) +
                                  " batch dims of size > 1 are not supported on CUDA");
        b.shape.size[b.shape.ndim++] = batch[d];
        b.kept.push_back(d);
    }
    return b;
}

// An operand of shape (*batch, rows, cols) at device address ptr with element strides `strides`.
template <typename T>
MatrixBatch<T> matrices(const char* fn, const char* name, uintptr_t ptr, const Dims& strides, const Batch& b) {
    if (strides.size() != b.ndim + 2)
        throw py::value_error(std::string(fn) + ": expected " + std::to_string(b.ndim + 2) + " strides of " + name +
                              ", got " + std::to_string(strides.size()));
    MatrixBatch<T> m{};
    m.ptr = reinterpret_cast<const T*>(ptr);
    for (size_t k = 0; k < b.kept.size(); ++k) m.batch_stride[k] = strides[b.kept[k]];
    m.rs = strides[b.ndim];
    m.cs = strides[b.ndim + 1];
    return m;
}

// What every call takes besides its outputs (and, backward, dO, O, LSE).
struct Call {
    int dtype;
    uintptr_t q, k, v;
    Dims q_strides, k_strides, v_strides;
    uintptr_t mask;  // 0: no attn_mask
    bool mask_is_bool;
    Dims mask_strides;
    bool is_causal;
    double scale, dropout_p;
    uint64_t seed;
    Dims batch;
    int64_t L, S, E, Ev;
};

void check_call(const char* fn, const Call& c) {
    if (c.dtype != static_cast<int>(DType::Float32) && c.dtype != static_cast<int>(DType::Float64))
        throw py::type_error(std::string(fn) + ": expected float32 or float64 (dtype code 3 or 4), got code " +
                             std::to_string(c.dtype));
    if (c.L < 0 || c.S < 0 || c.E < 0 || c.Ev < 0)
        throw py::value_error(std::string(fn) + ": negative L, S, E or Ev");
    if (c.is_causal && c.mask)
        throw py::value_error(std::string(fn) + ": an explicit attn_mask cannot be combined with is_causal=True");
    if (!(c.dropout_p >= 0 && c.dropout_p <= 1))
        throw py::value_error(std::string(fn) + ": expected 0 <= dropout_p <= 1, got " + std::to_string(c.dropout_p));
}

// The kernels' arguments of a call, for element type T.
template <typename T>
struct Args {
    Batch batch;
    MatrixBatch<T> Q, K, V;
    AttentionMask<T> mask{};
    AttentionDropout dropout;

    Args(const char* fn, const Call& c)
        : batch(batch_of(fn, c.batch)),
          Q(matrices<T>(fn, "q", c.q, c.q_strides, batch)),
          K(matrices<T>(fn, "k", c.k, c.k_strides, batch)),
          V(matrices<T>(fn, "v", c.v, c.v_strides, batch)),
          dropout{c.dropout_p, c.seed} {
        mask.causal = c.is_causal;
        if (c.mask && c.mask_is_bool) mask.keep = matrices<uint8_t>(fn, "attn_mask", c.mask, c.mask_strides, batch);
        if (c.mask && !c.mask_is_bool) mask.add = matrices<T>(fn, "attn_mask", c.mask, c.mask_strides, batch);
    }
};

template <typename T>
T* out_ptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

void forward(uintptr_t out, uintptr_t lse, const Call& c) {
    const char* fn = "attention_forward";
    check_call(fn, c);
    auto run = [&](auto tag) {
        using T = decltype(tag);
        const Args<T> a(fn, c);
        py::gil_scoped_release no_gil;
        attention_forward(out_ptr<T>(out), out_ptr<T>(lse), a.Q, a.K, a.V, a.mask, a.dropout, T(c.scale),
                          a.batch.shape, c.L, c.S, c.E, c.Ev);
    };
    c.dtype == static_cast<int>(DType::Float32) ? run(float{}) : run(double{});
}

void backward(uintptr_t dq, uintptr_t dk, uintptr_t dv, uintptr_t grad_out, const Dims& grad_out_strides,
              uintptr_t out, uintptr_t lse, const Call& c) {
    const char* fn = "attention_backward";
    check_call(fn, c);
    auto run = [&](auto tag) {
        using T = decltype(tag);
        const Args<T> a(fn, c);
        const MatrixBatch<T> dO = matrices<T>(fn, "grad_out", grad_out, grad_out_strides, a.batch);
        py::gil_scoped_release no_gil;
        attention_backward(out_ptr<T>(dq), out_ptr<T>(dk), out_ptr<T>(dv), dO, out_ptr<const T>(out),
                           out_ptr<const T>(lse), a.Q, a.K, a.V, a.mask, a.dropout, T(c.scale), a.batch.shape,
                           c.L, c.S, c.E, c.Ev);
    };
    c.dtype == static_cast<int>(DType::Float32) ? run(float{}) : run(double{});
}

}  // namespace

void bind_cuda_attention(py::module_& m) {
    py::class_<Call>(m, "AttentionCall",
                     "The arguments every attention call takes: dtype code, q, k, v (device addresses and element "
                     "strides of (*batch, rows, cols)), attn_mask (address, 0 for none; bool or of q's dtype; "
                     "strides), is_causal, scale, dropout_p, seed, the batch shape and L, S, E, Ev.")
        .def(py::init<int, uintptr_t, uintptr_t, uintptr_t, Dims, Dims, Dims, uintptr_t, bool, Dims, bool, double,
                      double, uint64_t, Dims, int64_t, int64_t, int64_t, int64_t>(),
             py::arg("dtype"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("q_strides"), py::arg("k_strides"),
             py::arg("v_strides"), py::arg("mask"), py::arg("mask_is_bool"), py::arg("mask_strides"),
             py::arg("is_causal"), py::arg("scale"), py::arg("dropout_p"), py::arg("seed"), py::arg("batch"),
             py::arg("L"), py::arg("S"), py::arg("E"), py::arg("Ev"));
    m.def("attention_forward", &forward, py::arg("out"), py::arg("lse"), py::arg("call"),
          "attention_forward(out, lse, call): out (BH, L, Ev) and lse (BH, L), contiguous, of the fused\n"
          "softmax(scale * q k^T + mask) v (csrc/cuda/attention.h). The GIL is released.");
    m.def("attention_backward", &backward, py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("grad_out"),
          py::arg("grad_out_strides"), py::arg("out"), py::arg("lse"), py::arg("call"),
          "attention_backward(dq, dk, dv, grad_out, grad_out_strides, out, lse, call): the gradients\n"
          "(contiguous (BH, L, E), (BH, S, E), (BH, S, Ev)) for attention_forward's out and lse (contiguous).");
}

}  // namespace cuda
}  // namespace kg
