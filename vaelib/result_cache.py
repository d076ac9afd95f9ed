"""A disk cache for deterministic result tables, keyed by the SHA-256 of everything they depend on.

A second run of the report should recompute nothing whose inputs did not change. ``digest`` hashes
arrays, tensors, a model's weights and JSON-able settings; ``cached_frame`` keeps a DataFrame's
columns as arrays in ``<runs>/<kind>/<digest>.npz`` (no pickle: loading executes no code) and
returns exactly the values first computed.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .io import atomic_write
from .paths import runs_dir

__all__ = ["digest", "cached_frame"]

_COLUMNS = "__columns__"


def _update(h: "hashlib._Hash", obj: Any) -> None:
    import torch

    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().contiguous().numpy()
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"array {a.dtype.str} {a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(obj, Mapping):
        h.update(f"map {len(obj)}".encode())
        for key in sorted(obj, key=str):
            h.update(str(key).encode())
            _update(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq {len(obj)}".encode())
        for item in obj:
            _update(h, item)
    else:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())


def digest(*parts: Any) -> str:
    """SHA-256 (hex) of ``parts``: arrays and tensors by dtype, shape and bytes, modules by their
    ``state_dict``, mappings and sequences item by item, anything else as JSON."""
    h = hashlib.sha256()
    _update(h, parts)
    return h.hexdigest()


def cached_frame(kind: str, key: str, compute_fn: Callable[[], Any]):
    """The DataFrame ``compute_fn()`` returns, computed once per ``key`` (a ``digest``) and then
    read from ``<runs>/<kind>/<key>.npz``. Columns of numbers, booleans or strings; the index is
    not kept. An unreadable file is recomputed."""
    import pandas as pd

    path = runs_dir() / kind / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                columns = z[_COLUMNS].tolist()
                return pd.DataFrame({c: z[f"c{i}"].tolist() if z[f"c{i}"].dtype.kind == "U" else z[f"c{i}"]
                                     for i, c in enumerate(columns)}, columns=columns)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass
    frame = compute_fn().reset_index(drop=True)
    arrays = {}
    for i, c in enumerate(frame.columns):
        col = frame[c]
        numeric = getattr(col.dtype, "kind", "O") in "biuf"
        arrays[f"c{i}"] = col.to_numpy() if numeric else np.array([str(v) for v in col], dtype=str)
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays, **{_COLUMNS: np.array([str(c) for c in frame.columns])})
    return frame
