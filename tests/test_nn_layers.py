"""Layers and activations: values against NumPy formulas, float64 gradcheck, PyTorch as an extra
oracle, and bad-input errors."""
import math

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import functional as F

_erf = np.vectorize(math.erf)


def _np_softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log1p(np.exp(-np.abs(beta * x))) / beta + np.maximum(x, 0))


# name -> (kg function, NumPy reference); the NumPy forms are the textbook definitions
ACTIVATIONS = {
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "relu6": (F.relu6, lambda x: np.clip(x, 0, 6)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    "elu": (lambda x: F.elu(x, 1.5), lambda x: np.where(x > 0, x, 1.5 * (np.exp(np.minimum(x, 0)) - 1))),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    "silu": (F.silu, lambda x: x / (1 + np.exp(-x))),
    "mish": (F.mish, lambda x: x * np.tanh(_np_softplus(x))),
    "softplus": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), lambda x: _np_softplus(x, 2.0, 3.0)),
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "tanh": (F.tanh, np.tanh),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: np.clip(x, -0.5, 2.0)),
    "softsign": (F.softsign, lambda x: x / (1 + np.abs(x))),
    "prelu": (lambda x: F.prelu(x, kg.tensor([0.25], dtype=x.dtype, device=x.device)),
              lambda x: np.where(x > 0, x, 0.25 * x)),
}


def _away_from_kinks(rng, shape, dtype=np.float64):
    """Random values kept away from the points where an activation is not differentiable."""
    x = rng.uniform(-4, 8, size=shape)
    for k in (0.0, -0.5, 1.5, 2.0, 6.0):
        x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
    return x.astype(dtype)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name, device, rng):
    fn, ref = ACTIVATIONS[name]
    x = rng.standard_normal((3, 17)).astype(np.float32) * 4
    out = fn(kg.tensor(x, device=device))
    assert out.dtype == kg.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.cpu().numpy(), ref(x.astype(np.float64)), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_gradcheck(name, device, rng):
    fn, _ = ACTIVATIONS[name]
    x = kg.tensor(_away_from_kinks(rng, (2, 5)), requires_grad=True, device=device)
    assert kg.autograd.gradcheck(fn, [x])


@pytest.mark.parametrize("name", ["gelu", "elu", "softplus", "mish", "silu", "softsign"])
def test_activation_double_backward(name, device, rng):
    fn, _ = ACTIVATIONS[name]
    x = kg.tensor(_away_from_kinks(rng, (6,)), requires_grad=True, device=device)

    def first_derivative(t):
        with kg.enable_grad():  # gradcheck evaluates fn under no_grad for the finite differences
            return kg.autograd.grad(fn(t).sum(), [t], create_graph=True)[0]

    assert kg.autograd.gradcheck(first_derivative, [x])


def test_extreme_inputs_stay_finite(device):
    x = kg.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=kg.float64, requires_grad=True, device=device)
    for fn in (F.elu, F.softplus, F.mish, F.silu, F.gelu, lambda t: F.gelu(t, approximate="tanh")):
        y = fn(x)
        (g,) = kg.autograd.grad(y.sum(), [x])
        assert y.device == device and g.device == device
        assert np.all(np.isfinite(y.detach().cpu().numpy())) and np.all(np.isfinite(g.cpu().numpy()))
    np.testing.assert_allclose(F.softplus(x).detach().cpu().numpy(),
                               [0.0, math.log1p(math.exp(-50)), math.log(2), 50, 1000])


def test_gradients_at_kinks_follow_pytorch(device):
    x = kg.tensor([0.0, 6.0, -1.0, 1.0], dtype=kg.float64, requires_grad=True, device=device)
    (g,) = kg.autograd.grad(F.relu6(x).sum(), [x])
    assert g.tolist() == [0.0, 0.0, 0.0, 1.0]  # hardtanh's gradient is 0 on the boundary
    (g,) = kg.autograd.grad(F.hardtanh(x).sum(), [x])
    assert g.tolist() == [1.0, 0.0, 0.0, 0.0]
    (g,) = kg.autograd.grad(F.elu(x, alpha=2.0).sum(), [x])
    assert g.tolist()[0] == 2.0  # x <= 0 takes the exponential branch
    (g,) = kg.autograd.grad(F.leaky_relu(x, 0.2).sum(), [x])
    assert g.tolist()[0] == pytest.approx(0.2)


def test_erf_accuracy_against_math_erf(device):
    from kernelgrad.nn._functions import Erf

    x = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 1e-200, -1e-9, 2.5, -2.5, 30.0]])
    got = Erf.apply(kg.tensor(x, device=device)).cpu().numpy()
    want = _erf(x)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)
    got32 = Erf.apply(kg.tensor(x.astype(np.float32), device=device)).cpu().numpy()
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want.astype(np.float32), rtol=2e-7, atol=1e-30)
    special = Erf.apply(kg.tensor([np.inf, -np.inf, np.nan], dtype=kg.float64, device=device)).cpu().numpy()
    assert special[0] == 1 and special[1] == -1 and np.isnan(special[2])
    xg = kg.tensor([-2.7, -0.3, 0.1, 1.9, 3.2], dtype=kg.float64, requires_grad=True, device=device)
    assert kg.autograd.gradcheck(Erf.apply, [xg])


def test_gelu_tail_is_relatively_accurate(device):
    x = np.array([-12.0, -8.0, -5.0])  # x Phi(x) is tiny: computed from erfc, not 1 + erf
    want = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(F.gelu(kg.tensor(x, device=device)).cpu().numpy(), want, rtol=1e-12)


def test_prelu_per_channel(device, rng):
    xn = _away_from_kinks(rng, (2, 3, 4))
    x = kg.tensor(xn, requires_grad=True, device=device)
    w = kg.tensor([0.1, 0.2, 0.3], dtype=kg.float64, requires_grad=True, device=device)
    ref = np.where(xn > 0, xn, np.array([0.1, 0.2, 0.3])[None, :, None] * xn)
    np.testing.assert_allclose(F.prelu(x, w).detach().cpu().numpy(), ref)
    assert kg.autograd.gradcheck(F.prelu, [x, w])
    m = nn.PReLU(3, device=device)
    assert m.weight.shape == (3,) and m.weight.tolist() == [0.25] * 3 and m.weight.device == device
    assert nn.PReLU(init=0.1, device=device).weight.tolist() == [pytest.approx(0.1)]
    m(kg.randn(2, 3, 4, device=device)).sum().backward()
    assert m.weight.grad.shape == (3,) and m.weight.grad.device == device
    with pytest.raises(ValueError):
        F.prelu(kg.randn(2, 4, device=device), kg.ones(3, device=device))


def test_activation_modules_match_functional(device, rng):
    x = kg.tensor(rng.standard_normal((4, 3)).astype(np.float32), device=device)
    pairs = [
        (nn.ReLU(), F.relu(x)), (nn.ReLU6(), F.relu6(x)), (nn.LeakyReLU(0.3), F.leaky_relu(x, 0.3)),
        (nn.ELU(0.5), F.elu(x, 0.5)), (nn.GELU(), F.gelu(x)), (nn.GELU("tanh"), F.gelu(x, "tanh")),
        (nn.SiLU(), F.silu(x)), (nn.Mish(), F.mish(x)), (nn.Softplus(2, 5), F.softplus(x, 2, 5)),
        (nn.Sigmoid(), F.sigmoid(x)), (nn.Tanh(), F.tanh(x)), (nn.Hardtanh(-2, 2), F.hardtanh(x, -2, 2)),
        (nn.Softsign(), F.softsign(x)), (nn.PReLU().to(device), F.prelu(x, kg.tensor([0.25], device=device))),
    ]
    for m, want in pairs:
        got = m(x)
        assert got.device == device, repr(m)
        np.testing.assert_allclose(got.detach().cpu().numpy(), want.cpu().numpy(), rtol=1e-6, err_msg=repr(m))
    with pytest.raises(ValueError):
        nn.GELU("fast")
    with pytest.raises(ValueError):
        F.gelu(x, approximate="fast")


def test_inplace_activations(device):
    x = kg.tensor([-1.0, 2.0], device=device)
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.tolist() == [0.0, 2.0]
    x = kg.tensor([-1.0, 2.0], device=device)
    F.leaky_relu(x, 0.5, inplace=True)
    assert x.tolist() == [-0.5, 2.0]


def test_activations_reject_integer_and_non_tensor_input(device):
    for fn in (F.gelu, F.elu, F.silu, F.softplus, F.softsign, F.leaky_relu, F.hardtanh, F.mish):
        with pytest.raises(TypeError):
            fn(kg.tensor([1, 2], device=device))
        with pytest.raises(TypeError):
            fn([1.0, 2.0])


def test_activations_against_torch(device, rng):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    pairs = {
        "relu6": TF.relu6, "leaky_relu": lambda t: TF.leaky_relu(t, 0.1), "elu": lambda t: TF.elu(t, 1.5),
        "gelu": TF.gelu, "gelu_tanh": lambda t: TF.gelu(t, approximate="tanh"), "silu": TF.silu, "mish": TF.mish,
        "softplus": lambda t: TF.softplus(t, beta=2.0, threshold=3.0), "hardtanh": lambda t: TF.hardtanh(t, -0.5, 2.0),
        "softsign": TF.softsign, "prelu": lambda t: TF.prelu(t, torch.tensor([0.25], dtype=t.dtype)),
    }
    x = np.concatenate([rng.standard_normal(50) * 5, [0.0, 6.0, -0.5, 2.0, 30.0, -30.0]])
    for name, tfn in pairs.items():
        xk = kg.tensor(x, requires_grad=True, device=device)
        xt = torch.tensor(x, requires_grad=True)
        yk, yt = ACTIVATIONS[name][0](xk), tfn(xt)
        np.testing.assert_allclose(yk.detach().cpu().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)
        yk.sum().backward()
        yt.sum().backward()
        np.testing.assert_allclose(xk.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)


# --- Linear, Identity, Flatten
def test_linear_forward_backward(device, rng):
    m = nn.Linear(5, 3).to(device)
    assert m.weight.shape == (3, 5) and m.bias.shape == (3,)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    out = m(kg.tensor(x, device=device))
    w, b = m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()
    np.testing.assert_allclose(out.detach().cpu().numpy(), x @ w.T + b, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(m.weight.grad.cpu().numpy(), np.ones((4, 3)).T @ x, rtol=1e-5)
    np.testing.assert_allclose(m.bias.grad.cpu().numpy(), [4.0] * 3)
    assert m(kg.randn(2, 7, 5, device=device)).shape == (2, 7, 3)
    assert m(kg.randn(5, device=device)).shape == (3,)


def test_linear_no_bias_dtype_and_errors(device):
    m = nn.Linear(3, 2, bias=False, dtype=kg.float64, device=device)
    assert m.bias is None and len(list(m.parameters())) == 1 and m.weight.dtype == kg.float64
    assert m.weight.device == device
    with pytest.raises(ValueError):
        m(kg.randn(4, 4, dtype=kg.float64, device=device))
    with pytest.raises(TypeError):
        m(kg.randn(4, 3, device=device))  # float32 input, float64 weight


def test_linear_default_init_bounds(device):
    m = nn.Linear(400, 300, device=device)  # initialised on the device, from its random stream
    assert m.weight.device == device and m.bias.device == device
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) on fan_in = 400 gives the same bound
    w = m.weight.detach().cpu().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    b = m.bias.detach().cpu().numpy()
    assert np.abs(b).max() <= bound


def test_linear_gradcheck(device):
    m = nn.Linear(3, 2, dtype=kg.float64, device=device)
    x = kg.randn(2, 3, dtype=kg.float64, requires_grad=True, device=device)
    assert kg.autograd.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, m.weight, m.bias])


def test_identity_flatten_unflatten(device):
    x = kg.randn(2, 3, 4, 5, device=device)
    assert nn.Identity(54, unused=1)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 1))(kg.randn(2, 3, device=device)).shape == (2, 3, 1)
    assert nn.Unflatten(-1, (5, -1))(x).shape == (2, 3, 4, 5, 1)
    y = nn.Unflatten(1, (2, 30))(nn.Flatten()(x))
    assert y.shape == (2, 2, 30)
    np.testing.assert_array_equal(y.reshape(2, 3, 4, 5).cpu().numpy(), x.cpu().numpy())
    with pytest.raises(TypeError):
        nn.Unflatten(1, 6)


# --- Dropout
def test_dropout_statistics_and_scaling(device):
    x = kg.ones(200, 500, device=device)
    y = F.dropout(x, p=0.3)
    assert y.device == device
    v = y.cpu().numpy()
    np.testing.assert_allclose(np.unique(v), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((v == 0).mean() - 0.3) < 0.01
    assert abs(v.mean() - 1.0) < 0.02


def test_dropout_gradient_uses_the_same_mask(device):
    x = kg.ones(50, 50, requires_grad=True, device=device)
    y = F.dropout(x, p=0.5)
    y.sum().backward()
    assert 0 < (y.detach().cpu().numpy() == 0).mean() < 1
    np.testing.assert_array_equal(x.grad.cpu().numpy(), y.detach().cpu().numpy())


def test_dropout_edge_cases(device):
    x = kg.randn(10, 10, device=device)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert np.all(F.dropout(x, 1.0).cpu().numpy() == 0)
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError):
            F.dropout(x, p)
        with pytest.raises(ValueError):
            nn.Dropout(p)
    y = F.dropout(x, 0.5)
    assert y.device == device and y.shape == x.shape


def test_dropout_reproducible_with_seed(device):
    kg.manual_seed(3)
    a = F.dropout(kg.ones(100, device=device), 0.5).cpu().numpy()
    c = F.dropout(kg.ones(100, device=device), 0.5).cpu().numpy()
    kg.manual_seed(3)
    b = F.dropout(kg.ones(100, device=device), 0.5).cpu().numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)  # the stream advances between calls


def test_dropout_module_train_eval(device):
    m = nn.Sequential(nn.Dropout(0.5)).to(device)
    x = kg.ones(1000, device=device)
    assert (m(x).cpu().numpy() == 0).any()
    m.eval()
    assert m(x) is x
    m.train()
    assert (m(x).cpu().numpy() == 0).any()


# --- Embedding
def test_embedding_lookup_and_gradient(device):
    emb = nn.Embedding(10, 3).to(device)
    idx = kg.tensor([[1, 2, 1], [9, 0, 1]], device=device)
    out = emb(idx)
    assert out.shape == (2, 3, 3)
    w = emb.weight.detach().cpu().numpy()
    np.testing.assert_array_equal(out.detach().cpu().numpy(), w[idx.cpu().numpy()])
    out.sum().backward()
    counts = np.bincount(idx.cpu().numpy().ravel(), minlength=10)
    np.testing.assert_array_equal(emb.weight.grad.cpu().numpy(), np.repeat(counts[:, None], 3, 1))


def test_embedding_padding_idx(device):
    emb = nn.Embedding(5, 4, padding_idx=2, device=device)
    assert emb.weight.device == device and emb.weight[2].tolist() == [0.0] * 4
    idx = kg.tensor([2, 1, 2, 3], device=device)
    with kg.no_grad():
        emb.weight[2] = 1.5  # the forward still reads the padding row ...
    out = emb(idx)
    assert out[0].tolist() == [1.5] * 4
    (out * kg.arange(4, device=device).reshape(4, 1).float()).sum().backward()
    g = emb.weight.grad.cpu().numpy()
    assert np.all(g[2] == 0)  # ... but it gets no gradient
    assert g[1].tolist() == [1.0] * 4 and g[3].tolist() == [3.0] * 4
    assert nn.Embedding(5, 4, padding_idx=-1).padding_idx == 4


def test_embedding_init_statistics(device):
    w = nn.Embedding(1000, 100, device=device).weight.detach().cpu().numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01


def test_embedding_errors(device):
    emb = nn.Embedding(5, 2, device=device)
    with pytest.raises(TypeError):
        emb(kg.tensor([1.0, 2.0], device=device))
    with pytest.raises(RuntimeError):
        emb(kg.tensor([True, False], device=device))
    with pytest.raises(IndexError):
        emb(kg.tensor([5], device=device))
    with pytest.raises(IndexError):
        emb(kg.tensor([-1], device=device))
    with pytest.raises(ValueError):
        nn.Embedding(5, 2, padding_idx=5)
    assert emb(kg.tensor([], dtype=kg.int64, device=device)).shape == (0, 2)


def test_embedding_from_pretrained(device):
    table = kg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    emb = nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad and emb.weight.device == device
    assert emb(kg.tensor([1, 0], device=device)).tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_embedding_gradcheck(device):
    w = kg.randn(6, 3, dtype=kg.float64, requires_grad=True, device=device)
    idx = kg.tensor([[0, 5], [5, 2]], device=device)
    assert kg.autograd.gradcheck(lambda w: F.embedding(idx, w), [w])


def test_linear_and_embedding_against_torch(device, rng):
    torch = pytest.importorskip("torch")
    tl = torch.nn.Linear(6, 4)
    kl = nn.Linear(6, 4, device=device)
    kl.load_state_dict({k: kg.tensor(v.detach().numpy()) for k, v in tl.state_dict().items()})  # CPU into device
    assert kl.weight.device == device
    x = rng.standard_normal((3, 6)).astype(np.float32)
    xk, xt = kg.tensor(x, requires_grad=True, device=device), torch.tensor(x, requires_grad=True)
    yk, yt = kl(xk), tl(xt)
    np.testing.assert_allclose(yk.detach().cpu().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    (yk * yk).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(kl.weight.grad.cpu().numpy(), tl.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xk.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)

    te = torch.nn.Embedding(7, 3, padding_idx=1)
    ke = nn.Embedding(7, 3, padding_idx=1, device=device)
    ke.load_state_dict({"weight": kg.tensor(te.weight.detach().numpy())})
    idx = rng.integers(0, 7, size=(4, 5))
    yk, yt = ke(kg.tensor(idx, device=device)), te(torch.tensor(idx))
    np.testing.assert_array_equal(yk.detach().cpu().numpy(), yt.detach().numpy())
    (yk ** 2).sum().backward()
    (yt ** 2).sum().backward()
    np.testing.assert_allclose(ke.weight.grad.cpu().numpy(), te.weight.grad.numpy(), rtol=1e-6)


# --- devices: what PyTorch defines for modules and tensors on different devices
def _other(device):
    return "cpu" if kg.device(device).type == "cuda" else "cuda"


@pytest.mark.skipif(not kg.cuda.is_available(), reason="needs a second device (CUDA or its emulator)")
def test_module_and_input_on_different_devices_raise_naming_both(device):
    other = _other(device)
    lin = nn.Linear(3, 2).to(device)
    with pytest.raises(RuntimeError, match=rf"(?=.*\b{other}\b)(?=.*\b{device}\b)"):
        lin(kg.randn(4, 3, device=other))
    emb = nn.Embedding(5, 2).to(device)
    with pytest.raises(RuntimeError, match=rf"(?=.*\b{other}\b)(?=.*\b{device}\b)"):
        emb(kg.tensor([1, 2], device=other))
    with pytest.raises(RuntimeError, match=rf"(?=.*\b{other}\b)(?=.*\b{device}\b)"):
        F.prelu(kg.randn(2, 3, device=other), nn.PReLU(3).to(device).weight)
    x = kg.randn(4, 3, device=device)
    assert lin(x).device == device and emb(kg.tensor([1, 2], device=device)).device == device
