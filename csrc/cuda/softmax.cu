// softmax.cu: softmax, log-softmax and cross-entropy along one dim on the device (formulas in
// softmax.h; the CPU version, csrc/cpu/softmax.cpp, is the reference the tests hold these to).
//
// Every op is a line body for block_reduce.cuh's walks over (outer, dim, inner):
//   - a thread per line when dim is not the last (inner > 1): sequential along dim, coalesced
//     across the threads (few, long lines, e.g. (2, 4096, 3), get few threads: correct, not fast);
//     and a thread per row of up to kThreadLine (16) values;
//   - a warp per row of up to kWarpLine (1024) values (32 lanes, shuffle reductions);
//   - a block per longer row (warps' shuffles, then the warps' results through shared memory).
//
// Row statistics by online softmax (Milakov & Gimelshein, 2018): one pass keeps the running max m
// and s = sum exp(x - m), rescaling s by exp(m_old - m_new) when the max grows; the threads'
// partial (m, s) combine by the same rule. x is read twice (statistics, output) instead of three
// times (max, sum, output). Special values come out as the CPU's two passes give them: a -inf
// value adds 0; a +inf or NaN value makes s NaN (exp(inf - inf), exp(NaN - m)), so its whole row
// is NaN; a row of only -inf has s = NaN (exp(-inf - (-inf))).
#include "cuda/softmax.h"

#include <cmath>
#include <cstdint>

#include "cuda/block_reduce.cuh"
#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// Online (max, sum of exp)

template <typename T>
struct MaxSum {
    T m, s;  // the largest value seen (never NaN) and sum exp(x - m) over the values seen
};

template <typename T>
__device__ inline MaxSum<T> shfl_xor(MaxSum<T> v, int lane_mask) {
    return {cuda::shfl_xor(v.m, lane_mask), cuda::shfl_xor(v.s, lane_mask)};
}

// (m, s) with one more value x
template <typename T>
__device__ inline MaxSum<T> add_value(MaxSum<T> st, T x) {
    if (x > st.m)  // a new max: s exp(m - x) + exp(x - x), where exp(x - x) is NaN for x = +inf
        return {x, st.s * exp(st.m - x) + (x == T(INFINITY) ? T(NAN) : T(1))};
    if (x != -T(INFINITY)) st.s += exp(x - st.m);  // (-inf adds exp(-inf) = 0: skipped, also when m = -inf)
    return st;
}

// (m, s) of the union: each s rescaled to the larger m (by 1 exactly for the one that has it)
struct CombineMaxSum {
    template <typename T>
    __device__ MaxSum<T> operator()(MaxSum<T> a, MaxSum<T> b) const {
        const T m = a.m > b.m ? a.m : b.m;
        return {m, (a.m == m ? a.s : a.s * exp(a.m - m)) + (b.m == m ? b.s : b.s * exp(b.m - m))};
    }
};

// (m, s) of the n values x[k step] of a line, on every thread of the group. A non-empty line of
// only -inf gets s = NaN, as the CPU's sum of exp(-inf - (-inf)).
template <typename T, typename G>
__device__ inline MaxSum<T> line_max_sum(const G& g, const T* x, int64_t n, int64_t step) {
    const MaxSum<T> none{-T(INFINITY), T(0)};
    MaxSum<T> st = none;
    KG_GROUP_LOOP(k, g, n) st = add_value(st, x[k * step]);
    st = g.reduce(st, CombineMaxSum{}, none);
    if (n > 0 && st.m == -T(INFINITY)) st.s = T(NAN);
    return st;
}

// ---------------------------------------------------------------------------------------------
// softmax / log_softmax

template <typename T>
struct SoftmaxForward {
    T* y;        // (outer, dim, inner)
    const T* x;  // (outer, dim, inner)
    bool take_log;

    // y = exp(x - m) / s  or  (x - m) - log s
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t n, int64_t step, int64_t) const {
        const T* xl = x + base;
        T* yl = y + base;
        const MaxSum<T> st = line_max_sum(g, xl, n, step);
        if (take_log) {
            const T log_s = log(st.s);
            KG_GROUP_LOOP(k, g, n) yl[k * step] = (xl[k * step] - st.m) - log_s;
        } else {
            const T inv_s = T(1) / st.s;
            KG_GROUP_LOOP(k, g, n) yl[k * step] = exp(xl[k * step] - st.m) * inv_s;
        }
    }
};

template <typename T>
struct SoftmaxBackward {
    T* dx;        // (outer, dim, inner)
    const T* y;   // (outer, dim, inner)
    const T* dy;  // (outer, dim, inner)
    bool take_log;

    // softmax: dx = y (dy - sum(dy y));  log_softmax: dx = dy - exp(y) sum(dy)
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t n, int64_t step, int64_t) const {
        const T *yl = y + base, *dyl = dy + base;
        T* dxl = dx + base;
        T s = 0;
        KG_GROUP_LOOP(k, g, n) s += take_log ? dyl[k * step] : dyl[k * step] * yl[k * step];
        s = g.sum(s);
        if (take_log) {
            KG_GROUP_LOOP(k, g, n) dxl[k * step] = dyl[k * step] - exp(yl[k * step]) * s;
        } else {
            KG_GROUP_LOOP(k, g, n) dxl[k * step] = yl[k * step] * (dyl[k * step] - s);
        }
    }
};

// ---------------------------------------------------------------------------------------------
// cross-entropy

// (1 - eps) hard + (eps / C) smooth; exactly `hard` when eps == 0 (even where smooth is inf)
template <typename T>
__device__ inline T smoothed(T hard, T smooth, T eps, int64_t C) {
    return eps > 0 ? (1 - eps) * hard + eps / T(C) * smooth : hard;
}

template <typename T>
__device__ inline T weight_of(const T* weight, int64_t c) {
    return weight ? weight[c] : T(1);
}

// Whether the class t of position `line` is followed (in [0, C), not ignore_index). A t that is
// neither is reported: error = positions - line (atomicMax: the first such position wins).
__device__ inline bool class_kept(int64_t t, int64_t C, int64_t ignore_index, int64_t line, int64_t positions,
                                  unsigned long long* error, bool reporter) {
    if (t == ignore_index) return false;
    if (t >= 0 && t < C) return true;
    if (reporter) atomicMax(error, static_cast<unsigned long long>(positions - line));
    return false;
}

template <typename T>
struct CrossEntropyForward {
    T* loss;                // (N, D)
    T* lse;                 // (N, D)
    const T* x;             // (N, C, D)
    const int64_t* target;  // (N, D)
    const T* weight;        // (C) or null
    int64_t positions, ignore_index;  // positions = N D
    T eps;
    unsigned long long* error;  // ()

    // lse = m + log s;  loss = smoothed(w[t] ((m - x[t]) + log s), sum_c w[c] (lse - x[c]))
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t C, int64_t step, int64_t line) const {
        const T* xl = x + base;
        const MaxSum<T> st = line_max_sum(g, xl, C, step);
        const T log_s = log(st.s), L = st.m + log_s;
        const int64_t t = target[line];
        const bool kept = class_kept(t, C, ignore_index, line, positions, error, g.lane() == 0);
        T smooth = 0;
        if (kept && eps > 0) {
            KG_GROUP_LOOP(c, g, C) smooth += weight_of(weight, c) * (L - xl[c * step]);
            smooth = g.sum(smooth);
        }
        if (g.lane() == 0) {
            lse[line] = L;
            loss[line] = kept ? smoothed(weight_of(weight, t) * ((st.m - xl[t * step]) + log_s), smooth, eps, C) : T(0);
        }
    }
};

template <typename T>
struct CrossEntropyBackward {
    T* dx;                  // (N, C, D)
    const T* dloss;         // (N, D)
    const T* x;             // (N, C, D)
    const T* lse;           // (N, D)
    const int64_t* target;  // (N, D)
    const T* weight;        // (C) or null
    int64_t positions, ignore_index;
    T eps;
    unsigned long long* error;  // ()

    // dx[c] = a p[c] - b w[c] - [c == t] g (1 - eps) w[t],  a = g smoothed(w[t], sum_k w[k]),  b = g eps / C
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t C, int64_t step, int64_t line) const {
        const T* xl = x + base;
        T* dxl = dx + base;
        const int64_t t = target[line];
        if (!class_kept(t, C, ignore_index, line, positions, error, g.lane() == 0)) {
            KG_GROUP_LOOP(c, g, C) dxl[c * step] = 0;  // also where p would be NaN
            return;
        }
        T W = T(C);  // sum_k w[k]; only smoothing with weights needs the sum
        if (weight && eps > 0) {
            W = 0;
            KG_GROUP_LOOP(c, g, C) W += weight[c];
            W = g.sum(W);
        }
        const T gl = dloss[line], w_t = weight_of(weight, t), L = lse[line];
        const T a = gl * smoothed(w_t, W, eps, C), b = gl * eps / T(C);
        KG_GROUP_LOOP(c, g, C) {
            T v = a * exp(xl[c * step] - L) - b * weight_of(weight, c);
            if (c == t) v -= gl * (1 - eps) * w_t;
            dxl[c * step] = v;
        }
    }
};

template <typename T>
struct CrossEntropyProbsForward {
    T* loss;          // (N, D)
    T* lse;           // (N, D)
    const T* x;       // (N, C, D)
    const T* target;  // (N, C, D)
    const T* weight;  // (C) or null
    T eps;

    // loss = smoothed(sum_c w[c] P[c] (lse - x[c]), sum_c w[c] (lse - x[c]))
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t C, int64_t step, int64_t line) const {
        const T *xl = x + base, *Pl = target + base;
        const MaxSum<T> st = line_max_sum(g, xl, C, step);
        const T L = st.m + log(st.s);
        Pair<T> sums{0, 0};  // (hard, smooth)
        KG_GROUP_LOOP(c, g, C) {
            const T wd = weight_of(weight, c) * (L - xl[c * step]);
            sums.a += wd * Pl[c * step];
            sums.b += wd;
        }
        sums = g.sum(sums);
        if (g.lane() == 0) {
            lse[line] = L;
            loss[line] = smoothed(sums.a, sums.b, eps, C);
        }
    }
};

template <typename T>
struct CrossEntropyProbsBackward {
    T* dx;            // (N, C, D)
    const T* dloss;   // (N, D)
    const T* x;       // (N, C, D)
    const T* lse;     // (N, D)
    const T* target;  // (N, C, D)
    const T* weight;  // (C) or null
    T eps;

    // dx[c] = g (p[c] S - w[c] smoothed(P[c], 1)),  S = smoothed(sum_k w[k] P[k], sum_k w[k])
    template <typename G>
    __device__ void operator()(const G& g, int64_t base, int64_t C, int64_t step, int64_t line) const {
        const T *xl = x + base, *Pl = target + base;
        T* dxl = dx + base;
        Pair<T> sums{0, 0};  // (sum w P, sum w)
        KG_GROUP_LOOP(c, g, C) {
            const T wc = weight_of(weight, c);
            sums.a += wc * Pl[c * step];
            sums.b += wc;
        }
        sums = g.sum(sums);
        const T S = smoothed(sums.a, sums.b, eps, C), gl = dloss[line], L = lse[line];
        KG_GROUP_LOOP(c, g, C)
            dxl[c * step] = gl * (S * exp(xl[c * step] - L) - weight_of(weight, c) * smoothed(Pl[c * step], T(1), eps, C));
    }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Launches

template <typename T>
void softmax_forward(T* y, const T* x, int64_t outer, int64_t dim, int64_t inner, bool log) {
    launch_lines(SoftmaxForward<T>{y, x, log}, outer, dim, inner);
}

template <typename T>
void softmax_backward(T* dx, const T* y, const T* dy, int64_t outer, int64_t dim, int64_t inner, bool log) {
    launch_lines(SoftmaxBackward<T>{dx, y, dy, log}, outer, dim, inner);
}

template <typename T>
void cross_entropy_forward(T* loss, T* lse, const T* x, const int64_t* target, const T* weight, int64_t N, int64_t C,
                           int64_t D, int64_t ignore_index, T eps, unsigned long long* error) {
    launch_lines(CrossEntropyForward<T>{loss, lse, x, target, weight, N * D, ignore_index, eps, error}, N, C, D);
}

template <typename T>
void cross_entropy_backward(T* dx, const T* dloss, const T* x, const T* lse, const int64_t* target, const T* weight,
                            int64_t N, int64_t C, int64_t D, int64_t ignore_index, T eps, unsigned long long* error) {
    launch_lines(CrossEntropyBackward<T>{dx, dloss, x, lse, target, weight, N * D, ignore_index, eps, error}, N, C,
                 D);
}

template <typename T>
void cross_entropy_probs_forward(T* loss, T* lse, const T* x, const T* target, const T* weight, int64_t N, int64_t C,
                                 int64_t D, T eps) {
    launch_lines(CrossEntropyProbsForward<T>{loss, lse, x, target, weight, eps}, N, C, D);
}

template <typename T>
void cross_entropy_probs_backward(T* dx, const T* dloss, const T* x, const T* lse, const T* target, const T* weight,
                                  int64_t N, int64_t C, int64_t D, T eps) {
    launch_lines(CrossEntropyProbsBackward<T>{dx, dloss, x, lse, target, weight, eps}, N, C, D);
}

// ---------------------------------------------------------------------------------------------
// Instantiations: float and double

#define KG_SOFTMAX_INSTANTIATE(T)                                                                          \
    template void softmax_forward<T>(T*, const T*, int64_t, int64_t, int64_t, bool);                       \
    template void softmax_backward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, bool);            \
    template void cross_entropy_forward<T>(T*, T*, const T*, const int64_t*, const T*, int64_t, int64_t,   \
                                           int64_t, int64_t, T, unsigned long long*);                      \
    template void cross_entropy_backward<T>(T*, const T*, const T*, const T*, const int64_t*, const T*,    \
                                            int64_t, int64_t, int64_t, int64_t, T, unsigned long long*);   \
    template void cross_entropy_probs_forward<T>(T*, T*, const T*, const T*, const T*, int64_t, int64_t,   \
                                                 int64_t, T);                                              \
    template void cross_entropy_probs_backward<T>(T*, const T*, const T*, const T*, const T*, const T*,    \
                                                  int64_t, int64_t, int64_t, T);
KG_SOFTMAX_INSTANTIATE(float)
KG_SOFTMAX_INSTANTIATE(double)
#undef KG_SOFTMAX_INSTANTIATE

}  // namespace cuda
}  // namespace kg
