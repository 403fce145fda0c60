"""Backend dispatch: the one place where a device picks the module that computes on it.

A backend module exposes the same functions (listed in `cpu.__all__`) over its own array type:
NumPy arrays on the CPU, device arrays on CUDA. Ops call `backend_for(t.device).fn(...)` and never
branch on the device themselves.
"""
from .._device import device as _device_cls

_BACKENDS = {}


def _load(kind):
    if kind == "cpu":
        from . import cpu as mod
    elif kind == "cuda":
        from .. import cuda

        mod = cuda._backend()  # raises a clear RuntimeError when no CUDA build/device is present
    else:
        raise RuntimeError(f"unknown device type '{kind}'")
    _BACKENDS[kind] = mod
    return mod


def backend_for(device):
    kind = device.type if isinstance(device, _device_cls) else _device_cls(device).type
    mod = _BACKENDS.get(kind)
    return mod if mod is not None else _load(kind)


def backend_of(tensor):
    return backend_for(tensor.device)
