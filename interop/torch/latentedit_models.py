"""PyTorch twins of the generators `latentedit import` reads.

Each module here has exactly the parameter names and shapes that
latentedit's interop package maps (interop/layouts.go), so

    torch.save(model.state_dict(), "g.pt")
    latentedit import --from g.pt --arch dcgan --out models/mine

brings a model to latentedit, and `load_latentedit_dcgan(model_dir)` takes a
dcgan trained by latentedit to PyTorch. Images are NCHW in [-1, 1]; latents
are [B, L] standard normal.

- LatenteditDCGAN: latentedit's own `dcgan` generator.
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
