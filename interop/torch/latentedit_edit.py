"""Apply a latentedit editor in PyTorch: the reference of `latentedit export`.

    editor = load_editor("smile.safetensors")   # or .pt, or .npy (+ its .json sidecar)
    z2 = editor.edit(z, k, t)                   # z [B, d]; k, t: numbers or [B] tensors

Each class follows the Go editor it mirrors line by line (edit/linear.go,
edit/warped.go, edit/curvilinear.go, edit/potential.go); `latentedit`'s tests
run these on 100 latents and compare with its own edits
(interop/export_test.go). Everything is computed in z's dtype: float64 for
the closest agreement (latentedit walks warped and potential edits in
float64 and the others in float32), float32 for speed. Needs torch only
(numpy for .npy files).
"""
import json
import math
import struct

import torch

FORMAT = "latentedit-editor/1"


def read_exported(path):
    """The exported tensors (name -> tensor) and metadata (name -> str)."""
    if path.endswith(".safetensors"):
        with open(path, "rb") as f:
            raw = f.read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        meta = header.pop("__metadata__", {})
        data = raw[8 + n:]
        tensors = {}
        for name, e in header.items():
            assert e["dtype"] == "F32", (name, e["dtype"])
            b, end = e["data_offsets"]
            tensors[name] = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e["shape"])
        return tensors, meta
    if path.endswith(".npy"):
        import numpy
        with open(path[:-len(".npy")] + ".json") as f:
            meta = json.load(f)
        return {"directions": torch.from_numpy(numpy.load(path))}, meta
    tensors = torch.load(path, map_location="cpu")  # .pt / .pth: a state dict
    meta = tensors.pop("__metadata__")
    return dict(tensors), meta


def load_editor(path):
    """The editor exported to path, as one of the classes below."""
    tensors, meta = read_exported(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, this reader reads {FORMAT!r}")
    cls = {"warped": Warped, "curvilinear": Curvilinear, "potential": Potential}.get(meta["method"], Linear)
    return cls(tensors, meta)


class Editor:
    def __init__(self, tensors, meta):
        self.tensors = tensors
        self.method = meta["method"]
        self.k = int(meta["k"])
        self.latent_dim = int(meta["latent_dim"])
        self.names = json.loads(meta["names"])
        self.params = json.loads(meta["params"])
        # An editor of w or w+ moves codes c = (w - centre) / scale of the
        # model's w frame (latentedit's generator.Frame), one per style in w+.
        self.space = meta.get("space", "z")
        if self.space != "z":
            self.code_centre = torch.tensor(json.loads(meta["code_centre"]), dtype=torch.float64)
            self.code_scale = float(meta["code_scale"])
            self.code_styles = int(meta["code_styles"])

    def to_code(self, w):
        """w [B, L] (space w) or [B, styles, L] (w+) to the editor's codes [B, latent_dim]."""
        c = (w - self.code_centre.to(w.dtype)) / self.code_scale
        return c.reshape(w.shape[0], -1)

    def from_code(self, c):
        """The editor's codes back to w [B, L] (w) or [B, styles, L] (w+), for the generator's synthesis."""
        if self.space == "w+":
            c = c.reshape(c.shape[0], self.code_styles, -1)
        return self.code_centre.to(c.dtype) + self.code_scale * c

    def w(self, name, like):
        return self.tensors[name].to(like.dtype)

    def steps(self, z, k, t):
        """k as a long tensor [B], t as a tensor [B] in z's dtype."""
        b = z.shape[0]
        k = torch.as_tensor(k, dtype=torch.long).expand(b) if torch.as_tensor(k).dim() == 0 else torch.as_tensor(k, dtype=torch.long)
        t = torch.as_tensor(t, dtype=torch.float64)
        t = t.expand(b) if t.dim() == 0 else t
        return k, t


class Linear(Editor):
    """linear, ganspace, sefa, interfacegan: z + t * directions[k] (unit rows)."""

    def edit(self, z, k, t):
        k, t = self.steps(z, k, t)
        return z + t.to(z.dtype)[:, None] * self.w("directions", z)[k]


class Warped(Editor):
    """The gradient walk of one RBF field per direction (edit/warped.go)."""

    def gradient(self, z, sv, log_gamma, alpha):
        diff = z[:, None, :] - sv                      # [B, M, d]
        sq = (diff * diff).sum(-1)                     # [B, M]
        gamma = log_gamma.exp()
        w = gamma * torch.exp(-gamma * sq) * alpha     # [B, M]
        return -2 * (w[:, :, None] * diff).sum(1)      # [B, d]

    def edit(self, z, k, t):
        k, t = self.steps(z, k, t)
        sv = self.w("support", z)[k]                   # [B, 2N, d]
        lg = self.w("log_gamma", z)[k]                 # [B, 2N]
        m = sv.shape[1]
        alpha = torch.ones(m, dtype=z.dtype)
        alpha[m // 2:] = -1
        # n = ceil(|t| / step) sub-steps of size t / n, in float64 as the Go editor computes them.
        n = torch.ceil(t.abs() / self.params["step"])
        h = torch.where(n > 0, t / n.clamp(min=1), torch.zeros_like(t)).to(z.dtype)
        for j in range(int(n.max().item()) if len(n) else 0):
            eps = h * (n > j).to(z.dtype)
            g = self.gradient(z, sv, lg, alpha)
            norm = torch.sqrt((g * g).sum(-1) + 1e-16)
            z = z + g * (eps / norm)[:, None]
        return z


class Potential(Editor):
    """The Euler walk along the gradient of a tanh potential per direction
    (edit/potential.go): u_k(z, tau) = sum_j v_kj tanh(w_kj . z + p_kj tau + b_kj)."""

    def gradient(self, z, tau, w, p, b, v):
        a = (w * z[:, None, :]).sum(-1) + (p * tau[:, None] + b)   # [B, H]
        s = 1 - torch.tanh(a) ** 2                                 # [B, H]
        return ((v * s)[:, :, None] * w).sum(1)                    # [B, d]

    def edit(self, z, k, t):
        k, t = self.steps(z, k, t)
        w, p, b, v = (self.w(name, z)[k] for name in ("w", "p", "b", "v"))   # [B, H, d], [B, H] …
        # n = ceil(|t| / step) Euler steps of h = t / n, in float64 as the Go editor computes them.
        n = torch.ceil(t.abs() / self.params["step"])
        h = torch.where(n > 0, t / n.clamp(min=1), torch.zeros_like(t)).to(z.dtype)
        for j in range(int(n.max().item()) if len(n) else 0):
            tau = j * h.abs()                                      # the flow clock, the same for t < 0
            z = z + self.gradient(z, tau, w, p, b, v) * (h * (n > j).to(z.dtype))[:, None]
        return z


class Curvilinear(Editor):
    """f^-1(f(z) + t e_k) for the coupling or ODE flow (edit/curvilinear.go)."""

    def dense(self, x, scope):
        return x @ self.w(scope + ".weights", x) + self.w(scope + ".biases", x)

    # Coupling flow.
    def mask(self, l, x):
        return torch.tensor([1.0 if (i + l) % 2 == 0 else 0.0 for i in range(x.shape[1])], dtype=x.dtype)[None]

    def coupling_st(self, x, l):
        mask = self.mask(l, x)
        free = 1 - mask
        p = f"layer{l}."
        h = torch.tanh(self.dense(x * mask, p + "dense0"))
        h = torch.tanh(self.dense(h, p + "dense1"))
        s = torch.tanh(self.dense(h, p + "scale")) * self.params["scale_max"] * free
        t = self.dense(h, p + "shift") * free
        return s, t

    # ODE flow.
    def field(self, z):
        h = torch.tanh(self.dense(z, "ode.dense0"))
        h = torch.tanh(self.dense(h, "ode.dense1"))
        return self.dense(h, "ode.dense2")

    def rk4(self, z, h):
        for _ in range(self.params["ode_steps"]):
            k1 = self.field(z)
            k2 = self.field(z + k1 * (h / 2))
            k3 = self.field(z + k2 * (h / 2))
            k4 = self.field(z + k3 * h)
            z = z + ((k1 + k4) + (k2 + k3) * 2) * (h / 6)
        return z

    def forward(self, z):
        if self.params["flow"] == "ode":
            return self.rk4(z, 1 / self.params["ode_steps"])
        for l in range(self.params["layers"]):
            s, t = self.coupling_st(z, l)
            z = z * torch.exp(s) + t
        return z

    def inverse(self, v):
        if self.params["flow"] == "ode":
            return self.rk4(v, -1 / self.params["ode_steps"])
        for l in reversed(range(self.params["layers"])):
            s, t = self.coupling_st(v, l)
            v = (v - t) * torch.exp(-s)
        return v

    def edit(self, z, k, t):
        k, t = self.steps(z, k, t)
        delta = torch.zeros_like(z)
        delta[torch.arange(z.shape[0]), k] = t.to(z.dtype)
        return self.inverse(self.forward(z) + delta)
