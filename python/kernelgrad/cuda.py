"""kg.cuda: the CUDA device.

Two builds of the same CUDA kernels exist: `kernelgrad._cuda` (nvcc, runs on a GPU) and
`kernelgrad._cuda_emu` (the CPU emulator, for machines without a GPU). The environment variable
KERNELGRAD_CUDA chooses, once per process:
  unset or "auto"  the GPU build when it is present and finds a device; otherwise no CUDA device;
  "emu"            the emulator (never chosen silently: only when asked for; a warning says so
                   when a GPU is present too);
  "off"            no CUDA device.
"""
import importlib
import os
import warnings

_state = {}  # "module": the loaded module or None; "why": why there is none


def _load():
    choice = os.environ.get("KERNELGRAD_CUDA", "auto").strip().lower() or "auto"
    if choice not in ("auto", "emu", "off"):
        raise RuntimeError(f"KERNELGRAD_CUDA must be 'auto', 'emu' or 'off', got {choice!r}")
    module, why = None, None
    if choice == "off":
        why = "KERNELGRAD_CUDA=off"
    elif choice == "emu":
        module = importlib.import_module("kernelgrad._cuda_emu")
        try:
            gpu = importlib.import_module("kernelgrad._cuda")
            if gpu.device_count() > 0:
                warnings.warn("KERNELGRAD_CUDA=emu: the CUDA emulator is used although a GPU is present",
                              RuntimeWarning, stacklevel=3)
        except ImportError:
            pass
    else:
        try:
            gpu = importlib.import_module("kernelgrad._cuda")
        except ImportError:
            why = "this build of kernelgrad has no CUDA module (no nvcc at build time)"
        else:
            if gpu.device_count() > 0:
                module = gpu
            else:
                why = "no CUDA GPU or driver was found (set KERNELGRAD_CUDA=emu for the CPU emulator)"
    _state["module"], _state["why"] = module, why


def _module():
    """The CUDA module in use, or None."""
    if "module" not in _state:
        _load()
    return _state["module"]


def _module_or_raise():
    m = _module()
    if m is None:
        raise RuntimeError(f"CUDA is not available: {_state['why']} (kg.cuda.is_available() is False)")
    return m


def _backend():
    _module_or_raise()
    from .backend import cuda as backend

    return backend


def is_available():
    return _module() is not None


def is_emulated():
    """True when "cuda" tensors run on the CPU emulator (KERNELGRAD_CUDA=emu)."""
    m = _module()
    return bool(m is not None and m.is_emulated())


def device_count():
    m = _module()
    if m is None:
        return 0
    return 1 if m.is_emulated() else m.device_count()


def _index(device):
    from ._device import device as device_cls

    if device is None:
        return 0
    if isinstance(device, int) and not isinstance(device, bool):
        index = device
    else:
        d = device_cls(device)
        if d.type != "cuda":
            raise ValueError(f"expected a CUDA device, got {d}")
        index = d.index or 0
    if not 0 <= index < device_count():
        _module_or_raise()
        raise RuntimeError(f"invalid CUDA device index {index}: {device_count()} device(s) available")
    return index


def current_device():
    _module_or_raise()
    return 0


def set_device(device):
    _index(device)


def get_device_name(device=None):
    m = _module_or_raise()
    return m.device_name(_index(device))


def synchronize(device=None):
    _index(device)
    _module_or_raise().synchronize()


def memory_allocated(device=None):
    """Bytes of device memory held by tensors (block sizes as the caching allocator rounds them)."""
    _index(device)
    return _module_or_raise().memory_allocated()


def memory_reserved(device=None):
    """Bytes held from the driver: memory_allocated() plus the allocator's cache."""
    _index(device)
    return _module_or_raise().memory_reserved()


def max_memory_allocated(device=None):
    _index(device)
    return _module_or_raise().max_memory_allocated()


def reset_peak_memory_stats(device=None):
    _index(device)
    _module_or_raise().reset_peak_memory_stats()


def empty_cache():
    """Give the allocator's cached blocks back to the driver (tensors still alive keep theirs)."""
    m = _module()
    if m is not None:
        m.empty_cache()


def manual_seed(seed):
    """Seed the random streams (every device's stream derives from the default generator)."""
    from .random import manual_seed as seed_all

    seed_all(seed)


manual_seed_all = manual_seed
