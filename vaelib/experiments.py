"""The report's trained models: one function per chapter maps a profile to its run configs.

Notebooks call these so that their models are the ones the run cache holds; the FID chapter
(and anyone else) can ask ``all_runs(profile)`` for every model of the report.
"""
from __future__ import annotations

from .profiles import resolve
from .runs import RunConfig


def vae_runs(profile: str, seed: int = 0, **explicit) -> dict[str, RunConfig]:
    """Chapter 01 (seed 004): MLP VAE 784-400-2 on MNIST."""
    p = resolve("01_vae", profile, **explicit)
    return {"MNIST MLP VAE (z=2)": RunConfig(
        name=f"01_vae-mlp-z{p.latent_dim}", dataset="mnist", arch="mlp", latent_dim=p.latent_dim,
        epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, seed=seed, n_train=p.n_train)}


def gmm_runs(profile: str, seed: int = 0, **explicit) -> dict[str, RunConfig]:
    """Chapter 06 (seed 000): MLP VAE on MNIST digits 1, 4, 8 (labels unused in training)."""
    p = resolve("06_gmm", profile, **explicit)
    return {f"MNIST 1/4/8 MLP VAE (z={p.latent_dim})": RunConfig(
        name=f"06_gmm-mlp-z{p.latent_dim}", dataset="mnist", classes=(1, 4, 8), arch="mlp",
        latent_dim=p.latent_dim, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, seed=seed,
        val_fraction=p.val_fraction, n_train=p.n_train)}


CHAPTERS = {"01_vae": vae_runs, "06_gmm": gmm_runs}


def all_runs(profile: str, seed: int = 0) -> dict[str, RunConfig]:
    """Every model of the report under ``profile`` (default sizes), labelled for tables."""
    out: dict[str, RunConfig] = {}
    for fn in CHAPTERS.values():
        out.update(fn(profile, seed=seed))
    return out
