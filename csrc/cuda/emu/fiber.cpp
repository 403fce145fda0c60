// emu/fiber.cpp: fiber stacks and the context switch (see fiber.h).
#include "cuda/emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <new>

#if defined(KG_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace kg {
namespace emu {

// ---------------------------------------------------------------------------------------------
// Stacks

namespace {

#if defined(KG_EMU_ASAN)
constexpr size_t kStackSize = 256 * 1024;
#else
constexpr size_t kStackSize = 64 * 1024;
#endif

size_t page_size() {
    static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

void unpoison(Stack stack) {
#if defined(KG_EMU_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(stack.base, stack.size);
#else
    (void)stack;
#endif
}

}  // namespace

StackPool::~StackPool() {
    for (Stack s : free_) {
        unpoison(s);
        munmap(s.base - page_size(), s.size + page_size());
    }
}

Stack StackPool::acquire() {
    if (!free_.empty()) {
        Stack s = free_.back();
        free_.pop_back();
        return s;
    }
    const size_t guard = page_size();
    void* mem = mmap(nullptr, kStackSize + guard, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    if (mprotect(mem, guard, PROT_NONE) != 0) {
        munmap(mem, kStackSize + guard);
        throw std::bad_alloc();
    }
    return Stack{static_cast<char*>(mem) + guard, kStackSize};
}

// A stack may come back with live (abandoned) frames whose redzones ASan still has poisoned.
void StackPool::release(Stack stack) {
    unpoison(stack);
    free_.push_back(stack);
}

// ---------------------------------------------------------------------------------------------
// Context switch

#if defined(__x86_64__)

// kg_emu_switch(void** save_sp /* rdi */, void* load_sp /* rsi */): push the callee-saved
// registers and the floating-point control state, save rsp, load the other rsp, pop its state
// and return into it. kg_emu_trampoline is where a new context first "returns" to: it calls
// entry(arg) from r13(r12) with a 16-byte aligned stack; CFI marks it as the outermost frame.
asm(R"(
    .text
    .globl kg_emu_switch
    .hidden kg_emu_switch
    .type kg_emu_switch, @function
    .p2align 4
kg_emu_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size kg_emu_switch, .-kg_emu_switch

    .globl kg_emu_trampoline
    .hidden kg_emu_trampoline
    .type kg_emu_trampoline, @function
    .p2align 4
kg_emu_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size kg_emu_trampoline, .-kg_emu_trampoline
)");

extern "C" void kg_emu_trampoline();

void make_context(Context* ctx, Stack stack, void (*entry)(void*), void* arg) {
    // The frame kg_emu_switch pops, from the saved rsp up: MXCSR and x87 control word, r15, r14,
    // r13 (entry), r12 (arg), rbx, rbp, the return address (the trampoline), then padding so that
    // rsp is 16-byte aligned when the trampoline runs.
    auto top = reinterpret_cast<uintptr_t>(stack.base + stack.size) & ~uintptr_t(15);
    auto* frame = reinterpret_cast<uint64_t*>(top - 80);
    std::memset(frame, 0, 80);
    uint32_t mxcsr;
    uint16_t fpu_cw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpu_cw));
    std::memcpy(reinterpret_cast<char*>(frame), &mxcsr, 4);
    std::memcpy(reinterpret_cast<char*>(frame) + 4, &fpu_cw, 2);
    frame[3] = reinterpret_cast<uint64_t>(entry);
    frame[4] = reinterpret_cast<uint64_t>(arg);
    frame[7] = reinterpret_cast<uint64_t>(&kg_emu_trampoline);
    ctx->sp = frame;
}

#else

namespace {
void ucontext_entry(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi, unsigned arg_lo) {
    auto entry = reinterpret_cast<void (*)(void*)>((uint64_t(entry_hi) << 32) | entry_lo);
    auto arg = reinterpret_cast<void*>((uint64_t(arg_hi) << 32) | arg_lo);
    entry(arg);
}
}  // namespace

void make_context(Context* ctx, Stack stack, void (*entry)(void*), void* arg) {
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = stack.base;
    ctx->uc.uc_stack.ss_size = stack.size;
    ctx->uc.uc_link = nullptr;
    const auto e = reinterpret_cast<uint64_t>(entry);
    const auto a = reinterpret_cast<uint64_t>(arg);
    makecontext(&ctx->uc, reinterpret_cast<void (*)()>(&ucontext_entry), 4, unsigned(e >> 32),
                unsigned(e), unsigned(a >> 32), unsigned(a));
}

#endif

// ---------------------------------------------------------------------------------------------
// ASan annotations

void asan_start_switch(void** fake_stack_save, const void* bottom, size_t size) {
#if defined(KG_EMU_ASAN)
    __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
    (void)fake_stack_save, (void)bottom, (void)size;
#endif
}

void asan_finish_switch(void* fake_stack, const void** bottom_old, size_t* size_old) {
#if defined(KG_EMU_ASAN)
    __sanitizer_finish_switch_fiber(fake_stack, bottom_old, size_old);
#else
    (void)fake_stack, (void)bottom_old, (void)size_old;
#endif
}

}  // namespace emu
}  // namespace kg
