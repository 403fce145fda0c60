"""The pooling, upsampling and padding kernels called directly, on every device through its backend
(kernelgrad._C on the CPU; kernelgrad._cuda or _cuda_emu on CUDA, whose binding shares the CPU
binding's argument checks, csrc/python/pool_args.h): float64 against kg.reference (tight: the same
arithmetic in double precision), and every argument check (TypeError for dtypes, ValueError for
shapes and values, IndexError for indices, each naming the function and the argument), with the
same errors on both devices.

CUDA tolerances are the CPU's: the kernels do the CPU kernels' arithmetic, but for the order of
the additions in the backward gathers and atomics (a few float64 terms: ~1e-16 relative)."""
import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad import _C
from kernelgrad import reference as R
from kernelgrad.backend import backend_for

EPS32 = float(np.finfo(np.float32).eps)


class Kernels:
    """The backend kernels of one device over NumPy arrays: the arrays go to the device, the
    results come back as NumPy arrays."""

    def __init__(self, device):
        self.B = backend_for(device)

    def __getattr__(self, name):
        fn, B = getattr(self.B, name), self.B

        def call(*args, **kwargs):
            out = fn(*[B.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args], **kwargs)
            return tuple(B.to_numpy(o) for o in out) if isinstance(out, tuple) else B.to_numpy(out)

        return call


@pytest.fixture
def K(device):
    return Kernels(device)


@pytest.fixture
def x64(rng):
    return rng.standard_normal((2, 3, 9, 8))


def test_float64_kernels_vs_reference(K, x64, rng):
    out, idx = K.max_pool2d_with_indices(x64, (3, 2), (2, 1), (1, 1), (1, 2), True)
    ref_out, ref_idx = R.max_pool2d(x64, (3, 2), (2, 1), (1, 1), (1, 2), True)
    np.testing.assert_array_equal(K.max_pool2d(x64, (3, 2), (2, 1), (1, 1), (1, 2), True), ref_out)
    assert out.dtype == np.float64 and idx.dtype == np.int64 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(K.max_pool2d_backward(g, idx, (9, 8)), R.max_pool2d_backward(g, idx, x64.shape),
                               rtol=1e-15, atol=1e-15)

    geometry = ((3, 3), (2, 2), (1, 1), True, False, None)
    out = K.avg_pool2d(x64, *geometry)
    np.testing.assert_allclose(out, R.avg_pool2d(x64, *geometry), rtol=1e-13, atol=1e-14)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(K.avg_pool2d_backward(g, (9, 8), *geometry),
                               R.avg_pool2d_backward(g, x64.shape, *geometry), rtol=1e-13, atol=1e-14)

    out = K.adaptive_avg_pool2d(x64, (4, 3))
    np.testing.assert_allclose(out, R.adaptive_avg_pool2d(x64, (4, 3)), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(K.adaptive_avg_pool2d_backward(out, (9, 8)),
                               R.adaptive_avg_pool2d_backward(out, x64.shape), rtol=1e-13, atol=1e-14)
    out, idx = K.adaptive_max_pool2d(x64, (4, 3))
    np.testing.assert_array_equal(idx, R.adaptive_max_pool2d(x64, (4, 3))[1])

    unpooled = K.max_unpool2d(out, idx, (9, 8))
    np.testing.assert_array_equal(unpooled, R.max_unpool2d(out, idx, (9, 8)))
    np.testing.assert_array_equal(K.max_unpool2d_backward(unpooled, idx), R.max_unpool2d_backward(unpooled, idx))

    for size, scales in [((13, 5), None), ((18, 16), (2.0, 2.0)), ((11, 3), (1.3, 0.45))]:
        np.testing.assert_array_equal(K.upsample_nearest2d(x64, size, scales),
                                      R.upsample_nearest2d(x64, size, scales or (None, None)))
        for align_corners in (False, True):
            np.testing.assert_allclose(K.upsample_bilinear2d(x64, size, align_corners, scales),
                                       R.upsample_bilinear2d(x64, size, align_corners, scales or (None, None)),
                                       rtol=1e-14, atol=1e-14)
    for mode in ("reflect", "replicate"):
        pad = (2, -1, 3, 1)  # (left, right, top, bottom)
        out = K.pad2d(x64, pad, mode)
        np.testing.assert_array_equal(out, R.pad(x64, pad, mode))
        np.testing.assert_allclose(K.pad2d_backward(out, (9, 8), pad, mode), R.pad_backward(out, x64.shape, pad, mode),
                                   rtol=1e-15, atol=1e-15)


def test_strided_and_byte_swapped_inputs(x64):
    """Any strides and byte order are accepted (the binding copies to C-contiguous native arrays)."""
    view = x64.transpose(0, 1, 3, 2)[:, :, ::2]
    np.testing.assert_array_equal(_C.max_pool2d(view, (2, 2), (2, 2), (0, 0), (1, 1), False),
                                  R.max_pool2d(np.ascontiguousarray(view), 2)[0])
    swapped = x64.astype(x64.dtype.newbyteorder())
    np.testing.assert_array_equal(_C.upsample_nearest2d(swapped, (4, 4), None), R.upsample_nearest2d(x64, (4, 4)))


def test_strided_device_arrays(device, x64):
    """Views of any strides on the device: the backend makes them contiguous before the kernel."""
    B = backend_for(device)
    view = B.getitem(B.transpose(B.from_numpy(x64), (0, 1, 3, 2)), (slice(None), slice(None), slice(None, None, 2)))
    assert not B.is_contiguous(view)
    x = np.ascontiguousarray(x64.transpose(0, 1, 3, 2)[:, :, ::2])
    out, idx = B.max_pool2d_with_indices(view, (2, 2), (1, 1), (0, 0), (1, 1), True)
    np.testing.assert_array_equal(B.to_numpy(out), R.max_pool2d(x, 2, 1, ceil_mode=True)[0])
    np.testing.assert_array_equal(B.to_numpy(B.pad2d(view, (1, 2, 2, 1), "reflect")), R.pad(x, (1, 2, 2, 1), "reflect"))
    g = B.transpose(B.from_numpy(np.ones((2, 3, 4, 9)).transpose(0, 1, 3, 2).copy()), (0, 1, 3, 2))  # (2, 3, 4, 9)
    np.testing.assert_allclose(B.to_numpy(B.upsample_bilinear2d_backward(g, (2, 4), True, None)),
                               R.upsample_bilinear2d_backward(np.ones((2, 3, 4, 9)), (2, 3, 2, 4), True),
                               rtol=1e-14)


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
def test_max_pool2d_bad_geometry(overrides, pattern, K, x64):
    for kernel in (K.max_pool2d, K.max_pool2d_with_indices):
        with pytest.raises(ValueError, match=pattern):
            kernel(x64, **geometry(**overrides))


def test_dtype_and_ndim_checks(K, x64):
    with pytest.raises(TypeError, match=r"max_pool2d: expected input to be float32 or float64, got int64"):
        K.max_pool2d(x64.astype(np.int64), **geometry())
    with pytest.raises(TypeError, match=r"float16"):
        K.avg_pool2d(x64.astype(np.float16), (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: expected input to have 4 dimensions .* shape \(9, 8\)"):
        K.adaptive_avg_pool2d(x64[0, 0], (2, 2))
    with pytest.raises(TypeError, match=r"upsample_bilinear2d_backward: expected grad_output to be float32"):
        K.upsample_bilinear2d_backward(x64.astype(np.int32), (4, 4), False, None)
    with pytest.raises(TypeError, match=r"pad2d: expected input to be float32 or float64, got bool"):
        K.pad2d(x64 > 0, (1, 1, 1, 1), "reflect")
    with pytest.raises(TypeError):  # not an array at all
        K.pad2d("x", (1, 1, 1, 1), "reflect")


def test_plane_size_limit_of_max_pooling():
    """Max pooling keeps positions as int32: a plane side of 2**31 is refused before any copy."""
    huge = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1, 1, 1, 2**31), strides=(0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"H and W < 2\*\*31"):
        _C.max_pool2d_with_indices(huge, **geometry(kernel_size=(1, 2)))
    with pytest.raises(ValueError, match=r"H and W < 2\*\*31"):
        _C.adaptive_max_pool2d(huge, (1, 1))


def test_backward_shape_checks(K, x64):
    g = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: expected grad_output of spatial size \(4, 4\)"):
        K.avg_pool2d_backward(np.zeros((2, 3, 5, 4)), (9, 8), (2, 2), (2, 2), (0, 0), False, True, None)
    with pytest.raises(ValueError, match=r"divisor_override != 0"):
        K.avg_pool2d_backward(g, (9, 8), (2, 2), (2, 2), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match=r"input_size >= 1"):
        K.adaptive_avg_pool2d_backward(g, (0, 8))
    with pytest.raises(ValueError, match=r"pad2d_backward: expected grad_output of spatial size \(11, 10\)"):
        K.pad2d_backward(g, (9, 8), (1, 1, 1, 1), "replicate")
    with pytest.raises(ValueError, match=r"output_size >= 1"):
        K.upsample_nearest2d(x64, (0, 3), None)
    with pytest.raises(ValueError, match=r"scale_factors > 0"):
        K.upsample_bilinear2d(x64, (3, 3), False, (1.0, -2.0))


def test_index_checks(K, x64):
    idx = np.zeros((2, 3, 4, 4), np.int64)
    g = np.ones((2, 3, 4, 4))
    with pytest.raises(TypeError, match=r"max_pool2d_backward: expected indices to be int64, got float64"):
        K.max_pool2d_backward(g, idx.astype(np.float64), (9, 8))
    with pytest.raises(TypeError, match=r"max_unpool2d_backward: expected indices to be int64, got bool"):
        K.max_unpool2d_backward(x64, idx > 0)
    with pytest.raises(ValueError, match=r"indices of the shape of grad_output \(2, 3, 4, 4\), got \(2, 3, 4, 3\)"):
        K.max_pool2d_backward(g, idx[..., :3], (9, 8))
    bad = idx.copy()
    bad[1, 2, 3, 3] = 72
    with pytest.raises(IndexError, match=r"max_pool2d_backward: index 72 is out of range for planes of size 9x8"):
        K.max_pool2d_backward(g, bad, (9, 8))
    with pytest.raises(IndexError, match=r"max_unpool2d: index 72 is out of range"):
        K.max_unpool2d(g, bad, (9, 8))
    bad[0, 0, 0, 0] = -5
    with pytest.raises(IndexError, match=r"max_unpool2d_backward: index -5 is out of range for planes of size 9x8"):
        K.max_unpool2d_backward(x64, bad)
    with pytest.raises(ValueError, match=r"expected indices of shape \(N, C, H, W\) = \(2, 3, H, W\)"):
        K.max_unpool2d_backward(x64, idx[:1])


def test_pad_checks(K, x64):
    with pytest.raises(ValueError, match=r"pad2d: expected mode 'reflect' or 'replicate', got 'circular'"):
        K.pad2d(x64, (1, 1, 1, 1), "circular")
    with pytest.raises(ValueError, match=r"reflect padding must be smaller than the padded dimension"):
        K.pad2d(x64, (8, 0, 0, 0), "reflect")
    with pytest.raises(ValueError, match=r"must be >= 0"):
        K.pad2d(x64, (-5, -4, 0, 0), "replicate")
    assert K.pad2d(x64, (0, 0, 20, 0), "replicate").shape == (2, 3, 29, 8)  # replicate has no limit
    with pytest.raises(ValueError, match=r"every pad in \[-2\*\*31 \+ 1, 2\*\*31 - 1\], got 4611686018427387904"):
        K.pad2d(x64, (2**62, 2**62, 0, 0), "replicate")


# --- CUDA against the CPU kernels ------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device (GPU or emulator)")

# Plane counts and sizes whose element counts are not multiples of the 256-thread block (and span
# several blocks); windows hanging past the padded input (ceil_mode), dropped ceil windows,
# overlapping and dilated windows, adaptive windows that overlap, and pads larger than the input.
#   (shape, kernel, stride, padding, dilation, ceil_mode)
SWEEP = [
    ((3, 5, 17, 13), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 3, 6, 5), (3, 2), (2, 2), (0, 1), (1, 1), True),   # the ceil window covers 2 of 3 rows
    ((1, 4, 5, 9), (2, 2), (2, 2), (1, 1), (1, 1), True),   # ceil would start in the end padding: dropped
    ((2, 2, 19, 11), (3, 3), (1, 1), (1, 1), (2, 2), False),
    ((5, 3, 7, 7), (7, 7), (1, 1), (3, 3), (1, 1), True),
]


@needs_cuda
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", SWEEP, ids=str)
def test_cuda_kernels_match_cpu_kernels(shape, kernel, stride, padding, dilation, ceil_mode, rng):
    """float32 CUDA results against _C's. The forward kernels do the CPU's arithmetic in its order:
    pooling, nearest upsampling and padding agree bit for bit; bilinear within 2 eps of the inputs'
    size (a GPU fuses its multiply-adds). The backward sums the same float32 terms in another order
    (the gathers: per output, the CPU scatters per input): rtol 1e-5 for at most 49 terms of
    size 1."""
    C = Kernels("cuda")
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 0, :2, :3] = x[0, 0, 0, 0]  # ties
    H, W = shape[2:]
    geometry = (kernel, stride, padding, dilation, ceil_mode)
    out, idx = C.max_pool2d_with_indices(x, *geometry)
    ref_out, ref_idx = _C.max_pool2d_with_indices(x, *geometry)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(C.max_pool2d(x, *geometry), ref_out)
    g = rng.standard_normal(out.shape).astype(np.float32)
    np.testing.assert_allclose(C.max_pool2d_backward(g, idx, (H, W)), _C.max_pool2d_backward(g, idx, (H, W)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(C.max_unpool2d(out, idx, (H, W)), _C.max_unpool2d(out, idx, (H, W)))
    np.testing.assert_array_equal(C.max_unpool2d_backward(x, idx), _C.max_unpool2d_backward(x, idx))
    if dilation == (1, 1):
        for count_include_pad, divisor in [(True, None), (False, None), (True, 5)]:
            args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor)
            out = C.avg_pool2d(x, *args)
            np.testing.assert_array_equal(out, _C.avg_pool2d(x, *args))
            np.testing.assert_allclose(C.avg_pool2d_backward(out, (H, W), *args),
                                       _C.avg_pool2d_backward(out, (H, W), *args), rtol=1e-5, atol=1e-6)
    for out_hw in [(H // 3 + 1, W // 2 + 1), (H + 3, W - 1)]:
        out, idx = C.adaptive_max_pool2d(x, out_hw)
        ref_out, ref_idx = _C.adaptive_max_pool2d(x, out_hw)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(idx, ref_idx)
        out = C.adaptive_avg_pool2d(x, out_hw)
        np.testing.assert_array_equal(out, _C.adaptive_avg_pool2d(x, out_hw))
        np.testing.assert_allclose(C.adaptive_avg_pool2d_backward(out, (H, W)),
                                   _C.adaptive_avg_pool2d_backward(out, (H, W)), rtol=1e-5, atol=1e-6)
    for out_hw, scales in [((2 * H, 2 * W), None), ((H + 5, W // 2), None), ((int(H * 1.7), int(W * 0.6)), (1.7, 0.6))]:
        out = C.upsample_nearest2d(x, out_hw, scales)
        np.testing.assert_array_equal(out, _C.upsample_nearest2d(x, out_hw, scales))
        np.testing.assert_allclose(C.upsample_nearest2d_backward(out, (H, W), scales),
                                   _C.upsample_nearest2d_backward(out, (H, W), scales), rtol=1e-5, atol=1e-6)
        for align_corners in (False, True):
            out = C.upsample_bilinear2d(x, out_hw, align_corners, scales)
            np.testing.assert_allclose(out, _C.upsample_bilinear2d(x, out_hw, align_corners, scales),
                                       rtol=0, atol=2 * EPS32 * np.abs(x).max())
            np.testing.assert_allclose(C.upsample_bilinear2d_backward(out, (H, W), align_corners, scales),
                                       _C.upsample_bilinear2d_backward(out, (H, W), align_corners, scales),
                                       rtol=1e-5, atol=1e-5)
    for mode, pad in [("reflect", (W - 1, 2, -1, H - 1)), ("replicate", (2 * W, -3, H + 2, 1))]:
        out = C.pad2d(x, pad, mode)
        np.testing.assert_array_equal(out, _C.pad2d(x, pad, mode))
        np.testing.assert_allclose(C.pad2d_backward(out, (H, W), pad, mode), _C.pad2d_backward(out, (H, W), pad, mode),
                                   rtol=1e-5, atol=1e-5)


def test_empty_planes_and_outputs(K):
    """Batch 0, and adaptive outputs and unpooling planes of size 0: empty results, no launch; an
    index into an empty plane is out of range."""
    x = np.zeros((0, 3, 6, 5), np.float32)
    assert K.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False).shape == (0, 3, 3, 2)
    out, idx = K.max_pool2d_with_indices(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert out.shape == idx.shape == (0, 3, 3, 2) and idx.dtype == np.int64
    assert K.max_pool2d_backward(out, idx, (6, 5)).shape == (0, 3, 6, 5)
    assert K.avg_pool2d_backward(out, (6, 5), (2, 2), (2, 2), (0, 0), False, True, None).shape == (0, 3, 6, 5)
    assert K.max_unpool2d(out, idx, (6, 5)).shape == (0, 3, 6, 5)
    assert K.upsample_bilinear2d(x, (7, 3), False, None).shape == (0, 3, 7, 3)
    assert K.pad2d_backward(np.zeros((0, 3, 8, 5)), (6, 5), (0, 0, 1, 1), "reflect").shape == (0, 3, 6, 5)
    x = np.ones((2, 3, 6, 5))
    out, idx = K.adaptive_max_pool2d(x, (0, 2))
    assert out.shape == idx.shape == (2, 3, 0, 2)
    assert K.adaptive_avg_pool2d(x, (3, 0)).shape == (2, 3, 3, 0)
    np.testing.assert_array_equal(K.adaptive_avg_pool2d_backward(np.zeros((2, 3, 0, 2)), (6, 5)), np.zeros_like(x))
    with pytest.raises(IndexError, match=r"max_unpool2d: index 0 is out of range for planes of size 0x0"):
        K.max_unpool2d(x, np.zeros(x.shape, np.int64), (0, 0))


def test_max_unpool2d_repeated_index_keeps_the_last_value(K):
    """A repeated index takes the value of its last position (row-major within the plane), on every
    device and in every thread order: the CUDA kernel claims each output cell by atomicMax of the
    position, then copies."""
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    idx = np.zeros(x.shape, np.int64)
    idx[..., 1::2] = 7  # every plane: cell 0 from the even columns, cell 7 from the odd ones
    out = K.max_unpool2d(x, idx, (3, 3))
    expected = np.zeros((2, 3, 9))
    expected[..., 0] = x[..., -1, 4]
    expected[..., 7] = x[..., -1, 3]
    np.testing.assert_array_equal(out, expected.reshape(2, 3, 3, 3))
    np.testing.assert_array_equal(out, R.max_unpool2d(x, idx, (3, 3)))


@pytest.mark.skipif(not kg.cuda.is_emulated(), reason="thread orders are the emulator's")
@pytest.mark.parametrize("schedule", ["reverse", "random:7"])
def test_cuda_results_do_not_depend_on_thread_order(schedule, rng):
    """Every kernel, bit for bit under other thread orders. The backward gathers have a fixed
    order per element; max pooling's backward adds with atomics, so its gradient here holds
    small integers (exact sums in any order)."""
    C = Kernels("cuda")
    emu = kg.cuda._module_or_raise()
    x = rng.integers(-2, 3, (2, 3, 11, 9)).astype(np.float32)  # many ties: overlapping windows share maxima

    def run():
        out, idx = C.max_pool2d_with_indices(x, (3, 3), (1, 1), (1, 1), (1, 1), True)
        g = rng.integers(-3, 4, out.shape).astype(np.float32)
        avg = C.avg_pool2d(x, (3, 2), (2, 1), (1, 1), True, False, None)
        return [out, idx, C.max_pool2d_backward(g, idx, (11, 9)), C.max_unpool2d(out, idx, (11, 9)),
                avg, C.avg_pool2d_backward(avg, (11, 9), (3, 2), (2, 1), (1, 1), True, False, None),
                C.adaptive_avg_pool2d_backward(C.adaptive_avg_pool2d(x, (4, 5)), (11, 9)),
                C.upsample_bilinear2d_backward(x, (5, 4), False, None),
                C.upsample_nearest2d_backward(x, (4, 3), None),
                C.pad2d_backward(x, (9, 7), (1, 1, 1, 1), "reflect")]

    seed = rng.bit_generator.state
    before = emu.get_schedule()
    try:
        emu.set_schedule("forward")
        expected = run()
        rng.bit_generator.state = seed
        emu.set_schedule(schedule)
        got = run()
    finally:
        emu.set_schedule(before)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@needs_cuda
def test_cuda_binding_refuses_strided_arrays(x64):
    """The binding reads its arrays as contiguous: a strided view that did not pass through the
    backend (which copies it) is refused, not misread."""
    B = backend_for("cuda")
    view = B.transpose(B.from_numpy(x64), (0, 1, 3, 2))
    with pytest.raises(ValueError, match=r"max_pool2d: expected input to be C-contiguous"):
        kg.cuda._module_or_raise().max_pool2d(view, (2, 2), (2, 2), (0, 0), (1, 1), False)
