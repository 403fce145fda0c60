"""kg.save / kg.load: exact round trips, a format that never runs code, clear errors on bad files."""
import collections
import io
import json
import math
import pickle
import struct
import zlib

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.optim as optim
from kernelgrad import serialization
from kernelgrad.serialization import load, save


def _round_trip(obj, **load_kwargs):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    return load(buf, **load_kwargs)


def _bits(t):
    a = np.ascontiguousarray(t.detach().cpu().numpy())
    return a.reshape(-1).view(np.uint8).tobytes()


def _same_tensor(a, b):
    assert isinstance(b, kg.Tensor)
    assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
    assert a.requires_grad == b.requires_grad and b.is_leaf
    assert _bits(a) == _bits(b)  # bit-exact, NaN payloads and -0.0 included


# --- round trips
@pytest.mark.parametrize("dtype", [kg.bool, kg.int64, kg.float16, kg.float32, kg.float64])
def test_tensor_dtypes_bit_exact(dtype, device):
    rng = np.random.default_rng(0)
    if dtype == kg.bool:
        data = rng.random((3, 5)) > 0.5
    elif dtype == kg.int64:
        data = np.array([[2 ** 62 + 1, -(2 ** 63), 0], [1, -1, 2 ** 63 - 1]], dtype=np.int64)
    else:
        data = rng.standard_normal((4, 3)).astype(dtype.np)
        data.reshape(-1)[:5] = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dtype.np).tiny]
    t = kg.tensor(data, dtype=dtype, device=device)
    _same_tensor(t, _round_trip(t))  # onto the device it was saved from


@pytest.mark.parametrize("make", [
    lambda d: kg.tensor(3.5, device=d),                                        # 0-d
    lambda d: kg.tensor(-0.0, dtype=kg.float64, device=d),
    lambda d: kg.zeros(0, 3, device=d),                                        # empty
    lambda d: kg.zeros(2, 0, 4, dtype=kg.int64, device=d),
    lambda d: kg.arange(24.0, device=d).reshape(2, 3, 4).permute(2, 0, 1),     # non-contiguous
    lambda d: kg.arange(20.0, device=d)[::3],                                  # strided
    lambda d: kg.arange(12.0, device=d).reshape(3, 4).T[1:],
    lambda d: kg.tensor([1.0, float("nan")], device=d).expand(3, 2),           # broadcast view (stride 0)
], ids=["0d", "0d-negzero", "empty", "empty-3d", "permuted", "strided", "transposed-slice", "expanded"])
def test_tensor_shapes_and_layouts(make, device):
    t = make(device)
    r = _round_trip(t)
    _same_tensor(t, r)
    assert r.is_contiguous()
    r[...] = 0 if r.dtype == kg.int64 else 0.0  # a fresh, writable tensor
    assert _bits(t) == _bits(make(device))


def test_requires_grad_is_preserved(device):
    w = kg.tensor(np.arange(6.0).reshape(3, 2), device=device, requires_grad=True)
    d = _round_trip({"w": w, "c": kg.ones(2, device=device), "y": w * 2})
    assert all(d[k].device == device for k in d)
    assert d["w"].requires_grad and d["w"].is_leaf and d["w"].grad_fn is None
    assert not d["c"].requires_grad
    assert d["y"].requires_grad and d["y"].is_leaf  # a graph tensor loads as a leaf, as in PyTorch
    (d["w"] * 3).sum().backward()
    assert d["w"].grad.tolist() == [[3.0, 3.0]] * 3 and d["w"].grad.device == device


def test_plain_values_and_containers():
    obj = collections.OrderedDict([
        ("none", None), ("t", True), ("f", False),
        ("big", [2 ** 53 + 1, -(2 ** 64) - 7, 10 ** 30]),
        ("floats", (0.1, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308)),
        ("str", "héllo \u2603 \"quoted\" \n"), ("bytes", b"\x00\x01\xff" * 100), ("empty", ([], (), {}, "", b"")),
        ("keys", {7: "int", 2.5: "float", None: "none", (1, "a"): "tuple", True: "bool", "s": "str"}),
        ("nested", {"a": [{"b": (1, [2, (3,)])}]}),
        ("od", collections.OrderedDict([("z", 1), ("a", 2)])),
        ("counter", collections.Counter([3, 3, 5])),
        ("dtype", kg.float16), ("device", kg.device("cpu")),
        ("array", np.arange(6, dtype=np.int32).reshape(2, 3)), ("u8", np.array([1, 255], dtype=np.uint8)),
    ])
    r = _round_trip(obj)
    assert type(r) is collections.OrderedDict and list(r) == list(obj)
    assert r["none"] is None and r["t"] is True and r["f"] is False
    assert r["big"] == obj["big"] and all(type(v) is int for v in r["big"])
    assert type(r["floats"]) is tuple
    assert [x.hex() for x in r["floats"]] == [x.hex() for x in obj["floats"]]
    assert math.copysign(1.0, r["floats"][1]) == -1.0
    assert r["str"] == obj["str"] and r["bytes"] == obj["bytes"] and r["empty"] == ([], (), {}, "", b"")
    assert type(r["empty"][1]) is tuple
    assert r["keys"] == obj["keys"] and list(r["keys"]) == list(obj["keys"])
    assert r["nested"] == obj["nested"] and type(r["nested"]["a"][0]["b"][1][1]) is tuple
    assert type(r["od"]) is collections.OrderedDict and list(r["od"].items()) == [("z", 1), ("a", 2)]
    assert type(r["counter"]) is collections.Counter and r["counter"] == obj["counter"]
    assert r["dtype"] is kg.float16 and r["device"] == kg.device("cpu")
    assert r["array"].dtype == np.int32 and np.array_equal(r["array"], obj["array"])
    assert r["u8"].tolist() == [1, 255]


def test_float_nan_is_saved():
    assert math.isnan(_round_trip(float("nan")))
    assert _round_trip(np.float32(1.5)) == 1.5  # NumPy scalars come back as Python numbers
    assert _round_trip(np.int64(7)) == 7


def test_same_tensor_saved_twice_loads_as_one_object(device):
    w = kg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device)
    d = _round_trip({"a": w, "b": [w], "c": w.clone()})
    assert d["a"] is d["b"][0] and d["a"] is not d["c"]


def test_paths_and_file_objects(tmp_path):
    sd = {"w": kg.randn(4, 3), "step": 3}
    for path in (str(tmp_path / "a.kg"), tmp_path / "b.kg"):
        save(sd, path)
        r = load(path)
        _same_tensor(sd["w"], r["w"])
        assert r["step"] == 3
    with open(tmp_path / "c.kg", "wb") as f:
        save(sd, f)
        save([1, 2], f)  # two objects, one after the other
    with open(tmp_path / "c.kg", "rb") as f:
        assert load(f)["step"] == 3 and load(f) == [1, 2]
    with pytest.raises(TypeError, match="binary file"):
        save(sd, io.StringIO())
    with pytest.raises(TypeError, match="path or a binary file"):
        save(sd, 123)
    with pytest.raises(TypeError, match="path or a binary file"):
        load(io.StringIO("text"))


def test_optimizer_state_dict_round_trip(tmp_path, device, rng):
    def randn(*shape, **kwargs):
        return kg.tensor(rng.standard_normal(shape), dtype=kg.float64, device=device, **kwargs)

    params = [randn(3, 2, requires_grad=True), randn(2, requires_grad=True)]
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1, amsgrad=True)
    grads = [[randn(*p.shape) for p in params] for _ in range(6)]

    def run(o, ps, gs):
        for g in gs:
            for p, gp in zip(ps, g):
                p.grad = gp
            o.step()

    run(opt, params, grads[:3])
    save({"optimizer": opt.state_dict(), "params": params}, tmp_path / "ckpt.kg")
    ckpt = load(tmp_path / "ckpt.kg")
    sd = ckpt["optimizer"]
    assert type(sd["param_groups"][0]["betas"]) is tuple and sd["state"][0]["step"] == 3
    assert set(sd["state"]) == {0, 1}  # integer keys stay integers
    assert sd["state"][0]["exp_avg"].device == device and sd["state"][1]["max_exp_avg_sq"].device == device
    params2 = ckpt["params"]
    assert all(p.device == device for p in params2)
    opt2 = optim.Adam([{"params": params2[:1]}, {"params": params2[1:]}], lr=5.0)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.3
    run(opt, params, grads[3:])
    run(opt2, params2, grads[3:])
    for p, q in zip(params, params2):
        assert _bits(p) == _bits(q)


def test_scheduler_state_dict_round_trip():
    from kernelgrad.optim import lr_scheduler as S

    opt = optim.SGD([kg.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    for sched in (S.MultiStepLR(opt, [2, 4, 4]), S.OneCycleLR(opt, max_lr=1.0, total_steps=20),
                  S.LambdaLR(opt, lambda e: 1.0)):
        sched.step()
        sd = sched.state_dict()
        r = _round_trip(sd)
        assert r == sd


def test_parameter_type_is_restored_when_available(device):
    Parameter = getattr(kg.nn, "Parameter", None)
    if Parameter is None:
        pytest.skip("kg.nn.Parameter is not there yet")
    p = Parameter(kg.tensor([[1.0, -2.0], [0.5, 3.0]], device=device))
    r = _round_trip({"p": p})["p"]
    assert isinstance(r, Parameter) and r.requires_grad and _bits(r) == _bits(p) and r.device == device


# --- what can't be saved
class Custom:
    pass


@pytest.mark.parametrize("obj,name", [
    (lambda x: x, "function"),
    (Custom(), "Custom"),
    ({"a": [1, {2, 3}]}, "set"),
    ({"k": collections.defaultdict(list)}, "defaultdict"),
    (collections.namedtuple("P", "x")(1), "P"),
    (1 + 2j, "complex"),
    (np.array(["a"]), "dtype <U1"),
])
def test_unsupported_objects_raise_type_error_and_write_nothing(obj, name, tmp_path):
    path = tmp_path / "x.kg"
    with pytest.raises(TypeError) as info:
        save(obj, path)
    assert info.type is TypeError and name in str(info.value)
    assert not path.exists()


def test_self_referencing_container():
    a = [1]
    a.append(a)
    with pytest.raises(ValueError, match="contains itself"):
        save(a, io.BytesIO())


# --- bad files
def _saved_bytes(obj=None):
    buf = io.BytesIO()
    save({"w": kg.arange(12.0).reshape(3, 4), "n": 1} if obj is None else obj, buf)
    return buf.getvalue()


def _rewrite_header(raw, edit):
    """A file with its header replaced by edit(header dict), lengths and checksums fixed up, so
    that only the loader's validation of the header stands between it and the bad content."""
    prelude = serialization._PRELUDE
    start = len(serialization.MAGIC)
    version, hlen, dlen, _, dcrc = prelude.unpack(raw[start:start + prelude.size])
    header = json.loads(raw[start + prelude.size:start + prelude.size + hlen])
    data = raw[start + prelude.size + hlen:]
    header = edit(header) or header
    new = json.dumps(header).encode()
    return serialization.MAGIC + prelude.pack(version, len(new), dlen, zlib.crc32(new), dcrc) + new + data


def _load_bytes(raw, **kwargs):
    return load(io.BytesIO(raw), **kwargs)


def test_truncated_files_raise_value_error():
    raw = _saved_bytes()
    for cut in (0, 3, 8, 20, 36, 50, len(raw) // 2, len(raw) - 1):
        with pytest.raises(ValueError, match="truncated|not a kernelgrad file"):
            _load_bytes(raw[:cut])


def test_corrupted_bytes_raise_value_error():
    raw = bytearray(_saved_bytes())
    header_byte = len(serialization.MAGIC) + serialization._PRELUDE.size + 10
    for pos, match in ((header_byte, "header checksum"), (len(raw) - 5, "data checksum"), (2, "magic")):
        bad = bytearray(raw)
        bad[pos] ^= 0x41
        with pytest.raises(ValueError, match=match):
            _load_bytes(bytes(bad))
    bad = bytearray(raw)
    bad[len(serialization.MAGIC)] = 9  # format version
    with pytest.raises(ValueError, match="format version 9"):
        _load_bytes(bytes(bad))


def _set_tensor(key, value):
    def edit(h):
        h["tensors"][0][key] = value
    return edit


@pytest.mark.parametrize("edit,match", [
    (lambda h: h.pop("root"), "does not describe"),
    (lambda h: h.update(format="pickle"), "does not describe"),
    (lambda h: h.update(root={"type": "eval", "code": "1"}), "unknown entry type 'eval'"),
    (lambda h: h.update(root={"type": "float", "hex": "zz"}), "malformed 'float'"),
    (lambda h: h.update(root=1.5), "unexpected float"),
    (lambda h: h.update(root={"type": "dict", "items": [[{"type": "list", "items": []}, 1]]}), "malformed 'dict'"),
    (lambda h: h.update(root={"type": "tensor", "index": 5}), "out of range"),
    (_set_tensor("shape", [4, 4]), "does not match"),
    (_set_tensor("shape", [-12]), "bad shape"),
    (_set_tensor("dtype", "object"), "unknown tensor dtype"),
    (_set_tensor("offset", 10 ** 9), "outside the data"),
    (_set_tensor("nbytes", -1), "outside the data"),
    (_set_tensor("device", "tpu"), "bad device"),
    (_set_tensor("requires_grad", "yes"), "requires_grad"),
])
def test_corrupted_header_raises_value_error(edit, match):
    with pytest.raises(ValueError, match=match):
        _load_bytes(_rewrite_header(_saved_bytes(), edit))


def test_int_tensor_with_requires_grad_is_rejected():
    raw = _rewrite_header(_saved_bytes({"i": kg.arange(3)}), _set_tensor("requires_grad", True))
    with pytest.raises(ValueError, match="requires_grad"):
        _load_bytes(raw)


def test_foreign_files_raise_value_error(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    with pytest.raises(ValueError, match="not a kernelgrad file"):
        _load_bytes(png)
    with pytest.raises(ValueError, match="pickle"):
        _load_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="zip archive"):
        _load_bytes(b"PK\x03\x04" + b"\x00" * 60)
    with pytest.raises(ValueError, match="not a kernelgrad file"):
        _load_bytes(b"")
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(2)}, tmp_path / "t.pt")
    with pytest.raises(ValueError, match="zip archive"):
        load(tmp_path / "t.pt")


class _Malicious:
    """Unpickling this would create `path` (any callable could be run the same way)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_not_executed(tmp_path):
    side_effect = tmp_path / "pwned"
    evil = tmp_path / "evil.kg"
    evil.write_bytes(pickle.dumps({"weights": _Malicious(str(side_effect))}))
    with pytest.raises(ValueError):
        load(evil)
    with pytest.raises(ValueError):
        load(evil, map_location="cpu", weights_only=False)
    assert not side_effect.exists()
    # the same payload behind kg's magic number: still never unpickled
    disguised = tmp_path / "disguised.kg"
    disguised.write_bytes(serialization.MAGIC + pickle.dumps(_Malicious(str(side_effect))))
    with pytest.raises(ValueError):
        load(disguised)
    assert not side_effect.exists()


# --- map_location
def _cuda_file():
    """A file whose tensor was saved from 'cuda:0' (written by rewriting the device string)."""
    return _rewrite_header(_saved_bytes({"w": kg.ones(2, 2, requires_grad=True)}), _set_tensor("device", "cuda:0"))


@pytest.mark.parametrize("map_location", ["cpu", kg.device("cpu"), {"cuda": "cpu"}, {"cuda:0": "cpu"},
                                          {"cuda:0": kg.device("cpu")}])
def test_map_location_to_cpu(map_location):
    w = _load_bytes(_cuda_file(), map_location=map_location)["w"]
    assert w.device == "cpu" and w.tolist() == [[1.0, 1.0]] * 2 and w.requires_grad


def test_cuda_tensor_without_gpu_needs_map_location():
    if kg.cuda.is_available():
        assert _load_bytes(_cuda_file())["w"].device == "cuda"
        return
    with pytest.raises(RuntimeError, match="map_location='cpu'"):
        _load_bytes(_cuda_file())
    with pytest.raises(RuntimeError, match="is_available"):
        _load_bytes(_saved_bytes(), map_location="cuda")
    with pytest.raises(RuntimeError, match="is_available"):
        _load_bytes(_cuda_file(), map_location={"cpu": "cpu"})


needs_cuda = pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator in this build")


@needs_cuda
def test_cuda_tensors_saved_and_loaded_with_map_location(tmp_path):
    w = kg.tensor([[1.5, -0.0], [float("nan"), 2.0]], device="cuda", requires_grad=True)
    sd = {"w": w, "b": kg.tensor([1, 2], device="cuda"), "c": kg.tensor([0.25]), "dev": kg.device("cuda")}
    save(sd, tmp_path / "m.kg")
    r = load(tmp_path / "m.kg")  # each tensor back onto the device it was saved from
    _same_tensor(w, r["w"])
    _same_tensor(sd["b"], r["b"])
    _same_tensor(sd["c"], r["c"])
    assert r["dev"] == kg.device("cuda")
    for m in ("cpu", kg.device("cpu"), {"cuda": "cpu"}, {"cuda:0": "cpu"}):
        r = load(tmp_path / "m.kg", map_location=m)
        assert all(r[k].device == "cpu" for k in ("w", "b", "c"))
        assert _bits(r["w"]) == _bits(w) and r["w"].requires_grad and r["b"].tolist() == [1, 2]
    for m in ("cuda", kg.device("cuda"), {"cpu": "cuda"}):
        r = load(tmp_path / "m.kg", map_location=m)
        assert all(r[k].device == "cuda" for k in ("w", "b", "c"))
        assert r["c"].tolist() == [0.25]
    r = load(tmp_path / "m.kg", map_location={"cuda": "cpu", "cpu": "cuda"})  # a swap
    assert r["w"].device == "cpu" and r["c"].device == "cuda"


def test_bad_map_location():
    with pytest.raises(TypeError, match="map_location"):
        _load_bytes(_saved_bytes(), map_location=lambda storage, loc: storage)
    with pytest.raises(RuntimeError):
        _load_bytes(_saved_bytes(), map_location="gpu")
    with pytest.raises(TypeError, match="map_location"):
        _load_bytes(_saved_bytes(), map_location={"cuda": 0})


def test_file_layout_is_documented():
    """Magic, prelude, JSON header, and 64-byte aligned little-endian data (readable without kg)."""
    raw = _saved_bytes({"w": kg.tensor([1.5, -2.0], dtype=kg.float64)})
    assert raw.startswith(b"\x89KGSAVE\n")
    version, hlen, dlen, hcrc, dcrc = struct.unpack("<IQQII", raw[8:36])
    header = json.loads(raw[36:36 + hlen])
    assert version == 1 and header["format"] == "kernelgrad" and (36 + hlen) % 64 == 0
    rec = header["tensors"][header["root"]["items"][0][1]["index"]]
    data = raw[36 + hlen:]
    assert len(data) == dlen and zlib.crc32(data) == dcrc
    vals = np.frombuffer(data, dtype="<f8", count=2, offset=rec["offset"])
    assert vals.tolist() == [1.5, -2.0]
