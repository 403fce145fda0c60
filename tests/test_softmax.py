"""F.softmax / F.log_softmax, the Tensor methods and the Softmax / LogSoftmax modules: forward and
backward against kg.reference in float32, float64 gradcheck (double backward included), the known
values, numerical stability, non-contiguous inputs, bad input, and torch as an extra oracle.

float32 tolerance: rtol 2e-5 with an absolute floor of 1e-6 (1e-5 for log_softmax, whose values
reach ~|x - max|): exp within 2 ulp, rows of <= 1000 summed with a relative error ~ sqrt(n) eps.
"""
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


OPS = {  # name -> (F function, reference forward, reference backward(y, dy, dim), float32 atol)
    "softmax": (F.softmax, ref.softmax, ref.softmax_backward, 1e-6),
    "log_softmax": (F.log_softmax, ref.log_softmax, ref.log_softmax_backward, 1e-5),
}


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape, dim", [((5,), 0), ((4, 7), 1), ((4, 7), 0), ((2, 3, 65), -1), ((2, 65, 3), 1),
                                        ((3, 4, 5, 2), 2), ((1, 1), -1)], ids=str)
def test_forward_backward_vs_reference(name, shape, dim, device, rng):
    fn, fwd, bwd, atol = OPS[name]
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    t = kg.tensor(x, device=device, requires_grad=True)
    y = fn(t, dim)
    assert y.shape == shape and y.dtype == kg.float32 and y.device == t.device
    expected = fwd(x.astype(np.float64), dim)
    np.testing.assert_allclose(npy(y), expected, rtol=2e-5, atol=atol)
    y.backward(kg.tensor(dy, device=device))
    np.testing.assert_allclose(npy(t.grad), bwd(expected, dy.astype(np.float64), dim), rtol=2e-5, atol=atol)


def test_known_values(device):
    x = kg.tensor([-5.0, -3.0, 0.0, 1.0, 10.0], device=device)
    expected = [3.05849905e-07, 2.25994211e-06, 4.53921506e-05, 1.23388658e-04, 9.99828653e-01]
    np.testing.assert_allclose(npy(F.softmax(x, 0)), expected, rtol=1e-6)
    np.testing.assert_allclose(npy(x.softmax(0)), expected, rtol=1e-6)
    # log s is taken of s = 1.00017 in float32 (spacing 1.2e-7 at 1): an absolute error of that order
    np.testing.assert_allclose(npy(x.log_softmax(-1)), np.log(expected), rtol=1e-6, atol=1e-7)
    y = F.softmax(kg.tensor([3.0, 1.0, 2.0], device=device), dim=0)
    np.testing.assert_allclose(npy(y), [0.66524096, 0.09003057, 0.24472847], rtol=1e-6)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("shape, dim", [((6,), 0), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), 1)], ids=str)
def test_gradcheck(name, shape, dim, device, rng):
    fn = OPS[name][0]
    assert gradcheck(lambda x: fn(x, dim), (f64(rng.standard_normal(shape), device=device),))


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dim", [1, 0])
def test_double_backward(name, dim, device, rng):
    """The gradient, taken with create_graph=True, is differentiable with respect to the input and
    to the upstream gradient (and the second gradient once more, for softmax)."""
    fn = OPS[name][0]
    x, dy = f64(rng.standard_normal((3, 4)), device=device), f64(rng.standard_normal((3, 4)), device=device)

    def grad_x(x, dy):
        (g,) = kg.autograd.grad(fn(x, dim), x, grad_outputs=dy, create_graph=True)
        return g

    assert gradcheck(grad_x, (x, dy))
    v = f64(rng.standard_normal((3, 4)), requires_grad=False, device=device)

    def second(x):
        (g2,) = kg.autograd.grad((grad_x(x, dy) * v).sum(), x, create_graph=True)
        return g2

    assert gradcheck(second, (x,))


def test_stability_large_and_infinite_inputs(device):
    inf = float("inf")
    x = kg.tensor([[1e4, 0.0, -1e4], [1e4, 1e4 + 1, 1e4 - 1]], device=device)
    assert bool(F.softmax(x, 1).isfinite().all()) and bool(F.log_softmax(x, 1).isfinite().all())
    np.testing.assert_allclose(npy(F.log_softmax(x, 1))[0], [0.0, -1e4, -2e4], rtol=1e-6)
    # masked (-inf) entries: probability 0, gradient 0; all -inf (or with +inf) rows are nan, as in torch
    x = kg.tensor([[-inf, 1.0, 2.0], [-inf, -inf, -inf], [inf, 1.0, 2.0]], device=device, requires_grad=True)
    y = F.softmax(x, 1)
    out = npy(y)
    assert out[0, 0] == 0 and np.isnan(out[1:]).all()
    y[0].sum().backward()
    g = npy(x.grad)
    assert g[0, 0] == 0 and np.isfinite(g[0]).all()


def test_non_contiguous_inputs_and_grads(device, rng):
    base = rng.standard_normal((6, 8)).astype(np.float32)
    dy = rng.standard_normal((4, 3)).astype(np.float32)
    for dim in (0, 1):
        t = kg.tensor(base, device=device, requires_grad=True)
        view = t.T[1::2, ::2]  # (4, 3), strided both ways
        y = F.softmax(view, dim)
        v = base.T[1::2, ::2].astype(np.float64)
        np.testing.assert_allclose(npy(y), ref.softmax(v, dim), rtol=2e-5, atol=1e-6)
        y.backward(kg.tensor(dy, device=device))
        expected = np.zeros((8, 6))
        expected[1::2, ::2] = ref.softmax_backward(ref.softmax(v, dim), dy, dim)
        np.testing.assert_allclose(npy(t.grad), expected.T, rtol=2e-5, atol=1e-6)
    # an expanded (stride 0) input
    e = kg.tensor(base[:1], device=device).expand(5, 8)
    np.testing.assert_allclose(npy(F.log_softmax(e, 1)), np.repeat(ref.log_softmax(base[:1], 1), 5, 0), atol=1e-5)


def test_edge_shapes(device):
    y = F.softmax(kg.tensor(2.0, device=device), 0)
    assert y.shape == () and y.item() == 1.0
    assert F.log_softmax(kg.tensor(2.0, device=device), -1).item() == 0.0
    for shape in [(0, 3), (3, 0), (2, 0, 4)]:
        x = kg.zeros(*shape, device=device, requires_grad=True)
        y = F.softmax(x, 1)
        assert y.shape == shape
        y.sum().backward()
        assert x.grad.shape == shape


def test_dtype_argument_and_float64(device, rng):
    x = kg.tensor(rng.standard_normal((3, 4)).astype(np.float32), device=device)
    y = F.softmax(x, 1, dtype=kg.float64)
    assert y.dtype == kg.float64
    np.testing.assert_allclose(npy(y), ref.softmax(npy(x).astype(np.float64), 1), rtol=1e-12)
    assert x.log_softmax(1, dtype=kg.float64).dtype == kg.float64
    assert F.softmax(kg.ones(2, 3, dtype=kg.int64, device=device), 1, dtype=kg.float32).dtype == kg.float32


def test_implicit_dim_warns_like_torch(device):
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        y = F.softmax(kg.zeros(2, 3, device=device))  # 2-d: dim 1
    np.testing.assert_allclose(npy(y), np.full((2, 3), 1 / 3), rtol=1e-6)
    with pytest.warns(UserWarning, match="log_softmax"):
        y = F.log_softmax(kg.zeros(2, 3, 4, device=device))  # 3-d: dim 0
    np.testing.assert_allclose(npy(y), np.full((2, 3, 4), np.log(0.5)), rtol=1e-6)


def test_output_modified_in_place_before_backward_raises(device, rng):
    x = kg.tensor(rng.standard_normal((2, 3)), device=device, requires_grad=True)
    y = F.softmax(x, 1)
    with kg.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_bad_input(device):
    with pytest.raises(TypeError, match="Tensor"):
        F.softmax(np.zeros(3), 0)
    with pytest.raises((TypeError, RuntimeError), match="int64"):
        F.softmax(kg.ones(2, 3, dtype=kg.int64, device=device), 1)
    with pytest.raises((TypeError, RuntimeError), match="float16"):
        F.log_softmax(kg.ones(2, 3, dtype=kg.float16, device=device), 1)
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.softmax(kg.ones(2, 3, device=device), 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        kg.ones(2, 3, device=device).log_softmax(-3)
    with pytest.raises(TypeError):
        F.softmax(kg.ones(2, 3, device=device), 1.0)


def test_modules(device, rng):
    x = kg.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), device=device)
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)" and repr(nn.LogSoftmax()) == "LogSoftmax(dim=None)"
    np.testing.assert_array_equal(npy(nn.Softmax(dim=-1)(x)), npy(F.softmax(x, -1)))
    np.testing.assert_array_equal(npy(nn.LogSoftmax(1)(x)), npy(F.log_softmax(x, 1)))
    assert list(nn.Softmax(1).parameters()) == []
    with pytest.warns(UserWarning, match="Implicit dimension"):
        nn.Softmax()(x)


# --- torch as an extra oracle --------------------------------------------------------------------

@pytest.mark.parametrize("name", OPS)
def test_matches_torch(name, device, rng):
    torch = pytest.importorskip("torch")
    fn = OPS[name][0]
    tfn = getattr(torch.nn.functional, name)
    for shape, dim in [((4, 9), 1), ((3, 5, 70), 1), ((2, 3), 0)]:
        x = 4 * rng.standard_normal(shape)
        x[0, 0] = -np.inf
        dy = rng.standard_normal(shape)
        kx, tx = f64(x, device=device), torch.tensor(x, requires_grad=True)
        ky, ty = fn(kx, dim), tfn(tx, dim)
        np.testing.assert_allclose(npy(ky), ty.detach().numpy(), rtol=1e-12, atol=1e-300)
        (kg_g,) = kg.autograd.grad(ky, kx, grad_outputs=f64(dy, False, device), create_graph=True)
        (t_g,) = torch.autograd.grad(ty, tx, grad_outputs=torch.tensor(dy), create_graph=True)
        np.testing.assert_allclose(npy(kg_g), t_g.detach().numpy(), rtol=1e-12, atol=1e-14)
        v = rng.standard_normal(shape)
        (kg_g2,) = kg.autograd.grad((kg_g * f64(v, False, device)).sum(), kx)
        (t_g2,) = torch.autograd.grad((t_g * torch.tensor(v)).sum(), tx)
        np.testing.assert_allclose(npy(kg_g2), t_g2.numpy(), rtol=1e-10, atol=1e-12)
