import numpy as np
import pandas as pd
import pytest
import torch

from vaelib import result_cache
from vaelib.models import build_model
from vaelib.paths import runs_dir
from vaelib.result_cache import cached_frame, digest


def test_digest_sees_values_dtypes_shapes_weights_and_settings():
    a = np.arange(6.0)
    assert digest(a, {"k": 1}) == digest(a.copy(), {"k": 1})
    assert len({digest(a), digest(a.astype(np.float32)), digest(a.reshape(2, 3)), digest(a + 1e-12),
                digest(a, {"k": 2}), digest(torch.from_numpy(a) + 1)}) == 6
    torch.manual_seed(0)
    m = build_model("mlp", 2, hidden=8)
    before = digest(m)
    with torch.no_grad():
        m.dec[2].bias[0] += 1e-6
    assert digest(m) != before


def test_cached_frame_round_trip_is_exact(monkeypatch):
    frame = pd.DataFrame({"method": ["a", "b", "c"], "k": ["1", "10", "all"], "n": np.array([1, 2, 3]),
                          "score": [0.1, 1 / 3, np.pi], "ok": [True, False, True]})
    calls = []
    key = digest("test-frame", 1)
    first = cached_frame("test-frames", key, lambda: calls.append(1) or frame)
    again = cached_frame("test-frames", key, lambda: calls.append(1) or frame)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(again, frame)
    assert again["k"].tolist() == ["1", "10", "all"] and isinstance(again["k"][0], str)
    (runs_dir() / "test-frames" / f"{key}.npz").write_bytes(b"garbage")  # unreadable: recomputed
    pd.testing.assert_frame_equal(cached_frame("test-frames", key, lambda: calls.append(1) or frame), frame)
    assert len(calls) == 2
    pd.testing.assert_frame_equal(first, frame)
