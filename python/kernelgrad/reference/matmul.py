"""Matrix product, as torch.matmul / np.matmul define it.

    out[..., i, j] = sum_k a[..., i, k] * b[..., k, j]

- 1-D a (K,) is treated as a row (1, K) and 1-D b (K,) as a column (K, 1); the added dimension is
  removed from the result (1-D @ 1-D is a 0-d dot product).
- Batch dimensions (all but the last two) broadcast against each other as in NumPy.

Backward, for out = a @ b on 2-D operands:

    grad_a = grad_out @ b^T        (M, K) = (M, N) @ (N, K)
    grad_b = a^T @ grad_out        (K, N) = (K, M) @ (M, N)

then batch dimensions that were broadcast are summed back to each operand's own shape, and the
1-D promotions are undone.
"""
import numpy as np


def matmul(a, b):
    """a @ b with torch.matmul semantics (1-D promotion, broadcast batch dimensions)."""
    return np.matmul(a, b)


def matmul_backward(grad_out, a, b):
    """Gradients of out = matmul(a, b): returns (grad_a, grad_b) with the shapes of a and b."""
    a = np.asarray(a)
    b = np.asarray(b)
    g = np.asarray(grad_out)
    # Undo the 1-D promotions: work with a as (..., M, K), b as (..., K, N), g as (..., M, N).
    a2 = a[np.newaxis, :] if a.ndim == 1 else a
    b2 = b[:, np.newaxis] if b.ndim == 1 else b
    if b.ndim == 1:
        g = g[..., np.newaxis]
    if a.ndim == 1:
        g = g[..., np.newaxis, :]

    grad_a = np.matmul(g, np.swapaxes(b2, -1, -2))  # (..., M, N) @ (..., N, K)
    grad_b = np.matmul(np.swapaxes(a2, -1, -2), g)  # (..., K, M) @ (..., M, N)
    grad_a = _sum_to_shape(grad_a, a2.shape).reshape(a.shape)
    grad_b = _sum_to_shape(grad_b, b2.shape).reshape(b.shape)
    return grad_a, grad_b


def _sum_to_shape(x, shape):
    """Sum x over the dimensions that broadcasting added or stretched, giving an array of `shape`."""
    x = x.sum(axis=tuple(range(x.ndim - len(shape))))
    stretched = tuple(d for d, n in enumerate(shape) if n == 1 and x.shape[d] != 1)
    return x.sum(axis=stretched, keepdims=True)
