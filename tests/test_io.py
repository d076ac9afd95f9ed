import hashlib
import json

import numpy as np
import pytest
import torch

from vaelib.io import atomic_write, sha256_file, write_json


def test_atomic_write_creates_parents_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "x.txt"
    with atomic_write(target, "w") as f:
        f.write("one")
    with atomic_write(target, "w") as f:
        f.write("two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.txt"]


def test_atomic_write_error_keeps_old_file_and_leaves_no_tmp(tmp_path):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_write_json_sorted_and_converts_scalars(tmp_path):
    path = write_json(tmp_path / "m.json", {"b": np.float32(0.5), "a": torch.tensor(3), "c": np.arange(2)})
    text = path.read_text()
    assert json.loads(text) == {"a": 3, "b": 0.5, "c": [0, 1]}
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert sha256_file(tmp_path / "f", chunk_size=7) == hashlib.sha256(b"abc" * 1000).hexdigest()
