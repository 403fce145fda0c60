"""F.conv2d and F.conv_transpose2d: forward and backward against kg.reference in float32, gradcheck and
double backward in float64, known values, edge shapes, non-contiguous inputs, bad input, and torch as
an extra oracle; on every device (CUDA: the emulator when there is no GPU). The emulator runs every
CUDA thread as a fiber, so the gradchecks (one conv per perturbed element) use smaller shapes there.

float32 tolerance: each output is a sum of `terms` products of O(1) values, accumulated in another
order than the reference; rounding grows like eps * sqrt(terms) typically and eps * terms at worst,
so atol = 2e-6 * terms (eps = 1.2e-7), well below one wrong or missing term.
"""
import kernelgrad as kg
import kernelgrad.nn.functional as F
import numpy as np
import pytest
from kernelgrad import reference as ref

gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def assert_close_sum(got, expected, terms):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=2e-6 * max(terms, 1))


# name, x shape, K, kernel, stride, padding, dilation, groups (F.conv2d's own argument forms)
CONV_CASES = [
    ("3x3 pad 1", (2, 3, 8, 8), 4, 3, 1, 1, 1, 1),
    ("batch 1 odd sizes", (1, 5, 7, 9), 7, (3, 2), 1, 0, 1, 1),
    ("stride 2", (2, 4, 9, 7), 5, 3, 2, 1, 1, 1),
    ("per-axis geometry", (2, 3, 11, 10), 4, (3, 2), (2, 3), (0, 2), (2, 1), 1),
    ("groups 2", (2, 4, 6, 6), 6, 3, 1, 1, 1, 2),
    ("depthwise", (2, 6, 7, 7), 6, 3, 1, 1, 1, 6),
    ("1x1", (2, 5, 6, 7), 3, 1, 1, 0, 1, 1),
    ("same, even kernel", (2, 3, 6, 5), 4, (4, 2), 1, "same", 1, 1),
    ("same, dilated", (1, 2, 7, 6), 3, 3, 1, "same", (2, 3), 1),
    ("valid", (2, 3, 6, 6), 2, 3, 1, "valid", 1, 1),
    ("odd tiles", (2, 17, 13, 11), 19, 3, 1, 1, 1, 1),
]
CONV_IDS = [c[0] for c in CONV_CASES]


def conv_operands(case, rng, dtype=np.float32):
    _, xs, K, k, stride, padding, dilation, groups = case
    R, S = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((K, xs[1] // groups, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_forward_backward_vs_reference(case, device, rng):
    x, w, b, kw = conv_operands(case, rng)
    tx, tw, tb = (kg.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(tx, tw, tb, **kw)
    expected = ref.conv2d(x, w, b, **kw)
    assert out.shape == expected.shape and out.dtype == kg.float32
    K, Cg, R, S = w.shape
    assert_close_sum(npy(out), expected, Cg * R * S)

    g = rng.standard_normal(expected.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    gx, gw, gb = ref.conv2d_backward(g, x, w, **kw)
    assert_close_sum(npy(tx.grad), gx, K // kw["groups"] * R * S)
    assert_close_sum(npy(tw.grad), gw, g[:, 0].size)
    assert_close_sum(npy(tb.grad), gb, g[:, 0].size)


# CUDA gradcheck sizes (x shape, K) per case: batch 1 or 2, a few channels, images just large enough
# for the geometry (each stride / padding / dilation still leaves a border and more than one output)
CUDA_GRADCHECK_SIZES = {
    "3x3 pad 1": ((2, 2, 4, 4), 3),
    "batch 1 odd sizes": ((1, 3, 5, 4), 2),
    "stride 2": ((2, 2, 5, 4), 3),
    "per-axis geometry": ((1, 2, 7, 5), 2),
    "groups 2": ((2, 4, 3, 4), 4),
    "depthwise": ((1, 6, 3, 3), 6),
    "1x1": ((1, 3, 3, 2), 2),
    "same, even kernel": ((1, 2, 4, 3), 3),
    "same, dilated": ((1, 2, 4, 5), 2),
    "valid": ((1, 2, 4, 5), 2),
}


@pytest.mark.parametrize("case", [c for c in CONV_CASES if c[0] != "odd tiles"],
                         ids=[i for i in CONV_IDS if i != "odd tiles"])
def test_conv2d_gradcheck(case, device, rng):
    name, xs, K, k, stride, padding, dilation, groups = case
    xs, K = ((1 if xs[0] == 1 else 2,) + xs[1:], K) if device == "cpu" else CUDA_GRADCHECK_SIZES[name]
    x, w, b, kw = conv_operands((name, xs, K, k, stride, padding, dilation, groups), rng, np.float64)
    args = [kg.tensor(a, device=device, requires_grad=True) for a in (x, w, b)]
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), args)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(padding=(1, 0), dilation=(1, 2), groups=2)],
                         ids=["stride", "dilation groups"])
def test_conv2d_double_backward(kw, device, rng):
    """The first derivatives (dx, dw) are themselves conv Functions: their gradients pass gradcheck."""
    (N, C, H, W), K = ((2, 4, 5, 6), 4) if device == "cpu" else ((1, 2, 4, 3), 2)  # CUDA: the emulator's size
    x = kg.tensor(rng.standard_normal((N, C, H, W)), device=device, requires_grad=True)
    w = kg.tensor(rng.standard_normal((K, C // kw.get("groups", 1), 3, 2)), device=device, requires_grad=True)
    v = kg.tensor(rng.standard_normal(F.conv2d(x, w, **kw).shape), device=device)  # a fixed upstream gradient

    def first_derivatives(x, w):
        with kg.enable_grad():  # gradcheck evaluates fn under no_grad for the finite differences
            out = F.conv2d(x, w, **kw)
            return kg.autograd.grad((out * v).sum(), [x, w], create_graph=True)

    assert gradcheck(first_derivatives, [x, w])


def test_conv2d_known_values(device):
    """A 1-channel 4x4 image x = 0..15 (row by row) and a 3x3 horizontal-gradient kernel, every row
    [1, 0, -1], by hand: out[i, j] = colsum(j - 1) - colsum(j + 1), colsum(c) = the sum of column c of x
    over the rows the window covers (zero outside the image)."""
    x = kg.arange(16.0, device=device).reshape(1, 1, 4, 4)
    w = kg.tensor([[[[1.0, 0.0, -1.0]] * 3]], device=device)
    # no padding: the 4 windows cover 3 full rows, colsum(j - 1) - colsum(j + 1) = 3 * -2; plus the bias
    out = F.conv2d(x, w, kg.tensor([0.5], device=device))
    np.testing.assert_array_equal(npy(out), np.full((1, 1, 2, 2), -5.5))
    # padding 1: e.g. out[0, 0] = 0 - (1 + 5), out[0, 3] = (2 + 6) - 0, out[1, 0] = 0 - (1 + 5 + 9)
    padded = F.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(npy(padded)[0, 0], [[-6, -4, -4, 8],
                                                      [-15, -6, -6, 18],
                                                      [-27, -6, -6, 30],
                                                      [-22, -4, -4, 24]])


def test_conv_transpose2d_known_values(device):
    """Kernel 2x2 with stride 2: every input pixel stamps x[i, j] * w onto its own 2x2 block."""
    x = kg.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], device=device)
    w = kg.tensor([[[[1.0, 10.0], [100.0, 1000.0]]]], device=device)
    out = F.conv_transpose2d(x, w, stride=2)
    np.testing.assert_array_equal(npy(out)[0, 0], [[1, 10, 2, 20],
                                                   [100, 1000, 200, 2000],
                                                   [3, 30, 4, 40],
                                                   [300, 3000, 400, 4000]])


def test_conv2d_unbatched_input(device, rng):
    x, w, b, _ = conv_operands(CONV_CASES[0], rng)
    tx = kg.tensor(x[0], device=device, requires_grad=True)
    out = F.conv2d(tx, kg.tensor(w, device=device), kg.tensor(b, device=device), padding=1)
    assert out.shape == (4, 8, 8)
    assert_close_sum(npy(out), ref.conv2d(x[:1], w, b, padding=1)[0], 27)
    out.sum().backward()
    assert tx.grad.shape == (3, 8, 8)
    t_out = F.conv_transpose2d(kg.tensor(x[0], device=device), kg.tensor(w.transpose(1, 0, 2, 3).copy(), device=device))
    assert t_out.shape == (4, 10, 10)


def test_conv2d_non_contiguous_inputs(device, rng):
    base_x = rng.standard_normal((3, 6, 10, 9)).astype(np.float32)
    base_w = rng.standard_normal((4, 5, 3, 3)).astype(np.float32)
    x_np = base_x[::2, ::2].transpose(0, 1, 3, 2)  # (2, 3, 9, 10)
    w_np = base_w[:, 1:4].transpose(0, 1, 3, 2)
    tx = kg.tensor(base_x, device=device, requires_grad=True)
    tw = kg.tensor(base_w, device=device, requires_grad=True)
    out = F.conv2d(tx[::2, ::2].transpose(2, 3), tw[:, 1:4].transpose(2, 3), stride=(2, 1), padding=1)
    expected = ref.conv2d(x_np, w_np, stride=(2, 1), padding=1)
    assert_close_sum(npy(out), expected, 27)
    g = rng.standard_normal(expected.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    gx, gw, _ = ref.conv2d_backward(g, x_np, w_np, stride=(2, 1), padding=1)
    full_gx = np.zeros_like(base_x)
    full_gx[::2, ::2] = gx.transpose(0, 1, 3, 2)
    full_gw = np.zeros_like(base_w)
    full_gw[:, 1:4] = gw.transpose(0, 1, 3, 2)
    assert_close_sum(npy(tx.grad), full_gx, 36)
    assert_close_sum(npy(tw.grad), full_gw, g[:, 0].size)


def test_conv2d_float64_and_no_bias(device, rng):
    x, w, _, kw = conv_operands(CONV_CASES[2], rng, np.float64)
    out = F.conv2d(kg.tensor(x, device=device), kg.tensor(w, device=device), **kw)
    assert out.dtype == kg.float64 and out.device.type == device
    np.testing.assert_allclose(npy(out), ref.conv2d(x, w, **kw), rtol=1e-12, atol=1e-12)


def test_conv2d_empty_batch(device):
    x = kg.zeros(0, 3, 5, 5, device=device, requires_grad=True)
    w = kg.ones(4, 3, 3, 3, device=device, requires_grad=True)
    b = kg.ones(4, device=device, requires_grad=True)
    out = F.conv2d(x, w, b, padding=1)
    assert out.shape == (0, 4, 5, 5)
    out.sum().backward()  # no output element: every gradient is zero
    assert x.grad.shape == (0, 3, 5, 5)
    np.testing.assert_array_equal(npy(w.grad), np.zeros((4, 3, 3, 3)))
    np.testing.assert_array_equal(npy(b.grad), np.zeros(4))
    t_out = F.conv_transpose2d(kg.zeros(0, 4, 5, 5, device=device), w, padding=1)
    assert t_out.shape == (0, 3, 5, 5)


# --- conv_transpose2d: name, x shape, C_out, kernel, stride, padding, output_padding, dilation, groups
TRANSPOSE_CASES = [
    ("stride 2 output_padding 1", (2, 3, 5, 5), 4, 3, 2, 1, 1, 1, 1),
    ("per-axis geometry", (1, 4, 4, 6), 6, (2, 3), (1, 2), (0, 1), (0, 1), 1, 2),
    ("depthwise", (2, 4, 3, 3), 4, 3, 1, 0, 0, 1, 4),
    ("output_padding < dilation", (2, 3, 4, 4), 2, 3, 1, 0, 1, 2, 1),
    ("1x1", (2, 5, 6, 6), 3, 1, 1, 0, 0, 1, 1),
    ("padding > kernel", (2, 2, 7, 6), 3, 2, 1, 3, 0, 1, 1),
]
TRANSPOSE_IDS = [c[0] for c in TRANSPOSE_CASES]


def transpose_operands(case, rng, dtype=np.float32):
    _, xs, C_out, k, stride, padding, output_padding, dilation, groups = case
    R, S = (k, k) if isinstance(k, int) else k
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((xs[1], C_out // groups, R, S)).astype(dtype)
    b = rng.standard_normal(C_out).astype(dtype)
    return x, w, b, dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                         dilation=dilation)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose2d_forward_backward_vs_reference(case, device, rng):
    x, w, b, kw = transpose_operands(case, rng)
    tx, tw, tb = (kg.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    out = F.conv_transpose2d(tx, tw, tb, **kw)
    expected = ref.conv_transpose2d(x, w, b, **kw)
    assert out.shape == expected.shape
    C_in, Cog, R, S = w.shape
    assert_close_sum(npy(out), expected, C_in // kw["groups"] * R * S)
    g = rng.standard_normal(expected.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    gx, gw, gb = ref.conv_transpose2d_backward(g, x, w, **kw)
    assert_close_sum(npy(tx.grad), gx, Cog * R * S)
    assert_close_sum(npy(tw.grad), gw, x[:, 0].size)
    assert_close_sum(npy(tb.grad), gb, g[:, 0].size)


# CUDA gradcheck x shapes per case (the output of a transposed convolution is the larger side)
CUDA_TRANSPOSE_GRADCHECK_X = {
    "stride 2 output_padding 1": (1, 2, 3, 3),
    "per-axis geometry": (1, 2, 2, 3),
    "depthwise": (1, 4, 2, 2),
    "output_padding < dilation": (1, 3, 2, 2),
    "1x1": (1, 2, 3, 3),
    "padding > kernel": (1, 2, 7, 6),
}


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose2d_gradcheck(case, device, rng):
    if device != "cpu":  # the emulator's sizes
        case = (case[0], CUDA_TRANSPOSE_GRADCHECK_X[case[0]]) + case[2:]
    x, w, b, kw = transpose_operands(case, rng, np.float64)
    args = [kg.tensor(a, device=device, requires_grad=True) for a in (x[:1], w, b)]
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), args)


def test_conv_transpose2d_double_backward(device, rng):
    kw = dict(stride=2, padding=1, output_padding=1)
    xs = (2, 3, 3, 4) if device == "cpu" else (1, 3, 2, 3)  # CUDA: the emulator's size
    x = kg.tensor(rng.standard_normal(xs), device=device, requires_grad=True)
    w = kg.tensor(rng.standard_normal((3, 2, 3, 3)), device=device, requires_grad=True)
    v = kg.tensor(rng.standard_normal(F.conv_transpose2d(x, w, **kw).shape), device=device)

    def first_derivatives(x, w):
        with kg.enable_grad():
            return kg.autograd.grad((F.conv_transpose2d(x, w, **kw) * v).sum(), [x, w], create_graph=True)

    assert gradcheck(first_derivatives, [x, w])


def test_conv_transpose2d_is_the_input_gradient_of_conv2d(device, rng):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> for the same geometry."""
    x = kg.tensor(rng.standard_normal((2, 3, 9, 8)), device=device)
    w = kg.tensor(rng.standard_normal((4, 3, 3, 2)), device=device)
    kw = dict(stride=2, padding=1, dilation=(1, 2))
    out = F.conv2d(x, w, **kw)
    y = kg.tensor(rng.standard_normal(out.shape), device=device)
    back = F.conv_transpose2d(y, w, output_padding=(0, 1), **kw)
    assert back.shape == x.shape
    np.testing.assert_allclose((out * y).sum().item(), (x * back).sum().item(), rtol=1e-12)


# --- bad input: (name, call, exception types, message fragment); each call takes t(*shape, dtype=float32),
# which makes zeros on the test's device
X4, W4 = (2, 4, 5, 5), (6, 4, 3, 3)
BAD = [
    ("input not a tensor", lambda t: F.conv2d(np.zeros((2, 4, 5, 5)), t(*W4)), TypeError, "input to be a Tensor"),
    ("int input", lambda t: F.conv2d(t(2, 4, 5, 5, dtype=kg.int64), t(*W4)), (TypeError, RuntimeError),
     "float32 or float64"),
    ("weight dtype", lambda t: F.conv2d(t(*X4), t(6, 4, 3, 3, dtype=kg.float64)), (TypeError, RuntimeError),
     "weight to have the dtype of input"),
    ("bias dtype", lambda t: F.conv2d(t(*X4), t(*W4), t(6, dtype=kg.float64)), (TypeError, RuntimeError), "bias"),
    ("input 2-D", lambda t: F.conv2d(t(4, 5), t(*W4)), (ValueError, RuntimeError), "Expected 3D .unbatched. or 4D"),
    ("input 5-D", lambda t: F.conv2d(t(1, 2, 4, 5, 5), t(*W4)), (ValueError, RuntimeError), "got input of size"),
    ("weight 3-D", lambda t: F.conv2d(t(*X4), t(6, 4, 3)), (ValueError, RuntimeError), "weight to be 4-D"),
    ("channel mismatch", lambda t: F.conv2d(t(*X4), t(6, 3, 3, 3)), (ValueError, RuntimeError),
     "to have 3 channels, but got 4"),
    ("groups vs in_channels", lambda t: F.conv2d(t(2, 3, 5, 5), t(6, 1, 3, 3), groups=2), (ValueError, RuntimeError),
     "to have 2 channels, but got 3"),
    ("groups vs out_channels", lambda t: F.conv2d(t(*X4), t(5, 2, 3, 3), groups=2), (ValueError, RuntimeError),
     "divisible by 2 at dimension 0"),
    ("groups 0", lambda t: F.conv2d(t(*X4), t(*W4), groups=0), (ValueError, RuntimeError), "non-positive groups"),
    ("stride 0", lambda t: F.conv2d(t(*X4), t(*W4), stride=0), (ValueError, RuntimeError), "non-positive stride"),
    ("stride 3 values", lambda t: F.conv2d(t(*X4), t(*W4), stride=(1, 1, 1)), (ValueError, RuntimeError),
     "list of 2 values"),
    ("stride float", lambda t: F.conv2d(t(*X4), t(*W4), stride=1.5), TypeError, "stride to be an int"),
    ("dilation 0", lambda t: F.conv2d(t(*X4), t(*W4), dilation=(1, 0)), (ValueError, RuntimeError),
     "dilation should be greater"),
    ("negative padding", lambda t: F.conv2d(t(*X4), t(*W4), padding=-1), (ValueError, RuntimeError),
     "negative padding"),
    ("padding string", lambda t: F.conv2d(t(*X4), t(*W4), padding="full"), (ValueError, RuntimeError),
     "Invalid padding string"),
    ("same with stride", lambda t: F.conv2d(t(*X4), t(*W4), padding="same", stride=2), (ValueError, RuntimeError),
     "not supported for strided"),
    ("kernel > input", lambda t: F.conv2d(t(1, 4, 2, 5), t(*W4)), (ValueError, RuntimeError),
     r"padded input size per channel: \(2 x 5\). Kernel size: \(3 x 3\)"),
    ("dilated kernel > input", lambda t: F.conv2d(t(*X4), t(*W4), dilation=3), (ValueError, RuntimeError),
     r"Kernel size: \(7 x 7\)"),
    ("bias shape", lambda t: F.conv2d(t(*X4), t(*W4), t(4)), (ValueError, RuntimeError),
     "bias to be 1-dimensional with 6"),
    ("T: channel mismatch", lambda t: F.conv_transpose2d(t(*X4), t(3, 2, 3, 3)), (ValueError, RuntimeError),
     "to have 3 channels, but got 4"),
    ("T: groups", lambda t: F.conv_transpose2d(t(*X4), t(4, 2, 3, 3), groups=3), (ValueError, RuntimeError),
     "divisible by 3 at dimension 0"),
    ("T: output_padding", lambda t: F.conv_transpose2d(t(*X4), t(4, 2, 3, 3), stride=2, output_padding=2),
     (ValueError, RuntimeError), "output padding must be smaller than either stride or dilation"),
    ("T: negative output_padding", lambda t: F.conv_transpose2d(t(*X4), t(4, 2, 3, 3), output_padding=-1),
     (ValueError, RuntimeError), "negative output_padding"),
    ("T: output too small", lambda t: F.conv_transpose2d(t(1, 4, 1, 1), t(4, 2, 1, 1), padding=1),
     (ValueError, RuntimeError), "Output size is too small"),
    ("T: padding string", lambda t: F.conv_transpose2d(t(*X4), t(4, 2, 3, 3), padding="same"), TypeError, "padding"),
    ("T: bias shape", lambda t: F.conv_transpose2d(t(*X4), t(4, 2, 3, 3), t(2), groups=2), (ValueError, RuntimeError),
     "bias to be 1-dimensional with 4"),
    ("T: int input", lambda t: F.conv_transpose2d(t(2, 4, 5, 5, dtype=kg.int64), t(4, 2, 3, 3)),
     (TypeError, RuntimeError), "float32 or float64"),
]


@pytest.mark.parametrize("call, exc, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises(call, exc, match, device):
    excs = exc if isinstance(exc, tuple) else (exc,)
    with pytest.raises(excs[0], match=match) as info:
        call(lambda *shape, dtype=kg.float32: kg.zeros(*shape, dtype=dtype, device=device))
    assert all(isinstance(info.value, e) for e in excs)


@pytest.mark.skipif(not kg.cuda.is_available(), reason="needs a second device (CUDA)")
@pytest.mark.parametrize("fn", [F.conv2d, F.conv_transpose2d], ids=["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("moved", ["weight", "bias"])
def test_operands_on_different_devices_raise(fn, moved, device):
    """input on `device`, the weight or the bias on the other device: a RuntimeError naming both."""
    other = "cpu" if device == "cuda" else "cuda"
    args = {"input": kg.zeros(2, 4, 5, 5, device=device), "weight": kg.zeros(4, 4, 3, 3, device=device),
            "bias": kg.zeros(4, device=device)}
    args[moved] = args[moved].to(other)
    with pytest.raises(RuntimeError, match=f"{moved} is on {other}.* but input is on {device}"):
        fn(args["input"], args["weight"], args["bias"])


# --- torch as an extra oracle
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's note on its own copy
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_vs_torch(case, device, rng):
    torch = pytest.importorskip("torch")
    x, w, b, kw = conv_operands(case, rng, np.float64)
    tx, tw, tb = (kg.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    px, pw, pb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out, expected = F.conv2d(tx, tw, tb, **kw), torch.nn.functional.conv2d(px, pw, pb, **kw)
    np.testing.assert_allclose(npy(out), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(kg.tensor(g, device=device))
    expected.backward(torch.tensor(g))
    for ours, theirs in ((tx, px), (tw, pw), (tb, pb)):
        np.testing.assert_allclose(npy(ours.grad), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=TRANSPOSE_IDS)
def test_conv_transpose2d_vs_torch(case, device, rng):
    torch = pytest.importorskip("torch")
    x, w, b, kw = transpose_operands(case, rng, np.float64)
    tx, tw, tb = (kg.tensor(a, device=device, requires_grad=True) for a in (x, w, b))
    px, pw, pb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out, expected = F.conv_transpose2d(tx, tw, tb, **kw), torch.nn.functional.conv_transpose2d(px, pw, pb, **kw)
    np.testing.assert_allclose(npy(out), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(kg.tensor(g, device=device))
    expected.backward(torch.tensor(g))
    for ours, theirs in ((tx, px), (tw, pw), (tb, pb)):
        np.testing.assert_allclose(npy(ours.grad), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [
    dict(input=(2, 4, 5, 5), weight=(6, 3, 3, 3)),
    dict(input=(2, 4, 2, 5), weight=(6, 4, 3, 3)),
    dict(input=(2, 4, 5, 5), weight=(6, 4, 3, 3), stride=0),
    dict(input=(2, 4, 5, 5), weight=(6, 4, 3, 3), padding="same", stride=2),
], ids=["channels", "kernel > input", "stride 0", "same strided"])
def test_bad_input_error_types_match_torch(bad, device):
    """Where torch raises RuntimeError or ValueError, so does kernelgrad (its errors are both kinds)."""
    torch = pytest.importorskip("torch")
    kw = {k: v for k, v in bad.items() if k not in ("input", "weight")}
    with pytest.raises((RuntimeError, ValueError)) as theirs:
        torch.nn.functional.conv2d(torch.zeros(bad["input"]), torch.zeros(bad["weight"]), **kw)
    with pytest.raises(type(theirs.value)):
        F.conv2d(kg.zeros(*bad["input"], device=device), kg.zeros(*bad["weight"], device=device), **kw)
