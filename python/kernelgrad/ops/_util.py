"""Helpers shared by the op families."""
from ..backend import backend_for


def xp(t):
    """The backend module computing on t's device."""
    return backend_for(t.device)


def new(data, device):
    from ..tensor import Tensor

    return Tensor._make(data, device)


def sum_to(g, shape):
    """Reduce a broadcast gradient back to `shape`: sum the leading extra dims and the dims that
    were 1 in the operand (d/dx of broadcast_to(x) is a sum over the broadcast axes)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    dims = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    if lead:
        g = g.reshape(shape)
    return g


def normalize_dim(dim, ndim, what="dim"):
    """A dim in [-ndim, ndim) as a non-negative int (0-d tensors accept -1 and 0, as in PyTorch)."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{what}: expected an int, got {type(dim).__name__}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def normalize_dims(dim, ndim, what="dim"):
    """None -> every dim; an int or a sequence -> a sorted tuple of distinct non-negative dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (list, tuple)):
        dims = tuple(normalize_dim(d, ndim, what) for d in dim)
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"{what}: dim {tuple(dim)} appears multiple times in the list of dims")
        return tuple(sorted(dims)) if ndim else ()
    d = normalize_dim(dim, ndim, what)
    return (d,) if ndim else ()


def data_or_none(t):
    """The backend array of an optional tensor argument."""
    return None if t is None else t._data
