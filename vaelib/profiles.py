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

# notebook stem -> profile -> sizes. Both profiles of a stem have the same keys.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
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
