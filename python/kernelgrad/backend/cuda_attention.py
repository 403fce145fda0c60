"""CUDA backend: fused scaled dot-product attention (csrc/cuda/attention.cu, FlashAttention-2).

`attention_forward` and `attention_backward` of backend/cpu.py over CudaArrays, with the CPU
binding's semantics, argument checks and messages (csrc/python/bind_attention.cpp): q, k, v (and the
mask) are broadcast to one batch shape as views, and the kernels read every operand in place through
its strides, so broadcast, transposed and sliced inputs cost no copy. The dropout mask is the CPU's
function of (seed, batch index, i, j) (csrc/common/dropout_hash.h): one seed drops the same
attention weights on both devices.
"""
import numpy as np

from .cuda import _CODES, CudaArray, _broadcast_shapes, _m, _new, ascontiguous, broadcast_to

__all__ = ["attention_forward", "attention_backward"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_BOOL = np.dtype(np.bool_)


def _array(fn, name, x):
    if not isinstance(x, CudaArray):
        raise TypeError(f"{fn}: expected {name} to be a CUDA array, got {type(x).__name__}")
    return x


def _attention_views(fn, q, k, v, attn_mask):
    """q, k, v broadcast to one batch shape, and attn_mask to (*batch, L, S): views, no copies."""
    q, k, v = (_array(fn, name, x) for name, x in (("q", q), ("k", k), ("v", v)))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{fn}: expected q (..., L, E), k (..., S, E), v (..., S, Ev) with the same number "
                         f"(>= 2) of dimensions, got shapes {q.shape}, {k.shape}, {v.shape}")
    batch = _broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (broadcast_to(x, batch + x.shape[-2:]) for x in (q, k, v))
    if attn_mask is not None:
        attn_mask = broadcast_to(_array(fn, "attn_mask", attn_mask), batch + (q.shape[-2], k.shape[-2]))
    return q, k, v, attn_mask


def _check(fn, q, k, v, attn_mask, is_causal, dropout_p):
    if q.dtype not in _FLOATS or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"{fn}: expected q, k, v of one dtype, float32 or float64, got {q.dtype}, {k.dtype}, "
                        f"{v.dtype}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"{fn}: expected k.shape[-1] == q.shape[-1] (E), got q {q.shape} and k {k.shape}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"{fn}: expected v.shape[-2] == k.shape[-2] (S), got k {k.shape} and v {v.shape}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{fn}: an explicit attn_mask cannot be combined with is_causal=True")
    if not 0 <= dropout_p <= 1:
        raise ValueError(f"{fn}: expected 0 <= dropout_p <= 1, got {dropout_p:f}")
    if attn_mask is not None and attn_mask.dtype not in (_BOOL, q.dtype):
        raise TypeError(f"{fn}: expected a bool attn_mask or one of the query's dtype {q.dtype}, got "
                        f"{attn_mask.dtype}")


def _call(q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
    """The kernels' arguments (_m.AttentionCall): device addresses and element strides."""
    mask_ptr, mask_is_bool, mask_strides = 0, False, []
    if attn_mask is not None:
        mask_ptr, mask_is_bool, mask_strides = attn_mask._ptr, attn_mask.dtype == _BOOL, list(attn_mask._strides)
    (L, E), (S, Ev) = q.shape[-2:], v.shape[-2:]
    return _m.AttentionCall(_CODES[q.dtype], q._ptr, k._ptr, v._ptr, list(q._strides), list(k._strides),
                            list(v._strides), mask_ptr, mask_is_bool, mask_strides, bool(is_causal), float(scale),
                            float(dropout_p), seed, list(q.shape[:-2]), L, S, E, Ev)


def _expect(fn, name, x, shape, dtype):
    """x as a contiguous CudaArray of exactly `shape` and dtype (a copy only if x is not contiguous)."""
    _array(fn, name, x)
    if x.dtype != dtype or x.shape != shape:
        raise ValueError(f"{fn}: expected {name} of shape {shape} and dtype {dtype}, got shape {x.shape} and "
                         f"dtype {x.dtype}")
    return ascontiguous(x)


def attention_forward(q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
    """(out (*batch, L, Ev), lse (*batch, L)) of softmax(scale * q k^T + mask) v, with dropout
    p = dropout_p from `seed`; q (..., L, E), k (..., S, E), v (..., S, Ev) batch dims broadcast."""
    fn = "attention_forward"
    q, k, v, attn_mask = _attention_views(fn, q, k, v, attn_mask)
    _check(fn, q, k, v, attn_mask, is_causal, dropout_p)
    batch, L, Ev = q.shape[:-2], q.shape[-2], v.shape[-1]
    out, lse = _new(batch + (L, Ev), q.dtype), _new(batch + (L,), q.dtype)
    _m.attention_forward(out._ptr, lse._ptr, _call(q, k, v, attn_mask, is_causal, scale, dropout_p, seed))
    return out, lse


def attention_backward(grad_out, q, k, v, out, lse, attn_mask, is_causal, scale, dropout_p, seed):
    """(dq, dk, dv), each of the broadcast batch shape, for attention_forward's out and lse."""
    fn = "attention_backward"
    q, k, v, attn_mask = _attention_views(fn, q, k, v, attn_mask)
    _check(fn, q, k, v, attn_mask, is_causal, dropout_p)
    batch, (L, E), (S, Ev) = q.shape[:-2], q.shape[-2:], v.shape[-2:]
    _array(fn, "grad_out", grad_out)
    if grad_out.dtype != q.dtype or grad_out.shape != batch + (L, Ev):
        raise ValueError(f"{fn}: expected grad_out of the output's shape (*batch, L, Ev) and the query's dtype, "
                         f"got shape {grad_out.shape} and dtype {grad_out.dtype}")
    out = _expect(fn, "out", out, batch + (L, Ev), q.dtype)
    lse = _expect(fn, "lse", lse, batch + (L,), q.dtype)
    dq, dk, dv = (_new(batch + shape, q.dtype) for shape in ((L, E), (S, E), (S, Ev)))
    _m.attention_backward(dq._ptr, dk._ptr, dv._ptr, grad_out._ptr, list(grad_out._strides), out._ptr, lse._ptr,
                          _call(q, k, v, attn_mask, is_causal, scale, dropout_p, seed))
    return dq, dk, dv
