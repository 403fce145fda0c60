"""The CUDA emulator (kernelgrad._cuda_emu) and the nvcc build (kernelgrad._cuda), through the
self-test kernels of csrc/cuda/selftest.cu: every result against NumPy, every planted bug reported
as a RuntimeError naming the problem, the thread schedules, and the nvcc module importing without a
GPU.

Under AddressSanitizer + UBSan (cmake -DKG_EMU_SANITIZE=ON):
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \\
    ASAN_OPTIONS=detect_leaks=0 python -m pytest tests/test_cuda_emulator.py

`python tests/test_cuda_emulator.py` prints the emulator's context-switch cost.
"""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

try:
    emu = importlib.import_module("kernelgrad._cuda_emu")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"kernelgrad._cuda_emu is not built ({exc})", allow_module_level=True)

SCHEDULES = ["forward", "reverse", "random:1", "random:12345"]


@pytest.fixture(params=SCHEDULES)
def schedule(request):
    """Run the test under each thread order, then restore the previous one."""
    previous = emu.get_schedule()
    emu.set_schedule(request.param)
    yield request.param
    emu.set_schedule(previous)


def rng(seed=0):
    return np.random.default_rng(seed)


# --- module basics


def test_emulator_identifies_itself():
    assert emu.is_emulated() is True
    assert emu.device_count() == 1


def test_set_schedule_rejects_unknown_orders():
    for bad in ["sideways", "random:", "random:x", "random:-1", ""]:
        with pytest.raises(ValueError, match="forward, reverse or random:SEED"):
            emu.set_schedule(bad)


# --- kernels against NumPy, in every schedule


@pytest.mark.parametrize("n, grid, block", [(1, 1, 32), (1000, 3, 128), (4097, 2, 1024), (777, 7, 33)])
def test_vector_add_grid_stride(schedule, n, grid, block):
    a = rng(1).standard_normal(n).astype(np.float32)
    b = rng(2).standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(emu.vector_add(a, b, grid=grid, block=block), a + b)


@pytest.mark.parametrize("n, grid, block", [(1, 1, 32), (10000, 4, 256), (5003, 3, 1024), (64, 2, 32)])
def test_block_sum_exact(schedule, n, grid, block):
    # Small integers: every partial sum is exact in float32, so the total must be too.
    x = (np.arange(n) % 13 - 6).astype(np.float32)
    assert emu.block_sum(x, grid=grid, block=block) == float(x.sum(dtype=np.float64))


def test_block_sum_random_values():
    x = rng(3).random(20000).astype(np.float32)
    # float32 accumulation over 20000 terms in a different order than NumPy: relative 1e-5.
    assert emu.block_sum(x) == pytest.approx(float(x.sum(dtype=np.float64)), rel=1e-5)


def test_block_sum_rejects_partial_warps():
    with pytest.raises(ValueError, match="multiple of 32"):
        emu.block_sum(np.ones(10, np.float32), block=48)


@pytest.mark.parametrize("shape", [(1, 1), (32, 32), (37, 70), (64, 33), (3, 100)])
def test_transpose(schedule, shape):
    x = rng(4).standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(emu.transpose(x), x.T)


def neighbour_shift_reference(x, block):
    out = np.empty_like(x)
    for i in range(len(x)):
        t = i % block
        if t + 1 < block:
            out[i] = x[i + 1] if i + 1 < len(x) else 0.0
        else:
            out[i] = x[i]
    return out


def test_neighbour_shift_with_barrier(schedule):
    x = rng(5).standard_normal(200).astype(np.float32)
    np.testing.assert_array_equal(emu.neighbour_shift(x, block=64, with_barrier=True), neighbour_shift_reference(x, 64))


def test_missing_barrier_depends_on_schedule():
    """Without the barrier, forward order reads neighbours before they write (NaN: dynamic shared
    memory starts as 0xFF bytes); reverse order happens to be right. Both differ from each other."""
    x = rng(6).standard_normal(200).astype(np.float32)
    expected = neighbour_shift_reference(x, 64)
    previous = emu.get_schedule()
    try:
        emu.set_schedule("forward")
        forward = emu.neighbour_shift(x, block=64, with_barrier=False)
        emu.set_schedule("reverse")
        reverse = emu.neighbour_shift(x, block=64, with_barrier=False)
    finally:
        emu.set_schedule(previous)
    np.testing.assert_array_equal(reverse, expected)
    assert np.isnan(forward).sum() > 150
    assert not np.array_equal(forward, reverse, equal_nan=True)


@pytest.mark.parametrize("spec", ["forward", "reverse", "random:7"])
def test_schedule_environment_variable(spec):
    """KERNELGRAD_EMU_SCHEDULE sets the initial schedule of a fresh process."""
    code = (
        "import numpy as np, kernelgrad._cuda_emu as emu\n"
        "x = np.arange(1, 129, dtype=np.float32)\n"
        "out = emu.neighbour_shift(x, block=64, with_barrier=False)\n"
        "print(emu.get_schedule(), int(np.isnan(out).sum()))\n"
    )
    env = dict(os.environ, KERNELGRAD_EMU_SCHEDULE=spec)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    name, nans = result.stdout.split()
    assert name == spec
    if spec == "forward":
        assert int(nans) == 126  # every thread but the last of each block reads too early
    elif spec == "reverse":
        assert int(nans) == 0


def test_bad_schedule_environment_variable_fails_launches():
    code = (
        "import numpy as np, kernelgrad._cuda_emu as emu\n"
        "emu.vector_add(np.ones(4, np.float32), np.ones(4, np.float32))\n"
    )
    env = dict(os.environ, KERNELGRAD_EMU_SCHEDULE="backwards")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "KERNELGRAD_EMU_SCHEDULE" in result.stderr and "backwards" in result.stderr


def test_streams_and_events():
    x = rng(13).standard_normal(1000).astype(np.float32)
    out, ms = emu.stream_roundtrip(x)
    np.testing.assert_array_equal(out, x + x)
    assert ms >= 0.0


# --- atomics


def test_histogram_float_atomic_add(schedule):
    r = rng(7)
    bins = r.integers(0, 10, 3000).astype(np.int32)
    weights = r.integers(-4, 5, 3000).astype(np.float32)  # small integers: sums exact in any order
    expected = np.bincount(bins, weights=weights, minlength=10).astype(np.float32)
    np.testing.assert_array_equal(emu.histogram(bins, weights, 10), expected)


def test_atomics(schedule):
    r = rng(8)
    xi = r.integers(-(10**6), 10**6, 1000).astype(np.int32)
    xf = r.standard_normal(1000).astype(np.float32)
    result = emu.atomics(xi, xf)
    assert result["max"] == xi.max() and result["min"] == xi.min()
    assert result["float_max"] == xf.max()
    assert result["count_positive"] == int((xf > 0).sum())
    # double accumulation of 1000 floats, in any order: far below 1e-9 relative.
    assert result["sum"] == pytest.approx(float(xf.astype(np.float64).sum()), rel=1e-9, abs=1e-9)


# --- warp collectives


def test_warp_vote(schedule):
    n = 32 * 7 + 5
    pred = (rng(9).random(n) < 0.5).astype(np.int32)
    pred[32:64] = 1  # a warp where all lanes vote yes
    pred[64:96] = 0  # and one where none do
    ballot, any_, all_, total = emu.warp_vote(pred)
    padded = np.zeros(32 * 8, np.int32)
    padded[:n] = pred
    warps = padded.reshape(8, 32)
    expected_ballot = (warps.astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(axis=1).astype(np.uint32)
    np.testing.assert_array_equal(ballot, expected_ballot)
    np.testing.assert_array_equal(any_, warps.any(axis=1).astype(np.int32))
    np.testing.assert_array_equal(all_, warps.all(axis=1).astype(np.int32))
    np.testing.assert_array_equal(total, warps.sum(axis=1))


@pytest.mark.parametrize("width", [32, 16, 8, 4, 2, 1])
def test_warp_scan_shfl_up(schedule, width):
    n = 300
    x = rng(10).integers(-50, 50, n).astype(np.int32)
    padded = np.zeros(384, np.int32)
    padded[:n] = x
    expected = np.cumsum(padded.reshape(-1, width), axis=1).reshape(-1)[:n]
    np.testing.assert_array_equal(emu.warp_scan(x, width), expected)


@pytest.mark.parametrize("width", [32, 8, 2])
def test_warp_allreduce_shfl_xor(width):
    n = 256
    x = rng(11).integers(-50, 50, n).astype(np.float32)  # integers: exact in any order
    expected = np.repeat(x.reshape(-1, width).sum(axis=1), width)
    np.testing.assert_array_equal(emu.warp_allreduce(x, width), expected)


@pytest.mark.parametrize("src_lane, width", [(0, 32), (5, 32), (3, 8), (37, 32), (-1, 16)])
def test_warp_broadcast_shfl(src_lane, width):
    n = 256
    x = np.arange(n, dtype=np.float32)
    segments = x.reshape(-1, width)
    expected = np.repeat(segments[:, src_lane % width], width)  # srcLane is taken modulo width
    np.testing.assert_array_equal(emu.warp_broadcast(x, src_lane, width), expected)


def test_syncthreads_count(schedule):
    pred = (rng(12).random(1000) < 0.3).astype(np.int32)
    padded = np.zeros(1024, np.int32)
    padded[:1000] = pred
    np.testing.assert_array_equal(emu.block_count(pred, 128), padded.reshape(-1, 128).sum(axis=1))


def test_warp_width_checked():
    with pytest.raises(ValueError, match="power of 2"):
        emu.warp_scan(np.ones(32, np.int32), 6)


# --- uninitialised memory shows as NaN


def test_unwritten_output_is_nan():
    out = emu.write_even(101)
    np.testing.assert_array_equal(out[::2], np.arange(0, 101, 2, dtype=np.float32))
    assert np.isnan(out[1::2]).all()


def test_dynamic_shared_memory_starts_as_nan():
    assert np.isnan(emu.read_dynamic_smem(100)).all()


# --- dynamic shared memory limits


def test_dynamic_smem_within_default_limit():
    np.testing.assert_array_equal(emu.fill_smem(48 * 1024, False), np.arange(12 * 1024, dtype=np.float32)[::-1])


def test_dynamic_smem_above_default_needs_opt_in():
    with pytest.raises(RuntimeError, match="exceeds this kernel's limit of 49152 bytes"):
        emu.fill_smem(64 * 1024, False)
    np.testing.assert_array_equal(emu.fill_smem(64 * 1024, True), np.arange(16 * 1024, dtype=np.float32)[::-1])


def test_dynamic_smem_opt_in_capped_at_device_maximum():
    with pytest.raises(RuntimeError, match="cudaFuncSetAttribute.*outside 0..232448"):
        emu.fill_smem(228 * 1024, True)


# --- planted bugs: each one a RuntimeError that names the problem

BUGS = {
    "divergent_barrier": r"threads wait at different __syncthreads\(\): thread \(0,0,0\) at .*selftest.cu:\d+, "
    r"thread \(16,0,0\) at .*selftest.cu:\d+",
    "exited_thread_barrier": r"thread \(5,0,0\) returned while 63 threads wait at __syncthreads\(\)",
    "mask_names_missing_lane": r"mask 0xffffffff names lane 16, which does not exist \(the block has 48 threads\)",
    "mask_names_returned_lane": r"thread \(3,0,0\) \(lane 3 of warp 0\) returned while lane \d+ waits for it "
    r"at __shfl_xor_sync",
    "mask_without_caller": r"__shfl_sync at .*: the mask 0x00000001 does not name the calling lane",
    "different_collectives": r"deadlock: .* wait at __shfl_xor_sync .* which waits at __shfl_xor_sync .*"
    r"different warp collectives with overlapping masks",
    "different_masks": r"__syncwarp at .*: lanes \d+ and \d+ of warp 0 pass different masks",
    "read_outside_mask": r"reads lane 20, which the mask 0x0000ffff does not name",
    "barrier_inside_warp_collective": r"deadlock: lanes 1-31 of warp 0 wait at __shfl_xor_sync .* for lane 0 "
    r"\(thread \(0,0,0\)\), which waits at __syncthreads\(\)",
    "too_many_threads": r"cudaErrorInvalidConfiguration.*1088 threads per block \(64 x 17 x 1\) exceed the "
    r"maximum of 1024",
    "block_dim_too_large": r"cudaErrorInvalidConfiguration.*blockDim.x = 1025 is outside 1..1024",
    "zero_block_dim": r"cudaErrorInvalidConfiguration.*blockDim.y = 0",
    "grid_too_large": r"cudaErrorInvalidConfiguration.*gridDim.y = 65536 is outside 1..65535",
    "too_much_dynamic_smem": r"cudaErrorInvalidConfiguration.*49156 bytes exceeds this kernel's limit",
}


def test_every_bug_has_a_test():
    assert sorted(emu.bug_names()) == sorted(BUGS)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_planted_bug_is_reported(schedule, name):
    with pytest.raises(RuntimeError, match=BUGS[name]):
        emu.plant_bug(name)
    # The error is reported once, and the device stays usable.
    a = np.ones(64, np.float32)
    np.testing.assert_array_equal(emu.vector_add(a, a), 2 * a)


def test_kernel_faults_are_launch_failures():
    with pytest.raises(RuntimeError, match=r"CUDA error 719 cudaErrorLaunchFailure .*block \(0,0,0\)"):
        emu.plant_bug("divergent_barrier")


def test_last_error_semantics():
    launch, after_launch, free, peek1, peek2, get1, get2 = emu.last_error_probe()
    assert launch == 9  # cudaErrorInvalidConfiguration, thrown by kg::launch ...
    assert after_launch == 0  # ... which consumed it with cudaGetLastError
    assert free == 1  # cudaFree of a host pointer: cudaErrorInvalidValue
    assert (peek1, peek2) == (1, 1)  # cudaPeekAtLastError keeps it
    assert (get1, get2) == (1, 0)  # cudaGetLastError returns it once


# --- the nvcc build


def test_nvcc_module_imports_without_gpu():
    try:
        cuda = importlib.import_module("kernelgrad._cuda")
    except ImportError:
        pytest.skip("kernelgrad._cuda is not built (no nvcc, or KG_CUDA=OFF)")
    assert cuda.is_emulated() is False
    count = cuda.device_count()
    if count == 0:  # the machines that build this project have no GPU or driver
        with pytest.raises(RuntimeError, match="CUDA error (35|100)"):
            cuda.vector_add(np.ones(4, np.float32), np.ones(4, np.float32))
    else:  # a real GPU: the same kernels, the same answers
        a = np.arange(1000, dtype=np.float32)
        np.testing.assert_array_equal(cuda.vector_add(a, a), 2 * a)
        x = (np.arange(10000) % 13 - 6).astype(np.float32)
        assert cuda.block_sum(x) == float(x.sum())


if __name__ == "__main__":
    print(f"context switch:            {emu.context_switch_ns(2_000_000):6.1f} ns")
    print(f"__syncthreads per thread:  {emu.syncthreads_ns(500):6.1f} ns (1024-thread block)")
