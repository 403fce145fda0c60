"""CUDA matmul: each kernel of csrc/cuda/gemm.cu (through kernelgrad._cuda.matmul) on a real GPU,
against torch.matmul on the same GPU (cuBLAS) when torch with CUDA is installed.

One benchmark group per kernel version, with members kernelgrad / torch; every timed call ends
with a device synchronisation. Skipped without the nvcc-built module or without a GPU (the
emulator's timings say nothing about a GPU).
"""
import importlib

import numpy as np
import pytest

from kernelgrad import reference

try:
    cu = importlib.import_module("kernelgrad._cuda")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"kernelgrad._cuda is not built ({exc})", allow_module_level=True)
if cu.device_count() == 0:
    pytest.skip("no CUDA device: kernelgrad._cuda reports device_count() == 0", allow_module_level=True)

M = N = K = 1024
FLOAT32 = 3  # the binding's dtype code
VERSIONS = ["naive", "smem", "reg2d", "vec", "auto"]


def group_name(version):
    return f"cuda matmul float32 {version} ({M}x{K}) @ ({K}x{N})"


@pytest.fixture(params=VERSIONS)
def case(request, benchmark):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    benchmark.group = group_name(request.param)
    return request.param, a, b


def check(out, a, b):
    """A loose check that the timed call computed the product (float32 over K = 1024)."""
    np.testing.assert_allclose(np.asarray(out, np.float64), reference.matmul(a, b), rtol=1e-3, atol=1e-3)


def test_kernelgrad(benchmark, case):
    version, a, b = case
    da, db, dc = cu.Storage(a.nbytes), cu.Storage(b.nbytes), cu.Storage(4 * M * N)
    cu.copy_from_host(da.ptr, a)
    cu.copy_from_host(db.ptr, b)
    args = (FLOAT32, dc.ptr, [0, N, 1], da.ptr, [0, K, 1], db.ptr, [0, N, 1], 1, M, N, K, version)
    benchmark.extra_info["impl"] = "kernelgrad"
    benchmark.extra_info["kernel"] = cu.matmul_version(*args)  # what auto chose, or vec's fallback

    def run():
        cu.matmul(*args)
        cu.synchronize()

    benchmark(run)
    out = np.empty((M, N), np.float32)
    cu.copy_to_host(out, dc.ptr)
    check(out, a, b)


def test_torch(benchmark, case):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    _, a, b = case
    benchmark.extra_info["impl"] = "torch"
    x, y = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()

    def run():
        out = torch.matmul(x, y)
        torch.cuda.synchronize()
        return out

    out = benchmark(run)
    check(out.cpu().numpy(), a, b)
