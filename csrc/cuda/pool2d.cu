// pool2d.cu: max / average / adaptive pooling, their backward, and max unpooling on the device
// (see pool2d.h for the semantics; the window arithmetic is index2d.cuh's PoolAxis).
//
// One version of each, a grid-stride loop of kBlock-thread blocks with one thread per element of
// the array it writes (no shared memory, no barriers):
//
//   forward     one thread per output: reduce its window's taps
//                 max:      m = -inf, at = the first tap; for each tap (h, w) in row-major order:
//                           if x > m or x is NaN: m = x, at = h * W + w   (PyTorch's scan)
//                 average:  (sum over the columns w of (sum over the rows h of x[h][w])) / divisor,
//                           the CPU kernel's order of additions
//   backward    average: one thread per input (h, w), a gather over the windows that hold it,
//                           dx[h][w] = sum over oh in readers(h) of (sum over ow in readers(w) of
//                           dy[oh][ow] / divisor(oh, ow))       (deterministic)
//               max:     dx = 0, then one thread per output adds dy at its index (atomicAdd: the
//                           backward sees only the indices, not the windows, so it cannot gather)
//   unpooling   one thread per input claims its output cell (atomicMax of its position + 1, so a
//               repeated index keeps its last position, as the CPU does), then one thread per
//               output copies the claimed value or 0; its backward is a gather, one thread per input.
//
// Consecutive threads write consecutive elements of a row, so loads and stores coalesce along W.
#include "cuda/pool2d.h"

#include <cmath>
#include <cstdint>

#include "cuda/index2d.cuh"
#include "cuda/kg_cuda.cuh"
#include "cuda/tensor.cuh"

namespace kg {
namespace cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// Geometry

PoolAxis pooling_axis(int64_t in, int64_t out, PoolWindow w) {
    return PoolAxis::pooling(in, out, w.kernel, w.stride, w.pad, w.dilation);
}

// The divisor of window (r, c) of an average pooling (see avg_pool2d_forward in pool2d.h)
struct AvgDivisor {
    bool count_include_pad;
    int64_t override_;

    __device__ int64_t operator()(const Window& r, const Window& c) const {
        if (override_ != 0) return override_;
        return count_include_pad ? r.size * c.size : r.count * c.count;
    }
};

// Record a bad index at flat position i (the smallest one wins)
__device__ inline void report_bad(unsigned long long* first_bad, int64_t i) {
    atomicMin(first_bad, static_cast<unsigned long long>(i));
}

// ---------------------------------------------------------------------------------------------
// Max pooling

// out, indices (or nullptr): (planes, rows.out, cols.out);  x: (planes, rows.in, cols.in)
template <typename T>
__global__ void max_pool2d_kernel(T* out, int64_t* indices, const T* x, int64_t planes, PoolAxis rows,
                                  PoolAxis cols) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * OH * OW) {
        const int64_t ow = i % OW, oh = i / OW % OH, p = i / (OW * OH);
        const Window r = rows.window(oh), c = cols.window(ow);
        const T* x_p = x + p * H * W;
        T m = -static_cast<T>(INFINITY);
        int64_t at = r.first * W + c.first;  // where an all -inf window points
        for (int64_t jh = 0, h = r.first; jh < r.count; ++jh, h += r.step)
            for (int64_t jw = 0, w = c.first; jw < c.count; ++jw, w += c.step) {
                const T v = x_p[h * W + w];
                if (v > m || v != v) {
                    m = v;
                    at = h * W + w;
                }
            }
        out[i] = m;
        if (indices != nullptr) indices[i] = at;
    }
}

// dx: (planes, HW), zeroed;  dy, indices: (planes, OHW)
template <typename T>
__global__ void max_pool2d_backward_kernel(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW,
                                           int64_t OHW, unsigned long long* first_bad) {
    KG_GRID_STRIDE_LOOP(i, planes * OHW) {
        const int64_t k = indices[i];
        if (k < 0 || k >= HW) {
            report_bad(first_bad, i);
            continue;
        }
        atomicAdd(dx + i / OHW * HW + k, dy[i]);
    }
}

template <typename T>
void max_pool_planes(T* out, int64_t* indices, const T* x, int64_t planes, PoolAxis rows, PoolAxis cols) {
    const int64_t n = planes * rows.out * cols.out;
    if (n > 0) launch(max_pool2d_kernel<T>, grid_for(n), kBlock, 0, nullptr, out, indices, x, planes, rows, cols);
}

// ---------------------------------------------------------------------------------------------
// Average pooling

// out: (planes, rows.out, cols.out);  x: (planes, rows.in, cols.in)
template <typename T>
__global__ void avg_pool2d_kernel(T* out, const T* x, int64_t planes, PoolAxis rows, PoolAxis cols,
                                  AvgDivisor divisor) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * OH * OW) {
        const int64_t ow = i % OW, oh = i / OW % OH, p = i / (OW * OH);
        const Window r = rows.window(oh), c = cols.window(ow);
        const T* x_p = x + p * H * W;
        T sum = T(0);
        for (int64_t jw = 0, w = c.first; jw < c.count; ++jw, w += c.step) {
            T column = T(0);
            for (int64_t jh = 0, h = r.first; jh < r.count; ++jh, h += r.step) column += x_p[h * W + w];
            sum += column;
        }
        out[i] = sum / static_cast<T>(divisor(r, c));
    }
}

// dx: (planes, rows.in, cols.in);  dy: (planes, rows.out, cols.out); undilated windows
template <typename T>
__global__ void avg_pool2d_backward_kernel(T* dx, const T* dy, int64_t planes, PoolAxis rows, PoolAxis cols,
                                           AvgDivisor divisor) {
    const int64_t OH = rows.out, OW = cols.out, H = rows.in, W = cols.in;
    KG_GRID_STRIDE_LOOP(i, planes * H * W) {
        const int64_t w = i % W, h = i / W % H, p = i / (W * H);
        const Range ro = rows.readers(h), co = cols.readers(w);
        const T* dy_p = dy + p * OH * OW;
        T sum = T(0);
        for (int64_t oh = ro.lo; oh < ro.hi; ++oh) {
            const Window r = rows.window(oh);
            T row = T(0);
            for (int64_t ow = co.lo; ow < co.hi; ++ow)
                row += dy_p[oh * OW + ow] / static_cast<T>(divisor(r, cols.window(ow)));
            sum += row;
        }
        dx[i] = sum;
    }
}

template <typename T>
void avg_pool_planes(T* out, const T* x, int64_t planes, PoolAxis rows, PoolAxis cols, AvgDivisor divisor) {
    const int64_t n = planes * rows.out * cols.out;
    if (n > 0) launch(avg_pool2d_kernel<T>, grid_for(n), kBlock, 0, nullptr, out, x, planes, rows, cols, divisor);
}

template <typename T>
void avg_pool_planes_backward(T* dx, const T* dy, int64_t planes, PoolAxis rows, PoolAxis cols, AvgDivisor divisor) {
    const int64_t n = planes * rows.in * cols.in;
    if (n > 0)
        launch(avg_pool2d_backward_kernel<T>, grid_for(n), kBlock, 0, nullptr, dx, dy, planes, rows, cols, divisor);
}

// ---------------------------------------------------------------------------------------------
// Max unpooling

// last[p][k] = max(last[p][k], i + 1) for every input position i with indices[p][i] = k
//   last: (planes, OHW), zeroed;  indices: (planes, HW)
__global__ void unpool_claim_kernel(unsigned long long* last, const int64_t* indices, int64_t planes, int64_t HW,
                                    int64_t OHW, unsigned long long* first_bad) {
    KG_GRID_STRIDE_LOOP(i, planes * HW) {
        const int64_t k = indices[i];
        if (k < 0 || k >= OHW) {
            report_bad(first_bad, i);
            continue;
        }
        atomicMax(last + i / HW * OHW + k, static_cast<unsigned long long>(i % HW) + 1ull);
    }
}

// out[p][k] = x[p][last[p][k] - 1], or 0 where nothing was claimed
//   out, last: (planes, OHW);  x: (planes, HW)
template <typename T>
__global__ void unpool_place_kernel(T* out, const unsigned long long* last, const T* x, int64_t planes, int64_t HW,
                                    int64_t OHW) {
    KG_GRID_STRIDE_LOOP(o, planes * OHW) {
        const unsigned long long l = last[o];
        out[o] = l != 0 ? x[o / OHW * HW + static_cast<int64_t>(l - 1)] : T(0);
    }
}

// dx, indices: (planes, HW);  dy: (planes, OHW)
template <typename T>
__global__ void max_unpool2d_backward_kernel(T* dx, const T* dy, const int64_t* indices, int64_t planes,
                                             int64_t HW, int64_t OHW, unsigned long long* first_bad) {
    KG_GRID_STRIDE_LOOP(i, planes * HW) {
        const int64_t k = indices[i];
        const bool inside = k >= 0 && k < OHW;
        if (!inside) report_bad(first_bad, i);
        dx[i] = inside ? dy[i / HW * OHW + k] : T(0);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Window geometry

int64_t pool_output_size(int64_t size, PoolWindow w, bool ceil_mode) {
    const int64_t span = w.dilation * (w.kernel - 1) + 1;  // input positions one window covers
    const int64_t room = size + 2 * w.pad - span;           // how far the windows can move
    int64_t out = floor_div(room + (ceil_mode ? w.stride - 1 : 0), w.stride) + 1;
    if (ceil_mode && (out - 1) * w.stride >= size + w.pad) --out;
    return out;
}

bool pool_windows_touch_input(int64_t size, int64_t out, PoolWindow w) {
    const PoolAxis axis = pooling_axis(size, out, w);
    for (int64_t o = 0; o < out; ++o)
        if (axis.window(o).count <= 0) return false;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Entry points

template <typename T>
void max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH,
                        int64_t OW, PoolWindow rows, PoolWindow cols) {
    max_pool_planes(out, indices, x, planes, pooling_axis(H, OH, rows), pooling_axis(W, OW, cols));
}

template <typename T>
void adaptive_max_pool2d_forward(T* out, int64_t* indices, const T* x, int64_t planes, int64_t H, int64_t W,
                                 int64_t OH, int64_t OW) {
    max_pool_planes(out, indices, x, planes, PoolAxis::adaptive(H, OH), PoolAxis::adaptive(W, OW));
}

template <typename T>
void max_pool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW, int64_t OHW,
                         unsigned long long* first_bad) {
    if (planes * HW == 0) return;
    KG_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<size_t>(planes * HW) * sizeof(T), nullptr));
    const int64_t n = planes * OHW;
    if (n > 0)
        launch(max_pool2d_backward_kernel<T>, grid_for(n), kBlock, 0, nullptr, dx, dy, indices, planes, HW, OHW,
               first_bad);
}

template <typename T>
void avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                        PoolWindow rows, PoolWindow cols, bool count_include_pad, int64_t divisor_override) {
    avg_pool_planes(out, x, planes, pooling_axis(H, OH, rows), pooling_axis(W, OW, cols),
                    AvgDivisor{count_include_pad, divisor_override});
}

template <typename T>
void avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         PoolWindow rows, PoolWindow cols, bool count_include_pad, int64_t divisor_override) {
    avg_pool_planes_backward(dx, dy, planes, pooling_axis(H, OH, rows), pooling_axis(W, OW, cols),
                             AvgDivisor{count_include_pad, divisor_override});
}

template <typename T>
void adaptive_avg_pool2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
    avg_pool_planes(out, x, planes, PoolAxis::adaptive(H, OH), PoolAxis::adaptive(W, OW), AvgDivisor{false, 0});
}

template <typename T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t OH,
                                  int64_t OW) {
    avg_pool_planes_backward(dx, dy, planes, PoolAxis::adaptive(H, OH), PoolAxis::adaptive(W, OW),
                             AvgDivisor{false, 0});
}

template <typename T>
void max_unpool2d_forward(T* out, unsigned long long* last, const T* x, const int64_t* indices, int64_t planes,
                          int64_t HW, int64_t OHW, unsigned long long* first_bad) {
    if (planes * OHW > 0)
        KG_CUDA_CHECK(cudaMemsetAsync(last, 0, static_cast<size_t>(planes * OHW) * sizeof(*last), nullptr));
    if (planes * HW > 0)
        launch(unpool_claim_kernel, grid_for(planes * HW), kBlock, 0, nullptr, last, indices, planes, HW, OHW,
               first_bad);
    if (planes * OHW > 0)
        launch(unpool_place_kernel<T>, grid_for(planes * OHW), kBlock, 0, nullptr, out, last, x, planes, HW, OHW);
}

template <typename T>
void max_unpool2d_backward(T* dx, const T* dy, const int64_t* indices, int64_t planes, int64_t HW, int64_t OHW,
                           unsigned long long* first_bad) {
    if (planes * HW > 0)
        launch(max_unpool2d_backward_kernel<T>, grid_for(planes * HW), kBlock, 0, nullptr, dx, dy, indices, planes,
               HW, OHW, first_bad);
}

// ---------------------------------------------------------------------------------------------
// float32 and float64 instances

#define KG_CUDA_POOL2D_INSTANCES(T)                                                                            \
    template void max_pool2d_forward(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t,       \
                                     PoolWindow, PoolWindow);                                                   \
    template void adaptive_max_pool2d_forward(T*, int64_t*, const T*, int64_t, int64_t, int64_t, int64_t,       \
                                              int64_t);                                                         \
    template void max_pool2d_backward(T*, const T*, const int64_t*, int64_t, int64_t, int64_t,                  \
                                      unsigned long long*);                                                     \
    template void avg_pool2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolWindow,     \
                                     PoolWindow, bool, int64_t);                                                \
    template void avg_pool2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t, PoolWindow,    \
                                      PoolWindow, bool, int64_t);                                               \
    template void adaptive_avg_pool2d_forward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);       \
    template void adaptive_avg_pool2d_backward(T*, const T*, int64_t, int64_t, int64_t, int64_t, int64_t);      \
    template void max_unpool2d_forward(T*, unsigned long long*, const T*, const int64_t*, int64_t, int64_t,     \
                                       int64_t, unsigned long long*);                                           \
    template void max_unpool2d_backward(T*, const T*, const int64_t*, int64_t, int64_t, int64_t,                \
                                        unsigned long long*);

KG_CUDA_POOL2D_INSTANCES(float)
KG_CUDA_POOL2D_INSTANCES(double)

}  // namespace cuda
}  // namespace kg
