// norm.cu: layer norm and batch norm on the device (formulas in norm.h; the CPU version,
// csrc/cpu/norm.cpp, is the reference the tests hold these to).
//
// Layer norm: rows are lines of block_reduce.cuh's walk (a thread per row of up to 16 values, a
// warp per row of up to 1024, a block per longer row). Forward: the mean, then the centred
// squares (two passes, so a mean far from 0 costs no accuracy), then y. Backward: sum(g) and
// sum(g xhat) in one reduction of pairs, then dx. dw and db are sums down the columns: the lines
// of the (1, rows, D) view, a thread per column walking the rows (coalesced across the threads;
// no atomics, so the sums are the same in every thread order; few columns of many rows get few
// threads: correct, not fast).
//
// Batch norm: a block per channel reduces its M = N L values (segments of L contiguous values,
// C L apart): the mean, then the centred squares (forward), or sum(dy) and sum(dy (x - mean))
// together (backward). y and dx are then elementwise grid-stride kernels over (N, C, L).
#include "cuda/norm.h"

#include <cmath>
#include <cstdint>

#include "cuda/block_reduce.cuh"
#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {
namespace {

template <typename T>
__device__ inline T value_or(const T* a, int64_t i, T otherwise) {
    return a ? a[i] : otherwise;
}

// ---------------------------------------------------------------------------------------------
// layer norm

template <typename T>
struct LayerNormForward {
    T* y;         // (rows, D)
    T* mean;      // (rows)
    T* rstd;      // (rows)
    const T* x;   // (rows, D)
    const T* w;   // (D) or null
    const T* b;   // (D) or null
    T eps;

    // mean = sum(x) / D;  rstd = 1 / sqrt(sum((x - mean)^2) / D + eps);  y = (x - mean) rstd w + b
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t D, int64_t step, int64_t r) const {
        const T* xr = x + base;
        T* yr = y + base;
        T s = 0;
        KG_GROUP_LOOP(i, g, D) s += xr[i * step];
        const T mu = g.sum(s) / T(D);
        T q = 0;
        KG_GROUP_LOOP(i, g, D) {
            const T d = xr[i * step] - mu;
            q += d * d;
        }
        const T rs = T(1) / sqrt(g.sum(q) / T(D) + eps);
        if (g.lane() == 0) mean[r] = mu, rstd[r] = rs;
        KG_GROUP_LOOP(i, g, D) yr[i * step] = (xr[i * step] - mu) * rs * value_or(w, i, T(1)) + value_or(b, i, T(0));
    }
};

template <typename T>
struct LayerNormBackward {
    T* dx;           // (rows, D)
    const T* dy;     // (rows, D)
    const T* x;      // (rows, D)
    const T* mean;   // (rows)
    const T* rstd;   // (rows)
    const T* w;      // (D) or null

    // dx = rstd (g - (sum(g) + xhat sum(g xhat)) / D),  g = dy w,  xhat = (x - mean) rstd
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t D, int64_t step, int64_t r) const {
        const T *xr = x + base, *dyr = dy + base;
        T* dxr = dx + base;
        const T mu = mean[r], rs = rstd[r], inv_D = T(1) / T(D);
        Pair<T> sums{0, 0};  // (sum g, sum g xhat)
        KG_GROUP_LOOP(i, g, D) {
            const T gi = dyr[i * step] * value_or(w, i, T(1));
            sums.a += gi;
            sums.b += gi * ((xr[i * step] - mu) * rs);
        }
        sums = g.sum(sums);
        KG_GROUP_LOOP(i, g, D) {
            const T gi = dyr[i * step] * value_or(w, i, T(1)), xhat = (xr[i * step] - mu) * rs;
            dxr[i * step] = rs * (gi - (sums.a + xhat * sums.b) * inv_D);
        }
    }
};

template <typename T>
struct LayerNormParamGrads {
    T* dw;          // (D) or null
    T* db;          // (D) or null
    const T* dy;    // (rows, D)
    const T* x;     // (rows, D)
    const T* mean;  // (rows)
    const T* rstd;  // (rows)

    // column i (line i of the (1, rows, D) view): dw[i] = sum_r dy xhat,  db[i] = sum_r dy
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t rows, int64_t step, int64_t i) const {
        Pair<T> sums{0, 0};
        KG_GROUP_LOOP(r, g, rows) {
            const int64_t at = base + r * step;
            sums.a += dy[at] * ((x[at] - mean[r]) * rstd[r]);
            sums.b += dy[at];
        }
        sums = g.sum(sums);
        if (g.lane() == 0) {
            if (dw) dw[i] = sums.a;
            if (db) db[i] = sums.b;
        }
    }
};

// ---------------------------------------------------------------------------------------------
// batch norm

// The element offset of the k-th of channel c's N L values in (N, C, L)
__device__ inline int64_t channel_offset(int64_t k, int64_t c, int64_t C, int64_t L) {
    const int64_t n = k / L;
    return (n * C + c) * L + (k - n * L);
}

// mean[c] = sum x / M,  var[c] = sum (x - mean)^2 / M:  block c, c + gridDim.x, ...
//   mean, var: (C);  x: (N, C, L)
template <typename T>
__global__ void __launch_bounds__(kMaxLineThreads)
    batch_norm_stats_kernel(T* mean, T* var, const T* x, int64_t N, int64_t C, int64_t L) {
    const BlockGroup g{};
    const int64_t M = N * L;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        T s = 0;
        KG_GROUP_LOOP(k, g, M) s += x[channel_offset(k, c, C, L)];
        const T mu = g.sum(s) / T(M);
        T q = 0;
        KG_GROUP_LOOP(k, g, M) {
            const T d = x[channel_offset(k, c, C, L)] - mu;
            q += d * d;
        }
        q = g.sum(q);
        if (threadIdx.x == 0) mean[c] = mu, var[c] = q / T(M);
    }
}

// db[c] = sum dy,  dw[c] = rstd sum dy (x - mean)
//   dw, db: (C);  dy, x: (N, C, L);  mean, var: (C)
template <typename T>
__global__ void __launch_bounds__(kMaxLineThreads)
    batch_norm_sums_kernel(T* dw, T* db, const T* dy, const T* x, const T* mean, const T* var, int64_t N, int64_t C,
                           int64_t L, T eps) {
    const BlockGroup g{};
    const int64_t M = N * L;
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        const T mu = mean[c];
        Pair<T> sums{0, 0};
        KG_GROUP_LOOP(k, g, M) {
            const int64_t i = channel_offset(k, c, C, L);
            sums.a += dy[i];
            sums.b += dy[i] * (x[i] - mu);
        }
        sums = g.sum(sums);
        if (threadIdx.x == 0) db[c] = sums.a, dw[c] = sums.b * (T(1) / sqrt(var[c] + eps));
    }
}

// y = (x - mean) scale + b,  scale = w / sqrt(var + eps)
//   y, x: (N, C, L) (n values);  mean, var: (C);  w, b: (C) or null
template <typename T>
__global__ void batch_norm_forward_kernel(T* y, const T* x, const T* mean, const T* var, const T* w, const T* b,
                                          int64_t C, int64_t L, int64_t n, T eps) {
    KG_GRID_STRIDE_LOOP(i, n) {
        const int64_t c = i / L % C;
        const T scale = value_or(w, c, T(1)) / sqrt(var[c] + eps);
        y[i] = (x[i] - mean[c]) * scale + value_or(b, c, T(0));
    }
}

// dx = k (dy - db / M) - (x - mean) h (training),  dx = k dy (eval);  k = w rstd,  h = k rstd dw / M
//   dx, dy, x: (N, C, L) (n values);  mean, var, dw, db: (C);  w: (C) or null
template <typename T>
__global__ void batch_norm_dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* var, const T* w,
                                     const T* dw, const T* db, int64_t C, int64_t L, int64_t n, T eps, T inv_M,
                                     bool training) {
    KG_GRID_STRIDE_LOOP(i, n) {
        const int64_t c = i / L % C;
        const T rstd = T(1) / sqrt(var[c] + eps), k = value_or(w, c, T(1)) * rstd;
        dx[i] = training ? k * (dy[i] - db[c] * inv_M) - (x[i] - mean[c]) * (k * rstd * dw[c] * inv_M) : k * dy[i];
    }
}

unsigned channel_blocks(int64_t C) { return static_cast<unsigned>(C < kMaxGrid ? C : kMaxGrid); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launches

template <typename T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t D, T eps) {
    launch_lines(LayerNormForward<T>{y, mean, rstd, x, w, b, eps}, rows, D, 1);
}

template <typename T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd, const T* w,
                         int64_t rows, int64_t D) {
    launch_lines(LayerNormBackward<T>{dx, dy, x, mean, rstd, w}, rows, D, 1);
    if (dw || db) launch_lines(LayerNormParamGrads<T>{dw, db, dy, x, mean, rstd}, 1, rows, D);
}

template <typename T>
void batch_norm_stats(T* mean, T* var, const T* x, int64_t N, int64_t C, int64_t L) {
    if (C == 0) return;
    launch(batch_norm_stats_kernel<T>, channel_blocks(C), block_threads(N * L), 0, nullptr, mean, var, x, N, C, L);
}

template <typename T>
void batch_norm_forward(T* y, const T* x, const T* mean, const T* var, const T* w, const T* b, int64_t N, int64_t C,
                        int64_t L, T eps) {
    const int64_t n = N * C * L;
    if (n == 0) return;
    launch(batch_norm_forward_kernel<T>, grid_for(n), kBlock, 0, nullptr, y, x, mean, var, w, b, C, L, n, eps);
}

template <typename T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* var, const T* w,
                         int64_t N, int64_t C, int64_t L, T eps, bool training) {
    if (C == 0) return;
    launch(batch_norm_sums_kernel<T>, channel_blocks(C), block_threads(N * L), 0, nullptr, dw, db, dy, x, mean, var,
           N, C, L, eps);
    const int64_t n = N * C * L;
    if (n == 0) return;
    launch(batch_norm_dx_kernel<T>, grid_for(n), kBlock, 0, nullptr, dx, dy, x, mean, var, w,
           static_cast<const T*>(dw), static_cast<const T*>(db), C, L, n, eps, T(1) / T(N * L), training);
}

// ---------------------------------------------------------------------------------------------
// Instantiations: float and double

#define KG_NORM_INSTANTIATE(T)                                                                                \
    template void layer_norm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, T);      \
    template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t, \
                                         int64_t);                                                            \
    template void batch_norm_stats<T>(T*, T*, const T*, int64_t, int64_t, int64_t);                          \
    template void batch_norm_forward<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t, \
                                        int64_t, T);                                                          \
    template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t, \
                                         int64_t, int64_t, T, bool);
KG_NORM_INSTANTIATE(float)
KG_NORM_INSTANTIATE(double)
#undef KG_NORM_INSTANTIATE

}  // namespace cuda
}  // namespace kg
