"""Indexing: t[index], t[index] = v, gather, scatter_add.

GetItem and IndexAdd are each other's backward: d t[idx] / dt scatters the gradient into zeros
(adding where an advanced index repeats), and d IndexAdd / dvalue gathers it back with t[idx].
"""
from ..autograd import Function
from ._util import new, sum_to, xp


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.meta = (a.shape, index)
        return new(xp(a).getitem(a._data, index), a.device)

    @staticmethod
    def backward(ctx, g):
        shape, index = ctx.meta
        return IndexAdd.apply(g, shape, index), None


class IndexAdd(Function):
    """zeros(shape) with `value` added at `index` (accumulating over repeated indices)."""

    @staticmethod
    def forward(ctx, value, shape, index):
        ctx.index = index
        B = xp(value)
        out = B.zeros(shape, dtype=value._data.dtype)
        B.index_add(out, index, value._data)
        return new(out, value.device)

    @staticmethod
    def backward(ctx, g):
        return GetItem.apply(g, ctx.index), None, None


class SetItem(Function):
    """out = a with out[index] = value (value broadcast to the indexed shape)."""

    @staticmethod
    def forward(ctx, a, value, index):
        ctx.meta = (index, value.shape)
        B = xp(a)
        out = B.copy(a._data)
        B.setitem(out, index, value._data)
        return new(out, a.device)

    @staticmethod
    def backward(ctx, g):
        from ..creation import zeros

        index, vshape = ctx.meta
        n = ctx.needs_input_grad
        ga = SetItem.apply(g, zeros((), dtype=g.dtype, device=g.device), index) if n[0] else None
        gv = sum_to(GetItem.apply(g, index), vshape) if n[1] else None
        return ga, gv, None


class Gather(Function):
    """out[i][j] = a[index[i][j]][j] for dim 0 (and likewise for other dims)."""

    @staticmethod
    def forward(ctx, a, dim, index):
        ctx.meta = (a.shape, dim)
        ctx.save_for_backward(index)
        return new(xp(a).gather(a._data, dim, index._data), a.device)

    @staticmethod
    def backward(ctx, g):
        from ..creation import zeros

        shape, dim = ctx.meta
        (index,) = ctx.saved_tensors
        return zeros(shape, dtype=g.dtype, device=g.device).scatter_add(dim, index, g), None, None


class ScatterAdd(Function):
    """out = a; out[index[i][j]][j] += src[i][j] for dim 0 (and likewise for other dims)."""

    @staticmethod
    def forward(ctx, a, dim, index, src):
        ctx.meta = (dim, src.shape)
        ctx.save_for_backward(index)
        B = xp(a)
        out = B.copy(a._data)
        B.scatter_add(out, dim, index._data, src._data)
        return new(out, a.device)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        dim, src_shape = ctx.meta
        n = ctx.needs_input_grad
        gsrc = None
        if n[3]:
            gsrc = g.gather(dim, index)
            if gsrc.shape != src_shape:  # src elements beyond index's extent were not used
                gsrc = IndexAdd.apply(gsrc, src_shape, tuple(slice(0, k) for k in index.shape))
        return (g if n[0] else None), None, None, gsrc
