"""Every figure and GIF frame of the report, in the style ``new_figure`` applies per call (no pyplot).

Images are (N, 1, H, W) or (N, H, W) in [0, 1]. The ``*_gif`` builders take a ``train.Run`` and return
GIF bytes, for ``store.cached``; ``save_bytes`` writes them.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import matplotlib
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from PIL import Image, ImageSequence
from scipy.stats import norm
from sklearn.decomposition import PCA

from .data import to_float
from .gmm import full_covariances
from . import store
from .store import atomic_path
from .train import snapshot_index

PALETTE = "tab10"
_TILE_IN, _GIF_DPI = 0.6, 80  # inches per 28x28 tile in grids; GIF frame resolution
_TITLES = {"total": "−ELBO (nats/image)", "recon": "reconstruction (nats/image)", "kl": "KL (nats/image)",
           "mse": "MSE (from μ)", "psnr": "PSNR dB (from μ)", "ssim": "SSIM (from μ)"}
_MSE_TITLES = {"total": "squared error + β·KL per image", "recon": "squared error on [−1, 1] per image"}


class ReportFigure(Figure):
    """A Figure that shows itself as PNG in Jupyter whatever the backend (papermill, Agg, inline)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


def new_figure(**kwargs: Any) -> ReportFigure:
    """A constrained-layout ``ReportFigure``, the report's style (seaborn whitegrid, tab10) applied first."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update({"image.cmap": "gray", "figure.dpi": 100})
    return ReportFigure(layout="constrained", **kwargs)


def _panels(nrows: int, ncols: int, figsize: tuple[float, float], title: str | None = None, **kw: Any):
    """A new figure and its (nrows, ncols) array of axes, with an optional suptitle."""
    fig = new_figure(figsize=figsize)
    if title:
        fig.suptitle(title)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """(figure, axes): the given axes, or a fresh one-panel figure."""
    if ax is None:
        ax = _panels(1, 1, figsize)[1][0, 0]
    return ax.get_figure(root=True), ax


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _class_colour(k: Any) -> tuple[float, float, float]:
    """Class k's colour, the same in every figure."""
    return sns.color_palette(PALETTE, 10)[int(k) % 10]


def _images(images: Any) -> np.ndarray:
    """Images as a float (N, H, W) array, N ≥ 1; ValueError otherwise."""
    arr = _numpy(images).astype(np.float32)
    arr = arr[:, 0] if arr.ndim == 4 and arr.shape[1] == 1 else arr
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images: shape {arr.shape}; expected non-empty (N, 1, H, W) or (N, H, W)")
    return arr


def image_grid(images: Any, nrow: int = 8, captions: Sequence[str] | None = None, ax: Axes | None = None,
               title: str | None = None, row_labels: Sequence[str] | None = None) -> Figure:
    """Grid of images, ``nrow`` per row (torchvision's convention), optional captions and row labels."""
    arr = _images(images)
    (n, h, w), ncol, pad, cap = arr.shape, max(1, min(nrow, len(arr))), 2, 0 if captions is None else 12
    rows, ch = -(-n // ncol), h + pad + cap  # a cell: the image, a margin above and left, room for a caption below
    fig, ax = _axes(ax, (ncol * _TILE_IN + 1.2 * bool(row_labels), rows * (_TILE_IN + cap / 48) + 0.4 * bool(title)))
    cells = np.pad(arr, ((0, -n % ncol), (pad, cap), (pad, 0)), constant_values=1.0)
    mosaic = cells.reshape(rows, ncol, ch, w + pad).transpose(0, 2, 1, 3).reshape(rows * ch, -1)
    ax.imshow(np.pad(mosaic, ((0, pad), (0, pad)), constant_values=1.0), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    for i, text in enumerate(captions or []):
        ax.text(pad + i % ncol * (w + pad) + w / 2, i // ncol * ch + pad + h + 1, text, ha="center", va="top", size=7)
    ax.set(xticks=[], title=title or "")
    ax.set_yticks([r * ch + pad + h / 2 for r in range(len(row_labels or []))], row_labels)
    ax.tick_params(axis="y", length=0)
    ax.spines[:].set_visible(False)
    ax.grid(False)
    return fig


def recon_rows(originals: Any, reconstructions: Any, captions: Sequence[str] | None = None,
               title: str | None = None, per_row: int = 16, ax: Axes | None = None) -> Figure:
    """Originals over their reconstructions, ``per_row`` pairs per row pair; captions under reconstructions."""
    a, b = _images(originals), _images(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} vs reconstructions {b.shape}; expected equal shapes")
    n, k = max(1, min(per_row, len(a))), len(a)
    a, b = (np.concatenate([x, np.ones((-k % n, *x.shape[1:]), np.float32)]) for x in (a, b))  # blank tiles
    caps = None if captions is None else [*captions, *[""] * (len(a) - len(captions))]
    caps = None if caps is None else [c for i in range(0, len(a), n) for c in [""] * n + caps[i:i + n]]
    tiles = np.concatenate([x[i:i + n] for i in range(0, len(a), n) for x in (a, b)])
    return image_grid(tiles, n, caps, ax, title, ["original", "reconstruction"] * (len(a) // n))


def curves(histories: Any, quantities: Sequence[str] = ("total", "recon", "kl", "mse", "psnr", "ssim"),
           splits: Mapping[str, str] | None = None, title: str | None = None, ncols: int = 3,
           likelihood: str = "bernoulli") -> Figure:
    """A panel per quantity q present, a colour per run ({label: history} or one), a line style per split p: key p + q.
    ``likelihood`` "mse" (tanh models): the loss panels are squared errors, not nats."""
    runs = histories if isinstance(histories, Mapping) else {"": histories}
    splits = splits or {"train_": "train", "val_": "validation"}
    present = [q for q in quantities if any(r.get(p + q) is not None for h in runs.values() for r in h for p in splits)]
    if not present:
        raise ValueError(f"histories: no key {'/'.join(splits)} + {list(quantities)} in {len(runs)} run(s)")
    ncols, nrows = min(ncols, len(present)), -(-len(present) // min(ncols, len(present)))
    fig, axes = _panels(nrows, ncols, (4.3 * ncols, 3.2 * nrows + 0.4), title)
    for ax, q in zip(axes.flat, present):
        for color, (label, hist) in zip(sns.color_palette(PALETTE, max(10, len(runs))), runs.items()):
            for style, (p, split) in zip(("-", "--", ":", "-."), splits.items()):
                pts = [(r.get("epoch", i + 1), r[p + q]) for i, r in enumerate(hist) if r.get(p + q) is not None]
                if pts:
                    ax.plot(*zip(*pts), ls=style, color=color, marker="o" if len(pts) < 30 else None, ms=3,
                            label=f"{label} · {split}" if label else split)
        titles = {**_TITLES, **(_MSE_TITLES if likelihood == "mse" else {})}
        ax.set(title=titles.get(q, q), xlabel="epoch")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8, frameon=False)
    for ax in axes.flat[len(present):]:
        fig.delaxes(ax)
    return fig


def latent_scatter(z: Any, labels: Any, class_names: Sequence[str] | None = None, ax: Axes | None = None,
                   title: str | None = None, s: float = 4.0, alpha: float = 0.6,
                   axis_labels: Sequence[str] = ("z[0]", "z[1]"), lims: Any = None, legend: bool = True) -> Figure:
    """2-D codes coloured by class (class k: tab10 colour k in every figure); ``lims``: ((x0, x1), (y0, y1))."""
    z, labels = _numpy(z), _numpy(labels)
    if z.ndim != 2 or z.shape[1] != 2 or labels.shape != (len(z),):
        raise ValueError(f"z {z.shape}, labels {labels.shape}; expected z (N, 2) and labels (N,)")
    fig, ax = _axes(ax, (6.0, 5.0))
    for k in np.unique(labels):
        ax.scatter(*z[labels == k].T, s=s, alpha=alpha, color=_class_colour(k), linewidths=0, label=class_names[int(k)] if class_names is not None else str(int(k)))
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1], title=title or "")
    if lims is not None:
        ax.set(xlim=lims[0], ylim=lims[1])
    if legend:
        ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return fig


def manifold(decode_fn: Callable[[torch.Tensor], torch.Tensor], n: int = 20, latent_dim: int = 2,
             digit_size: int = 28, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Decode an n x n grid of N(0, 1) quantiles in z[0] (columns) and z[1] (rows, upwards), other dims 0."""
    if latent_dim < 2:
        raise ValueError(f"latent_dim: {latent_dim}; expected >= 2")
    grid = norm.ppf(np.linspace(0.05, 0.95, n))
    z = torch.zeros(n * n, latent_dim, dtype=torch.float32)
    z[:, :2] = torch.from_numpy(np.stack(np.meshgrid(grid, grid[::-1]), -1).reshape(-1, 2)).float()
    with torch.no_grad():
        imgs = _images(decode_fn(z))
    if imgs.shape != (n * n, digit_size, digit_size):
        raise ValueError(f"decode_fn returned {imgs.shape}; expected ({n * n}, 1, {digit_size}, {digit_size})")
    fig, ax = _axes(ax, (7.0, 7.0))
    ax.imshow(imgs.reshape(n, n, digit_size, -1).transpose(0, 2, 1, 3).reshape(n * digit_size, -1), cmap="gray",
              vmin=0, vmax=1, interpolation="nearest")
    ticks = np.arange(0, n, max(1, n // 10))
    ax.set_xticks(ticks * digit_size + (digit_size - 1) / 2, [f"{grid[j]:.2f}" for j in ticks], rotation=90, fontsize=8)
    ax.set_yticks(ticks * digit_size + (digit_size - 1) / 2, [f"{grid[n - 1 - i]:.2f}" for i in ticks], fontsize=8)
    ax.set(xlabel="z[0]", ylabel="z[1]", title=title or "")
    ax.grid(False)
    return fig


def sampler_grids(samples: Mapping[str, Mapping[str, Any]], scores: Mapping | None = None, nrow: int = 8,
                  title: str | None = None) -> Figure:
    """Image grids: a row per model, a column per sampler ({model: {sampler: images}}), ``scores`` in the titles."""
    samplers = list(dict.fromkeys(s for d in samples.values() for s in d))
    if not samplers:
        raise ValueError("samples: empty; expected {model: {sampler: images}}")
    rows = -(-max(len(im) for d in samples.values() for im in d.values()) // nrow)
    fig, axes = _panels(len(samples), len(samplers), (len(samplers) * (nrow * 0.5 + 0.3),
                                                      len(samples) * (rows * 0.5 + 0.75)), title)
    for ax_row, (label, by_sampler) in zip(axes, samples.items()):
        for ax, sampler in zip(ax_row, samplers):
            if sampler not in by_sampler:
                ax.set_axis_off()
                continue
            image_grid(by_sampler[sampler], nrow=nrow, ax=ax)
            ax.set_title(f"{label}\n{sampler}{(scores or {}).get((label, sampler), '')}".strip(), fontsize=9)
    return fig


def latent_panels(latents: Mapping[str, tuple[Any, Any]], class_names: Sequence[str] | None = None,
                  title: str | None = None) -> Figure:
    """2-D latent scatters side by side (name → (z (N, 2), labels)), the legend on the last panel."""
    if not latents:
        raise ValueError("latents: empty; expected name -> (z, labels)")
    fig, axes = _panels(1, len(latents), (4.6 * len(latents) + 1.2, 4.2), title)
    for i, (ax, (name, (z, labels))) in enumerate(zip(axes[0], latents.items())):
        latent_scatter(z, labels, class_names, ax=ax, title=name, s=3.0, alpha=0.5, legend=i == len(latents) - 1)
    return fig


def draws_plot(draws: Any, y: str = "diversity", title: str | None = None) -> Figure:
    """Every draw of column ``y`` per ``condition`` (a DataFrame of repeated draws) as a dot, mean ± s.d. black."""
    fig, ax = _axes(None, (6.0, 3.8))
    sns.swarmplot(draws, x="condition", y=y, hue="condition", palette=PALETTE, alpha=0.6, legend=False, ax=ax)
    sns.pointplot(draws, x="condition", y=y, errorbar="sd", capsize=0.15, color="black", linestyle="none", ax=ax)
    ax.set(xlabel="", title=title or "")
    return fig


def ellipse_params(cov: np.ndarray, n_sigma: float = 1.0) -> tuple[float, float, float]:
    """(width along the major axis, height, angle° of that axis) of {x : xᵀ Σ⁻¹ x = n_sigma²} for a 2×2 Σ."""
    cov = np.asarray(cov, np.float64)
    if cov.shape != (2, 2):
        raise ValueError(f"cov: shape {cov.shape}; expected (2, 2)")
    vals, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
    w, h = 2 * n_sigma * np.sqrt(np.clip(vals[::-1], 0.0, None))
    return float(w), float(h), float(np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1])))


def ellipses_figure(z: Any, labels: Any, class_names: Sequence[str], clf: Any, title: str | None = None) -> Figure:
    """2-D codes by class, component k of ``clf.gmm`` as 1σ and 2σ ellipses in class ``clf.classes[k]``'s colour."""
    if clf.gmm.means_.shape[1] != 2:
        raise ValueError(f"mixture in {clf.gmm.means_.shape[1]}-D; expected 2-D codes for ellipses")
    fig = latent_scatter(z, labels, class_names, title=title, s=5.0, alpha=0.45)
    ax = fig.axes[0]
    for mean, cov, c in zip(clf.gmm.means_, full_covariances(clf.gmm), clf.classes):
        for ns, lw, ls in ((1.0, 2.0, "-"), (2.0, 1.5, "--")):
            w, h, angle = ellipse_params(cov, ns)
            ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, lw=lw, ls=ls, ec=_class_colour(c), zorder=3))
        ax.plot(*mean, marker="x", ms=10, mew=2.5, color="black", zorder=4)
    ax.text(0.01, 0.01, "ellipses: 1σ, 2σ (solid, dashed); × means", transform=ax.transAxes, fontsize=8, va="bottom")
    return fig


def confusion_figure(cm: np.ndarray, names: Sequence[str], title: str | None = None) -> Figure:
    """A heat map of a confusion matrix (rows: true class, columns: predicted), with counts."""
    fig, ax = _axes(None, (1.2 * len(names) + 2.0, 1.0 * len(names) + 1.4))
    sns.heatmap(np.asarray(cm), annot=True, fmt="d", cmap="Blues", xticklabels=names, yticklabels=names, ax=ax)
    ax.set(xlabel="predicted", ylabel="true", title=title or "")
    return fig


def label_efficiency_figure(summary: Any, title: str | None = None, draws: Any = None) -> Figure:
    """Mean ± s.d. of macro-F1 per method against labelled images per class; ``draws``: every draw as a dot."""
    fig, ax = _axes(None, (7.0, 4.2))
    order = summary.drop_duplicates("k").sort_values("per_class", kind="stable")
    pos, methods = {k: i for i, k in enumerate(order["k"])}, list(dict.fromkeys(summary["method"]))
    for i, (method, color) in enumerate(zip(methods, sns.color_palette(PALETTE, 10))):
        part = summary[summary["method"] == method].sort_values("per_class", kind="stable")
        shift = (i - (len(methods) - 1) / 2) * 0.3 / len(methods)  # methods side by side at each k
        mean, std = part["f1_macro_mean"], part["f1_macro_std"]
        ax.errorbar(part["k"].map(pos) + shift, mean, [mean - (mean - std).clip(0, 1), (mean + std).clip(0, 1) - mean],
                    marker="o", ms=5, capsize=3, color=color, label=method)
        if draws is not None:
            d = draws[draws["method"] == method]
            ax.scatter(d["k"].map(pos) + shift, d["f1_macro"], s=9, color=color, alpha=0.35, linewidths=0)
    ax.set_xticks(range(len(pos)), [f"all\n(≈{n:.0f})" if k == "all" else k for k, n in zip(order.k, order.per_class)])
    ax.set(xlim=(-0.5, len(pos) - 0.5), ylim=(None, 1.01), xlabel="labelled images per class", title=title or "",
           ylabel="test macro-F1 (mean ± std" + ("; dots: draws)" if draws is not None else ")"))
    ax.legend(fontsize=8, loc="lower right")
    return fig


def fid_bar_chart(results: Any, title: str | None = None) -> Figure:
    """FID bars (log scale) per data · model · sampler, baselines grey and hatched, a panel per extractor."""
    df = results.assign(_g=results["data"].map(list(dict.fromkeys(results["data"])).index))
    df = df.sort_values(["_g", "kind"], kind="stable")  # by data set, baselines first
    df["row"] = df["data"] + " · " + df["model"] + np.where(df["sampler"] != "—", " · " + df["sampler"], "")
    labels, kinds = list(dict.fromkeys(df["row"])), list(dict.fromkeys(df["extractor"]))
    fig, axes = _panels(1, len(kinds), (4.2 * len(kinds) + 3.2, 0.3 * len(labels) + 1.3), title, sharey=True)
    for ax, kind in zip(axes[0], kinds):
        sub = df[df["extractor"] == kind].set_index("row").reindex(labels)
        vals, base = sub["fid"].to_numpy(dtype=float), (sub["kind"] == "baseline").to_numpy()
        bars = ax.barh(range(len(labels)), np.clip(np.nan_to_num(vals), 1e-6, None), color=np.where(base, "0.65", "C0"),
                       hatch=["//" if b else "" for b in base])
        ax.bar_label(bars, [f" {v:.3g}" if np.isfinite(v) else "" for v in vals], fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter("")  # no labels on minor ticks
        ns = ", ".join(f"N={k}" for k in sorted(set(sub["n"].dropna().astype(int))))
        ax.set(title=f"{kind} features ({ns})", xlabel="FID (log scale)")
    axes[0, 0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0, 0].invert_yaxis()  # shared y: invert once
    return fig


def _sign(fig: Figure, author: str | None) -> Figure:
    """A small grey author tag in the bottom-right corner (none for an empty ``author``)."""
    if author:
        fig.text(0.995, 0.005, author, ha="right", va="bottom", fontsize=7, color="0.55", alpha=0.8)
    return fig


# PNG text chunks: none (matplotlib writes its version as "Software"), so that the same figure gives the same bytes.
_PNG_METADATA = {"Software": None}


def save_fig(fig: Figure, path: str | os.PathLike, author: str | None = None, dpi: int = 120) -> Path:
    """Write ``fig`` atomically as PNG (with ``author``'s tag, if any; ``web_png``: a palette, no metadata, kept in
    the result store by the rendered bytes); return the Path. The figure remembers it (``fig.saved_as``), so that
    the report runner can show the file instead of a second copy of the image in the executed notebook."""
    _sign(fig, author)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata=_PNG_METADATA)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(store.cached(web_png, buf.getvalue()))  # a warm run re-encodes nothing
    fig.saved_as = Path(path).absolute()
    return Path(path)


_PNG_COLOURS = 256


def web_png(data: bytes) -> bytes:
    """PNG bytes of an opaque figure as a 256-colour palette PNG (median cut, no dithering): about half the
    bytes, and no visible change for plots (flat colours, antialiased lines, greyscale images). A PNG with
    transparent pixels is only recompressed. No text chunks either way."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        opaque = im.mode == "RGB" or im.mode == "RGBA" and im.getextrema()[3][0] == 255
        out = im.convert("RGB").quantize(_PNG_COLOURS, method=Image.Quantize.MEDIANCUT,
                                         dither=Image.Dither.NONE) if opaque else im
        buf = io.BytesIO()
        out.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def fig_to_array(fig: Figure, author: str | None = None) -> np.ndarray:
    """Render ``fig`` (with ``author``'s tag, if any) at the GIF frames' dpi → (H, W, 3) uint8 RGB."""
    fig.set_dpi(_GIF_DPI)
    canvas = FigureCanvasAgg(_sign(fig, author))
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def latent_coords(mu: Any) -> tuple[np.ndarray, tuple[str, str]]:
    """(T, n, z) → (T, n, 2) coordinates and axis labels: z ≤ 2 as is, else a PCA fitted once on the last frame."""
    mu = _numpy(mu).astype(np.float64)
    if mu.ndim != 3 or mu.shape[-1] < 1:
        raise ValueError(f"mu: shape {mu.shape}; expected (T, n, z)")
    if mu.shape[-1] <= 2:
        return np.pad(mu, [(0, 0), (0, 0), (0, 2 - mu.shape[-1])]), ("z[0]", "z[1]" if mu.shape[-1] == 2 else "(none)")
    pca = PCA(n_components=2).fit(mu[-1])
    return (pca.transform(mu.reshape(-1, mu.shape[-1])).reshape(*mu.shape[:2], 2),
            tuple(f"PC{i + 1} of final μ ({100 * v:.0f} % var.)" for i, v in enumerate(pca.explained_variance_ratio_)))


def _limits(coords: np.ndarray, at_least: float = 0.0) -> tuple[tuple[float, float], ...]:
    """Axis limits covering the central 99 % of the points of every frame of (T, n, 2), and ±at_least."""
    lo = np.minimum(np.percentile(coords, 0.5, axis=1).min(0), -at_least)
    hi = np.maximum(np.percentile(coords, 99.5, axis=1).max(0), at_least)
    return tuple(zip(lo - 0.06 * np.maximum(hi - lo, 1e-3), hi + 0.06 * np.maximum(hi - lo, 1e-3)))


def snapshot_frames(snapshots: Mapping[str, Any] | None, labels: Any = None, originals: Any = None,
                    class_names: Sequence[str] | None = None, title: str = "", author: str = "") -> list[np.ndarray]:
    """A frame per snapshot: the followed images' μ by ``labels`` (fixed axes), ``originals`` over reconstructions, or both."""
    if not snapshots or "mu" not in snapshots or "recon" not in snapshots:
        raise ValueError("snapshots: none; expected a run trained with snapshot_n > 0 (run.snapshots)")
    (coords, axis_labels), recon = latent_coords(snapshots["mu"]), _numpy(snapshots["recon"]) / 255.0
    both, lims, k = labels is not None and originals is not None, _limits(coords), recon.shape[1]
    frames = []
    for t in range(len(coords)):
        stamp = f"{title} · epoch {int(snapshots['epoch'][t])} · step {int(snapshots['step'][t])}".strip(" ·")
        fig, axes = _panels(1, 1 + both, (10.5, 4.4) if both else (6.4, 5.0) if originals is None else (6.0, 1.8),
                            stamp if both else None, width_ratios=[1.25, 1.0] if both else None)
        if labels is not None:
            latent_scatter(coords[t], labels, class_names, ax=axes[0, 0], title="test images' μ" if both else stamp,
                           s=6.0, alpha=0.7, axis_labels=axis_labels, lims=lims)
        if originals is not None:
            recon_rows(originals, recon[t], per_row=4 if both and k % 4 == 0 and k > 4 else 16, ax=axes[0, -1],
                       title="originals over reconstructions (from μ)" if both else stamp)
        frames.append(fig_to_array(fig, author))
    return frames


def gif_bytes(frames: Sequence[np.ndarray], fps: float = 5, hold_s: float = 0.0) -> bytes:
    """(H, W, 3) uint8 frames → a GIF that loops forever, the last frame held ``hold_s`` s (Pillow merges it)."""
    if len(shapes := {np.shape(f) for f in frames}) != 1:
        raise ValueError(f"frames: shapes {sorted(shapes)}; expected at least one frame, all of one (H, W, 3) shape")
    stack = np.stack(list(frames) + [frames[-1]] * int(round(hold_s * fps)))
    if stack.dtype != np.uint8 or stack.ndim != 4 or stack.shape[-1] != 3:
        raise ValueError(f"frames: {stack.dtype} {stack.shape[1:]}; expected uint8 (H, W, 3)")
    return iio.imwrite("<bytes>", stack, extension=".gif", duration=1000.0 / fps, loop=0)


def save_bytes(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` (e.g. GIF bytes from the store) to ``path`` atomically; return the Path.
    A GIF is written as ``web_gif`` re-encodes it (kept in the result store): the same frames and timing, fewer bytes."""
    data = store.cached(web_gif, data) if data[:6] in (b"GIF87a", b"GIF89a") else data
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return Path(path)


_WEB_GIF_COLOURS, _WEB_GIF_SAMPLE = 256, 12  # one palette, taken from this many frames spread over the GIF
_WEB_GIF_BYTES, _WEB_GIF_MIN_FRAMES = 700_000, 16  # a GIF over this size (so that the outputs stay under ~15 MB) keeps every other frame, down to this


def web_gif(data: bytes) -> bytes:
    """GIF bytes re-encoded for web pages: one palette for all frames (median cut over a sample of frames, no
    dithering, so unchanged pixels stay unchanged) and Pillow's optimisation (each frame stores only the
    region that changed). A result over 0.7 MB keeps every other frame (the first and last always), each kept
    frame lasting as long as the frames it stands for, until it fits or 16 frames are left: the same
    animation, same length and loop, in coarser steps."""
    with Image.open(io.BytesIO(data)) as im:
        loop = im.info.get("loop", 0)
        frames, durations = [], []
        for frame in ImageSequence.Iterator(im):
            frames.append(frame.convert("RGB"))
            durations.append(frame.info.get("duration", 100))
    picks = frames[:: max(1, -(-len(frames) // _WEB_GIF_SAMPLE))]
    sample = Image.new("RGB", (frames[0].width, frames[0].height * len(picks)))
    for i, frame in enumerate(picks):
        sample.paste(frame, (0, i * frames[0].height))
    palette = sample.quantize(_WEB_GIF_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    indexed = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    while True:
        buf = io.BytesIO()
        indexed[0].save(buf, format="GIF", save_all=True, append_images=indexed[1:], duration=durations, loop=loop,
                        optimize=True)
        if buf.tell() <= _WEB_GIF_BYTES or len(indexed) <= _WEB_GIF_MIN_FRAMES:
            return buf.getvalue()
        keep = [*range(0, len(indexed) - 1, 2), len(indexed) - 1]
        durations = [sum(durations[k:end]) for k, end in zip(keep, [*keep[1:], len(indexed)])]
        indexed = [indexed[k] for k in keep]


def _followed(run: Any) -> tuple[np.ndarray, torch.Tensor]:
    """Labels of a run's followed test images, and the originals whose reconstructions it keeps."""
    if not run.snapshots:
        raise ValueError("run: no snapshots; expected a run trained with snapshot_n > 0")
    test, index = run.data.test, torch.as_tensor(run.snapshots["index"])
    return _numpy(test.labels[index]), to_float(test.images[index[: run.snapshots["recon"].shape[1]]])


def reconstruction_gif(run: Any, fps: float = 4, title: str = "", author: str = "") -> bytes:
    """GIF bytes: the run's fixed test images over their reconstructions at every snapshot."""
    frames = snapshot_frames(run.snapshots, originals=_followed(run)[1], title=title, author=author)
    return gif_bytes(frames, fps, hold_s=1.5)


def latent_gif(run: Any, fps: float = 4, title: str = "", author: str = "") -> bytes:
    """GIF bytes: the followed test images' μ at every snapshot (PCA of the final μ when z > 2)."""
    frames = snapshot_frames(run.snapshots, _followed(run)[0], class_names=run.data.test.classes, title=title,
                             author=author)
    return gif_bytes(frames, fps, hold_s=1.5)


def beta_gif(run: Any, fps: float = 10, title: str | None = None, author: str = "") -> bytes:
    """GIF bytes for a β sweep: latent scatter left, originals over reconstructions right."""
    title = f"β = {run.config.beta:g}" if title is None else title
    frames = snapshot_frames(run.snapshots, *_followed(run), run.data.test.classes, title, author)
    return gif_bytes(frames, fps, hold_s=1.5)


@torch.no_grad()
def traversal_gif(run: Any, fps: float = 8, steps: int = 40, n_images: int = 4, span: float = 3.0,
                  radius: float = 1.5, title: str = "", author: str = "") -> bytes:
    """GIF bytes: z = 2, decodes along a circle beside the test μ; else μ_i + a·e_d, a: −span → span → −span."""
    model, test, frames = run.model, run.data.test, []
    if model.latent_dim == 2:
        theta, z = np.linspace(0, 2 * np.pi, steps, endpoint=False), _numpy(model.latents(to_float(test.images)))
        path = radius * np.stack([np.cos(theta), np.sin(theta)], 1)
        imgs, lims = model.generate(torch.from_numpy(path).float()).cpu(), _limits(z[None], 1.1 * radius)
        for t, (x, y) in enumerate(path):
            fig, ((left, right),) = _panels(1, 2, (9.0, 4.4), title, width_ratios=[1.4, 1.0])
            latent_scatter(z, _numpy(test.labels), test.classes, ax=left, title="test μ and the path", s=6, lims=lims)
            left.plot(*np.r_[path, path[:1]].T, color="0.3", lw=1, ls="--")
            left.plot(x, y, marker="*", ms=16, color="crimson", mec="black")
            frames.append(fig_to_array(image_grid(imgs[t:t + 1], 1, ax=right, title=f"z = ({x:+.2f}, {y:+.2f})"),
                                       author))
        return gif_bytes(frames, fps)
    idx, d = snapshot_index(test, len(test))[:n_images], model.latent_dim
    mu, up = model.latents(to_float(test.images[idx])), np.linspace(-span, span, steps // 2 + 1)
    for a in np.r_[up, up[-2:0:-1]]:  # no frame repeated at the turns
        fig, axes = _panels(1, 1, (max(5.0, 0.6 * d + 1.6), 0.6 * len(idx) + 1.0))
        image_grid(model.generate((mu[:, None] + float(a) * torch.eye(d)).reshape(-1, d)).cpu(), d, ax=axes[0, 0],
                   row_labels=[f"{test.classes[int(test.labels[i])]} #{i}" for i in idx],
                   title=f"{title}\ncolumn d decodes μ + ({a:+.2f})·e_d".strip())
        frames.append(fig_to_array(fig, author))
    return gif_bytes(frames, fps)


def gif_info(path: str | os.PathLike) -> dict[str, Any]:
    """file, frames, seconds per loop, loop (0 = forever), width, height and bytes of a GIF file."""
    with Image.open(path) as im:
        ms = [frame.info.get("duration", 0) for frame in ImageSequence.Iterator(im)]
        return {"file": Path(path).name, "frames": len(ms), "seconds": sum(ms) / 1000.0, "loop": im.info.get("loop"),
                "width": im.width, "height": im.height, "bytes": Path(path).stat().st_size}


def preview(paths: Sequence[str | os.PathLike], where: Sequence[float] = (0.0, 1.0),
            labels: Sequence[str] | None = None) -> Figure:
    """A still of GIFs for pages that do not play them: a row per GIF, its frames at the fractions ``where``."""
    picks = [iio.imread(p, index=round(w * (iio.improps(p, index=None).shape[0] - 1))) for p in paths for w in where]
    h, w = picks[0].shape[:2]
    fig, axes = _panels(len(paths), len(where), (len(where) * w / 100, len(paths) * (h / 100 + 0.3)))
    for i, (ax, img) in enumerate(zip(axes.flat, picks)):
        at, name = where[i % len(where)], labels[i // len(where)] if labels else Path(paths[i // len(where)]).name
        ax.imshow(img)
        ax.set_axis_off()
        ax.set_title(f"{name} · {'first' if at == 0 else 'last' if at == 1 else f'{at:.0%}'} frame", fontsize=9)
    return fig
