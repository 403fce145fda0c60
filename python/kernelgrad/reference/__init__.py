"""kg.reference: the NumPy specification of every kernel (forward and backward).

Written to be read, not to be fast: the tests check the kernels against these functions and the
benchmarks time them as the baseline.
"""
from .matmul import matmul, matmul_backward
from .attention import attention_dropout_keep, scaled_dot_product_attention, scaled_dot_product_attention_backward

__all__ = ["matmul", "matmul_backward"]
