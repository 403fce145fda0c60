"""A character-level Transformer language model (causal self-attention on the fused attention
kernel) trained on the Python reference documentation that ships with Python; prints samples.

    python examples/char_transformer.py [--steps 600] [--device cpu]
"""
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


class CharTransformer(nn.Module):
    """tokens (N, T) -> logits (N, T, vocab): embedding + positions, pre-LN encoder layers with a
    causal mask, final LayerNorm, linear head."""

    def __init__(self, vocab, d_model, nhead, layers, context, dropout):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.PositionalEncoding(d_model, max_len=context, batch_first=True)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, vocab)
        self.register_buffer("causal", nn.generate_square_subsequent_mask(context), persistent=False)

    def forward(self, tokens):
        T = tokens.shape[1]
        h = self.pos(self.embed(tokens))
        h = self.encoder(h, mask=self.causal[:T, :T], is_causal=True)
        return self.head(h)


def sample(model, stoi, itos, prompt, n, context, dev, temperature=0.8):
    model.eval()
    ids = [stoi[c] for c in prompt if c in stoi]
    rng = np.random.default_rng(0)
    with kg.no_grad():
        for _ in range(n):
            x = kg.tensor([ids[-context:]], device=dev)
            p = F.softmax(model(x)[0, -1] / temperature, dim=-1).cpu().numpy().astype(np.float64)
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    return "".join(itos[i] for i in ids)


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--sample", type=int, default=300)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    dev = _common.device(args.device)
    kg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    text = corpus.text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    split = int(0.95 * len(data))
    train, val = data[:split], data[split:]
    print(f"{len(text)} characters, vocabulary of {len(chars)}")

    def batch(src):
        start = rng.integers(0, len(src) - args.context - 1, args.batch)
        idx = start[:, None] + np.arange(args.context + 1)
        chunk = kg.from_numpy(src[idx]).to(dev)
        return chunk[:, :-1], chunk[:, 1:]

    model = CharTransformer(len(chars), args.d_model, args.heads, args.layers, args.context, 0.1).to(dev)
    opt = kg.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    warmup = min(100, args.steps // 10 + 1)
    sched = kg.optim.lr_scheduler.SequentialLR(opt, [
        kg.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warmup),
        kg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.steps - warmup), eta_min=3e-4),
    ], milestones=[warmup])
    losses = []
    start = time.perf_counter()
    bar = _common.Progress(range(args.steps), "char-transformer", args.quiet)
    for _ in bar:
        model.train()
        x, y = batch(train)
        loss = F.cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        kg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        bar.loss(losses[-1])
    model.eval()
    with kg.no_grad():
        x, y = batch(val)
        val_loss = F.cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1)).item()
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s; "
          f"train loss {np.mean(losses[-50:]):.3f}, validation loss {val_loss:.3f} "
          f"(uniform guess: {np.log(len(chars)):.3f})")
    text_out = sample(model, stoi, chars, "The ", args.sample, args.context, dev)
    print("sample:\n" + text_out)
    _common.save_loss_curve(losses, os.path.join(args.out, "char_transformer_loss.png"), "char transformer: loss")
    return {"losses": losses, "val_loss": val_loss, "sample": text_out, "vocab": len(chars)}


if __name__ == "__main__":
    main()
