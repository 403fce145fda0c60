"""kernelgrad: hand-written CPU (C++) and CUDA kernels under a PyTorch-shaped autograd API.

    import kernelgrad as kg
    x = kg.randn(64, 32, requires_grad=True)
    w = kg.randn(32, 10, requires_grad=True)
    (x @ w).relu().sum().backward()
"""
import builtins as _builtins

from . import _C
from ._device import device
from ._dtype import (
    bool_ as bool,  # noqa: A001 - PyTorch's name
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int64,
    set_default_dtype,
)
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import Tensor
from .creation import (
    arange, as_tensor, empty, empty_like, eye, from_dlpack, from_numpy, full, full_like, linspace, ones,
    ones_like, rand, randint, randn, randperm, tensor, zeros, zeros_like,
)
from .functions import *  # noqa: F401,F403
from .functions import bmm, cat, concatenate, dot, matmul, maximum, minimum, mm, stack, where  # noqa: F401
from .random import Generator, default_generator, initial_seed, manual_seed
from . import autograd, cuda, nn, optim, reference, utils  # noqa: E402
from .serialization import load, save  # noqa: E402

float = float32  # noqa: A001
double = float64
half = float16
long = int64

__version__ = "0.1.0"


def set_num_threads(n):
    """Threads used by the CPU kernels (OpenMP); default: the number of cores."""
    if isinstance(n, _builtins.bool) or not isinstance(n, _builtins.int):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads():
    return _C.get_num_threads()
