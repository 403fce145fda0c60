"""kg.nn: layers arrive with the layer-API issue; the functional API is in kg.nn.functional."""
from . import functional  # noqa: F401
