// norm.cpp: layer norm and batch norm (formulas in norm.h).
//
// Layer norm: threads take whole rows; row statistics and the backward's row sums are vec.h's
// centred sums (a variance is never sum(x^2) - D mean^2). dw and db are sums over rows: each
// thread adds its rows into private D-vectors, which are added together at the end, so the
// backward reads every row once.
//
// Batch norm: the (n, c) segments of L contiguous values are walked in memory order, split evenly
// over the threads whatever N, C and L are; per-channel sums are per-thread partial C-vectors
// added at the end. The statistics take two passes (the means, then the centred squares), which
// stays accurate however large the mean is compared with the spread.
#include "cpu/norm.h"

#include <cmath>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Batch norm walks

// fn(t, q, c) for each (n, c) segment q = n C + c of an (N, C, L) array, in memory order; the
// N C segments are split evenly over nt threads (t: the thread running fn).
template <typename Fn>
void for_each_segment(int nt, int64_t N, int64_t C, Fn fn) {
    if (N * C == 0) return;
#pragma omp parallel num_threads(nt)
    {
        const int t = thread_id();
        const int64_t q0 = N * C * t / nt, q1 = N * C * (t + 1) / nt;
        int64_t c = q0 % C;
        for (int64_t q = q0; q < q1; ++q) {
            fn(t, q, c);
            if (++c == C) c = 0;
        }
    }
}

// s1[c], s2[c] = the sums over the segments of channel c of the terms seg(q, c, a1, a2) adds into
// a1 and a2 (s2 may be null: not wanted).
//   s1, s2: (C)
template <typename T, typename Seg>
void channel_sums(T* s1, T* s2, int64_t N, int64_t C, int64_t L, Seg seg) {
    const int nt = memory_bound_threads(N * C * L);
    std::vector<T> part(static_cast<size_t>(nt) * 2 * C, T(0));  // thread t: a1 (C), a2 (C)
    for_each_segment(nt, N, C, [&](int t, int64_t q, int64_t c) {
        T* p = part.data() + static_cast<size_t>(t) * 2 * C;
        seg(q, c, p[c], p[C + c]);
    });
    for (int64_t c = 0; c < C; ++c) {
        T a1 = 0, a2 = 0;
        for (int t = 0; t < nt; ++t) a1 += part[t * 2 * C + c], a2 += part[t * 2 * C + C + c];
        s1[c] = a1;
        if (s2) s2[c] = a2;
    }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// layer norm

template <typename T>
void layer_norm_forward(T* y, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t rows,
                        int64_t D, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
#pragma omp parallel for num_threads(memory_bound_threads(rows * D)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * D;  // (D)
        T* yr = y + r * D;
        const T mu = ops.sum(xr, T(0), D) / T(D);
        const T rs = 1 / std::sqrt(ops.dot(xr, mu, xr, mu, D) / T(D) + eps);
        mean[r] = mu;
        rstd[r] = rs;
        for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] - mu) * rs * (w ? w[i] : T(1)) + (b ? b[i] : T(0));
    }
}

template <typename T>
void layer_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* rstd,
                         const T* w, int64_t rows, int64_t D) {
    const VecOps<T>& ops = vec_ops<T>();
    const int nt = memory_bound_threads(rows * D);
    const T inv_D = 1 / T(D);
    std::vector<T> scratch(static_cast<size_t>(nt) * 3 * D, T(0));  // thread t: xhat, dw, db (D each)
#pragma omp parallel num_threads(nt)
    {
        T* xhat = scratch.data() + static_cast<size_t>(thread_id()) * 3 * D;
        T* dw_t = xhat + D;
        T* db_t = xhat + 2 * D;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const T* xr = x + r * D;  // (D)
            const T* dyr = dy + r * D;
            T* dxr = dx + r * D;
            const T mu = mean[r], rs = rstd[r];
            for (int64_t i = 0; i < D; ++i) xhat[i] = (xr[i] - mu) * rs;
            if (dw)
                for (int64_t i = 0; i < D; ++i) dw_t[i] += dyr[i] * xhat[i];
            if (db)
                for (int64_t i = 0; i < D; ++i) db_t[i] += dyr[i];
            for (int64_t i = 0; i < D; ++i) dxr[i] = dyr[i] * (w ? w[i] : T(1));  // g, kept in dx
            const T sum_g = ops.sum(dxr, T(0), D), sum_g_xhat = ops.dot(dxr, T(0), xhat, T(0), D);
            for (int64_t i = 0; i < D; ++i) dxr[i] = rs * (dxr[i] - (sum_g + xhat[i] * sum_g_xhat) * inv_D);
        }
    }
    for (int64_t i = 0; i < D; ++i) {
        T sw = 0, sb = 0;
        for (int t = 0; t < nt; ++t) sw += scratch[t * 3 * D + D + i], sb += scratch[t * 3 * D + 2 * D + i];
        if (dw) dw[i] = sw;
        if (db) db[i] = sb;
    }
}

// ----------------------------------------------------------------------------------------------
// batch norm

template <typename T>
void batch_norm_stats(T* mean, T* var, const T* x, int64_t N, int64_t C, int64_t L) {
    const VecOps<T>& ops = vec_ops<T>();
    const T M = T(N * L);
    channel_sums(mean, static_cast<T*>(nullptr), N, C, L,
                 [&](int64_t q, int64_t, T& a, T&) { a += ops.sum(x + q * L, T(0), L); });
    for (int64_t c = 0; c < C; ++c) mean[c] /= M;
    channel_sums(var, static_cast<T*>(nullptr), N, C, L, [&](int64_t q, int64_t c, T& a, T&) {
        a += ops.dot(x + q * L, mean[c], x + q * L, mean[c], L);
    });
    for (int64_t c = 0; c < C; ++c) var[c] /= M;
}

template <typename T>
void batch_norm_forward(T* y, const T* x, const T* mean, const T* var, const T* w, const T* b,
                        int64_t N, int64_t C, int64_t L, T eps) {
    std::vector<T> scale(C);  // w rstd
    for (int64_t c = 0; c < C; ++c) scale[c] = (w ? w[c] : T(1)) / std::sqrt(var[c] + eps);
    for_each_segment(memory_bound_threads(N * C * L), N, C, [&](int, int64_t q, int64_t c) {
        const T* xs = x + q * L;  // (L)
        T* ys = y + q * L;
        const T mu = mean[c], k = scale[c], shift = b ? b[c] : T(0);
        for (int64_t l = 0; l < L; ++l) ys[l] = (xs[l] - mu) * k + shift;
    });
}

template <typename T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* var,
                         const T* w, int64_t N, int64_t C, int64_t L, T eps, bool training) {
    const VecOps<T>& ops = vec_ops<T>();
    // db = sum dy,  dw = rstd sum dy (x - mean)
    channel_sums(db, dw, N, C, L, [&](int64_t q, int64_t c, T& sum_dy, T& sum_dy_xmu) {
        sum_dy += ops.sum(dy + q * L, T(0), L);
        sum_dy_xmu += ops.dot(dy + q * L, T(0), x + q * L, mean[c], L);
    });
    std::vector<T> rstd(C);
    for (int64_t c = 0; c < C; ++c) rstd[c] = 1 / std::sqrt(var[c] + eps), dw[c] *= rstd[c];
    const T inv_M = 1 / T(N * L);
    for_each_segment(memory_bound_threads(N * C * L), N, C, [&](int, int64_t q, int64_t c) {
        const T* xs = x + q * L;  // (L)
        const T* dys = dy + q * L;
        T* dxs = dx + q * L;
        const T k = (w ? w[c] : T(1)) * rstd[c];
        if (training) {
            const T mu = mean[c], rs = rstd[c], mean_dy = db[c] * inv_M, mean_dy_xhat = dw[c] * inv_M;
            for (int64_t l = 0; l < L; ++l) dxs[l] = k * (dys[l] - mean_dy - (xs[l] - mu) * rs * mean_dy_xhat);
        } else {
            for (int64_t l = 0; l < L; ++l) dxs[l] = k * dys[l];
        }
    });
}

// ----------------------------------------------------------------------------------------------
// Instantiations: float and double

#define KG_NORM_INSTANTIATE(T)                                                                         \
    template void layer_norm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, T); \
    template void layer_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*,  \
                                         int64_t, int64_t);                                            \
    template void batch_norm_stats<T>(T*, T*, const T*, int64_t, int64_t, int64_t);                    \
    template void batch_norm_forward<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t, \
                                        int64_t, int64_t, T);                                          \
    template void batch_norm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, \
                                         int64_t, int64_t, int64_t, T, bool);
KG_NORM_INSTANTIATE(float)
KG_NORM_INSTANTIATE(double)
#undef KG_NORM_INSTANTIATE

}  // namespace cpu
}  // namespace kg
