"""Scaled dot-product attention, as torch.nn.functional.scaled_dot_product_attention defines it
(its "math" path), except that a row whose every key is masked gives zeros and zero gradients,
not NaN. Computed in `dtype`, whatever the input dtype: float64 by default, the accuracy spec the
tests check the kernels against; the benchmarks pass float32, so that the baseline they time
computes in the kernels' own precision.

    scores = scale * q @ k^T + mask     (..., L, S); scale defaults to 1/sqrt(E); a bool mask
                                        puts -inf where it is False; is_causal keeps j <= i
    P      = softmax(scores, dim=-1)    (a row of -inf everywhere: P = 0)
    out    = (Z * P) @ v                Z: dropout factors, 0 or 1/(1-p) (all 1 when p = 0)

q (..., L, E), k (..., S, E), v (..., S, Ev); the batch dims broadcast, and the dropout mask is
indexed by the position b of a matrix in the broadcast batch, flattened in C order.

Dropout comes from a counter-based generator, so that it needs no stored mask: probability
(b, i, j) is kept when

    counter = (b * L + i) * S + j
    z = splitmix64(seed + (counter + 1) * 0x9E3779B97F4A7C15)     (all arithmetic modulo 2^64)
    (z >> 32) >= floor(p * 2^32)

Backward, for grad_out = dO:

    dv = (Z * P)^T @ dO
    dP = Z * (dO @ v^T)
    dS = P * (dP - rowsum(P * dP))      (rowsum(P * dP) = rowsum(dO * out))
    dq = scale * dS @ k,   dk = scale * dS^T @ q

then the batch dims that were broadcast are summed back to each input's shape.
"""
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def attention_dropout_keep(seed, batch_shape, L, S, p):
    """The dropout mask, (*batch_shape, L, S) bool: True where probability (b, i, j) is kept."""
    B = int(np.prod(batch_shape, dtype=np.int64))
    counter = np.arange(B * L * S, dtype=np.uint64).reshape(tuple(batch_shape) + (L, S))
    z = _splitmix64(np.uint64(seed) + (counter + np.uint64(1)) * _GOLDEN)
    return (z >> np.uint64(32)) >= np.uint64(int(p * 2**32))


def _scale_of(q, scale, dtype):
    return dtype(1.0 / np.sqrt(q.shape[-1]) if scale is None else scale)


def _dropout_factors(batch, L, S, dropout_p, seed, dtype):
    """Z: 1/(1-p) where kept, 0 where dropped (1 everywhere when dropout_p = 0)."""
    if dropout_p == 0:
        return 1.0
    kept = 1.0 / (1.0 - dropout_p) if dropout_p < 1 else 0.0
    return attention_dropout_keep(seed, batch, L, S, dropout_p) * dtype(kept)


def _probabilities(q, k, attn_mask, is_causal, scale, dtype):
    """P = softmax(scale * q k^T + mask) in dtype, zeros for rows with every key masked."""
    q, k = np.asarray(q, dtype), np.asarray(k, dtype)
    L, S = q.shape[-2], k.shape[-2]
    scores = _scale_of(q, scale, dtype) * (q @ np.swapaxes(k, -1, -2))
    if attn_mask is not None:
        attn_mask = np.asarray(attn_mask)
        if attn_mask.dtype == np.bool_:
            scores = np.where(attn_mask, scores, -np.inf)
        else:
            scores = scores + attn_mask.astype(dtype)
    if is_causal:
        scores = np.where(np.tril(np.ones((L, S), dtype=np.bool_)), scores, -np.inf)
    m = scores.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # all -inf rows: exp(-inf - 0) = 0
    e = np.exp(scores - m)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _sum_to_shape(x, shape):
    """Sum x over the batch dims that broadcasting added or stretched, giving an array of `shape`."""
    x = x.sum(axis=tuple(range(x.ndim - len(shape))))
    stretched = tuple(d for d, n in enumerate(shape) if n == 1 and x.shape[d] != 1)
    return x.sum(axis=stretched, keepdims=True)


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, seed=0,
                                 dtype=np.float64):
    """out (*batch, L, Ev) in `dtype`; `seed` picks the dropout mask (used only when dropout_p > 0)."""
    dtype = np.dtype(dtype).type
    P = _probabilities(q, k, attn_mask, is_causal, scale, dtype)
    Z = _dropout_factors(P.shape[:-2], P.shape[-2], P.shape[-1], dropout_p, seed, dtype)
    return (Z * P) @ np.asarray(v, dtype)


def scaled_dot_product_attention_backward(grad_out, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False,
                                          scale=None, seed=0, dtype=np.float64):
    """(dq, dk, dv) in `dtype` with the shapes of q, k, v, for out = scaled_dot_product_attention(...)."""
    dtype = np.dtype(dtype).type
    qd, kd, vd = (np.asarray(x, dtype) for x in (q, k, v))
    dO = np.asarray(grad_out, dtype)
    P = _probabilities(qd, kd, attn_mask, is_causal, scale, dtype)
    Z = _dropout_factors(P.shape[:-2], P.shape[-2], P.shape[-1], dropout_p, seed, dtype)
    T = lambda x: np.swapaxes(x, -1, -2)  # noqa: E731

    dv = T(Z * P) @ dO
    dP = Z * (dO @ T(vd))
    dS = _scale_of(qd, scale, dtype) * P * (dP - (P * dP).sum(axis=-1, keepdims=True))
    dq = dS @ kd
    dk = T(dS) @ qd
    return tuple(_sum_to_shape(g, np.shape(x)) for g, x in ((dq, q), (dk, k), (dv, v)))
