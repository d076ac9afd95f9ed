"""VAE models for 28×28 images: an MLP VAE (784-400-z by default), a conv VAE (seed 003), its tanh/MSE variant
(seed 002), a VAE of U-Net blocks with attention (seed 001), and a PatchGAN discriminator.

Encoders return (μ, log σ²); decoders return logits (N, 1, 28, 28), or pre-tanh values for ``output == "tanh"``
models: ``to_pixels`` maps either to pixels in [0, 1], which ``reconstruct``, ``generate`` and ``sample`` return.
Any latent size. A conditional model (``num_classes`` > 0) takes class labels ``y`` in every call.
"""
from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .errors import InputError


def _cond(y, device: torch.device | None = None) -> tuple:
    """The extra argument of a conditional model's encode/decode: () without labels, else (y,) on ``device``."""
    return () if y is None else (torch.as_tensor(y, device=device),)


class VAE(nn.Module):
    """Shared VAE behaviour: reparameterised forward pass, reconstruction from μ, prior samples."""

    arch = "base"
    output = "logits"  # how decoder outputs map to pixels: "logits" (sigmoid) or "tanh" ((tanh + 1) / 2)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, y: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoder output, μ, log σ²) with z = μ + σ·ε, ε ~ N(0, I); ``y``: class labels of a conditional model."""
        mu, logvar = self.encode(x, *_cond(y))
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return self.decode(mu + torch.exp(0.5 * logvar) * eps, *_cond(y)), mu, logvar

    def to_pixels(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder outputs as pixels in [0, 1]: sigmoid of logits, or (tanh + 1) / 2."""
        return torch.sigmoid(out) if self.output == "logits" else (torch.tanh(out) + 1) / 2

    def last_layer(self) -> torch.Tensor:
        """The decoder's last weight (where an adaptive adversarial weight compares gradients)."""
        return self.dec[-1].weight

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixels in [0, 1] decoded from the posterior mean μ (no sampling)."""
        c = _cond(y, x.device)
        return self.to_pixels(self.decode(self.encode(x, *c)[0], *c))

    @torch.no_grad()
    def latents(self, x: torch.Tensor, batch_size: int = 1024, y: torch.Tensor | None = None) -> torch.Tensor:
        """Posterior means μ of ``x`` (float N×1×28×28), batched, returned on the CPU."""
        was_training = self.training
        self.eval()
        out = torch.cat([self.encode(x[i:i + batch_size].to(self.device),
                                     *_cond(None if y is None else y[i:i + batch_size], self.device))[0].cpu()
                         for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Pixels in [0, 1] for latent codes ``z``."""
        return self.to_pixels(self.decode(z.to(self.device), *_cond(y, self.device)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, scale: float = 1.0,
               y: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` images decoded from z ~ N(0, scale² I)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=generator.device if generator else "cpu")
        return self.generate(scale * z, y)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def config(self) -> dict:
        """What ``build_model`` needs to rebuild this model."""
        return {"arch": self.arch, "latent_dim": self.latent_dim}


class MLPVAE(VAE):
    """MLP VAE: 784 → hidden layers (ReLU) → (μ, log σ²); z → the hidden layers reversed (ReLU) → 784 logits.
    ``hidden`` is one width (seed 004's 784-400-z) or a list of widths, first layer first."""

    arch = "mlp"

    def __init__(self, latent_dim: int = 2, hidden: int | Sequence[int] = 400):
        super().__init__()
        widths = [int(hidden)] if isinstance(hidden, int) else [int(h) for h in hidden]
        if not widths or min(widths) < 1:
            raise InputError(f"hidden {hidden!r}: expected one or more positive layer widths")
        self.latent_dim, self.hidden = latent_dim, hidden if isinstance(hidden, int) else widths
        self.enc = nn.Sequential(nn.Flatten(), *_layers([784, *widths]))
        self.enc_mu = nn.Linear(widths[-1], latent_dim)
        self.enc_logvar = nn.Linear(widths[-1], latent_dim)
        self.dec = nn.Sequential(*_layers([latent_dim, *widths[::-1]]), nn.Linear(widths[0], 784))

    def encode(self, x):
        h = self.enc(x)
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z):
        return self.dec(z).view(-1, 1, 28, 28)

    def config(self) -> dict:
        return {**super().config(), "hidden": self.hidden}


def _layers(widths: list[int]) -> list[nn.Module]:
    """Linear + ReLU between each pair of consecutive widths."""
    return [m for a, b in zip(widths, widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())]


class ConvVAE(VAE):
    """Seed 003's conv VAE: two stride-2 3×3 convs with batch norm (32, 64 channels) → (μ, log σ²);
    Linear → 64×7×7 → two stride-2 4×4 transposed convs (BN + ReLU between) → logits."""

    arch = "conv"

    def __init__(self, latent_dim: int = 16):
        super().__init__()
        self.latent_dim = latent_dim
        self.enc = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.Flatten(),
        )
        self.enc_mu = nn.Linear(64 * 7 * 7, latent_dim)
        self.enc_logvar = nn.Linear(64 * 7 * 7, latent_dim)
        self.dec_fc = nn.Linear(latent_dim, 64 * 7 * 7)
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),
        )

    def encode(self, x):
        h = self.enc(x)
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z):
        return self.dec(self.dec_fc(z).view(-1, 64, 7, 7))


class TanhConvVAE(ConvVAE):
    """Seed 002's conv VAE: the conv VAE's layers, its decoder ending in tanh, so that images live in [−1, 1]:
    trained with likelihood "mse", Σ (tanh(out) − (2x − 1))² plus β·KL (seed 002's α is β); tools return pixels
    (tanh(out) + 1) / 2."""

    arch, output = "conv-tanh", "tanh"


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, c), c)


class ResBlock(nn.Module):
    """(GroupNorm → SiLU → 3×3 conv) twice, added to the input (through a 1×1 conv when the width changes)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(_norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
                                  _norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, h):
        return self.skip(h) + self.body(h)


class Attention(nn.Module):
    """Multi-head attention (residual, GroupNorm first) of a C×H×W map's H·W tokens to each other
    (self-attention) or, given ``context`` tokens (N, T, C), to those (cross-attention)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.attn = _norm(c), nn.MultiheadAttention(c, math.gcd(4, c), batch_first=True)

    def forward(self, h, context=None):
        q = self.norm(h).flatten(2).transpose(1, 2)
        kv = q if context is None else context
        return h + self.attn(q, kv, kv, need_weights=False)[0].transpose(1, 2).reshape(h.shape)


class DownBlock(nn.Sequential):
    """Stride-2 3×3 conv (halves H and W) → ResBlock."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), ResBlock(c_out, c_out))


class UpBlock(nn.Sequential):
    """ResBlock → stride-2 4×4 transposed conv (doubles H and W)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(ResBlock(c_in, c_out), nn.ConvTranspose2d(c_out, c_out, 4, stride=2, padding=1))


class MidBlock(nn.Module):
    """Self-attention (→ cross-attention to class tokens, when conditional) → ResBlock."""

    def __init__(self, c: int, cross: bool = False):
        super().__init__()
        self.attn, self.cross, self.res = Attention(c), Attention(c) if cross else None, ResBlock(c, c)

    def forward(self, h, context=None):
        h = self.attn(h)
        return self.res(h if self.cross is None else self.cross(h, context))


class UNetVAE(VAE):
    """Seed 001's VAE of U-Net blocks. Encoder: 3×3 conv → DownBlocks (28 → 14 → 7) → MidBlock (self-attention
    over the 7×7 tokens) → GroupNorm, SiLU, flatten → (μ, log σ²); decoder: Linear → C×7×7 → MidBlock → UpBlocks
    (7 → 14 → 28) → GroupNorm, SiLU, 3×3 conv → logits. ``channels``: the widths at 14×14 (also 28×28) and 7×7.

    Its skip connections are the residual ones inside the blocks: a VAE cannot pass encoder features to the
    decoder across the bottleneck, since they would bypass z (and the decoder could not generate from z alone).
    ``num_classes`` > 0 makes it conditional: both mid blocks cross-attend to 4 learned tokens of the class
    label ``y``, which every call then needs."""

    arch = "unet"

    def __init__(self, latent_dim: int = 2, channels: Sequence[int] = (32, 64), num_classes: int = 0):
        super().__init__()
        widths = [int(c) for c in channels]
        if len(widths) != 2 or min(widths) < 1 or int(num_classes) < 0:
            raise InputError(f"channels {channels!r}, num_classes {num_classes!r}: expected two positive widths "
                             "(14×14 and 7×7 levels) and num_classes >= 0")
        (c1, c2), cross = widths, num_classes > 0
        self.latent_dim, self.channels, self.num_classes = latent_dim, widths, int(num_classes)
        self.embed = nn.Embedding(num_classes, 4 * c2) if cross else None
        self.enc = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), DownBlock(c1, c1), DownBlock(c1, c2))
        self.enc_mid, self.enc_out = MidBlock(c2, cross), nn.Sequential(_norm(c2), nn.SiLU(), nn.Flatten())
        self.enc_mu, self.enc_logvar = nn.Linear(c2 * 49, latent_dim), nn.Linear(c2 * 49, latent_dim)
        self.dec_fc, self.dec_mid = nn.Linear(latent_dim, c2 * 49), MidBlock(c2, cross)
        self.dec = nn.Sequential(UpBlock(c2, c1), UpBlock(c1, c1), _norm(c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1))

    def _context(self, y):
        if (y is None) != (self.embed is None):
            expected = f"class labels in [0, {self.num_classes})" if y is None else "none (an unconditional model)"
            raise InputError(f"y: {'missing' if y is None else 'given'}; expected {expected}")
        return None if y is None else self.embed(y).view(len(y), 4, -1)

    def encode(self, x, y=None):
        h = self.enc_out(self.enc_mid(self.enc(x), self._context(y)))
        return self.enc_mu(h), self.enc_logvar(h)

    def decode(self, z, y=None):
        return self.dec(self.dec_mid(self.dec_fc(z).view(len(z), -1, 7, 7), self._context(y)))

    def config(self) -> dict:
        return {**super().config(), "channels": self.channels, "num_classes": self.num_classes}


class PatchDiscriminator(nn.Module):
    """PatchGAN for 28×28 images (Isola et al. 2017): 4×4 stride-2 convs with LeakyReLU(0.2), no normalisation
    (28 → 14 → 7), then a 3×3 conv: a 7×7 map of logits, each judging an 18×18 patch. Input: pixels in [0, 1]."""

    def __init__(self, channels: Sequence[int] = (32, 64)):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c_in = c
        self.net = nn.Sequential(*layers, nn.Conv2d(c_in, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(2 * x - 1)


ARCHS = {"mlp": MLPVAE, "conv": ConvVAE, "conv-tanh": TanhConvVAE, "unet": UNetVAE}


def build_model(arch: str, latent_dim: int, **kwargs) -> VAE:
    """A fresh model of architecture ``arch`` (a key of ``ARCHS``)."""
    if arch not in ARCHS:
        raise InputError(f"architecture {arch!r}: unknown; expected one of {sorted(ARCHS)}")
    if int(latent_dim) < 1:
        raise InputError(f"latent_dim {latent_dim}: expected a positive integer")
    return ARCHS[arch](int(latent_dim), **kwargs)


MAX_LATENT, MAX_WIDTH, MAX_LAYERS = 4096, 65536, 64  # generous, finite limits on a model file's config


def check_saved(blob: Any, where: str) -> dict:
    """The ``model_config`` of ``blob`` (what ``save_model`` writes: model_config, state_dict, extras) once the
    config, the weights (names, shapes, finite values) and any ``history`` check out; InputError naming
    ``where`` otherwise. The config is checked before anything is built, and then built on the meta device."""
    if not isinstance(blob, dict) or "model_config" not in blob or "state_dict" not in blob:
        raise InputError(f"{where}: not a vaelib model; expected keys 'model_config' and 'state_dict'")
    cfg, state = blob["model_config"], blob["state_dict"]
    expected = (f"expected {{'arch': {' or '.join(map(repr, ARCHS))}, 'latent_dim': 1 to {MAX_LATENT}, for mlp "
                f"'hidden' and for unet 'channels': 1 to {MAX_LAYERS} widths from 1 to {MAX_WIDTH}, for unet "
                f"'num_classes' 0 to {MAX_WIDTH}}}")
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: model_config is a {type(cfg).__name__}; {expected}")
    options = {"mlp": {"hidden": 400}, "unet": {"channels": [32, 64], "num_classes": 0}}.get(cfg.get("arch"), {})
    z = cfg.get("latent_dim")
    bad = [] if cfg.get("arch") in ARCHS else [f"arch {cfg.get('arch')!r}"]
    bad += [f"unknown key {k!r}" for k in cfg if k not in ("arch", "latent_dim", *options)]
    bad += [] if type(z) is int and 1 <= z <= MAX_LATENT else [f"latent_dim {z!r}"]
    for name in ("hidden", "channels"):
        value = cfg.get(name, options.get(name))
        widths = [value] if type(value) is int else value
        if name in options and not (isinstance(widths, (list, tuple)) and 1 <= len(widths) <= MAX_LAYERS
                                    and all(type(w) is int and 1 <= w <= MAX_WIDTH for w in widths)):
            bad.append(f"{name} {value!r}")
    n = cfg.get("num_classes", 0)
    bad += [] if type(n) is int and 0 <= n <= MAX_WIDTH else [f"num_classes {n!r}"]
    if bad:
        raise InputError(f"{where}: model_config has {', '.join(bad)}; {expected}")
    try:
        with torch.device("meta"):  # shapes only: no memory
            ref = build_model(**cfg).state_dict()
    except InputError as e:
        raise InputError(f"{where}: model_config {cfg}: {e}") from None
    names = set(state) if isinstance(state, dict) else set()
    if names != set(ref) or not all(isinstance(t, torch.Tensor) and t.layout == torch.strided for t in state.values()):
        raise InputError(f"{where}: weights do not match {cfg} (missing {sorted(set(ref) - names)[:3]}, "
                         f"unexpected {sorted(map(str, names - set(ref)))[:3]}); expected the state_dict of that model")
    for name, t in state.items():
        if t.shape != ref[name].shape or t.is_floating_point() != ref[name].is_floating_point():
            raise InputError(f"{where}: weights do not match {cfg} ({name} is {t.dtype} {tuple(t.shape)}, expected "
                             f"{ref[name].dtype} {tuple(ref[name].shape)})")
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise InputError(f"{where}: weight {name} holds NaN or infinite values; expected finite weights")
    history = blob.get("history", [])
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise InputError(f"{where}: history is a {type(history).__name__}; expected a list of per-epoch dicts")
    return cfg


def save_model(model: VAE, path: str | Path, extra: dict | None = None) -> None:
    """Weights plus what rebuilds the model, loadable with ``torch.load(weights_only=True)``; atomic.
    What ``load_model`` would refuse (non-finite weights, say) is refused here (InputError)."""
    path = Path(path)
    blob = {"model_config": model.config(), "state_dict": model.state_dict(), **(extra or {})}
    check_saved(blob, str(path))
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        torch.save(blob, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def read_torch_file(path: str | Path, expected: str, kind: str = "") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU (never executes code from the file); InputError naming
    the file and ``expected`` when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; {expected}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{path}: unreadable {kind + ' ' if kind else ''}({type(e).__name__}); {expected}") from None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[VAE, dict]:
    """Rebuild a model saved by ``save_model`` (never executes code from the file; checked by ``check_saved``);
    (model, file dict)."""
    blob = read_torch_file(path, "expected a model file written by vaelib", kind="model file")
    model = build_model(**check_saved(blob, str(path)))
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), blob
