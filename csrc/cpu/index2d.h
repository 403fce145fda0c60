// index2d.h: separable 2-D gathers over NCHW planes and their adjoint, shared by nearest
// upsampling (upsample.cpp) and reflect / replicate padding (pad2d.cpp), which differ only in
// the index tables:
//
//   gather2d:       out[p][i][j] = x[p][rows[i]][cols[j]]
//   scatter_add2d:  dx = 0, then dx[p][rows[i]][cols[j]] += dy[p][i][j]   (gather2d's backward)
//
// Threads split the planes, so the scatter never races. The tables must hold valid positions
// (rows[i] in [0, H), cols[j] in [0, W)): their callers build them that way.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/parallel.h"

namespace kg {
namespace cpu {

// out: (planes, rows.size(), cols.size());  x: (planes, H, W)
template <typename T>
void gather2d(T* out, const T* x, int64_t planes, int64_t H, int64_t W,
              const std::vector<int64_t>& rows, const std::vector<int64_t>& cols) {
    const int64_t OH = static_cast<int64_t>(rows.size()), OW = static_cast<int64_t>(cols.size());
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = 0; i < OH; ++i) {
            const T* x_row = x + (p * H + rows[i]) * W;
            T* out_row = out + (p * OH + i) * OW;
            for (int64_t j = 0; j < OW; ++j) out_row[j] = x_row[cols[j]];
        }
}

// dx: (planes, H, W);  dy: (planes, rows.size(), cols.size())
template <typename T>
void scatter_add2d(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W,
                   const std::vector<int64_t>& rows, const std::vector<int64_t>& cols) {
    const int64_t OH = static_cast<int64_t>(rows.size()), OW = static_cast<int64_t>(cols.size());
#pragma omp parallel for num_threads(get_num_threads()) schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
        std::fill(dx + p * H * W, dx + (p + 1) * H * W, T(0));
        for (int64_t i = 0; i < OH; ++i) {
            T* dx_row = dx + (p * H + rows[i]) * W;
            const T* dy_row = dy + (p * OH + i) * OW;
            for (int64_t j = 0; j < OW; ++j) dx_row[cols[j]] += dy_row[j];
        }
    }
}

}  // namespace cpu
}  // namespace kg
