#!/usr/bin/python3
"""PyTorch twins of latentedit's reconstructor step and direction-discovery step.

Mirror discover/reconstructor.go (Reconstruct), edit/linear.go (Linear.Shift)
and discover/train.go (Trainer.forward, Trainer.build) for the default
discovery configuration (discover.Default("linear")) at batch 64: K 8,
reconstructor width 32, loss CE + 0.25*L1 on the amount, Adam lr 1e-4
(betas 0.9, 0.999). The frozen generator is the shipped faces GAN's
architecture (32x32 RGB, latent 64, base 64; random weights here: the cost does
not depend on them). Layout NCHW instead of our NHWC.

    /usr/bin/python3 bench/torch/discover.py --step reconstructor --threads 2
    /usr/bin/python3 bench/torch/discover.py --step discovery --threads 2

Prints the parameters (one line per network, on stderr) and one JSON line:
ms per step (mean, median, min), parameter counts, peak RSS of the process.
"""

import argparse
import json
import os
import resource
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gan import Arch, Generator, conv, dense, listing, lrelu, time_steps  # noqa: E402

BATCH, SIZE, CHANNELS, LATENT, G_BASE = 64, 32, 3, 64, 64
K, WIDTH, LR, LAMBDA = 8, 32, 1e-4, 0.25
EPS_LO, EPS_HI = 0.5, 6.0  # Linear.EpsRange


class Reconstructor(nn.Module):
    """Reconstruct: concat(x0, x1, x1-x0) on channels -> stem conv3x3 -> lrelu ->
    4x4 stride-2 convs doubling the width (capped at 4*width) while the side is
    even and > 7 -> flatten -> dense 8*width, lrelu -> heads: K logits, 1 amount."""

    def __init__(self, channels=CHANNELS, size=SIZE, k=K, width=WIDTH):
        super().__init__()
        self.stem = conv(3 * channels, width, 3)
        downs, w, cin, s = [], width, width, size
        while s > 7 and s % 2 == 0:
            w = min(2 * w, 4 * width)
            downs.append(conv(cin, w, 4, 2, 1))
            cin, s = w, s // 2
        self.downs = nn.ModuleList(downs)
        self.hidden = dense(s * s * w, 8 * width)
        self.direction = dense(8 * width, k)
        self.amount = dense(8 * width, 1)

    def forward(self, x0, x1):
        x = torch.cat([x0, x1, x1 - x0], 1)
        x = lrelu(self.stem(x))
        for d in self.downs:
            x = lrelu(d(x))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # our flatten is NHWC
        h = lrelu(self.hidden(x))
        return self.direction(h), self.amount(h).view(-1)


class Linear(nn.Module):
    """edit.Linear: A [d, K] ~ N(0, 1); directions are its unit columns;
    shift z + eps * (onehot . D^T)."""

    def __init__(self, d=LATENT, k=K):
        super().__init__()
        self.A = nn.Parameter(torch.randn(d, k))

    def forward(self, z, onehot, eps):
        d = self.A / torch.sqrt((self.A * self.A).sum(0, keepdim=True) + 1e-12)
        return z + (onehot @ d.t()) * eps[:, None]


def losses(logits, eps_pred, onehot, eps):
    ce = -(onehot * F.log_softmax(logits, -1)).sum(-1).mean()
    l1 = (eps_pred - eps).abs().mean()
    return ce, l1, ce + LAMBDA * l1


class ReconStep:
    """The reconstructor alone on random image pairs: forward, loss, Adam."""

    def __init__(self):
        self.R = Reconstructor()
        self.opt = torch.optim.Adam(self.R.parameters(), lr=LR, betas=(0.9, 0.999), eps=1e-8)
        self.nets = {"R": self.R}

    def __call__(self, gen):
        x0 = torch.rand(BATCH, CHANNELS, SIZE, SIZE, generator=gen) * 2 - 1
        x1 = torch.rand(BATCH, CHANNELS, SIZE, SIZE, generator=gen) * 2 - 1
        onehot, eps = sample_moves(gen)
        logits, eps_pred = self.R(x0, x1)
        _, _, loss = losses(logits, eps_pred, onehot, eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return [loss.item()]


class DiscoveryStep:
    """Trainer.Step: G(z), G(shift(z)) through the frozen G, R on the pair,
    CE + 0.25*L1, Adam on the directions and R; 5 scalars to the host."""

    def __init__(self):
        self.G = Generator(Arch(SIZE, CHANNELS, G_BASE, LATENT))
        for p in self.G.parameters():
            p.requires_grad_(False)
        self.E, self.R = Linear(), Reconstructor()
        params = list(self.E.parameters()) + list(self.R.parameters())
        self.opt = torch.optim.Adam(params, lr=LR, betas=(0.9, 0.999), eps=1e-8)
        self.nets = {"G": self.G, "editor": self.E, "R": self.R}

    def __call__(self, gen):
        z = torch.randn(BATCH, LATENT, generator=gen)
        onehot, eps = sample_moves(gen)
        x0 = self.G(z)
        x1 = self.G(self.E(z, onehot, eps))
        logits, eps_pred = self.R(x0, x1)
        ce, l1, loss = losses(logits, eps_pred, onehot, eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            picked = (logits * onehot).sum(-1)
            acc = (picked >= logits.max(-1).values).float().mean()
            out = torch.stack([loss, ce, l1, torch.zeros(()), acc])
        return out.tolist()


def sample_moves(gen):
    k = torch.randint(0, K, (BATCH,), generator=gen)
    onehot = F.one_hot(k, K).float()
    eps = EPS_LO + (EPS_HI - EPS_LO) * torch.rand(BATCH, generator=gen)
    sign = torch.randint(0, 2, (BATCH,), generator=gen) * 2 - 1
    return onehot, eps * sign


def count(name, module):
    n = sum(p.numel() for p in module.parameters())
    listing(name, module)
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--step", choices=["reconstructor", "discovery"], required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    step = ReconStep() if args.step == "reconstructor" else DiscoveryStep()
    counts = {name: count(name, net) for name, net in step.nets.items()}
    print("params " + " ".join("%s=%d" % kv for kv in counts.items()), file=sys.stderr)
    gen = torch.Generator().manual_seed(args.seed)
    res = time_steps(lambda: step(gen), args.warmup, args.steps)
    print(json.dumps(dict(res, **{
        "step": args.step,
        "params": counts,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "batch": BATCH,
    })))


if __name__ == "__main__":
    main()
