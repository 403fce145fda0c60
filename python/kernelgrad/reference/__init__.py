"""kg.reference: the NumPy specification of every kernel (forward and backward).

Written to be read, not to be fast: the tests check the kernels against these functions and the
benchmarks time them as the baseline.
"""
from .matmul import matmul, matmul_backward
from .conv import conv2d, conv2d_backward, conv_transpose2d, conv_transpose2d_backward
from .norm import batch_norm, batch_norm_backward, layer_norm, layer_norm_backward
from .softmax import (
    cross_entropy, cross_entropy_backward, log_softmax, log_softmax_backward, nll_loss, nll_loss_backward, softmax,
    softmax_backward,
)
from .attention import attention_dropout_keep, scaled_dot_product_attention, scaled_dot_product_attention_backward

__all__ = ["matmul", "matmul_backward"]
__all__ += ["conv2d", "conv2d_backward", "conv_transpose2d", "conv_transpose2d_backward"]
__all__ += ["softmax", "softmax_backward", "log_softmax", "log_softmax_backward", "cross_entropy",
            "cross_entropy_backward", "nll_loss", "nll_loss_backward"]
__all__ += ["layer_norm", "layer_norm_backward", "batch_norm", "batch_norm_backward"]
from .pool import *  # noqa: F401,F403  (pooling, unpooling, upsampling, padding)
from .pool import __all__ as _pool_all

__all__ += _pool_all
__all__ += ["scaled_dot_product_attention", "scaled_dot_product_attention_backward", "attention_dropout_keep"]
