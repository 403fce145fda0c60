// upsample.cu: nearest and bilinear upsampling on the device (see upsample.h; the source-index
// arithmetic is index2d.cuh's NearestAxis and LerpAxis).
//
// One version of each, a grid-stride loop of kBlock-thread blocks with one thread per element
// written (no shared memory, no atomics):
//   nearest    forward: index2d.cuh's separable gather; backward: its adjoint, each input summing
//              the range of outputs that read it (found by binary search over the forward's
//              nondecreasing source map)
//   bilinear   forward: out[oh][ow] = l0(oh) * (l0(ow) * x[i0][j0] + l1(ow) * x[i0][j1])
//                                   + l1(oh) * (l0(ow) * x[i1][j0] + l1(ow) * x[i1][j1])
//              backward: dx[h][w] = sum over oh in readers(h), ow in readers(w) of
//                                   weight(ow, w) * (weight(oh, h) * dy[oh][ow])
//              with readers(h) the outputs whose i0 is h - 1 or h (a binary search, as above).
#include "cuda/upsample.h"

#include <cstdint>

#include "cuda/index2d.cuh"
#include "cuda/kg_cuda.cuh"
#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

namespace {

// out: (planes, rows.out, cols.out);  x: (planes, rows.in, cols.in)
template <typename T>
__global__ void bilinear2d_kernel(T* out, const T* x, int64_t planes, LerpAxis<T> rows, LerpAxis<T> cols) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * OH * OW) {
        const int64_t ow = i % OW, oh = i / OW % OH, p = i / (OW * OH);
        const Lerp<T> r = rows.lerp(oh), c = cols.lerp(ow);
        const T* x0 = x + (p * H + r.i0) * W;  // the two input rows
        const T* x1 = x + (p * H + r.i1) * W;
        out[i] = r.l0 * (c.l0 * x0[c.i0] + c.l1 * x0[c.i1]) + r.l1 * (c.l0 * x1[c.i0] + c.l1 * x1[c.i1]);
    }
}

// dx: (planes, rows.in, cols.in);  dy: (planes, rows.out, cols.out)
template <typename T>
__global__ void bilinear2d_backward_kernel(T* dx, const T* dy, int64_t planes, LerpAxis<T> rows, LerpAxis<T> cols) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * H * W) {
        const int64_t w = i % W, h = i / W % H, p = i / (W * H);
        const Range ro = rows.readers(h).r[0], co = cols.readers(w).r[0];
        const T* dy_p = dy + p * OH * OW;
        T sum = T(0);
        for (int64_t oh = ro.lo; oh < ro.hi; ++oh) {
            const T wr = rows.weight(oh, h);
            for (int64_t ow = co.lo; ow < co.hi; ++ow) sum += cols.weight(ow, w) * (wr * dy_p[oh * OW + ow]);
        }
        dx[i] = sum;
    }
}

}  // namespace

template <typename T>
void upsample_nearest2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                double scale_h, double scale_w) {
    gather2d(out, x, planes, NearestAxis::make(H, OH, scale_h), NearestAxis::make(W, OW, scale_w));
}

template <typename T>
void upsample_nearest2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 double scale_h, double scale_w) {
    gather2d_adjoint(dx, dy, planes, NearestAxis::make(H, OH, scale_h), NearestAxis::make(W, OW, scale_w));
}

template <typename T>
void upsample_bilinear2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 bool align_corners, double scale_h, double scale_w) {
    const int64_t n = planes * OH * OW;
    if (n > 0)
        launch(bilinear2d_kernel<T>, grid_for(n), kBlock, 0, nullptr, out, x, planes,
               LerpAxis<T>::make(H, OH, align_corners, scale_h), LerpAxis<T>::make(W, OW, align_corners, scale_w));
}

template <typename T>
void upsample_bilinear2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  bool align_corners, double scale_h, double scale_w) {
    const int64_t n = planes * H * W;
    if (n > 0)
        launch(bilinear2d_backward_kernel<T>, grid_for(n), kBlock, 0, nullptr, dx, dy, planes,
               LerpAxis<T>::make(H, OH, align_corners, scale_h), LerpAxis<T>::make(W, OW, align_corners, scale_w));
}

// ---------------------------------------------------------------------------------------------
// float32 and float64 instances

#define KG_CUDA_UPSAMPLE_INSTANCES(T)                                                                          \
    template void upsample_nearest2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, double, \
                                             double);                                                           \
    template void upsample_nearest2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,        \
                                              double, double);                                                  \
    template void upsample_bilinear2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, bool,  \
                                              double, double);                                                  \
    template void upsample_bilinear2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, bool, \
                                               double, double);

KG_CUDA_UPSAMPLE_INSTANCES(float)
KG_CUDA_UPSAMPLE_INSTANCES(double)

}  // namespace cuda
}  // namespace kg
