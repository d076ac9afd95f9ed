"""What the `paper` profile's training runs would cost: measured per-step and evaluation rates on this machine,
multiplied by the paper run table's step counts, and the wall time that gives on 1, 8 and 64 workers.

For each kind of run in ``experiments.run_table("paper")`` (architecture, widths, batch size, perceptual and
adversarial terms) it times ``train.fit`` for one epoch of ``--steps`` optimiser steps (no validation, no
callbacks) and ``train.evaluate`` (with image metrics) on 500 images, on whatever MNIST / Fashion-MNIST copy is
present. A paper run's projected seconds: its steps (epochs × ⌈n_train / batch⌉ at the full data sets' sizes below)
× seconds per step, plus its per-epoch evaluations (validation split, 2 × eval_n) and the test split at the end,
scaled by a load factor: two real full-profile runs recorded in reports/metrics (01's MLP, 03's conv model) ÷
the same runs at the probed rates, so that probes on a loaded machine still give an unloaded machine's times.
Training snapshots (GIFs) and everything after training (FID features, GMMs) are left out. A worker is one run
at a time at this machine's speed; the wall time on W workers is the longest-processing-time-first schedule.
This is a projection, not a measurement of the paper profile. ``--recorded`` skips the probes (for a busy machine) and
uses the recorded runs' per-step costs (evaluation included) with the ratios ``recorded_step_seconds`` states.
Usage: python benchmarks/sweep_projection.py [--steps 20] [--recorded]
"""
from __future__ import annotations

import argparse
import dataclasses
import heapq
import json
import time

import torch

from vaelib import experiments, fid, store
from vaelib.data import to_float
from vaelib.models import build_model
from vaelib.train import epoch_budget, evaluate, fit, load_run_data

# Training-split sizes of the full data sets (their official releases), and of the class subsets the chapters use.
FULL_TRAIN = {("mnist", None): 60_000, ("fashion-mnist", None): 60_000, ("emnist-digits", None): 240_000,
              ("mnist", (1, 4, 8)): 6_742 + 5_842 + 5_851, ("fashion-mnist", (0, 1, 7)): 18_000}
FULL_TEST = {("mnist", None): 10_000, ("fashion-mnist", None): 10_000, ("emnist-digits", None): 40_000,
             ("mnist", (1, 4, 8)): 1_135 + 982 + 974, ("fashion-mnist", (0, 1, 7)): 3_000}


def kind(cfg) -> tuple:
    """Runs that cost the same per step (the latent size barely matters)."""
    return (cfg.arch, cfg.hidden, cfg.channels, cfg.batch_size, cfg.perceptual > 0, cfg.adversarial > 0)


def rates(cfg, steps: int) -> tuple[float, float]:
    """(seconds per optimiser step, images evaluated per second) for runs like ``cfg`` on this machine."""
    probe = dataclasses.replace(cfg, dataset="mnist", classes=None, n_train=None, n_test=500, seed=0)
    data = load_run_data(probe)
    x = to_float(data.train.images)[: steps * cfg.batch_size]
    model = build_model(cfg.arch, cfg.latent_dim, **{k: list(v) for k, v in
                                                     (("hidden", cfg.hidden), ("channels", cfg.channels)) if v})
    net = None
    if cfg.perceptual:  # an untrained domain classifier's feature maps: the same cost as the trained one's
        net = fid.FeatureMaps(fid.DomainClassifier().body, (2, 6, 10), "probe")
    t0 = time.perf_counter()
    fit(model, x, epochs=1, batch_size=cfg.batch_size, lr=cfg.lr, likelihood=cfg.likelihood, device="cpu",
        progress=False, perceptual=cfg.perceptual, perceptual_net=net, adversarial=cfg.adversarial,
        adv_warmup=0)
    per_step = (time.perf_counter() - t0) / -(-len(x) // cfg.batch_size)
    test = to_float(data.test.images)
    t0 = time.perf_counter()
    evaluate(model, test, likelihood=cfg.likelihood, image_metrics=True)
    return per_step, len(test) / (time.perf_counter() - t0)


def seconds(steps: int, epochs: int, n_val: int, eval_n: int, n_test: int, per_step: float, eval_rate: float) -> float:
    """Training steps, then per epoch the validation split and 2 × eval_n images, and the test split at the end."""
    return steps * per_step + (epochs * (n_val + 2 * eval_n) + n_test) / eval_rate


def projected_seconds(cfg, per_step: float, eval_rate: float) -> tuple[int, float]:
    """(optimiser steps, seconds) of the paper run ``cfg`` on the full data set."""
    n = FULL_TRAIN[(cfg.dataset, cfg.classes)]
    n_train = round(n * (1 - cfg.val_fraction)) if cfg.n_train is None else min(cfg.n_train, n)
    n_val = n - n_train if cfg.n_train is None else round(cfg.n_train * cfg.val_fraction)
    epochs = epoch_budget(cfg, n_train)
    steps = epochs * -(-n_train // cfg.batch_size)
    n_test = FULL_TEST[(cfg.dataset, cfg.classes)] if cfg.n_test is None else cfg.n_test
    return steps, seconds(steps, epochs, n_val, cfg.eval_n, n_test, per_step, eval_rate)


def load_factor(measured: dict) -> float:
    """Recorded ÷ probed seconds of two real full-profile runs of this machine (reports/metrics: chapter 01's MLP,
    3,600 images, and chapter 03's standard conv model, 54,000): the probes run under whatever load the machine has
    now, the recorded runs fix the scale (1 = the probes ran as fast as the report's runs)."""
    root = store.project_root() / "reports" / "metrics"
    m01 = json.loads((root / "01_vae.json").read_text())
    m03 = json.loads((root / "03_beta_sweep.json").read_text())["standard"]
    full = experiments.run_table("full")
    c01, c03 = full["01_vae"][0], full["03_beta_sweep"][0]
    steps03 = c03.epochs * -(-m03["n_train"] // c03.batch_size)
    probed = (seconds(m01["steps"], m01["epochs_run"], 400, c01.eval_n, 1000, *measured[kind(c01)])
              + seconds(steps03, c03.epochs, 6000, c03.eval_n, 10_000, *measured[kind(c03)]))
    return (m01["train_seconds"] + m03["train_seconds"]) / probed


def wall_time(seconds: list[float], workers: int) -> float:
    """Makespan of longest-first list scheduling of ``seconds`` on ``workers`` identical workers."""
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + s)
    return max(loads)


def recorded_step_seconds(cfg) -> float:
    """``--recorded``: seconds per optimiser step, evaluation included, of the real full-profile runs recorded in
    reports/metrics on this machine (01's MLP, 03's conv model, 07's U-Net variants at channels 16/32); for kinds
    with no recorded run, a stated ratio: MLP 512-256 ×1.44 the 784-400 MLP (probed back to back on this machine),
    conv-tanh at batch 64 ×0.5 the conv model at 128, U-Net channels 32/64 ×4 those at 16/32 (conv FLOPs ∝ width²)."""
    root = store.project_root() / "reports" / "metrics"
    m01, m03 = (json.loads((root / f).read_text()) for f in ("01_vae.json", "03_beta_sweep.json"))
    m07 = json.loads((root / "07_sharp_vae.json").read_text())["train_seconds"]
    mlp, conv = m01["train_seconds"] / m01["steps"], m03["standard"]["train_seconds"] / (25 * 422)
    unet = {v: sum(t for k, t in m07.items() if k.startswith(v + " z=")) / 3 / 580
            for v in ("pixel only", "+ perceptual", "+ perceptual + PatchGAN")}
    if cfg.arch == "mlp":
        return mlp * (1.44 if cfg.hidden == (512, 256) else 1.0)
    if cfg.arch in ("conv", "conv-tanh"):
        return conv * cfg.batch_size / 128
    variant = "+ perceptual + PatchGAN" if cfg.adversarial else "+ perceptual" if cfg.perceptual else "pixel only"
    return unet[variant] * (4 if cfg.channels == (32, 64) else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps timed per kind of run")
    parser.add_argument("--recorded", action="store_true",
                        help="no probes: per-step costs of the recorded full-profile runs (recorded_step_seconds)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs = experiments.all_runs("paper")
    measured: dict[tuple, tuple[float, float]] = {}
    rows = []
    if args.recorded:
        measured = {kind(cfg): (recorded_step_seconds(cfg), float("inf")) for cfg in runs}  # evaluation included
    for cfg in runs:
        if kind(cfg) not in measured:
            measured[kind(cfg)] = rates(cfg, args.steps)
            per_step, rate = measured[kind(cfg)]
            print(f"measured {cfg.arch:<9} {str(cfg.channels or cfg.hidden or ''):<10} z={cfg.latent_dim:<3} "
                  f"batch {cfg.batch_size:<4} perceptual {cfg.perceptual:g} adversarial {cfg.adversarial:g}: "
                  f"{1 / per_step:6.1f} steps/s, evaluation {rate:6.0f} images/s")
        rows.append((cfg, *projected_seconds(cfg, *measured[kind(cfg)])))
    factor = 1.0 if args.recorded else load_factor(measured)
    if not args.recorded:
        print(f"load factor (recorded full-profile runs ÷ the same runs at the probed rates): {factor:.3f}")
    rows = [(cfg, steps, secs * factor) for cfg, steps, secs in rows]
    by_chapter = {stem: [r for r in rows if r[0] in configs] for stem, configs in experiments.run_table("paper").items()}
    print(f"\n| chapter | runs | steps per run | projected hours per run (this CPU) |\n| --- | --- | --- | --- |")
    for stem, rs in by_chapter.items():
        if rs and stem != "04_frozen_mu":  # 04 loads 03's model
            print(f"| {stem} | {len(rs)} | {min(r[1] for r in rs):,}–{max(r[1] for r in rs):,} | "
                  f"{min(r[2] for r in rs) / 3600:.2f}–{max(r[2] for r in rs) / 3600:.2f} |")
    total = [r[2] for r in rows]
    print(f"\n{len(rows)} runs, {sum(total) / 3600:.1f} CPU-hours of training at this machine's speed (projected)")
    print("| workers | projected wall time |\n| --- | --- |")
    for w in (1, 8, 64):
        print(f"| {w} | {wall_time(total, w) / 3600:.1f} h |")


if __name__ == "__main__":
    main()
