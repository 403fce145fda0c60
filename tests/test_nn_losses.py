"""Losses: values against NumPy formulas for every reduction, float64 gradcheck, PyTorch as an
extra oracle, the Module forms, and bad-input errors."""
import warnings

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F


def npy(t):
    return t.detach().cpu().numpy()


def _reduce(l, reduction):
    return {"none": l, "mean": l.mean(), "sum": l.sum()}[reduction]


def _normal(rng, device, *shape):
    """float32 data from NumPy (these tests are about the losses, not about kg's random numbers)."""
    return kg.tensor(rng.standard_normal(shape).astype(np.float32), device=device)


def _uniform(rng, device, *shape):
    return kg.tensor(rng.uniform(0, 1, shape).astype(np.float32), device=device)


def _inputs(rng, shape=(3, 4)):
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)
    p = rng.uniform(0.05, 0.95, shape)
    t = rng.uniform(0, 1, shape)
    return x, y, p, t


# name -> (kg call(x, y, p, t, reduction), NumPy reference)
def _cases():
    def smooth(d, beta):
        d = np.abs(d)
        return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)

    def huber(d, delta):
        d = np.abs(d)
        return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))

    def bce(p, t, w=1.0):
        return -w * (t * np.log(p) + (1 - t) * np.log(1 - p))

    def sig(x):
        return 1 / (1 + np.exp(-x))

    return {
        "mse": (lambda x, y, p, t, r: F.mse_loss(x, y, reduction=r), lambda x, y, p, t: (x - y) ** 2),
        "l1": (lambda x, y, p, t, r: F.l1_loss(x, y, reduction=r), lambda x, y, p, t: np.abs(x - y)),
        "smooth_l1": (lambda x, y, p, t, r: F.smooth_l1_loss(x, y, reduction=r, beta=0.7),
                      lambda x, y, p, t: smooth(x - y, 0.7)),
        "huber": (lambda x, y, p, t, r: F.huber_loss(x, y, reduction=r, delta=0.8),
                  lambda x, y, p, t: huber(x - y, 0.8)),
        "bce": (lambda x, y, p, t, r: F.binary_cross_entropy(p, t, reduction=r), lambda x, y, p, t: bce(p, t)),
        "bce_weight": (lambda x, y, p, t, r: F.binary_cross_entropy(
                           p, t, weight=kg.tensor([1.0, 2.0, 0.5, 3.0], dtype=p.dtype, device=p.device), reduction=r),
                       lambda x, y, p, t: bce(p, t, np.array([1.0, 2.0, 0.5, 3.0]))),
        "bce_logits": (lambda x, y, p, t, r: F.binary_cross_entropy_with_logits(x, t, reduction=r),
                       lambda x, y, p, t: bce(sig(x), t)),
        "bce_logits_pos_weight": (
            lambda x, y, p, t, r: F.binary_cross_entropy_with_logits(
                x, t, weight=kg.tensor([2.0, 1.0, 1.0, 0.5], dtype=x.dtype, device=x.device),
                pos_weight=kg.tensor([3.0, 1.0, 0.5, 2.0], dtype=x.dtype, device=x.device), reduction=r),
            lambda x, y, p, t: -np.array([2.0, 1.0, 1.0, 0.5]) * (
                np.array([3.0, 1.0, 0.5, 2.0]) * t * np.log(sig(x)) + (1 - t) * np.log(1 - sig(x)))),
        "kl_div": (lambda x, y, p, t, r: F.kl_div(x, t, reduction=r), lambda x, y, p, t: t * (np.log(t) - x)),
        "kl_div_log_target": (lambda x, y, p, t, r: F.kl_div(x, y, reduction=r, log_target=True),
                              lambda x, y, p, t: np.exp(y) * (y - x)),
        "hinge": (lambda x, y, p, t, r: F.hinge_embedding_loss(x, y.detach().sign(), margin=0.5, reduction=r),
                  lambda x, y, p, t: np.where(np.sign(y) == 1, x, np.maximum(0, 0.5 - x))),
        "margin_ranking": (lambda x, y, p, t, r: F.margin_ranking_loss(x, y, (t.detach() - 0.5).sign(), margin=0.3, reduction=r),
                           lambda x, y, p, t: np.maximum(0, -np.sign(t - 0.5) * (x - y) + 0.3)),
    }


CASES = _cases()


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_values(name, reduction, rng, device):
    fn, ref = CASES[name]
    x, y, p, t = _inputs(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning
        got = fn(*(kg.tensor(a.astype(np.float32), device=device) for a in (x, y, p, t)), reduction)
    assert got.dtype == kg.float32
    want = _reduce(ref(x, y, p, t), reduction)
    assert got.shape == np.shape(want)
    assert got.device == device
    np.testing.assert_allclose(npy(got), want, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_gradcheck(name, rng, device):
    fn, _ = CASES[name]
    x, y, p, t = _inputs(rng, (2, 4))
    # keep |x - y| away from the kinks of l1/smooth_l1/huber/hinge/margin
    y = np.where(np.abs(np.abs(x - y) - 0.75) < 0.1, y + 0.3, y)
    y = np.where(np.abs(x - y) < 0.1, y + 0.3, y)
    x = np.where(np.abs(x - 0.5) < 0.1, x + 0.3, x)
    args = [kg.tensor(a, requires_grad=True, device=device) for a in (x, y, p, t)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert kg.autograd.gradcheck(lambda *a: fn(*a, "sum"), args)


def test_bce_clamps_log_at_minus_100(device):
    p = kg.tensor([0.0, 1.0, 0.0, 1.0], dtype=kg.float64, requires_grad=True, device=device)
    t = kg.tensor([1.0, 0.0, 0.0, 1.0], dtype=kg.float64, device=device)
    loss = F.binary_cross_entropy(p, t, reduction="none")
    assert loss.tolist() == [100.0, 100.0, 0.0, 0.0]
    loss.sum().backward()
    assert np.all(np.isfinite(npy(p.grad)))


def test_bce_with_logits_is_stable_for_large_logits(device):
    x = kg.tensor([-200.0, 200.0, 0.0], dtype=kg.float64, requires_grad=True, device=device)
    t = kg.tensor([1.0, 0.0, 1.0], dtype=kg.float64, device=device)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(npy(loss), [200.0, 200.0, np.log(2)])
    loss.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [-1.0, 1.0, -0.5])  # sigmoid(x) - t, also at x = 0


def test_kl_div_batchmean_and_zero_targets(device):
    x = kg.tensor([[-1.0, -2.0], [-0.5, -3.0]], device=device)
    t = kg.tensor([[0.0, 1.0], [0.5, 0.5]], device=device)
    pointwise = np.array([[0.0, 2.0], [0.5 * (np.log(0.5) + 0.5), 0.5 * (np.log(0.5) + 3.0)]])
    np.testing.assert_allclose(npy(F.kl_div(x, t, reduction="none")), pointwise, rtol=1e-6)
    np.testing.assert_allclose(F.kl_div(x, t, reduction="batchmean").item(), pointwise.sum() / 2, rtol=1e-6)
    with pytest.warns(UserWarning):
        F.kl_div(x, t)
    assert F.kl_div(x, t, reduction="batchmean").shape == ()


def test_cosine_similarity(rng, device):
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    ta, tb = kg.tensor(a, device=device), kg.tensor(b, device=device)
    want = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(npy(F.cosine_similarity(ta, tb)), want, rtol=1e-12)
    np.testing.assert_allclose(npy(F.cosine_similarity(ta, tb, dim=0)),
                               (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)), rtol=1e-12)
    np.testing.assert_allclose(npy(nn.CosineSimilarity()(ta, tb[:1])),
                               (a * b[:1]).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b[:1])), rtol=1e-12)
    xa, xb = kg.tensor(a[:2], requires_grad=True, device=device), kg.tensor(b[:2], requires_grad=True, device=device)
    assert kg.autograd.gradcheck(F.cosine_similarity, [xa, xb])
    z = kg.zeros(2, 3, dtype=kg.float64, requires_grad=True, device=device)
    out = F.cosine_similarity(z, kg.ones(2, 3, dtype=kg.float64, device=device))
    out.sum().backward()
    assert out.tolist() == [0.0, 0.0] and np.all(np.isfinite(npy(z.grad)))


def test_loss_modules_match_functional(rng, device):
    x, y, p, t = (kg.tensor(a.astype(np.float32), device=device) for a in _inputs(rng))
    w = kg.tensor([1.0, 2.0, 0.5, 3.0], device=device)
    checks = [
        (nn.MSELoss(), (x, y), F.mse_loss(x, y)),
        (nn.L1Loss(reduction="sum"), (x, y), F.l1_loss(x, y, reduction="sum")),
        (nn.SmoothL1Loss(beta=0.5), (x, y), F.smooth_l1_loss(x, y, beta=0.5)),
        (nn.HuberLoss(delta=2.0), (x, y), F.huber_loss(x, y, delta=2.0)),
        (nn.BCELoss(weight=w), (p, t), F.binary_cross_entropy(p, t, weight=w)),
        (nn.BCEWithLogitsLoss(pos_weight=w), (x, t), F.binary_cross_entropy_with_logits(x, t, pos_weight=w)),
        (nn.KLDivLoss(reduction="batchmean"), (x, t), F.kl_div(x, t, reduction="batchmean")),
        (nn.HingeEmbeddingLoss(), (x, t.sign()), F.hinge_embedding_loss(x, t.sign())),
        (nn.MarginRankingLoss(0.1), (x, y, (t - 0.5).sign()), F.margin_ranking_loss(x, y, (t - 0.5).sign(), 0.1)),
    ]
    for m, args, want in checks:
        np.testing.assert_allclose(npy(m(*args)), npy(want), rtol=1e-6, err_msg=repr(m))
    m = nn.BCEWithLogitsLoss(weight=w, pos_weight=w * 2)
    assert [n for n, _ in m.named_buffers()] == ["weight", "pos_weight"]
    assert m.double().weight.dtype == kg.float64 and m.weight.device == device
    assert list(nn.BCELoss().state_dict()) == []


def test_bad_reduction_and_shapes(device, rng):
    x, y = _normal(rng, device, 3), _normal(rng, device, 3)
    for fn in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss, F.kl_div, F.hinge_embedding_loss,
               F.binary_cross_entropy_with_logits):
        with pytest.raises(ValueError):
            fn(x, y, reduction="avg")
    with pytest.raises(ValueError):
        F.mse_loss(x, y, reduction="batchmean")
    with pytest.raises(ValueError):
        nn.MSELoss(reduction="bad")
    with pytest.raises(ValueError):
        F.binary_cross_entropy(_uniform(rng, device, 3), _uniform(rng, device, 3, 1))
    with pytest.raises(ValueError):
        F.binary_cross_entropy_with_logits(x, _uniform(rng, device, 1))
    with pytest.raises(RuntimeError):
        F.binary_cross_entropy(kg.tensor([1.5], device=device), kg.tensor([1.0], device=device))
    with pytest.raises(ValueError):
        F.mse_loss(_normal(rng, device, 3), _normal(rng, device, 4))
    with pytest.raises(TypeError):
        F.mse_loss(x, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        F.smooth_l1_loss(x, y, beta=-1.0)
    with pytest.raises(RuntimeError):
        F.margin_ranking_loss(x, y, kg.ones(1, 3, device=device))


def test_regression_losses_broadcast_with_a_warning(device, rng):
    x, y = _normal(rng, device, 4, 3), _normal(rng, device, 3)
    with pytest.warns(UserWarning, match="different to the input size"):
        out = F.mse_loss(x, y, reduction="none")
    assert out.shape == (4, 3)
    with pytest.warns(UserWarning):
        F.l1_loss(x, y)


def test_losses_against_torch(rng, device):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x, y, p, t = _inputs(rng, (5, 4))
    x[0, 0], y[0, 0] = 0.25, 0.25  # ties and kinks
    sgn = np.sign(y)
    w = rng.uniform(0.5, 2.0, 4)
    calls = [
        (lambda m, x, y, p, t, r: m.mse_loss(x, y, reduction=r)),
        (lambda m, x, y, p, t, r: m.l1_loss(x, y, reduction=r)),
        (lambda m, x, y, p, t, r: m.smooth_l1_loss(x, y, reduction=r, beta=0.5)),
        (lambda m, x, y, p, t, r: m.huber_loss(x, y, reduction=r, delta=0.5)),
        (lambda m, x, y, p, t, r: m.binary_cross_entropy(p, t, reduction=r)),
        (lambda m, x, y, p, t, r: m.binary_cross_entropy_with_logits(x, t, reduction=r, pos_weight=_T(m, w, device))),
        (lambda m, x, y, p, t, r: m.kl_div(x, t, reduction=r)),
        (lambda m, x, y, p, t, r: m.kl_div(x, y, reduction=r, log_target=True)),
        (lambda m, x, y, p, t, r: m.hinge_embedding_loss(x, _T(m, sgn, device), reduction=r)),
        (lambda m, x, y, p, t, r: m.margin_ranking_loss(x, y, _T(m, sgn, device), margin=0.2, reduction=r)),
    ]
    for i, call in enumerate(calls):
        for r in ("none", "mean", "sum"):
            ka = [kg.tensor(a, requires_grad=True, device=device) for a in (x, y, p, t)]
            ta = [torch.tensor(a, requires_grad=True) for a in (x, y, p, t)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ko, to = call(F, *ka, r), call(TF, *ta, r)
            np.testing.assert_allclose(npy(ko), to.detach().numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"call {i} {r}")
            (ko * 1.5).sum().backward()
            (to * 1.5).sum().backward()
            for j, (a, b) in enumerate(zip(ka, ta)):
                ga = None if a.grad is None else npy(a.grad)
                gb = None if b.grad is None else b.grad.numpy()
                if ga is None or gb is None:
                    assert ga is None or not np.any(ga), f"call {i} {r} input {j}"
                    continue
                np.testing.assert_allclose(ga, gb, rtol=1e-9, atol=1e-12, err_msg=f"call {i} {r} input {j}")
    a, b = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    np.testing.assert_allclose(npy(F.cosine_similarity(kg.tensor(a, device=device), kg.tensor(b, device=device))),
                               TF.cosine_similarity(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12)


def _T(mod, a, device="cpu"):
    """A float64 tensor of `a` for whichever library `mod` (F or torch's F) belongs to."""
    if mod is F:
        return kg.tensor(a, device=device)
    import torch

    return torch.tensor(a)
