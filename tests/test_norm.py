"""F.layer_norm, F.batch_norm and the LayerNorm, BatchNorm1d, BatchNorm2d modules: forward and
backward against kg.reference in float32, float64 gradcheck, running statistics (in place, the
unbiased variance, momentum=None as a cumulative average), train/eval, PyTorch's init, repr and
state_dict, bad input, and torch as an extra oracle.

float32 tolerance: normalised values of order 1 from means and variances over <= 1000 values:
rtol 2e-5, atol 1e-5; dweight and dbias sum over rows or over N * L values: atol 1e-4.
"""
import functools

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import nn
from kernelgrad import reference as ref

gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, np.float64), device=device, requires_grad=requires_grad)


def f32(rng, *shape, shift=0.0):
    return (rng.standard_normal(shape) + shift).astype(np.float32)


# --- layer norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, normalized", [((4, 10), (10,)), ((2, 3, 17), (17,)), ((2, 3, 4), (3, 4)),
                                               ((5, 1000), (1000,)), ((7,), (7,))], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_vs_reference(shape, normalized, affine, device, rng):
    x, dy = f32(rng, *shape, shift=3.0), f32(rng, *shape)
    w, b = (f32(rng, *normalized), f32(rng, *normalized)) if affine else (None, None)
    tx = kg.tensor(x, device=device, requires_grad=True)
    tw, tb = [None if p is None else kg.tensor(p, device=device, requires_grad=True) for p in (w, b)]
    y = F.layer_norm(tx, normalized, tw, tb)
    assert y.shape == shape and y.dtype == kg.float32
    np.testing.assert_allclose(npy(y), ref.layer_norm(x.astype(np.float64), normalized, w, b), rtol=2e-5, atol=1e-5)
    y.backward(kg.tensor(dy, device=device))
    dx, dw, db = ref.layer_norm_backward(dy.astype(np.float64), x.astype(np.float64), normalized, w)
    np.testing.assert_allclose(npy(tx.grad), dx, rtol=2e-5, atol=1e-5)
    if affine:
        np.testing.assert_allclose(npy(tw.grad), dw, rtol=2e-5, atol=1e-4)
        np.testing.assert_allclose(npy(tb.grad), db, rtol=2e-5, atol=1e-4)


def test_layer_norm_gradcheck(device, rng):
    x, w, b = (f64(rng.standard_normal(s), device=device) for s in [(3, 2, 4), (2, 4), (2, 4)])
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (2, 4), w, b), (x, w, b))
    assert gradcheck(lambda x, w: F.layer_norm(x, [4], w[0], eps=0.1), (x, w))
    assert gradcheck(lambda x: F.layer_norm(x, (4,)), (x,))


def test_layer_norm_only_bias_needs_grad(device, rng):
    x = kg.tensor(f32(rng, 3, 5), device=device)
    w, b = kg.ones(5, device=device), kg.zeros(5, device=device, requires_grad=True)
    F.layer_norm(x, (5,), w, b).sum().backward()
    np.testing.assert_allclose(npy(b.grad), np.full(5, 3.0))
    assert w.grad is None and x.grad is None


def test_layer_norm_non_contiguous(device, rng):
    base = f32(rng, 8, 6)
    x = kg.tensor(base, device=device, requires_grad=True)
    y = F.layer_norm(x.T[:, ::2], (4,))  # (6, 4), strided both ways
    np.testing.assert_allclose(npy(y), ref.layer_norm(base.T[:, ::2].astype(np.float64), (4,)), atol=1e-5)
    y.backward(kg.ones(6, 4, device=device))
    assert x.grad.shape == (8, 6) and np.allclose(npy(x.grad), 0, atol=1e-5)  # d sum(xhat) / dx = 0


def test_layer_norm_double_backward_raises(device, rng):
    x = f64(rng.standard_normal((2, 3)), device=device)
    (g,) = kg.autograd.grad((F.layer_norm(x, (3,)) ** 3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="layer_norm: double backward is not supported"):
        g.sum().backward()


def test_layer_norm_bad_input(device):
    T, Z, O = (functools.partial(f, device=device) for f in (kg.tensor, kg.zeros, kg.ones))
    x = Z(2, 3, 4)
    cases = [
        (lambda: F.layer_norm(x, (3,)), (ValueError, RuntimeError), "expected input with shape [*, 3]"),
        (lambda: F.layer_norm(x, (1, 2, 3, 4)), (ValueError, RuntimeError), "normalized_shape=[1, 2, 3, 4]"),
        (lambda: F.layer_norm(x, ()), (ValueError, RuntimeError), "at least 1-dimensional"),
        (lambda: F.layer_norm(x, 4), TypeError, "normalized_shape"),
        (lambda: F.layer_norm(x, (4.0,)), TypeError, "normalized_shape"),
        (lambda: F.layer_norm(x, (3, 4), weight=O(4)), (ValueError, RuntimeError), "weight of shape [4]"),
        (lambda: F.layer_norm(x, (4,), bias=O(4, dtype=kg.float64)), (TypeError, RuntimeError), "bias"),
        (lambda: F.layer_norm(x, (4,), weight=np.ones(4)), TypeError, "weight"),
        (lambda: F.layer_norm(Z(2, 4, dtype=kg.int64), (4,)), (TypeError, RuntimeError), "int64"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as e:
            call()
        assert words in str(e.value), f"{words!r} not in {str(e.value)!r}"


def test_layer_norm_module(device, rng):
    m = nn.LayerNorm(4, device=device)
    assert repr(m) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(npy(m.weight), 1)
    np.testing.assert_array_equal(npy(m.bias), 0)
    m = nn.LayerNorm([3, 4], eps=1e-3, elementwise_affine=False, device=device)
    assert repr(m) == "LayerNorm((3, 4), eps=0.001, elementwise_affine=False, bias=False)"
    assert m.weight is None and m.bias is None and list(m.parameters()) == []
    x = kg.tensor(f32(rng, 2, 3, 4), device=device)
    np.testing.assert_array_equal(npy(m(x)), npy(F.layer_norm(x, (3, 4), eps=1e-3)))
    m = nn.LayerNorm(4, bias=False)
    assert list(m.state_dict()) == ["weight"] and m.normalized_shape == (4,)
    assert nn.LayerNorm(4, dtype=kg.float64).weight.dtype == kg.float64


# --- batch norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 10), (2, 3, 5, 4)], ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_batch_norm_vs_reference(shape, training, device, rng):
    x, dy = f32(rng, *shape, shift=5.0), f32(rng, *shape)
    w, b = f32(rng, 3), f32(rng, 3)
    rm, rv = f32(rng, 3), rng.uniform(0.5, 2.0, 3).astype(np.float32)
    tx = kg.tensor(x, device=device, requires_grad=True)
    tw, tb = kg.tensor(w, device=device, requires_grad=True), kg.tensor(b, device=device, requires_grad=True)
    running_mean, running_var = kg.tensor(rm, device=device), kg.tensor(rv, device=device)
    y = F.batch_norm(tx, running_mean, running_var, tw, tb, training=training, momentum=0.2, eps=1e-4)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    expected = ref.batch_norm(x.astype(np.float64), rm64, rv64, w, b, training=training, momentum=0.2, eps=1e-4)
    np.testing.assert_allclose(npy(y), expected, rtol=2e-5, atol=1e-5)
    # the running statistics were updated in place (reference: also in place) only when training
    np.testing.assert_allclose(npy(running_mean), rm64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(npy(running_var), rv64, rtol=1e-5, atol=1e-6)
    assert training != np.allclose(rm64, rm)
    y.backward(kg.tensor(dy, device=device))
    dx, dw, db = ref.batch_norm_backward(dy.astype(np.float64), x.astype(np.float64), rm, rv, w, training, eps=1e-4)
    np.testing.assert_allclose(npy(tx.grad), dx, rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(npy(tw.grad), dw, rtol=2e-5, atol=1e-4)
    np.testing.assert_allclose(npy(tb.grad), db, rtol=2e-5, atol=1e-4)


def test_batch_norm_running_var_is_unbiased_and_in_place(device):
    x = kg.tensor([[1.0], [3.0]], device=device)  # batch mean 2, biased var 1, unbiased var 2
    rm, rv = kg.zeros(1, device=device), kg.ones(1, device=device)
    rm_data = rm._data
    F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    assert rm.item() == 1.0 and rv.item() == 1.5  # 0.5 * 1 + 0.5 * 2
    assert rm._data is rm_data or (device == "cpu" and np.shares_memory(rm.numpy(), rm_data))
    F.batch_norm(x, rm, rv, training=True, momentum=1.0)
    assert rm.item() == 2.0 and rv.item() == 2.0


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(training, device, rng):
    x = f64(rng.standard_normal((4, 2, 3)), device=device)
    w, b = f64(rng.uniform(0.5, 2, 2), device=device), f64(rng.standard_normal(2), device=device)
    rm, rv = f64(rng.standard_normal(2), False, device), f64(rng.uniform(0.5, 2, 2), False, device)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm.clone(), rv.clone(), w, b, training=training), (x, w, b))
    x2 = f64(rng.standard_normal((3, 2)), device=device)
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x2,))


def test_batch_norm_double_backward_raises(device, rng):
    x = f64(rng.standard_normal((4, 3)), device=device)
    (g,) = kg.autograd.grad((F.batch_norm(x, None, None, training=True) ** 3).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="batch_norm: double backward is not supported"):
        g.sum().backward()


def test_batch_norm_non_contiguous(device, rng):
    base = f32(rng, 3, 2, 6)
    x = kg.tensor(base, device=device).permute(2, 1, 0)  # (6, 2, 3)
    v = np.transpose(base, (2, 1, 0)).astype(np.float64)
    np.testing.assert_allclose(npy(F.batch_norm(x, None, None, training=True)), ref.batch_norm(v, training=True),
                               atol=1e-5)


def test_batch_norm_bad_input(device):
    T, Z, O = (functools.partial(f, device=device) for f in (kg.tensor, kg.zeros, kg.ones))
    x = Z(4, 3)
    cases = [
        (lambda: F.batch_norm(x, Z(4), O(3), training=True), (ValueError, RuntimeError),
         "running_mean should contain 3 elements not 4"),
        (lambda: F.batch_norm(x, Z(3), O(2)), (ValueError, RuntimeError), "running_var should contain 3"),
        (lambda: F.batch_norm(x, None, None, weight=O(4), training=True), (ValueError, RuntimeError),
         "weight should contain 3 elements not 4"),
        (lambda: F.batch_norm(Z(1, 3), None, None, training=True), ValueError,
         "Expected more than 1 value per channel when training, got input size [1, 3]"),
        (lambda: F.batch_norm(Z(1, 3, 1), None, None, training=True), ValueError, "more than 1 value"),
        (lambda: F.batch_norm(x, None, None, training=False), RuntimeError, "running_mean must be defined"),
        (lambda: F.batch_norm(x, Z(3), None), ValueError, "both"),
        (lambda: F.batch_norm(x, Z(3, dtype=kg.float64), O(3, dtype=kg.float64)),
         (TypeError, RuntimeError), "running_mean"),
        (lambda: F.batch_norm(Z(4), None, None, training=True), (ValueError, RuntimeError), "(N, C)"),
        (lambda: F.batch_norm(Z(4, 3, dtype=kg.int64), None, None, training=True), (TypeError, RuntimeError),
         "int64"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as e:
            call()
        assert words in str(e.value), f"{words!r} not in {str(e.value)!r}"
    # with one value per channel, eval is fine
    assert F.batch_norm(Z(1, 3), Z(3), O(3)).shape == (1, 3)


def test_batch_norm_modules(device, rng):
    m = nn.BatchNorm2d(3, device=device)
    assert repr(m) == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert m.num_batches_tracked.dtype == kg.int64 and m.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(npy(m.weight), 1)
    np.testing.assert_array_equal(npy(m.running_var), 1)
    x = kg.tensor(f32(rng, 4, 3, 2, 2, shift=2.0), device=device)
    y = m(x)
    assert m.num_batches_tracked.item() == 1
    np.testing.assert_allclose(npy(m.running_mean), 0.1 * npy(x).mean(axis=(0, 2, 3)), rtol=1e-5)
    m.eval()
    np.testing.assert_allclose(npy(m(x)), npy(F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias)))
    assert m.num_batches_tracked.item() == 1 and not np.allclose(npy(m(x)), npy(y))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        m(kg.zeros(2, 3, 4, device=device))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3, device=device)(x)

    # momentum=None: the running statistics are the average over all batches so far
    m = nn.BatchNorm1d(2, momentum=None, device=device)
    batches = [f32(rng, 5, 2, shift=s) for s in (0.0, 4.0, -2.0)]
    for b in batches:
        m(kg.tensor(b, device=device))
    np.testing.assert_allclose(npy(m.running_mean), np.mean([b.mean(0) for b in batches], 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(npy(m.running_var), np.mean([b.var(0, ddof=1) for b in batches], 0), rtol=1e-5)

    m = nn.BatchNorm1d(2, affine=False, track_running_stats=False, device=device).eval()
    assert repr(m) == "BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)"
    assert list(m.parameters()) == [] and list(m.state_dict()) == [] and m.running_mean is None
    b = f32(rng, 6, 2, 3)
    np.testing.assert_allclose(npy(m(kg.tensor(b, device=device))), ref.batch_norm(b.astype(np.float64), training=True),
                               atol=1e-5)

    m = nn.BatchNorm1d(2, bias=False, device=device).double()
    assert m.bias is None and m.running_mean.dtype == kg.float64 and m.num_batches_tracked.dtype == kg.int64
    m2 = nn.BatchNorm1d(2, bias=False, device=device).double()
    m(kg.tensor(f32(rng, 4, 2), device=device).double())
    m2.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(npy(m2.running_var), npy(m.running_var))
    assert m2.num_batches_tracked.item() == 1


# --- torch as an extra oracle --------------------------------------------------------------------

def test_modules_match_torch(device, rng):
    torch = pytest.importorskip("torch")
    pairs = [(nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)), (2, 5, 3, 4)),
             (nn.BatchNorm1d(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None), (6, 3, 4)),
             (nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), (4, 3, 2, 5))]
    for k_mod, t_mod, shape in pairs:
        k_mod.to(device).double()
        t_mod.double()
        for step in range(3):
            if step == 2:
                k_mod.eval()
                t_mod.eval()
            x = 2 * rng.standard_normal(shape) + step
            kx, tx = f64(x, device=device), torch.tensor(x, requires_grad=True)
            ky, ty = k_mod(kx), t_mod(tx)
            np.testing.assert_allclose(npy(ky), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
            g = rng.standard_normal(shape)
            ky.backward(f64(g, False, device))
            ty.backward(torch.tensor(g))
            np.testing.assert_allclose(npy(kx.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
            for (name, kp), tp in zip(k_mod.named_parameters(), t_mod.parameters()):
                np.testing.assert_allclose(npy(kp.grad), tp.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
                kp.grad, tp.grad = None, None
        for name, kb in k_mod.state_dict().items():
            np.testing.assert_allclose(npy(kb), t_mod.state_dict()[name].numpy(), rtol=1e-12, err_msg=name)
