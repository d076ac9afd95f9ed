"""Image-quality metrics batched in torch (CPU or CUDA), and the silhouette of latent codes.

Images are float (N, 1, H, W) or (N, H, W) tensors in [0, data_range]; per-image metrics return an (N,)
float32 tensor on the input's device. SSIM is scikit-image's ``structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False)``: 11-tap Gaussian window, K1=0.01, K2=0.03, valid region only.
``bootstrap_ci``: a confidence interval of any score over items (e.g. accuracy over test images), kept in the
result store when the statistic has a stable name.
"""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import store
from .errors import InputError

__all__ = ["mse", "psnr", "ssim", "sharpness", "diversity", "silhouette", "bootstrap_ci", "seed_summary", "apart"]

_SSIM_SIGMA, _SSIM_TRUNCATE, _SSIM_K1, _SSIM_K2 = 1.5, 3.5, 0.01, 0.03
_LAPLACIAN = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]


def _as_batch(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Return ``x`` as an (N, 1, H, W) floating tensor; raise ValueError otherwise."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: got {type(x).__name__}; expected a torch.Tensor")
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{name}: shape {tuple(x.shape)}; expected (N, 1, H, W) or (N, H, W)")
    if not x.is_floating_point():
        raise ValueError(f"{name}: dtype {x.dtype}; expected float images in [0, data_range]")
    return x


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two image batches of equal shape; return them as (N, 1, H, W)."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError("x, y: expected torch.Tensor images")
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: x {tuple(x.shape)} vs y {tuple(y.shape)}; expected equal shapes")
    return _as_batch(x, "x"), _as_batch(y, "y")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image -> (N,)."""
    x, y = _pair(x, y)
    return (x.double() - y.double()).square().flatten(1).mean(1).float()


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image -> (N,); +inf where the images are equal."""
    return (10.0 * torch.log10(data_range**2 / mse(x, y).double())).float()  # x / 0 = inf


def _gaussian_taps(device: torch.device) -> torch.Tensor:
    """1-D Gaussian kernel as scipy.ndimage builds it (11 taps for sigma 1.5, truncate 3.5)."""
    radius = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    g = torch.exp(-0.5 * (t / _SSIM_SIGMA) ** 2)
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Structural similarity per image -> (N,), matching scikit-image (see module docstring)."""
    x, y = _pair(x, y)
    g = _gaussian_taps(x.device)
    k = g.numel()
    if x.shape[-1] < k or x.shape[-2] < k:
        raise ValueError(f"x: shape {tuple(x.shape)}; expected images of at least {k}x{k} pixels for SSIM")
    x, y = x.double(), y.double()
    # One batched pass over the five maps; separable window, valid region only.
    maps = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    maps = F.conv2d(maps, g.view(1, 1, k, 1).repeat(5, 1, 1, 1), groups=5)
    maps = F.conv2d(maps, g.view(1, 1, 1, k).repeat(5, 1, 1, 1), groups=5)
    ux, uy, uxx, uyy, uxy = maps.unbind(1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).float()


def sharpness(x: torch.Tensor) -> torch.Tensor:
    """Variance of the 3x3 Laplacian (cv2.Laplacian, ksize=1) over the valid region -> (N,)."""
    x = _as_batch(x).double()
    kernel = torch.tensor(_LAPLACIAN, dtype=torch.float64, device=x.device).view(1, 1, 3, 3)
    lap = F.conv2d(x, kernel).flatten(1)
    return lap.var(dim=1, unbiased=False).float()


def diversity(x: torch.Tensor) -> float:
    """Mean pairwise Euclidean distance between the flattened images (needs N >= 2)."""
    x = _as_batch(x)
    if x.shape[0] < 2:
        raise ValueError(f"x: shape {tuple(x.shape)}; expected at least 2 images for diversity")
    return torch.pdist(x.flatten(1).double()).mean().item()


def silhouette(z: Any, labels: Any, max_n: int = 5000, seed: int = 0) -> float:
    """Silhouette score (scikit-learn, Euclidean) of codes ``z`` (N, d) by class, on at most ``max_n`` seeded points."""
    from sklearn.metrics import silhouette_score

    z, labels = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in (z, labels))
    return float(silhouette_score(z, labels, sample_size=min(max_n, len(z)), random_state=seed))


def bootstrap_ci(statistic: Callable[..., float], *arrays: Any, n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """(low, high): paired bootstrap interval of ``statistic(*arrays)``, e.g. ``(accuracy_score, y_true, y_pred)``:
    items (the entries of 1-D arrays of one length) are resampled together. BCa of ``scipy.stats.bootstrap``: unlike
    the percentile interval it corrects for the skew of scores near 1 and for the bias of resampled ARI (duplicated
    items always agree). Where BCa is undefined (every resample scores the same, e.g. all predictions correct): the
    percentile interval of the same resamples. Kept in the result store, keyed by the arrays, the settings and
    the statistic's name (``_statistic_name``); a lambda or a notebook's own function is computed every time."""
    data = [np.asarray(a) for a in arrays]
    shapes = [a.shape for a in data]
    if not data or any(len(s) != 1 for s in shapes) or len(set(shapes)) > 1 or shapes[0][0] < 2:
        raise InputError(f"arrays: shapes {shapes}; expected one or more 1-D arrays of one length, at least 2 items")
    if not 0 < confidence < 1 or n_resamples < 1:
        raise InputError(f"confidence {confidence}, n_resamples {n_resamples}; expected 0 < confidence < 1, "
                         "n_resamples >= 1")
    name = _statistic_name(statistic)
    compute = lambda: _bootstrap(statistic, data, n_resamples, confidence, seed)
    if name is None:
        return compute()
    key = store.key(_bootstrap, name, data, n_resamples, confidence, seed)
    return tuple(store.compute(key, f"{__name__}.bootstrap_ci", compute)[0])


def _statistic_name(statistic: Callable) -> str | None:
    """What identifies ``statistic`` in a store key: module.qualname with its package's version (vaelib's own: its
    code digest), a partial's arguments too; None (not cached) for a lambda, a local function, or one of a module
    without a version (a notebook's, a script's), whose code may change under the same name."""
    if isinstance(statistic, functools.partial):
        inner = _statistic_name(statistic.func)
        return inner and f"{inner}(*{statistic.args!r}, **{dict(sorted(statistic.keywords.items()))!r})"
    module, name = getattr(statistic, "__module__", None) or "", getattr(statistic, "__qualname__", "<?>")
    package = module.split(".")[0]
    version = store.code_digest(statistic) if package == "vaelib" else getattr(sys.modules.get(package), "__version__", "")
    return f"{module}.{name} {version}" if version and "<" not in name else None


def _bootstrap(statistic: Callable[..., float], data: list[np.ndarray], n_resamples: int, confidence: float,
               seed: int) -> tuple[float, float]:
    from scipy.stats import DegenerateDataWarning, bootstrap

    kw = dict(paired=True, vectorized=False, confidence_level=confidence)
    with warnings.catch_warnings(action="ignore", category=DegenerateDataWarning), np.errstate(invalid="ignore"):
        res = bootstrap(data, statistic, n_resamples=n_resamples, rng=seed, **kw)
    ci = res.confidence_interval
    if np.isnan(ci).any():
        ci = bootstrap(data, statistic, n_resamples=0, bootstrap_result=res, method="percentile",
                       **kw).confidence_interval
    return float(ci.low), float(ci.high)


def seed_summary(df: Any, by: str | list[str], columns: Sequence[str], confidence: float = 0.95) -> Any:
    """Per group of ``by`` (e.g. a latent size, over training seeds) and for each of ``columns``: ``n`` (values),
    ``mean``, ``sd`` and the t-interval ``low``/``high`` of the mean; columns (statistic, column), so that
    ``s["mean"]["loss"][2]`` is group 2's mean loss. With one value in a group the s.d. and the interval are NaN:
    nothing can be called different from it."""
    import pandas as pd
    from scipy.stats import t

    g = df.groupby(by, sort=False)[list(columns)]
    n, mean, sd = g.count(), g.mean(), g.std()
    half = sd * t.ppf((1 + confidence) / 2, n - 1) / np.sqrt(n)
    return pd.concat({"n": n, "mean": mean, "sd": sd, "low": mean - half, "high": mean + half}, axis=1)


def apart(summary: Any, column: str, a: Any, b: Any) -> bool:
    """Whether groups ``a`` and ``b`` of a ``seed_summary`` have non-overlapping intervals for ``column``."""
    lo, hi = summary["low"][column], summary["high"][column]
    return bool(lo[a] > hi[b] or lo[b] > hi[a])
