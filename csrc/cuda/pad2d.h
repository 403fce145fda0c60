// pad2d.h: reflect and replicate padding of the last two dims of NCHW planes on the device,
// float32 and float64, and its backward, with the CPU kernels' rules (csrc/cpu/pad2d.h). Every
// pointer is a device pointer; tensors are `planes` C-contiguous planes.
#pragma once

#include <cstdint>

namespace kg {
namespace cuda {

// out: (planes, H + top + bottom, W + left + right);  x: (planes, H, W). Negative pads crop.
// The caller checks that both output sizes are >= 0 and, for reflect, that every pad < its size.
template <typename T>
void pad2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t top, int64_t bottom,
                   int64_t left, int64_t right, bool reflect);

// dx[p][h][w] = sum of dy over the outputs that read (h, w) (the edges accumulate)
//   dx: (planes, H, W);  dy: (planes, H + top + bottom, W + left + right)
template <typename T>
void pad2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t top, int64_t bottom,
                    int64_t left, int64_t right, bool reflect);

}  // namespace cuda
}  // namespace kg
