// emu/scheduler.cpp: runs a grid on the CPU. Blocks run one after another on the calling OS
// thread; the threads of a block are fibers, started and resumed in the schedule's order
// (forward, reverse or random:SEED), each running until it returns, reaches __syncthreads() or
// reaches a warp collective.
//
//   - __syncthreads() releases once every thread of the block that has not returned waits at it.
//     Threads waiting at different call sites, or a thread that returned while the others wait,
//     are errors: CUDA leaves both undefined.
//   - A warp collective resolves per warp, once every lane its mask names has arrived at the same
//     collective (same operation and call site) with the same mask. Resolving them with a
//     block-wide barrier would deadlock or go wrong in the common "warp 0 finishes the block
//     reduction" code. A mask that names a lane that does not exist or has returned, lanes at one
//     collective with different masks, and a shuffle that reads a lane outside the mask are errors.
//   - When no thread can run and the block has not finished, the block is deadlocked (lanes at
//     different collectives with overlapping masks, or a lane at a barrier that the rest of its
//     warp waits for at a collective); the report names the sites.
// An error abandons the launch: the suspended fibers' stacks go back to the pool (their frames
// are never unwound) and the launch returns cudaErrorLaunchFailure with the report as detail.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/emu/device.h"
#include "cuda/emu/emu.h"
#include "cuda/emu/fiber.h"
#include "cuda/emu/internal.h"
#include "cuda/emu/runtime.h"

namespace kg {
namespace emu {

thread_local Builtins builtins{};

namespace {

// ---------------------------------------------------------------------------------------------
// Schedule

enum class Order { forward, reverse, random };

struct Schedule {
    Order order = Order::forward;
    uint64_t seed = 0;
    std::string spec = "forward";
};

Schedule parse_schedule(const std::string& spec) {
    Schedule s;
    s.spec = spec;
    if (spec == "forward") return s;
    if (spec == "reverse") {
        s.order = Order::reverse;
        return s;
    }
    const std::string prefix = "random:";
    if (spec.compare(0, prefix.size(), prefix) == 0 && spec.size() > prefix.size()) {
        const char* digits = spec.c_str() + prefix.size();
        char* end = nullptr;
        s.seed = std::strtoull(digits, &end, 10);
        if (*end == '\0' && *digits != '-') {
            s.order = Order::random;
            return s;
        }
    }
    throw std::invalid_argument("unknown CUDA emulator schedule '" + spec +
                                "': expected forward, reverse or random:SEED (SEED a decimal integer)");
}

std::mutex schedule_mutex;
bool schedule_initialised = false;
Schedule global_schedule;
std::atomic<uint64_t> launch_counter{0};

// The schedule in force; on first use, KERNELGRAD_EMU_SCHEDULE (a bad value fails every launch).
Schedule current_schedule() {
    std::lock_guard<std::mutex> lock(schedule_mutex);
    if (!schedule_initialised) {
        const char* env = std::getenv("KERNELGRAD_EMU_SCHEDULE");
        if (env != nullptr && *env != '\0') {
            try {
                global_schedule = parse_schedule(env);
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument(std::string("KERNELGRAD_EMU_SCHEDULE: ") + e.what());
            }
        }
        schedule_initialised = true;
    }
    return global_schedule;
}

// ---------------------------------------------------------------------------------------------
// Report formatting

std::string site(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

std::string format_tid(uint3 t) {
    return "(" + std::to_string(t.x) + "," + std::to_string(t.y) + "," + std::to_string(t.z) + ")";
}

std::string hex(unsigned mask) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", mask);
    return buf;
}

// "lane 3", "lanes 0-15", "lanes 0-3,8"
std::string lanes(unsigned mask) {
    std::string out;
    int count = 0;
    for (int l = 0; l < 32;) {
        if (!(mask >> l & 1)) {
            ++l;
            continue;
        }
        int end = l;
        while (end + 1 < 32 && (mask >> (end + 1) & 1)) ++end;
        if (!out.empty()) out += ",";
        out += std::to_string(l);
        if (end > l) out += "-" + std::to_string(end);
        count += end - l + 1;
        l = end + 1;
    }
    return (count == 1 ? "lane " : "lanes ") + out;
}

const char* collective_name(Collective op) {
    switch (op) {
        case Collective::syncwarp: return "__syncwarp";
        case Collective::shfl: return "__shfl_sync";
        case Collective::shfl_up: return "__shfl_up_sync";
        case Collective::shfl_down: return "__shfl_down_sync";
        case Collective::shfl_xor: return "__shfl_xor_sync";
        case Collective::ballot: return "__ballot_sync";
        case Collective::any: return "__any_sync";
        case Collective::all: return "__all_sync";
        case Collective::reduce_add: return "__reduce_add_sync";
        case Collective::reduce_min: return "__reduce_min_sync";
        case Collective::reduce_max: return "__reduce_max_sync";
    }
    return "warp collective";
}

bool is_shuffle(Collective op) {
    return op == Collective::shfl || op == Collective::shfl_up || op == Collective::shfl_down ||
           op == Collective::shfl_xor;
}

bool same_file(const char* a, const char* b) { return a == b || std::strcmp(a, b) == 0; }

// ---------------------------------------------------------------------------------------------
// Threads and the scheduler

enum class State : uint8_t { ready, at_barrier, at_collective, exited };

struct Thread {
    Context ctx;
    Stack stack;                // held from the thread's start until it returns
    void* fake_stack = nullptr;  // ASan's fake stack while suspended
    uint3 tid{};
    int index = 0;  // linear index in the block: x + y * blockDim.x + z * blockDim.x * blockDim.y
    bool started = false;
    State state = State::ready;
    // Where the thread waits, with its operands; `result` is what the barrier or collective returns.
    const char* file = "";
    int line = 0;
    Collective op = Collective::syncwarp;
    unsigned mask = 0;
    int arg = 0;
    int width = 32;
    uint64_t value = 0;
    uint64_t result = 0;
};

struct BlockError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Launch {
    void (*invoke)(const void*);
    const void* closure;
    dim3 grid, block;
    void* smem;
    size_t smem_bytes;
};

class Scheduler {
public:
    // Runs every block of the launch; returns "" or the report of the first error.
    std::string run(const Launch& launch, const Schedule& schedule);

    bool in_kernel() const { return current_ != nullptr; }
    void* dynamic_smem() const { return launch_ != nullptr ? launch_->smem : nullptr; }

    int barrier(const char* file, int line, int predicate);
    uint64_t collective(Collective op, const char* file, int line, unsigned mask, uint64_t value, int arg,
                        int width);
    unsigned activemask() const;

    StackPool& pool() { return pool_; }

private:
    void run_block(uint3 block_idx);
    void resume(Thread& t);
    void yield();
    static void fiber_main(void* arg);

    void order(std::vector<int>& indices);
    void try_resolve(const Thread& t);
    void release_barrier();
    void check_exit(const Thread& t) const;
    std::string describe_deadlock() const;
    bool same_collective(const Thread& a, const Thread& b) const {
        return a.op == b.op && a.line == b.line && same_file(a.file, b.file);
    }

    StackPool pool_;
    std::vector<Thread> threads_;
    std::vector<int> round_, released_;
    const Launch* launch_ = nullptr;
    Order order_ = Order::forward;
    std::mt19937_64 rng_;
    int alive_ = 0, arrived_ = 0, exited_ = 0;
    std::string fault_;  // an exception that escaped a thread

    Thread* current_ = nullptr;
    Context main_ctx_;
    void* main_fake_stack_ = nullptr;
    const void* main_stack_bottom_ = nullptr;
    size_t main_stack_size_ = 0;
};

Scheduler& this_scheduler() {
    thread_local Scheduler scheduler;
    return scheduler;
}

std::string Scheduler::run(const Launch& launch, const Schedule& schedule) {
    const dim3 b = launch.block, g = launch.grid;
    const int n = static_cast<int>(b.x * b.y * b.z);
    threads_.assign(n, Thread{});
    for (int i = 0; i < n; ++i) {
        threads_[i].index = i;
        threads_[i].tid = uint3{i % b.x, (i / b.x) % b.y, i / (b.x * b.y)};
    }
    builtins.block_dim = uint3{b.x, b.y, b.z};
    builtins.grid_dim = uint3{g.x, g.y, g.z};
    order_ = schedule.order;
    rng_.seed(schedule.seed ^ (launch_counter.fetch_add(1) * 0x9E3779B97F4A7C15ull));
    launch_ = &launch;
    fault_.clear();

    std::string error;
    uint3 block_idx{0, 0, 0};
    try {
        for (block_idx.z = 0; block_idx.z < g.z; ++block_idx.z)
            for (block_idx.y = 0; block_idx.y < g.y; ++block_idx.y)
                for (block_idx.x = 0; block_idx.x < g.x; ++block_idx.x) run_block(block_idx);
    } catch (const BlockError& e) {
        error = "block " + format_tid(block_idx) + ": " + e.what();
        for (Thread& t : threads_)
            if (t.stack.base != nullptr) pool_.release(t.stack);
    }
    threads_.clear();
    launch_ = nullptr;
    return error;
}

void Scheduler::run_block(uint3 block_idx) {
    builtins.block_idx = block_idx;
    for (Thread& t : threads_) t.started = false, t.state = State::ready, t.stack = Stack{};
    if (launch_->smem_bytes > 0) std::memset(launch_->smem, 0xFF, launch_->smem_bytes);
    const int n = static_cast<int>(threads_.size());
    alive_ = n, arrived_ = 0, exited_ = 0;

    round_.resize(n);
    for (int i = 0; i < n; ++i) round_[i] = i;
    order(round_);
    for (;;) {
        released_.clear();
        for (int i : round_) resume(threads_[i]);
        if (!released_.empty()) {
            order(released_);
            round_.swap(released_);
        } else if (alive_ == 0) {
            return;
        } else if (arrived_ == alive_) {
            release_barrier();
        } else {
            throw BlockError(describe_deadlock());
        }
    }
}

void Scheduler::order(std::vector<int>& indices) {
    switch (order_) {
        case Order::forward: std::sort(indices.begin(), indices.end()); break;
        case Order::reverse: std::sort(indices.rbegin(), indices.rend()); break;
        case Order::random: std::shuffle(indices.begin(), indices.end(), rng_); break;
    }
}

// Run `t` until it returns or waits, then account for where it stopped.
void Scheduler::resume(Thread& t) {
    if (!t.started) {
        t.stack = pool_.acquire();
        make_context(&t.ctx, t.stack, &Scheduler::fiber_main, &t);
        t.started = true;
    }
    current_ = &t;
    builtins.thread_idx = t.tid;
    asan_start_switch(&main_fake_stack_, t.stack.base, t.stack.size);
    switch_context(&main_ctx_, &t.ctx);
    asan_finish_switch(main_fake_stack_, nullptr, nullptr);
    current_ = nullptr;

    switch (t.state) {
        case State::exited:
            pool_.release(t.stack);
            t.stack = Stack{};
            --alive_, ++exited_;
            if (!fault_.empty()) throw BlockError(fault_);
            check_exit(t);
            break;
        case State::at_barrier: ++arrived_; break;
        case State::at_collective: try_resolve(t); break;
        case State::ready: break;
    }
}

void Scheduler::fiber_main(void* arg) {
    Thread& t = *static_cast<Thread*>(arg);
    Scheduler& s = this_scheduler();
    asan_finish_switch(nullptr, &s.main_stack_bottom_, &s.main_stack_size_);
    try {
        s.launch_->invoke(s.launch_->closure);
    } catch (const std::exception& e) {
        s.fault_ = "thread " + format_tid(t.tid) + " threw: " + e.what();
    } catch (...) {
        s.fault_ = "thread " + format_tid(t.tid) + " threw a non-standard exception";
    }
    t.state = State::exited;
    asan_start_switch(nullptr, s.main_stack_bottom_, s.main_stack_size_);
    switch_context(&t.ctx, &s.main_ctx_);
    __builtin_unreachable();
}

void Scheduler::yield() {
    Thread& t = *current_;
    asan_start_switch(&t.fake_stack, main_stack_bottom_, main_stack_size_);
    switch_context(&t.ctx, &main_ctx_);
    asan_finish_switch(t.fake_stack, &main_stack_bottom_, &main_stack_size_);
}

// ---------------------------------------------------------------------------------------------
// __syncthreads

int Scheduler::barrier(const char* file, int line, int predicate) {
    if (current_ == nullptr) throw std::logic_error("__syncthreads() called outside a kernel");
    Thread& t = *current_;
    t.state = State::at_barrier;
    t.file = file, t.line = line, t.value = static_cast<uint64_t>(predicate != 0);
    yield();
    return static_cast<int>(t.result);
}

// Every thread that has not returned waits at a barrier: release them if it is one barrier that
// every thread reached.
void Scheduler::release_barrier() {
    const Thread* first = nullptr;
    const Thread* gone = nullptr;
    uint64_t count = 0;
    for (const Thread& t : threads_) {
        if (t.state == State::exited) {
            if (gone == nullptr) gone = &t;
            continue;
        }
        if (first == nullptr) first = &t;
        if (t.line != first->line || !same_file(t.file, first->file))
            throw BlockError("threads wait at different __syncthreads(): thread " + format_tid(first->tid) +
                             " at " + site(first->file, first->line) + ", thread " + format_tid(t.tid) +
                             " at " + site(t.file, t.line) +
                             " (every thread of a block must reach the same barrier)");
        count += t.value;
    }
    if (gone != nullptr)
        throw BlockError("thread " + format_tid(gone->tid) + " returned while " + std::to_string(alive_) +
                         " threads wait at __syncthreads() at " + site(first->file, first->line) +
                         " (a barrier must be reached by every thread of the block; " +
                         std::to_string(exited_) + " returned before it)");
    round_.clear();
    for (Thread& t : threads_) {
        if (t.state != State::at_barrier) continue;
        t.state = State::ready;
        t.result = count;
        round_.push_back(t.index);
    }
    arrived_ = 0;
    order(round_);
}

// ---------------------------------------------------------------------------------------------
// Warp collectives

uint64_t Scheduler::collective(Collective op, const char* file, int line, unsigned mask, uint64_t value,
                               int arg, int width) {
    if (current_ == nullptr) throw std::logic_error(std::string(collective_name(op)) + " called outside a kernel");
    Thread& t = *current_;
    t.state = State::at_collective;
    t.op = op, t.file = file, t.line = line, t.mask = mask, t.value = value, t.arg = arg, t.width = width;
    yield();
    return t.result;
}

unsigned Scheduler::activemask() const {
    if (current_ == nullptr) throw std::logic_error("__activemask() called outside a kernel");
    const int base = current_->index / 32 * 32;
    unsigned mask = 0;
    for (int l = 0; l < 32 && base + l < static_cast<int>(threads_.size()); ++l)
        if (threads_[base + l].state != State::exited) mask |= 1u << l;
    return mask;
}

// `t` has just arrived at a collective: if every lane of its mask is there too, compute the results
// and release the lanes.
void Scheduler::try_resolve(const Thread& t) {
    const int lane = t.index % 32, base = t.index - lane, warp = t.index / 32;
    const int n = static_cast<int>(threads_.size());
    const std::string where = std::string(collective_name(t.op)) + " at " + site(t.file, t.line) +
                              " in thread " + format_tid(t.tid) + " (lane " + std::to_string(lane) +
                              " of warp " + std::to_string(warp) + ")";
    if (!(t.mask >> lane & 1))
        throw BlockError(where + ": the mask " + hex(t.mask) + " does not name the calling lane");
    if (is_shuffle(t.op) && (t.width < 1 || t.width > 32 || (t.width & (t.width - 1)) != 0))
        throw BlockError(where + ": width " + std::to_string(t.width) + " is not a power of 2 from 1 to 32");

    for (int l = 0; l < 32; ++l) {
        if (!(t.mask >> l & 1)) continue;
        if (base + l >= n)
            throw BlockError(where + ": the mask " + hex(t.mask) + " names lane " + std::to_string(l) +
                             ", which does not exist (the block has " + std::to_string(n) + " threads)");
        const Thread& o = threads_[base + l];
        if (o.state == State::exited)
            throw BlockError(where + ": the mask " + hex(t.mask) + " names lane " + std::to_string(l) +
                             " (thread " + format_tid(o.tid) + "), which has returned");
        if (o.state != State::at_collective) return;  // not there yet
        if (!same_collective(o, t)) return;           // elsewhere: may still come; else a deadlock
        if (o.mask != t.mask)
            throw BlockError(std::string(collective_name(t.op)) + " at " + site(t.file, t.line) + ": lanes " +
                             std::to_string(lane) + " and " + std::to_string(l) + " of warp " +
                             std::to_string(warp) + " pass different masks, " + hex(t.mask) + " and " +
                             hex(o.mask));
    }

    // Every named lane is here: compute each lane's result.
    const unsigned mask = t.mask;
    if (is_shuffle(t.op)) {
        for (int l = 0; l < 32; ++l) {
            if (!(mask >> l & 1)) continue;
            Thread& o = threads_[base + l];
            const int segment = l & ~(o.width - 1);
            int src = l;
            switch (o.op) {
                case Collective::shfl: src = segment + (o.arg & (o.width - 1)); break;
                case Collective::shfl_up: src = o.arg >= 0 && l - o.arg >= segment ? l - o.arg : l; break;
                case Collective::shfl_down:
                    src = o.arg >= 0 && l + o.arg < segment + o.width ? l + o.arg : l;
                    break;
                case Collective::shfl_xor: src = (l ^ o.arg) >= 0 && (l ^ o.arg) < segment + o.width ? l ^ o.arg : l; break;
                default: break;
            }
            if (!(mask >> src & 1))
                throw BlockError(std::string(collective_name(o.op)) + " at " + site(o.file, o.line) + ": lane " +
                                 std::to_string(l) + " of warp " + std::to_string(warp) + " reads lane " +
                                 std::to_string(src) + ", which the mask " + hex(mask) + " does not name");
            o.result = threads_[base + src].value;
        }
    } else {
        unsigned ballot = 0;
        int64_t sum = 0, lo = INT64_MAX, hi = INT64_MIN;
        for (int l = 0; l < 32; ++l) {
            if (!(mask >> l & 1)) continue;
            const uint64_t v = threads_[base + l].value;
            ballot |= (v != 0 ? 1u : 0u) << l;
            const auto s = static_cast<int64_t>(v);
            sum += s, lo = std::min(lo, s), hi = std::max(hi, s);
        }
        uint64_t result = 0;
        switch (t.op) {
            case Collective::ballot: result = ballot; break;
            case Collective::any: result = ballot != 0; break;
            case Collective::all: result = ballot == mask; break;
            case Collective::reduce_add: result = static_cast<uint64_t>(sum); break;
            case Collective::reduce_min: result = static_cast<uint64_t>(lo); break;
            case Collective::reduce_max: result = static_cast<uint64_t>(hi); break;
            default: break;
        }
        for (int l = 0; l < 32; ++l)
            if (mask >> l & 1) threads_[base + l].result = result;
    }
    for (int l = 0; l < 32; ++l) {
        if (!(mask >> l & 1)) continue;
        threads_[base + l].state = State::ready;
        released_.push_back(base + l);
    }
}

// `t` has returned: no lane of its warp may be waiting for it at a collective.
void Scheduler::check_exit(const Thread& t) const {
    const int lane = t.index % 32, base = t.index - lane;
    for (int l = 0; l < 32 && base + l < static_cast<int>(threads_.size()); ++l) {
        const Thread& o = threads_[base + l];
        if (o.state == State::at_collective && (o.mask >> lane & 1))
            throw BlockError("thread " + format_tid(t.tid) + " (lane " + std::to_string(lane) + " of warp " +
                             std::to_string(t.index / 32) + ") returned while lane " + std::to_string(l) +
                             " waits for it at " + collective_name(o.op) + " at " + site(o.file, o.line) +
                             " (mask " + hex(o.mask) + ")");
    }
}

// Nothing can run, yet not every thread waits at a barrier: some lanes wait at a collective for a
// lane that is elsewhere.
std::string Scheduler::describe_deadlock() const {
    for (const Thread& t : threads_) {
        if (t.state != State::at_collective) continue;
        const int lane = t.index % 32, base = t.index - lane, warp = t.index / 32;
        unsigned waiting = 0;
        const Thread* missing = nullptr;
        for (int l = 0; l < 32; ++l) {
            if (!(t.mask >> l & 1)) continue;
            const Thread& o = threads_[base + l];
            if (o.state == State::at_collective && same_collective(o, t))
                waiting |= 1u << l;
            else if (missing == nullptr)
                missing = &o;
        }
        if (missing == nullptr) continue;
        std::string text = "deadlock: " + lanes(waiting) + " of warp " + std::to_string(warp) + " wait at " +
                           collective_name(t.op) + " at " + site(t.file, t.line) + " (mask " + hex(t.mask) +
                           ") for lane " + std::to_string(missing->index % 32) + " (thread " +
                           format_tid(missing->tid) + "), which waits at ";
        if (missing->state == State::at_barrier)
            return text + "__syncthreads() at " + site(missing->file, missing->line) +
                   " (every lane a warp collective names must reach it before any of them waits at a barrier)";
        return text + collective_name(missing->op) + " at " + site(missing->file, missing->line) + " (mask " +
               hex(missing->mask) + "): lanes of one warp reached different warp collectives with overlapping masks";
    }
    return "deadlock: no thread can run";
}

// ---------------------------------------------------------------------------------------------
// Launch configuration

std::string check_configuration(const void* kernel, dim3 grid, dim3 block, size_t smem) {
    const unsigned g[3] = {grid.x, grid.y, grid.z}, b[3] = {block.x, block.y, block.z};
    const char* axis = "xyz";
    for (int d = 0; d < 3; ++d) {
        if (b[d] == 0 || b[d] > kMaxBlockDim[d])
            return std::string("blockDim.") + axis[d] + " = " + std::to_string(b[d]) + " is outside 1.." +
                   std::to_string(kMaxBlockDim[d]);
        if (g[d] == 0 || g[d] > kMaxGridDim[d])
            return std::string("gridDim.") + axis[d] + " = " + std::to_string(g[d]) + " is outside 1.." +
                   std::to_string(kMaxGridDim[d]);
    }
    const unsigned long long threads = 1ull * b[0] * b[1] * b[2];
    if (threads > static_cast<unsigned long long>(kMaxThreadsPerBlock))
        return std::to_string(threads) + " threads per block (" + std::to_string(b[0]) + " x " +
               std::to_string(b[1]) + " x " + std::to_string(b[2]) + ") exceed the maximum of " +
               std::to_string(kMaxThreadsPerBlock);
    const size_t limit = dynamic_smem_limit(kernel);
    if (smem > limit)
        return "dynamic shared memory of " + std::to_string(smem) + " bytes exceeds this kernel's limit of " +
               std::to_string(limit) +
               " bytes (raise it with cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, "
               "bytes), up to " +
               std::to_string(kMaxDynamicSmemOptin) + ")";
    return "";
}

// A benchmark kernel: every thread passes `iterations` barriers.
void barrier_benchmark_kernel(int iterations) {
    for (int i = 0; i < iterations; ++i) __syncthreads();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Entry points (device.h, runtime.h)

int syncthreads(const char* file, int line, int predicate) {
    return this_scheduler().barrier(file, line, predicate);
}

uint64_t warp_collective(Collective op, const char* file, int line, unsigned mask, uint64_t value, int arg,
                         int width) {
    return this_scheduler().collective(op, file, line, mask, value, arg, width);
}

unsigned activemask() { return this_scheduler().activemask(); }

void* dynamic_smem() { return this_scheduler().dynamic_smem(); }

void set_schedule(const char* spec) {
    Schedule s = parse_schedule(spec);
    std::lock_guard<std::mutex> lock(schedule_mutex);
    global_schedule = s;
    schedule_initialised = true;
    launch_counter = 0;
}

const char* schedule() {
    thread_local std::string spec;
    try {
        spec = current_schedule().spec;
    } catch (const std::invalid_argument& e) {
        spec = e.what();
    }
    return spec.c_str();
}

cudaError_t launch_kernel(const void* kernel, dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream,
                          void (*invoke)(const void*), const void* closure) {
    Scheduler& scheduler = this_scheduler();
    if (scheduler.in_kernel())
        return record_error(cudaErrorNotSupported, "a kernel launch from inside a kernel (dynamic parallelism) "
                                                   "is not emulated");
    if (!is_valid_stream(stream))
        return record_error(cudaErrorInvalidResourceHandle, "the launch's stream was not created or is destroyed");
    const std::string problem = check_configuration(kernel, grid, block, dynamic_smem);
    if (!problem.empty()) return record_error(cudaErrorInvalidConfiguration, problem);
    Schedule schedule;
    try {
        schedule = current_schedule();
    } catch (const std::invalid_argument& e) {
        return record_error(cudaErrorInvalidValue, e.what());
    }
    // Exactly the bytes asked for, so that ASan sees a read past the end.
    void* smem = nullptr;
    if (posix_memalign(&smem, 16, dynamic_smem) != 0)
        return record_error(cudaErrorMemoryAllocation, "dynamic shared memory");
    std::unique_ptr<void, void (*)(void*)> smem_owner(smem, &std::free);

    const Launch launch{invoke, closure, grid, block, smem, dynamic_smem};
    const std::string error = scheduler.run(launch, schedule);
    if (!error.empty()) return record_error(cudaErrorLaunchFailure, error);
    return cudaSuccess;
}

// ---------------------------------------------------------------------------------------------
// Micro-benchmarks

namespace {
struct PingPong {
    Context main, fiber;
    void* main_fake = nullptr;
    void* fiber_fake = nullptr;
    const void* main_bottom = nullptr;
    size_t main_size = 0;
};

void ping_pong_entry(void* arg) {
    auto& p = *static_cast<PingPong*>(arg);
    asan_finish_switch(nullptr, &p.main_bottom, &p.main_size);
    for (;;) {
        asan_start_switch(&p.fiber_fake, p.main_bottom, p.main_size);
        switch_context(&p.fiber, &p.main);
        asan_finish_switch(p.fiber_fake, &p.main_bottom, &p.main_size);
    }
}
}  // namespace

double context_switch_ns(int iterations) {
    StackPool& pool = this_scheduler().pool();
    const Stack stack = pool.acquire();
    PingPong p;
    make_context(&p.fiber, stack, &ping_pong_entry, &p);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
        asan_start_switch(&p.main_fake, stack.base, stack.size);
        switch_context(&p.main, &p.fiber);
        asan_finish_switch(p.main_fake, nullptr, nullptr);
    }
    const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
    pool.release(stack);
    return elapsed.count() / (2.0 * iterations);
}

double syncthreads_ns(int iterations) {
    const auto start = std::chrono::steady_clock::now();
    const cudaError_t error = launch_typed(&barrier_benchmark_kernel, dim3(1), dim3(1024), 0, nullptr, iterations);
    const std::chrono::duration<double, std::nano> elapsed = std::chrono::steady_clock::now() - start;
    if (error != cudaSuccess) throw std::runtime_error(last_error_detail());
    return elapsed.count() / (1024.0 * iterations);
}

}  // namespace emu
}  // namespace kg
