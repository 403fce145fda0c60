"""Quick start: train a two-layer MLP on generated data (two interleaved half-moons) with
kernelgrad's autograd and a hand-written SGD step, then report the test accuracy.

    python examples/quickstart.py [--epochs 300] [--seed 0] [--device cpu] [--l1 1e-4] [--l2 1e-3]

--l1 / --l2 add an L1 and an L2 penalty on the weights to the loss (both: elastic net), one line
of tensor code each.

Everything here is the tensor API of this release: kg.randn, F.linear (on the C++ GEMM), relu,
logsumexp for a stable cross-entropy, .backward() and in-place updates under kg.no_grad().
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import kernelgrad as kg  # noqa: E402
import kernelgrad.nn.functional as F  # noqa: E402


def make_moons(n, noise, rng):
    """Two interleaving half circles in 2-D, labels 0 and 1."""
    t = rng.uniform(0, np.pi, n)
    upper = rng.integers(0, 2, n)
    x = np.where(upper[:, None] == 1,
                 np.stack([np.cos(t), np.sin(t)], 1),
                 np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))
    x += rng.normal(0, noise, x.shape)
    return x.astype(np.float32), upper.astype(np.int64)


def cross_entropy(logits, target):
    """mean over rows of logsumexp(z) - z[target]."""
    picked = logits.gather(1, target.unsqueeze(1)).squeeze(1)
    return (logits.logsumexp(1) - picked).mean()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--l1", type=float, default=0.0, help="L1 penalty on the weights (elastic net with --l2)")
    p.add_argument("--l2", type=float, default=0.0, help="L2 penalty on the weights")
    _common.add_device_argument(p)
    args = p.parse_args()
    dev = _common.device(args.device)

    kg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = make_moons(2000, 0.15, rng)
    x_test, y_test = make_moons(1000, 0.15, rng)
    x_train, y_train = kg.from_numpy(x_train).to(dev), kg.from_numpy(y_train).to(dev)
    x_test, y_test = kg.from_numpy(x_test).to(dev), kg.from_numpy(y_test).to(dev)

    # two layers, Kaiming-style initialisation: W ~ N(0, 2 / fan_in), drawn on the CPU (the same
    # initial weights whatever the device) and moved to the device
    w1 = (kg.randn(args.hidden, 2) * (2 / 2) ** 0.5).to(dev).requires_grad_()
    b1 = kg.zeros(args.hidden, requires_grad=True, device=dev)
    w2 = (kg.randn(2, args.hidden) * (2 / args.hidden) ** 0.5).to(dev).requires_grad_()
    b2 = kg.zeros(2, requires_grad=True, device=dev)
    params = [w1, b1, w2, b2]

    def model(x):
        return F.linear(F.linear(x, w1, b1).relu(), w2, b2)

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        loss = cross_entropy(model(x_train), y_train)
        if args.l1 or args.l2:  # elastic net: L1 + L2 penalties on the weights, one line each
            loss = loss + args.l1 * (w1.abs().sum() + w2.abs().sum()) + args.l2 * ((w1 ** 2).sum() + (w2 ** 2).sum())
        for p_ in params:
            p_.grad = None
        loss.backward()
        with kg.no_grad():
            for p_ in params:
                p_ -= args.lr * p_.grad
        if epoch % 50 == 0 or epoch == 1:
            print(f"epoch {epoch:4d}  loss {loss.item():.4f}")
    seconds = time.perf_counter() - start

    with kg.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"test accuracy {accuracy:.3f} after {args.epochs} epochs ({seconds:.1f} s)")
    return accuracy


if __name__ == "__main__":
    main()
