"""kg.reference: the NumPy specification of every kernel (forward and backward).

Written to be read, not to be fast: the tests check the kernels against these functions and the
benchmarks time them as the baseline.
"""
from .matmul import matmul, matmul_backward
from .conv import conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward

__all__ = ["matmul", "matmul_backward"]
__all__ += ["conv2d", "conv2d_backward", "conv_transpose2d", "conv_transpose2d_backward"]
