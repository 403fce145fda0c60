"""Reductions: sum mean var std max min argmax argmin prod logsumexp norm all any (API.md "Tensors")."""

import numpy as np
import pytest

import kernelgrad as kg

gradcheck = kg.autograd.gradcheck

# float32 reductions over a few dozen elements: a handful of roundings, relative to the result
F32 = dict(rtol=1e-5, atol=1e-5)


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


def np_logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out


def np_norm(a, axis=None, keepdims=False):
    return np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdims))


# name, numpy reference taking (a, axis, keepdims), domain
REDUCTIONS = [
    ("sum", lambda a, ax, kd: np.sum(a, axis=ax, keepdims=kd), (-2, 2)),
    ("mean", lambda a, ax, kd: np.mean(a, axis=ax, keepdims=kd), (-2, 2)),
    ("var", lambda a, ax, kd: np.var(a, axis=ax, keepdims=kd, ddof=1), (-2, 2)),
    ("std", lambda a, ax, kd: np.std(a, axis=ax, keepdims=kd, ddof=1), (-2, 2)),
    ("prod", lambda a, ax, kd: np.prod(a, axis=ax, keepdims=kd), (0.5, 1.5)),
    ("logsumexp", np_logsumexp, (-2, 2)),
    ("norm", np_norm, (-2, 2)),
]
# prod only reduces one dim (or all) in torch
DIMS = [None, 0, 1, -1, (0, 2), (-1, 0)]


def _call(name, t, dim, keepdim, method):
    fn = getattr(t, name) if method else (lambda **kw: getattr(kg, name)(t, **kw))
    if name == "logsumexp" and dim is None:
        dim = tuple(range(t.ndim))  # torch.logsumexp requires dim
    if dim is None:
        return fn() if not keepdim else fn(dim=tuple(range(t.ndim)), keepdim=True)
    return fn(dim=dim, keepdim=keepdim)


def _supported(name, dim):
    return not (name == "prod" and isinstance(dim, tuple))


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("name, np_fn, domain", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_forward(name, np_fn, domain, dim, keepdim, device, rng):
    if not _supported(name, dim) or (name == "prod" and dim is None and keepdim):
        pytest.skip("torch.prod reduces a single dim or everything")
    if name == "norm" and dim is None and keepdim:
        pytest.skip("torch.norm takes at most a 2-tuple dim; keepdim over all dims is untested")
    a = rng.uniform(*domain, (3, 4, 5)).astype(np.float32)
    t = kg.tensor(a, device=device)
    expected = np_fn(a.astype(np.float64), dim if dim is not None else (None if not keepdim else (0, 1, 2)), keepdim)
    for method in (False, True):
        out = _call(name, t, dim, keepdim, method)
        assert out.dtype == kg.float32
        assert out.shape == np.shape(expected), (out.shape, np.shape(expected))
        np.testing.assert_allclose(npy(out), expected, **F32)


@pytest.mark.parametrize("dim", [None, 1, (0, 2)], ids=str)
@pytest.mark.parametrize("name, np_fn, domain", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_gradcheck(name, np_fn, domain, dim, rng, device):
    if not _supported(name, dim):
        pytest.skip("torch.prod reduces a single dim or everything")
    x = f64(rng.uniform(*domain, (2, 3, 4)), device=device)
    assert gradcheck(lambda t: _call(name, t, dim, False, False), (x,))
    if dim is not None:
        assert gradcheck(lambda t: _call(name, t, dim, True, True), (x,))


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_correction(name, rng, device):
    a = rng.standard_normal((4, 6))
    t = kg.tensor(a, device=device)
    np_fn = getattr(np, name)
    np.testing.assert_allclose(npy(getattr(kg, name)(t)), np_fn(a, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(npy(getattr(kg, name)(t, correction=0)), np_fn(a, ddof=0), rtol=1e-12)
    np.testing.assert_allclose(npy(getattr(t, name)(dim=1, correction=0)), np_fn(a, axis=1, ddof=0), rtol=1e-12)
    np.testing.assert_allclose(npy(getattr(t, name)(1)), np_fn(a, axis=1, ddof=1), rtol=1e-12)
    x = f64(a, device=device)
    assert gradcheck(lambda u: getattr(kg, name)(u, dim=0, correction=0), (x,))


def test_known_values(device):
    t = kg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    assert t.sum().item() == 10.0
    assert t.mean().item() == 2.5
    assert t.prod().item() == 24.0
    assert abs(t.var().item() - 5.0 / 3.0) < 1e-6
    assert abs(t.norm().item() - np.sqrt(30.0)) < 1e-5
    np.testing.assert_allclose(npy(t.sum(0)), [4.0, 6.0])
    np.testing.assert_allclose(npy(t.sum(1)), [3.0, 7.0])
    np.testing.assert_allclose(npy(kg.logsumexp(kg.tensor([0.0, 0.0], device=device), dim=0)), np.log(2.0), **F32)


def test_sum_of_ints_stays_int(device):
    t = kg.tensor([[1, 2], [3, 4]], device=device)
    assert t.sum().dtype == kg.int64 and t.sum().item() == 10
    assert t.sum(dim=0).tolist() == [4, 6]


def test_sum_and_mean_of_bool(device):
    m = kg.tensor([True, False, True], device=device)
    assert m.sum().item() == 2
    assert m.sum().dtype == kg.int64


def test_sum_of_many_float32_is_accurate(device):
    # 10^6 copies of 0.1: a naive running float32 sum drifts by ~1%; pairwise/blocked sums stay
    # within a few float32 epsilons of the true value.
    a = np.full(1_000_000, 0.1, dtype=np.float32)
    got = kg.tensor(a, device=device).sum().item()
    np.testing.assert_allclose(got, a.astype(np.float64).sum(), rtol=1e-5)
    got = kg.tensor(a, device=device).mean().item()
    np.testing.assert_allclose(got, 0.1, rtol=1e-5)


def test_logsumexp_is_stable(device):
    t = kg.tensor([[1000.0, 1000.0], [-1000.0, -1000.0]], requires_grad=True, device=device)
    out = kg.logsumexp(t, dim=1)
    np.testing.assert_allclose(npy(out), [1000.0 + np.log(2), -1000.0 + np.log(2)], rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(npy(t.grad), np.full((2, 2), 0.5), **F32)


def test_norm_p1(device):
    a = np.array([[1.0, -2.0], [3.0, -4.0]])
    t = kg.tensor(a, device=device)
    np.testing.assert_allclose(npy(t.norm(p=1)), 10.0)
    np.testing.assert_allclose(npy(kg.norm(t, p=1, dim=1)), [3.0, 7.0])
    assert gradcheck(lambda u: kg.norm(u, p=1, dim=0), (f64(a, device=device),))


# --- max / min / argmax / argmin ---------------------------------------------------------------

@pytest.mark.parametrize("name, np_fn, np_arg", [("max", np.max, np.argmax), ("min", np.min, np.argmin)])
def test_max_min(name, np_fn, np_arg, device, rng):
    a = rng.permutation(60).reshape(3, 4, 5).astype(np.float32)  # distinct values: no ties
    t = kg.tensor(a, device=device)
    full = getattr(t, name)()
    assert full.shape == () and full.item() == np_fn(a)
    assert getattr(kg, name)(t).item() == np_fn(a)
    for dim in (0, 1, 2, -1):
        for keepdim in (False, True):
            res = getattr(t, name)(dim=dim, keepdim=keepdim)
            values, indices = res  # unpackable
            assert values is res.values or np.array_equal(npy(values), npy(res.values))
            exp_v = np_fn(a, axis=dim, keepdims=keepdim)
            exp_i = np_arg(a, axis=dim)
            if keepdim:
                exp_i = np.expand_dims(exp_i, dim)
            assert res.values.shape == exp_v.shape and res.indices.shape == exp_v.shape
            assert res.indices.dtype == kg.int64
            np.testing.assert_array_equal(npy(res.values), exp_v)
            np.testing.assert_array_equal(npy(res.indices), exp_i)
            res2 = getattr(kg, name)(t, dim, keepdim=keepdim)  # positional dim
            np.testing.assert_array_equal(npy(res2[0]), exp_v)
            np.testing.assert_array_equal(npy(res2[1]), exp_i)


@pytest.mark.parametrize("name, np_arg", [("argmax", np.argmax), ("argmin", np.argmin)])
def test_argmax_argmin(name, np_arg, device, rng):
    a = rng.permutation(60).reshape(3, 4, 5).astype(np.float32)
    t = kg.tensor(a, device=device)
    out = getattr(kg, name)(t)
    assert out.shape == () and out.dtype == kg.int64
    assert out.item() == np_arg(a)  # index into the flattened tensor
    for dim in (0, 1, -1):
        np.testing.assert_array_equal(npy(getattr(t, name)(dim=dim)), np_arg(a, axis=dim))
        kept = getattr(t, name)(dim=dim, keepdim=True)
        np.testing.assert_array_equal(npy(kept), np.expand_dims(np_arg(a, axis=dim), dim))


def test_argmax_ties_return_first(device):
    t = kg.tensor([1.0, 3.0, 3.0, 2.0, 3.0], device=device)
    assert kg.argmax(t).item() == 1
    assert kg.argmin(kg.tensor([2.0, 0.0, 0.0], device=device)).item() == 1


def test_max_with_dim_grad_goes_to_argmax(rng, device):
    a = rng.permutation(12).reshape(3, 4).astype(np.float64)
    x = f64(a, device=device)
    x.max(dim=1).values.sum().backward()
    expected = np.zeros_like(a)
    expected[np.arange(3), a.argmax(1)] = 1
    np.testing.assert_array_equal(npy(x.grad), expected)
    x2 = f64(a, device=device)
    assert gradcheck(lambda u: u.max(dim=0).values, (x2,))
    assert gradcheck(lambda u: u.min(dim=1, keepdim=True)[0], (x2,))
    assert gradcheck(lambda u: u.max(), (x2,))
    assert gradcheck(lambda u: kg.min(u), (x2,))


def test_max_indices_do_not_require_grad(device):
    x = kg.tensor([[1.0, 2.0]], requires_grad=True, device=device)
    res = x.max(dim=1)
    assert res.values.requires_grad and not res.indices.requires_grad


# --- all / any ----------------------------------------------------------------------------------

def test_all_any(device):
    m = np.array([[True, False, True], [True, True, True]])
    t = kg.tensor(m, device=device)
    assert kg.all(t).item() is False and t.any().item() is True
    assert kg.all(t).dtype == kg.bool
    np.testing.assert_array_equal(npy(t.all(dim=1)), m.all(1))
    np.testing.assert_array_equal(npy(t.any(dim=0)), m.any(0))
    np.testing.assert_array_equal(npy(kg.all(t, dim=1, keepdim=True)), m.all(1, keepdims=True))
    f = kg.tensor([[0.0, 1.0], [0.0, 0.0]], device=device)  # nonzero counts as True
    np.testing.assert_array_equal(npy(f.any(dim=1)), [True, False])
    assert not f.all().item()
    assert kg.tensor([1, 2, 3], device=device).all().item()


# --- errors and edge cases ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "max", "min", "argmax", "prod", "logsumexp", "all"])
def test_dim_out_of_range_raises(name, device):
    t = kg.ones(2, 3, device=device)
    with pytest.raises((IndexError, ValueError)):
        getattr(t, name)(dim=2)
    with pytest.raises((IndexError, ValueError)):
        getattr(t, name)(dim=-3)


def test_empty_reductions(device):
    e = kg.zeros(0, device=device)
    assert e.sum().item() == 0.0
    assert e.prod().item() == 1.0
    assert kg.zeros(0, 3, device=device).sum(0).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        e.max()


# --- optional extra oracle: torch -------------------------------------------------------------

def test_reductions_match_torch(rng, device):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4, 5))
    t, tt = kg.tensor(a, device=device), torch.tensor(a)
    for name, kw in [("sum", dict(dim=(0, 2))), ("mean", dict(dim=1, keepdim=True)),
                     ("var", dict(dim=(0, 1), correction=0)), ("std", dict(dim=2)),
                     ("logsumexp", dict(dim=(1, 2))), ("norm", dict(dim=1)), ("prod", dict(dim=2))]:
        np.testing.assert_allclose(npy(getattr(t, name)(**kw)), getattr(tt, name)(**kw).numpy(),
                                   rtol=1e-12, atol=1e-12, err_msg=name)
