"""The ray engine's overhead against the local one on the smoke grid (4 tiny MLP runs), side by side in one run.

Each engine trains the same grid into a fresh temporary store with torch threads = 1 per run: ``local`` one run at
a time in this process; ``ray`` one task per run on a local Ray instance of ``--cpus`` CPUs (its start and stop are
timed apart). Then both load the grid back from their stores (the cost of a sweep with nothing to train).
Not a test: numbers depend on the machine and its load. Usage: python benchmarks/executor_overhead.py [--cpus 2]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from vaelib import executor
from vaelib.train import RunConfig

GRID = [RunConfig(arch="mlp", hidden=(32,), latent_dim=z, epochs=3, batch_size=64, n_train=1000, n_test=100, seed=s)
        for z in (2, 3) for s in (0, 1)]


def timed(engine: str, **options) -> tuple[float, float, float]:
    """(seconds to train the grid, seconds to load it back, summed in-task training seconds)."""
    t0 = time.perf_counter()
    outs = list(executor.run([executor.train_job(c) for c in GRID], engine, num_cpus=1, **options))
    train = time.perf_counter() - t0
    assert [o.status for o in outs] == ["computed"] * len(GRID), [o.error for o in outs]
    t0 = time.perf_counter()
    assert {o.status for o in executor.run([executor.train_job(c) for c in GRID], engine)} == {"loaded"}
    return train, time.perf_counter() - t0, sum(o.seconds for o in outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = parser.parse_args()
    import ray

    os.environ["VAELIB_QUIET"] = "1"
    executor.train_job(GRID[0])  # data read once, for both
    rows = {}
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        os.environ["VAELIB_RUNS"] = a
        rows["local"] = timed("local")
        os.environ["VAELIB_RUNS"] = b
        t0 = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        start = time.perf_counter() - t0
        rows["ray"] = timed("ray")
        t0 = time.perf_counter()
        ray.shutdown()
        stop = time.perf_counter() - t0
    print(f"torch {torch.__version__}, ray {ray.__version__}, {len(GRID)} runs, {args.cpus} Ray CPUs, 1 thread per run")
    print("| engine | train the grid (s) | of which in the runs (s) | load it back (s) |\n| --- | --- | --- | --- |")
    for name, (train, load, inside) in rows.items():
        print(f"| {name} | {train:.2f} | {inside:.2f} | {load:.2f} |")
    print(f"ray instance start {start:.2f} s, stop {stop:.2f} s; ray / local for the grid: "
          f"{rows['ray'][0] / rows['local'][0]:.2f}× (start and stop excluded), "
          f"{(rows['ray'][0] + start + stop) / rows['local'][0]:.2f}× (included)")


if __name__ == "__main__":
    main()
