// isa.h: what the CPU we run on supports. The AVX2 + FMA kernels (the *_avx2.cpp files) are
// compiled into every build on x86-64 and chosen at run time with this check, so a wheel built
// here still runs on a CPU without AVX2.
#pragma once

namespace kg {
namespace cpu {

inline bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

}  // namespace cpu
}  // namespace kg
