#!/usr/bin/python3
"""PyTorch twin of latentedit's style GAN training step at 64x64 RGB.

Mirrors generator/style.go (Arch.Mapping, Arch.Synthesis, modConv,
discriminateResNet, minibatchStd) and trainer.buildStyle in
generator/train.go for the configuration the project trains
(BenchmarkStyleGANStep64's): size 64, RGB, base 32, latent 64, map depth 2,
mixing 0.9, no noise inputs, batch 64, non-saturating loss, Adam lr 2e-4
betas (0, 0.99) on G and on D, running mean of w (decay 0.995), EMA of G with
decay min((1+n)/(10+n), 0.999). With --r1 it times the lazy R1 step instead
(BenchmarkStyleR1Step64): D on real images, the gradient of sum D(real) with
respect to them (create_graph=True), gamma/2 * R1Every * the batch mean of
its squared norm, Adam on D. Layout NCHW instead of our NHWC; the arithmetic
is the same.

    /usr/bin/python3 bench/torch/stylegan.py --threads 2 --steps 20
    /usr/bin/python3 bench/torch/stylegan.py --threads 2 --steps 20 --r1

Prints the trainable parameters (G and D, one line each, on stderr) and one
JSON line on stdout: ms per step (mean, median, min), parameter counts (the
keys of gan.py), threads, torch version, peak RSS of the process.
"""

import json
import math
import os
import resource
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gan import Arch, conv, dense, he_, image_args, listing, pixel_norm, time_steps  # noqa: E402

LATENT, BASE, BATCH, SIZE, CHANNELS = 64, 32, 64, 64, 3
MAP_DEPTH, MIXING, R1_EVERY = 2, 0.9, 16
R1_GAMMA = 0.0002 * SIZE * SIZE / BATCH  # Config.r1's default: StyleGAN2's heuristic
LR, BETA1, BETA2, EMA, W_AVG_DECAY = 2e-4, 0.0, 0.99, 0.999, 0.995


def lrelu(x):
    # Ours is max(x, 0.2x) (engine.LeakyReLU); so is F.leaky_relu for a slope
    # in (0, 1), and it is what a PyTorch user writes. gan.py's
    # torch.maximum(x, 0.2 * x) has a backward of eq/where/masked_fill passes
    # that took about a fifth of this step's time in torch 1.13: the twin
    # should be PyTorch at its ordinary best, not a copy of our graph.
    return F.leaky_relu(x, 0.2)


def upsample(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")  # engine.Upsample2x


class ModConv(nn.Module):
    """modConv: s = affine(w) + 1 scales the input channels, an ordinary
    convolution with the shared kernel (no bias), then, with demod, each
    output channel divided by sqrt(sum over taps and inputs of (k*s)^2 + 1e-8)."""

    def __init__(self, latent, cin, cout, k, demod):
        super().__init__()
        self.affine = dense(latent, cin)
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))  # ours [k, k, Cin, F]
        he_(self.weight, k * k * cin)
        self.k, self.demod = k, demod

    def forward(self, x, w):
        s = self.affine(w) + 1                                      # [B, Cin]
        y = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.k // 2)
        if not self.demod:
            return y
        k2 = self.weight.square().sum(dim=(2, 3))                   # [F, Cin]
        d = torch.rsqrt(s.square() @ k2.t() + 1e-8)                 # [B, F]
        return y * d[:, :, None, None]


class Generator(nn.Module):
    """Arch.Mapping (pixel norm, MAP_DEPTH dense + lrelu) and Arch.Synthesis
    without noise: a learned constant [4, 4, 256]; per block (4x4 and the four
    upsampling blocks) nearest 2x (but the first), a modulated 3x3
    convolution, a bias, lrelu, and a modulated 1x1 to-RGB without demod whose
    output is added to the upsampled RGB of the block before; tanh. The
    running mean of w is a buffer (non-trainable, as our variable)."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.mapping = nn.ModuleList([dense(a.latent, a.latent) for _ in range(MAP_DEPTH)])
        w0 = a.width(-1)
        self.const = nn.Parameter(torch.randn(1, w0, a.start, a.start))
        convs, biases, rgbs = [], [], []
        cin = w0
        for i in range(a.ups + 1):
            f = w0 if i == 0 else a.width(i - 1)
            convs.append(ModConv(a.latent, cin, f, 3, True))
            biases.append(nn.Parameter(torch.zeros(f)))
            rgbs.append(ModConv(a.latent, f, a.channels, 1, False))
            cin = f
        self.convs, self.biases, self.rgbs = nn.ModuleList(convs), nn.ParameterList(biases), nn.ModuleList(rgbs)
        self.register_buffer("w_avg", torch.zeros(a.latent))

    def map(self, z):
        x = pixel_norm(z, 1)
        for d in self.mapping:
            x = lrelu(d(x))
        return x

    def synthesis(self, ws):
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        rgb = None
        for i, (c, b, r) in enumerate(zip(self.convs, self.biases, self.rgbs)):
            if i > 0:
                x = upsample(x)
            w = ws[:, i]
            x = lrelu(c(x, w) + b[None, :, None, None])
            y = r(x, w)
            rgb = y if rgb is None else upsample(rgb) + y
        return torch.tanh(rgb)


def minibatch_std(x, group=4):
    """minibatchStd in NCHW: one more channel, the standard deviation over
    groups of images i, i+M, i+2M, ... (M = B/group), averaged over features
    and positions."""
    b, c, h, w = x.shape
    g = min(group, b)
    while b % g:
        g -= 1
    m = b // g
    y = x.view(g, m, c, h, w)
    centred = y - y.mean(dim=0, keepdim=True)
    std = torch.sqrt(centred.square().mean(dim=0) + 1e-8)          # [M, C, H, W]
    s = std.mean(dim=(1, 2, 3))                                     # [M]
    s = s.view(1, m, 1, 1, 1).expand(g, m, 1, h, w).reshape(b, 1, h, w)
    return torch.cat([x, s], dim=1)


class ResBlock(nn.Module):
    """One scale of discriminateResNet: lrelu(conv3x3), lrelu(conv4x4 stride 2
    pad 1), plus the skip avgpool2 then 1x1 without bias, the sum over sqrt 2."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = conv(cin, cin, 3)
        self.conv_b = conv(cin, cout, 4, 2, 1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)
        he_(self.skip.weight, cin)

    def forward(self, h):
        y = lrelu(self.conv_b(lrelu(self.conv_a(h))))
        return (y + self.skip(F.avg_pool2d(h, 2))) / math.sqrt(2)


class Discriminator(nn.Module):
    """discriminateResNet: from-RGB 1x1, lrelu; a residual block per scale
    (64 -> 4); minibatch stddev; conv3x3 257 -> 256, lrelu; flatten (NHWC
    order); dense 4096 -> 256, lrelu; dense -> 1 logit."""

    def __init__(self, a):
        super().__init__()
        self.from_rgb = conv(a.channels, a.width(a.ups - 1), 1)
        self.res = nn.ModuleList(
            [ResBlock(a.width(a.ups - 1 - i), a.width(a.ups - 2 - i)) for i in range(a.ups)])
        self.final_conv = conv(a.width(-1) + 1, a.width(-1), 3)
        s = a.size >> a.ups
        self.final_dense = dense(s * s * a.width(-1), a.width(-1))
        self.logit = dense(a.width(-1), 1)

    def forward(self, x):
        h = lrelu(self.from_rgb(x))
        for r in self.res:
            h = r(h)
        h = lrelu(self.final_conv(minibatch_std(h)))
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
        return self.logit(lrelu(self.final_dense(h))).view(-1)


def mix_mask(gen, styles):
    """trainer.mixMask: for a fraction MIXING of the images, the styles from a
    random crossover in [1, styles) on come from the second latent (1)."""
    mixed = torch.rand(BATCH, generator=gen) < MIXING
    cross = torch.randint(1, styles, (BATCH,), generator=gen)
    m = (torch.arange(styles)[None, :] >= cross[:, None]) & mixed[:, None]
    return m.float()


class Step:
    """The main step and the R1 step of trainer.buildStyle. As in our graph,
    G and D are updated simultaneously from the weights at the start of the
    step, and the R1 step's Adam is D's (the same moments)."""

    def __init__(self, a):
        self.a = a
        self.G, self.D = Generator(a), Discriminator(a)
        self.gp, self.dp = list(self.G.parameters()), list(self.D.parameters())
        self.ema = [torch.zeros_like(p) for p in self.gp]  # starts at zero
        self.ema_w_avg = torch.zeros_like(self.G.w_avg)     # non-trainable state is copied
        self.ema_n = 0.0
        self.opt_g = torch.optim.Adam(self.gp, lr=LR, betas=(BETA1, BETA2), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.dp, lr=LR, betas=(BETA1, BETA2), eps=1e-8)
        self.last_r1 = 0.0

    def __call__(self, real, z, z2, mix):
        G, D = self.G, self.D
        w1, w2 = G.map(z), G.map(z2)
        with torch.no_grad():  # trackWAvg
            G.w_avg.mul_(W_AVG_DECAY).add_(w1.mean(dim=0), alpha=1 - W_AVG_DECAY)
        m = mix[:, :, None]                                          # [B, Styles, 1]
        ws = w1[:, None, :] * (1 - m) + w2[:, None, :] * m           # [B, Styles, Latent]
        fake = G.synthesis(ws)
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
            n = self.ema_n
            decay = min((1 + n) / (10 + n), EMA)
            self.ema_n += 1
            for e, p in zip(self.ema, self.gp):
                e.mul_(decay).add_(p, alpha=1 - decay)
            self.ema_w_avg.copy_(G.w_avg)
            grad_d = torch.sqrt(sum((g * g).sum() for g in grads_d))
            grad_g = torch.sqrt(sum((g * g).sum() for g in grads_g))
            out = torch.stack([loss_d, loss_g, dr.mean(), df.mean(), grad_d, grad_g])
        # The 6 scalars of the graph and the last R1 penalty, as runStep's 7.
        return out.tolist() + [self.last_r1]

    def r1(self, real):
        real = real.detach().requires_grad_(True)
        dr = self.D(real)
        g, = torch.autograd.grad(dr.sum(), real, create_graph=True)
        pen = g.square().sum(dim=(1, 2, 3)).mean()
        # The penalty does not depend on the biases (lrelu's mask has no
        # derivative) nor on the logit's: their gradient is zero, and Adam
        # still moves them with its moments, as ours does.
        grads = torch.autograd.grad(pen * (R1_GAMMA / 2 * R1_EVERY), self.dp, allow_unused=True)
        for p, gr in zip(self.dp, grads):
            p.grad = torch.zeros_like(p) if gr is None else gr
        self.opt_d.step()
        self.last_r1 = pen.item()
        return [self.last_r1]


def main():
    ap = image_args(__doc__)
    ap.add_argument("--r1", action="store_true", help="time the lazy R1 step instead of the main step")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = torch.rand(args.data, CHANNELS, SIZE, SIZE) * 2 - 1
    gen = torch.Generator().manual_seed(args.seed)

    a = Arch(SIZE, CHANNELS, BASE, LATENT)
    step = Step(a)
    n_g = listing("G", step.G)
    n_d = listing("D", step.D)
    print("params G=%d D=%d total=%d" % (n_g, n_d, n_g + n_d), file=sys.stderr)

    def run():
        real = data[torch.randint(0, args.data, (BATCH,), generator=gen)]
        if args.r1:
            return step.r1(real)
        z = torch.randn(BATCH, LATENT, generator=gen)
        z2 = torch.randn(BATCH, LATENT, generator=gen)
        return step(real, z, z2, mix_mask(gen, a.ups + 1))

    res = time_steps(run, args.warmup, args.steps)
    res.update({
        "mode": "r1" if args.r1 else "step",
        "params_G": n_g, "params_D": n_d, "params_total": n_g + n_d,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "batch": BATCH, "size": SIZE, "latent": LATENT, "base": BASE,
        "map_depth": MAP_DEPTH, "mixing": MIXING, "r1_every": R1_EVERY,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    print(json.dumps(res))


if __name__ == "__main__":
    main()
