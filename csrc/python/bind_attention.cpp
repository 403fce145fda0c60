// bind_attention.cpp: kernelgrad._C.attention_forward / attention_backward, the bindings of the
// fused attention kernels (csrc/cpu/attention.h). Called from module_cpu.cpp.
//
// The caller (python/kernelgrad/backend/cpu.py) broadcasts q, k, v (and the mask) to one batch
// shape as strided views; here every argument is checked, each matrix of the batch gets a base
// pointer (so broadcast, transposed and strided batch dims cost no copy), outputs are allocated and
// the GIL is released around the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cpu/attention.h"

namespace py = pybind11;

namespace {

using kg::cpu::AttentionDropout;
using kg::cpu::AttentionMask;
using kg::cpu::MatrixBatch;

// ----------------------------------------------------------------------------------------------
// Argument checks

std::string shape_of(const py::array& a) { return py::str(a.attr("shape")); }
std::string dtype_of(const py::array& a) { return py::str(a.dtype()); }

py::array as_array(const char* fn, const char* name, const py::object& x) {
    if (!py::isinstance<py::array>(x))
        throw py::type_error(std::string(fn) + ": expected " + name + " to be a NumPy array, got " +
                             std::string(py::str(py::type::of(x).attr("__name__"))));
    return x.cast<py::array>();
}

bool is_float32_or_64(const py::array& a) {
    const py::dtype dt = a.dtype();
    return dt.kind() == 'f' && (dt.itemsize() == 4 || dt.itemsize() == 8);
}

// The kernels read arrays in place: native byte order, aligned, strides in whole elements.
void check_in_place(const char* fn, const char* name, const py::array& a) {
    const auto itemsize = static_cast<ptrdiff_t>(a.itemsize());
    bool ok = a.dtype().attr("isnative").cast<bool>() &&
              reinterpret_cast<std::uintptr_t>(a.data()) % itemsize == 0;
    for (py::ssize_t d = 0; d < a.ndim(); ++d) ok = ok && a.strides(d) % itemsize == 0;
    if (!ok)
        throw py::value_error(std::string(fn) + ": expected " + name +
                              " aligned, in native byte order, with strides in whole elements");
}

// Sizes of a call: q (*batch, L, E), k (*batch, S, E), v (*batch, S, Ev).
struct Sizes {
    std::vector<py::ssize_t> batch;
    int64_t BH, L, S, E, Ev;
};

std::vector<py::ssize_t> with_batch(const Sizes& s, std::initializer_list<py::ssize_t> last) {
    std::vector<py::ssize_t> shape = s.batch;
    shape.insert(shape.end(), last);
    return shape;
}

Sizes check_qkv(const char* fn, const py::array& q, const py::array& k, const py::array& v) {
    if (!is_float32_or_64(q) || q.dtype().not_equal(k.dtype()) || q.dtype().not_equal(v.dtype()))
        throw py::type_error(std::string(fn) + ": expected q, k, v of one dtype, float32 or float64, got " +
                             dtype_of(q) + ", " + dtype_of(k) + ", " + dtype_of(v));
    if (q.ndim() < 2 || k.ndim() != q.ndim() || v.ndim() != q.ndim())
        throw py::value_error(std::string(fn) +
                              ": expected q (..., L, E), k (..., S, E), v (..., S, Ev) with the same number "
                              "(>= 2) of dimensions, got shapes " + shape_of(q) + ", " + shape_of(k) + ", " +
                              shape_of(v));
    const py::ssize_t nb = q.ndim() - 2;
    for (py::ssize_t d = 0; d < nb; ++d)
        if (k.shape(d) != q.shape(d) || v.shape(d) != q.shape(d))
            throw py::value_error(std::string(fn) + ": expected q, k, v to have one batch shape "
                                  "(broadcast beforehand), got shapes " + shape_of(q) + ", " +
                                  shape_of(k) + ", " + shape_of(v));
    if (k.shape(nb + 1) != q.shape(nb + 1))
        throw py::value_error(std::string(fn) + ": expected k.shape[-1] == q.shape[-1] (E), got q " +
                              shape_of(q) + " and k " + shape_of(k));
    if (v.shape(nb) != k.shape(nb))
        throw py::value_error(std::string(fn) + ": expected v.shape[-2] == k.shape[-2] (S), got k " +
                              shape_of(k) + " and v " + shape_of(v));
    check_in_place(fn, "q", q);
    check_in_place(fn, "k", k);
    check_in_place(fn, "v", v);
    Sizes s{{q.shape(), q.shape() + nb}, 1, q.shape(nb), k.shape(nb), q.shape(nb + 1), v.shape(nb + 1)};
    for (py::ssize_t n : s.batch) s.BH *= n;
    return s;
}

void check_options(const char* fn, const py::object& mask, bool is_causal, double dropout_p) {
    if (is_causal && !mask.is_none())
        throw py::value_error(std::string(fn) + ": an explicit attn_mask cannot be combined with is_causal=True");
    if (!(dropout_p >= 0 && dropout_p <= 1))
        throw py::value_error(std::string(fn) + ": expected 0 <= dropout_p <= 1, got " + std::to_string(dropout_p));
}

std::string shape_str(const std::vector<py::ssize_t>& shape) {
    py::tuple t(shape.size());
    for (size_t d = 0; d < shape.size(); ++d) t[d] = shape[d];
    return py::str(t);
}
std::string dtype_name(const py::dtype& dt) { return py::str(dt); }

// x as a C-contiguous array of exactly `shape` and dtype T (a copy only if x is not contiguous).
template <typename T>
py::array_t<T, py::array::c_style> expect(const char* fn, const char* name, const py::object& x,
                                          const std::vector<py::ssize_t>& shape) {
    const py::array a = as_array(fn, name, x);
    if (a.dtype().not_equal(py::dtype::of<T>()) || a.ndim() != static_cast<py::ssize_t>(shape.size()) ||
        !std::equal(shape.begin(), shape.end(), a.shape()))
        throw py::value_error(std::string(fn) + ": expected " + name + " of shape " + shape_str(shape) +
                              " and dtype " + dtype_name(py::dtype::of<T>()) + ", got shape " +
                              shape_of(a) + " and dtype " + dtype_of(a));
    return py::array_t<T, py::array::c_style>::ensure(a);
}

// ----------------------------------------------------------------------------------------------
// Batches of matrices

// Base pointer of every matrix of the (*batch, R, C) array a, the batch walked in C order like an
// odometer (byte offsets follow the strides, any sign, 0 included).
template <typename E>
std::vector<const E*> matrix_pointers(const py::array& a, int64_t batch) {
    const py::ssize_t nb = a.ndim() - 2;
    std::vector<const E*> ptrs(batch);
    std::vector<py::ssize_t> idx(nb, 0);
    const char* at = static_cast<const char*>(a.data());
    for (int64_t n = 0; n < batch; ++n) {
        ptrs[n] = reinterpret_cast<const E*>(at);
        for (py::ssize_t d = nb - 1; d >= 0; --d) {
            at += a.strides(d);
            if (++idx[d] < a.shape(d)) break;
            at -= a.strides(d) * a.shape(d);
            idx[d] = 0;
        }
    }
    return ptrs;
}

// A (*batch, R, C) array as the kernels' MatrixBatch; owns the pointer table.
template <typename T>
struct Matrices {
    std::vector<const T*> ptrs;
    MatrixBatch<T> view;
    Matrices(const py::array& a, int64_t batch)
        : ptrs(matrix_pointers<T>(a, batch)),
          view{ptrs.data(), a.strides(a.ndim() - 2) / py::ssize_t(sizeof(T)),
               a.strides(a.ndim() - 1) / py::ssize_t(sizeof(T))} {}
};

// attn_mask (None, or bool / T of shape (*batch, L, S)) and is_causal as the kernels' AttentionMask;
// owns the pointer table.
template <typename T>
struct Mask {
    std::vector<const uint8_t*> keep;
    std::vector<const T*> add;
    AttentionMask<T> view;

    Mask(const char* fn, const py::object& attn_mask, bool is_causal, const Sizes& s) {
        view.causal = is_causal;
        if (attn_mask.is_none()) return;
        const py::array m = as_array(fn, "attn_mask", attn_mask);
        const auto shape = with_batch(s, {s.L, s.S});
        if (m.ndim() != static_cast<py::ssize_t>(shape.size()) ||
            !std::equal(shape.begin(), shape.end(), m.shape()))
            throw py::value_error(std::string(fn) + ": expected attn_mask of shape (*batch, L, S) = " +
                                  shape_str(shape) +
                                  " (broadcast beforehand), got " + shape_of(m));
        const bool is_bool = m.dtype().kind() == 'b';
        if (!is_bool && m.dtype().not_equal(py::dtype::of<T>()))
            throw py::type_error(std::string(fn) + ": expected a bool attn_mask or one of the query's dtype " +
                                 dtype_name(py::dtype::of<T>()) + ", got " + dtype_of(m));
        check_in_place(fn, "attn_mask", m);
        const py::ssize_t nb = m.ndim() - 2, itemsize = m.itemsize();
        view.rs = m.strides(nb) / itemsize;
        view.cs = m.strides(nb + 1) / itemsize;
        if (is_bool) {
            keep = matrix_pointers<uint8_t>(m, s.BH);
            view.keep = keep.data();
        } else {
            add = matrix_pointers<T>(m, s.BH);
            view.add = add.data();
        }
    }
};

// ----------------------------------------------------------------------------------------------
// Forward and backward

template <typename T>
py::tuple forward_typed(const py::array& q, const py::array& k, const py::array& v,
                        const py::object& attn_mask, bool is_causal, double scale, double dropout_p,
                        uint64_t seed, const Sizes& s) {
    const char* fn = "attention_forward";
    const Matrices<T> Q(q, s.BH), K(k, s.BH), V(v, s.BH);
    const Mask<T> mask(fn, attn_mask, is_causal, s);
    py::array_t<T> out(with_batch(s, {s.L, s.Ev})), lse(with_batch(s, {s.L}));
    {
        py::gil_scoped_release no_gil;
        kg::cpu::attention_forward(out.mutable_data(), lse.mutable_data(), Q.view, K.view, V.view,
                                   mask.view, AttentionDropout{dropout_p, seed}, T(scale), s.BH, s.L,
                                   s.S, s.E, s.Ev);
    }
    return py::make_tuple(out, lse);
}

py::tuple attention_forward(const py::object& q_, const py::object& k_, const py::object& v_,
                            const py::object& attn_mask, bool is_causal, double scale,
                            double dropout_p, uint64_t seed) {
    const char* fn = "attention_forward";
    const py::array q = as_array(fn, "q", q_), k = as_array(fn, "k", k_), v = as_array(fn, "v", v_);
    const Sizes s = check_qkv(fn, q, k, v);
    check_options(fn, attn_mask, is_causal, dropout_p);
    return q.itemsize() == 4
               ? forward_typed<float>(q, k, v, attn_mask, is_causal, scale, dropout_p, seed, s)
               : forward_typed<double>(q, k, v, attn_mask, is_causal, scale, dropout_p, seed, s);
}

template <typename T>
py::tuple backward_typed(const py::object& grad_out_, const py::array& q, const py::array& k,
                         const py::array& v, const py::object& out_, const py::object& lse_,
                         const py::object& attn_mask, bool is_causal, double scale, double dropout_p,
                         uint64_t seed, const Sizes& s) {
    const char* fn = "attention_backward";
    const py::array grad_out = as_array(fn, "grad_out", grad_out_);
    const auto out_shape = with_batch(s, {s.L, s.Ev});
    if (grad_out.dtype().not_equal(q.dtype()) || grad_out.ndim() != q.ndim() ||
        !std::equal(out_shape.begin(), out_shape.end(), grad_out.shape()))
        throw py::value_error(std::string(fn) + ": expected grad_out of the output's shape (*batch, L, Ev) "
                              "and the query's dtype, got shape " + shape_of(grad_out) + " and dtype " +
                              dtype_of(grad_out));
    check_in_place(fn, "grad_out", grad_out);
    const auto out = expect<T>(fn, "out", out_, out_shape);
    const auto lse = expect<T>(fn, "lse", lse_, with_batch(s, {s.L}));

    const Matrices<T> dO(grad_out, s.BH), Q(q, s.BH), K(k, s.BH), V(v, s.BH);
    const Mask<T> mask(fn, attn_mask, is_causal, s);
    py::array_t<T> dq(with_batch(s, {s.L, s.E})), dk(with_batch(s, {s.S, s.E})),
        dv(with_batch(s, {s.S, s.Ev}));
    {
        py::gil_scoped_release no_gil;
        kg::cpu::attention_backward(dq.mutable_data(), dk.mutable_data(), dv.mutable_data(), dO.view,
                                    out.data(), lse.data(), Q.view, K.view, V.view, mask.view,
                                    AttentionDropout{dropout_p, seed}, T(scale), s.BH, s.L, s.S, s.E,
                                    s.Ev);
    }
    return py::make_tuple(dq, dk, dv);
}

py::tuple attention_backward(const py::object& grad_out, const py::object& q_, const py::object& k_,
                             const py::object& v_, const py::object& out, const py::object& lse,
                             const py::object& attn_mask, bool is_causal, double scale,
                             double dropout_p, uint64_t seed) {
    const char* fn = "attention_backward";
    const py::array q = as_array(fn, "q", q_), k = as_array(fn, "k", k_), v = as_array(fn, "v", v_);
    const Sizes s = check_qkv(fn, q, k, v);
    check_options(fn, attn_mask, is_causal, dropout_p);
    return q.itemsize() == 4
               ? backward_typed<float>(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale,
                                       dropout_p, seed, s)
               : backward_typed<double>(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale,
                                        dropout_p, seed, s);
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Module functions

void bind_attention(py::module_& m) {
    m.def("attention_forward", &attention_forward, py::arg("q"), py::arg("k"), py::arg("v"),
          py::arg("attn_mask"), py::arg("is_causal"), py::arg("scale"), py::arg("dropout_p"),
          py::arg("seed"),
          "attention_forward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed) -> (out, lse)\n\n"
          "Fused softmax(scale * q k^T + mask) v (FlashAttention-2). q (*batch, L, E), k (*batch, S, E),\n"
          "v (*batch, S, Ev): one dtype (float32 or float64), one batch shape (stride-0 broadcast views\n"
          "are fine), any strides. attn_mask: None, or (*batch, L, S) bool (True keeps) or of q's dtype\n"
          "(added); not with is_causal. Dropout with probability dropout_p from a counter-based hash of\n"
          "(seed, batch index, i, j). Returns out (*batch, L, Ev) and the row log-sum-exp lse\n"
          "(*batch, L), +inf for rows whose every key is masked (their out is 0). The GIL is released.");
    m.def("attention_backward", &attention_backward, py::arg("grad_out"), py::arg("q"), py::arg("k"),
          py::arg("v"), py::arg("out"), py::arg("lse"), py::arg("attn_mask"), py::arg("is_causal"),
          py::arg("scale"), py::arg("dropout_p"), py::arg("seed"),
          "attention_backward(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale, dropout_p, seed)\n"
          "-> (dq, dk, dv) of the batch shape: the gradients of attention_forward, whose out and lse\n"
          "are passed back with the same other arguments. The GIL is released.");
}
