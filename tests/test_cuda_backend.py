"""The CUDA backend's own machinery: the caching allocator, host<->device copies, kg.cuda's
queries, and CudaArray (strided device views) against NumPy, function by function. The tensor-level
tests in the other files run on "cuda" through the `device` fixture; these check the layer below.
Run on the emulator here (tests/conftest.py selects it); on a GPU machine, on the GPU."""
import numpy as np
import pytest

import kernelgrad as kg

pytestmark = pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator")


@pytest.fixture(scope="module")
def B():
    from kernelgrad.backend import cuda

    return cuda


def dev(B, a):
    return B.from_numpy(np.asarray(a))


def host(B, a):
    return B.to_numpy(a)


# --- kg.cuda


def test_device_queries():
    assert kg.cuda.is_available()
    assert kg.cuda.device_count() >= 1
    assert isinstance(kg.cuda.get_device_name(), str) and kg.cuda.get_device_name()
    assert kg.cuda.current_device() == 0
    kg.cuda.synchronize()
    kg.cuda.synchronize("cuda:0")
    if kg.cuda.is_emulated():
        assert "emulator" in kg.cuda.get_device_name()


def test_bad_device_index_is_an_error():
    with pytest.raises(RuntimeError, match="invalid CUDA device index"):
        kg.cuda.synchronize(kg.cuda.device_count())
    with pytest.raises(ValueError, match="expected a CUDA device"):
        kg.cuda.memory_allocated("cpu")


def test_bad_env_choice_is_an_error(monkeypatch):
    from kernelgrad import cuda

    saved = dict(cuda._state)
    try:
        cuda._state.clear()
        monkeypatch.setenv("KERNELGRAD_CUDA", "gpu-please")
        with pytest.raises(RuntimeError, match="KERNELGRAD_CUDA must be"):
            cuda.is_available()
        cuda._state.clear()
        monkeypatch.setenv("KERNELGRAD_CUDA", "off")
        assert not cuda.is_available() and cuda.device_count() == 0
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            cuda.get_device_name()
    finally:
        cuda._state.clear()
        cuda._state.update(saved)


# --- the caching allocator


def test_memory_allocated_follows_tensors():
    kg.cuda.empty_cache()
    base = kg.cuda.memory_allocated()
    t = kg.zeros(1000, device="cuda")  # 4000 bytes, rounded up to 4096
    assert kg.cuda.memory_allocated() - base == 4096
    assert kg.cuda.max_memory_allocated() >= kg.cuda.memory_allocated()
    del t
    assert kg.cuda.memory_allocated() == base


def test_freed_blocks_are_reused_and_empty_cache_returns_them():
    kg.cuda.empty_cache()
    t = kg.zeros(3000, device="cuda")
    reserved = kg.cuda.memory_reserved()
    del t
    assert kg.cuda.memory_reserved() == reserved  # cached, not freed
    u = kg.ones(3000, device="cuda")  # same size bin: served from the cache
    assert kg.cuda.memory_reserved() == reserved
    assert u.sum().item() == 3000  # and written completely
    del u
    kg.cuda.empty_cache()
    assert kg.cuda.memory_reserved() == kg.cuda.memory_allocated()


def test_reused_block_is_refilled_under_the_emulator(B):
    if not kg.cuda.is_emulated():
        pytest.skip("only the emulator refills reused blocks with NaN")
    a = dev(B, np.arange(256, dtype=np.float32))
    del a
    b = B.empty((256,), np.float32)  # the same block, fresh from the cache
    assert np.isnan(host(B, b)).all()


def test_zero_size_arrays_allocate_nothing(B):
    base = kg.cuda.memory_allocated()
    z = B.empty((0, 5), np.float32)
    assert kg.cuda.memory_allocated() == base
    assert host(B, z).shape == (0, 5)
    assert host(B, B.sum(z, axis=0)).tolist() == [0.0] * 5


# --- copies and dtypes


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.float16, np.float32, np.float64])
def test_round_trip_is_exact(B, dtype, rng):
    a = (rng.standard_normal((3, 5)) * 100).astype(dtype)
    if dtype == np.float32:
        a[0, 0], a[0, 1], a[0, 2] = np.nan, np.inf, -0.0
    d = dev(B, a)
    assert d.dtype == np.dtype(dtype) and d.shape == (3, 5)
    np.testing.assert_array_equal(host(B, d), a)
    assert np.signbit(host(B, d)[0, 2]) == np.signbit(a[0, 2])


def test_zero_dim_round_trip(B):
    d = dev(B, np.float32(2.5))
    assert d.shape == () and host(B, d).shape == ()
    assert host(B, d) == 2.5


@pytest.mark.parametrize("src", [np.bool_, np.int64, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("dst", [np.bool_, np.int64, np.float16, np.float32, np.float64])
def test_astype_matches_numpy(B, src, dst):
    a = np.array([0, 1, -2.5, 3.75, 1e4, -7, 0.5, 2.5], dtype=np.float64).astype(src)
    np.testing.assert_array_equal(host(B, B.astype(dev(B, a), dst)), a.astype(dst))


def test_float16_rounding_matches_numpy(B, rng):
    # round-to-nearest-even, subnormals, overflow to inf, NaN: every path of the float->half conversion
    a = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-9, 6, 200),
                        [65504, 65519.9, 65520, 1e6, -1e6, 6e-8, 2.98e-8, 2.99e-8, 1e-9, np.nan, np.inf, -np.inf,
                         0.5 + 2 ** -12, 0.5 + 3 * 2 ** -12]]).astype(np.float32)
    got = host(B, B.astype(dev(B, a), np.float16))
    with np.errstate(over="ignore"):  # NumPy warns where the cast overflows to inf (so do we, silently)
        expected = a.astype(np.float16)
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))
    back = host(B, B.astype(dev(B, got), np.float32))
    np.testing.assert_array_equal(back, got.astype(np.float32))


# --- views


def test_views_share_storage_and_match_numpy(B):
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    d = dev(B, a)
    for index in [(1,), (slice(None), 2), (Ellipsis, 3), (slice(None, None, -1), slice(1, 3), slice(None, None, 2)),
                  (None, 0, None), (-1, -2, -3), (slice(5, 1),)]:
        v = d[index]
        assert B.may_share_memory(v, d)
        np.testing.assert_array_equal(host(B, v), a[index])
    t = B.transpose(d, (2, 0, 1))
    np.testing.assert_array_equal(host(B, t), a.transpose(2, 0, 1))
    assert not B.is_contiguous(t) and B.is_contiguous(d)
    np.testing.assert_array_equal(host(B, B.broadcast_to(d[:, :1, :], (2, 3, 4, 5))),
                                  np.broadcast_to(a[:, :1, :], (2, 3, 4, 5)))


@pytest.mark.parametrize("shape,new", [((3, 4, 5), (12, 5)), ((3, 4, 5), (-1,)), ((3, 4, 5), (5, 12)),
                                       ((3, 4, 5), (3, 2, 2, 5)), ((1, 6), (2, 1, 3)), ((0, 3), (3, 0))])
def test_reshape_views_when_possible(B, shape, new):
    a = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    d = dev(B, a)
    np.testing.assert_array_equal(host(B, B.reshape(d, new)), a.reshape(new))
    # of a transposed view: a copy is needed for most shapes; the values must still match NumPy
    np.testing.assert_array_equal(host(B, B.reshape(B.transpose(d), new)), a.T.reshape(new))


def test_reshape_of_transpose_is_a_view_where_numpy_has_one(B):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d = B.transpose(dev(B, a), (1, 0, 2))  # (3, 2, 4): the last dim stays contiguous
    v = B.reshape(d, (3, 2, 2, 2))
    assert B.may_share_memory(v, d)
    np.testing.assert_array_equal(host(B, v), a.transpose(1, 0, 2).reshape(3, 2, 2, 2))
    with pytest.raises(ValueError, match="cannot reshape"):
        B.reshape(d, (5, 5))


# --- elementwise, against NumPy


UNARY = ["negative", "abs", "sign", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh", "isnan", "isfinite",
         "logical_not"]


@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_unary_matches_numpy(B, name, dtype):
    a = np.array([[-3, -1.5, -0.0, 0, 0.25, 1, 2.5, 40]], dtype=np.float64)
    if dtype == np.int64:
        a = np.array([[-3, -1, 0, 0, 1, 2, 7, 40]])
    a = a.astype(dtype)
    expected = getattr(np, name)(a) if name not in ("log", "log1p", "sqrt") else None
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(a)
    got = host(B, getattr(B, name)(dev(B, a)))
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=2e-6 if expected.dtype != np.float64 else 1e-13)


def test_trig_of_large_arguments(B):
    # the kernels reduce x / pi with 212 bits of 1/pi: float32 to the last bit at any size
    a32 = np.array([1e4, 1e6, 12345.678, 1e20, 3e38, -1e30, np.pi * 2 ** 20], dtype=np.float32)
    for fn in ("sin", "cos"):
        got = host(B, getattr(B, fn)(dev(B, a32)))
        np.testing.assert_allclose(got, getattr(np, fn)(a32.astype(np.float64)), atol=1e-7)
    a64 = np.array([0.1, 3.0, 1e4, 1e8, 123456789.123, 2.0 ** 40 + 0.5, 1e22, 1e40], dtype=np.float64)
    for fn in ("sin", "cos"):
        got = host(B, getattr(B, fn)(dev(B, a64)))
        np.testing.assert_allclose(got, getattr(np, fn)(a64), atol=1e-14)


BINARY = ["add", "subtract", "multiply", "divide", "floor_divide", "remainder", "power", "maximum", "minimum",
          "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and", "logical_or"]


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_binary_matches_numpy_with_broadcasting(B, name, dtype):
    a = np.array([[-7.5, -3, -1, 0, 1, 2.5, 5, 9]], dtype=np.float64).T  # (8, 1)
    b = np.array([-2, -0.5, 1, 3], dtype=np.float64)  # (4,)
    if dtype == np.int64:
        a, b = np.round(a), np.array([-2, -1, 1, 3])
    if name == "power":
        a, b = np.abs(a), np.abs(b)
    a, b = a.astype(dtype), b.astype(dtype)
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(a, b)
    got = host(B, getattr(B, name)(dev(B, a), dev(B, b)))
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_division_by_zero_and_nan_follow_numpy(B):
    a = np.array([1.0, -1.0, 0.0, np.nan, 5.0], dtype=np.float32)
    b = np.array([0.0, 0.0, 0.0, 1.0, -0.0], dtype=np.float32)
    with np.errstate(all="ignore"):
        for name in ("divide", "floor_divide", "remainder", "maximum", "minimum"):
            np.testing.assert_array_equal(host(B, getattr(B, name)(dev(B, a), dev(B, b))), getattr(np, name)(a, b))
    ia, ib = np.array([7, -7, 7, -7, 3]), np.array([2, 2, -2, -2, 0])
    with np.errstate(all="ignore"):
        for name in ("floor_divide", "remainder"):
            np.testing.assert_array_equal(host(B, getattr(B, name)(dev(B, ia), dev(B, ib))),
                                          getattr(np, name)(ia, ib))


def test_scalars_follow_numpy_promotion(B):
    f32 = dev(B, np.array([1.0, 2.0], dtype=np.float32))
    i64 = dev(B, np.array([1, 2]))
    assert B.add(f32, 1.5).dtype == np.float32
    assert B.add(i64, 1).dtype == np.int64
    assert B.add(i64, 1.5).dtype == np.float64
    assert B.divide(i64, 2).dtype == np.float64
    np.testing.assert_array_equal(host(B, 10 - i64), [9, 8])
    np.testing.assert_array_equal(host(B, 2 ** f32), [2, 4])


def test_where_clip_and_out(B):
    a = np.array([-2.0, -0.5, 0.5, np.nan, 3.0], dtype=np.float32)
    d = dev(B, a)
    np.testing.assert_array_equal(host(B, B.where(B.greater(d, 0), d, 0.0)), np.where(a > 0, a, 0))
    np.testing.assert_array_equal(host(B, B.clip(d, -1, 1)), np.clip(a, -1, 1))
    out = dev(B, np.zeros(5, np.float32))
    B.add(d, d, out=out)
    np.testing.assert_array_equal(host(B, out), a + a)


# --- reductions


@pytest.mark.parametrize("name,axis", [(name, axis) for name in ["sum", "prod", "amax", "amin", "all", "any",
                                                                   "argmax", "argmin"]
                                       for axis in [None, 0, 1, -1, (0, 2)]
                                       if not (name.startswith("arg") and isinstance(axis, tuple))])
def test_reductions_match_numpy(B, name, axis, rng):
    a = rng.standard_normal((3, 37, 4)).astype(np.float32)
    a[1, 5, 2] = a[1, 9, 2]  # a tie for the arg reductions
    for keepdims in (False, True):
        expected = getattr(np, name)(a, axis=axis, keepdims=keepdims)
        got = host(B, getattr(B, name)(dev(B, a), axis=axis, keepdims=keepdims))
        assert got.shape == np.shape(expected) and got.dtype == np.asarray(expected).dtype
        # float32 sums of up to 148 terms of O(1): a few ulps of the sum's magnitude
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_long_rows_take_the_block_reduction(B, rng):
    a = rng.standard_normal((2, 9000)).astype(np.float64)
    np.testing.assert_allclose(host(B, B.sum(dev(B, a), axis=1)), a.sum(1), rtol=1e-12)
    np.testing.assert_array_equal(host(B, B.amax(dev(B, a), axis=1)), a.max(1))


def test_nan_propagates_and_argmax_finds_the_first_nan(B):
    a = np.array([[1, np.nan, 3, np.nan], [4, 5, 5, 0]], dtype=np.float32)
    d = dev(B, a)
    np.testing.assert_array_equal(host(B, B.amax(d, axis=1)), np.amax(a, axis=1))
    np.testing.assert_array_equal(host(B, B.argmax(d, axis=1)), np.argmax(a, axis=1))
    np.testing.assert_array_equal(host(B, B.argmin(d, axis=1)), np.argmin(a, axis=1))
    with pytest.raises(ValueError, match="zero-size array"):
        B.amax(B.empty((0,), np.float32))


def test_bool_and_int_sums_are_int64(B):
    m = dev(B, np.array([True, False, True]))
    assert B.sum(m).dtype == np.int64 and host(B, B.sum(m)) == 2
    np.testing.assert_array_equal(host(B, B.cumprod(dev(B, np.array([[1, 2, 3], [4, 5, 6]])), axis=1)),
                                  [[1, 2, 6], [4, 20, 120]])
    np.testing.assert_array_equal(host(B, B.cumsum(dev(B, np.array([[1, 2, 3], [4, 5, 6]])), axis=0)),
                                  [[1, 2, 3], [5, 7, 9]])


# --- indexing


def test_advanced_indexing_matches_numpy(B):
    a = np.arange(120, dtype=np.float32).reshape(4, 5, 6)
    d = dev(B, a)
    i0 = np.array([3, 0, -1])
    i1 = np.array([[1], [3]])
    mask = a[:, :, 0] > 40
    for index in [(i0,), (slice(None), i0), (i0, slice(1, 3), np.array([0, 5, 2])), (i1, i0),
                  (Ellipsis, i0), (0, slice(None), i0), (mask,), (mask, slice(None, 2)), (a > 100,),
                  (slice(None), None, i0)]:
        dindex = tuple(dev(B, x) if isinstance(x, np.ndarray) else x for x in index)
        np.testing.assert_array_equal(host(B, d[dindex]), a[index], err_msg=str(index))


def test_index_out_of_range_is_an_index_error(B):
    d = dev(B, np.zeros((3, 4), np.float32))
    with pytest.raises(IndexError, match="index 4 is out of bounds for axis 1 with size 4"):
        d[:, dev(B, np.array([0, 4]))]
    with pytest.raises(IndexError, match="index -4 is out of bounds for axis 0"):
        d[dev(B, np.array([-4]))]
    with pytest.raises(IndexError, match="out of bounds"):
        d[3]
    with pytest.raises(IndexError, match="too many indices"):
        d[0, 0, 0]
    with pytest.raises(IndexError, match="integer"):
        d[dev(B, np.array([0.5]))]


def test_setitem_and_index_add_match_numpy(B):
    a = np.zeros((4, 5), np.float32)
    d = dev(B, a)
    idx = np.array([0, 2, 2, 3])
    B.setitem(d, (slice(None), 1), 7.0)
    a[:, 1] = 7.0
    B.setitem(d, (dev(B, np.array([1, 3])),), dev(B, np.arange(5, dtype=np.float32)))
    a[[1, 3]] = np.arange(5)
    B.index_add(d, (dev(B, idx), slice(None)), dev(B, np.ones((4, 5), np.float32)))
    np.add.at(a, (idx, slice(None)), np.ones((4, 5), np.float32))
    np.testing.assert_array_equal(host(B, d), a)


def test_gather_and_scatter_add_match_numpy(B):
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    idx = np.array([[0, 3], [1, 1], [2, 0]])
    np.testing.assert_array_equal(host(B, B.gather(dev(B, a), 1, dev(B, idx))), np.take_along_axis(a, idx, 1))
    out = dev(B, np.zeros((3, 4)))
    B.scatter_add(out, 1, dev(B, idx), dev(B, np.ones((3, 2))))
    expected = np.zeros((3, 4))
    for i in range(3):
        for j in range(2):
            expected[i, idx[i, j]] += 1
    np.testing.assert_array_equal(host(B, out), expected)


def test_nonzero_and_creation(B):
    m = np.array([[True, False, True], [False, False, True]])
    for got, expected in zip(B.nonzero(dev(B, m)), np.nonzero(m)):
        np.testing.assert_array_equal(host(B, got), expected)
    np.testing.assert_array_equal(host(B, B.arange(-3, 10, 4, np.int64)), np.arange(-3, 10, 4))
    np.testing.assert_allclose(host(B, B.arange(0, 1, 0.1, np.float32)), np.arange(0, 1, 0.1).astype(np.float32))
    np.testing.assert_array_equal(host(B, B.linspace(-1, 2, 7, np.float64)), np.linspace(-1, 2, 7))
    np.testing.assert_array_equal(host(B, B.eye(3, 5, np.float32)), np.eye(3, 5, dtype=np.float32))
    np.testing.assert_array_equal(host(B, B.tril(dev(B, np.ones((3, 4))), -1)), np.tril(np.ones((3, 4)), -1))
    np.testing.assert_array_equal(host(B, B.triu(dev(B, np.ones((2, 3, 4))), 1)), np.triu(np.ones((2, 3, 4)), 1))
    np.testing.assert_array_equal(host(B, B.concatenate([dev(B, np.ones((2, 2))), dev(B, np.zeros((1, 2)))])),
                                  np.concatenate([np.ones((2, 2)), np.zeros((1, 2))]))


def test_no_implicit_host_conversion(B):
    d = dev(B, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="cannot be converted to a NumPy array implicitly"):
        np.asarray(d)
    with pytest.raises(TypeError, match="NumPy array"):
        B.add(d, np.ones(3, np.float32))


# --- tensors on the device


def test_mixing_devices_names_both():
    a = kg.ones(3)
    b = kg.ones(3, device="cuda")
    with pytest.raises(RuntimeError, match="cpu.*cuda|cuda.*cpu"):
        a + b
    with pytest.raises(RuntimeError, match="cpu.*cuda|cuda.*cpu"):
        kg.where(b > 0, a, b)


def test_cuda_tensor_refuses_numpy_but_copies_back():
    t = kg.arange(6.0, device="cuda").reshape(2, 3)
    assert t.is_cuda and t.device.type == "cuda"
    with pytest.raises(TypeError, match="cuda"):
        t.numpy()
    np.testing.assert_array_equal(t.cpu().numpy(), np.arange(6.0).reshape(2, 3))
    assert "device='cuda'" in repr(t)
    assert t.tolist() == [[0, 1, 2], [3, 4, 5]] and t[1, 2].item() == 5


def test_autograd_runs_on_the_device(rng):
    x = rng.standard_normal((4, 5))
    tc = kg.tensor(x, device="cuda", requires_grad=True)
    t = kg.tensor(x, requires_grad=True)
    for v in (t, tc):
        ((v.exp() * v[:, :3].sum(1, keepdim=True)).tanh() / (1 + v.abs())).sum().backward()
    assert tc.grad.device.type == "cuda"
    np.testing.assert_allclose(tc.grad.cpu().numpy(), t.grad.numpy(), rtol=1e-12)
