"""Hand-derived gradients of the MLP VAE's negative β-ELBO (Bernoulli likelihood), for training speed.

On a CPU the MLP VAE (784-400-z, batch 128) spends almost half of an autograd training step outside
its five large matmuls: autograd bookkeeping, a dozen small element-wise kernels and fresh gradient
tensors every step. ``elbo_gradients`` does the same forward and backward pass with explicit tensor
operations under ``no_grad`` and writes each gradient into the parameter's ``.grad`` in place
(``out=``), which makes a training step ~15 % faster. It is tested against autograd (same losses
and gradients to float64 round-off); ``vaelib.train.fit`` uses it for ``MLPVAE`` with the Bernoulli
likelihood and autograd for everything else.

Notation (B images, loss L = mean over the batch of recon + β·KL):
    h = relu(x W1ᵀ + b1);  μ = h Wμᵀ + bμ;  v = h Wvᵀ + bv (log σ²);  σ = exp(v/2);  z = μ + σ·ε
    d = relu(z W3ᵀ + b3);  ℓ = d W4ᵀ + b4 (logits)
    recon = Σ softplus(ℓ) − x·ℓ;  KL = ½ Σ (μ² + σ² − 1 − v)
    ∂L/∂ℓ = (sigmoid(ℓ) − x)/B;  ∂L/∂μ = ∂L/∂z + βμ/B;  ∂L/∂v = ½ (∂L/∂z · ε σ + β(σ² − 1)/B)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import MLPVAE


def _relu_backward(grad: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``grad`` where the ReLU's output is positive, else 0 (what autograd's ReLU backward does)."""
    return torch.ops.aten.threshold_backward(grad, out, 0)


def _weight_grads(layer: torch.nn.Linear, grad_out: torch.Tensor, inp: torch.Tensor) -> None:
    """Write a Linear layer's weight and bias gradients into its ``.grad`` tensors."""
    for p in (layer.weight, layer.bias):
        if p.grad is None or p.grad.shape != p.shape:
            p.grad = torch.empty_like(p)
    torch.mm(grad_out.t(), inp, out=layer.weight.grad)
    torch.sum(grad_out, 0, out=layer.bias.grad)


@torch.no_grad()
def elbo_gradients(model: MLPVAE, x: torch.Tensor, eps: torch.Tensor, beta: float = 1.0
                   ) -> dict[str, torch.Tensor]:
    """Set ``p.grad`` of every parameter of ``model`` to the gradient of the batch-mean negative
    β-ELBO of ``x`` (B×1×28×28 in [0, 1]) with z = μ + σ·ε, ``eps`` (B×z) given; return the
    per-image ``total``, ``recon`` and ``kl`` in nats, as ``losses.elbo_terms`` would."""
    enc, mu_layer, logvar_layer = model.enc[1], model.enc_mu, model.enc_logvar
    dec_hidden, dec_out = model.dec[0], model.dec[2]
    x = x.reshape(len(x), -1)
    h = torch.addmm(enc.bias, x, enc.weight.t()).clamp_min_(0)
    mu = torch.addmm(mu_layer.bias, h, mu_layer.weight.t())
    logvar = torch.addmm(logvar_layer.bias, h, logvar_layer.weight.t())
    std = torch.exp(0.5 * logvar)
    z = torch.addcmul(mu, std, eps)
    d = torch.addmm(dec_hidden.bias, z, dec_hidden.weight.t()).clamp_min_(0)
    logits = torch.addmm(dec_out.bias, d, dec_out.weight.t())
    recon = F.softplus(logits).sub_(logits * x).sum(1)  # BCE with logits, in fewer kernels
    var = std * std
    kl = 0.5 * (mu * mu + var - 1 - logvar).sum(1)

    scale = 1.0 / len(x)
    g_logits = torch.sigmoid(logits).sub_(x).mul_(scale)
    _weight_grads(dec_out, g_logits, d)
    g_d = _relu_backward(g_logits @ dec_out.weight, d)
    _weight_grads(dec_hidden, g_d, z)
    g_z = g_d @ dec_hidden.weight
    g_mu = torch.add(g_z, mu, alpha=scale * beta)
    g_logvar = (g_z * eps * std).add_(var - 1, alpha=scale * beta).mul_(0.5)
    _weight_grads(mu_layer, g_mu, h)
    _weight_grads(logvar_layer, g_logvar, h)
    g_h = _relu_backward(torch.addmm(g_mu @ mu_layer.weight, g_logvar, logvar_layer.weight), h)
    _weight_grads(enc, g_h, x)
    return {"total": recon + beta * kl, "recon": recon, "kl": kl}
