"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (PyTorch's rule):

    g = grad + weight_decay * p
    b = g                                   on the first step (no dampening)
    b = momentum * b + (1 - dampening) * g  afterwards
    g = g + momentum * b  (nesterov)   or   g = b
    p = p - lr * g
"""
from .optimizer import Optimizer, _check_hyper


class SGD(Optimizer):
    _param_shaped_state = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        _check_hyper(lr >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check_hyper(not nesterov or (momentum > 0 and dampening == 0),
                     "Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p, grad, group):
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"] != 0:
            grad = grad.add(p, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])
