#!/usr/bin/python3
"""PyTorch twin of latentedit's default 32x32 GAN training step.

Mirrors generator/arch.go (Arch.Generate, Arch.Discriminate with d_norm "sn")
and the GAN step of generator/train.go (trainer.build) for the default
configuration (generator.Default): latent 64, base 32, batch 64, RGB 32x32,
non-saturating loss, Adam lr 2e-4 betas (0.5, 0.999) on G and on D, EMA of G
with decay min((1+n)/(10+n), 0.999), one power iteration of spectral norm per
step. Layout is NCHW instead of our NHWC; the arithmetic is the same.

Run with Debian's torch (apt-get install python3-torch):

    /usr/bin/python3 bench/torch/gan.py --threads 2 --steps 20

Prints the trainable parameters (G and D, one line each, on stderr) and one
JSON line on stdout: ms per step (mean, median, min), parameter counts,
threads, torch version, peak RSS of the process (after the timed steps, before
the G forward timing).
"""

import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LATENT, BASE, BATCH, SIZE, CHANNELS = 64, 32, 64, 32, 3
LR, BETA1, BETA2, EMA = 2e-4, 0.5, 0.999, 0.999


class Arch:
    """generator.NewArch for (32, 3, 32, 64): start 4x4, 3 upsample blocks."""

    def __init__(self, size=SIZE, channels=CHANNELS, base=BASE, latent=LATENT):
        self.size, self.channels, self.base, self.latent = size, channels, base, latent
        self.start, self.ups = size, 0
        while self.start % 2 == 0 and self.start > 7:
            self.start //= 2
            self.ups += 1

    def width(self, i):
        return min(self.base << (self.ups - 1 - i), 8 * self.base)


def lrelu(x):
    return torch.maximum(x, 0.2 * x)  # lrelu in arch.go: max(x, 0.2x)


def pixel_norm(x, dim):
    return x * torch.rsqrt((x * x).mean(dim=dim, keepdim=True) + 1e-8)


def he_(w, fan_in):
    # initializers.HeFn: normal, stddev sqrt(2/fan_in); biases zero.
    with torch.no_grad():
        w.normal_(0.0, math.sqrt(2.0 / fan_in))


def dense(cin, cout):
    m = nn.Linear(cin, cout, bias=True)
    he_(m.weight, cin)
    nn.init.zeros_(m.bias)
    return m


def conv(cin, cout, k, stride=1, pad=None):
    m = nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2 if pad is None else pad, bias=True)
    he_(m.weight, k * k * cin)
    nn.init.zeros_(m.bias)
    return m


class Generator(nn.Module):
    """Arch.Generate: pixelNorm(z) -> dense -> [4,4,w(-1)] -> pixelNorm, lrelu ->
    3 x (nearest 2x, conv3x3, pixelNorm, lrelu) -> to_image conv3x3 -> tanh."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.dense = dense(a.latent, a.start * a.start * a.width(-1))
        self.ups = nn.ModuleList(
            [conv(a.width(i - 1), a.width(i), 3) for i in range(a.ups)])
        self.to_image = conv(a.width(a.ups - 1), a.channels, 3)

    def forward(self, z):
        a = self.a
        x = self.dense(pixel_norm(z, 1))
        # Our reshape is NHWC [B, s, s, w]; view it so and turn to NCHW.
        x = x.view(-1, a.start, a.start, a.width(-1)).permute(0, 3, 1, 2)
        x = lrelu(pixel_norm(x, 1))
        for c in self.ups:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = lrelu(pixel_norm(c(x), 1))
        return torch.tanh(self.to_image(x))


class SNConv(nn.Module):
    """snConv + engine.SpectralNorm: kernel divided by u^T W v, W the kernel as a
    [k*k*Cin, F] matrix, with one power iteration per step from the stored left
    vector u [k*k*Cin] (non-trainable, N(0,1) init). Like our graph, every call
    within a step starts from the same stored u, and the refined u is stored
    once the step is done (commit)."""

    def __init__(self, cin, cout, k, stride, pad):
        super().__init__()
        self.conv = conv(cin, cout, k, stride, pad)
        self.register_buffer("sn_u", torch.randn(k * k * cin))
        self.u_next = None

    def forward(self, x):
        w = self.conv.weight                    # [F, Cin, k, k]
        f = w.shape[0]
        with torch.no_grad():
            m = w.permute(2, 3, 1, 0).reshape(-1, f)  # [k*k*Cin, F], our layout

            def unit(t):
                return t / (t.norm() + 1e-12)
            v = unit(m.t() @ self.sn_u)             # W^T u  [F]
            u = unit(m @ v)                         # W v    [k*k*Cin]
            self.u_next = u
        mg = w.permute(2, 3, 1, 0).reshape(-1, f)     # with gradient, as SpectralScale
        sigma = torch.dot(u, mg @ v)
        return F.conv2d(x, w / sigma, self.conv.bias, self.conv.stride, self.conv.padding)

    def commit(self):
        if self.u_next is not None:
            self.sn_u.copy_(self.u_next)


class Discriminator(nn.Module):
    """Arch.trunk with norm "sn" + Discriminate: stem SN conv3x3 -> lrelu ->
    3 x (SN conv4x4 stride 2 pad 1, lrelu) -> flatten -> dense -> 1 logit."""

    def __init__(self, a):
        super().__init__()
        self.stem = SNConv(a.channels, a.width(a.ups - 1), 3, 1, 1)
        self.downs = nn.ModuleList(
            [SNConv(a.width(a.ups - 1 - i), a.width(a.ups - 2 - i), 4, 2, 1) for i in range(a.ups)])
        s = a.size >> a.ups
        self.logit = dense(s * s * a.width(-1), 1)

    def forward(self, x):
        x = lrelu(self.stem(x))
        for d in self.downs:
            x = lrelu(d(x))
        # Our flatten is NHWC; the order does not change the cost.
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.logit(x).view(-1)

    def commit(self):
        for m in self.modules():
            if isinstance(m, SNConv):
                m.commit()


def image_args(doc):
    """The command line of the image-model twins (GAN, VAE)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--data", type=int, default=256, help="random training images")
    ap.add_argument("--seed", type=int, default=1)
    return ap


def image_batches(args):
    """Sets the threads and the seed; returns a function drawing a batch of
    BATCH of args.data random images in [-1, 1] and BATCH normal latents."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = torch.rand(args.data, CHANNELS, SIZE, SIZE) * 2 - 1
    gen = torch.Generator().manual_seed(args.seed)

    def batch():
        idx = torch.randint(0, args.data, (BATCH,), generator=gen)
        return data[idx], torch.randn(BATCH, LATENT, generator=gen)
    return batch


def time_steps(run, warmup, steps):
    """Runs run() warmup times, then steps timed times; returns the timing
    fields of the JSON line (ms per step: mean, median, min). Exits if the last
    step's scalars are not finite."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        vals = run()
        times.append((time.perf_counter() - t0) * 1e3)
    if not all(math.isfinite(v) for v in vals):
        print("non-finite step output %s" % vals, file=sys.stderr)
        sys.exit(1)
    return {
        "ms_per_step": statistics.mean(times),
        "ms_per_step_median": statistics.median(times),
        "ms_per_step_min": min(times),
        "steps": steps, "warmup": warmup,
    }


def listing(name, module):
    n, parts = 0, []
    for pname, p in module.named_parameters():
        n += p.numel()
        parts.append("%s%s=%d" % (pname, list(p.shape), p.numel()))
    print("%s: %s" % (name, ", ".join(sorted(parts))), file=sys.stderr)
    return n


class Step:
    """One training step, the same computation as trainer.build's GAN graph:
    G and D are updated simultaneously from the weights at the start of the
    step (G's loss goes through the D that D's loss is computed with)."""

    def __init__(self, a):
        self.G, self.D = Generator(a), Discriminator(a)
        self.ema = [torch.zeros_like(p) for p in self.G.parameters()]  # starts at zero
        self.ema_n = 0.0
        self.gp, self.dp = list(self.G.parameters()), list(self.D.parameters())
        self.opt_g = torch.optim.Adam(self.gp, lr=LR, betas=(BETA1, BETA2), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.dp, lr=LR, betas=(BETA1, BETA2), eps=1e-8)

    def __call__(self, real, z):
        G, D = self.G, self.D
        fake = G(z)
        dr = D(real)
        df = D(fake.detach())
        dg = D(fake)
        loss_d = F.softplus(-dr).mean() + F.softplus(df).mean()
        loss_g = F.softplus(-dg).mean()
        grads_d = torch.autograd.grad(loss_d, self.dp)
        grads_g = torch.autograd.grad(loss_g, self.gp)
        for p, g in zip(self.dp, grads_d):
            p.grad = g
        for p, g in zip(self.gp, grads_g):
            p.grad = g
        self.opt_d.step()
        self.opt_g.step()
        with torch.no_grad():
            D.commit()
            n = self.ema_n
            decay = min((1 + n) / (10 + n), EMA)
            self.ema_n += 1
            for e, p in zip(self.ema, self.gp):
                e.mul_(decay).add_(p, alpha=1 - decay)
            grad_d = torch.sqrt(sum((g * g).sum() for g in grads_d))
            grad_g = torch.sqrt(sum((g * g).sum() for g in grads_g))
            out = torch.stack([loss_d, loss_g, dr.mean(), df.mean(), grad_d, grad_g])
        return out.tolist()  # the 6 scalars our step returns to the host


def main():
    ap = image_args(__doc__)
    ap.add_argument("--forward", type=int, default=10, help="timed G forward passes (0: skip)")
    args = ap.parse_args()
    batch = image_batches(args)
    step = Step(Arch())
    n_g = listing("G", step.G)
    n_d = listing("D", step.D)
    print("params G=%d D=%d total=%d" % (n_g, n_d, n_g + n_d), file=sys.stderr)

    res = time_steps(lambda: step(*batch()), args.warmup, args.steps)
    res.update({
        "params_G": n_g, "params_D": n_d, "params_total": n_g + n_d,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "batch": BATCH, "size": SIZE, "latent": LATENT, "base": BASE,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    if args.forward > 0:
        _, z = batch()
        with torch.no_grad():
            step.G(z)
            ft = []
            for _ in range(args.forward):
                t0 = time.perf_counter()
                step.G(z)
                ft.append((time.perf_counter() - t0) * 1e3)
        res["gen_forward_ms"] = statistics.mean(ft)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
