"""The public matmul API: kg.matmul, kg.bmm, F.linear and the @ operator, against NumPy and
kg.reference (forward and backward), with gradcheck in float64 and bad-input checks."""

import re

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F

gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def assert_close_gemm(got, expected, k):
    """float32 GEMM tolerance: each output sums k products of O(1) values; rounding error grows
    like eps * k in the worst case (~sqrt(k) typically), so atol scales with k."""
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-6 * max(k, 1))


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# --- shapes: 1-D, 2-D, batched, broadcasting ----------------------------------------------------

SHAPES = [
    ((4,), (4,)),              # dot -> 0-d
    ((3, 4), (4,)),            # matrix @ vector
    ((4,), (4, 5)),            # vector @ matrix
    ((3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)),    # batched
    ((2, 3, 4), (4, 5)),       # batch @ matrix
    ((3, 4), (2, 4, 5)),       # matrix @ batch
    ((2, 1, 3, 4), (1, 5, 4, 6)),  # broadcast batch dims
    ((4,), (2, 4, 5)),         # vector @ batch
    ((2, 3, 4), (4,)),         # batch @ vector
    ((1, 4), (4, 1)),
]


@pytest.mark.parametrize("sa, sb", SHAPES, ids=str)
def test_matmul_shapes_forward(sa, sb, device, rng):
    a, b = randn(rng, *sa), randn(rng, *sb)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    ta, tb = kg.tensor(a, device=device), kg.tensor(b, device=device)
    for out in (kg.matmul(ta, tb), ta @ tb):
        assert out.shape == expected.shape
        assert out.dtype == kg.float32
        assert_close_gemm(npy(out), expected, sa[-1])


@pytest.mark.parametrize("sa, sb", SHAPES, ids=str)
def test_matmul_shapes_gradcheck(sa, sb, rng):
    a = f64(rng.standard_normal(sa))
    b = f64(rng.standard_normal(sb))
    assert gradcheck(kg.matmul, (a, b))


@pytest.mark.parametrize("sa, sb", SHAPES, ids=str)
def test_matmul_shapes_backward_vs_numpy(sa, sb, rng):
    a_np, b_np = rng.standard_normal(sa), rng.standard_normal(sb)
    a, b = f64(a_np), f64(b_np)
    out = kg.matmul(a, b)
    g = rng.standard_normal(out.shape)
    out.backward(kg.tensor(g))
    # numpy: promote 1-D operands, compute, then reduce broadcast dims back to the operand shape
    a2 = a_np[None, :] if a_np.ndim == 1 else a_np
    b2 = b_np[:, None] if b_np.ndim == 1 else b_np
    g2 = np.asarray(g)
    if a_np.ndim == 1 and b_np.ndim == 1:
        g2 = g2.reshape(1, 1)
    elif a_np.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    elif b_np.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    ga = g2 @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g2

    def reduce_to(grad, shape):
        while grad.ndim > len(shape):
            grad = grad.sum(0)
        for i, s in enumerate(shape):
            if s == 1 and grad.shape[i] != 1:
                grad = grad.sum(i, keepdims=True)
        return grad

    ga = reduce_to(ga, a2.shape).reshape(sa)
    gb = reduce_to(gb, b2.shape).reshape(sb)
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(npy(a.grad), ga, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(b.grad), gb, rtol=1e-10, atol=1e-12)


def test_matmul_known_values(device):
    a = kg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    b = kg.tensor([[5.0, 6.0], [7.0, 8.0]], device=device)
    np.testing.assert_array_equal(npy(a @ b), [[19.0, 22.0], [43.0, 50.0]])
    d = kg.tensor([1.0, 2.0, 3.0], device=device) @ kg.tensor([4.0, 5.0, 6.0], device=device)
    assert d.shape == () and d.item() == 32.0


# --- edge sizes against kg.reference --------------------------------------------------------

# sizes straddling register-tile / cache-block edges (1, 7, 17, 63, 65, 127, 129, 1000), mixed so
# every size appears as M, K and N somewhere without running all 512 triples
EDGE_MKN = [
    (1, 1, 1),
    (7, 17, 63),
    (17, 63, 7),
    (63, 7, 17),
    (65, 127, 129),
    (127, 129, 65),
    (129, 65, 127),
    (1000, 7, 1),
    (1, 1000, 17),
    (7, 1, 1000),
    (129, 1000, 65),
    (1000, 65, 129),
]


@pytest.mark.parametrize("m, k, n", EDGE_MKN, ids=lambda v: str(v))
def test_matmul_edge_sizes_vs_reference(m, k, n, rng):
    a, b = randn(rng, m, k), randn(rng, k, n)
    out = npy(kg.matmul(kg.tensor(a), kg.tensor(b)))
    ref = np.asarray(kg.reference.matmul(a, b))
    assert out.shape == (m, n) and ref.shape == (m, n)
    assert_close_gemm(out, ref, k)
    assert_close_gemm(out, a.astype(np.float64) @ b.astype(np.float64), k)


@pytest.mark.parametrize("m, k, n", [(7, 17, 63), (65, 127, 129), (1, 1000, 17), (129, 65, 1)],
                         ids=lambda v: str(v))
def test_matmul_edge_sizes_backward_vs_reference(m, k, n, device, rng):
    a, b = randn(rng, m, k), randn(rng, k, n)
    g = randn(rng, m, n)
    ta = kg.tensor(a, device=device, requires_grad=True)
    tb = kg.tensor(b, device=device, requires_grad=True)
    kg.matmul(ta, tb).backward(kg.tensor(g, device=device))
    ga, gb = kg.reference.matmul_backward(g, a, b)
    assert ta.grad.shape == (m, k) and tb.grad.shape == (k, n)
    assert_close_gemm(npy(ta.grad), np.asarray(ga), n)   # dA = dC B^T sums over n
    assert_close_gemm(npy(tb.grad), np.asarray(gb), m)   # dB = A^T dC sums over m
    assert_close_gemm(np.asarray(ga), g.astype(np.float64) @ b.T.astype(np.float64), n)
    assert_close_gemm(np.asarray(gb), a.T.astype(np.float64) @ g.astype(np.float64), m)


def test_matmul_batched_edge_sizes(device, rng):
    a, b = randn(rng, 3, 17, 65), randn(rng, 3, 65, 7)
    out = npy(kg.matmul(kg.tensor(a, device=device), kg.tensor(b, device=device)))
    assert_close_gemm(out, a.astype(np.float64) @ b.astype(np.float64), 65)


def test_matmul_float64_is_float64_accurate(rng):
    a, b = rng.standard_normal((65, 129)), rng.standard_normal((129, 17))
    out = kg.matmul(kg.tensor(a), kg.tensor(b))
    assert out.dtype == kg.float64
    np.testing.assert_allclose(npy(out), a @ b, rtol=1e-12, atol=1e-12)


def test_matmul_empty_dims(device):
    out = kg.matmul(kg.zeros(0, 3, device=device), kg.zeros(3, 4, device=device))
    assert out.shape == (0, 4)
    # K = 0: the result is all zeros (an unwritten output would show NaN/garbage)
    out = kg.matmul(kg.ones(2, 0, device=device), kg.ones(0, 3, device=device))
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(npy(out), np.zeros((2, 3)))


# --- non-contiguous inputs --------------------------------------------------------------------

NONCONTIG = [
    ("a.T", lambda A, B: (A[:33, :17].T, B[:33, :9])),           # (17,33) @ (33,9)
    ("b.T", lambda A, B: (A[:20, :33], B[:9, :33].T)),
    ("both.T", lambda A, B: (A[:33, :20].T, B[:9, :33].T)),
    ("col_step", lambda A, B: (A[:20, ::2], B[:20, :7])),          # (20, 20) stride-2 columns
    ("row_step", lambda A, B: (A[::3, :20], B[:20, 1:8])),
    ("offset", lambda A, B: (A[5:25, 3:23], B[2:22, 4:15])),
]


@pytest.mark.parametrize("name, make", NONCONTIG, ids=[n[0] for n in NONCONTIG])
def test_matmul_non_contiguous(name, make, device, rng):
    A, B = randn(rng, 40, 40), randn(rng, 40, 40)
    ta, tb = make(kg.tensor(A, device=device), kg.tensor(B, device=device))
    na, nb = make(A, B)
    out = ta @ tb
    assert_close_gemm(npy(out), na.astype(np.float64) @ nb.astype(np.float64), na.shape[-1])


def test_matmul_non_contiguous_batched_and_grad(rng):
    base_a = rng.standard_normal((2, 5, 3))
    base_b = rng.standard_normal((2, 4, 5))
    a, b = f64(base_a), f64(base_b)
    out = a.mT @ b.mT          # (2,3,5) @ (2,5,4)
    np.testing.assert_allclose(npy(out), np.swapaxes(base_a, -1, -2) @ np.swapaxes(base_b, -1, -2),
                               rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda p, q: p.mT @ q[:, ::2].mT[:, ::2], (a, f64(rng.standard_normal((2, 4, 9)))))


# --- grad values against kg.reference (batched too) ------------------------------------------

def test_matmul_backward_vs_reference_float32(device, rng):
    a, b, g = randn(rng, 13, 7), randn(rng, 7, 11), randn(rng, 13, 11)
    ta = kg.tensor(a, device=device, requires_grad=True)
    tb = kg.tensor(b, device=device, requires_grad=True)
    (ta @ tb).backward(kg.tensor(g, device=device))
    ga, gb = kg.reference.matmul_backward(g, a, b)
    np.testing.assert_allclose(npy(ta.grad), ga, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(npy(tb.grad), gb, rtol=1e-5, atol=1e-5)


# --- bmm --------------------------------------------------------------------------------------

def test_bmm(device, rng):
    a, b = randn(rng, 3, 4, 5), randn(rng, 3, 5, 2)
    out = kg.bmm(kg.tensor(a, device=device), kg.tensor(b, device=device))
    assert out.shape == (3, 4, 2)
    assert_close_gemm(npy(out), a.astype(np.float64) @ b.astype(np.float64), 5)
    assert gradcheck(kg.bmm, (f64(a), f64(b)))


@pytest.mark.parametrize(
    "sa, sb",
    [((4, 5), (5, 2)),            # bmm wants 3-D operands, no broadcasting
     ((3, 4, 5), (2, 5, 2)),      # batch mismatch
     ((3, 4, 5), (3, 4, 2))],     # inner mismatch
    ids=str,
)
def test_bmm_bad_shapes(sa, sb):
    with pytest.raises((ValueError, RuntimeError)):
        kg.bmm(kg.zeros(*sa), kg.zeros(*sb))


# --- F.linear ---------------------------------------------------------------------------------

@pytest.mark.parametrize("xshape", [(5, 3), (2, 4, 3), (3,), (1, 3)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(xshape, bias, device, rng):
    x, w, b = randn(rng, *xshape), randn(rng, 4, 3), randn(rng, 4)
    out = F.linear(kg.tensor(x, device=device), kg.tensor(w, device=device),
                   kg.tensor(b, device=device) if bias else None)
    expected = x.astype(np.float64) @ w.T.astype(np.float64) + (b if bias else 0)
    assert out.shape == expected.shape
    assert_close_gemm(npy(out), expected, 3)


def test_linear_gradcheck(rng):
    x, w, b = (f64(rng.standard_normal(s)) for s in [(2, 5, 3), (4, 3), (4,)])
    assert gradcheck(F.linear, (x, w, b))
    assert gradcheck(lambda p, q: F.linear(p, q), (x, w))


def test_linear_bad_shapes():
    with pytest.raises((ValueError, RuntimeError)):
        F.linear(kg.zeros(5, 3), kg.zeros(4, 2))
    with pytest.raises((ValueError, RuntimeError)):
        F.linear(kg.zeros(5, 3), kg.zeros(4, 3), kg.zeros(5))


# --- bad input ----------------------------------------------------------------------------------

def test_matmul_inner_dim_mismatch_message():
    with pytest.raises((ValueError, RuntimeError)) as e:
        kg.matmul(kg.zeros(2, 3), kg.zeros(4, 5))
    msg = str(e.value)
    assert "3" in msg and "4" in msg, f"message should give both inner sizes: {msg}"
    with pytest.raises((ValueError, RuntimeError)):
        kg.zeros(2, 3) @ kg.zeros(2, 3)
    with pytest.raises((ValueError, RuntimeError)):
        kg.zeros(3) @ kg.zeros(4)


def test_matmul_batch_not_broadcastable():
    with pytest.raises((ValueError, RuntimeError)):
        kg.matmul(kg.zeros(2, 3, 4), kg.zeros(3, 4, 5))


def test_matmul_zero_dim_operand_raises():
    with pytest.raises((ValueError, RuntimeError)) as e:
        kg.matmul(kg.tensor(2.0), kg.zeros(3))
    assert re.search(r"1-?D|dimension|0-?d|scalar|ndim", str(e.value), re.I), str(e.value)
    with pytest.raises((ValueError, RuntimeError)):
        kg.zeros(3, 3) @ kg.tensor(1.0)


def test_matmul_dtype_mismatch_raises():
    with pytest.raises((TypeError, RuntimeError)):
        kg.matmul(kg.ones(2, 2, dtype=kg.int64), kg.ones(2, 2))
    with pytest.raises((TypeError, RuntimeError)):
        kg.ones(2, 2) @ kg.ones(2, 2, dtype=kg.float64)


def test_matmul_non_tensor_raises():
    with pytest.raises(TypeError):
        kg.matmul(kg.ones(2, 2), "x")


# --- optional extra oracle: torch -------------------------------------------------------------

def test_matmul_matches_torch(rng):
    torch = pytest.importorskip("torch")
    for sa, sb in SHAPES:
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        ka, kb = f64(a), f64(b)
        ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        ko, to = kg.matmul(ka, kb), torch.matmul(ta, tb)
        np.testing.assert_allclose(npy(ko), to.detach().numpy(), rtol=1e-12, atol=1e-12)
        ko.sum().backward()
        to.sum().backward()
        np.testing.assert_allclose(npy(ka.grad), ta.grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(npy(kb.grad), tb.grad.numpy(), rtol=1e-12, atol=1e-12)
