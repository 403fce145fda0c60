"""scaled_dot_product_attention: kernelgrad (the fused kernel, F.scaled_dot_product_attention)
against the NumPy reference and torch's F.scaled_dot_product_attention. Forward, and forward +
backward.

The reference member is kg.reference computed in the inputs' dtype, float32 (dtype=np.float32):
softmax(q k^T / sqrt(E)) v with the whole L x S matrix, and its backward (which recomputes the
probabilities, as the fused kernel does). Its default float64, the accuracy spec, would time
float64 GEMMs and passes against our float32 ones; it is used here only to check kernelgrad's
results, outside the timed calls.

One benchmark group per case, with members kernelgrad / reference / torch.
"""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import reference

# (B, H, L, S, E) in float32
CASES = [(4, 8, 1024, 1024, 64)]


def group_name(B, H, L, S, E, what):
    return f"attention {what} float32 {B}x{H} heads, L={L}, S={S}, E={E}"


def inputs(B, H, L, S, E):
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((B, H, n, E)).astype(np.float32) for n in (L, S, S, L))
    return q, k, v, g


@pytest.fixture(params=CASES, ids=lambda c: "B{}H{}L{}S{}E{}".format(*c))
def fwd_case(request, benchmark):
    benchmark.group = group_name(*request.param, "forward")
    benchmark.extra_info["threads"] = kg.get_num_threads()
    return inputs(*request.param)


@pytest.fixture(params=CASES, ids=lambda c: "B{}H{}L{}S{}E{}".format(*c))
def fb_case(request, benchmark):
    benchmark.group = group_name(*request.param, "fwd+bwd")
    benchmark.extra_info["threads"] = kg.get_num_threads()
    return inputs(*request.param)


def torch_or_skip():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())  # the same threads as kernelgrad (bench/conftest.py)
    return torch


# --- forward

def test_kernelgrad(benchmark, fwd_case):
    q, k, v, _ = fwd_case
    benchmark.extra_info["impl"] = "kernelgrad"
    out = benchmark(F.scaled_dot_product_attention, *(kg.from_numpy(a) for a in (q, k, v)))
    np.testing.assert_allclose(out.numpy(), reference.scaled_dot_product_attention(q, k, v), rtol=1e-4, atol=1e-4)


def test_reference(benchmark, fwd_case):
    q, k, v, _ = fwd_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(reference.scaled_dot_product_attention, q, k, v, dtype=q.dtype)


def test_torch(benchmark, fwd_case):
    torch = torch_or_skip()
    q, k, v, _ = fwd_case
    benchmark.extra_info["impl"] = "torch"
    benchmark(torch.nn.functional.scaled_dot_product_attention, *(torch.from_numpy(a) for a in (q, k, v)))


# --- forward + backward

def test_kernelgrad_fwd_bwd(benchmark, fb_case):
    q, k, v, g = fb_case
    benchmark.extra_info["impl"] = "kernelgrad"
    tq, tk, tv = (kg.from_numpy(a).requires_grad_() for a in (q, k, v))
    grad = kg.from_numpy(g)

    def run():
        tq.grad = tk.grad = tv.grad = None
        F.scaled_dot_product_attention(tq, tk, tv).backward(grad)
        return tq.grad, tk.grad, tv.grad

    grads = benchmark(run)
    for got, ref in zip(grads, reference.scaled_dot_product_attention_backward(g, q, k, v)):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-3, atol=1e-3)


def test_reference_fwd_bwd(benchmark, fb_case):
    q, k, v, g = fb_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(lambda: (reference.scaled_dot_product_attention(q, k, v, dtype=q.dtype),
                       reference.scaled_dot_product_attention_backward(g, q, k, v, dtype=q.dtype)))


def test_torch_fwd_bwd(benchmark, fb_case):
    torch = torch_or_skip()
    q, k, v, g = fb_case
    benchmark.extra_info["impl"] = "torch"
    tq, tk, tv = (torch.from_numpy(a).requires_grad_() for a in (q, k, v))
    grad = torch.from_numpy(g)

    def run():
        tq.grad = tk.grad = tv.grad = None
        torch.nn.functional.scaled_dot_product_attention(tq, tk, tv).backward(grad)

    benchmark(run)
