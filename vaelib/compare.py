"""Comparing runs and sampling conditions: per-epoch curves of several runs side by side, sample
quality (sharpness, diversity), cluster separation of latents, and reconstructions decoded from
the posterior mean μ versus a sampled z.

Used by chapters 02 (latent sizes), 03 (β sweep) and 04 (frozen μ). Numbers follow the report's
units: reconstruction terms in nats per image (sum over pixels, mean over images); MSE, PSNR and
SSIM per image, averaged.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure

from . import plots
from .losses import elbo_terms
from .metrics import diversity, mse, psnr, sharpness, ssim

__all__ = ["compare_curves", "history_frame", "sample_quality", "condition_samples", "diversity_draws",
           "silhouette", "decode_mu_and_sampled", "reconstruction_table", "draws_plot", "image_panels",
           "latent_panels"]

_TITLES = {"total": "−ELBO (nats/image)", "recon": "reconstruction (nats/image)", "kl": "KL (nats/image)",
           "mse": "MSE (from μ)", "psnr": "PSNR dB (from μ)", "ssim": "SSIM (from μ)"}
_STYLES = ("-", "--", ":", "-.")


def history_frame(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> Any:
    """Per-epoch histories of several runs as one long DataFrame: run, epoch, key, value."""
    import pandas as pd

    rows = [{"run": label, "epoch": r.get("epoch", i + 1), "key": k, "value": v}
            for label, hist in histories.items() for i, r in enumerate(hist)
            for k, v in r.items() if k != "epoch" and isinstance(v, (int, float))]
    return pd.DataFrame(rows, columns=["run", "epoch", "key", "value"])


def compare_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], quantities: Sequence[str],
                   splits: Mapping[str, str], title: str | None = None, ncols: int = 3) -> Figure:
    """One panel per quantity; one colour per run (``histories``: label → per-epoch history) and
    one line style per split (``splits``: key prefix → name, e.g. {"train_": "train", "test_": "test"}).
    A (prefix, quantity) absent from every history is skipped; a quantity absent everywhere is an error."""
    if not histories:
        raise ValueError("histories: empty; expected label -> list of per-epoch dicts")
    present = [q for q in quantities
               if any(r.get(p + q) is not None for h in histories.values() for r in h for p in splits)]
    if not present:
        raise ValueError(f"histories: no key {'/'.join(splits)} + {list(quantities)} found")
    ncols = min(ncols, len(present))
    nrows = -(-len(present) // ncols)
    fig = plots.new_figure(figsize=(4.3 * ncols, 3.2 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = sns.color_palette(plots.PALETTE, max(10, len(histories)))
    for ax, q in zip(axes, present):
        for color, (label, hist) in zip(colors, histories.items()):
            for style, (prefix, split) in zip(_STYLES, splits.items()):
                pts = [(r.get("epoch", i + 1), r[prefix + q]) for i, r in enumerate(hist)
                       if r.get(prefix + q) is not None]
                if pts:
                    x, y = zip(*pts)
                    ax.plot(x, y, ls=style, color=color, marker="o" if len(pts) < 3 else None, ms=3,
                            label=f"{label} · {split}" if len(histories) > 1 else split)
        ax.set_title(_TITLES.get(q, q))
        ax.set_xlabel("epoch")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8, frameon=False)
    for ax in axes[len(present):]:
        fig.delaxes(ax)
    if title:
        fig.suptitle(title)
    return fig


@torch.no_grad()
def sample_quality(model, n: int, seed: int = 0, scale: float = 1.0) -> dict[str, float]:
    """Sharpness (mean variance of the Laplacian) and diversity (mean pairwise L2 distance) of
    ``n`` images decoded from z ~ N(0, scale² I)."""
    x = model.sample(n, generator=torch.Generator().manual_seed(seed), scale=scale).cpu()
    return {"sharpness": float(sharpness(x).mean()), "diversity": diversity(x)}


def _draw_seed(seed: int, condition: int, draw: int) -> int:
    return seed * 100_003 + 1_000 * condition + draw


@torch.no_grad()
def condition_samples(model, sigmas: Mapping[str, float], n: int, seed: int = 0, draw: int = 0) -> dict:
    """Draw ``draw`` of ``diversity_draws``: condition name → ``n`` images decoded from z = σ·ε."""
    return {name: model.sample(n, generator=torch.Generator().manual_seed(_draw_seed(seed, c, draw)),
                               scale=float(sigma)).cpu()
            for c, (name, sigma) in enumerate(sigmas.items())}


@torch.no_grad()
def diversity_draws(model, sigmas: Mapping[str, float], n: int, draws: int, seed: int = 0) -> Any:
    """For each condition (name → σ of z = 0 + σ·ε), ``draws`` independent sets of ``n`` decoded
    samples: a DataFrame condition, σ, draw, diversity, sharpness. Draw r of every condition
    uses its own seed, so conditions with the same σ still get different samples."""
    import pandas as pd

    rows = []
    for c, (name, sigma) in enumerate(sigmas.items()):
        for r in range(draws):
            g = torch.Generator().manual_seed(_draw_seed(seed, c, r))
            x = model.sample(n, generator=g, scale=float(sigma)).cpu()
            rows.append({"condition": name, "σ": float(sigma), "draw": r, "diversity": diversity(x),
                         "sharpness": float(sharpness(x).mean())})
    return pd.DataFrame(rows)


def silhouette(z: Any, labels: Any, max_n: int = 5000, seed: int = 0) -> float:
    """Silhouette score (Euclidean) of latent codes by class (scikit-learn); at most ``max_n``
    points, a seeded random subset when there are more."""
    from sklearn.metrics import silhouette_score

    z = z.cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return float(silhouette_score(z, labels, sample_size=min(max_n, len(z)), random_state=seed))


@torch.no_grad()
def decode_mu_and_sampled(model, x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Pixel probabilities of ``x`` decoded from the posterior mean μ and from one sampled
    z = μ + σ·ε (ε from a generator seeded with ``seed``); also the logits of both."""
    model.eval()
    mu, logvar = model.encode(x.to(model.device))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).to(mu.device)
    logits_mu = model.decode(mu)
    logits_z = model.decode(mu + torch.exp(0.5 * logvar) * eps)
    return {"mu": mu, "logvar": logvar, "logits_mu": logits_mu, "logits_z": logits_z,
            "from_mu": torch.sigmoid(logits_mu).cpu(), "from_z": torch.sigmoid(logits_z).cpu()}


@torch.no_grad()
def reconstruction_table(model, x: torch.Tensor, seed: int = 0, batch_size: int = 1000) -> Any:
    """Mean reconstruction numbers of ``x`` decoded from μ and from a sampled z: Bernoulli
    reconstruction term (nats/image), KL (the same for both), MSE, PSNR, SSIM. A DataFrame, cached
    under the digest of the model's weights, ``x`` and the settings (``vaelib.result_cache``)."""
    from .result_cache import cached_frame, digest

    key = digest("reconstruction_table", 1, model, x, seed, batch_size)
    return cached_frame("reconstruction-table", key, lambda: _reconstruction_table(model, x, seed, batch_size))


def _reconstruction_table(model, x: torch.Tensor, seed: int, batch_size: int) -> Any:
    import pandas as pd

    sums: dict[tuple[str, str], float] = {}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(model.device)
        d = decode_mu_and_sampled(model, xb, seed=seed + i)
        for name, key in (("decoded from μ", "logits_mu"), ("decoded from sampled z", "logits_z")):
            terms = elbo_terms(d[key], xb, d["mu"], d["logvar"])
            rec = torch.sigmoid(d[key])
            vals = {"reconstruction (nats)": terms["recon"], "KL (nats)": terms["kl"], "MSE": mse(rec, xb),
                    "PSNR dB": psnr(rec, xb), "SSIM": ssim(rec, xb)}
            for k, v in vals.items():
                sums[(name, k)] = sums.get((name, k), 0.0) + float(v.double().sum())
    names = ["decoded from μ", "decoded from sampled z"]
    cols = ["reconstruction (nats)", "KL (nats)", "MSE", "PSNR dB", "SSIM"]
    return pd.DataFrame([{"decoding": n, "images": len(x), **{c: sums[(n, c)] / len(x) for c in cols}}
                         for n in names])


def draws_plot(draws: Any, y: str = "diversity", title: str | None = None) -> Figure:
    """Mean ± standard deviation of ``y`` per condition over the draws (a ``diversity_draws`` frame),
    with every draw as a dot."""
    fig = plots.new_figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    names = list(dict.fromkeys(draws["condition"]))
    colors = sns.color_palette(plots.PALETTE, max(10, len(names)))
    for i, name in enumerate(names):
        v = draws.loc[draws["condition"] == name, y].to_numpy()
        jitter = np.linspace(-0.15, 0.15, len(v)) if len(v) > 1 else np.zeros(1)
        ax.scatter(i + jitter, v, s=10, color=colors[i], alpha=0.5, linewidths=0)
        ax.errorbar(i + 0.3, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="o", color=colors[i],
                    capsize=4, ms=6)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel(y)
    if title:
        ax.set_title(title)
    return fig


def image_panels(images: Mapping[str, Any], nrow: int = 8, title: str | None = None) -> Figure:
    """Several image grids side by side, one panel per entry (name → images), titled by name."""
    if not images:
        raise ValueError("images: empty; expected name -> (N, 1, 28, 28) images")
    n = len(images)
    first = next(iter(images.values()))
    rows = -(-len(first) // nrow)
    fig = plots.new_figure(figsize=(n * (0.45 * nrow + 0.3), 0.45 * rows + 0.8))
    for ax, (name, imgs) in zip(fig.subplots(1, n, squeeze=False).ravel(), images.items()):
        plots.image_grid(imgs, nrow=nrow, ax=ax, title=name)
    if title:
        fig.suptitle(title)
    return fig


def latent_panels(latents: Mapping[str, tuple[Any, Any]], class_names: Sequence[str] | None = None,
                  title: str | None = None) -> Figure:
    """2-D latent scatters side by side (name → (z (N, 2), labels)), each on its own axes."""
    if not latents:
        raise ValueError("latents: empty; expected name -> (z, labels)")
    n = len(latents)
    fig = plots.new_figure(figsize=(4.6 * n + 1.2, 4.2))
    axes = fig.subplots(1, n, squeeze=False).ravel()
    for i, (ax, (name, (z, labels))) in enumerate(zip(axes, latents.items())):
        plots.latent_scatter(z, labels, class_names, ax=ax, title=name, s=3.0, alpha=0.5)
        if i < n - 1:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title)
    return fig
