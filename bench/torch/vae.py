#!/usr/bin/python3
"""PyTorch twin of latentedit's default 32x32 VAE training step.

Mirrors generator/arch.go (Arch.Encode: the D trunk without normalisation,
then a dense posterior; Arch.Generate as the decoder) and the VAE step of
generator/train.go (trainer.build) for generator.Default("vae"): latent 64,
base 32, batch 64, RGB 32x32, beta 1, Adam lr 2e-4 betas (0.9, 0.999) on
encoder and decoder together. Layout NCHW instead of our NHWC.

    /usr/bin/python3 bench/torch/vae.py --threads 2 --steps 20

Prints the parameters (one line per network, on stderr) and one JSON line:
ms per step (mean, median, min), parameter counts, peak RSS of the process.
"""

import json
import os
import resource
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gan import (Arch, Generator, conv, dense, image_args, image_batches, listing,  # noqa: E402
                 lrelu, time_steps)

BATCH = 64
LR, BETA = 2e-4, 1.0
SIGMA = 0.2  # the Gaussian likelihood's sigma on the [-1, 1] scale


class Encoder(nn.Module):
    """Arch.Encode: stem conv3x3 -> lrelu -> 3 x (conv4x4 stride 2 pad 1,
    lrelu) -> flatten (NHWC order) -> dense to 2*latent: mean and log-variance,
    the latter bounded to [-12, 8]."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.stem = conv(a.channels, a.width(a.ups - 1), 3)
        self.downs = nn.ModuleList(
            [conv(a.width(a.ups - 1 - i), a.width(a.ups - 2 - i), 4, 2, 1) for i in range(a.ups)])
        s = a.size >> a.ups
        self.posterior = dense(s * s * a.width(-1), 2 * a.latent)

    def forward(self, x):
        x = lrelu(self.stem(x))
        for d in self.downs:
            x = lrelu(d(x))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        out = self.posterior(x)
        mu, log_var = out[:, :self.a.latent], out[:, self.a.latent:]
        return mu, torch.clamp(log_var, -12, 8)


class Step:
    """One training step, the graph of trainer.build's VAE branch."""

    def __init__(self, a):
        self.E, self.G = Encoder(a), Generator(a)
        self.params = list(self.G.parameters()) + list(self.E.parameters())
        self.opt = torch.optim.Adam(self.params, lr=LR, betas=(0.9, 0.999), eps=1e-8)

    def __call__(self, x, eps):
        mu, log_var = self.E(x)
        z = mu + torch.exp(0.5 * log_var) * eps
        recon = self.G(z)
        rec = ((recon - x) ** 2).sum() / (2 * SIGMA * SIGMA * BATCH)
        kl = (0.5 * (torch.exp(log_var) + mu * mu - 1 - log_var)).sum() / BATCH
        loss = rec + BETA * kl
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            grad = torch.sqrt(sum((p.grad * p.grad).sum() for p in self.params))
            out = torch.stack([loss, rec, kl, grad])
        return out.tolist()  # the 4 scalars our step returns to the host


def main():
    args = image_args(__doc__).parse_args()
    batch = image_batches(args)
    step = Step(Arch())
    n_g = listing("G", step.G)
    n_e = listing("E", step.E)
    print("params G=%d E=%d total=%d" % (n_g, n_e, n_g + n_e), file=sys.stderr)

    res = time_steps(lambda: step(*batch()), args.warmup, args.steps)
    print(json.dumps(dict(res, **{
        "step": "vae",
        "params": {"G": n_g, "E": n_e},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(), "torch": torch.__version__, "batch": BATCH,
    })))


if __name__ == "__main__":
    main()
