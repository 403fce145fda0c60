"""Helpers shared by the examples: command-line device choice, a progress bar with the running
loss (tqdm when installed), and a loss-curve PNG (matplotlib when installed). The library itself
never imports tqdm or matplotlib: they are the optional `examples` extra."""
import argparse
import os

import kernelgrad as kg


def parser(description):
    p = argparse.ArgumentParser(description=description)
    add_device_argument(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="examples/out", help="folder for the PNG files")
    return p


def add_device_argument(p):
    """--device, for scripts with their own parser; _common.device(args.device) checks it."""
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda when kg.cuda.is_available()")


def device(name):
    if name.startswith("cuda") and not kg.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available in this build/machine")
    return kg.device(name)


class Progress:
    """for step in Progress(range(n), "train"): ...; bar.loss(value) shows the running loss."""

    def __init__(self, iterable, desc, quiet=False):
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        self._bar = tqdm(iterable, desc=desc, disable=quiet) if tqdm else None
        self._it = iterable
        self._quiet = quiet
        self._desc = desc
        self._running = None

    def __iter__(self):
        return iter(self._bar if self._bar is not None else self._it)

    def loss(self, value):
        """Exponential moving average of the loss, shown on the bar."""
        self._running = value if self._running is None else 0.95 * self._running + 0.05 * value
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{self._running:.4f}", refresh=False)
        return self._running


def save_loss_curve(losses, path, title):
    """A PNG of the loss per step; returns the path, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no loss curve (pip install 'kernelgrad[examples]')")
        return None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(losses, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
