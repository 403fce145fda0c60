// upsample.h: 2-D nearest and bilinear resampling over NCHW planes on the device (F.interpolate),
// float32 and float64, with the CPU kernels' source-index rules (csrc/cpu/upsample.h: PyTorch's),
// and their backward. Every pointer is a device pointer; tensors are `planes` C-contiguous planes.
//
// scale_h, scale_w: the scale factors the caller asked for (output size / input size), or 0 when
// it gave the output size instead; they set the source step (1 / scale factor) as on the CPU.
#pragma once

#include <cstdint>

namespace kg {
namespace cuda {

// out: (planes, OH, OW);  x: (planes, H, W)
template <typename T>
void upsample_nearest2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                double scale_h, double scale_w);

// dx[p][h][w] = sum of dy[p][oh][ow] over the outputs with src(oh) = h, src(ow) = w
//   dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void upsample_nearest2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 double scale_h, double scale_w);

// out: (planes, OH, OW);  x: (planes, H, W)
template <typename T>
void upsample_bilinear2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 bool align_corners, double scale_h, double scale_w);

// dx[p][h][w] = sum over the outputs that read (h, w) of their weight for it times dy[p][oh][ow]
//   dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void upsample_bilinear2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  bool align_corners, double scale_h, double scale_w);

}  // namespace cuda
}  // namespace kg
