"""The result store: every cached result of the report, keyed by its inputs and the code behind it.

``cached(fn, *args)`` returns ``fn(*args)``, computed once and then read back. The key hashes the
arguments' content and the source of ``fn`` and of every function, class and constant of vaelib (or
of ``fn``'s module) it references, transitively: editing that code recomputes, with no version to
bump. An entry ``<root>/<module.fn>/<key>/`` holds ``value.json`` (structure), ``arrays.npz`` (arrays,
read with ``allow_pickle=False``) and ``manifest.json`` (their SHA-256). It is built in a temporary
folder and renamed into place: readers never see half an entry, and of two processes computing
the same entry the first rename wins. A damaged entry (bad checksum, a symbolic link, another entry's
manifest, a value its group's check in ``CHECKS`` refuses) is reported in one line and recomputed. Group and
key names are single folder names: nothing is written outside the store.
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
import re
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
from .errors import InputError

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


FILES = ("value.json", "arrays.npz")  # an entry's content; manifest.json holds their SHA-256
_NAME = re.compile(r"[^/\\\x00.][^/\\\x00]{0,199}")  # one path component, not hidden


def _entry(k: str, name: str) -> Path:
    """The folder of entry ``k`` of group ``name``: both plain names, so it is always inside ``root()``."""
    for what, text in (("group", name), ("key", k)):
        if not isinstance(text, str) or not _NAME.fullmatch(text):
            raise InputError(f"store {what} {text!r}: not a plain name; expected one folder name (no '/' or '\\', "
                             f"no leading '.') for an entry inside {root()}")
    return root() / name / k


def _write_entry(folder: Path, value: Any, manifest: dict) -> None:
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(value, arrays)
    (folder / "value.json").write_text(json.dumps(tree))
    with open(folder / "arrays.npz", "wb") as f:
        np.savez(f, **arrays)
    manifest["files"] = {name: sha256_file(folder / name) for name in FILES}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _check(folder: Path) -> dict:
    """The manifest of a complete, undamaged entry: no symbolic links, a manifest written for this entry,
    matching checksums; ValueError naming the file and the problem otherwise."""
    for path in (folder, *(folder / n for n in ("manifest.json", *FILES))):
        if path.is_symlink():
            raise ValueError(f"{path.name}: a symbolic link; expected the entry's own folder and files")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"manifest.json: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or [manifest.get("fn"), manifest.get("key")] != [folder.parent.name, folder.name]:
        raise ValueError(f"manifest.json: not this entry's; expected fn {folder.parent.name}, key {folder.name}")
    files = manifest.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(FILES):
        raise ValueError(f"manifest.json: files {files!r}; expected the SHA-256 of {' and '.join(FILES)}")
    for name in FILES:
        try:
            if sha256_file(folder / name) != files[name]:
                raise ValueError(f"{name}: checksum differs from the manifest")
        except OSError as e:
            raise ValueError(f"{name}: {e.strerror or e}") from None
    return manifest


def _check_run(value: Any, where: str) -> None:
    """A stored training run (``train._train``): a model ``load_model`` would accept, a history and metrics."""
    from .models import check_saved

    if not isinstance(value, dict) or not isinstance(value.get("metrics"), dict) or "history" not in value:
        raise ValueError(f"{where}: not a training run; expected model_config, state_dict, history, metrics")
    check_saved(value, where)


CHECKS: dict[str, Callable[[Any, str], None]] = {"vaelib.train._train": _check_run}  # group → check of its values


def _read_entry(folder: Path) -> Any:
    """The value of an entry, checked (``_check``, then ``CHECKS`` for its group); ValueError if damaged."""
    _check(folder)
    try:
        with np.load(folder / "arrays.npz", allow_pickle=False) as z:
            arrays = {n: z[n] for n in z.files}
    except Exception as e:  # a truncated zip, object arrays, ...
        raise ValueError(f"arrays.npz: unreadable ({type(e).__name__}: {e})") from None
    try:
        value = _decode(json.loads((folder / "value.json").read_text()), arrays)
    except Exception as e:  # bad JSON, or a structure _encode never writes
        raise ValueError(f"value.json: unreadable ({type(e).__name__}: {e})") from None
    if folder.parent.name in CHECKS:
        CHECKS[folder.parent.name](value, "stored value")
    return value


def _discard(path: Path) -> None:
    """Move ``path`` (an entry, a left-over, or a link in its place) out of the way and delete it."""
    with contextlib.suppress(OSError):
        if path.is_symlink():
            path.unlink()
        else:
            trash = path.with_name(f".trash-{uuid.uuid4().hex[:8]}")
            path.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)


MISSING = object()


def load(k: str, name: str) -> Any:
    """The value stored under key ``k`` (group ``name``), or ``MISSING``; a damaged entry is
    reported in one line (a RuntimeWarning) and deleted."""
    folder = _entry(k, name)
    if not os.path.lexists(folder):
        return MISSING
    try:
        value = _read_entry(folder)
    except ValueError as e:
        warnings.warn(f"store: {folder}: damaged ({e}); recomputing", RuntimeWarning, stacklevel=3)
        _discard(folder)
        return MISSING
    with contextlib.suppress(OSError):
        os.utime(folder)  # last use, for `prune --older-than`
    return value


def compute(k: str, name: str, fn: Callable[[], Any]) -> tuple[Any, bool]:
    """(the value under key ``k``, False), or (``fn()`` stored under it, True). The entry is written in a
    temporary folder of its own and renamed into place: of two processes computing the same key at once,
    the first rename wins and the other returns the winner's value."""
    folder = _entry(k, name)
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
        folder.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # a damaged entry in the way is deleted by load, then the rename is tried again
            try:
                tmp.rename(folder)
                return value, True
            except OSError:
                if not os.path.lexists(folder):
                    raise
            stored = load(k, name)
            if stored is not MISSING:
                return stored, True
        return value, True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, computed once per content of the arguments and code of ``fn``."""
    return compute(key(fn, *args, **kwargs), f"{fn.__module__}.{fn.__qualname__}", lambda: fn(*args, **kwargs))[0]


# ---------------------------------------------------------------- list, verify, prune

def _entry_folders() -> list[Path]:
    return sorted(p for p in root().glob("[!.]*/[!.]*") if p.is_dir() or p.is_symlink())


def entries() -> list[dict]:
    """One row per entry: function, key, bytes, created, last used (unchecked: see ``verify``)."""
    rows = []
    for folder in _entry_folders():
        size = sum(f.lstat().st_size for f in folder.iterdir()) if not folder.is_symlink() else 0
        rows.append({"fn": folder.parent.name, "key": folder.name, "bytes": size,
                     "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(folder.lstat().st_mtime)),
                     "path": folder})
    return rows


def verify() -> list[tuple[Path, str]]:
    """(folder, problem) for every damaged entry (what ``load`` would refuse)."""
    problems = []
    for folder in _entry_folders():
        try:
            _read_entry(folder)
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
                   if f.lstat().st_mtime < cutoff and f not in doomed]
    if not dry_run:
        for folder in doomed:
            _discard(folder)
    return doomed
