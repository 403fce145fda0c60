"""Conversion and interop: .numpy() memory sharing, __array__, DLPack, .to(), .item(), .tolist(),
dtype conversions, clone (API.md "Tensors", Conversion)."""


import numpy as np
import pytest

import kernelgrad as kg


def npy(t):
    return t.detach().cpu().numpy()


# --- .numpy() -----------------------------------------------------------------------------------

def test_numpy_shares_memory_both_ways():
    t = kg.zeros(2, 3)
    a = t.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (2, 3)
    a[1, 2] = 5.0
    assert t[1, 2].item() == 5.0
    t.add_(1.0)
    assert a[0, 0] == 1.0 and a[1, 2] == 6.0
    t[0, 1] = -3.0
    assert a[0, 1] == -3.0


@pytest.mark.parametrize(
    "dtype, np_dtype",
    [(kg.float32, np.float32), (kg.float64, np.float64), (kg.int64, np.int64), (kg.bool, np.bool_)],
)
def test_numpy_dtype_mapping(dtype, np_dtype):
    t = kg.zeros(3, dtype=dtype)
    assert t.numpy().dtype == np_dtype


def test_numpy_of_non_contiguous_view():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = kg.tensor(a)
    np.testing.assert_array_equal(t.T.numpy(), a.T)
    np.testing.assert_array_equal(t[:, ::2].numpy(), a[:, ::2])


def test_numpy_on_requires_grad_raises():
    x = kg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 1.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="detach"):
        y.numpy()


def test_numpy_of_0d():
    a = kg.tensor(3.5).numpy()
    assert a.shape == () and a == 3.5


def test_array_protocol():
    t = kg.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (2, 2)
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
    b = np.array(t, dtype=np.float64)
    assert b.dtype == np.float64
    np.testing.assert_array_equal(b, [[1.0, 2.0], [3.0, 4.0]])
    assert np.sum(np.asarray(kg.tensor([1, 2, 3]))) == 6


# --- DLPack -------------------------------------------------------------------------------------

def test_dlpack_device():
    dev = kg.ones(2).__dlpack_device__()
    assert tuple(int(v) for v in dev) == (1, 0)  # (kDLCPU, 0)


@pytest.mark.parametrize("dtype, np_dtype", [(kg.float32, np.float32), (kg.float64, np.float64),
                                             (kg.int64, np.int64)])
def test_numpy_from_dlpack_shares_memory(dtype, np_dtype):
    t = kg.tensor([[1, 2, 3], [4, 5, 6]], dtype=dtype)
    a = np.from_dlpack(t)
    assert a.dtype == np_dtype and a.shape == (2, 3)
    np.testing.assert_array_equal(a, [[1, 2, 3], [4, 5, 6]])
    t.fill_(7)
    np.testing.assert_array_equal(a, np.full((2, 3), 7))


def test_numpy_from_dlpack_non_contiguous():
    base = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    t = kg.tensor(base).T
    np.testing.assert_array_equal(np.from_dlpack(t), base.T)


def test_kg_from_dlpack_shares_memory():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = kg.from_dlpack(a)
    assert t.dtype == kg.float32 and t.shape == (2, 3)
    np.testing.assert_array_equal(npy(t), a)
    a[0, 0] = 100.0
    assert t[0, 0].item() == 100.0
    b = np.arange(4, dtype=np.int64)
    assert kg.from_dlpack(b).dtype == kg.int64
    c = np.arange(4.0)[::2]           # strided source
    np.testing.assert_array_equal(npy(kg.from_dlpack(c)), [0.0, 2.0])


def test_dlpack_round_trip():
    t = kg.tensor([1.5, 2.5, 3.5])
    back = kg.from_dlpack(np.from_dlpack(t))
    np.testing.assert_array_equal(npy(back), [1.5, 2.5, 3.5])
    back[1] = 0.0
    assert t[1].item() == 0.0
    same = kg.from_dlpack(t)           # any object with __dlpack__, kernelgrad tensors included
    np.testing.assert_array_equal(npy(same), npy(t))


def test_dlpack_export_of_requires_grad_raises():
    # torch raises BufferError ("Can't export tensors that require gradient, use tensor.detach()")
    with pytest.raises((RuntimeError, BufferError), match="detach"):
        np.from_dlpack(kg.ones(2, requires_grad=True))


# --- .to() and dtype conversions ---------------------------------------------------------------

def test_to_same_device_and_dtype_returns_self():
    t = kg.ones(3)
    assert t.to("cpu") is t
    assert t.to(kg.float32) is t
    assert t.cpu() is t


def test_to_dtype():
    t = kg.tensor([1.7, -1.7, 2.5])
    d = t.to(kg.float64)
    assert d.dtype == kg.float64
    np.testing.assert_allclose(npy(d), [1.7, -1.7, 2.5], rtol=1e-7)
    i = t.to(dtype=kg.int64)
    assert i.dtype == kg.int64 and i.tolist() == [1, -1, 2]   # truncation toward zero
    both = t.to(device="cpu", dtype=kg.float64)
    assert both.dtype == kg.float64 and both.device == "cpu"
    assert t.to("cpu", kg.float64).dtype == kg.float64
    b = kg.tensor([0.0, 2.0]).to(kg.bool)
    assert b.dtype == kg.bool and b.tolist() == [False, True]


def test_to_does_not_share_when_converting():
    t = kg.ones(2)
    d = t.to(kg.float64)
    d[0] = 5.0
    assert t[0].item() == 1.0


def test_float_double_long():
    t = kg.tensor([1.9, -2.9])
    assert t.double().dtype == kg.float64
    assert t.long().dtype == kg.int64 and t.long().tolist() == [1, -2]
    i = kg.tensor([1, 2])
    assert i.float().dtype == kg.float32 and i.float().tolist() == [1.0, 2.0]
    assert i.double().dtype == kg.float64


def test_to_device_round_trip(device):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = kg.tensor(a).to(device)
    assert t.device == device
    back = t.to("cpu")
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), a)
    np.testing.assert_array_equal(t.cpu().numpy(), a)
    t2 = kg.tensor(a).to(kg.device(device))
    assert t2.device == device


def test_to_device_keeps_grad_flowing(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True)
    (x.to(device) * 3).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(npy(x.grad), [3.0, 3.0])


def test_to_unavailable_cuda_raises():
    cuda = getattr(kg, "cuda", None)
    if cuda is not None and cuda.is_available():
        pytest.skip("cuda is available in this build")
    with pytest.raises((RuntimeError, ValueError, AssertionError)):
        kg.ones(2).to("cuda")


def test_to_bad_arguments():
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        kg.ones(2).to("not-a-device")


# --- .item() / .tolist() ------------------------------------------------------------------------

def test_item_types_and_values():
    f = kg.tensor(2.5).item()
    assert type(f) is float and f == 2.5
    i = kg.tensor(7).item()
    assert type(i) is int and i == 7
    b = kg.tensor(True).item()
    assert type(b) is bool and b is True
    assert kg.tensor([[4.0]]).item() == 4.0      # any one-element tensor
    assert kg.tensor([1.0], requires_grad=True).item() == 1.0


def test_item_on_many_elements_raises():
    with pytest.raises((RuntimeError, ValueError)):
        kg.tensor([1.0, 2.0]).item()
    with pytest.raises((RuntimeError, ValueError)):
        kg.zeros(0).item()


def test_tolist():
    assert kg.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    out = kg.tensor([[1.5, 2.0]]).tolist()
    assert out == [[1.5, 2.0]] and type(out[0][0]) is float
    assert type(kg.tensor([1]).tolist()[0]) is int
    assert kg.tensor([True, False]).tolist() == [True, False]
    assert kg.tensor(3.0).tolist() == 3.0          # 0-d gives a python scalar
    assert kg.zeros(0).tolist() == []
    assert kg.tensor([1.0, 2.0], requires_grad=True).tolist() == [1.0, 2.0]


# --- clone / contiguous / detach -------------------------------------------------------------

def test_clone_is_independent(device):
    t = kg.tensor([1.0, 2.0], device=device)
    c = t.clone()
    c[0] = 9.0
    assert t[0].item() == 1.0 and c[0].item() == 9.0
    assert c.dtype == t.dtype and c.device == t.device


def test_contiguous_of_transposed_has_values():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    c = kg.tensor(a).T.contiguous()
    np.testing.assert_array_equal(c.numpy(), a.T)
    assert c.numpy().flags["C_CONTIGUOUS"]


def test_from_numpy_rejects_unsupported_dtype():
    with pytest.raises((TypeError, ValueError)):
        kg.from_numpy(np.array(["a", "b"]))
    with pytest.raises((TypeError, ValueError)):
        kg.tensor(np.array([object(), object()]))


# --- optional extra oracle: torch -------------------------------------------------------------

def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    t = kg.tensor([1.0, 2.0, 3.0])
    tt = torch.from_dlpack(t)
    assert tt.tolist() == [1.0, 2.0, 3.0]
    tt[0] = 10.0
    assert t[0].item() == 10.0
    back = kg.from_dlpack(torch.arange(4, dtype=torch.float64))
    assert back.dtype == kg.float64 and back.tolist() == [0.0, 1.0, 2.0, 3.0]
