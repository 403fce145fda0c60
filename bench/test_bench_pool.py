"""Pooling and upsampling: kernelgrad (F on tensors) against the NumPy reference and torch.

One benchmark group per op and shape, with members kernelgrad / reference / torch:
max_pool2d and avg_pool2d 2x2 (stride 2) on 32x64x64x64, forward and forward + backward;
bilinear and nearest upsampling x2 on 8x64x32x32; adaptive_avg_pool2d to 1x1 and
adaptive_max_pool2d to 5x5 on 32x64x64x64; max_unpool2d 2x2 back to 64x64; reflect padding by 2.
All float32.
"""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import reference as R

POOL_SHAPE = (32, 64, 64, 64)
UNPOOL_SHAPE = (32, 64, 32, 32)
_UNPOOL = {}


def _unpool_indices():
    """The indices of a 2x2 max pooling of a fixed 32x64x64x64 input: where max_unpool2d writes."""
    if "indices" not in _UNPOOL:
        x = np.random.default_rng(1).standard_normal(POOL_SHAPE).astype(np.float32)
        _UNPOOL["indices"] = R.max_pool2d(x, 2)[1].astype(np.int64)
    return _UNPOOL["indices"]


def _torch_unpool_indices():
    import torch

    return torch.from_numpy(_unpool_indices())


def _torch_f():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())  # the same threads as kernelgrad (bench/conftest.py)
    return torch, torch.nn.functional


# name: (input shape, kernelgrad F call, reference forward, torch F call); each call takes its
# library's array and returns the output
FORWARD = {
    "max_pool2d 2x2 float32 32x64x64x64": (
        POOL_SHAPE, lambda x: F.max_pool2d(x, 2), lambda a: R.max_pool2d(a, 2)[0],
        lambda tf, t: tf.max_pool2d(t, 2)),
    "avg_pool2d 2x2 float32 32x64x64x64": (
        POOL_SHAPE, lambda x: F.avg_pool2d(x, 2), lambda a: R.avg_pool2d(a, 2),
        lambda tf, t: tf.avg_pool2d(t, 2)),
    "bilinear upsample x2 float32 8x64x32x32": (
        (8, 64, 32, 32), lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
        lambda a: R.upsample_bilinear2d(a, (64, 64), False, (2.0, 2.0)),
        lambda tf, t: tf.interpolate(t, scale_factor=2, mode="bilinear")),
    "adaptive_avg_pool2d to 1x1 float32 32x64x64x64": (
        POOL_SHAPE, lambda x: F.adaptive_avg_pool2d(x, 1), lambda a: R.adaptive_avg_pool2d(a, (1, 1)),
        lambda tf, t: tf.adaptive_avg_pool2d(t, 1)),
    "adaptive_max_pool2d to 5x5 float32 32x64x64x64": (
        POOL_SHAPE, lambda x: F.adaptive_max_pool2d(x, 5), lambda a: R.adaptive_max_pool2d(a, (5, 5))[0],
        lambda tf, t: tf.adaptive_max_pool2d(t, 5)),
    "max_unpool2d 2x2 float32 32x64x32x32 -> 64x64": (
        UNPOOL_SHAPE, lambda x: F.max_unpool2d(x, kg.from_numpy(_unpool_indices()), 2),
        lambda a: R.max_unpool2d(a, _unpool_indices(), (64, 64)),
        lambda tf, t: tf.max_unpool2d(t, _torch_unpool_indices(), 2)),
    "nearest upsample x2 float32 8x64x32x32": (
        (8, 64, 32, 32), lambda x: F.interpolate(x, scale_factor=2, mode="nearest"),
        lambda a: R.upsample_nearest2d(a, (64, 64), (2.0, 2.0)),
        lambda tf, t: tf.interpolate(t, scale_factor=2, mode="nearest")),
    "reflect pad 2 float32 32x64x64x64": (
        POOL_SHAPE, lambda x: F.pad(x, (2, 2, 2, 2), mode="reflect"), lambda a: R.pad(a, (2, 2, 2, 2), "reflect"),
        lambda tf, t: tf.pad(t, (2, 2, 2, 2), mode="reflect")),
}


@pytest.fixture(params=list(FORWARD), ids=lambda name: name.replace(" ", ""))
def forward_case(request, benchmark):
    shape, kg_fn, ref_fn, torch_fn = FORWARD[request.param]
    benchmark.group = request.param
    benchmark.extra_info["threads"] = kg.get_num_threads()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return x, kg_fn, ref_fn, torch_fn


def check(out, expected):
    """A loose check that the timed call computed the op (float32 sums of at most 4096 terms)."""
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-4, atol=1e-5)


def test_kernelgrad(benchmark, forward_case):
    x, kg_fn, ref_fn, _ = forward_case
    benchmark.extra_info["impl"] = "kernelgrad"
    out = benchmark(kg_fn, kg.from_numpy(x))
    check(out.numpy(), ref_fn(x))


def test_reference(benchmark, forward_case):
    x, _, ref_fn, _ = forward_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(ref_fn, x)


def test_torch(benchmark, forward_case):
    torch, tf = _torch_f()
    x, _, ref_fn, torch_fn = forward_case
    benchmark.extra_info["impl"] = "torch"
    out = benchmark(torch_fn, tf, torch.from_numpy(x))
    check(out.numpy(), ref_fn(x))


# --- forward + backward: out = pool(x), then x.grad for a given grad_out

def _max_reference(a, g):
    out, indices = R.max_pool2d(a, 2)
    return out, R.max_pool2d_backward(g, indices, a.shape)


def _avg_reference(a, g):
    return R.avg_pool2d(a, 2), R.avg_pool2d_backward(g, a.shape, 2)


# name: (kernelgrad F op, reference forward + backward -> (out, grad_x), torch F op)
FORWARD_BACKWARD = {
    "max_pool2d fwd+bwd 2x2 float32 32x64x64x64": (
        lambda x: F.max_pool2d(x, 2), _max_reference, lambda tf, t: tf.max_pool2d(t, 2)),
    "avg_pool2d fwd+bwd 2x2 float32 32x64x64x64": (
        lambda x: F.avg_pool2d(x, 2), _avg_reference, lambda tf, t: tf.avg_pool2d(t, 2)),
}


@pytest.fixture(params=list(FORWARD_BACKWARD), ids=lambda name: name.replace(" ", ""))
def fb_case(request, benchmark):
    benchmark.group = request.param
    benchmark.extra_info["threads"] = kg.get_num_threads()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(POOL_SHAPE).astype(np.float32)
    g = rng.standard_normal(POOL_SHAPE[:2] + (32, 32)).astype(np.float32)
    return (x, g) + FORWARD_BACKWARD[request.param]


def test_kernelgrad_fwd_bwd(benchmark, fb_case):
    x_np, g_np, kg_op, ref_fb, _ = fb_case
    benchmark.extra_info["impl"] = "kernelgrad"
    x, g = kg.from_numpy(x_np).requires_grad_(), kg.from_numpy(g_np)

    def run():
        x.grad = None
        kg_op(x).backward(g)
        return x.grad

    grad = benchmark(run)
    check(grad.numpy(), ref_fb(x_np, g_np)[1])


def test_reference_fwd_bwd(benchmark, fb_case):
    x, g, _, ref_fb, _ = fb_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(ref_fb, x, g)


def test_torch_fwd_bwd(benchmark, fb_case):
    torch, tf = _torch_f()
    x_np, g_np, _, ref_fb, torch_op = fb_case
    benchmark.extra_info["impl"] = "torch"
    x, g = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(g_np)

    def run():
        x.grad = None
        torch_op(tf, x).backward(g)

    benchmark(run)
    check(x.grad.numpy(), ref_fb(x_np, g_np)[1])
