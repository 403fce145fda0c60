"""kg.utils: data loading (kg.utils.data)."""
from . import data

__all__ = ["data"]
