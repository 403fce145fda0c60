// pad2d.cpp: reflect / replicate padding as a separable gather (index2d.h) with the source
// positions of pad2d.h, and its backward as the matching scatter-add.
#include "cpu/pad2d.h"

#include <algorithm>
#include <vector>

#include "cpu/index2d.h"

namespace kg {
namespace cpu {
namespace {

// Source position of each of the in + before + after output positions along one axis
std::vector<int64_t> pad_sources(int64_t in, int64_t before, int64_t after, PadMode mode) {
    std::vector<int64_t> src(in + before + after);
    for (int64_t o = 0; o < static_cast<int64_t>(src.size()); ++o) {
        const int64_t j = o - before;
        if (mode == PadMode::replicate)
            src[o] = std::clamp<int64_t>(j, 0, in - 1);
        else
            src[o] = j < 0 ? -j : (j >= in ? 2 * (in - 1) - j : j);
    }
    return src;
}

}  // namespace

template <typename T>
void pad2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t top,
                   int64_t bottom, int64_t left, int64_t right, PadMode mode) {
    gather2d(out, x, planes, H, W, pad_sources(H, top, bottom, mode),
             pad_sources(W, left, right, mode));
}

template <typename T>
void pad2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t top,
                    int64_t bottom, int64_t left, int64_t right, PadMode mode) {
    scatter_add2d(dx, dy, planes, H, W, pad_sources(H, top, bottom, mode),
                  pad_sources(W, left, right, mode));
}

template void pad2d_forward(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                            int64_t, int64_t, PadMode);
template void pad2d_forward(double*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                            int64_t, int64_t, PadMode);
template void pad2d_backward(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, PadMode);
template void pad2d_backward(double*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, PadMode);

}  // namespace cpu
}  // namespace kg
