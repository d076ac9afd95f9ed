"""Training: ``fit()`` (one autograd loop), callbacks, checkpoints with exact resume, and
``train_or_load(RunConfig)``, which keeps every trained run in the result store.

The whole training tensor lives on the device; each epoch draws one permutation and gathers
batches from it (no per-item ``Dataset``/``DataLoader``). Randomness comes from two explicit
generators seeded from ``seed`` (batch order, reparameterisation noise), so a run resumed from a
checkpoint ends bit-identical to an uninterrupted one on the same machine. A checkpoint records the model's
config and the training settings, so that continuing another training (``fit(resume_from=...)``,
``train_or_load(cfg, resume_from=...)``) refuses one written for another model or settings.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import store
from .data import ImageSet, batches, filter_classes, load_dataset, take, to_float, train_val_split
from .errors import InputError
from .losses import adaptive_weight, discriminator_loss, elbo_terms, generator_loss, perceptual_distance
from .metrics import mse, psnr, ssim
from .models import VAE, PatchDiscriminator, build_model, read_torch_file


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def default_device() -> torch.device:
    """cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    return torch.device("mps" if mps is not None and mps.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    return default_device() if device in (None, "auto") else torch.device(device)


PRECISIONS = ("float32", "bfloat16", "auto")


def cpu_has_amx() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX: Linux's `amx_bf16` flag) for oneDNN."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return torch.backends.mkldnn.is_available() and re.search(r"^flags\s*:.*\bamx_bf16\b", flags, re.M) is not None


def resolve_precision(precision: str, device: str | torch.device | None = None) -> str:
    """"auto" → "bfloat16" where ``device`` computes it natively (a CPU with AMX, a CUDA GPU that supports it),
    else "float32"; "float32" and "bfloat16" as they are; anything else is an InputError."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: unknown; expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    device = resolve_device(device)
    native = cpu_has_amx() if device.type == "cpu" else device.type == "cuda" and torch.cuda.is_bf16_supported()
    return "bfloat16" if native else "float32"


def progress_enabled(progress: bool | None = None) -> bool:
    """Progress bars: as asked, else on unless $VAELIB_QUIET or $CI is set."""
    return progress if progress is not None else not (os.environ.get("VAELIB_QUIET") or os.environ.get("CI"))


@dataclass
class TrainState:
    """What callbacks see: the model, position in training and the history so far."""

    model: torch.nn.Module
    epoch: int = 0  # 1-based epoch in progress (or just finished)
    step: int = 0  # optimiser steps so far
    history: list[dict] = field(default_factory=list)


class Callback:
    """Hooks called by ``fit``; ``state``/``restore`` carry a callback's data through checkpoints."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def state(self) -> Any: return None
    def restore(self, saved: Any) -> None: ...


class SnapshotEvery(Callback):
    """``fn(model)`` (eval mode, no_grad) at the start, every ``every`` optimiser steps, and with
    ``every=0`` at the end of each epoch; ``snapshots`` holds ``{"step", "epoch", "value"}`` dicts."""

    def __init__(self, every: int, fn: Callable[[torch.nn.Module], Any]):
        self.every, self.fn, self.snapshots = every, fn, []

    def _take(self, st: TrainState) -> None:
        st.model.eval()
        with torch.no_grad():
            self.snapshots.append({"step": st.step, "epoch": st.epoch, "value": self.fn(st.model)})
        st.model.train()

    def on_train_begin(self, st):
        if st.step == 0:
            self._take(st)

    def on_batch_end(self, st):
        if self.every and st.step % self.every == 0:
            self._take(st)

    def on_epoch_end(self, st):
        if not self.every:
            self._take(st)

    def state(self):
        return self.snapshots

    def restore(self, saved):
        self.snapshots = list(saved)


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, *, batch_size: int = 512, beta: float = 1.0,
             likelihood: str = "bernoulli", seed: int = 0, image_metrics: bool = False,
             y: torch.Tensor | None = None) -> dict[str, float]:
    """Mean −ELBO terms (z sampled with a fixed seed) and, if asked, MSE/PSNR/SSIM of the
    reconstruction from μ, over ``x`` (``y``: labels for a conditional model); touches no global random state."""
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=model.device).manual_seed(seed)
    sums: dict[str, torch.Tensor] = {}
    ys = [None] * len(x) if y is None else batches(y.to(model.device), batch_size)
    for xb, yb in zip(batches(x.to(model.device), batch_size), ys):
        logits, mu, logvar = model(xb, generator=gen, y=yb)
        terms = elbo_terms(logits, xb, mu, logvar, beta, likelihood)
        if image_metrics:
            rec = model.to_pixels(model.decode(mu) if yb is None else model.decode(mu, yb))
            terms.update(mse=mse(rec, xb), psnr=psnr(rec, xb), ssim=ssim(rec, xb))
        for k, v in terms.items():
            sums[k] = sums.get(k, 0) + v.double().sum()
    model.train(was_training)
    return {k: float(v) / len(x) for k, v in sums.items()}


class EvalEachEpoch(Callback):
    """After every epoch, ``<prefix>total/recon/kl/mse/psnr/ssim`` of fixed image sets (prefix →
    float images; ``labels``: prefix → their labels, for a conditional model) go into that epoch's history row.
    Touches no training random state."""

    def __init__(self, sets: dict[str, torch.Tensor], labels: dict[str, torch.Tensor] | None = None,
                 **evaluate_kwargs: Any):
        self.sets, self.labels, self.kwargs = sets, labels or {}, evaluate_kwargs

    def on_epoch_end(self, st):
        for prefix, x in self.sets.items():
            ev = evaluate(st.model, x, image_metrics=True, y=self.labels.get(prefix), **self.kwargs)
            st.history[-1].update({f"{prefix}{k}": v for k, v in ev.items()})


def _read_checkpoint(path: str | Path, expected: dict) -> dict:
    """The training state in ``path``: a checkpoint written by ``fit``, or the one a ``vae train`` model file holds
    under "training_state"; loaded with ``weights_only=True``. InputError naming the file when it is missing,
    unreadable, or written for another model or settings than ``expected`` (model config and settings)."""
    path, what = Path(path), "expected a training checkpoint written by vaelib (fit or `vae train`)"
    saved = read_torch_file(path, what)
    saved = saved.get("training_state", saved) if isinstance(saved, dict) else saved
    if not isinstance(saved, dict) or not {"model_config", "settings", "model", "optimizer", "epoch"} <= set(saved):
        raise InputError(f"{path}: not a training checkpoint; {what}")
    found = {**saved["model_config"], **saved["settings"]}
    diff = [f"{k} {found.get(k)!r} there, {expected.get(k)!r} here" for k in sorted(set(found) | set(expected))
            if found.get(k) != expected.get(k)]
    if diff:
        raise InputError(f"{path}: written for another model or settings ({'; '.join(diff)}); "
                         "expected a checkpoint of this model with these settings")
    return saved


def fit(model: VAE, train_x: torch.Tensor, val_x: torch.Tensor | None = None, *, epochs: int,
        batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0, likelihood: str = "bernoulli",
        seed: int = 0, device: str | torch.device | None = None, callbacks: Sequence[Callback] = (),
        checkpoint_path: str | Path | None = None, val_metrics: bool = False, patience: int = 0,
        progress: bool | None = None, train_y: torch.Tensor | None = None, val_y: torch.Tensor | None = None,
        perceptual: float = 0.0, perceptual_net: torch.nn.Module | None = None, adversarial: float = 0.0,
        adv_warmup: int = 0, adv_loss: str = "hinge", adv_adaptive: bool = True,
        resume_from: str | Path | None = None, checkpoint_every: int = 1, precision: str = "float32") -> list[dict]:
    """Train ``model`` with Adam (PyTorch's fused kernel where there is one) on the negative β-ELBO;
    return the per-epoch history: ``train_total/recon/kl`` (running means), ``val_total/recon/kl``
    (z sampled with a fixed seed; ``val_mse/psnr/ssim`` too with ``val_metrics``) and ``seconds``.
    ``patience`` > 0: stop once validation −ELBO has not improved for that many epochs and keep the
    best epoch's weights (early stopping; needs ``val_x``); 0 trains every epoch and keeps the last.
    ``train_y``/``val_y``: class labels, for a conditional model. ``precision`` "bfloat16": the training forward
    passes under bfloat16 autocast (float32 weights, optimiser and losses; ~1.3× faster for the conv VAE on a CPU
    with AMX); "auto": ``resolve_precision``. Evaluation is float32 either way.

    Against blurry outputs the generator's loss adds ``perceptual`` × ``perceptual_distance(perceptual_net, ...)``
    and, with ``adversarial`` > 0, ``adversarial`` × (VQGAN's adaptive weight, if ``adv_adaptive``) × the
    ``adv_loss`` generator term of a ``PatchDiscriminator``, which its own Adam trains after each step; both
    adversarial steps start after ``adv_warmup`` optimiser steps. History: ``train_perceptual``,
    ``train_adversarial``, ``train_adv_weight``, ``train_discriminator``; ``train_total`` stays the −β-ELBO.

    With ``checkpoint_path`` a checkpoint is written every ``checkpoint_every`` epochs (0: only at the end) and
    training resumes from it; else ``resume_from`` (a checkpoint of ``fit``, or a ``vae train`` model file)
    continues that training. Either must have been written for the same model config and settings (likelihood,
    β, batch size, lr, seed, perceptual and adversarial settings): otherwise an InputError names the file."""
    if patience and val_x is None:
        raise ValueError("fit: patience needs validation images (val_x)")
    if (likelihood == "mse") != (model.output == "tanh"):
        raise InputError(f"likelihood {likelihood!r} for a {model.arch} model (output {model.output}); "
                         "expected 'mse' exactly for tanh-output models")
    if perceptual and perceptual_net is None:
        raise InputError(f"perceptual {perceptual}: no perceptual_net; expected a feature network "
                         "(fid.perceptual_network)")
    device = resolve_device(device)
    bf16 = resolve_precision(precision, device) == "bfloat16"
    model.to(device)
    x, y = train_x.to(device), None if train_y is None else train_y.to(device)
    fused = device.type in ("cpu", "cuda") or None
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
    shuffle_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    st = TrainState(model)
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    parts = {"model": model, "optimizer": opt, "shuffle_rng": shuffle_gen, "noise_rng": noise_gen}
    disc = PatchDiscriminator().to(device) if adversarial else None
    if disc is not None:
        parts["discriminator"], parts["disc_optimizer"] = disc, torch.optim.Adam(
            disc.parameters(), lr=lr, betas=(0.5, 0.9), fused=fused)
    net = perceptual_net.to(device) if perceptual else None
    settings = {"likelihood": likelihood, "beta": beta, "batch_size": batch_size, "lr": lr, "seed": seed,
                "perceptual": perceptual, "perceptual_net": getattr(net, "name", None), "adversarial": adversarial,
                "adv_warmup": adv_warmup, "adv_loss": adv_loss, "adv_adaptive": adv_adaptive,
                **({"precision": "bfloat16"} if bf16 else {})}  # (float32: as checkpoints before the setting)
    names = ["total", "recon", "kl", *(["perceptual"] if perceptual else []),
             *(["adversarial", "adv_weight", "discriminator"] if adversarial else [])]
    best: dict | None = None  # early stopping: {"epoch", "val_total", "state"} of the best epoch so far
    source = ckpt if ckpt and ckpt.exists() else resume_from
    if source:
        saved = _read_checkpoint(source, {**model.config(), **settings})
        if saved["epoch"] > epochs:
            raise InputError(f"{source}: {saved['epoch']} epochs trained already; expected epochs >= that, "
                             f"not {epochs}")
        for name, part in parts.items():
            (part.set_state if name.endswith("rng") else part.load_state_dict)(saved[name])
        st.history, st.epoch, st.step, best = list(saved["history"]), saved["epoch"], saved["step"], saved["best"]
        for cb, cb_state in zip(callbacks, saved["callbacks"]):
            cb.restore(cb_state)

    def save() -> None:
        with store.atomic_write(ckpt) as f:
            torch.save({**{name: part.get_state() if name.endswith("rng") else part.state_dict()
                           for name, part in parts.items()}, "epoch": st.epoch, "step": st.step,
                        "history": st.history, "callbacks": [cb.state() for cb in callbacks], "best": best,
                        "model_config": model.config(), "settings": settings}, f)

    bar = tqdm(total=(epochs - st.epoch) * -(-len(x) // batch_size), disable=not progress_enabled(progress),
               desc="training", leave=False)
    model.train()
    for cb in callbacks:
        cb.on_train_begin(st)
    for epoch in range(st.epoch + 1, epochs + 1):
        if best is not None and st.epoch - best["epoch"] >= patience:
            break  # checked here, not after saving, so that a resumed checkpoint stops too
        st.epoch, t0 = epoch, time.perf_counter()
        sums = torch.zeros(len(names), dtype=torch.float64, device=device)
        for idx in batches(torch.arange(len(x), device=device), batch_size, shuffle=True, generator=shuffle_gen):
            xb, yb = x.index_select(0, idx), None if y is None else y.index_select(0, idx)
            with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                out, mu, logvar = model(xb, generator=noise_gen, y=yb)
            out, mu, logvar = out.float(), mu.float(), logvar.float()  # the losses in float32
            terms = elbo_terms(out, xb, mu, logvar, beta, likelihood)
            loss, on = terms["total"], adversarial and st.step >= adv_warmup
            pixels = model.to_pixels(out) if perceptual or adversarial else None
            if perceptual:
                terms["perceptual"] = perceptual_distance(net, pixels, xb)
                loss = loss + perceptual * terms["perceptual"]
            if adversarial:
                terms["adversarial"], weight = generator_loss(disc(pixels), adv_loss), 0.0
                if on:
                    weight = adversarial * (adaptive_weight(loss.mean(), terms["adversarial"].mean(),
                                                            model.last_layer()) if adv_adaptive else 1.0)
                    loss = loss + weight * terms["adversarial"]
                terms["adv_weight"] = torch.zeros_like(loss) + weight
            opt.zero_grad(set_to_none=True)
            loss.mean().backward()
            opt.step()
            if adversarial:  # the discriminator's turn, on the same batch
                terms["discriminator"] = discriminator_loss(disc(xb), disc(pixels.detach()), adv_loss)
                if on:
                    parts["disc_optimizer"].zero_grad(set_to_none=True)
                    terms["discriminator"].mean().backward()
                    parts["disc_optimizer"].step()
            st.step += 1
            with torch.no_grad():
                sums += torch.stack([terms[k].sum() for k in names]).double()
            for cb in callbacks:
                cb.on_batch_end(st)
            bar.update(1)
        row = {"epoch": st.epoch, **{f"train_{k}": v / len(x) for k, v in zip(names, sums.tolist())}}
        if val_x is not None:
            ev = evaluate(model, val_x, beta=beta, likelihood=likelihood, seed=seed + 2, image_metrics=val_metrics,
                          y=val_y)
            row.update({f"val_{k}": v for k, v in ev.items()})
        row["seconds"] = time.perf_counter() - t0
        st.history.append(row)
        bar.set_postfix(epoch=st.epoch, loss=f"{row['train_total']:.1f}")
        for cb in callbacks:
            cb.on_epoch_end(st)
        if patience and (best is None or row["val_total"] < best["val_total"]):
            best = {"epoch": st.epoch, "val_total": row["val_total"],
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        if ckpt and checkpoint_every and st.epoch % checkpoint_every == 0:
            save()
    bar.close()
    if ckpt:
        save()  # the final state: what resume_from continues
    if best is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return st.history


# ---------------------------------------------------------------- runs: a config → a trained model in the store

@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a trained VAE (with the data's content)."""

    dataset: str = "mnist"
    classes: tuple[int, ...] | None = None
    arch: str = "mlp"
    latent_dim: int = 2
    hidden: tuple[int, ...] | None = None  # MLP hidden layer widths, first first (None: the architecture's default)
    channels: tuple[int, ...] | None = None  # U-Net widths at 14×14 and 7×7 (None: the architecture's default)
    num_classes: int = 0  # > 0: a conditional U-Net VAE, trained and evaluated with the class labels
    epochs: int = 20  # the seed's epoch count: a minimum (see min_steps) and, with patience, a floor for the cap
    min_steps: int = 0  # at least this many optimiser steps: small data sets get more epochs (see epoch_budget)
    patience: int = 0  # early stopping: epochs without a lower validation −ELBO (0 = off); best weights kept
    batch_size: int = 128
    lr: float = 1e-3
    beta: float = 1.0
    likelihood: str = "bernoulli"
    perceptual: float = 0.0  # weight of the perceptual distance (fid.perceptual_network) in the loss (0 = off)
    adversarial: float = 0.0  # weight of the PatchGAN generator term (0 = no discriminator)
    adv_warmup: int = 0  # optimiser steps before the adversarial terms start
    adv_loss: str = "hinge"  # or "least-squares"
    adv_adaptive: bool = True  # adversarial weight × VQGAN's adaptive weight
    precision: str = "float32"  # of training's forward passes: or "bfloat16" (autocast), "auto" (resolve_precision)
    seed: int = 0
    val_fraction: float = 0.1
    n_train: int | None = None  # stratified subset of the training split (None = all)
    n_test: int | None = None  # stratified subset of the test split (None = all)
    snapshot_every: int = 0  # optimiser steps between training snapshots (0 = one per epoch)
    snapshot_n: int = 0  # test images encoded (8 reconstructed) per snapshot (0 = no snapshots)
    eval_n: int = 0  # per epoch: −ELBO and MSE/PSNR/SSIM of eval_n fixed train and test images (0 = off)

    def __post_init__(self):
        for name in ("classes", "hidden", "channels"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(int(c) for c in getattr(self, name)))

    @property
    def label(self) -> str:
        """A short name for tables, e.g. "fashion-mnist [0,1,7] conv z=2 β=0.5"."""
        classes = "" if self.classes is None else f" [{','.join(map(str, self.classes))}]"
        extra = (f" β={self.beta:g}" if self.beta != 1 else "") + (f" seed {self.seed}" if self.seed else "")
        extra += (f" perceptual {self.perceptual:g}" if self.perceptual else "") + (
            f" adversarial {self.adversarial:g}" if self.adversarial else "")
        return f"{self.dataset}{classes} {self.arch} z={self.latent_dim}{extra}"


@dataclass
class Run:
    """A trained (or loaded) run: model in eval mode, history, test metrics, data, snapshots, and the final
    training checkpoint (``fit``'s, as bytes), which a run with ``resume_from`` continues."""

    config: RunConfig
    key: str
    model: VAE
    history: list[dict]
    metrics: dict
    data: SimpleNamespace
    snapshots: dict | None = None
    cached: bool = True
    checkpoint: bytes | None = None

    @property
    def store_key(self) -> str:
        return self.key


def epoch_budget(cfg: RunConfig, n_train: int) -> int:
    """Epochs ``cfg`` trains on ``n_train`` images: its ``epochs``, raised to reach ``min_steps`` optimiser
    steps. With the full data sets the seeds' epoch counts apply; with the 5,000-image MNIST sample the
    step budget does (an epoch there is ~10× fewer steps). Early stopping (``patience``) may end it sooner."""
    return max(cfg.epochs, -(-cfg.min_steps // -(-n_train // cfg.batch_size)))


TAIL, FLAT = 0.1, 0.05  # flattened: over the last 10 % of epochs, validation −ELBO moved by < 5 % of its fall


def convergence(run: Run, tail: float = TAIL, flat: float = FLAT) -> dict[str, Any]:
    """How ``run``'s training ended: epoch cap (``epoch_budget``), epochs run, best epoch, steps, whether it
    stopped early, and whether validation −ELBO had flattened: over the last ``tail`` of its epochs (at least
    one) it moved by less than ``flat`` of its fall since epoch 1 (``tail_change``, ``share_of_fall``)."""
    v = [row["val_total"] for row in run.history]
    k = max(1, round(tail * len(v)))
    change = v[-1] - v[max(0, len(v) - 1 - k)]
    share = abs(change) / max(v[0] - min(v), 1e-12)
    cap = epoch_budget(run.config, run.metrics["n_train"])
    return {"epoch_cap": cap, "epochs_run": len(v), "best_epoch": run.metrics["best_epoch"],
            "steps": run.metrics["steps"], "stopped_early": len(v) < cap, "tail_epochs": k,
            "tail_change": change, "share_of_fall": share, "flat": share < flat}


def load_run_data(cfg: RunConfig) -> SimpleNamespace:
    """train / val / test ImageSets for ``cfg`` (deterministic in the config's seed)."""
    train, test = load_dataset(cfg.dataset, "train"), load_dataset(cfg.dataset, "test")
    if cfg.classes is not None:
        train, test = filter_classes(train, cfg.classes), filter_classes(test, cfg.classes)
    train, val = train_val_split(take(train, cfg.n_train, seed=cfg.seed), cfg.val_fraction, seed=cfg.seed)
    return SimpleNamespace(train=train, val=val, test=take(test, cfg.n_test, seed=cfg.seed))


def snapshot_index(test: ImageSet, n: int) -> list[int]:
    """``n`` test images followed through training: a class-stratified subset in class round-robin
    order (so the first few, whose reconstructions are kept, span the classes)."""
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


def _labels(cfg: RunConfig, images: ImageSet) -> torch.Tensor | None:
    """The class labels a conditional run trains and evaluates with (None for an unconditional run)."""
    return images.labels if cfg.num_classes else None


def run_callbacks(cfg: RunConfig, train: ImageSet, test: ImageSet) -> list[Callback]:
    """What ``train_or_load`` adds to ``fit`` for ``cfg``: a ``SnapshotEvery`` of the followed test
    images' μ and 8 reconstructions (when ``snapshot_n``), and per-epoch evaluation (when ``eval_n``)."""
    callbacks: list[Callback] = []
    if cfg.snapshot_n:
        idx = snapshot_index(test, min(cfg.snapshot_n, len(test)))
        xs, ys = to_float(test.images[idx]), test.labels[idx] if cfg.num_classes else None
        callbacks.append(SnapshotEvery(cfg.snapshot_every, lambda m: {
            "mu": m.latents(xs, len(xs), y=ys).float(),
            "recon": (m.reconstruct(xs[:8].to(m.device), None if ys is None else ys[:8]) * 255
                      ).round().to(torch.uint8).cpu()}))
    if cfg.eval_n:
        sets = {"train_eval_": take(train, cfg.eval_n, seed=cfg.seed), "test_": take(test, cfg.eval_n, seed=cfg.seed)}
        callbacks.append(EvalEachEpoch({k: to_float(v.images) for k, v in sets.items()},
                                       {k: v.labels for k, v in sets.items() if cfg.num_classes},
                                       beta=cfg.beta, likelihood=cfg.likelihood, seed=cfg.seed + 3))
    return callbacks


def _train(cfg: RunConfig, train: ImageSet, val: ImageSet, test: ImageSet, checkpoint: Path,
           device: torch.device, progress: bool | None, perceptual_net: torch.nn.Module | None = None,
           resume_from: bytes | None = None) -> dict:
    """Train the run of ``cfg`` (continuing the checkpoint ``resume_from``, if given); the stored value: weights,
    history, test metrics, snapshots and the final training checkpoint."""
    seed_everything(cfg.seed)
    options = {"hidden": cfg.hidden, "channels": cfg.channels, "num_classes": cfg.num_classes}
    model = build_model(cfg.arch, cfg.latent_dim, **{k: list(v) if isinstance(v, tuple) else v
                                                     for k, v in options.items() if v})
    callbacks = run_callbacks(cfg, train, test)
    resume = checkpoint.with_name("resume_from.pt") if resume_from is not None else None
    if resume:
        resume.parent.mkdir(parents=True, exist_ok=True)
        resume.write_bytes(resume_from)
    t0 = time.perf_counter()
    history = fit(model, to_float(train.images), to_float(val.images), epochs=epoch_budget(cfg, len(train)),
                  batch_size=cfg.batch_size, lr=cfg.lr, beta=cfg.beta, likelihood=cfg.likelihood, seed=cfg.seed,
                  device=device, callbacks=callbacks, checkpoint_path=checkpoint, val_metrics=True,
                  patience=cfg.patience, progress=progress, train_y=_labels(cfg, train), val_y=_labels(cfg, val),
                  perceptual=cfg.perceptual, perceptual_net=perceptual_net, adversarial=cfg.adversarial,
                  adv_warmup=cfg.adv_warmup, adv_loss=cfg.adv_loss, adv_adaptive=cfg.adv_adaptive, resume_from=resume,
                  precision=cfg.precision)
    ev = evaluate(model, to_float(test.images), beta=cfg.beta, likelihood=cfg.likelihood, seed=cfg.seed + 3,
                  image_metrics=True, y=_labels(cfg, test))
    metrics = {**{f"test_{k}": v for k, v in ev.items()}, "train_seconds": time.perf_counter() - t0,
               "device": str(device), "data_source": train.provenance.get("source"),
               "n_train": len(train), "n_val": len(val), "n_test": len(test), "epochs_run": len(history),
               "best_epoch": int(np.argmin([r["val_total"] for r in history])) + 1 if cfg.patience else len(history),
               "steps": len(history) * -(-len(train) // cfg.batch_size),
               **({"perceptual_net": perceptual_net.name} if cfg.perceptual else {})}
    snapshots = None
    if cfg.snapshot_n:
        snaps = callbacks[0].snapshots
        idx = torch.as_tensor(snapshot_index(test, min(cfg.snapshot_n, len(test))))
        snapshots = {"index": idx, "step": torch.tensor([s["step"] for s in snaps]),
                     "epoch": torch.tensor([s["epoch"] for s in snaps]),
                     "mu": torch.stack([s["value"]["mu"] for s in snaps]),
                     "recon": torch.stack([s["value"]["recon"] for s in snaps])}
    return {"model_config": model.config(), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "history": history, "metrics": metrics, "snapshots": snapshots, "checkpoint": checkpoint.read_bytes()}


def run_key(cfg: RunConfig, data: SimpleNamespace, perceptual_net: torch.nn.Module | None = None,
            earlier_key: str | None = None) -> str:
    """The store key of the run of ``cfg`` on ``data`` (``load_run_data``): its config, data content, perceptual
    network, the run it continues, and the code of ``_train``."""
    return store.key(_train, cfg, data.train, data.val, data.test, perceptual_net, earlier_key)


def partial_checkpoint(key: str) -> Path:
    """Where the training of run ``key`` keeps its checkpoint until it is stored (``fit`` creates the folder)."""
    return store.root() / ".partial" / key[:16] / "checkpoint.pt"


LENGTH = ("epochs", "min_steps", "patience")  # what a resumed run may change: its training length


def train_or_load(cfg: RunConfig, device: str | torch.device | None = None, progress: bool | None = None,
                  resume_from: RunConfig | None = None, perceptual_net: torch.nn.Module | None = None) -> Run:
    """The run of ``cfg`` from the result store, trained (resuming an interrupted training) if missing.
    ``resume_from``: the config of an earlier run (trained or loaded first) that differs only in ``LENGTH``;
    this run continues its training, so its curves continue that run's (e.g. 10 epochs, then 20 resumed).
    ``perceptual_net``: the feature network of the perceptual term (default ``fid.perceptual_network(cfg.dataset)``)."""
    device = resolve_device(device)
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))  # "auto": this machine's
    data = load_run_data(cfg)
    net, earlier = None, None
    if cfg.perceptual:
        from .fid import perceptual_network  # (fid imports this module)
        net = (perceptual_net or perceptual_network(cfg.dataset, device)).to(device)
    if resume_from is not None:
        resume_from = dataclasses.replace(resume_from, precision=resolve_precision(resume_from.precision, device))
        diff = [f"{f.name} {getattr(resume_from, f.name)!r} there, {getattr(cfg, f.name)!r} here"
                for f in dataclasses.fields(cfg) if f.name not in LENGTH
                and getattr(resume_from, f.name) != getattr(cfg, f.name)]
        if diff:
            raise InputError(f"resume_from {resume_from.label}: another run ({'; '.join(diff)}); expected the "
                             f"same run but for its training length ({', '.join(LENGTH)})")
        earlier = train_or_load(resume_from, device, progress, perceptual_net=perceptual_net)
    key = run_key(cfg, data, net, earlier and earlier.key)
    checkpoint = partial_checkpoint(key)
    value, trained = store.compute(key, "vaelib.train._train", lambda: _train(
        cfg, data.train, data.val, data.test, checkpoint, device, progress, net, earlier and earlier.checkpoint))
    if trained:
        shutil.rmtree(checkpoint.parent, ignore_errors=True)
    model = build_model(**value["model_config"])
    model.load_state_dict(value["state_dict"])
    return Run(cfg, key, model.to(device).eval(), value["history"], value["metrics"], data, value["snapshots"],
               cached=not trained, checkpoint=value["checkpoint"])
