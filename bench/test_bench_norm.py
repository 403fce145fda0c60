"""softmax, log_softmax, layer_norm, cross_entropy, nll_loss and batch_norm: kernelgrad (the F functions on tensors, with
autograd for the fwd+bwd groups) against the NumPy reference and torch.

One benchmark group per case, with members kernelgrad / reference / torch.
"""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import reference as ref


def data(*shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


# Each case builds, for one implementation, the call to time and (kernelgrad only) a check of
# what it returned against the reference, loose enough for float32.

def softmax_forward(impl, torch, dim, shape):
    (x,) = data(shape)
    if impl == "kernelgrad":
        X, expected = kg.from_numpy(x), ref.softmax(x, dim)
        return lambda: F.softmax(X, dim), lambda y: np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)
    if impl == "reference":
        return lambda: ref.softmax(x, dim), None
    X = torch.from_numpy(x)
    return lambda: torch.softmax(X, dim), None


def softmax_fwd_bwd(impl, torch):
    x, g = data((4096, 1024), (4096, 1024))
    if impl == "reference":
        return lambda: ref.softmax_backward(ref.softmax(x, -1), g, -1), None
    lib, fn = (kg, F.softmax) if impl == "kernelgrad" else (torch, torch.softmax)
    X, G = lib.from_numpy(x).requires_grad_(), lib.from_numpy(g)

    def run():
        X.grad = None
        fn(X, -1).backward(G)
        return X.grad

    expected = ref.softmax_backward(ref.softmax(x, -1), g, -1)
    return run, lambda dx: np.testing.assert_allclose(dx.numpy(), expected, atol=1e-5)


def layer_norm_forward(impl, torch):
    x, w, b = data((4096, 1024), (1024,), (1024,))
    if impl == "kernelgrad":
        X, W, B = kg.from_numpy(x), kg.from_numpy(w), kg.from_numpy(b)
        expected = ref.layer_norm(x, (1024,), w, b)
        return lambda: F.layer_norm(X, (1024,), W, B), lambda y: np.testing.assert_allclose(y.numpy(), expected,
                                                                                          atol=1e-4)
    if impl == "reference":
        return lambda: ref.layer_norm(x, (1024,), w, b), None
    X, W, B = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    return lambda: torch.nn.functional.layer_norm(X, (1024,), W, B), None


def layer_norm_fwd_bwd(impl, torch):
    x, w, b, g = data((4096, 1024), (1024,), (1024,), (4096, 1024))
    if impl == "reference":
        return lambda: (ref.layer_norm(x, (1024,), w, b), ref.layer_norm_backward(g, x, (1024,), w)), None
    lib, fn = (kg, F.layer_norm) if impl == "kernelgrad" else (torch, torch.nn.functional.layer_norm)
    X, W, B = (lib.from_numpy(a).requires_grad_() for a in (x, w, b))
    G = lib.from_numpy(g)

    def run():
        X.grad = W.grad = B.grad = None
        fn(X, (1024,), W, B).backward(G)
        return X.grad, W.grad

    e_dx, e_dw, _ = ref.layer_norm_backward(g.astype(np.float64), x.astype(np.float64), (1024,), w)

    def check(grads):
        np.testing.assert_allclose(grads[0].numpy(), e_dx, atol=1e-4)
        np.testing.assert_allclose(grads[1].numpy(), e_dw, rtol=1e-4, atol=1e-2)

    return run, check


def cross_entropy_fwd_bwd(impl, torch):
    (x,) = data((4096, 1000))
    t = np.random.default_rng(1).integers(0, 1000, 4096)
    if impl == "reference":
        return lambda: (ref.cross_entropy(x, t), ref.cross_entropy_backward(1.0, x, t)), None
    lib, fn = (kg, F.cross_entropy) if impl == "kernelgrad" else (torch, torch.nn.functional.cross_entropy)
    X, T = lib.from_numpy(x).requires_grad_(), lib.from_numpy(t)

    def run():
        X.grad = None
        fn(X, T).backward()
        return X.grad

    expected = ref.cross_entropy_backward(1.0, x.astype(np.float64), t)
    return run, lambda dx: np.testing.assert_allclose(dx.numpy(), expected, atol=1e-8)


def batch_norm_training_forward(impl, torch):
    x, w, b = data((32, 64, 32, 32), (64,), (64,))
    rm, rv = np.zeros(64, np.float32), np.ones(64, np.float32)
    if impl == "reference":
        return lambda: ref.batch_norm(x, rm, rv, w, b, training=True), None
    lib, fn = (kg, F.batch_norm) if impl == "kernelgrad" else (torch, torch.nn.functional.batch_norm)
    X, W, B, RM, RV = (lib.from_numpy(a.copy()) for a in (x, w, b, rm, rv))
    expected = ref.batch_norm(x.astype(np.float64), None, None, w, b, training=True)
    return (lambda: fn(X, RM, RV, W, B, training=True),
            lambda y: np.testing.assert_allclose(y.numpy(), expected, atol=1e-4))


def log_softmax_forward(impl, torch):
    (x,) = data((4096, 1024))
    if impl == "kernelgrad":
        X, expected = kg.from_numpy(x), ref.log_softmax(x, -1)
        return lambda: F.log_softmax(X, -1), lambda y: np.testing.assert_allclose(y.numpy(), expected, atol=1e-5)
    if impl == "reference":
        return lambda: ref.log_softmax(x, -1), None
    X = torch.from_numpy(x)
    return lambda: torch.log_softmax(X, -1), None


def nll_loss_fwd_bwd(impl, torch):
    (x,) = data((4096, 1000))
    t = np.random.default_rng(1).integers(0, 1000, 4096)
    if impl == "reference":
        return lambda: (ref.nll_loss(x, t), ref.nll_loss_backward(1.0, x, t)), None
    lib, fn = (kg, F.nll_loss) if impl == "kernelgrad" else (torch, torch.nn.functional.nll_loss)
    X, T = lib.from_numpy(x).requires_grad_(), lib.from_numpy(t)

    def run():
        X.grad = None
        fn(X, T).backward()
        return X.grad

    expected = ref.nll_loss_backward(1.0, x.astype(np.float64), t)
    return run, lambda dx: np.testing.assert_allclose(dx.numpy(), expected, atol=1e-8)


def batch_norm_training_fwd_bwd(impl, torch):
    x, w, b, g = data((32, 64, 32, 32), (64,), (64,), (32, 64, 32, 32))
    if impl == "reference":
        return lambda: (ref.batch_norm(x, None, None, w, b, training=True),
                        ref.batch_norm_backward(g, x, None, None, w, training=True)), None
    lib, fn = (kg, F.batch_norm) if impl == "kernelgrad" else (torch, torch.nn.functional.batch_norm)
    X, W, B = (lib.from_numpy(a).requires_grad_() for a in (x, w, b))
    G = lib.from_numpy(g)

    def run():
        X.grad = W.grad = B.grad = None
        fn(X, None, None, W, B, training=True).backward(G)
        return X.grad

    expected = ref.batch_norm_backward(g.astype(np.float64), x.astype(np.float64), None, None, w, training=True)[0]
    return run, lambda dx: np.testing.assert_allclose(dx.numpy(), expected, atol=1e-4)


CASES = {
    "softmax float32 (4096x1024) dim=-1": lambda impl, torch: softmax_forward(impl, torch, -1, (4096, 1024)),
    "softmax float32 (64x1024x64) dim=1": lambda impl, torch: softmax_forward(impl, torch, 1, (64, 1024, 64)),
    "softmax fwd+bwd float32 (4096x1024) dim=-1": softmax_fwd_bwd,
    "layer_norm float32 (4096x1024) over 1024, affine": layer_norm_forward,
    "layer_norm fwd+bwd float32 (4096x1024) over 1024, affine": layer_norm_fwd_bwd,
    "cross_entropy fwd+bwd float32 (4096x1000), mean": cross_entropy_fwd_bwd,
    "batch_norm training float32 (32x64x32x32), affine": batch_norm_training_forward,
    "batch_norm training fwd+bwd float32 (32x64x32x32), affine": batch_norm_training_fwd_bwd,
    "log_softmax float32 (4096x1024) dim=-1": log_softmax_forward,
    "nll_loss fwd+bwd float32 (4096x1000), mean": nll_loss_fwd_bwd,
}


@pytest.mark.parametrize("impl", ["kernelgrad", "reference", "torch"])
@pytest.mark.parametrize("group", list(CASES), ids=lambda g: g.replace(" ", ""))
def test_norm(benchmark, group, impl):
    torch = None
    if impl == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(kg.get_num_threads())  # the same threads as kernelgrad (bench/conftest.py)
    benchmark.group = group
    benchmark.extra_info["impl"] = impl
    benchmark.extra_info["threads"] = kg.get_num_threads()
    run, check = CASES[group](impl, torch)
    out = benchmark(run)
    if check is not None:
        check(out)
