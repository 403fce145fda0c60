"""Direct tests of the softmax-family and normalisation kernels in kernelgrad._C (softmax,
log_softmax, cross-entropy, layer norm, batch norm and their backward) against kg.reference in
float64, with both implementations of the vec.h primitives (the plain "generic" loops and AVX2),
float32 and float64, odd sizes, both walks of softmax.cpp (contiguous rows, and blocks of positions
when the dim is not the last), and the bindings' argument checks.

Tolerances: the references run in float64 on the same inputs. float32 kernels: exp is within
1-2 ulp, x - max rounds to half an ulp of |x - max| (<= ~30 for these inputs: 2e-6 relative on
the exp), and a length-n sum adds about sqrt(n) eps relative (n <= 1000: 4e-6); so probabilities
and normalised values get rtol 2e-5 and an absolute floor of 1e-6 (values of order 1), sums over
rows (dweight, dbias) an absolute 1e-4 * sqrt(rows). float64 kernels: 1e-12 relative.
"""
import contextlib

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import _C
from kernelgrad import reference as ref

DTYPES = [np.float32, np.float64]


def tol(dtype, scale=1.0):
    return dict(rtol=2e-5, atol=1e-6 * scale) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13 * scale)


def randn(rng, shape, dtype, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


@contextlib.contextmanager
def vec_isa_forced(name):
    """_C._set_vec_isa(name) for the duration; then back to what it was (KERNELGRAD_ISA may say generic)."""
    before = _C.vec_isa()
    _C._set_vec_isa(name)
    try:
        yield
    finally:
        _C._set_vec_isa("generic" if before == "generic" else "auto")


@pytest.fixture(params=["auto", "generic"])
def isa(request):
    """Run with the vec.h primitives picked for this CPU (AVX2 here), then with the plain loops."""
    with vec_isa_forced(request.param):
        yield request.param


@pytest.fixture(params=[1, 2])
def threads(request):
    before = kg.get_num_threads()
    kg.set_num_threads(request.param)
    yield request.param
    kg.set_num_threads(before)


# --- softmax and log_softmax ---------------------------------------------------------------------

# (shape, dim): last-dim rows of odd lengths (vector width 8/4, 4 accumulators: 32/16), and
# non-last dims with inner = 3, 67, 130 (partial vectors), and a dim of 4096, whose blocks are
# narrower than inner = 70 (several blocks per outer index, the last one partial)
SOFTMAX_CASES = [((1, 1), 1), ((7, 17), 1), ((3, 1000), 1), ((5,), 0), ((2, 33), -1), ((4, 5, 67), 1),
                 ((2, 70, 3), 1), ((130, 3), 0), ((3, 130), 0), ((2, 3, 4, 5), 0), ((2, 3, 4, 5), 2),
                 ((2, 4096, 70), 1)]


@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_forward_backward(rng, isa, dtype, shape, dim):
    x, dy = randn(rng, shape, dtype), randn(rng, shape, dtype, 1.0)
    x64 = x.astype(np.float64)
    y, ly = _C.softmax(x, dim), _C.log_softmax(x, dim)
    assert y.dtype == dtype and y.shape == shape and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref.softmax(x64, dim), **tol(dtype))
    np.testing.assert_allclose(ly, ref.log_softmax(x64, dim), **tol(dtype, 10))  # |log p| up to ~60
    np.testing.assert_allclose(y.sum(axis=dim), 1, **tol(dtype))
    # backward from the kernels' own y (the autograd path), against the reference on that y
    dx = _C.softmax_backward(y, dy, dim)
    np.testing.assert_allclose(dx, ref.softmax_backward(y.astype(np.float64), dy, dim), **tol(dtype))
    ldx = _C.log_softmax_backward(ly, dy, dim)
    np.testing.assert_allclose(ldx, ref.log_softmax_backward(ly.astype(np.float64), dy, dim), **tol(dtype, 10))


def test_softmax_known_values(isa):
    np.testing.assert_allclose(
        _C.softmax(np.array([-5, -3, 0, 1, 10], np.float32), 0),
        [3.05849905e-07, 2.25994211e-06, 4.53921506e-05, 1.23388658e-04, 9.99828653e-01], rtol=1e-6)
    np.testing.assert_allclose(_C.softmax(np.array([3.0, 1.0, 2.0]), 0), [0.66524096, 0.09003057, 0.24472847],
                               rtol=1e-7)


def exp_of(y):
    """The kernel's exp seen through log_softmax_backward: with dy = (0, ..., 0, 1),
    dx = dy - exp(y) sum(dy) is -exp(y) everywhere but the last element."""
    y1 = np.append(y, 0).astype(y.dtype)
    dy = np.zeros_like(y1)
    dy[-1] = 1
    return -_C.log_softmax_backward(y1, dy, 0)[:-1]


@pytest.mark.parametrize("dtype, lo, hi", [(np.float32, -110, 92), (np.float64, -760, 712)], ids=["float32", "float64"])
def test_exp_accuracy_and_special_values(isa, dtype, lo, hi):
    x = np.linspace(lo, hi, 100_003).astype(dtype)
    with np.errstate(over="ignore"):
        expected = np.exp(x.astype(np.float64)).astype(dtype)  # correctly rounded to within 1 ulp
    got = exp_of(x)
    normal = np.isfinite(expected) & (expected >= np.finfo(dtype).tiny)
    ulps = np.abs(got[normal] - expected[normal]) / np.spacing(expected[normal])
    assert ulps.max() <= 2, f"exp off by {ulps.max()} ulp"
    # below the smallest normal: denormals or 0, within one denormal step; above the largest: inf
    small = np.isfinite(expected) & ~normal
    assert np.abs(got[small] - expected[small]).max() <= np.finfo(dtype).smallest_subnormal
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    special = exp_of(np.array([-np.inf, np.inf, np.nan, 0.0, -0.0], dtype))
    np.testing.assert_array_equal(special, [0.0, np.inf, np.nan, 1.0, 1.0])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_stability_and_infinities(isa, dtype):
    x = np.array([[1e4, 0, -1e4], [1e4, 1e4 + 1, 1e4 - 1]], dtype)
    y, ly = _C.softmax(x, 1), _C.log_softmax(x, 1)
    assert np.isfinite(y).all() and np.isfinite(ly).all()
    np.testing.assert_allclose(ly, ref.log_softmax(x.astype(np.float64), 1), rtol=1e-6, atol=1e-3)
    # a -inf entry gets probability 0 (log -inf); a row of only -inf (or with +inf or nan) is nan, as in torch
    inf = np.inf
    x = np.array([[-inf, 1, 2], [-inf, -inf, -inf], [inf, 1, 2], [np.nan, 1, 2]], dtype)
    for dim_last in (x, np.ascontiguousarray(x.T)):  # rows, and the column walk (dim 0)
        dim = 1 if dim_last is x else 0
        y, ly = _C.softmax(dim_last, dim), _C.log_softmax(dim_last, dim)
        if dim == 0:
            y, ly = y.T, ly.T
        np.testing.assert_allclose(y[0], ref.softmax(np.array([-inf, 1, 2]), 0), rtol=1e-6)
        assert ly[0, 0] == -inf and np.isnan(y[1:]).all() and np.isnan(ly[1:]).all()


def test_softmax_empty_and_0d(isa):
    for shape, dim in [((0, 5), 1), ((5, 0), 1), ((0, 3, 4), 1), ((2, 0, 3), 1)]:
        x = np.zeros(shape, np.float32)
        assert _C.softmax(x, dim).shape == shape
        assert _C.softmax_backward(x, x, dim).shape == shape
    y = _C.softmax(np.array(3.0), 0)
    assert y.shape == () and y == 1.0
    assert _C.log_softmax(np.array(3.0), -1) == 0.0


def test_softmax_threads_give_identical_rows(rng, threads):
    x = randn(rng, (300, 257), np.float32)
    y1 = _C.softmax(x, 1)
    np.testing.assert_array_equal(y1, _C.softmax(x.copy(), 1))
    assert kg.get_num_threads() == threads


def test_softmax_reads_any_layout(rng):
    base = randn(rng, (40, 50), np.float32)
    for view, dim in [(base.T, 1), (base[::3, 1::2], 1), (base[::-1], 0), (np.broadcast_to(base[:1], (6, 50)), 1),
                      (base.astype(">f4"), 1)]:
        expected = ref.softmax(np.asarray(view, np.float64), dim)
        np.testing.assert_allclose(_C.softmax(view, dim), expected, **tol(np.float32))


# --- cross-entropy -------------------------------------------------------------------------------

CE_SHAPES = [(1, 1), (7, 5), (13, 1000), (4, 3, 5), (2, 7, 67), (3, 4, 2, 3), (1, 4096, 70)]


def ce_case(rng, shape, dtype, ignore=True):
    x = randn(rng, shape, dtype)
    C = shape[1]
    target = rng.integers(0, C, (shape[0],) + shape[2:])
    if ignore and target.size > 1:
        target.reshape(-1)[1] = -100
    P = rng.uniform(0, 1, shape)
    P = (P / P.sum(axis=1, keepdims=True)).astype(dtype)
    weight = rng.uniform(0.5, 2.0, C).astype(dtype)
    return x, target, P, weight


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_kernels(rng, isa, dtype, shape, weighted, smoothing):
    x, target, P, weight = ce_case(rng, shape, dtype)
    w = weight if weighted else None
    x64, w64 = x.astype(np.float64), None if w is None else w.astype(np.float64)
    dloss = randn(rng, target.shape, dtype, 1.0)
    for t, forward, backward, extra in [
        (target, _C.cross_entropy, _C.cross_entropy_backward, (-100, smoothing)),
        (P, _C.cross_entropy_probs, _C.cross_entropy_probs_backward, (smoothing,)),
    ]:
        t_ref = t if t is target else t.astype(np.float64)
        loss, lse = forward(x, t, w, *extra)
        assert loss.shape == target.shape and loss.dtype == dtype
        np.testing.assert_allclose(lse, np.log(np.exp(x64).sum(axis=1)), **tol(dtype, 10))
        expected = ref.cross_entropy(x64, t_ref, w64, reduction="none", label_smoothing=smoothing)
        np.testing.assert_allclose(loss, expected, **tol(dtype, 10))  # losses of order 10
        dx = backward(dloss, x, lse, t, w, *extra)
        expected = ref.cross_entropy_backward(dloss.astype(np.float64), x64, t_ref, w64, reduction="none",
                                              label_smoothing=smoothing)
        np.testing.assert_allclose(dx, expected, **tol(dtype))


def test_cross_entropy_ignored_and_infinite_logits(isa):
    x = np.array([[0.0, -np.inf, 1.0], [np.inf, 0, 0], [2.0, 1.0, 0.0]], np.float32)
    target = np.array([2, -100, 0])
    loss, lse = _C.cross_entropy(x, target, None, -100, 0.0)
    np.testing.assert_allclose(loss, [np.log1p(np.exp(-1.0)), 0.0, np.log(1 + np.exp(-1) + np.exp(-2))], rtol=1e-6)
    dx = _C.cross_entropy_backward(np.ones(3, np.float32), x, lse, target, None, -100, 0.0)
    np.testing.assert_array_equal(dx[1], 0)  # ignored: no gradient, even with an inf logit (nan probabilities)
    assert dx[0, 1] == 0 and np.isfinite(dx).all()
    # the same through the column walk (classes not last)
    xc = np.ascontiguousarray(x.T)[None]  # (1, C, N)
    loss_c, lse_c = _C.cross_entropy(xc, target[None], None, -100, 0.0)
    np.testing.assert_allclose(loss_c[0], loss, rtol=1e-6)
    dxc = _C.cross_entropy_backward(np.ones((1, 3), np.float32), xc, lse_c, target[None], None, -100, 0.0)
    np.testing.assert_allclose(dxc[0].T, dx, rtol=1e-6, atol=1e-7)


def test_cross_entropy_all_ignored_and_empty(isa):
    x = np.zeros((2, 3), np.float64)
    loss, lse = _C.cross_entropy(x, np.array([-1, -1]), None, -1, 0.3)
    np.testing.assert_array_equal(loss, 0)
    np.testing.assert_array_equal(_C.cross_entropy_backward(np.ones(2), x, lse, np.array([-1, -1]), None, -1, 0.3), 0)
    loss, lse = _C.cross_entropy(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), None, -100, 0.0)
    assert loss.shape == (0,)
    loss, _ = _C.cross_entropy(np.zeros((2, 0), np.float32), np.array([-100, -100]), None, -100, 0.0)
    np.testing.assert_array_equal(loss, 0)


# --- layer norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, k", [((1, 1), 1), ((5, 7), 1), ((3, 17), 1), ((9, 1000), 1), ((2, 3, 5), 2),
                                      ((4, 2, 3, 33), 1), ((6,), 1)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm_kernels(rng, isa, dtype, shape, k, affine):
    norm_shape = shape[len(shape) - k:]
    x = (randn(rng, shape, dtype) + 5).astype(dtype)  # a mean far from 0: the centred sums matter
    dy = randn(rng, shape, dtype, 1.0)
    w = randn(rng, norm_shape, dtype, 1.0) if affine != "none" else None
    b = randn(rng, norm_shape, dtype, 1.0) if affine == "both" else None
    y, mean, rstd = _C.layer_norm(x, k, w, b, 1e-5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, ref.layer_norm(x64, norm_shape, w, b, 1e-5), **tol(dtype, 10))
    assert mean.shape == rstd.shape == shape[:len(shape) - k]
    dx, dw, db = _C.layer_norm_backward(dy, x, mean, rstd, w, k, True, True)
    e_dx, e_dw, e_db = ref.layer_norm_backward(dy.astype(np.float64), x64, norm_shape, w, 1e-5)
    rows = max(x.size // max(np.prod(norm_shape), 1), 1)
    np.testing.assert_allclose(dx, e_dx, **tol(dtype, 10))
    np.testing.assert_allclose(dw, e_dw, **tol(dtype, 100 * np.sqrt(rows)))
    np.testing.assert_allclose(db, e_db, **tol(dtype, 100 * np.sqrt(rows)))
    _, no_dw, no_db = _C.layer_norm_backward(dy, x, mean, rstd, w, k, False, False)
    assert no_dw is None and no_db is None


def test_layer_norm_threads_and_empty(rng, threads):
    x, dy = randn(rng, (100, 300), np.float32), randn(rng, (100, 300), np.float32)
    y, mean, rstd = _C.layer_norm(x, 1, None, None, 1e-5)
    dx, dw, db = _C.layer_norm_backward(dy, x, mean, rstd, None, 1, True, True)
    e_dx, e_dw, e_db = ref.layer_norm_backward(dy.astype(np.float64), x.astype(np.float64), (300,))
    np.testing.assert_allclose(dw, e_dw, rtol=2e-5, atol=1e-3)  # per-thread partial sums, then combined
    np.testing.assert_allclose(db, e_db, rtol=2e-5, atol=1e-3)
    y, mean, rstd = _C.layer_norm(np.zeros((0, 4), np.float32), 1, None, None, 1e-5)
    assert y.shape == (0, 4) and mean.shape == (0,)
    _, dw, _ = _C.layer_norm_backward(y, y, mean, rstd, None, 1, True, True)
    np.testing.assert_array_equal(dw, 0)


# --- batch norm ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 1), (7, 3), (4, 5, 17), (3, 4, 6, 7), (1, 3, 40)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_batch_norm_kernels(rng, isa, threads, dtype, shape, training):
    C = shape[1]
    x = (randn(rng, shape, dtype) + 10).astype(dtype)  # a mean far from 0
    dy = randn(rng, shape, dtype, 1.0)
    w, b = randn(rng, C, dtype, 1.0), randn(rng, C, dtype, 1.0)
    rm, rv = randn(rng, C, dtype, 1.0) + 10, rng.uniform(5, 10, C).astype(dtype)
    x64 = x.astype(np.float64)
    y, mean, var = _C.batch_norm(x, None if training else rm, None if training else rv, w, b, 1e-5)
    np.testing.assert_allclose(y, ref.batch_norm(x64, rm.astype(np.float64), rv.astype(np.float64), w, b, training),
                               **tol(dtype, 10))
    if training:
        axes = (0,) + tuple(range(2, x.ndim))
        np.testing.assert_allclose(mean, x64.mean(axis=axes), **tol(dtype, 10))
        np.testing.assert_allclose(var, x64.var(axis=axes), **tol(dtype, 10))
    dx, dw, db = _C.batch_norm_backward(dy, x, mean, var, w, 1e-5, training)
    e_dx, e_dw, e_db = ref.batch_norm_backward(dy.astype(np.float64), x64, rm, rv, w, training)
    M = x.size // C
    np.testing.assert_allclose(dx, e_dx, **tol(dtype, 10))
    np.testing.assert_allclose(dw, e_dw, **tol(dtype, 100 * np.sqrt(M)))
    np.testing.assert_allclose(db, e_db, **tol(dtype, 100 * np.sqrt(M)))


def test_batch_norm_empty(isa):
    y, mean, var = _C.batch_norm(np.zeros((0, 3), np.float32), np.zeros(3, np.float32), np.ones(3, np.float32),
                                 None, None, 1e-5)
    assert y.shape == (0, 3)
    y, mean, var = _C.batch_norm(np.zeros((2, 0, 4), np.float32), None, None, None, None, 1e-5)
    assert y.shape == (2, 0, 4) and mean.shape == (0,)


# --- the bindings' argument checks ---------------------------------------------------------------

f32 = np.zeros((2, 3), np.float32)
BAD_CALLS = [
    # (call, error type, words the message must contain)
    (lambda: _C.softmax(f32.astype(np.int64), 1), TypeError, ["x", "float32 or float64", "int64"]),
    (lambda: _C.softmax([[1.0]], 1), TypeError, ["x", "NumPy array", "list"]),
    (lambda: _C.softmax(f32, 2), ValueError, ["dim", "[-2, 1]", "2"]),
    (lambda: _C.softmax_backward(f32, f32.astype(np.float64), 1), TypeError, ["dy", "float32", "float64"]),
    (lambda: _C.log_softmax_backward(f32, np.zeros((3, 2), np.float32), 1), ValueError, ["dy", "(2, 3)", "(3, 2)"]),
    (lambda: _C.cross_entropy(f32, np.array([0, 3]), None, -100, 0.0), IndexError, ["target", "3", "[0, 2]"]),
    (lambda: _C.cross_entropy(f32, np.array([0, -1]), None, -100, 0.0), IndexError, ["target", "-1"]),
    (lambda: _C.cross_entropy(f32, np.array([0.0, 1.0]), None, -100, 0.0), TypeError, ["target", "int64", "float64"]),
    (lambda: _C.cross_entropy(f32, np.array([0, 1, 2]), None, -100, 0.0), ValueError, ["target", "(2,)", "(3,)"]),
    (lambda: _C.cross_entropy(f32[0], np.array(0), None, -100, 0.0), ValueError, ["x", "2 dimensions", "(3,)"]),
    (lambda: _C.cross_entropy(f32, np.array([0, 1]), np.ones(2, np.float32), -100, 0.0), ValueError,
     ["weight", "(3,)", "(2,)"]),
    (lambda: _C.cross_entropy(f32, np.array([0, 1]), np.ones(3), -100, 0.0), TypeError, ["weight", "float32"]),
    (lambda: _C.cross_entropy(f32, np.array([0, 1]), None, -100, 1.5), ValueError, ["label_smoothing", "1.5"]),
    (lambda: _C.cross_entropy(f32, np.array([0, 1]), None, -100, float("nan")), ValueError, ["label_smoothing"]),
    (lambda: _C.cross_entropy_backward(np.ones(3, np.float32), f32, np.ones(2, np.float32), np.array([0, 1]), None,
                                       -100, 0.0), ValueError, ["dloss", "(2,)", "(3,)"]),
    (lambda: _C.cross_entropy_probs(f32, np.zeros((2, 4), np.float32), None, 0.0), ValueError,
     ["target", "(2, 3)", "(2, 4)"]),
    (lambda: _C.layer_norm(f32, 3, None, None, 1e-5), ValueError, ["normalized_ndim", "[1, 2]", "3"]),
    (lambda: _C.layer_norm(f32, 1, np.ones(2, np.float32), None, 1e-5), ValueError, ["weight", "(3,)", "(2,)"]),
    (lambda: _C.layer_norm_backward(f32, f32, np.zeros(3, np.float32), np.zeros(2, np.float32), None, 1, True, True),
     ValueError, ["mean", "(2,)", "(3,)"]),
    (lambda: _C.batch_norm(f32, np.zeros(3, np.float32), None, None, None, 1e-5), ValueError, ["mean", "var"]),
    (lambda: _C.batch_norm(f32, np.zeros(2, np.float32), np.ones(2, np.float32), None, None, 1e-5), ValueError,
     ["mean", "(3,)", "(2,)"]),
    (lambda: _C.batch_norm(f32[0], None, None, None, None, 1e-5), ValueError, ["x", "(3,)"]),
    (lambda: _C.batch_norm_backward(f32, f32, np.zeros(3, np.float32), np.zeros(3), None, 1e-5, True), TypeError,
     ["var", "float32", "float64"]),
    (lambda: _C._set_vec_isa("sse9"), ValueError, ["'auto' or 'generic'", "sse9"]),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bindings_reject_bad_arguments(call, error, words):
    with pytest.raises(error) as e:
        call()
    for w in words:
        assert w in str(e.value), f"{w!r} not in {str(e.value)!r}"
