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


def latent_size_runs(profile: str, seed: int = 0, **explicit) -> dict[str, RunConfig]:
    """Chapter 02 (seeds 001, 002): conv VAE on MNIST, one run per latent size, with per-epoch
    snapshots of test latents and reconstructions and per-epoch train/test metrics."""
    p = resolve("02_latent_sizes", profile, **explicit)
    return {f"MNIST conv VAE (z={z})": RunConfig(
        name=f"02_latent-conv-z{z}", dataset="mnist", arch="conv", latent_dim=int(z), epochs=p.epochs,
        batch_size=p.batch_size, lr=p.lr, seed=seed, n_train=p.n_train, n_test=p.n_test,
        snapshot_n=p.snapshot_n, eval_n=p.eval_n) for z in p.latent_dims}


def fashion_runs(profile: str, seed: int = 0, **explicit) -> dict[str, RunConfig]:
    """Chapters 03 and 04 (seed 003): conv VAE, β = 1, on all of Fashion-MNIST (sizes of 03)."""
    p = resolve("03_beta_sweep", profile, **explicit)
    return {f"Fashion conv VAE (z={p.latent_dim})": RunConfig(
        name=f"03_fashion-conv-z{p.latent_dim}", dataset="fashion-mnist", arch="conv",
        latent_dim=p.latent_dim, epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, seed=seed,
        n_train=p.n_train, n_test=p.n_test, eval_n=p.eval_n)}


def beta_runs(profile: str, seed: int = 0, **explicit) -> dict[str, RunConfig]:
    """Chapter 03 (seed 003): one conv VAE per β in ``betas`` on a few Fashion-MNIST classes, 2-D
    latent, with a snapshot every ``snapshot_every`` optimiser steps (the training GIFs)."""
    p = resolve("03_beta_sweep", profile, **explicit)
    classes = "/".join(map(str, p.beta_classes))
    return {f"Fashion {classes} (z={p.beta_latent_dim}, β={float(b):g})": RunConfig(
        name=f"03_beta-conv-z{p.beta_latent_dim}-b{float(b):g}", dataset="fashion-mnist",
        classes=tuple(p.beta_classes), arch="conv", latent_dim=p.beta_latent_dim, epochs=p.beta_epochs,
        batch_size=p.batch_size, lr=p.lr, beta=float(b), seed=seed, n_train=p.beta_n_train,
        n_test=p.beta_n_test, snapshot_every=p.snapshot_every, snapshot_n=p.snapshot_n) for b in p.betas}


def beta_sweep_runs(profile: str, seed: int = 0, **explicit) -> dict[str, RunConfig]:
    """Every model of chapter 03: the latent-16 Fashion model and the β sweep."""
    return {**fashion_runs(profile, seed, **explicit), **beta_runs(profile, seed, **explicit)}


CHAPTERS.update({"02_latent_sizes": latent_size_runs, "03_beta_sweep": beta_sweep_runs,
                 "04_frozen_mu": fashion_runs})


def all_runs(profile: str, seed: int = 0) -> dict[str, RunConfig]:
    """Every model of the report under ``profile`` (default sizes), labelled for tables."""
    out: dict[str, RunConfig] = {}
    for fn in CHAPTERS.values():
        out.update(fn(profile, seed=seed))
    return out
