"""RNN, LSTM, GRU and their cells: values against a NumPy float64 reference written here from the
textbook equations, float64 gradcheck through short sequences (inputs, initial states and every
parameter), state dicts ported to and from PyTorch with outputs and gradients compared, inter-layer
dropout, and bad-input errors."""
import math
import warnings

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import nn

KINDS = ["tanh", "relu", "lstm", "gru"]


# --- NumPy reference (float64), independent of the implementation under test
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_cell(kind, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step; x: (N, in), h and c: (N, H). Returns (h', c') (c' is None except for the LSTM)."""
    H = h.shape[1]
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if kind == "tanh":
        return np.tanh(gi + gh), None
    if kind == "relu":
        return np.maximum(gi + gh, 0), None
    if kind == "lstm":
        g = gi + gh
        i, f, gg, o = (g[:, k * H:(k + 1) * H] for k in range(4))
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(gg)
        return _sigmoid(o) * np.tanh(c_new), c_new
    r = _sigmoid(gi[:, :H] + gh[:, :H])
    z = _sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h, None


def np_rnn(kind, params, x, h0, c0, num_layers, bidirectional):
    """x: (L, N, in); h0, c0: (num_layers * D, N, H); params: name -> array (PyTorch names).
    Returns output (L, N, D*H), h_n, c_n."""
    D = 2 if bidirectional else 1
    L = x.shape[0]
    h_n, c_n = [], []
    layer_in = x
    for layer in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w = [params.get(n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h, c = h0[layer * D + d], c0[layer * D + d]
            out = np.zeros((L, x.shape[1], h.shape[1]))
            for t in (reversed(range(L)) if d else range(L)):
                h, c_new = np_cell(kind, layer_in[t], h, c, *w)
                c = c if c_new is None else c_new
                out[t] = h
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in, np.stack(h_n), np.stack(c_n)


def make(kind, *args, **kwargs):
    if kind in ("tanh", "relu"):
        return nn.RNN(*args, nonlinearity=kind, **kwargs)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[kind](*args, **kwargs)


def make_cell(kind, *args, **kwargs):
    if kind in ("tanh", "relu"):
        return nn.RNNCell(*args, nonlinearity=kind, **kwargs)
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](*args, **kwargs)


def np_params(m):
    return {n: p.detach().cpu().numpy().astype(np.float64) for n, p in m.named_parameters()}


def npy(t):
    return t.detach().cpu().numpy()


def t64(a, requires_grad=False, device="cpu"):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


# --- construction
def test_parameter_names_shapes_and_init(device):
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, device=device)
    shapes = {n: p.shape for n, p in m.named_parameters()}
    expected = {}
    for layer, in_size in ((0, 3), (1, 10)):
        for sfx in ("", "_reverse"):
            expected.update({
                f"weight_ih_l{layer}{sfx}": (20, in_size), f"weight_hh_l{layer}{sfx}": (20, 5),
                f"bias_ih_l{layer}{sfx}": (20,), f"bias_hh_l{layer}{sfx}": (20,),
            })
    assert list(shapes) == list(expected)  # PyTorch's registration order
    assert shapes == expected
    bound = 1 / math.sqrt(5)
    for p in m.parameters():
        a = npy(p)
        assert p.device == device and p.dtype == kg.float32 and np.all(np.abs(a) <= bound) and a.std() > bound / 4
    assert [n for n, _ in nn.GRU(3, 4, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]
    assert nn.GRU(3, 4).weight_ih_l0.shape == (12, 3) and nn.RNN(3, 4).weight_hh_l0.shape == (4, 4)
    cell = nn.LSTMCell(3, 4, bias=False)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"] and cell.bias_ih is None
    assert nn.GRUCell(3, 4, dtype=kg.float64).weight_hh.dtype == kg.float64
    cell = nn.GRUCell(3, 4, dtype=kg.float64, device=device)
    assert all(p.device == device and p.dtype == kg.float64 for p in cell.parameters())


def test_repr():
    assert repr(nn.LSTM(10, 20, num_layers=2, batch_first=True)) == "LSTM(10, 20, num_layers=2, batch_first=True)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4)"  # as PyTorch
    assert repr(nn.GRU(3, 4, 3, bias=False, dropout=0.5, bidirectional=True)) == (
        "GRU(3, 4, num_layers=3, bias=False, dropout=0.5, bidirectional=True)")
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"
    assert repr(nn.GRUCell(3, 4)) == "GRUCell(3, 4)"


# --- values against the NumPy reference
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first,given_state", [(False, False), (False, True), (True, True), (True, False)])
def test_matches_reference(kind, num_layers, bidirectional, batch_first, given_state, device, rng):
    L, N, I, H = 4, 3, 5, 6
    D = 2 if bidirectional else 1
    m = make(kind, I, H, num_layers, batch_first=batch_first, bidirectional=bidirectional).double().to(device)
    x = rng.standard_normal((L, N, I))
    h0 = rng.standard_normal((num_layers * D, N, H)) if given_state else np.zeros((num_layers * D, N, H))
    c0 = rng.standard_normal((num_layers * D, N, H)) if given_state else np.zeros((num_layers * D, N, H))
    hx = None
    if given_state:
        hx = (t64(h0, device=device), t64(c0, device=device)) if kind == "lstm" else t64(h0, device=device)
    out, state = m(t64(x.transpose(1, 0, 2) if batch_first else x, device=device), hx)
    ref_out, ref_h, ref_c = np_rnn(kind, np_params(m), x, h0, c0, num_layers, bidirectional)
    if batch_first:
        ref_out = ref_out.transpose(1, 0, 2)
    assert out.shape == ref_out.shape and out.dtype == kg.float64 and out.device == device
    np.testing.assert_allclose(npy(out), ref_out, rtol=1e-12, atol=1e-12)
    if kind == "lstm":
        h_n, c_n = state
        assert c_n.device == device
        np.testing.assert_allclose(npy(c_n), ref_c, rtol=1e-12, atol=1e-12)
    else:
        h_n = state
    assert h_n.device == device
    np.testing.assert_allclose(npy(h_n), ref_h, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_no_bias_and_float32(kind, device, rng):
    m = make(kind, 3, 4, 2, bias=False, device=device)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    out, _ = m(kg.tensor(x, device=device))
    z = np.zeros((2, 2, 4))
    ref, _, _ = np_rnn(kind, np_params(m), x.astype(np.float64), z, z, 2, False)
    assert out.dtype == kg.float32 and out.device == device
    np.testing.assert_allclose(npy(out), ref, rtol=1e-5, atol=1e-6)  # float32, 5 steps


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("given_state", [False, True])
def test_unbatched_equals_batch_of_one(kind, given_state, device, rng):
    m = make(kind, 3, 4, 2, bidirectional=True).double().to(device)
    x = t64(rng.standard_normal((5, 3)), device=device)
    h0 = t64(rng.standard_normal((4, 4)), device=device)
    c0 = t64(rng.standard_normal((4, 4)), device=device)
    hx = None
    if given_state:
        hx = (h0, c0) if kind == "lstm" else h0
    out, state = m(x, hx)
    hx1 = None
    if given_state:
        hx1 = (h0.unsqueeze(1), c0.unsqueeze(1)) if kind == "lstm" else h0.unsqueeze(1)
    out1, state1 = m(x.unsqueeze(1), hx1)
    assert out.shape == (5, 8) and out.device == device
    np.testing.assert_allclose(npy(out), npy(out1)[:, 0], rtol=1e-14, atol=1e-14)
    states = zip(state, state1) if kind == "lstm" else [(state, state1)]
    for s, s1 in states:
        assert s.shape == (4, 4) and s.device == device
        np.testing.assert_allclose(npy(s), npy(s1)[:, 0], rtol=1e-14, atol=1e-14)


def test_bidirectional_layout(device, rng):
    """output[..., :H] is the forward direction (ends at t = L-1), output[..., H:] the reverse one
    (ends at t = 0); h_n is ordered (l0 fwd, l0 bwd, l1 fwd, l1 bwd)."""
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True).double().to(device)
    out, h_n = m(t64(rng.standard_normal((2, 5, 3)), device=device))
    out, h_n = npy(out), npy(h_n)
    assert out.shape == (2, 5, 8) and h_n.shape == (4, 2, 4)
    np.testing.assert_array_equal(out[:, -1, :4], h_n[2])
    np.testing.assert_array_equal(out[:, 0, 4:], h_n[3])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("given_state", [False, True])
def test_cells_match_reference(kind, batched, given_state, device, rng):
    cell = make_cell(kind, 5, 4).double().to(device)
    p = np_params(cell)
    x = rng.standard_normal((3, 5) if batched else (5,))
    h = rng.standard_normal((3, 4) if batched else (4,)) if given_state else np.zeros((3, 4) if batched else (4,))
    c = rng.standard_normal(h.shape) if given_state else np.zeros(h.shape)
    hx = None
    if given_state:
        hx = (t64(h, device=device), t64(c, device=device)) if kind == "lstm" else t64(h, device=device)
    got = cell(t64(x, device=device), hx)
    ref_h, ref_c = np_cell(kind, np.atleast_2d(x), np.atleast_2d(h), np.atleast_2d(c),
                           p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
    if kind == "lstm":
        got_h, got_c = got
        assert got_c.shape == h.shape and got_c.device == device
        np.testing.assert_allclose(npy(got_c), ref_c.reshape(h.shape), rtol=1e-13, atol=1e-13)
    else:
        got_h = got
    assert got_h.shape == h.shape and got_h.device == device
    np.testing.assert_allclose(npy(got_h), ref_h.reshape(h.shape), rtol=1e-13, atol=1e-13)


def test_cell_loop_equals_layer(device, rng):
    """Unrolling LSTMCell by hand with the layer's weights gives the layer's output."""
    layer = nn.LSTM(3, 4).double().to(device)
    cell = nn.LSTMCell(3, 4).double().to(device)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # "weight_ih_l0" -> "weight_ih"
    x = t64(rng.standard_normal((6, 2, 3)), device=device)
    out, (_, c_n) = layer(x)
    state = None
    for t in range(6):
        state = cell(x[t], state)
        np.testing.assert_allclose(npy(state[0]), npy(out[t]), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(npy(state[1]), npy(c_n[0]), rtol=1e-14, atol=1e-14)


# --- gradients
@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_layer(kind, device, rng):
    """Tiny 2-layer bidirectional net over 3 steps (2 steps of batch 1 on CUDA, where every kernel
    launch is costly under the emulator): d(output, h_n[, c_n]) / d(input, h_0[, c_0])."""
    N, L = (2, 3) if device == "cpu" else (1, 2)
    m = make(kind, 2, 2, 2, bidirectional=True, batch_first=True).double().to(device)
    x = t64(rng.standard_normal((N, L, 2)), requires_grad=True, device=device)
    h0 = t64(rng.standard_normal((4, N, 2)) * 0.5, requires_grad=True, device=device)
    c0 = t64(rng.standard_normal((4, N, 2)) * 0.5, requires_grad=True, device=device)
    if kind == "lstm":
        def fn(x, h0, c0):
            out, (h, c) = m(x, (h0, c0))
            return out, h, c
        assert kg.autograd.gradcheck(fn, [x, h0, c0])
    else:
        assert kg.autograd.gradcheck(lambda x, h0: m(x, h0), [x, h0])


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_parameters(kind, device, rng):
    """Every parameter: fn substitutes each gradchecked tensor for the module's parameter (the
    original Parameter objects are left untouched). On CUDA one bidirectional layer over 2 steps
    (the emulator's kernel launches are costly; test_port_to_and_from_torch compares every
    parameter gradient of 2-layer modules on CUDA with PyTorch's)."""
    num_layers, L = (2, 3) if device == "cpu" else (1, 2)
    m = make(kind, 2, 2, num_layers, bidirectional=True).double().to(device)
    names = [n for n, _ in m.named_parameters()]
    params = [t64(npy(p), requires_grad=True, device=device) for p in m.parameters()]
    x = t64(rng.standard_normal((L, 2, 2)), device=device)

    def fn(*ws):
        saved = dict(m._parameters)
        m._parameters.update(zip(names, ws))
        try:
            out, state = m(x)
        finally:
            m._parameters.update(saved)
        return (out,) + (state if kind == "lstm" else (state,))

    assert kg.autograd.gradcheck(fn, params)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_cell(kind, device, rng):
    cell = make_cell(kind, 3, 2).double().to(device)
    params = list(cell.parameters())  # the Parameters themselves: gradcheck perturbs them in place
    x = t64(rng.standard_normal((2, 3)), requires_grad=True, device=device)
    h = t64(rng.standard_normal((2, 2)), requires_grad=True, device=device)
    c = t64(rng.standard_normal((2, 2)), requires_grad=True, device=device)
    if kind == "lstm":
        assert kg.autograd.gradcheck(lambda x, h, c, *ps: cell(x, (h, c)), [x, h, c] + params)
    else:
        assert kg.autograd.gradcheck(lambda x, h, *ps: cell(x, h), [x, h] + params)


def test_backward_fills_every_parameter_grad(device, rng):
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, device=device)
    out, (h, c) = m(kg.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32), device=device))
    (out.sum() + h.sum() + c.sum()).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.device == device, name
        assert np.abs(p.grad.cpu().numpy()).sum() > 0, name


# --- dropout between layers
def test_dropout_only_in_training(device, rng):
    m = nn.GRU(3, 4, num_layers=3, dropout=0.5).double().to(device)
    x = t64(rng.standard_normal((6, 2, 3)), device=device)
    m.eval()
    e1, _ = m(x)
    e2, _ = m(x)
    np.testing.assert_array_equal(npy(e1), npy(e2))
    z = np.zeros((3, 2, 4))
    ref, _, _ = np_rnn("gru", np_params(m), npy(x), z, z, 3, False)
    np.testing.assert_allclose(npy(e1), ref, rtol=1e-12, atol=1e-12)
    m.train()
    t1, _ = m(x)
    t2, _ = m(x)
    assert not np.allclose(npy(t1), npy(e1))
    assert not np.allclose(npy(t1), npy(t2))


def test_dropout_one_zeroes_the_input_of_the_next_layer(device, rng):
    """With p = 1 in training the second layer sees zeros; there is no dropout after the last layer."""
    m = nn.RNN(3, 4, num_layers=2, dropout=1.0).double().to(device)
    x = t64(rng.standard_normal((5, 2, 3)), device=device)
    out, h_n = m(x)
    p = np_params(m)
    second = {k.replace("_l1", "_l0"): v for k, v in p.items() if "_l1" in k}
    z = np.zeros((1, 2, 4))
    ref, ref_h, _ = np_rnn("tanh", second, np.zeros((5, 2, 4)), z, z, 1, False)
    np.testing.assert_allclose(npy(out), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npy(h_n)[1], ref_h[0], rtol=1e-12, atol=1e-12)
    assert np.abs(npy(out)).sum() > 0


def test_dropout_with_one_layer_warns_and_does_nothing(device, rng):
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        m = nn.LSTM(3, 4, dropout=0.5).double().to(device)
    x = t64(rng.standard_normal((4, 2, 3)), device=device)
    a, _ = m(x)
    b, _ = m.eval()(x)
    np.testing.assert_array_equal(npy(a), npy(b))


# --- devices
@pytest.mark.parametrize("kind", KINDS)
def test_device(kind, device, rng):
    m = make(kind, 3, 4, 2, bidirectional=True, batch_first=True)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    ref, ref_state = m(kg.tensor(x))
    out, state = m.to(device)(kg.tensor(x, device=device))  # zero states made on the input's device
    assert out.device == device
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    h, h_ref = (state[0], ref_state[0]) if kind == "lstm" else (state, ref_state)
    np.testing.assert_allclose(h.detach().cpu().numpy(), h_ref.detach().numpy(), rtol=1e-5, atol=1e-6)


# --- PyTorch as a second oracle: state dicts port both ways, outputs and gradients agree
def _torch_module(torch, kind, *args, **kwargs):
    if kind in ("tanh", "relu"):
        return torch.nn.RNN(*args, nonlinearity=kind, **kwargs)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](*args, **kwargs)


def _run_both(torch, kind, km, tm, x, h0, c0, device="cpu"):
    """Forward and backward of (kg module on `device`, torch module on the CPU) on the same data;
    returns for each [output, h_n, (c_n,) grad_x, grad_h0, (grad_c0,) grad of every parameter] as
    NumPy arrays."""
    results = []
    for lib, m in ((kg, km), (torch, tm)):
        on = {"device": device} if lib is kg else {}
        xs = [lib.tensor(a, dtype=lib.float64, requires_grad=True, **on) for a in (x, h0, c0)]
        hx = (xs[1], xs[2]) if kind == "lstm" else xs[1]
        out, state = m(xs[0], hx)
        states = list(state) if kind == "lstm" else [state]
        w = np.linspace(-1, 1, out.numel()).reshape(out.shape)  # a non-uniform upstream gradient
        loss = (out * lib.tensor(w, dtype=lib.float64, **on)).sum() + sum((s * s).sum() for s in states)
        for p in m.parameters():
            p.grad = None
        loss.backward()
        used = xs if kind == "lstm" else xs[:2]
        arrays = [out] + states + [t.grad for t in used] + [p.grad for p in m.parameters()]
        results.append([a.detach().cpu().numpy() for a in arrays])
    return results


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_layers,bidirectional,bias", [(1, False, True), (2, True, True), (2, False, False)])
def test_port_to_and_from_torch(kind, num_layers, bidirectional, bias, device, rng):
    torch = pytest.importorskip("torch")
    D = 2 if bidirectional else 1
    x = rng.standard_normal((5, 3, 4))
    h0 = rng.standard_normal((num_layers * D, 3, 6))
    c0 = rng.standard_normal((num_layers * D, 3, 6))

    # kg -> torch
    km = make(kind, 4, 6, num_layers, bias=bias, bidirectional=bidirectional).double().to(device)
    tm = _torch_module(torch, kind, 4, 6, num_layers, bias=bias, bidirectional=bidirectional).double()
    assert list(km.state_dict()) == list(tm.state_dict())
    tm.load_state_dict({k: torch.from_numpy(v.cpu().numpy()) for k, v in km.state_dict().items()})
    ours, theirs = _run_both(torch, kind, km, tm, x, h0, c0, device)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    # torch -> kg (fresh modules, torch's own initialisation; CPU tensors load into the device module)
    km = make(kind, 4, 6, num_layers, bias=bias, bidirectional=bidirectional).double().to(device)
    tm = _torch_module(torch, kind, 4, 6, num_layers, bias=bias, bidirectional=bidirectional).double()
    result = km.load_state_dict({k: kg.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    assert not result.missing_keys and not result.unexpected_keys
    assert all(p.device == device for p in km.parameters())
    ours, theirs = _run_both(torch, kind, km, tm, x, h0, c0, device)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_cells_match_torch(kind, device, rng):
    torch = pytest.importorskip("torch")
    cell = make_cell(kind, 4, 3).double().to(device)
    tcell = {"tanh": lambda: torch.nn.RNNCell(4, 3), "relu": lambda: torch.nn.RNNCell(4, 3, nonlinearity="relu"),
             "lstm": lambda: torch.nn.LSTMCell(4, 3), "gru": lambda: torch.nn.GRUCell(4, 3)}[kind]().double()
    tcell.load_state_dict({k: torch.from_numpy(v.cpu().numpy()) for k, v in cell.state_dict().items()})
    x, h, c = rng.standard_normal((2, 4)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    grads = []
    for lib, m in ((kg, cell), (torch, tcell)):
        on = {"device": device} if lib is kg else {}
        xs = [lib.tensor(a, dtype=lib.float64, requires_grad=True, **on) for a in (x, h, c)]
        got = m(xs[0], (xs[1], xs[2]) if kind == "lstm" else xs[1])
        got = got if kind == "lstm" else (got,)
        sum((g * g).sum() for g in got).backward()
        grads.append([g.detach().cpu().numpy() for g in got] + [xs[0].grad.cpu().numpy(), xs[1].grad.cpu().numpy()]
                     + [p.grad.cpu().numpy() for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# --- bad input
def test_layer_errors(device):
    def randn(*shape, **kw):
        return kg.randn(*shape, device=device, **kw)

    def zeros(*shape):
        return kg.zeros(*shape, device=device)

    m = nn.LSTM(3, 4, num_layers=2, device=device)
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        m(randn(6, 2, 5))
    with pytest.raises(ValueError, match="2D or 3D, got 4D"):
        m(randn(6, 2, 1, 3))
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(2, 2, 4\), got \(2, 3, 4\)"):
        m(randn(6, 2, 3), (zeros(2, 3, 4), zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match=r"expected c_0 of shape \(2, 2, 4\), got \(1, 2, 4\)"):
        m(randn(6, 2, 3), (zeros(2, 2, 4), zeros(1, 2, 4)))
    with pytest.raises(RuntimeError, match=r"unbatched 2-D input, h_0 should be 2-D of shape \(2, 4\), got 3-D"):
        m(randn(6, 3), (zeros(2, 1, 4), zeros(2, 1, 4)))
    with pytest.raises(TypeError, match="tuple"):
        m(randn(6, 2, 3), zeros(2, 2, 4))
    with pytest.raises(ValueError, match="dtype"):
        m(randn(6, 2, 3, dtype=kg.float64))
    with pytest.raises(RuntimeError, match="sequence length"):
        m(randn(0, 2, 3))
    g = nn.GRU(3, 4, batch_first=True, bidirectional=True, device=device)
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(2, 5, 4\), got \(1, 5, 4\)"):
        g(randn(5, 7, 3), zeros(1, 5, 4))  # batch_first: the batch is dim 0 of the input
    with pytest.raises(TypeError, match="Tensor or None"):
        g(randn(5, 7, 3), (zeros(2, 5, 4),))


def test_cell_errors(device):
    cell = nn.GRUCell(3, 4, device=device)
    with pytest.raises(RuntimeError, match="Expected 3, got 5"):
        cell(kg.randn(2, 5, device=device))
    with pytest.raises(ValueError, match="1D or 2D, got 3D"):
        cell(kg.randn(1, 2, 3, device=device))
    with pytest.raises(RuntimeError, match=r"expected h_0 of shape \(2, 4\), got \(3, 4\)"):
        cell(kg.randn(2, 3, device=device), kg.zeros(3, 4, device=device))
    with pytest.raises(RuntimeError, match=r"unbatched 1-D input, h_0 should be 1-D"):
        cell(kg.randn(3, device=device), kg.zeros(1, 4, device=device))
    lstm = nn.LSTMCell(3, 4, device=device)
    with pytest.raises(RuntimeError, match=r"expected c_0 of shape \(2, 4\), got \(2, 5\)"):
        lstm(kg.randn(2, 3, device=device), (kg.zeros(2, 4, device=device), kg.zeros(2, 5, device=device)))


@pytest.mark.skipif(not kg.cuda.is_available(), reason="needs a second device (CUDA or its emulator)")
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_input_and_state_on_another_device_raise_naming_both(kind, device):
    """As PyTorch: the input must be on the parameters' device, and h_0 (c_0) on the input's."""
    other = "cpu" if device == "cuda" else "cuda"
    both = rf"(?=.*\b{other}\b)(?=.*\b{device}\b)"
    for m, x, shape in ((make(kind, 3, 4, 2, device=device), (6, 2, 3), (2, 2, 4)),
                        (make_cell(kind, 3, 4, device=device), (2, 3), (2, 4))):
        with pytest.raises(RuntimeError, match="Input and parameter tensors are not at the same device.*" + both):
            m(kg.randn(*x, device=other))
        good, bad = kg.zeros(*shape, device=device), kg.zeros(*shape, device=other)
        for hx in ([(bad, good), (good, bad)] if kind == "lstm" else [bad]):
            with pytest.raises(RuntimeError, match="Input and hidden tensors are not at the same device.*" + both):
                m(kg.randn(*x, device=device), hx)
        out = m(kg.randn(*x, device=device), (good, good) if kind == "lstm" else good)
        assert (out[0] if isinstance(out, tuple) else out).device == device


@pytest.mark.skipif(not kg.cuda.is_available(), reason="needs a second device (CUDA or its emulator)")
def test_state_dict_moves_between_devices(device, rng):
    """A state dict saved on one device loads into a module on the other (PyTorch copies into the
    existing parameters, which keep their device), and both modules compute the same output."""
    other = "cpu" if device == "cuda" else "cuda"
    src = nn.LSTM(3, 4, num_layers=2, bidirectional=True, device=device)
    dst = nn.LSTM(3, 4, num_layers=2, bidirectional=True, device=other)
    before = [id(p) for p in dst.parameters()]
    sd = src.state_dict()
    assert all(v.device == device for v in sd.values())
    result = dst.load_state_dict(sd)
    assert not result.missing_keys and not result.unexpected_keys
    assert [id(p) for p in dst.parameters()] == before and all(p.device == other for p in dst.parameters())
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    a, (ha, ca) = src(kg.tensor(x, device=device))
    b, (hb, cb) = dst(kg.tensor(x, device=other))
    for u, v in ((a, b), (ha, hb), (ca, cb)):
        np.testing.assert_allclose(npy(v), npy(u), rtol=1e-5, atol=1e-6)  # float32, 5 steps


def test_constructor_errors():
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, 2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        nn.GRU(3, 0)
    with pytest.raises(ValueError, match="num_layers"):
        nn.GRU(3, 4, num_layers=0)
    with pytest.raises(TypeError, match="hidden_size should be of type int"):
        nn.LSTMCell(3, 4.0)
    with pytest.raises(NotImplementedError, match="proj_size"):
        nn.LSTM(3, 4, proj_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.LSTM(3, 4, num_layers=2, dropout=0.5)  # no warning with more than one layer
