// upsample.cpp: nearest and bilinear upsampling (see upsample.h for the index rules).
//
// Both precompute, per axis, where each output position reads (and with what weights), then run
// one pass over the planes: nearest is a separable gather (index2d.h), bilinear a lerp of the
// two nearest rows of the two nearest columns.
#include "cpu/upsample.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/index2d.h"
#include "cpu/parallel.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Source positions along one axis

// PyTorch's source step: 1 / scale_factor when one was given, else in / out, in type S
template <typename S>
S source_step(int64_t in, int64_t out, double scale_factor) {
    return scale_factor > 0 ? static_cast<S>(1.0 / scale_factor) : static_cast<S>(in) / out;
}

// nearest: src(o) = min(floor(o * scale), in - 1), in float whatever T is (PyTorch's nearest_idx)
std::vector<int64_t> nearest_sources(int64_t in, int64_t out, double scale_factor) {
    std::vector<int64_t> src(out);
    const float scale = source_step<float>(in, out, scale_factor);
    for (int64_t o = 0; o < out; ++o) {
        if (out == in)
            src[o] = o;
        else if (out == 2 * in)
            src[o] = o >> 1;
        else
            src[o] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(o) * scale)), in - 1);
    }
    return src;
}

// bilinear: out[o] = l0[o] * x[i0[o]] + l1[o] * x[i1[o]]
template <typename T>
struct Lerp {
    std::vector<int64_t> i0, i1;
    std::vector<T> l0, l1;
};

template <typename T>
Lerp<T> bilinear_sources(int64_t in, int64_t out, bool align_corners, double scale_factor) {
    Lerp<T> t{std::vector<int64_t>(out), std::vector<int64_t>(out), std::vector<T>(out),
              std::vector<T>(out)};
    const T scale = align_corners ? (out > 1 ? static_cast<T>(in - 1) / (out - 1) : T(0))
                                  : source_step<T>(in, out, scale_factor);
    for (int64_t o = 0; o < out; ++o) {
        if (out == in) {  // a copy
            t.i0[o] = t.i1[o] = o;
            t.l0[o] = 1;
            t.l1[o] = 0;
            continue;
        }
        const T src = align_corners ? scale * o : std::max(scale * (o + T(0.5)) - T(0.5), T(0));
        t.i0[o] = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
        t.i1[o] = t.i0[o] + (t.i0[o] < in - 1 ? 1 : 0);
        t.l1[o] = std::clamp(src - static_cast<T>(t.i0[o]), T(0), T(1));
        t.l0[o] = 1 - t.l1[o];
    }
    return t;
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Nearest

template <typename T>
void upsample_nearest2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
                                int64_t OH, int64_t OW, double scale_h, double scale_w) {
    gather2d(out, x, planes, H, W, nearest_sources(H, OH, scale_h), nearest_sources(W, OW, scale_w));
}

template <typename T>
void upsample_nearest2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW, double scale_h, double scale_w) {
    scatter_add2d(dx, dy, planes, H, W, nearest_sources(H, OH, scale_h),
                  nearest_sources(W, OW, scale_w));
}

// ----------------------------------------------------------------------------------------------
// Bilinear

template <typename T>
void upsample_bilinear2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW, bool align_corners, double scale_h,
                                 double scale_w) {
    const Lerp<T> r = bilinear_sources<T>(H, OH, align_corners, scale_h);
    const Lerp<T> c = bilinear_sources<T>(W, OW, align_corners, scale_w);
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t oh = 0; oh < OH; ++oh) {
            const T* x0 = x + (p * H + r.i0[oh]) * W;  // the two input rows
            const T* x1 = x + (p * H + r.i1[oh]) * W;
            T* out_row = out + (p * OH + oh) * OW;
            for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t w0 = c.i0[ow], w1 = c.i1[ow];
                out_row[ow] = r.l0[oh] * (c.l0[ow] * x0[w0] + c.l1[ow] * x0[w1]) +
                              r.l1[oh] * (c.l0[ow] * x1[w0] + c.l1[ow] * x1[w1]);
            }
        }
}

template <typename T>
void upsample_bilinear2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                                  int64_t OH, int64_t OW, bool align_corners, double scale_h,
                                  double scale_w) {
    const Lerp<T> r = bilinear_sources<T>(H, OH, align_corners, scale_h);
    const Lerp<T> c = bilinear_sources<T>(W, OW, align_corners, scale_w);
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        std::fill(dx + p * H * W, dx + (p + 1) * H * W, T(0));
        for (int64_t oh = 0; oh < OH; ++oh) {
            T* dx0 = dx + (p * H + r.i0[oh]) * W;
            T* dx1 = dx + (p * H + r.i1[oh]) * W;
            const T* dy_row = dy + (p * OH + oh) * OW;
            for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t w0 = c.i0[ow], w1 = c.i1[ow];
                const T g0 = r.l0[oh] * dy_row[ow], g1 = r.l1[oh] * dy_row[ow];
                dx0[w0] += c.l0[ow] * g0;
                dx0[w1] += c.l1[ow] * g0;
                dx1[w0] += c.l0[ow] * g1;
                dx1[w1] += c.l1[ow] * g1;
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// float32 and float64 instances

#define KG_UPSAMPLE_INSTANCES(T)                                                                   \
    template void upsample_nearest2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t,     \
                                             int64_t, double, double);                             \
    template void upsample_nearest2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                              int64_t, double, double);                            \
    template void upsample_bilinear2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t,    \
                                              int64_t, bool, double, double);                      \
    template void upsample_bilinear2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t,   \
                                               int64_t, bool, double, double);

KG_UPSAMPLE_INSTANCES(float)
KG_UPSAMPLE_INSTANCES(double)

}  // namespace cpu
}  // namespace kg
