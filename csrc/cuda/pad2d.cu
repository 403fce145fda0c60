// pad2d.cu: reflect / replicate padding on the device as index2d.cuh's separable gather with
// PadAxis, and its backward as the gather's adjoint (one thread per input element summing the at
// most 3 x 3 mirror images, or a replicated edge's ranges, that read it: deterministic).
//
// One version each: a grid-stride loop of kBlock-thread blocks, one thread per element written.
#include "cuda/pad2d.h"

#include <cstdint>

#include "cuda/index2d.cuh"

namespace kg {
namespace cuda {

template <typename T>
void pad2d_forward(T* out, const T* x, int64_t planes, int64_t H, int64_t W, int64_t top, int64_t bottom,
                   int64_t left, int64_t right, bool reflect) {
    gather2d(out, x, planes, PadAxis::make(H, top, bottom, reflect), PadAxis::make(W, left, right, reflect));
}

template <typename T>
void pad2d_backward(T* dx, const T* dy, int64_t planes, int64_t H, int64_t W, int64_t top, int64_t bottom,
                    int64_t left, int64_t right, bool reflect) {
    gather2d_adjoint(dx, dy, planes, PadAxis::make(H, top, bottom, reflect), PadAxis::make(W, left, right, reflect));
}

template void pad2d_forward(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                            bool);
template void pad2d_forward(double*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                            bool);
template void pad2d_backward(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                             bool);
template void pad2d_backward(double*, const double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                             bool);

}  // namespace cuda
}  // namespace kg
