"""parameters_to_vector / vector_to_parameters: all parameters as one flat vector and back."""
from ...tensor import Tensor


def _check_same_device(param, old_device):
    if old_device is not None and param.device != old_device:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")
    return param.device


def parameters_to_vector(parameters):
    """cat of every parameter flattened (differentiable, like torch's param.view(-1))."""
    from ...functions import cat

    device = None
    vec = []
    for p in parameters:
        device = _check_same_device(p, device)
        vec.append(p.reshape(-1))
    return cat(vec)


def vector_to_parameters(vec, parameters):
    """Point each parameter's data at its slice of vec (reshaped), in order."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected kg.Tensor, but got: {type(vec).__name__}")
    device = None
    pointer = 0
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of {total} elements, got shape {list(vec.shape)}")
    for p in params:
        device = _check_same_device(p, device)
        n = p.numel()
        p.data = vec[pointer:pointer + n].reshape(p.shape).data
        pointer += n
