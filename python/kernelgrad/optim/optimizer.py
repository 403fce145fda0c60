"""Optimizer: parameter groups, per-parameter state, and PyTorch's state_dict layout.

A subclass passes its hyper-parameter defaults to `Optimizer.__init__` and implements
`_update(p, grad, group)`, the rule for one parameter (its state is `self.state[p]`); `step()`
calls it under `kg.no_grad()` for every parameter that has a `.grad`. Updates are in-place tensor
ops on the parameter's own device (`p.add_(...)`), so a parameter never leaves its device, and
state tensors are created with `kg.zeros_like(p)` beside it. The step counter is a Python int.

    state_dict() == {"state": {index: {"step": 3, "exp_avg": tensor, ...}},
                     "param_groups": [{"lr": 0.1, ..., "params": [0, 1]}, ...]}

Parameters are numbered in the order they appear across groups; a parameter without state has no
entry in "state".
"""
import warnings
from collections import defaultdict
from itertools import chain

from ..autograd.grad_mode import enable_grad, no_grad
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a hyper-parameter that has no default (every group must give it)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _check_hyper(ok, message):
    """Raise ValueError(message) unless ok; `message` names the argument, as PyTorch's do."""
    if not ok:
        raise ValueError(message)



def zero_grads(params, set_to_none=True):
    """Set each parameter's .grad to None, or zero it in place (detached from any graph)."""
    for p in params:
        if p.grad is None:
            continue
        if set_to_none:
            p.grad = None
        else:
            g = p.grad
            if g.grad_fn is not None:
                g.detach_()
            else:
                g.requires_grad_(False)
            with no_grad():
                g.zero_()

class Optimizer:
    # state entries that must have the parameter's shape (checked by load_state_dict)
    _param_shaped_state = ()

    def __init__(self, params, defaults):
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got a Tensor"
            )
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a group (a dict with "params" and optional hyper-parameters; missing ones take the
        optimizer's defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets will change between runs. Please use a list instead."
            )
        group["params"] = params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        ids = [id(p) for p in params]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters", stacklevel=3)
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if not existing.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient: to None (default), or to zeros in place."""
        zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure` re-evaluates the model and
        returns the loss (it runs with gradients enabled); step returns that loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad, group)
        return loss

    def _update(self, p, grad, group):
        raise NotImplementedError(f"{type(self).__name__} must implement step() or _update()")

    # --- state_dict
    def state_dict(self):
        """{"state": {param_index: state}, "param_groups": [group with "params" as indices]}.
        State tensors are returned by reference, as in PyTorch (copy them to keep a snapshot)."""
        index = {}
        param_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Load a state_dict() of an optimizer over parameters of the same shapes, grouped the
        same way. State tensors are copied onto each parameter's device (and floating-point ones
        to its dtype); the given dict is not aliased."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with 'state' and 'param_groups' entries")
        groups = self.param_groups
        saved_groups = state_dict["param_groups"]
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups: {len(saved_groups)}, "
                f"the optimizer has {len(groups)}"
            )
        for i, (g, sg) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group that doesn't match the size of optimizer's "
                    f"group: group {i} has {len(sg['params'])} parameters in the state dict, "
                    f"{len(g['params'])} in the optimizer"
                )
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = {key: self._load_state_value(param, k, key, value) for key, value in v.items()}
            else:
                state[k] = v
        self.state = state
        self.param_groups = [
            {**_copy_values(sg), "params": g["params"]} for g, sg in zip(groups, saved_groups)
        ]

    def _load_state_value(self, param, index, key, value):
        if key == "step":
            return _step_number(value)
        if isinstance(value, Tensor):
            if key in self._param_shaped_state and value.shape != param.shape:
                raise ValueError(
                    f"load_state_dict: state '{key}' of parameter {index} has shape {list(value.shape)}, "
                    f"the parameter has shape {list(param.shape)}"
                )
            dtype = param.dtype if param.is_floating_point() else value.dtype
            return value.detach().to(device=param.device, dtype=dtype).clone()
        return _copy_values(value)

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _step_number(value):
    """The step counter is a Python int here; a tensor (PyTorch's layout) is read once on load."""
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def _copy_values(value):
    """A copy of nested dicts/lists/tuples of plain values (tensors cloned)."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        out = value.copy()
        for k, v in value.items():
            out[k] = _copy_values(v)
        return out
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_copy_values(v) for v in value)
    return value
