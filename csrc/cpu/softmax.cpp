// softmax.cpp: softmax, log-softmax and cross-entropy along one dimension (formulas in softmax.h).
//
// Every op here walks an (outer, dim, inner) array in one of two ways:
//   - inner == 1: the `outer` rows are contiguous; the row primitives of vec.h (max, exp_sum,
//     sum, dot) do the arithmetic and a thread takes whole rows;
//   - inner > 1: blocks of up to kColumns positions side by side, whose values at one index d of
//     `dim` are contiguous (x[d * inner + j]). Per-position running values (max, sum) live in small
//     arrays, updated one d at a time by plain loops over the block, and exp of a block row goes
//     through exp_sum. No dimension is moved or copied.
// Whether the primitives are the generic or the AVX2 ones is decided inside vec_ops().
#include "cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// Positions walked side by side when inner > 1: a block row of 64 floats is 4 cache lines.
constexpr int64_t kColumns = 64;

// ----------------------------------------------------------------------------------------------
// The two walks

// row(r) for each row r of (outer, dim) when inner == 1; else cols(o, j0, w) for each block of
// w <= kColumns positions [j0, j0 + w) at outer index o. Threads share rows / blocks evenly.
template <typename Row, typename Cols>
void for_each_line(int64_t outer, int64_t dim, int64_t inner, Row row, Cols cols) {
    const int nt = memory_bound_threads(outer * dim * inner);
    if (inner == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t r = 0; r < outer; ++r) row(r);
    } else {
        const int64_t blocks = (inner + kColumns - 1) / kColumns;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t b = 0; b < outer * blocks; ++b) {
            const int64_t o = b / blocks, j0 = b % blocks * kColumns;
            cols(o, j0, std::min(kColumns, inner - j0));
        }
    }
}

// For w positions side by side, x[d * inner + j] (d < dim, j < w):
//   m[j] = max_d x[d, j],   s[j] = sum_d exp(x[d, j] - m[j]),
// leaving exp(x[d, j] - m[j]) in e[d * inner + j] (e: laid out like x) unless e is null.
//   m, s: (w);  e, x: (dim, inner), columns [0, w) used
template <typename T>
void column_max_expsum(T* m, T* s, T* e, const T* x, int64_t dim, int64_t inner, int64_t w,
                       const VecOps<T>& ops) {
    T scratch[kColumns];
    std::fill(m, m + w, -std::numeric_limits<T>::infinity());
    std::fill(s, s + w, T(0));
    for (int64_t d = 0; d < dim; ++d) {
        const T* xd = x + d * inner;
        for (int64_t j = 0; j < w; ++j) m[j] = xd[j] > m[j] ? xd[j] : m[j];
    }
    for (int64_t d = 0; d < dim; ++d) {
        const T* xd = x + d * inner;
        T* ed = e ? e + d * inner : scratch;
        for (int64_t j = 0; j < w; ++j) ed[j] = xd[j] - m[j];
        ops.exp_sum(ed, ed, T(0), w);
        for (int64_t j = 0; j < w; ++j) s[j] += ed[j];
    }
}

// ----------------------------------------------------------------------------------------------
// cross-entropy helpers

// (1 - eps) hard + (eps / C) smooth: the label-smoothing mix of a target term and its uniform
// counterpart; exactly `hard` when eps == 0 (even where smooth is inf).
template <typename T>
T smoothed(T hard, T smooth, T eps, int64_t C) {
    return eps > 0 ? (1 - eps) * hard + eps / T(C) * smooth : hard;
}

// sum_k w[k] (C when there are no weights)
template <typename T>
T weight_sum(const T* weight, int64_t C, const VecOps<T>& ops) {
    return weight ? ops.sum(weight, T(0), C) : T(C);
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// softmax / log_softmax

template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t dim, int64_t inner, bool log) {
    const VecOps<T>& ops = vec_ops<T>();
    for_each_line(
        outer, dim, inner,
        [&](int64_t r) {
            const T* xr = x + r * dim;  // (dim)
            T* yr = y + r * dim;        // (dim)
            const T m = ops.max(xr, dim);
            const T s = ops.exp_sum(log ? nullptr : yr, xr, m, dim);  // softmax: yr = exp(x - m)
            if (log) {
                const T log_s = std::log(s);
                for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) - log_s;
            } else {
                const T inv_s = 1 / s;
                for (int64_t i = 0; i < dim; ++i) yr[i] *= inv_s;
            }
        },
        [&](int64_t o, int64_t j0, int64_t w) {
            const T* xo = x + o * dim * inner + j0;  // (dim, inner), columns [0, w)
            T* yo = y + o * dim * inner + j0;
            T m[kColumns], s[kColumns];
            column_max_expsum(m, s, log ? nullptr : yo, xo, dim, inner, w, ops);
            if (log) {
                for (int64_t j = 0; j < w; ++j) s[j] = std::log(s[j]);
                for (int64_t d = 0; d < dim; ++d)
                    for (int64_t j = 0; j < w; ++j) yo[d * inner + j] = (xo[d * inner + j] - m[j]) - s[j];
            } else {
                for (int64_t j = 0; j < w; ++j) s[j] = 1 / s[j];
                for (int64_t d = 0; d < dim; ++d)
                    for (int64_t j = 0; j < w; ++j) yo[d * inner + j] *= s[j];
            }
        });
}

template <typename T>
void softmax_backward(T* dx, const T* y, const T* dy, int64_t outer, int64_t dim, int64_t inner,
                           bool log) {
    const VecOps<T>& ops = vec_ops<T>();
    for_each_line(
        outer, dim, inner,
        [&](int64_t r) {
            const T* yr = y + r * dim;  // (dim)
            const T* dyr = dy + r * dim;
            T* dxr = dx + r * dim;
            if (log) {  // dx = dy - exp(y) sum(dy)
                const T s = ops.sum(dyr, T(0), dim);
                ops.exp_sum(dxr, yr, T(0), dim);
                for (int64_t i = 0; i < dim; ++i) dxr[i] = dyr[i] - dxr[i] * s;
            } else {  // dx = y (dy - sum(dy y))
                const T s = ops.dot(dyr, T(0), yr, T(0), dim);
                for (int64_t i = 0; i < dim; ++i) dxr[i] = yr[i] * (dyr[i] - s);
            }
        },
        [&](int64_t o, int64_t j0, int64_t w) {
            const int64_t base = o * dim * inner + j0;  // (dim, inner), columns [0, w)
            T s[kColumns] = {};
            for (int64_t d = 0; d < dim; ++d) {
                const T* yd = y + base + d * inner;
                const T* dyd = dy + base + d * inner;
                for (int64_t j = 0; j < w; ++j) s[j] += log ? dyd[j] : dyd[j] * yd[j];
            }
            for (int64_t d = 0; d < dim; ++d) {
                const T* yd = y + base + d * inner;
                const T* dyd = dy + base + d * inner;
                T* dxd = dx + base + d * inner;
                if (log) {
                    ops.exp_sum(dxd, yd, T(0), w);
                    for (int64_t j = 0; j < w; ++j) dxd[j] = dyd[j] - dxd[j] * s[j];
                } else {
                    for (int64_t j = 0; j < w; ++j) dxd[j] = yd[j] * (dyd[j] - s[j]);
                }
            }
        });
}

// ----------------------------------------------------------------------------------------------
// cross-entropy

template <typename T>
void cross_entropy_forward(T* loss, T* lse, const T* x, const int64_t* target, const T* weight,
                                int64_t N, int64_t C, int64_t D, int64_t ignore_index, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    for_each_line(
        N, C, D,
        [&](int64_t n) {
            const T* xr = x + n * C;  // (C)
            const T m = ops.max(xr, C), log_s = std::log(ops.exp_sum(nullptr, xr, m, C));
            lse[n] = m + log_s;
            const int64_t t = target[n];
            if (t == ignore_index) {
                loss[n] = 0;
                return;
            }
            // lse - x[t] = (m - x[t]) + log s;   smooth = sum_c w[c] (lse - x[c])
            const T hard = (weight ? weight[t] : T(1)) * ((m - xr[t]) + log_s);
            const T smooth = eps > 0 ? -(weight ? ops.dot(weight, T(0), xr, lse[n], C) : ops.sum(xr, lse[n], C)) : T(0);
            loss[n] = smoothed(hard, smooth, eps, C);
        },
        [&](int64_t n, int64_t j0, int64_t w) {
            const T* xo = x + n * C * D + j0;  // (C, D), columns [0, w)
            T m[kColumns], log_s[kColumns], smooth[kColumns] = {};
            column_max_expsum(m, log_s, static_cast<T*>(nullptr), xo, C, D, w, ops);
            T* L = lse + n * D + j0;  // (w)
            for (int64_t j = 0; j < w; ++j) log_s[j] = std::log(log_s[j]), L[j] = m[j] + log_s[j];
            for (int64_t c = 0; c < C; ++c) {
                const T wc = weight ? weight[c] : T(1);
                for (int64_t j = 0; j < w; ++j) smooth[j] += wc * (L[j] - xo[c * D + j]);
            }
            for (int64_t j = 0; j < w; ++j) {
                const int64_t t = target[n * D + j0 + j];
                const T hard = t == ignore_index ? T(0) : (weight ? weight[t] : T(1)) * ((m[j] - xo[t * D + j]) + log_s[j]);
                loss[n * D + j0 + j] = t == ignore_index ? T(0) : smoothed(hard, smooth[j], eps, C);
            }
        });
}

template <typename T>
void cross_entropy_backward(T* dx, const T* dloss, const T* x, const T* lse, const int64_t* target,
                                 const T* weight, int64_t N, int64_t C, int64_t D, int64_t ignore_index,
                                 T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    const T W = weight_sum(weight, C, ops);
    // dx[c] = a p[c] - b w[c] - [c == t] g (1 - eps) w[t],  a = g A,  b = g eps / C
    for_each_line(
        N, C, D,
        [&](int64_t n) {
            const T* xr = x + n * C;  // (C)
            T* dxr = dx + n * C;
            const int64_t t = target[n];
            if (t == ignore_index) {
                std::fill(dxr, dxr + C, T(0));
                return;
            }
            const T g = dloss[n], w_t = weight ? weight[t] : T(1);
            const T a = g * smoothed(w_t, W, eps, C), b = g * eps / T(C);
            ops.exp_sum(dxr, xr, lse[n], C);  // p
            for (int64_t c = 0; c < C; ++c) dxr[c] = a * dxr[c] - b * (weight ? weight[c] : T(1));
            dxr[t] -= g * (1 - eps) * w_t;
        },
        [&](int64_t n, int64_t j0, int64_t w) {
            const T* xo = x + n * C * D + j0;  // (C, D), columns [0, w)
            T* dxo = dx + n * C * D + j0;
            const T* L = lse + n * D + j0;  // (w)
            const T* g = dloss + n * D + j0;
            const int64_t* tg = target + n * D + j0;
            T a[kColumns], b[kColumns];
            for (int64_t j = 0; j < w; ++j) {
                const bool kept = tg[j] != ignore_index;
                a[j] = kept ? g[j] * smoothed(weight ? weight[tg[j]] : T(1), W, eps, C) : T(0);
                b[j] = kept ? g[j] * eps / T(C) : T(0);
            }
            for (int64_t c = 0; c < C; ++c) {
                T* dxc = dxo + c * D;
                for (int64_t j = 0; j < w; ++j) dxc[j] = xo[c * D + j] - L[j];
                ops.exp_sum(dxc, dxc, T(0), w);  // p
                const T wc = weight ? weight[c] : T(1);
                for (int64_t j = 0; j < w; ++j) dxc[j] = a[j] * dxc[j] - b[j] * wc;
            }
            for (int64_t j = 0; j < w; ++j) {
                const int64_t t = tg[j];
                if (t == ignore_index) {
                    for (int64_t c = 0; c < C; ++c) dxo[c * D + j] = 0;  // also where p was nan
                } else {
                    dxo[t * D + j] -= g[j] * (1 - eps) * (weight ? weight[t] : T(1));
                }
            }
        });
}

template <typename T>
void cross_entropy_probs_forward(T* loss, T* lse, const T* x, const T* target, const T* weight,
                                      int64_t N, int64_t C, int64_t D, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    // loss = (1 - eps) sum_c w[c] P[c] (lse - x[c]) + (eps / C) sum_c w[c] (lse - x[c])
    for_each_line(
        N, C, D,
        [&](int64_t n) {
            const T* xr = x + n * C;  // (C)
            const T* Pr = target + n * C;
            const T m = ops.max(xr, C), L = m + std::log(ops.exp_sum(nullptr, xr, m, C));
            lse[n] = L;
            T hard = 0;
            if (weight) {
                for (int64_t c = 0; c < C; ++c) hard += weight[c] * Pr[c] * (L - xr[c]);
            } else {
                hard = -ops.dot(Pr, T(0), xr, L, C);
            }
            const T smooth = eps > 0 ? -(weight ? ops.dot(weight, T(0), xr, L, C) : ops.sum(xr, L, C)) : T(0);
            loss[n] = smoothed(hard, smooth, eps, C);
        },
        [&](int64_t n, int64_t j0, int64_t w) {
            const T* xo = x + n * C * D + j0;  // (C, D), columns [0, w)
            const T* Po = target + n * C * D + j0;
            T m[kColumns], s[kColumns], hard[kColumns] = {}, smooth[kColumns] = {};
            column_max_expsum(m, s, static_cast<T*>(nullptr), xo, C, D, w, ops);
            T* L = lse + n * D + j0;  // (w)
            for (int64_t j = 0; j < w; ++j) L[j] = m[j] + std::log(s[j]);
            for (int64_t c = 0; c < C; ++c) {
                const T wc = weight ? weight[c] : T(1);
                for (int64_t j = 0; j < w; ++j) {
                    const T d = L[j] - xo[c * D + j];
                    hard[j] += wc * Po[c * D + j] * d;
                    smooth[j] += wc * d;
                }
            }
            for (int64_t j = 0; j < w; ++j) loss[n * D + j0 + j] = smoothed(hard[j], smooth[j], eps, C);
        });
}

template <typename T>
void cross_entropy_probs_backward(T* dx, const T* dloss, const T* x, const T* lse, const T* target,
                                       const T* weight, int64_t N, int64_t C, int64_t D, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    const T W = weight_sum(weight, C, ops);
    // dx[c] = g (p[c] S - w[c] q[c]),  S = sum_k w[k] q[k] = (1 - eps) sum_k w[k] P[k] + (eps / C) W
    for_each_line(
        N, C, D,
        [&](int64_t n) {
            const T* xr = x + n * C;  // (C)
            const T* Pr = target + n * C;
            T* dxr = dx + n * C;
            const T g = dloss[n];
            const T S = smoothed(weight ? ops.dot(weight, T(0), Pr, T(0), C) : ops.sum(Pr, T(0), C), W, eps, C);
            ops.exp_sum(dxr, xr, lse[n], C);  // p
            for (int64_t c = 0; c < C; ++c)
                dxr[c] = g * (S * dxr[c] - (weight ? weight[c] : T(1)) * smoothed(Pr[c], T(1), eps, C));
        },
        [&](int64_t n, int64_t j0, int64_t w) {
            const T* xo = x + n * C * D + j0;  // (C, D), columns [0, w)
            const T* Po = target + n * C * D + j0;
            T* dxo = dx + n * C * D + j0;
            const T* L = lse + n * D + j0;  // (w)
            const T* g = dloss + n * D + j0;
            T S[kColumns] = {};
            for (int64_t c = 0; c < C; ++c) {
                const T wc = weight ? weight[c] : T(1);
                for (int64_t j = 0; j < w; ++j) S[j] += wc * Po[c * D + j];
            }
            for (int64_t j = 0; j < w; ++j) S[j] = smoothed(S[j], W, eps, C);
            for (int64_t c = 0; c < C; ++c) {
                T* dxc = dxo + c * D;
                for (int64_t j = 0; j < w; ++j) dxc[j] = xo[c * D + j] - L[j];
                ops.exp_sum(dxc, dxc, T(0), w);  // p
                const T wc = weight ? weight[c] : T(1);
                for (int64_t j = 0; j < w; ++j)
                    dxc[j] = g[j] * (S[j] * dxc[j] - wc * smoothed(Po[c * D + j], T(1), eps, C));
            }
        });
}

// ----------------------------------------------------------------------------------------------
// Instantiations: float and double

#define KG_SOFTMAX_INSTANTIATE(T)                                                                      \
    template void softmax_forward<T>(T*, const T*, int64_t, int64_t, int64_t, bool);                   \
    template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, bool);        \
    template void cross_entropy_forward<T>(T*, T*, const T*, const int64_t*, const T*, int64_t,        \
                                           int64_t, int64_t, int64_t, T);                              \
    template void cross_entropy_backward<T>(T*, const T*, const T*, const T*, const int64_t*,          \
                                            const T*, int64_t, int64_t, int64_t, int64_t, T);          \
    template void cross_entropy_probs_forward<T>(T*, T*, const T*, const T*, const T*, int64_t,        \
                                                 int64_t, int64_t, T);                                 \
    template void cross_entropy_probs_backward<T>(T*, const T*, const T*, const T*, const T*,          \
                                                  const T*, int64_t, int64_t, int64_t, T);
KG_SOFTMAX_INSTANTIATE(float)
KG_SOFTMAX_INSTANTIATE(double)
#undef KG_SOFTMAX_INSTANTIATE

}  // namespace cpu
}  // namespace kg
