// pool2d.cpp: max / average / adaptive pooling, their backward, and max unpooling.
//
// Every pooling here is one loop nest: for each plane (threads), for each output (oh, ow), visit
// the window's taps inside the input. The taps of each window are precomputed per axis (Taps:
// first position, count, step), once per call, so padding, dilation, ceil_mode and adaptive
// windows are all the same loop (for_each_tap) with different tables:
//
//   max:      m = max over taps of x[h][w]                out = m, index = argmax (h * W + w)
//   average:  s = sum over taps of x[h][w]                out = s / divisor
//   backward: dx[h][w] += dy[oh][ow] / divisor (average);  dx[argmax] += dy[oh][ow] (max)
#include "cpu/pool2d.h"

#include <algorithm>
#include <cmath>
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
struct Taps {
    std::vector<int64_t> first, count, size;
    int64_t step = 1;

    explicit Taps(int64_t out, int64_t step_) : first(out), count(out), size(out), step(step_) {}
    int64_t out() const { return static_cast<int64_t>(first.size()); }
};

// Pooling windows: taps start + j * dilation for j in [0, kernel), start = o * stride - pad,
// keeping those in [0, in).
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
    return t;
}

// Adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)): never empty, and
// overlapping their neighbours when out does not divide in.
Taps adaptive_taps(int64_t in, int64_t out) {
    Taps t(out, 1);
    for (int64_t o = 0; o < out; ++o) {
        const int64_t start = o * in / out, end = ((o + 1) * in + out - 1) / out;
        t.first[o] = start;
        t.count[o] = t.size[o] = end - start;
    }
    return t;
}

// f(h * W + w) for every tap (h, w) of window (oh, ow): rows outer, columns inner (row-major)
template <class F>
inline void for_each_tap(const Taps& rows, const Taps& cols, int64_t oh, int64_t ow, int64_t W,
                         F&& f) {
    for (int64_t i = 0, h = rows.first[oh]; i < rows.count[oh]; ++i, h += rows.step)
        for (int64_t j = 0, w = cols.first[ow]; j < cols.count[ow]; ++j, w += cols.step)
            f(h * W + w);
}

// ----------------------------------------------------------------------------------------------
// Max pooling

// out, indices: (planes, rows.out(), cols.out());  x: (planes, H, W)
template <typename T>
void max_pool_planes(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W,
                     const Taps& rows, const Taps& cols) {
    const int64_t OH = rows.out(), OW = cols.out();
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const T* x_p = x + p * H * W;
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                T m = -std::numeric_limits<T>::infinity();
                int64_t at = rows.first[oh] * W + cols.first[ow];
                for_each_tap(rows, cols, oh, ow, W, [&](int64_t k) {
                    if (x_p[k] > m || std::isnan(x_p[k])) {
                        m = x_p[k];
                        at = k;
                    }
                });
                const int64_t o = (p * OH + oh) * OW + ow;
                out[o] = m;
                indices[o] = at;
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
    const int64_t OH = rows.out(), OW = cols.out();
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        const T* x_p = x + p * H * W;
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                T s = 0;
                for_each_tap(rows, cols, oh, ow, W, [&](int64_t k) { s += x_p[k]; });
                const bool empty = rows.count[oh] == 0 || cols.count[ow] == 0;
                out[(p * OH + oh) * OW + ow] = empty ? T(0) : s / T(divisor(rows, cols, oh, ow));
            }
    }
}

// dx: (planes, H, W);  dy: (planes, rows.out(), cols.out())
template <typename T>
void avg_pool_planes_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                              const Taps& rows, const Taps& cols, Divisor divisor) {
    const int64_t OH = rows.out(), OW = cols.out();
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        T* dx_p = dx + p * H * W;
        std::fill(dx_p, dx_p + H * W, T(0));
        for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
                const T g = dy[(p * OH + oh) * OW + ow] / T(divisor(rows, cols, oh, ow));
                for_each_tap(rows, cols, oh, ow, W, [&](int64_t k) { dx_p[k] += g; });
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
void max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W,
                        int64_t OH, int64_t OW, PoolWindow rows, PoolWindow cols) {
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
    template void max_pool2d_forward(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t,   \
                                     int64_t, PoolWindow, PoolWindow);                             \
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
