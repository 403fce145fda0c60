"""dtypes (kg.float32, ...) and PyTorch's type-promotion rules."""
import numpy as np


class dtype:
    """A tensor element type; `kg.float32` etc. are the only instances."""

    def __init__(self, name, np_dtype, category):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category  # 0 bool, 1 integer, 2 floating point
        self.itemsize = self.np.itemsize

    @property
    def is_floating_point(self):
        return self.category == 2

    def __repr__(self):
        return "kernelgrad." + self.name

    def __reduce__(self):
        return (_by_name, (self.name,))


bool_ = dtype("bool", np.bool_, 0)
int64 = dtype("int64", np.int64, 1)
float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)

_ALL = (bool_, int64, float16, float32, float64)
_FROM_NP = {d.np: d for d in _ALL}
_NAMES = {d.name: d for d in _ALL}


def _by_name(name):
    return _NAMES[name]


_default_float = float32


def get_default_dtype():
    return _default_float


def set_default_dtype(d):
    global _default_float
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"set_default_dtype: expected a floating point kg.dtype, got {d!r}")
    _default_float = d


def from_numpy_dtype(npd, what="array"):
    """The kg dtype for a NumPy dtype; other integer widths become int64, as data comes in."""
    npd = np.dtype(npd)
    if npd in _FROM_NP:
        return _FROM_NP[npd]
    if npd.kind in "iu":
        return int64
    raise TypeError(f"{what}: unsupported dtype {npd}; kernelgrad supports float16, float32, float64, int64 and bool")


def as_dtype(d, what="dtype"):
    """Accept a kg.dtype, a NumPy dtype or a Python type (float, int, bool)."""
    if d is None or isinstance(d, dtype):
        return d
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        raise TypeError(f"{what}: expected a kernelgrad dtype such as kg.float32, got the string {d!r}")
    try:
        return from_numpy_dtype(np.dtype(d), what)
    except TypeError:
        raise
    except Exception:
        raise TypeError(f"{what}: expected a kernelgrad dtype, got {d!r}") from None


def scalar_dtype(value):
    """The dtype a Python scalar takes on its own (`kg.tensor(3.0)` is float32)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return _default_float
    raise TypeError(f"expected a number, got {type(value).__name__}")


def promote(a, b):
    """The wider of two dtypes (bool < int64 < float16 < float32 < float64)."""
    return a if _ALL.index(a) >= _ALL.index(b) else b


def result_type(*operands):
    """PyTorch's promotion: dimensioned tensors outrank 0-d tensors, which outrank Python scalars,
    but a lower-ranked operand still lifts the result to its higher category (int -> float)."""
    from .tensor import Tensor

    groups = ([], [], [])  # dims tensors, 0-d tensors, scalars
    for x in operands:
        if isinstance(x, Tensor):
            groups[0 if x.ndim > 0 else 1].append(x.dtype)
        else:
            groups[2].append(scalar_dtype(x))
    result = None
    for g in groups:
        if not g:
            continue
        best = g[0]
        for d in g[1:]:
            best = promote(best, d)
        if result is None or best.category > result.category:
            if result is not None and g is groups[2]:
                best = {0: bool_, 1: int64, 2: _default_float}[best.category]
            result = best
    return result


def can_cast(src, dst):
    """In-place ops may not lower the category (float result into an int tensor)."""
    return src.category <= dst.category
