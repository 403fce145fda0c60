"""Gradient check: analytical Jacobian (one backward per output element) against float64 central
differences, d out / d x_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)."""
import numpy as np


class GradcheckError(RuntimeError):
    pass


def _outputs(fn, inputs):
    from ..tensor import Tensor

    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """True if autograd's gradients of `fn` at `inputs` match finite differences; otherwise raises
    a GradcheckError naming the input, output and element with the worst error."""
    from ..tensor import Tensor
    from .grad_mode import no_grad
    from . import grad as autograd_grad

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    diff = [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck: at least one input must be a Tensor with requires_grad=True")
    for k in diff:
        if inputs[k].dtype.name != "float64":
            raise TypeError(
                f"gradcheck: input {k} is {inputs[k].dtype.name}; use float64 inputs "
                "(finite differences in float32 are too inaccurate)"
            )
    outs = _outputs(fn, inputs)

    # analytical: row j of d out_o / d inputs from one backward with a one-hot grad_output
    analytical = {}
    for o, out in enumerate(outs):
        if not out.requires_grad:
            continue
        n = out.numel()
        for k in diff:
            analytical[(o, k)] = np.zeros((n, inputs[k].numel()))
        for j in range(n):
            onehot = np.zeros(n, dtype=out.dtype.np)
            onehot[j] = 1
            go = Tensor._from_array(onehot.reshape(out.shape)).to(out.device)
            gs = autograd_grad(out, [inputs[k] for k in diff], grad_outputs=go, retain_graph=True, allow_unused=True)
            for k, g in zip(diff, gs):
                if g is not None:
                    analytical[(o, k)][j] = g.detach().cpu().numpy().reshape(-1)

    # numerical: perturb each element of each input in place (under no_grad)
    worst = None
    for k in diff:
        x = inputs[k]
        flat = x.detach().cpu().numpy().reshape(-1).copy()
        for i in range(flat.size):
            vals = []
            for sign in (1, -1):
                p = flat.copy()
                p[i] += sign * eps
                with no_grad():
                    x.copy_(Tensor._from_array(p.reshape(x.shape)).to(x.device))
                # fn runs with grad mode on: it may itself differentiate (gradcheck of a gradient)
                vals.append([o.detach().cpu().numpy().astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)])
            with no_grad():
                x.copy_(Tensor._from_array(flat.reshape(x.shape)).to(x.device))
            for o, out in enumerate(outs):
                if (o, k) not in analytical:
                    continue
                num = (vals[0][o] - vals[1][o]) / (2 * eps)
                ana = analytical[(o, k)][:, i]
                err = np.abs(ana - num) - (atol + rtol * np.abs(num))
                j = int(np.argmax(err)) if err.size else 0
                if err.size and err[j] > 0 and (worst is None or err[j] > worst[0]):
                    worst = (err[j], k, i, o, j, ana[j], num[j])
    if worst is None:
        return True
    _, k, i, o, j, a, n = worst
    elem = np.unravel_index(i, inputs[k].shape) if inputs[k].ndim else ()
    out_elem = np.unravel_index(j, outs[o].shape) if outs[o].ndim else ()
    msg = (
        f"gradcheck: Jacobian mismatch for output {o} with respect to input {k}, worst at input "
        f"element {tuple(int(e) for e in elem)} and output element {tuple(int(e) for e in out_elem)}: "
        f"analytical {a!r} vs numerical {n!r} (atol={atol}, rtol={rtol})"
    )
    if raise_exception:
        raise GradcheckError(msg)
    return False
