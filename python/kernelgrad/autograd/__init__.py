"""kg.autograd: Function, backward, grad, gradcheck and the grad-mode switches."""
from .engine import run_backward
from .function import Function
from .gradcheck import GradcheckError, gradcheck
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Function", "backward", "grad", "gradcheck", "GradcheckError", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled"]


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return tuple(x)
    return (x,)


def _make_grads(outputs, grad_outputs, what):
    from ..creation import ones_like
    from ..tensor import Tensor

    grads = []
    for k, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{what}: expected outputs to be Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(
                f"{what}: element {k} of tensors does not require grad and does not have a grad_fn"
            )
        g = None if grad_outputs is None else grad_outputs[k]
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"{what}: grad can be implicitly created only for scalar outputs; output {k} has "
                    f"shape {list(out.shape)}, pass a gradient of that shape"
                )
            g = ones_like(out)
        else:
            if not isinstance(g, Tensor):
                raise TypeError(f"{what}: expected gradient {k} to be a Tensor, got {type(g).__name__}")
            if g.shape != out.shape:
                raise RuntimeError(
                    f"{what}: mismatch in shape: gradient {k} has shape {list(g.shape)} and output "
                    f"{k} has shape {list(out.shape)}"
                )
            if g.device != out.device:
                raise RuntimeError(f"{what}: gradient {k} is on {g.device}, output on {out.device}")
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulate d(tensors)/d(leaf) into every leaf's `.grad`."""
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors)
    if grad_tensors is not None and len(grad_tensors) != len(tensors):
        raise RuntimeError(f"backward: got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    if retain_graph is None:
        retain_graph = create_graph
    grads = _make_grads(tensors, grad_tensors, "backward")
    run_backward(tensors, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of `outputs` with respect to `inputs`, returned as a tuple (no `.grad` touched)."""
    from ..tensor import Tensor

    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs)
    if grad_outputs is not None and len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    for k, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: expected inputs to be Tensors, got {type(t).__name__} at {k}")
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {k} does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    grads = _make_grads(outputs, grad_outputs, "grad")
    result = run_backward(outputs, grads, retain_graph, create_graph, inputs=inputs)
    for k, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: one of the differentiated Tensors (input {k}) appears to not have been used in "
                "the graph. Set allow_unused=True if this is the desired behavior."
            )
        if g is not None and not create_graph:
            result[k] = g.detach()
    return tuple(result)
