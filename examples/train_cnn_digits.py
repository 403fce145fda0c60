"""A LeNet-style CNN on scikit-learn's real 8x8 handwritten digits (1797 images shipped with
scikit-learn, no download), or a small residual network with BatchNorm (--model resnet).

    python examples/train_cnn_digits.py [--model lenet|resnet] [--epochs 30] [--device cpu]
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
    """(N, 1, 8, 8) float images scaled to [0, 1] and int64 labels; 80% train, 20% test."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    tr, te = order[:cut], order[cut:]
    return x[tr], y[tr], x[te], y[te]


def lenet():
    # (N, 1, 8, 8) -> conv 3x3 -> pool -> (N, 16, 4, 4) -> conv 3x3 -> pool -> (N, 32, 2, 2) -> MLP
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, 10),
    )


class ResidualBlock(nn.Module):
    """x + BN(conv(ReLU(BN(conv(x))))), then ReLU: the basic block of ResNet."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(h)))


def resnet(width=32):
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        ResidualBlock(width), ResidualBlock(width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    )


def accuracy(model, x, y, batch=512):
    model.eval()
    correct = 0
    with kg.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--model", choices=["lenet", "resnet"], default="lenet")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    dev = _common.device(args.device)
    kg.manual_seed(args.seed)
    xtr, ytr, xte, yte = load_digits_split(args.seed)
    train = TensorDataset(kg.from_numpy(xtr).to(dev), kg.from_numpy(ytr).to(dev))
    x_test, y_test = kg.from_numpy(xte).to(dev), kg.from_numpy(yte).to(dev)

    model = (lenet() if args.model == "lenet" else resnet()).to(dev)
    opt = kg.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    loader = DataLoader(train, batch_size=args.batch, shuffle=True, generator=kg.Generator().manual_seed(args.seed))
    sched = kg.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(loader))
    losses = []
    start = time.perf_counter()
    bar = _common.Progress(range(args.epochs), args.model, args.quiet)
    for _ in bar:
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.loss(losses[-1])
    acc = accuracy(model, x_test, y_test)
    print(f"{args.model}: test accuracy {acc:.4f} after {args.epochs} epochs ({time.perf_counter() - start:.1f} s, "
          f"{sum(p.numel() for p in model.parameters())} parameters)")
    _common.save_loss_curve(losses, os.path.join(args.out, f"cnn_digits_{args.model}_loss.png"),
                            f"{args.model} on the digits: loss")
    return {"losses": losses, "accuracy": acc}


if __name__ == "__main__":
    main()
