"""Tests for vaelib.evaluation: samplers (prior, ex-post GMM), real references, the FID tables."""
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from vaelib import evaluation as ev
from vaelib import fid
from vaelib.models import build_model
from vaelib.runs import RunConfig, train_or_load


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("mlp", 3, hidden=32).eval()


# --------------------------------------------------------------------------- samplers


def test_prior_samples_shape_range_determinism(model):
    a, b = ev.prior_samples(model, 7, seed=1), ev.prior_samples(model, 7, seed=1)
    assert a.shape == (7, 1, 28, 28) and a.dtype == torch.float32 and a.device.type == "cpu"
    assert a.min() >= 0 and a.max() <= 1 and torch.equal(a, b)
    assert not torch.equal(a, ev.prior_samples(model, 7, seed=2))
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, torch.sigmoid(model.decode(z)).detach())
    with pytest.raises(ev.InputError):
        ev.prior_samples(model, 0)


def _toy_gmm(seed=0):
    """A 3-component full-covariance GaussianMixture fitted to well-separated 2-D blobs."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    z = np.concatenate([c + rng.standard_normal((n, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
                        for c, n in zip(centres, (600, 300, 100))])
    return GaussianMixture(3, covariance_type="full", random_state=0).fit(z)


def test_gmm_latents_match_the_mixture():
    gmm = _toy_gmm()
    z = ev.gmm_latents(gmm, 60000, seed=0)
    assert z.shape == (60000, 2) and z.dtype == np.float64
    np.testing.assert_array_equal(z[:100], ev.gmm_latents(gmm, 60000, seed=0)[:100])
    assert not np.array_equal(z[:100], ev.gmm_latents(gmm, 60000, seed=1)[:100])
    # moments of the mixture: mean = Σ w μ, covariance = Σ w (Σ_k + μ μᵀ) − mean meanᵀ
    w, mu, cov = gmm.weights_, gmm.means_, gmm.covariances_
    mean = w @ mu
    second = np.einsum("k,kij->ij", w, cov + np.einsum("ki,kj->kij", mu, mu))
    np.testing.assert_allclose(z.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(z, rowvar=False), second - np.outer(mean, mean), atol=0.15, rtol=0.02)
    # component shares follow the weights (scikit-learn assigns each code to its component)
    shares = np.bincount(gmm.predict(z), minlength=3) / len(z)
    np.testing.assert_allclose(shares, w, atol=0.01)
    # and the samples are as likely under the mixture as its own samples
    own = gmm.score(gmm.sample(60000)[0])
    assert gmm.score(z) == pytest.approx(own, abs=0.02)


def test_gmm_latents_errors():
    from sklearn.mixture import GaussianMixture

    diag = GaussianMixture(2, covariance_type="diag", random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2)))
    with pytest.raises(ev.InputError):
        ev.gmm_latents(diag, 5)


def test_fit_latent_gmm_and_gmm_samples(model):
    x = torch.rand(60, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    gmm = ev.fit_latent_gmm(model, x, n_components=4, seed=0)
    assert gmm.means_.shape == (4, 3) and gmm.covariances_.shape == (4, 3, 3)
    gmm2 = ev.fit_latent_gmm(model, x, n_components=4, seed=0)
    np.testing.assert_array_equal(gmm.means_, gmm2.means_)  # deterministic fit
    a, b = ev.gmm_samples(model, gmm, 9, seed=5), ev.gmm_samples(model, gmm2, 9, seed=5)
    assert a.shape == (9, 1, 28, 28) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    z = torch.from_numpy(ev.gmm_latents(gmm, 9, seed=5)).float()
    torch.testing.assert_close(a, model.generate(z))
    with pytest.raises(ev.InputError):
        ev.gmm_samples(build_model("mlp", 5, hidden=8), gmm, 3)
    with pytest.raises(ev.InputError):
        ev.fit_latent_gmm(model, x[:3], n_components=4)


def test_noise_images():
    a = ev.noise_images(5, seed=0)
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, ev.noise_images(5, seed=0))
    assert 0 <= a.min() and a.max() <= 1 and abs(a.mean() - 0.5) < 0.05


# --------------------------------------------------------------------------- references and metrics


class CountingExtractor(fid.FeatureExtractor):
    """Cheap deterministic features (4×4 average pooling, 49-d) that count images seen."""

    def __init__(self, name="pool4"):
        self.name, self.dim, self.device, self.seen = name, 49, torch.device("cpu"), 0

    def _embed(self, x):
        self.seen += len(x)
        return torch.nn.functional.avg_pool2d(x, 4).flatten(1)


def test_real_images_take_and_cap():
    x, ds = ev.real_images("mnist", "test", (1, 4, 8), 30, seed=0)
    assert x.shape == (30, 1, 28, 28) and set(ds.labels.tolist()) == {1, 4, 8}
    assert sorted(np.bincount(ds.labels.numpy())[[1, 4, 8]]) == [10, 10, 10]  # stratified
    x2, _ = ev.real_images("mnist", "test", (1, 4, 8), 30, seed=0)
    assert torch.equal(x, x2)
    everything, ds_all = ev.real_images("mnist", "test", (1,), 10**6, seed=0)
    assert len(everything) == len(ds_all) < 10**6  # capped at what the split holds


def test_build_reference_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path))
    ext = CountingExtractor()
    ref = ev.build_reference("mnist", [1, 4, 8], {"toy": ext}, n=24, seed=0)
    assert ext.seen == 48 and ref.name == "mnist [1,4,8]" and (ref.n_train, ref.n_test) == (24, 24)
    assert ref.train["pool4"].shape == ref.test["pool4"].shape == (24, 49)
    assert ref.extractors == {"pool4": "toy"} and ref.source
    assert not np.array_equal(ref.train["pool4"], ref.test["pool4"])
    assert len(list((tmp_path / "fid-features").glob("*.npz"))) == 2
    assert len(list((tmp_path / "fid-stats").glob("*.npz"))) == 2

    again = ev.build_reference("mnist", (1, 4, 8), {"toy": ext}, n=24, seed=0)
    assert ext.seen == 48  # hit: no image went through the extractor
    np.testing.assert_array_equal(again.train["pool4"], ref.train["pool4"])
    x, _ = ev.real_images("mnist", "train", (1, 4, 8), 24, seed=0)  # what was cached is right
    np.testing.assert_allclose(ref.train["pool4"], CountingExtractor().features(x, progress=False))
    mu, sigma = fid.feature_stats(ref.train["pool4"])
    key_stats = fid.cached_stats({"never": "used"}, lambda: (mu, sigma), runs_dir=tmp_path)
    np.testing.assert_array_equal(key_stats[0], mu)

    ev.build_reference("mnist", (1, 4, 8), {"toy": ext}, n=20, seed=0)  # another N: a miss
    assert ext.seen == 88


def test_compare_identical_and_shifted():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((60, 5))
    same = ev.compare(a, a.copy(), kid_subsets=5)
    assert abs(same["fid"]) < 1e-6 and same["precision"] == same["recall"] == 1.0
    far = ev.compare(a, a + 10.0, kid_subsets=5)
    assert far["fid"] == pytest.approx(500.0, rel=1e-6) and far["precision"] == far["recall"] == 0.0
    assert far["kid"] > 0 and set(far) == {"fid", "kid", "kid_std", "precision", "recall"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # singular covariances (N < d) raise no warning here
        ev.compare(rng.standard_normal((6, 20)), rng.standard_normal((6, 20)), kid_subsets=2)


def test_fid_vs_n_and_untrained_extractor():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 4)), rng.standard_normal((400, 4))
    table = ev.fid_vs_n(a, b, [1, 25, 100, 400, 1000])
    assert table["n"].tolist() == [25, 100, 400]
    assert table["fid"].iloc[0] > table["fid"].iloc[-1] > 0  # biased: shrinks with N
    e1, e2 = ev.untrained_extractor(0), ev.untrained_extractor(0)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(e1.features(x, progress=False), e2.features(x, progress=False))
    assert e1.name == "untrained-classifier"


def test_evaluate_runs_tables_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path))
    cfg = RunConfig(name="t", dataset="mnist", classes=(0, 1), arch="mlp", latent_dim=2, epochs=1, n_train=120)
    runs = {"tiny": train_or_load(cfg, device="cpu", progress=False)}
    assert ev.reference_groups(runs) == {"mnist [0,1]": ("mnist", (0, 1))}
    extractors = {"mnist": {"Inception": CountingExtractor("a"), "domain classifier": CountingExtractor("b")}}
    refs = {k: ev.build_reference(d, c, extractors[d], n=12) for k, (d, c) in ev.reference_groups(runs).items()}
    base = ev.baseline_rows(refs, extractors, n=12, kid_subsets=3)
    assert len(base) == 4 and set(base["model"]) == {"real test images", "uniform noise"}
    res, kept = ev.evaluate_runs(runs, refs, extractors, n=12, kid_subsets=3, n_keep=5)
    assert len(res) == 4 and set(res["sampler"]) == set(ev.SAMPLERS.values())
    assert set(res["extractor"]) == {"Inception", "domain classifier"} and (res["n"] == 12).all()
    assert kept["tiny"]["prior"].shape == (5, 1, 28, 28) and kept["tiny"]["gmm"].shape == (5, 1, 28, 28)
    seen = {k: e.seen for k, e in extractors["mnist"].items()}
    again, _ = ev.evaluate_runs(runs, refs, extractors, n=12, kid_subsets=3, n_keep=5)
    assert {k: e.seen for k, e in extractors["mnist"].items()} == seen  # features came from the cache
    pd.testing.assert_frame_equal(res.drop(columns="seconds"), again.drop(columns="seconds"))  # deterministic
    noise = base[base["model"] == "uniform noise"]
    assert (noise["fid"].to_numpy() > res["fid"].to_numpy().max()).all()  # a trained VAE beats noise

    results = pd.concat([base, res], ignore_index=True)
    wide = ev.wide_table(results)
    assert len(wide) == 4 and "FID (Inception)" in wide and "FID (domain classifier)" in wide and "N" in wide
    with pytest.raises(ev.InputError):
        ev.evaluate_runs(runs, refs, extractors, n=4, samplers=("vamp",))
    assert ev.fid_bar_chart(results).axes and ev.sampler_grids(kept).axes


def _fake_results():
    """A long results table as evaluate_runs / baseline_rows build it (two references)."""
    rows = []
    for data, floor in (("mnist", 10.0), ("fashion", 20.0)):
        for kind, fids in (("Inception", (floor, 400.0)), ("domain classifier", (floor / 10, 900.0))):
            rows += [{"model": "real test images", "kind": "baseline", "data": data, "sampler": "—",
                      "extractor": kind, "n": 50, "fid": fids[0]},
                     {"model": "uniform noise", "kind": "baseline", "data": data, "sampler": "—",
                      "extractor": kind, "n": 50, "fid": fids[1]}]
    for z, f in ((2, 90.0), (4, 60.0), (8, 50.0)):
        for sampler, scale in ((ev.SAMPLERS["prior"], 1.0), (ev.SAMPLERS["gmm"], 0.8)):
            for kind, k in (("Inception", 1.0), ("domain classifier", 0.3)):
                rows.append({"model": f"z={z}", "kind": "model", "data": "mnist", "sampler": sampler, "extractor": kind,
                             "n": 50, "fid": f * scale * k, "arch": "conv", "latent_dim": z, "beta": 1.0})
    for b, f in ((0.1, 70.0), (1.0, 80.0)):  # only two β: no sweep
        for kind in ("Inception", "domain classifier"):
            rows.append({"model": f"b={b}", "kind": "model", "data": "fashion", "sampler": ev.SAMPLERS["prior"],
                         "extractor": kind, "n": 50, "fid": f, "arch": "conv", "latent_dim": 2, "beta": b})
    return pd.DataFrame(rows)


def test_summary_by_reference_and_sweeps():
    df = _fake_results()
    s = ev.summary_by_reference(df).set_index(["data", "extractor"])
    row = s.loc[("mnist", "Inception")]
    assert (row["best model"], row["best sampler"], row["N"]) == ("z=8", ev.SAMPLERS["gmm"], 50)
    assert row["best FID"] == pytest.approx(40.0) and row["best / real"] == pytest.approx(4.0)
    assert row["noise FID"] == 400.0 and row["pairs"] == 6 and row["Spearman ρ (extractors)"] == pytest.approx(1.0)
    assert s.loc[("mnist", "domain classifier"), "best / real"] == pytest.approx(12.0)
    assert np.isnan(s.loc[("fashion", "Inception"), "Spearman ρ (extractors)"])  # two pairs: no ρ
    sw = ev.sweeps(df)
    assert len(sw) == 4 and set(sw["parameter"]) == {"latent size"} and (sw["Spearman ρ"] == -1.0).all()
    first = sw.iloc[0]
    assert first["values"] == "2 → 4 → 8" and first["FID"] == "90.0 → 60.0 → 50.0" and first["fixed"] == "beta = 1"
    assert ev.sweeps(df, min_values=2)["parameter"].tolist().count("β") == 2
    assert list(ev.sweeps(df.iloc[:0])) == list(sw.columns)  # empty but with its columns


def test_compare_scores_are_cached_by_feature_content(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 4)), rng.standard_normal((40, 4)) + 0.5
    calls = []
    real_compare = ev._compare
    monkeypatch.setattr(ev, "_compare", lambda *args: calls.append(1) or real_compare(*args))
    first = ev.compare(a, b, kid_subsets=3, seed=2)
    assert ev.compare(a.copy(), b.copy(), kid_subsets=3, seed=2) == first and len(calls) == 1  # hit
    assert first == real_compare(a, b, 3, 3, 2)
    ev.compare(a, b + 1e-9, kid_subsets=3, seed=2)  # other features: miss
    ev.compare(a, b, kid_subsets=4, seed=2)  # other settings: miss
    assert len(calls) == 3


def test_cached_arrays_round_trip_and_errors(tmp_path):
    key = {"what": "test", "n": 3}
    out = fid.cached_arrays(key, lambda: {"w": [1.0, 2.0], "s": 3}, kind="things", runs_dir=tmp_path)
    again = fid.cached_arrays(key, lambda: pytest.fail("recomputed"), kind="things", runs_dir=tmp_path)
    assert set(again) == {"w", "s"} and np.array_equal(again["w"], out["w"]) and float(again["s"]) == 3.0
    path = fid.stats_cache_path(key, tmp_path, kind="things")
    path.write_bytes(b"not a zip")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert float(fid.cached_arrays(key, lambda: {"s": 4}, kind="things", runs_dir=tmp_path)["s"]) == 4.0
    with pytest.raises(ev.InputError, match="key"):
        fid.cached_arrays({"n": 4}, lambda: {"key": 1}, kind="things", runs_dir=tmp_path)


def test_run_latent_gmm_is_cached_and_samples_like_the_fit(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_RUNS", str(tmp_path))
    cfg = RunConfig(name="gmmcache", dataset="mnist", arch="mlp", latent_dim=2, epochs=1, n_train=200, n_test=50)
    run = train_or_load(cfg)
    fitted = ev.fit_latent_gmm(run.model, ev.to_float(run.data.train.images), 3, seed=0)
    first = ev.run_latent_gmm(run, n_components=3, seed=0)
    monkeypatch.setattr(ev, "fit_latent_gmm", lambda *a, **k: pytest.fail("refitted"))
    cached = ev.run_latent_gmm(run, n_components=3, seed=0)
    np.testing.assert_array_equal(cached.means_, first.means_)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(cached, attr), getattr(fitted, attr), rtol=1e-12)
    z = ev.gmm_latents(cached, 50, seed=1)
    np.testing.assert_allclose(cached.score_samples(z), fitted.score_samples(z), rtol=1e-10)
    assert torch.equal(ev.gmm_samples(run.model, cached, 5, seed=1), ev.gmm_samples(run.model, fitted, 5, seed=1))
