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

def test_to_same_device_and_dtype_returns_self(device):
    t = kg.ones(3, device=device)
    assert t.to(device) is t
    assert t.to(kg.device(device)) is t
    assert t.to(kg.float32) is t
    assert t.to(device, kg.float32) is t
    assert (t.cpu() if device == "cpu" else t.cuda()) is t


def test_to_dtype(device):
    t = kg.tensor([1.7, -1.7, 2.5], device=device)
    d = t.to(kg.float64)
    assert d.dtype == kg.float64
    np.testing.assert_allclose(npy(d), [1.7, -1.7, 2.5], rtol=1e-7)
    i = t.to(dtype=kg.int64)
    assert i.dtype == kg.int64 and i.tolist() == [1, -1, 2]   # truncation toward zero
    both = t.to(device=device, dtype=kg.float64)
    assert both.dtype == kg.float64 and both.device == device
    assert t.to(device, kg.float64).dtype == kg.float64
    b = kg.tensor([0.0, 2.0], device=device).to(kg.bool)
    assert b.dtype == kg.bool and b.tolist() == [False, True]


def test_to_does_not_share_when_converting(device):
    t = kg.ones(2, device=device)
    d = t.to(kg.float64)
    d[0] = 5.0
    assert t[0].item() == 1.0


def test_float_double_long(device):
    t = kg.tensor([1.9, -2.9], device=device)
    assert t.double().dtype == kg.float64
    assert t.long().dtype == kg.int64 and t.long().tolist() == [1, -2]
    i = kg.tensor([1, 2], device=device)
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
    # and back: a leaf on the device, used on the CPU, gets its gradient on the device
    y = kg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (y.cpu() * kg.tensor([3.0, 4.0])).sum().backward()
    assert y.grad.device == device
    np.testing.assert_array_equal(npy(y.grad), [3.0, 4.0])
    z = kg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (z.to(device, kg.float64) * 2).sum().backward()  # a dtype change on the device
    assert z.grad.device == device and z.grad.dtype == kg.float32
    np.testing.assert_array_equal(npy(z.grad), [2.0, 2.0])


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

def test_item_types_and_values(device):
    f = kg.tensor(2.5, device=device).item()
    assert type(f) is float and f == 2.5
    i = kg.tensor(7, device=device).item()
    assert type(i) is int and i == 7
    b = kg.tensor(True, device=device).item()
    assert type(b) is bool and b is True
    assert kg.tensor([[4.0]], device=device).item() == 4.0      # any one-element tensor
    assert kg.tensor([1.0], requires_grad=True, device=device).item() == 1.0


def test_item_on_many_elements_raises(device):
    with pytest.raises((RuntimeError, ValueError)):
        kg.tensor([1.0, 2.0], device=device).item()
    with pytest.raises((RuntimeError, ValueError)):
        kg.zeros(0, device=device).item()


def test_tolist(device):
    assert kg.tensor([[1, 2], [3, 4]], device=device).tolist() == [[1, 2], [3, 4]]
    out = kg.tensor([[1.5, 2.0]], device=device).tolist()
    assert out == [[1.5, 2.0]] and type(out[0][0]) is float
    assert type(kg.tensor([1], device=device).tolist()[0]) is int
    assert kg.tensor([True, False], device=device).tolist() == [True, False]
    assert kg.tensor(3.0, device=device).tolist() == 3.0          # 0-d gives a python scalar
    assert kg.zeros(0, device=device).tolist() == []
    assert kg.tensor([1.0, 2.0], requires_grad=True, device=device).tolist() == [1.0, 2.0]


# --- clone / contiguous / detach -------------------------------------------------------------

def test_clone_is_independent(device):
    t = kg.tensor([1.0, 2.0], device=device)
    c = t.clone()
    c[0] = 9.0
    assert t[0].item() == 1.0 and c[0].item() == 9.0
    assert c.dtype == t.dtype and c.device == t.device


def test_contiguous_of_transposed_has_values(device):
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    t = kg.tensor(a, device=device).T
    assert not t.is_contiguous()
    c = t.contiguous()
    assert c.is_contiguous() and c.device == device
    np.testing.assert_array_equal(npy(c), a.T)
    if device == "cpu":
        assert c.numpy().flags["C_CONTIGUOUS"]
    assert kg.zeros(2, 0, 4, device=device).is_contiguous()  # empty: contiguous whatever the strides, as NumPy
    assert kg.zeros(2, 0, device=device).T.is_contiguous()


def test_from_numpy_rejects_unsupported_dtype(device):
    with pytest.raises((TypeError, ValueError)):
        kg.from_numpy(np.array(["a", "b"]))
    with pytest.raises((TypeError, ValueError)):
        kg.tensor(np.array(["a", "b"]), device=device)
    with pytest.raises((TypeError, ValueError)):
        kg.tensor(np.array([object(), object()]), device=device)


# --- CUDA tensors: what PyTorch defines for a tensor on the device ------------------------------

needs_cuda = pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator in this build")

# values whose bits must survive the trip: signed zeros, infinities, NaN, extremes, denormals
ROUND_TRIP = [
    (kg.float32, np.array([[0.0, -0.0, 1.5, -2.25], [np.inf, -np.inf, np.nan, 1e-45],
                           [np.finfo(np.float32).max, np.finfo(np.float32).tiny, 3.0e38, -7.0]], dtype=np.float32)),
    (kg.float64, np.array([[0.0, -0.0, np.pi], [np.inf, np.nan, 5e-324]], dtype=np.float64)),
    (kg.float16, np.array([0.0, -0.0, 65504.0, 6e-8, np.inf, np.nan], dtype=np.float16)),
    (kg.int64, np.array([[np.iinfo(np.int64).min, -1, 0], [1, 2 ** 53 + 1, np.iinfo(np.int64).max]], dtype=np.int64)),
    (kg.bool, np.array([[True, False], [False, True]])),
]


def _same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes(), (a, b)


@needs_cuda
@pytest.mark.parametrize("dtype, a", ROUND_TRIP, ids=[str(r[0]) for r in ROUND_TRIP])
def test_cuda_round_trip_is_exact(dtype, a):
    t = kg.from_numpy(a)
    assert t.dtype == dtype
    for on_device in (t.to("cuda"), t.cuda(), t.to(device="cuda"), t.to(kg.device("cuda")), t.to("cuda", dtype)):
        assert on_device.device == "cuda" and on_device.is_cuda and on_device.dtype == dtype
        assert on_device.shape == a.shape
        back = on_device.cpu()
        assert back.device == "cpu" and not back.is_cuda and back.dtype == dtype
        _same_bits(back.numpy(), a)
        _same_bits(on_device.to("cpu").numpy(), a)
    if a.ndim == 2:  # strided views both ways
        _same_bits(t.T.cuda().cpu().numpy(), a.T)
        _same_bits(t.cuda().T.cpu().numpy(), a.T)
        _same_bits(t.cuda()[:, ::2].cpu().numpy(), a[:, ::2])
        _same_bits(t[:, None, :].expand(a.shape[0], 3, a.shape[1]).cuda().cpu().numpy(),
                   np.broadcast_to(a[:, None, :], (a.shape[0], 3, a.shape[1])))


@needs_cuda
def test_cuda_to_with_dtype_converts_on_the_way():
    t = kg.tensor([1.7, -1.7, 2.5]).to("cuda", kg.int64)
    assert t.device == "cuda" and t.dtype == kg.int64 and t.tolist() == [1, -1, 2]
    back = kg.tensor([1, 0, 3], device="cuda").to("cpu", kg.float64)
    assert back.device == "cpu" and back.dtype == kg.float64 and back.tolist() == [1.0, 0.0, 3.0]
    c = kg.tensor([1.0, 2.0]).cuda()
    c[0] = 5.0  # the copy does not share memory with its source
    assert c.tolist() == [5.0, 2.0]


@needs_cuda
def test_cuda_numpy_raises_type_error():
    t = kg.tensor([[1.0, 2.0], [3.0, 4.0]], device="cuda")
    with pytest.raises(TypeError, match=r"cpu\(\)"):  # torch: "Use Tensor.cpu() to copy the tensor to host memory"
        t.numpy()
    with pytest.raises(TypeError):
        np.asarray(t)
    a = t.cpu().numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.0, 2.0], [3.0, 4.0]])
    a[0, 0] = 9.0  # a host copy: the device tensor keeps its values
    assert t[0, 0].item() == 1.0
    x = kg.ones(2, device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):  # torch checks requires_grad first
        x.numpy()
    np.testing.assert_array_equal(x.detach().cpu().numpy(), [1.0, 1.0])


@needs_cuda
def test_cuda_dlpack_export_to_numpy_raises():
    # NumPy only imports CPU memory: a CUDA tensor must be refused, never read as host memory
    with pytest.raises((TypeError, RuntimeError, BufferError)):
        np.from_dlpack(kg.ones(2, device="cuda"))


@needs_cuda
def test_cuda_repr_shows_device():
    # the CPU tensor's repr with device='cuda' after the dtype, before the autograd part (torch's order)
    for cpu in (kg.tensor([1.0, 2.5]), kg.tensor([[1, 2], [3, 4]]), kg.tensor([1.0], dtype=kg.float64),
                kg.tensor(True), kg.zeros(0, dtype=kg.float64)):
        r = repr(cpu)
        assert "device" not in r, r  # the CPU is the default: not shown
        assert repr(cpu.cuda()) == r[:-1] + ", device='cuda')"
    assert repr(kg.tensor([1.0], dtype=kg.float64, device="cuda")).endswith("dtype=kernelgrad.float64, device='cuda')")
    r = repr(kg.ones(2, device="cuda", requires_grad=True))
    assert r.endswith("], device='cuda', requires_grad=True)"), r
    r = repr(kg.ones(2, device="cuda", requires_grad=True) * 2)
    assert r.endswith(">)") and ", device='cuda', grad_fn=<" in r, r
    t = kg.tensor([1.0, 2.5], device="cuda")
    assert str(t.device) == "cuda" and t.device == kg.device("cuda") and t.device != "cpu"


def _cpu_and_cuda():
    return kg.tensor([1.0, 2.0, 3.0]), kg.tensor([4.0, 5.0, 6.0], device="cuda")


@needs_cuda
@pytest.mark.parametrize(
    "name, fn",
    [
        ("add", lambda a, b: a + b),
        ("radd", lambda a, b: b + a),
        ("mul", lambda a, b: a * b),
        ("div", lambda a, b: a / b),
        ("pow", lambda a, b: a ** b),
        ("lt", lambda a, b: a < b),
        ("eq", lambda a, b: a == b),
        ("maximum", lambda a, b: kg.maximum(a, b)),
        ("where", lambda a, b: kg.where(a > 1, a, b)),
        ("where_cond", lambda a, b: kg.where(b > 1, a, a)),
        ("cat", lambda a, b: kg.cat([a, b])),
        ("stack", lambda a, b: kg.stack([b, a])),
        ("add_", lambda a, b: a.add_(b)),
        ("iadd", lambda a, b: b.__iadd__(a)),
        ("mul_", lambda a, b: b.mul_(a)),
        ("matmul", lambda a, b: kg.matmul(a, b)),
        ("masked_fill", lambda a, b: b.masked_fill(a > 1, 0.0)),
        ("index", lambda a, b: b[kg.tensor([0, 2])]),
        ("index_mask", lambda a, b: b[a > 1]),
        ("setitem_index", lambda a, b: b.__setitem__(kg.tensor([0, 1]), 0.0)),
        ("gather", lambda a, b: b.gather(0, kg.tensor([0, 1]))),
        ("scatter_add", lambda a, b: b.scatter_add(0, kg.tensor([0, 1, 1], device="cuda"), a)),
    ],
)
def test_mixing_devices_raises_naming_both(name, fn):
    a, b = _cpu_and_cuda()
    with pytest.raises(RuntimeError) as e:
        fn(a, b)
    msg = str(e.value)
    assert "cpu" in msg and "cuda" in msg, msg
    np.testing.assert_array_equal(b.cpu().numpy(), [4.0, 5.0, 6.0])  # a failed in-place op changed nothing
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0, 3.0])


@needs_cuda
def test_mixing_devices_in_autograd_raises():
    x = kg.ones(2, device="cuda", requires_grad=True)
    with pytest.raises(RuntimeError, match="cpu|cuda"):
        x.grad = kg.ones(2)  # a gradient must live on its tensor's device
    with pytest.raises(RuntimeError, match="cpu|cuda"):
        (x * 2).backward(kg.ones(2))  # so must the gradient handed to backward
    (x * 2).backward(kg.ones(2, device="cuda"))
    assert x.grad.device == "cuda"


@needs_cuda
def test_cpu_scalar_tensor_may_join_a_cuda_op():
    # torch: a 0-d CPU tensor is treated like a Python scalar by a CUDA op
    t = kg.tensor([1.0, 2.0], device="cuda")
    for out in (t * kg.tensor(3.0), kg.tensor(3.0) * t, kg.maximum(t, kg.tensor(1.5))):
        assert out.device == "cuda"
    np.testing.assert_array_equal((t * kg.tensor(3.0)).cpu().numpy(), [3.0, 6.0])
    with pytest.raises(RuntimeError, match="cpu"):
        t * kg.tensor([3.0])  # one element, but not 0-d


@needs_cuda
def test_copy_between_devices():
    # torch: copy_ is the one op that may take its source from another device
    t = kg.zeros(2, 3, device="cuda")
    t.copy_(kg.tensor([1.0, 2.0, 3.0]))  # broadcast, from the CPU
    assert t.device == "cuda"
    np.testing.assert_array_equal(t.cpu().numpy(), [[1, 2, 3], [1, 2, 3]])
    c = kg.zeros(3, dtype=kg.float64)
    c.copy_(kg.tensor([4, 5, 6], device="cuda"))  # and to the CPU, converting the dtype
    assert c.device == "cpu" and c.dtype == kg.float64
    np.testing.assert_array_equal(c.numpy(), [4.0, 5.0, 6.0])


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
