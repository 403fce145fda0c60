"""F.interpolate (modes "nearest" and "bilinear") and nn.Upsample: forward and backward against
kg.reference in float32, gradcheck and double backward in float64, PyTorch's index rules (sizes,
scale factors, align_corners), bad input, and torch as an extra oracle.

Tolerances: nearest copies elements (exact forward); its backward sums the gradients of the
outputs that read one input, at most ceil(out / in) per axis. Bilinear forms each output from 4
weighted inputs (weights in [0, 1] summing to 1): float32 rounding below 4 eps relative to the
inputs' size, and its backward sums up to 4 * ceil(out / in)^2 such terms.
"""
import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn as nn
import kernelgrad.nn.functional as F
from kernelgrad import reference as R

EPS32 = float(np.finfo(np.float32).eps)
gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def randn(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def assert_sums_close(got, expected, terms, scale):
    """float32 sums of `terms` values of size up to `scale`."""
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=4 * terms * EPS32 * scale)


# (input shape, size, scale_factor)
RESIZE_CASES = [
    ((2, 3, 5, 7), (8, 13), None),         # odd upsampling
    ((1, 2, 8, 6), (3, 4), None),          # downsampling
    ((2, 2, 4, 4), None, 2),               # x2: nearest reads o // 2
    ((1, 3, 5, 5), None, (1.7, 2.3)),      # the scale factor itself sets the source step
    ((2, 1, 5, 6), None, (1.1, 0.5)),      # 5 * 1.1 -> 5 outputs: a copy, whatever the scale
    ((1, 1, 7, 5), (7, 5), None),          # the same size: a copy
    ((1, 2, 6, 9), (1, 1), None),
    ((3, 2, 1, 4), (5, 9), None),          # H = 1
]
CASE_IDS = [f"{c[0]}->{c[1] or c[2]}" for c in RESIZE_CASES]


def reference_forward(x, mode, out_size, align_corners, scales):
    if mode == "nearest":
        return R.upsample_nearest2d(x, out_size, scales)
    return R.upsample_bilinear2d(x, out_size, align_corners, scales)


def reference_backward(g, shape, mode, align_corners, scales):
    if mode == "nearest":
        return R.upsample_nearest2d_backward(g, shape, scales)
    return R.upsample_bilinear2d_backward(g, shape, align_corners, scales)


@pytest.mark.parametrize("shape, size, scale_factor", RESIZE_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_vs_reference(shape, size, scale_factor, mode, align_corners, device, rng):
    x_np = randn(rng, *shape)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    out = F.interpolate(x, size, scale_factor, mode, align_corners)
    scales = (None, None) if scale_factor is None else \
        (scale_factor if isinstance(scale_factor, tuple) else (scale_factor,) * 2)
    out_size = size or tuple(int(n * s) for n, s in zip(shape[2:], scales))
    assert out.shape == shape[:2] + out_size and out.dtype == kg.float32
    expected = reference_forward(x_np, mode, out_size, align_corners, scales)
    assert_sums_close(npy(out), expected, 4, np.abs(x_np).max())
    g = randn(rng, *out.shape)
    out.backward(kg.tensor(g, device=device))
    per_input = 4 * np.prod([-(-o // i) + 1 for o, i in zip(out_size, shape[2:])])
    expected = reference_backward(g, shape, mode, align_corners, scales)
    assert_sums_close(npy(x.grad), expected, per_input, np.abs(g).max())


def test_nearest_index_rule(device):
    """PyTorch's legacy nearest: src = min(floor(dst * scale), in - 1), scale = in / out or
    1 / scale_factor, in float32."""
    x = kg.arange(5, dtype=kg.float32, device=device).reshape(1, 1, 5)
    assert npy(F.interpolate(x, size=8)).ravel().tolist() == [0, 0, 1, 1, 2, 3, 3, 4]   # floor(o * 5 / 8)
    assert npy(F.interpolate(x, scale_factor=1.7)).ravel().tolist() == [0, 0, 1, 1, 2, 2, 3, 4]  # floor(o / 1.7)
    assert npy(F.interpolate(x, size=2)).ravel().tolist() == [0, 2]
    assert npy(F.interpolate(x, scale_factor=1.1)).ravel().tolist() == [0, 1, 2, 3, 4]  # out == in: a copy


def test_bilinear_known_values(device):
    x = kg.tensor([[[[0.0, 1.0], [2.0, 3.0]]]], device=device)
    # align_corners=True: the corners stay, the middle is their mean
    np.testing.assert_allclose(npy(F.interpolate(x, size=3, mode="bilinear", align_corners=True))[0, 0],
                               [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]])
    # align_corners=False, x2: source (o + 0.5) / 2 - 0.5, clamped at 0 and at the last pixel
    np.testing.assert_allclose(npy(F.interpolate(x, scale_factor=2, mode="bilinear"))[0, 0, 0],
                               [0, 0.25, 0.75, 1])


def test_interpolate_3d_nearest_and_non_contiguous(device, rng):
    x_np = randn(rng, 2, 3, 7)
    out = F.interpolate(kg.tensor(x_np, device=device), scale_factor=2.5)
    np.testing.assert_array_equal(npy(out), R.upsample_nearest2d(x_np[:, :, None], (1, 17), (None, 2.5))[:, :, 0])
    base = randn(rng, 2, 9, 3, 8)
    view = kg.tensor(base, device=device).permute(0, 2, 3, 1)[:, :, ::2]  # (2, 3, 4, 9), strided
    assert not view.is_contiguous()
    x_np = np.ascontiguousarray(base.transpose(0, 2, 3, 1)[:, :, ::2])
    np.testing.assert_allclose(npy(F.interpolate(view, size=(5, 4), mode="bilinear")),
                               R.upsample_bilinear2d(x_np, (5, 4), False), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_gradcheck_and_double_backward(mode, align_corners, device, rng):
    x = kg.tensor(rng.standard_normal((1, 2, 4, 5)), device=device, requires_grad=True)
    for size, scale in [((7, 3), None), (None, (1.5, 2.0))]:
        def resize(a):
            return F.interpolate(a, size, scale, mode, align_corners)

        assert gradcheck(resize, (x,))
        g = kg.tensor(rng.standard_normal(resize(x).shape), device=device, requires_grad=True)
        assert gradcheck(lambda g_: kg.autograd.grad(resize(x), x, g_, create_graph=True)[0], (g,))


def test_upsample_layer(device, rng):
    x = kg.tensor(randn(rng, 1, 2, 3, 4), device=device)
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    assert repr(nn.Upsample(size=(3, 4), mode="bilinear")) == "Upsample(size=(3, 4), mode='bilinear')"
    assert repr(nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=True)) == \
        "Upsample(scale_factor=(2.0, 3.0), mode='bilinear')"
    layer = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
    expected = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)
    np.testing.assert_array_equal(npy(layer(x)), npy(expected))
    assert nn.Upsample(size=5)(x).shape == (1, 2, 5, 5)


# --- bad input --------------------------------------------------------------------------------------

def test_interpolate_bad_input(device):
    x = kg.zeros(1, 2, 4, 4, device=device)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set with the interpolating modes"):
        F.interpolate(x, size=3, align_corners=False)
    with pytest.raises(NotImplementedError, match="mode 'bicubic' is not supported"):
        F.interpolate(x, size=3, mode="bicubic")
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4-D input"):
        F.interpolate(x[0], size=3, mode="bilinear")
    with pytest.raises(NotImplementedError, match=r"got shape \[4, 4\]"):
        F.interpolate(x[0, 0], size=3)
    with pytest.raises(ValueError, match=r"same number of spatial dimensions.*size \(3, 3, 3\)"):
        F.interpolate(x, size=(3, 3, 3))
    with pytest.raises(ValueError, match=r"scale_factor \[2\]"):
        F.interpolate(x, scale_factor=[2])
    with pytest.raises(TypeError, match="size to be an int"):
        F.interpolate(x, size=3.0)
    with pytest.raises(TypeError, match="scale_factor to be a number"):
        F.interpolate(x, scale_factor="2")
    for bad in [dict(size=0), dict(scale_factor=0.1), dict(scale_factor=-1.0)]:
        with pytest.raises(ValueError, match=r"sizes should be greater than 0"):
            F.interpolate(x, **bad)
    with pytest.raises(TypeError, match="float32 or float64 input, got int64"):
        F.interpolate(kg.zeros(1, 1, 2, 2, dtype=kg.int64, device=device), size=3)
    with pytest.raises(TypeError, match="Tensor"):
        F.interpolate(np.zeros((1, 1, 2, 2)), size=3)


# --- torch as an extra oracle ----------------------------------------------------------------------

def test_interpolate_matches_torch(device, rng):
    torch = pytest.importorskip("torch")
    for shape, size, scale_factor in RESIZE_CASES + [((1, 1, 6, 10), None, (0.55, 0.3)), ((2, 2, 3, 7), None, 3.25)]:
        x_np = rng.standard_normal(shape)
        for mode, align_corners in [("nearest", None), ("bilinear", False), ("bilinear", True)]:
            x, t = kg.tensor(x_np, device=device, requires_grad=True), torch.tensor(x_np, requires_grad=True)
            ours = F.interpolate(x, size, scale_factor, mode, align_corners)
            theirs = torch.nn.functional.interpolate(t, size, scale_factor, mode, align_corners)
            np.testing.assert_allclose(npy(ours), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
            g = rng.standard_normal(ours.shape)
            ours.backward(kg.tensor(g, device=device))
            theirs.backward(torch.tensor(g))
            np.testing.assert_allclose(npy(x.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)
        x32 = x_np.astype(np.float32)  # PyTorch's float32 index arithmetic, reproduced
        np.testing.assert_array_equal(npy(F.interpolate(kg.tensor(x32, device=device), size, scale_factor)),
                                      torch.nn.functional.interpolate(torch.tensor(x32), size, scale_factor).numpy())
