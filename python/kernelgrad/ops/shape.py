"""Shape ops: reshape, permute, expand, repeat, cat, split, tril/triu, clone.

Most are views in the forward (the backend returns a view when it can); every backward is the
inverse shape op on the gradient: reshape back, permute by the inverse, sum over expanded dims,
slice the concatenation apart, concatenate the splits.
"""
from ..autograd import Function
from ._util import new, sum_to, xp


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.src_shape = a.shape
        return new(xp(a).reshape(a._data, shape), a.device)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.src_shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
        return new(xp(a).transpose(a._data, dims), a.device)

    @staticmethod
    def backward(ctx, g):
        return g.permute(ctx.inverse), None


class Expand(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.src_shape = a.shape
        return new(xp(a).broadcast_to(a._data, shape), a.device)

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.src_shape), None


class Repeat(Function):
    """out[i0*s0 + j0, ...] = a[j0, ...]: tile `reps[k]` times along dim k."""

    @staticmethod
    def forward(ctx, a, reps):
        B = xp(a)
        shape = (1,) * (len(reps) - a.ndim) + a.shape
        data = B.reshape(a._data, shape)
        # (r0, s0, r1, s1, ...) by broadcasting, then merge each pair
        inter = tuple(v for r, s in zip(reps, shape) for v in (r, s))
        data = B.broadcast_to(B.reshape(data, tuple(v for s in shape for v in (1, s))), inter)
        ctx.meta = (a.shape, shape, inter)
        return new(B.copy(B.reshape(data, tuple(r * s for r, s in zip(reps, shape)))), a.device)

    @staticmethod
    def backward(ctx, g):
        src, shape, inter = ctx.meta
        g = g.reshape(inter).sum(dim=tuple(range(0, len(inter), 2)))
        return g.reshape(src), None


class Cat(Function):
    @staticmethod
    def forward(ctx, dim, *tensors):
        ctx.meta = (dim, [t.shape[dim] for t in tensors])
        return new(xp(tensors[0]).concatenate([t._data for t in tensors], axis=dim), tensors[0].device)

    @staticmethod
    def backward(ctx, g):
        dim, sizes = ctx.meta
        return (None,) + tuple(g.split(sizes, dim))


class Split(Function):
    """Pieces of sizes `sizes` along `dim` (views); backward concatenates (zeros for unused pieces)."""

    @staticmethod
    def forward(ctx, a, sizes, dim):
        ctx.dim = dim
        outs, start = [], 0
        index = [slice(None)] * a.ndim
        for s in sizes:
            index[dim] = slice(start, start + s)
            outs.append(new(a._data[tuple(index)], a.device))
            start += s
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        from ..functions import cat

        return cat(grads, ctx.dim), None, None


class Tril(Function):
    @staticmethod
    def forward(ctx, a, diagonal, lower):
        ctx.meta = (diagonal, lower)
        B = xp(a)
        return new((B.tril if lower else B.triu)(a._data, diagonal), a.device)

    @staticmethod
    def backward(ctx, g):
        diagonal, lower = ctx.meta
        return (g.tril(diagonal) if lower else g.triu(diagonal)), None, None


class Clone(Function):
    """A contiguous copy (clone, contiguous); the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, a):
        return new(xp(a).copy(a._data), a.device)

    @staticmethod
    def backward(ctx, g):
        return g


class Alias(Function):
    """The same data under a new tensor (a view of the whole); the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, a):
        return new(a._data, a.device)

    @staticmethod
    def backward(ctx, g):
        return g
