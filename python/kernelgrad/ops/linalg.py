"""Matrix products on the GEMM kernel.

matmul:  C[..., M, N] = A[..., M, K] @ B[..., K, N]  (batch dims broadcast)
         dA = dC @ B^T (summed over broadcast batch dims),  dB = A^T @ dC
linear:  y[..., O] = x[..., I] @ W[O, I]^T + b[O]
         dx = dy @ W,  dW = dy^T x (one GEMM over all rows),  db = sum of dy over rows
Transposes are strided views: the kernel packs them, no copy is made.
"""
from ..autograd import Function
from ._util import new, sum_to, xp


class Matmul(Function):
    """Both operands at least 2-D; 1-D promotion is done by the caller with (un)squeeze."""

    @staticmethod
    def forward(ctx, a, b):
        n = ctx.needs_input_grad
        ctx.save_for_backward(a if n[1] else None, b if n[0] else None)
        ctx.shapes = (a.shape, b.shape)
        return new(xp(a).matmul(a._data, b._data), a.device)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        sa, sb = ctx.shapes
        n = ctx.needs_input_grad
        ga = sum_to(g.matmul(b.mT), sa) if n[0] else None
        gb = sum_to(a.mT.matmul(g), sb) if n[1] else None
        return ga, gb


class Linear(Function):
    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        B = xp(x)
        rows = B.reshape(x._data, (-1, x.shape[-1]))  # (N*, I): one GEMM for every leading dim
        out = B.matmul(rows, B.transpose(w._data, (1, 0)))  # (N*, O)
        if b is not None:
            out += b._data
        return new(B.reshape(out, x.shape[:-1] + (w.shape[0],)), x.device)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        n = ctx.needs_input_grad
        gx = g.matmul(w) if n[0] else None
        g2 = g.reshape(-1, g.shape[-1])
        gw = g2.mT.matmul(x.reshape(-1, x.shape[-1])) if n[1] else None
        gb = g2.sum(0) if len(n) > 2 and n[2] else None
        return gx, gw, gb
