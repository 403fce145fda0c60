"""CUDA conv2d: F.conv2d on "cuda" tensors (im2col / col2im kernels and batched GEMMs, see
python/kernelgrad/backend/cuda_conv.py) on a real GPU, against torch.nn.functional.conv2d on the
same GPU (cuDNN) when torch with CUDA is installed.

One benchmark group per direction (forward; forward + backward for input, weight and bias), with
members kernelgrad / torch; every timed call ends with a device synchronisation. Skipped without
the nvcc-built module or without a GPU, and when KERNELGRAD_CUDA sends "cuda" tensors to the
emulator or turns CUDA off (the emulator's timings say nothing about a GPU).
"""
import importlib

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import reference

try:
    cu = importlib.import_module("kernelgrad._cuda")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"kernelgrad._cuda is not built ({exc})", allow_module_level=True)
if cu.device_count() == 0:
    pytest.skip("no CUDA device: kernelgrad._cuda reports device_count() == 0", allow_module_level=True)
if not kg.cuda.is_available() or kg.cuda.is_emulated():
    pytest.skip("KERNELGRAD_CUDA does not select the GPU build ('cuda' tensors would run on the emulator or "
                "nowhere); unset it or set it to 'auto'", allow_module_level=True)

XS, WS, STRIDE, PADDING = (32, 64, 32, 32), (64, 64, 3, 3), 1, 1


def group_name(direction):
    return f"cuda conv2d {direction} float32 3x3 x {XS} * w {WS} stride {STRIDE} padding {PADDING} groups 1"


def operands():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(XS).astype(np.float32)
    w = (rng.standard_normal(WS) / np.sqrt(np.prod(WS[1:]))).astype(np.float32)
    b = rng.standard_normal(WS[0]).astype(np.float32)
    g = rng.standard_normal((XS[0], WS[0]) + XS[2:]).astype(np.float32)  # 3x3, padding 1: the input's size
    return x, w, b, g


@pytest.fixture
def case(benchmark):
    benchmark.group = group_name("fwd")
    return operands()


@pytest.fixture
def fb_case(benchmark):
    benchmark.group = group_name("fwd+bwd")
    return operands()


def check(out, expected, atol=1e-3):
    """A loose check that the timed call computed the convolution (float32, O(1) outputs)."""
    np.testing.assert_allclose(np.asarray(out, np.float64), expected, rtol=1e-3, atol=atol)


def torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    return torch


# --- forward
def test_kernelgrad(benchmark, case):
    x, w, b, _ = case
    benchmark.extra_info["impl"] = "kernelgrad"
    benchmark.extra_info["device"] = kg.cuda.get_device_name()
    tx, tw, tb = (kg.tensor(a, device="cuda") for a in (x, w, b))

    def run():
        out = F.conv2d(tx, tw, tb, stride=STRIDE, padding=PADDING)
        kg.cuda.synchronize()
        return out

    out = benchmark(run)
    check(out.cpu().numpy(), reference.conv2d(x, w, b, stride=STRIDE, padding=PADDING))


def test_torch(benchmark, case):
    torch = torch_cuda()
    x, w, b, _ = case
    benchmark.extra_info["impl"] = "torch"
    px, pw, pb = (torch.from_numpy(a).cuda() for a in (x, w, b))

    def run():
        out = torch.nn.functional.conv2d(px, pw, pb, stride=STRIDE, padding=PADDING)
        torch.cuda.synchronize()
        return out

    out = benchmark(run)
    check(out.cpu().numpy(), reference.conv2d(x, w, b, stride=STRIDE, padding=PADDING))


# --- forward + backward: out = conv2d(x, w, b), then the gradients of x, w and b for a given grad_out
def test_kernelgrad_fwd_bwd(benchmark, fb_case):
    x, w, b, g = fb_case
    benchmark.extra_info["impl"] = "kernelgrad"
    benchmark.extra_info["device"] = kg.cuda.get_device_name()
    tx, tw, tb = (kg.tensor(a, device="cuda", requires_grad=True) for a in (x, w, b))
    grad = kg.tensor(g, device="cuda")

    def run():
        tx.grad = tw.grad = tb.grad = None
        F.conv2d(tx, tw, tb, stride=STRIDE, padding=PADDING).backward(grad)
        kg.cuda.synchronize()
        return tx.grad, tw.grad, tb.grad

    grads = benchmark(run)
    # dw and db sum N * H * W = 32768 products: a looser atol than the forward's 576
    for ours, expected in zip(grads, reference.conv2d_backward(g, x, w, stride=STRIDE, padding=PADDING)):
        check(ours.cpu().numpy(), expected, atol=1e-2)


def test_torch_fwd_bwd(benchmark, fb_case):
    torch = torch_cuda()
    x, w, b, g = fb_case
    benchmark.extra_info["impl"] = "torch"
    px, pw, pb = (torch.from_numpy(a).cuda().requires_grad_() for a in (x, w, b))
    grad = torch.from_numpy(g).cuda()

    def run():
        px.grad = pw.grad = pb.grad = None
        torch.nn.functional.conv2d(px, pw, pb, stride=STRIDE, padding=PADDING).backward(grad)
        torch.cuda.synchronize()

    benchmark(run)
