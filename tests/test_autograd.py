"""The autograd engine: Function/ctx, backward, grad accumulation, retain_graph, grad modes, hooks,
retain_grad, kg.autograd.grad with create_graph, deep graphs and gradcheck (API.md "Autograd")."""

import re
import warnings

import numpy as np
import pytest

import kernelgrad as kg

gradcheck = kg.autograd.gradcheck
F32 = dict(rtol=1e-5, atol=1e-6)


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


# --- custom Functions ---------------------------------------------------------------------------

class Cube(kg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class ScaledMul(kg.autograd.Function):
    """out = a * b * scale, with a python float argument and a record of needs_input_grad."""
    seen_needs_input_grad = None

    @staticmethod
    def forward(ctx, a, b, scale):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return a * b * scale

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        ScaledMul.seen_needs_input_grad = tuple(ctx.needs_input_grad)
        ga = grad * b * ctx.scale if ctx.needs_input_grad[0] else None
        gb = grad * a * ctx.scale if ctx.needs_input_grad[1] else None
        return ga, gb, None


class SplitTwo(kg.autograd.Function):
    """Two outputs: (2x, 3x)."""

    @staticmethod
    def forward(ctx, x):
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, g1, g2):
        return g1 * 2 + g2 * 3


def test_function_forward_backward(device):
    x = kg.tensor([1.0, 2.0, -3.0], requires_grad=True, device=device)
    y = Cube.apply(x)
    assert y.requires_grad and y.grad_fn is not None and not y.is_leaf
    np.testing.assert_allclose(npy(y), [1.0, 8.0, -27.0])
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [3.0, 12.0, 27.0])
    assert gradcheck(Cube.apply, (f64([0.5, -1.5, 2.0], device=device),))


def test_function_needs_input_grad_and_non_tensor_args(device):
    a = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = kg.tensor([3.0, 4.0], device=device)
    out = ScaledMul.apply(a, b, 0.5)
    np.testing.assert_allclose(npy(out), [1.5, 4.0])
    out.sum().backward()
    assert ScaledMul.seen_needs_input_grad == (True, False, False)
    np.testing.assert_allclose(npy(a.grad), [1.5, 2.0])
    assert b.grad is None
    inputs = (f64([1.0, 2.0], device=device), f64([-1.0, 0.5], device=device))
    assert gradcheck(lambda p, q: ScaledMul.apply(p, q, 1.5), inputs)


def test_function_multiple_outputs(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    p, q = SplitTwo.apply(x)
    (p.sum() + 10 * q.sum()).backward()
    np.testing.assert_allclose(npy(x.grad), [32.0, 32.0])
    # only one output used: the other's gradient arrives as zeros (or None treated as zeros)
    x.grad = None
    p, q = SplitTwo.apply(x)
    q.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [3.0, 3.0])


def test_function_under_no_grad_builds_no_graph(device):
    x = kg.tensor([1.0], requires_grad=True, device=device)
    with kg.no_grad():
        y = Cube.apply(x)
    assert not y.requires_grad and y.grad_fn is None


def test_function_without_grad_inputs(device):
    y = Cube.apply(kg.tensor([2.0], device=device))
    assert not y.requires_grad
    np.testing.assert_allclose(npy(y), [8.0])


# --- backward basics -------------------------------------------------------------------------

def test_backward_of_non_scalar_needs_gradient(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * x
    with pytest.raises(RuntimeError):
        y.backward()
    y.backward(kg.tensor([1.0, 10.0], device=device))
    np.testing.assert_allclose(npy(x.grad), [2.0, 40.0])


def test_backward_gradient_wrong_shape_raises(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    with pytest.raises((RuntimeError, ValueError)):
        (x * x).backward(kg.ones(3, device=device))


def test_backward_on_tensor_without_grad_raises(device):
    with pytest.raises(RuntimeError):
        kg.tensor([1.0], device=device).sum().backward()


def test_grads_accumulate_across_backward_calls(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [5.0, 7.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [3.0, 3.0])


def test_grad_has_tensor_shape_and_dtype(device):
    for dtype in (kg.float32, kg.float64):
        x = kg.ones(2, 3, dtype=dtype, requires_grad=True, device=device)
        (x * 2).sum().backward()
        assert x.grad.shape == (2, 3) and x.grad.dtype == dtype
        assert not x.grad.requires_grad


def test_same_tensor_used_twice_and_diamond(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (x * x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [2.0, 4.0])
    # diamond: y feeds z twice; y's gradient must be complete before it flows to x
    x.grad = None
    y = x * 2
    z = y * y + y
    z.sum().backward()
    np.testing.assert_allclose(npy(x.grad), 2 * (2 * npy(y) + 1))


def test_graph_with_shared_leaf_and_many_paths(device):
    x = kg.tensor(2.0, requires_grad=True, device=device)
    a = x * 3
    b = a * x      # 3x^2
    c = b + a      # 3x^2 + 3x
    d = c * b      # (3x^2 + 3x) * 3x^2 = 9x^4 + 9x^3
    d.backward()
    assert abs(x.grad.item() - (36 * 8 + 27 * 4)) < 1e-4


def test_detach_stops_gradient_and_shares_data(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    (x * d).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [1.0, 2.0])  # d treated as a constant
    d[0] = 5.0
    assert x[0].item() == 5.0  # detach shares memory, as torch


def test_ops_on_non_grad_tensors_are_leaves(device):
    a = kg.ones(2, device=device)
    b = a * 2 + 1
    assert not b.requires_grad and b.is_leaf and b.grad_fn is None


def test_requires_grad_(device):
    x = kg.ones(2, device=device)
    assert x.requires_grad_() is x
    assert x.requires_grad
    x.requires_grad_(False)
    assert not x.requires_grad


def test_dtype_and_copy_conversions_propagate_grad(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == kg.float32
    np.testing.assert_allclose(npy(x.grad), [3.0, 3.0])
    x.grad = None
    (x.clone() * x.to(kg.float64)).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [2.0, 4.0])
    x.grad = None
    x.unsqueeze(1).T.contiguous().sum().backward()
    np.testing.assert_allclose(npy(x.grad), [1.0, 1.0])


# --- retain_graph -------------------------------------------------------------------------------

def test_retain_graph_allows_second_backward(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(npy(x.grad), [4.0, 8.0])


def test_second_backward_through_freed_graph_raises(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=re.compile(r"retain_graph|freed|second time", re.I)):
        y.backward()


def test_freed_graph_leaves_shared_leaf_usable(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (x * x).sum().backward()
    (x * x).sum().backward()  # a fresh graph is fine
    np.testing.assert_allclose(npy(x.grad), [4.0, 8.0])


# --- grad modes ---------------------------------------------------------------------------------

def test_no_grad_context(device):
    x = kg.ones(2, requires_grad=True, device=device)
    with kg.no_grad():
        y = x * 2
        with kg.enable_grad():
            z = x * 2
    w = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert w.requires_grad


def test_no_grad_decorator(device):
    @kg.no_grad()
    def f(t):
        return t * 2

    x = kg.ones(2, requires_grad=True, device=device)
    assert not f(x).requires_grad
    assert (x * 2).requires_grad


def test_no_grad_restores_mode_after_exception(device):
    x = kg.ones(2, requires_grad=True, device=device)
    with pytest.raises(ValueError):
        with kg.no_grad():
            raise ValueError("boom")
    assert (x * 2).requires_grad


def test_set_grad_enabled(device):
    x = kg.ones(2, requires_grad=True, device=device)
    with kg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with kg.set_grad_enabled(True):
            assert (x * 2).requires_grad
    assert (x * 2).requires_grad
    kg.set_grad_enabled(False)  # also works as a plain call
    try:
        assert not (x * 2).requires_grad
    finally:
        kg.set_grad_enabled(True)
    assert (x * 2).requires_grad


# --- hooks and retain_grad ----------------------------------------------------------------------

def test_register_hook_sees_and_replaces_grad(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    seen = []
    x.register_hook(lambda g: seen.append(npy(g).copy()))
    (x * 3).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(npy(x.grad), [3.0, 3.0])

    w = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    w.register_hook(lambda g: g * 10)
    (w * 3).sum().backward()
    np.testing.assert_allclose(npy(w.grad), [30.0, 30.0])


def test_hook_on_non_leaf_changes_upstream_grad(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 2
    y.register_hook(lambda g: g + 1)
    (y * 3).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [8.0, 8.0])  # (3 + 1) * 2


def test_register_hook_on_tensor_without_grad_raises(device):
    with pytest.raises(RuntimeError):
        kg.ones(2, device=device).register_hook(lambda g: g)


def test_retain_grad_accumulates_like_leaf_grads(device):
    x = kg.tensor([1.0], requires_grad=True, device=device)
    y = x * 2
    y.retain_grad()
    (y * y).sum().backward(retain_graph=True)
    (y * y).sum().backward()
    np.testing.assert_allclose(npy(y.grad), [8.0])   # 2y twice
    np.testing.assert_allclose(npy(x.grad), [16.0])


def test_retain_grad(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 2
    y.retain_grad()
    z = x * 3
    (y * y + z).sum().backward()
    np.testing.assert_allclose(npy(y.grad), 2 * npy(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch warns when .grad of a non-leaf is read
        assert z.grad is None


# --- kg.autograd.grad ------------------------------------------------------------------------

def test_autograd_grad_basic(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    w = kg.tensor([3.0, 4.0], requires_grad=True, device=device)
    y = (x * w).sum()
    gx, gw = kg.autograd.grad(y, [x, w])
    np.testing.assert_allclose(npy(gx), [3.0, 4.0])
    np.testing.assert_allclose(npy(gw), [1.0, 2.0])
    assert x.grad is None and w.grad is None  # grad() does not accumulate into .grad


def test_autograd_grad_with_grad_outputs(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    (g,) = kg.autograd.grad(x * x, x, grad_outputs=kg.tensor([1.0, 0.5], device=device))
    np.testing.assert_allclose(npy(g), [2.0, 2.0])
    with pytest.raises(RuntimeError):
        kg.autograd.grad(x * x, x)   # non-scalar output without grad_outputs


def test_autograd_grad_retain_graph(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x.exp() * x).sum()
    g1 = kg.autograd.grad(y, x, retain_graph=True)[0]
    g2 = kg.autograd.grad(y, x)[0]
    np.testing.assert_allclose(npy(g1), npy(g2))
    with pytest.raises(RuntimeError):
        kg.autograd.grad(y, x)


def test_autograd_grad_allow_unused(device):
    x = kg.tensor([1.0], requires_grad=True, device=device)
    u = kg.tensor([1.0], requires_grad=True, device=device)
    y = (x * 2).sum()
    with pytest.raises(RuntimeError):
        kg.autograd.grad(y, [x, u], retain_graph=True)
    gx, gu = kg.autograd.grad(y, [x, u], allow_unused=True)
    np.testing.assert_allclose(npy(gx), [2.0])
    assert gu is None


@pytest.mark.parametrize(
    "name, f, d1, d2",
    [
        ("x^3", lambda x: x ** 3, lambda a: 3 * a ** 2, lambda a: 6 * a),
        ("x*x*x", lambda x: x * x * x, lambda a: 3 * a ** 2, lambda a: 6 * a),
        ("sin", kg.sin, np.cos, lambda a: -np.sin(a)),
        ("tanh", kg.tanh, lambda a: 1 - np.tanh(a) ** 2,
         lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2)),
        ("exp", kg.exp, np.exp, np.exp),
        ("sigmoid", kg.sigmoid, lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s),
         lambda a: (s := 1 / (1 + np.exp(-a))) * (1 - s) * (1 - 2 * s)),
        ("log", kg.log, lambda a: 1 / a, lambda a: -1 / a ** 2),
    ],
)
def test_double_backward(name, f, d1, d2, device):
    a = np.array([0.3, 0.7, 1.5, 2.0])
    x = f64(a, device=device)
    (g,) = kg.autograd.grad(f(x).sum(), x, create_graph=True)
    assert g.requires_grad
    np.testing.assert_allclose(npy(g), d1(a), rtol=1e-10)
    (gg,) = kg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(npy(gg), d2(a), rtol=1e-10)
    # backward() through the first-order graph accumulates the second derivative into x.grad
    (g2,) = kg.autograd.grad(f(x).sum(), x, create_graph=True)
    g2.sum().backward()
    np.testing.assert_allclose(npy(x.grad), d2(a), rtol=1e-10)


def test_double_backward_through_matmul(rng, device):
    a = rng.standard_normal((3, 4))
    wv = rng.standard_normal((4, 5))
    x, w = f64(a, device=device), f64(wv, device=device)
    y = ((x @ w) ** 2).sum()
    (gx,) = kg.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(npy(gx), 2 * (a @ wv) @ wv.T, rtol=1e-10)
    (gw,) = kg.autograd.grad(gx.sum(), w)
    # z = sum(2 (x w) w^T) = 2 sum_ik (xw)_ik s_k, s_k = sum_j w_jk
    s = wv.sum(0)
    expected = 2 * (a.sum(0)[:, None] * s[None, :] + (a @ wv).sum(0)[None, :])
    np.testing.assert_allclose(npy(gw), expected, rtol=1e-10)


def test_gradient_penalty_style_double_backward(device):
    # d/dx of |df/dx|^2 for f = sum(sin(x) * y): df/dx = cos(x) y; |.|^2 -> -2 cos sin y^2
    a = np.array([0.1, 0.5, 1.0])
    b = np.array([2.0, -1.0, 0.5])
    x, y = f64(a, device=device), f64(b, device=device)
    (g,) = kg.autograd.grad((kg.sin(x) * y).sum(), x, create_graph=True)
    (g * g).sum().backward()
    np.testing.assert_allclose(npy(x.grad), -2 * np.cos(a) * np.sin(a) * b ** 2, rtol=1e-10)
    np.testing.assert_allclose(npy(y.grad), 2 * np.cos(a) ** 2 * b, rtol=1e-10)


# --- deep graphs --------------------------------------------------------------------------------

def test_deep_chain_does_not_recurse(device):
    x = kg.tensor([1.0], dtype=kg.float64, requires_grad=True, device=device)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [1.0001 ** 10_000], rtol=1e-9)

    z = kg.tensor(0.0, requires_grad=True, device=device)
    w = z
    for _ in range(10_000):
        w = w + 1
    w.backward()
    assert z.grad.item() == 1.0


# --- gradcheck ---------------------------------------------------------------------------------

class WrongBackward(kg.autograd.Function):
    """out = a * 2 + b * 3, with the gradient of b wrong (4.5 instead of 3) at element (2, 1) only."""

    @staticmethod
    def forward(ctx, a, b):
        return a * 2 + b * 3

    @staticmethod
    def backward(ctx, grad):
        scale = np.full((3, 4), 3.0)
        scale[2, 1] = 4.5
        return grad * 2, grad * kg.tensor(scale, device=grad.device)


def test_gradcheck_passes_on_correct_functions(rng, device):
    a, b = f64(rng.standard_normal((3, 4)), device=device), f64(rng.standard_normal((4, 2)), device=device)
    # a product summed over the shared dim (p @ q without the matmul kernel, which test_matmul checks)
    assert gradcheck(lambda p, q: kg.tanh((p.unsqueeze(2) * q.unsqueeze(0)).sum(dim=1)).sum(dim=1), (a, b)) is True
    assert gradcheck(lambda p: (p * p).mean(), (a,), eps=1e-6, atol=1e-5, rtol=1e-3) is True


def test_gradcheck_reports_wrong_backward(rng, device):
    a, b = f64(rng.standard_normal((3, 4)), device=device), f64(rng.standard_normal((3, 4)), device=device)
    with pytest.raises((RuntimeError, AssertionError, ValueError)) as e:
        gradcheck(WrongBackward.apply, (a, b))
    msg = str(e.value)
    assert re.search(r"input\D{0,20}1", msg, re.I), f"input index 1 not named: {msg}"
    assert re.search(r"\(2, 1\)|\[2, 1\]|\b9\b", msg), f"worst element (2, 1) not named: {msg}"


def test_gradcheck_ignores_inputs_without_grad(rng, device):
    a = f64(rng.standard_normal(3), device=device)
    c = f64(rng.standard_normal(3), requires_grad=False, device=device)
    assert gradcheck(lambda p, q: p * q, (a, c))


# --- optional extra oracle: torch -------------------------------------------------------------

def test_double_backward_matches_torch(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal((3, 4))
    wv = rng.standard_normal((4, 2))

    def run(mod, x, w):
        y = (mod.tanh(x @ w) * mod.sigmoid(x @ w)).sum()
        (gx,) = mod.autograd.grad(y, x, create_graph=True)
        (gx * gx).sum().backward()
        return x.grad, w.grad

    kx, kw = run(kg, f64(a), f64(wv))
    tx, tw = run(torch, torch.tensor(a, requires_grad=True), torch.tensor(wv, requires_grad=True))
    np.testing.assert_allclose(npy(kx), tx.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(kw), tw.numpy(), rtol=1e-10, atol=1e-12)


# --- leaves keep an unshared gradient buffer instead of copying it; shared ones are copied ------

def test_leaf_gradients_never_alias_other_tensors():
    x = kg.randn(4, requires_grad=True)
    y = kg.randn(4, requires_grad=True)
    (x + y).backward(kg.ones(4))  # Add hands one gradient to both leaves
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())
    x.grad = None
    g = kg.full((4,), 3.0)
    (x * 1).backward(g)  # the caller's gradient passes straight through
    assert not np.shares_memory(x.grad.numpy(), g.numpy())
    g.fill_(0)
    assert np.allclose(x.grad.numpy(), 3.0)
    x.grad = None
    w = x.clone()
    w.retain_grad()
    (w * 2).sum().backward()  # Clone passes the retained gradient on
    assert not np.shares_memory(x.grad.numpy(), w.grad.numpy())
    x.grad = None
    kept = []
    handle = x.register_hook(lambda grad: kept.append(grad))
    (x * 2).sum().backward()
    handle.remove()
    assert not np.shares_memory(x.grad.numpy(), kept[0].numpy())
    x.grad = None
    (x * x).sum().backward()
    (x * x).sum().backward()  # accumulation in place stays right
    np.testing.assert_allclose(x.grad.numpy(), 4 * x.detach().numpy(), rtol=1e-6)


def test_leaf_gradients_are_independent_buffers(device):
    # the device-independent half of the test above: writing one gradient never changes another
    x = kg.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True, device=device)
    y = kg.tensor([0.0, 1.0, 2.0, -1.0], requires_grad=True, device=device)
    (x + y).backward(kg.ones(4, device=device))  # Add hands one gradient to both leaves
    with kg.no_grad():
        x.grad.add_(1)
    np.testing.assert_array_equal(npy(y.grad), np.ones(4))
    x.grad = None
    g = kg.full((4,), 3.0, device=device)
    (x * 1).backward(g)  # the caller's gradient passes straight through
    g.fill_(0)
    np.testing.assert_array_equal(npy(x.grad), np.full(4, 3.0))
    x.grad = None
    w = x.clone()
    w.retain_grad()
    (w * 2).sum().backward()  # Clone passes the retained gradient on
    with kg.no_grad():
        w.grad.add_(1)
    np.testing.assert_array_equal(npy(x.grad), np.full(4, 2.0))
    x.grad = None
    kept = []
    handle = x.register_hook(lambda grad: kept.append(grad))
    (x * 2).sum().backward()
    handle.remove()
    kept[0].fill_(0)
    np.testing.assert_array_equal(npy(x.grad), np.full(4, 2.0))
    x.grad = None
    (x * x).sum().backward()
    (x * x).sum().backward()  # accumulation in place stays right
    np.testing.assert_allclose(npy(x.grad), 4 * npy(x), rtol=1e-6)
    assert x.grad.device == x.device
