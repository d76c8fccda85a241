"""Test fixtures for package interop: builds the PyTorch twins of
interop/torch/latentedit_models.py with seeded random weights (batch norm
statistics included), saves each as .pt and .safetensors, and writes fixed
latents with the images PyTorch makes of them (float32, little-endian,
images channels-last) for the Go test to compare.

usage: python3 fixtures.py OUT_DIR 'JSON list of cases'
       python3 fixtures.py export MODEL_DIR Z_FILE N OUT_IMG [OUT_PT]
         (renders the latentedit dcgan or style model directory MODEL_DIR in
         PyTorch through load_latentedit_dcgan/_style: the way back; with
         OUT_PT, also saves that PyTorch module's state dict there)
  a case: {"name": …, "arch": "dcgan"|"sn_resnet"|"style"|"stylegan2"|"onnx", "seed": …, "n": latents,
           dcgan: "size", "channels", "base", "latent"; sn_resnet: "widths", "channels", "latent";
           style: dcgan's and "map_depth", "noise", "psi";
           stylegan2: "widths", "latent", "map_depth", "psi", "wplus", and "range": [LO, HI] to rescale
             the output from [-1, 1] to [LO, HI] in the weights (images then unclamped);
           onnx: "widths", "channels", "latent", "final" (tanh|sigmoid), "extra" (leaky|convt: an op the
             converter lacks), "export_batch", "dynamic" (a symbolic batch) — writes NAME.onnx, no .pt}
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "torch"))
import latentedit_models as lm  # noqa: E402


class OnnxGenerator(torch.nn.Module):
    """A small generator for the ONNX route: Linear → view [B, W0, 4, 4] →
    (nearest 2× upsample, 3×3 conv, ReLU) per width → 3×3 conv to the
    channels → tanh or sigmoid. extra swaps in an op onnx-gomlx lacks:
    "leaky" (LeakyRelu) or "convt" (ConvTranspose)."""

    def __init__(self, widths, channels, latent, final="tanh", extra=None):
        super().__init__()
        self.w0 = widths[0]
        self.fc = torch.nn.Linear(latent, widths[0] * 16)
        layers, cin = [], widths[0]
        for w in list(widths[1:]) + [widths[-1]]:
            up = torch.nn.Upsample(scale_factor=2, mode="nearest")
            if extra == "convt" and not layers:
                up = torch.nn.ConvTranspose2d(cin, cin, 2, stride=2)
            act = torch.nn.LeakyReLU(0.2) if extra == "leaky" else torch.nn.ReLU()
            layers += [up, torch.nn.Conv2d(cin, w, 3, padding=1), act]
            cin = w
        layers += [torch.nn.Conv2d(cin, channels, 3, padding=1), torch.nn.Tanh() if final == "tanh" else torch.nn.Sigmoid()]
        self.net = torch.nn.Sequential(*layers)

    def forward(self, z):
        return self.net(self.fc(z).view(-1, self.w0, 4, 4))


def onnx_case(case, out):
    """Exports an OnnxGenerator with torch.onnx.export at batch export_batch
    (symbolic with "dynamic") and writes NAME.z and PyTorch's images NAME.img
    (NHWC, unmapped) of n latents."""
    torch.manual_seed(case["seed"])
    g = OnnxGenerator(case["widths"], case["channels"], case["latent"], case.get("final", "tanh"), case.get("extra")).eval()
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
    dyn = {"z": {0: "batch"}, "img": {0: "batch"}} if case.get("dynamic") else None
    torch.onnx.export(g, torch.randn(case["export_batch"], case["latent"]), os.path.join(out, case["name"] + ".onnx"),
                      input_names=["z"], output_names=["img"], dynamic_axes=dyn, opset_version=13)
    torch.manual_seed(case["seed"] + 1)
    z = torch.randn(case["n"], case["latent"])
    with torch.no_grad():
        img = g(z).permute(0, 2, 3, 1).contiguous()
    z.numpy().astype("<f4").tofile(os.path.join(out, case["name"] + ".z"))
    img.numpy().astype("<f4").tofile(os.path.join(out, case["name"] + ".img"))


def rescale_stylegan2(g, lo, hi):
    """Moves a StyleGAN2Generator's output from [-1, 1] to [lo, hi] through
    its weights alone (the state dict keeps rosinality's layout): the image
    is the sum of the to-RGB outputs, each linear in its weight and bias, so
    scaling them all by (hi−lo)/2 scales the image, and the last to-RGB's
    bias, added at full resolution, takes the offset (hi+lo)/2."""
    s, off = (hi - lo) / 2, (hi + lo) / 2
    rgbs = [g.to_rgb1] + list(g.to_rgbs)
    for m in rgbs:
        m.conv.weight.mul_(s)
        m.bias.mul_(s)
    rgbs[-1].bias.add_(off)


def build(case):
    torch.manual_seed(case["seed"])
    if case["arch"] == "dcgan":
        g = lm.LatenteditDCGAN(case["size"], case["channels"], case["base"], case["latent"])
    elif case["arch"] == "style":
        g = lm.LatenteditStyle(case["size"], case["channels"], case["base"], case["latent"],
                               case["map_depth"], case.get("noise", False), case.get("psi") or 1.0)
    elif case["arch"] == "stylegan2":
        widths = case["widths"]
        g = lm.StyleGAN2Generator(4 << (len(widths) - 1), case["latent"], case["map_depth"],
                                  channels={4 << i: w for i, w in enumerate(widths)})
    else:
        g = lm.SNResNetGenerator(case["widths"], case["channels"], case["latent"])
    with torch.no_grad():
        for m in g.modules():
            # Non-trivial batch-norm parameters and statistics: an importer
            # that ignored any of them would be caught.
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn_like(m.weight))
                m.bias.copy_(0.2 * torch.randn_like(m.bias))
                m.running_mean.copy_(0.3 * torch.randn_like(m.running_mean))
                m.running_var.copy_(0.5 + torch.rand_like(m.running_var))
                m.num_batches_tracked.fill_(1234)
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
            # The style generator's state that starts at zero: a non-zero
            # w_avg (truncation's centre), noise strengths and conv biases.
            if isinstance(m, lm.LatenteditStyle):
                m.w_avg.copy_(0.5 * torch.randn_like(m.w_avg))
            # StyleGAN2: seeded biases and noise strengths; small to-RGB
            # weights keep most pixels inside the clamp to [-1, 1].
            if isinstance(m, (lm.SG2EqualLinear, lm.SG2FusedLeakyReLU, lm.SG2ToRGB)):
                m.bias.add_(0.1 * torch.randn_like(m.bias))
            if isinstance(m, lm.SG2NoiseInjection):
                m.weight.fill_(0.3 * float(torch.randn([])))
            if isinstance(m, lm.SG2ToRGB):
                m.conv.weight.mul_(0.3)
            if isinstance(m, lm.StyleBlock):
                m.conv.bias.copy_(0.1 * torch.randn_like(m.conv.bias))
                if m.noise_strength is not None:
                    m.noise_strength.fill_(0.3 * float(torch.randn([])))
        if case.get("range"):
            rescale_stylegan2(g, *case["range"])
    return g.eval()


def stylegan2_images(g, z, case, out):
    """Images of z with the fixed noise (clamped to [-1, 1], as latentedit
    returns them; raw with "range", for the test to map); with "psi", truncated towards the mean w of the latents in
    OUT/NAME.zmean (latentedit's import averages the same ones); with
    "wplus", also images of a seeded W+ [n, n_latent, L] (NAME.wplus, .wimg)."""
    psi, mean = case.get("psi") or 1.0, None
    if psi < 1:
        import numpy as np
        zm = torch.from_numpy(np.fromfile(os.path.join(out, case["name"] + ".zmean"), dtype="<f4").reshape(-1, case["latent"]).copy())
        mean = g.style(zm.double().float()).mean(0, keepdim=True)
    if case.get("wplus"):
        wp = torch.randn(case["n"], g.n_latent, case["latent"])
        img = g([wp], input_is_latent=True, randomize_noise=False)[0].clamp(-1, 1)
        wp.numpy().astype("<f4").tofile(os.path.join(out, case["name"] + ".wplus"))
        img.permute(0, 2, 3, 1).contiguous().numpy().astype("<f4").tofile(os.path.join(out, case["name"] + ".wimg"))
    img = g([z], truncation=psi, truncation_latent=mean, randomize_noise=False)[0]
    return img if case.get("range") else img.clamp(-1, 1)


def export(model_dir, z_file, n, out_img, out_pt=None):
    arch = json.load(open(os.path.join(model_dir, "model.json")))["config"].get("arch", "dcgan")
    g = lm.load_latentedit_style(model_dir) if arch == "style" else lm.load_latentedit_dcgan(model_dir)
    if out_pt:
        torch.save(g.state_dict(), out_pt)
    import numpy as np
    z = torch.from_numpy(np.fromfile(z_file, dtype="<f4").reshape(int(n), -1).copy())
    with torch.no_grad():
        img = g(z).permute(0, 2, 3, 1).contiguous()
    img.numpy().astype("<f4").tofile(out_img)


def main():
    if sys.argv[1] == "export":
        export(*sys.argv[2:])
        return
    out, cases = sys.argv[1], json.loads(sys.argv[2])
    for case in cases:
        if case["arch"] == "onnx":
            onnx_case(case, out)
            continue
        g = build(case)
        sd = g.state_dict()
        torch.save(sd, os.path.join(out, case["name"] + ".pt"))
        lm.save_safetensors(sd, os.path.join(out, case["name"] + ".safetensors"))
        if case["arch"] == "stylegan2":  # as rosinality's train.py checkpoints hold it
            torch.save({"g": sd, "g_ema": sd}, os.path.join(out, case["name"] + ".ckpt.pt"))
        torch.manual_seed(case["seed"] + 1)
        z = torch.randn(case["n"], case["latent"])
        with torch.no_grad():
            if case["arch"] == "stylegan2":
                img = stylegan2_images(g, z, case, out)
            else:
                img = g(z)
            img = img.permute(0, 2, 3, 1).contiguous()
        z.numpy().astype("<f4").tofile(os.path.join(out, case["name"] + ".z"))
        img.numpy().astype("<f4").tofile(os.path.join(out, case["name"] + ".img"))
        print(case["name"], "image std", float(img.std()), "saturated", float((img.abs() > 0.99).float().mean()))


if __name__ == "__main__":
    main()
