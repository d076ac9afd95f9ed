"""vaelib.gmm: class-mean initialisation, metrics and matching against scikit-learn/scipy, the
NPZ parameter file, label efficiency and the ellipse geometry."""

import itertools
import pickle

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from sklearn.metrics import (accuracy_score, adjusted_rand_score, classification_report,  # noqa: E402
                             f1_score, normalized_mutual_info_score, precision_score, recall_score)

from vaelib import gmm  # noqa: E402
from vaelib.errors import InputError  # noqa: E402

CLASSES = [1, 4, 8]
CENTRES = {1: (0.0, 3.0), 4: (-2.5, -1.0), 8: (2.5, -1.0)}


def blobs(n, seed, scale=0.5):
    rng = np.random.default_rng(seed)
    y = np.repeat(CLASSES, n // 3)
    z = np.array([CENTRES[c] for c in y]) + rng.normal(scale=scale, size=(len(y), 2))
    return z, y


def test_class_means_in_class_order_and_missing_class():
    z = np.array([[0.0, 0], [2, 2], [10, 10], [4, 6]])
    y = np.array([4, 4, 8, 1])
    np.testing.assert_allclose(gmm.class_means(z, y, [1, 4, 8]), [[4, 6], [1, 1], [10, 10]])
    with pytest.raises(InputError, match=r"class \[7\]"):
        gmm.class_means(z, y, [1, 7])


def test_component_k_is_class_k():
    z_tr, _ = blobs(600, 0)
    z_va, y_va = blobs(60, 1)
    z_te, y_te = blobs(300, 2)
    for ct in gmm.COVARIANCE_TYPES:
        clf = gmm.fit_classifier(z_tr, z_va, y_va, CLASSES, covariance_type=ct, seed=0)
        assert clf.classes.tolist() == CLASSES
        np.testing.assert_allclose(clf.gmm.means_, [CENTRES[c] for c in CLASSES], atol=0.15)
        assert accuracy_score(y_te, clf.predict(z_te)) > 0.99
        assert clf.predict_proba(z_te).shape == (300, 3)
        assert gmm.full_covariances(clf.gmm).shape == (3, 2, 2)
    # the same start in another class order: predictions follow the classes, not the order
    clf_r = gmm.fit_classifier(z_tr, z_va, y_va, CLASSES[::-1], seed=0)
    np.testing.assert_array_equal(clf_r.predict(z_te), clf.predict(z_te))


def test_full_covariances_match_the_covariance_type():
    z, y = blobs(300, 3)
    full = gmm.fit_classifier(z, z, y, CLASSES, covariance_type="full").gmm
    np.testing.assert_allclose(gmm.full_covariances(full), full.covariances_)
    diag = gmm.fit_classifier(z, z, y, CLASSES, covariance_type="diag").gmm
    np.testing.assert_allclose(np.diagonal(gmm.full_covariances(diag), axis1=1, axis2=2), diag.covariances_)
    tied = gmm.fit_classifier(z, z, y, CLASSES, covariance_type="tied").gmm
    np.testing.assert_allclose(gmm.full_covariances(tied)[2], tied.covariances_)
    sph = gmm.fit_classifier(z, z, y, CLASSES, covariance_type="spherical").gmm
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
    table = gmm.report_table(y, p, CLASSES, ["one", "four", "eight"])
    ref = classification_report(y, p, output_dict=True)
    assert table.loc["four", "f1-score"] == pytest.approx(ref["4"]["f1-score"])
    assert table.loc["macro avg", "recall"] == pytest.approx(ref["macro avg"]["recall"])
    assert table.loc["accuracy", "support"] == 200


def test_hungarian_matches_brute_force_and_sklearn_scores():
    rng = np.random.default_rng(1)
    y = rng.choice(CLASSES, 300)
    true_cluster = {1: 2, 4: 0, 8: 1}
    clusters = np.array([true_cluster[c] for c in y])
    noisy = np.where(rng.random(300) < 0.25, rng.integers(0, 3, 300), clusters)
    mapping = gmm.hungarian_mapping(y, noisy, CLASSES)
    assert mapping == {v: k for k, v in true_cluster.items()}
    best = max(np.mean(np.array([perm[c] for c in noisy]) == y) for perm in itertools.permutations(CLASSES))
    s = gmm.cluster_scores(y, noisy, CLASSES)
    assert s["accuracy"] == pytest.approx(best)
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(y, noisy))
    assert s["ari"] == pytest.approx(adjusted_rand_score(y, noisy))
    # more clusters than classes: the extra cluster maps to -1 and counts as wrong
    four = np.where(noisy == 0, 3, noisy)
    assert gmm.hungarian_mapping(y, four, CLASSES)[0] == -1


def test_unsupervised_gmm_recovers_separated_blobs():
    z_tr, _ = blobs(600, 4)
    z_te, y_te = blobs(300, 5)
    out = gmm.unsupervised_gmm(z_tr, z_te, y_te, CLASSES, n_init=2, seed=0)
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


def test_draw_per_class():
    y = np.array([1] * 5 + [4] * 3 + [8] * 4)
    idx = gmm.draw_per_class(y, CLASSES, 2, np.random.default_rng(0))
    assert sorted(np.bincount(y[idx]).tolist()[i] for i in CLASSES) == [2, 2, 2]
    assert len(gmm.draw_per_class(y, CLASSES, None, np.random.default_rng(0))) == 12
    with pytest.raises(InputError, match="only 3"):
        gmm.draw_per_class(y, CLASSES, 4, np.random.default_rng(0))


def test_label_efficiency_rows_and_baselines():
    z_tr, _ = blobs(300, 8)
    z_va, y_va = blobs(36, 9)  # 12 per class: k=50 is skipped
    z_te, y_te = blobs(90, 10)
    rng = np.random.default_rng(0)
    pix_va, pix_te = rng.random((36, 1, 28, 28)), rng.random((90, 1, 28, 28))
    pix_va[:, 0, :5] += (y_va[:, None, None] == 1)  # the pixels carry the class too
    pix_te[:, 0, :5] += (y_te[:, None, None] == 1)
    df = gmm.label_efficiency({"blobs": (z_tr, z_va, z_te)}, y_va, y_te, CLASSES, pixels=(pix_va, pix_te),
                              ks=(1, 5, 50, None), n_draws=3, seed=0, gmm_params={"covariance_type": "full"})
    assert set(df["method"]) == {"blobs", "logistic regression on pixels"}
    assert df.groupby("k").size().to_dict() == {"1": 6, "5": 6, "all": 2}
    assert df.loc[df["k"] == "1", "n_labels"].eq(3).all() and df.loc[df["k"] == "all", "n_labels"].eq(36).all()
    assert df.loc[(df["method"] == "blobs") & (df["k"] == "all"), "f1_macro"].item() == 1.0
    again = gmm.label_efficiency({"blobs": (z_tr, z_va, z_te)}, y_va, y_te, CLASSES, ks=(1,), n_draws=3, seed=0,
                                 gmm_params={"covariance_type": "full"})
    np.testing.assert_array_equal(again["f1_macro"], df[(df["method"] == "blobs") & (df["k"] == "1")]["f1_macro"])
    s = gmm.summarise_label_efficiency(df)
    row = s[(s["method"] == "blobs") & (s["k"] == "1")].iloc[0]
    part = df[(df["method"] == "blobs") & (df["k"] == "1")]["f1_macro"]
    assert row["draws"] == 3 and row["per_class"] == 1
    assert row["f1_macro_mean"] == pytest.approx(part.mean()) and row["f1_macro_std"] == pytest.approx(part.std(ddof=0))
    fig = gmm.label_efficiency_figure(s, draws=df)
    ax = fig.axes[0]
    assert len(ax.get_legend().get_texts()) == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "all\n(≈12)"]
    assert sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")) >= len(df)


def test_pca_features_fit_on_train_only():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    a, b = rng.random((50, 1, 28, 28)), rng.random((20, 1, 28, 28))
    fa, fb = gmm.pca_features(a, b, n_components=2)
    ref = PCA(2, random_state=0).fit(a.reshape(50, -1))
    np.testing.assert_allclose(np.abs(fb), np.abs(ref.transform(b.reshape(20, -1))), atol=1e-8)
    assert fa.shape == (50, 2)


@pytest.mark.parametrize("ct", gmm.COVARIANCE_TYPES)
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


class _Trap:
    """Unpickling this would create a folder (proves the loader never unpickles)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return (os.mkdir, (str(self.target),))


def test_load_rejects_bad_files(tmp_path):
    z, y = blobs(60, 13)
    clf = gmm.fit_classifier(z, z, y, CLASSES)
    good = gmm.save_gmm(tmp_path / "good.pkl", clf)
    trap = tmp_path / "trap.pkl"
    trap.write_bytes(pickle.dumps({"means": _Trap(tmp_path / "pwned")}))
    with pytest.raises(InputError, match="trap.pkl: unreadable"):
        gmm.load_gmm(trap)
    assert not (tmp_path / "pwned").exists()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="cut.pkl"):
        gmm.load_gmm(cut)
    with pytest.raises(InputError, match="file not found"):
        gmm.load_gmm(tmp_path / "missing.pkl")
    with np.load(good, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(tmp_path / "nokey.npz", **{k: v for k, v in arrays.items() if k != "means"})
    with pytest.raises(InputError, match=r"missing \['means'\]"):
        gmm.load_gmm(tmp_path / "nokey.npz")
    np.savez(tmp_path / "shape.npz", **{**arrays, "weights": arrays["weights"][:2]})
    with pytest.raises(InputError, match="weights of shape"):
        gmm.load_gmm(tmp_path / "shape.npz")
    nan = arrays["means"].copy()
    nan[0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **{**arrays, "means": nan})
    with pytest.raises(InputError, match="not finite"):
        gmm.load_gmm(tmp_path / "nan.npz")


@pytest.mark.parametrize("n_sigma", [1.0, 2.0])
def test_ellipse_boundary_is_at_n_sigma_mahalanobis(n_sigma):
    cov = np.array([[2.0, 1.2], [1.2, 1.0]])
    w, h, angle = gmm.ellipse_params(cov, n_sigma)
    assert w >= h
    patch = Ellipse((0, 0), w, h, angle=angle)
    # the unit-circle path is cubic Bézier segments: every third vertex lies on the curve
    pts = patch.get_patch_transform().transform(patch.get_path().vertices[:-1:3])
    assert len(pts) >= 8
    d2 = np.einsum("ni,ij,nj->n", pts, np.linalg.inv(cov), pts)
    np.testing.assert_allclose(np.sqrt(d2), n_sigma, rtol=1e-6)


def test_ellipses_and_confusion_figures():
    z, y = blobs(150, 14)
    clf = gmm.fit_classifier(z, z, y, CLASSES)
    fig = gmm.ellipses_figure(z, y, [str(i) for i in range(10)], clf)
    ax = fig.axes[0]
    assert sum(isinstance(p, Ellipse) for p in ax.patches) == 6  # 1σ and 2σ for 3 components
    cm = np.array([[9, 1, 0], [2, 7, 1], [0, 3, 7]])
    fig = gmm.confusion_figure(cm, ["1", "4", "8"])
    assert {t.get_text() for t in fig.axes[0].texts} >= {"9", "7", "3"}
