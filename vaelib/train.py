"""Training: ``fit()`` with per-epoch history, callbacks, atomic checkpoints and exact resume.

The whole training tensor lives on the device; each epoch draws one permutation and slices
batches from it (no per-item ``Dataset``/``DataLoader``). Randomness comes from two explicit
generators seeded from ``seed`` (batch order, reparameterisation noise), so a run resumed from a
checkpoint ends bit-identical to an uninterrupted one on the same machine.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from .data import batches
from .io import atomic_write
from .losses import elbo_terms
from .mlp_gradients import elbo_gradients
from .models import MLPVAE


def default_device() -> torch.device:
    """cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    return default_device() if device in (None, "auto") else torch.device(device)


@dataclass
class TrainState:
    """What callbacks see: the model, position in training and the history so far."""

    model: torch.nn.Module
    epoch: int = 0  # 1-based epoch in progress (or just finished)
    batch: int = 0  # batch index within the epoch, 1-based after it ran
    step: int = 0  # optimiser steps so far
    history: list[dict] = field(default_factory=list)
    loss: float = float("nan")


class Callback:
    """Hooks called by ``fit``; override what you need."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_batch_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...


class SnapshotEvery(Callback):
    """Stores ``fn(model)`` (under eval mode and no_grad) every ``every`` optimiser steps,
    at the start of training and at the end of each epoch if asked. ``snapshots`` holds
    dicts ``{"step", "epoch", "value"}``."""

    def __init__(self, every: int, fn: Callable[[torch.nn.Module], Any], at_start: bool = True,
                 at_epoch_end: bool = False):
        self.every, self.fn, self.at_start, self.at_epoch_end = every, fn, at_start, at_epoch_end
        self.snapshots: list[dict] = []

    def _take(self, state: TrainState) -> None:
        model = state.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = self.fn(model)
        model.train(was_training)
        self.snapshots.append({"step": state.step, "epoch": state.epoch, "value": value})

    def on_train_begin(self, state):
        if self.at_start and state.step == 0:
            self._take(state)

    def on_batch_end(self, state):
        if self.every and state.step % self.every == 0:
            self._take(state)

    def on_epoch_end(self, state):
        if self.at_epoch_end and not (self.every and state.step % self.every == 0):
            self._take(state)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, *, batch_size: int = 512, beta: float = 1.0,
             likelihood: str = "bernoulli", seed: int = 0, image_metrics: bool = False) -> dict[str, float]:
    """Mean −ELBO terms (z sampled with a fixed seed) and, if asked, MSE/PSNR/SSIM of the
    reconstruction decoded from μ; all per image."""
    from .metrics import mse, psnr, ssim

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, torch.Tensor] = {}
    for xb in batches(x.to(device), batch_size):
        logits, mu, logvar = model(xb, generator=gen)
        terms = elbo_terms(logits, xb, mu, logvar, beta, likelihood)
        if image_metrics:
            rec = torch.sigmoid(model.decode(mu))
            terms.update(mse=mse(rec, xb), psnr=psnr(rec, xb), ssim=ssim(rec, xb))
        for k, v in terms.items():
            sums[k] = sums.get(k, 0) + v.double().sum()
    model.train(was_training)
    return {k: float(v) / len(x) for k, v in sums.items()}


class EvalEachEpoch(Callback):
    """At the end of every epoch, ``evaluate`` each fixed image set of ``sets`` (prefix → float
    images) and add ``<prefix>total/recon/kl`` (z sampled with the fixed ``seed``) and
    ``<prefix>mse/psnr/ssim`` (reconstruction from μ) to that epoch's history row, so that
    checkpoints (and runs resumed from them) keep them. Touches no training RNG or state."""

    def __init__(self, sets: dict[str, torch.Tensor], *, beta: float = 1.0, likelihood: str = "bernoulli",
                 seed: int = 0, batch_size: int = 512):
        self.sets, self.beta, self.likelihood = dict(sets), beta, likelihood
        self.seed, self.batch_size = seed, batch_size

    def on_epoch_end(self, state):
        row = state.history[-1]
        for prefix, x in self.sets.items():
            ev = evaluate(state.model, x, batch_size=self.batch_size, beta=self.beta,
                          likelihood=self.likelihood, seed=self.seed, image_metrics=True)
            row.update({f"{prefix}{k}": v for k, v in ev.items()})


def make_adam(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam, fused into one kernel per step where PyTorch has it (CPU, CUDA): on small models the
    optimiser's many small element-wise ops otherwise cost as much as the matmuls."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused or None)


def adam_stepper(opt: torch.optim.Adam) -> Callable[[], None]:
    """``opt.step`` for a single-group fused Adam, minus ``torch.optim.Optimizer``'s per-call Python
    bookkeeping (~0.1 ms, 4 % of an MLP VAE step on a CPU): once the first ordinary step has created
    Adam's state, the same fused update runs through ``torch.optim.adam.adam`` on the optimiser's
    own state tensors, so ``opt.state_dict()`` (checkpoints) stays exact. Other optimisers: ``opt.step``."""
    group = opt.param_groups[0]
    if len(opt.param_groups) != 1 or not group.get("fused") or group["amsgrad"] or group["weight_decay"]:
        return opt.step
    from torch.optim.adam import adam
    params = group["params"]

    def step() -> None:
        if any(p.grad is None or p not in opt.state for p in params):
            opt.step()
            return
        states = [opt.state[p] for p in params]
        beta1, beta2 = group["betas"]
        adam(params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
             [], [s["step"] for s in states], fused=True, amsgrad=False, beta1=beta1, beta2=beta2,
             lr=group["lr"], weight_decay=0.0, eps=group["eps"], maximize=False)
    return step


def gradient_method(arch: str, likelihood: str) -> str:
    """How ``fit`` computes gradients for a model of ``arch``: the MLP VAE with the Bernoulli
    likelihood uses the hand-derived ``vaelib.mlp_gradients`` (faster on a CPU), the rest autograd.
    Part of the run cache key, since the two round differently."""
    return "mlp_gradients" if arch == MLPVAE.arch and likelihood == "bernoulli" else "autograd"


def _gradient_step(model: torch.nn.Module, opt: torch.optim.Optimizer, beta: float, likelihood: str,
                   noise_gen: torch.Generator) -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """A function of one batch that sets the gradients of the batch-mean negative β-ELBO and
    returns its per-image terms; z is sampled from ``noise_gen`` the same way on both paths."""
    if type(model) is MLPVAE and gradient_method(model.arch, likelihood) == "mlp_gradients":
        def step(xb):
            eps = torch.randn((len(xb), model.latent_dim), generator=noise_gen, device=xb.device, dtype=xb.dtype)
            return elbo_gradients(model, xb, eps, beta)
        return step

    def step(xb):
        logits, mu, logvar = model(xb, generator=noise_gen)
        terms = elbo_terms(logits, xb, mu, logvar, beta, likelihood)
        opt.zero_grad(set_to_none=True)
        terms["total"].mean().backward()
        return terms
    return step


def _progress_enabled() -> bool:
    return not os.environ.get("VAELIB_QUIET") and not os.environ.get("CI")


def fit(model: torch.nn.Module, train_x: torch.Tensor, val_x: torch.Tensor | None = None, *,
        epochs: int, batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0,
        likelihood: str = "bernoulli", seed: int = 0, device: str | torch.device | None = None,
        callbacks: Sequence[Callback] = (), checkpoint_path: str | Path | None = None,
        val_metrics: bool = False, progress: bool | None = None) -> list[dict]:
    """Train ``model`` with Adam on the negative β-ELBO; return the per-epoch history.

    History rows: ``epoch``, ``train_total/recon/kl`` (running means over the epoch's batches),
    ``val_total/recon/kl`` (z sampled with a fixed seed), with ``val_metrics`` also
    ``val_mse/psnr/ssim`` (reconstruction from μ), and ``seconds``. With ``checkpoint_path``,
    a checkpoint is written atomically after every epoch and training resumes from it.
    """
    device = resolve_device(device)
    model.to(device)
    x = train_x.to(device)
    xv = None if val_x is None else val_x.to(device)
    opt = make_adam(model, lr, device)
    shuffle_gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    history: list[dict] = []
    start_epoch = 0
    ckpt = Path(checkpoint_path) if checkpoint_path else None
    if ckpt and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        shuffle_gen.set_state(state["shuffle_rng"])
        noise_gen.set_state(state["noise_rng"].to(noise_gen.get_state().device))
        history, start_epoch = list(state["history"]), int(state["epoch"])
    gradient_step = _gradient_step(model, opt, beta, likelihood, noise_gen)
    optimizer_step = adam_stepper(opt)
    n_batches = -(-len(x) // batch_size)
    st = TrainState(model, epoch=start_epoch, step=start_epoch * n_batches, history=history)
    show = _progress_enabled() if progress is None else progress
    bar = tqdm(total=(epochs - start_epoch) * n_batches, disable=not show, desc="training", leave=False)
    model.train()
    for cb in callbacks:
        cb.on_train_begin(st)
    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.perf_counter()
        st.epoch = epoch
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        for st.batch, xb in enumerate(batches(x, batch_size, shuffle=True, generator=shuffle_gen), 1):
            terms = gradient_step(xb)
            optimizer_step()
            st.step += 1
            with torch.no_grad():
                sums += torch.stack([terms["total"].sum(), terms["recon"].sum(), terms["kl"].sum()]).double()
            for cb in callbacks:
                cb.on_batch_end(st)
            bar.update(1)
        row = {"epoch": epoch, **{f"train_{k}": float(v) / len(x)
                                  for k, v in zip(("total", "recon", "kl"), sums.tolist())}}
        if xv is not None:
            ev = evaluate(model, xv, beta=beta, likelihood=likelihood, seed=seed + 2, image_metrics=val_metrics)
            row.update({f"val_{k}": v for k, v in ev.items()})
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        st.loss = row["train_total"]
        bar.set_postfix(epoch=epoch, loss=f"{row['train_total']:.1f}")
        for cb in callbacks:
            cb.on_epoch_end(st)
        if ckpt:
            with atomic_write(ckpt) as f:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                            "history": history, "shuffle_rng": shuffle_gen.get_state(),
                            "noise_rng": noise_gen.get_state()}, f)
    bar.close()
    model.eval()
    return history
