"""`kg.nn.Parameter`: a leaf Tensor that a Module registers as one of its learnable weights.

A Parameter is a Tensor (`isinstance(p, kg.Tensor)`) that shares the memory and version counter
of the tensor it was made from, as `torch.nn.Parameter` does. Ops on it return plain Tensors.
"""
import copy

from ..tensor import Tensor


class Parameter(Tensor):
    """`Parameter(data=None, requires_grad=True)`; `data` defaults to an empty float tensor."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from ..creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: expected data to be a Tensor, got {type(data).__name__}")
        self = object.__new__(cls)
        Tensor._init(self, data._data, data._device)
        self._version = data._version
        if requires_grad:
            self.requires_grad_(True)
        return self

    def __init__(self, data=None, requires_grad=True):
        pass  # everything happens in __new__ (Tensor.__init__ would build a new tensor from data)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.detach().clone(), self._requires_grad)
        if self._grad is not None:
            result._grad = copy.deepcopy(self._grad, memo)
        memo[id(self)] = result
        return result
