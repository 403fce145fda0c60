// upsample.h: 2-D nearest and bilinear resampling over NCHW planes (F.interpolate), float32 and
// float64, with PyTorch's source-index rules, and their backward.
//
// Along each axis, output position o (of `out`) reads input positions (of `in`) computed from
// `scale`, the source step per output step:
//   scale = 1 / scale_factor when the caller gave a scale factor (scale_factor > 0), else in / out
//   nearest:   src(o) = min(floor(o * scale), in - 1)             (float arithmetic, as PyTorch)
//   bilinear:  src(o) = o * (in - 1) / (out - 1)                   (align_corners; 0 when out == 1)
//              src(o) = max(scale * (o + 0.5) - 0.5, 0)            (otherwise)
//              out = (1 - l) * x[floor(src)] + l * x[floor(src) + 1], l = src - floor(src),
//              the upper neighbour clamped to in - 1
// and out == in copies (nearest: also out == 2 * in reads o / 2), whatever the scale factor.
// In 2-D the rule applies to rows and columns separately (bilinear = lerp of lerps).
//
// scale_h, scale_w: the scale factors the caller asked for (output size / input size), or 0 when
// it gave the output size instead.
#pragma once

#include <cstdint>

namespace kg {
namespace cpu {

// out: (planes, OH, OW);  x: (planes, H, W)
template <typename T>
void upsample_nearest2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
                                int64_t OH, int64_t OW, double scale_h, double scale_w);

// dx[p][src(oh)][src(ow)] += dy[p][oh][ow];  dx: (planes, H, W), dy: (planes, OH, OW)
template <typename T>
void upsample_nearest2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW, double scale_h, double scale_w);

// out: (planes, OH, OW);  x: (planes, H, W)
template <typename T>
void upsample_bilinear2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW, bool align_corners, double scale_h,
                                 double scale_w);

// dy[p][oh][ow] spread over its four source pixels with the forward's weights (accumulating)
//   dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void upsample_bilinear2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                                  int64_t OH, int64_t OW, bool align_corners, double scale_h,
                                  double scale_w);

}  // namespace cpu
}  // namespace kg
