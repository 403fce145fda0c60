"""Indexing (get and set) and the index ops gather / scatter_add / masked_fill / where / one_hot,
with gradients (API.md "Tensors")."""

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F

gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


A = np.arange(60, dtype=np.float32).reshape(3, 4, 5)


def _idx(i, device):
    """Turn ('t', list) markers into kernelgrad index tensors; leave everything else as is."""
    if isinstance(i, tuple) and i and i[0] == "t":
        return kg.tensor(np.array(i[1]), device=device)
    if isinstance(i, tuple):
        return tuple(_idx(j, device) for j in i)
    return i


def _np_idx(i):
    if isinstance(i, tuple) and i and i[0] == "t":
        return np.array(i[1])
    if isinstance(i, tuple):
        return tuple(_np_idx(j) for j in i)
    return i


GET_INDICES = [
    0,
    -1,
    (1, 2),
    (1, 2, 3),
    (-1, -2, -3),
    slice(1, 3),
    (slice(None), slice(1, 4, 2)),
    (slice(None, None, 2), slice(None), slice(0, 5, 3)),
    (slice(-2, None), 1),
    (slice(5, 10),),                         # empty slice past the end
    (Ellipsis, 1),
    (0, Ellipsis),
    (Ellipsis, slice(None, None, 2)),
    None,
    (slice(None), None, 1),
    (None, Ellipsis, None),
    [0, 2],
    [2, 0, 2, -1],                          # repeats and negatives
    ("t", [1, 0]),
    ("t", [[0, 1], [2, 2]]),                # 2-D index tensor
    (slice(None), [3, 0]),
    ([0, 1], [1, 3]),                       # paired advanced indices
    ([0, 2], slice(None), [4, 0]),          # advanced indices separated by a slice
    (1, [0, 2], slice(1, 3)),
    ("t", [True, False, True]),             # bool mask on the first dim
    (slice(None), ("t", [True, False, True, False])),
]


@pytest.mark.parametrize("index", GET_INDICES, ids=repr)
def test_getitem_matches_numpy(index, device):
    t = kg.tensor(A, device=device)
    out = t[_idx(index, device)]
    expected = A[_np_idx(index)]
    assert out.shape == expected.shape
    assert out.dtype == kg.float32
    np.testing.assert_array_equal(npy(out), expected)


def test_bool_mask_same_shape(device):
    t = kg.tensor(A, device=device)
    m = t > 30
    out = t[m]
    assert out.shape == (29,)
    np.testing.assert_array_equal(npy(out), A[A > 30])


def test_integer_index_gives_0d_and_item(device):
    t = kg.tensor(A, device=device)
    assert t[1, 2, 3].shape == ()
    assert t[1, 2, 3].item() == A[1, 2, 3]


@pytest.mark.parametrize(
    "index, exc",
    [
        (3, IndexError),
        (-4, IndexError),
        ((0, 0, 0, 0), IndexError),                 # too many indices
        ((0, 5), IndexError),
    ],
    ids=repr,
)
def test_getitem_out_of_range(index, exc, device):
    with pytest.raises(exc):
        kg.tensor(A, device=device)[index]


def test_getitem_out_of_range_index_tensor(device):
    with pytest.raises((IndexError, RuntimeError)):
        kg.tensor(A, device=device)[kg.tensor([0, 3], device=device)]


def test_float_index_tensor_rejected(device):
    with pytest.raises((IndexError, TypeError)):
        kg.tensor(A, device=device)[kg.tensor([0.0, 1.0], device=device)]


def test_negative_step_rejected(device):
    # torch does not support negative slice steps ("step must be greater than zero")
    with pytest.raises((ValueError, RuntimeError)):
        kg.tensor(A, device=device)[::-1]


def test_basic_index_is_a_view(device):
    t = kg.zeros(3, 4, device=device)
    row = t[1]
    row[2] = 5.0
    assert t[1, 2].item() == 5.0
    strided = t[:, ::2]
    strided.fill_(1.0)
    np.testing.assert_array_equal(npy(t)[:, ::2], np.ones((3, 2)))
    np.testing.assert_array_equal(npy(t)[:, 1], [0.0, 0.0, 0.0])


def test_full_integer_index_is_a_0d_view(device):
    # NumPy returns a scalar copy for a[i] on 1-D / a[i, j] on 2-D; a torch tensor returns a 0-d view
    t = kg.tensor([1.0, 2.0], device=device)
    t[0].mul_(5)
    np.testing.assert_array_equal(npy(t), [5.0, 2.0])
    m = kg.zeros(2, 3, device=device)
    m[1, 2].add_(4)
    m[0][1].fill_(7)
    np.testing.assert_array_equal(npy(m), [[0.0, 7.0, 0.0], [0.0, 0.0, 4.0]])


# --- setitem ----------------------------------------------------------------------------------

SET_CASES = [
    (0, 7.0),
    ((1, 2), np.arange(5, dtype=np.float32)),
    ((slice(None), 1), -1.0),
    ((Ellipsis, slice(0, 5, 2)), np.arange(3, dtype=np.float32)),   # broadcast over leading dims
    ([0, 2], np.ones((4, 5), dtype=np.float32)),
    (([0, 2], [1, 3]), np.array([[10.0] * 5, [20.0] * 5], dtype=np.float32)),
    ("mask", 0.0),
]


@pytest.mark.parametrize("index, value", SET_CASES, ids=[repr(c[0]) for c in SET_CASES])
def test_setitem_matches_numpy(index, value, device):
    expected = A.copy()
    t = kg.tensor(A, device=device)
    if isinstance(index, str):
        expected[A % 7 == 0] = value
        t[kg.tensor(A % 7 == 0, device=device)] = value
    else:
        expected[index] = value
        t[index] = kg.tensor(value, device=device) if isinstance(value, np.ndarray) else value
    np.testing.assert_array_equal(npy(t), expected)


def test_setitem_with_int_index_tensor_and_scalar(device):
    t = kg.zeros(5, device=device)
    t[kg.tensor([1, 3], device=device)] = 2.0
    np.testing.assert_array_equal(npy(t), [0, 2, 0, 2, 0])


def test_setitem_casts_value_to_tensor_dtype(device):
    t = kg.zeros(3, dtype=kg.int64, device=device)
    t[1] = 2.7
    assert t.dtype == kg.int64 and t.tolist() == [0, 2, 0]
    f = kg.zeros(2, device=device)
    f[0] = kg.tensor(3, dtype=kg.int64, device=device)
    assert f.dtype == kg.float32 and f.tolist() == [3.0, 0.0]


def test_setitem_shape_mismatch_raises(device):
    t = kg.zeros(3, 4, device=device)
    with pytest.raises((RuntimeError, ValueError)):
        t[0] = kg.ones(3, device=device)


def test_setitem_on_leaf_requiring_grad_raises(device):
    x = kg.zeros(3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError):
        x[0] = 1.0


# --- gradients through indexing -------------------------------------------------------------

GRAD_INDICES = [
    1,
    (slice(None), slice(1, 4, 2)),
    (Ellipsis, None, 2),
    [2, 0, 2, 2],                            # repeated rows: gradients accumulate
    ([0, 1, 0], [1, 3, 1]),
    ([0, 2], slice(None), [4, 0]),
    ("mask", None),
]


@pytest.mark.parametrize("index", GRAD_INDICES, ids=repr)
def test_getitem_gradcheck(index, rng, device):
    a = rng.standard_normal((3, 4, 5))
    x = f64(a, device=device)
    if index == ("mask", None):
        mask = kg.tensor(a > 0, device=device)
        assert gradcheck(lambda t: t[mask] * 2.0, (x,))
    else:
        assert gradcheck(lambda t: t[index] * 2.0, (x,))


def test_getitem_repeated_index_accumulates(device):
    x = kg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    x[[0, 0, 1, 0]].sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [3.0, 1.0, 0.0])
    x.grad = None
    x[kg.tensor([True, False, True], device=device)].sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [1.0, 0.0, 1.0])


def test_setitem_on_non_leaf_backprops(device):
    x = kg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    y = x * 3
    y[0] = 0.0                              # overwritten elements get no gradient
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [[0.0, 0.0], [3.0, 3.0]])


def test_setitem_value_gets_gradient(device):
    v = kg.tensor([5.0, 6.0], requires_grad=True, device=device)
    y = kg.zeros(3, 2, device=device)
    y[1] = v * 2
    assert y.requires_grad
    (y * kg.tensor([[1.0, 1.0], [2.0, 3.0], [1.0, 1.0]], device=device)).sum().backward()
    np.testing.assert_array_equal(npy(v.grad), [4.0, 6.0])


# --- gather / scatter_add -------------------------------------------------------------------

def test_gather(device, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    idx = np.array([[0, 3], [1, 1], [2, 0]])
    t = kg.tensor(a, device=device)
    ti = kg.tensor(idx, device=device)
    np.testing.assert_array_equal(npy(t.gather(1, ti)), np.take_along_axis(a, idx, 1))
    np.testing.assert_array_equal(npy(kg.gather(t, 1, ti)), np.take_along_axis(a, idx, 1))
    idx0 = np.array([[2, 0, 1, 0]])
    np.testing.assert_array_equal(npy(kg.gather(t, 0, kg.tensor(idx0, device=device))),
                                  np.take_along_axis(a, idx0, 0))
    # torch: the index may be smaller than the input in the other dims
    small = np.array([[1], [0]])
    np.testing.assert_array_equal(npy(t.gather(1, kg.tensor(small, device=device))),
                                  a[:2][np.arange(2)[:, None], small])


def test_gather_grad(rng, device):
    x = f64(rng.standard_normal((3, 4)), device=device)
    idx = kg.tensor([[0, 3, 3], [1, 1, 1], [2, 0, 1]], device=device)  # repeats accumulate
    assert gradcheck(lambda t: t.gather(1, idx), (x,))
    x.gather(1, idx).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [[1, 0, 0, 2], [0, 3, 0, 0], [1, 1, 1, 0]])


def test_gather_bad_index(device):
    with pytest.raises((RuntimeError, IndexError, TypeError)):
        kg.ones(2, 3, device=device).gather(1, kg.tensor([[0.0, 1.0]], device=device))     # float index
    with pytest.raises((RuntimeError, IndexError, ValueError)):
        kg.ones(2, 3, device=device).gather(1, kg.tensor([[0, 3]], device=device))         # out of range


def test_scatter_add(device, rng):
    base = rng.standard_normal((3, 5)).astype(np.float32)
    src = rng.standard_normal((3, 4)).astype(np.float32)
    idx = np.array([[0, 1, 0, 4], [2, 2, 2, 2], [4, 3, 2, 1]])
    expected = base.copy()
    for i in range(3):
        for j in range(4):
            expected[i, idx[i, j]] += src[i, j]
    t = kg.tensor(base, device=device)
    out = t.scatter_add(1, kg.tensor(idx, device=device), kg.tensor(src, device=device))
    np.testing.assert_allclose(npy(out), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(npy(t), base)  # out of place
    out = kg.scatter_add(t, 1, kg.tensor(idx, device=device), kg.tensor(src, device=device))
    np.testing.assert_allclose(npy(out), expected, rtol=1e-6, atol=1e-6)
    # dim 0
    idx0 = np.array([[0, 2, 2, 1, 0]])
    src0 = np.ones((1, 5), dtype=np.float32)
    expected0 = base.copy()
    expected0[idx0[0], np.arange(5)] += 1
    out = kg.scatter_add(t, 0, kg.tensor(idx0, device=device), kg.tensor(src0, device=device))
    np.testing.assert_allclose(npy(out), expected0, rtol=1e-6, atol=1e-6)


def test_scatter_add_grad(rng, device):
    base = f64(rng.standard_normal((3, 5)), device=device)
    src = f64(rng.standard_normal((3, 4)), device=device)
    idx = kg.tensor([[0, 1, 0, 4], [2, 2, 2, 2], [4, 3, 2, 1]], device=device)
    assert gradcheck(lambda b, s: kg.scatter_add(b, 1, idx, s), (base, src))


# --- masked_fill / where --------------------------------------------------------------------

def test_masked_fill(device, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    mask = np.array([True, False, False, True])       # broadcast over rows
    t = kg.tensor(a, device=device)
    out = t.masked_fill(kg.tensor(mask, device=device), -1e9)
    np.testing.assert_array_equal(npy(out), np.where(mask, np.float32(-1e9), a))
    np.testing.assert_array_equal(npy(t), a)           # out of place
    out = kg.masked_fill(t, kg.tensor(a > 0, device=device), 0.0)
    np.testing.assert_array_equal(npy(out), np.where(a > 0, 0, a))


def test_masked_fill_grad(rng, device):
    x = f64(rng.standard_normal((3, 4)), device=device)
    mask = kg.tensor(np.array([[True, False, False, True]]), device=device)
    assert gradcheck(lambda t: t.masked_fill(mask, 2.0), (x,))
    x.masked_fill(mask, 2.0).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), np.tile([0.0, 1.0, 1.0, 0.0], (3, 1)))


def test_masked_fill_requires_bool_mask(device):
    with pytest.raises((RuntimeError, TypeError)):
        kg.ones(3, device=device).masked_fill(kg.tensor([1.0, 0.0, 1.0], device=device), 0.0)


def test_where_grad_flows_to_selected(rng, device):
    cond = kg.tensor([[True, False], [False, True]], device=device)
    a = kg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    b = kg.tensor([10.0, 20.0], requires_grad=True, device=device)
    (kg.where(cond, a, b) * kg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)).sum().backward()
    np.testing.assert_array_equal(npy(a.grad), [[1.0, 0.0], [0.0, 4.0]])
    np.testing.assert_array_equal(npy(b.grad), [3.0, 2.0])


# --- one_hot ----------------------------------------------------------------------------------

def test_one_hot(device):
    t = kg.tensor([0, 2, 1, 2], device=device)
    out = F.one_hot(t, num_classes=4)
    assert out.dtype == kg.int64 and out.shape == (4, 4)
    np.testing.assert_array_equal(npy(out), np.eye(4, dtype=np.int64)[[0, 2, 1, 2]])
    out = F.one_hot(t)                         # num_classes=-1: max + 1
    assert out.shape == (4, 3)
    out = F.one_hot(kg.tensor([[0, 1], [2, 0]], device=device), 3)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(npy(out), np.eye(3, dtype=np.int64)[[[0, 1], [2, 0]]])


def test_one_hot_bad_input(device):
    with pytest.raises((RuntimeError, TypeError)):
        F.one_hot(kg.tensor([0.0, 1.0], device=device), 2)    # float indices
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        F.one_hot(kg.tensor([0, 3], device=device), 3)        # class out of range
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        F.one_hot(kg.tensor([0, -1], device=device), 3)


# --- optional extra oracle: torch -------------------------------------------------------------

def test_indexing_matches_torch():
    torch = pytest.importorskip("torch")

    def to(mod, i):
        if isinstance(i, tuple) and i and i[0] == "t":
            return mod.tensor(np.array(i[1]))
        if isinstance(i, tuple):
            return tuple(to(mod, j) for j in i)
        return i

    t, tt = kg.tensor(A), torch.tensor(A)
    for index in GET_INDICES:
        np.testing.assert_array_equal(npy(t[to(kg, index)]), tt[to(torch, index)].numpy(), err_msg=repr(index))
