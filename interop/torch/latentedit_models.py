"""PyTorch twins of the generators `latentedit import` reads.

Each module here has exactly the parameter names and shapes that
latentedit's interop package maps (interop/layouts.go), so

    torch.save(model.state_dict(), "g.pt")
    latentedit import --from g.pt --arch dcgan --out models/mine

brings a model to latentedit, and `load_latentedit_dcgan(model_dir)` takes a
dcgan trained by latentedit to PyTorch (`load_latentedit_style` a style
one). Images are NCHW in [-1, 1]; latents are [B, L] standard normal.

- LatenteditDCGAN: latentedit's own `dcgan` generator.
- LatenteditStyle: latentedit's own `style` generator (mapping network,
  learned constant, modulated convolutions, noise, to-RGB skips).
- SNResNetGenerator: the layout of GANLatentDiscovery's SNGAN ResNet
  generator (models/SNGAN/sn_gen_resnet.py, `make_resnet_generator` wrapped
  in `GenWrapper`); its state dict has the same keys, so a checkpoint of
  theirs loads into it and the other way round.

This file needs only torch; `save_safetensors` writes the format by hand for
PyTorch versions without the safetensors package.
"""

import json
import math
import os
import struct

import torch
from torch import nn
import torch.nn.functional as F


def _pixel_norm(x, dim):
    # ProGAN's pixel norm, eps as in latentedit's engine.PixelNorm.
    return x * torch.rsqrt(torch.mean(x * x, dim=dim, keepdim=True) + 1e-8)


def dcgan_layout(size, base):
    """Seed side, number of up-blocks and the width function of latentedit's
    generator.NewArch: the side halves while it stays even and above 7."""
    start, ups = size, 0
    while start % 2 == 0 and start > 7:
        start //= 2
        ups += 1
    def width(i):  # channels after up-block i; -1 is the seed grid
        return min(base << (ups - 1 - i), 8 * base)
    return start, ups, width


class LatenteditDCGAN(nn.Module):
    """latentedit's dcgan generator: pixel-normed z, a dense layer to an
    S0×S0 seed, blocks of nearest 2× upsample + 3×3 conv + pixel norm +
    leaky ReLU (0.2), a 3×3 conv to the image and tanh.

    Keys: dense.{weight,bias}, up.{i}.{weight,bias}, to_image.{weight,bias}.
    The dense output is viewed channels-last [B, S0, S0, W0] (latentedit's
    layout) and then permuted to NCHW."""

    def __init__(self, size=32, channels=3, base=32, latent=64):
        super().__init__()
        self.start, ups, width = dcgan_layout(size, base)
        self.w0 = width(-1)
        self.dense = nn.Linear(latent, self.start * self.start * self.w0)
        self.up = nn.ModuleList(
            [nn.Conv2d(width(i - 1), width(i), 3, padding=1) for i in range(ups)])
        self.to_image = nn.Conv2d(width(ups - 1), channels, 3, padding=1)

    def forward(self, z):
        x = self.dense(_pixel_norm(z, 1))
        x = x.view(-1, self.start, self.start, self.w0).permute(0, 3, 1, 2)
        x = F.leaky_relu(_pixel_norm(x, 1), 0.2)
        for conv in self.up:
            x = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
            x = F.leaky_relu(_pixel_norm(x, 1), 0.2)
        return torch.tanh(self.to_image(x))


class ModConv(nn.Module):
    """latentedit's modulated convolution (generator/style.go modConv),
    written as input scaling, a plain convolution, then demodulation:
    s = affine(w) + 1 scales each input channel; with demod each output
    channel is divided by sqrt(sum over the kernel of (k*s)^2 + 1e-8).

    Keys: weight [F, Cin, k, k], affine.{weight [Cin, L], bias [Cin]}, and
    bias [F] where the block adds one (after the noise, so forward leaves
    it to the block)."""

    def __init__(self, cin, cout, k, latent, demod, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) / math.sqrt(cin * k * k))
        self.affine = nn.Linear(latent, cin)
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.demod = demod

    def forward(self, x, w):
        s = self.affine(w) + 1  # [B, Cin]
        y = F.conv2d(x * s[:, :, None, None], self.weight, padding=self.weight.shape[-1] // 2)
        if not self.demod:
            return y
        k2 = self.weight.pow(2).sum(dim=(2, 3)).t()  # [Cin, F]
        return y * torch.rsqrt(s.pow(2) @ k2 + 1e-8)[:, :, None, None]


class StyleBlock(nn.Module):
    """One synthesis block: (upsample,) modulated 3x3 conv, noise
    (noise_strength times the fixed buffer noise_const [1, 1, H, W]),
    bias, leaky ReLU 0.2; and its to-RGB, a modulated 1x1 conv without
    demodulation or bias."""

    def __init__(self, cin, cout, side, channels, latent, up, noise):
        super().__init__()
        self.up = up
        self.conv = ModConv(cin, cout, 3, latent, demod=True, bias=True)
        if noise:
            self.noise_strength = nn.Parameter(torch.zeros([]))
            self.register_buffer("noise_const", torch.randn(1, 1, side, side))
        else:
            self.noise_strength = None
        self.to_rgb = ModConv(cout, channels, 1, latent, demod=False, bias=False)

    def forward(self, x, w):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(x, w)
        if self.noise_strength is not None:
            x = x + self.noise_const * self.noise_strength
        x = F.leaky_relu(x + self.conv.bias[None, :, None, None], 0.2)
        return x, self.to_rgb(x, w)


class LatenteditStyle(nn.Module):
    """latentedit's style generator (generator/style.go): z is pixel-normed
    and mapped to w by map_depth Linear + leaky ReLU 0.2 layers; truncation
    pulls w towards the buffer w_avg, w_avg + psi (w - w_avg), where
    0 < psi < 1; a learned constant [1, W0, S0, S0] goes through
    blocks.0 … blocks.{ups}, each styled by w, their RGB outputs summed with
    nearest 2x upsampling between them, then tanh.

    Keys: mapping.{i}.{weight,bias}, const, w_avg, blocks.{i}.conv.weight,
    blocks.{i}.conv.affine.{weight,bias}, blocks.{i}.conv.bias,
    blocks.{i}.noise_strength and blocks.{i}.noise_const (with noise),
    blocks.{i}.to_rgb.weight, blocks.{i}.to_rgb.affine.{weight,bias}.
    Sizes follow dcgan_layout; block i > 0 upsamples and has width(i-1)
    channels, block 0 the constant's width(-1). forward(z) samples;
    synthesis(w) draws from a given w [B, L]."""

    def __init__(self, size=32, channels=3, base=32, latent=64, map_depth=2, noise=True, psi=1.0):
        super().__init__()
        self.start, ups, width = dcgan_layout(size, base)
        self.psi = psi
        self.mapping = nn.ModuleList([nn.Linear(latent, latent) for _ in range(map_depth)])
        self.register_buffer("w_avg", torch.zeros(latent))
        self.const = nn.Parameter(torch.randn(1, width(-1), self.start, self.start))
        self.blocks = nn.ModuleList([
            StyleBlock(width(i - 2) if i > 0 else width(-1), width(i - 1), self.start << i, channels, latent, i > 0, noise)
            for i in range(ups + 1)])

    def map(self, z):
        x = _pixel_norm(z, 1)
        for lin in self.mapping:
            x = F.leaky_relu(lin(x), 0.2)
        if 0 < self.psi < 1:
            x = self.w_avg + self.psi * (x - self.w_avg)
        return x

    def synthesis(self, w):
        x = self.const.expand(w.shape[0], -1, -1, -1)
        rgb = None
        for block in self.blocks:
            x, y = block(x, w)
            rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2, mode="nearest") + y
        return torch.tanh(rgb)

    def forward(self, z):
        return self.synthesis(self.map(z))


SN_RESNET = {"sn_resnet32": [256, 256, 256, 256], "sn_resnet64": [1024, 512, 256, 128, 64]}


class _View(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(-1, *self.shape)


class SNResBlock(nn.Module):
    """A residual up-block with the parameter paths of GANLatentDiscovery's
    ResBlockGenerator: conv1 and conv2 are attributes and also members of
    `model`, so a state dict names each twice (conv1.* = model.3.*,
    conv2.* = model.6.*); the bypass is a 3×3 conv after the upsample where
    the width changes."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, padding=1)
        self.model = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Upsample(scale_factor=2), self.conv1,
            nn.BatchNorm2d(cout), nn.ReLU(), self.conv2)
        if cin == cout:
            self.bypass = nn.Upsample(scale_factor=2)
        else:
            self.bypass = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, 1, padding=1))

    def forward(self, x):
        return self.model(x) + self.bypass(x)


class SNResNetGenerator(nn.Module):
    """The SNGAN ResNet generator as GANLatentDiscovery wraps it: `model` is
    the nn.Sequential (0 dense, 1 view to [W0, 4, 4], 2… blocks, then batch
    norm, ReLU, 3×3 conv, tanh). forward takes z, not a batch size."""

    def __init__(self, widths, channels=3, latent=128):
        super().__init__()
        layers = [nn.Linear(latent, 16 * widths[0]), _View(widths[0], 4, 4)]
        layers += [SNResBlock(widths[i], widths[i + 1]) for i in range(len(widths) - 1)]
        layers += [nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], channels, 3, 1, padding=1), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z):
        return self.model(z)


_DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.float16: ("F16", "<f2"),
           torch.int64: ("I64", "<i8"), torch.int32: ("I32", "<i4")}


def save_safetensors(state_dict, path, dedupe=True):
    """Write state_dict as .safetensors: an 8-byte little-endian header
    length, the JSON header, then each tensor's little-endian bytes. With
    dedupe, a tensor saved under two names (shared modules) is written once,
    under its first name, as the safetensors package does."""
    header, blobs, offset, seen = {}, [], 0, set()
    for name, t in state_dict.items():
        t = t.detach().cpu().contiguous()
        key = (t.data_ptr(), tuple(t.shape), t.dtype)
        if dedupe and t.numel() > 0 and key in seen:
            continue
        seen.add(key)
        dtype, _ = _DTYPES[t.dtype]
        # numpy-free little-endian bytes (x86 and ARM torch are little-endian)
        raw = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_latentedit_checkpoint(path):
    """The tensors of a latentedit checkpoint (engine/checkpoint.go): magic
    "LEDCKPT\\n", u32 version, u32 header length, JSON header, raw data, sha256."""
    import hashlib
    import numpy as np
    raw = open(path, "rb").read()
    body, digest = raw[:-32], raw[-32:]
    if raw[:8] != b"LEDCKPT\n" or hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{path}: not a latentedit checkpoint, or corrupted")
    hlen = struct.unpack("<I", raw[12:16])[0]
    header = json.loads(body[16:16 + hlen])
    off, out = 16 + hlen, {}
    for v in header["variables"]:
        if v["dtype"] != "Float32":
            raise ValueError(f"{path}: {v['name']} is {v['dtype']}, want Float32")
        a = np.frombuffer(body[off:off + v["bytes"]], dtype="<f4").reshape(v["shape"])
        out[v["name"]] = torch.from_numpy(a.copy())
        off += v["bytes"]
    return out


def load_latentedit_dcgan(model_dir):
    """A LatenteditDCGAN with the weights of a latentedit dcgan model
    directory (model.json + generator/weights.ckpt)."""
    info = json.load(open(os.path.join(model_dir, "model.json")))
    cfg = info["config"]
    if cfg.get("arch", "dcgan") != "dcgan":
        raise ValueError(f"{model_dir}: arch {cfg['arch']}, this loader reads dcgan")
    g = LatenteditDCGAN(cfg["size"], cfg["channels"], cfg["base"], cfg["latent_dim"])
    w = read_latentedit_checkpoint(os.path.join(model_dir, "generator", "weights.ckpt"))
    sd = {"dense.weight": w["/generator/dense/weights"].t(), "dense.bias": w["/generator/dense/biases"],
          "to_image.weight": w["/generator/to_image/weights"].permute(3, 2, 0, 1),
          "to_image.bias": w["/generator/to_image/biases"]}
    for i in range(len(g.up)):
        sd[f"up.{i}.weight"] = w[f"/generator/up{i}/weights"].permute(3, 2, 0, 1)
        sd[f"up.{i}.bias"] = w[f"/generator/up{i}/biases"]
    g.load_state_dict({k: v.contiguous() for k, v in sd.items()})
    return g.eval()


def load_latentedit_style(model_dir):
    """A LatenteditStyle with the weights of a latentedit style model
    directory, its truncation psi from model.json's config."""
    info = json.load(open(os.path.join(model_dir, "model.json")))
    cfg = info["config"]
    if cfg.get("arch") != "style":
        raise ValueError(f"{model_dir}: arch {cfg.get('arch', 'dcgan')}, this loader reads style")
    if cfg.get("convs", 1) not in (0, 1):
        raise ValueError(f"{model_dir}: convs {cfg['convs']}: LatenteditStyle has one convolution per block; "
                         "a model trained with --convs 2 has no PyTorch twin yet")
    g = LatenteditStyle(cfg["size"], cfg["channels"], cfg["base"], cfg["latent_dim"], cfg["map_depth"],
                        cfg.get("noise", False), cfg.get("truncation", 0) or 1.0)
    w = read_latentedit_checkpoint(os.path.join(model_dir, "generator", "weights.ckpt"))
    conv = lambda k: k.permute(3, 2, 0, 1)  # ours [kh, kw, Cin, F] -> [F, Cin, kh, kw]
    sd = {"const": w["/generator/const/value"].permute(0, 3, 1, 2),
          # a model trained here always tracks w_avg; one built without training may lack it
          "w_avg": w.get("/generator/w_avg", torch.zeros(cfg["latent_dim"]))}
    for i in range(len(g.mapping)):
        sd[f"mapping.{i}.weight"] = w[f"/generator/map{i}/weights"].t()
        sd[f"mapping.{i}.bias"] = w[f"/generator/map{i}/biases"]
    for i in range(len(g.blocks)):
        b, p = f"blocks.{i}", f"/generator/block{i}"
        for part in ("conv", "to_rgb"):
            sd[f"{b}.{part}.weight"] = conv(w[f"{p}/{part}/weights"])
            sd[f"{b}.{part}.affine.weight"] = w[f"{p}/{part}/affine/weights"].t()
            sd[f"{b}.{part}.affine.bias"] = w[f"{p}/{part}/affine/biases"]
        sd[f"{b}.conv.bias"] = w[f"{p}/conv/biases"]
        if g.blocks[i].noise_strength is not None:
            sd[f"{b}.noise_strength"] = w[f"{p}/noise/strength"].reshape([])
            sd[f"{b}.noise_const"] = w[f"{p}/noise/fixed"].permute(0, 3, 1, 2)
    g.load_state_dict({k: v.contiguous() for k, v in sd.items()})
    return g.eval()


# --- rosinality's StyleGAN2 (stylegan2-pytorch model.py, also in
# GANLatentDiscovery's models/StyleGAN2/), in pure PyTorch ops: the same
# parameter and buffer names, so a checkpoint's g_ema loads into it
# (strict) and `latentedit import --arch stylegan2` reads its state dict.

def _blur_kernel(k=(1, 3, 3, 1), scale=1.0):
    k = torch.tensor(k, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * scale


def _upfirdn2d(x, kernel, up=1, pad=(0, 0)):
    """upfirdn2d (up, down 1) with zero insertion, F.pad and a depthwise conv2d."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.view(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).view(b, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1]).to(x)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


class SG2PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class SG2EqualLinear(nn.Module):
    def __init__(self, din, dout, bias_init=0.0, lr_mul=1.0, activation=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dout, din).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(dout).fill_(bias_init))
        self.scale, self.lr_mul, self.activation = lr_mul / math.sqrt(din), lr_mul, activation

    def forward(self, x):
        out = F.linear(x, self.weight * self.scale)
        if self.activation:
            return F.leaky_relu(out + self.bias * self.lr_mul, 0.2) * math.sqrt(2)
        return out + self.bias * self.lr_mul


class SG2Blur(nn.Module):
    def __init__(self, pad, scale):
        super().__init__()
        self.register_buffer("kernel", _blur_kernel(scale=scale))
        self.pad = pad

    def forward(self, x):
        return _upfirdn2d(x, self.kernel, pad=self.pad)


class SG2Upsample(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", _blur_kernel(scale=4))

    def forward(self, x):
        return _upfirdn2d(x, self.kernel, up=2, pad=(2, 1))


class SG2ModulatedConv2d(nn.Module):
    def __init__(self, cin, cout, k, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.k, self.cin, self.cout, self.upsample, self.demodulate = k, cin, cout, upsample, demodulate
        if upsample:
            p = 2 - (k - 1)
            self.blur = SG2Blur(((p + 1) // 2 + 1, p // 2 + 1), scale=4)
        self.scale = 1 / math.sqrt(cin * k * k)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.modulation = SG2EqualLinear(style_dim, cin, bias_init=1)

    def forward(self, x, style):
        b, c, h, w = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.cout, 1, 1, 1)
        x = x.reshape(1, b * c, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.cout, self.k, self.k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            out = self.blur(out.view(b, self.cout, out.shape[2], out.shape[3]))
        else:
            out = F.conv2d(x, weight.view(b * self.cout, c, self.k, self.k), padding=self.k // 2, groups=b)
            out = out.view(b, self.cout, out.shape[2], out.shape[3])
        return out


class SG2NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class SG2FusedLeakyReLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class SG2ConstantInput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, c, 4, 4))

    def forward(self, b):
        return self.input.repeat(b, 1, 1, 1)


class SG2StyledConv(nn.Module):
    def __init__(self, cin, cout, style_dim, upsample=False):
        super().__init__()
        self.conv = SG2ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample)
        self.noise = SG2NoiseInjection()
        self.activate = SG2FusedLeakyReLU(cout)

    def forward(self, x, style, noise=None):
        return self.activate(self.noise(self.conv(x, style), noise))


class SG2ToRGB(nn.Module):
    def __init__(self, cin, style_dim, upsample=True):
        super().__init__()
        if upsample:
            self.upsample = SG2Upsample()
        self.conv = SG2ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


def stylegan2_channels(channel_multiplier=2):
    """rosinality's channels dict."""
    m = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m, 512: 32 * m, 1024: 16 * m}


class StyleGAN2Generator(nn.Module):
    """rosinality's Generator(size, style_dim, n_mlp, channel_multiplier,
    lr_mlp): same state dict; `channels` replaces the channels dict (tests
    use narrow ones). forward follows the original's arguments (a list of
    z or w, truncation with truncation_latent, input_is_latent for W or W+
    [B, n_latent, L], randomize_noise) and returns (image, None)."""

    def __init__(self, size, style_dim, n_mlp, channel_multiplier=2, lr_mlp=0.01, channels=None):
        super().__init__()
        self.size, self.style_dim = size, style_dim
        self.style = nn.Sequential(SG2PixelNorm(), *[SG2EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True)
                                                     for _ in range(n_mlp)])
        self.channels = channels or stylegan2_channels(channel_multiplier)
        self.input = SG2ConstantInput(self.channels[4])
        self.conv1 = SG2StyledConv(self.channels[4], self.channels[4], style_dim)
        self.to_rgb1 = SG2ToRGB(self.channels[4], style_dim, upsample=False)
        self.log_size = int(math.log(size, 2))
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        for j in range(self.num_layers):
            r = 2 ** ((j + 5) // 2)
            self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, r, r))
        cin = self.channels[4]
        for i in range(3, self.log_size + 1):
            cout = self.channels[2 ** i]
            self.convs.append(SG2StyledConv(cin, cout, style_dim, upsample=True))
            self.convs.append(SG2StyledConv(cout, cout, style_dim))
            self.to_rgbs.append(SG2ToRGB(cout, style_dim))
            cin = cout
        self.n_latent = self.log_size * 2 - 2

    def mean_latent(self, n):
        return self.style(torch.randn(n, self.style_dim, device=self.input.input.device)).mean(0, keepdim=True)

    def forward(self, styles, truncation=1, truncation_latent=None, input_is_latent=False, randomize_noise=True):
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if randomize_noise:
            noise = [None] * self.num_layers
        else:
            noise = [getattr(self.noises, f"noise_{j}") for j in range(self.num_layers)]
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        latent = styles[0] if styles[0].ndim == 3 else styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        out = self.conv1(self.input(latent.shape[0]), latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for c1, c2, n1, n2, rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2], noise[2::2], self.to_rgbs):
            out = c2(c1(out, latent[:, i], n1), latent[:, i + 1], n2)
            skip = rgb(out, latent[:, i + 2], skip)
            i += 2
        return skip, None
