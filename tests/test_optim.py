"""kg.optim: every optimizer, step by step, against the update rules written out in NumPy (an
independent implementation below), and against torch.optim when torch is installed.

Float64 throughout, so the only differences are rounding order: rtol 1e-12 against NumPy, 1e-9
against torch (its kernels fuse some ops, e.g. addcdiv and lerp)."""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.optim as optim
from kernelgrad.tensor import Tensor

STEPS = 5


# --- the update rules, in NumPy (one parameter; returns the parameter after every step)
def ref_sgd(p, grad_fn, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    p, buf, out = p.copy(), None, []
    for t in range(STEPS):
        g = grad_fn(p, t)
        g = -g if maximize else g
        g = g + weight_decay * p
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p)
    return out


def ref_adagrad(p, grad_fn, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    p, out = p.copy(), []
    s = np.full_like(p, initial_accumulator_value)
    for t in range(STEPS):
        g = grad_fn(p, t)
        g = -g if maximize else g
        g = g + weight_decay * p
        clr = lr / (1 + t * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
        out.append(p)
    return out


def ref_rmsprop(p, grad_fn, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                maximize=False):
    p, out = p.copy(), []
    v, m, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t in range(STEPS):
        g = grad_fn(p, t)
        g = -g if maximize else g
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            m = alpha * m + (1 - alpha) * g
            avg = np.sqrt(v - m * m) + eps
        else:
            avg = np.sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / avg
            p = p - lr * b
        else:
            p = p - lr * g / avg
        out.append(p)
    return out


def ref_adam(p, grad_fn, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
             decoupled=False):
    p, out = p.copy(), []
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    b1, b2 = betas
    for t in range(1, STEPS + 1):
        g = grad_fn(p, t - 1)
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        vhat = (vmax if amsgrad else v) / (1 - b2 ** t)
        mhat = m / (1 - b1 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
        out.append(p)
    return out


def ref_adamw(p, grad_fn, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
    return ref_adam(p, grad_fn, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True)


REFS = {"SGD": ref_sgd, "Adagrad": ref_adagrad, "RMSprop": ref_rmsprop, "Adam": ref_adam, "AdamW": ref_adamw}

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.3, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-6)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.7, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.7, centered=True, eps=1e-4)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, betas=(0.3, 0.9), amsgrad=True, weight_decay=0.2, maximize=True)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
]
CONFIG_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CONFIGS]

P0 = np.random.default_rng(1).standard_normal((3, 4))
GRADS = [np.random.default_rng(10 + t).standard_normal((3, 4)) for t in range(STEPS)]
# some gradient entries exactly zero (Adam/RMSprop denominators then hinge on eps)
GRADS[2][0, :] = 0.0
TARGET = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
CURV = np.linspace(0.5, 2.0, 12).reshape(3, 4)


def _host(t):
    return t.detach().cpu().numpy()


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_numpy_on_fixed_gradients(name, kwargs, device):
    p = kg.tensor(P0, dtype=kg.float64, device=device, requires_grad=True)
    opt = getattr(optim, name)([p], **kwargs)
    expected = REFS[name](P0, lambda _p, t: GRADS[t], **kwargs)
    for t in range(STEPS):
        p.grad = kg.tensor(GRADS[t], dtype=kg.float64, device=device)
        opt.step()
        np.testing.assert_allclose(_host(p), expected[t], rtol=1e-12, atol=1e-14, err_msg=f"step {t + 1}")
    assert p.is_leaf and p.requires_grad and p.device == device
    for value in opt.state[p].values():
        if isinstance(value, Tensor):
            assert value.device == device and value.dtype == kg.float64 and value.shape == p.shape


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_numpy_on_quadratic_with_backward(name, kwargs, device):
    """Gradients from autograd on f(p) = sum(c * (p - target)^2), zero_grad between steps."""
    p = kg.tensor(P0, dtype=kg.float64, requires_grad=True, device=device)
    c, target = kg.tensor(CURV, dtype=kg.float64, device=device), kg.tensor(TARGET, dtype=kg.float64, device=device)
    opt = getattr(optim, name)([p], **kwargs)
    expected = REFS[name](P0, lambda q, t: 2 * CURV * (q - TARGET), **kwargs)
    for t in range(STEPS):
        opt.zero_grad()
        (c * (p - target) ** 2).sum().backward()
        opt.step()
        np.testing.assert_allclose(_host(p), expected[t], rtol=1e-12, atol=1e-14, err_msg=f"step {t + 1}")


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_matches_torch(name, kwargs, device):
    torch = pytest.importorskip("torch")
    p = kg.tensor(P0, dtype=kg.float64, requires_grad=True, device=device)
    tp = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = getattr(optim, name)([p], **kwargs)
    topt = getattr(torch.optim, name)([tp], **kwargs)
    for t in range(STEPS):
        p.grad = kg.tensor(GRADS[t], dtype=kg.float64, device=device)
        tp.grad = torch.tensor(GRADS[t], dtype=torch.float64)
        opt.step()
        topt.step()
        np.testing.assert_allclose(_host(p), tp.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"step {t + 1}")
    # the same state entries as PyTorch (step is a tensor there, an int here)
    assert set(opt.state[p]) == set(topt.state[tp])
    for key, value in opt.state[p].items():
        if key == "step":
            assert value == int(topt.state[tp]["step"])
        else:
            np.testing.assert_allclose(_host(value), topt.state[tp][key].numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_float32_parameters_stay_float32_and_match_torch(name, device):
    torch = pytest.importorskip("torch")
    kwargs = dict(lr=0.05, weight_decay=0.01)
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = 0.9
    p = kg.tensor(P0.astype(np.float32), requires_grad=True, device=device)
    tp = torch.tensor(P0.astype(np.float32), requires_grad=True)
    opt, topt = getattr(optim, name)([p], **kwargs), getattr(torch.optim, name)([tp], **kwargs)
    for t in range(STEPS):
        p.grad = kg.tensor(GRADS[t].astype(np.float32), device=device)
        tp.grad = torch.tensor(GRADS[t].astype(np.float32))
        opt.step()
        topt.step()
    assert p.dtype == kg.float32
    assert all(v.dtype == kg.float32 for v in opt.state[p].values() if isinstance(v, Tensor))
    np.testing.assert_allclose(_host(p), tp.detach().numpy(), rtol=1e-5, atol=1e-6)  # float32 rounding


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_param_groups_with_different_lrs(name, device):
    a = kg.tensor(P0, dtype=kg.float64, requires_grad=True, device=device)
    b = kg.tensor(P0[::-1].copy(), dtype=kg.float64, requires_grad=True, device=device)
    extra = dict(momentum=0.9) if name in ("SGD", "RMSprop") else {}
    opt = getattr(optim, name)([{"params": [a], "lr": 0.1}, {"params": b}], lr=0.01, **extra)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    assert all(set(opt.defaults) <= set(g) for g in opt.param_groups)
    exp_a = REFS[name](P0, lambda _p, t: GRADS[t], lr=0.1, **extra)
    exp_b = REFS[name](P0[::-1].copy(), lambda _p, t: GRADS[t] * 2, lr=0.01, **extra)
    for t in range(STEPS):
        a.grad = kg.tensor(GRADS[t], dtype=kg.float64, device=device)
        b.grad = kg.tensor(GRADS[t] * 2, dtype=kg.float64, device=device)
        opt.step()
        np.testing.assert_allclose(_host(a), exp_a[t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(_host(b), exp_b[t], rtol=1e-12, atol=1e-14)


def test_param_groups_match_torch_with_lr_changed_between_steps(device):
    torch = pytest.importorskip("torch")
    a = kg.tensor(P0, dtype=kg.float64, device=device, requires_grad=True)
    b = kg.tensor(P0 * 2, dtype=kg.float64, device=device, requires_grad=True)
    ta, tb = torch.tensor(P0, requires_grad=True), torch.tensor(P0 * 2, requires_grad=True)
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.2, "betas": (0.5, 0.9)}], lr=0.05)
    topt = torch.optim.Adam([{"params": [ta]}, {"params": [tb], "lr": 0.2, "betas": (0.5, 0.9)}], lr=0.05)
    for t in range(STEPS):
        for x, tx, s in ((a, ta, 1.0), (b, tb, -3.0)):
            x.grad = kg.tensor(GRADS[t] * s, dtype=kg.float64, device=device)
            tx.grad = torch.tensor(GRADS[t] * s)
        opt.step()
        topt.step()
        opt.param_groups[0]["lr"] *= 0.5
        topt.param_groups[0]["lr"] *= 0.5
    np.testing.assert_allclose(_host(a), ta.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(_host(b), tb.detach().numpy(), rtol=1e-9)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_step_uses_only_tensor_ops_on_the_device(name, monkeypatch, device):
    """No host round trip in step(): reading a tensor's values on the host fails the test."""
    p = kg.tensor(P0, dtype=kg.float64, requires_grad=True, device=device)
    kwargs = {"amsgrad": True} if name.startswith("Adam") else {"momentum": 0.9} if name != "Adagrad" else {}
    if name == "RMSprop":
        kwargs["centered"] = True
    opt = getattr(optim, name)([p], lr=0.1, weight_decay=0.1, **kwargs)
    p.grad = kg.tensor(GRADS[0], dtype=kg.float64, device=device)

    def no_host(*args, **kwargs):
        raise AssertionError("step() read tensor values on the host")

    for attr in ("numpy", "item", "tolist", "__array__", "_host", "__float__", "__bool__"):
        monkeypatch.setattr(Tensor, attr, no_host)
    opt.step()
    opt.step()
    monkeypatch.undo()
    assert opt.state[p]["step"] == 2 if name != "SGD" else "momentum_buffer" in opt.state[p]


def test_parameters_without_grad_are_skipped(device):
    a = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    b = kg.tensor([3.0, 4.0], requires_grad=True, device=device)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = kg.tensor([1.0, 1.0], device=device)
    opt.step()
    assert b.tolist() == [3.0, 4.0] and b not in opt.state
    assert a.tolist() != [1.0, 2.0]
    assert list(opt.state_dict()["state"]) == [0]


def test_zero_grad(device):
    p = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    opt.zero_grad()  # no gradient at all: nothing to do


def test_step_with_closure_runs_with_grad_enabled(device):
    p = kg.tensor([1.0, -2.0], dtype=kg.float64, requires_grad=True, device=device)
    opt = optim.SGD([p], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    with kg.no_grad():
        loss = opt.step(closure)
    assert calls == [5.0] and loss.item() == 5.0
    assert p.tolist() == [0.5, -1.0]  # p - 0.25 * 2p
    assert opt.step() is None


def test_sgd_momentum_buffer_starts_at_first_gradient(device):
    p = kg.tensor([0.0], dtype=kg.float64, requires_grad=True, device=device)
    opt = optim.SGD([p], lr=1.0, momentum=0.9, dampening=0.5)
    p.grad = kg.tensor([1.0], dtype=kg.float64, device=device)
    opt.step()
    assert opt.state[p]["momentum_buffer"].tolist() == [1.0]  # no dampening on the first step
    opt.step()
    assert opt.state[p]["momentum_buffer"].tolist() == [0.9 + 0.5]
    assert p.tolist() == [-1.0 - 1.4]


def test_sgd_without_momentum_keeps_no_state_and_adagrad_state_exists_before_step(device):
    p = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    sgd = optim.SGD([p], lr=0.1)
    p.grad = kg.ones(2, device=device)
    sgd.step()
    assert sgd.state_dict()["state"] == {}
    ada = optim.Adagrad([p], initial_accumulator_value=0.25)
    sd = ada.state_dict()
    assert sd["state"][0]["step"] == 0 and sd["state"][0]["sum"].tolist() == [0.25, 0.25]


def test_grad_of_a_graph_tensor_does_not_leak_into_state(device):
    """With create_graph=True the gradient requires grad; the update must still not build a graph."""
    p = kg.tensor([1.0, 2.0], dtype=kg.float64, requires_grad=True, device=device)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    (p ** 3).sum().backward(create_graph=True)
    assert p.grad.requires_grad
    opt.step()
    assert p.is_leaf and p.grad_fn is None
    assert not opt.state[p]["momentum_buffer"].requires_grad


# --- construction errors
@pytest.mark.parametrize("cls,kwargs,match", [
    (optim.SGD, dict(lr=-1), "Invalid learning rate: -1"),
    (optim.SGD, dict(momentum=-0.5), "Invalid momentum value"),
    (optim.SGD, dict(weight_decay=-1e-3), "Invalid weight_decay value"),
    (optim.SGD, dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "Nesterov momentum requires"),
    (optim.Adagrad, dict(lr=-0.1), "Invalid learning rate"),
    (optim.Adagrad, dict(lr_decay=-1), "Invalid lr_decay value"),
    (optim.Adagrad, dict(eps=-1), "Invalid epsilon value"),
    (optim.Adagrad, dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value"),
    (optim.Adagrad, dict(weight_decay=-1), "Invalid weight_decay value"),
    (optim.RMSprop, dict(lr=-1), "Invalid learning rate"),
    (optim.RMSprop, dict(alpha=-0.1), "Invalid alpha value"),
    (optim.RMSprop, dict(eps=-1), "Invalid epsilon value"),
    (optim.RMSprop, dict(momentum=-1), "Invalid momentum value"),
    (optim.RMSprop, dict(weight_decay=-1), "Invalid weight_decay value"),
    (optim.Adam, dict(lr=-1e-3), "Invalid learning rate"),
    (optim.Adam, dict(eps=-1e-8), "Invalid epsilon value"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (optim.Adam, dict(betas=(0.9,)), "Invalid betas"),
    (optim.Adam, dict(weight_decay=-1), "Invalid weight_decay value"),
    (optim.AdamW, dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1"),
    (optim.AdamW, dict(lr=-1), "Invalid learning rate"),
])
def test_invalid_hyper_parameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([kg.zeros(2, requires_grad=True)], **kwargs)


def test_bad_params():
    p = kg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        optim.SGD([p, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    opt = optim.SGD(iter([p]), lr=0.1)  # any iterable, e.g. a generator of parameters
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": p})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([p])


def test_add_param_group_fills_defaults_and_does_not_mutate_the_given_dict():
    a, b = kg.zeros(2, requires_grad=True), kg.zeros(3, requires_grad=True)
    opt = optim.Adam([a], lr=0.01, betas=(0.8, 0.9))
    group = {"params": b, "lr": 0.5}
    opt.add_param_group(group)
    assert group == {"params": b, "lr": 0.5}
    g = opt.param_groups[1]
    assert g["params"] == [b] and g["lr"] == 0.5 and g["betas"] == (0.8, 0.9) and g["amsgrad"] is False


# --- state_dict
def _run(opt, params, steps, offset=0):
    for t in range(steps):
        for k, p in enumerate(params):
            p.grad = kg.tensor(GRADS[(t + offset) % STEPS][: p.shape[0]] * (k + 1), dtype=kg.float64, device=p.device)
        opt.step()


def _assert_state_dicts_equal(a, b):
    assert list(a["param_groups"]) == list(b["param_groups"])
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        assert a["state"][i].keys() == b["state"][i].keys()
        for k, v in a["state"][i].items():
            w = b["state"][i][k]
            if isinstance(v, Tensor):
                assert isinstance(w, Tensor) and v.dtype == w.dtype and v.shape == w.shape
                assert np.array_equal(_host(v), _host(w))
            else:
                assert type(v) is type(w) and v == w


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_continues_identically(name, kwargs, device):
    params = [kg.tensor(P0, dtype=kg.float64, requires_grad=True, device=device),
              kg.tensor(P0[:2], dtype=kg.float64, requires_grad=True, device=device)]
    opt = getattr(optim, name)([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.5}], **kwargs)
    _run(opt, params, 3)
    sd = opt.state_dict()
    # PyTorch's layout
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5
    clones = [kg.tensor(_host(p), dtype=kg.float64, requires_grad=True, device=device) for p in params]
    opt2 = getattr(optim, name)([{"params": [clones[0]]}, {"params": [clones[1]]}], lr=123.0)
    opt2.load_state_dict(sd)
    _assert_state_dicts_equal(opt2.state_dict(), sd)
    assert opt2.param_groups[1]["lr"] == 0.5 and opt2.param_groups[0]["params"][0] is clones[0]
    _run(opt, params, 3, offset=3)
    _run(opt2, clones, 3, offset=3)
    for p, q in zip(params, clones):
        assert np.array_equal(_host(p), _host(q))
    _assert_state_dicts_equal(opt.state_dict(), opt2.state_dict())


def test_load_state_dict_does_not_alias_the_given_state(device):
    p = kg.tensor([1.0, 2.0], dtype=kg.float64, requires_grad=True, device=device)
    opt = optim.Adam([p], lr=0.1)
    p.grad = kg.tensor([1.0, -1.0], dtype=kg.float64, device=device)
    opt.step()
    sd = opt.state_dict()
    before = _host(sd["state"][0]["exp_avg"]).copy()
    q = kg.tensor([1.0, 2.0], dtype=kg.float64, requires_grad=True, device=device)
    opt2 = optim.Adam([q], lr=0.1)
    opt2.load_state_dict(sd)
    q.grad = kg.tensor([5.0, 5.0], dtype=kg.float64, device=device)
    opt2.step()
    assert np.array_equal(_host(sd["state"][0]["exp_avg"]), before)
    assert opt.state_dict()["state"][0]["step"] == 1 and opt2.state_dict()["state"][0]["step"] == 2


def test_load_state_dict_casts_to_the_parameter_dtype_and_accepts_tensor_steps(device):
    p = kg.tensor([1.0, 2.0], dtype=kg.float64, device=device, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    # the saved state is float32 on the CPU: it moves to the parameter's dtype and device, as in PyTorch
    sd = {"state": {0: {"step": kg.tensor(3.0), "exp_avg": kg.tensor([0.5, 0.5]),
                        "exp_avg_sq": kg.tensor([1.0, 1.0])}},
          "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
    opt.load_state_dict(sd)
    st = opt.state[p]
    assert st["step"] == 3 and type(st["step"]) is int
    assert st["exp_avg"].dtype == kg.float64 and st["exp_avg"].device == p.device
    assert st["exp_avg_sq"].device == device
    p.grad = kg.tensor([1.0, 1.0], dtype=kg.float64, device=device)
    opt.step()  # the moved state works with the parameter
    assert st["step"] == 4
    np.testing.assert_allclose(_host(opt.state[p]["exp_avg"]), [0.55, 0.55], rtol=1e-15)  # 0.9 * 0.5 + 0.1 * 1


@pytest.mark.skipif(not kg.cuda.is_available(), reason="needs a second device (CUDA or its emulator)")
@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_moves_to_the_parameters_device(name, kwargs, device):
    """State saved from parameters on one device loads into an optimizer over parameters on the
    other: every state tensor lands on its parameter's device, and the two runs continue alike."""
    other = "cpu" if device == "cuda" else "cuda"
    params = [kg.tensor(P0, dtype=kg.float64, requires_grad=True, device=device)]
    opt = getattr(optim, name)(params, **kwargs)
    _run(opt, params, 2)
    sd = opt.state_dict()
    clones = [kg.tensor(_host(params[0]), dtype=kg.float64, requires_grad=True, device=other)]
    opt2 = getattr(optim, name)(clones, **kwargs)
    opt2.load_state_dict(sd)
    tensors = [v for v in opt2.state[clones[0]].values() if isinstance(v, Tensor)]
    assert all(v.device == other for v in tensors)
    assert all(v.device == device for v in opt.state[params[0]].values() if isinstance(v, Tensor))
    _run(opt, params, 3, offset=2)
    _run(opt2, clones, 3, offset=2)
    np.testing.assert_allclose(_host(clones[0]), _host(params[0]), rtol=1e-12, atol=1e-14)
    assert all(v.device == other for v in opt2.state[clones[0]].values() if isinstance(v, Tensor))


def test_load_state_dict_validates(device):
    a, b = kg.zeros(2, requires_grad=True, device=device), kg.zeros(3, requires_grad=True, device=device)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = kg.ones(2, device=device), kg.ones(3, device=device)
    opt.step()
    sd = opt.state_dict()
    two_groups = optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        two_groups.load_state_dict(sd)
    one_param = optim.SGD([a], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="doesn't match the size"):
        one_param.load_state_dict(sd)
    swapped = optim.SGD([b, a], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="momentum_buffer.*shape"):
        swapped.load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_repr_lists_groups():
    opt = optim.SGD([kg.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    r = repr(opt)
    assert r.startswith("SGD (") and "Parameter Group 0" in r and "momentum: 0.9" in r
