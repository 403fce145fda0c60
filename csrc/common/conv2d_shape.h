// conv2d_shape.h: the sizes and geometry of one 2-D convolution, shared by the CPU kernels
// (cpu/conv2d.h), the CUDA kernels (cuda/conv2d.h) and their bindings' argument checks.
#pragma once

#include <cstdint>

namespace kg {

// The sizes and geometry of one convolution. pad_h / pad_w are the top / left padding; the
// bottom / right padding is whatever OH / OW imply (so "same" padding may be asymmetric, and
// conv_transpose2d's output_padding is more rows at the bottom).
struct Conv2dShape {
    int64_t N, C, H, W;  // input x (N, C, H, W)
    int64_t K, R, S;     // weight w (K, C / groups, R, S)
    int64_t OH, OW;      // output (N, K, OH, OW)
    int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    int64_t groups;      // divides C and K
};

}  // namespace kg
