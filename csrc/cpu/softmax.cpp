// softmax.cpp: softmax, log-softmax and cross-entropy along one dimension (formulas in softmax.h).
//
// Every op here walks an (outer, dim, inner) array in one of two ways:
//   - inner == 1: the `outer` rows are contiguous; the row primitives of vec.h (max, exp_sum,
//     sum, dot) do the arithmetic and a thread takes whole rows;
//   - inner > 1: blocks of w positions side by side, whose values at one index d of `dim` are
//     contiguous (x[d * inner + j]); vec.h's column primitives (col_max, col_exp_sum) reduce a
//     block along dim in one call, vectorised across the positions, and plain loops over the block
//     rows (vectorised by the compiler) do the rest. No dimension is moved or copied. A block is
//     narrow enough for its x and its output to stay in cache between the passes over it.
// Whether the primitives are the generic or the AVX2 ones is decided inside vec_ops().
#include "cpu/softmax.h"

#include <algorithm>
#include <cmath>

#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// The two walks

// Widest block (positions) when inner > 1: bounds the per-position arrays on the stack.
constexpr int64_t kMaxColumns = 256;
// A block's input and output together: about 2 MiB, so that they are still cached for the second
// and third pass over the block. (Narrower blocks made each row of a block a short strided run:
// on 4096 x 1024 along dim 0, a block of 32 positions took twice as long as one of 64 or 128.)
constexpr int64_t kBlockBytes = int64_t(1) << 21;

// Block width for `dim` values per position: whole 64-byte lines, at least one, at most kMaxColumns.
template <typename T>
int64_t block_width(int64_t dim) {
    constexpr int64_t line = 64 / sizeof(T);
    const int64_t fit = kBlockBytes / (2 * static_cast<int64_t>(sizeof(T)) * std::max<int64_t>(dim, 1));
    return std::clamp(fit / line * line, line, kMaxColumns);
}

// row(r) for each row r of (outer, dim) when inner == 1; else cols(o, j0, w) for each block of
// w <= kMaxColumns positions [j0, j0 + w) at outer index o. Threads share rows / blocks evenly.
template <typename T, typename Row, typename Cols>
void for_each_line(int64_t outer, int64_t dim, int64_t inner, Row row, Cols cols) {
    const int nt = memory_bound_threads(outer * dim * inner);
    if (inner == 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t r = 0; r < outer; ++r) row(r);
    } else {
        const int64_t width = block_width<T>(dim), blocks = (inner + width - 1) / width;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t b = 0; b < outer * blocks; ++b) {
            const int64_t o = b / blocks, j0 = b % blocks * width;
            cols(o, j0, std::min(width, inner - j0));
        }
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
    for_each_line<T>(
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
            T m[kMaxColumns], s[kMaxColumns];
            ops.col_max(m, xo, dim, inner, w);
            ops.col_exp_sum(s, log ? nullptr : yo, xo, m, dim, inner, w);  // softmax: yo = exp(x - m)
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
void softmax_backward(T* dx, const T* y, const T* dy, int64_t outer, int64_t dim, int64_t inner, bool log) {
    const VecOps<T>& ops = vec_ops<T>();
    for_each_line<T>(
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
            T s[kMaxColumns] = {};
            for (int64_t d = 0; d < dim; ++d) {
                const T* yd = y + base + d * inner;
                const T* dyd = dy + base + d * inner;
                for (int64_t j = 0; j < w; ++j) s[j] += log ? dyd[j] : dyd[j] * yd[j];
            }
            if (log) ops.col_exp_sum(nullptr, dx + base, y + base, nullptr, dim, inner, w);  // dx = exp(y)
            for (int64_t d = 0; d < dim; ++d) {
                const T* yd = y + base + d * inner;
                const T* dyd = dy + base + d * inner;
                T* dxd = dx + base + d * inner;
                if (log) {
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
void cross_entropy_forward(T* loss, T* lse, const T* x, const int64_t* target, const T* weight, int64_t N,
                           int64_t C, int64_t D, int64_t ignore_index, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    for_each_line<T>(
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
            T m[kMaxColumns], log_s[kMaxColumns], smooth[kMaxColumns] = {};
            ops.col_max(m, xo, C, D, w);
            ops.col_exp_sum(log_s, nullptr, xo, m, C, D, w);
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
                            const T* weight, int64_t N, int64_t C, int64_t D, int64_t ignore_index, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    const T W = weight_sum(weight, C, ops);
    // dx[c] = a p[c] - b w[c] - [c == t] g (1 - eps) w[t],  a = g A,  b = g eps / C
    for_each_line<T>(
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
            T a[kMaxColumns], b[kMaxColumns];
            for (int64_t j = 0; j < w; ++j) {
                const bool kept = tg[j] != ignore_index;
                a[j] = kept ? g[j] * smoothed(weight ? weight[tg[j]] : T(1), W, eps, C) : T(0);
                b[j] = kept ? g[j] * eps / T(C) : T(0);
            }
            ops.col_exp_sum(nullptr, dxo, xo, L, C, D, w);  // p
            for (int64_t c = 0; c < C; ++c) {
                T* dxc = dxo + c * D;
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
void cross_entropy_probs_forward(T* loss, T* lse, const T* x, const T* target, const T* weight, int64_t N,
                                 int64_t C, int64_t D, T eps) {
    const VecOps<T>& ops = vec_ops<T>();
    // loss = (1 - eps) sum_c w[c] P[c] (lse - x[c]) + (eps / C) sum_c w[c] (lse - x[c])
    for_each_line<T>(
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
            T m[kMaxColumns], s[kMaxColumns], hard[kMaxColumns] = {}, smooth[kMaxColumns] = {};
            ops.col_max(m, xo, C, D, w);
            ops.col_exp_sum(s, nullptr, xo, m, C, D, w);
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
    for_each_line<T>(
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
            T S[kMaxColumns] = {};
            for (int64_t c = 0; c < C; ++c) {
                const T wc = weight ? weight[c] : T(1);
                for (int64_t j = 0; j < w; ++j) S[j] += wc * Po[c * D + j];
            }
            for (int64_t j = 0; j < w; ++j) S[j] = smoothed(S[j], W, eps, C);
            ops.col_exp_sum(nullptr, dxo, xo, L, C, D, w);  // p
            for (int64_t c = 0; c < C; ++c) {
                T* dxc = dxo + c * D;
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
