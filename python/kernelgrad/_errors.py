"""Error types that satisfy both the API contract (ValueError/TypeError) and PyTorch's own choice
(RuntimeError) for the same mistake, so code written against either catches them."""


class ShapeError(ValueError, RuntimeError):
    """Operand shapes that do not fit together."""


class DTypeError(TypeError, RuntimeError):
    """Operand dtypes that do not fit together."""


class DeviceError(RuntimeError):
    """Operands on different devices."""
