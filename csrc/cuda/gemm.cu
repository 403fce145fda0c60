// gemm.cu: batched strided matrix multiply (see gemm.h), the classic SGEMM ladder, each kernel
// a step from the one before:
//
//   C[b, i, j] = sum_{k < K} A[b, i, k] * B[b, k, j]
//
//   naive: one thread per C[b, i, j], a dot product straight from global memory (any dtype);
//   smem:  a 32 x 32 block of threads per 32 x 32 tile of C; A and B pass through shared memory
//          in 32 x 32 tiles, so each element read from global memory is used 32 times;
//   reg2d: a 256-thread block per 128 x 128 tile of C, A and B through shared memory in 128 x 8
//          and 8 x 128 panels, each thread an 8 x 8 tile of C in registers: per k it reads 8 + 8
//          values from shared memory for 64 FMAs (float64: 64 x 64 tiles, 4 x 4 per thread);
//   vec:   reg2d with float4 global loads and stores (float32, 16-byte aligned operands).
//
// The grid is (column tiles, row tiles, batch); a batch, or a number of row tiles, above CUDA's
// 65535 limit on gridDim.y/z is split into several launches. Edge tiles (M, N, K not multiples
// of the tile) are bounds-checked: out-of-range loads give 0, out-of-range stores are skipped.
#include "cuda/gemm.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/kg_cuda.cuh"

namespace kg {
namespace cuda {

namespace {

// ---------------------------------------------------------------------------------------------
// Operands

// A batch of matrices: element (b, r, c) at ptr[b * batch + r * row + c * col]. Kernels add
// offsets to `ptr` only where they read or write, so that an empty operand (K == 0: ptr may be
// null) is never offset.
template <typename T>
struct Strided {
    T* ptr;
    int64_t batch, row, col;
};

// The sum's type: float for float16, uint64 for int64 (it wraps, as NumPy's int64 matmul does;
// signed overflow is undefined in C++).
template <typename T> struct AccOf { using type = compute_t<T>; };
template <> struct AccOf<int64_t> { using type = uint64_t; };
template <typename T> using acc_t = typename AccOf<T>::type;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// naive: thread (x, y) of block (bx, by, b) computes C[b, i, j], i = by * 8 + y, j = bx * 32 + x.
// Consecutive threads take consecutive j: B and C are read and written along rows.

constexpr int kNaiveX = 32, kNaiveY = 8;

template <typename T>
__global__ void gemm_naive_kernel(Strided<T> c, Strided<const T> a, Strided<const T> b, int64_t M, int64_t N,
                                  int64_t K) {
    const int64_t z = blockIdx.z;
    const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.y + threadIdx.y;
    const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= M || j >= N) return;
    const int64_t a_i = z * a.batch + i * a.row, b_j = z * b.batch + j * b.col;
    using Acc = acc_t<T>;
    Acc sum = 0;
    for (int64_t k = 0; k < K; ++k)
        sum += static_cast<Acc>(load(a.ptr[a_i + k * a.col])) * static_cast<Acc>(load(b.ptr[b_j + k * b.row]));
    c.ptr[z * c.batch + i * c.row + j * c.col] = convert<T>(sum);
}

// ---------------------------------------------------------------------------------------------
// Loading a panel into shared memory (smem, reg2d). A's tile is stored transposed, As[k][i], so
// that both tiles are read along their rows in the inner loop; both are then "panels" P(x, k):
//   A: P(x, k) = A[i0 + x, k0 + k]   (x stride: A's row stride, k stride: A's col stride)
//   B: P(x, k) = B[k0 + k, j0 + x]   (x stride: B's col stride, k stride: B's row stride)

// tile[k * LD + x] = P(x, k) = src[origin + x * sx + k * sk] for x < BX, k < BK; 0 where x >= X or
// k >= K. The block's THREADS threads copy BK * BX / THREADS elements each; consecutive threads
// take consecutive k when k is contiguous in memory (sk == 1), else consecutive x, so a warp's reads
// are coalesced for either layout. A thread's elements are then THREADS / BK apart in x, or
// THREADS / BX apart in k: one offset and one step each. LD (> BX) pads the rows against bank
// conflicts on the transposing store.
template <int BK, int BX, int LD, int THREADS, typename T>
__device__ inline void load_panel(T* tile, const T* src, int64_t origin, int64_t sx, int64_t sk, int64_t X,
                                  int64_t K, int t) {
    static_assert(THREADS % BK == 0 && THREADS % BX == 0 && (BK * BX) % THREADS == 0,
                  "load_panel: the threads must tile the panel");
    const bool k_fast = sk == 1;
    const int x = k_fast ? t / BK : t % BX, k = k_fast ? t % BK : t / BX;
    const int dx = k_fast ? THREADS / BK : 0, dk = k_fast ? 0 : THREADS / BX;
    int64_t at = origin + x * sx + k * sk;
    const int64_t step = dx * sx + dk * sk;
KG_UNROLL
    for (int pass = 0; pass < BK * BX / THREADS; ++pass, at += step) {
        const int xp = x + pass * dx, kp = k + pass * dk;
        tile[kp * LD + xp] = (xp < X && kp < K) ? src[at] : T(0);
    }
}

// The float4 version (vec): one float4 of 4 consecutive x (when sx == 1) or 4 consecutive k (when
// sk == 1) per thread and pass. gemm_version() checked that every float4 is 16-byte aligned and lies
// wholly inside or wholly outside the matrix (its contiguous extent is a multiple of 4).
template <int BK, int BX, int LD, int THREADS>
__device__ inline void load_panel_vec(float* tile, const float* src, int64_t origin, int64_t sx, int64_t sk,
                                      int64_t X, int64_t K, int t) {
    static_assert((BK * BX) % (4 * THREADS) == 0 && BK % 4 == 0 && LD % 4 == 0,
                  "load_panel_vec: the threads must tile the panel in float4s");
    const bool along_x = sx == 1;
KG_UNROLL
    for (int pass = 0; pass < BK * BX / (4 * THREADS); ++pass) {
        const int e = pass * THREADS + t;
        const int x = along_x ? e % (BX / 4) * 4 : e / (BK / 4), k = along_x ? e / (BX / 4) : e % (BK / 4) * 4;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (x < X && k < K) v = *reinterpret_cast<const float4*>(src + origin + x * sx + k * sk);
        if (along_x) {
            *reinterpret_cast<float4*>(tile + k * LD + x) = v;
        } else {
            tile[k * LD + x] = v.x;
            tile[(k + 1) * LD + x] = v.y;
            tile[(k + 2) * LD + x] = v.z;
            tile[(k + 3) * LD + x] = v.w;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// smem: block (32, 32) per 32 x 32 tile of C; thread (x, y) sums C[i0 + y, j0 + x] over k-tiles:
//   C[i, j] = sum_{k0} sum_{k < 32} As[k][y] * Bs[k][x]

constexpr int kSmemTile = 32;

template <typename T>
__global__ void __launch_bounds__(kSmemTile * kSmemTile)
gemm_smem_kernel(Strided<T> c, Strided<const T> a, Strided<const T> b, int64_t M, int64_t N, int64_t K) {
    constexpr int S = kSmemTile, LD = S + 1;  // the odd row length keeps the transposing store conflict-free
    __shared__ T As[S * LD];                  // As[k][y] = A[i0 + y, k0 + k]
    __shared__ T Bs[S * LD];                  // Bs[k][x] = B[k0 + k, j0 + x]
    const int x = threadIdx.x, y = threadIdx.y, t = y * S + x;
    const int64_t z = blockIdx.z, i0 = static_cast<int64_t>(blockIdx.y) * S, j0 = static_cast<int64_t>(blockIdx.x) * S;
    T sum = 0;
    for (int64_t k0 = 0; k0 < K; k0 += S) {
        load_panel<S, S, LD, S * S>(As, a.ptr, z * a.batch + i0 * a.row + k0 * a.col, a.row, a.col, M - i0, K - k0, t);
        load_panel<S, S, LD, S * S>(Bs, b.ptr, z * b.batch + k0 * b.row + j0 * b.col, b.col, b.row, N - j0, K - k0, t);
        __syncthreads();
KG_UNROLL
        for (int k = 0; k < S; ++k) sum += As[k * LD + y] * Bs[k * LD + x];
        __syncthreads();  // the tiles are overwritten next
    }
    if (i0 + y < M && j0 + x < N) c.ptr[z * c.batch + (i0 + y) * c.row + (j0 + x) * c.col] = sum;
}

// ---------------------------------------------------------------------------------------------
// reg2d and vec: a block of (BM / TM) * (BN / TN) threads per BM x BN tile of C, k-tiles of BK.
// Thread (tx, ty) holds TM x TN sums of C in registers, in groups of 4 x 4 spread over the tile
// so that a float4 covers 4 of its columns and a warp reads consecutive words of shared memory:
//   rows i0 + h * (BM / (TM / 4)) + ty * 4 + u,  h < TM / 4, u < 4
//   cols j0 + g * (BN / (TN / 4)) + tx * 4 + v,  g < TN / 4, v < 4
// Per k-tile:  acc[m][n] += sum_{k < BK} As[k][row m] * Bs[k][col n]   (TM + TN loads, TM * TN FMAs)

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tiles {
    static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
    static constexpr int TX = BN / TN, TY = BM / TM, kThreads = TX * TY;
    static constexpr int LDA = BM + 4, LDB = BN + 4;  // +4: conflict-free transposing stores, float4-aligned rows
    static_assert(TM % 4 == 0 && TN % 4 == 0, "the register tile is made of 4 x 4 groups");
    // the register tile's m-th row and n-th column within the block tile
    __host__ __device__ static constexpr int row(int ty, int m) { return m / 4 * (TY * 4) + ty * 4 + m % 4; }
    __host__ __device__ static constexpr int col(int tx, int n) { return n / 4 * (TX * 4) + tx * 4 + n % 4; }
};
using TilesF32 = Tiles<128, 128, 8, 8, 8>;
using TilesF64 = Tiles<64, 64, 8, 4, 4>;  // 16 doubles of sums: 8 x 8 would need 128 registers for them alone

template <typename T, typename P, bool kVec>
__global__ void __launch_bounds__(P::kThreads, 2)
gemm_tiled_kernel(Strided<T> c, Strided<const T> a, Strided<const T> b, int64_t M, int64_t N, int64_t K) {
    static_assert(!kVec || std::is_same<T, float>::value, "vec is float32 only");
    __shared__ __align__(16) T As[P::BK * P::LDA];  // As[k][i] = A[i0 + i, k0 + k]
    __shared__ __align__(16) T Bs[P::BK * P::LDB];  // Bs[k][j] = B[k0 + k, j0 + j]
    const int t = threadIdx.x, tx = t % P::TX, ty = t / P::TX;
    const int64_t z = blockIdx.z, i0 = static_cast<int64_t>(blockIdx.y) * P::BM;
    const int64_t j0 = static_cast<int64_t>(blockIdx.x) * P::BN;
    const int64_t a_origin = z * a.batch + i0 * a.row, b_origin = z * b.batch + j0 * b.col;

    T acc[P::TM][P::TN] = {};
    for (int64_t k0 = 0; k0 < K; k0 += P::BK) {
        if constexpr (kVec) {
            load_panel_vec<P::BK, P::BM, P::LDA, P::kThreads>(As, a.ptr, a_origin + k0 * a.col, a.row, a.col, M - i0,
                                                              K - k0, t);
            load_panel_vec<P::BK, P::BN, P::LDB, P::kThreads>(Bs, b.ptr, b_origin + k0 * b.row, b.col, b.row, N - j0,
                                                              K - k0, t);
        } else {
            load_panel<P::BK, P::BM, P::LDA, P::kThreads>(As, a.ptr, a_origin + k0 * a.col, a.row, a.col, M - i0,
                                                          K - k0, t);
            load_panel<P::BK, P::BN, P::LDB, P::kThreads>(Bs, b.ptr, b_origin + k0 * b.row, b.col, b.row, N - j0,
                                                          K - k0, t);
        }
        __syncthreads();
KG_UNROLL
        for (int k = 0; k < P::BK; ++k) {
            T a_frag[P::TM], b_frag[P::TN];
KG_UNROLL
            for (int m = 0; m < P::TM; ++m) a_frag[m] = As[k * P::LDA + P::row(ty, m)];
KG_UNROLL
            for (int n = 0; n < P::TN; ++n) b_frag[n] = Bs[k * P::LDB + P::col(tx, n)];
KG_UNROLL
            for (int m = 0; m < P::TM; ++m) {
KG_UNROLL
                for (int n = 0; n < P::TN; ++n) acc[m][n] += a_frag[m] * b_frag[n];
            }
        }
        __syncthreads();  // the panels are overwritten next
    }

    // C[i0 + row m, j0 + col n] = acc[m][n], skipping rows >= M and columns >= N
KG_UNROLL
    for (int m = 0; m < P::TM; ++m) {
        const int64_t i = i0 + P::row(ty, m);
        if (i >= M) continue;
        const int64_t c_i = z * c.batch + i * c.row;
KG_UNROLL
        for (int g = 0; g < P::TN; g += 4) {
            const int64_t j = j0 + P::col(tx, g);
            if constexpr (kVec) {  // gemm_version() checked: col stride 1, N % 4 == 0, 16-byte aligned rows
                // (indexing a float4 row, rather than casting each address, keeps nvcc's stores 128-bit)
                float4* c_row = reinterpret_cast<float4*>(c.ptr + c_i);
                if (j < N) c_row[j / 4] = make_float4(acc[m][g], acc[m][g + 1], acc[m][g + 2], acc[m][g + 3]);
            } else {
KG_UNROLL
                for (int v = 0; v < 4; ++v)
                    if (j + v < N) c.ptr[c_i + (j + v) * c.col] = acc[m][g + v];
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Launchers

// Launch `kernel` over a grid of (column tiles, row tiles, batch), in as many launches as the
// 65535 limits on gridDim.y and gridDim.z require, each with A and C moved to its first row and
// all three operands to its first matrix.
template <typename T, typename... Params>
void launch_tiles(void (*kernel)(Params...), dim3 block, int64_t BM, int64_t BN, Strided<T> c,
                  Strided<const T> a, Strided<const T> b, int64_t batch, int64_t M, int64_t N, int64_t K) {
    const int64_t tiles_m = ceil_div(M, BM), tiles_n = ceil_div(N, BN);
    if (tiles_n > INT32_MAX) throw std::invalid_argument("gemm: N = " + std::to_string(N) + " is too large");
    for (int64_t b0 = 0; b0 < batch; b0 += kMaxGrid) {
        for (int64_t m0 = 0; m0 < tiles_m; m0 += kMaxGrid) {
            const int64_t i0 = m0 * BM;
            const dim3 grid(static_cast<unsigned>(tiles_n),
                            static_cast<unsigned>(std::min<int64_t>(tiles_m - m0, kMaxGrid)),
                            static_cast<unsigned>(std::min<int64_t>(batch - b0, kMaxGrid)));
            // (no pointer moves at all for the first launch: an empty operand's pointer may be null)
            Strided<T> cc = c;
            Strided<const T> aa = a, bb = b;
            if (b0 > 0 || i0 > 0) {
                cc.ptr += b0 * c.batch + i0 * c.row;
                aa.ptr += b0 * a.batch + i0 * a.row;
                bb.ptr += b0 * b.batch;
            }
            launch(kernel, grid, block, 0, nullptr, cc, aa, bb, M - i0, N, K);
        }
    }
}

// The strides of a (batch, rows, cols) operand, with the stride of any dim of size 1 set to 0:
// it never moves the pointer, and 0 passes the vec checks below.
template <typename T>
Strided<T> strided(T* ptr, const int64_t strides[3], int64_t batch, int64_t rows, int64_t cols) {
    return {ptr, batch == 1 ? 0 : strides[0], rows == 1 ? 0 : strides[1], cols == 1 ? 0 : strides[2]};
}

// vec reads and writes an operand a float4 at a time along one of its dims (`unit`: its stride is 1,
// its size `extent`) and needs every float4 16-byte aligned and wholly inside or outside the matrix:
// the pointer aligned, the other strides and the extent multiples of 4.
bool float4_aligned(const void* ptr, int64_t unit, int64_t extent, int64_t other, int64_t batch) {
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && unit == 1 && extent % 4 == 0 && other % 4 == 0 &&
           batch % 4 == 0;
}

// A and B along whichever of their dims is contiguous (load_panel_vec); C along its rows
bool vec_applies(const Strided<const float>& c, const Strided<const float>& a, const Strided<const float>& b,
                 int64_t M, int64_t N, int64_t K) {
    return (float4_aligned(a.ptr, a.col, K, a.row, a.batch) || float4_aligned(a.ptr, a.row, M, a.col, a.batch)) &&
           (float4_aligned(b.ptr, b.row, K, b.col, b.batch) || float4_aligned(b.ptr, b.col, N, b.row, b.batch)) &&
           float4_aligned(c.ptr, c.col, N, c.row, c.batch);
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::Bool: return "bool";
        case DType::Int64: return "int64";
        case DType::Float16: return "float16";
        case DType::Float32: return "float32";
        case DType::Float64: return "float64";
    }
    return "?";
}

}  // namespace

const char* gemm_version_name(GemmVersion version) {
    switch (version) {
        case GemmVersion::automatic: return "auto";
        case GemmVersion::naive: return "naive";
        case GemmVersion::smem: return "smem";
        case GemmVersion::reg2d: return "reg2d";
        case GemmVersion::vec: return "vec";
    }
    return "unknown";
}

GemmVersion gemm_version(GemmVersion version, DType dtype, const void* c, const int64_t c_strides[3], const void* a,
                         const int64_t a_strides[3], const void* b, const int64_t b_strides[3], int64_t batch,
                         int64_t M, int64_t N, int64_t K) {
    dtype_size(dtype);  // throws for an unknown dtype code
    const bool is_float = dtype == DType::Float32 || dtype == DType::Float64;
    bool takes = dtype != DType::Bool;  // naive, automatic
    if (version == GemmVersion::smem || version == GemmVersion::reg2d) takes = is_float;
    if (version == GemmVersion::vec) takes = dtype == DType::Float32;
    if (!takes) {
        throw std::invalid_argument(std::string("gemm: version ") + gemm_version_name(version) + " does not take " +
                                    dtype_name(dtype));
    }
    if (version == GemmVersion::automatic) version = dtype == DType::Float32 ? GemmVersion::vec
                                                   : dtype == DType::Float64 ? GemmVersion::reg2d
                                                                             : GemmVersion::naive;
    if (version == GemmVersion::vec) {
        const auto cs = strided(static_cast<const float*>(c), c_strides, batch, M, N);
        const auto as = strided(static_cast<const float*>(a), a_strides, batch, M, K);
        const auto bs = strided(static_cast<const float*>(b), b_strides, batch, K, N);
        if (!vec_applies(cs, as, bs, M, N, K)) version = GemmVersion::reg2d;
    }
    return version;
}

void gemm(GemmVersion version, DType dtype, void* c, const int64_t c_strides[3], const void* a,
          const int64_t a_strides[3], const void* b, const int64_t b_strides[3], int64_t batch, int64_t M, int64_t N,
          int64_t K) {
    version = gemm_version(version, dtype, c, c_strides, a, a_strides, b, b_strides, batch, M, N, K);
    if (batch <= 0 || M <= 0 || N <= 0) return;
    dispatch_dtype(dtype, [&](auto tag) {
        using T = decltype(tag);
        if constexpr (!std::is_same<T, bool>::value) {
            const auto cs = strided(static_cast<T*>(c), c_strides, batch, M, N);
            const auto as = strided(static_cast<const T*>(a), a_strides, batch, M, K);
            const auto bs = strided(static_cast<const T*>(b), b_strides, batch, K, N);
            if (version == GemmVersion::naive)
                launch_tiles(gemm_naive_kernel<T>, dim3(kNaiveX, kNaiveY), kNaiveY, kNaiveX, cs, as, bs, batch, M, N,
                             K);
            if constexpr (std::is_floating_point<T>::value) {
                using P = typename std::conditional<std::is_same<T, float>::value, TilesF32, TilesF64>::type;
                if (version == GemmVersion::smem)
                    launch_tiles(gemm_smem_kernel<T>, dim3(kSmemTile, kSmemTile), kSmemTile, kSmemTile, cs, as, bs,
                                 batch, M, N, K);
                if (version == GemmVersion::reg2d)
                    launch_tiles(gemm_tiled_kernel<T, P, false>, dim3(P::kThreads), P::BM, P::BN, cs, as, bs, batch,
                                 M, N, K);
                if constexpr (std::is_same<T, float>::value) {
                    if (version == GemmVersion::vec)
                        launch_tiles(gemm_tiled_kernel<T, P, true>, dim3(P::kThreads), P::BM, P::BN, cs, as, bs, batch,
                                     M, N, K);
                }
            }
        }
    });
}

}  // namespace cuda
}  // namespace kg
