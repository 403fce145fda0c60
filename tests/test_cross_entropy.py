"""F.cross_entropy (the fused log-softmax + NLL kernel), F.nll_loss and their modules: values and
gradients against kg.reference in float32 for every reduction, class weights, ignore_index, label
smoothing, class-index and probability targets, (N, C), (N, C, d1, ...) and unbatched (C,) inputs;
float64 gradcheck; PyTorch's mean (divided by the weights of the targets that are not ignored);
bad input; torch as an extra oracle.

float32 tolerance: losses of order 1-10 summed over <= 60 positions: rtol 2e-5, atol 1e-5.
"""
import functools

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import nn
from kernelgrad import reference as ref

gradcheck = kg.autograd.gradcheck
REDUCTIONS = ["mean", "sum", "none"]


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, np.float64), device=device, requires_grad=requires_grad)


def case(rng, shape, ignore=True):
    """logits, class indices (one ignored), class probabilities, class weights."""
    x = 3 * rng.standard_normal(shape)
    C = shape[1] if len(shape) > 1 else shape[0]
    t_shape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, C, t_shape)
    if ignore and target.size > 1:
        target.reshape(-1)[0] = -100
    P = rng.uniform(0, 1, shape)
    P /= P.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    return x, target, P, rng.uniform(0.5, 2.0, C)


SHAPES = [(6, 5), (3, 4, 5), (2, 3, 2, 4), (5,)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("probs", [False, True], ids=["indices", "probabilities"])
def test_cross_entropy_vs_reference(shape, reduction, probs, device, rng):
    x, target, P, w = case(rng, shape)
    t_np = P.astype(np.float32) if probs else target
    for weight, smoothing in [(None, 0.0), (w, 0.0), (None, 0.25), (w, 0.1)]:
        t = kg.tensor(x.astype(np.float32), device=device, requires_grad=True)
        kw = None if weight is None else kg.tensor(weight.astype(np.float32), device=device)
        out = F.cross_entropy(t, kg.tensor(t_np, device=device), kw, reduction=reduction, label_smoothing=smoothing)
        expected = ref.cross_entropy(x.astype(np.float32).astype(np.float64), t_np, weight, reduction=reduction,
                                     label_smoothing=smoothing)
        assert out.shape == np.shape(expected) and out.dtype == kg.float32
        np.testing.assert_allclose(npy(out), expected, rtol=2e-5, atol=1e-5)
        g = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(kg.tensor(g, device=device))
        expected = ref.cross_entropy_backward(g, x.astype(np.float32).astype(np.float64), t_np, weight,
                                              reduction=reduction, label_smoothing=smoothing)
        np.testing.assert_allclose(npy(t.grad), expected, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_vs_reference(shape, reduction, device, rng):
    x, target, _, w = case(rng, shape)
    logp = ref.log_softmax(x, 1 if len(shape) > 1 else 0).astype(np.float32)
    for weight in (None, w):
        t = kg.tensor(logp, device=device, requires_grad=True)
        kw = None if weight is None else kg.tensor(weight.astype(np.float32), device=device)
        out = F.nll_loss(t, kg.tensor(target, device=device), kw, reduction=reduction)
        np.testing.assert_allclose(npy(out), ref.nll_loss(logp.astype(np.float64), target, weight, reduction=reduction),
                                   rtol=2e-5, atol=1e-5)
        g = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(kg.tensor(g, device=device))
        expected = ref.nll_loss_backward(g, logp, target, weight, reduction=reduction)
        np.testing.assert_allclose(npy(t.grad), expected, rtol=2e-5, atol=1e-6)


def test_mean_divides_by_the_weights_of_kept_targets(device):
    x = kg.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.5, 0.5, 2.0]], device=device)
    target = kg.tensor([2, -100, 0], device=device)
    w = kg.tensor([2.0, 1.0, 4.0], device=device)
    logp = ref.log_softmax(npy(x).astype(np.float64), 1)
    per = [-4.0 * logp[0, 2], -2.0 * logp[2, 0]]
    np.testing.assert_allclose(F.cross_entropy(x, target, w).item(), sum(per) / (4.0 + 2.0), rtol=1e-6)
    np.testing.assert_allclose(F.cross_entropy(x, target, w, reduction="sum").item(), sum(per), rtol=1e-6)
    np.testing.assert_allclose(F.nll_loss(kg.tensor(logp), target.cpu(), w.cpu().double()).item(), sum(per) / 6.0)
    # every target ignored: the mean is 0 / 0 = nan (as in torch), the sum 0, the gradient 0
    x = kg.zeros(2, 3, device=device, requires_grad=True)
    none = kg.tensor([-100, -100], device=device)
    assert np.isnan(F.cross_entropy(x, none).item()) and F.cross_entropy(x, none, reduction="sum").item() == 0
    F.cross_entropy(x, none, reduction="sum").backward()
    np.testing.assert_array_equal(npy(x.grad), 0)


def test_probability_targets_get_gradients(device, rng):
    x, _, P, w = case(rng, (3, 4, 2))
    kw = f64(w, False, device)
    assert gradcheck(lambda x, p: F.cross_entropy(x, p, kw, label_smoothing=0.2), (f64(x, device=device),
                                                                                  f64(P, device=device)))


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2), (3,)], ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck(shape, reduction, device, rng):
    x, target, P, w = case(rng, shape)
    t, p, kw = kg.tensor(target, device=device), f64(P, False, device), f64(w, False, device)
    x = f64(x, device=device)
    assert gradcheck(lambda x: F.cross_entropy(x, t, kw, reduction=reduction, label_smoothing=0.1), (x,))
    assert gradcheck(lambda x: F.cross_entropy(x, t, reduction=reduction), (x,))
    assert gradcheck(lambda x: F.cross_entropy(x, p, kw, reduction=reduction), (x,))
    assert gradcheck(lambda x: F.nll_loss(x, t, kw, reduction=reduction), (x,))


def test_non_contiguous_logits(device, rng):
    x, target, _, _ = case(rng, (5, 4), ignore=False)
    base = kg.tensor(np.ascontiguousarray(x.T).astype(np.float32), device=device, requires_grad=True)  # (4, 5)
    out = F.cross_entropy(base.T, kg.tensor(target, device=device), reduction="sum")
    np.testing.assert_allclose(out.item(), ref.cross_entropy(x.astype(np.float32).astype(np.float64), target,
                                                             reduction="sum"), rtol=2e-5)
    out.backward()
    expected = ref.cross_entropy_backward(1.0, x.astype(np.float32).astype(np.float64), target, reduction="sum")
    np.testing.assert_allclose(npy(base.grad), expected.T, rtol=2e-5, atol=1e-6)


def test_large_and_masked_logits(device):
    x = kg.tensor([[1e4, 0.0, -1e4], [0.0, -float("inf"), 1.0]], device=device, requires_grad=True)
    loss = F.cross_entropy(x, kg.tensor([1, 2], device=device), reduction="none")
    np.testing.assert_allclose(npy(loss), [1e4, np.log1p(np.exp(-1.0))], rtol=1e-6)
    loss.sum().backward()
    g = npy(x.grad)
    assert np.isfinite(g).all() and g[1, 1] == 0


def test_double_backward_raises_a_clear_error(device, rng):
    x = f64(rng.standard_normal((3, 4)), device=device)
    (g,) = kg.autograd.grad(F.cross_entropy(x, kg.tensor([0, 1, 2], device=device)), x, create_graph=True)
    with pytest.raises(RuntimeError, match="cross_entropy: double backward is not supported"):
        g.sum().backward()


def test_bad_input(device):
    T, Z, O = (functools.partial(f, device=device) for f in (kg.tensor, kg.zeros, kg.ones))
    x = Z(3, 4)
    cases = [
        (lambda: F.cross_entropy(x, T([0, 1, 4])), IndexError, "Target 4 is out of bounds"),
        (lambda: F.cross_entropy(x, T([0, -1, 2])), IndexError, "Target -1 is out of bounds"),
        (lambda: F.nll_loss(x, T([0, 1, 7])), IndexError, "Target 7"),
        (lambda: F.cross_entropy(x, T([0.0, 1.0, 2.0])), (TypeError, RuntimeError), "int64"),
        (lambda: F.cross_entropy(x, T([True, False, True])), (TypeError, RuntimeError), "bool"),
        (lambda: F.cross_entropy(x, Z(3, 4, dtype=kg.int64)), (TypeError, RuntimeError), "floating point"),
        (lambda: F.cross_entropy(x, T([0, 1])), (ValueError, RuntimeError), "batch_size (3)"),
        (lambda: F.cross_entropy(Z(2, 3, 4), Z(2, 5, dtype=kg.int64)), (ValueError, RuntimeError),
         "[2, 4]"),
        (lambda: F.cross_entropy(x, T([0, 1, 2]), weight=O(3)), (ValueError, RuntimeError),
         "all 4 classes"),
        (lambda: F.cross_entropy(x, T([0, 1, 2]), weight=O(4, dtype=kg.float64)),
         (TypeError, RuntimeError), "weight"),
        (lambda: F.cross_entropy(x, T([0, 1, 2]), reduction="bad"), ValueError, "bad"),
        (lambda: F.cross_entropy(x, T([0, 1, 2]), label_smoothing=1.5), RuntimeError, "label_smoothing"),
        (lambda: F.cross_entropy(x, T([0, 1, 2]), label_smoothing=-0.1), RuntimeError, "label_smoothing"),
        (lambda: F.cross_entropy(x, Z(3, 4), ignore_index=1), RuntimeError, "ignore_index"),
        (lambda: F.cross_entropy(Z(3, 4, dtype=kg.int64), T([0, 1, 2])), (TypeError, RuntimeError),
         "float32 or float64"),
        (lambda: F.cross_entropy(T(1.0), T(0)), (ValueError, RuntimeError), "0-d"),
        (lambda: F.cross_entropy(x, [0, 1, 2]), TypeError, "target"),
        (lambda: F.nll_loss(x, T([0.0, 1.0, 2.0])), (TypeError, RuntimeError), "int64"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as e:
            call()
        assert words in str(e.value), f"{words!r} not in {str(e.value)!r}"


def test_modules(device, rng):
    x, target, P, w = case(rng, (4, 3), ignore=False)
    kx, kt, kw = f64(x, False, device), kg.tensor(target, device=device), f64(w, False, device)
    loss = nn.CrossEntropyLoss(weight=kw, ignore_index=1, reduction="sum", label_smoothing=0.1)
    assert repr(loss) == "CrossEntropyLoss()" and repr(nn.NLLLoss()) == "NLLLoss()"
    assert "weight" in loss.state_dict() and "weight" not in nn.CrossEntropyLoss().state_dict()
    expected = F.cross_entropy(kx, kt, kw, ignore_index=1, reduction="sum", label_smoothing=0.1)
    assert loss(kx, kt).item() == expected.item()
    kP = f64(P, False, device)
    assert nn.CrossEntropyLoss()(kx, kP).item() == F.cross_entropy(kx, kP).item()
    logp = F.log_softmax(kx, 1)
    assert nn.NLLLoss(kw, reduction="none")(logp, kt).shape == (4,)
    assert nn.NLLLoss(kw)(logp, kt).item() == F.nll_loss(logp, kt, kw).item()
    with pytest.raises(ValueError):
        nn.CrossEntropyLoss(reduction="avg")


# --- torch as an extra oracle --------------------------------------------------------------------

def test_matches_torch(device, rng):
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    for shape in SHAPES + [(0, 3)]:
        x, target, P, w = case(rng, shape)
        for reduction in REDUCTIONS:
            for weight, smoothing, probs in [(None, 0.0, False), (w, 0.2, False), (w, 0.0, True), (None, 0.3, True)]:
                t = P if probs else target
                kx, tx = f64(x, device=device), torch.tensor(x, requires_grad=True)
                kw = None if weight is None else f64(weight, False, device)
                tw = None if weight is None else torch.tensor(weight)
                kt = f64(t, False, device) if probs else kg.tensor(t, device=device)
                k_out = F.cross_entropy(kx, kt, kw, reduction=reduction, label_smoothing=smoothing)
                t_out = tF.cross_entropy(tx, torch.tensor(t), tw, reduction=reduction, label_smoothing=smoothing)
                np.testing.assert_allclose(npy(k_out), t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
                if k_out.numel() and not np.isnan(npy(k_out)).any():
                    k_out.sum().backward()
                    t_out.sum().backward()
                    np.testing.assert_allclose(npy(kx.grad), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
                if not probs:
                    k_nll = F.nll_loss(kx, kt, kw, reduction=reduction)
                    t_nll = tF.nll_loss(tx, torch.tensor(t), tw, reduction=reduction)
                    np.testing.assert_allclose(npy(k_nll), t_nll.detach().numpy(), rtol=1e-12, atol=1e-12)
