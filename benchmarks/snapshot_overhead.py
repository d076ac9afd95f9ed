"""What the training snapshots behind the GIFs cost: training with and without the snapshot
callbacks, side by side in one run, same data, model initialisation and seeds.

Two scenarios, each as ``vaelib.train.train_or_load`` trains it (``fit`` with the validation split
and its metrics), with the snapshot callbacks ``train_or_load`` adds (``SnapshotEvery`` with the
run's capture function, as ``vaelib.train.run_callbacks`` builds it; an interrupted run keeps its
snapshots in the checkpoint):

- ``beta``: chapter 03's β sweep: Fashion-MNIST classes 0/1/7, conv VAE z=2, batch 128, a snapshot
  of 600 test images every 20 optimiser steps;
- ``latent``: chapter 02: MNIST (whatever source is present), conv VAE z=16, a snapshot of up to
  2,000 test images at the end of every epoch.

Timings alternate without/with (``--repeats`` pairs); the fastest of each is compared. On a
shared machine the load of other processes changes between timings, so the run with snapshots
also times its own snapshot callbacks: their share of that same run's training time is the
overhead measured under one load. Also checks that the snapshots leave training unchanged
(bit-identical weights). Not a test: numbers depend on the machine and its load.
Usage: python benchmarks/snapshot_overhead.py [--epochs N] [--repeats 3] [--only beta|latent]
(default epochs per timing: 1 for beta, 127 steps; 3 for latent, so the snapshot before training
weighs no more than in a real run of a few epochs)
"""
from __future__ import annotations

import argparse
import time

import torch

from vaelib.data import to_float
from vaelib import experiments
from vaelib.models import build_model
from vaelib.train import Callback, SnapshotEvery, fit, load_run_data, run_callbacks, seed_everything


class Timed(Callback):
    """Runs ``inner``'s hooks and adds the seconds they take to ``seconds``."""

    def __init__(self, inner: Callback):
        self.inner, self.seconds = inner, 0.0

    def _timed(self, hook: str, state) -> None:
        t0 = time.perf_counter()
        getattr(self.inner, hook)(state)
        self.seconds += time.perf_counter() - t0

    def on_train_begin(self, state):
        self._timed("on_train_begin", state)

    def on_batch_end(self, state):
        self._timed("on_batch_end", state)

    def on_epoch_end(self, state):
        self._timed("on_epoch_end", state)


def scenarios() -> dict:
    beta = experiments.runs(experiments.settings("03_beta_sweep", "full"))[1]
    latent = next(c for c in experiments.runs(experiments.settings("02_latent_sizes", "full")) if c.latent_dim == 16)
    return {"beta": beta, "latent": latent}


def train_once(cfg, data, epochs: int, snapshots: bool) -> tuple[float, float, int, torch.nn.Module]:
    """(wall seconds, seconds inside the snapshot callbacks, snapshots taken, trained model)."""
    seed_everything(cfg.seed)
    model = build_model(cfg.arch, cfg.latent_dim)
    callbacks = []
    if snapshots:
        inner = [cb for cb in run_callbacks(cfg, data.train, data.test) if isinstance(cb, SnapshotEvery)]
        callbacks = [Timed(cb) for cb in inner]  # exactly what train_or_load adds
    x, xv = to_float(data.train.images), to_float(data.val.images)
    t0 = time.perf_counter()
    fit(model, x, xv, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, beta=cfg.beta, seed=cfg.seed,
        device="cpu", callbacks=callbacks, val_metrics=True, progress=False)
    wall = time.perf_counter() - t0
    inside = sum(cb.seconds for cb in callbacks)
    return wall, inside, len(callbacks[0].inner.snapshots) if snapshots else 0, model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=None, help="epochs per timing (default: beta 1, latent 3)")
    ap.add_argument("--repeats", type=int, default=3, help="pairs of timings (without, with) per scenario")
    ap.add_argument("--only", choices=["beta", "latent"], help="one scenario")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    for name, cfg in scenarios().items():
        if args.only and name != args.only:
            continue
        data = load_run_data(cfg)
        epochs = args.epochs or {"beta": 1, "latent": 3}[name]
        steps = epochs * -(-len(data.train) // cfg.batch_size)
        times = {False: [], True: []}
        shares = []
        for r in range(args.repeats):
            for with_snap in ((False, True) if r % 2 == 0 else (True, False)):
                sec, inside, n_snap, model = train_once(cfg, data, epochs, with_snap)
                times[with_snap].append(sec)
                if with_snap:
                    shares.append(inside / (sec - inside))
                weights = [p.detach().clone() for p in model.state_dict().values()]
                if with_snap:
                    snaps, ref_w = n_snap, weights
                else:
                    plain_w = weights
        same = all(torch.equal(a, b) for a, b in zip(plain_w, ref_w))
        t0, t1 = min(times[False]), min(times[True])
        print(f"\n[{name}] {cfg.dataset} {cfg.arch} z={cfg.latent_dim}: {len(data.train):,} training images, "
              f"{steps} steps in {epochs} epoch(s); {snaps} snapshots of {min(cfg.snapshot_n, len(data.test))} "
              f"test images (every {cfg.snapshot_every or 'epoch'}{' steps' if cfg.snapshot_every else ''})")
        print(f"  without snapshots: {', '.join(f'{t:.2f}' for t in times[False])} s (fastest {t0:.2f} s)")
        print(f"  with snapshots:    {', '.join(f'{t:.2f}' for t in times[True])} s (fastest {t1:.2f} s)")
        print(f"  ratio with/without (fastest of each): {t1 / t0:.3f} (overhead {100 * (t1 / t0 - 1):+.1f} %)")
        print(f"  snapshot callbacks / rest of the same run: {', '.join(f'{100 * x:.1f} %' for x in shares)} "
              f"(median {100 * sorted(shares)[len(shares) // 2]:.1f} %); target <= 10 %")
        print(f"  same final weights with and without snapshots: {same}")


if __name__ == "__main__":
    main()
