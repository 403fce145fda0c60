// index2d.cuh: the index arithmetic of the 2-D plane kernels (pool2d.cu, upsample.cu, pad2d.cu),
// one struct per kind of axis, each holding its forward map and that map's inverse. Forward and
// backward kernels both read them, so every backward is a gather over the outputs that read an
// input position (deterministic: no atomics, a fixed summation order), computed with exactly the
// forward's arithmetic. Along one axis of `in` input and `out` output positions:
//
//   PoolAxis     output o reduces the window taps first + j * step, j < count    (pooling)
//                readers(i) = the outputs whose windows hold input i              (undilated)
//   NearestAxis  output o copies input src(o)                                    (nearest)
//   LerpAxis     output o = (1 - l) * x[i0] + l * x[i1]                          (bilinear)
//   PadAxis      output o copies input src(o), reflected or replicated           (padding)
//   readers(i):  the outputs o that read input i, as at most kReaders ranges
//
// NearestAxis and LerpAxis have nondecreasing sources, so the outputs that read input i are one
// range, found by binary search over the forward map itself. A 2-D op applies one axis to the
// rows and one to the columns of each of `planes` C-contiguous planes. The separable gather of
// nearest upsampling and padding, and its adjoint, are the two kernels at the end:
//
//   gather2d:          out[p][oh][ow] = x[p][rows.src(oh)][cols.src(ow)]
//   gather2d_adjoint:  dx[p][h][w] = sum over oh in rows.readers(h), ow in cols.readers(w) of dy[p][oh][ow]
#pragma once

#include <cmath>
#include <cstdint>

#include "cuda/kg_cuda.cuh"
#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

// ---------------------------------------------------------------------------------------------
// Integer helpers (std::min and friends are host-only under nvcc)

__host__ __device__ inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ inline int64_t max64(int64_t a, int64_t b) { return a < b ? b : a; }

// floor(a / b) and ceil(a / b) for b > 0 and a of any sign
__host__ __device__ inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Positions [lo, hi); empty when hi <= lo
struct Range {
    int64_t lo, hi;
};

__host__ __device__ inline Range clip(Range r, int64_t n) { return {max64(r.lo, 0), min64(r.hi, n)}; }

// The outputs that read one input position: up to N ranges, disjoint
template <int N>
struct Readers {
    Range r[N];
};

// The first o in [0, axis.out) with axis.src(o) >= v (axis.out if none), for a nondecreasing src
template <class Axis>
__device__ inline int64_t first_source_at_least(const Axis& axis, int64_t v) {
    int64_t lo = 0, hi = axis.out;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (axis.src(mid) < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

// ---------------------------------------------------------------------------------------------
// Pooling windows

// Window o reads the input positions first, first + step, ... (count of them, all inside
// [0, in)); size is its extent clipped to the padded input (count_include_pad's divisor).
struct Window {
    int64_t first, count, step, size;
};

// Pooling windows taps o * stride - pad + j * dilation, j in [0, kernel), those inside [0, in);
// adaptive windows (kernel == 0) are [floor(o * in / out), ceil((o + 1) * in / out)).
struct PoolAxis {
    int64_t in, out;
    int64_t kernel, stride, pad, dilation;

    static PoolAxis pooling(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
        return {in, out, kernel, stride, pad, dilation};
    }
    static PoolAxis adaptive(int64_t in, int64_t out) { return {in, out, 0, 1, 0, 1}; }

    __host__ __device__ Window window(int64_t o) const {
        if (kernel == 0) {
            const int64_t start = o * in / out, end = ceil_div((o + 1) * in, out);
            return {start, end - start, 1, end - start};
        }
        const int64_t start = o * stride - pad;
        const int64_t j0 = start < 0 ? ceil_div(-start, dilation) : 0;     // the first tap >= 0
        const int64_t j1 = min64(kernel, ceil_div(in - start, dilation));  // the taps < in
        return {start + j0 * dilation, max64(j1 - j0, 0), dilation, min64(start + kernel, in + pad) - start};
    }

    // The outputs whose windows hold input i, for undilated or adaptive windows:
    //   pooling:   o * stride - pad <= i < o * stride - pad + kernel
    //   adaptive:  floor(o * in / out) <= i < ceil((o + 1) * in / out)
    //              <=>  floor(i * out / in) <= o < ceil((i + 1) * out / in)   (the same rule, swapped)
    __device__ Range readers(int64_t i) const {
        if (kernel == 0) return {i * out / in, ceil_div((i + 1) * out, in)};
        return clip({floor_div(i + pad - kernel, stride) + 1, floor_div(i + pad, stride) + 1}, out);
    }
};

// ---------------------------------------------------------------------------------------------
// Upsampling (PyTorch's source-index rules; see csrc/cpu/upsample.h)

// The source step per output step: 1 / scale_factor when one was given (> 0), else in / out, in S
template <typename S>
S source_step(int64_t in, int64_t out, double scale_factor) {
    return scale_factor > 0 ? static_cast<S>(1.0 / scale_factor) : static_cast<S>(in) / static_cast<S>(out);
}

// src(o) = min(floor(o * scale), in - 1) in float whatever the element type (PyTorch's
// nearest_idx); out == in copies and out == 2 * in reads o / 2
struct NearestAxis {
    static constexpr int kReaders = 1;
    int64_t in, out;
    float scale;

    static NearestAxis make(int64_t in, int64_t out, double scale_factor) {
        return {in, out, source_step<float>(in, out, scale_factor)};
    }

    __device__ int64_t src(int64_t o) const {
        if (out == in) return o;
        if (out == 2 * in) return o >> 1;
        return min64(static_cast<int64_t>(floorf(static_cast<float>(o) * scale)), in - 1);
    }
    __device__ Readers<1> readers(int64_t i) const {
        return {{{first_source_at_least(*this, i), first_source_at_least(*this, i + 1)}}};
    }
};

// Round-to-nearest products: nvcc would otherwise fuse scale * c - 0.5 into one fma, and the
// source coordinates (hence the chosen pixels) would differ from the CPU kernels' by an ulp
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float floor_of(float v) { return floorf(v); }
__device__ inline double floor_of(double v) { return floor(v); }

template <typename T>
struct Lerp {
    int64_t i0, i1;  // the two inputs (i1 == i0 at the last input)
    T l0, l1;        // their weights, l0 = 1 - l1
};

// src(o) = o * (in - 1) / (out - 1)                (align_corners; scale 0 when out == 1)
//        = max(scale * (o + 0.5) - 0.5, 0)         (otherwise, scale = source_step)
// i0 = min(floor(src), in - 1), i1 = i0 + 1 clamped to in - 1, l1 = clamp(src - i0, 0, 1); out ==
// in copies. All in T, as the CPU kernel (and PyTorch) computes it.
template <typename T>
struct LerpAxis {
    static constexpr int kReaders = 1;
    int64_t in, out;
    T scale;
    bool align_corners;

    static LerpAxis make(int64_t in, int64_t out, bool align_corners, double scale_factor) {
        const T scale = align_corners ? (out > 1 ? static_cast<T>(in - 1) / static_cast<T>(out - 1) : T(0))
                                      : source_step<T>(in, out, scale_factor);
        return {in, out, scale, align_corners};
    }

    __device__ Lerp<T> lerp(int64_t o) const {
        if (out == in) return {o, o, T(1), T(0)};
        const T c = static_cast<T>(o);
        T s = align_corners ? mul_rn(scale, c) : mul_rn(scale, c + T(0.5)) - T(0.5);
        s = s > T(0) ? s : T(0);
        const int64_t i0 = min64(static_cast<int64_t>(floor_of(s)), in - 1);
        T l1 = s - static_cast<T>(i0);
        l1 = l1 < T(0) ? T(0) : (l1 > T(1) ? T(1) : l1);
        return {i0, i0 + (i0 < in - 1 ? 1 : 0), T(1) - l1, l1};
    }
    __device__ int64_t src(int64_t o) const { return lerp(o).i0; }  // nondecreasing

    // The weight of input i in output o
    __device__ T weight(int64_t o, int64_t i) const {
        const Lerp<T> l = lerp(o);
        return (l.i0 == i ? l.l0 : T(0)) + (l.i1 == i ? l.l1 : T(0));
    }
    // i0(o) == i or i1(o) == i  <=>  i0(o) in {i - 1, i}
    __device__ Readers<1> readers(int64_t i) const {
        return {{{first_source_at_least(*this, i - 1), first_source_at_least(*this, i + 1)}}};
    }
};

// ---------------------------------------------------------------------------------------------
// Reflect / replicate padding (see csrc/cpu/pad2d.h): output o reads s(o - before), out = in +
// before + after (negative pads crop)
//   reflect:    s(j) = -j for j < 0,  2 * (in - 1) - j for j >= in,  j otherwise   (|pads| < in)
//   replicate:  s(j) = clamp(j, 0, in - 1)
struct PadAxis {
    static constexpr int kReaders = 3;
    int64_t in, out, before;
    bool reflect;

    static PadAxis make(int64_t in, int64_t before, int64_t after, bool reflect) {
        return {in, in + before + after, before, reflect};
    }

    __device__ int64_t src(int64_t o) const {
        const int64_t j = o - before;
        if (reflect) return j < 0 ? -j : (j >= in ? 2 * (in - 1) - j : j);
        return j < 0 ? 0 : (j >= in ? in - 1 : j);
    }

    // reflect: the mirror images j = i, -i (for i > 0) and 2 (in - 1) - i (for i < in - 1), where
    // they lie in the output; replicate: j = i, and every j beyond an edge for the edge inputs
    __device__ Readers<3> readers(int64_t i) const {
        if (!reflect)
            return {{clip({i == 0 ? 0 : i + before, i == in - 1 ? out : i + 1 + before}, out), {0, 0}, {0, 0}}};
        return {{image(true, i), image(i > 0, -i), image(i < in - 1, 2 * (in - 1) - i)}};
    }

private:
    __device__ Range image(bool exists, int64_t j) const {
        const int64_t o = j + before;
        return exists && o >= 0 && o < out ? Range{o, o + 1} : Range{0, 0};
    }
};

// ---------------------------------------------------------------------------------------------
// The separable gather (NearestAxis, PadAxis) and its adjoint; one thread per output element

// out: (planes, rows.out, cols.out);  x: (planes, rows.in, cols.in)
template <typename T, class Axis>
__global__ void gather2d_kernel(T* out, const T* x, int64_t planes, Axis rows, Axis cols) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * OH * OW) {
        const int64_t ow = i % OW, oh = i / OW % OH, p = i / (OW * OH);
        out[i] = x[(p * H + rows.src(oh)) * W + cols.src(ow)];
    }
}

// dx: (planes, rows.in, cols.in);  dy: (planes, rows.out, cols.out)
template <typename T, class Axis>
__global__ void gather2d_adjoint_kernel(T* dx, const T* dy, int64_t planes, Axis rows, Axis cols) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * H * W) {
        const int64_t w = i % W, h = i / W % H, p = i / (W * H);
        const Readers<Axis::kReaders> rr = rows.readers(h), cr = cols.readers(w);
        const T* dy_p = dy + p * OH * OW;
        T sum = T(0);
KG_UNROLL
        for (int a = 0; a < Axis::kReaders; ++a)
            for (int64_t oh = rr.r[a].lo; oh < rr.r[a].hi; ++oh)
KG_UNROLL
                for (int b = 0; b < Axis::kReaders; ++b)
                    for (int64_t ow = cr.r[b].lo; ow < cr.r[b].hi; ++ow) sum += dy_p[oh * OW + ow];
        dx[i] = sum;
    }
}

// The launches of the two (nothing for empty arrays)
template <typename T, class Axis>
void gather2d(T* out, const T* x, int64_t planes, Axis rows, Axis cols) {
    const int64_t n = planes * rows.out * cols.out;
    if (n > 0) launch(gather2d_kernel<T, Axis>, grid_for(n), kBlock, 0, nullptr, out, x, planes, rows, cols);
}

template <typename T, class Axis>
void gather2d_adjoint(T* dx, const T* dy, int64_t planes, Axis rows, Axis cols) {
    const int64_t n = planes * rows.in * cols.in;
    if (n > 0) launch(gather2d_adjoint_kernel<T, Axis>, grid_for(n), kBlock, 0, nullptr, dx, dy, planes, rows, cols);
}

}  // namespace cuda
}  // namespace kg
