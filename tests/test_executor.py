"""The executor (vaelib.executor) and `python -m vaelib sweep`: the ray engine stores what the local one does, bit for
bit; a worker killed mid-grid is retried; an interrupted sweep trains only what is missing; without Ray, one clear
message. Ray tests (marked `ray`) start a local instance or a two-node cluster on 127.0.0.1."""
from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from vaelib import executor, experiments, store
from vaelib.__main__ import main
from vaelib.errors import InputError
from vaelib.train import RunConfig

ROOT = Path(__file__).resolve().parents[1]
GROUP = "vaelib.train._train"
# A smoke grid of 4 tiny runs (MLP 784-32-z on 1,000 images of the MNIST sample, 3 epochs): about a second each.
GRID = [RunConfig(arch="mlp", hidden=(32,), latent_dim=z, epochs=3, batch_size=64, n_train=1000, n_test=100, seed=s)
        for z in (2, 3) for s in (0, 1)]


@pytest.fixture(autouse=True)
def _ray_on_loopback(monkeypatch):
    """Ray instances of these tests listen on 127.0.0.1 only: no token authentication (nothing written to ~/.ray)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")


def _use_store(monkeypatch, folder: Path) -> Path:
    monkeypatch.setenv("VAELIB_RUNS", str(folder))
    return folder


def _entries(folder: Path) -> dict[str, dict]:
    """key → stored value of every training run in the store at ``folder``."""
    return {p.name: store._read_entry(p) for p in sorted((folder / GROUP).glob("[!.]*"))}


def _same_runs(a: dict[str, dict], b: dict[str, dict]) -> None:
    assert sorted(a) == sorted(b) and len(a) == len(GRID)
    for k in a:
        assert a[k]["state_dict"].keys() == b[k]["state_dict"].keys()
        assert all(torch.equal(a[k]["state_dict"][n], b[k]["state_dict"][n]) for n in a[k]["state_dict"]), k
        timeless = [[{c: v for c, v in row.items() if c != "seconds"} for row in e[k]["history"]] for e in (a, b)]
        assert timeless[0] == timeless[1]
        assert {m: v for m, v in a[k]["metrics"].items() if m != "train_seconds"} == \
            {m: v for m, v in b[k]["metrics"].items() if m != "train_seconds"}


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory) -> dict[str, dict]:
    """The grid's store entries from the local engine (torch threads = 1, as one Ray task of 1 CPU)."""
    folder = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as mp:
        _use_store(mp, folder)
        outs = list(executor.run([executor.train_job(c) for c in GRID], "local", num_cpus=1))
        assert [o.status for o in outs] == ["computed"] * 4
        assert [o.status for o in executor.run([executor.train_job(c) for c in GRID])] == ["loaded"] * 4
    return _entries(folder)


def test_local_engine_stores_what_train_or_load_stores(local_runs, tmp_path, monkeypatch):
    from vaelib.train import train_or_load

    _use_store(monkeypatch, tmp_path)
    run = train_or_load(GRID[0], progress=False)
    assert run.key in local_runs and run.key == executor.train_job(GRID[0]).key


@pytest.mark.ray
def test_ray_engine_gives_the_local_engines_entries_bit_for_bit(local_runs, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    _use_store(monkeypatch, tmp_path)
    temp = tempfile.mkdtemp(prefix="vaelib-ray-", dir="/tmp")  # not /tmp/ray; short, for Ray's socket paths
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=temp)
    try:
        outs = list(executor.run([executor.train_job(c) for c in GRID], "ray", num_cpus=1))
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    assert sorted(o.status for o in outs) == ["computed"] * 4, [o.error for o in outs]
    _same_runs(_entries(tmp_path), local_runs)
    assert [o.status for o in executor.run([executor.train_job(c) for c in GRID], "ray")] == ["loaded"] * 4


def _ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _ports(base: int) -> list[str]:
    """A node's ports on loopback: its services at base+1..base+6, its workers at base+10..base+60 (two nodes on one
    host must not share Ray's default ports)."""
    names = ["node-manager", "object-manager", "metrics-export", "runtime-env-agent", "dashboard-agent-grpc",
             "dashboard-agent-listen"]
    return ["--node-ip-address=127.0.0.1", *(f"--{n}-port={base + i}" for i, n in enumerate(names, 1)),
            f"--min-worker-port={base + 10}", f"--max-worker-port={base + 60}"]


def _kill_cluster(psutil, markers: tuple[str, ...]) -> None:
    """SIGKILL this test's Ray processes (their command lines name its temp dir or head address) and their
    children (the workers), by process id: not `ray stop`, which stops every Ray on the machine."""
    procs = [p for p in psutil.process_iter(["cmdline"]) if any(m in " ".join(p.info["cmdline"] or []) for m in markers)]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            procs += p.children(recursive=True)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()


@pytest.mark.ray
def test_two_node_cluster_retries_a_killed_worker_and_never_shows_a_partial_entry(local_runs, tmp_path, monkeypatch):
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("ray")
    driver_store = _use_store(monkeypatch, tmp_path / "driver")
    env = {**os.environ, "VAELIB_RUNS": str(tmp_path / "cluster"), "RAY_USAGE_STATS_ENABLED": "0"}
    base = random.SystemRandom().randrange(20_000, 60_000, 200)  # head at base, worker at base + 100 (training
    # seeds Python's global generator, so not random.randrange)
    temp = tempfile.mkdtemp(prefix="vaelib-ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    head = [_ray_cli(), "start", "--head", f"--port={base}", "--num-cpus=1", f"--temp-dir={temp}",
            "--include-dashboard=false", "--disable-usage-stats", *_ports(base)]
    worker = [_ray_cli(), "start", f"--address=127.0.0.1:{base}", "--num-cpus=1", f"--temp-dir={temp}",
              *_ports(base + 100)]
    killed, partial, stop = [], [], threading.Event()

    def kill_a_worker_task() -> None:  # SIGKILL the first task process of the worker node's raylet
        while not stop.is_set() and not killed:
            for p in psutil.process_iter(["name", "cmdline"]):
                if f"--node_manager_port={base + 101}" in " ".join(p.info["cmdline"] or []):
                    with contextlib.suppress(psutil.Error):
                        for task in p.children(recursive=True):
                            if task.cmdline()[:1] and task.cmdline()[0].startswith("ray::_execute"):
                                task.send_signal(signal.SIGKILL)
                                killed.append(task.pid)
                                break
            time.sleep(0.05)

    def watch_entries() -> None:  # every visible entry must be complete and intact
        while not stop.is_set():
            for folder in (driver_store / GROUP).glob("[!.]*"):
                try:
                    store._check(folder)
                except ValueError as e:
                    partial.append(f"{folder.name}: {e}")
            time.sleep(0.02)

    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=300)
        subprocess.run(worker, env=env, check=True, capture_output=True, timeout=300)
        threads = [threading.Thread(target=f, daemon=True) for f in (kill_a_worker_task, watch_entries)]
        for t in threads:
            t.start()
        outs = list(executor.run([executor.train_job(c) for c in GRID], "ray",
                                 address=f"127.0.0.1:{base}", num_cpus=1, max_retries=3))
    finally:
        stop.set()
        _kill_cluster(psutil, (temp, f"127.0.0.1:{base}"))
        shutil.rmtree(temp, ignore_errors=True)
    assert killed, "no task ran on the worker node"
    assert sorted(o.status for o in outs) == ["computed"] * 4, [o.error for o in outs]
    assert not partial
    _same_runs(_entries(driver_store), local_runs)
    assert not list((tmp_path / "cluster").glob(f"{GROUP}/*"))  # the workers' own stores: no entries


def _sweep_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "vaelib", "sweep", "01_vae", "--profile", "smoke", "--set", "n_train=1000",
            "--set", "epochs=12", "--set", "latent_dim=[2, 3, 4, 5]", *extra]


def test_an_interrupted_sweep_trains_only_the_missing_runs(tmp_path):
    env = {**os.environ, "VAELIB_RUNS": str(tmp_path), "VAELIB_QUIET": "1"}
    proc = subprocess.Popen(_sweep_cmd(), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600  # generous: on a saturated machine the first run takes minutes
        while not list(tmp_path.glob(f"{GROUP}/[!.]*")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # the driver dies after its first stored run
    finally:
        proc.wait()
    done = len(list(tmp_path.glob(f"{GROUP}/[!.]*")))
    assert 1 <= done < 4, proc.stdout.read().decode()
    again = subprocess.run(_sweep_cmd(), env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"4 runs: {done} loaded, {4 - done} trained, 0 failed" in again.stdout
    assert re.search(r"run\s+status\s+train s\s+test −ELBO", again.stdout)  # the summary table
    assert not store.verify() and len(list(tmp_path.glob(f"{GROUP}/[!.]*"))) == 4


def test_ray_engine_without_ray_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(InputError, match=r'Ray is not installed; expected `pip install "vaelib\[ray\]"`'):
        list(executor.run([], "ray"))
    assert main(["sweep", "01_vae", "--profile", "smoke", "--engine", "ray"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "vaelib[ray]"' in err


@pytest.mark.parametrize("argv, message", [
    (["sweep", "99_nope"], r"chapter '99_nope': unknown; expected one of 00_data"),
    (["sweep", "01_vae", "--set", "epoch=3"], r"setting 'epoch' of 01_vae: unknown; expected some of .*epochs"),
    (["sweep", "--set", "epochs=three"], r"setting epochs='three' of 01_vae: not a whole number"),
    (["sweep", "02_latent_sizes", "--set", "latent_dim=[2, -4]"], r"latent_dim=\[2, -4\] .*not a finite number ≥ 0"),
    (["sweep", "06_gmm", "--set", "hidden=64"], r"hidden=64 of 06_gmm: not a list"),
    (["sweep", "01_vae", "--set", "epochs"], r"'epochs' is not a setting; expected KEY=VALUE"),
    (["sweep", "01_vae", "--seeds", "0"], r"'0' is not a count"),
    (["sweep", "01_vae", "--engine", "spark"], r"invalid choice: 'spark'"),
    (["sweep", "01_vae", "--cpus-per-run", "nan"], r"'nan' is not an amount"),
])
def test_bad_sweep_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err


def test_sweep_seeds_and_settings_shape_the_grid():
    from vaelib.experiments import perceptual_options, runs, sweep_settings

    table = sweep_settings(["02_latent_sizes"], "smoke", {"latent_dim": 8}, seeds=5)
    assert [(c.latent_dim, c.seed) for c in runs(table["02_latent_sizes"])] == [(8, s) for s in range(5)]
    beta = runs(sweep_settings(["03_beta_sweep"], "smoke", {"sweep_beta": [0.1, 0.2, 0.5]}, seeds=2)["03_beta_sweep"])
    assert [(c.beta, c.seed) for c in beta[1:]] == [(b, s) for b in (0.1, 0.2, 0.5) for s in (0, 1)]
    every = sweep_settings(None, "smoke")  # no chapter: every chapter
    assert list(every) == list(experiments.CHAPTERS)
    assert perceptual_options(every["07_sharp_vae"]) == {"epochs": 1, "n_train": 500, "seed": 1}


def _squares(n: int) -> list[int]:
    return [i * i for i in range(n)]


def test_a_derived_computation_is_a_job_too(tmp_path, monkeypatch):
    _use_store(monkeypatch, tmp_path)
    [out] = executor.run([executor.cached_job(_squares, 4)])
    assert out.status == "computed" and store.load(out.job.key, out.job.group) == [0, 1, 4, 9]
    assert store.cached(_squares, 4) == [0, 1, 4, 9] and out.job.key == store.key(_squares, 4)
