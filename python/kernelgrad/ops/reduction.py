"""Reductions over a set of dims: sum, max/min (with indices), amax/amin, prod, norm.

Backward broadcasts the output gradient back over the reduced dims:
d sum / dx = 1;   d max_dim / dx = one at the argmax;   d amax / dx = ties share equally;
d prod / dx_i = prod_{j != i} x_j;   d ||x||_2 / dx = x / ||x|| (0 where ||x|| = 0).
"""
from ..autograd import Function
from ._util import new, xp


def _kept_shape(shape, dims):
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _expand_back(g, shape, dims):
    """(reduced) -> (shape): put the reduced dims back as size 1 and broadcast."""
    return g.reshape(_kept_shape(shape, dims)).expand(shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, dims, keepdim, dtype):
        ctx.meta = (a.shape, dims)
        out = xp(a).sum(a._data, axis=dims, keepdims=keepdim, dtype=dtype.np)
        return new(xp(a).asarray(out), a.device)

    @staticmethod
    def backward(ctx, g):
        shape, dims = ctx.meta
        return _expand_back(g, shape, dims), None, None, None


class Prod(Function):
    @staticmethod
    def forward(ctx, a, dims, keepdim, dtype):
        out = new(xp(a).asarray(xp(a).prod(a._data, axis=dims, keepdims=keepdim, dtype=dtype.np)), a.device)
        ctx.save_for_backward(a, out)
        ctx.dims = dims
        return out

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_tensors
        dims = ctx.dims
        if not bool((a == 0).any()):
            return _expand_back(g * out, a.shape, dims) / a, None, None, None
        # with zeros: prod over the other elements = exclusive cumulative products from both sides
        B = xp(a)
        data = B.reshape(B.transpose(a._data, [d for d in range(a.ndim) if d not in dims] + list(dims)),
                         tuple(s for d, s in enumerate(a.shape) if d not in dims) + (-1,))
        ones = B.full(data.shape[:-1] + (1,), 1, dtype=data.dtype)
        left = B.cumprod(B.concatenate([ones, data[..., :-1]], axis=-1), axis=-1)
        right = B.cumprod(B.concatenate([ones, data[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        others = new(left * right, a.device)
        perm = [d for d in range(a.ndim) if d not in dims] + list(dims)
        moved = tuple(a.shape[d] for d in perm)
        inv = [perm.index(d) for d in range(a.ndim)]
        others = others.reshape(moved).permute(inv)
        return _expand_back(g, a.shape, dims) * others, None, None, None


class AMax(Function):
    """max/min over dims without indices; tied maxima share the gradient equally."""

    @staticmethod
    def forward(ctx, a, dims, keepdim, is_max):
        B = xp(a)
        out = new(B.asarray((B.amax if is_max else B.amin)(a._data, axis=dims, keepdims=keepdim)), a.device)
        ctx.save_for_backward(a, out)
        ctx.dims = dims
        return out

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_tensors
        dims = ctx.dims
        hit = (a == _expand_back(out, a.shape, dims)).to(g.dtype)
        count = hit.sum(dim=dims, keepdim=True)
        return _expand_back(g, a.shape, dims) * hit / count, None, None, None


class MaxDim(Function):
    """(values, indices) of max/min along one dim; the gradient goes to the recorded index."""

    @staticmethod
    def forward(ctx, a, dim, keepdim, is_max):
        B = xp(a)
        idx = (B.argmax if is_max else B.argmin)(a._data, axis=dim, keepdims=True)
        vals = B.gather(a._data, dim, idx)
        if not keepdim:
            vals = B.reshape(vals, vals.shape[:dim] + vals.shape[dim + 1:])
            idx = B.reshape(idx, idx.shape[:dim] + idx.shape[dim + 1:])
        values = new(vals, a.device)
        indices = new(B.astype(idx, "int64"), a.device)
        ctx.mark_non_differentiable(indices)
        ctx.save_for_backward(indices)
        ctx.meta = (a.shape, dim, keepdim)
        return values, indices

    @staticmethod
    def backward(ctx, g, _gi):
        from ..creation import zeros

        (indices,) = ctx.saved_tensors
        shape, dim, keepdim = ctx.meta
        if not keepdim:
            g, indices = g.unsqueeze(dim), indices.unsqueeze(dim)
        return zeros(shape, dtype=g.dtype, device=g.device).scatter_add(dim, indices, g), None, None, None


class Norm2(Function):
    @staticmethod
    def forward(ctx, a, dims, keepdim):
        B = xp(a)
        out = new(B.asarray(B.sqrt(B.sum(a._data * a._data, axis=dims, keepdims=keepdim))), a.device)
        ctx.save_for_backward(a, out)
        ctx.dims = dims
        return out

    @staticmethod
    def backward(ctx, g):
        from ..tensor import where

        a, out = ctx.saved_tensors
        dims = ctx.dims
        n = _expand_back(out, a.shape, dims)
        scale = where(n == 0, 0.0, _expand_back(g, a.shape, dims) / where(n == 0, 1.0, n))
        return a * scale, None, None
