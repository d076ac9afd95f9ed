"""ELBO terms per image, in nats (summed over pixels): reconstruction, analytic KL, β-weighted total."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import InputError

LIKELIHOODS = ("bernoulli", "gaussian")


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per row: −½ Σ (1 + log σ² − μ² − σ²)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def reconstruction(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli") -> torch.Tensor:
    """−log p(x | z) per image.

    ``bernoulli``: binary cross-entropy with logits, summed over pixels (targets in [0, 1]).
    ``gaussian``: sum of squared errors of sigmoid(logits), i.e. a Gaussian with variance ½ up to a constant.
    """
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif likelihood == "gaussian":
        per_pixel = (torch.sigmoid(logits) - x).pow(2)
    else:
        raise InputError(f"likelihood {likelihood!r}: unknown; expected one of {LIKELIHOODS}")
    return per_pixel.flatten(1).sum(dim=1)


def elbo_terms(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
               beta: float = 1.0, likelihood: str = "bernoulli") -> dict[str, torch.Tensor]:
    """Per-image ``recon``, ``kl`` and ``total = recon + β·kl`` (the negative β-ELBO)."""
    recon = reconstruction(logits, x, likelihood)
    kl = kl_standard_normal(mu, logvar)
    return {"total": recon + beta * kl, "recon": recon, "kl": kl}
