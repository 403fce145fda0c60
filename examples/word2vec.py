"""word2vec: skip-gram with negative sampling (Mikolov et al. 2013) on the Python reference
documentation that ships with Python; prints the nearest neighbours of a few words.

For a centre word c with context word o and k noise words n_i drawn from the unigram^0.75
distribution, the loss is  -log sigmoid(u_o . v_c) - sum_i log sigmoid(-u_{n_i} . v_c).

    python examples/word2vec.py [--steps 3000] [--dim 64] [--device cpu]
"""
import collections
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import corpus  # noqa: E402

import kernelgrad as kg  # noqa: E402
import kernelgrad.nn as nn  # noqa: E402
import kernelgrad.nn.functional as F  # noqa: E402

PROBES = ["list", "function", "class", "integer", "exception", "loop"]


class SkipGram(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        self.centre = nn.Embedding(vocab, dim)   # v: the vectors we keep
        self.context = nn.Embedding(vocab, dim)  # u: output vectors
        nn.init.uniform_(self.centre.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(self, centre, context, noise):
        """centre (B,), context (B,), noise (B, k) -> mean loss over the batch."""
        v = self.centre(centre)                                   # (B, D)
        pos = (self.context(context) * v).sum(1)                  # (B,)
        neg = (self.context(noise) @ v.unsqueeze(2)).squeeze(2)   # (B, k)
        ones, zeros = kg.ones_like(pos), kg.zeros_like(neg)
        return (F.binary_cross_entropy_with_logits(pos, ones, reduction="sum")
                + F.binary_cross_entropy_with_logits(neg, zeros, reduction="sum")) / pos.shape[0]


def build_vocab(tokens, min_count):
    counts = collections.Counter(tokens)
    vocab = [w for w, c in counts.most_common() if c >= min_count]
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.array([index[w] for w in tokens if w in index], dtype=np.int64)
    freq = np.array([counts[w] for w in vocab], dtype=np.float64)
    return vocab, index, ids, freq


def nearest(weight, index, vocab, word, k=5):
    w = weight / np.linalg.norm(weight, axis=1, keepdims=True).clip(1e-8)
    sims = w @ w[index[word]]
    best = [i for i in np.argsort(-sims) if i != index[word]][:k]
    return [vocab[i] for i in best]


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--window", type=int, default=4)
    p.add_argument("--negatives", type=int, default=5)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    dev = _common.device(args.device)
    kg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    vocab, index, ids, freq = build_vocab(corpus.words(), args.min_count)
    # subsample frequent words (keep probability sqrt(t / f)), then draw noise from f^0.75
    f = freq[ids] / freq.sum()
    ids = ids[rng.random(ids.size) < np.sqrt(1e-4 / f)]
    noise_p = freq ** 0.75 / (freq ** 0.75).sum()
    print(f"{len(vocab)} words in the vocabulary, {ids.size} tokens after subsampling")

    model = SkipGram(len(vocab), args.dim).to(dev)
    opt = kg.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    start = time.perf_counter()
    bar = _common.Progress(range(args.steps), "word2vec", args.quiet)
    for _ in bar:
        pos = rng.integers(args.window, ids.size - args.window, args.batch)
        off = rng.integers(1, args.window + 1, args.batch) * rng.choice([-1, 1], args.batch)
        centre = kg.from_numpy(ids[pos]).to(dev)
        context = kg.from_numpy(ids[pos + off]).to(dev)
        noise = kg.from_numpy(rng.choice(len(vocab), (args.batch, args.negatives), p=noise_p)).to(dev)
        loss = model(centre, context, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        bar.loss(losses[-1])
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s, "
          f"loss {np.mean(losses[:50]):.3f} -> {np.mean(losses[-50:]):.3f}")

    weight = model.centre.weight.detach().cpu().numpy()
    neighbours = {w: nearest(weight, index, vocab, w) for w in PROBES if w in index}
    for w, near in neighbours.items():
        print(f"{w:>10}: {', '.join(near)}")
    _common.save_loss_curve(losses, os.path.join(args.out, "word2vec_loss.png"), "word2vec: loss")
    return {"losses": losses, "neighbours": neighbours}


if __name__ == "__main__":
    main()
