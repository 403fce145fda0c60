"""RMSprop (PyTorch's rule):

    g = grad + weight_decay * p
    v = alpha * v + (1 - alpha) * g * g
    centered:  m = m + (1 - alpha) * (g - m);  avg = sqrt(v - m * m) + eps
    otherwise: avg = sqrt(v) + eps
    momentum > 0: b = momentum * b + g / avg;  p = p - lr * b
    otherwise:    p = p - lr * g / avg
"""
from ..creation import zeros_like
from .optimizer import Optimizer, _check_hyper


class RMSprop(Optimizer):
    _param_shaped_state = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 *, maximize=False):
        _check_hyper(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check_hyper(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check_hyper(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p, grad, group):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["square_avg"] = zeros_like(p)
            if group["momentum"] > 0:
                state["momentum_buffer"] = zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = zeros_like(p)
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        alpha = group["alpha"]
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).add_(grad * grad, alpha=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.add_(grad - grad_avg, alpha=1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(grad / avg)
            p.add_(buf, alpha=-group["lr"])
        else:
            p.add_(grad / avg, alpha=-group["lr"])
