"""conv2d: kernelgrad (F.conv2d on tensors) against the NumPy reference and torch.nn.functional.conv2d.

One benchmark group per case and direction (forward; forward + backward for input, weight and bias),
with members kernelgrad / reference / torch.
"""
import kernelgrad as kg
import kernelgrad.nn.functional as F
import numpy as np
import pytest
from kernelgrad import reference

# name, x shape (N, C, H, W), weight shape (K, C/groups, R, S), stride, padding, groups
CASES = [
    ("3x3", (32, 64, 32, 32), (64, 64, 3, 3), 1, 1, 1),
    ("1x1", (32, 64, 32, 32), (128, 64, 1, 1), 1, 0, 1),
    ("depthwise 3x3", (32, 64, 32, 32), (64, 1, 3, 3), 1, 1, 64),
]


def group_name(direction, name, xs, ws, stride, padding, groups):
    return f"conv2d {direction} float32 {name} x {xs} * w {ws} stride {stride} padding {padding} groups {groups}"


def make_case(request, benchmark, direction):
    _, xs, ws, stride, padding, groups = request.param
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    benchmark.group = group_name(direction, *request.param)
    benchmark.extra_info["threads"] = kg.get_num_threads()
    return x, w, b, dict(stride=stride, padding=padding, groups=groups)


@pytest.fixture(params=CASES, ids=lambda c: c[0].replace(" ", "_"))
def case(request, benchmark):
    return make_case(request, benchmark, "fwd")


@pytest.fixture(params=CASES, ids=lambda c: c[0].replace(" ", "_"))
def fb_case(request, benchmark):
    x, w, b, kw = make_case(request, benchmark, "fwd+bwd")
    out_shape = x.shape[:1] + reference.conv2d(x[:1], w, b, **kw).shape[1:]
    g = np.random.default_rng(1).standard_normal(out_shape).astype(np.float32)
    return x, w, b, g, kw


def check(out, expected):
    """A loose check that the timed call computed the convolution (float32, O(1) outputs)."""
    np.testing.assert_allclose(np.asarray(out, np.float64), expected, rtol=1e-3, atol=1e-3)


# --- forward
def test_kernelgrad(benchmark, case):
    x, w, b, kw = case
    benchmark.extra_info["impl"] = "kernelgrad"
    out = benchmark(F.conv2d, kg.from_numpy(x), kg.from_numpy(w), kg.from_numpy(b), **kw)
    check(out.numpy(), reference.conv2d(x, w, b, **kw))


def test_reference(benchmark, case):
    x, w, b, kw = case
    benchmark.extra_info["impl"] = "reference"
    benchmark(reference.conv2d, x, w, b, **kw)


def test_torch(benchmark, case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())  # the same threads as kernelgrad (bench/conftest.py)
    x, w, b, kw = case
    benchmark.extra_info["impl"] = "torch"
    out = benchmark(torch.nn.functional.conv2d, *map(torch.from_numpy, (x, w, b)), **kw)
    check(out.numpy(), reference.conv2d(x, w, b, **kw))


# --- forward + backward: out = conv2d(x, w, b), then the gradients of x, w and b for a given grad_out
def test_kernelgrad_fwd_bwd(benchmark, fb_case):
    x, w, b, g, kw = fb_case
    benchmark.extra_info["impl"] = "kernelgrad"
    tx, tw, tb = (kg.from_numpy(a).requires_grad_() for a in (x, w, b))
    grad = kg.from_numpy(g)

    def run():
        tx.grad = tw.grad = tb.grad = None
        F.conv2d(tx, tw, tb, **kw).backward(grad)
        return tx.grad, tw.grad, tb.grad

    grads = benchmark(run)
    for ours, expected in zip(grads, reference.conv2d_backward(g, x, w, **kw)):
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-3, atol=1e-2)


def test_reference_fwd_bwd(benchmark, fb_case):
    x, w, b, g, kw = fb_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(lambda: (reference.conv2d(x, w, b, **kw), reference.conv2d_backward(g, x, w, **kw)))


def test_torch_fwd_bwd(benchmark, fb_case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())
    x, w, b, g, kw = fb_case
    benchmark.extra_info["impl"] = "torch"
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    grad = torch.from_numpy(g)

    def run():
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, **kw).backward(grad)

    benchmark(run)


# --- conv_transpose2d forward (the op itself; its backward is conv2d's machinery)
TRANSPOSED = ("conv_transpose2d fwd float32 x (32, 64, 16, 16) * w (64, 32, 4, 4) stride 2 padding 1",
              (32, 64, 16, 16), (64, 32, 4, 4), dict(stride=2, padding=1))


@pytest.fixture
def transposed_case(benchmark):
    name, xs, ws, kw = TRANSPOSED
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) / np.sqrt(ws[0] * ws[2] * ws[3])).astype(np.float32)
    benchmark.group = name
    benchmark.extra_info["threads"] = kg.get_num_threads()
    return x, w, kw


def test_kernelgrad_transposed(benchmark, transposed_case):
    x, w, kw = transposed_case
    benchmark.extra_info["impl"] = "kernelgrad"
    out = benchmark(F.conv_transpose2d, kg.from_numpy(x), kg.from_numpy(w), **kw)
    check(out.numpy(), reference.conv_transpose2d(x, w, **kw))


def test_reference_transposed(benchmark, transposed_case):
    x, w, kw = transposed_case
    benchmark.extra_info["impl"] = "reference"
    benchmark(reference.conv_transpose2d, x, w, **kw)


def test_torch_transposed(benchmark, transposed_case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(kg.get_num_threads())
    x, w, kw = transposed_case
    benchmark.extra_info["impl"] = "torch"
    out = benchmark(torch.nn.functional.conv_transpose2d, torch.from_numpy(x), torch.from_numpy(w), **kw)
    check(out.numpy(), reference.conv_transpose2d(x, w, **kw))
