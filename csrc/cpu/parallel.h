// parallel.h: the thread count of the CPU kernels. OpenMP when the build has it, else one thread.
//
// The count is one process-wide setting passed to each parallel region as num_threads(...),
// not omp_set_num_threads (which only sets the calling thread's value).
#pragma once

#include <atomic>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kg {
namespace cpu {

#ifdef _OPENMP
// Default: omp_get_max_threads(), i.e. OMP_NUM_THREADS when set, else the number of cores.
inline std::atomic<int>& num_threads_setting() {
    static std::atomic<int> n{omp_get_max_threads()};
    return n;
}
inline int get_num_threads() { return num_threads_setting().load(std::memory_order_relaxed); }
// n >= 1 (the binding checks it).
inline void set_num_threads(int n) { num_threads_setting().store(n, std::memory_order_relaxed); }
inline int thread_id() { return omp_get_thread_num(); }
// True inside a parallel region: a kernel called from there runs on the calling thread.
inline bool in_parallel() { return omp_in_parallel(); }
#else
// Built without OpenMP: every kernel runs on the calling thread.
inline int get_num_threads() { return 1; }
inline void set_num_threads(int) {}
inline int thread_id() { return 0; }
inline bool in_parallel() { return false; }
#endif

}  // namespace cpu
}  // namespace kg
