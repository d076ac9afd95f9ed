"""Run lists of store jobs (trainings, or other cached computations) with one of two engines.

A ``Job`` is one store entry to compute: its key (``store.key``), the function whose code keys it (its group),
and how to compute its value. ``run(jobs, engine="local")`` computes the missing ones in-process, one at a time;
``engine="ray"`` submits each as a Ray task (``num_cpus``/``num_gpus`` per task, torch threads = the task's CPUs,
``max_retries`` after a worker dies) and the driver writes each returned value into its own store as it arrives,
atomically (``store.compute``): no shared filesystem, a crashed sweep keeps what it stored, and a rerun computes
only what is missing. Ray is an optional extra: ``pip install "vaelib[ray]"``.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from . import store, train
from .errors import InputError

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Job:
    """One store entry: ``task(*inputs())`` computes the value of ``key`` in the group of ``fn``. ``inputs`` is
    called only when the job runs, so that a long list of jobs does not hold every run's data."""

    key: str
    fn: Callable
    label: str
    inputs: Callable[[], tuple]
    task: Callable[..., Any]

    @property
    def group(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


@dataclass
class Outcome:
    """What became of a job: "loaded" (already stored), "computed", or "failed" (``error`` says why)."""

    job: Job
    status: str
    seconds: float = 0.0  # computing time, where it ran
    metrics: dict | None = None  # a training run's test metrics
    error: str | None = None


def _train_inputs(cfg: train.RunConfig, net: Any, key: str) -> tuple:
    return cfg, train.load_run_data(cfg), net, key


def _train_value(cfg: train.RunConfig, data: Any, net: Any, key: str) -> dict:
    """``train._train`` for ``cfg``: the stored value of a training run. Its checkpoint stays in the store's
    ``.partial`` folder of the machine it runs on until the run is done, so a retry there resumes it."""
    checkpoint = train.partial_checkpoint(key)
    value = train._train(cfg, data.train, data.val, data.test, checkpoint, train.resolve_device(None), None, net)
    shutil.rmtree(checkpoint.parent, ignore_errors=True)
    return value


def train_job(cfg: train.RunConfig, perceptual_net: Any = None) -> Job:
    """The job of training ``cfg``: the same store entry as ``train.train_or_load(cfg)`` (precision "auto" resolved
    for this machine's default device)."""
    cfg = dataclasses.replace(cfg, precision=train.resolve_precision(cfg.precision))
    data, net = train.load_run_data(cfg), None
    if cfg.perceptual:
        from .fid import perceptual_network  # a domain classifier, trained here through the store if missing

        net = (perceptual_net or perceptual_network(cfg.dataset)).cpu()
    key = train.run_key(cfg, data, net)
    return Job(key, train._train, cfg.label, functools.partial(_train_inputs, cfg, net, key), _train_value)


def cached_job(fn: Callable, *args: Any, label: str | None = None) -> Job:
    """The job of ``store.cached(fn, *args)`` (a derived computation, e.g. features of a trained run)."""
    return Job(store.key(fn, *args), fn, label or fn.__qualname__, lambda: args, fn)


def _outcome(job: Job, value: Any, seconds: float, status: str = "computed") -> Outcome:
    metrics = value.get("metrics") if isinstance(value, dict) else None
    return Outcome(job, status, seconds, metrics if isinstance(metrics, dict) else None)


def _execute(task: Callable, inputs: tuple, fn: Callable, code: str, num_cpus: float | None,
             quiet: bool = True) -> tuple[Any, float]:
    """Where a job runs: torch threads = the job's CPUs, no progress bars (``quiet``), the driver's code."""
    import torch

    if num_cpus:
        torch.set_num_threads(max(1, int(num_cpus)))
    if quiet:
        os.environ["VAELIB_QUIET"] = "1"
    if store.code_digest(fn) != code:
        raise RuntimeError(f"{fn.__module__}.{fn.__qualname__}: this worker's vaelib differs from the driver's; "
                           "expected the same vaelib on every node")
    t0 = time.perf_counter()
    return task(*inputs), time.perf_counter() - t0


def _local(jobs: list[Job], num_cpus: float | None) -> Iterator[Outcome]:
    import torch

    threads = torch.get_num_threads()
    try:
        for job in jobs:
            value, seconds = _execute(job.task, job.inputs(), job.fn, store.code_digest(job.fn), num_cpus, False)
            yield _outcome(job, store.compute(job.key, job.group, lambda: value)[0], seconds)
    finally:
        torch.set_num_threads(threads)


def import_ray() -> Any:
    """The ``ray`` module, or an InputError saying what to install."""
    try:
        import ray
    except ImportError:
        raise InputError('engine "ray": Ray is not installed; expected `pip install "vaelib[ray]"` '
                         "(or `pip install ray`)") from None
    return ray


def _ray(jobs: list[Job], address: str | None, num_cpus: float | None, num_gpus: float,
         max_retries: int) -> Iterator[Outcome]:
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(_execute).options(num_cpus=num_cpus or 1, num_gpus=num_gpus, max_retries=max_retries,
                                              retry_exceptions=False)
        limit = max(2, 2 * int(ray.cluster_resources().get("CPU", 1) // (num_cpus or 1)))  # in flight at once
        todo, running = list(jobs), {}
        while todo or running:
            while todo and len(running) < limit:
                job = todo.pop(0)
                running[remote.remote(job.task, job.inputs(), job.fn, store.code_digest(job.fn), num_cpus or 1)] = job
            [ref], _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ref)
            try:
                value, seconds = ray.get(ref)
            except Exception as e:  # the task raised, or its worker died more than max_retries times
                yield Outcome(job, "failed", error=f"{type(e).__name__}: {str(e).strip().splitlines()[-1]}")
                continue
            yield _outcome(job, store.compute(job.key, job.group, lambda: value)[0], seconds)
            del value
    finally:
        if started:
            ray.shutdown()


def run(jobs: Iterable[Job], engine: str = "local", *, address: str | None = None, num_cpus: float | None = None,
        num_gpus: float = 0, max_retries: int = 3) -> Iterator[Outcome]:
    """Compute the jobs missing from the store with ``engine``; yield one ``Outcome`` per job as it is settled
    (stored ones first). ``local``: in this process, one at a time (``num_cpus``: torch threads, default all).
    ``ray``: one task per job on the cluster at ``address`` ("auto", "ray://host:port"; None starts a local one),
    each with ``num_cpus`` (default 1) CPUs, ``num_gpus`` GPUs and ``max_retries`` retries if its worker dies."""
    if engine not in ENGINES:
        raise InputError(f"engine {engine!r}: unknown; expected one of {', '.join(ENGINES)}")
    if engine == "ray":
        import_ray()  # the clear message before any work
    missing = []
    for job in dict((j.key, j) for j in jobs).values():
        value = store.load(job.key, job.group)
        if value is store.MISSING:
            missing.append(job)
        else:
            yield _outcome(job, value, 0.0, "loaded")
    if missing:
        yield from (_local(missing, num_cpus) if engine == "local" else
                    _ray(missing, address, num_cpus, num_gpus, max_retries))
