"""VAE models for 28×28 images: an MLP VAE (784-400-z by default) and a conv VAE (seed 003).

Encoders return (μ, log σ²); decoders return logits (N, 1, 28, 28): apply ``torch.sigmoid`` for
pixel probabilities. Any latent size.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from .errors import InputError


class VAE(nn.Module):
    """Shared VAE behaviour: reparameterised forward pass, reconstruction from μ, prior samples."""

    arch = "base"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, μ, log σ²) with z = μ + σ·ε, ε ~ N(0, I)."""
        mu, logvar = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return self.decode(mu + torch.exp(0.5 * logvar) * eps), mu, logvar

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities decoded from the posterior mean μ (no sampling)."""
        return torch.sigmoid(self.decode(self.encode(x)[0]))

    @torch.no_grad()
    def latents(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Posterior means μ of ``x`` (float N×1×28×28), batched, returned on the CPU."""
        was_training = self.training
        self.eval()
        out = torch.cat([self.encode(x[i:i + batch_size].to(self.device))[0].cpu()
                         for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities for latent codes ``z``."""
        return torch.sigmoid(self.decode(z.to(self.device)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, scale: float = 1.0) -> torch.Tensor:
        """``n`` images decoded from z ~ N(0, scale² I)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=generator.device if generator else "cpu")
        return self.generate(scale * z)

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


ARCHS = {"mlp": MLPVAE, "conv": ConvVAE}


def build_model(arch: str, latent_dim: int, **kwargs) -> VAE:
    """A fresh model of architecture ``arch`` ("mlp" or "conv")."""
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
    expected = (f"expected {{'arch': {' or '.join(map(repr, ARCHS))}, 'latent_dim': 1 to {MAX_LATENT}, and for mlp "
                f"'hidden': 1 to {MAX_LAYERS} widths from 1 to {MAX_WIDTH}}}")
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: model_config is a {type(cfg).__name__}; {expected}")
    allowed = ("arch", "latent_dim", "hidden") if cfg.get("arch") == "mlp" else ("arch", "latent_dim")
    z, hidden = cfg.get("latent_dim"), cfg.get("hidden", 400)
    widths = [hidden] if type(hidden) is int else hidden
    bad = [] if cfg.get("arch") in ARCHS else [f"arch {cfg.get('arch')!r}"]
    bad += [f"unknown key {k!r}" for k in cfg if k not in allowed]
    bad += [] if type(z) is int and 1 <= z <= MAX_LATENT else [f"latent_dim {z!r}"]
    if not (isinstance(widths, (list, tuple)) and 1 <= len(widths) <= MAX_LAYERS
            and all(type(w) is int and 1 <= w <= MAX_WIDTH for w in widths)):
        bad.append(f"hidden {hidden!r}")
    if bad:
        raise InputError(f"{where}: model_config has {', '.join(bad)}; {expected}")
    with torch.device("meta"):  # shapes only: no memory
        ref = build_model(**cfg).state_dict()
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


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[VAE, dict]:
    """Rebuild a model saved by ``save_model`` (never executes code from the file; checked by ``check_saved``);
    (model, file dict)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected a model file written by vaelib")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{path}: unreadable model file ({type(e).__name__}); expected a vaelib .pth") from None
    model = build_model(**check_saved(blob, str(path)))
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), blob
