// special.h: elementwise special functions that NumPy does not have.
//
//   erf(x)  = 2/sqrt(pi) int_0^x e^{-t^2} dt
//   erfc(x) = 1 - erf(x), accurate where it is small (x large)
//
// Both call the C library's erf/erfc (correctly rounded to ~1 ulp in float32 and float64), one
// element at a time, threaded over the array (memory_bound_threads decides how many threads).
#pragma once

#include <cstdint>

namespace kg {
namespace cpu {

// y (n,) = erf(x (n,)); y may be x
template <typename T> void erf(T* y, const T* x, int64_t n);
// y (n,) = erfc(x (n,)); y may be x
template <typename T> void erfc(T* y, const T* x, int64_t n);

}  // namespace cpu
}  // namespace kg
