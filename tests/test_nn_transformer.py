"""MultiheadAttention, Transformer encoder/decoder layers and PositionalEncoding: against a NumPy
reference written from the formulas, float64 gradient checks, state-dict porting to and from
PyTorch (when installed), masks, and bad input."""
import math

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn as nn


def npy(t):
    return t.detach().cpu().numpy()


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha_reference(m, q, k, v, mask=None):
    """(L, N, E) NumPy reference for an nn.MultiheadAttention m with an additive (N, H, L, S) or
    broadcastable mask: softmax(Q_h K_h^T / sqrt(d) + mask) V_h, heads concatenated, out_proj."""
    E, H = m.embed_dim, m.num_heads
    d = E // H
    w, b = npy(m.in_proj_weight), npy(m.in_proj_bias)
    Q, Kk, V = q @ w[:E].T + b[:E], k @ w[E:2 * E].T + b[E:2 * E], v @ w[2 * E:].T + b[2 * E:]
    L, N, _ = q.shape
    S = k.shape[0]
    Qh = Q.reshape(L, N, H, d).transpose(1, 2, 0, 3)
    Kh = Kk.reshape(S, N, H, d).transpose(1, 2, 0, 3)
    Vh = V.reshape(S, N, H, d).transpose(1, 2, 0, 3)
    scores = Qh @ Kh.transpose(0, 1, 3, 2) / math.sqrt(d)
    if mask is not None:
        scores = scores + mask
    P = softmax(scores)
    out = (P @ Vh).transpose(2, 0, 1, 3).reshape(L, N, E)
    return out @ npy(m.out_proj.weight).T + npy(m.out_proj.bias), P.mean(1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_matches_reference(rng, need_weights, device):
    kg.manual_seed(0)
    m = nn.MultiheadAttention(16, 4).double().to(device)
    q, k = rng.standard_normal((5, 2, 16)), rng.standard_normal((7, 2, 16))
    out, w = m(kg.tensor(q, device=device), kg.tensor(k, device=device), kg.tensor(k, device=device),
               need_weights=need_weights)
    ref, ref_w = mha_reference(m, q, k, k)
    np.testing.assert_allclose(npy(out), ref, rtol=1e-10, atol=1e-12)
    if need_weights:
        np.testing.assert_allclose(npy(w), ref_w, rtol=1e-10, atol=1e-12)
    else:
        assert w is None


def test_mha_masks(rng, device):
    kg.manual_seed(0)
    m = nn.MultiheadAttention(8, 2).double().to(device)
    L, S, N = 4, 6, 3
    q, k = rng.standard_normal((L, N, 8)), rng.standard_normal((S, N, 8))
    attn = rng.random((L, S)) < 0.3
    attn[:, 0] = False  # no row is fully masked
    pad = np.zeros((N, S), bool)
    pad[1, 4:] = True
    add = np.where(attn, -np.inf, 0.0)[None, None] + np.where(pad, -np.inf, 0.0)[:, None, None, :]
    ref, ref_w = mha_reference(m, q, k, k, add)

    def T(a):
        return kg.tensor(a, device=device)

    for need in (False, True):
        out, w = m(T(q), T(k), T(k), key_padding_mask=T(pad), attn_mask=T(attn), need_weights=need)
        assert out.device == device
        np.testing.assert_allclose(npy(out), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(w), ref_w, rtol=1e-10, atol=1e-12)
    # a float mask is added
    fm = rng.standard_normal((L, S))
    out, _ = m(T(q), T(k), T(k), attn_mask=T(fm))
    np.testing.assert_allclose(npy(out), mha_reference(m, q, k, k, fm)[0], rtol=1e-10, atol=1e-12)


def test_mha_batch_first_and_unbatched(rng, device):
    kg.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, batch_first=True).double().to(device)
    x = rng.standard_normal((3, 5, 8))
    xt = kg.tensor(x, device=device)
    out, w = m(xt, xt, xt)
    ref, ref_w = mha_reference(m, x.transpose(1, 0, 2), x.transpose(1, 0, 2), x.transpose(1, 0, 2))
    np.testing.assert_allclose(npy(out), ref.transpose(1, 0, 2), rtol=1e-10, atol=1e-12)
    assert w.shape == (3, 5, 5)
    x0 = kg.tensor(x[0], device=device)
    out1, w1 = m(x0, x0, x0)
    np.testing.assert_allclose(npy(out1), ref[:, 0], rtol=1e-10, atol=1e-12)
    assert w1.shape == (5, 5)


def test_mha_gradcheck(rng, device):
    kg.manual_seed(0)
    m = nn.MultiheadAttention(4, 2).double().to(device)
    q = kg.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True, device=device)
    k = kg.tensor(rng.standard_normal((5, 2, 4)), requires_grad=True, device=device)
    assert kg.autograd.gradcheck(lambda a, b: m(a, b, b, need_weights=False)[0], (q, k))
    assert kg.autograd.gradcheck(lambda a, b: m(a, b, b)[1], (q, k))


def test_mha_bad_input(device):
    m = nn.MultiheadAttention(8, 2, device=device)
    x = kg.randn(4, 2, 8, device=device)
    with pytest.raises(ValueError):
        nn.MultiheadAttention(10, 3)
    with pytest.raises((ValueError, RuntimeError)):
        m(kg.randn(4, 2, 6, device=device), x, x)
    with pytest.raises((ValueError, RuntimeError)):
        m(x, x, x, attn_mask=kg.zeros(3, 3, dtype=kg.bool, device=device))
    with pytest.raises((ValueError, RuntimeError)):
        m(x, x, x, key_padding_mask=kg.zeros(3, 4, dtype=kg.bool, device=device))
    with pytest.raises(RuntimeError):
        m(x, x, x, is_causal=True)
    with pytest.raises(TypeError):
        m(x, x, x, attn_mask=kg.zeros(4, 4, dtype=kg.int64, device=device))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_composition(rng, norm_first, activation, device):
    """The layer equals its definition written with the submodules and functional ops."""
    kg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation=activation,
                                       norm_first=norm_first).double().to(device)
    x = kg.tensor(rng.standard_normal((5, 3, 8)), device=device)
    mask = nn.generate_square_subsequent_mask(5, dtype=kg.float64, device=device)
    act = kg.nn.functional.relu if activation == "relu" else kg.nn.functional.gelu

    def sa(h):
        return layer.self_attn(h, h, h, attn_mask=mask)[0]

    def ff(h):
        return layer.linear2(act(layer.linear1(h)))

    if norm_first:
        h = x + sa(layer.norm1(x))
        ref = h + ff(layer.norm2(h))
    else:
        h = layer.norm1(x + sa(x))
        ref = layer.norm2(h + ff(h))
    out = layer(x, src_mask=mask, is_causal=True)
    assert out.device == device
    np.testing.assert_allclose(npy(out), npy(ref), rtol=1e-10, atol=1e-12)


def test_encoder_and_decoder_stacks(rng, device):
    kg.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2,
                                norm=nn.LayerNorm(8)).to(device)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2).to(device)
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight
    src, tgt = kg.randn(2, 6, 8, device=device), kg.randn(2, 4, 8, device=device)
    memory = enc(src)
    out = dec(tgt, memory, tgt_mask=nn.generate_square_subsequent_mask(4, device=device), tgt_is_causal=True)
    assert memory.shape == (2, 6, 8) and out.shape == (2, 4, 8) and out.device == device
    out.sum().backward()
    assert all(p.grad is not None and p.grad.device == device for p in enc.parameters())
    assert all(p.grad is not None and p.grad.device == device for p in dec.parameters())


def test_causal_decoder_ignores_the_future(rng, device):
    kg.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).double().to(device)
    tgt = rng.standard_normal((5, 1, 8))
    mem = kg.tensor(rng.standard_normal((3, 1, 8)), device=device)
    mask = nn.generate_square_subsequent_mask(5, dtype=kg.float64, device=device)
    a = layer(kg.tensor(tgt, device=device), mem, tgt_mask=mask)
    tgt[3:] += 10.0  # change only the last two positions
    b = layer(kg.tensor(tgt, device=device), mem, tgt_mask=mask)
    np.testing.assert_allclose(npy(a)[:3], npy(b)[:3], rtol=1e-12, atol=1e-12)
    assert not np.allclose(npy(a)[3:], npy(b)[3:])  # the change is seen where the mask allows it


def test_positional_encoding_values(device):
    pe = nn.PositionalEncoding(6, max_len=10).to(device)
    x = kg.zeros(4, 2, 6, device=device)
    y = pe(x)
    assert y.device == device
    out = npy(y)
    pos = np.arange(4)[:, None]
    i = np.arange(3)[None]
    np.testing.assert_allclose(out[:, 0, 0::2], np.sin(pos / 10000 ** (2 * i / 6)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 1, 1::2], np.cos(pos / 10000 ** (2 * i / 6)), rtol=1e-5, atol=1e-6)
    assert "pe" not in pe.state_dict()
    with pytest.raises((ValueError, RuntimeError)):
        pe(kg.zeros(11, 1, 6, device=device))


def test_square_subsequent_mask(device):
    t = nn.generate_square_subsequent_mask(3, device=device)
    assert t.device == device and t.dtype == kg.float32
    m = npy(t)
    assert np.array_equal(m, np.array([[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]], dtype=np.float32))
    assert nn.generate_square_subsequent_mask(2, device=device, dtype=kg.float64).dtype == kg.float64


def _port(torch_module, kg_module):
    """Loads torch's (CPU) state dict into kg_module, which may be on any device."""
    kg_module.load_state_dict({k: kg.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})


def test_mha_and_layers_port_from_torch(rng, device):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)

    def K(a):
        return kg.tensor(a, device=device)

    tm = torch.nn.MultiheadAttention(8, 2).double()
    km = nn.MultiheadAttention(8, 2).double().to(device)
    assert list(km.state_dict()) == list(tm.state_dict())
    _port(tm, km)
    q, k = rng.standard_normal((4, 3, 8)), rng.standard_normal((6, 3, 8))
    pad = np.zeros((3, 6), bool)
    pad[0, 5] = True
    t_out, t_w = tm(torch.tensor(q), torch.tensor(k), torch.tensor(k), key_padding_mask=torch.tensor(pad))
    k_out, k_w = km(K(q), K(k), K(k), key_padding_mask=K(pad))
    np.testing.assert_allclose(npy(k_out), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(k_w), t_w.detach().numpy(), rtol=1e-10, atol=1e-12)

    for norm_first in (False, True):
        te = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first,
                                              activation="gelu").double().eval()
        ke = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first,
                                        activation="gelu").double().to(device)
        assert list(ke.state_dict()) == list(te.state_dict())
        _port(te, ke)
        x = rng.standard_normal((5, 2, 8))
        np.testing.assert_allclose(npy(ke(K(x))), te(torch.tensor(x)).detach().numpy(), rtol=1e-9, atol=1e-10)
    td = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).double().eval()
    kd = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).double().to(device)
    assert list(kd.state_dict()) == list(td.state_dict())
    _port(td, kd)
    t, m = rng.standard_normal((4, 2, 8)), rng.standard_normal((5, 2, 8))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    np.testing.assert_allclose(
        npy(kd(K(t), K(m), tgt_mask=K(mask.numpy()))),
        td(torch.tensor(t), torch.tensor(m), tgt_mask=mask).detach().numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.skipif(not kg.cuda.is_available(), reason="needs a second device (CUDA or its emulator)")
def test_inputs_on_another_device_raise_naming_both(device):
    other = "cpu" if device == "cuda" else "cuda"
    both = rf"(?=.*\b{other}\b)(?=.*\b{device}\b)"
    m = nn.MultiheadAttention(4, 2, device=device)
    x, y = kg.randn(3, 2, 4, device=device), kg.randn(3, 2, 4, device=other)
    for args in ((y, y, y), (x, y, y), (x, x, y)):
        with pytest.raises(RuntimeError, match=both):
            m(*args)
    with pytest.raises(RuntimeError, match=both):
        m(x, x, x, key_padding_mask=kg.zeros(2, 3, dtype=kg.bool, device=other))
    with pytest.raises(RuntimeError, match=both):
        m(x, x, x, attn_mask=kg.zeros(3, 3, device=other), need_weights=False)
    with pytest.raises(RuntimeError, match=both):
        nn.PositionalEncoding(4, max_len=8).to(device)(y)
    with pytest.raises(RuntimeError, match=both):
        nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0).to(device)(y)
