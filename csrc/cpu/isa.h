// isa.h: what the CPU we run on supports, and the run-time choice between a kernel family's
// portable code and its AVX2 + FMA code. The *_avx2.cpp files are compiled into every x86-64
// build and chosen at run time, so a wheel built here still runs on a CPU without AVX2.
#pragma once

#include <atomic>
#include <cstring>

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

// One family's choice: AVX2 when the build has the code and the CPU has AVX2 and FMA ("auto",
// the default), or the portable code when forced ("generic", for tests and old CPUs).
class IsaChoice {
public:
    explicit IsaChoice(bool built_with_avx2) : built_(built_with_avx2), avx2_(detect()) {}

    bool avx2() const { return avx2_.load(std::memory_order_relaxed); }
    const char* name() const { return avx2() ? "avx2" : "generic"; }

    // "auto" or "generic"; false (and no change) for any other name
    bool set(const char* name) {
        if (std::strcmp(name, "auto") == 0) {
            avx2_.store(detect());
        } else if (std::strcmp(name, "generic") == 0) {
            avx2_.store(false);
        } else {
            return false;
        }
        return true;
    }

private:
    bool detect() const { return built_ && cpu_has_avx2_fma(); }

    const bool built_;
    std::atomic<bool> avx2_;
};

}  // namespace cpu
}  // namespace kg
