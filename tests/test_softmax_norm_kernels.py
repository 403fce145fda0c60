"""Direct tests of the softmax-family and normalisation kernels (softmax, log_softmax,
cross-entropy, layer norm, batch norm and their backward) through the backends' functions, on
every device: the CPU's kernelgrad._C with both implementations of the vec.h primitives (the plain
"generic" loops and AVX2), and the CUDA kernels (csrc/cuda/softmax.cu, norm.cu; the emulator when
there is no GPU). Against kg.reference in float64, float32 and float64, odd sizes, both walks of
softmax.cpp (contiguous rows, and blocks of positions when the dim is not the last), the three
walks of the CUDA kernels (a thread per line when the dim is not the last, a warp per row of up to
1024 values, a block per longer row), and the argument checks.

Tolerances: the references run in float64 on the same inputs. float32 kernels: exp is within
1-2 ulp, x - max rounds to half an ulp of |x - max| (<= ~30 for these inputs: 2e-6 relative on
the exp), and a length-n sum adds about sqrt(n) eps relative (n <= 1000: 4e-6; the CUDA kernels'
tree sums are no worse than the CPU's running sums); so probabilities and normalised values get
rtol 2e-5 and an absolute floor of 1e-6 (values of order 1), sums over rows (dweight, dbias) an
absolute 1e-4 * sqrt(rows). float64 kernels: 1e-12 relative.
"""
import contextlib
import importlib

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import _C
from kernelgrad import reference as ref
from kernelgrad.backend import backend_for

from conftest import DEVICES

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


class Kernels:
    """One device's backend functions with NumPy arrays in and out: an array argument is copied to
    the device (a view stays a view on the CPU), array results come back (None stays None)."""

    def __init__(self, device):
        self.device = device
        self.B = backend_for(device)

    def put(self, a):
        return self.B.from_numpy(a) if isinstance(a, np.ndarray) else a

    def get(self, a):
        return None if a is None else np.asarray(self.B.to_numpy(a))

    def __getattr__(self, name):
        fn = getattr(self.B, name)

        def call(*args):
            out = fn(*[self.put(a) for a in args])
            return tuple(self.get(o) for o in out) if isinstance(out, tuple) else self.get(out)

        return call


KERNEL_PARAMS = [("cpu", "auto"), ("cpu", "generic")] + [(d, None) for d in DEVICES if d != "cpu"]


@pytest.fixture(params=KERNEL_PARAMS, ids=lambda p: p[0] if p[1] is None else f"{p[0]}-{p[1]}")
def kern(request):
    """The kernels of each device: the CPU's with the vec.h primitives picked for this CPU (AVX2
    here) and with the plain loops, then CUDA's."""
    device, isa = request.param
    with vec_isa_forced(isa) if isa else contextlib.nullcontext():
        yield Kernels(device)


@pytest.fixture(params=["auto", "generic"])
def isa(request):
    """(CPU-only tests) the vec.h primitives picked for this CPU, then the plain loops."""
    with vec_isa_forced(request.param):
        yield request.param


@pytest.fixture(params=[1, 2])
def threads(request):
    before = kg.get_num_threads()
    kg.set_num_threads(request.param)
    yield request.param
    kg.set_num_threads(before)


# --- softmax and log_softmax ---------------------------------------------------------------------

# (shape, dim): last-dim rows of odd lengths (vector width 8/4, 4 accumulators: 32/16; a warp's 32
# lanes), and non-last dims with inner = 3, 67, 130 (partial vectors), and a dim of 4096, whose
# blocks are narrower than inner = 70 (several blocks per outer index, the last one partial)
SOFTMAX_CASES = [((1, 1), 1), ((7, 17), 1), ((3, 1000), 1), ((5,), 0), ((2, 33), -1), ((4, 5, 67), 1),
                 ((2, 70, 3), 1), ((130, 3), 0), ((3, 130), 0), ((2, 3, 4, 5), 0), ((2, 3, 4, 5), 2),
                 ((2, 4096, 70), 1)]


@pytest.mark.parametrize("shape, dim", SOFTMAX_CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_forward_backward(rng, kern, dtype, shape, dim):
    x, dy = randn(rng, shape, dtype), randn(rng, shape, dtype, 1.0)
    x64 = x.astype(np.float64)
    y, ly = kern.softmax(x, dim), kern.log_softmax(x, dim)
    assert y.dtype == dtype and y.shape == shape and y.flags.c_contiguous
    np.testing.assert_allclose(y, ref.softmax(x64, dim), **tol(dtype))
    np.testing.assert_allclose(ly, ref.log_softmax(x64, dim), **tol(dtype, 10))  # |log p| up to ~60
    np.testing.assert_allclose(y.sum(axis=dim), 1, **tol(dtype))
    # backward from the kernels' own y (the autograd path), against the reference on that y
    dx = kern.softmax_backward(y, dy, dim)
    np.testing.assert_allclose(dx, ref.softmax_backward(y.astype(np.float64), dy, dim), **tol(dtype))
    ldx = kern.log_softmax_backward(ly, dy, dim)
    np.testing.assert_allclose(ldx, ref.log_softmax_backward(ly.astype(np.float64), dy, dim), **tol(dtype, 10))


def test_softmax_known_values(kern):
    np.testing.assert_allclose(
        kern.softmax(np.array([-5, -3, 0, 1, 10], np.float32), 0),
        [3.05849905e-07, 2.25994211e-06, 4.53921506e-05, 1.23388658e-04, 9.99828653e-01], rtol=1e-6)
    np.testing.assert_allclose(kern.softmax(np.array([3.0, 1.0, 2.0]), 0), [0.66524096, 0.09003057, 0.24472847],
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
def test_softmax_stability_and_infinities(kern, dtype):
    x = np.array([[1e4, 0, -1e4], [1e4, 1e4 + 1, 1e4 - 1]], dtype)
    y, ly = kern.softmax(x, 1), kern.log_softmax(x, 1)
    assert np.isfinite(y).all() and np.isfinite(ly).all()
    np.testing.assert_allclose(ly, ref.log_softmax(x.astype(np.float64), 1), rtol=1e-6, atol=1e-3)
    # a -inf entry gets probability 0 (log -inf); a row of only -inf (or with +inf or nan) is nan, as in torch
    inf = np.inf
    x = np.array([[-inf, 1, 2], [-inf, -inf, -inf], [inf, 1, 2], [np.nan, 1, 2]], dtype)
    for dim_last in (x, np.ascontiguousarray(x.T)):  # rows, and the column walk (dim 0)
        dim = 1 if dim_last is x else 0
        y, ly = kern.softmax(dim_last, dim), kern.log_softmax(dim_last, dim)
        if dim == 0:
            y, ly = y.T, ly.T
        np.testing.assert_allclose(y[0], ref.softmax(np.array([-inf, 1, 2]), 0), rtol=1e-6)
        assert ly[0, 0] == -inf and np.isnan(y[1:]).all() and np.isnan(ly[1:]).all()


def test_softmax_empty_and_0d(kern):
    for shape, dim in [((0, 5), 1), ((5, 0), 1), ((0, 3, 4), 1), ((2, 0, 3), 1)]:
        x = np.zeros(shape, np.float32)
        assert kern.softmax(x, dim).shape == shape
        assert kern.softmax_backward(x, x, dim).shape == shape
    y = kern.softmax(np.array(3.0), 0)
    assert y.shape == () and y == 1.0
    assert kern.log_softmax(np.array(3.0), -1) == 0.0


def test_softmax_threads_give_identical_rows(rng, threads):
    x = randn(rng, (300, 257), np.float32)
    y1 = _C.softmax(x, 1)
    np.testing.assert_array_equal(y1, _C.softmax(x.copy(), 1))
    assert kg.get_num_threads() == threads


def test_softmax_reads_any_layout(rng, kern):
    base = randn(rng, (40, 50), np.float32)
    B, a = kern.B, kern.put(base)  # views of the device array (of the same NumPy array on the CPU)
    for view, dim in [(a.T, 1), (a[::3, 1::2], 1), (a[::-1], 0), (B.broadcast_to(a[:1], (6, 50)), 1)]:
        expected = ref.softmax(np.asarray(kern.get(view), np.float64), dim)
        np.testing.assert_allclose(kern.get(B.softmax(view, dim)), expected, **tol(np.float32))
    np.testing.assert_allclose(_C.softmax(base.astype(">f4"), 1), ref.softmax(base.astype(np.float64), 1),
                               **tol(np.float32))  # (byte order: NumPy arrays only)


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


def check_cross_entropy(kern, rng, x, target, P, w, smoothing):
    """Both target kinds, forward and backward, against the reference."""
    dtype = x.dtype.type
    x64, w64 = x.astype(np.float64), None if w is None else w.astype(np.float64)
    dloss = randn(rng, target.shape, dtype, 1.0)
    for t, forward, backward, extra in [
        (target, kern.cross_entropy, kern.cross_entropy_backward, (-100, smoothing)),
        (P, kern.cross_entropy_probs, kern.cross_entropy_probs_backward, (smoothing,)),
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


@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_kernels(rng, kern, dtype, shape, weighted, smoothing):
    x, target, P, weight = ce_case(rng, shape, dtype)
    check_cross_entropy(kern, rng, x, target, P, weight if weighted else None, smoothing)


def test_cross_entropy_ignored_and_infinite_logits(kern):
    x = np.array([[0.0, -np.inf, 1.0], [np.inf, 0, 0], [2.0, 1.0, 0.0]], np.float32)
    target = np.array([2, -100, 0])
    loss, lse = kern.cross_entropy(x, target, None, -100, 0.0)
    np.testing.assert_allclose(loss, [np.log1p(np.exp(-1.0)), 0.0, np.log(1 + np.exp(-1) + np.exp(-2))], rtol=1e-6)
    dx = kern.cross_entropy_backward(np.ones(3, np.float32), x, lse, target, None, -100, 0.0)
    np.testing.assert_array_equal(dx[1], 0)  # ignored: no gradient, even with an inf logit (nan probabilities)
    assert dx[0, 1] == 0 and np.isfinite(dx).all()
    # the same through the column walk (classes not last)
    xc = np.ascontiguousarray(x.T)[None]  # (1, C, N)
    loss_c, lse_c = kern.cross_entropy(xc, target[None], None, -100, 0.0)
    np.testing.assert_allclose(loss_c[0], loss, rtol=1e-6)
    dxc = kern.cross_entropy_backward(np.ones((1, 3), np.float32), xc, lse_c, target[None], None, -100, 0.0)
    np.testing.assert_allclose(dxc[0].T, dx, rtol=1e-6, atol=1e-7)


def test_cross_entropy_all_ignored_and_empty(kern):
    x = np.zeros((2, 3), np.float64)
    loss, lse = kern.cross_entropy(x, np.array([-1, -1]), None, -1, 0.3)
    np.testing.assert_array_equal(loss, 0)
    np.testing.assert_array_equal(kern.cross_entropy_backward(np.ones(2), x, lse, np.array([-1, -1]), None, -1, 0.3), 0)
    loss, lse = kern.cross_entropy(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), None, -100, 0.0)
    assert loss.shape == (0,)
    loss, _ = kern.cross_entropy(np.zeros((2, 0), np.float32), np.array([-100, -100]), None, -100, 0.0)
    np.testing.assert_array_equal(loss, 0)


# --- layer norm ----------------------------------------------------------------------------------

def check_layer_norm(kern, rng, dtype, shape, k, affine):
    norm_shape = shape[len(shape) - k:]
    x = (randn(rng, shape, dtype) + 5).astype(dtype)  # a mean far from 0: the centred sums matter
    dy = randn(rng, shape, dtype, 1.0)
    w = randn(rng, norm_shape, dtype, 1.0) if affine != "none" else None
    b = randn(rng, norm_shape, dtype, 1.0) if affine == "both" else None
    y, mean, rstd = kern.layer_norm(x, k, w, b, 1e-5)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, ref.layer_norm(x64, norm_shape, w, b, 1e-5), **tol(dtype, 10))
    assert mean.shape == rstd.shape == shape[:len(shape) - k]
    dx, dw, db = kern.layer_norm_backward(dy, x, mean, rstd, w, k, True, True)
    e_dx, e_dw, e_db = ref.layer_norm_backward(dy.astype(np.float64), x64, norm_shape, w, 1e-5)
    rows = max(x.size // max(np.prod(norm_shape), 1), 1)
    np.testing.assert_allclose(dx, e_dx, **tol(dtype, 10))
    np.testing.assert_allclose(dw, e_dw, **tol(dtype, 100 * np.sqrt(rows)))
    np.testing.assert_allclose(db, e_db, **tol(dtype, 100 * np.sqrt(rows)))
    _, no_dw, only_db = kern.layer_norm_backward(dy, x, mean, rstd, w, k, False, True)
    assert no_dw is None
    np.testing.assert_allclose(only_db, e_db, **tol(dtype, 100 * np.sqrt(rows)))


@pytest.mark.parametrize("shape, k", [((1, 1), 1), ((5, 7), 1), ((3, 17), 1), ((9, 1000), 1), ((2, 3, 5), 2),
                                      ((4, 2, 3, 33), 1), ((6,), 1)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
def test_layer_norm_kernels(rng, kern, dtype, shape, k, affine):
    check_layer_norm(kern, rng, dtype, shape, k, affine)


def test_layer_norm_threads(rng, threads):
    x, dy = randn(rng, (100, 300), np.float32), randn(rng, (100, 300), np.float32)
    y, mean, rstd = _C.layer_norm(x, 1, None, None, 1e-5)
    dx, dw, db = _C.layer_norm_backward(dy, x, mean, rstd, None, 1, True, True)
    e_dx, e_dw, e_db = ref.layer_norm_backward(dy.astype(np.float64), x.astype(np.float64), (300,))
    np.testing.assert_allclose(dw, e_dw, rtol=2e-5, atol=1e-3)  # per-thread partial sums, then combined
    np.testing.assert_allclose(db, e_db, rtol=2e-5, atol=1e-3)


def test_layer_norm_empty(kern):
    y, mean, rstd = kern.layer_norm(np.zeros((0, 4), np.float32), 1, None, None, 1e-5)
    assert y.shape == (0, 4) and mean.shape == (0,)
    _, dw, _ = kern.layer_norm_backward(y, y, mean, rstd, None, 1, True, True)
    np.testing.assert_array_equal(dw, 0)


# --- batch norm ----------------------------------------------------------------------------------

def check_batch_norm(kern, rng, dtype, shape, training):
    C = shape[1]
    x = (randn(rng, shape, dtype) + 10).astype(dtype)  # a mean far from 0
    dy = randn(rng, shape, dtype, 1.0)
    w, b = randn(rng, C, dtype, 1.0), randn(rng, C, dtype, 1.0)
    rm, rv = randn(rng, C, dtype, 1.0) + 10, rng.uniform(5, 10, C).astype(dtype)
    x64 = x.astype(np.float64)
    y, mean, var = kern.batch_norm(x, None if training else rm, None if training else rv, w, b, 1e-5)
    np.testing.assert_allclose(y, ref.batch_norm(x64, rm.astype(np.float64), rv.astype(np.float64), w, b, training),
                               **tol(dtype, 10))
    if training:
        axes = (0,) + tuple(range(2, x.ndim))
        np.testing.assert_allclose(mean, x64.mean(axis=axes), **tol(dtype, 10))
        np.testing.assert_allclose(var, x64.var(axis=axes), **tol(dtype, 10))
    dx, dw, db = kern.batch_norm_backward(dy, x, mean, var, w, 1e-5, training)
    e_dx, e_dw, e_db = ref.batch_norm_backward(dy.astype(np.float64), x64, rm, rv, w, training)
    M = x.size // C
    np.testing.assert_allclose(dx, e_dx, **tol(dtype, 10))
    np.testing.assert_allclose(dw, e_dw, **tol(dtype, 100 * np.sqrt(M)))
    np.testing.assert_allclose(db, e_db, **tol(dtype, 100 * np.sqrt(M)))


BN_SHAPES = [(2, 1), (7, 3), (4, 5, 17), (3, 4, 6, 7), (1, 3, 40)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_batch_norm_kernels(rng, kern, dtype, shape, training):
    check_batch_norm(kern, rng, dtype, shape, training)


@pytest.mark.parametrize("training", [True, False], ids=["training", "eval"])
def test_batch_norm_threads(rng, threads, training):
    """The CPU's per-thread partial channel sums, combined (every shape, one or two threads)."""
    for shape in BN_SHAPES:
        check_batch_norm(Kernels("cpu"), rng, np.float32, shape, training)


def test_batch_norm_empty(kern):
    y, mean, var = kern.batch_norm(np.zeros((0, 3), np.float32), np.zeros(3, np.float32), np.ones(3, np.float32),
                                   None, None, 1e-5)
    assert y.shape == (0, 3)
    y, mean, var = kern.batch_norm(np.zeros((2, 0, 4), np.float32), None, None, None, None, 1e-5)
    assert y.shape == (2, 0, 4) and mean.shape == (0,)


# --- the CUDA walks (run on every device: the CPU is the same check's reference point) -----------
# A thread takes each line when the dim is not the last, and rows of up to 16 values (1, 16); a
# warp takes rows of 17 to 1024 values (lanes stride by 32: 17, 31, 33, 1024 leave lanes idle or
# uneven); a block takes longer rows, with about 8 values per thread (1025, 1500, 4099: rows
# longer than the block).

WALK_CASES = [((5, 1), 1), ((3, 16), 1), ((3, 17), 1), ((3, 31), 1), ((4, 33), 1), ((2, 1024), 1), ((2, 1025), 1),
              ((3, 1500), 1), ((1, 4099), 1), ((2, 1500, 3), 1), ((33, 2), 0), ((1, 1, 5), 1)]


@pytest.mark.parametrize("shape, dim", WALK_CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_walks_softmax_and_cross_entropy(rng, kern, dtype, shape, dim):
    x, dy = randn(rng, shape, dtype), randn(rng, shape, dtype, 1.0)
    y, ly = kern.softmax(x, dim), kern.log_softmax(x, dim)
    np.testing.assert_allclose(y, ref.softmax(x.astype(np.float64), dim), **tol(dtype))
    np.testing.assert_allclose(ly, ref.log_softmax(x.astype(np.float64), dim), **tol(dtype, 10))
    np.testing.assert_allclose(kern.softmax_backward(y, dy, dim), ref.softmax_backward(y.astype(np.float64), dy, dim),
                               **tol(dtype))
    np.testing.assert_allclose(kern.log_softmax_backward(ly, dy, dim),
                               ref.log_softmax_backward(ly.astype(np.float64), dy, dim), **tol(dtype, 10))
    if dim == 1 and len(shape) >= 2:  # classes on dim 1
        x, target, P, weight = ce_case(rng, shape, dtype)
        check_cross_entropy(kern, rng, x, target, P, weight, 0.1)


@pytest.mark.parametrize("shape", [(3, 1), (4, 31), (2, 33), (2, 1025), (2, 1500), (2, 3, 700)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_walks_layer_norm(rng, kern, dtype, shape):
    """Rows of every walk; then dweight / dbias down 5 columns of 1, 31, ... 1500 rows, and down one
    column (D = 1: the sums over the rows are one line of all the values, a warp's or a block's)."""
    check_layer_norm(kern, rng, dtype, shape, 1, "both")
    check_layer_norm(kern, rng, dtype, (shape[-1], 5), 1, "weight")
    check_layer_norm(kern, rng, dtype, (shape[-1], 1), 1, "both")


@pytest.mark.parametrize("shape", [(1000, 2), (3, 2, 700), (2, 1, 1)], ids=str)
def test_walks_batch_norm(rng, kern, shape):
    """A block per channel: more values than threads, and a channel of two values."""
    for training in (True, False):
        check_batch_norm(kern, rng, np.float64, shape, training)


@pytest.mark.parametrize("dtype, big", [(np.float32, 3e38), (np.float64, 1e300)], ids=["float32", "float64"])
def test_large_magnitude_logits(kern, dtype, big):
    """Logits near the largest float: every difference x - max stays finite (or -inf's exp, 0)."""
    x = np.array([[big, -big, 0.0, big / 2], [-big, -big, -big, -big / 2]], dtype)
    y = kern.softmax(x, 1)
    np.testing.assert_array_equal(y, [[1, 0, 0, 0], [0, 0, 0, 1]])
    ly = kern.log_softmax(x, 1)
    assert ly[0, 0] == 0 and ly[1, 3] == 0 and np.isfinite(ly[:, 2]).all()
    loss, lse = kern.cross_entropy(x, np.array([0, 1]), None, -100, 0.0)
    np.testing.assert_array_equal(lse, x[[0, 1], [0, 3]])  # the max: log s = log 1
    np.testing.assert_allclose(loss, [0, big / 2], rtol=1e-6)
    dx = kern.cross_entropy_backward(np.ones(2, dtype), x, lse, np.array([0, 1]), None, -100, 0.0)
    np.testing.assert_array_equal(dx, [[0, 0, 0, 0], [0, -1, 0, 1]])


@pytest.mark.parametrize("shape", [(4, 5), (3, 1500), (2, 5, 3)], ids=str)
def test_cross_entropy_ignore_index_everywhere(rng, kern, shape):
    """Every position ignored, in each walk: zero losses and gradients, lse still the log-sum-exp."""
    x = randn(rng, shape, np.float32)
    target = np.full((shape[0],) + shape[2:], 7, np.int64)  # ignore_index 7 (a class index too where C > 7)
    w = rng.uniform(0.5, 2, shape[1]).astype(np.float32)
    for smoothing in (0.0, 0.3):
        loss, lse = kern.cross_entropy(x, target, w, 7, smoothing)
        np.testing.assert_array_equal(loss, 0)
        expected = np.log(np.exp(x.astype(np.float64)).sum(axis=1))
        np.testing.assert_allclose(lse, expected, **tol(np.float32, 10))
        np.testing.assert_array_equal(kern.cross_entropy_backward(np.ones_like(loss), x, lse, target, w, 7,
                                                                  smoothing), 0)


@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3)], ids=str)
def test_bad_target_names_the_first_in_memory_order(kern, shape):
    """The kernel reports the first out-of-range class index, whichever thread finds one first."""
    x = np.zeros(shape, np.float32)
    target = np.zeros((shape[0],) + shape[2:], np.int64)
    flat = target.reshape(-1)
    flat[2], flat[3], flat[-1] = 4, -2, 9
    for call in (lambda: kern.cross_entropy(x, target, None, -100, 0.0),
                 lambda: kern.cross_entropy_backward(np.ones(target.shape, np.float32), x,
                                                     np.zeros(target.shape, np.float32), target, None, -100, 0.0)):
        with pytest.raises(IndexError, match=r"target 4 is out of bounds: expected a class index in \[0, 3\] or "
                                             r"ignore_index \(-100\)"):
            call()


# --- CUDA only: thread order, and autograd on the device ----------------------------------------

needs_emulator = pytest.mark.skipif("cuda" not in DEVICES or not kg.cuda.is_emulated(),
                                    reason="thread schedules are the CUDA emulator's")


@needs_emulator
@pytest.mark.parametrize("schedule", ["reverse", "random:7"])
def test_schedule_independent_bits(rng, schedule):
    """No atomics in the sums: every thread order gives the same bits (a warp walk, a block walk,
    the thread walk, the column sums of layer norm and a block per channel of batch norm)."""
    emu = importlib.import_module("kernelgrad._cuda_emu")
    kern = Kernels("cuda")
    x = randn(rng, (3, 1500), np.float32)
    xs = randn(rng, (4, 33, 5), np.float32)
    target = np.array([1, 0, 1499])
    runs = []
    for order in ("forward", schedule):
        previous = emu.get_schedule()
        emu.set_schedule(order)
        try:
            runs.append([kern.softmax(x, 1), kern.log_softmax(xs, 1), kern.softmax(xs[:, :2], 1),
                         *kern.cross_entropy(x, target, None, -100, 0.2),
                         *kern.layer_norm_backward(xs, xs, np.zeros((4, 33), np.float32),
                                                   np.ones((4, 33), np.float32), None, 1, True, True),
                         *kern.batch_norm(xs, None, None, None, None, 1e-5)])
        finally:
            emu.set_schedule(previous)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("cuda" not in DEVICES, reason="no CUDA device")
def test_autograd_on_the_device_matches_the_cpu(rng):
    """Softmax (to the second derivative), cross-entropy, layer norm and batch norm through
    autograd in float64 on CUDA against the same graph on the CPU."""
    x = rng.standard_normal((3, 5))
    t = np.array([4, -100, 0])
    w, b = rng.uniform(0.5, 2, 5), rng.standard_normal(5)
    grads = []
    for device in ("cpu", "cuda"):
        tx = kg.tensor(x, device=device, requires_grad=True)
        tw = kg.tensor(w, device=device, requires_grad=True)
        tb = kg.tensor(b, device=device, requires_grad=True)
        s = F.softmax(tx, 1)
        (g,) = kg.autograd.grad((s * s).sum(), tx, create_graph=True)
        (g2,) = kg.autograd.grad((g * g).sum(), tx)
        loss = F.cross_entropy(tx, kg.tensor(t, device=device), tw, label_smoothing=0.1)
        loss = loss + (F.layer_norm(tx, (5,), tw, tb) ** 2).mean() + (F.batch_norm(tx, None, None, tw, tb,
                                                                                   training=True) ** 3).mean()
        loss.backward()
        grads.append([g.detach().cpu().numpy(), g2.cpu().numpy(), tx.grad.cpu().numpy(), tw.grad.cpu().numpy(),
                      tb.grad.cpu().numpy()])
    for cpu, cuda in zip(*grads):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-12, atol=1e-14)


# --- the argument checks -------------------------------------------------------------------------

f32 = np.zeros((2, 3), np.float32)
BAD_CALLS = [
    # (call on a Kernels, error type, words the message must contain)
    (lambda K: K.softmax(f32.astype(np.int64), 1), TypeError, ["x", "float32 or float64", "int64"]),
    (lambda K: K.B.softmax([[1.0]], 1), TypeError, ["x", "array", "list"]),
    (lambda K: K.softmax(f32, 2), ValueError, ["dim", "[-2, 1]", "2"]),
    (lambda K: K.softmax_backward(f32, f32.astype(np.float64), 1), TypeError, ["dy", "float32", "float64"]),
    (lambda K: K.log_softmax_backward(f32, np.zeros((3, 2), np.float32), 1), ValueError, ["dy", "(2, 3)", "(3, 2)"]),
    (lambda K: K.cross_entropy(f32, np.array([0, 3]), None, -100, 0.0), IndexError, ["target", "3", "[0, 2]"]),
    (lambda K: K.cross_entropy(f32, np.array([0, -1]), None, -100, 0.0), IndexError, ["target", "-1"]),
    (lambda K: K.cross_entropy_backward(np.ones(2, np.float32), f32, np.ones(2, np.float32), np.array([5, 1]), None,
                                        -100, 0.0), IndexError, ["cross_entropy_backward", "target 5", "[0, 2]"]),
    (lambda K: K.cross_entropy(f32, np.array([0.0, 1.0]), None, -100, 0.0), TypeError, ["target", "int64", "float64"]),
    (lambda K: K.cross_entropy(f32, np.array([0, 1, 2]), None, -100, 0.0), ValueError, ["target", "(2,)", "(3,)"]),
    (lambda K: K.cross_entropy(f32[0], np.array(0), None, -100, 0.0), ValueError, ["x", "2 dimensions", "(3,)"]),
    (lambda K: K.cross_entropy(f32, np.array([0, 1]), np.ones(2, np.float32), -100, 0.0), ValueError,
     ["weight", "(3,)", "(2,)"]),
    (lambda K: K.cross_entropy(f32, np.array([0, 1]), np.ones(3), -100, 0.0), TypeError, ["weight", "float32"]),
    (lambda K: K.cross_entropy(f32, np.array([0, 1]), None, -100, 1.5), ValueError, ["label_smoothing", "1.5"]),
    (lambda K: K.cross_entropy(f32, np.array([0, 1]), None, -100, float("nan")), ValueError, ["label_smoothing"]),
    (lambda K: K.cross_entropy_backward(np.ones(3, np.float32), f32, np.ones(2, np.float32), np.array([0, 1]), None,
                                        -100, 0.0), ValueError, ["dloss", "(2,)", "(3,)"]),
    (lambda K: K.cross_entropy_probs(f32, np.zeros((2, 4), np.float32), None, 0.0), ValueError,
     ["target", "(2, 3)", "(2, 4)"]),
    (lambda K: K.layer_norm(f32, 3, None, None, 1e-5), ValueError, ["normalized_ndim", "[1, 2]", "3"]),
    (lambda K: K.layer_norm(f32, 1, np.ones(2, np.float32), None, 1e-5), ValueError, ["weight", "(3,)", "(2,)"]),
    (lambda K: K.layer_norm_backward(f32, f32, np.zeros(3, np.float32), np.zeros(2, np.float32), None, 1, True, True),
     ValueError, ["mean", "(2,)", "(3,)"]),
    (lambda K: K.batch_norm(f32, np.zeros(3, np.float32), None, None, None, 1e-5), ValueError, ["mean", "var"]),
    (lambda K: K.batch_norm(f32, np.zeros(2, np.float32), np.ones(2, np.float32), None, None, 1e-5), ValueError,
     ["mean", "(3,)", "(2,)"]),
    (lambda K: K.batch_norm(f32[0], None, None, None, None, 1e-5), ValueError, ["x", "(3,)"]),
    (lambda K: K.batch_norm_backward(f32, f32, np.zeros(3, np.float32), np.zeros(3), None, 1e-5, True), TypeError,
     ["var", "float32", "float64"]),
    (lambda K: K.layer_norm(f32.astype(np.float16), 1, None, None, 1e-5), TypeError, ["x", "float16"]),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_bad_arguments_are_rejected(kern, call, error, words):
    with pytest.raises(error) as e:
        call(kern)
    for w in words:
        assert w in str(e.value), f"{w!r} not in {str(e.value)!r}"


def test_set_vec_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="'auto' or 'generic'.*sse9"):
        _C._set_vec_isa("sse9")
