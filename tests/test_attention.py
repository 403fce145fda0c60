"""F.scaled_dot_product_attention: the fused kernel against kg.reference (float32, forward and
backward), gradcheck in float64, every mask kind, causal with L != S, fully masked rows, dropout
(statistics and the same mask in backward), non-contiguous and broadcast inputs, bad input, and
torch as an extra oracle. The memory bound (no L x S matrix) is in test_attention_memory.py.

float32 tolerances: a score s = scale * q.k sums E products (error ~ sqrt(E) eps |s|), the softmax
turns an error ds into a relative error ds in the weights, and out / the gradients sum S weighted
terms of O(1) values. With E <= 128, S <= 130 and standard-normal inputs the float64 truth is
matched to a few 1e-6; we allow atol = rtol = 2e-5 (about 160 eps), well below the size of one
wrong term (~1 / S).
"""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import _C
from kernelgrad import reference as R
from kernelgrad._errors import ArgumentError, DTypeError, ShapeError
from kernelgrad.backend import cpu as backend

gradcheck = kg.autograd.gradcheck
sdpa = F.scaled_dot_product_attention
TOL32 = dict(rtol=2e-5, atol=2e-5)


def npy(t):
    return t.detach().numpy()


def tensors(arrays, requires_grad=True):
    return [kg.tensor(a, requires_grad=requires_grad) for a in arrays]


def qkv(rng, batch, L, S, E, Ev=None, dtype=np.float32):
    Ev = E if Ev is None else Ev
    return [rng.standard_normal(batch + shape).astype(dtype) for shape in ((L, E), (S, E), (S, Ev))]


def check_vs_reference(q, k, v, tol=TOL32, **kw):
    """Forward and backward of F against kg.reference for numpy inputs q, k, v (and mask/options)."""
    mask = kw.pop("attn_mask", None)
    tq, tk, tv = tensors((q, k, v))
    tm = None if mask is None else kg.tensor(mask)
    out = sdpa(tq, tk, tv, attn_mask=tm, **kw)
    expected = R.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
    assert out.shape == expected.shape and out.dtype == tq.dtype
    np.testing.assert_allclose(npy(out), expected, **tol)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(q.dtype)
    out.backward(kg.tensor(g))
    for t, ref in zip((tq, tk, tv), R.scaled_dot_product_attention_backward(g, q, k, v, attn_mask=mask, **kw)):
        assert t.grad.shape == t.shape
        np.testing.assert_allclose(npy(t.grad), ref, **tol)
    return npy(out), [npy(t.grad) for t in (tq, tk, tv)]


# --- shapes against the reference (float32) --------------------------------------------------

@pytest.mark.parametrize("E", [16, 32, 64, 80, 128])
@pytest.mark.parametrize("L, S", [(37, 50), (1, 9), (130, 70)], ids=lambda v: str(v))
def test_forward_backward_vs_reference(E, L, S, rng):
    check_vs_reference(*qkv(rng, (2, 3), L, S, E))


@pytest.mark.parametrize("E, Ev", [(24, 40), (256, 256), (300, 8)], ids=str)
def test_value_dim_differs_and_large_head_dims(E, Ev, rng):
    check_vs_reference(*qkv(rng, (1, 2), 33, 65, E, Ev))


def test_batch_1_and_no_batch_dims(rng):
    check_vs_reference(*qkv(rng, (1,), 5, 7, 16))
    check_vs_reference(*qkv(rng, (), 129, 128, 32))  # plain (L, E) matrices; tile (128) + 1 row


def test_custom_scale(rng):
    check_vs_reference(*qkv(rng, (2,), 20, 30, 16), scale=0.7)
    check_vs_reference(*qkv(rng, (2,), 20, 30, 16), scale=-1.5)


def test_float64_matches_reference_to_float64_accuracy(rng):
    q, k, v = qkv(rng, (2, 2), 70, 90, 32, dtype=np.float64)
    mask = rng.random((70, 90)) < 0.8
    check_vs_reference(q, k, v, tol=dict(rtol=1e-12, atol=1e-12), attn_mask=mask)


def test_non_contiguous_transposed_heads(rng):
    """(B, L, H, E) projections viewed as (B, H, L, E) by .transpose(1, 2): strided, no copy."""
    B, H, L, S, E = 2, 3, 37, 50, 16
    base = [rng.standard_normal((B, n, H, E)).astype(np.float32) for n in (L, S, S)]
    tq, tk, tv = tensors(base)
    out = sdpa(*(t.transpose(1, 2) for t in (tq, tk, tv)))
    q, k, v = (np.swapaxes(a, 1, 2) for a in base)
    np.testing.assert_allclose(npy(out), R.scaled_dot_product_attention(q, k, v), **TOL32)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(kg.tensor(g))
    for t, ref in zip((tq, tk, tv), R.scaled_dot_product_attention_backward(g, q, k, v)):
        np.testing.assert_allclose(npy(t.grad), np.swapaxes(ref, 1, 2), **TOL32)


def test_strided_and_broadcast_inputs_gradcheck(rng):
    q = kg.tensor(rng.standard_normal((2, 4, 6)), requires_grad=True)
    k = kg.tensor(rng.standard_normal((1, 5, 3)), requires_grad=True)   # batch 1 broadcast over 2
    v = kg.tensor(rng.standard_normal((5, 2)), requires_grad=True)      # no batch dims at all
    assert gradcheck(lambda q, k, v: sdpa(q[:, ::2, 1::2], k, v), (q, k, v))


def test_broadcast_key_value(rng):
    q, k, v = qkv(rng, (2, 4), 9, 11, 8)
    check_vs_reference(q, k[:1, :1], v[:, :1])


# --- masks ------------------------------------------------------------------------------------

MASK_SHAPES = [(2, 3, 37, 50), (37, 50), (2, 1, 37, 50), (1, 3, 1, 50), (50,)]


@pytest.mark.parametrize("shape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masks_vs_reference(kind, shape, rng):
    q, k, v = qkv(rng, (2, 3), 37, 50, 16)
    if kind == "bool":
        mask = rng.random(shape) < 0.7
    else:
        mask = (rng.standard_normal(shape) + np.where(rng.random(shape) < 0.2, -np.inf, 0)).astype(np.float32)
    check_vs_reference(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("kind, shape", [("bool", (2, 1, 150, 260)), ("float", (150, 260))], ids=str)
def test_masks_across_tiles(kind, shape, rng):
    """Masks read at tile offsets i0, j0 > 0 (tiles are 128 x 128)."""
    q, k, v = qkv(rng, (2, 2), 150, 260, 16)
    mask = rng.random(shape) < 0.5 if kind == "bool" else rng.standard_normal(shape).astype(np.float32)
    check_vs_reference(q, k, v, attn_mask=mask)


def test_broadcast_mask_is_not_materialised(rng):
    """A (L, S) mask reaches the kernel as a stride-0 view over (B, H)."""
    q, k, v = qkv(rng, (2, 3), 4, 6, 8)
    mask = np.broadcast_to(rng.random((4, 6)) < 0.5, (2, 3, 4, 6))
    assert mask.strides[:2] == (0, 0)
    out, _ = backend.attention_forward(q, k, v, mask, False, 0.5, 0.0, 0)
    np.testing.assert_allclose(out, R.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.5), **TOL32)


@pytest.mark.parametrize("L, S", [(37, 50), (50, 37), (1, 9), (130, 70), (70, 300), (256, 256)], ids=str)
def test_causal_vs_reference(L, S, rng):
    check_vs_reference(*qkv(rng, (2, 2), L, S, 32), is_causal=True)


def test_causal_equals_explicit_lower_triangular_mask(rng):
    q, k, v = qkv(rng, (2,), 70, 90, 16)
    tril = np.tril(np.ones((70, 90), dtype=bool))
    a, ga = check_vs_reference(q, k, v, is_causal=True)
    b, gb = check_vs_reference(q, k, v, attn_mask=tril)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_masks_gradcheck(rng):
    q, k, v = (kg.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    keep = kg.tensor(rng.random((3, 5)) < 0.6)
    keep[:, 0] = True
    add = kg.tensor(rng.standard_normal((2, 1, 5)))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=keep), (q, k, v))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=add), (q, k, v))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=True, scale=0.3), (q, k, v))
    qq = kg.tensor(rng.standard_normal((2, 7, 4)), requires_grad=True)
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, is_causal=True), (qq, k, v))  # L > S


# --- fully masked rows -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bool", "float -inf"])
def test_fully_masked_rows_give_zeros_and_zero_grads(kind, rng):
    q, k, v = qkv(rng, (2,), 140, 150, 16)
    keep = rng.random((2, 140, 150)) < 0.5
    keep[0, 3] = keep[1, 135] = False  # rows in the first and the second query tile (128 rows)
    mask = keep if kind == "bool" else np.where(keep, 0.0, -np.inf).astype(np.float32)
    out, (gq, gk, gv) = check_vs_reference(q, k, v, attn_mask=mask)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(gq)) and np.all(np.isfinite(gk))
    np.testing.assert_array_equal(out[0, 3], 0)
    np.testing.assert_array_equal(out[1, 135], 0)
    np.testing.assert_array_equal(gq[0, 3], 0)
    np.testing.assert_array_equal(gq[1, 135], 0)


def test_fully_masked_rows_gradcheck(rng):
    keep = kg.tensor(np.array([[True, False, True], [False, False, False]]))
    q, k, v = (kg.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 2, 3), (2, 3, 3), (2, 3, 2)))
    assert gradcheck(lambda q, k, v: sdpa(q, k, v, attn_mask=keep), (q, k, v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_scores_propagate_not_masked(dtype, rng):
    """A row of NaN scores is NaN (as in PyTorch), not taken for a fully masked row."""
    q, k, v = qkv(rng, (2,), 140, 150, 16, dtype=dtype)
    q[0, 3, 1] = q[1, 135, 0] = np.nan  # whole score rows
    k[1, 7, 2] = np.nan                  # one score column of every row of batch 1
    out = npy(sdpa(*tensors((q, k, v), requires_grad=False)))
    assert np.isnan(out[0, 3]).all() and np.isnan(out[1]).all()
    assert np.isfinite(np.delete(out[0], 3, axis=0)).all()


def test_no_keys_at_all(rng):
    q, k, v = (kg.tensor(a, requires_grad=True) for a in qkv(rng, (2,), 3, 0, 4))
    out = sdpa(q, k, v)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(npy(out), 0)
    out.sum().backward()
    np.testing.assert_array_equal(npy(q.grad), 0)


# --- dropout ------------------------------------------------------------------------------------

def test_dropout_mask_matches_reference_exactly(rng):
    """The kernel's counter-based mask is the reference's: same seed, same kept weights."""
    q, k, v = qkv(rng, (2, 3), 150, 260, 16, dtype=np.float64)  # several tiles
    seed, p = 2**63 + 12345, 0.3
    out, lse = backend.attention_forward(q, k, v, None, False, 0.25, p, seed)
    np.testing.assert_allclose(out, R.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=0.25, seed=seed),
                               rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    grads = backend.attention_backward(g, q, k, v, out, lse, None, False, 0.25, p, seed)
    refs = R.scaled_dot_product_attention_backward(g, q, k, v, dropout_p=p, scale=0.25, seed=seed)
    for got, ref in zip(grads, refs):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics(p):
    """q = k = 0 gives uniform weights 1/S; v = 1 makes out[i] = (kept keys of row i) / ((1-p) S):
    the survivors are scaled by 1/(1-p) and the keep rate is 1 - p."""
    L, S = 256, 256
    q, k = kg.zeros(2, L, 8), kg.zeros(2, S, 8)
    out = npy(sdpa(q, k, kg.ones(2, S, 1), dropout_p=p))[..., 0]
    kept = out * (1 - p) * S
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-3)  # whole numbers of survivors
    n = kept.size * S
    assert abs(kept.sum() / n - (1 - p)) < 4 * np.sqrt(p * (1 - p) / n)  # 4 standard deviations
    assert abs(out.mean() - 1) < 0.02                                      # unbiased


def test_dropout_p1_gives_zeros_and_p0_is_exact(rng):
    q, k, v = tensors(qkv(rng, (2,), 5, 6, 4), requires_grad=False)
    np.testing.assert_array_equal(npy(sdpa(q, k, v, dropout_p=1.0)), 0)
    np.testing.assert_array_equal(npy(sdpa(q, k, v, dropout_p=0.0)), npy(sdpa(q, k, v)))


def test_dropout_seed_from_kg_generator(rng):
    q, k, v = tensors(qkv(rng, (2,), 30, 40, 8), requires_grad=False)
    kg.manual_seed(5)
    a, b = npy(sdpa(q, k, v, dropout_p=0.5)), npy(sdpa(q, k, v, dropout_p=0.5))
    assert not np.array_equal(a, b)  # a new mask per call
    kg.manual_seed(5)
    np.testing.assert_array_equal(npy(sdpa(q, k, v, dropout_p=0.5)), a)  # reproducible


def test_dropout_gradcheck_fixed_seed(rng):
    """Backward regenerates forward's mask: gradcheck agrees when every forward uses one seed."""
    def f(q, k, v):
        kg.manual_seed(11)
        return sdpa(q, k, v, dropout_p=0.4, attn_mask=mask)

    mask = kg.tensor(rng.random((3, 5)) < 0.8)
    q, k, v = (kg.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    assert gradcheck(f, (q, k, v))


# --- threads and micro-kernels give the same results ------------------------------------------------

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
def test_bad_input(args, kwargs, error, match):
    """Shape and argument errors are ValueError and RuntimeError (PyTorch's type), dtype errors
    TypeError and RuntimeError; a non-Tensor argument is a plain TypeError."""
    with pytest.raises(error, match=match):
        sdpa(*args, **kwargs)


def test_mask_requiring_grad_is_refused():
    q = z(2, 3, 4)
    mask = z(3, 5).requires_grad_()
    with pytest.raises(RuntimeError, match="attn_mask.detach"):
        sdpa(q, z(2, 5, 4), z(2, 5, 4), attn_mask=mask)
    with kg.no_grad():
        assert sdpa(q, z(2, 5, 4), z(2, 5, 4), attn_mask=mask).shape == (2, 3, 4)


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

def test_matches_torch(rng):
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
        ours = [kg.tensor(a, requires_grad=True) for a in arrays]
        theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
        o = sdpa(*ours, attn_mask=None if mask is None else kg.tensor(mask), **kw)
        t = torch.nn.functional.scaled_dot_product_attention(
            *theirs, attn_mask=None if mask is None else torch.tensor(mask), **kw)
        np.testing.assert_allclose(npy(o), t.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(o.shape)
        o.backward(kg.tensor(g))
        t.backward(torch.tensor(g))
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(npy(a.grad), b.grad.numpy(), rtol=1e-10, atol=1e-12)
