// emu/fiber.h: fibers for the emulator's CUDA threads: stacks from mmap with a guard page, kept
// in a per-OS-thread pool and reused across blocks and launches, and a context switch.
//
// The switch is hand-written for x86-64 (callee-saved registers, MXCSR and the x87 control word:
// ~20-30 ns against ~350 ns for glibc's swapcontext, which makes a sigprocmask system call);
// other architectures use swapcontext. Under AddressSanitizer every switch is announced with
// __sanitizer_start/finish_switch_fiber (see Scheduler in scheduler.cpp) and a stack is unpoisoned
// before it is reused or unmapped, or ASan reports false stack overflows.
#pragma once

#include <cstddef>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define KG_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KG_EMU_ASAN 1
#endif
#endif

namespace kg {
namespace emu {

struct Stack {
    char* base = nullptr;  // lowest usable byte; the guard page lies just below
    size_t size = 0;
};

// Stacks of one OS thread. 64 KiB is plenty for kernels (256 KiB under ASan, whose redzones
// enlarge every frame).
class StackPool {
public:
    StackPool() = default;
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;
    ~StackPool();
    Stack acquire();
    void release(Stack stack);

private:
    std::vector<Stack> free_;
};

struct Context {
#if defined(__x86_64__)
    void* sp = nullptr;  // the saved stack pointer; the registers lie on the stack
#else
    ucontext_t uc;
#endif
};

// Prepare `ctx` so that switching to it calls entry(arg) on `stack`; entry must never return
// (it switches away for the last time instead).
void make_context(Context* ctx, Stack stack, void (*entry)(void*), void* arg);

// Save the running context into `from` and resume `to`.
#if defined(__x86_64__)
extern "C" void kg_emu_switch(void** save_sp, void* load_sp);
inline void switch_context(Context* from, Context* to) { kg_emu_switch(&from->sp, to->sp); }
#else
inline void switch_context(Context* from, Context* to) { swapcontext(&from->uc, &to->uc); }
#endif

// AddressSanitizer's fiber annotations (no-ops without ASan).
void asan_start_switch(void** fake_stack_save, const void* bottom, size_t size);
void asan_finish_switch(void* fake_stack, const void** bottom_old, size_t* size_old);

}  // namespace emu
}  // namespace kg
