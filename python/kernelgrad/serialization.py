"""kg.save / kg.load: tensors and plain Python data in a file that loading never executes.

No pickle: the file is a JSON description of the object plus the tensors' raw bytes, so loading a
file (even a hostile one) can only ever build dicts, lists, tuples, numbers, strings, bytes,
tensors and NumPy arrays.

    offset 0   MAGIC (8 bytes)
    8          "<IQQII": format version, header length, data length, CRC-32 of header, of data
    36         header: UTF-8 JSON {"format": "kernelgrad", "version": 1, "root": node, "tensors": [...]},
               padded with spaces so that the data starts at a multiple of 64
    ...        data: each tensor's elements, C order, little-endian, at a 64-byte aligned offset

A node is null, true/false, a JSON integer (exact at any size), a string, or an object tagged by
"type": float (its hex form, so NaN/inf/-0.0 are exact), bytes, list, tuple, dict, ordered_dict,
counter (dict items as [key, value] pairs, so keys need not be strings), dtype, device, ndarray,
and tensor (an index into "tensors"; the same tensor object saved twice loads as one object).
"""
import collections
import io
import json
import os
import struct
import zlib

import numpy as np

from . import _dtype as D
from ._device import device as _device_cls
from .creation import from_numpy
from .tensor import Tensor

MAGIC = b"\x89KGSAVE\n"
FORMAT_VERSION = 1
_PRELUDE = struct.Struct("<IQQII")
_ALIGN = 64
_MAX_HEADER = 1 << 31

__all__ = ["save", "load"]


# --- saving
class _Writer:
    def __init__(self):
        self.tensors = []    # header records
        self.chunks = []     # (offset, little-endian contiguous uint8 array)
        self.size = 0
        self.memo = {}       # id(tensor) -> record index
        self.keep = []       # saved tensors stay alive, so their ids stay unique while saving
        self.active = set()  # ids of the containers being encoded (a cycle would never end)

    def add_bytes(self, arr):
        """Append an array's elements (C order, little-endian); return (offset, nbytes)."""
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        raw = arr.reshape(-1).view(np.uint8)
        offset = -(-self.size // _ALIGN) * _ALIGN
        self.chunks.append((offset, raw))
        self.size = offset + raw.nbytes
        return offset, raw.nbytes

    def encode(self, obj, where):
        t = type(obj)
        if obj is None or t is bool or t is str:
            return obj
        if t is int:
            return obj
        if t is float:
            return {"type": "float", "hex": obj.hex()}
        if isinstance(obj, Tensor):
            return {"type": "tensor", "index": self.tensor(obj)}
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return self.encode(obj.item(), where)  # NumPy scalars are saved as Python numbers
        if t is bytes:
            offset, nbytes = self.add_bytes(np.frombuffer(obj, dtype=np.uint8))
            return {"type": "bytes", "offset": offset, "nbytes": nbytes}
        if t is np.ndarray:
            return self.ndarray(obj, where)
        if t is D.dtype:
            return {"type": "dtype", "name": obj.name}
        if t is _device_cls:
            return {"type": "device", "spec": str(obj)}
        if t in (list, tuple, dict, collections.OrderedDict, collections.Counter):
            if id(obj) in self.active:
                raise ValueError(f"kg.save: {where} contains itself; self-referencing containers can't be saved")
            self.active.add(id(obj))
            try:
                if t in (list, tuple):
                    items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
                    return {"type": t.__name__, "items": items}
                items = [[self.encode(k, f"{where} (a key)"), self.encode(v, f"{where}[{k!r}]")]
                         for k, v in obj.items()]
                kind = {dict: "dict", collections.OrderedDict: "ordered_dict", collections.Counter: "counter"}[t]
                return {"type": kind, "items": items}
            finally:
                self.active.discard(id(obj))
        raise TypeError(
            f"kg.save: can't save an object of type {t.__module__}.{t.__qualname__} (at {where}); kg.save "
            "supports tensors, NumPy arrays, None, bool, int, float, str, bytes, kg.dtype, kg.device, and "
            "lists, tuples, dicts, OrderedDicts and Counters of these"
        )

    def tensor(self, t):
        index = self.memo.get(id(t))
        if index is not None:
            return index
        arr = t.detach().cpu().numpy()
        offset, nbytes = self.add_bytes(arr)
        record = {"dtype": t.dtype.name, "shape": list(t.shape), "device": str(t.device),
                  "requires_grad": bool(t.requires_grad), "offset": offset, "nbytes": nbytes}
        if _is_parameter(t):
            record["parameter"] = True
        index = self.memo[id(t)] = len(self.tensors)
        self.tensors.append(record)
        self.keep.append(t)
        return index

    def ndarray(self, a, where):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"kg.save: can't save a NumPy array of dtype {a.dtype} (at {where}); "
                            "only bool, integer and floating point arrays are supported")
        offset, nbytes = self.add_bytes(a)
        return {"type": "ndarray", "dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
                "offset": offset, "nbytes": nbytes}


def _is_parameter(t):
    from . import nn

    Parameter = getattr(nn, "Parameter", None)
    return Parameter is not None and isinstance(t, Parameter)


def save(obj, f):
    """Save `obj` (tensors, state dicts, nested dicts/lists/tuples of tensors and plain values) to
    `f`, a path or a binary file object. Tensors are saved with their dtype, shape, device and
    requires_grad; a non-contiguous tensor is saved as its contiguous copy. An unsupported object
    raises TypeError (and leaves `f` untouched)."""
    w = _Writer()
    root = w.encode(obj, "the saved object")
    header = json.dumps({"format": "kernelgrad", "version": FORMAT_VERSION, "root": root, "tensors": w.tensors},
                        separators=(",", ":"), allow_nan=False).encode("utf-8")
    start = len(MAGIC) + _PRELUDE.size + len(header)
    header += b" " * (-start % _ALIGN)
    pieces, pos = [], 0  # the data section: each tensor's bytes after zero padding to its offset
    for offset, raw in w.chunks:
        if offset > pos:
            pieces.append(bytes(offset - pos))
        pieces.append(memoryview(raw))
        pos = offset + raw.nbytes
    data_crc = 0
    for piece in pieces:
        data_crc = zlib.crc32(piece, data_crc)
    prelude = MAGIC + _PRELUDE.pack(FORMAT_VERSION, len(header), w.size, zlib.crc32(header), data_crc)

    def write(out):
        out.write(prelude)
        out.write(header)
        for piece in pieces:
            out.write(piece)

    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as out:
            write(out)
    elif hasattr(f, "write"):
        if isinstance(f, io.TextIOBase):
            raise TypeError("kg.save: f must be a path or a binary file object, got a text file")
        write(f)
    else:
        raise TypeError(f"kg.save: f must be a path or a binary file object, got {type(f).__name__}")


# --- loading
class _BadFile(ValueError):
    pass


def _bad(message):
    return _BadFile(f"kg.load: {message}")


def _read_exact(f, n, what):
    """n bytes from f, read in chunks so that a corrupted length can't allocate a huge buffer."""
    parts, got = [], 0
    while got < n:
        part = f.read(min(n - got, 1 << 26))
        if not isinstance(part, (bytes, bytearray)):
            raise TypeError("kg.load: f must be a path or a binary file object (read() returned text)")
        if not part:
            raise _bad(f"the file is truncated (expected {n} bytes of {what}, got {got})")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _foreign_hint(head):
    if head.startswith(b"PK\x03\x04"):
        return " It is a zip archive (torch.save writes those); kg.load reads only files written by kg.save."
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}"):
        return " It looks like a pickle; kg.load never unpickles (pickles can run code)."
    return ""


def _read(f):
    head = f.read(len(MAGIC))
    if not isinstance(head, (bytes, bytearray)):
        raise TypeError("kg.load: f must be a path or a binary file object (read() returned text)")
    if head != MAGIC:
        if len(head) < len(MAGIC) and MAGIC.startswith(head) and head:
            raise _bad("the file is truncated (it ends inside the file signature)")
        raise _bad("not a kernelgrad file (bad magic number)." + _foreign_hint(head))
    version, header_len, data_len, header_crc, data_crc = _PRELUDE.unpack(_read_exact(f, _PRELUDE.size, "prelude"))
    if version != FORMAT_VERSION:
        raise _bad(f"unsupported format version {version} (this kernelgrad reads version {FORMAT_VERSION})")
    if header_len > _MAX_HEADER:
        raise _bad(f"corrupted file: header length {header_len} is implausible")
    header = _read_exact(f, header_len, "header")
    if zlib.crc32(header) != header_crc:
        raise _bad("corrupted file: the header checksum does not match")
    data = _read_exact(f, data_len, "tensor data")
    if zlib.crc32(data) != data_crc:
        raise _bad("corrupted file: the tensor data checksum does not match")
    try:
        meta = json.loads(header.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise _bad(f"corrupted file: the header is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != "kernelgrad" or "root" not in meta \
            or not isinstance(meta.get("tensors"), list):
        raise _bad("corrupted file: the header does not describe a kernelgrad object")
    return meta, data


def _reject_constant(name):
    raise _bad(f"corrupted file: unexpected constant {name} in the header")


class _Reader:
    def __init__(self, meta, data, map_location):
        self.records = meta["tensors"]
        self.data = data
        self.map_location = map_location
        self.loaded = {}

    def span(self, node):
        """(offset, nbytes) of a record's bytes, checked to lie inside the data."""
        offset, nbytes = node.get("offset"), node.get("nbytes")
        if not (_is_count(offset) and _is_count(nbytes)) or offset + nbytes > len(self.data):
            raise _bad("corrupted file: a data record points outside the data")
        return offset, nbytes

    def array(self, np_dtype, shape, node):
        shape = _shape(shape)
        offset, nbytes = self.span(node)
        numel = 1
        for s in shape:
            numel *= s
        if numel * np_dtype.itemsize != nbytes:
            raise _bad(f"corrupted file: shape {shape} of {np_dtype} does not match {nbytes} bytes of data")
        arr = np.frombuffer(self.data, dtype=np_dtype.newbyteorder("<"), count=numel, offset=offset)
        return arr.astype(np_dtype.newbyteorder("="), copy=True).reshape(shape)

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            raise _bad(f"corrupted file: unexpected {type(node).__name__} in the header")
        kind = node["type"]
        try:
            if kind == "float":
                return float.fromhex(node["hex"])
            if kind in ("list", "tuple"):
                items = [self.decode(v) for v in _list(node["items"])]
                return items if kind == "list" else tuple(items)
            if kind in ("dict", "ordered_dict", "counter"):
                cls = {"dict": dict, "ordered_dict": collections.OrderedDict, "counter": collections.Counter}[kind]
                out = cls()
                for pair in _list(node["items"]):
                    if not isinstance(pair, list) or len(pair) != 2:
                        raise _bad("corrupted file: a dict item is not a [key, value] pair")
                    out[self.decode(pair[0])] = self.decode(pair[1])
                return out
            if kind == "tensor":
                return self.tensor(node["index"])
            if kind == "bytes":
                offset, nbytes = self.span(node)
                return bytes(self.data[offset:offset + nbytes])
            if kind == "ndarray":
                np_dtype = np.dtype(node["dtype"])
                if np_dtype.kind not in "biuf":
                    raise _bad(f"corrupted file: unsupported array dtype {np_dtype}")
                return self.array(np_dtype, node["shape"], node)
            if kind == "dtype":
                dt = D._NAMES.get(node["name"])
                if dt is None:
                    raise _bad(f"corrupted file: unknown dtype {node['name']!r}")
                return dt
            if kind == "device":
                return _parse_device(node["spec"])
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, _BadFile):
                raise
            raise _bad(f"corrupted file: a malformed '{kind}' entry in the header ({type(e).__name__}: {e})") from None
        raise _bad(f"corrupted file: unknown entry type {kind!r} in the header")

    def tensor(self, index):
        if not _is_count(index) or index >= len(self.records):
            raise _bad(f"corrupted file: tensor index {index!r} out of range")
        if index in self.loaded:
            return self.loaded[index]
        rec = self.records[index]
        if not isinstance(rec, dict):
            raise _bad("corrupted file: a tensor record is not an object")
        dt = D._NAMES.get(rec.get("dtype"))
        if dt is None:
            raise _bad(f"corrupted file: unknown tensor dtype {rec.get('dtype')!r}")
        requires_grad = rec.get("requires_grad", False)
        if not isinstance(requires_grad, bool) or (requires_grad and not dt.is_floating_point):
            raise _bad("corrupted file: bad requires_grad flag")
        target = self.target_device(rec.get("device"))
        t = from_numpy(self.array(dt.np, rec.get("shape"), rec)).to(target)
        if rec.get("parameter"):
            from . import nn

            Parameter = getattr(nn, "Parameter", None)
            if Parameter is not None:
                t = Parameter(t, requires_grad=requires_grad)
        if requires_grad and not t.requires_grad:
            t.requires_grad_(True)
        self.loaded[index] = t
        return t

    def target_device(self, saved):
        saved_dev = _parse_device(saved)
        m = self.map_location
        if m is None:
            target = saved_dev
        elif isinstance(m, dict):
            keys = (str(saved_dev), f"{saved_dev.type}:{saved_dev.index or 0}", saved_dev.type)
            target = _device_cls(next((m[k] for k in keys if k in m), saved_dev))
        else:
            target = _device_cls(m)
        if target.type == "cuda":
            from . import cuda

            if not cuda.is_available():
                raise RuntimeError(
                    f"kg.load: a tensor was saved on '{saved_dev}' and would be loaded onto '{target}', but "
                    "kg.cuda.is_available() is False. On a CPU-only machine use kg.load(..., map_location='cpu') "
                    "to load the tensors onto the CPU."
                )
        return target


def _is_count(x):
    return type(x) is int and x >= 0


def _list(x):
    if not isinstance(x, list):
        raise _bad(f"corrupted file: expected a list in the header, got {type(x).__name__}")
    return x


def _shape(shape):
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape) or len(shape) > 64:
        raise _bad(f"corrupted file: bad shape {shape!r}")
    return shape


def _parse_device(spec):
    if not isinstance(spec, str):
        raise _bad(f"corrupted file: bad device {spec!r}")
    try:
        return _device_cls(spec)
    except (RuntimeError, TypeError):
        raise _bad(f"corrupted file: bad device {spec!r}") from None


def _check_map_location(m):
    if m is None or isinstance(m, (str, _device_cls)):
        if m is not None:
            _device_cls(m)  # a bad device string raises now, before reading
        return m
    if isinstance(m, dict):
        out = {}
        for k, v in m.items():
            if not isinstance(k, (str, _device_cls)) or not isinstance(v, (str, _device_cls)):
                raise TypeError("kg.load: map_location dict must map device strings to device strings")
            out[str(k)] = str(_device_cls(v))
        return out
    raise TypeError(
        "kg.load: map_location must be None, a device string, a kg.device or a dict {saved: target}, "
        f"got {type(m).__name__}"
    )


def load(f, map_location=None, *, weights_only=True):
    """Load an object written by kg.save from a path or a binary file object.

    map_location: None (each tensor onto the device it was saved from), a device ("cpu", kg.device)
    for every tensor, or a dict mapping saved devices to targets ({"cuda": "cpu"}; a key may be a
    full device string like "cuda:0" or a device type). A truncated, corrupted or foreign file
    raises ValueError. `weights_only` is accepted for PyTorch compatibility: kg.load only ever
    builds data, never runs code."""
    map_location = _check_map_location(map_location)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "rb") as fh:
            meta, data = _read(fh)
    elif hasattr(f, "read"):
        meta, data = _read(f)
    else:
        raise TypeError(f"kg.load: f must be a path or a binary file object, got {type(f).__name__}")
    reader = _Reader(meta, data, map_location)
    try:
        return reader.decode(meta["root"])
    except RecursionError:
        raise _bad("corrupted file: the header nests too deeply") from None
