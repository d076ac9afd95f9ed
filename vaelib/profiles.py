"""Run profiles: the sizes (epochs, N, subsets) each notebook uses under "smoke" and "full".

A profile only changes sizes, never code paths. Notebook parameters default to None,
meaning "take the value from this table"; ``resolve`` merges the two.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

from .errors import InputError

__all__ = ["PROFILE_NAMES", "PROFILES", "default_profile", "check_profile", "resolve"]

PROFILE_NAMES = ("smoke", "full")

_VAE_FULL = dict(epochs=20, batch_size=128, lr=1e-3, latent_dim=2, n_train=None,
                 manifold_n=20, n_samples=64)

_LATENT_FULL = dict(latent_dims=[2, 4, 8, 16], epochs=30, batch_size=128, lr=1e-3, n_train=None,
                    n_test=None, snapshot_n=2000, eval_n=1000, n_traverse=4, traversal_steps=40, gif_fps=4)
_FASHION_FULL = dict(epochs=25, batch_size=128, lr=1e-3, latent_dim=16, n_train=None, n_test=None,
                     eval_n=5000, n_recon=16, n_samples=64, betas=[0.1, 0.5, 1.0], beta_classes=[0, 1, 7],
                     beta_latent_dim=2, beta_epochs=20, beta_n_train=None, beta_n_test=None,
                     snapshot_every=25, snapshot_n=600, n_quality=1000, gif_fps=10)

# notebook stem -> profile -> sizes. Both profiles of a stem have the same keys.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "02_latent_sizes": {  # seeds 001/002: conv VAE on MNIST per latent size; GIFs from run snapshots
        "smoke": {**_LATENT_FULL, "latent_dims": [2, 4], "epochs": 2, "n_train": 256, "n_test": 200,
                  "snapshot_n": 100, "eval_n": 64, "n_traverse": 2, "traversal_steps": 6},
        "full": _LATENT_FULL,
    },
    "03_beta_sweep": {  # seed 003: Fashion-MNIST conv VAE (z=16) and the β sweep on classes 0, 1, 7 (z=2)
        "smoke": {**_FASHION_FULL, "epochs": 1, "n_train": 256, "n_test": 300, "eval_n": 100, "n_recon": 8,
                  "n_samples": 16, "betas": [0.1, 1.0], "beta_epochs": 2, "beta_n_train": 256,
                  "beta_n_test": 240, "snapshot_every": 2, "snapshot_n": 60, "n_quality": 64},
        "full": _FASHION_FULL,
    },
    "04_frozen_mu": {  # seed 003 §9 on the 03 Fashion model; sigmas: σ of z = 0 + σ·ε
        "smoke": dict(sigmas=[0.1, 0.5, 1.0], n_samples=64, n_draws=3, n_recon=8, n_test=256),
        "full": dict(sigmas=[0.1, 0.5, 1.0], n_samples=64, n_draws=20, n_recon=16, n_test=None),
    },
    "00_data": {
        "smoke": dict(n_grid_per_class=4),
        "full": dict(n_grid_per_class=10),
    },
    "01_vae": {
        "smoke": {**_VAE_FULL, "epochs": 2, "n_train": 1024, "manifold_n": 6, "n_samples": 16},
        "full": _VAE_FULL,
    },
    "06_gmm": {  # seed 000: digits 1, 4, 8; n_draws = random draws per k in the label-efficiency study
        "smoke": dict(epochs=3, batch_size=128, lr=1e-3, latent_dim=2, latent_dim_large=8, n_train=450,
                      val_fraction=0.2, manifold_n=6, n_draws=2, n_grid=4),
        "full": dict(epochs=50, batch_size=128, lr=1e-3, latent_dim=2, latent_dim_large=8, n_train=None,
                     val_fraction=0.15, manifold_n=20, n_draws=10, n_grid=8),
    },
    "05_fid": {  # issue 5: n = images per model × sampler and per real set (Inception ≈ 0.1 s/image on CPU);
        # max_models/classifier_* None = every registered model / the data set's preset recipe
        "smoke": dict(n=16, max_models=1, classifier_epochs=2, classifier_n_train=1000, kid_subsets=10, n_grid=8),
        "full": dict(n=256, max_models=None, classifier_epochs=None, classifier_n_train=None, kid_subsets=100,
                     n_grid=16),
    },
}


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known profile name, else raise InputError."""
    if profile not in PROFILE_NAMES:
        raise InputError(f"profile {profile!r}: unknown; expected one of {', '.join(PROFILE_NAMES)}")
    return profile


def default_profile() -> str:
    """The profile named by $VAELIB_PROFILE, or "full"."""
    value = os.environ.get("VAELIB_PROFILE") or "full"
    if value not in PROFILE_NAMES:
        raise InputError(f"$VAELIB_PROFILE={value!r}: unknown profile; "
                         f"expected one of {', '.join(PROFILE_NAMES)}")
    return value


def resolve(stem: str, profile: str, **explicit: Any) -> SimpleNamespace:
    """Sizes for notebook ``stem`` under ``profile``, overridden by explicit non-None values."""
    check_profile(profile)
    if stem not in PROFILES:
        raise InputError(f"notebook {stem!r}: no profile table; expected one of {', '.join(sorted(PROFILES))}")
    sizes = dict(PROFILES[stem][profile])
    for key, value in explicit.items():
        if value is not None or key not in sizes:
            sizes[key] = value
    return SimpleNamespace(**{"profile": profile, **sizes})
