"""Gradient clipping, in place on `.grad`, as torch.nn.utils does it."""
import math

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their joint norm (the norm of the vector of every
    gradient element) is at most max_norm: g *= min(1, max_norm / (total_norm + 1e-6)).
    Returns the total norm (before clipping) as a 0-d tensor; norm_type may be inf."""
    from ...creation import tensor
    from ...functions import stack

    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return tensor(0.0)
    device = grads[0].device
    norms = [g.detach().norm(norm_type).to(device=device) for g in grads]
    if math.isinf(norm_type):
        total = norms[0] if len(norms) == 1 else stack(norms).amax()
    else:
        total = stack(norms).norm(norm_type)
    if error_if_nonfinite and not bool(total.isfinite().all()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot "
            "be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.to(device=g.device, dtype=g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
