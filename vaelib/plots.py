"""Figures for the report: image grids, reconstructions, curves, latent plots, GIFs.

Every plotting function returns a ``matplotlib.figure.Figure`` built without
pyplot (so nothing is shown or kept open behind the caller's back; a Figure
as the last expression of a notebook cell still displays). Nothing here
trains or runs a model except ``manifold``, which only calls the decoder it is
given. Images are (N, 1, H, W) or (N, H, W) tensors or arrays in [0, 1].
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import norm

from .io import atomic_path

__all__ = [
    "ReportFigure",
    "new_figure",
    "set_style",
    "image_grid",
    "recon_rows",
    "loss_curves",
    "latent_scatter",
    "manifold",
    "save_fig",
    "fig_to_array",
    "write_gif",
]

PALETTE = "tab10"
_TILE_IN = 0.6  # inches per 28x28 tile in grids
_PANEL_TITLES = {
    "total": "Negative ELBO (nats/image)",
    "recon": "Reconstruction (nats/image)",
    "kl": "KL (nats/image)",
    "mse": "MSE",
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
}


class ReportFigure(Figure):
    """A Figure that displays itself as PNG in Jupyter whatever the matplotlib backend
    (papermill kernels, Agg, inline), so executed notebooks and their HTML carry the images."""

    def _repr_png_(self) -> bytes:
        import io

        buf = io.BytesIO()
        canvas = self.canvas if isinstance(self.canvas, FigureCanvasAgg) else FigureCanvasAgg(self)
        canvas.print_png(buf)
        return buf.getvalue()


def new_figure(**kwargs: Any) -> ReportFigure:
    """A constrained-layout ``ReportFigure``; every figure of the report starts here."""
    return ReportFigure(layout="constrained", **kwargs)


def set_style() -> None:
    """Apply the report's single seaborn style (idempotent; applied on import)."""
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    matplotlib.rcParams.update({"image.cmap": "gray", "figure.dpi": 100})


set_style()


def _to_numpy_images(images: Any) -> np.ndarray:
    """Images as a float (N, H, W) numpy array; raise ValueError on other shapes."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().float().numpy()
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"images: shape {arr.shape}; expected (N, 1, H, W) or (N, H, W)")
    return arr


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return (figure, axes): the given axes, or a fresh single-panel figure."""
    if ax is not None:
        return ax.get_figure(root=True), ax
    fig = new_figure(figsize=figsize)
    return fig, fig.add_subplot()


def _draw_tiles(
    ax: Axes,
    tiles: list[np.ndarray | None],
    ncol: int,
    captions: Sequence[str | None] | None = None,
    row_labels: Sequence[str] | None = None,
    pad: int = 2,
) -> None:
    """Draw tiles (None = blank) row-major as one mosaic image with optional captions."""
    h, w = next(t.shape for t in tiles if t is not None)
    nrows = -(-len(tiles) // ncol)
    gap = pad + (12 if captions is not None else 0)  # room for text under each row
    mosaic = np.ones((nrows * (h + gap) - gap + 2 * pad, ncol * (w + pad) + pad), np.float32)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncol)
        top, left = pad + r * (h + gap), pad + c * (w + pad)
        if tile is not None:
            mosaic[top : top + h, left : left + w] = tile
        if captions is not None and i < len(captions) and captions[i]:
            ax.text(left + w / 2, top + h + 1, captions[i], ha="center", va="top", fontsize=7)
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels is not None:
        ax.set_yticks([pad + r * (h + gap) + h / 2 for r in range(len(row_labels))], list(row_labels))
        ax.tick_params(axis="y", length=0)


def image_grid(
    images: Any,
    nrow: int = 8,
    captions: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
) -> Figure:
    """Grid of images with ``nrow`` images per row (torchvision's convention), optional captions
    under the images and labels left of the rows."""
    arr = _to_numpy_images(images)
    if len(arr) == 0:
        raise ValueError("images: empty; expected at least one image")
    ncol = max(1, min(nrow, len(arr)))
    nrows = -(-len(arr) // ncol)
    extra = 0.25 if captions is not None else 0.0
    fig, ax = _new_axes(ax, (ncol * _TILE_IN, nrows * (_TILE_IN + extra) + (0.4 if title else 0.0)))
    _draw_tiles(ax, list(arr), ncol, captions=captions, row_labels=row_labels)
    if title:
        ax.set_title(title)
    return fig


def recon_rows(
    originals: Any,
    reconstructions: Any,
    captions: Sequence[str] | None = None,
    title: str | None = None,
    per_row: int = 16,
) -> Figure:
    """Originals over their reconstructions, ``per_row`` pairs per row pair; captions under reconstructions."""
    a, b = _to_numpy_images(originals), _to_numpy_images(reconstructions)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError(f"originals {a.shape} vs reconstructions {b.shape}; expected equal, non-empty shapes")
    ncol = max(1, min(per_row, len(a)))
    tiles: list[np.ndarray | None] = []
    tile_caps: list[str | None] = []
    labels: list[str] = []
    for start in range(0, len(a), ncol):
        chunk = range(start, start + ncol)
        tiles += [a[i] if i < len(a) else None for i in chunk]
        tiles += [b[i] if i < len(b) else None for i in chunk]
        tile_caps += [None] * ncol
        tile_caps += [captions[i] if captions is not None and i < len(captions) else None for i in chunk]
        labels += ["original", "reconstruction"]
    nrows = len(labels)
    extra = 0.25 if captions is not None else 0.0
    fig = new_figure(figsize=(ncol * _TILE_IN + 1.2, nrows * (_TILE_IN + extra) + (0.4 if title else 0.0)))
    ax = fig.add_subplot()
    _draw_tiles(ax, tiles, ncol, captions=tile_caps if captions is not None else None, row_labels=labels)
    if title:
        ax.set_title(title)
    return fig


def loss_curves(
    history: Sequence[Mapping[str, Any]],
    quantities: Sequence[str] = ("total", "recon", "kl", "mse", "psnr", "ssim"),
    prefixes: tuple[str, str] = ("train_", "val_"),
    title: str | None = None,
) -> Figure:
    """One panel per quantity present in ``history`` with train and validation lines against epoch.

    ``history`` is a list of per-epoch dicts (or a DataFrame); quantity ``q`` is read
    from keys ``train_q`` and ``val_q`` (see ``prefixes``); ``epoch`` gives the x axis
    (1, 2, ... if absent). Missing or None values are skipped.
    """
    if hasattr(history, "to_dict"):
        history = history.to_dict("records")
    rows = list(history)
    if not rows:
        raise ValueError("history: empty; expected a list of per-epoch dicts")
    xs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    present = [q for q in quantities if any(r.get(p + q) is not None for r in rows for p in prefixes)]
    if not present:
        raise ValueError(f"history: none of the keys for {list(quantities)} found; keys are {sorted(rows[0])}")
    ncols = min(3, len(present))
    nrows = -(-len(present) // ncols)
    fig = new_figure(figsize=(4.0 * ncols, 3.0 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = sns.color_palette(PALETTE)
    for ax, q in zip(axes, present):
        for color, prefix, name in zip(colors, prefixes, ("train", "validation")):
            pts = [(x, r[prefix + q]) for x, r in zip(xs, rows) if r.get(prefix + q) is not None]
            if pts:
                px, py = zip(*pts)
                ax.plot(px, py, marker="o" if len(pts) < 30 else None, ms=3, color=color, label=name)
        ax.set_title(_PANEL_TITLES.get(q, q))
        ax.set_xlabel("epoch")
        ax.legend()
    for ax in axes[len(present) :]:
        fig.delaxes(ax)
    if title:
        fig.suptitle(title)
    return fig


def latent_scatter(
    z: Any,
    labels: Any,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    s: float = 4.0,
    alpha: float = 0.6,
) -> Figure:
    """2-D latent codes coloured by class; class k always gets tab10 colour k (stable across figures)."""
    z = z.detach().cpu().numpy() if isinstance(z, torch.Tensor) else np.asarray(z)
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if z.ndim != 2 or z.shape[1] != 2 or labels.shape != (len(z),):
        raise ValueError(f"z {z.shape}, labels {labels.shape}; expected z (N, 2) and labels (N,)")
    fig, ax = _new_axes(ax, (6.0, 5.0))
    colors = sns.color_palette(PALETTE, 10)
    for k in np.unique(labels):
        name = class_names[int(k)] if class_names is not None else str(int(k))
        m = labels == k
        ax.scatter(z[m, 0], z[m, 1], s=s, alpha=alpha, color=colors[int(k) % 10], label=name, linewidths=0)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    if title:
        ax.set_title(title)
    return fig


def manifold(
    decode_fn: Callable[[torch.Tensor], torch.Tensor],
    n: int = 20,
    latent_dim: int = 2,
    digit_size: int = 28,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Decode an n x n grid of Gaussian quantiles (ppf of linspace(0.05, 0.95, n)) in z[0], z[1].

    Other latent dims are 0. Column j has z[0] = grid[j]; row i (top to bottom) has
    z[1] = grid[n - 1 - i], so z[1] grows upwards. ``decode_fn`` gets one (n*n, latent_dim)
    float32 tensor and returns (n*n, 1, digit_size, digit_size) probabilities.
    """
    if latent_dim < 2:
        raise ValueError(f"latent_dim: {latent_dim}; expected >= 2")
    grid = norm.ppf(np.linspace(0.05, 0.95, n))
    zx, zy = np.meshgrid(grid, grid[::-1])  # zy[i, j] = grid[n-1-i]
    z = torch.zeros(n * n, latent_dim, dtype=torch.float32)
    z[:, 0] = torch.from_numpy(zx.ravel()).float()
    z[:, 1] = torch.from_numpy(zy.ravel()).float()
    with torch.no_grad():
        out = decode_fn(z)
    imgs = _to_numpy_images(out)
    if imgs.shape != (n * n, digit_size, digit_size):
        raise ValueError(f"decode_fn returned {imgs.shape}; expected ({n * n}, 1, {digit_size}, {digit_size})")
    mosaic = imgs.reshape(n, n, digit_size, digit_size).transpose(0, 2, 1, 3).reshape(n * digit_size, n * digit_size)
    fig, ax = _new_axes(ax, (7.0, 7.0))
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.grid(False)
    step = max(1, n // 10)
    ticks = np.arange(0, n, step)
    centers = ticks * digit_size + (digit_size - 1) / 2
    ax.set_xticks(centers, [f"{grid[j]:.2f}" for j in ticks], rotation=90, fontsize=8)
    ax.set_yticks(centers, [f"{grid[n - 1 - i]:.2f}" for i in ticks], fontsize=8)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    if title:
        ax.set_title(title)
    return fig


def save_fig(fig: Figure, path: str | os.PathLike, author: str | None = None, dpi: int = 120) -> Path:
    """Write ``fig`` atomically as PNG (optional small grey author watermark), close it, return the Path."""
    path = Path(path)
    try:
        if author:
            fig.text(0.995, 0.005, author, ha="right", va="bottom", fontsize=7, color="0.55", alpha=0.8)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        if "matplotlib.pyplot" in sys.modules:  # only pyplot-made figures need closing
            sys.modules["matplotlib.pyplot"].close(fig)
    return path


def fig_to_array(fig: Figure) -> np.ndarray:
    """Render ``fig`` at its own size and dpi -> (H, W, 3) uint8 RGB (e.g. a GIF frame)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_gif(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 5, loop: int = 0) -> Path:
    """Write (H, W, 3) uint8 frames as a GIF (loop=0: forever) atomically; return the Path.

    Frames must share one shape. Pillow merges identical consecutive frames into
    one longer frame, so the file may hold fewer frames with the same playback.
    """
    if len(frames) == 0:
        raise ValueError("frames: empty; expected at least one (H, W, 3) uint8 frame")
    shapes = {np.shape(f) for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames: shapes {sorted(shapes)}; expected all frames the same (H, W, 3)")
    stack = np.stack([np.asarray(f) for f in frames])
    if stack.dtype != np.uint8 or stack.ndim != 4 or stack.shape[-1] != 3:
        raise ValueError(f"frames: {stack.dtype} {stack.shape[1:]}; expected uint8 (H, W, 3)")
    import imageio.v3 as iio

    path = Path(path)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, stack, extension=".gif", duration=1000.0 / fps, loop=loop)
    return path
