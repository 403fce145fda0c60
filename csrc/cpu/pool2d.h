// pool2d.h: 2-D pooling and unpooling over NCHW planes, float32 and float64.
//
// Every kernel sees its tensors as `planes` = N * C independent C-contiguous planes and threads
// split the planes: each thread owns whole planes, so the backward scatters never race.
//
//   max_pool2d           out[p][oh][ow] = max of x[p][h][w] over the window's taps (h, w),
//                        indices[p][oh][ow] = h * W + w of that maximum (PyTorch's flat index)
//   avg_pool2d           out[p][oh][ow] = sum of the window's taps / divisor
//   adaptive_*_pool2d    the same with window rows [floor(oh * H / OH), ceil((oh + 1) * H / OH))
//                        (columns alike)
//   max_unpool2d         out[p][indices[p][i]] = x[p][i], zeros elsewhere
// and their backward. Ties: the first maximum in row-major tap order wins; NaN counts as the
// maximum (the last NaN of the window wins), as in PyTorch.
#pragma once

#include <cstdint>

namespace kg {
namespace cpu {

// ----------------------------------------------------------------------------------------------
// Window geometry

// A pooling window along one axis: output o reads input positions
//   o * stride - pad + j * dilation,   j in [0, kernel);
// positions outside [0, size) are padding (-inf for max, 0 for average).
struct PoolWindow {
    int64_t kernel, stride, pad, dilation;
};

// Number of windows along an axis of `size` input positions:
//   floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1   (ceil with ceil_mode,
// where the last window must also start inside the input or the left padding). May be <= 0:
// the caller rejects that.
int64_t pool_output_size(int64_t size, PoolWindow w, bool ceil_mode);

// True when each of the `out` windows has at least one tap inside [0, size). Only dilated windows
// can miss the input entirely (jumping over it from the left padding to the right padding).
bool pool_windows_touch_input(int64_t size, int64_t out, PoolWindow w);

// ----------------------------------------------------------------------------------------------
// Max pooling

// out: (planes, OH, OW);  x: (planes, H, W). Every window must touch the input.
// The values only (no gradient to come): cheaper than with the indices.
template <typename T>
void max_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, PoolWindow rows, PoolWindow cols);

// out, indices: (planes, OH, OW);  x: (planes, H, W) with H, W < 2^31. Every window must touch
// the input.
template <typename T>
void max_pool2d_with_indices_forward(T* out, int64_t* indices, const T* x, int64_t planes,
                                     int64_t H, int64_t W, int64_t OH, int64_t OW, PoolWindow rows,
                                     PoolWindow cols);

// out, indices: (planes, OH, OW);  x: (planes, H, W) with H, W < 2^31
template <typename T>
void adaptive_max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H,
                                 int64_t W, int64_t OH, int64_t OW);

// Backward of both max poolings: dx = 0, then dx[p][indices[p][o]] += dy[p][o].
//   dx: (planes, HW);  dy, indices: (planes, OHW)
// Returns false if an index is outside [0, HW) (dx is then incomplete).
template <typename T>
bool max_pool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW,
                         int64_t OHW);

// ----------------------------------------------------------------------------------------------
// Average pooling

// out: (planes, OH, OW);  x: (planes, H, W); rows.dilation == cols.dilation == 1.
// divisor = divisor_override if non-zero; else the window's size clipped to the padded input
// (count_include_pad) or its number of taps inside the input. With pad <= kernel / 2 (the caller
// checks) every undilated window has a tap inside the input.
template <typename T>
void avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, PoolWindow rows, PoolWindow cols, bool count_include_pad,
                        int64_t divisor_override);

// dx[p][h][w] = sum over the windows (oh, ow) that tap (h, w) of dy[p][oh][ow] / divisor
//   dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH,
                         int64_t OW, PoolWindow rows, PoolWindow cols, bool count_include_pad,
                         int64_t divisor_override);

// out: (planes, OH, OW);  x: (planes, H, W);  divisor = the window's size
template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW);

// dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                                  int64_t OH, int64_t OW);

// ----------------------------------------------------------------------------------------------
// Max unpooling

// out = 0, then out[p][indices[p][i]] = x[p][i] (a repeated index keeps the last value).
//   out: (planes, OHW);  x, indices: (planes, HW)
// Returns false if an index is outside [0, OHW) (out is then incomplete).
template <typename T>
bool max_unpool2d_forward(T* out, const T* x, const int64_t* indices, int64_t planes, int64_t HW,
                          int64_t OHW);

// dx[p][i] = dy[p][indices[p][i]]: the backward of max_unpool2d, and of max_pool2d_backward
// (the gather that undoes its scatter).
//   dx, indices: (planes, HW);  dy: (planes, OHW)
// Returns false if an index is outside [0, OHW) (dx is then incomplete).
template <typename T>
bool max_unpool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW,
                           int64_t OHW);

}  // namespace cpu
}  // namespace kg
