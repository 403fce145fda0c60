"""Scaled dot-product attention on the fused kernels (FlashAttention-2: csrc/cpu/attention.cpp on
the CPU, csrc/cuda/attention.cu on CUDA).

    out = dropout(softmax(scale * q k^T + mask)) v       q (..., L, E), k (..., S, E), v (..., S, Ev)

Forward keeps only out and the log-sum-exp of each score row (lse); backward recomputes the
probabilities tile by tile from them: no L x S matrix is stored. The dropout mask is a
counter-based hash of (seed, batch index, i, j): forward is given the seed, backward passes the
same seed back and regenerates the mask. The batch dims of q, k, v broadcast; the gradients are
summed back to each input's shape. The mask gets no gradient (F refuses a mask that requires
one), and the gradients are not themselves differentiable (no double backward).
"""
from ..autograd import Function
from ._util import new, sum_to, xp


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, attn_mask, is_causal, scale, dropout_p, seed):
        mask = None if attn_mask is None else attn_mask._data
        out, lse = xp(q).attention_forward(q._data, k._data, v._data, mask, is_causal, scale, dropout_p, seed)
        out = new(out, q.device)
        ctx.save_for_backward(q, k, v, out, attn_mask)
        ctx.lse = lse
        ctx.options = (is_causal, scale, dropout_p, seed)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v, out, attn_mask = ctx.saved_tensors
        mask = None if attn_mask is None else attn_mask._data
        dq, dk, dv = xp(q).attention_backward(g._data, q._data, k._data, v._data, out._data, ctx.lse, mask,
                                              *ctx.options)
        n = ctx.needs_input_grad
        grads = tuple(sum_to(new(d, x.device), x.shape) if need else None
                      for d, x, need in zip((dq, dk, dv), (q, k, v), n))
        return grads + (None,) * 5
