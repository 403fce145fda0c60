"""The backward engine: an iterative topological sort of the graph (no recursion, so 10,000-deep
graphs are fine), gradient buffers summed per node output, hooks, and freeing of saved tensors."""
from .function import AccumulateGrad
from .grad_mode import set_grad_enabled


def _graph(roots):
    """Every node reachable from `roots` and the number of edges into each (iterative DFS)."""
    deps = {}
    seen = set(roots)
    stack = list(roots)
    while stack:
        node = stack.pop()
        for edge in node.next_edges:
            if edge is None:
                continue
            nxt = edge[0]
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen, deps


def _topo_order(roots, deps):
    deps = dict(deps)
    ready = [n for n in dict.fromkeys(roots) if deps.get(n, 0) == 0]
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for edge in node.next_edges:
            if edge is None:
                continue
            nxt = edge[0]
            deps[nxt] -= 1
            if deps[nxt] == 0:
                ready.append(nxt)
    return order


def _accumulate(buf, i, g):
    buf[i] = g if buf[i] is None else buf[i] + g


def _zeros_for(meta):
    from ..creation import zeros

    shape, dtype, device = meta
    return zeros(shape, dtype=dtype, device=device)


def _run_hooks(node, i, g):
    for hook in node._tensor_pre_hooks(i):
        r = hook(g)
        if r is not None:
            g = r
    return g


def run_backward(tensors, grads, retain_graph, create_graph, inputs=None):
    """Propagate `grads` (one per tensor in `tensors`) to the leaves.

    With `inputs` (autograd.grad), nothing is accumulated into `.grad`: the gradients reaching
    `inputs` are returned instead, in order (None where no gradient reached).
    """
    roots = []
    buffers = {}
    for t, g in zip(tensors, grads):
        node, i = t._grad_edge()
        if node not in buffers:
            roots.append(node)
            buffers[node] = [None] * node.num_outputs
        _accumulate(buffers[node], i, g)

    _, deps = _graph(roots)
    order = _topo_order(roots, deps)

    capture = None
    if inputs is not None:
        capture = {}
        for k, t in enumerate(inputs):
            capture.setdefault(t._grad_edge(), []).append(k)
        targets = {edge[0] for edge in capture}
        needed = set()
        for node in reversed(order):  # children before parents
            if node in targets or any(e is not None and e[0] in needed for e in node.next_edges):
                needed.add(node)
        order = [n for n in order if n in needed]
        results = [None] * len(inputs)

    with set_grad_enabled(create_graph):
        for node in order:
            buf = buffers.pop(node, None)
            if buf is None:
                buf = [None] * node.num_outputs
            for i in range(node.num_outputs):
                if buf[i] is not None:
                    buf[i] = _run_hooks(node, i, buf[i])
                    retained = getattr(node, "_retained", None)
                    if retained is not None and i in retained:
                        t = retained[i]()
                        if t is not None:
                            g = buf[i] if create_graph else buf[i].detach()
                            t.grad = g if t.grad is None else t.grad + g
                if capture is not None and (node, i) in capture:
                    for k in capture[(node, i)]:
                        results[k] = buf[i]
            if isinstance(node, AccumulateGrad):
                if capture is None and buf[0] is not None:
                    node.variable._accumulate_grad(buf[0], create_graph)
                continue
            if all(g is None for g in buf):
                grads_in = (None,) * len(node.next_edges)
            else:
                if node._materialize:
                    buf = [_zeros_for(m) if g is None and m is not None else g for g, m in zip(buf, node._out_meta)]
                grads_in = node.apply(buf)
            if not retain_graph:
                node.release()
            for edge, g in zip(node.next_edges, grads_in):
                if edge is None or g is None:
                    continue
                nxt, i = edge
                g = _check_grad(node, nxt, i, g)
                nb = buffers.get(nxt)
                if nb is None:
                    nb = buffers[nxt] = [None] * nxt.num_outputs
                _accumulate(nb, i, g)
            grads_in = g = None  # hold no gradient past its node (leaves may keep unshared buffers)
    return results if capture is not None else None


def _check_grad(node, nxt, i, g):
    """A gradient must have its input's shape; dtype follows the input (PyTorch casts)."""
    from ..tensor import Tensor

    if not isinstance(g, Tensor):
        raise TypeError(f"function {node.name()} returned a gradient of type {type(g).__name__}, expected a Tensor")
    if isinstance(nxt, AccumulateGrad):
        shape, dtype = nxt.variable.shape, nxt.variable.dtype
    else:
        shape, dtype, _ = nxt._out_meta[i]
    if g.shape != shape:
        raise RuntimeError(
            f"function {node.name()} returned an invalid gradient - got shape {list(g.shape)} but "
            f"expected shape {list(shape)}"
        )
    if g.dtype != dtype:
        g = g.to(dtype=dtype)
    return g
