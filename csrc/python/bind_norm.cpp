// bind_norm.cpp: kernelgrad._C's bindings of the softmax, cross-entropy, layer-norm and
// batch-norm kernels (csrc/cpu/softmax.h, csrc/cpu/norm.h); module_cpu.cpp calls bind_norm(m).
//
// As in module_cpu.cpp: every argument is checked here (TypeError for a dtype, ValueError for a
// shape or a value, IndexError for a class index out of range; the message names the argument,
// what was expected and what was given), inputs of any strides and byte order are made
// C-contiguous (a copy only when they are not), outputs are new C-contiguous arrays, and the GIL
// is released around the kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "cpu/norm.h"
#include "cpu/softmax.h"
#include "cpu/vec.h"

namespace py = pybind11;

namespace {

using Shape = std::vector<py::ssize_t>;

// ----------------------------------------------------------------------------------------------
// Argument checks

std::string str(const Shape& s) {  // NumPy's spelling: (3,), (2, 3), ()
    std::string out = "(";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + (s.size() == 1 ? ",)" : ")");
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

Shape sub_shape(const Shape& s, size_t begin, size_t end) { return Shape(s.begin() + begin, s.begin() + end); }

int64_t prod(const Shape& s, size_t begin, size_t end) {
    int64_t p = 1;
    for (size_t i = begin; i < end; ++i) p *= s[i];
    return p;
}

std::string type_name(const py::handle& a) { return py::str(py::type::handle_of(a).attr("__name__")); }

// x is a float32 or float64 NumPy array: true for float64. TypeError otherwise.
bool is_float64(const char* fn, const char* name, const py::handle& x) {
    if (!py::isinstance<py::array>(x))
        throw py::type_error(std::string(fn) + ": expected " + name + " to be a NumPy array, got " + type_name(x));
    const py::dtype dt = py::reinterpret_borrow<py::array>(x).dtype();
    if (dt.kind() != 'f' || (dt.itemsize() != 4 && dt.itemsize() != 8))
        throw py::type_error(std::string(fn) + ": expected " + name + " to be float32 or float64, got " +
                             std::string(py::str(dt)));
    return dt.itemsize() == 8;
}

// Argument `name` of `fn` as a C-contiguous, aligned, native-byte-order array of T (a copy only
// when it is not one); TypeError unless it is a NumPy array of T's dtype (any byte order).
template <typename T>
py::array_t<T> array_arg(const char* fn, const char* name, const py::handle& a) {
    const py::dtype want = py::dtype::of<T>();
    if (!py::isinstance<py::array>(a))
        throw py::type_error(std::string(fn) + ": expected " + name + " to be a NumPy array of " +
                             std::string(py::str(want)) + ", got " + type_name(a));
    const py::dtype dt = py::reinterpret_borrow<py::array>(a).dtype();
    if (dt.kind() != want.kind() || dt.itemsize() != want.itemsize())
        throw py::type_error(std::string(fn) + ": expected " + name + " to be " + std::string(py::str(want)) +
                             ", got " + std::string(py::str(dt)));
    return py::module_::import("numpy").attr("require")(a, want, "CA").template cast<py::array_t<T>>();
}

// As array_arg, with None giving no array.
template <typename T>
std::optional<py::array_t<T>> optional_array_arg(const char* fn, const char* name, const py::handle& a) {
    if (a.is_none()) return std::nullopt;
    return array_arg<T>(fn, name, a);
}

template <typename T>
const T* data_or_null(const std::optional<py::array_t<T>>& a) {
    return a ? a->data() : nullptr;
}

void expect_shape(const char* fn, const char* name, const py::array& a, const Shape& want, const char* what) {
    if (shape_of(a) != want)
        throw py::value_error(std::string(fn) + ": expected " + name + " of shape " + str(want) + " (" + what +
                              "), got " + str(shape_of(a)));
}

template <typename T>
void expect_optional_shape(const char* fn, const char* name, const std::optional<py::array_t<T>>& a,
                           const Shape& want, const char* what) {
    if (a) expect_shape(fn, name, *a, want, what);
}

// dim in [-ndim, ndim) (a 0-d array takes -1 and 0, as in PyTorch) as an index in [0, max(ndim, 1))
int64_t dim_arg(const char* fn, int64_t dim, int64_t ndim) {
    const int64_t n = std::max<int64_t>(ndim, 1);
    if (dim < -n || dim >= n)
        throw py::value_error(std::string(fn) + ": expected dim in [" + std::to_string(-n) + ", " +
                              std::to_string(n - 1) + "] for an array of " + std::to_string(ndim) +
                              " dimensions, got " + std::to_string(dim));
    return dim < 0 ? dim + n : dim;
}

void check_label_smoothing(const char* fn, double label_smoothing) {
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))  // also rejects nan
        throw py::value_error(std::string(fn) + ": expected label_smoothing in [0, 1], got " +
                              std::string(py::str(py::float_(label_smoothing))));
}

// Every class index in [0, C) or == ignore_index; IndexError naming the first that is not.
void check_class_targets(const char* fn, const py::array_t<int64_t>& target, int64_t C, int64_t ignore_index) {
    const int64_t* t = target.data();
    for (py::ssize_t i = 0; i < target.size(); ++i)
        if (t[i] != ignore_index && (t[i] < 0 || t[i] >= C))
            throw py::index_error(std::string(fn) + ": target " + std::to_string(t[i]) +
                                  " is out of bounds: expected a class index in [0, " + std::to_string(C - 1) +
                                  "] or ignore_index (" + std::to_string(ignore_index) + ")");
}

// ----------------------------------------------------------------------------------------------
// softmax, log_softmax and their backward

// (outer, dim, inner) of shape s along dim d (a 0-d array is one value: (1, 1, 1))
struct Lines {
    int64_t outer, dim, inner;
};
Lines lines_of(const Shape& s, int64_t d) {
    if (s.empty()) return {1, 1, 1};
    return {prod(s, 0, d), s[d], prod(s, d + 1, s.size())};
}

template <typename T>
py::array softmax_forward(const char* fn, const py::handle& x_arg, int64_t dim, bool log) {
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg);
    const Shape s = shape_of(x);
    const Lines l = lines_of(s, dim_arg(fn, dim, x.ndim()));
    py::array_t<T> y(s);
    {
        py::gil_scoped_release no_gil;
        kg::cpu::softmax_forward(y.mutable_data(), x.data(), l.outer, l.dim, l.inner, log);
    }
    return std::move(y);
}

template <typename T>
py::array softmax_backward(const char* fn, const py::handle& y_arg, const py::handle& dy_arg, int64_t dim,
                           bool log) {
    const py::array_t<T> y = array_arg<T>(fn, "y", y_arg), dy = array_arg<T>(fn, "dy", dy_arg);
    const Shape s = shape_of(y);
    expect_shape(fn, "dy", dy, s, "the shape of y");
    const Lines l = lines_of(s, dim_arg(fn, dim, y.ndim()));
    py::array_t<T> dx(s);
    {
        py::gil_scoped_release no_gil;
        kg::cpu::softmax_backward(dx.mutable_data(), y.data(), dy.data(), l.outer, l.dim, l.inner, log);
    }
    return std::move(dx);
}

// ----------------------------------------------------------------------------------------------
// cross-entropy

// x: (N, C, d1, ...) -> N, C, D = d1 * ..., and the shape (N, d1, ...) of the target and the loss
struct ClassDims {
    int64_t N, C, D;
    Shape positions;
};
ClassDims class_dims(const char* fn, const py::array& x) {
    const Shape s = shape_of(x);
    if (s.size() < 2)
        throw py::value_error(std::string(fn) + ": expected x of shape (N, C, d1, ...) with at least 2 "
                              "dimensions, got " + str(s));
    Shape positions = sub_shape(s, 2, s.size());
    positions.insert(positions.begin(), s[0]);
    return {s[0], s[1], prod(s, 2, s.size()), positions};
}

template <typename T>
py::tuple cross_entropy_forward(const py::handle& x_arg, const py::handle& target_arg, const py::handle& weight_arg,
                                int64_t ignore_index, double label_smoothing) {
    const char* fn = "cross_entropy";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg);
    const py::array_t<int64_t> target = array_arg<int64_t>(fn, "target", target_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const ClassDims d = class_dims(fn, x);
    expect_shape(fn, "target", target, d.positions, "(N, d1, ...) for x of shape (N, C, d1, ...)");
    expect_optional_shape(fn, "weight", weight, {d.C}, "(C,)");
    check_label_smoothing(fn, label_smoothing);
    check_class_targets(fn, target, d.C, ignore_index);
    py::array_t<T> loss(d.positions), lse(d.positions);
    {
        py::gil_scoped_release no_gil;
        kg::cpu::cross_entropy_forward(loss.mutable_data(), lse.mutable_data(), x.data(), target.data(),
                                       data_or_null(weight), d.N, d.C, d.D, ignore_index, T(label_smoothing));
    }
    return py::make_tuple(loss, lse);
}

template <typename T>
py::array cross_entropy_backward(const py::handle& dloss_arg, const py::handle& x_arg, const py::handle& lse_arg,
                                 const py::handle& target_arg, const py::handle& weight_arg, int64_t ignore_index,
                                 double label_smoothing) {
    const char* fn = "cross_entropy_backward";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg);
    const py::array_t<T> dloss = array_arg<T>(fn, "dloss", dloss_arg), lse = array_arg<T>(fn, "lse", lse_arg);
    const py::array_t<int64_t> target = array_arg<int64_t>(fn, "target", target_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const ClassDims d = class_dims(fn, x);
    expect_shape(fn, "target", target, d.positions, "(N, d1, ...) for x of shape (N, C, d1, ...)");
    expect_shape(fn, "dloss", dloss, d.positions, "the shape of target");
    expect_shape(fn, "lse", lse, d.positions, "the shape of target");
    expect_optional_shape(fn, "weight", weight, {d.C}, "(C,)");
    check_label_smoothing(fn, label_smoothing);
    check_class_targets(fn, target, d.C, ignore_index);
    py::array_t<T> dx(shape_of(x));
    {
        py::gil_scoped_release no_gil;
        kg::cpu::cross_entropy_backward(dx.mutable_data(), dloss.data(), x.data(), lse.data(), target.data(),
                                        data_or_null(weight), d.N, d.C, d.D, ignore_index, T(label_smoothing));
    }
    return std::move(dx);
}

template <typename T>
py::tuple cross_entropy_probs_forward(const py::handle& x_arg, const py::handle& target_arg,
                                      const py::handle& weight_arg, double label_smoothing) {
    const char* fn = "cross_entropy_probs";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg), target = array_arg<T>(fn, "target", target_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const ClassDims d = class_dims(fn, x);
    expect_shape(fn, "target", target, shape_of(x), "class probabilities: the shape of x");
    expect_optional_shape(fn, "weight", weight, {d.C}, "(C,)");
    check_label_smoothing(fn, label_smoothing);
    py::array_t<T> loss(d.positions), lse(d.positions);
    {
        py::gil_scoped_release no_gil;
        kg::cpu::cross_entropy_probs_forward(loss.mutable_data(), lse.mutable_data(), x.data(), target.data(),
                                             data_or_null(weight), d.N, d.C, d.D, T(label_smoothing));
    }
    return py::make_tuple(loss, lse);
}

template <typename T>
py::array cross_entropy_probs_backward(const py::handle& dloss_arg, const py::handle& x_arg,
                                       const py::handle& lse_arg, const py::handle& target_arg,
                                       const py::handle& weight_arg, double label_smoothing) {
    const char* fn = "cross_entropy_probs_backward";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg), target = array_arg<T>(fn, "target", target_arg);
    const py::array_t<T> dloss = array_arg<T>(fn, "dloss", dloss_arg), lse = array_arg<T>(fn, "lse", lse_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const ClassDims d = class_dims(fn, x);
    expect_shape(fn, "target", target, shape_of(x), "class probabilities: the shape of x");
    expect_shape(fn, "dloss", dloss, d.positions, "(N, d1, ...) for x of shape (N, C, d1, ...)");
    expect_shape(fn, "lse", lse, d.positions, "(N, d1, ...) for x of shape (N, C, d1, ...)");
    expect_optional_shape(fn, "weight", weight, {d.C}, "(C,)");
    check_label_smoothing(fn, label_smoothing);
    py::array_t<T> dx(shape_of(x));
    {
        py::gil_scoped_release no_gil;
        kg::cpu::cross_entropy_probs_backward(dx.mutable_data(), dloss.data(), x.data(), lse.data(), target.data(),
                                              data_or_null(weight), d.N, d.C, d.D, T(label_smoothing));
    }
    return std::move(dx);
}

// ----------------------------------------------------------------------------------------------
// layer norm

// x (..., *normalized) with k = normalized_ndim trailing dims: rows, D and the two shapes
struct RowDims {
    int64_t rows, D;
    Shape rows_shape, normalized_shape;
};
RowDims row_dims(const char* fn, const py::array& x, int64_t normalized_ndim) {
    const Shape s = shape_of(x);
    const int64_t n = static_cast<int64_t>(s.size());
    if (normalized_ndim < 1 || normalized_ndim > n)
        throw py::value_error(std::string(fn) + ": expected normalized_ndim in [1, " + std::to_string(n) +
                              "] for x of shape " + str(s) + ", got " + std::to_string(normalized_ndim));
    const size_t k = static_cast<size_t>(n - normalized_ndim);
    return {prod(s, 0, k), prod(s, k, s.size()), sub_shape(s, 0, k), sub_shape(s, k, s.size())};
}

template <typename T>
py::tuple layer_norm_forward(const py::handle& x_arg, int64_t normalized_ndim, const py::handle& weight_arg,
                             const py::handle& bias_arg, double eps) {
    const char* fn = "layer_norm";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const auto bias = optional_array_arg<T>(fn, "bias", bias_arg);
    const RowDims r = row_dims(fn, x, normalized_ndim);
    expect_optional_shape(fn, "weight", weight, r.normalized_shape, "the normalized shape");
    expect_optional_shape(fn, "bias", bias, r.normalized_shape, "the normalized shape");
    py::array_t<T> y(shape_of(x)), mean(r.rows_shape), rstd(r.rows_shape);
    {
        py::gil_scoped_release no_gil;
        kg::cpu::layer_norm_forward(y.mutable_data(), mean.mutable_data(), rstd.mutable_data(), x.data(),
                                    data_or_null(weight), data_or_null(bias), r.rows, r.D, T(eps));
    }
    return py::make_tuple(y, mean, rstd);
}

template <typename T>
py::tuple layer_norm_backward(const py::handle& dy_arg, const py::handle& x_arg, const py::handle& mean_arg,
                              const py::handle& rstd_arg, const py::handle& weight_arg, int64_t normalized_ndim,
                              bool weight_grad, bool bias_grad) {
    const char* fn = "layer_norm_backward";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg), dy = array_arg<T>(fn, "dy", dy_arg);
    const py::array_t<T> mean = array_arg<T>(fn, "mean", mean_arg), rstd = array_arg<T>(fn, "rstd", rstd_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const RowDims r = row_dims(fn, x, normalized_ndim);
    expect_shape(fn, "dy", dy, shape_of(x), "the shape of x");
    expect_shape(fn, "mean", mean, r.rows_shape, "the leading, not normalized, dims of x");
    expect_shape(fn, "rstd", rstd, r.rows_shape, "the leading, not normalized, dims of x");
    expect_optional_shape(fn, "weight", weight, r.normalized_shape, "the normalized shape");
    py::array_t<T> dx(shape_of(x));
    std::optional<py::array_t<T>> dw, db;
    if (weight_grad) dw.emplace(r.normalized_shape);
    if (bias_grad) db.emplace(r.normalized_shape);
    {
        py::gil_scoped_release no_gil;
        kg::cpu::layer_norm_backward(dx.mutable_data(), dw ? dw->mutable_data() : nullptr,
                                     db ? db->mutable_data() : nullptr, dy.data(), x.data(), mean.data(),
                                     rstd.data(), data_or_null(weight), r.rows, r.D);
    }
    return py::make_tuple(dx, dw ? py::object(*dw) : py::none(), db ? py::object(*db) : py::none());
}

// ----------------------------------------------------------------------------------------------
// batch norm

// x: (N, C, d1, ...) -> N, C, L = d1 * ...
struct ChannelDims {
    int64_t N, C, L;
};
ChannelDims channel_dims(const char* fn, const py::array& x) {
    const Shape s = shape_of(x);
    if (s.size() < 2)
        throw py::value_error(std::string(fn) + ": expected x of shape (N, C, d1, ...) with at least 2 "
                              "dimensions, got " + str(s));
    return {s[0], s[1], prod(s, 2, s.size())};
}

template <typename T>
py::tuple batch_norm_forward(const py::handle& x_arg, const py::handle& mean_arg, const py::handle& var_arg,
                             const py::handle& weight_arg, const py::handle& bias_arg, double eps) {
    const char* fn = "batch_norm";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg);
    auto mean = optional_array_arg<T>(fn, "mean", mean_arg), var = optional_array_arg<T>(fn, "var", var_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const auto bias = optional_array_arg<T>(fn, "bias", bias_arg);
    const ChannelDims d = channel_dims(fn, x);
    if (mean.has_value() != var.has_value())
        throw py::value_error(std::string(fn) + ": expected mean and var to be both given (running statistics) "
                              "or both None (batch statistics), got only " + (mean ? "mean" : "var"));
    expect_optional_shape(fn, "mean", mean, {d.C}, "(C,)");
    expect_optional_shape(fn, "var", var, {d.C}, "(C,)");
    expect_optional_shape(fn, "weight", weight, {d.C}, "(C,)");
    expect_optional_shape(fn, "bias", bias, {d.C}, "(C,)");
    const bool batch_stats = !mean;
    if (batch_stats) mean.emplace(Shape{d.C}), var.emplace(Shape{d.C});
    py::array_t<T> y(shape_of(x));
    {
        py::gil_scoped_release no_gil;
        if (batch_stats) kg::cpu::batch_norm_stats(mean->mutable_data(), var->mutable_data(), x.data(), d.N, d.C, d.L);
        kg::cpu::batch_norm_forward(y.mutable_data(), x.data(), mean->data(), var->data(), data_or_null(weight),
                                    data_or_null(bias), d.N, d.C, d.L, T(eps));
    }
    return py::make_tuple(y, *mean, *var);
}

template <typename T>
py::tuple batch_norm_backward(const py::handle& dy_arg, const py::handle& x_arg, const py::handle& mean_arg,
                              const py::handle& var_arg, const py::handle& weight_arg, double eps, bool training) {
    const char* fn = "batch_norm_backward";
    const py::array_t<T> x = array_arg<T>(fn, "x", x_arg), dy = array_arg<T>(fn, "dy", dy_arg);
    const py::array_t<T> mean = array_arg<T>(fn, "mean", mean_arg), var = array_arg<T>(fn, "var", var_arg);
    const auto weight = optional_array_arg<T>(fn, "weight", weight_arg);
    const ChannelDims d = channel_dims(fn, x);
    expect_shape(fn, "dy", dy, shape_of(x), "the shape of x");
    expect_shape(fn, "mean", mean, {d.C}, "(C,)");
    expect_shape(fn, "var", var, {d.C}, "(C,)");
    expect_optional_shape(fn, "weight", weight, {d.C}, "(C,)");
    py::array_t<T> dx(shape_of(x)), dw(Shape{d.C}), db(Shape{d.C});
    {
        py::gil_scoped_release no_gil;
        kg::cpu::batch_norm_backward(dx.mutable_data(), dw.mutable_data(), db.mutable_data(), dy.data(), x.data(),
                                     mean.data(), var.data(), data_or_null(weight), d.N, d.C, d.L, T(eps), training);
    }
    return py::make_tuple(dx, dw, db);
}

// ----------------------------------------------------------------------------------------------
// vec.h primitives: generic or AVX2

void set_vec_isa(const std::string& name) {
    if (!kg::cpu::vec_set_isa(name.c_str()))
        throw py::value_error("_set_vec_isa: expected 'auto' or 'generic', got '" + name + "'");
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Module functions (float32 or float64: the dtype of the first array argument, which every other
// float argument must share)

void bind_norm(py::module_& m) {
    using py::arg;
    m.def(
        "softmax",
        [](py::handle x, int64_t dim) {
            return is_float64("softmax", "x", x) ? softmax_forward<double>("softmax", x, dim, false)
                                                 : softmax_forward<float>("softmax", x, dim, false);
        },
        arg("x"), arg("dim"), "softmax(x, dim) -> y = exp(x - max) / sum(exp(x - max)) along dim.");
    m.def(
        "log_softmax",
        [](py::handle x, int64_t dim) {
            return is_float64("log_softmax", "x", x) ? softmax_forward<double>("log_softmax", x, dim, true)
                                                     : softmax_forward<float>("log_softmax", x, dim, true);
        },
        arg("x"), arg("dim"), "log_softmax(x, dim) -> y = (x - max) - log(sum(exp(x - max))) along dim.");
    m.def(
        "softmax_backward",
        [](py::handle y, py::handle dy, int64_t dim) {
            const char* fn = "softmax_backward";
            return is_float64(fn, "y", y) ? softmax_backward<double>(fn, y, dy, dim, false)
                                          : softmax_backward<float>(fn, y, dy, dim, false);
        },
        arg("y"), arg("dy"), arg("dim"), "softmax_backward(y, dy, dim) -> dx = y * (dy - sum(dy * y)), y = softmax(x).");
    m.def(
        "log_softmax_backward",
        [](py::handle y, py::handle dy, int64_t dim) {
            const char* fn = "log_softmax_backward";
            return is_float64(fn, "y", y) ? softmax_backward<double>(fn, y, dy, dim, true)
                                          : softmax_backward<float>(fn, y, dy, dim, true);
        },
        arg("y"), arg("dy"), arg("dim"),
        "log_softmax_backward(y, dy, dim) -> dx = dy - exp(y) * sum(dy), y = log_softmax(x).");

    m.def(
        "cross_entropy",
        [](py::handle x, py::handle target, py::handle weight, int64_t ignore_index, double label_smoothing) {
            return is_float64("cross_entropy", "x", x)
                       ? cross_entropy_forward<double>(x, target, weight, ignore_index, label_smoothing)
                       : cross_entropy_forward<float>(x, target, weight, ignore_index, label_smoothing);
        },
        arg("x"), arg("target"), arg("weight"), arg("ignore_index"), arg("label_smoothing"),
        "cross_entropy(x, target, weight, ignore_index, label_smoothing) -> (loss, lse).\n\n"
        "x: (N, C, d1, ...) logits; target: (N, d1, ...) int64 class indices (or ignore_index);\n"
        "weight: (C,) or None. loss and lse (the log-sum-exp over C): (N, d1, ...), unreduced.");
    m.def(
        "cross_entropy_backward",
        [](py::handle dloss, py::handle x, py::handle lse, py::handle target, py::handle weight,
           int64_t ignore_index, double label_smoothing) {
            return is_float64("cross_entropy_backward", "x", x)
                       ? cross_entropy_backward<double>(dloss, x, lse, target, weight, ignore_index, label_smoothing)
                       : cross_entropy_backward<float>(dloss, x, lse, target, weight, ignore_index, label_smoothing);
        },
        arg("dloss"), arg("x"), arg("lse"), arg("target"), arg("weight"), arg("ignore_index"),
        arg("label_smoothing"), "Gradient of cross_entropy's unreduced loss: dx of x's shape.");
    m.def(
        "cross_entropy_probs",
        [](py::handle x, py::handle target, py::handle weight, double label_smoothing) {
            return is_float64("cross_entropy_probs", "x", x)
                       ? cross_entropy_probs_forward<double>(x, target, weight, label_smoothing)
                       : cross_entropy_probs_forward<float>(x, target, weight, label_smoothing);
        },
        arg("x"), arg("target"), arg("weight"), arg("label_smoothing"),
        "cross_entropy_probs(x, target, weight, label_smoothing) -> (loss, lse): class-probability\n"
        "targets of x's shape (N, C, d1, ...); loss and lse: (N, d1, ...).");
    m.def(
        "cross_entropy_probs_backward",
        [](py::handle dloss, py::handle x, py::handle lse, py::handle target, py::handle weight,
           double label_smoothing) {
            return is_float64("cross_entropy_probs_backward", "x", x)
                       ? cross_entropy_probs_backward<double>(dloss, x, lse, target, weight, label_smoothing)
                       : cross_entropy_probs_backward<float>(dloss, x, lse, target, weight, label_smoothing);
        },
        arg("dloss"), arg("x"), arg("lse"), arg("target"), arg("weight"), arg("label_smoothing"),
        "Gradient of cross_entropy_probs's unreduced loss with respect to x.");

    m.def(
        "layer_norm",
        [](py::handle x, int64_t normalized_ndim, py::handle weight, py::handle bias, double eps) {
            return is_float64("layer_norm", "x", x) ? layer_norm_forward<double>(x, normalized_ndim, weight, bias, eps)
                                                    : layer_norm_forward<float>(x, normalized_ndim, weight, bias, eps);
        },
        arg("x"), arg("normalized_ndim"), arg("weight"), arg("bias"), arg("eps"),
        "layer_norm(x, normalized_ndim, weight, bias, eps) -> (y, mean, rstd): each row of the last\n"
        "normalized_ndim dims normalised; weight, bias: the normalized shape or None; mean, rstd:\n"
        "the leading dims of x.");
    m.def(
        "layer_norm_backward",
        [](py::handle dy, py::handle x, py::handle mean, py::handle rstd, py::handle weight, int64_t normalized_ndim,
           bool weight_grad, bool bias_grad) {
            const char* fn = "layer_norm_backward";
            return is_float64(fn, "x", x)
                       ? layer_norm_backward<double>(dy, x, mean, rstd, weight, normalized_ndim, weight_grad, bias_grad)
                       : layer_norm_backward<float>(dy, x, mean, rstd, weight, normalized_ndim, weight_grad, bias_grad);
        },
        arg("dy"), arg("x"), arg("mean"), arg("rstd"), arg("weight"), arg("normalized_ndim"), arg("weight_grad"),
        arg("bias_grad"), "-> (dx, dweight or None, dbias or None).");
    m.def(
        "batch_norm",
        [](py::handle x, py::handle mean, py::handle var, py::handle weight, py::handle bias, double eps) {
            return is_float64("batch_norm", "x", x) ? batch_norm_forward<double>(x, mean, var, weight, bias, eps)
                                                    : batch_norm_forward<float>(x, mean, var, weight, bias, eps);
        },
        arg("x"), arg("mean"), arg("var"), arg("weight"), arg("bias"), arg("eps"),
        "batch_norm(x, mean, var, weight, bias, eps) -> (y, mean, var). x: (N, C, d1, ...); mean and\n"
        "var: (C,) statistics to normalise with, or both None to use the batch's (biased variance),\n"
        "which are then returned.");
    m.def(
        "batch_norm_backward",
        [](py::handle dy, py::handle x, py::handle mean, py::handle var, py::handle weight, double eps, bool training) {
            const char* fn = "batch_norm_backward";
            return is_float64(fn, "x", x) ? batch_norm_backward<double>(dy, x, mean, var, weight, eps, training)
                                          : batch_norm_backward<float>(dy, x, mean, var, weight, eps, training);
        },
        arg("dy"), arg("x"), arg("mean"), arg("var"), arg("weight"), arg("eps"), arg("training"),
        "-> (dx, dweight, dbias). training: mean and var are x's batch statistics (their gradient\n"
        "flows into dx); otherwise they are constants (running statistics).");

    m.def("vec_isa", &kg::cpu::vec_isa, "vec.h primitives in use (softmax, norms): 'avx2' or 'generic'.");
    m.def("_set_vec_isa", &set_vec_isa, arg("name"),
          "Testing hook: 'generic' forces the plain vec.h primitives, 'auto' picks by CPU.");
    // KERNELGRAD_ISA=generic (or auto) at import time, as for the GEMM (which warns about other values)
    if (const char* isa = std::getenv("KERNELGRAD_ISA"); isa != nullptr && *isa != '\0') kg::cpu::vec_set_isa(isa);
}
