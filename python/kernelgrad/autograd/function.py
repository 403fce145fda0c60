"""`Function` and its backward node: forward/backward pairs that build the graph.

The ctx a Function's forward receives *is* the node of the graph: it keeps the edges to the nodes
of its inputs, the tensors saved for backward, and runs `Function.backward` when the engine asks.
Leaves end the graph in an `AccumulateGrad` node that adds into `.grad`.
"""
from .grad_mode import is_grad_enabled, no_grad

_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


class Node:
    """Common part of graph nodes: per-output tensor hooks and grad retention."""

    num_outputs = 1
    next_edges = ()

    def _tensor_pre_hooks(self, i):
        hooks = getattr(self, "_hooks", None)
        return hooks.get(i, ()) if hooks else ()

    def _add_tensor_hook(self, i, fn):
        if getattr(self, "_hooks", None) is None:
            self._hooks = {}
        self._hooks.setdefault(i, []).append(fn)

    def name(self):
        return type(self).__name__


class AccumulateGrad(Node):
    """Graph end for a leaf tensor: grad is added into `variable.grad`."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"


class BackwardNode(Node):
    """The ctx of one Function application."""

    def __init__(self, fn_cls):
        self._fn = fn_cls
        self._saved = ()
        self._freed = False
        self._materialize = True
        self._non_diff = ()
        self.needs_input_grad = ()
        self.next_edges = ()
        self._out_meta = ()

    # --- the ctx API used inside forward/backward
    def save_for_backward(self, *tensors):
        self._saved = tuple(None if t is None else (t, t._version[0]) for t in tensors)

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(_FREED_MSG)
        out = []
        for i, item in enumerate(self._saved):
            if item is None:
                out.append(None)
                continue
            t, version = item
            if t._version[0] != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: saved tensor {i} of {self.name()} with shape {list(t.shape)} "
                    f"is at version {t._version[0]}; expected version {version} instead."
                )
            out.append(t)
        return tuple(out)

    def set_materialize_grads(self, value):
        self._materialize = bool(value)

    def mark_non_differentiable(self, *tensors):
        self._non_diff = tuple(id(t) for t in tensors)

    def name(self):
        return self._fn.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"

    # --- used by the engine
    def release(self):
        self._saved = ()
        self._freed = True

    def apply(self, grads):
        result = self._fn.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        n = len(self.next_edges)
        if len(result) != n:
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients (expected {n}, got {len(result)})"
            )
        return result


class Function:
    """Subclass with `@staticmethod forward(ctx, *args)` and `backward(ctx, *grad_outputs)`;
    call with `MyFunction.apply(*args)`."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("Function subclasses must implement backward")

    @classmethod
    def apply(cls, *args):
        from ..tensor import Tensor

        ctx = BackwardNode(cls)
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = is_grad_enabled() and any(needs)
        ctx.needs_input_grad = needs
        with no_grad():
            out = cls.forward(ctx, *args)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if not record:
            return out
        ctx.next_edges = tuple(a._grad_edge() if need else None for a, need in zip(args, needs))
        ctx.num_outputs = len(outs)
        wrapped = []
        metas = []
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                wrapped.append(o)
                metas.append(None)
                continue
            if any(o is a for a in args):
                o = o._alias()
            metas.append((o.shape, o.dtype, o.device))
            if o.dtype.is_floating_point and id(o) not in ctx._non_diff:
                o._set_grad_fn(ctx, i)
            wrapped.append(o)
        ctx._out_meta = tuple(metas)
        return wrapped[0] if single else tuple(wrapped)
