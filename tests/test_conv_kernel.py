"""Direct tests of the conv2d kernels in kernelgrad._C: the plain loop kernels against kg.reference
in float64, then the GEMM kernels against the plain ones in float32 and float64, with 1 and 2 threads
and both GEMM micro-kernels; and the binding's argument checks.

Tolerances: float64 results agree to ~1e-13 (sums of at most a few hundred products of O(1) values).
In float32 each output is a sum of `terms` products of O(1) values, computed in a different order by
the two kernels; rounding grows like eps * sqrt(terms) typically and eps * terms at worst, so we allow
atol = 2e-6 * terms (eps = 1.2e-7), far below the size of one wrong or missing term.
"""
import numpy as np
import pytest
from kernelgrad import _C
from kernelgrad import reference as ref

# name, x shape (N, C, H, W), K, kernel (R, S), stride, (top, left) padding, dilation, groups.
# Sizes straddle the GEMM tiles (MR = 6 rows of weights, NR = 16 / 8 output positions, KC = 256 taps).
CASES = [
    ("3x3 pad 1", (2, 3, 8, 8), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ("batch 1 odd sizes", (1, 5, 7, 9), 7, (3, 2), (1, 1), (0, 0), (1, 1), 1),
    ("stride 2", (2, 4, 9, 7), 5, (3, 3), (2, 2), (1, 1), (1, 1), 1),
    ("stride/pad/dilation per axis", (2, 3, 11, 10), 4, (3, 2), (2, 3), (0, 2), (2, 1), 1),
    ("groups 2", (2, 4, 6, 6), 6, (3, 3), (1, 1), (1, 1), (1, 1), 2),
    ("depthwise", (2, 6, 7, 7), 6, (3, 3), (1, 1), (1, 1), (1, 1), 6),
    ("depthwise x2 stride 2", (1, 3, 8, 9), 6, (3, 3), (2, 2), (1, 1), (1, 1), 3),
    ("1x1", (2, 5, 6, 7), 3, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    ("1x1 groups", (2, 6, 5, 5), 4, (1, 1), (1, 1), (0, 0), (1, 1), 2),
    ("1x1 stride 2", (2, 5, 6, 7), 3, (1, 1), (2, 2), (0, 0), (1, 1), 1),
    ("padding > kernel", (1, 2, 5, 4), 3, (2, 2), (1, 1), (3, 2), (1, 1), 1),
    ("kernel = image", (3, 4, 3, 3), 5, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    ("taps > KC, odd tiles", (2, 33, 13, 11), 19, (3, 3), (1, 1), (1, 1), (1, 1), 1),
]
IDS = [c[0] for c in CASES]


def geometry(case):
    """(x shape, w shape, kernel args, output size) of a case; the bottom / right padding equals the top / left."""
    _, (N, C, H, W), K, (R, S), stride, padding, dilation, groups = case
    OH = (H + 2 * padding[0] - dilation[0] * (R - 1) - 1) // stride[0] + 1
    OW = (W + 2 * padding[1] - dilation[1] * (S - 1) - 1) // stride[1] + 1
    return (N, C, H, W), (K, C // groups, R, S), (stride, padding, dilation, groups), (OH, OW)


def operands(case, dtype, rng):
    xs, ws, geo, (OH, OW) = geometry(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    g = rng.standard_normal((xs[0], ws[0], OH, OW)).astype(dtype)
    return x, w, b, g, geo, (OH, OW)


def run_kernels(x, w, b, g, geo, out_size, plain, bias_c=None):
    """(forward, backward_input, backward_weight) of one kernel family."""
    out = _C.conv2d_forward(x, w, b, *geo, out_size, plain=plain)
    dx = _C.conv2d_backward_input(g, w, bias_c, x.shape[2:], *geo, plain=plain)
    dw = _C.conv2d_backward_weight(x, g, w.shape[2:], *geo, plain=plain)
    return out, dx, dw


def terms(x, w, g, groups):
    """Number of products summed into one element of out, dx and dw (at most)."""
    K, Cg, R, S = w.shape
    return Cg * R * S, K // groups * R * S, g.shape[0] * g.shape[2] * g.shape[3]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_plain_kernels_match_reference(case, rng):
    x, w, b, g, geo, out_size = operands(case, np.float64, rng)
    stride, padding, dilation, groups = geo
    out, dx, dw = run_kernels(x, w, b, g, geo, out_size, plain=True)
    np.testing.assert_allclose(out, ref.conv2d(x, w, b, stride, padding, dilation, groups), rtol=1e-12, atol=1e-12)
    rdx, rdw, _ = ref.conv2d_backward(g, x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    before = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(before)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_kernels_match_plain(case, dtype, threads, rng):
    x, w, b, g, geo, out_size = operands(case, dtype, rng)
    fast = run_kernels(x, w, b, g, geo, out_size, plain=False)
    plain = run_kernels(x, w, b, g, geo, out_size, plain=True)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for name, f, p, n in zip(("out", "dx", "dw"), fast, plain, terms(x, w, g, geo[3])):
        assert f.dtype == dtype and f.shape == p.shape and f.flags.c_contiguous, name
        np.testing.assert_allclose(f, p, rtol=tol, atol=tol * max(n, 1), err_msg=name)


@pytest.mark.parametrize("case", [CASES[0], CASES[5], CASES[7], CASES[12]], ids=[IDS[0], IDS[5], IDS[7], IDS[12]])
def test_gemm_kernels_generic_isa(case, rng):
    """The portable GEMM micro-kernel under the same packing hooks."""
    x, w, b, g, geo, out_size = operands(case, np.float32, rng)
    before = _C.cpu_isa()
    _C._set_isa("generic")
    try:
        fast = run_kernels(x, w, b, g, geo, out_size, plain=False)
    finally:
        _C._set_isa("generic" if before == "generic" else "auto")
    plain = run_kernels(x, w, b, g, geo, out_size, plain=True)
    for f, p, n in zip(fast, plain, terms(x, w, g, geo[3])):
        np.testing.assert_allclose(f, p, rtol=2e-6, atol=2e-6 * n)


def test_results_across_thread_counts(rng):
    """out and dx: every element is summed in the same order whatever the thread split (bit-identical).
    dw: the output positions are summed in one part per thread, then the parts are added, so the
    thread count changes the rounding only."""
    x, w, b, g, geo, out_size = operands(CASES[12], np.float32, rng)
    results = []
    for n in (1, 2, 3):
        before = _C.get_num_threads()
        _C.set_num_threads(n)
        try:
            results.append(run_kernels(x, w, b, g, geo, out_size, plain=False))
        finally:
            _C.set_num_threads(before)
    for out, dx, dw in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
        np.testing.assert_array_equal(dx, results[0][1])
        np.testing.assert_allclose(dw, results[0][2], rtol=2e-6, atol=2e-6 * terms(x, w, g, 1)[2])


@pytest.mark.parametrize("case", [CASES[2], CASES[8]], ids=[IDS[2], IDS[8]])
@pytest.mark.parametrize("plain", [False, True], ids=["gemm", "plain"])
def test_backward_input_adds_bias_per_channel(case, plain, rng):
    """conv_transpose2d's bias: backward_input(g, w, bias) = backward_input(g, w) + bias[c]."""
    x, w, _, g, geo, _ = operands(case, np.float64, rng)
    bias_c = rng.standard_normal(x.shape[1])
    with_bias = _C.conv2d_backward_input(g, w, bias_c, x.shape[2:], *geo, plain=plain)
    without = _C.conv2d_backward_input(g, w, None, x.shape[2:], *geo, plain=plain)
    np.testing.assert_allclose(with_bias, without + bias_c[:, None, None], rtol=1e-13, atol=1e-13)


def test_asymmetric_padding_from_the_sizes(rng):
    """The bottom / right padding is what the output size implies: one more output row and column than
    symmetric padding gives equals padding the input with an extra zero row and column."""
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 2, 2))
    geo = ((1, 1), (0, 0), (1, 1), 1)
    out = _C.conv2d_forward(x, w, None, *geo, (6, 7))
    xpad = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    np.testing.assert_allclose(out, ref.conv2d(xpad, w), rtol=1e-12, atol=1e-12)


def test_non_contiguous_and_byte_swapped_inputs(rng):
    base = rng.standard_normal((3, 8, 9, 10))
    x = base[::2, 1::2].transpose(0, 1, 3, 2)  # (2, 4, 10, 9), strided
    w = rng.standard_normal((5, 4, 3, 3)).transpose(0, 1, 3, 2)
    g = rng.standard_normal((2, 5, 8, 7))
    geo = ((1, 1), (0, 0), (1, 1), 1)
    expected = ref.conv2d(x, w)
    np.testing.assert_allclose(_C.conv2d_forward(x, w, None, *geo, (8, 7)), expected, rtol=1e-12, atol=1e-12)
    swapped = x.astype(x.dtype.newbyteorder(">"))
    np.testing.assert_allclose(_C.conv2d_forward(swapped, w, None, *geo, (8, 7)), expected, rtol=1e-12, atol=1e-12)
    rdx, rdw, _ = ref.conv2d_backward(g, x, w)
    g_t = np.ascontiguousarray(g.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # same values, F-ordered planes
    np.testing.assert_allclose(_C.conv2d_backward_input(g_t, w, None, (10, 9), *geo), rdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_C.conv2d_backward_weight(x, g_t, (3, 3), *geo), rdw, rtol=1e-12, atol=1e-12)


def test_empty_batch(rng):
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    geo = ((1, 1), (1, 1), (1, 1), 1)
    x = np.zeros((0, 3, 5, 5), np.float32)
    g = np.zeros((0, 4, 5, 5), np.float32)
    for plain in (False, True):
        assert _C.conv2d_forward(x, w, None, *geo, (5, 5), plain=plain).shape == (0, 4, 5, 5)
        assert _C.conv2d_backward_input(g, w, None, (5, 5), *geo, plain=plain).shape == (0, 3, 5, 5)
        dw = _C.conv2d_backward_weight(x, g, (3, 3), *geo, plain=plain)
        np.testing.assert_array_equal(dw, np.zeros((4, 3, 3, 3)))


# --- argument checks: (call, exception, message fragment)
X = np.zeros((2, 4, 5, 5), np.float32)
Wt = np.zeros((6, 4, 3, 3), np.float32)
G = np.zeros((2, 6, 5, 5), np.float32)
GEO = ((1, 1), (1, 1), (1, 1), 1)

BAD_CALLS = [
    ("int x", lambda: _C.conv2d_forward(X.astype(np.int64), Wt, None, *GEO, (5, 5)), TypeError, "x to be float32 or float64"),
    ("weight dtype", lambda: _C.conv2d_forward(X, Wt.astype(np.float64), None, *GEO, (5, 5)), TypeError,
     "weight to have the dtype of x"),
    ("bias dtype", lambda: _C.conv2d_forward(X, Wt, np.zeros(6), *GEO, (5, 5)), TypeError, "bias"),
    ("x 3-D", lambda: _C.conv2d_forward(X[0], Wt, None, *GEO, (5, 5)), ValueError, "x to be 4-D"),
    ("weight 3-D", lambda: _C.conv2d_forward(X, Wt[0], None, *GEO, (5, 5)), ValueError, "weight to be 4-D"),
    ("channels", lambda: _C.conv2d_forward(X, Wt[:, :3], None, *GEO, (5, 5)), ValueError, r"weight.shape\[1\] == C / groups"),
    ("groups divide", lambda: _C.conv2d_forward(X, Wt[:, :1], None, (1, 1), (1, 1), (1, 1), 3, (5, 5)), ValueError,
     "groups = 3 to divide"),
    ("groups 0", lambda: _C.conv2d_forward(X, Wt, None, (1, 1), (1, 1), (1, 1), 0, (5, 5)), ValueError, "groups >= 1"),
    ("stride 0", lambda: _C.conv2d_forward(X, Wt, None, (0, 1), (1, 1), (1, 1), 1, (5, 5)), ValueError, "stride >= 1"),
    ("padding < 0", lambda: _C.conv2d_forward(X, Wt, None, (1, 1), (-1, 0), (1, 1), 1, (5, 5)), ValueError,
     "padding >= 0"),
    ("dilation 0", lambda: _C.conv2d_forward(X, Wt, None, (1, 1), (1, 1), (1, 0), 1, (5, 5)), ValueError,
     "dilation >= 1"),
    ("output_size 0", lambda: _C.conv2d_forward(X, Wt, None, *GEO, (0, 5)), ValueError, "output_size >= 1"),
    ("bias shape", lambda: _C.conv2d_forward(X, Wt, np.zeros(5, np.float32), *GEO, (5, 5)), ValueError,
     r"bias of shape \(6,\)"),
    ("empty kernel", lambda: _C.conv2d_forward(X, Wt[:, :, :0], None, *GEO, (5, 5)), ValueError, "at least 1 x 1"),
    ("bwd input: grad channels", lambda: _C.conv2d_backward_input(G[:, :5], Wt, None, (5, 5), *GEO), ValueError,
     r"grad_output.shape\[1\] == K"),
    ("bwd input: dtype", lambda: _C.conv2d_backward_input(G, Wt.astype(np.float64), None, (5, 5), *GEO), TypeError,
     "weight"),
    ("bwd input: input_size", lambda: _C.conv2d_backward_input(G, Wt, None, (5, 0), *GEO), ValueError,
     "input_size >= 1"),
    ("bwd input: bias shape", lambda: _C.conv2d_backward_input(G, Wt, np.zeros(6, np.float32), (5, 5), *GEO),
     ValueError, r"bias of shape \(4,\)"),
    ("bwd weight: batch", lambda: _C.conv2d_backward_weight(X, G[:1], (3, 3), *GEO), ValueError, "same batch size"),
    ("bwd weight: kernel_size", lambda: _C.conv2d_backward_weight(X, G, (0, 3), *GEO), ValueError, "kernel_size >= 1"),
    ("bwd weight: dtype", lambda: _C.conv2d_backward_weight(X, G.astype(np.float64), (3, 3), *GEO), TypeError,
     "grad_output"),
    ("bwd weight: groups", lambda: _C.conv2d_backward_weight(X, G, (3, 3), (1, 1), (1, 1), (1, 1), 3), ValueError,
     "groups = 3 to divide"),
]


@pytest.mark.parametrize("call, exc, match", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_binding_rejects_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
