"""F.scaled_dot_product_attention: the fused kernels against kg.reference (float32, forward and
backward), gradcheck in float64, every mask kind, causal with L != S, fully masked rows, dropout
(statistics and the same mask in backward), non-contiguous and broadcast inputs, bad input, and
torch as an extra oracle, on every device (`device`: the CPU kernel, csrc/cpu/attention.cpp, and
the CUDA kernels, csrc/cuda/attention.cu, on a GPU or the emulator). CUDA-only checks at the end:
the same dropout mask as the CPU for one seed, sizes around the CUDA tile (32) and the head-dim
chunks, strided operands, results independent of the thread schedule, the backend's argument
checks. The memory bound (no L x S matrix) is in test_attention_memory.py.

float32 tolerances: a score s = scale * q.k sums E products (error ~ sqrt(E) eps |s|), the softmax
turns an error ds into a relative error ds in the weights, and out / the gradients sum S weighted
terms of O(1) values. With E <= 128, S <= 130 and standard-normal inputs the float64 truth is
matched to a few 1e-6; we allow atol = rtol = 2e-5 (about 160 eps), well below the size of one
wrong term (~1 / S). The CUDA kernels sum in other orders, with the same error bounds.
"""
import importlib

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import _C
from kernelgrad import reference as R
from kernelgrad._errors import ArgumentError, DTypeError, ShapeError
from kernelgrad.backend import backend_for

gradcheck = kg.autograd.gradcheck
sdpa = F.scaled_dot_product_attention
TOL32 = dict(rtol=2e-5, atol=2e-5)


def npy(t):
    return t.detach().cpu().numpy()


def tensors(arrays, device="cpu", requires_grad=True):
    return [kg.tensor(a, device=device, requires_grad=requires_grad) for a in arrays]


def qkv(rng, batch, L, S, E, Ev=None, dtype=np.float32):
    Ev = E if Ev is None else Ev
    return [rng.standard_normal(batch + shape).astype(dtype) for shape in ((L, E), (S, E), (S, Ev))]


def check_vs_reference(q, k, v, device="cpu", tol=TOL32, **kw):
    """Forward and backward of F on `device` against kg.reference for numpy inputs q, k, v (and
    mask/options)."""
    mask = kw.pop("attn_mask", None)
    tq, tk, tv = tensors((q, k, v), device)
    tm = None if mask is None else kg.tensor(mask, device=device)
    out = sdpa(tq, tk, tv, attn_mask=tm, **kw)
    expected = R.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
    assert out.shape == expected.shape and out.dtype == tq.dtype
    np.testing.assert_allclose(npy(out), expected, **tol)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(q.dtype)
    out.backward(kg.tensor(g, device=device))
    for t, ref in zip((tq, tk, tv), R.scaled_dot_product_attention_backward(g, q, k, v, attn_mask=mask, **kw)):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(npy(t.grad), ref, **tol)
    return npy(out), [npy(t.grad) for t in (tq, tk, tv)]


# --- shapes against the reference (float32) --------------------------------------------------

@pytest.mark.parametrize("E", [16, 32, 64, 80, 128])
@pytest.mark.parametrize("L, S", [(37, 50), (1, 9), (130, 70)], ids=lambda v: str(v))
def test_forward_backward_vs_reference(E, L, S, device, rng):
    check_vs_reference(*qkv(rng, (2, 3), L, S, E), device)


@pytest.mark.parametrize("E, Ev", [(24, 40), (256, 256), (300, 8)], ids=str)
def test_value_dim_differs_and_large_head_dims(E, Ev, device, rng):
    """(On CUDA, head dims over 128 take several column chunks, each recomputing the scores.)"""
    check_vs_reference(*qkv(rng, (1, 2), 33, 65, E, Ev), device)


def test_batch_1_and_no_batch_dims(device, rng):
    check_vs_reference(*qkv(rng, (1,), 5, 7, 16), device)
    check_vs_reference(*qkv(rng, (), 129, 128, 32), device)  # plain (L, E) matrices; CPU tile (128) + 1 row


def test_custom_scale(device, rng):
    check_vs_reference(*qkv(rng, (2,), 20, 30, 16), device, scale=0.7)
    check_vs_reference(*qkv(rng, (2,), 20, 30, 16), device, scale=-1.5)


def test_float64_matches_reference_to_float64_accuracy(device, rng):
    q, k, v = qkv(rng, (2, 2), 70, 90, 32, dtype=np.float64)
    mask = rng.random((70, 90)) < 0.8
    check_vs_reference(q, k, v, device, tol=dict(rtol=1e-12, atol=1e-12), attn_mask=mask)


def test_non_contiguous_transposed_heads(device, rng):
    """(B, L, H, E) projections viewed as (B, H, L, E) by .transpose(1, 2): strided, no copy."""
    B, H, L, S, E = 2, 3, 37, 50, 16
    base = [rng.standard_normal((B, n, H, E)).astype(np.float32) for n in (L, S, S)]
    tq, tk, tv = tensors(base, device)
    out = sdpa(*(t.transpose(1, 2) for t in (tq, tk, tv)))
    q, k, v = (np.swapaxes(a, 1, 2) for a in base)
    np.testing.assert_allclose(npy(out), R.scaled_dot_product_attention(q, k, v), **TOL32)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    for t, ref in zip((tq, tk, tv), R.scaled_dot_product_attention_backward(g, q, k, v)):
        np.testing.assert_allclose(npy(t.grad), np.swapaxes(ref, 1, 2), **TOL32)


def test_strided_and_broadcast_inputs_gradcheck(device, rng):
    q = kg.tensor(rng.standard_normal((2, 4, 6)), device=device, requires_grad=True)
    k = kg.tensor(rng.standard_normal((1, 5, 3)), device=device, requires_grad=True)  # batch 1 broadcast over 2
    v = kg.tensor(rng.standard_normal((5, 2)), device=device, requires_grad=True)     # no batch dims at all
    assert gradcheck(lambda q, k, v: sdpa(q[:, ::2, 1::2], k, v), (q, k, v))


def test_broadcast_key_value(device, rng):
    q, k, v = qkv(rng, (2, 4), 9, 11, 8)
    check_vs_reference(q, k[:1, :1], v[:, :1], device)


# --- masks ------------------------------------------------------------------------------------

MASK_SHAPES = [(2, 3, 37, 50), (37, 50), (2, 1, 37, 50), (1, 3, 1, 50), (50,)]


@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks_vs_reference(kind, shape, device, rng):
    q, k, v = qkv(rng, (2, 3), 37, 50, 16)
    if kind == "bool":
        mask = rng.random(shape) < 0.7
    else:
        mask = (rng.standard_normal(shape) + np.where(rng.random(shape) < 0.2, -np.inf, 0)).astype(np.float32)
    check_vs_reference(q, k, v, device, attn_mask=mask)


@pytest.mark.parametrize("kind, shape", [("bool", (2, 1, 150, 260)), ("float", (150, 260))], ids=str)
def test_masks_across_tiles(kind, shape, device, rng):
    """Masks read at tile offsets i0, j0 > 0 (tiles are 128 x 128 on the CPU, 32 x 32 on CUDA)."""
    q, k, v = qkv(rng, (2, 2), 150, 260, 16)
    mask = rng.random(shape) < 0.5 if kind == "bool" else rng.standard_normal(shape).astype(np.float32)
    check_vs_reference(q, k, v, device, attn_mask=mask)


def test_broadcast_mask_is_not_materialised(device, rng):
    """A (L, S) mask reaches the kernel as a stride-0 view over (B, H)."""
    B = backend_for(device)
    q, k, v = qkv(rng, (2, 3), 4, 6, 8)
    mask = rng.random((4, 6)) < 0.5
    view = B.broadcast_to(B.asarray(mask), (2, 3, 4, 6))
    assert view.strides[:2] == (0, 0)
    out, _ = B.attention_forward(B.asarray(q), B.asarray(k), B.asarray(v), view, False, 0.5, 0.0, 0)
    np.testing.assert_allclose(B.to_numpy(out), R.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.5),
                               **TOL32)


@pytest.mark.parametrize("L, S", [(37, 50), (50, 37), (1, 9), (130, 70), (70, 300), (256, 256)], ids=str)
def test_causal_vs_reference(L, S, device, rng):
    check_vs_reference(*qkv(rng, (2, 2), L, S, 32), device, is_causal=True)


def test_causal_equals_explicit_lower_triangular_mask(device, rng):
    q, k, v = qkv(rng, (2,), 70, 90, 16)
    tril = np.tril(np.ones((70, 90), dtype=bool))
    a, ga = check_vs_reference(q, k, v, device, is_causal=True)
    b, gb = check_vs_reference(q, k, v, device, attn_mask=tril)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_masks_gradcheck(device, rng):
    q, k, v = (kg.tensor(rng.standard_normal(s), device=device, requires_grad=True)
               for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    keep = kg.tensor(rng.random((3, 5)) < 0.6, device=device)
    keep[:, 0] = True
    add = kg.tensor(rng.standard_normal((2, 1, 5)), device=device)
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=keep), (q, k, v))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=add), (q, k, v))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=True, scale=0.3), (q, k, v))
    qq = kg.tensor(rng.standard_normal((2, 7, 4)), device=device, requires_grad=True)
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=True), (qq, k, v))  # L > S


# --- fully masked rows -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bool", "float -inf"])
def test_fully_masked_rows_give_zeros_and_zero_grads(kind, device, rng):
    q, k, v = qkv(rng, (2,), 140, 150, 16)
    keep = rng.random((2, 140, 150)) < 0.5
    keep[0, 3] = keep[1, 135] = False  # rows in the first and the second query tile (128 rows)
    mask = keep if kind == "bool" else np.where(keep, 0.0, -np.inf).astype(np.float32)
    out, (gq, gk, gv) = check_vs_reference(q, k, v, device, attn_mask=mask)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(gq)) and np.all(np.isfinite(gk))
    np.testing.assert_array_equal(out[0, 3], 0)
    np.testing.assert_array_equal(out[1, 135], 0)
    np.testing.assert_array_equal(gq[0, 3], 0)
    np.testing.assert_array_equal(gq[1, 135], 0)


def test_fully_masked_rows_gradcheck(device, rng):
    keep = kg.tensor(np.array([[True, False, True], [False, False, False]]), device=device)
    q, k, v = (kg.tensor(rng.standard_normal(s), device=device, requires_grad=True)
               for s in ((2, 2, 3), (2, 3, 3), (2, 3, 2)))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=keep), (q, k, v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_scores_propagate_not_masked(dtype, device, rng):
    """A row of NaN scores is NaN (as in PyTorch), not taken for a fully masked row."""
    q, k, v = qkv(rng, (2,), 140, 150, 16, dtype=dtype)
    q[0, 3, 1] = q[1, 135, 0] = np.nan  # whole score rows
    k[1, 7, 2] = np.nan                  # one score column of every row of batch 1
    out = npy(sdpa(*tensors((q, k, v), device, requires_grad=False)))
    assert np.isnan(out[0, 3]).all() and np.isnan(out[1]).all()
    assert np.isfinite(np.delete(out[0], 3, axis=0)).all()


def test_no_keys_at_all(device, rng):
    q, k, v = tensors(qkv(rng, (2,), 3, 0, 4), device)
    out = sdpa(q, k, v)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(npy(out), 0)
    out.sum().backward()
    np.testing.assert_array_equal(npy(q.grad), 0)


# --- dropout ------------------------------------------------------------------------------------

def test_dropout_mask_matches_reference_exactly(device, rng):
    """The kernel's counter-based mask is the reference's: same seed, same kept weights."""
    B = backend_for(device)
    q, k, v = qkv(rng, (2, 3), 150, 260, 16, dtype=np.float64)  # several tiles
    seed, p = 2**63 + 12345, 0.3
    dq, dk, dv = (B.asarray(x) for x in (q, k, v))
    out, lse = B.attention_forward(dq, dk, dv, None, False, 0.25, p, seed)
    np.testing.assert_allclose(B.to_numpy(out),
                               R.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=0.25, seed=seed),
                               rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    grads = B.attention_backward(B.asarray(g), dq, dk, dv, out, lse, None, False, 0.25, p, seed)
    refs = R.scaled_dot_product_attention_backward(g, q, k, v, dropout_p=p, scale=0.25, seed=seed)
    for got, ref in zip(grads, refs):
        np.testing.assert_allclose(B.to_numpy(got), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics(p, device):
    """q = k = 0 gives uniform weights 1/S; v = 1 makes out[i] = (kept keys of row i) / ((1-p) S):
    the survivors are scaled by 1/(1-p) and the keep rate is 1 - p."""
    L, S = 256, 256
    q, k = kg.zeros(2, L, 8, device=device), kg.zeros(2, S, 8, device=device)
    out = npy(sdpa(q, k, kg.ones(2, S, 1, device=device), dropout_p=p))[..., 0]
    kept = out * (1 - p) * S
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-3)  # whole numbers of survivors
    n = kept.size * S
    assert abs(kept.sum() / n - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)  # 4 standard deviations
    assert abs(out.mean() - 1) < 0.02                                      # unbiased


def test_dropout_p1_gives_zeros_and_p0_is_exact(device, rng):
    q, k, v = tensors(qkv(rng, (2,), 5, 6, 4), device, requires_grad=False)
    np.testing.assert_array_equal(npy(sdpa(q, k, v, dropout_p=1.0)), 0)
    np.testing.assert_array_equal(npy(sdpa(q, k, v, dropout_p=0.0)), npy(sdpa(q, k, v)))


def test_dropout_seed_from_kg_generator(device, rng):
    q, k, v = tensors(qkv(rng, (2,), 30, 40, 8), device, requires_grad=False)
    kg.manual_seed(5)
    a, b = npy(sdpa(q, k, v, dropout_p=0.5)), npy(sdpa(q, k, v, dropout_p=0.5))
    assert not np.array_equal(a, b)  # a new mask per call
    kg.manual_seed(5)
    np.testing.assert_array_equal(npy(sdpa(q, k, v, dropout_p=0.5)), a)  # reproducible


def test_dropout_gradcheck_fixed_seed(device, rng):
    """Backward regenerates forward's mask: gradcheck agrees when every forward uses one seed."""
    def f(q, k, v):
        kg.manual_seed(11)
        return sdpa(q, k, v, dropout_p=0.4, attn_mask=mask)

    mask = kg.tensor(rng.random((3, 5)) < 0.8, device=device)
    q, k, v = (kg.tensor(rng.standard_normal(s), device=device, requires_grad=True)
               for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    assert gradcheck(f, (q, k, v))


# --- CPU threads and micro-kernels give the same results -------------------------------------------

def test_thread_count_and_isa_do_not_change_results(rng):
    q, k, v = tensors(qkv(rng, (2, 3), 130, 70, 32), requires_grad=False)
    threads = kg.get_num_threads()
    try:
        kg.set_num_threads(1)
        one = npy(sdpa(q, k, v, is_causal=True))
        kg.set_num_threads(3)
        np.testing.assert_array_equal(npy(sdpa(q, k, v, is_causal=True)), one)  # one thread owns each tile
        _C._set_isa("generic")
        np.testing.assert_allclose(npy(sdpa(q, k, v, is_causal=True)), one, **TOL32)
    finally:
        _C._set_isa("auto")
        kg.set_num_threads(threads)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("is_causal", [False, True])
def test_backward_splits_the_key_tiles_of_few_heads(threads, is_causal, rng):
    """With fewer heads than threads can share, a head's key tiles are split into chunks, each with
    its own partial dQ (summed at the end): the gradients must not depend on the thread count."""
    saved = kg.get_num_threads()
    try:
        kg.set_num_threads(threads)
        check_vs_reference(*qkv(rng, (1,), 300, 600, 16), is_causal=is_causal)   # 1 head, 5 key tiles
        check_vs_reference(*qkv(rng, (3,), 140, 260, 16), is_causal=is_causal)   # 3 heads, 3 key tiles
    finally:
        kg.set_num_threads(saved)


# --- bad input ------------------------------------------------------------------------------------

def z(*shape, dtype=kg.float32):
    return kg.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((z(2, 3, 4), z(2, 5, 6), z(2, 5, 4)), {}, ShapeError, r"key.shape\[-1\] == query.shape\[-1\]"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 6, 4)), {}, ShapeError, "one length S"),
    ((z(2, 3, 4), z(3, 5, 4), z(3, 5, 4)), {}, ShapeError, "do not broadcast"),
    ((z(4), z(5, 4), z(5, 4)), {}, ShapeError, "at least 2 dims"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(attn_mask=z(3, 4)), ShapeError, "does not broadcast"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(attn_mask=z(3, 2, 3, 5)), ShapeError, "does not broadcast"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(attn_mask=z(3, 5), is_causal=True), ArgumentError, "is_causal"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(dropout_p=1.5), ArgumentError, "between 0 and 1"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(dropout_p=-0.1), ArgumentError, "between 0 and 1"),
    ((z(2, 3, 0), z(2, 5, 0), z(2, 5, 4)), {}, ShapeError, "E > 0"),
    ((z(2, 3, 4, dtype=kg.int64),) * 3, {}, DTypeError, "float32 or float64"),
    ((z(2, 3, 4), z(2, 5, 4, dtype=kg.float64), z(2, 5, 4)), {}, DTypeError, "one dtype"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(attn_mask=z(3, 5, dtype=kg.float64)), DTypeError, "attn_mask"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(attn_mask=z(3, 5, dtype=kg.int64)), DTypeError, "attn_mask"),
    ((z(2, 3, 4), z(2, 5, 4), np.zeros((2, 5, 4))), {}, TypeError, "Tensor"),
    ((z(2, 3, 4), z(2, 5, 4), z(2, 5, 4)), dict(scale="x"), TypeError, "scale"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_input(args, kwargs, error, match, device):
    """Shape and argument errors are ValueError and RuntimeError (PyTorch's type), dtype errors
    TypeError and RuntimeError; a non-Tensor argument is a plain TypeError."""
    def on_device(x):
        return x.to(device) if isinstance(x, kg.Tensor) else x

    with pytest.raises(error, match=match):
        sdpa(*map(on_device, args), **{key: on_device(x) for key, x in kwargs.items()})


def test_mask_requiring_grad_is_refused(device):
    def zd(*shape):
        return kg.zeros(*shape, device=device)

    q = zd(2, 3, 4)
    mask = zd(3, 5).requires_grad_()
    with pytest.raises(RuntimeError, match="attn_mask.detach"):
        sdpa(q, zd(2, 5, 4), zd(2, 5, 4), attn_mask=mask)
    with kg.no_grad():
        assert sdpa(q, zd(2, 5, 4), zd(2, 5, 4), attn_mask=mask).shape == (2, 3, 4)


def test_binding_rejects_bad_arrays():
    """The _C functions check their arguments too: clear errors, never a crash."""
    q = np.zeros((2, 3, 4), np.float32)
    k = v = np.zeros((2, 5, 4), np.float32)
    with pytest.raises(ValueError, match="one batch shape"):
        _C.attention_forward(q, k[:1], v[:1], None, False, 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="one dtype"):
        _C.attention_forward(q, k.astype(np.float64), v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="attn_mask of shape"):
        _C.attention_forward(q, k, v, np.ones((3, 5), bool), False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="is_causal"):
        _C.attention_forward(q, k, v, np.ones((2, 3, 5), bool), True, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="dropout_p"):
        _C.attention_forward(q, k, v, None, False, 1.0, 2.0, 0)
    out, lse = _C.attention_forward(q, k, v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="lse of shape"):
        _C.attention_backward(out, q, k, v, out, lse[:, :2], None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="grad_out"):
        _C.attention_backward(out[:, :2], q, k, v, out, lse, None, False, 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="NumPy array"):
        _C.attention_forward([1.0], k, v, None, False, 1.0, 0.0, 0)


# --- torch as an extra oracle ------------------------------------------------------------------

def test_matches_torch(device, rng):
    torch = pytest.importorskip("torch")
    cases = [
        dict(shapes=((2, 3, 37, 64), (2, 3, 50, 64), (2, 3, 50, 80))),
        dict(shapes=((2, 3, 37, 16), (2, 3, 50, 16), (2, 3, 50, 16)), is_causal=True),
        dict(shapes=((1, 2, 50, 32), (1, 2, 37, 32), (1, 2, 37, 32)), is_causal=True),
        dict(shapes=((2, 3, 9, 16), (2, 3, 12, 16), (2, 3, 12, 16)), mask=("bool", (2, 1, 9, 12)), scale=0.3),
        dict(shapes=((2, 3, 9, 16), (2, 3, 12, 16), (2, 3, 12, 16)), mask=("float", (9, 12))),
    ]
    for case in cases:
        arrays = [rng.standard_normal(s) for s in case["shapes"]]
        mask = None
        if "mask" in case:
            kind, shape = case["mask"]
            mask = rng.random(shape) < 0.7 if kind == "bool" else rng.standard_normal(shape)
            if kind == "bool":
                mask[..., 0] = True  # no fully masked rows: torch gives NaN there
        kw = dict(is_causal=case.get("is_causal", False), scale=case.get("scale"))
        ours = tensors(arrays, device)
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        o = sdpa(*ours, attn_mask=None if mask is None else kg.tensor(mask, device=device), **kw)
        t = torch.nn.functional.scaled_dot_product_attention(
            *theirs, attn_mask=None if mask is None else torch.tensor(mask), **kw)
        np.testing.assert_allclose(npy(o), t.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(o.shape)
        o.backward(kg.tensor(g, device=device))
        t.backward(torch.tensor(g))
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- CUDA: the kernels of csrc/cuda/attention.cu (32 x 32 tiles, head dims in chunks of 128
# columns in float32 and 64 in float64) ------------------------------------------------------------

cuda_only = pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator")


@cuda_only
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("options", [{}, {"is_causal": True}, {"mask": "bool"}, {"mask": "float"}], ids=str)
def test_cuda_dropout_drops_what_the_cpu_drops(dtype, tol, options, rng):
    """One seed gives one dropout mask on both devices (the hash of common/dropout_hash.h): outputs
    and gradients agree to rounding, where one weight dropped differently would move them by ~1/S."""
    q, k, v = qkv(rng, (2, 3), 37, 45, 20, 12, dtype=dtype)
    g = rng.standard_normal((2, 3, 37, 12)).astype(dtype)
    mask = None
    if options.get("mask") == "bool":
        mask = rng.random((3, 37, 45)) < 0.7
    elif options.get("mask") == "float":
        mask = rng.standard_normal((37, 45)).astype(dtype)
    results = []
    for device in ("cpu", "cuda"):
        for p in (0.35, 0.0):
            kg.manual_seed(123)  # the seed F draws for the dropout mask
            ts = tensors((q, k, v), device)
            out = sdpa(*ts, attn_mask=None if mask is None else kg.tensor(mask, device=device), dropout_p=p,
                       is_causal=options.get("is_causal", False))
            out.backward(kg.tensor(g, device=device))
            results.append([npy(out)] + [npy(t.grad) for t in ts])
    cpu, cpu_no_dropout, cuda, _ = results
    assert not np.allclose(cpu[0], cpu_no_dropout[0], rtol=0.01, atol=0.01)  # dropout did drop weights
    for a, b in zip(cpu, cuda):
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


@cuda_only
@pytest.mark.parametrize("L, S, E, Ev, is_causal", [
    (1, 1, 1, 1, False), (31, 32, 3, 5, False), (32, 33, 33, 31, True), (33, 31, 17, 64, True),
    (65, 64, 31, 33, False), (64, 65, 8, 8, True), (40, 7, 5, 3, True), (7, 40, 5, 3, True),
], ids=str)
def test_cuda_sizes_around_the_tile(L, S, E, Ev, is_causal, rng):
    """L and S one below, at and one above multiples of the 32-row tiles, head dims that are not
    multiples of 4 or 32, Ev != E; causal with L > S and L < S (top-left aligned)."""
    check_vs_reference(*qkv(rng, (2,), L, S, E, Ev), "cuda", is_causal=is_causal)


@cuda_only
@pytest.mark.parametrize("dtype, E, Ev", [
    (np.float32, 128, 128), (np.float32, 129, 7), (np.float32, 16, 200),
    (np.float64, 64, 64), (np.float64, 65, 20), (np.float64, 20, 130),
], ids=str)
def test_cuda_head_dims_and_column_chunks(dtype, E, Ev, rng):
    """A block accumulates at most 128 output columns in float32 (64 in float64); larger head dims
    take more blocks, each recomputing the scores. E = 128 is one chunk, 129 two; dK and dV share
    their chunks, so E and Ev differing by much leaves some chunks without dK or dV columns."""
    tol = TOL32 if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    check_vs_reference(*qkv(rng, (2,), 3, 5, E, Ev, dtype=dtype), "cuda", tol=tol)
    check_vs_reference(*qkv(rng, (1,), 33, 2, E, Ev, dtype=dtype), "cuda", tol=tol, is_causal=True)


@cuda_only
def test_cuda_strided_operands(rng):
    """The kernels read q, k, v, the mask and grad_out through their strides: q transposed (column
    stride L), k every other row, v broadcast over the batch (stride 0), a transposed mask."""
    Bt, L, S, E, Ev = 2, 19, 23, 12, 10
    qb = rng.standard_normal((Bt, E, L)).astype(np.float32)
    kb = rng.standard_normal((Bt, 2 * S, E)).astype(np.float32)
    vb = rng.standard_normal((S, Ev)).astype(np.float32)
    mask = rng.random((S, L)) < 0.8
    q, k, v = np.swapaxes(qb, 1, 2), kb[:, ::2], np.broadcast_to(vb, (Bt, S, Ev))
    tq, tk, tv = tensors((qb, kb, vb), "cuda")
    out = sdpa(tq.transpose(1, 2), tk[:, ::2], tv, attn_mask=kg.tensor(mask, device="cuda").transpose(0, 1))
    np.testing.assert_allclose(npy(out), R.scaled_dot_product_attention(q, k, v, attn_mask=mask.T), **TOL32)
    g = rng.standard_normal((Bt, Ev, L)).astype(np.float32)  # grad_out, read through a transpose too
    out.backward(kg.tensor(g, device="cuda").transpose(1, 2))
    dq, dk, dv = R.scaled_dot_product_attention_backward(np.swapaxes(g, 1, 2), q, k, v, attn_mask=mask.T)
    np.testing.assert_allclose(npy(tq.grad), np.swapaxes(dq, 1, 2), **TOL32)
    np.testing.assert_allclose(npy(tk.grad)[:, ::2], dk, **TOL32)
    np.testing.assert_array_equal(npy(tk.grad)[:, 1::2], 0)
    np.testing.assert_allclose(npy(tv.grad), dv.sum(0), **TOL32)


@cuda_only
def test_cuda_batch_dims_of_size_one_do_not_count(rng):
    """The kernels index up to 8 batch dims; dims of size 1 are dropped first, so a call with more
    dims works as long as at most 8 are larger than 1 (more are refused with a clear error)."""
    batch = (2, 1, 1, 3, 1, 1, 1, 1, 1, 1)
    check_vs_reference(*qkv(rng, batch, 5, 6, 4), "cuda")
    from kernelgrad.backend import cuda as C

    q = C.zeros((2,) * 9 + (2, 2), np.float32)
    with pytest.raises(ValueError, match="more than 8 batch dims"):
        C.attention_forward(q, q, q, None, False, 1.0, 0.0, 0)


@cuda_only
def test_cuda_results_do_not_depend_on_the_schedule(rng):
    """No atomics: every output and gradient element is summed by one thread in a fixed order, so
    two runs agree bit for bit; under the emulator also when the threads run in reverse or a random
    order (a missing barrier would show)."""
    q, k, v = qkv(rng, (2,), 37, 45, 20, 12)
    g = kg.tensor(rng.standard_normal((2, 37, 12)).astype(np.float32), device="cuda")

    def run():
        kg.manual_seed(7)
        ts = tensors((q, k, v), "cuda")
        out = sdpa(*ts, is_causal=True, dropout_p=0.2)
        out.backward(g)
        return [npy(out)] + [npy(t.grad) for t in ts]

    first = run()
    if not kg.cuda.is_emulated():
        for a, b in zip(first, run()):
            np.testing.assert_array_equal(a, b)
        return
    emu = importlib.import_module("kernelgrad._cuda_emu")
    previous = emu.get_schedule()
    try:
        for schedule in ("reverse", "random:1234"):
            emu.set_schedule(schedule)
            for a, b in zip(first, run()):
                np.testing.assert_array_equal(a, b)
    finally:
        emu.set_schedule(previous)


@cuda_only
def test_cuda_backend_rejects_bad_arrays():
    """The CUDA backend checks what the CPU binding checks, with its messages, and its binding checks
    the raw call again: clear errors, never a crash."""
    from kernelgrad.backend import cuda as C

    q = C.zeros((2, 3, 4), np.float32)
    k = v = C.zeros((2, 5, 4), np.float32)
    with pytest.raises(ValueError, match="broadcast"):
        C.attention_forward(q, C.zeros((3, 5, 4), np.float32), v, None, False, 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="one dtype"):
        C.attention_forward(q, C.astype(k, np.float64), v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match=r"k.shape\[-1\] == q.shape\[-1\]"):
        C.attention_forward(q, C.zeros((2, 5, 3), np.float32), v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="broadcast"):
        C.attention_forward(q, k, v, C.zeros((4, 5), np.bool_), False, 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="attn_mask"):
        C.attention_forward(q, k, v, C.zeros((3, 5), np.int64), False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="is_causal"):
        C.attention_forward(q, k, v, C.zeros((2, 3, 5), np.bool_), True, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="dropout_p"):
        C.attention_forward(q, k, v, None, False, 1.0, 2.0, 0)
    out, lse = C.attention_forward(q, k, v, None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="lse of shape"):
        C.attention_backward(out, q, k, v, out, lse[:, :2], None, False, 1.0, 0.0, 0)
    with pytest.raises(ValueError, match="grad_out"):
        C.attention_backward(out[:, :2], q, k, v, out, lse, None, False, 1.0, 0.0, 0)
    with pytest.raises(TypeError, match="CUDA array"):
        C.attention_forward(np.zeros((2, 3, 4), np.float32), k, v, None, False, 1.0, 0.0, 0)
    m = C._m  # the binding itself: a wrong dtype code, stride count or size
    with pytest.raises(TypeError, match="float32 or float64"):
        m.attention_forward(0, 0, m.AttentionCall(1, 0, 0, 0, [], [], [], 0, False, [], False, 1.0, 0.0, 0, [],
                                                  1, 1, 1, 1))
    with pytest.raises(ValueError, match="strides of q"):
        m.attention_forward(0, 0, m.AttentionCall(3, 0, 0, 0, [], [], [], 0, False, [], False, 1.0, 0.0, 0, [],
                                                  1, 1, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        m.attention_forward(0, 0, m.AttentionCall(3, 0, 0, 0, [1, 1], [1, 1], [1, 1], 0, False, [], False, 1.0, 0.0,
                                                  0, [], -1, 1, 1, 1))
