"""The result store: values round-trip, keys follow content and code, any damage (flipped bytes, links, another
entry's files, bad training runs) is recomputed, names stay inside the store, concurrent writers leave one good
entry, and the store command lists, verifies and prunes."""

import importlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from vaelib import store
from vaelib.__main__ import main
from vaelib.errors import InputError
from vaelib.models import build_model


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path / "store"))
    return tmp_path / "store"


def _module(folder, name, source):
    """Write and (re)import a module ``name`` from ``folder``."""
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop(name, None)
        importlib.invalidate_caches()
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


MODULE = """
    import numpy as np
    CALLS = []
    SCALE = {scale}

    def helper(x):
        return x * SCALE

    def compute(x):
        CALLS.append(1)
        return {{"y": helper(np.asarray(x, dtype=float)), "n": len(x)}}
"""


def test_values_round_trip(root):
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "t": torch.tensor([1, 2], dtype=torch.uint8),
             "frame": pd.DataFrame({"x": [1.5, 2.0], "name": ["p", "q"], "ok": [True, False]}),
             "nested": [1, 2.5, None, "s", (3, 4), {"deep": np.float64(0.25)}], "raw": b"\x00GIF"}
    k = store.key(np.sum, "round trip")
    assert store.compute(k, "t", lambda: value) is not None
    got = store.load(k, "t")
    assert got["a"].dtype == np.float32 and np.array_equal(got["a"], value["a"])
    assert got["t"].dtype == torch.uint8 and torch.equal(got["t"], value["t"])
    pd.testing.assert_frame_equal(got["frame"], value["frame"])
    assert got["nested"] == [1, 2.5, None, "s", (3, 4), {"deep": 0.25}] and got["raw"] == b"\x00GIF"
    with pytest.raises(TypeError, match="cannot be stored"):
        store.compute(store.key(np.sum, "bad"), "t", lambda: {"obj": object()})
    with pytest.raises(TypeError, match="cannot be stored"):
        store.compute(store.key(np.sum, "bad keys"), "t", lambda: {1: "int key"})


def test_digest_follows_content():
    a = np.zeros((2, 3))
    assert store.digest(a) == store.digest(a.copy()) != store.digest(a.astype(np.float32))
    assert store.digest(torch.zeros(3)) != store.digest(torch.zeros(4))
    assert store.digest({"b": 1, "a": 2}) == store.digest({"a": 2, "b": 1})
    m = torch.nn.Linear(2, 2)
    before = store.digest(m)
    with torch.no_grad():
        m.weight[0, 0] += 1
    assert store.digest(m) != before


def test_cached_computes_once_per_input(root, tmp_path):
    mod = _module(tmp_path, "store_mod_a", MODULE.format(scale=2))
    first = store.cached(mod.compute, [1, 2])
    again = store.cached(mod.compute, [1, 2])
    other = store.cached(mod.compute, [1, 2, 3])
    assert len(mod.CALLS) == 2 and np.array_equal(again["y"], [2.0, 4.0]) and again["n"] == 2
    assert np.array_equal(first["y"], again["y"]) and other["n"] == 3


def test_editing_the_code_recomputes(root, tmp_path):
    mod = _module(tmp_path, "store_mod_b", MODULE.format(scale=2))
    store.cached(mod.compute, [1, 2])
    same = _module(tmp_path, "store_mod_b", MODULE.format(scale=2))  # same code: a hit
    assert np.array_equal(store.cached(same.compute, [1, 2])["y"], [2, 4]) and same.CALLS == []
    edited = _module(tmp_path, "store_mod_b", MODULE.format(scale=3))  # a constant it uses changed
    assert np.array_equal(store.cached(edited.compute, [1, 2])["y"], [3, 6]) and len(edited.CALLS) == 1
    helper = MODULE.format(scale=3).replace("return x * SCALE", "return x * SCALE + 1")
    edited_helper = _module(tmp_path, "store_mod_b", helper)  # a function it calls changed
    assert np.array_equal(store.cached(edited_helper.compute, [1, 2])["y"], [4, 7])
    assert len(edited_helper.CALLS) == 1


def test_code_digest_follows_vaelib_references():
    from vaelib import train

    # train_or_load's stored value depends on fit, the models and the losses, not on the report runner
    import vaelib.report  # noqa: F401
    digest = store.code_digest(train._train)
    assert digest == store.code_digest(train._train)
    assert store.code_digest(train.fit) != digest


@pytest.mark.parametrize("damage", ["truncate arrays", "edit value", "bad manifest", "no manifest"])
def test_damaged_entry_is_reported_and_recomputed(root, tmp_path, damage):
    mod = _module(tmp_path, "store_mod_c", MODULE.format(scale=2))
    store.cached(mod.compute, [5.0])
    (entry,) = [p for p in root.glob("*/*") if p.is_dir() and not p.parent.name.startswith(".")]
    if damage == "truncate arrays":
        data = (entry / "arrays.npz").read_bytes()
        (entry / "arrays.npz").write_bytes(data[: len(data) // 2])
    elif damage == "edit value":
        (entry / "value.json").write_text((entry / "value.json").read_text().replace("1", "7"))
    elif damage == "bad manifest":
        (entry / "manifest.json").write_text("{not json")
    else:
        (entry / "manifest.json").unlink()
    assert [str(p) for p, _ in store.verify()] == [str(entry)]
    with pytest.warns(RuntimeWarning, match=r"store: .*damaged .*recomputing"):
        value = store.cached(mod.compute, [5.0])
    assert np.array_equal(value["y"], [10.0]) and len(mod.CALLS) == 2 and store.verify() == []


def _slow_square(x):
    import time

    time.sleep(0.5)
    return {"y": np.full(1000, float(x) ** 2), "pid": __import__("os").getpid()}


def _worker(root, queue):
    import os

    os.environ["VAELIB_RUNS"] = root
    from vaelib import store as s

    value, _ = s.compute(s.key(np.sum, "concurrent", 3), "concurrent", lambda: _slow_square(3))
    queue.put(float(value["y"].sum()))


def test_concurrent_writers_leave_one_good_entry(root):
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(root), queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert sorted(queue.get() for _ in procs) == [9000.0] * 3
    entries = store.entries()
    assert len(entries) == 1 and store.verify() == []
    assert not list((root / ".tmp").iterdir())


def test_list_verify_prune_command(root, tmp_path, capsys):
    mod = _module(tmp_path, "store_mod_d", MODULE.format(scale=2))
    store.cached(mod.compute, [1.0])
    store.cached(mod.compute, [2.0])
    assert main(["store", "list"]) == 0 and "2 entries" in capsys.readouterr().out
    assert main(["store", "verify"]) == 0
    victim = store.entries()[0]["path"]
    (victim / "value.json").write_text("[]")
    assert main(["store", "verify"]) == 1 and "damaged" in capsys.readouterr().out
    assert main(["store", "prune", "--dry-run"]) == 0 and victim.exists()
    assert main(["store", "prune"]) == 0 and not victim.exists() and len(store.entries()) == 1
    assert main(["store", "prune", "--older-than", "0"]) == 0 and store.entries() == []


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "sub" / "out.json"
    store.write_json(target, {"b": np.float32(1.5), "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1.5}
    with pytest.raises(RuntimeError):
        with store.atomic_write(target, "w") as f:
            f.write("half")
            raise RuntimeError("boom")
    assert json.loads(target.read_text())["b"] == 1.5 and sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


# ---------------------------------------------------------------- damaged entries, escapes, racing writers

def _two_entries(root, tmp_path, name):
    """Two entries of one function (values 10 and 20) and the module; returns (module, entry of 5, entry of 10)."""
    mod = _module(tmp_path, name, MODULE.format(scale=2))
    store.cached(mod.compute, [5.0])
    store.cached(mod.compute, [10.0, 0.0])
    a, b = sorted(store.entries(), key=lambda r: r["bytes"])
    return mod, a["path"], b["path"]


def _flip(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_manifest(entry, **change):
    manifest = json.loads((entry / "manifest.json").read_text())
    (entry / "manifest.json").write_text(json.dumps({**manifest, **change}))


DAMAGES = {
    "flip a byte in arrays": lambda e, other: _flip(e / "arrays.npz"),
    "flip a byte in value": lambda e, other: _flip(e / "value.json", 2),
    "truncate value": lambda e, other: (e / "value.json").write_text((e / "value.json").read_text()[:9]),
    "empty arrays": lambda e, other: (e / "arrays.npz").write_bytes(b""),
    "arrays is a folder": lambda e, other: ((e / "arrays.npz").unlink(), (e / "arrays.npz").mkdir()),
    "manifest is a list": lambda e, other: (e / "manifest.json").write_text("[]"),
    "manifest lists no files": lambda e, other: _rewrite_manifest(e, files={}),
    "manifest names other files": lambda e, other: _rewrite_manifest(e, files={"../../x": "0", "value.json": "0"}),
    "manifest of another key": lambda e, other: _rewrite_manifest(e, key="0" * 64),
    "manifest not utf-8": lambda e, other: (e / "manifest.json").write_bytes(b"\xff\xfe{"),
    "value file linked to another entry's": lambda e, other: ((e / "value.json").unlink(),
                                                              (e / "value.json").symlink_to(other / "value.json")),
    "every file linked to another entry's": lambda e, other: [((e / n).unlink(), (e / n).symlink_to(other / n))
                                                              for n in ("value.json", "arrays.npz", "manifest.json")],
    "entry folder linked to another entry": lambda e, other: (shutil.rmtree(e), e.symlink_to(other)),
    "entry folder a copy of another entry": lambda e, other: (shutil.rmtree(e), shutil.copytree(other, e)),
    "dangling link": lambda e, other: (shutil.rmtree(e), e.symlink_to(other.parent / "nowhere")),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_any_damage_is_detected_and_recomputed_never_loaded(root, tmp_path, damage):
    mod, entry, other = _two_entries(root, tmp_path, "store_mod_e")
    DAMAGES[damage](entry, other)
    assert [str(p) for p, _ in store.verify()] == [str(entry)] and len(store.entries()) == 2
    with pytest.warns(RuntimeWarning, match=rf"store: {entry}: damaged \(.+\); recomputing"):
        value = store.cached(mod.compute, [5.0])
    assert np.array_equal(value["y"], [10.0]) and value["n"] == 1 and len(mod.CALLS) == 3
    assert store.verify() == [] and len(store.entries()) == 2
    assert np.array_equal(store.cached(mod.compute, [10.0, 0.0])["y"], [20.0, 0.0])  # the other entry is untouched


def test_prune_removes_a_linked_entry_not_its_target(root, tmp_path, capsys):
    _, entry, other = _two_entries(root, tmp_path, "store_mod_f")
    shutil.rmtree(entry)
    entry.symlink_to(other)
    assert main(["store", "list"]) == 0 and main(["store", "verify"]) == 1
    assert main(["store", "prune"]) == 0 and not os.path.lexists(entry) and (other / "value.json").is_file()
    assert store.verify() == []


def _run(**change):
    m = build_model("mlp", 2, hidden=[8])
    return {"model_config": m.config(), "state_dict": m.state_dict(), "history": [{"epoch": 1, "val_total": 2.0}],
            "metrics": {"test_total": 2.0}, "snapshots": None, **change}


def _nan_state():
    return {k: torch.full_like(v, float("nan")) for k, v in _run()["state_dict"].items()}


RUN_DAMAGES = {  # rewritten with matching checksums: only the content check can tell
    "all-NaN weights": (lambda: {"state_dict": _nan_state()}, "NaN or infinite"),
    "an infinite weight": (lambda: {"state_dict": {**_run()["state_dict"], "enc_mu.bias": torch.tensor([1.0, np.inf])}},
                           "NaN or infinite"),
    "history a dict": (lambda: {"history": {}}, "history is a dict"),
    "metrics a list": (lambda: {"metrics": []}, "not a training run"),
    "config a list": (lambda: {"model_config": ["mlp", 2]}, "model_config is a list"),
    "absurd latent size": (lambda: {"model_config": {"arch": "mlp", "latent_dim": 10**12, "hidden": [8]}}, "latent_dim"),
    "unknown config key": (lambda: {"model_config": {"arch": "mlp", "latent_dim": 2, "hidden": [8], "x": 1}}, "'x'"),
    "weights of another shape": (lambda: {"model_config": {"arch": "mlp", "latent_dim": 3, "hidden": [8]}},
                                 "do not match"),
}


@pytest.mark.parametrize("damage", RUN_DAMAGES)
def test_a_damaged_training_run_is_recomputed(root, damage):
    change, message = RUN_DAMAGES[damage]
    k, group = store.key(np.sum, "run", damage), "vaelib.train._train"
    store.compute(k, group, _run)
    entry = root / group / k
    store._write_entry(entry, _run(**change()), json.loads((entry / "manifest.json").read_text()))
    assert store._check(entry)  # checksums match
    with pytest.warns(RuntimeWarning, match=message):
        value, computed = store.compute(k, group, _run)
    assert computed and torch.isfinite(value["state_dict"]["enc_mu.weight"]).all() and store.verify() == []
    assert store.compute(k, group, _run)[1] is False


@pytest.mark.parametrize("group,k", [("../escaped", "k"), ("/abs/olute", "k"), ("..", "k"), ("", "k"),
                                     ("a/b", "k"), (".tmp", "k"), ("g", "../../escaped"), ("g", "/abs"),
                                     ("g", ".."), ("g", "a\\b"), ("g", 7), ("g", "x" * 300)])
def test_names_never_leave_the_store(root, tmp_path, group, k):
    with pytest.raises(InputError, match=r"store (group|key) .*: not a plain name"):
        store.compute(k, group, lambda: {"x": 1})
    with pytest.raises(InputError, match="not a plain name"):
        store.load(k, group)
    assert [p.name for p in tmp_path.iterdir()] in ([], ["store"])  # nothing beside the store
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_nested_functions_are_stored(root):
    def inner(x):
        return x + 1

    assert store.cached(inner, 1) == 2 and store.cached(inner, 1) == 2 and len(store.entries()) == 1


@pytest.mark.parametrize("slow", ["first", "second"])
def test_two_writers_one_slow_at_its_last_write(root, monkeypatch, slow):
    """Two threads compute one key; one stalls just before writing its manifest. Neither fails, one entry stays
    (the first to rename it into place), and both get its value."""
    write, names = store._write_entry, ["first", "second"]
    started = threading.Barrier(2, timeout=30)

    def slow_write(folder, value, manifest):
        if value["who"] == slow:
            (folder / "value.json").write_text("{")  # half written, in its own temporary folder: never seen
            time.sleep(1.0)
        write(folder, value, manifest)

    monkeypatch.setattr(store, "_write_entry", slow_write)
    k, results = store.key(np.sum, "race"), {}

    def work(who):
        started.wait()
        results[who] = store.compute(k, "race", lambda: {"who": who, "y": np.arange(3.0)})[0]["who"]

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winner = next(n for n in names if n != slow)
    assert results == {"first": winner, "second": winner}
    assert store.load(k, "race")["who"] == winner and store.verify() == [] and len(store.entries()) == 1
    assert not list((root / ".tmp").iterdir())
