"""F.pad: constant (any number of trailing dims, negative pads crop), reflect and replicate (the
last dim of 2-D/3-D input, the last two of 3-D/4-D input), forward and backward against
kg.reference, gradcheck and double backward in float64, the accumulation of gradients at the
edges, bad input, and torch as an extra oracle.

Tolerances: padding copies elements (exact forward). Its backward adds the gradients of every
output that read one input element: at most 3 per axis for reflect, any number for replicate's
edges, so float32 sums are compared with atol = 4 * terms * eps.
"""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F
from kernelgrad import reference as R

EPS32 = float(np.finfo(np.float32).eps)
gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


# (input shape, pad, mode)
PAD_CASES = [
    ((2, 3, 5, 4), (1, 2, 2, 1), "constant"),
    ((2, 3, 4), (1, 2, 0, 1, 1, 0), "constant"),           # three dims
    ((3, 5), (-1, 2, 1, -2), "constant"),                   # crop and pad
    ((2, 3, 5, 4), (1, 2, 2, 1), "reflect"),
    ((2, 3, 5, 4), (3, -1, 4, 0), "reflect"),               # pads up to size - 1, and a crop
    ((3, 5, 4), (1, 1, 2, 3), "reflect"),                   # unbatched (C, H, W)
    ((2, 3, 6), (5, 2), "reflect"),                         # the last dim of (N, C, W)
    ((3, 6), (2, 5), "replicate"),                          # (C, W)
    ((2, 3, 5, 4), (6, 0, 1, 7), "replicate"),              # pads larger than the input
    ((1, 1, 3, 3), (-2, 1, -1, -1), "replicate"),
    ((0, 2, 3, 3), (1, 1, 1, 1), "reflect"),                # an empty batch
]
CASE_IDS = [f"{c[2]} {c[0]} {c[1]}" for c in PAD_CASES]


@pytest.mark.parametrize("shape, pad, mode", PAD_CASES, ids=CASE_IDS)
def test_pad_vs_reference(shape, pad, mode, device, rng):
    x_np = rng.standard_normal(shape).astype(np.float32)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    out = F.pad(x, pad, mode)
    expected = R.pad(x_np, pad, mode)
    assert out.shape == expected.shape and out.dtype == kg.float32
    np.testing.assert_array_equal(npy(out), expected)
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    terms = (max(pad) + 1) ** 2  # a replicated corner sums the most gradients
    np.testing.assert_allclose(npy(x.grad), R.pad_backward(g, shape, pad, mode), rtol=1e-6,
                               atol=4 * terms * EPS32 * np.abs(g).max(initial=0))


def test_pad_edges_accumulate(device):
    """Every output that reads an input element sends its gradient back there."""
    x = kg.tensor([[[1.0, 2.0, 3.0]]], device=device, requires_grad=True)
    F.pad(x, (2, 1), "replicate").sum().backward()  # [1 1 1 2 3 3]
    np.testing.assert_array_equal(npy(x.grad)[0, 0], [3, 1, 2])
    x.grad = None
    F.pad(x, (2, 2), "reflect").sum().backward()    # [3 2 1 2 3 2 1]
    np.testing.assert_array_equal(npy(x.grad)[0, 0], [2, 3, 2])
    x.grad = None
    F.pad(x, (1, -1), value=5.0).sum().backward()   # [5 1 2]
    np.testing.assert_array_equal(npy(x.grad)[0, 0], [1, 1, 0])


def test_pad_non_contiguous_input(device, rng):
    base = rng.standard_normal((2, 7, 4, 3)).astype(np.float32)
    x = kg.tensor(base, device=device, requires_grad=True)
    view = x.permute(0, 3, 1, 2)[:, :, ::2]  # (2, 3, 4, 4), strided
    assert not view.is_contiguous()
    x_np = np.ascontiguousarray(base.transpose(0, 3, 1, 2)[:, :, ::2])
    for mode, pad in [("reflect", (3, 2, 1, 3)), ("replicate", (5, 0, 4, -1))]:
        x.grad = None
        out = F.pad(view, pad, mode)
        np.testing.assert_array_equal(npy(out), R.pad(x_np, pad, mode))
        g = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(kg.tensor(g, device=device))
        expected = np.zeros_like(base)
        expected.transpose(0, 3, 1, 2)[:, :, ::2] = R.pad_backward(g, x_np.shape, pad, mode)
        np.testing.assert_allclose(npy(x.grad), expected, rtol=1e-6, atol=4 * 36 * EPS32 * np.abs(g).max())


def test_pad_constant_value_and_dtypes(device):
    x = kg.arange(6, device=device).reshape(2, 3)  # int64: constant padding is no kernel
    out = F.pad(x, (1, 0, 0, 1), value=7)
    assert out.dtype == kg.int64
    np.testing.assert_array_equal(npy(out), [[7, 0, 1, 2], [7, 3, 4, 5], [7, 7, 7, 7]])
    assert F.pad(kg.zeros(2, 3, device=device), (0, 0)).shape == (2, 3)
    assert F.pad(kg.zeros(2, 3, device=device), (-1, -2)).shape == (2, 0)


@pytest.mark.parametrize("pad, mode", [((1, 2, 2, 1), "constant"), ((2, -1, 0, 3), "reflect"),
                                       ((3, 1, 1, 4), "replicate")])
def test_pad_gradcheck_and_double_backward(pad, mode, device, rng):
    x = kg.tensor(rng.standard_normal((1, 2, 4, 5)), device=device, requires_grad=True)
    assert gradcheck(lambda a: F.pad(a, pad, mode), (x,))
    g = kg.tensor(rng.standard_normal(F.pad(x, pad, mode).shape), device=device, requires_grad=True)
    assert gradcheck(lambda g_: kg.autograd.grad(F.pad(x, pad, mode), x, g_, create_graph=True)[0], (g,))
    assert gradcheck(lambda a: F.pad(a, (1, 1), value=2.5), (x,))  # affine: the same gradient


# --- bad input --------------------------------------------------------------------------------------

def test_pad_bad_input(device):
    x = kg.zeros(1, 2, 3, 3, device=device)
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(x, (1, 1, 1))
    with pytest.raises(ValueError, match="less than or equal to two times the input dimension"):
        F.pad(x, (1,) * 10)
    with pytest.raises(TypeError, match="tuple of ints"):
        F.pad(x, (1.0, 1))
    with pytest.raises(TypeError, match="tuple of ints"):
        F.pad(x, "ab")
    with pytest.raises(ValueError, match="negative sizes"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match=r"padding size should be less than the corresponding input dim.*\(3, 3\)"):
        F.pad(x, (3, 3, 1, 1), "reflect")
    with pytest.raises(ValueError, match="doesn't take in value argument"):
        F.pad(x, (1, 1), "reflect", value=1.0)
    with pytest.raises(NotImplementedError, match="mode 'circular' is not supported"):
        F.pad(x, (1, 1), "circular")
    with pytest.raises(NotImplementedError, match="padding size 2 is not supported for 4-D input"):
        F.pad(x, (1, 1), "reflect")
    with pytest.raises(NotImplementedError, match="padding size 4 is not supported for 2-D input"):
        F.pad(x[0, 0], (1, 1, 1, 1), "replicate")
    with pytest.raises(NotImplementedError, match="padding size 6"):
        F.pad(x, (1,) * 6, "replicate")
    with pytest.raises(TypeError, match="float32 or float64 input, got int64"):
        F.pad(kg.zeros(1, 2, 3, 3, dtype=kg.int64, device=device), (1, 1, 1, 1), "reflect")
    with pytest.raises(ValueError, match="non-zero dims"):
        F.pad(kg.zeros(1, 0, 3, 3, device=device), (1, 1, 1, 1), "replicate")
    with pytest.raises(TypeError, match="Tensor"):
        F.pad(np.zeros((2, 2)), (1, 1))


# --- torch as an extra oracle ----------------------------------------------------------------------

def test_pad_matches_torch(device, rng):
    torch = pytest.importorskip("torch")
    for shape, pad, mode in PAD_CASES:
        x_np = rng.standard_normal(shape)
        x, t = kg.tensor(x_np, device=device, requires_grad=True), torch.tensor(x_np, requires_grad=True)
        ours, theirs = F.pad(x, pad, mode), torch.nn.functional.pad(t, pad, mode)
        np.testing.assert_array_equal(npy(ours), theirs.detach().numpy())
        g = rng.standard_normal(ours.shape)
        ours.backward(kg.tensor(g, device=device))
        theirs.backward(torch.tensor(g))
        np.testing.assert_allclose(npy(x.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)
