// conv2d.cu: im2col and col2im, the data movements of the GEMM convolution (see conv2d.h). One
// thread per output element, grid-stride loops; indices in int64 (cols may exceed 2^31 entries).
#include "cuda/conv2d.h"

#include <cstdint>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

// cols (C*R*S, N*OH*OW) <- x (N, C, H, W)
template <typename T>
__global__ void im2col_kernel(T* cols, const T* x, Conv2dShape s) {
    const int64_t P = s.OH * s.OW, columns = s.N * P, rows = s.C * s.R * s.S;
    KG_GRID_STRIDE_LOOP(i, rows * columns) {
        const int64_t row = i / columns, col = i % columns;
        const int64_t c = row / (s.R * s.S), r = row / s.S % s.R, q = row % s.S;
        const int64_t n = col / P, oh = col % P / s.OW, ow = col % s.OW;
        const int64_t ih = oh * s.stride_h - s.pad_h + r * s.dil_h, iw = ow * s.stride_w - s.pad_w + q * s.dil_w;
        cols[i] = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) ? x[((n * s.C + c) * s.H + ih) * s.W + iw] : T(0);
    }
}

// dx (N, C, H, W) <- dcols (C*R*S, N*OH*OW): pixel (ih, iw) is read by tap (r, q) at output
// (oh, ow) when ih + pad_h - r * dil_h = oh * stride_h (and likewise for w) with oh in [0, OH).
template <typename T>
__global__ void col2im_kernel(T* dx, const T* dcols, Conv2dShape s) {
    const int64_t P = s.OH * s.OW, columns = s.N * P;
    KG_GRID_STRIDE_LOOP(i, s.N * s.C * s.H * s.W) {
        const int64_t iw = i % s.W, ih = i / s.W % s.H, c = i / (s.H * s.W) % s.C, n = i / (s.C * s.H * s.W);
        T acc = T(0);
        for (int64_t r = 0; r < s.R; ++r) {
            const int64_t th = ih + s.pad_h - r * s.dil_h;
            if (th < 0 || th % s.stride_h != 0 || th / s.stride_h >= s.OH) continue;
            const int64_t oh = th / s.stride_h;
            for (int64_t q = 0; q < s.S; ++q) {
                const int64_t tw = iw + s.pad_w - q * s.dil_w;
                if (tw < 0 || tw % s.stride_w != 0 || tw / s.stride_w >= s.OW) continue;
                const int64_t ow = tw / s.stride_w;
                acc += dcols[((c * s.R + r) * s.S + q) * columns + n * P + oh * s.OW + ow];
            }
        }
        dx[i] = acc;
    }
}

template <typename F>
void float_types(DType dtype, const char* what, F&& body) {
    if (dtype == DType::Float32)
        body(float{});
    else if (dtype == DType::Float64)
        body(double{});
    else
        throw std::invalid_argument(std::string(what) + ": expected float32 or float64");
}

}  // namespace

void im2col(DType dtype, void* cols, const void* x, const Conv2dShape& s) {
    const int64_t n = s.C * s.R * s.S * s.N * s.OH * s.OW;
    if (n == 0) return;
    float_types(dtype, "im2col", [&](auto tag) {
        using T = decltype(tag);
        launch(im2col_kernel<T>, grid_for(n), kBlock, 0, nullptr, static_cast<T*>(cols), static_cast<const T*>(x), s);
    });
}

void col2im(DType dtype, void* dx, const void* dcols, const Conv2dShape& s) {
    const int64_t n = s.N * s.C * s.H * s.W;
    if (n == 0) return;
    float_types(dtype, "col2im", [&](auto tag) {
        using T = decltype(tag);
        launch(col2im_kernel<T>, grid_for(n), kBlock, 0, nullptr, static_cast<T*>(dx), static_cast<const T*>(dcols), s);
    });
}

}  // namespace cuda
}  // namespace kg
