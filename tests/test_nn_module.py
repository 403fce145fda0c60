"""kg.nn.Module, Parameter and the containers: registration, traversal, state dicts, modes,
devices/dtypes, hooks and repr (PyTorch's format)."""
import collections
import copy

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn


def npy(t):
    return t.detach().cpu().numpy()


def data(*shape, device="cpu", dtype=kg.float32):
    """Fixed inputs built with NumPy (not kg.randn: these tests are about modules, not random numbers)."""
    values = np.random.default_rng(sum(shape)).standard_normal(shape)
    return kg.tensor(values, dtype=dtype, device=device)


class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(3, 2)
        self.register_buffer("steps", kg.zeros((), dtype=kg.int64))
        self.register_buffer("scratch", kg.zeros(2), persistent=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


# --- Parameter
def test_parameter_is_a_leaf_tensor_sharing_data(device):
    t = kg.tensor([1.0, 2.0], device=device)
    p = nn.Parameter(t)
    assert isinstance(p, kg.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    with kg.no_grad():
        t[0] = 5.0
    assert p.tolist() == [5.0, 2.0]  # shares memory with t
    assert p.device == device
    assert not nn.Parameter(kg.zeros(2, device=device), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)


def test_parameter_ops_return_plain_tensors_and_backprop(device):
    p = nn.Parameter(kg.tensor([1.0, -2.0], device=device))
    y = p * 3
    assert type(y) is kg.Tensor and y.device == device
    y.sum().backward()
    assert p.grad.tolist() == [3.0, 3.0] and p.grad.device == device


def test_parameter_repr(device):
    p = nn.Parameter(kg.tensor([1.0, 2.0], device=device))
    on = "" if device == "cpu" else f", device='{device}'"
    assert repr(p) == f"Parameter containing:\ntensor([1., 2.]{on}, requires_grad=True)"


def test_parameter_rejects_non_tensor_and_int_grad():
    with pytest.raises(TypeError):
        nn.Parameter([1.0, 2.0])
    with pytest.raises(RuntimeError):
        nn.Parameter(kg.tensor([1, 2]))
    assert not nn.Parameter(kg.tensor([1, 2]), requires_grad=False).requires_grad


def test_parameter_deepcopy(device):
    p = nn.Parameter(kg.tensor([1.0, 2.0], device=device))
    q = copy.deepcopy(p)
    assert isinstance(q, nn.Parameter) and q.requires_grad and q is not p and q.device == device
    with kg.no_grad():
        p[0] = 9.0
    assert q.tolist() == [1.0, 2.0]


# --- registration and traversal
def test_registration_and_names():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert len(list(m.parameters())) == 4
    assert [n for n, _ in m.named_buffers()] == ["steps", "scratch"]
    assert [n for n, _ in m.named_children()] == ["fc1", "act", "fc2"]
    assert [n for n, _ in m.named_modules()] == ["", "fc1", "act", "fc2"]
    assert list(m.children())[0] is m.fc1
    assert len(list(m.modules())) == 4
    assert [n for n, _ in m.named_parameters(prefix="model")][0] == "model.fc1.weight"
    assert list(m.named_parameters(recurse=False)) == []
    assert m.get_submodule("fc2") is m.fc2 and m.get_parameter("fc2.bias") is m.fc2.bias


def test_setattr_routes_by_type_and_getattr_finds_them():
    m = nn.Module()
    m.w = nn.Parameter(kg.ones(2))
    m.sub = nn.Linear(2, 2)
    m.plain = kg.ones(2)  # a plain tensor is an ordinary attribute, not a buffer
    assert "w" in m._parameters and "sub" in m._modules and "plain" not in m._buffers
    assert m.w is m._parameters["w"]
    m.w = None  # an existing parameter may be set to None
    assert m.w is None and list(m.parameters()) == list(m.sub.parameters())
    with pytest.raises(TypeError):
        m.w = kg.ones(2)  # a registered parameter only accepts a Parameter or None
    m.register_buffer("buf", kg.zeros(3))
    m.buf = kg.ones(3)
    assert m._buffers["buf"].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(TypeError):
        m.buf = 3
    with pytest.raises(AttributeError):
        m.missing
    del m.sub
    assert "sub" not in m._modules
    del m.buf
    assert "buf" not in m._buffers


def test_register_errors():
    m = nn.Module()
    with pytest.raises(KeyError):
        m.register_buffer("a.b", kg.zeros(1))
    with pytest.raises(TypeError):
        m.register_buffer("b", [1.0])
    with pytest.raises(TypeError):
        m.register_parameter("p", kg.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("p", nn.Parameter(kg.zeros(1)) * 2)  # an op on a Parameter is a plain Tensor
    with pytest.raises(TypeError):
        m.add_module("x", 3)
    m.x = 1
    with pytest.raises(KeyError):
        m.register_buffer("x", kg.zeros(1))

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(kg.zeros(1))

    with pytest.raises(AttributeError):
        NoInit()


def test_register_nonleaf_parameter_raises():
    m = nn.Module()
    p = nn.Parameter(kg.zeros(1))
    p.grad_fn = (p * 2).grad_fn  # simulate a Parameter that is not a leaf
    with pytest.raises(ValueError):
        m.register_parameter("p", p)


def test_missing_forward_raises():
    with pytest.raises(NotImplementedError):
        nn.Module()(kg.zeros(1))


def test_shared_parameters_come_once(device):
    a = nn.Linear(3, 3)
    b = nn.Linear(3, 3)
    b.weight = a.weight
    seq = nn.Sequential(a, b, a).to(device)
    assert b.weight is a.weight and a.weight.device == device  # moving keeps the sharing
    assert len(list(seq.parameters())) == 3
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert len(list(seq.modules())) == 3  # the Sequential, a, b
    assert len(list(seq.named_parameters(remove_duplicate=False))) == 6
    # the shared weight gets the gradients of every use
    x = data(2, 3, device=device)
    seq(x).sum().backward()
    assert a.weight.grad is b.weight.grad or a.weight.grad.shape == (3, 3)
    assert a.weight.grad.device == device


def test_train_eval_and_apply():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.ReLU()))
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    with pytest.raises(ValueError):
        m.train("yes")
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Dropout", "ReLU", "Sequential", "Sequential"]


def test_zero_grad_and_requires_grad(device):
    m = nn.Linear(3, 2).to(device)
    m(data(4, 3, device=device)).sum().backward()
    assert m.weight.grad is not None and m.weight.grad.device == device
    m.zero_grad(set_to_none=False)
    assert m.weight.grad.tolist() == [[0.0] * 3] * 2 and m.weight.grad.device == device
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


def test_to_dtype_keeps_parameter_objects(device):
    m = TwoLayer().to(device)
    w = m.fc1.weight
    m(data(2, 4, device=device)).sum().backward()
    assert m.double() is m
    assert m.fc1.weight is w and isinstance(w, nn.Parameter) and w.requires_grad
    assert w.dtype == kg.float64 and w.grad.dtype == kg.float64
    assert m.steps.dtype == kg.int64  # integer buffers keep their dtype
    assert m.scratch.dtype == kg.float64
    out = m(data(2, 4, dtype=kg.float64, device=device))
    assert out.dtype == kg.float64 and out.device == device
    m.to(kg.float32)
    assert w.dtype == kg.float32
    m.float().to(device)
    assert w.device == device
    m.to(device, dtype=kg.float64)
    assert w.dtype == kg.float64 and w.device == device and m.steps.device == device
    m.to(kg.zeros(1, device=device))
    assert w.dtype == kg.float32
    with pytest.raises(TypeError):
        m.to(kg.int64)


def test_to_device(device):
    m = nn.Linear(3, 2).to(device)
    assert m.weight.device == device and isinstance(m.weight, nn.Parameter)
    out = m(data(4, 3, device=device))
    assert out.device == device


def test_to_device_moves_parameters_grads_and_buffers_in_place(device):
    m = TwoLayer()
    w, b = m.fc1.weight, m.fc2.bias
    values = npy(w).copy()
    w.grad = kg.full(w.shape, 0.5)
    with kg.no_grad():
        m.steps.fill_(7)
    assert m.to(device) is m
    # the same Parameter objects, now on the device with their values, their grads and the buffers
    assert m.fc1.weight is w and m.fc2.bias is b and isinstance(w, nn.Parameter)
    assert all(p.device == device and p.requires_grad and p.is_leaf for p in m.parameters())
    assert w.grad.device == device and w.grad.tolist() == [[0.5] * 4] * 3
    assert m.steps.device == device and m.steps.dtype == kg.int64 and m.steps.item() == 7
    assert m.scratch.device == device  # non-persistent buffers move too
    np.testing.assert_array_equal(npy(w), values)
    assert all(v.device == device for v in m.state_dict().values())
    back = m.cpu()
    assert back is m and all(p.device == "cpu" for p in m.parameters()) and m.steps.device == "cpu"
    np.testing.assert_array_equal(w.detach().numpy(), values)
    if device != "cpu":
        assert m.cuda() is m and w.device == "cuda" and w.grad.device == "cuda"


# --- hooks
def test_forward_hooks(device):
    m = nn.Linear(2, 2).to(device)
    calls = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = m.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    out = m(kg.ones(3, 2, device=device))
    assert calls == [(3, 2)]
    np.testing.assert_allclose(npy(out), (npy(m.bias) + 1)[None].repeat(3, 0), rtol=1e-6)
    h1.remove()
    h2.remove()
    x = kg.ones(3, 2, device=device)
    np.testing.assert_allclose(npy(m(x)), npy(nn.functional.linear(x, m.weight, m.bias)))


# --- state dict
def test_state_dict_contents(device):
    m = TwoLayer().to(device)
    sd = m.state_dict()
    assert all(v.device == device for v in sd.values())
    assert isinstance(sd, collections.OrderedDict)
    # own entries before the children's, as in PyTorch; scratch is not persistent
    assert list(sd) == ["steps", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(not v.requires_grad and type(v) is kg.Tensor for v in sd.values())
    with kg.no_grad():
        m.fc1.bias.fill_(7.0)
    assert sd["fc1.bias"].tolist() == [7.0] * 3  # detached, but sharing memory (as in PyTorch)
    assert isinstance(m.state_dict(keep_vars=True)["fc1.weight"], nn.Parameter)
    assert list(nn.Sequential(nn.Linear(1, 1, bias=False)).state_dict()) == ["0.weight"]


def test_state_dict_round_trip_gives_identical_outputs(device):
    a, b = TwoLayer().to(device), TwoLayer().to(device)
    x = data(5, 4, device=device)
    assert not np.allclose(npy(a(x)), npy(b(x)))
    w_before = b.fc1.weight
    result = b.load_state_dict(a.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert b.fc1.weight is w_before and b.fc1.weight.requires_grad  # copied in place
    np.testing.assert_array_equal(npy(a(x)), npy(b(x)))
    with kg.no_grad():
        a.fc1.weight.fill_(0.0)  # a copy, not shared
    assert not np.all(npy(b.fc1.weight) == 0)


def test_load_state_dict_across_devices(device):
    # PyTorch copies each entry into the existing parameter: the module keeps its device
    src, dst = TwoLayer(), TwoLayer().to(device)
    with kg.no_grad():
        src.steps.fill_(5)
    w = dst.fc1.weight
    dst.load_state_dict(src.state_dict())
    assert dst.fc1.weight is w and w.device == device and dst.steps.device == device and dst.steps.item() == 5
    for name, value in src.state_dict().items():
        np.testing.assert_array_equal(npy(dst.state_dict()[name]), value.numpy())
    back = TwoLayer()
    back.load_state_dict(dst.state_dict())  # and from the device to the CPU
    assert back.fc1.weight.device == "cpu"
    np.testing.assert_array_equal(back.fc1.weight.detach().numpy(), src.fc1.weight.detach().numpy())


def test_load_state_dict_strict_and_non_strict(device):
    m = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).to(device)
    sd = m.state_dict()
    del sd["2.bias"]
    sd["2.extra"] = kg.zeros(1, device=device)
    sd["5.weight"] = kg.zeros(1, device=device)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "2.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "5.weight", "2.extra"' in msg  # PyTorch's order
    assert msg.startswith("Error(s) in loading state_dict for Sequential:")
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["2.bias"] and unexpected == ["5.weight", "2.extra"]


def test_load_state_dict_shape_mismatch_names_the_key(device):
    m = nn.Linear(2, 3).to(device)
    sd = m.state_dict()
    sd["weight"] = kg.zeros(3, 3, device=device)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="size mismatch for weight"):
            m.load_state_dict(sd, strict=strict)
    with pytest.raises(TypeError):
        m.load_state_dict([1, 2])


def test_load_state_dict_converts_dtype_and_loads_buffers(device):
    a, b = TwoLayer().to(device), TwoLayer().double().to(device)
    with kg.no_grad():
        a.steps.fill_(3)
    b.load_state_dict(a.state_dict())
    assert b.fc1.weight.dtype == kg.float64 and b.steps.item() == 3 and b.fc1.weight.device == device
    np.testing.assert_allclose(npy(b.fc1.weight), npy(a.fc1.weight), rtol=1e-7)


def test_state_dict_from_torch_linear(device):
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    km = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).to(device)
    km.load_state_dict({k: kg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(npy(km(kg.tensor(x, device=device))), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


# --- containers
def test_sequential():
    l1, r, l2 = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(l1, r, l2)
    assert len(s) == 3 and s[0] is l1 and s[-1] is l2 and list(s) == [l1, r, l2]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [r, l2]
    assert [n for n, _ in sub.named_children()] == ["1", "2"]  # PyTorch keeps the original keys
    x = kg.randn(4, 2)
    np.testing.assert_allclose(s(x).detach().numpy(), l2(r(l1(x))).detach().numpy())
    with pytest.raises(IndexError):
        s[3]
    s.append(nn.Sigmoid())
    assert len(s) == 4 and isinstance(s[3], nn.Sigmoid)
    del s[1]
    assert [n for n, _ in s.named_children()] == ["0", "1", "2"] and s[1] is l2
    s.insert(1, r)
    assert s[1] is r and len(s) == 4
    assert s.pop(1) is r and len(s) == 3
    s[0] = nn.Identity()
    assert isinstance(s[0], nn.Identity)
    assert len(s + nn.Sequential(nn.ReLU())) == 4


def test_sequential_from_ordered_dict():
    s = nn.Sequential(collections.OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(s.state_dict()) == ["fc.weight", "fc.bias"]
    assert s.fc is s[0]
    assert repr(s) == "Sequential(\n  (fc): Linear(in_features=2, out_features=2, bias=True)\n  (act): ReLU()\n)"


def test_module_list():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    assert len(ml) == 2
    ml.append(nn.Tanh())
    ml.extend([nn.Sigmoid(), nn.Identity()])
    assert len(ml) == 5 and isinstance(ml[-1], nn.Identity)
    ml.insert(1, nn.ELU())
    assert isinstance(ml[1], nn.ELU) and isinstance(ml[2], nn.ReLU)
    assert ml.index(ml[2]) == 2
    sl = ml[1:3]
    assert isinstance(sl, nn.ModuleList) and len(sl) == 2
    assert [type(m).__name__ for m in ml] == ["Linear", "ELU", "ReLU", "Tanh", "Sigmoid", "Identity"]
    del ml[0]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3", "4"]
    ml += [nn.ReLU()]
    assert len(ml) == 6
    with pytest.raises(IndexError):
        ml[6]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

    assert [n for n, _ in Net().named_parameters()][-1] == "layers.2.bias"


def test_module_dict():
    md = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    assert len(md) == 2 and "a" in md and list(md) == ["a", "b"]
    md["c"] = nn.Tanh()
    assert list(md.keys()) == ["a", "b", "c"]
    assert md.pop("b").__class__ is nn.ReLU
    md.update([("d", nn.Identity())])
    assert [k for k, _ in md.items()] == ["a", "c", "d"]
    assert list(md.state_dict()) == ["a.weight", "a.bias"]
    del md["a"]
    assert len(list(md.values())) == 2
    md.clear()
    assert len(md) == 0


# --- repr
def test_repr_formats():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert repr(s) == "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)"
    assert repr(nn.Sequential()) == "Sequential()"
    assert repr(TwoLayer()) == (
        "TwoLayer(\n  (fc1): Linear(in_features=4, out_features=3, bias=True)\n  (act): ReLU()\n"
        "  (fc2): Linear(in_features=3, out_features=2, bias=True)\n)"
    )
    nested = nn.Sequential(nn.Sequential(nn.Linear(1, 1, bias=False)))
    assert repr(nested) == (
        "Sequential(\n  (0): Sequential(\n    (0): Linear(in_features=1, out_features=1, bias=False)\n  )\n)"
    )
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()])
    assert repr(ml) == "ModuleList(\n  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n  (3): ReLU()\n)"
    assert repr(nn.ModuleDict({"a": nn.ReLU()})) == "ModuleDict(\n  (a): ReLU()\n)"

    class WithExtra(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.ReLU()

        def extra_repr(self):
            return "k=1"

    assert repr(WithExtra()) == "WithExtra(\n  k=1\n  (inner): ReLU()\n)"


def test_repr_matches_torch():
    torch = pytest.importorskip("torch")
    tn, kn = torch.nn, nn
    pairs = [
        (tn.Sequential(tn.Linear(2, 3), tn.ReLU(), tn.Dropout(0.1), tn.Flatten()),
         kn.Sequential(kn.Linear(2, 3), kn.ReLU(), kn.Dropout(0.1), kn.Flatten())),
        (tn.ModuleList([tn.GELU(), tn.GELU(), tn.Embedding(10, 3, padding_idx=0)]),
         kn.ModuleList([kn.GELU(), kn.GELU(), kn.Embedding(10, 3, padding_idx=0)])),
        (tn.Sequential(tn.LeakyReLU(), tn.PReLU(3), tn.ELU(), tn.Softplus(), tn.Hardtanh(), tn.ReLU6(), tn.SiLU(),
                       tn.Mish(), tn.Sigmoid(), tn.Tanh(), tn.Softsign(), tn.Identity(), tn.Unflatten(1, (2, 5)),
                       tn.GELU("tanh"), tn.LeakyReLU(0.2, True)),
         kn.Sequential(kn.LeakyReLU(), kn.PReLU(3), kn.ELU(), kn.Softplus(), kn.Hardtanh(), kn.ReLU6(), kn.SiLU(),
                       kn.Mish(), kn.Sigmoid(), kn.Tanh(), kn.Softsign(), kn.Identity(), kn.Unflatten(1, (2, 5)),
                       kn.GELU("tanh"), kn.LeakyReLU(0.2, True))),
        (tn.ModuleDict({"l": tn.MSELoss(), "b": tn.BCEWithLogitsLoss(), "k": tn.KLDivLoss()}),
         kn.ModuleDict({"l": kn.MSELoss(), "b": kn.BCEWithLogitsLoss(), "k": kn.KLDivLoss()})),
    ]
    for t, k in pairs:
        assert repr(k) == repr(t)
