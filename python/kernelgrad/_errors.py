"""Error types that satisfy both the API contract (ValueError/TypeError) and PyTorch's own choice
(RuntimeError) for the same mistake, so code written against either catches them."""


class ShapeError(ValueError, RuntimeError):
    """Operand shapes that do not fit together."""


class DTypeError(TypeError, RuntimeError):
    """Operand dtypes that do not fit together."""


class DeviceError(RuntimeError):
    """Operands on different devices."""


class ArgumentError(ValueError, RuntimeError):
    """An argument value out of its allowed range (PyTorch raises RuntimeError for most)."""


class IndexRangeError(IndexError, RuntimeError):
    """An index value outside the dimension it indexes (PyTorch's gather/scatter: RuntimeError)."""


class DataError(TypeError, ValueError):
    """Data that cannot become a tensor (PyTorch: ValueError for strings, TypeError for objects)."""
