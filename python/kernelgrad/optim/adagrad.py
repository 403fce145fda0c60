"""Adagrad (PyTorch's rule):

    g = grad + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    sum = sum + g * g
    p = p - clr * g / (sqrt(sum) + eps)
"""
from ..creation import full_like
from .optimizer import Optimizer, _check_hyper


class Adagrad(Optimizer):
    _param_shaped_state = ("sum",)

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 *, maximize=False):
        _check_hyper(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(lr_decay >= 0.0, f"Invalid lr_decay value: {lr_decay}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check_hyper(initial_accumulator_value >= 0.0,
                     f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        _check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)
        # PyTorch creates Adagrad's state up front, so state_dict() has it before the first step
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p], group)

    @staticmethod
    def _init_state(p, state, group):
        state["step"] = 0
        state["sum"] = full_like(p, group["initial_accumulator_value"])

    def _update(self, p, grad, group):
        state = self.state[p]
        if not state:
            self._init_state(p, state, group)
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state_sum = state["sum"]
        state_sum.add_(grad * grad)
        std = state_sum.sqrt().add_(group["eps"])
        p.add_(grad / std, alpha=-clr)
