"""The run cache: a config → ``runs/<name>-<hash>/`` holding config, weights, history, metrics.

``train_or_load(cfg)`` trains once and reuses the stored run whenever the same config (and the
same data: the source's SHA-256 is part of the hash) is asked for again. An interrupted training
resumes from its checkpoint in ``runs/.partial/``.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from .data import ImageSet, filter_classes, load_dataset, take, to_float, train_val_split
from .errors import InputError
from .io import atomic_write, dataclass_from_dict, write_json
from .models import VAE, build_model
from .paths import runs_dir
from .seeding import seed_everything
from .train import Callback, EvalEachEpoch, SnapshotEvery, evaluate, fit, gradient_method, resolve_device

CACHE_VERSION = 3  # bump when a change in code changes what a stored run would contain
# 2: n_test, eval_n (per-epoch train/test evaluation); snapshot images in class round-robin order
# 3: fused Adam


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a trained VAE. Sizes only; the code path is the same for all."""

    name: str
    dataset: str = "mnist"
    classes: tuple[int, ...] | None = None
    arch: str = "mlp"
    latent_dim: int = 2
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    likelihood: str = "bernoulli"
    seed: int = 0
    val_fraction: float = 0.1
    n_train: int | None = None  # stratified subset of the training split (None = all)
    n_test: int | None = None  # stratified subset of the test split (None = all)
    snapshot_every: int = 0  # optimiser steps between training snapshots (0 = one per epoch)
    snapshot_n: int = 0  # test images encoded (and 8 reconstructed) per snapshot (0 = no snapshots)
    eval_n: int = 0  # per epoch: −ELBO and MSE/PSNR/SSIM of eval_n fixed train and test images (0 = off)

    def __post_init__(self):
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return dataclass_from_dict(cls, d, "run config")


@dataclass
class Run:
    """A trained (or loaded) run: model in eval mode, per-epoch history, test metrics, data."""

    config: RunConfig
    path: Path
    model: VAE
    history: list[dict]
    metrics: dict
    data: SimpleNamespace
    snapshots: dict | None = None
    cached: bool = False
    info: dict = field(default_factory=dict)


def load_run_data(cfg: RunConfig) -> SimpleNamespace:
    """train / val / test ImageSets for ``cfg`` (deterministic in the config's seed)."""
    train = load_dataset(cfg.dataset, "train")
    test = load_dataset(cfg.dataset, "test")
    if cfg.classes is not None:
        train, test = filter_classes(train, cfg.classes), filter_classes(test, cfg.classes)
    train = take(train, cfg.n_train, seed=cfg.seed)
    test = take(test, cfg.n_test, seed=cfg.seed)
    train, val = train_val_split(train, cfg.val_fraction, seed=cfg.seed)
    return SimpleNamespace(train=train, val=val, test=test)


def snapshot_index(test: ImageSet, n: int) -> list[int]:
    """The fixed test images followed through training: a class-stratified subset of ``n``, in
    class round-robin order (so the first few, whose reconstructions are kept, span the classes)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(test))
    if n < len(test):
        strat = None if test.labels is None else test.labels.numpy()
        idx = np.sort(train_test_split(idx, test_size=n, random_state=0, stratify=strat)[1])
    if test.labels is None:
        return idx.tolist()
    labels = test.labels.numpy()[idx]
    rank = np.zeros(len(idx), dtype=np.int64)  # position of each image within its class
    for c in np.unique(labels):
        rank[labels == c] = np.arange(int((labels == c).sum()))
    return idx[np.lexsort((labels, rank))].tolist()


def cache_key(cfg: RunConfig, data: SimpleNamespace) -> str:
    """SHA-256 over the config, the data's identity and the cache version."""
    ident = {"config": cfg.to_dict(), "version": CACHE_VERSION,
             "data": {s: getattr(data, s).provenance.get("sha256") for s in ("train", "test")},
             "source": data.train.provenance.get("source")}
    if gradient_method(cfg.arch, cfg.likelihood) != "autograd":
        ident["gradients"] = gradient_method(cfg.arch, cfg.likelihood)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def run_path(cfg: RunConfig, data: SimpleNamespace) -> Path:
    return runs_dir() / f"{cfg.name}-{cache_key(cfg, data)[:12]}"


def save_model(model: VAE, path: str | Path, extra: dict | None = None) -> None:
    """Weights plus what rebuilds the model, loadable with ``torch.load(weights_only=True)``."""
    with atomic_write(path) as f:
        torch.save({"model_config": model.config(), "state_dict": model.state_dict(), **(extra or {})}, f)


def load_model(path: str | Path, device: str | torch.device | None = "cpu") -> tuple[VAE, dict]:
    """Rebuild a model saved by ``save_model``; never executes code from the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected a model file written by vaelib")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise InputError(f"{path}: unreadable model file ({type(e).__name__}); expected a vaelib .pth") from None
    if not isinstance(blob, dict) or "model_config" not in blob or "state_dict" not in blob:
        raise InputError(f"{path}: not a vaelib model; expected keys 'model_config' and 'state_dict'")
    model = build_model(**blob["model_config"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise InputError(f"{path}: weights do not match {blob['model_config']}; ({str(e).splitlines()[0]})") from None
    model.to(resolve_device(device)).eval()
    return model, blob


def _snapshot_fn(x: torch.Tensor):
    def capture(model: VAE) -> dict:
        mu = model.encode(x.to(model.device))[0]
        recon = torch.sigmoid(model.decode(mu[:8]))
        return {"mu": mu.float().cpu(), "recon": (recon * 255).round().to(torch.uint8).cpu()}
    return capture


class _KeepSnapshots(Callback):
    """Saves a SnapshotEvery's list beside the checkpoint after each epoch and restores it when
    training resumes, so an interrupted run still ends with every snapshot."""

    def __init__(self, snap: SnapshotEvery, path: Path):
        self.snap, self.path = snap, path

    def on_train_begin(self, state):
        if state.step > 0 and self.path.exists():  # resuming: keep what the checkpoint covers
            kept = torch.load(self.path, map_location="cpu", weights_only=True)
            self.snap.snapshots[:0] = [s for s in kept if s["epoch"] <= state.epoch]

    def on_epoch_end(self, state):
        with atomic_write(self.path) as f:
            torch.save(self.snap.snapshots, f)


def snapshot_callbacks(cfg: RunConfig, data: SimpleNamespace, folder: Path) -> tuple[list[Callback], torch.Tensor]:
    """The callbacks that take ``cfg``'s training snapshots (the first is the ``SnapshotEvery``),
    keeping them in ``folder`` across an interrupted training; and the followed test indices."""
    idx = torch.as_tensor(snapshot_index(data.test, min(cfg.snapshot_n, len(data.test))))
    snap = SnapshotEvery(cfg.snapshot_every, _snapshot_fn(to_float(data.test.images[idx])),
                         at_start=True, at_epoch_end=cfg.snapshot_every == 0)
    return [snap, _KeepSnapshots(snap, Path(folder) / "snapshots-partial.pt")], idx


def train_or_load(cfg: RunConfig, device: str | torch.device | None = None,
                  progress: bool | None = None) -> Run:
    """The run for ``cfg``: loaded from ``runs/`` when present, else trained and stored."""
    data = load_run_data(cfg)
    path = run_path(cfg, data)
    if (path / "model.pt").exists():
        return _load(cfg, path, data, device)
    partial = path.parent / ".partial" / path.name
    partial.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    model = build_model(cfg.arch, cfg.latent_dim)
    callbacks = []
    if cfg.snapshot_n:
        callbacks, idx = snapshot_callbacks(cfg, data, partial)
        snap = callbacks[0]
    if cfg.eval_n:
        sets = {"train_eval_": take(data.train, cfg.eval_n, seed=cfg.seed),
                "test_": take(data.test, cfg.eval_n, seed=cfg.seed)}
        callbacks.append(EvalEachEpoch({k: to_float(v.images) for k, v in sets.items()}, beta=cfg.beta,
                                       likelihood=cfg.likelihood, seed=cfg.seed + 3))
    t0 = time.perf_counter()
    history = fit(model, to_float(data.train.images), to_float(data.val.images), epochs=cfg.epochs,
                  batch_size=cfg.batch_size, lr=cfg.lr, beta=cfg.beta, likelihood=cfg.likelihood,
                  seed=cfg.seed, device=device, callbacks=callbacks, val_metrics=True,
                  checkpoint_path=partial / "checkpoint.pt", progress=progress)
    seconds = time.perf_counter() - t0
    metrics = test_metrics(model, data.test, cfg)
    metrics.update(train_seconds=seconds, device=str(next(model.parameters()).device),
                   data_source=data.train.provenance.get("source"), n_train=len(data.train),
                   n_val=len(data.val), n_test=len(data.test))
    save_model(model, partial / "model.pt")
    write_json(partial / "config.json", cfg.to_dict())
    write_json(partial / "history.json", history)
    write_json(partial / "metrics.json", metrics)
    if cfg.snapshot_n:
        snaps = snap.snapshots
        with atomic_write(partial / "snapshots.pt") as f:
            torch.save({"index": idx, "step": torch.tensor([s["step"] for s in snaps]),
                        "epoch": torch.tensor([s["epoch"] for s in snaps]),
                        "mu": torch.stack([s["value"]["mu"] for s in snaps]),
                        "recon": torch.stack([s["value"]["recon"] for s in snaps])}, f)
    (partial / "checkpoint.pt").unlink(missing_ok=True)
    (partial / "snapshots-partial.pt").unlink(missing_ok=True)
    if path.exists():
        shutil.rmtree(path)
    partial.replace(path)
    run = _load(cfg, path, data, device)
    run.cached = False
    return run


def test_metrics(model: VAE, test: ImageSet, cfg: RunConfig) -> dict:
    """Test-set −ELBO terms (z sampled, fixed seed) and MSE/PSNR/SSIM of reconstructions from μ."""
    ev = evaluate(model, to_float(test.images), beta=cfg.beta, likelihood=cfg.likelihood,
                  seed=cfg.seed + 3, image_metrics=True)
    return {f"test_{k}": v for k, v in ev.items()}


def _load(cfg: RunConfig, path: Path, data: SimpleNamespace, device) -> Run:
    model, _ = load_model(path / "model.pt", device)
    history = json.loads((path / "history.json").read_text())
    metrics = json.loads((path / "metrics.json").read_text())
    snaps = None
    if (path / "snapshots.pt").exists():
        snaps = torch.load(path / "snapshots.pt", map_location="cpu", weights_only=True)
    return Run(cfg, path, model, history, metrics, data, snaps, cached=True)
