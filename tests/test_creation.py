"""Tensor creation, dtypes, attributes and random number generation (API.md "Tensors")."""

import numpy as np
import pytest

import kernelgrad as kg


def npy(t):
    return t.detach().cpu().numpy()


# --- kg.tensor: dtype inference -------------------------------------------------------------------

@pytest.mark.parametrize(
    "data, dtype, shape",
    [
        ([1.0, 2.5, -3.0], kg.float32, (3,)),          # python floats -> default float dtype
        ([1, 2, 3], kg.int64, (3,)),                    # python ints -> int64
        ([True, False], kg.bool, (2,)),
        ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], kg.float32, (3, 2)),
        ([[1, 2.5]], kg.float32, (1, 2)),               # mixed int/float -> float
        (3.5, kg.float32, ()),
        (7, kg.int64, ()),
        ([], kg.float32, (0,)),
    ],
)
def test_tensor_infers_dtype_and_shape(data, dtype, shape, device):
    t = kg.tensor(data, device=device)
    assert t.dtype == dtype
    assert t.shape == shape
    assert t.ndim == len(shape)
    np.testing.assert_array_equal(npy(t), np.array(data).reshape(shape))


@pytest.mark.parametrize(
    "np_dtype, kg_dtype",
    [(np.float32, kg.float32), (np.float64, kg.float64), (np.int64, kg.int64), (np.bool_, kg.bool)],
)
def test_tensor_from_numpy_array_keeps_dtype(np_dtype, kg_dtype, device):
    a = np.arange(6).reshape(2, 3).astype(np_dtype)
    t = kg.tensor(a, device=device)
    assert t.dtype == kg_dtype
    np.testing.assert_array_equal(npy(t), a)


def test_tensor_explicit_dtype(device):
    t = kg.tensor([1, 2, 3], dtype=kg.float64, device=device)
    assert t.dtype == kg.float64
    np.testing.assert_array_equal(npy(t), [1.0, 2.0, 3.0])
    t = kg.tensor([1.7, -1.7], dtype=kg.int64, device=device)
    assert t.dtype == kg.int64
    np.testing.assert_array_equal(npy(t), [1, -1])  # truncation toward zero, as torch


def test_tensor_copies_its_data(device):
    a = np.ones(3, dtype=np.float32)
    t = kg.tensor(a, device=device)
    a[0] = 42.0
    assert t[0].item() == 1.0


def test_tensor_from_tensor_list_of_scalars(device):
    t = kg.tensor([[1, 2], [3, 4]], device=device)
    assert t.tolist() == [[1, 2], [3, 4]]


def test_tensor_ragged_list_raises(device):
    with pytest.raises((ValueError, TypeError)):
        kg.tensor([[1.0, 2.0], [3.0]], device=device)


def test_tensor_int_overflow_raises(device):
    # 2**63 does not fit in int64: silently wrapping to -2**63 would be garbage
    with pytest.raises((ValueError, OverflowError, RuntimeError)):
        kg.tensor([2 ** 63], device=device)
    with pytest.raises((ValueError, OverflowError, RuntimeError)):
        kg.tensor(-(2 ** 64), device=device)


def test_tensor_requires_grad_leaf(device):
    t = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    assert t.requires_grad
    assert t.is_leaf
    assert t.grad is None
    assert t.grad_fn is None


@pytest.mark.parametrize("data", [[1, 2], [True, False]])
def test_integer_and_bool_tensors_cannot_require_grad(data, device):
    with pytest.raises(RuntimeError):
        kg.tensor(data, requires_grad=True, device=device)
    t = kg.tensor(data, device=device)
    with pytest.raises(RuntimeError):
        t.requires_grad_(True)
    with pytest.raises(RuntimeError):
        kg.zeros(2, dtype=kg.int64, requires_grad=True, device=device)


# --- from_numpy -------------------------------------------------------------------------------

def test_from_numpy_shares_memory():
    a = np.zeros((2, 3), dtype=np.float32)
    t = kg.from_numpy(a)
    assert t.dtype == kg.float32 and t.shape == (2, 3)
    a[1, 2] = 5.0
    assert t[1, 2].item() == 5.0
    t[0, 0] = 3.0
    assert a[0, 0] == 3.0


def test_from_numpy_float64_and_int64():
    assert kg.from_numpy(np.zeros(2)).dtype == kg.float64
    assert kg.from_numpy(np.zeros(2, dtype=np.int64)).dtype == kg.int64


# --- zeros / ones / empty / full ---------------------------------------------------------------

@pytest.mark.parametrize("fn, value", [(kg.zeros, 0.0), (kg.ones, 1.0)])
def test_zeros_ones(fn, value, device):
    for args, shape in [((2, 3), (2, 3)), (((2, 3),), (2, 3)), (([4],), (4,)), ((5,), (5,)), (((),), ())]:
        t = fn(*args, device=device)
        assert t.shape == shape, args
        assert t.dtype == kg.float32
        np.testing.assert_array_equal(npy(t), np.full(shape, value, dtype=np.float32))
    t = fn(2, 2, dtype=kg.int64, device=device)
    assert t.dtype == kg.int64
    np.testing.assert_array_equal(npy(t), np.full((2, 2), value))
    t = fn(3, requires_grad=True, device=device)
    assert t.requires_grad and t.is_leaf


def test_zero_sized_tensors(device):
    t = kg.zeros(0, 3, device=device)
    assert t.shape == (0, 3)
    assert t.numel() == 0
    assert kg.ones(3, 0, device=device).sum().item() == 0.0


def test_empty(device):
    t = kg.empty(3, 4, device=device)
    assert t.shape == (3, 4) and t.dtype == kg.float32
    t = kg.empty((2,), dtype=kg.float64, device=device)
    assert t.shape == (2,) and t.dtype == kg.float64


def test_full(device):
    t = kg.full((2, 3), 7.5, device=device)
    assert t.dtype == kg.float32
    np.testing.assert_array_equal(npy(t), np.full((2, 3), 7.5, dtype=np.float32))
    # as in torch, the fill value's type decides the dtype when none is given
    assert kg.full((2,), 7, device=device).dtype == kg.int64
    assert kg.full((2,), True, device=device).dtype == kg.bool
    t = kg.full((2,), 3, dtype=kg.float64, device=device)
    assert t.dtype == kg.float64 and npy(t).tolist() == [3.0, 3.0]


def test_negative_dimension_raises(device):
    with pytest.raises((ValueError, RuntimeError)):
        kg.zeros(-1, 3, device=device)


def test_dtype_argument_must_be_a_dtype(device):
    with pytest.raises(TypeError):
        kg.zeros(2, dtype="float32", device=device)


@pytest.mark.parametrize("dtype", [kg.float32, kg.float64, kg.int64])
def test_like_functions(dtype, device):
    base = kg.ones(2, 3, dtype=dtype, device=device)
    for fn, expected in [(kg.zeros_like, 0), (kg.ones_like, 1)]:
        t = fn(base)
        assert t.shape == (2, 3) and t.dtype == dtype and t.device == base.device
        np.testing.assert_array_equal(npy(t), np.full((2, 3), expected))
    t = kg.full_like(base, 4)
    assert t.shape == (2, 3) and t.dtype == dtype
    np.testing.assert_array_equal(npy(t), np.full((2, 3), 4))
    t = kg.empty_like(base)
    assert t.shape == (2, 3) and t.dtype == dtype
    t = kg.zeros_like(base, dtype=kg.float64)
    assert t.dtype == kg.float64


def test_like_functions_do_not_inherit_requires_grad(device):
    x = kg.ones(2, requires_grad=True, device=device)
    assert not kg.zeros_like(x).requires_grad
    assert kg.zeros_like(x, requires_grad=True).requires_grad


# --- arange / linspace / eye -------------------------------------------------------------------

@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        ((5,), {}, np.arange(5)),
        ((2, 6), {}, np.arange(2, 6)),
        ((0, 10, 3), {}, np.arange(0, 10, 3)),
        ((5, 0, -1), {}, np.arange(5, 0, -1)),
        ((0, 1, 0.25), {}, np.arange(0, 1, 0.25, dtype=np.float32)),
        ((1.5,), {}, np.arange(1.5, dtype=np.float32)),
        ((5,), {"dtype": kg.float32}, np.arange(5, dtype=np.float32)),
        ((0, 5), {"step": 2}, np.arange(0, 5, 2)),
    ],
)
def test_arange(args, kwargs, expected, device):
    t = kg.arange(*args, device=device, **kwargs)
    expected_dtype = kg.int64 if expected.dtype == np.int64 else kg.float32
    assert t.dtype == expected_dtype
    np.testing.assert_allclose(npy(t), expected, rtol=0, atol=1e-7)
    assert t.shape == expected.shape


def test_arange_zero_step_raises(device):
    with pytest.raises((ValueError, RuntimeError)):
        kg.arange(0, 5, 0, device=device)


def test_linspace(device):
    t = kg.linspace(0, 1, 5, device=device)
    assert t.dtype == kg.float32 and t.shape == (5,)
    np.testing.assert_allclose(npy(t), [0, 0.25, 0.5, 0.75, 1.0], rtol=1e-6, atol=1e-7)
    t = kg.linspace(-3, 3, 7, dtype=kg.float64, device=device)
    assert t.dtype == kg.float64
    np.testing.assert_allclose(npy(t), np.linspace(-3, 3, 7), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(npy(kg.linspace(2.0, 5.0, 1, device=device)), [2.0])


def test_eye(device):
    np.testing.assert_array_equal(npy(kg.eye(3, device=device)), np.eye(3, dtype=np.float32))
    t = kg.eye(2, 4, device=device)
    assert t.shape == (2, 4)
    np.testing.assert_array_equal(npy(t), np.eye(2, 4))
    assert kg.eye(2, dtype=kg.int64, device=device).dtype == kg.int64


# --- random -----------------------------------------------------------------------------------

def test_rand_range_and_shape(device):
    t = kg.rand(100, 50, device=device)
    assert t.shape == (100, 50) and t.dtype == kg.float32
    a = npy(t)
    assert a.min() >= 0.0 and a.max() < 1.0
    # 5000 uniforms: mean 0.5 with std 0.004, variance 1/12
    assert abs(a.mean() - 0.5) < 0.02
    assert abs(a.var() - 1 / 12) < 0.01
    assert kg.rand((3, 2), device=device).shape == (3, 2)


def test_randn_moments(device):
    a = npy(kg.randn(20000, device=device))
    # mean std error 0.007; var std error 0.01
    assert abs(a.mean()) < 0.04
    assert abs(a.std() - 1.0) < 0.04
    assert kg.randn(2, 3, dtype=kg.float64, device=device).dtype == kg.float64
    assert kg.randn((4,), device=device).shape == (4,)


def test_randint(device):
    t = kg.randint(3, 8, (2000,), device=device)
    assert t.dtype == kg.int64 and t.shape == (2000,)
    a = npy(t)
    assert a.min() == 3 and a.max() == 7  # high is exclusive; all 5 values show up in 2000 draws
    assert set(np.unique(a).tolist()) == {3, 4, 5, 6, 7}
    assert kg.randint(0, 2, (3, 4), device=device).shape == (3, 4)


def test_manual_seed_reproducible(device):
    kg.manual_seed(123)
    a = npy(kg.rand(5, device=device))
    b = npy(kg.randn(5, device=device))
    c = npy(kg.rand(5, device=device))
    assert not np.array_equal(a, c)  # the stream advances
    kg.manual_seed(123)
    np.testing.assert_array_equal(npy(kg.rand(5, device=device)), a)
    np.testing.assert_array_equal(npy(kg.randn(5, device=device)), b)
    kg.manual_seed(124)
    assert not np.array_equal(npy(kg.rand(5, device=device)), a)


def test_generator_argument(device):
    g = kg.Generator(device=device)
    assert g.manual_seed(7) is g  # manual_seed returns the generator, as torch
    a = npy(kg.rand(6, generator=g, device=device))
    g2 = kg.Generator(device=device).manual_seed(7)
    np.testing.assert_array_equal(npy(kg.rand(6, generator=g2, device=device)), a)

    def seeded():
        return kg.Generator(device=device).manual_seed(7)

    b = npy(kg.randn(6, generator=seeded(), device=device))
    np.testing.assert_array_equal(npy(kg.randn(6, generator=seeded(), device=device)), b)
    r = npy(kg.randint(0, 100, (6,), generator=seeded(), device=device))
    np.testing.assert_array_equal(npy(kg.randint(0, 100, (6,), generator=seeded(), device=device)), r)


def test_generator_does_not_touch_global_stream(device):
    kg.manual_seed(5)
    expected = npy(kg.rand(4, device=device))
    kg.manual_seed(5)
    kg.rand(100, generator=kg.Generator(device=device).manual_seed(1), device=device)
    np.testing.assert_array_equal(npy(kg.rand(4, device=device)), expected)


# --- attributes --------------------------------------------------------------------------------

def test_attributes(device):
    t = kg.zeros(2, 3, 4, device=device)
    assert isinstance(t.shape, tuple)
    assert t.shape == (2, 3, 4)
    assert t.size() == (2, 3, 4)
    assert t.size(1) == 3 and t.size(-1) == 4
    assert t.ndim == 3
    assert t.numel() == 24
    assert t.dtype == kg.float32
    assert t.device == device
    assert t.device == kg.device(device)
    assert str(t.device) == device
    assert not t.requires_grad and t.grad is None and t.grad_fn is None and t.is_leaf


def test_device_object_compares_to_string():
    assert kg.device("cpu") == "cpu"
    assert kg.device("cpu") == kg.device("cpu")
    assert kg.tensor(1.0).device == "cpu"


def test_size_dim_out_of_range(device):
    with pytest.raises((IndexError, ValueError)):
        kg.zeros(2, 3, device=device).size(2)


def test_T_and_mT(device):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = kg.tensor(a, device=device)
    assert t.T.shape == (3, 2)
    np.testing.assert_array_equal(npy(t.T), a.T)
    b = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    tb = kg.tensor(b, device=device)
    assert tb.mT.shape == (2, 4, 3)
    np.testing.assert_array_equal(npy(tb.mT), np.swapaxes(b, -1, -2))
    np.testing.assert_array_equal(npy(kg.tensor([1.0, 2.0], device=device).T), [1.0, 2.0])  # 1-D: unchanged
