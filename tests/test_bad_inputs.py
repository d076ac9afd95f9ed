"""Bad input and damaged files, one table: every row is a named bad input, and every row is held to the same rule.

- It fails the way the README says: exit status 2 (the `vae` command, `python -m vaelib ...`, a real process) or an
  InputError (a subclass such as DataUnavailable for downloads; NotebookError for the one failing notebook).
- One message line, naming the file or the argument concerned (``where``) and saying what was expected.
- At the command line: that one line on stderr, nothing on stdout, no traceback.
- Nothing created, changed or left behind: the files (bytes and mtimes) and folders of the case's folder and of the
  shared good files are the same before and after. A damaged store entry is reported (one warning line naming it),
  not loaded (``load`` gives MISSING) and deleted, and nothing else in the store, a link's target included, changes.

Groups: cli (in process, and two real processes), data (load_dataset, load_arrays), model (load_model,
save_model), gmm (load_gmm), store (damaged entries, names), runner (output roots, profiles, chapters, a failing
notebook), download (a local server on 127.0.0.1: stalls, truncation, wrong digests). Small fixtures only: the
whole file runs in well under a minute, most of it two real processes and one Jupyter kernel start.
"""
from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch

from vaelib import __main__ as vaelib_main
from vaelib import cli, data, gmm, store
from vaelib.data import DATASETS, DataUnavailable, download, load_arrays, load_dataset
from vaelib.errors import InputError, NotebookError
from vaelib.experiments import settings
from vaelib.models import build_model, load_model, save_model
from vaelib.report import chapter_summary, figure_dir, run_report, write_metrics, write_table

from helpers import idx_bytes, write_idx
from test_cli import _Trap
from test_download import DIGEST, PAYLOAD, STALL, server  # noqa: F401  (server: the local HTTP server fixture)
from test_report import CHAPTER, _notebook
from test_store import _flip, _rewrite_manifest, _run

ROOT = Path(__file__).resolve().parents[1]
IMAGES, LABELS = DATASETS["mnist"].files["train"]  # train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz
GROUP = "bad_inputs.compute"  # a store group of plain values
RUN_GROUP = "vaelib.train._train"  # the store group whose values are training runs (checked like model files)


# ---------------------------------------------------------------- good files, shared by every case

@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A tiny model (784-8-2), a mixture fitted for it (classes 0 and 1), TEST (12 images, labels), TRAIN (12,
    no labels) and VAL (12, labels): the good half of each bad command line. Watched by every case."""
    d = tmp_path_factory.mktemp("good")
    torch.manual_seed(0)
    model = build_model("mlp", 2, hidden=[8])
    save_model(model, d / "vae.pth")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), np.array([0, 1] * 6)
    np.savez(d / "test.npz", x=x, y=y)
    np.savez(d / "train.npz", x=x)
    np.savez(d / "val.npz", x=x, y=y)
    z = np.r_[rng.normal(-2, 0.5, (15, 2)), rng.normal(2, 0.5, (15, 2))]
    clf = gmm.fit_classifier(z, z, np.repeat([0, 1], 15), [0, 1], reg_covar=1e-3)
    gmm.save_gmm(d / "gmm_params.pkl", clf, {"model_sha256": cli.model_fingerprint(model), "latent_dim": 2})
    return SimpleNamespace(dir=d, model=d / "vae.pth", gmm=d / "gmm_params.pkl", test=d / "test.npz",
                           train=d / "train.npz", val=d / "val.npz", x=x, y=y)


@pytest.fixture
def ctx(good, tmp_path, monkeypatch, request):
    """What a case builds its bad input with: ``tmp`` (its own folder, watched), the good files, monkeypatch, and
    ``server()`` (the local HTTP server). The store, the output root and every data source point into ``tmp``."""
    tmp = tmp_path / "case"
    tmp.mkdir()
    monkeypatch.setenv("VAELIB_RUNS", str(tmp / "store"))
    monkeypatch.setenv("VAELIB_OUT", str(tmp / "out"))
    monkeypatch.delenv("VAELIB_STAGE", raising=False)
    monkeypatch.delenv("VAELIB_DATA", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp / "system")
    monkeypatch.setattr(data, "CACHE_DIR", tmp / "cache")
    monkeypatch.setattr(data, "_online", lambda: False)
    return SimpleNamespace(**vars(good), good=good, tmp=tmp, monkeypatch=monkeypatch, request=request,
                           server=lambda: request.getfixturevalue("server"))


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Every file, folder and link under ``folders`` (links not followed): kind, and for files their mtime and
    bytes, for links their target. Folders count by existence only (a temporary file made and removed inside
    changes a folder's mtime, and that is allowed)."""
    seen = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                p = Path(dirpath, name)
                st = p.lstat()
                if stat.S_ISLNK(st.st_mode):
                    seen[str(p)] = ("link", os.readlink(p))
                elif stat.S_ISDIR(st.st_mode):
                    seen[str(p)] = ("folder",)
                else:
                    seen[str(p)] = ("file", st.st_mtime_ns, p.read_bytes())
    return seen


# ---------------------------------------------------------------- builders of bad files

def call(fn: Callable, *args, **kwargs) -> Callable[[], Any]:
    """``fn(*args, **kwargs)``, later: the arguments (the bad files) are built now, before the snapshot."""
    return lambda: fn(*args, **kwargs)


def npz(c, name: str, **arrays) -> Path:
    """``arrays`` as NPZ content in ``c.tmp/name`` (whatever the name's suffix; object arrays are pickled)."""
    with open(c.tmp / name, "wb") as f:
        np.savez(f, **arrays)
    return c.tmp / name


def npy(c, name: str, array: np.ndarray) -> Path:
    with open(c.tmp / name, "wb") as f:
        np.save(f, array, allow_pickle=True)
    return c.tmp / name


def raw(c, name: str, content: bytes) -> Path:
    (c.tmp / name).write_bytes(content)
    return c.tmp / name


def cut(c, name: str, source: Path, keep: int) -> Path:
    """The first ``keep`` bytes of ``source``: a truncated copy."""
    return raw(c, name, source.read_bytes()[:keep])


def images(n=4, dtype=np.uint8, value=0):
    return np.full((n, 28, 28), value, dtype)


def lying_npy(c, name: str, shape: tuple, descr: str = "<f8") -> Path:
    """An .npy whose header declares ``shape`` but which holds 100 data bytes."""
    with open(c.tmp / name, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
        f.write(bytes(100))
    return c.tmp / name


def trap_objects(c, n: int) -> np.ndarray:
    """An object array whose unpickling would create the folder ``pwned`` in the case's folder."""
    out = np.empty(n, dtype=object)
    out[:] = [_Trap(c.tmp / "pwned") for _ in range(n)]
    return out


def mnist_root(c, train_images=None, train_labels=None, *, keep_digests=False, only_images=False,
               replace: dict[str, bytes] | None = None) -> Path:
    """A folder holding MNIST's train pair (IDX .gz; ``replace``: file name → other bytes); the registry's digests
    are switched off for it unless ``keep_digests`` (then these made-up files fail the SHA-256 check)."""
    root = c.tmp / "root"
    root.mkdir(exist_ok=True)
    fi, fl = DATASETS["mnist"].files["train"]
    write_idx(root / fi, images(10) if train_images is None else train_images)
    if not only_images:
        write_idx(root / fl, np.arange(10, dtype=np.uint8) if train_labels is None else train_labels)
    for name, content in (replace or {}).items():
        (root / name).write_bytes(content)
    if not keep_digests:
        for f in (fi, fl):
            c.monkeypatch.setitem(DATASETS["mnist"].sha256, f.removesuffix(".gz"), "")
    return root


def model_file(c, name: str, change: Callable[[dict], Any]) -> Path:
    """The good model file with ``change`` applied to its dict, saved (weights only) as ``c.tmp/name``."""
    torch.save(change(torch.load(c.model, weights_only=True)), c.tmp / name)
    return c.tmp / name


def config(**change):
    return lambda b: {**b, "model_config": {**b["model_config"], **change}}


def weights(fn):
    return lambda b: {**b, "state_dict": fn(dict(b["state_dict"]))}


def nan_model(c):
    model = build_model("mlp", 2, hidden=[8])
    with torch.no_grad():
        model.enc_mu.bias.fill_(float("nan"))
    return lambda: save_model(model, c.tmp / "nan_saved.pth")


def gmm_file(c, name: str, change: Callable[[dict], dict]) -> Path:
    """The good mixture file's arrays with ``change`` applied (a dict of replaced arrays), as ``c.tmp/name``."""
    with np.load(c.gmm, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    new = {**arrays, **change(arrays)}
    return npz(c, name, **{k: v for k, v in new.items() if v is not None})


def entry(c, damage: Callable[[Path, Path], Any], group: str = GROUP, value: Callable[[], Any] | None = None):
    """Two stored entries (keys k1, k2) of ``group``; ``damage(k1's folder, k2's folder)``; returns (k1, group)."""
    make = value or (lambda: {"a": np.arange(6.0), "s": "text", "t": torch.ones(2)})
    for k in ("k1", "k2"):
        store.compute(k, group, make)
    damage(store.root() / group / "k1", store.root() / group / "k2")
    return "k1", group


def run_entry(c, **change):
    """A stored training run, rewritten with ``change`` and matching checksums: only the content check can tell."""
    def damage(e, other):
        store._write_entry(e, _run(**change), json.loads((e / "manifest.json").read_text()))
    return entry(c, damage, RUN_GROUP, _run)


def relink(e, other, *names):
    for n in names:
        (e / n).unlink()
        (e / n).symlink_to(other / n)


def fetch(c, route=None, mirror=None, name="f.gz", digests=None):
    """``download`` of f.gz into an existing, empty folder, from the local server's /a/ serving ``route`` (or from
    ``mirror``), with a 0.2 s stall timeout."""
    if mirror is None:
        url, routes, _ = c.server()
        routes["/a/f.gz"] = route
        mirror = f"{url}/a/"
    dest = c.tmp / "dest"
    dest.mkdir(exist_ok=True)
    return lambda: download([name], dest, [mirror], {"f.gz": DIGEST} if digests is None else digests, gunzip=True,
                            online=True, timeout=0.2)


def silent_socket(c) -> str:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte; its URL prefix."""
    sock = socket.create_server(("127.0.0.1", 0))
    held, done = [], threading.Event()

    def accept():
        while not done.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()

    def close():
        done.set()
        sock.close()
        for conn in held:
            conn.close()

    c.request.addfinalizer(close)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/a/"


def closed_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/a/"


def setenv(c, variable: str, value: Any, then: Any) -> Any:
    """``then`` (an argv or a call), with ``$variable`` set to ``value``."""
    c.monkeypatch.setenv(variable, str(value))
    return then


def key_figure_and_table(c) -> tuple[Path, Path]:
    """A key figure and a key table under the output root, as a chapter makes them before its summary."""
    fig = figure_dir("00_demo", "smoke") / "key.png"
    fig.write_bytes(b"png")
    return fig, write_table(pd.DataFrame({"a": [1]}), "t", "smoke")


def failing_notebook(c):
    """Chapter 00_demo's outputs as a successful run left them (v1), then a notebook that writes v2's figure,
    table and metrics and fails in a later cell: run_report must leave v1 as it was."""
    out, nbs = c.tmp / "out", c.tmp / "notebooks"
    fig = figure_dir("00_demo", "smoke") / "key.png"
    fig.write_bytes(b"v1")
    table = write_table(pd.DataFrame({"v": ["v1"]}), "demo", "smoke")
    write_metrics("00_demo", {"v": "v1", "report": chapter_summary("Demo", ["v1."], fig, table, profile="smoke")},
                  "smoke")
    _notebook(nbs, "00_demo", 'VERSION = b"v2"', *CHAPTER, "x = 1", 'raise RuntimeError("late failure")')
    return lambda: run_report("smoke", notebooks_dir=nbs, out=out, log=lambda *a, **k: None)


def process(*argv) -> Callable[[Any], list[str]]:
    """A real process: ``argv`` with ``python`` replaced by this interpreter and ``vae`` by its console script."""
    def make(c):
        exe = {"python": sys.executable, "vae": str(Path(sys.executable).with_name("vae"))}
        if argv[0] == "vae" and not Path(exe["vae"]).is_file():
            pytest.skip("the vae console script is not installed next to this Python")
        return [exe.get(argv[0], argv[0]), *(str(getattr(c, a[1:], a)) if a.startswith("@") else a for a in argv[1:])]
    return make


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Case:
    group: str
    name: str
    make: Callable[[Any], Any]  # builds the bad input; returns the argv (vae, main, proc), a call, or (key, group)
    where: str  # the file or argument the message line names
    says: str = ""  # a regular expression the line also matches
    via: str = "call"  # vae: cli.main; main: vaelib.__main__.main; proc: a real process; call: raises; store: load
    error: type = InputError


def vae(*argv):
    """A `vae` command line; "@name" stands for the good file ``name`` (model, gmm, test, train, val)."""
    return lambda c: [getattr(c.good, a[1:]) if isinstance(a, str) and a.startswith("@") else a for a in argv]


def train(*options):
    return lambda c: [c.train, c.val, "train", c.tmp / "m.pth", c.tmp / "g.pkl", *options]


CASES = [
    # ---- the `vae` command (seed 000's grammar), in process
    Case("cli", "no arguments", vae(), "command", "none of train, test_reconstruction", "vae"),
    Case("cli", "unknown command", vae("@test", "evaluate", "@model"), "evaluate", "command: none of train", "vae"),
    Case("cli", "unknown option", vae("@test", "test_reconstruction", "@model", "--frobnicate"), "--frobnicate",
         "unrecognized arguments", "vae"),
    Case("cli", "missing mixture argument", vae("@test", "test_classifier", "@model"), "gmm_params.pkl", "required",
         "vae"),
    Case("cli", "TEST missing", lambda c: [c.tmp / "gone.npz", "test_reconstruction", c.model], "gone.npz",
         "file not found", "vae"),
    Case("cli", "TEST a folder", lambda c: [(c.tmp / "dir.npz").mkdir() or c.tmp / "dir.npz", "test_reconstruction",
                                            c.model], "dir.npz", "file not found", "vae"),
    Case("cli", "TEST truncated", lambda c: [cut(c, "cut.npz", c.test, 300), "test_reconstruction", c.model],
         "cut.npz", "unreadable", "vae"),
    Case("cli", "TEST with its images under another key", lambda c: [npz(c, "keys.npz", pixels=images()),
                                                                     "test_reconstruction", c.model],
         "keys.npz", r"no image array among keys \['pixels'\]", "vae"),
    Case("cli", "TEST labels the model does not know", lambda c: [npz(c, "seven.npz", x=images(2), y=[0, 7]),
                                                                  "test_classifier", c.model, c.gmm],
         "seven.npz", r"labels \[7\] are not among the model's classes \[0, 1\]", "vae"),
    Case("cli", "model file missing", lambda c: [c.test, "test_reconstruction", c.tmp / "none.pth"], "none.pth",
         "file not found", "vae"),
    Case("cli", "model file a pickle that would run code",
         lambda c: [c.test, "test_reconstruction", raw(c, "trap.pth", torch_pickle(c))], "trap.pth",
         "unreadable model file", "vae"),
    Case("cli", "mixture file a pickle that would run code",
         lambda c: [c.test, "test_classifier", c.model, raw(c, "trap.pkl", pickle.dumps(
             {"means": _Trap(c.tmp / "pwned")}))], "trap.pkl", "unreadable", "vae"),
    Case("cli", "model file with NaN weights", lambda c: [c.test, "test_reconstruction", model_file(
        c, "nan.pth", weights(lambda s: {k: v * np.nan for k, v in s.items()}))], "nan.pth",
         "holds NaN or infinite values", "vae"),
    Case("cli", "mixture fitted for another model", lambda c: [c.test, "test_classifier", other_model(c), c.gmm],
         "gmm_params.pkl", r"fitted for another model \(weights differ from .*other\.pth\)", "vae"),
    Case("cli", "mixture for another latent size", lambda c: [c.test, "test_classifier", z4_model(c), c.gmm],
         "gmm_params.pkl", "latent size 4", "vae"),
    Case("cli", "--out an existing file of another kind", lambda c: [c.test, "test_reconstruction", c.model,
                                                                     "--out", raw(c, "notes.txt", b"keep")],
         "--out", "notes.txt: an existing file without the .png suffix", "vae"),
    Case("cli", "--n-show 0", vae("@test", "test_reconstruction", "@model", "--n-show", "0"), "--n-show",
         "0 is not ≥ 1", "vae"),
    Case("cli", "--device tpu", vae("@test", "test_reconstruction", "@model", "--device", "tpu"), "--device 'tpu'",
         "unknown or not on this machine", "vae"),
    Case("cli", "--seed -1", train("--seed", "-1"), "--seed", "-1 is not ≥ 0; expected 0 … 4294967295", "vae"),
    Case("cli", "--seed 2**32", train("--seed", str(2**32)), "--seed", "4294967296 is not ≤ 4294967295", "vae"),
    Case("cli", "--lr nan", train("--lr", "nan"), "--lr", "nan is not a positive number", "vae"),
    Case("cli", "--latent-dim 10**12", train("--latent-dim", str(10**12)), "--latent-dim", "is not ≤ 4096", "vae"),
    Case("cli", "--hidden 0", train("--hidden", "0"), "--hidden", "expected 1 to 64 comma-separated", "vae"),
    Case("cli", "--epochs two", train("--epochs", "two"), "--epochs", "invalid number value", "vae"),
    Case("cli", "output is an input", lambda c: [c.train, c.val, "train", c.val, c.tmp / "g.pkl"], "val.npz",
         "is also an input file", "vae"),
    Case("cli", "same output twice", lambda c: [c.train, c.val, "train", c.tmp / "a.pth", c.tmp / "a.pth"], "a.pth",
         "given twice as an output", "vae"),
    Case("cli", "VAL without labels", lambda c: [c.train, c.train, "train", c.tmp / "m.pth", c.tmp / "g.pkl"],
         "train.npz", "no labels", "vae"),
    Case("cli", "VAL of one class", lambda c: [c.train, npz(c, "one.npz", x=images(3), y=[1, 1, 1]), "train",
                                               c.tmp / "m.pth", c.tmp / "g.pkl"], "one.npz", r"only class \[1\]",
         "vae"),
    Case("cli", "TRAIN labels outside VAL's classes", lambda c: [npz(c, "tr.npz", x=images(3), y=[0, 1, 5]), c.val,
                                                                 "train", c.tmp / "m.pth", c.tmp / "g.pkl"],
         "tr.npz", r"labels \[5\] are not among the classes", "vae"),
    # ---- through real processes (python -m vaelib.cli, the vae script): exit status 2, one line, no traceback
    Case("cli", "process: python -m vaelib.cli, TEST missing",
         process("python", "-m", "vaelib.cli", "nowhere.npz", "test_reconstruction", "@model"), "nowhere.npz",
         "file not found", "proc"),
    Case("cli", "process: the vae script, --seed -1",
         process("vae", "@train", "@val", "train", "m.pth", "g.pkl", "--seed", "-1"), "--seed", "is not ≥ 0", "proc"),
    # ---- python -m vaelib report|sweep|store
    Case("runner", "report --profile medium", lambda c: ["report", "--profile", "medium"], "'medium'",
         "unknown profile; expected one of smoke, full", "main"),
    Case("runner", "report --only a chapter that does not exist", lambda c: ["report", "--only", "99_nope"],
         "'99_nope'", "not found; expected one of 00_data", "main"),
    Case("runner", "report with $VAELIB_OUT a regular file",
         lambda c: setenv(c, "VAELIB_OUT", raw(c, "out.txt", b"not a folder"), ["report", "--profile", "smoke"]),
         "out.txt",
         r"\$VAELIB_OUT .*: not a folder", "main"),
    Case("runner", "sweep --only an unknown chapter", lambda c: ["sweep", "--profile", "smoke", "--only", "07_x"],
         "'07_x'", "unknown; expected one of 00_data", "main"),
    Case("runner", "sweep --profile medium", lambda c: ["sweep", "--profile", "medium"], "'medium'",
         "unknown profile", "main"),
    Case("runner", "store prune --older-than -1 (would delete every entry)",
         lambda c: ["store", "prune", "--older-than", "-1"], "--older-than", "'-1' is not a number of days", "main"),
    Case("runner", "store prune --older-than nan", lambda c: ["store", "prune", "--older-than", "nan"],
         "--older-than", "expected a finite number ≥ 0", "main"),
    Case("runner", "store with an unknown action", lambda c: ["store", "repair"], "'repair'", "invalid choice",
         "main"),
    Case("runner", "$VAELIB_STAGE a regular file", lambda c: setenv(
        c, "VAELIB_STAGE", raw(c, "out.txt", b"not a folder"), call(write_table, pd.DataFrame({"a": [1]}), "t")),
         "out.txt", r"\$VAELIB_STAGE .*: not a folder"),
    Case("runner", "run_report(out=) a regular file",
         lambda c: call(run_report, "smoke", notebooks_dir=c.tmp, out=raw(c, "out.txt", b"not a folder")), "out.txt",
         "output folder .*: not a folder"),
    Case("runner", "a table named ../escape", lambda c: lambda: write_table(pd.DataFrame({"a": [1]}), "../escape"),
         "'../escape'", "not a plain file name"),
    Case("runner", "a chapter summary without its key figure",
         lambda c: lambda: chapter_summary("T", ["f."], "figures/x.png", "t", profile="smoke"), "figures/x.png",
         "not found; expected the chapter's key figure"),
    Case("runner", "a chapter summary with one string of findings", lambda c: call(
        chapter_summary, "T", "one string", *key_figure_and_table(c), profile="smoke"), "findings",
         "findings is a str; expected a list of 1 to 5"),
    Case("runner", "an unknown chapter's settings", lambda c: lambda: settings("99_x", "smoke"), "'99_x'",
         "unknown; expected one of 00_data"),
    Case("runner", "an unknown setting", lambda c: lambda: settings("01_vae", "smoke", {"epoch": 5}), "'epoch'",
         "unknown; expected some of"),
    Case("runner", "a notebook failing after writing new outputs", failing_notebook, "00_demo.ipynb",
         r"cell \[\d+\] \('raise RuntimeError.*'\) raised RuntimeError: late failure", error=NotebookError),
    # ---- load_dataset: named data sets, folders, classes
    Case("data", "unknown data set", lambda c: call(load_dataset, "cifar"), "'cifar'", "unknown; expected one of"),
    Case("data", "unknown split", lambda c: call(load_dataset, "mnist", "validation"), "'validation'",
         "expected 'train' or 'test'"),
    Case("data", "root missing", lambda c: call(load_dataset, "mnist", root=c.tmp / "nowhere"), "nowhere (root)",
         "no such folder"),
    Case("data", "root a regular file", lambda c: call(load_dataset, "mnist", root=raw(c, "afile", b"x")),
         "afile (root)", "not a folder; expected a folder holding mnist IDX files"),
    Case("data", "root with images but no labels",
         lambda c: call(load_dataset, "mnist", root=mnist_root(c, only_images=True)),
         "root (root)", "has train-images-idx3-ubyte.gz but not train-labels-idx1-ubyte.gz"),
    Case("data", "root without this data set", lambda c: call(load_dataset, "fashion-mnist", root=c.tmp),
         "(root)", "no fashion-mnist train files"),
    Case("data", "$VAELIB_DATA missing", lambda c: setenv(
        c, "VAELIB_DATA", c.tmp / "gone", call(load_dataset, "mnist")), "gone ($VAELIB_DATA)", "no such folder"),
    Case("data", "$VAELIB_DATA with half a pair", lambda c: setenv(
        c, "VAELIB_DATA", mnist_root(c, only_images=True), call(load_dataset, "mnist")), "root ($VAELIB_DATA)",
         "but not train-labels"),
    Case("data", "EMNIST offline without its files", lambda c: call(load_dataset, "emnist-digits", "test"),
         "emnist-digits", "no local copy .* and no network; expected emnist-digits-test-images",
         error=DataUnavailable),
    Case("data", "IDX files that are not the canonical MNIST",
         lambda c: call(load_dataset, "mnist", root=mnist_root(c, keep_digests=True)),
         "train-images-idx3-ubyte.gz", "SHA-256 of its IDX content is [0-9a-f]{16}…; expected ba891046e6505d7a…"),
    Case("data", "IDX labels out of range", lambda c: call(load_dataset, "mnist", root=mnist_root(
        c, train_labels=np.full(10, 10, np.uint8))), LABELS, "label 10; expected class indices 0–9"),
    Case("data", "IDX images 32×32", lambda c: call(load_dataset, "mnist", root=mnist_root(
        c, np.zeros((10, 32, 32), np.uint8))), IMAGES, r"images have shape \(10, 32, 32\)"),
    Case("data", "IDX .gz truncated", lambda c: call(load_dataset, "mnist", root=mnist_root(
        c, replace={IMAGES: gzip.compress(idx_bytes(images(10)))[:40]})), IMAGES, "unreadable or truncated"),
    Case("data", "IDX with fewer bytes than its header declares", lambda c: call(load_dataset, "mnist", root=mnist_root(
        c, replace={IMAGES: gzip.compress(idx_bytes(images(10))[:-50])})), IMAGES,
         r"holds 7790 data bytes; expected 7840 for shape \(10, 28, 28\)"),
    Case("data", "IDX not IDX at all", lambda c: call(load_dataset, "mnist", root=mnist_root(
        c, replace={LABELS: gzip.compress(b"hello")})), LABELS, "not an IDX file"),
    Case("data", "classes: none", lambda c: call(load_dataset, str(c.val), classes=[]), "classes []",
         r"none given; expected some of the classes present in val: \['0', '1'\]"),
    Case("data", "classes: one without images", lambda c: call(load_dataset, str(c.val), classes=[0, 5]),
         "class 5", r"no images of it in val"),
    Case("data", "classes: an unknown name", lambda c: call(load_dataset, str(c.val), classes=["cat"]),
         "class 'cat'", "expected names or indices of the classes present"),
    Case("data", "classes of an unlabelled file", lambda c: call(load_dataset, str(c.train), classes=[0]),
         "train", "has no labels; expected labels to filter classes"),
    # ---- load_arrays: user .npz/.npy files
    Case("data", "npz truncated", lambda c: call(load_arrays, cut(c, "t.npz", c.test, 200)), "t.npz",
         "unreadable"),
    Case("data", "npy of random bytes", lambda c: call(load_arrays, raw(c, "r.npy", os.urandom(64))), "r.npy",
         "unreadable"),
    Case("data", "empty file", lambda c: call(load_arrays, raw(c, "e.npy", b"")), "e.npy", "unreadable"),
    Case("data", "a folder named x.npz", lambda c: call(load_arrays, (c.tmp / "x.npz").mkdir() or c.tmp / "x.npz"),
         "x.npz", "file not found"),
    Case("data", "images 27×27", lambda c: call(load_arrays, npz(c, "s.npz", x=np.zeros((3, 27, 27)))), "s.npz",
         r"images have shape \(3, 27, 27\)"),
    Case("data", "images RGB", lambda c: call(load_arrays, npy(c, "rgb.npy", np.zeros((2, 3, 28, 28), np.uint8))),
         "rgb.npy", r"images have shape \(2, 3, 28, 28\)"),
    Case("data", "no images (N = 0)", lambda c: call(load_arrays, npz(c, "n0.npz", x=np.zeros((0, 784)))),
         "n0.npz", r"shape \(0, 784\); expected N×28×28 or N×784 with N ≥ 1"),
    Case("data", "images complex", lambda c: call(load_arrays, npz(c, "cx.npz", x=images(2, np.complex64))),
         "cx.npz", "dtype complex64"),
    Case("data", "images strings", lambda c: call(load_arrays, npz(c, "str.npz", x=np.full((2, 784), "a"))),
         "str.npz", "dtype <U1"),
    Case("data", "images bool", lambda c: call(load_arrays, npz(c, "b.npz", x=images(2, bool))), "b.npz",
         "dtype bool"),
    Case("data", "float images above 1", lambda c: call(load_arrays, npz(c, "f2.npz", x=images(2, float, 2.0))),
         "f2.npz", r"range over \[2, 2\]; expected \[0, 1\]"),
    Case("data", "float images with NaN", lambda c: call(load_arrays, npz(c, "nan.npz", x=images(2, float, np.nan))),
         "nan.npz", "NaN or inf"),
    Case("data", "integer images negative", lambda c: call(load_arrays, npz(c, "neg.npz", x=images(2, np.int16, -1))),
         "neg.npz", r"range over \[-1, -1\]; expected 0–255"),
    Case("data", "integer images 300", lambda c: call(load_arrays, npz(c, "i300.npz", x=images(2, np.int32, 300))),
         "i300.npz", "expected 0–255"),
    Case("data", "labels 2**40", lambda c: call(load_arrays, npz(c, "l40.npz", x=images(3), y=[0, 2**40, 1])),
         "l40.npz", "label 1099511627776; expected class indices 0–999"),
    Case("data", "labels -1", lambda c: call(load_arrays, npz(c, "lm.npz", x=images(3), y=[0, -1, 1])), "lm.npz",
         "label -1"),
    Case("data", "labels 0.5", lambda c: call(load_arrays, npz(c, "lh.npz", x=images(3), y=[0, 0.5, 1])),
         "lh.npz", "not whole numbers"),
    Case("data", "labels strings", lambda c: call(load_arrays, npz(c, "ls.npz", x=images(2), y=["a", "b"])),
         "ls.npz", "labels have dtype <U1; expected integers"),
    Case("data", "one label too few", lambda c: call(load_arrays, npz(c, "l2.npz", x=images(3), y=[0, 1])),
         "l2.npz", r"labels have shape \(2,\); expected \(3,\)"),
    Case("data", "labels a matrix", lambda c: call(load_arrays, npz(c, "lmat.npz", x=images(2), y=[[0, 1]])),
         "lmat.npz", r"labels have shape \(1, 2\)"),
    Case("data", "images a pickled object array (.npy)", lambda c: call(load_arrays, 
        npy(c, "obj.npy", trap_objects(c, 2 * 784).reshape(2, 28, 28))), "obj.npy", "images have dtype object"),
    Case("data", "labels a pickled object array (.npz)", lambda c: call(load_arrays, 
        npz(c, "objy.npz", x=images(3), y=trap_objects(c, 3))), "objy.npz", "unreadable .*allow_pickle=False"),
    Case("data", "header declaring 10**12 images", lambda c: call(load_arrays, lying_npy(c, "big.npy", (10**12, 784))),
         "big.npy", r"declares a \(1000000000000, 784\) float64 array but holds 100 data bytes"),
    Case("data", "labels required but absent", lambda c: call(load_arrays, c.train, require_labels=True),
         "train.npz", "no labels; expected a label array"),
    # ---- model files (load_model, save_model)
    Case("model", "model file missing", lambda c: call(load_model, c.tmp / "absent.pth"), "absent.pth",
         "file not found"),
    Case("model", "model file of random bytes", lambda c: call(load_model, raw(c, "rand.pth", os.urandom(500))),
         "rand.pth", "unreadable model file"),
    Case("model", "model file truncated", lambda c: call(load_model, cut(c, "short.pth", c.model, 1000)),
         "short.pth", "unreadable model file"),
    Case("model", "model file a pickle that would run code",
         lambda c: call(load_model, raw(c, "code.pth", torch_pickle(c))), "code.pth", "unreadable model file"),
    Case("model", "NaN weights", lambda c: call(load_model, model_file(c, "nanw.pth", weights(
        lambda s: {**s, "enc_mu.bias": torch.full_like(s["enc_mu.bias"], float("nan"))}))), "nanw.pth",
         "weight enc_mu.bias holds NaN or infinite values"),
    Case("model", "absurd latent size", lambda c: call(load_model, model_file(c, "z12.pth", config(latent_dim=10**12))),
         "z12.pth", "latent_dim 1000000000000"),
    Case("model", "latent size a string", lambda c: call(load_model, model_file(c, "zs.pth", config(latent_dim="2"))),
         "zs.pth", "latent_dim '2'"),
    Case("model", "unknown architecture", lambda c: call(load_model, model_file(c, "arch.pth", config(arch="rnn"))),
         "arch.pth", "arch 'rnn'"),
    Case("model", "no hidden layers", lambda c: call(load_model, model_file(c, "h0.pth", config(hidden=[]))),
         "h0.pth", r"hidden \[\]"),
    Case("model", "unknown config key", lambda c: call(load_model, model_file(c, "key.pth", config(dropout=0.5))),
         "key.pth", "unknown key 'dropout'"),
    Case("model", "config a list", lambda c: call(load_model, model_file(
        c, "cl.pth", lambda b: {**b, "model_config": ["mlp", 2]})), "cl.pth", "model_config is a list"),
    Case("model", "a weight of another shape", lambda c: call(load_model, model_file(c, "shape.pth", weights(
        lambda s: {**s, "enc_mu.bias": torch.zeros(3)}))), "shape.pth", r"enc_mu.bias is torch.float32 \(3,\)"),
    Case("model", "history a dict", lambda c: call(load_model, model_file(c, "hist.pth",
                                                                            lambda b: {**b, "history": {}})),
         "hist.pth", "history is a dict; expected a list"),
    Case("model", "not a model at all", lambda c: call(load_model, model_file(c, "t.pth", lambda b: torch.zeros(3))),
         "t.pth", "not a vaelib model"),
    Case("model", "saving a model with NaN weights", nan_model, "nan_saved.pth", "holds NaN"),
    Case("model", "building an unknown architecture", lambda c: lambda: build_model("rnn", 2), "'rnn'",
         "unknown; expected one of"),
    # ---- mixture files (load_gmm)
    Case("gmm", "mixture file missing", lambda c: call(gmm.load_gmm, c.tmp / "absent.pkl"), "absent.pkl",
         "file not found"),
    Case("gmm", "mixture file truncated", lambda c: call(gmm.load_gmm, cut(c, "cut.pkl", c.gmm, 200)), "cut.pkl",
         "unreadable"),
    Case("gmm", "mixture file a single array", lambda c: call(gmm.load_gmm, npy(c, "one.pkl", np.zeros(3))),
         "one.pkl", "unreadable"),
    Case("gmm", "a key missing", lambda c: call(gmm.load_gmm, gmm_file(c, "nokey.pkl", lambda a: {"means": None})),
         "nokey.pkl", r"missing \['means'\]"),
    Case("gmm", "a NaN weight", lambda c: call(gmm.load_gmm, gmm_file(
        c, "nanw.pkl", lambda a: {"weights": np.array([np.nan, 1.0])})), "nanw.pkl", "weights not finite"),
    Case("gmm", "weights summing to 2", lambda c: call(gmm.load_gmm, gmm_file(
        c, "w2.pkl", lambda a: {"weights": a["weights"] * 2})), "w2.pkl", "weights summing to 2"),
    Case("gmm", "integer means", lambda c: call(gmm.load_gmm, gmm_file(
        c, "im.pkl", lambda a: {"means": a["means"].astype(np.int64)})), "im.pkl", "means not finite floats"),
    Case("gmm", "classes floats", lambda c: call(gmm.load_gmm, gmm_file(
        c, "cf.pkl", lambda a: {"classes": a["classes"].astype(float)})), "cf.pkl", r"classes \[0.0, 1.0\]"),
    Case("gmm", "unknown covariance type", lambda c: call(gmm.load_gmm, gmm_file(
        c, "ct.pkl", lambda a: {"covariance_type": np.array("round")})), "ct.pkl", "covariance type 'round'"),
    Case("gmm", "precision factors of other covariances", lambda c: call(gmm.load_gmm, gmm_file(
        c, "prec.pkl", lambda a: {"covariances": 2 * a["covariances"]})), "prec.pkl",
         "covariances that do not match precisions_cholesky"),
    Case("gmm", "metadata a JSON list", lambda c: call(gmm.load_gmm, gmm_file(
        c, "meta.pkl", lambda a: {"meta": np.array("[1, 2]")})), "meta.pkl", "metadata a JSON list"),
    Case("gmm", "metadata not JSON", lambda c: call(gmm.load_gmm, gmm_file(
        c, "mj.pkl", lambda a: {"meta": np.array("{oops")})), "mj.pkl", "unreadable"),
    # ---- the result store: damaged entries are reported, deleted, never loaded; names stay inside
    Case("store", "a flipped byte in arrays.npz", lambda c: entry(c, lambda e, o: _flip(e / "arrays.npz")),
         f"{GROUP}/k1", "arrays.npz: checksum differs", "store"),
    Case("store", "a flipped byte in value.json", lambda c: entry(c, lambda e, o: _flip(e / "value.json", 2)),
         f"{GROUP}/k1", "value.json: checksum differs", "store"),
    Case("store", "value.json truncated", lambda c: entry(c, lambda e, o: (e / "value.json").write_text("{")),
         f"{GROUP}/k1", "value.json: checksum differs", "store"),
    Case("store", "manifest.json truncated", lambda c: entry(
        c, lambda e, o: (e / "manifest.json").write_text((e / "manifest.json").read_text()[:20])),
         f"{GROUP}/k1", r"manifest.json: unreadable \(JSONDecodeError", "store"),
    Case("store", "arrays.npz empty", lambda c: entry(c, lambda e, o: (e / "arrays.npz").write_bytes(b"")),
         f"{GROUP}/k1", "arrays.npz: checksum differs", "store"),
    Case("store", "the manifest of another entry", lambda c: entry(c, lambda e, o: _rewrite_manifest(e, key="k2")),
         f"{GROUP}/k1", "manifest.json: not this entry's", "store"),
    Case("store", "value.json a link to another entry's", lambda c: entry(c, lambda e, o: relink(e, o, "value.json")),
         f"{GROUP}/k1", "value.json: a symbolic link", "store"),
    Case("store", "every file a link to another entry's", lambda c: entry(
        c, lambda e, o: relink(e, o, "value.json", "arrays.npz", "manifest.json")), f"{GROUP}/k1",
         "a symbolic link", "store"),
    Case("store", "the entry a link to another entry", lambda c: entry(
        c, lambda e, o: (shutil.rmtree(e), e.symlink_to(o))), f"{GROUP}/k1", "k1: a symbolic link", "store"),
    Case("store", "the entry a dangling link", lambda c: entry(
        c, lambda e, o: (shutil.rmtree(e), e.symlink_to(o.parent / "nowhere"))), f"{GROUP}/k1", "a symbolic link",
         "store"),
    Case("store", "a training run with NaN weights",
         lambda c: run_entry(c, state_dict={k: v * np.nan for k, v in _run()["state_dict"].items()}),
         f"{RUN_GROUP}/k1", "holds NaN or infinite values", "store"),
    Case("store", "a training run of absurd latent size",
         lambda c: run_entry(c, model_config={"arch": "mlp", "latent_dim": 10**12, "hidden": [8]}),
         f"{RUN_GROUP}/k1", "latent_dim 1000000000000", "store"),
    Case("store", "a training run whose history is a dict", lambda c: run_entry(c, history={}), f"{RUN_GROUP}/k1",
         "history is a dict", "store"),
    Case("store", "group ../escaped", lambda c: lambda: store.compute("k", "../escaped", lambda: 1), "'../escaped'",
         "store group .*: not a plain name"),
    Case("store", "group an absolute path", lambda c: lambda: store.compute("k", str(c.tmp / "abs"), lambda: 1),
         "abs'", "store group .*: not a plain name"),
    Case("store", "key ../../escaped", lambda c: lambda: store.compute("../../escaped", GROUP, lambda: 1),
         "'../../escaped'", "store key .*: not a plain name"),
    Case("store", "key ..", lambda c: lambda: store.load("..", GROUP), "'..'", "store key .*: not a plain name"),
    Case("store", "key a number", lambda c: lambda: store.load(7, GROUP), "store key 7", "not a plain name"),
    # ---- download (a local server, 0.2 s timeout): the URL, what was expected and the digest; nothing lands
    Case("download", "a server that accepts and never answers", lambda c: fetch(c, mirror=silent_socket(c)),
         "/a/f.gz", r"http://127\.0\.0\.1:\d+/a/f\.gz: stalled: no response within 0.2 s; expected HTTP headers",
         error=DataUnavailable),
    Case("download", "a server that reads the request and never answers", lambda c: fetch(c, (STALL, b"", None)),
         "/a/f.gz", "stalled: no response within 0.2 s", error=DataUnavailable),
    Case("download", "headers, part of the body, then silence",
         lambda c: fetch(c, (200, PAYLOAD[:10] + STALL, len(PAYLOAD))), "/a/f.gz",
         rf"stalled: no data for 0.2 s after 10 of {len(PAYLOAD)} bytes; expected the rest", error=DataUnavailable),
    Case("download", "a truncated body", lambda c: fetch(c, (200, PAYLOAD[:-20], len(PAYLOAD))), "/a/f.gz",
         rf"truncated: received {len(PAYLOAD) - 20} of {len(PAYLOAD)} bytes", error=DataUnavailable),
    Case("download", "the wrong file", lambda c: fetch(c, (200, gzip.compress(b"other"), None)), "/a/f.gz",
         rf"SHA-256 of its gunzipped content is [0-9a-f]{{16}}…; expected {DIGEST[:16]}…", error=DataUnavailable),
    Case("download", "not gzip content", lambda c: fetch(c, (200, b"plain text", None)), "/a/f.gz",
         "not gzip content", error=DataUnavailable),
    Case("download", "HTTP 404", lambda c: fetch(c, (404, b"no", None)), "/a/f.gz", "HTTP Error 404",
         error=DataUnavailable),
    Case("download", "connection refused", lambda c: fetch(c, mirror=closed_port()), "/a/f.gz", "refused",
         error=DataUnavailable),
    Case("download", "a file without a digest", lambda c: fetch(c, (200, PAYLOAD, None), digests={}), "f.gz",
         "no SHA-256 to check it against"),
    Case("download", "the destination a regular file", lambda c: call(
        download, ["f.gz"], raw(c, "dest", b"x"), ["http://127.0.0.1:9/"], {"f.gz": DIGEST}, online=True), "dest",
         "not a folder .*; expected a folder to download f.gz into"),
]


def torch_pickle(c) -> bytes:
    """A torch.save file whose unpickling would create the folder ``pwned``."""
    import io

    buf = io.BytesIO()
    torch.save({"model_config": _Trap(c.tmp / "pwned"), "state_dict": {}}, buf)
    return buf.getvalue()


def other_model(c) -> Path:
    """The good model with one bias changed: the same shapes, other weights."""
    model, _ = load_model(c.model)
    with torch.no_grad():
        model.dec[0].bias.add_(0.01)
    save_model(model, c.tmp / "other.pth")
    return c.tmp / "other.pth"


def z4_model(c) -> Path:
    save_model(build_model("mlp", 4, hidden=[8]), c.tmp / "z4.pth")
    return c.tmp / "z4.pth"


def test_the_table_is_large_and_its_names_unique():
    names = [(c.group, c.name) for c in CASES]
    assert len(set(names)) == len(names) >= 60
    assert {c.group for c in CASES} == {"cli", "data", "model", "gmm", "store", "runner", "download"}


# ---------------------------------------------------------------- the rule every row is held to

def _one_line(text: str, prefix: str = "") -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), f"expected one line starting {prefix!r}, got {text!r}"
    return lines[0]


def _command(case, action, capsys) -> str:
    entry_point, prefix = (cli.main, "vae: error: ") if case.via == "vae" else (vaelib_main.main, "error: ")
    capsys.readouterr()
    status = entry_point([os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in action])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and "Traceback" not in err, (status, out, err)
    return _one_line(err, prefix)


def _process(case, argv, ctx) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ctx.tmp, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr, proc
    return _one_line(proc.stderr, "vae: error: ")


def _call(case, action) -> str:
    with pytest.raises(case.error) as info:
        action()
    return _one_line(str(info.value))


def _store_load(case, action) -> tuple[str, Path]:
    k, group = action
    folder = store.root() / group / k
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert store.load(k, group) is store.MISSING  # never loaded as it is
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1, messages
    assert not os.path.lexists(folder)  # deleted (a link: the link only)
    assert store.verify() == []  # the other entry is intact
    return _one_line(messages[0], f"store: {folder}: damaged ("), folder


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.group}: {c.name}", marks=[pytest.mark.kernel] * (
    c.error is NotebookError)) for c in CASES])
def test_bad_input(case, ctx, capsys):
    action = case.make(ctx)
    watched = (ctx.tmp, ctx.good.dir)
    before = snapshot(*watched)
    gone = None
    if case.via in ("vae", "main"):
        line = _command(case, action, capsys)
    elif case.via == "proc":
        line = _process(case, action, ctx)
    elif case.via == "store":
        line, gone = _store_load(case, action)
    else:
        line = _call(case, action)
    assert case.where in line, f"{case.where!r} not named in {line!r}"
    assert re.search(case.says, line), f"{case.says!r} not in {line!r}"
    if case.via != "store" and case.error is not NotebookError:
        assert "expected" in line, f"the line does not say what was expected: {line!r}"
    after = snapshot(*watched)
    if case.error is NotebookError:  # the failing kernel's log (<out>/build/logs, never committed) stays for the user
        logs = {p for p in after if f"{os.sep}build" in p and p not in before}
        assert any(p.endswith(f"logs{os.sep}00_demo.log") for p in logs), logs
        after = {p: v for p, v in after.items() if p not in logs}
    if gone is not None:  # a damaged entry goes, and nothing else changes
        before = {p: v for p, v in before.items() if p != str(gone) and not p.startswith(f"{gone}{os.sep}")}
    assert after == before, {p for p in set(before) ^ set(after)} or {p for p in before if before[p] != after[p]}
    assert not (ctx.tmp / "pwned").exists()  # nothing was unpickled
