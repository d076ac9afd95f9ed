"""Atomic file writes, JSON output and file hashes."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_path", "atomic_write", "write_json", "sha256_file", "dataclass_from_dict"]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The temporary name keeps the suffix (for tools that infer the format from it).
    Parent folders are created; on error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; replace ``path`` with it on success."""
    if not mode.startswith("w"):
        raise ValueError(f"mode {mode!r}: not a write mode; expected 'w', 'wb', 'wt'")
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def _jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, paths and sets for ``json``."""
    if hasattr(obj, "tolist"):  # numpy scalars and arrays, torch tensors
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    raise TypeError(f"{type(obj).__name__}: not JSON serialisable; expected numbers, strings, lists, dicts")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON (sorted keys, indent 2) atomically; return the path."""
    text = json.dumps(obj, sort_keys=True, indent=2, default=_jsonable) + "\n"
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def dataclass_from_dict(cls: type, d: dict, what: str) -> Any:
    """``cls(**d)`` for a dataclass, with an InputError naming unknown keys (config files)."""
    from dataclasses import fields

    from .errors import InputError

    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise InputError(f"{what} keys {sorted(unknown)}: unknown; expected some of {sorted(names)}")
    return cls(**d)
