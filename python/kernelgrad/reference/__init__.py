"""kg.reference: the NumPy specification of every kernel (forward and backward).

Written to be read, not to be fast: the tests check the kernels against these functions and the
benchmarks time them as the baseline.
"""
from .matmul import matmul, matmul_backward
from .pool import *  # noqa: F401,F403  (pooling, unpooling, upsampling, padding)
from .pool import __all__ as _pool_all

__all__ = ["matmul", "matmul_backward"] + _pool_all
