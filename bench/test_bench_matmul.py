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


# --- forward + backward: out = a @ b, then (grad_a, grad_b) for a given grad_out
FB_CASES = [((), 512, 512, 512), ((16,), 128, 256, 64)]


def fb_group(batch, M, K, N):
    batch = "x".join(map(str, batch)) + " x " if batch else ""
    return f"matmul fwd+bwd float32 {batch}({M}x{K}) @ ({K}x{N})"


@pytest.fixture(params=FB_CASES, ids=lambda c: fb_group(*c).replace(" ", ""))
def fb_case(request, benchmark):
    batch, M, K, N = request.param
    rng = np.random.default_rng(0)
    a = rng.standard_normal(batch + (M, K)).astype(np.float32)
    b = rng.standard_normal(batch + (K, N)).astype(np.float32)
    g = rng.standard_normal(batch + (M, N)).astype(np.float32)
    benchmark.group = fb_group(*request.param)
    return a, b, g


def test_kernelgrad_fwd_bwd(benchmark, fb_case):
    a, b, g = fb_case
    benchmark.extra_info["impl"] = "kernelgrad"
    x = kg.from_numpy(a).requires_grad_()
    y = kg.from_numpy(b).requires_grad_()
    grad = kg.from_numpy(g)

    def run():
        x.grad = y.grad = None
        kg.matmul(x, y).backward(grad)
        return x.grad, y.grad

    ga, gb = benchmark(run)
    ref_a, ref_b = reference.matmul_backward(g, a, b)
    np.testing.assert_allclose(ga.numpy(), ref_a, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(gb.numpy(), ref_b, rtol=1e-3, atol=1e-2)


def test_reference_fwd_bwd(benchmark, fb_case):
    a, b, g = fb_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(lambda: (reference.matmul(a, b), reference.matmul_backward(g, a, b)))


def test_torch_fwd_bwd(benchmark, fb_case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())
    a, b, g = fb_case
    benchmark.extra_info["impl"] = "torch"
    x = torch.from_numpy(a).requires_grad_()
    y = torch.from_numpy(b).requires_grad_()
    grad = torch.from_numpy(g)

    def run():
        x.grad = y.grad = None
        torch.matmul(x, y).backward(grad)

    benchmark(run)
