"""An autoencoder on scikit-learn's real 8x8 handwritten digits (shipped with scikit-learn, no
download): 64 pixels -> 8 numbers -> 64 pixels, trained with the MSE loss; saves the test digits
next to their reconstructions.

    python examples/autoencoder_digits.py [--epochs 60] [--device cpu]
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
from kernelgrad.utils.data import DataLoader, TensorDataset  # noqa: E402


def load_digits_split(seed):
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0  # (1797, 64) in [0, 1]
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], x[order[cut:]]


def autoencoder(code=8):
    encoder = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, code))
    decoder = nn.Sequential(nn.Linear(code, 128), nn.ReLU(), nn.Linear(128, 64), nn.Sigmoid())
    return nn.Sequential(encoder, decoder)


def plot_reconstructions(x, recon, path, n=10):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(2, n, figsize=(n, 2.2))
    for i in range(n):
        for row, img in ((0, x[i]), (1, recon[i])):
            axes[row, i].imshow(img.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    dev = _common.device(args.device)
    kg.manual_seed(args.seed)
    train_np, test_np = load_digits_split(args.seed)
    train = TensorDataset(kg.from_numpy(train_np).to(dev))
    test = kg.from_numpy(test_np).to(dev)

    model = autoencoder().to(dev)
    opt = kg.optim.Adam(model.parameters(), lr=2e-3)
    sched = kg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, generator=kg.Generator().manual_seed(args.seed))
    losses = []
    start = time.perf_counter()
    bar = _common.Progress(range(args.epochs), "autoencoder", args.quiet)
    for _ in bar:
        model.train()
        for (xb,) in loader:
            loss = F.mse_loss(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.loss(losses[-1])
        sched.step()
    model.eval()
    with kg.no_grad():
        recon = model(test)
        test_mse = F.mse_loss(recon, test).item()
    baseline = float(((test_np - train_np.mean(0)) ** 2).mean())
    print(f"trained in {time.perf_counter() - start:.1f} s; test MSE {test_mse:.4f} "
          f"(predicting the mean digit: {baseline:.4f})")
    _common.save_loss_curve(losses, os.path.join(args.out, "autoencoder_loss.png"), "autoencoder: loss")
    path = plot_reconstructions(test_np, recon.cpu().numpy(), os.path.join(args.out, "autoencoder_digits.png"))
    if path:
        print(f"reconstructions: {path}")
    return {"losses": losses, "test_mse": test_mse, "baseline_mse": baseline}


if __name__ == "__main__":
    main()
