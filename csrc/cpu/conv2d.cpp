// conv2d.cpp: 2-D convolution kernels, float32 and float64 (the formula is in conv2d.h).
//
// Versions held here:
//   - plain: one loop nest over every term of the convolution sum, shared by the three kernels;
//   - fast: GEMMs. Per image n and group g (Cg = C / groups, Kg = K / groups, P = OH * OW):
//       forward:          out[n, g] (Kg x P) = w[g] (Kg x Cg*R*S) @ cols[n, g] (Cg*R*S x P)
//       backward-input:   dcols[n, g] (Cg*R*S x P) = w[g]^T @ dout[n, g] (Kg x P),
//                         dx[n, g] = col2im(dcols[n, g])   (a scatter-add back onto the image)
//       backward-weight:  dw[g] (Kg x Cg*R*S) = sum_n dout[n, g] @ cols[n, g]^T
//     where cols[n, g][(c, r, s), (oh, ow)] = x[n, g*Cg + c, oh*sh - ph + r*dh, ow*sw - pw + s*dw]
//     is the im2col matrix (0 in the padding). cols is never stored: the GEMM packs its panels
//     straight from the image through a GemmOperand hook (implicit im2col); so does dout for the
//     weight gradient, whose GEMM runs over the output positions of all images at once. A 1x1
//     convolution with stride 1 and no padding has cols[n, g] = x[n, g], read in place.
//     Threads: the GEMM's, over the batch of (image, group) products when there are enough of
//     them, else inside each product; the weight gradient gives each thread its own part of the
//     output positions (no barriers) and adds the partial sums; backward-input gives each thread
//     whole images (GEMM and col2im), or, with fewer images than threads, threads inside both.
#include "cpu/conv2d.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "cpu/gemm.h"
#include "cpu/parallel.h"

namespace kg {
namespace cpu {
namespace {

// ----------------------------------------------------------------------------------------------
// Shared helpers

// Below this many element updates a loop runs on the calling thread: waking the other threads
// costs more than the work (and many tiny calls, as in gradcheck, would pay it every time).
constexpr int64_t kMinParallelWork = int64_t(1) << 15;

// out[n, c, :] += bias[c] for every n (nothing when bias is nullptr). A pass after the GEMM costs
// less than starting the GEMM from the bias (beta = 1 makes it read the output from memory).
//   out: (N, C, plane), bias: (C) or nullptr
template <typename T>
void add_bias(T* out, const T* bias, int64_t N, int64_t C, int64_t plane) {
    if (!bias) return;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) \
    if (N * C * plane >= kMinParallelWork)
    for (int64_t nc = 0; nc < N * C; ++nc)
        for (int64_t i = 0; i < plane; ++i) out[nc * plane + i] += bias[nc % C];
}

inline bool in_image(int64_t ih, int64_t iw, const Conv2dShape& sz) {
    return ih >= 0 && ih < sz.H && iw >= 0 && iw < sz.W;
}

// The output indices o in [lo, hi) (a sub-range of [0, n_out)) whose tap o * stride + offset
// lies inside [0, n_in).
struct Range {
    int64_t lo, hi;
};
inline Range taps_inside(int64_t n_out, int64_t stride, int64_t offset, int64_t n_in) {
    if (stride == 1) {  // the common case, without divisions
        const int64_t lo = std::clamp<int64_t>(-offset, 0, n_out);
        return {lo, std::clamp<int64_t>(n_in - offset, lo, n_out)};
    }
    const int64_t lo = offset >= 0 ? 0 : std::min(n_out, (-offset + stride - 1) / stride);
    const int64_t hi = n_in <= offset ? 0 : std::min(n_out, (n_in - offset + stride - 1) / stride);
    return {lo, std::max(lo, hi)};
}

// Output positions t, t + 1, ... (flat over (n, oh, ow)), up to `end`, that stay on t's output row:
// (n, oh, ow0), (n, oh, ow0 + 1), ..., `length` of them.
struct RowRun {
    int64_t n, oh, ow0, length;
};
inline RowRun row_run(int64_t t, int64_t end, const Conv2dShape& sz) {
    const int64_t ow = t % sz.OW, row = t / sz.OW;  // row = n * OH + oh
    return {row / sz.OH, row % sz.OH, ow, std::min(end - t, sz.OW - ow)};
}

// One tap of a row run: dst[i * dst_stride] = x_row[iw0 + i * sw] for i < len, 0 where the column
// is in the padding.   x_row: one input row (W), or nullptr when the row is in the padding.
template <typename T>
void gather_row(T* dst, ptrdiff_t dst_stride, const T* x_row, int64_t iw0, int64_t len,
                const Conv2dShape& sz) {
    const Range in = x_row ? taps_inside(len, sz.stride_w, iw0, sz.W) : Range{len, len};
    for (int64_t i = 0; i < in.lo; ++i) dst[i * dst_stride] = T(0);
    if (dst_stride == 1 && sz.stride_w == 1) {  // contiguous on both sides: a vectorised copy
        for (int64_t i = in.lo; i < in.hi; ++i) dst[i] = x_row[iw0 + i];
    } else {
        for (int64_t i = in.lo; i < in.hi; ++i) dst[i * dst_stride] = x_row[iw0 + i * sz.stride_w];
    }
    for (int64_t i = in.hi; i < len; ++i) dst[i * dst_stride] = T(0);
}

// A 1x1 convolution that reads every input pixel once, in order: cols[n, g] is x[n, g] itself.
inline bool is_pointwise(const Conv2dShape& sz) {
    return sz.R == 1 && sz.S == 1 && sz.stride_h == 1 && sz.stride_w == 1 && sz.pad_h == 0 &&
           sz.pad_w == 0 && sz.OH == sz.H && sz.OW == sz.W;
}

// ----------------------------------------------------------------------------------------------
// Plain kernels

// Calls term(o, i, j) for every product out[o] += w[j] * x[i] of the convolution sum; o, i and j
// are flat indices into out (N, K, OH, OW), x (N, C, H, W) and w (K, Cg, R, S). Taps that land
// in the zero padding are skipped.
template <typename F>
void for_each_term(const Conv2dShape& sz, F term) {
    const int64_t Cg = sz.C / sz.groups, Kg = sz.K / sz.groups;
    for (int64_t n = 0; n < sz.N; ++n)
        for (int64_t k = 0; k < sz.K; ++k)
            for (int64_t oh = 0; oh < sz.OH; ++oh)
                for (int64_t ow = 0; ow < sz.OW; ++ow) {
                    const int64_t o = ((n * sz.K + k) * sz.OH + oh) * sz.OW + ow;
                    for (int64_t c = 0; c < Cg; ++c)
                        for (int64_t r = 0; r < sz.R; ++r)
                            for (int64_t s = 0; s < sz.S; ++s) {
                                const int64_t ih = oh * sz.stride_h - sz.pad_h + r * sz.dil_h;
                                const int64_t iw = ow * sz.stride_w - sz.pad_w + s * sz.dil_w;
                                if (!in_image(ih, iw, sz)) continue;
                                const int64_t i = ((n * sz.C + k / Kg * Cg + c) * sz.H + ih) * sz.W + iw;
                                const int64_t j = ((k * Cg + c) * sz.R + r) * sz.S + s;
                                term(o, i, j);
                            }
                }
}

// out = sum of w[j] * x[i], + bias
//   out: (N, K, OH, OW), x: (N, C, H, W), w: (K, Cg, R, S), bias: (K) or nullptr
template <typename T>
void forward_plain(T* out, const T* x, const T* w, const T* bias, const Conv2dShape& sz) {
    std::fill_n(out, sz.N * sz.K * sz.OH * sz.OW, T(0));
    for_each_term(sz, [&](int64_t o, int64_t i, int64_t j) { out[o] += w[j] * x[i]; });
    add_bias(out, bias, sz.N, sz.K, sz.OH * sz.OW);
}

// dx = sum of dout[o] * w[j] into the x element each term read, + bias_c
//   dx: (N, C, H, W), dout: (N, K, OH, OW), w: (K, Cg, R, S), bias_c: (C) or nullptr
template <typename T>
void backward_input_plain(T* dx, const T* dout, const T* w, const T* bias_c, const Conv2dShape& sz) {
    std::fill_n(dx, sz.N * sz.C * sz.H * sz.W, T(0));
    for_each_term(sz, [&](int64_t o, int64_t i, int64_t j) { dx[i] += dout[o] * w[j]; });
    add_bias(dx, bias_c, sz.N, sz.C, sz.H * sz.W);
}

// dw = sum of dout[o] * x[i] into the weight each term used
//   dw: (K, Cg, R, S), x: (N, C, H, W), dout: (N, K, OH, OW)
template <typename T>
void backward_weight_plain(T* dw, const T* x, const T* dout, const Conv2dShape& sz) {
    std::fill_n(dw, sz.K * (sz.C / sz.groups) * sz.R * sz.S, T(0));
    for_each_term(sz, [&](int64_t o, int64_t i, int64_t j) { dw[j] += dout[o] * x[i]; });
}

// ----------------------------------------------------------------------------------------------
// Packing hooks (GemmOperand::pack): the im2col matrix and dout, read in place

// What the forward hook reads: the images x (N, C, H, W) and the convolution's sizes.
template <typename T>
struct ConvImages {
    const T* x;
    const Conv2dShape* sz;
};

// Forward B operand for b = n * groups + g, seen as op_b = cols[n, g]^T (P x Cg*R*S): NR-row
// panels of output positions j = (oh, ow) against taps p = (c, r, s),
//   dst[q*NR*kc + p*NR + l] = x[n, g*Cg + c, oh*sh - ph + r*dh, ow*sw - pw + s*dw]   (0 outside)
// A panel's positions fall in a few runs along output rows; for each tap, a run reads one input row.
template <typename T>
void pack_cols_forward(const void* ctx, T* dst, int64_t b, int64_t j0, int64_t n, int64_t p0,
                       int64_t kc) {
    constexpr int NR = GemmBlocking<T>::NR;
    const auto& [x, sz_ptr] = *static_cast<const ConvImages<T>*>(ctx);
    const Conv2dShape& sz = *sz_ptr;
    const int64_t Cg = sz.C / sz.groups, HW = sz.H * sz.W;
    const T* image = x + (b / sz.groups * sz.C + b % sz.groups * Cg) * HW;  // x[n, g*Cg]: (Cg, H, W)

    for (int64_t q0 = 0; q0 < n; q0 += NR, dst += NR * kc) {
        const int64_t lanes = std::min<int64_t>(NR, n - q0);
        RowRun runs[NR];
        int n_runs = 0;
        for (int64_t l = 0; l < lanes; l += runs[n_runs++].length)
            runs[n_runs] = row_run(j0 + q0 + l, j0 + q0 + lanes, sz);

        int64_t c = p0 / (sz.R * sz.S), r = p0 / sz.S % sz.R, s = p0 % sz.S;
        for (int64_t p = 0; p < kc; ++p) {
            T* d = dst + p * NR;
            for (int t = 0; t < n_runs; d += runs[t++].length) {
                const int64_t ih = runs[t].oh * sz.stride_h - sz.pad_h + r * sz.dil_h;
                const T* x_row = ih >= 0 && ih < sz.H ? image + (c * sz.H + ih) * sz.W : nullptr;
                const int64_t iw0 = runs[t].ow0 * sz.stride_w - sz.pad_w + s * sz.dil_w;
                gather_row(d, 1, x_row, iw0, runs[t].length, sz);
            }
            std::fill(dst + p * NR + lanes, dst + (p + 1) * NR, T(0));
            if (++s == sz.S) {
                s = 0;
                if (++r == sz.R) r = 0, ++c;
            }
        }
    }
}

// What the weight-gradient hooks read: x (N, C, H, W) or dout (N, K, OH, OW), and how the
// output positions are split: batch index b = t * groups + g is group g over positions
// [t * part, (t + 1) * part) of the N * OH * OW (flat over (n, oh, ow)); past the end, zeros.
template <typename T>
struct PositionPart {
    const T* data;
    const Conv2dShape* sz;
    int64_t part;
};

// The first position of columns p0 ... of operand b, and how many of the kc columns are real.
template <typename T>
Range part_columns(const PositionPart<T>& pp, int64_t b, int64_t p0, int64_t kc) {
    const Conv2dShape& sz = *pp.sz;
    const int64_t first = b / sz.groups * pp.part + p0;
    return {first, std::clamp<int64_t>(sz.N * sz.OH * sz.OW - first, 0, kc)};
}

// Weight-gradient A operand, op_b = dout[:, g*Kg : (g+1)*Kg] over part t, a (Kg x part) matrix:
//   dst[q*MR*kc + p*MR + l] = dout[n, g*Kg + k, oh, ow],  k = i0 + q*MR + l,  (n, oh, ow) = first + p
template <typename T>
void pack_dout_weight_grad(const void* ctx, T* dst, int64_t b, int64_t i0, int64_t m, int64_t p0,
                           int64_t kc) {
    constexpr int MR = GemmBlocking<T>::MR;
    const auto& pp = *static_cast<const PositionPart<T>*>(ctx);
    const Conv2dShape& sz = *pp.sz;
    const int64_t P = sz.OH * sz.OW, k_first = b % sz.groups * (sz.K / sz.groups) + i0;
    const auto [first, real] = part_columns(pp, b, p0, kc);

    for (int64_t q0 = 0; q0 < m; q0 += MR, dst += MR * kc) {
        const int64_t lanes = std::min<int64_t>(MR, m - q0);
        int64_t n = first / P, pos = first % P;
        for (int64_t p = 0; p < real; ++p) {
            const T* d = pp.data + (n * sz.K + k_first + q0) * P + pos;  // dout[n, k, pos] for lane 0
            for (int64_t l = 0; l < lanes; ++l) dst[p * MR + l] = d[l * P];
            for (int64_t l = lanes; l < MR; ++l) dst[p * MR + l] = T(0);
            if (++pos == P) pos = 0, ++n;
        }
        std::fill(dst + real * MR, dst + kc * MR, T(0));
    }
}

// Weight-gradient B operand, op_b = cols[:, g] over part t (Cg*R*S x part): NR-row panels of taps
// j = (c, r, s) against output positions (n, oh, ow) = first + p, across images,
//   dst[q*NR*kc + p*NR + l] = x[n, g*Cg + c, oh*sh - ph + r*dh, ow*sw - pw + s*dw]   (0 outside)
// The positions are walked in runs along output rows; for each tap (lane), a run reads one input row.
template <typename T>
void pack_cols_weight_grad(const void* ctx, T* dst, int64_t b, int64_t j0, int64_t n_taps,
                           int64_t p0, int64_t kc) {
    constexpr int NR = GemmBlocking<T>::NR;
    const auto& pp = *static_cast<const PositionPart<T>*>(ctx);
    const Conv2dShape& sz = *pp.sz;
    const int64_t g = b % sz.groups, Cg = sz.C / sz.groups, HW = sz.H * sz.W, RS = sz.R * sz.S;
    const auto [first, real] = part_columns(pp, b, p0, kc);

    for (int64_t q0 = 0; q0 < n_taps; q0 += NR, dst += NR * kc) {
        const int64_t lanes = std::min<int64_t>(NR, n_taps - q0);
        int64_t plane[NR], dr[NR], ds[NR];  // each lane's channel plane, row and column offsets
        for (int64_t l = 0; l < lanes; ++l) {
            const int64_t j = j0 + q0 + l;
            plane[l] = (g * Cg + j / RS) * HW;
            dr[l] = j / sz.S % sz.R * sz.dil_h;
            ds[l] = j % sz.S * sz.dil_w;
        }
        for (int64_t p = 0; p < real;) {
            const RowRun run = row_run(first + p, first + real, sz);
            const T* x_n = pp.data + run.n * sz.C * HW;
            const int64_t ih0 = run.oh * sz.stride_h - sz.pad_h, iw0 = run.ow0 * sz.stride_w - sz.pad_w;
            for (int64_t l = 0; l < lanes; ++l) {
                const int64_t ih = ih0 + dr[l];
                const T* x_row = ih >= 0 && ih < sz.H ? x_n + plane[l] + ih * sz.W : nullptr;
                gather_row(dst + p * NR + l, NR, x_row, iw0 + ds[l], run.length, sz);
            }
            for (int64_t i = 0; i < run.length; ++i)
                std::fill(dst + (p + i) * NR + lanes, dst + (p + i + 1) * NR, T(0));
            p += run.length;
        }
        std::fill(dst + real * NR, dst + kc * NR, T(0));
    }
}

// ----------------------------------------------------------------------------------------------
// col2im

// dx_c = b + one channel's columns scattered back onto the image:
//   dx_c[oh*sh - ph + r*dh, ow*sw - pw + s*dw] += dcols_c[(r, s), (oh, ow)]
// (taps that land in the padding are dropped)
//   dx_c: (H, W), dcols_c: (R*S, OH*OW)
template <typename T>
void col2im_plane(T* dx_c, const T* dcols_c, T b, const Conv2dShape& sz) {
    std::fill_n(dx_c, sz.H * sz.W, b);
    for (int64_t r = 0; r < sz.R; ++r)
        for (int64_t s = 0; s < sz.S; ++s) {
            const Range rows = taps_inside(sz.OH, sz.stride_h, r * sz.dil_h - sz.pad_h, sz.H);
            const Range cols = taps_inside(sz.OW, sz.stride_w, s * sz.dil_w - sz.pad_w, sz.W);
            for (int64_t oh = rows.lo; oh < rows.hi; ++oh) {
                const int64_t ih = oh * sz.stride_h - sz.pad_h + r * sz.dil_h;
                const int64_t row = ih * sz.W + s * sz.dil_w - sz.pad_w;  // + ow * sw: the column
                const T* src = dcols_c + ((r * sz.S + s) * sz.OH + oh) * sz.OW;
                for (int64_t ow = cols.lo; ow < cols.hi; ++ow) dx_c[row + ow * sz.stride_w] += src[ow];
            }
        }
}

// ----------------------------------------------------------------------------------------------
// Fast kernels

// out = conv2d(x, w) + bias, one GEMM per (image, group)
//   out: (N, K, OH, OW), x: (N, C, H, W), w: (K, Cg, R, S), bias: (K) or nullptr
template <typename T>
void forward_gemm(T* out, const T* x, const T* w, const T* bias, const Conv2dShape& sz) {
    const int64_t G = sz.groups, Cg = sz.C / G, Kg = sz.K / G;
    const int64_t HW = sz.H * sz.W, P = sz.OH * sz.OW, CRS = Cg * sz.R * sz.S;

    // out[n, g] (Kg x P) = w[g] (Kg x CRS) @ cols[n, g] (CRS x P), b = n * G + g
    std::vector<T*> out_ng(sz.N * G);
    std::vector<const T*> w_g(sz.N * G);
    for (int64_t b = 0; b < sz.N * G; ++b) {
        out_ng[b] = out + (b / G * sz.K + b % G * Kg) * P;
        w_g[b] = w + b % G * Kg * CRS;
    }
    const GemmOperand<T> A{w_g.data(), CRS, 1};
    const ConvImages<T> image{x, &sz};
    GemmOperand<T> B{nullptr, 0, 0, &pack_cols_forward<T>, &image};
    std::vector<const T*> x_ng;
    if (is_pointwise(sz)) {  // op_b = cols[n, g]^T = x[n, g]^T (HW x Cg), read in place
        for (int64_t b = 0; b < sz.N * G; ++b) x_ng.push_back(x + (b / G * sz.C + b % G * Cg) * HW);
        B = {x_ng.data(), 1, HW};
    }
    gemm_batched(out_ng.data(), P, 1, A, B, sz.N * G, Kg, P, CRS, T(0));
    add_bias(out, bias, sz.N, sz.K, P);
}

// dx = col2im(w^T @ dout) + bias_c, per (image, group)
//   dx: (N, C, H, W), dout: (N, K, OH, OW), w: (K, Cg, R, S), bias_c: (C) or nullptr
template <typename T>
void backward_input_gemm(T* dx, const T* dout, const T* w, const T* bias_c, const Conv2dShape& sz) {
    const int64_t G = sz.groups, Cg = sz.C / G, Kg = sz.K / G;
    const int64_t HW = sz.H * sz.W, P = sz.OH * sz.OW, CRS = Cg * sz.R * sz.S;

    if (is_pointwise(sz)) {  // dx[n, g] (Cg x HW) = w[g]^T (Cg x Kg) @ dout[n, g] (Kg x HW)
        std::vector<T*> dx_ng(sz.N * G);
        std::vector<const T*> w_g(sz.N * G), dout_ng(sz.N * G);
        for (int64_t n = 0; n < sz.N; ++n)
            for (int64_t g = 0; g < G; ++g) {
                dx_ng[n * G + g] = dx + (n * sz.C + g * Cg) * HW;
                w_g[n * G + g] = w + g * Kg * Cg;
                dout_ng[n * G + g] = dout + (n * sz.K + g * Kg) * HW;
            }
        gemm_batched(dx_ng.data(), HW, 1, w_g.data(), 1, Cg, dout_ng.data(), HW, 1, sz.N * G, Cg, HW,
                     Kg, T(0));
        add_bias(dx, bias_c, sz.N, sz.C, HW);
        return;
    }

    // One image: dcols[g] (CRS x P) = w[g]^T (CRS x Kg) @ dout[n, g] (Kg x P) for every group,
    // then dx[n, c] = col2im(dcols[g][(c - g*Cg, :, :), :]) + bias_c[c] for every channel.
    //   dcols: (G, CRS, P), this image's column buffer
    auto one_image = [&](int64_t n, T* dcols) {
        std::vector<T*> dcols_g(G);
        std::vector<const T*> w_g(G), dout_g(G);
        for (int64_t g = 0; g < G; ++g) {
            dcols_g[g] = dcols + g * CRS * P;
            w_g[g] = w + g * Kg * CRS;
            dout_g[g] = dout + (n * sz.K + g * Kg) * P;
        }
        gemm_batched(dcols_g.data(), P, 1, w_g.data(), 1, CRS, dout_g.data(), P, 1, G, CRS, P, Kg, T(0));
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) \
    if (!in_parallel() && sz.C * HW * sz.R * sz.S >= kMinParallelWork)
        for (int64_t c = 0; c < sz.C; ++c)
            col2im_plane(dx + (n * sz.C + c) * HW, dcols + c * sz.R * sz.S * P, bias_c ? bias_c[c] : T(0),
                         sz);
    };

    // Threads over images when there are enough of them (each thread its own column buffer and
    // whole images, taken as it finishes the last: no barrier between the GEMM and col2im), else
    // image by image with the threads inside the GEMM and col2im.
    const int nt = get_num_threads();
    const int64_t size = G * CRS * P;
    if (nt > 1 && sz.N >= nt) {
        const std::unique_ptr<T[]> dcols(new T[nt * size]);  // (nt, G, CRS, P)
#pragma omp parallel num_threads(nt)
        {
            T* mine = dcols.get() + thread_id() * size;
#pragma omp for schedule(dynamic)
            for (int64_t n = 0; n < sz.N; ++n) one_image(n, mine);
        }
    } else {
        const std::unique_ptr<T[]> dcols(new T[size]);
        for (int64_t n = 0; n < sz.N; ++n) one_image(n, dcols.get());
    }
}

// dw = sum over images of dout @ cols^T, per group
//   dw: (K, Cg, R, S), x: (N, C, H, W), dout: (N, K, OH, OW)
template <typename T>
void backward_weight_gemm(T* dw, const T* x, const T* dout, const Conv2dShape& sz) {
    const int64_t G = sz.groups, Kg = sz.K / G, CRS = sz.C / G * sz.R * sz.S, size = sz.K * CRS;
    // dw[g] (Kg x CRS) = sum over parts t of dout[:, g, part t] (Kg x part) @ cols[:, g, part t]^T:
    // the N * OH * OW output positions (of every image) split into one part per thread, so the
    // GEMMs run side by side (threads over the batch, no barriers), then the partial sums add up.
    const int64_t parts = get_num_threads();
    const int64_t part = (sz.N * sz.OH * sz.OW + parts - 1) / parts;
    const std::unique_ptr<T[]> partial(parts > 1 ? new T[parts * size] : nullptr);  // (parts, K, CRS)
    T* const dw_t = parts > 1 ? partial.get() : dw;
    std::vector<T*> dw_tg(parts * G);
    for (int64_t b = 0; b < parts * G; ++b) dw_tg[b] = dw_t + b * Kg * CRS;  // b = t * G + g

    const PositionPart<T> dout_parts{dout, &sz, part}, x_parts{x, &sz, part};
    const GemmOperand<T> A{nullptr, 0, 0, &pack_dout_weight_grad<T>, &dout_parts};
    const GemmOperand<T> B{nullptr, 0, 0, &pack_cols_weight_grad<T>, &x_parts};
    gemm_batched(dw_tg.data(), CRS, 1, A, B, parts * G, Kg, CRS, part, T(0));
    if (parts == 1) return;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) \
    if (parts * size >= kMinParallelWork)
    for (int64_t i = 0; i < size; ++i) {
        T sum = T(0);
        for (int64_t t = 0; t < parts; ++t) sum += partial[t * size + i];
        dw[i] = sum;
    }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Entry points (declared in conv2d.h)

void conv2d_forward(float* out, const float* x, const float* w, const float* bias, const Conv2dShape& s) {
    forward_gemm(out, x, w, bias, s);
}
void conv2d_forward(double* out, const double* x, const double* w, const double* bias,
                    const Conv2dShape& s) {
    forward_gemm(out, x, w, bias, s);
}
void conv2d_backward_input(float* dx, const float* dout, const float* w, const float* bias_c,
                           const Conv2dShape& s) {
    backward_input_gemm(dx, dout, w, bias_c, s);
}
void conv2d_backward_input(double* dx, const double* dout, const double* w, const double* bias_c,
                           const Conv2dShape& s) {
    backward_input_gemm(dx, dout, w, bias_c, s);
}
void conv2d_backward_weight(float* dw, const float* x, const float* dout, const Conv2dShape& s) {
    backward_weight_gemm(dw, x, dout, s);
}
void conv2d_backward_weight(double* dw, const double* x, const double* dout, const Conv2dShape& s) {
    backward_weight_gemm(dw, x, dout, s);
}

void conv2d_forward_plain(float* out, const float* x, const float* w, const float* bias,
                          const Conv2dShape& s) {
    forward_plain(out, x, w, bias, s);
}
void conv2d_forward_plain(double* out, const double* x, const double* w, const double* bias,
                          const Conv2dShape& s) {
    forward_plain(out, x, w, bias, s);
}
void conv2d_backward_input_plain(float* dx, const float* dout, const float* w, const float* bias_c,
                                 const Conv2dShape& s) {
    backward_input_plain(dx, dout, w, bias_c, s);
}
void conv2d_backward_input_plain(double* dx, const double* dout, const double* w, const double* bias_c,
                                 const Conv2dShape& s) {
    backward_input_plain(dx, dout, w, bias_c, s);
}
void conv2d_backward_weight_plain(float* dw, const float* x, const float* dout, const Conv2dShape& s) {
    backward_weight_plain(dw, x, dout, s);
}
void conv2d_backward_weight_plain(double* dw, const double* x, const double* dout, const Conv2dShape& s) {
    backward_weight_plain(dw, x, dout, s);
}

}  // namespace cpu
}  // namespace kg
