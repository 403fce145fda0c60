// pool2d.cpp: max / average / adaptive pooling, their backward, and max unpooling.
//
// A window is a rectangle of taps, rows x columns, so every pooling here is separable: for each
// output row, first reduce the window rows' taps down each input column (one pass along
// contiguous rows), then each window's columns of that row. The taps of each window are
// precomputed per axis (Taps, once per call), so padding, dilation, ceil_mode and adaptive
// windows are all the same two loops with different tables:
//
//   average:  r[w] = sum over the row taps h of x[h][w];      out[ow] = sum over the column taps
//             w of r[w], / divisor
//   max, values only (no gradient to come): the same two folds with PyTorch's max (a NaN wins)
//   max:      (rm, rh)[w] = max over the row taps of x[h][w] and its row (PyTorch's scan down the
//             column); (m, mh, mj)[ow] = max over the window's column taps j (at w) of
//             (rm[w], rh[w]) in PyTorch's row-major order (fold_max); index = mh * W + (column of
//             tap mj)
//   backward: average: the same passes transposed (spread dy / divisor over each window's
//             columns, then add that row into every row tap); max: dx[index] += dy.
//
// Vectorisation (plain loops, baseline ISA): the row passes run along contiguous rows; the column
// pass visits uniform windows tap-major (for each tap, every window of the row), so its inner
// loop runs along the output row with a constant stride. The max scan with indices keeps rows
// and tap numbers as int32, one per float32 lane, which SSE2 can blend: hence H, W < 2^31.
#include "cpu/pool2d.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "cpu/parallel.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Taps of every window along one axis

// floor(a / b) and ceil(a / b) for b > 0 and a of any sign
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Window o reads the input positions first[o], first[o] + step, ... (count[o] of them, all
// inside the input). size[o] is the window's extent clipped to the padded input, the
// count_include_pad divisor of average pooling (whose windows are undilated).
// Windows lo <= o < hi are uniform: first[o] = o * stride + offset and count[o] = kernel.
struct Taps {
    std::vector<int64_t> first, count, size;
    int64_t step = 1;
    int64_t lo = 0, hi = 0, kernel = 0, stride = 0, offset = 0;

    explicit Taps(int64_t out, int64_t step_) : first(out), count(out), size(out), step(step_) {}
    int64_t out() const { return static_cast<int64_t>(first.size()); }
};

// Pooling windows: taps start + j * dilation for j in [0, kernel), start = o * stride - pad,
// keeping those in [0, in). The uniform ones are those with every tap inside.
Taps pooling_taps(int64_t in, int64_t out, PoolWindow w) {
    Taps t(out, w.dilation);
    for (int64_t o = 0; o < out; ++o) {
        const int64_t start = o * w.stride - w.pad;
        const int64_t j0 = start < 0 ? ceil_div(-start, w.dilation) : 0;          // first tap >= 0
        const int64_t j1 = std::min(w.kernel, ceil_div(in - start, w.dilation));  // taps < in
        t.first[o] = start + j0 * w.dilation;
        t.count[o] = std::max<int64_t>(j1 - j0, 0);
        t.size[o] = std::min(start + w.kernel, in + w.pad) - start;
    }
    const int64_t last = w.dilation * (w.kernel - 1);  // the last tap's offset from the first
    t.lo = std::min(ceil_div(w.pad, w.stride), out);  // start >= 0
    t.hi = std::clamp(floor_div(in - 1 - last + w.pad, w.stride) + 1, t.lo, out);  // start + last < in
    t.kernel = w.kernel;
    t.stride = w.stride;
    t.offset = -w.pad;
    return t;
}

// Adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)): never empty, and
// overlapping their neighbours when out does not divide in (then none is uniform).
Taps adaptive_taps(int64_t in, int64_t out) {
    Taps t(out, 1);
    for (int64_t o = 0; o < out; ++o) {
        const int64_t start = o * in / out, end = ((o + 1) * in + out - 1) / out;
        t.first[o] = start;
        t.count[o] = t.size[o] = end - start;
    }
    if (out > 0 && in % out == 0) {
        t.lo = 0;
        t.hi = out;
        t.kernel = t.stride = in / out;
    }
    return t;
}

// visit(h) for each tap h of window o, in increasing order
template <class F>
inline void for_each_tap_of(const Taps& t, int64_t o, F&& visit) {
    for (int64_t j = 0, h = t.first[o]; j < t.count[o]; ++j, h += t.step) visit(h);
}

// visit(o, j, w) for every window o and each of its taps: the j-th, at w. Uniform windows are
// visited tap-major (for each j, every window) so that the inner loop runs along the output with
// a constant stride and vectorises; the others one window at a time.
template <class F>
inline void for_each_tap(const Taps& t, F&& visit) {
    const auto window = [&](int64_t o) {
        for (int64_t j = 0, w = t.first[o]; j < t.count[o]; ++j, w += t.step) visit(o, j, w);
    };
    for (int64_t o = 0; o < t.lo; ++o) window(o);
    for (int64_t j = 0; j < t.kernel; ++j) {
        const int64_t offset = t.offset + j * t.step;
        for (int64_t o = t.lo; o < t.hi; ++o) visit(o, j, o * t.stride + offset);
    }
    for (int64_t o = t.hi; o < t.out(); ++o) window(o);
}

// ----------------------------------------------------------------------------------------------
// One fold per window: average pooling, and max pooling without indices

// out[p][oh][ow] = finish(oh, ow, acc) with acc the fold of the window's taps x[p][h][w] by
// step(acc, v), from init: down the window's rows into r[w] first, then across its columns.
// Average pooling folds with +, max pooling without indices with PyTorch's max (NaN wins).
//   out: (planes, rows.out(), cols.out());  x: (planes, H, W)
template <typename T, class Step, class Finish>
void fold_planes(T* out, const T* x, int64_t planes, int64_t H, int64_t W, const Taps& rows,
                 const Taps& cols, T init, Step step, Finish finish) {
    const int64_t OH = rows.out(), OW = cols.out();
#pragma omp parallel num_threads(get_num_threads())
    {
        std::vector<T> r(W);  // the fold of the window's rows, per input column
#pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t oh = 0; oh < OH; ++oh) {
                std::fill(r.begin(), r.end(), init);
                for_each_tap_of(rows, oh, [&](int64_t h) {
                    const T* x_h = x + (p * H + h) * W;
                    for (int64_t w = 0; w < W; ++w) r[w] = step(r[w], x_h[w]);
                });
                T* out_row = out + (p * OH + oh) * OW;
                std::fill(out_row, out_row + OW, init);
                for_each_tap(cols, [&](int64_t ow, int64_t, int64_t w) {
                    out_row[ow] = step(out_row[ow], r[w]);
                });
                for (int64_t ow = 0; ow < OW; ++ow) out_row[ow] = finish(oh, ow, out_row[ow]);
            }
    }
}

// PyTorch's max step: a larger value, or a NaN, takes over (branch-free, so loops of it vectorise)
template <typename T>
inline T nan_max(T m, T v) {
    return (v > m) | (v != v) ? v : m;
}

// ----------------------------------------------------------------------------------------------
// Max pooling with indices

// Does the tap (v at row h, column tap j) beat the window's maximum so far (m at mh, mj) in
// PyTorch's row-major scan? A NaN beats any number and a later NaN an earlier one; otherwise the
// larger value wins and, on a tie, the earlier position. That is a total order on the window's
// taps, so the result does not depend on the order in which they are folded in. Branch-free, so
// that loops of it vectorise.
template <typename T>
inline void fold_max(T& m, int32_t& mh, int32_t& mj, T v, int32_t h, int32_t j) {
    const bool earlier = (h < mh) | ((h == mh) & (j < mj));
    const bool take = (v > m) | ((v == m) & earlier) | ((v != v) & ((m == m) | !earlier));
    m = take ? v : m;
    mh = take ? h : mh;
    mj = take ? j : mj;
}

// out, indices: (planes, rows.out(), cols.out());  x: (planes, H, W)
template <typename T>
void max_pool_planes(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W,
                     const Taps& rows, const Taps& cols) {
    const int64_t OH = rows.out(), OW = cols.out();
#pragma omp parallel num_threads(get_num_threads())
    {
        std::vector<T> rm(W), m(OW);           // max over the row taps, per column; per window
        std::vector<int32_t> rh(W), mh(OW), mj(OW);  // and where: its row; the window's row, column tap
#pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t oh = 0; oh < OH; ++oh) {
                // rows: PyTorch's scan down each column (a larger value or a NaN takes over), from
                // -inf at the first row tap, where an all -inf column's index points
                std::fill(rm.begin(), rm.end(), -std::numeric_limits<T>::infinity());
                std::fill(rh.begin(), rh.end(), static_cast<int32_t>(rows.first[oh]));
                for_each_tap_of(rows, oh, [&](int64_t h) {
                    const T* x_h = x + (p * H + h) * W;
                    const int32_t h32 = static_cast<int32_t>(h);
                    for (int64_t w = 0; w < W; ++w) {
                        const bool take = (x_h[w] > rm[w]) | (x_h[w] != x_h[w]);
                        rm[w] = take ? x_h[w] : rm[w];
                        rh[w] = take ? h32 : rh[w];
                    }
                });
                // columns: fold_max from its identity (-inf, after every position), in any order
                std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
                std::fill(mh.begin(), mh.end(), std::numeric_limits<int32_t>::max());
                std::fill(mj.begin(), mj.end(), std::numeric_limits<int32_t>::max());
                for_each_tap(cols, [&](int64_t ow, int64_t j, int64_t w) {
                    fold_max(m[ow], mh[ow], mj[ow], rm[w], rh[w], static_cast<int32_t>(j));
                });
                T* out_row = out + (p * OH + oh) * OW;
                int64_t* indices_row = indices + (p * OH + oh) * OW;
                for (int64_t ow = 0; ow < OW; ++ow) {
                    out_row[ow] = m[ow];
                    indices_row[ow] = static_cast<int64_t>(mh[ow]) * W + cols.first[ow] + mj[ow] * cols.step;
                }
            }
    }
}

// ----------------------------------------------------------------------------------------------
// Average pooling

// The divisor of window (oh, ow), as in avg_pool2d_forward's comment in pool2d.h
struct Divisor {
    bool count_include_pad;
    int64_t override_;

    int64_t operator()(const Taps& rows, const Taps& cols, int64_t oh, int64_t ow) const {
        if (override_ != 0) return override_;
        return count_include_pad ? rows.size[oh] * cols.size[ow] : rows.count[oh] * cols.count[ow];
    }
};

// out: (planes, rows.out(), cols.out());  x: (planes, H, W)
template <typename T>
void avg_pool_planes(T* out, const T* x, int64_t planes, int64_t H, int64_t W, const Taps& rows,
                     const Taps& cols, Divisor divisor) {
    fold_planes(out, x, planes, H, W, rows, cols, T(0), [](T s, T v) { return s + v; },
                [&](int64_t oh, int64_t ow, T s) { return s / T(divisor(rows, cols, oh, ow)); });
}

// dx: (planes, H, W);  dy: (planes, rows.out(), cols.out())
template <typename T>
void avg_pool_planes_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                              const Taps& rows, const Taps& cols, Divisor divisor) {
    const int64_t OH = rows.out(), OW = cols.out();
#pragma omp parallel num_threads(get_num_threads())
    {
        std::vector<T> g(OW), r(W);  // dy / divisor of one output row; its spread over columns
#pragma omp for schedule(static)
        for (int64_t p = 0; p < planes; ++p) {
            std::fill(dx + p * H * W, dx + (p + 1) * H * W, T(0));
            for (int64_t oh = 0; oh < OH; ++oh) {
                const T* dy_row = dy + (p * OH + oh) * OW;
                for (int64_t ow = 0; ow < OW; ++ow) g[ow] = dy_row[ow] / T(divisor(rows, cols, oh, ow));
                std::fill(r.begin(), r.end(), T(0));
                for_each_tap(cols, [&](int64_t ow, int64_t, int64_t w) { r[w] += g[ow]; });
                for_each_tap_of(rows, oh, [&](int64_t h) {
                    T* dx_h = dx + (p * H + h) * W;
                    for (int64_t w = 0; w < W; ++w) dx_h[w] += r[w];
                });
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Scatter and gather by per-plane flat indices (max pooling backward, max unpooling)

// out = 0, then out[p][indices[p][i]] (+)= src[p][i]; false if an index is outside [0, n_out)
//   out: (planes, n_out);  src, indices: (planes, n_src)
template <bool kAccumulate, typename T>
bool scatter_planes(T* out, const T* src, const int64_t* indices, int64_t planes, int64_t n_src,
                    int64_t n_out) {
    bool ok = true;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) reduction(&& : ok)
    for (int64_t p = 0; p < planes; ++p) {
        T* out_p = out + p * n_out;
        std::fill(out_p, out_p + n_out, T(0));
        for (int64_t i = p * n_src; i < (p + 1) * n_src; ++i) {
            const int64_t k = indices[i];
            if (k < 0 || k >= n_out) {
                ok = false;
                continue;
            }
            if (kAccumulate)
                out_p[k] += src[i];
            else
                out_p[k] = src[i];
        }
    }
    return ok;
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Window geometry

int64_t pool_output_size(int64_t size, PoolWindow w, bool ceil_mode) {
    const int64_t span = w.dilation * (w.kernel - 1) + 1;  // input positions one window covers
    const int64_t room = size + 2 * w.pad - span;           // how far the windows can move
    int64_t out = floor_div(room + (ceil_mode ? w.stride - 1 : 0), w.stride) + 1;
    if (ceil_mode && (out - 1) * w.stride >= size + w.pad) --out;
    return out;
}

bool pool_windows_touch_input(int64_t size, int64_t out, PoolWindow w) {
    const Taps t = pooling_taps(size, out, w);
    return std::all_of(t.count.begin(), t.count.end(), [](int64_t c) { return c > 0; });
}

// ----------------------------------------------------------------------------------------------
// Entry points

template <typename T>
void max_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, PoolWindow rows, PoolWindow cols) {
    fold_planes(out, x, planes, H, W, pooling_taps(H, OH, rows), pooling_taps(W, OW, cols),
                -std::numeric_limits<T>::infinity(), [](T m, T v) { return nan_max(m, v); },
                [](int64_t, int64_t, T m) { return m; });
}

template <typename T>
void max_pool2d_with_indices_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H,
                                     int64_t W, int64_t OH, int64_t OW, PoolWindow rows,
                                     PoolWindow cols) {
    max_pool_planes(out, indices, x, planes, H, W, pooling_taps(H, OH, rows),
                    pooling_taps(W, OW, cols));
}

template <typename T>
void adaptive_max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H,
                                 int64_t W, int64_t OH, int64_t OW) {
    max_pool_planes(out, indices, x, planes, H, W, adaptive_taps(H, OH), adaptive_taps(W, OW));
}

template <typename T>
bool max_pool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW,
                         int64_t OHW) {
    return scatter_planes<true>(dx, dy, indices, planes, OHW, HW);
}

template <typename T>
void avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, PoolWindow rows, PoolWindow cols, bool count_include_pad,
                        int64_t divisor_override) {
    avg_pool_planes(out, x, planes, H, W, pooling_taps(H, OH, rows), pooling_taps(W, OW, cols),
                    Divisor{count_include_pad, divisor_override});
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH,
                         int64_t OW, PoolWindow rows, PoolWindow cols, bool count_include_pad,
                         int64_t divisor_override) {
    avg_pool_planes_backward(dx, dy, planes, H, W, pooling_taps(H, OH, rows),
                             pooling_taps(W, OW, cols), Divisor{count_include_pad, divisor_override});
}

template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW) {
    avg_pool_planes(out, x, planes, H, W, adaptive_taps(H, OH), adaptive_taps(W, OW),
                    Divisor{false, 0});
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                                  int64_t OH, int64_t OW) {
    avg_pool_planes_backward(dx, dy, planes, H, W, adaptive_taps(H, OH), adaptive_taps(W, OW),
                             Divisor{false, 0});
}

template <typename T>
bool max_unpool2d_forward(T* out, const T* x, const int64_t* indices, int64_t planes, int64_t HW,
                          int64_t OHW) {
    return scatter_planes<false>(out, x, indices, planes, HW, OHW);
}

template <typename T>
bool max_unpool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW,
                           int64_t OHW) {
    bool ok = true;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) reduction(&& : ok)
    for (int64_t p = 0; p < planes; ++p) {
        const T* dy_p = dy + p * OHW;
        for (int64_t i = p * HW; i < (p + 1) * HW; ++i) {
            const int64_t k = indices[i];
            const bool inside = k >= 0 && k < OHW;
            ok = ok && inside;
            dx[i] = inside ? dy_p[k] : T(0);
        }
    }
    return ok;
}

// ----------------------------------------------------------------------------------------------
// float32 and float64 instances

#define KG_POOL2D_INSTANCES(T)                                                                     \
    template void max_pool2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                     PoolWindow, PoolWindow);                                      \
    template void max_pool2d_with_indices_forward(T*, int64_t*, const T*, int64_t, int64_t,        \
                                                  int64_t, int64_t, int64_t, PoolWindow,           \
                                                  PoolWindow);                                     \
    template void adaptive_max_pool2d_forward(T*, int64_t*, const T*, int64_t, int64_t, int64_t,   \
                                              int64_t, int64_t);                                   \
    template bool max_pool2d_backward(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);    \
    template void avg_pool2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,    \
                                     PoolWindow, PoolWindow, bool, int64_t);                       \
    template void avg_pool2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,   \
                                      PoolWindow, PoolWindow, bool, int64_t);                      \
    template void adaptive_avg_pool2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                              int64_t);                                            \
    template void adaptive_avg_pool2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t,   \
                                               int64_t);                                           \
    template bool max_unpool2d_forward(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);   \
    template bool max_unpool2d_backward(T*, const T*, const int64_t*, int64_t, int64_t, int64_t);

KG_POOL2D_INSTANCES(float)
KG_POOL2D_INSTANCES(double)

}  // namespace cpu
}  // namespace kg
