"""Loss terms. ELBO terms per image, in nats (summed over pixels): reconstruction, analytic KL, β-weighted total;
and the terms against blurry outputs: a perceptual distance (LPIPS-style) and adversarial terms (PatchGAN)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import InputError

LIKELIHOODS = ("bernoulli", "gaussian", "mse")
ADVERSARIAL = ("hinge", "least-squares")


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per row: −½ Σ (1 + log σ² − μ² − σ²)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def reconstruction(logits: torch.Tensor, x: torch.Tensor, likelihood: str = "bernoulli") -> torch.Tensor:
    """−log p(x | z) per image.

    ``bernoulli``: binary cross-entropy with logits, summed over pixels (targets in [0, 1]).
    ``gaussian``: sum of squared errors of sigmoid(logits), i.e. a Gaussian with variance ½ up to a constant.
    ``mse``: sum of squared errors on the [−1, 1] scale, (tanh(out) − (2x − 1))², for tanh-output models (seed 002).
    """
    if likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif likelihood == "gaussian":
        per_pixel = (torch.sigmoid(logits) - x).pow(2)
    elif likelihood == "mse":
        per_pixel = (torch.tanh(logits) - (2 * x - 1)).pow(2)
    else:
        raise InputError(f"likelihood {likelihood!r}: unknown; expected one of {LIKELIHOODS}")
    return per_pixel.flatten(1).sum(dim=1)


def elbo_terms(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
               beta: float = 1.0, likelihood: str = "bernoulli") -> dict[str, torch.Tensor]:
    """Per-image ``recon``, ``kl`` and ``total = recon + β·kl`` (the negative β-ELBO)."""
    recon = reconstruction(logits, x, likelihood)
    kl = kl_standard_normal(mu, logvar)
    return {"total": recon + beta * kl, "recon": recon, "kl": kl}


def perceptual_distance(net: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS-style distance per image (Zhang et al. 2018, with unit layer weights) of images ``a`` to targets ``b``
    (pixels in [0, 1]; no gradient flows into ``b``): ``net`` returns a list of feature maps; each is normalised
    to unit length over channels, squared differences are summed over channels, averaged over positions and
    summed over the maps."""
    unit = lambda f: f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
    with torch.no_grad():
        targets = net(b)
    return sum((unit(p) - unit(q)).pow(2).sum(1).flatten(1).mean(1) for p, q in zip(net(a), targets))


def _kind(kind: str) -> str:
    if kind not in ADVERSARIAL:
        raise InputError(f"adversarial loss {kind!r}: unknown; expected one of {ADVERSARIAL}")
    return kind


def generator_loss(fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The generator's adversarial term per image from discriminator logits on its images (mean over the
    patches): hinge −D(fake), least squares (D(fake) − 1)²."""
    return (-fake if _kind(kind) == "hinge" else (fake - 1).pow(2)).flatten(1).mean(1)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """The discriminator's loss per image pair from its logits (means over the patches): hinge
    relu(1 − D(real)) + relu(1 + D(fake)), least squares (D(real) − 1)² + D(fake)²."""
    r, f = (F.relu(1 - real), F.relu(1 + fake)) if _kind(kind) == "hinge" else ((real - 1).pow(2), fake.pow(2))
    return r.flatten(1).mean(1) + f.flatten(1).mean(1)


def adaptive_weight(recon: torch.Tensor, adversarial: torch.Tensor, layer: torch.Tensor,
                    max_weight: float = 1e4) -> torch.Tensor:
    """VQGAN's adaptive weight (Esser et al. 2021): ‖∇ recon‖ / (‖∇ adversarial‖ + 10⁻⁴), gradients of the two
    scalar losses at ``layer`` (the decoder's last weight), clamped to [0, max_weight], detached."""
    g_rec, g_adv = (torch.autograd.grad(t, layer, retain_graph=True)[0] for t in (recon, adversarial))
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, max_weight).detach()
