"""The result store: every cached result of the report, keyed by its inputs and the code behind it.

``cached(fn, *args)`` returns ``fn(*args)``, computed once and then read back. The key hashes the
arguments' content and the source of ``fn`` and of every function, class and constant of vaelib (or
of ``fn``'s module) it references, transitively: editing that code recomputes, with no version to
bump. An entry ``<root>/<module.fn>/<key>/`` holds ``value.json`` (structure), ``arrays.npz`` (arrays,
read with ``allow_pickle=False``) and ``manifest.json`` (their SHA-256). It is built in a temporary
folder and renamed into place: readers never see half an entry, and of two processes computing
the same entry the first rename wins. A damaged entry is reported in one line and recomputed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import dis
import functools
import hashlib
import inspect
import json
import os
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from .data import sha256_file

# ---------------------------------------------------------------- files and folders

def project_root() -> Path:
    """Nearest folder holding pyproject.toml above the cwd, else above this package, else the cwd."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if (folder / "pyproject.toml").is_file():
                return folder
    return Path.cwd()


def root() -> Path:
    """The store folder: $VAELIB_RUNS (relative to the project root) or <project root>/runs."""
    value = os.environ.get("VAELIB_RUNS")
    return project_root() / value if value else project_root() / "runs"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix), moved onto ``path`` when the block succeeds."""
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
    """A file opened for writing whose content replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as JSON (sorted keys, indent 2; numpy/torch values as lists), written atomically."""
    def plain(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if isinstance(o, (os.PathLike, set, frozenset)):
            return os.fspath(o) if isinstance(o, os.PathLike) else sorted(o)
        raise TypeError(f"{type(o).__name__}: not JSON serialisable; expected numbers, strings, lists, dicts")
    with atomic_write(path, "w") as f:
        f.write(json.dumps(obj, sort_keys=True, indent=2, default=plain) + "\n")
    return Path(path)


# ---------------------------------------------------------------- keys: content and code

def _update(h: Any, obj: Any) -> None:
    import torch

    if hasattr(obj, "store_key"):
        h.update(f"key {obj.store_key}".encode())
    elif isinstance(obj, torch.nn.Module):
        _update(h, (type(obj).__qualname__, obj.state_dict()))
    elif isinstance(obj, torch.Tensor):
        _update(h, obj.detach().cpu().contiguous().numpy())
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"array {a.dtype.str} {a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _update(h, (type(obj).__qualname__, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}))
    elif hasattr(obj, "to_dict") and hasattr(obj, "columns"):  # a pandas DataFrame
        _update(h, ("frame", [str(c) for c in obj.columns], [obj[c].to_numpy() for c in obj.columns]))
    elif isinstance(obj, Mapping):
        h.update(f"map {len(obj)}".encode())
        for k in sorted(obj, key=str):
            _update(h, (str(k), obj[k]))
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq {len(obj)}".encode())
        for item in obj:
            _update(h, item)
    elif isinstance(obj, (np.generic, Path)):
        _update(h, obj.item() if isinstance(obj, np.generic) else str(obj))
    else:
        h.update(json.dumps(obj, sort_keys=True, default=repr).encode())


def digest(*objs: Any) -> str:
    """SHA-256 (hex) of the content of ``objs``: arrays and tensors by dtype, shape and bytes,
    modules by their state_dict, dataclasses by their fields, objects with ``store_key`` by it."""
    h = hashlib.sha256()
    _update(h, objs)
    return h.hexdigest()


def _ours(obj: Any, home: str) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and (module.split(".")[0] == "vaelib" or module == home)


def _codes(obj: Any) -> Iterator[Any]:
    """Code objects of a function, or of every method and property of a class, nested ones included."""
    funcs = [obj] if inspect.isfunction(obj) else [
        getattr(v, "fget", None) or getattr(v, "__func__", v) for v in vars(obj).values()]
    stack = [inspect.unwrap(f).__code__ for f in funcs if inspect.isfunction(f)]
    while stack:
        code = stack.pop()
        yield code
        stack += [c for c in code.co_consts if inspect.iscode(c)]


def _references(code: Any, namespace: dict) -> Iterator[Any]:
    """What a code object names: its globals, attributes of vaelib modules it names, names it imports."""
    module = None
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and module is not None:
            yield getattr(module, ins.argval, None)
        elif ins.opname == "IMPORT_FROM":
            yield next((v for m, mod in list(sys.modules.items()) if m.split(".")[0] == "vaelib"
                        and _ours(v := getattr(mod, ins.argval, None), "vaelib")), None)
        value = namespace.get(ins.argval) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") else None
        if value is not None:
            yield value
        module = value if inspect.ismodule(value) and value.__name__.split(".")[0] == "vaelib" else None


def _constant(value: Any) -> str | None:
    """A stable text for a module-level constant (None for modules, functions and other objects)."""
    if isinstance(value, (bool, int, float, str, bytes, type(None))):
        return repr(value)
    if isinstance(value, (list, tuple, dict, frozenset)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        parts = [(repr(k), _constant(v) or getattr(v, "__qualname__", None)) for k, v in items]
        return None if any(p is None for _, p in parts) else repr(parts)
    return None


@functools.lru_cache(maxsize=None)
def code_digest(fn: Callable) -> str:
    """SHA-256 of the source of ``fn`` and of every function, class and constant of vaelib (or of
    ``fn``'s module) it references, transitively; base classes and container values included."""
    home, seen, parts, todo = fn.__module__, set(), [], [fn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        parts.append(f"{obj.__module__}.{obj.__qualname__}\n{inspect.getsource(obj)}")
        if inspect.isclass(obj):
            todo += [b for b in obj.__mro__[1:] if _ours(b, home)]
        for code in _codes(obj):
            for value in _references(code, vars(sys.modules[obj.__module__])):
                if _ours(value, home):
                    todo.append(value)
                elif (text := _constant(value)) is not None:
                    parts.append(f"{obj.__module__}: {text}")
                if isinstance(value, (dict, list, tuple)):
                    todo += [v for v in (value.values() if isinstance(value, dict) else value) if _ours(v, home)]
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()


def key(fn: Callable, *args: Any, **kwargs: Any) -> str:
    """The store key of ``fn(*args, **kwargs)``: its name, its code and the content of its arguments."""
    return digest(f"{fn.__module__}.{fn.__qualname__}", code_digest(fn), args, kwargs)


# ---------------------------------------------------------------- values <-> files

def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    import torch

    def array(kind: str, a: np.ndarray) -> dict:
        if a.dtype == object:
            raise TypeError("object arrays: cannot be stored; expected numbers, bools or strings")
        name = f"a{len(arrays)}"
        arrays[name] = a
        return {"__kind__": kind, "name": name}

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return array("bytes", np.frombuffer(value, dtype=np.uint8))
    if isinstance(value, np.ndarray):
        return array("ndarray", value)
    if isinstance(value, torch.Tensor):
        return array("tensor", value.detach().cpu().numpy())
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        cols = [value[c].to_numpy() for c in value.columns]
        cols = [c if c.dtype.kind in "biuf" else np.array([str(v) for v in c], dtype=str) for c in cols]
        return {"__kind__": "frame", "columns": [str(c) for c in value.columns],
                "data": [array("ndarray", c) for c in cols]}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays) for v in value]
        return items if isinstance(value, list) else {"__kind__": "tuple", "items": items}
    if isinstance(value, dict) and all(isinstance(k, str) and k != "__kind__" for k in value):
        return {k: _encode(v, arrays) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__}: cannot be stored; expected numbers, strings, bytes, arrays, "
                    "tensors, DataFrames, and lists, tuples or str-keyed dicts of them")


def _decode(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    import torch

    if isinstance(tree, list):
        return [_decode(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        return tree
    kind = tree.get("__kind__")
    if kind is None:
        return {k: _decode(v, arrays) for k, v in tree.items()}
    if kind == "tuple":
        return tuple(_decode(v, arrays) for v in tree["items"])
    if kind == "frame":
        import pandas as pd

        cols = [_decode(c, arrays) for c in tree["data"]]
        return pd.DataFrame({n: c.tolist() if c.dtype.kind == "U" else c for n, c in zip(tree["columns"], cols)},
                            columns=tree["columns"])
    a = arrays[tree["name"]]
    return a.tobytes() if kind == "bytes" else torch.from_numpy(a) if kind == "tensor" else a


def _write_entry(folder: Path, value: Any, manifest: dict) -> None:
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(value, arrays)
    (folder / "value.json").write_text(json.dumps(tree))
    with open(folder / "arrays.npz", "wb") as f:
        np.savez(f, **arrays)
    manifest["files"] = {name: sha256_file(folder / name) for name in ("value.json", "arrays.npz")}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _check(folder: Path) -> dict:
    """The manifest of a complete, undamaged entry; ValueError (naming the problem) otherwise."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        for name, expected in manifest["files"].items():
            if sha256_file(folder / name) != expected:
                raise ValueError(f"{name}: checksum differs from the manifest")
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{type(e).__name__}: {e}") from None
    return manifest


def _read_entry(folder: Path) -> Any:
    _check(folder)
    try:
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        return _decode(json.loads((folder / "value.json").read_text()), arrays)
    except (OSError, KeyError, ValueError) as e:
        raise ValueError(f"{type(e).__name__}: {e}") from None


MISSING = object()


def load(k: str, name: str) -> Any:
    """The value stored under key ``k`` (group ``name``), or ``MISSING``; a damaged entry is
    reported in one line and moved out of the way."""
    folder = root() / name / k
    if not folder.exists():
        return MISSING
    try:
        value = _read_entry(folder)
    except ValueError as e:
        warnings.warn(f"store: {folder}: damaged ({e}); recomputing", RuntimeWarning, stacklevel=3)
        trash = folder.with_name(f".trash-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(OSError):
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        return MISSING
    os.utime(folder)  # last use, for `prune --older-than`
    return value


def compute(k: str, name: str, fn: Callable[[], Any]) -> tuple[Any, bool]:
    """(the value under key ``k``, False), or (``fn()`` stored under it, True). Two processes computing
    the same key at once both get a value; the first to finish keeps its entry."""
    value = load(k, name)
    if value is not MISSING:
        return value, False
    t0 = time.perf_counter()
    value = fn()
    tmp = root() / ".tmp" / f"{k[:16]}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        _write_entry(tmp, value, {"fn": name, "key": k, "seconds": time.perf_counter() - t0,
                                  "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
        folder = root() / name / k
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process stored it first (or a damaged one is in the way)
            if not folder.exists():
                raise
        stored = load(k, name)
        return (value if stored is MISSING else stored), True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, computed once per content of the arguments and code of ``fn``."""
    return compute(key(fn, *args, **kwargs), f"{fn.__module__}.{fn.__qualname__}", lambda: fn(*args, **kwargs))[0]


# ---------------------------------------------------------------- list, verify, prune

def _entry_folders() -> list[Path]:
    return sorted(p for p in root().glob("[!.]*/[!.]*") if p.is_dir())


def entries() -> list[dict]:
    """One row per entry: function, key, bytes, created, last used (unchecked: see ``verify``)."""
    rows = []
    for folder in _entry_folders():
        size = sum(f.stat().st_size for f in folder.iterdir())
        rows.append({"fn": folder.parent.name, "key": folder.name, "bytes": size,
                     "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(folder.stat().st_mtime)),
                     "path": folder})
    return rows


def verify() -> list[tuple[Path, str]]:
    """(folder, problem) for every damaged entry."""
    problems = []
    for folder in _entry_folders():
        try:
            _check(folder)
        except ValueError as e:
            problems.append((folder, str(e)))
    return problems


def prune(older_than_days: float | None = None, dry_run: bool = False) -> list[Path]:
    """Delete damaged entries, left-overs of interrupted writes and (if asked) entries and training
    checkpoints unused for ``older_than_days``; return what was (with ``dry_run``: would be) deleted.
    Run it when nothing else is writing to the store."""
    doomed = list(root().glob(".tmp/*")) + list(root().glob("*/.trash-*")) + [f for f, _ in verify()]
    if older_than_days is not None:
        cutoff = time.time() - 86400 * older_than_days
        doomed += [f for f in _entry_folders() + list(root().glob(".partial/*"))
                   if f.stat().st_mtime < cutoff and f not in doomed]
    if not dry_run:
        for folder in doomed:
            shutil.rmtree(folder, ignore_errors=True)
    return doomed
