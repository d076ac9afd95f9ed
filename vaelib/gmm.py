"""Gaussian mixtures on latent codes (scikit-learn): seed 000's classifier (component k starts at the mean
code of labelled class ``classes[k]``), its selection (on a validation set, by cross-validation on a few
labels, or by BIC without labels), metrics, NPZ file, label efficiency, clustering scores, and a run's latent
mixture with a sampler. Fits and predictions run on one BLAS/OpenMP thread: tiny jobs."""
from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.metrics import (accuracy_score, adjusted_rand_score, f1_score, normalized_mutual_info_score,
                             precision_recall_fscore_support)
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import ThreadpoolController

from .data import to_float
from .errors import InputError
from .store import atomic_write

DEFAULT_GRID = {"covariance_type": ("full", "tied", "diag", "spherical"), "reg_covar": (1e-6, 1e-3, 1e-1),
                "n_init": (1, 5)}
CV_GRID = {"covariance_type": ("full", "tied", "diag", "spherical"), "reg_covar": (1e-6, 1e-1)}  # n_init 1
LOGREG_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
GMM_FORMAT = "vaelib-gmm-1"
LOGREG = "logistic regression on pixels"
_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")
_SETTINGS = {"covariance_type": str, "reg_covar": float, "n_init": int}
_POOLS = ThreadpoolController()  # inspected once: threadpool_limits(1) inspects the libraries at every call (~4 ms)


def fit_gmm(z: Any, means_init: Any = None, n_components: int | None = None, *, covariance_type: str = "full",
            reg_covar: float = 1e-6, n_init: int = 1, seed: int = 0, max_iter: int = 500) -> GaussianMixture:
    """``GaussianMixture`` on ``z``: from ``means_init`` and random responsibilities, else a k-means start."""
    start = {} if means_init is None else {"init_params": "random", "means_init": np.asarray(means_init, np.float64)}
    gmm = GaussianMixture(n_components if means_init is None else len(means_init), covariance_type=covariance_type,
                          reg_covar=reg_covar, n_init=n_init, max_iter=max_iter, random_state=seed, **start)
    with warnings.catch_warnings(action="ignore", category=UserWarning), _POOLS.limit(limits=1):  # see converged_
        return gmm.fit(np.asarray(z, np.float64))


def full_covariances(gmm: GaussianMixture) -> np.ndarray:
    """(K, d, d) covariance of each component, whatever the mixture's ``covariance_type``."""
    (k, d), cov = gmm.means_.shape, np.asarray(gmm.covariances_, np.float64)
    if gmm.covariance_type in ("full", "tied"):
        return np.broadcast_to(cov, (k, d, d)).copy()
    return cov.reshape(k, -1, 1) * np.eye(d)  # diag (K, d) or spherical (K,)


@dataclass
class GMMClassifier:
    """A fitted mixture whose component k stands for class ``classes[k]``."""

    gmm: GaussianMixture
    classes: np.ndarray

    def predict_proba(self, z: Any) -> np.ndarray:
        """(N, K) posterior probability of each component (column k = ``classes[k]``)."""
        with _POOLS.limit(limits=1):
            return self.gmm.predict_proba(np.asarray(z, np.float64))

    def predict(self, z: Any) -> np.ndarray:
        """Class value of the most probable component for each code."""
        return self.classes[self.predict_proba(z).argmax(1)]


def fit_classifier(z_train: Any, z_labelled: Any, y_labelled: Any, classes: Sequence[int], **kw) -> GMMClassifier:
    """EM on unlabelled ``z_train`` from the class means of the labelled codes (``kw``: ``fit_gmm``'s)."""
    z, y = np.asarray(z_labelled, np.float64), np.asarray(y_labelled, np.int64)
    gmm = fit_gmm(z_train, np.stack([z[y == c].mean(0) for c in classes]), **kw)
    return GMMClassifier(gmm, np.asarray([int(c) for c in classes], np.int64))


def classification_metrics(y_true: Any, y_pred: Any, classes: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro/micro precision, recall and F1 (scikit-learn, over ``classes``)."""
    y_true, y_pred, labels = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64), [int(c) for c in classes]
    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    return out


def _grid_points(grid: Mapping[str, Sequence]) -> list[dict]:
    """Every combination of the grid's settings (``covariance_type``, ``reg_covar``, ``n_init``), in grid order."""
    unknown = sorted(set(grid) - set(_SETTINGS))
    if unknown:
        raise InputError(f"grid: unknown settings {unknown}; expected some of {list(_SETTINGS)}")
    return [{k: _SETTINGS[k](v) for k, v in zip(grid, values)} for values in itertools.product(*grid.values())]


def _choose(points: list[dict], rows: list[dict], by: list[str], ascending: list[bool]) -> tuple[dict, pd.DataFrame]:
    """(the point of the first row sorted by ``by``, the rows as a table with a ``chosen`` column)."""
    table = pd.DataFrame(rows)
    best = table.sort_values(by, ascending=ascending, kind="stable").index[0]  # NaN scores sort last: all tie
    table["chosen"] = table.index == best
    return points[best], table


def _folds(y: np.ndarray, classes: Sequence[int]) -> StratifiedKFold | None:
    """Stratified folds of labelled points, as many as the rarest class has labels up to 5 (k=5: leave one label
    per class out); None when a class has a single label."""
    n = min(5, min(int(np.sum(y == c)) for c in classes))
    return StratifiedKFold(n) if n >= 2 else None


def select_gmm(z_train: Any, z_val: Any, y_val: Any, classes: Sequence[int],
               grid: Mapping[str, Sequence] | None = None, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """(best settings, table): a classifier per grid point; best = top val macro-F1, then lowest train BIC. Uses
    every validation label: the all-labels classifier (few labels: ``select_gmm_cv``)."""
    z_train, rows, points = np.asarray(z_train, np.float64), [], _grid_points(DEFAULT_GRID if grid is None else grid)
    for g in points:
        clf = fit_classifier(z_train, z_val, y_val, classes, seed=seed, **g)
        m = classification_metrics(y_val, clf.predict(z_val), classes)
        rows.append({**g, "val_accuracy": m["accuracy"], "val_f1_macro": m["f1_macro"], "train_loglik":
                     float(clf.gmm.score(z_train)), "train_bic": float(clf.gmm.bic(z_train)),
                     "converged": bool(clf.gmm.converged_)})
    return _choose(points, rows, ["val_f1_macro", "train_bic"], [False, True])


def select_gmm_cv(z_train: Any, z_labelled: Any, y_labelled: Any, classes: Sequence[int],
                  grid: Mapping[str, Sequence] | None = None, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """(best settings, table) from the labelled codes alone, for few labels. Per grid point (default ``CV_GRID``),
    stratified folds (``min(5, labels of the rarest class)``): means from the training fold's labels, EM on
    ``z_train``, the held-out codes predicted; ``cv_f1_macro`` = macro-F1 of these out-of-fold predictions,
    ``train_bic`` = the fold mixtures' mean BIC on ``z_train``. Best: top CV macro-F1, ties: lowest train BIC.
    With one label in a class no CV is possible: one mixture from all labels per grid point, ``cv_f1_macro``
    NaN, and its train BIC decides alone."""
    z, y = np.asarray(z_labelled, np.float64), np.asarray(y_labelled, np.int64)
    z_train = np.asarray(z_train, np.float64)
    counts = [int(np.sum(y == c)) for c in classes]
    if len(y) != len(z) or sum(counts) != len(y) or min(counts) < 1:
        raise InputError(f"y_labelled: {len(y)} labels for {len(z)} codes, per class {dict(zip(classes, counts))}; "
                         "expected one label per code, every label in classes, every class at least once")
    folds, rows, points = _folds(y, classes), [], _grid_points(CV_GRID if grid is None else grid)
    splits = list(folds.split(z, y)) if folds else [(np.arange(len(y)),) * 2]  # no CV: one fit, its BIC
    for g in points:
        oof, mixtures = np.empty_like(y), []
        for tr, te in splits:
            clf = fit_classifier(z_train, z[tr], y[tr], classes, seed=seed, **g)
            oof[te] = clf.predict(z[te])
            mixtures.append(clf.gmm)
        f1 = f1_score(y, oof, labels=list(classes), average="macro", zero_division=0) if folds else np.nan
        rows.append({**g, "cv_f1_macro": float(f1), "train_bic": float(np.mean([m.bic(z_train) for m in mixtures])),
                     "converged": all(m.converged_ for m in mixtures)})
    return _choose(points, rows, ["cv_f1_macro", "train_bic"], [False, True])


def select_gmm_unsupervised(z_train: Any, n_components: int, grid: Mapping[str, Sequence] | None = None,
                            seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """(best settings, table) without any label: a k-means-started mixture of ``n_components`` on ``z_train`` per
    grid point (default ``DEFAULT_GRID``); best = lowest BIC on ``z_train``."""
    z_train, rows, points = np.asarray(z_train, np.float64), [], _grid_points(DEFAULT_GRID if grid is None else grid)
    for g in points:
        gmm = fit_gmm(z_train, n_components=n_components, seed=seed, **g)
        rows.append({**g, "train_loglik": float(gmm.score(z_train)), "train_bic": float(gmm.bic(z_train)),
                     "converged": bool(gmm.converged_)})
    return _choose(points, rows, ["train_bic"], [True])


def fit_logreg(x: Any, y: Any, classes: Sequence[int], seed: int = 0) -> tuple[LogisticRegression, float]:
    """(``LOGREG`` fitted on the rows of ``x``, its C): C from ``LOGREG_CS`` by ``LogisticRegressionCV`` (macro-F1,
    ``select_gmm_cv``'s folds; ties: the smaller C), or scikit-learn's default C=1 when a class has one label."""
    x, y = np.asarray(x, np.float64).reshape(len(x), -1), np.asarray(y, np.int64)
    folds = _folds(y, classes)
    with _POOLS.limit(limits=1):
        if folds is None:
            return LogisticRegression(max_iter=2000, random_state=seed).fit(x, y), 1.0
        model = LogisticRegressionCV(Cs=list(LOGREG_CS), cv=folds, scoring="f1_macro", l1_ratios=(0.0,),
                                     max_iter=2000, random_state=seed, use_legacy_attributes=False).fit(x, y)
    return model, float(model.C_)


def draw_labelled(y_val: Any, classes: Sequence[int], k: int | None, seed: int = 0, draw: int = 0) -> np.ndarray:
    """Sorted indices of the labelled images of ``label_efficiency``'s draw: the first k of each class in a seeded
    random order of ``y_val`` (a label outside ``classes`` never changes it); k=None: every image in ``classes``."""
    y_val = np.asarray(y_val, np.int64)
    if k is None:
        return np.flatnonzero(np.isin(y_val, classes))
    order = np.random.default_rng([seed, int(k), draw]).permutation(len(y_val))
    return np.sort(np.concatenate([order[y_val[order] == c][:k] for c in classes]))


def label_efficiency(features: Mapping[str, Sequence[Any]], y_val: Any, y_test: Any, classes: Sequence[int], *,
                     pixels: Sequence[Any] | None = None, ks: Sequence[int | None] = (1, 5, 10, 50, None),
                     n_draws: int = 10, seed: int = 0, grid: Mapping[str, Sequence] | None = None) -> pd.DataFrame:
    """Test scores with k random labelled validation images per class (``draw_labelled``), the same draws for
    every method: a GMM classifier on ``features[name]`` = (train, val, test) with the settings ``select_gmm_cv``
    chooses from ``grid`` (default ``CV_GRID``), and ``LOGREG`` on ``pixels`` = (val, test) with ``fit_logreg``'s
    C: every choice and fit sees the k drawn labels only. k=None: all labels (one draw); k above the smallest
    class: skipped. A row per method and draw: test scores, ``selected_by`` ("cv"; with one label in a class
    "bic" for GMMs, "default" (C=1) for ``LOGREG``) and the chosen ``settings`` as JSON (``{"covariance_type":
    .., "reg_covar": ..}`` or ``{"C": ..}``)."""
    y_val, y_test = np.asarray(y_val, np.int64), np.asarray(y_test, np.int64)
    feats = {name: [np.asarray(f, np.float64) for f in triple] for name, triple in features.items()}
    pix = None if pixels is None else [np.asarray(p, np.float64).reshape(len(p), -1) for p in pixels]
    smallest, rows = min(int(np.sum(y_val == c)) for c in classes), []
    for k in [k for k in ks if k is None or k <= smallest]:
        for draw in range(1 if k is None else n_draws):
            idx = draw_labelled(y_val, classes, k, seed, draw)
            cv = _folds(y_val[idx], classes) is not None
            fits = {}
            for name, (ftr, fva, fte) in feats.items():
                best, _ = select_gmm_cv(ftr, fva[idx], y_val[idx], classes, grid=grid, seed=seed)
                clf = fit_classifier(ftr, fva[idx], y_val[idx], classes, seed=seed, **best)
                fits[name] = clf.predict(fte), "cv" if cv else "bic", best
            if pix is not None:
                logreg, c = fit_logreg(pix[0][idx], y_val[idx], classes, seed=seed)
                fits[LOGREG] = logreg.predict(pix[1]), "cv" if cv else "default", {"C": c}
            for name, (pred, selected_by, settings) in fits.items():
                m = classification_metrics(y_test, pred, classes)
                rows.append({"method": name, "k": "all" if k is None else str(int(k)), "n_labels": len(idx),
                             "per_class": len(idx) / len(classes), "draw": draw, "accuracy": m["accuracy"],
                             "f1_macro": m["f1_macro"], "selected_by": selected_by, "settings": json.dumps(settings)})
    return pd.DataFrame(rows)


def summarise_label_efficiency(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std (over draws, ddof 0) of macro-F1 and accuracy per method and k, in the order of ``df``."""
    agg = {"n_labels": ("n_labels", "first"), "per_class": ("per_class", "first"), "draws": ("draw", "size")}
    for m in ("f1_macro", "accuracy"):
        agg.update({f"{m}_mean": (m, "mean"), f"{m}_std": (m, lambda s: float(np.std(s)))})
    return df.groupby(["method", "k"], sort=False).agg(**agg).reset_index()


def cluster_scores(y_true: Any, clusters: Any, classes: Sequence[int]) -> dict[str, Any]:
    """Accuracy after Hungarian matching of clusters to classes (extra clusters → -1), NMI, ARI, mapping."""
    y_true, clusters = np.asarray(y_true, np.int64), np.asarray(clusters, np.int64)
    n = max(int(clusters.max()) + 1 if len(clusters) else 0, len(classes))
    counts = np.stack([np.bincount(clusters[y_true == c], minlength=n)[:n] for c in classes], axis=1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = {**dict.fromkeys(range(n), -1), **{int(r): int(classes[c]) for r, c in zip(rows, cols)}}
    return {"accuracy": float(np.mean(np.array([mapping[int(c)] for c in clusters]) == y_true)),
            "nmi": float(normalized_mutual_info_score(y_true, clusters)),
            "ari": float(adjusted_rand_score(y_true, clusters)), "mapping": mapping}


def latent_mixture(run: Any, n_components: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Full-covariance mixture (k-means start) of the μ of ``run``'s training images, as plain arrays."""
    g = fit_gmm(run.model.latents(to_float(run.data.train.images)), n_components=n_components, seed=seed)
    return {"weights": g.weights_, "means": g.means_, "covariances": g.covariances_}


def sample_latents(params: Mapping[str, Any], n: int, seed: int = 0) -> np.ndarray:
    """``n`` codes from ``latent_mixture``'s arrays: component ~ weights, z = mean + cholesky(cov) ε."""
    w, means, cov = (np.asarray(params[k], np.float64) for k in ("weights", "means", "covariances"))
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(w), size=n, p=w / w.sum())
    return means[comp] + np.einsum("nij,nj->ni", np.linalg.cholesky(cov)[comp], rng.standard_normal(means[comp].shape))


def save_gmm(path: str | Path, clf: GMMClassifier, meta: Mapping[str, Any] | None = None) -> Path:
    """Write the classifier as NPZ content (plain arrays, a JSON string), atomically, whatever the name."""
    arrays = {k: np.asarray(getattr(clf.gmm, k + "_"), np.float64) for k in _ARRAYS}
    with atomic_write(path) as f:
        np.savez(f, format=np.array(GMM_FORMAT), classes=np.asarray(clf.classes, np.int64), **arrays,
                 covariance_type=np.array(clf.gmm.covariance_type), meta=np.array(json.dumps(dict(meta or {}))))
    return Path(path)


def _bad_factors(ct: str, cov: np.ndarray, prec: np.ndarray) -> list[str]:
    """What is wrong with a mixture's precision factors: not upper triangular with a positive diagonal (full,
    tied) or not positive (diag, spherical), or not the Cholesky factors of the inverse covariances."""
    matrix = ct in ("full", "tied")
    diag = np.diagonal(prec, axis1=-2, axis2=-1) if matrix else prec
    if (diag <= 0).any() or matrix and np.tril(prec, -1).any():
        return ["singular or malformed precisions_cholesky"]
    eye = np.swapaxes(prec, -1, -2) @ cov @ prec if matrix else cov * prec ** 2  # P^T Σ P = I
    ok = np.allclose(eye, np.eye(cov.shape[-1]) if matrix else 1, atol=1e-5)
    return [] if ok else ["covariances that do not match precisions_cholesky"]


def load_gmm(path: str | Path) -> tuple[GMMClassifier, dict]:
    """Read and check a ``save_gmm`` file (``allow_pickle=False``: nothing executes). Returns (classifier, meta)."""
    path, expected = Path(path), "a GMM file written by `vae TRAIN VAL train vae.pth gmm_params.pkl`"
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected {expected}")
    try:
        with np.load(path, allow_pickle=False) as data:
            a = {k: data[k] for k in data.files}
        meta = json.loads(str(a.get("meta", "{}")))
    except Exception as e:  # a pickle, a truncated zip, a single array, object arrays, bad JSON ...
        raise InputError(f"{path}: unreadable ({type(e).__name__}); expected {expected} (NPZ content)") from None
    missing = [k for k in ("format", "classes", "covariance_type", "meta", *_ARRAYS) if k not in a]
    if missing:
        raise InputError(f"{path}: missing {missing}; expected {expected}")
    ct, classes, w = str(a["covariance_type"]), a["classes"], a["weights"]
    k, d = classes.size, a["means"].shape[-1] if a["means"].ndim else 0
    cov = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}.get(ct)
    bad = [] if str(a["format"]) == GMM_FORMAT else [f"format {str(a['format'])!r}"]
    bad += [] if cov else [f"covariance type {ct!r}"]
    if classes.ndim != 1 or not k or classes.dtype.kind not in "iu" or len(np.unique(classes)) != k:
        bad.append(f"classes {classes.tolist()}")
    for key, shape in zip(_ARRAYS, ((k,), (k, d), cov, cov)):
        bad += [f"{key} of shape {a[key].shape}"] if cov and a[key].shape != shape else []
        bad += [f"{key} not finite floats"] if a[key].dtype.kind != "f" or not np.isfinite(a[key]).all() else []
    if not bad and (w.min() < 0 or abs(w.sum() - 1) > 1e-6):
        bad.append(f"weights summing to {w.sum():g}" if w.min() >= 0 else "negative weights")
    if not bad:
        bad += _bad_factors(ct, a["covariances"], a["precisions_cholesky"])
    bad += [] if isinstance(meta, dict) else [f"metadata a JSON {type(meta).__name__}"]
    if bad:
        raise InputError(f"{path}: {', '.join(bad)}; expected {expected}: one component per distinct integer "
                         f"class, finite {' / '.join(_ARRAYS)} of matching shapes, weights summing to 1, "
                         "precision factors matching the covariances, metadata a JSON object")
    g = GaussianMixture(k, covariance_type=ct)  # with the fitted attributes that predict and score read:
    vars(g).update({key + "_": a[key] for key in _ARRAYS}, converged_=True, n_iter_=0, n_features_in_=d)
    return GMMClassifier(g, classes.astype(np.int64)), meta
