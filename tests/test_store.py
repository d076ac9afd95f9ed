"""The result store: values round-trip, keys follow content and code, damage is recomputed,
concurrent writers leave one good entry, and the store command lists, verifies and prunes."""

import importlib
import json
import multiprocessing as mp
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from vaelib import store
from vaelib.__main__ import main


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
