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

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Batch norm walks

// fn(t, q, c, count) for runs of consecutive segments q .. q + count - 1 (one sample n, channels
// c .. c + count - 1, segment q = n C + c) covering the N C segments of an (N, C, L) array in
// memory order; the segments are split evenly over nt threads (t: the thread running fn).
template <typename Fn>
void for_each_run(int nt, int64_t N, int64_t C, Fn fn) {
    if (N * C == 0) return;
#pragma omp parallel num_threads(nt)
    {
        const int t = thread_id();
        const int64_t q1 = N * C * (t + 1) / nt;
        for (int64_t q = N * C * t / nt; q < q1;) {
            const int64_t c = q % C, count = std::min(C - c, q1 - q);
            fn(t, q, c, count);
            q += count;
        }
    }
}

// s1[c], s2[c]: sums over the segments of channel c of what seg(a1, a2, q, c, count) adds into the
// channel-indexed partial sums a1, a2 for a run (s2 may be null: not wanted).
//   s1, s2: (C)
template <typename T, typename Seg>
void channel_sums(T* s1, T* s2, int64_t N, int64_t C, int64_t L, Seg seg) {
    const int nt = memory_bound_threads(N * C * L);
    std::vector<T> part(static_cast<size_t>(nt) * 2 * C, T(0));  // thread t: a1 (C), a2 (C)
    for_each_run(nt, N, C, [&](int t, int64_t q, int64_t c, int64_t count) {
        T* a1 = part.data() + static_cast<size_t>(t) * 2 * C;
        seg(a1, a1 + C, q, c, count);
    });
    for (int64_t c = 0; c < C; ++c) {
        T sum1 = 0, sum2 = 0;
        for (int t = 0; t < nt; ++t) sum1 += part[t * 2 * C + c], sum2 += part[t * 2 * C + C + c];
        s1[c] = sum1;
        if (s2) s2[c] = sum2;
    }
}

// For the count segments of a run (k < count, channel c + k, L values each; a0, b0 per channel or
// null for 0), the centred sums of vec.h:
//   acc[c + k] += sum_l (a[q + k, l] - a0[c + k])                         (b null)
//   acc[c + k] += sum_l (a[q + k, l] - a0[c + k]) (b[q + k, l] - b0[c + k])
// L == 1 ((N, C) input): the run is count contiguous values; the loop over them is vectorised by
// the compiler (a call per value would cost more than the value).
template <typename T>
void add_segment_sums(T* acc, const T* a, const T* a0, const T* b, const T* b0, int64_t q, int64_t c,
                      int64_t count, int64_t L, const VecOps<T>& ops) {
    const auto shift = [](const T* s, int64_t ch) { return s ? s[ch] : T(0); };
    if (L > 1) {
        for (int64_t k = 0; k < count; ++k) {
            const T* as = a + (q + k) * L;  // (L)
            acc[c + k] += b ? ops.dot(as, shift(a0, c + k), b + (q + k) * L, shift(b0, c + k), L)
                            : ops.sum(as, shift(a0, c + k), L);
        }
    } else if (b) {
        for (int64_t k = 0; k < count; ++k) acc[c + k] += (a[q + k] - shift(a0, c + k)) * (b[q + k] - shift(b0, c + k));
    } else {
        for (int64_t k = 0; k < count; ++k) acc[c + k] += a[q + k] - shift(a0, c + k);
    }
}

// fn(i, c + k) for each value i of the count segments of a run (channel c + k); for L == 1 a flat
// loop over the run's contiguous values, which the compiler vectorises.
template <typename Fn>
void for_each_value(int64_t q, int64_t c, int64_t count, int64_t L, Fn fn) {
    if (L == 1) {
        for (int64_t k = 0; k < count; ++k) fn(q + k, c + k);
    } else {
        for (int64_t k = 0; k < count; ++k)
            for (int64_t i = (q + k) * L; i < (q + k + 1) * L; ++i) fn(i, c + k);
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
    channel_sums(mean, static_cast<T*>(nullptr), N, C, L, [&](T* a1, T*, int64_t q, int64_t c, int64_t count) {
        add_segment_sums(a1, x, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                         static_cast<const T*>(nullptr), q, c, count, L, ops);
    });
    for (int64_t c = 0; c < C; ++c) mean[c] /= M;
    channel_sums(var, static_cast<T*>(nullptr), N, C, L, [&](T* a1, T*, int64_t q, int64_t c, int64_t count) {
        add_segment_sums(a1, x, mean, x, mean, q, c, count, L, ops);
    });
    for (int64_t c = 0; c < C; ++c) var[c] /= M;
}

template <typename T>
void batch_norm_forward(T* y, const T* x, const T* mean, const T* var, const T* w, const T* b,
                        int64_t N, int64_t C, int64_t L, T eps) {
    std::vector<T> scale(C), shift(C);  // y = (x - mean) scale + shift,  scale = w rstd
    for (int64_t c = 0; c < C; ++c) scale[c] = (w ? w[c] : T(1)) / std::sqrt(var[c] + eps), shift[c] = b ? b[c] : T(0);
    for_each_run(memory_bound_threads(N * C * L), N, C, [&](int, int64_t q, int64_t c, int64_t count) {
        for_each_value(q, c, count, L, [&](int64_t i, int64_t ch) { y[i] = (x[i] - mean[ch]) * scale[ch] + shift[ch]; });
    });
}

template <typename T>
void batch_norm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* mean, const T* var,
                         const T* w, int64_t N, int64_t C, int64_t L, T eps, bool training) {
    const VecOps<T>& ops = vec_ops<T>();
    // db = sum dy,  dw = rstd sum dy (x - mean)
    channel_sums(db, dw, N, C, L, [&](T* sum_dy, T* sum_dy_xmu, int64_t q, int64_t c, int64_t count) {
        add_segment_sums(sum_dy, dy, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                         static_cast<const T*>(nullptr), q, c, count, L, ops);
        add_segment_sums(sum_dy_xmu, dy, static_cast<const T*>(nullptr), x, mean, q, c, count, L, ops);
    });
    // dx = k (dy - mean_dy) - (x - mean) h  (training),  dx = k dy  (eval),
    // k = w rstd,  mean_dy = db / M,  h = k rstd dw / M
    std::vector<T> k(C), mean_dy(C), h(C);
    const T inv_M = 1 / T(N * L);
    for (int64_t c = 0; c < C; ++c) {
        const T rstd = 1 / std::sqrt(var[c] + eps);
        dw[c] *= rstd;
        k[c] = (w ? w[c] : T(1)) * rstd;
        mean_dy[c] = db[c] * inv_M;
        h[c] = k[c] * rstd * dw[c] * inv_M;
    }
    for_each_run(memory_bound_threads(N * C * L), N, C, [&](int, int64_t q, int64_t c, int64_t count) {
        if (training) {
            for_each_value(q, c, count, L, [&](int64_t i, int64_t ch) {
                dx[i] = k[ch] * (dy[i] - mean_dy[ch]) - (x[i] - mean[ch]) * h[ch];
            });
        } else {
            for_each_value(q, c, count, L, [&](int64_t i, int64_t ch) { dx[i] = k[ch] * dy[i]; });
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
