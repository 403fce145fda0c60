// pad2d.h: reflect and replicate padding of the last two dims of NCHW planes, float32 and
// float64, and their backward. (Constant padding is a fill and a copy: no kernel.)
//
// Along each axis, output position o reads input position s(o - before), for `before` the pad
// in front (negative pads crop):
//   reflect:    s(j) = -j for j < 0,  2 * (in - 1) - j for j >= in,  j otherwise
//               (mirror about the edge element, which is not repeated; needs |pad| < in)
//   replicate:  s(j) = clamp(j, 0, in - 1)
// The backward adds each output gradient into the input position it read (edges accumulate).
#pragma once

#include <cstdint>

namespace kg {
namespace cpu {

enum class PadMode { reflect, replicate };

// out: (planes, H + top + bottom, W + left + right);  x: (planes, H, W)
// The caller checks that both output sizes are >= 0 and, for reflect, that every pad < its size.
template <typename T>
void pad2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t top,
                   int64_t bottom, int64_t left, int64_t right, PadMode mode);

// dx: (planes, H, W);  dy: (planes, H + top + bottom, W + left + right)
template <typename T>
void pad2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t top,
                    int64_t bottom, int64_t left, int64_t right, PadMode mode);

}  // namespace cpu
}  // namespace kg
