"""The pooling, upsampling and padding kernels of kernelgrad._C called directly: float64 against
kg.reference (tight: the same arithmetic in double precision), and every argument check of the
binding (TypeError for dtypes, ValueError for shapes and values, IndexError for indices, each
naming the function and the argument)."""
import numpy as np
import pytest

from kernelgrad import _C
from kernelgrad import reference as R


@pytest.fixture
def x64(rng):
    return rng.standard_normal((2, 3, 9, 8))


def test_float64_kernels_vs_reference(x64, rng):
    out, idx = _C.max_pool2d_with_indices(x64, (3, 2), (2, 1), (1, 1), (1, 2), True)
    ref_out, ref_idx = R.max_pool2d(x64, (3, 2), (2, 1), (1, 1), (1, 2), True)
    np.testing.assert_array_equal(_C.max_pool2d(x64, (3, 2), (2, 1), (1, 1), (1, 2), True), ref_out)
    assert out.dtype == np.float64 and idx.dtype == np.int64 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(_C.max_pool2d_backward(g, idx, (9, 8)), R.max_pool2d_backward(g, idx, x64.shape),
                               rtol=1e-15, atol=1e-15)

    geometry = ((3, 3), (2, 2), (1, 1), True, False, None)
    out = _C.avg_pool2d(x64, *geometry)
    np.testing.assert_allclose(out, R.avg_pool2d(x64, *geometry), rtol=1e-13, atol=1e-14)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(_C.avg_pool2d_backward(g, (9, 8), *geometry),
                               R.avg_pool2d_backward(g, x64.shape, *geometry), rtol=1e-13, atol=1e-14)

    out = _C.adaptive_avg_pool2d(x64, (4, 3))
    np.testing.assert_allclose(out, R.adaptive_avg_pool2d(x64, (4, 3)), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(_C.adaptive_avg_pool2d_backward(out, (9, 8)),
                               R.adaptive_avg_pool2d_backward(out, x64.shape), rtol=1e-13, atol=1e-14)
    out, idx = _C.adaptive_max_pool2d(x64, (4, 3))
    np.testing.assert_array_equal(idx, R.adaptive_max_pool2d(x64, (4, 3))[1])

    unpooled = _C.max_unpool2d(out, idx, (9, 8))
    np.testing.assert_array_equal(unpooled, R.max_unpool2d(out, idx, (9, 8)))
    np.testing.assert_array_equal(_C.max_unpool2d_backward(unpooled, idx), R.max_unpool2d_backward(unpooled, idx))

    for size, scales in [((13, 5), None), ((18, 16), (2.0, 2.0)), ((11, 3), (1.3, 0.45))]:
        np.testing.assert_array_equal(_C.upsample_nearest2d(x64, size, scales),
                                      R.upsample_nearest2d(x64, size, scales or (None, None)))
        for align_corners in (False, True):
            np.testing.assert_allclose(_C.upsample_bilinear2d(x64, size, align_corners, scales),
                                       R.upsample_bilinear2d(x64, size, align_corners, scales or (None, None)),
                                       rtol=1e-14, atol=1e-14)
    for mode in ("reflect", "replicate"):
        pad = (2, -1, 3, 1)  # (left, right, top, bottom)
        out = _C.pad2d(x64, pad, mode)
        np.testing.assert_array_equal(out, R.pad(x64, pad, mode))
        np.testing.assert_allclose(_C.pad2d_backward(out, (9, 8), pad, mode), R.pad_backward(out, x64.shape, pad, mode),
                                   rtol=1e-15, atol=1e-15)


def test_strided_and_byte_swapped_inputs(x64):
    """Any strides and byte order are accepted (the binding copies to C-contiguous native arrays)."""
    view = x64.transpose(0, 1, 3, 2)[:, :, ::2]
    np.testing.assert_array_equal(_C.max_pool2d(view, (2, 2), (2, 2), (0, 0), (1, 1), False),
                                  R.max_pool2d(np.ascontiguousarray(view), 2)[0])
    swapped = x64.astype(x64.dtype.newbyteorder())
    np.testing.assert_array_equal(_C.upsample_nearest2d(swapped, (4, 4), None), R.upsample_nearest2d(x64, (4, 4)))


# --- argument checks --------------------------------------------------------------------------------

def geometry(**overrides):
    args = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    args.update(overrides)
    return args


@pytest.mark.parametrize("overrides, pattern", [
    (dict(kernel_size=(0, 2)), r"max_pool2d(_with_indices)?: expected kernel_size >= 1, got \(0, 2\)"),
    (dict(stride=(2, 0)), r"expected stride >= 1"),
    (dict(padding=(-1, 0)), r"expected padding >= 0"),
    (dict(dilation=(1, 0)), r"expected dilation >= 1"),
    (dict(padding=(2, 0)), r"expected padding <= kernel_size / 2, got padding \(2, 0\) and kernel_size \(2, 2\)"),
    (dict(kernel_size=(10, 2)), r"does not fit the input of size \(9, 8\)"),
    (dict(kernel_size=(2, 2), padding=(1, 1), dilation=(9, 9)), r"entirely in the padding"),
    (dict(kernel_size=(2**31, 2)), r"expected kernel_size <= 2147483647"),   # int32, as in PyTorch
    (dict(dilation=(1, 2**62)), r"expected dilation <= 2147483647"),         # no int64 overflow either
])
def test_max_pool2d_bad_geometry(overrides, pattern, x64):
    for kernel in (_C.max_pool2d, _C.max_pool2d_with_indices):
        with pytest.raises(ValueError, match=pattern):
            kernel(x64, **geometry(**overrides))


def test_dtype_and_ndim_checks(x64):
    with pytest.raises(TypeError, match=r"max_pool2d: expected input to be float32 or float64, got int64"):
        _C.max_pool2d(x64.astype(np.int64), **geometry())
    with pytest.raises(TypeError, match=r"float16"):
        _C.avg_pool2d(x64.astype(np.float16), (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: expected input to have 4 dimensions .* shape \(9, 8\)"):
        _C.adaptive_avg_pool2d(x64[0, 0], (2, 2))
    with pytest.raises(TypeError, match=r"upsample_bilinear2d_backward: expected grad_output to be float32"):
        _C.upsample_bilinear2d_backward(x64.astype(np.int32), (4, 4), False, None)
    with pytest.raises(TypeError):  # not an array at all: pybind11's own check
        _C.pad2d("x", (1, 1, 1, 1), "reflect")


def test_plane_size_limit_of_max_pooling():
    """Max pooling keeps positions as int32: a plane side of 2**31 is refused before any copy."""
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1, 1, 1, 2**31), strides=(0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"H and W < 2\*\*31"):
        _C.max_pool2d_with_indices(huge, **geometry(kernel_size=(1, 2)))
    with pytest.raises(ValueError, match=r"H and W < 2\*\*31"):
        _C.adaptive_max_pool2d(huge, (1, 1))


def test_backward_shape_checks(x64):
    g = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: expected grad_output of spatial size \(4, 4\)"):
        _C.avg_pool2d_backward(np.zeros((2, 3, 5, 4)), (9, 8), (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"divisor_override != 0"):
        _C.avg_pool2d_backward(g, (9, 8), (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match=r"input_size >= 1"):
        _C.adaptive_avg_pool2d_backward(g, (0, 8))
    with pytest.raises(ValueError, match=r"pad2d_backward: expected grad_output of spatial size \(11, 10\)"):
        _C.pad2d_backward(g, (9, 8), (1, 1, 1, 1), "replicate")
    with pytest.raises(ValueError, match=r"output_size >= 1"):
        _C.upsample_nearest2d(x64, (0, 3), None)
    with pytest.raises(ValueError, match=r"scale_factors > 0"):
        _C.upsample_bilinear2d(x64, (3, 3), False, (1.0, -2.0))


def test_index_checks(x64):
    idx = np.zeros((2, 3, 4, 4), np.int64)
    g = np.ones((2, 3, 4, 4))
    with pytest.raises(TypeError, match=r"max_pool2d_backward: expected indices to be int64, got int32"):
        _C.max_pool2d_backward(g, idx.astype(np.int32), (9, 8))
    with pytest.raises(ValueError, match=r"indices of the shape of grad_output \(2, 3, 4, 4\), got \(2, 3, 4, 3\)"):
        _C.max_pool2d_backward(g, idx[..., :3], (9, 8))
    bad = idx.copy()
    bad[1, 2, 3, 3] = 72
    with pytest.raises(IndexError, match=r"max_pool2d_backward: index 72 is out of range for planes of size 9x8"):
        _C.max_pool2d_backward(g, bad, (9, 8))
    with pytest.raises(IndexError, match=r"max_unpool2d: index 72 is out of range"):
        _C.max_unpool2d(g, bad, (9, 8))
    bad[0, 0, 0, 0] = -5
    with pytest.raises(IndexError, match=r"max_unpool2d_backward: index -5 is out of range for planes of size 9x8"):
        _C.max_unpool2d_backward(x64, bad)
    with pytest.raises(ValueError, match=r"expected indices of shape \(N, C, H, W\) = \(2, 3, H, W\)"):
        _C.max_unpool2d_backward(x64, idx[:1])


def test_pad_checks(x64):
    with pytest.raises(ValueError, match=r"pad2d: expected mode 'reflect' or 'replicate', got 'circular'"):
        _C.pad2d(x64, (1, 1, 1, 1), "circular")
    with pytest.raises(ValueError, match=r"reflect padding must be smaller than the padded dimension"):
        _C.pad2d(x64, (8, 0, 0, 0), "reflect")
    with pytest.raises(ValueError, match=r"must be >= 0"):
        _C.pad2d(x64, (-5, -4, 0, 0), "replicate")
    assert _C.pad2d(x64, (0, 0, 20, 0), "replicate").shape == (2, 3, 29, 8)  # replicate has no limit
    with pytest.raises(ValueError, match=r"every pad in \[-2\*\*31 \+ 1, 2\*\*31 - 1\], got 4611686018427387904"):
        _C.pad2d(x64, (2**62, 2**62, 0, 0), "replicate")
