// pool2d.h: 2-D pooling and unpooling over NCHW planes on the device, float32 and float64, with
// the semantics of the CPU kernels (csrc/cpu/pool2d.h): the same outputs, indices, ties and NaN
// rules. Every pointer is a device pointer; tensors are `planes` = N * C C-contiguous planes.
//
//   max_pool2d           out[p][oh][ow] = max of x[p][h][w] over the window's taps (h, w),
//                        indices[p][oh][ow] = h * W + w of that maximum (int64)
//   avg_pool2d           out[p][oh][ow] = sum of the window's taps / divisor
//   adaptive_*_pool2d    the same with window rows [floor(oh * H / OH), ceil((oh + 1) * H / OH))
//                        (columns alike)
//   max_unpool2d         out[p][indices[p][i]] = x[p][i], zeros elsewhere
// and their backward. Ties: the first maximum in row-major tap order wins; NaN counts as the
// maximum (the last NaN of the window wins), as in PyTorch.
//
// The kernels that follow indices check them: an index outside its plane is skipped, and the
// smallest flat position (in the indices array) of such an index is left in *first_bad, a device
// word the caller sets to kNoBadIndex before the launch and reads after it.
#pragma once

#include <cstdint>

namespace kg {
namespace cuda {

// ----------------------------------------------------------------------------------------------
// Window geometry (host)

// A pooling window along one axis: output o reads input positions
//   o * stride - pad + j * dilation,   j in [0, kernel);
// positions outside [0, size) are padding (-inf for max, 0 for average).
struct PoolWindow {
    int64_t kernel, stride, pad, dilation;
};

// floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1 (ceil with ceil_mode, where
// the last window must also start inside the input or the left padding); may be <= 0
int64_t pool_output_size(int64_t size, PoolWindow w, bool ceil_mode);

// True when each of the `out` windows has at least one tap inside [0, size)
bool pool_windows_touch_input(int64_t size, int64_t out, PoolWindow w);

constexpr unsigned long long kNoBadIndex = ~0ull;  // *first_bad before (and, if all are good, after)

// ----------------------------------------------------------------------------------------------
// Max pooling

// out, indices: (planes, OH, OW);  x: (planes, H, W). indices may be nullptr (the values only).
// Every window must touch the input.
template <typename T>
void max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, PoolWindow rows, PoolWindow cols);

// out, indices: (planes, OH, OW);  x: (planes, H, W)
template <typename T>
void adaptive_max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW);

// Backward of both max poolings: dx = 0, then dx[p][indices[p][o]] += dy[p][o] (atomics: the
// windows' maxima may coincide, and without the windows no gather can find them).
//   dx: (planes, HW);  dy, indices: (planes, OHW)
template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW, int64_t OHW,
                         unsigned long long* first_bad);

// ----------------------------------------------------------------------------------------------
// Average pooling

// out: (planes, OH, OW);  x: (planes, H, W); undilated windows. divisor = divisor_override if
// non-zero; else the window's size clipped to the padded input (count_include_pad) or its number
// of taps inside the input.
template <typename T>
void avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        PoolWindow rows, PoolWindow cols, bool count_include_pad, int64_t divisor_override);

// dx[p][h][w] = sum over the windows (oh, ow) that tap (h, w) of dy[p][oh][ow] / divisor
//   dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         PoolWindow rows, PoolWindow cols, bool count_include_pad, int64_t divisor_override);

// out: (planes, OH, OW);  x: (planes, H, W);  divisor = the window's size
template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW);

// dx: (planes, H, W);  dy: (planes, OH, OW)
template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW);

// ----------------------------------------------------------------------------------------------
// Max unpooling

// out = 0, then out[p][indices[p][i]] = x[p][i]; a repeated index keeps the value of its last
// position i, as on the CPU (deterministically: last[p][k] = 1 + that position, found with
// atomicMax first).
//   out, last (scratch): (planes, OHW);  x, indices: (planes, HW)
template <typename T>
void max_unpool2d_forward(T* out, unsigned long long* last, const T* x, const int64_t* indices, int64_t planes,
                          int64_t HW, int64_t OHW, unsigned long long* first_bad);

// dx[p][i] = dy[p][indices[p][i]] (0 where the index is bad): the backward of max_unpool2d, and
// of max_pool2d_backward.
//   dx, indices: (planes, HW);  dy: (planes, OHW)
template <typename T>
void max_unpool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW, int64_t OHW,
                           unsigned long long* first_bad);

}  // namespace cuda
}  // namespace kg
