"""Training GIFs: frames composed from a run's snapshots (no retraining) or from its final model.

A run trained with ``snapshot_n`` keeps ``run.snapshots`` (see ``vaelib.runs``): the test indices
followed through training, the step and epoch of each snapshot, the posterior means ``mu``
(T, n, z) and 8 reconstructions ``recon`` (T, 8, 1, 28, 28) uint8. From these:

- ``reconstruction_frames``: the same test images over their reconstructions, one frame per snapshot;
- ``latent_frames``: the test latents coloured by class; 2-D as they are, larger latents projected
  on the two principal axes of a PCA fitted once on the *final* latents, so axes stay fixed;
- ``beta_frames``: the β-sweep frame, latent scatter left and originals over reconstructions right;
- ``traversal_frames``: from the final model, a loop through a 2-D latent space, or in more
  dimensions each dimension swept around test images' μ.

Each ``*_gif(run, path, ...)`` writes a looping GIF with ``plots.write_gif`` and returns its path;
drawing uses ``vaelib.plots``. ``gif_info`` reads a GIF back (frames, duration, loop, size).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from . import plots

__all__ = ["frame_indices", "latent_coords", "reconstruction_frames", "latent_frames", "beta_frames",
           "traversal_frames", "manifold_loop_frames", "reconstruction_gif", "latent_gif", "beta_gif",
           "traversal_gif", "write", "gif_info", "preview"]

_DPI = 80  # frame resolution: small files, still readable


def _render(fig: Figure) -> np.ndarray:
    fig.set_dpi(_DPI)
    return plots.fig_to_array(fig)


def _check_snapshots(snapshots: dict | None) -> dict:
    if not snapshots or "mu" not in snapshots or "recon" not in snapshots:
        raise ValueError("snapshots: none; expected a run trained with snapshot_n > 0 (run.snapshots)")
    return snapshots


def frame_indices(n: int, max_frames: int | None = None) -> list[int]:
    """Indices of ``n`` snapshots thinned evenly to at most ``max_frames`` (first and last kept)."""
    if n < 1:
        raise ValueError("snapshots: empty; expected at least one")
    if max_frames is None or n <= max_frames:
        return list(range(n))
    if max_frames < 2:
        return [n - 1]
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, max_frames)})


def _stamp(snapshots: dict, t: int) -> str:
    return f"epoch {int(snapshots['epoch'][t])} · step {int(snapshots['step'][t])}"


def latent_coords(mu: Any) -> tuple[np.ndarray, str, str, dict]:
    """(T, n, z) latents → (T, n, 2) plot coordinates, axis labels and info.

    2-D latents are returned as they are. Larger ones are projected on the first two principal
    axes of a PCA fitted once on the last snapshot (the final latents), the same for every frame.
    """
    mu = mu.detach().cpu().numpy() if isinstance(mu, torch.Tensor) else np.asarray(mu)
    if mu.ndim != 3 or mu.shape[-1] < 1:
        raise ValueError(f"mu: shape {mu.shape}; expected (T, n, z)")
    z = mu.shape[-1]
    if z == 1:
        pad = np.zeros(mu.shape[:-1] + (1,), mu.dtype)
        return np.concatenate([mu, pad], -1), "z[0]", "(none)", {"projection": "none"}
    if z == 2:
        return mu.astype(np.float64), "z[0]", "z[1]", {"projection": "none"}
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(mu[-1])
    coords = pca.transform(mu.reshape(-1, z)).reshape(mu.shape[0], mu.shape[1], 2)
    var = pca.explained_variance_ratio_
    return (coords, f"PC1 of final μ ({100 * var[0]:.0f} % var.)", f"PC2 of final μ ({100 * var[1]:.0f} % var.)",
            {"projection": "pca", "explained_variance_ratio": var.tolist()})


def _limits(coords: np.ndarray, q: float = 0.5) -> tuple[tuple[float, float], tuple[float, float]]:
    """Fixed axis limits covering the central (100 - 2q) % of the points of every frame."""
    lo = np.percentile(coords, q, axis=1).min(0)
    hi = np.percentile(coords, 100 - q, axis=1).max(0)
    pad = 0.06 * np.maximum(hi - lo, 1e-3)
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def _scatter(ax, xy, labels, class_names, lims, xlabel, ylabel, title=None):
    plots.latent_scatter(xy, labels, class_names, ax=ax, title=title, s=6.0, alpha=0.7)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def reconstruction_frames(snapshots: dict, originals: Any, title: str = "",
                          max_frames: int | None = None) -> list[np.ndarray]:
    """One frame per snapshot: the snapshot's fixed test images over their reconstructions from μ."""
    snapshots = _check_snapshots(snapshots)
    recon = snapshots["recon"].float() / 255.0
    if tuple(originals.shape) != tuple(recon.shape[1:]):
        raise ValueError(f"originals: shape {tuple(originals.shape)}; expected {tuple(recon.shape[1:])}")
    frames = []
    for t in frame_indices(len(recon), max_frames):
        fig = plots.recon_rows(originals, recon[t], title=f"{title} · {_stamp(snapshots, t)}".strip(" ·"))
        frames.append(_render(fig))
    return frames


def latent_frames(snapshots: dict, labels: Any, class_names: Sequence[str] | None = None, title: str = "",
                  max_frames: int | None = None) -> list[np.ndarray]:
    """One frame per snapshot: the followed test images' μ coloured by class, on fixed axes
    (PCA fitted once on the final latents when z > 2)."""
    snapshots = _check_snapshots(snapshots)
    coords, xl, yl, _ = latent_coords(snapshots["mu"])
    labels = np.asarray(labels)
    if labels.shape != (coords.shape[1],):
        raise ValueError(f"labels: shape {labels.shape}; expected ({coords.shape[1]},), one per followed image")
    lims = _limits(coords)
    frames = []
    for t in frame_indices(len(coords), max_frames):
        fig = plots.new_figure(figsize=(6.4, 5.0))
        _scatter(fig.add_subplot(), coords[t], labels, class_names, lims, xl, yl,
                 title=f"{title} · {_stamp(snapshots, t)}".strip(" ·"))
        frames.append(_render(fig))
    return frames


def beta_frames(snapshots: dict, labels: Any, originals: Any, class_names: Sequence[str] | None = None,
                title: str = "", max_frames: int | None = None) -> list[np.ndarray]:
    """The β-sweep frame: left the 2-D latent scatter of the followed test images (fixed axes),
    right a strip of originals over their reconstructions at that snapshot."""
    snapshots = _check_snapshots(snapshots)
    coords, xl, yl, _ = latent_coords(snapshots["mu"])
    labels = np.asarray(labels)
    recon = snapshots["recon"].float() / 255.0
    originals = torch.as_tensor(originals, dtype=torch.float32)
    if tuple(originals.shape) != tuple(recon.shape[1:]):
        raise ValueError(f"originals: shape {tuple(originals.shape)}; expected {tuple(recon.shape[1:])}")
    lims = _limits(coords)
    k = len(originals)
    cols = 4 if k % 4 == 0 and k > 4 else k
    frames = []
    for t in frame_indices(len(coords), max_frames):
        fig = plots.new_figure(figsize=(10.5, 4.4))
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1.0])
        _scatter(left, coords[t], labels, class_names, lims, xl, yl, title="test images' μ")
        strip = torch.cat([torch.cat([originals[i:i + cols], recon[t][i:i + cols]]) for i in range(0, k, cols)])
        plots.image_grid(strip, nrow=cols, ax=right, title="originals over reconstructions (from μ)",
                         row_labels=["original", "reconstruction"] * (k // cols))
        fig.suptitle(f"{title} · {_stamp(snapshots, t)}".strip(" ·"))
        frames.append(_render(fig))
    return frames


def _ping_pong(steps: int, span: float) -> np.ndarray:
    """Offsets −span → +span → −span (``2 * steps - 2`` values, so the loop has no repeated frame)."""
    up = np.linspace(-span, span, max(2, steps))
    return np.concatenate([up, up[-2:0:-1]])


@torch.no_grad()
def traversal_frames(model, mu: torch.Tensor, steps: int = 20, span: float = 3.0,
                     row_labels: Sequence[str] | None = None, title: str = "") -> list[np.ndarray]:
    """Each latent dimension swept around test images' μ: frame t decodes μ_i + a_t·e_d for every
    image i (rows) and dimension d (columns), with a_t going −span → span → −span (prior σ units)."""
    mu = torch.as_tensor(mu, dtype=torch.float32).cpu()
    if mu.ndim != 2 or mu.shape[1] != model.latent_dim:
        raise ValueError(f"mu: shape {tuple(mu.shape)}; expected (n, {model.latent_dim})")
    n, zdim = mu.shape
    eye = torch.eye(zdim)
    frames = []
    for a in _ping_pong(steps, span):
        z = (mu[:, None, :] + float(a) * eye[None]).reshape(-1, zdim)
        imgs = model.generate(z).cpu()
        fig = plots.new_figure(figsize=(max(5.0, 0.6 * zdim + 1.6), 0.6 * n + 1.0))
        plots.image_grid(imgs, nrow=zdim, row_labels=row_labels, ax=fig.add_subplot(),
                         title=f"{title}\ncolumn d decodes μ + ({a:+.2f})·e_d".strip())
        frames.append(_render(fig))
    return frames


@torch.no_grad()
def manifold_loop_frames(model, z_test: Any, labels: Any, class_names: Sequence[str] | None = None,
                         steps: int = 40, radius: float = 1.5, title: str = "") -> list[np.ndarray]:
    """A 2-D latent space traversed along a circle of ``radius`` (prior σ units) around the origin:
    left the test latents with the path and the current point, right the decoded image."""
    if model.latent_dim != 2:
        raise ValueError(f"model: latent_dim {model.latent_dim}; expected 2 for a manifold loop")
    z_test = np.asarray(z_test.cpu() if isinstance(z_test, torch.Tensor) else z_test, dtype=np.float64)
    theta = np.linspace(0, 2 * np.pi, max(2, steps), endpoint=False)
    path = np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)
    imgs = model.generate(torch.as_tensor(path, dtype=torch.float32)).cpu()
    (x0, x1), (y0, y1) = _limits(z_test[None])
    lims = ((min(x0, -1.1 * radius), max(x1, 1.1 * radius)), (min(y0, -1.1 * radius), max(y1, 1.1 * radius)))
    frames = []
    for t in range(len(path)):
        fig = plots.new_figure(figsize=(9.0, 4.4))
        left, right = fig.subplots(1, 2, width_ratios=[1.4, 1.0])
        _scatter(left, z_test, np.asarray(labels), class_names, lims, "z[0]", "z[1]", title="test μ and the path")
        left.plot(np.r_[path[:, 0], path[0, 0]], np.r_[path[:, 1], path[0, 1]], color="0.3", lw=1, ls="--")
        left.plot(path[t, 0], path[t, 1], marker="*", ms=16, color="crimson", mec="black")
        plots.image_grid(imgs[t:t + 1], nrow=1, ax=right, title=f"decoded z = ({path[t, 0]:+.2f}, {path[t, 1]:+.2f})")
        if title:
            fig.suptitle(title)
        frames.append(_render(fig))
    return frames


def write(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 5, hold_s: float = 1.5) -> Path:
    """Write a GIF that loops forever, holding the last frame ``hold_s`` seconds (Pillow merges the
    repeated frames into one, so the hold costs no size)."""
    frames = list(frames)
    frames += [frames[-1]] * int(round(hold_s * fps))
    return plots.write_gif(frames, path, fps=fps, loop=0)


GIF_CACHE_VERSION = 1  # bump when frame drawing changes


def _cached(run, path: str | os.PathLike, key: dict, build) -> Path:
    """Copy the GIF rendered earlier for this run and ``key`` (kept in ``<run>/gifs/``) to ``path``,
    rendering it with ``build(target)`` first when missing: a re-run of the report redraws nothing."""
    import hashlib
    import json
    import shutil

    from .io import atomic_path

    digest = hashlib.sha256(json.dumps({**key, "v": GIF_CACHE_VERSION}, sort_keys=True, default=str).encode())
    cached = Path(run.path) / "gifs" / f"{Path(path).stem}-{digest.hexdigest()[:12]}.gif"
    if not cached.exists():
        build(cached)
    with atomic_path(path) as tmp:
        shutil.copyfile(cached, tmp)
    return Path(path)


def _originals(run) -> torch.Tensor:
    from .data import to_float

    idx = run.snapshots["index"][: run.snapshots["recon"].shape[1]]
    return to_float(run.data.test.images[idx])


def _followed_labels(run) -> np.ndarray:
    return run.data.test.labels[run.snapshots["index"]].numpy()


def reconstruction_gif(run, path: str | os.PathLike, fps: float = 4, title: str = "",
                       max_frames: int | None = None) -> Path:
    """The run's fixed test images reconstructed at every snapshot (e.g. every epoch)."""
    _check_snapshots(run.snapshots)
    return _cached(run, path, dict(kind="reconstruction", fps=fps, title=title, max_frames=max_frames),
                   lambda target: write(reconstruction_frames(run.snapshots, _originals(run), title, max_frames),
                                        target, fps))


def latent_gif(run, path: str | os.PathLike, fps: float = 4, title: str = "",
               max_frames: int | None = None) -> Path:
    """The run's followed test latents at every snapshot (PCA of the final latents when z > 2)."""
    _check_snapshots(run.snapshots)
    return _cached(run, path, dict(kind="latent", fps=fps, title=title, max_frames=max_frames),
                   lambda target: write(latent_frames(run.snapshots, _followed_labels(run), run.data.test.classes,
                                                      title, max_frames), target, fps))


def beta_gif(run, path: str | os.PathLike, fps: float = 10, title: str | None = None,
             max_frames: int | None = None) -> Path:
    """The β-sweep training GIF of ``run`` (scatter left, originals over reconstructions right)."""
    _check_snapshots(run.snapshots)
    title = f"β = {run.config.beta:g}" if title is None else title
    return _cached(run, path, dict(kind="beta", fps=fps, title=title, max_frames=max_frames),
                   lambda target: write(beta_frames(run.snapshots, _followed_labels(run), _originals(run),
                                                    run.data.test.classes, title, max_frames), target, fps))


def traversal_gif(run, path: str | os.PathLike, fps: float = 8, steps: int = 40, n_images: int = 4,
                  span: float = 3.0, radius: float = 1.5, title: str = "") -> Path:
    """A latent traversal of the run's final model: a loop through the manifold when z = 2, else each
    dimension swept around the μ of ``n_images`` test images (one per class, round robin)."""
    key = dict(kind="traversal", fps=fps, steps=steps, n_images=n_images, span=span, radius=radius, title=title)
    return _cached(run, path, key, lambda target: _traversal(run, target, fps, steps, n_images, span, radius, title))


def _traversal(run, path, fps, steps, n_images, span, radius, title) -> Path:
    from .data import to_float
    from .runs import snapshot_index

    test = run.data.test
    if run.model.latent_dim == 2:
        z = run.model.latents(to_float(test.images))
        frames = manifold_loop_frames(run.model, z, test.labels.numpy(), test.classes, steps, radius, title)
    else:
        idx = snapshot_index(test, len(test))[:n_images]
        mu = run.model.latents(to_float(test.images[idx]))
        labels = [f"{test.classes[int(test.labels[i])]} #{i}" for i in idx]
        frames = traversal_frames(run.model, mu, max(2, steps // 2 + 1), span, labels, title)
    return write(frames, path, fps, hold_s=0)


def gif_info(path: str | os.PathLike) -> dict:
    """frames, seconds per loop, loop (0 = forever), width, height and bytes of a GIF file."""
    from PIL import Image

    path = Path(path)
    with Image.open(path) as im:
        n, total = 0, 0
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            n += 1
            total += im.info.get("duration", 0)
        return {"file": path.name, "frames": n, "seconds": total / 1000.0, "loop": im.info.get("loop"),
                "width": im.width, "height": im.height, "bytes": path.stat().st_size}


def preview(paths: Sequence[str | os.PathLike], where: Sequence[float] = (0.0, 1.0),
            labels: Sequence[str] | None = None) -> Figure:
    """A still of GIFs for pages that do not play them: for each GIF (a row), the frames at the
    given fractions of its length (0 = first, 1 = last)."""
    from PIL import Image

    rows = []
    for path in paths:
        with Image.open(path) as im:
            n = getattr(im, "n_frames", 1)
            last = n - 1  # Pillow stores the final hold as one long frame
            picks = []
            for w in where:
                im.seek(int(round(w * last)))
                picks.append(np.asarray(im.convert("RGB")))
        rows.append(picks)
    h, w = rows[0][0].shape[:2]
    fig = plots.new_figure(figsize=(len(where) * w / 100, len(rows) * h / 100 + 0.3 * len(rows)))
    axes = fig.subplots(len(rows), len(where), squeeze=False)
    for r, picks in enumerate(rows):
        for c, img in enumerate(picks):
            ax = axes[r, c]
            ax.imshow(img)
            ax.set_axis_off()
            name = labels[r] if labels is not None else Path(paths[r]).name
            at = "first" if where[c] == 0 else "last" if where[c] == 1 else f"{where[c]:.0%}"
            ax.set_title(f"{name} · {at} frame", fontsize=9)
    return fig
