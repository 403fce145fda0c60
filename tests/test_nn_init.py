"""kg.nn.init (statistics, bounds, fans, gains) and kg.nn.utils (clipping, vector conversion)."""
import math

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.nn import init


def npy(t):
    return t.detach().cpu().numpy()


# --- init
def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", True)


def test_fan_in_and_fan_out():
    assert init._calculate_fan_in_and_fan_out(kg.empty(30, 20)) == (20, 30)
    assert init._calculate_fan_in_and_fan_out(kg.empty(8, 4, 3, 5)) == (4 * 15, 8 * 15)
    with pytest.raises(ValueError):
        init._calculate_fan_in_and_fan_out(kg.empty(5))
    with pytest.raises(ValueError):
        init.kaiming_uniform_(kg.empty(3, 3), mode="fan_avg")


def test_uniform_and_normal_statistics(device):
    t = kg.empty(200, 500, device=device)
    assert init.uniform_(t, -2.0, 3.0) is t
    v = t.cpu().numpy()
    assert v.min() >= -2.0 and v.max() < 3.0
    assert abs(v.mean() - 0.5) < 0.02 and abs(v.std() - 5 / math.sqrt(12)) < 0.02
    init.normal_(t, mean=1.0, std=0.5)
    v = t.cpu().numpy()
    assert abs(v.mean() - 1.0) < 0.01 and abs(v.std() - 0.5) < 0.01
    assert t.device == device and t.dtype == kg.float32


def test_constant_zeros_ones_eye(device):
    t = kg.empty(3, 4, dtype=kg.float64, device=device)
    assert init.constant_(t, 2.5).tolist() == [[2.5] * 4] * 3
    assert npy(init.zeros_(t)).sum() == 0
    assert npy(init.ones_(t)).sum() == 12 and t.dtype == kg.float64
    assert init.eye_(t) is t and t.device == device
    np.testing.assert_array_equal(npy(t), np.eye(3, 4))


@pytest.mark.parametrize("shape", [(300, 400), (64, 32, 3, 3)])
def test_xavier_and_kaiming_statistics(shape, device):
    t = kg.empty(*shape, device=device)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(t)
    cases = [
        (lambda: init.xavier_uniform_(t, gain=2.0), 2.0 * math.sqrt(2 / (fan_in + fan_out)), True),
        (lambda: init.xavier_normal_(t), math.sqrt(2 / (fan_in + fan_out)), False),
        (lambda: init.kaiming_uniform_(t, a=0.1), math.sqrt(2 / (1 + 0.01)) / math.sqrt(fan_in), True),
        (lambda: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / fan_out), False),
    ]
    for fill, std, uniform in cases:
        v = npy(fill())
        assert t.device == device
        assert abs(v.mean()) < 5 * std / math.sqrt(v.size)  # 5 standard errors of the mean
        assert abs(v.std() - std) < 0.02 * std
        if uniform:
            assert np.abs(v).max() <= math.sqrt(3) * std * (1 + 1e-6)


def test_init_on_parameters_keeps_graph_clean(device):
    p = nn.Parameter(kg.empty(5, 5, device=device))
    init.kaiming_normal_(p)
    assert p.is_leaf and p.requires_grad and p.grad_fn is None and p.device == device
    init.zeros_(p)
    assert p.is_leaf and npy(p).sum() == 0


def test_init_draws_from_the_default_generator(device):
    kg.manual_seed(7)
    a = npy(init.normal_(kg.empty(10, device=device))).copy()
    kg.manual_seed(7)
    b = npy(init.normal_(kg.empty(10, device=device))).copy()
    np.testing.assert_array_equal(a, b)
    g = kg.Generator(device=device).manual_seed(1)
    c = npy(init.uniform_(kg.empty(10, device=device), generator=g)).copy()
    g.manual_seed(1)
    np.testing.assert_array_equal(npy(init.uniform_(kg.empty(10, device=device), generator=g)), c)
    kg.manual_seed(7)
    m1 = nn.Linear(4, 4)
    kg.manual_seed(7)
    m2 = nn.Linear(4, 4)
    np.testing.assert_array_equal(m1.weight.detach().numpy(), m2.weight.detach().numpy())


def test_zero_element_init_warns(device):
    with pytest.warns(UserWarning):
        init.uniform_(kg.empty(0, 3, device=device))
    with pytest.warns(UserWarning):
        init.kaiming_uniform_(kg.empty(0, 3, device=device))


# --- utils
def _model_with_grads(scale=1.0, device="cpu"):
    """A model on `device` whose parameters have gradients of size ~scale (set from NumPy: these
    tests are about clipping, not about the Linear layers' backward)."""
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)).to(device)
    rng = np.random.default_rng(3)
    for p in m.parameters():
        p.grad = kg.tensor(rng.standard_normal(p.shape) * scale, dtype=p.dtype, device=device)
    return m


def test_clip_grad_norm(device):
    m = _model_with_grads(10.0, device)
    grads = [npy(p.grad).copy() for p in m.parameters()]
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    out = nn.utils.clip_grad_norm_(m.parameters(), max_norm=1.0)
    assert isinstance(out, kg.Tensor) and out.ndim == 0 and out.device == device
    np.testing.assert_allclose(out.item(), total, rtol=1e-5)
    new = np.sqrt(sum((npy(p.grad) ** 2).sum() for p in m.parameters()))
    np.testing.assert_allclose(new, 1.0, rtol=1e-4)
    for g, p in zip(grads, m.parameters()):
        np.testing.assert_allclose(npy(p.grad), g / (total + 1e-6), rtol=1e-5)
        assert p.grad.device == device
    # a norm below max_norm leaves the gradients as they are
    before = [npy(p.grad).copy() for p in m.parameters()]
    nn.utils.clip_grad_norm_(m.parameters(), max_norm=100.0)
    for g, p in zip(before, m.parameters()):
        np.testing.assert_allclose(npy(p.grad), g, rtol=1e-6)


def test_clip_grad_norm_inf_and_p1(device):
    m = _model_with_grads(3.0, device)
    grads = [npy(p.grad).copy() for p in m.parameters()]
    biggest = max(np.abs(g).max() for g in grads)
    out = nn.utils.clip_grad_norm_(m.parameters(), 0.5, norm_type=float("inf"))
    np.testing.assert_allclose(out.item(), biggest, rtol=1e-6)
    assert max(np.abs(npy(p.grad)).max() for p in m.parameters()) == pytest.approx(0.5, rel=1e-4)
    m = _model_with_grads(device=device)
    l1 = sum(np.abs(npy(p.grad)).sum() for p in m.parameters())
    np.testing.assert_allclose(nn.utils.clip_grad_norm_(m.parameters(), 1e9, norm_type=1).item(), l1, rtol=1e-5)


def test_clip_grad_norm_edge_cases(device):
    p = nn.Parameter(kg.ones(3, device=device))
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients
    p.grad = kg.tensor([3.0, 4.0, 0.0], device=device)
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)  # a single tensor works
    p.grad = kg.tensor([float("nan"), 1.0, 0.0], device=device)
    with pytest.raises(RuntimeError):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value(device):
    p = nn.Parameter(kg.zeros(4, device=device))
    p.grad = kg.tensor([-3.0, -0.5, 0.2, 9.0], device=device)
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, -0.5, pytest.approx(0.2), 1.0]


def test_parameters_to_vector_and_back(device):
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)).to(device)
    vec = nn.utils.parameters_to_vector(m.parameters())
    assert vec.shape == (3 * 2 + 2 + 2 + 1,) and vec.device == device
    np.testing.assert_array_equal(npy(vec)[:6], npy(m[0].weight).ravel())
    new = kg.arange(11, dtype=kg.float32, device=device)
    nn.utils.vector_to_parameters(new, m.parameters())
    assert m[0].weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and m[1].bias.tolist() == [10.0]
    assert isinstance(m[0].weight, nn.Parameter) and m[0].weight.device == device
    with pytest.raises(TypeError):
        nn.utils.vector_to_parameters([1.0], m.parameters())
    with pytest.raises(ValueError):
        nn.utils.vector_to_parameters(kg.zeros(3, device=device), m.parameters())
    # differentiable: the vector's gradient reaches the parameters
    nn.utils.parameters_to_vector(m.parameters()).sum().backward()
    assert m[0].weight.grad.tolist() == [[1.0] * 3] * 2


def test_clip_grad_norm_against_torch(rng, device):
    torch = pytest.importorskip("torch")
    grads = [rng.standard_normal(s) for s in ((3, 4), (4,), (2, 2))]
    for norm_type in (2.0, 1.0, 3.0, float("inf")):
        kp = [nn.Parameter(kg.zeros(*g.shape, dtype=kg.float64, device=device)) for g in grads]
        tp = [torch.nn.Parameter(torch.zeros(*g.shape, dtype=torch.float64)) for g in grads]
        for p, q, g in zip(kp, tp, grads):
            p.grad = kg.tensor(g, device=device)
            q.grad = torch.tensor(g)
        a = nn.utils.clip_grad_norm_(kp, 0.7, norm_type)
        b = torch.nn.utils.clip_grad_norm_(tp, 0.7, norm_type)
        np.testing.assert_allclose(a.item(), b.item(), rtol=1e-12)
        for p, q in zip(kp, tp):
            np.testing.assert_allclose(npy(p.grad), q.grad.numpy(), rtol=1e-12)
