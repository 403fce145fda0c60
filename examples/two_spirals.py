"""The two-spiral problem of the TensorFlow Playground exercise: a network with linear
activations can only draw a straight boundary and fails; tanh or ReLU hidden layers separate the
spirals. Saves the decision boundaries and the loss curves.

    python examples/two_spirals.py [--steps 1500] [--device cpu]
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import kernelgrad as kg  # noqa: E402
import kernelgrad.nn as nn  # noqa: E402
import kernelgrad.nn.functional as F  # noqa: E402


def spirals(n, noise, rng):
    """n points per class on two interleaved spirals (r grows with the angle), labels 0 / 1."""
    t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * n, 2))
    y = np.concatenate([np.zeros(n), np.ones(n)])
    return x.astype(np.float32), y.astype(np.float32)


def make_model(activation, hidden=32):
    act = {"linear": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    return nn.Sequential(nn.Linear(2, hidden), act(), nn.Linear(hidden, hidden), act(), nn.Linear(hidden, 1))


def train(activation, x, y, x_test, y_test, steps, dev, quiet):
    model = make_model(activation).to(dev)
    opt = kg.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    bar = _common.Progress(range(steps), f"{activation:>6}", quiet)
    for _ in bar:
        loss = F.binary_cross_entropy_with_logits(model(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.loss(losses[-1])
    with kg.no_grad():
        acc = ((model(x_test).squeeze(1) > 0).float() == y_test).float().mean().item()
    return model, losses, acc


def plot_boundaries(models, x, y, path, dev):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    g = np.linspace(-1.3, 1.3, 200, dtype=np.float32)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 4), squeeze=False)
    for ax, (name, (model, acc)) in zip(axes[0], models.items()):
        with kg.no_grad():
            p = model(kg.from_numpy(grid).to(dev)).sigmoid().cpu().numpy().reshape(200, 200)
        ax.contourf(g, g, p, levels=20, cmap="RdBu", alpha=0.7)
        ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu", s=4, edgecolors="k", linewidths=0.2)
        ax.set_title(f"{name}: test accuracy {acc:.2f}")
        ax.set_aspect("equal")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--activations", default="linear,tanh,relu")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    dev = _common.device(args.device)
    kg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_np, y_np = spirals(500, 0.02, rng)
    xt_np, yt_np = spirals(500, 0.02, rng)
    x, y = kg.from_numpy(x_np).to(dev), kg.from_numpy(y_np).to(dev)
    x_test, y_test = kg.from_numpy(xt_np).to(dev), kg.from_numpy(yt_np).to(dev)

    results, curves = {}, {}
    start = time.perf_counter()
    for act in args.activations.split(","):
        model, losses, acc = train(act, x, y, x_test, y_test, args.steps, dev, args.quiet)
        results[act] = (model, acc)
        curves[act] = losses
        print(f"{act:>6}: final loss {losses[-1]:.4f}, test accuracy {acc:.3f}")
    print(f"trained in {time.perf_counter() - start:.1f} s")
    _common.save_loss_curve(curves[max(curves, key=lambda a: results[a][1])],
                            os.path.join(args.out, "two_spirals_loss.png"), "two spirals: loss")
    path = plot_boundaries(results, x_np, y_np, os.path.join(args.out, "two_spirals.png"), dev)
    if path:
        print(f"decision boundaries: {path}")
    return {a: {"losses": curves[a], "accuracy": results[a][1]} for a in results}


if __name__ == "__main__":
    main()
