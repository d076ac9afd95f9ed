"""Gaussian mixtures on latent codes (scikit-learn): seed 000's classifier (component k starts at the mean
code of labelled class ``classes[k]``), its selection, metrics, NPZ file, label efficiency, clustering scores,
and a run's latent mixture with a sampler. Fits and predictions run under threadpool_limits(1): tiny jobs."""
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
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, adjusted_rand_score, normalized_mutual_info_score,
                             precision_recall_fscore_support)
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from .data import to_float
from .errors import InputError
from .store import atomic_write

DEFAULT_GRID = {"covariance_type": ("full", "tied", "diag", "spherical"), "reg_covar": (1e-6, 1e-3, 1e-1),
                "n_init": (1, 5)}
GMM_FORMAT = "vaelib-gmm-1"
LOGREG = "logistic regression on pixels"
_ARRAYS = ("weights", "means", "covariances", "precisions_cholesky")


def fit_gmm(z: Any, means_init: Any = None, n_components: int | None = None, *, covariance_type: str = "full",
            reg_covar: float = 1e-6, n_init: int = 1, seed: int = 0, max_iter: int = 500) -> GaussianMixture:
    """``GaussianMixture`` on ``z``: from ``means_init`` and random responsibilities, else a k-means start."""
    start = {} if means_init is None else {"init_params": "random", "means_init": np.asarray(means_init, np.float64)}
    gmm = GaussianMixture(n_components if means_init is None else len(means_init), covariance_type=covariance_type,
                          reg_covar=reg_covar, n_init=n_init, max_iter=max_iter, random_state=seed, **start)
    with warnings.catch_warnings(action="ignore", category=UserWarning), threadpool_limits(1):  # see converged_
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
        with threadpool_limits(1):
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


def select_gmm(z_train: Any, z_val: Any, y_val: Any, classes: Sequence[int],
               grid: Mapping[str, Sequence] | None = None, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """(best settings, table): a classifier per grid point; best = top val macro-F1, then lowest train BIC."""
    grid, z_train, rows = DEFAULT_GRID if grid is None else grid, np.asarray(z_train, np.float64), []
    points = [dict(covariance_type=str(ct), reg_covar=float(reg), n_init=int(n_init)) for ct, reg, n_init
              in itertools.product(grid["covariance_type"], grid["reg_covar"], grid["n_init"])]
    for g in points:
        clf = fit_classifier(z_train, z_val, y_val, classes, seed=seed, **g)
        m = classification_metrics(y_val, clf.predict(z_val), classes)
        rows.append({**g, "val_accuracy": m["accuracy"], "val_f1_macro": m["f1_macro"], "train_loglik":
                     float(clf.gmm.score(z_train)), "train_bic": float(clf.gmm.bic(z_train)),
                     "converged": bool(clf.gmm.converged_)})
    table = pd.DataFrame(rows)
    best = table.sort_values(["val_f1_macro", "train_bic"], ascending=[False, True], kind="stable").index[0]
    table["chosen"] = table.index == best
    return points[best], table


def label_efficiency(features: Mapping[str, Sequence[Any]], y_val: Any, y_test: Any, classes: Sequence[int], *,
                     pixels: Sequence[Any] | None = None, ks: Sequence[int | None] = (1, 5, 10, 50, None),
                     n_draws: int = 10, seed: int = 0, params: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """Test scores with k random labelled validation images per class, the same draws for every method: a
    classifier on ``features[name]`` = (train, val, test) with settings ``params[name]``, ``LOGREG`` on ``pixels``
    = (val, test). k=None: all labels (one draw); k above the smallest class: skipped."""
    y_val, y_test, params = np.asarray(y_val, np.int64), np.asarray(y_test, np.int64), params or {}
    feats = {name: [np.asarray(f, np.float64) for f in triple] for name, triple in features.items()}
    pix = None if pixels is None else [np.asarray(p, np.float64).reshape(len(p), -1) for p in pixels]
    smallest, rows = min(int(np.sum(y_val == c)) for c in classes), []
    for k in [k for k in ks if k is None or k <= smallest]:
        for draw in range(1 if k is None else n_draws):
            rng = np.random.default_rng([seed, 0 if k is None else int(k), draw])
            idx = np.flatnonzero(np.isin(y_val, classes)) if k is None else np.sort(np.concatenate(
                [rng.choice(np.flatnonzero(y_val == c), k, replace=False) for c in classes]))
            preds = {name: fit_classifier(ftr, fva[idx], y_val[idx], classes, seed=seed, **params.get(name, {}))
                     .predict(fte) for name, (ftr, fva, fte) in feats.items()}
            if pix is not None:
                with threadpool_limits(1):
                    logreg = LogisticRegression(max_iter=2000, random_state=seed).fit(pix[0][idx], y_val[idx])
                    preds[LOGREG] = logreg.predict(pix[1])
            for name, pred in preds.items():
                m = classification_metrics(y_test, pred, classes)
                rows.append({"method": name, "k": "all" if k is None else str(int(k)), "n_labels": len(idx),
                             "per_class": len(idx) / len(classes), "draw": draw, "accuracy": m["accuracy"],
                             "f1_macro": m["f1_macro"]})
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
        bad.append(f"weights summing to {w.sum():g}")
    if bad:
        raise InputError(f"{path}: {', '.join(bad)}; expected {expected}: one component per distinct integer "
                         f"class, finite {' / '.join(_ARRAYS)} of matching shapes, weights summing to 1")
    g = GaussianMixture(k, covariance_type=ct)  # with the fitted attributes that predict and score read:
    vars(g).update({key + "_": a[key] for key in _ARRAYS}, converged_=True, n_iter_=0, n_features_in_=d)
    return GMMClassifier(g, classes.astype(np.int64)), meta
