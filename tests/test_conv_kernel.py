"""Direct tests of the conv2d kernels in kernelgrad._C: the plain loop kernels against kg.reference
in float64, then the GEMM kernels against the plain ones in float32 and float64, with 1 and 2 threads
and both GEMM micro-kernels; and the binding's argument checks. Then the CUDA backend's three conv
functions (kernelgrad.backend.cuda: im2col / col2im kernels and batched GEMMs; the emulator when there
is no GPU) against the CPU backend on many geometries, and its argument checks against the CPU
binding's (the same errors, word for word).

Tolerances: float64 results agree to ~1e-13 (sums of at most a few hundred products of O(1) values).
In float32 each output is a sum of `terms` products of O(1) values, computed in a different order by
the two kernels; rounding grows like eps * sqrt(terms) typically and eps * terms at worst, so we allow
atol = 2e-6 * terms (eps = 1.2e-7), far below the size of one wrong or missing term.
"""
import kernelgrad as kg
import numpy as np
import pytest
from kernelgrad import _C
from kernelgrad import reference as ref
from kernelgrad.backend import backend_for

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


# --- argument checks: (name, binding function, its arguments given a converter of the NumPy arrays,
# exception, message fragment). The converter is the identity for _C and from_numpy for the CUDA backend.
X = np.zeros((2, 4, 5, 5), np.float32)
Wt = np.zeros((6, 4, 3, 3), np.float32)
G = np.zeros((2, 6, 5, 5), np.float32)
GEO = ((1, 1), (1, 1), (1, 1), 1)

BAD_CALLS = [
    ("int x", "conv2d_forward", lambda a: (a(X.astype(np.int64)), a(Wt), None, *GEO, (5, 5)), TypeError,
     "x to be float32 or float64"),
    ("float16 x", "conv2d_forward", lambda a: (a(X.astype(np.float16)), a(Wt), None, *GEO, (5, 5)), TypeError,
     "x to be float32 or float64, got float16"),
    ("weight dtype", "conv2d_forward", lambda a: (a(X), a(Wt.astype(np.float64)), None, *GEO, (5, 5)), TypeError,
     "weight to have the dtype of x"),
    ("bias dtype", "conv2d_forward", lambda a: (a(X), a(Wt), a(np.zeros(6)), *GEO, (5, 5)), TypeError, "bias"),
    ("x 3-D", "conv2d_forward", lambda a: (a(X[0]), a(Wt), None, *GEO, (5, 5)), ValueError, "x to be 4-D"),
    ("weight 3-D", "conv2d_forward", lambda a: (a(X), a(Wt[0]), None, *GEO, (5, 5)), ValueError, "weight to be 4-D"),
    ("channels", "conv2d_forward", lambda a: (a(X), a(Wt[:, :3]), None, *GEO, (5, 5)), ValueError,
     r"weight.shape\[1\] == C / groups"),
    ("groups divide", "conv2d_forward", lambda a: (a(X), a(Wt[:, :1]), None, (1, 1), (1, 1), (1, 1), 3, (5, 5)),
     ValueError, "groups = 3 to divide"),
    ("groups 0", "conv2d_forward", lambda a: (a(X), a(Wt), None, (1, 1), (1, 1), (1, 1), 0, (5, 5)), ValueError,
     "groups >= 1"),
    ("stride 0", "conv2d_forward", lambda a: (a(X), a(Wt), None, (0, 1), (1, 1), (1, 1), 1, (5, 5)), ValueError,
     "stride >= 1"),
    ("padding < 0", "conv2d_forward", lambda a: (a(X), a(Wt), None, (1, 1), (-1, 0), (1, 1), 1, (5, 5)), ValueError,
     "padding >= 0"),
    ("dilation 0", "conv2d_forward", lambda a: (a(X), a(Wt), None, (1, 1), (1, 1), (1, 0), 1, (5, 5)), ValueError,
     "dilation >= 1"),
    ("output_size 0", "conv2d_forward", lambda a: (a(X), a(Wt), None, *GEO, (0, 5)), ValueError, "output_size >= 1"),
    ("bias shape", "conv2d_forward", lambda a: (a(X), a(Wt), a(np.zeros(5, np.float32)), *GEO, (5, 5)), ValueError,
     r"bias of shape \(6,\)"),
    ("empty kernel", "conv2d_forward", lambda a: (a(X), a(Wt[:, :, :0]), None, *GEO, (5, 5)), ValueError,
     "at least 1 x 1"),
    ("bwd input: grad channels", "conv2d_backward_input", lambda a: (a(G[:, :5]), a(Wt), None, (5, 5), *GEO),
     ValueError, r"grad_output.shape\[1\] == K"),
    ("bwd input: grad 3-D", "conv2d_backward_input", lambda a: (a(G[0]), a(Wt), None, (5, 5), *GEO), ValueError,
     "grad_output to be 4-D"),
    ("bwd input: dtype", "conv2d_backward_input", lambda a: (a(G), a(Wt.astype(np.float64)), None, (5, 5), *GEO),
     TypeError, "weight"),
    ("bwd input: input_size", "conv2d_backward_input", lambda a: (a(G), a(Wt), None, (5, 0), *GEO), ValueError,
     "input_size >= 1"),
    ("bwd input: bias shape", "conv2d_backward_input",
     lambda a: (a(G), a(Wt), a(np.zeros(6, np.float32)), (5, 5), *GEO), ValueError, r"bias of shape \(4,\)"),
    ("bwd weight: batch", "conv2d_backward_weight", lambda a: (a(X), a(G[:1]), (3, 3), *GEO), ValueError,
     "same batch size"),
    ("bwd weight: kernel_size", "conv2d_backward_weight", lambda a: (a(X), a(G), (0, 3), *GEO), ValueError,
     "kernel_size >= 1"),
    ("bwd weight: dtype", "conv2d_backward_weight", lambda a: (a(X), a(G.astype(np.float64)), (3, 3), *GEO),
     TypeError, "grad_output"),
    ("bwd weight: groups", "conv2d_backward_weight",
     lambda a: (a(X), a(G), (3, 3), (1, 1), (1, 1), (1, 1), 3), ValueError, "groups = 3 to divide"),
    ("bwd weight: empty output", "conv2d_backward_weight", lambda a: (a(X), a(G[:, :, :0]), (3, 3), *GEO),
     ValueError, "OH, OW >= 1"),
]
BAD_PARAMS = [c[1:] for c in BAD_CALLS]
BAD_IDS = [c[0] for c in BAD_CALLS]


@pytest.mark.parametrize("fn, args, exc, match", BAD_PARAMS, ids=BAD_IDS)
def test_binding_rejects_bad_arguments(fn, args, exc, match):
    with pytest.raises(exc, match=match):
        getattr(_C, fn)(*args(lambda a: a))


# --- the CUDA backend against the CPU backend
@pytest.fixture
def cu():
    if not kg.cuda.is_available():
        pytest.skip("no CUDA device (neither a GPU nor the emulator)")
    return backend_for("cuda")


# CASES, plus channel counts that are not multiples of 4 or 32 (the GEMM tiles), an empty batch,
# wider groups and depthwise convolutions with strides and dilations
CUDA_CASES = CASES + [
    ("batch 0", (0, 3, 5, 5), 4, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ("5 -> 37 channels, kernel 2x4", (2, 5, 6, 9), 37, (2, 4), (1, 2), (1, 0), (2, 1), 1),
    ("groups 3, 9 -> 33 channels, kernel 3x1", (1, 9, 7, 6), 33, (3, 1), (2, 1), (0, 1), (1, 1), 3),
    ("depthwise 33, dilated", (2, 33, 6, 5), 33, (3, 3), (1, 1), (2, 2), (2, 2), 33),
    ("depthwise x3, stride 3, kernel 1x3", (1, 2, 7, 8), 6, (1, 3), (3, 3), (0, 1), (1, 1), 2),
    ("1x1, 65 -> 3 channels", (1, 65, 3, 4), 3, (1, 1), (1, 1), (0, 0), (1, 1), 1),
    ("1x1 image, 3x3 pad 1", (3, 2, 1, 1), 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),
    ("depthwise 1x1", (2, 5, 3, 4), 5, (1, 1), (1, 1), (0, 0), (1, 1), 5),
    ("K = 1, 1x1 output", (2, 3, 3, 3), 1, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    ("stride 4 > kernel 2: unread pixels", (1, 2, 9, 10), 3, (2, 2), (4, 3), (0, 1), (1, 1), 1),
]
CUDA_IDS = [c[0] for c in CUDA_CASES]


def backend_kernels(B, x, w, b, g, bias_c, geo, out_size):
    """(forward, backward_input, backward_weight) of backend B on NumPy operands, as NumPy arrays."""
    def a(v):
        return None if v is None else B.from_numpy(v)

    out = B.conv2d_forward(a(x), a(w), a(b), *geo, out_size)
    dx = B.conv2d_backward_input(a(g), a(w), a(bias_c), x.shape[2:], *geo)
    dw = B.conv2d_backward_weight(a(x), a(g), w.shape[2:], *geo)
    return tuple(B.to_numpy(r) for r in (out, dx, dw))


@pytest.mark.parametrize("case", CUDA_CASES, ids=CUDA_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_backend_matches_cpu(case, dtype, cu, rng):
    """float32 with both biases (forward's per K, backward_input's per C), float64 without."""
    x, w, b, g, geo, out_size = operands(case, dtype, rng)
    b, bias_c = (b, rng.standard_normal(x.shape[1]).astype(dtype)) if dtype == np.float32 else (None, None)
    got = backend_kernels(cu, x, w, b, g, bias_c, geo, out_size)
    expected = backend_kernels(backend_for("cpu"), x, w, b, g, bias_c, geo, out_size)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for name, c, e, n in zip(("out", "dx", "dw"), got, expected, terms(x, w, g, geo[3])):
        assert c.dtype == dtype and c.shape == e.shape, name
        np.testing.assert_allclose(c, e, rtol=tol, atol=tol * max(n, 1), err_msg=name)


def test_cuda_backend_padding_implied_by_the_sizes(cu, rng):
    """The bottom / right padding is what the sizes imply, as on the CPU: an output one row and column
    larger than symmetric padding gives (forward, backward_weight), and an input one row and column
    larger than the output reaches (backward_input: those pixels get no gradient)."""
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 2, 2))
    g = rng.standard_normal((2, 4, 6, 7))
    geo = ((1, 1), (0, 0), (1, 1), 1)
    xpad = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    out = cu.to_numpy(cu.conv2d_forward(cu.from_numpy(x), cu.from_numpy(w), None, *geo, (6, 7)))
    np.testing.assert_allclose(out, ref.conv2d(xpad, w), rtol=1e-12, atol=1e-12)
    rdx, rdw, _ = ref.conv2d_backward(g, xpad, w)
    dw = cu.to_numpy(cu.conv2d_backward_weight(cu.from_numpy(x), cu.from_numpy(g), (2, 2), *geo))
    np.testing.assert_allclose(dw, rdw, rtol=1e-12, atol=1e-12)
    dx = cu.to_numpy(cu.conv2d_backward_input(cu.from_numpy(g[:, :, :5, :6]), cu.from_numpy(w), None, (6, 7), *geo))
    rdx, _, _ = ref.conv2d_backward(g[:, :, :5, :6], x, w)
    np.testing.assert_allclose(dx, rdx, rtol=1e-12, atol=1e-12)


def test_cuda_backend_non_contiguous_inputs(cu, rng):
    """Strided device views (slices, transposes) as every operand, the biases included."""
    base_x, base_w = rng.standard_normal((3, 8, 9, 10)), rng.standard_normal((5, 4, 3, 3))
    base_g, base_b = rng.standard_normal((2, 5, 7, 8)), rng.standard_normal(10)
    geo = ((1, 1), (0, 0), (1, 1), 1)
    views = {
        "x": lambda a: a[::2, 1::2].transpose(0, 1, 3, 2),  # (2, 4, 10, 9)
        "w": lambda a: a.transpose(0, 1, 3, 2),
        "g": lambda a: a.transpose(0, 1, 3, 2),  # (2, 5, 8, 7)
        "b": lambda a: a[::2],  # (5,)
        "bias_c": lambda a: a[1:8:2],  # (4,)
    }
    bases = {"x": base_x, "w": base_w, "g": base_g, "b": base_b, "bias_c": base_b}
    host = {k: views[k](v) for k, v in bases.items()}
    dev = {k: views[k](cu.from_numpy(v)) for k, v in bases.items()}
    assert not any(cu.is_contiguous(v) for v in dev.values())
    results = [
        (cu.conv2d_forward(dev["x"], dev["w"], dev["b"], *geo, (8, 7)),
         _C.conv2d_forward(host["x"], host["w"], host["b"], *geo, (8, 7))),
        (cu.conv2d_backward_input(dev["g"], dev["w"], dev["bias_c"], (10, 9), *geo),
         _C.conv2d_backward_input(host["g"], host["w"], host["bias_c"], (10, 9), *geo)),
        (cu.conv2d_backward_weight(dev["x"], dev["g"], (3, 3), *geo),
         _C.conv2d_backward_weight(host["x"], host["g"], (3, 3), *geo)),
    ]
    for name, (got, expected) in zip(("out", "dx", "dw"), results):
        np.testing.assert_allclose(cu.to_numpy(got), expected, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("fn, args, exc, match", BAD_PARAMS, ids=BAD_IDS)
def test_cuda_binding_rejects_bad_arguments_as_the_cpu_binding(fn, args, exc, match, cu):
    with pytest.raises(exc, match=match) as on_cpu:
        getattr(_C, fn)(*args(lambda a: a))
    with pytest.raises(exc, match=match) as on_cuda:
        getattr(cu, fn)(*args(cu.from_numpy))
    assert type(on_cuda.value) is type(on_cpu.value)
    assert str(on_cuda.value) == str(on_cpu.value)


def test_cuda_backend_keeps_the_contiguous_copies_until_the_kernels_ran(cu, monkeypatch, rng):
    """A strided x is copied to a contiguous block for im2col; that block must stay alive until the
    kernel has run. Here im2col first allocates a block of the copy's size and fills it with NaN (what
    another thread would do while the binding has released the GIL): the caching allocator hands out
    a block freed before that at once, so a copy freed too early turns the results into NaN."""
    from kernelgrad.backend import cuda_conv

    real = cuda_conv._m

    class AllocatesFirst:
        def __getattr__(self, name):
            return getattr(real, name)

        def im2col(self, dtype, cols, x_ptr, geo):
            N, C, H, W = geo[:4]
            held.append(cu.full((N, C, H, W), np.nan, {3: np.float32, 4: np.float64}[dtype]))
            return real.im2col(dtype, cols, x_ptr, geo)

    held = []
    monkeypatch.setattr(cuda_conv, "_m", AllocatesFirst())
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((2, 4, 6, 5))
    geo = ((1, 1), (1, 1), (1, 1), 1)
    dx = cu.from_numpy(x.transpose(0, 1, 3, 2).copy()).transpose(0, 1, 3, 2)  # x's values, strided
    assert not cu.is_contiguous(dx)
    out = cu.to_numpy(cu.conv2d_forward(dx, cu.from_numpy(w), None, *geo, (6, 5)))
    dw = cu.to_numpy(cu.conv2d_backward_weight(dx, cu.from_numpy(g), (3, 3), *geo))
    assert len(held) == 2  # both went through im2col
    np.testing.assert_allclose(out, _C.conv2d_forward(x, w, None, *geo, (6, 5)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, _C.conv2d_backward_weight(x, g, (3, 3), *geo), rtol=1e-12, atol=1e-12)
