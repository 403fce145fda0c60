"""matmul: kernelgrad (kg.matmul on tensors) against the NumPy reference and torch.matmul.

One benchmark group per shape, with members kernelgrad / reference / torch.
"""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import reference

# (batch shape, M, K, N, dtype)
CASES = [
    ((), 256, 256, 256, np.float32),
    ((), 512, 512, 512, np.float32),
    ((), 1024, 1024, 1024, np.float32),
    ((64,), 128, 128, 128, np.float32),
    ((), 1024, 1024, 1024, np.float64),
]


def group_name(batch, M, K, N, dtype):
    batch = "x".join(map(str, batch)) + " x " if batch else ""
    return f"matmul {np.dtype(dtype).name} {batch}({M}x{K}) @ ({K}x{N})"


@pytest.fixture(params=CASES, ids=lambda c: group_name(*c).replace(" ", ""))
def case(request, benchmark):
    batch, M, K, N, dtype = request.param
    rng = np.random.default_rng(0)
    a = rng.standard_normal(batch + (M, K)).astype(dtype)
    b = rng.standard_normal(batch + (K, N)).astype(dtype)
    benchmark.group = group_name(*request.param)
    benchmark.extra_info["threads"] = kg.get_num_threads()
    return a, b


def check(out, a, b):
    """A loose check that the timed call computed the product (float32 over K <= 1024)."""
    np.testing.assert_allclose(np.asarray(out, np.float64), reference.matmul(a, b), rtol=1e-3, atol=1e-3)


def test_kernelgrad(benchmark, case):
    a, b = case
    benchmark.extra_info["impl"] = "kernelgrad"
    x, y = kg.from_numpy(a), kg.from_numpy(b)
    out = benchmark(kg.matmul, x, y)
    check(out.numpy(), a, b)


def test_reference(benchmark, case):
    a, b = case
    benchmark.extra_info["impl"] = "reference"
    benchmark(reference.matmul, a, b)


def test_torch(benchmark, case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())  # the same threads as kernelgrad (bench/conftest.py)
    a, b = case
    benchmark.extra_info["impl"] = "torch"
    out = benchmark(torch.matmul, torch.from_numpy(a), torch.from_numpy(b))
    check(out.numpy(), a, b)
