// special.cpp: erf and erfc over arrays (see special.h).
#include "cpu/special.h"

#include <cmath>

#include "cpu/parallel.h"
#include "cpu/vec.h"

namespace kg {
namespace cpu {
namespace {

// y[i] = f(x[i]) for i in [0, n), threaded when n is large enough to pay for it
template <typename T, typename F>
void map(T* y, const T* x, int64_t n, F f) {
    const int nt = memory_bound_threads(n * 8);  // erf costs several loads' worth per element
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

}  // namespace

template <typename T>
void erf(T* y, const T* x, int64_t n) {
    map(y, x, n, [](T v) { return std::erf(v); });
}

template <typename T>
void erfc(T* y, const T* x, int64_t n) {
    map(y, x, n, [](T v) { return std::erfc(v); });
}

template void erf<float>(float*, const float*, int64_t);
template void erf<double>(double*, const double*, int64_t);
template void erfc<float>(float*, const float*, int64_t);
template void erfc<double>(double*, const double*, int64_t);

}  // namespace cpu
}  // namespace kg
