"""Classification from VAE features (seed 000): a Gaussian mixture on latent codes.

The VAE is trained without labels; a few labelled images only place the mixture's means.
Component k starts at the mean latent code of class ``classes[k]`` (so component k *is* that
class), EM then runs on the unlabelled training codes, and a code is classified by its most
probable component. Around that:

* ``select_gmm`` — covariance type, ``reg_covar`` and ``n_init`` chosen on the validation set;
* ``classification_metrics`` / ``report_table`` — accuracy, precision, recall, F1 (scikit-learn);
* ``label_efficiency`` — macro-F1 with k labelled images per class (random draws), for GMMs on
  any features (VAE μ, PCA of pixels) and logistic regression on raw pixels as baselines;
* ``hungarian_mapping`` / ``cluster_scores`` / ``unsupervised_gmm`` — no labels at all;
* ``save_gmm`` / ``load_gmm`` — the ``vae`` CLI's ``gmm_params`` file: NPZ content, loaded
  with ``allow_pickle=False`` (no code is executed), validated against the model;
* ``ellipse_params`` / ``ellipses_figure`` / ``confusion_figure`` / ``label_efficiency_figure``.

Features are (N, d) arrays or tensors; labels are the data set's class values (e.g. 1, 4, 8).
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InputError

__all__ = [
    "COVARIANCE_TYPES", "DEFAULT_GRID", "GMM_FORMAT",
    "as_array", "class_means", "fit_gmm", "full_covariances", "GMMClassifier", "fit_classifier",
    "classification_metrics", "report_table", "select_gmm",
    "draw_per_class", "pca_features", "label_efficiency", "summarise_label_efficiency",
    "hungarian_mapping", "cluster_scores", "unsupervised_gmm",
    "save_gmm", "load_gmm",
    "ellipse_params", "ellipses_figure", "confusion_figure", "label_efficiency_figure",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DEFAULT_GRID = {"covariance_type": COVARIANCE_TYPES, "reg_covar": (1e-6, 1e-3, 1e-1), "n_init": (1, 5)}
GMM_FORMAT = "vaelib-gmm-1"


# ---------------------------------------------------------------- the classifier

def _one_thread():
    """BLAS/OpenMP limited to one thread: these fits are tiny, and on a busy machine several
    threads per fit spend most of their time waiting for each other (30× slower, measured)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def as_array(x: Any, dtype=np.float64) -> np.ndarray:
    """A numpy copy of a tensor or array (features as float64, labels with ``dtype=np.int64``)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def class_means(z: Any, labels: Any, classes: Sequence[int]) -> np.ndarray:
    """(K, d) mean of the codes of each class, in the order of ``classes``."""
    z, labels = as_array(z), as_array(labels, np.int64)
    if z.ndim != 2 or labels.shape != (len(z),):
        raise InputError(f"codes {z.shape}, labels {labels.shape}: expected codes (N, d) and labels (N,)")
    missing = [int(c) for c in classes if not np.any(labels == c)]
    if missing:
        raise InputError(f"labels: no example of class {missing}; expected at least one labelled image "
                         f"of each of {[int(c) for c in classes]}")
    return np.stack([z[labels == c].mean(0) for c in classes])


def fit_gmm(z: Any, means_init: np.ndarray | None = None, n_components: int | None = None, *,
            covariance_type: str = "full", reg_covar: float = 1e-6, n_init: int = 1, seed: int = 0,
            max_iter: int = 500, init_params: str | None = None):
    """scikit-learn ``GaussianMixture`` fitted on ``z``.

    With ``means_init`` the means start there and the initial responsibilities, which only set the
    starting weights and covariances, are drawn at random (``init_params="random"``): every
    component starts near the data's overall covariance with equal weight. (k-means
    responsibilities would pair a mean with an arbitrary cluster's covariance; with k-means++ ones,
    which mark single points, a tied mixture collapsed onto one mean in our tests.) Without ``means_init``,
    scikit-learn's default k-means initialisation. ``init_params`` overrides either choice.
    """
    from sklearn.mixture import GaussianMixture

    if covariance_type not in COVARIANCE_TYPES:
        raise InputError(f"covariance_type {covariance_type!r}: unknown; expected one of {COVARIANCE_TYPES}")
    z = as_array(z)
    k = len(means_init) if means_init is not None else n_components
    if k is None:
        raise ValueError("fit_gmm: give means_init or n_components")
    if len(z) < k:
        raise InputError(f"codes: {len(z)} points for {k} mixture components; expected at least {k}")
    gmm = GaussianMixture(n_components=k, covariance_type=covariance_type, reg_covar=reg_covar,
                          n_init=n_init, max_iter=max_iter, random_state=seed,
                          init_params=init_params or ("kmeans" if means_init is None else "random"),
                          means_init=None if means_init is None else np.asarray(means_init, np.float64))
    with warnings.catch_warnings(), _one_thread():  # non-convergence is reported by converged_
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*did not converge.*")
        gmm.fit(z)
    return gmm


def full_covariances(gmm) -> np.ndarray:
    """(K, d, d) covariance of each component, whatever ``covariance_type`` the mixture has."""
    k, d = gmm.means_.shape
    cov = np.asarray(gmm.covariances_, np.float64)
    if gmm.covariance_type == "full":
        return cov.copy()
    if gmm.covariance_type == "tied":
        return np.repeat(cov[None], k, axis=0)
    if gmm.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])  # spherical


@dataclass
class GMMClassifier:
    """A fitted mixture whose component k stands for class ``classes[k]``."""

    gmm: Any
    classes: np.ndarray

    @property
    def latent_dim(self) -> int:
        return int(self.gmm.means_.shape[1])

    def predict(self, z: Any) -> np.ndarray:
        """Class value of the most probable component for each code."""
        z = self._check(z)
        with _one_thread():
            return self.classes[self.gmm.predict(z)]

    def predict_proba(self, z: Any) -> np.ndarray:
        """(N, K) posterior probability of each component (column k = ``classes[k]``)."""
        z = self._check(z)
        with _one_thread():
            return self.gmm.predict_proba(z)

    def _check(self, z: Any) -> np.ndarray:
        z = as_array(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise InputError(f"codes of shape {z.shape}: expected (N, {self.latent_dim}) for this mixture")
        return z


def fit_classifier(z_train: Any, z_labelled: Any, y_labelled: Any, classes: Sequence[int], *,
                   covariance_type: str = "full", reg_covar: float = 1e-6, n_init: int = 1,
                   seed: int = 0) -> GMMClassifier:
    """EM on the unlabelled ``z_train`` with means started at the class means of the labelled codes."""
    means = class_means(z_labelled, y_labelled, classes)
    gmm = fit_gmm(z_train, means, covariance_type=covariance_type, reg_covar=reg_covar, n_init=n_init, seed=seed)
    return GMMClassifier(gmm, np.asarray([int(c) for c in classes], np.int64))


# ---------------------------------------------------------------- metrics

def classification_metrics(y_true: Any, y_pred: Any, classes: Sequence[int]) -> dict[str, float]:
    """Accuracy and macro/micro precision, recall and F1 (scikit-learn; classes fixed by ``classes``)."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    y_true, y_pred = as_array(y_true, np.int64), as_array(y_pred, np.int64)
    labels = [int(c) for c in classes]
    out = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for avg in ("macro", "micro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    return out


def report_table(y_true: Any, y_pred: Any, classes: Sequence[int], names: Sequence[str] | None = None):
    """scikit-learn's ``classification_report`` as a DataFrame (rows: classes, averages)."""
    import pandas as pd
    from sklearn.metrics import classification_report

    labels = [int(c) for c in classes]
    names = [str(c) for c in labels] if names is None else list(names)
    rep = classification_report(as_array(y_true, np.int64), as_array(y_pred, np.int64), labels=labels,
                                target_names=names, output_dict=True, zero_division=0)
    df = pd.DataFrame(rep).T
    if "accuracy" in df.index:  # scikit-learn puts the accuracy in every column of that row
        df.loc["accuracy", ["precision", "recall"]] = np.nan
        df.loc["accuracy", "support"] = df.loc["macro avg", "support"]
    df["support"] = df["support"].astype(int)
    return df


def select_gmm(z_train: Any, z_val: Any, y_val: Any, classes: Sequence[int],
               grid: Mapping[str, Sequence] | None = None, seed: int = 0):
    """Fit one mixture per grid point (means from the validation class means, EM on ``z_train``)
    and score it on the validation set. Returns (best params, DataFrame of every grid point).

    Best: highest validation macro-F1, ties broken by the lower BIC on the training codes.
    """
    import itertools

    import pandas as pd

    grid = dict(DEFAULT_GRID if grid is None else grid)
    z_train, z_val = as_array(z_train), as_array(z_val)
    rows = []
    with _one_thread():
        for ct, reg, n_init in itertools.product(grid["covariance_type"], grid["reg_covar"], grid["n_init"]):
            clf = fit_classifier(z_train, z_val, y_val, classes, covariance_type=ct, reg_covar=float(reg),
                                 n_init=int(n_init), seed=seed)
            m = classification_metrics(y_val, clf.predict(z_val), classes)
            rows.append({"covariance_type": ct, "reg_covar": float(reg), "n_init": int(n_init),
                         "val_accuracy": m["accuracy"], "val_f1_macro": m["f1_macro"],
                         "train_loglik": float(clf.gmm.score(z_train)), "train_bic": float(clf.gmm.bic(z_train)),
                         "converged": bool(clf.gmm.converged_)})
    table = pd.DataFrame(rows)
    order = table.sort_values(["val_f1_macro", "train_bic"], ascending=[False, True], kind="stable")
    best_i = int(order.index[0])
    table["chosen"] = table.index == best_i
    best = {"covariance_type": str(table.loc[best_i, "covariance_type"]),
            "reg_covar": float(table.loc[best_i, "reg_covar"]), "n_init": int(table.loc[best_i, "n_init"])}
    return best, table


# ---------------------------------------------------------------- few labels

def draw_per_class(labels: Any, classes: Sequence[int], k: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``k`` randomly drawn examples of each class (all of them when k is None)."""
    labels = as_array(labels, np.int64)
    if k is None:
        return np.flatnonzero(np.isin(labels, list(classes)))
    out = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < k:
            raise InputError(f"k={k}: class {c} has only {len(idx)} labelled examples; expected at least {k}")
        out.append(rng.choice(idx, k, replace=False))
    return np.sort(np.concatenate(out))


def pca_features(x_train: Any, *others: Any, n_components: int = 2, seed: int = 0) -> list[np.ndarray]:
    """PCA fitted on the flattened ``x_train`` (no labels); returns the projections of it and ``others``."""
    from sklearn.decomposition import PCA

    flat = [as_array(x).reshape(len(x), -1) for x in (x_train, *others)]
    pca = PCA(n_components=n_components, random_state=seed).fit(flat[0])
    return [pca.transform(f) for f in flat]


def _logreg_predict(x_lab: np.ndarray, y_lab: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, random_state=seed)
    return clf.fit(x_lab, y_lab).predict(x_test)


LABEL_EFFICIENCY_VERSION = 1  # bump when ``label_efficiency``'s numbers change for the same inputs


def label_efficiency(gmm_features: Mapping[str, tuple[Any, Any, Any]], y_val: Any, y_test: Any,
                     classes: Sequence[int], *, pixels: tuple[Any, Any] | None = None,
                     ks: Sequence[int | None] = (1, 5, 10, 50, None), n_draws: int = 10, seed: int = 0,
                     gmm_params: Mapping[str, Any] | None = None,
                     method_params: Mapping[str, Mapping[str, Any]] | None = None,
                     logreg_name: str = "logistic regression on pixels"):
    """Test scores when only k labelled validation images per class are known.

    ``gmm_features`` maps a method name to (train, val, test) features: a GMM is fitted on the
    unlabelled train features with its means started at the class means of the k labelled
    validation features. ``pixels`` = (val, test) raw pixels adds logistic regression trained on the
    same k labelled images. ``gmm_params`` (covariance_type, reg_covar, n_init) apply to every GMM;
    ``method_params[name]`` overrides them for one method. Every method sees the same draws.
    k=None means every validation image (one draw); a k larger than the smallest class is skipped. Returns a long DataFrame
    (method, k, n_labels, per_class, draw, accuracy, f1_macro); k is a string ("1", …, "all").
    Cached under the digest of all inputs (``vaelib.result_cache``): hundreds of fits take seconds.
    """
    import pandas as pd

    from .result_cache import cached_frame, digest

    y_val, y_test = as_array(y_val, np.int64), as_array(y_test, np.int64)
    feats = {name: tuple(as_array(f) for f in triple) for name, triple in gmm_features.items()}
    pv = pt = None
    if pixels is not None:
        pv, pt = (as_array(p).reshape(len(p), -1) for p in pixels)
    smallest = min(int(np.sum(y_val == c)) for c in classes)
    params = dict(gmm_params or {})

    def compute():
        rows = []
        with _one_thread():
            _efficiency_rows(rows, feats, pv, pt, y_val, y_test, classes, ks, smallest, n_draws, seed, params,
                             method_params, logreg_name)
        return pd.DataFrame(rows)

    key = digest("label_efficiency", LABEL_EFFICIENCY_VERSION, feats, pv, pt, y_val, y_test, list(classes),
                 list(ks), n_draws, seed, params, method_params or {}, logreg_name)
    return cached_frame("label-efficiency", key, compute)


def _efficiency_rows(rows, feats, pv, pt, y_val, y_test, classes, ks, smallest, n_draws, seed, params,
                     method_params, logreg_name) -> None:
    for k in ks:
        if k is not None and k > smallest:
            continue
        for draw in range(1 if k is None else n_draws):
            rng = np.random.default_rng([seed, 0 if k is None else int(k), draw])
            idx = draw_per_class(y_val, classes, k, rng)
            base = {"k": "all" if k is None else str(int(k)), "n_labels": int(len(idx)),
                    "per_class": len(idx) / len(classes), "draw": draw}
            for name, (ftr, fva, fte) in feats.items():
                kw = {**params, **dict((method_params or {}).get(name, {}))}
                clf = fit_classifier(ftr, fva[idx], y_val[idx], classes, seed=seed, **kw)
                m = classification_metrics(y_test, clf.predict(fte), classes)
                rows.append({"method": name, **base, "accuracy": m["accuracy"], "f1_macro": m["f1_macro"]})
            if pv is not None:
                m = classification_metrics(y_test, _logreg_predict(pv[idx], y_val[idx], pt, seed), classes)
                rows.append({"method": logreg_name, **base, "accuracy": m["accuracy"], "f1_macro": m["f1_macro"]})


def summarise_label_efficiency(df):
    """Mean ± std (over draws) of macro-F1 and accuracy per method and k, in the order of ``df``."""
    g = df.groupby(["method", "k"], sort=False)
    out = g.agg(n_labels=("n_labels", "first"), per_class=("per_class", "first"), draws=("draw", "size"),
                f1_macro_mean=("f1_macro", "mean"), f1_macro_std=("f1_macro", lambda s: float(np.std(s))),
                accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", lambda s: float(np.std(s))))
    return out.reset_index()


# ---------------------------------------------------------------- no labels

def hungarian_mapping(y_true: Any, clusters: Any, classes: Sequence[int]) -> dict[int, int]:
    """Cluster → class assignment maximising the number of agreements (scipy ``linear_sum_assignment``).

    Clusters are 0..K-1. Unassigned clusters (more clusters than classes) map to -1.
    """
    from scipy.optimize import linear_sum_assignment

    y_true, clusters = as_array(y_true, np.int64), as_array(clusters, np.int64)
    n_clusters = max(int(clusters.max()) + 1 if len(clusters) else 0, len(classes))
    counts = np.zeros((n_clusters, len(classes)), np.int64)
    for j, c in enumerate(classes):
        counts[:, j] = np.bincount(clusters[y_true == c], minlength=n_clusters)[:n_clusters]
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = {int(r): int(classes[c]) for r, c in zip(rows, cols)}
    return {k: mapping.get(k, -1) for k in range(n_clusters)}


def cluster_scores(y_true: Any, clusters: Any, classes: Sequence[int]) -> dict[str, Any]:
    """Accuracy after Hungarian matching, NMI and ARI (scikit-learn), and the mapping."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    y_true, clusters = as_array(y_true, np.int64), as_array(clusters, np.int64)
    mapping = hungarian_mapping(y_true, clusters, classes)
    pred = np.array([mapping[int(c)] for c in clusters], np.int64)
    return {"accuracy": float(np.mean(pred == y_true)),
            "nmi": float(normalized_mutual_info_score(y_true, clusters)),
            "ari": float(adjusted_rand_score(y_true, clusters)),
            "mapping": mapping}


def unsupervised_gmm(z_train: Any, z_eval: Any, y_eval: Any, classes: Sequence[int], *,
                     covariance_type: str = "full", reg_covar: float = 1e-6, n_init: int = 1,
                     seed: int = 0) -> dict[str, Any]:
    """A K-component GMM with scikit-learn's own (k-means) initialisation, fitted on ``z_train``
    without labels; its clusters on ``z_eval`` scored with ``cluster_scores`` (labels used only there)."""
    gmm = fit_gmm(z_train, n_components=len(classes), covariance_type=covariance_type, reg_covar=reg_covar,
                  n_init=n_init, seed=seed)
    with _one_thread():
        clusters = gmm.predict(as_array(z_eval))
    out = cluster_scores(y_eval, clusters, classes)
    out["gmm"] = gmm
    return out


# ---------------------------------------------------------------- the CLI's gmm_params file

_GMM_KEYS = ("format", "classes", "covariance_type", "weights", "means", "covariances",
             "precisions_cholesky", "meta")


def save_gmm(path: str | os.PathLike, clf: GMMClassifier, meta: Mapping[str, Any] | None = None) -> Path:
    """Write the mixture as NPZ content (plain arrays + a JSON string) atomically, whatever the name."""
    from .io import atomic_write

    g = clf.gmm
    arrays = {"format": np.array(GMM_FORMAT), "classes": np.asarray(clf.classes, np.int64),
              "covariance_type": np.array(g.covariance_type),
              "weights": np.asarray(g.weights_, np.float64), "means": np.asarray(g.means_, np.float64),
              "covariances": np.asarray(g.covariances_, np.float64),
              "precisions_cholesky": np.asarray(g.precisions_cholesky_, np.float64),
              "meta": np.array(json.dumps(dict(meta or {}), sort_keys=True))}
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return Path(path)


def _cov_shape(ct: str, k: int, d: int) -> tuple[int, ...]:
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[ct]


def load_gmm(path: str | os.PathLike) -> tuple[GMMClassifier, dict]:
    """Read a file written by ``save_gmm`` (``allow_pickle=False``: nothing is executed) and check it.

    Returns (classifier, meta). Errors name the file.
    """
    from sklearn.mixture import GaussianMixture

    path = Path(path)
    expected = "a GMM file written by `vae TRAIN VAL train vae.pth gmm_params.pkl`"
    if not path.is_file():
        raise InputError(f"{path}: file not found; expected {expected}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputError(f"{path}: a single array, not a GMM file; expected {expected}")
            missing = [k for k in _GMM_KEYS if k not in data.files]
            if missing:
                raise InputError(f"{path}: missing {missing}; expected {expected}")
            a = {k: data[k] for k in _GMM_KEYS}
    except InputError:
        raise
    except Exception as e:  # a real pickle, a truncated zip, object arrays ...
        raise InputError(f"{path}: unreadable ({type(e).__name__}); expected {expected} (NPZ content)") from None
    if str(a["format"]) != GMM_FORMAT:
        raise InputError(f"{path}: format {str(a['format'])!r}; expected {GMM_FORMAT!r}")
    ct = str(a["covariance_type"])
    if ct not in COVARIANCE_TYPES:
        raise InputError(f"{path}: covariance type {ct!r}; expected one of {COVARIANCE_TYPES}")
    classes, means, weights = a["classes"], a["means"], a["weights"]
    if classes.ndim != 1 or len(classes) < 1 or not np.issubdtype(classes.dtype, np.integer) \
            or len(np.unique(classes)) != len(classes):
        raise InputError(f"{path}: classes {classes.tolist()}; expected distinct integer class labels")
    k = len(classes)
    if means.ndim != 2 or means.shape[0] != k:
        raise InputError(f"{path}: means of shape {means.shape}; expected ({k}, latent size)")
    d = means.shape[1]
    shapes = {"weights": (k,), "covariances": _cov_shape(ct, k, d), "precisions_cholesky": _cov_shape(ct, k, d)}
    for key, shape in shapes.items():
        if a[key].shape != shape:
            raise InputError(f"{path}: {key} of shape {a[key].shape}; expected {shape} for {k} {ct} components in {d}-D")
    for key in ("weights", "means", "covariances", "precisions_cholesky"):
        if not np.issubdtype(a[key].dtype, np.floating) or not np.isfinite(a[key]).all():
            raise InputError(f"{path}: {key} not finite floats; expected a fitted mixture")
    if np.any(weights < 0) or abs(weights.sum() - 1) > 1e-6:
        raise InputError(f"{path}: weights sum to {weights.sum():g}; expected non-negative weights summing to 1")
    try:
        meta = json.loads(str(a["meta"]))
    except ValueError:
        raise InputError(f"{path}: meta is not JSON; expected {expected}") from None
    g = GaussianMixture(n_components=k, covariance_type=ct)
    g.weights_, g.means_ = weights.astype(np.float64), means.astype(np.float64)
    g.covariances_ = a["covariances"].astype(np.float64)
    g.precisions_cholesky_ = a["precisions_cholesky"].astype(np.float64)
    pc = g.precisions_cholesky_
    if ct == "full":
        g.precisions_ = np.einsum("kij,klj->kil", pc, pc)
    elif ct == "tied":
        g.precisions_ = pc @ pc.T
    else:
        g.precisions_ = pc ** 2
    g.converged_, g.n_iter_, g.lower_bound_, g.n_features_in_ = True, 0, float("nan"), d
    return GMMClassifier(g, classes.astype(np.int64)), meta


# ---------------------------------------------------------------- figures

def ellipse_params(cov: np.ndarray, n_sigma: float = 1.0) -> tuple[float, float, float]:
    """(width, height, angle in degrees) of the ellipse {x : xᵀ Σ⁻¹ x = n_sigma²} for a 2×2 Σ,
    for ``matplotlib.patches.Ellipse``: width along the major axis, angle of that axis from x."""
    cov = np.asarray(cov, np.float64)
    if cov.shape != (2, 2):
        raise ValueError(f"cov: shape {cov.shape}; expected (2, 2)")
    vals, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
    vals = np.clip(vals, 0.0, None)
    major = vecs[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return 2 * n_sigma * float(np.sqrt(vals[1])), 2 * n_sigma * float(np.sqrt(vals[0])), angle


def ellipses_figure(z: Any, labels: Any, class_names: Sequence[str], clf: GMMClassifier,
                    n_sigmas: Sequence[float] = (1.0, 2.0), title: str | None = None, s: float = 5.0):
    """The 2-D codes coloured by class with each component drawn as ``n_sigmas`` ellipses
    (solid 1σ, dashed beyond) in its class colour; component means marked ×."""
    import seaborn as sns
    from matplotlib.patches import Ellipse

    from . import plots

    if clf.latent_dim != 2:
        raise ValueError(f"mixture in {clf.latent_dim}-D; expected 2-D codes for ellipses")
    fig = plots.latent_scatter(z, labels, class_names, title=title, s=s, alpha=0.45)
    ax = fig.axes[0]
    colors = sns.color_palette(plots.PALETTE, 10)
    covs = full_covariances(clf.gmm)
    for k, c in enumerate(clf.classes):
        color = colors[int(c) % 10]
        for j, ns in enumerate(n_sigmas):
            w, h, ang = ellipse_params(covs[k], ns)
            ax.add_patch(Ellipse(clf.gmm.means_[k], w, h, angle=ang, fill=False, lw=2.0 if j == 0 else 1.5,
                                 ls="-" if j == 0 else "--", ec=color, zorder=3))
        ax.plot(*clf.gmm.means_[k], marker="x", ms=10, mew=2.5, color="black", zorder=4)
    ax.text(0.01, 0.01, "ellipses: " + ", ".join(f"{ns:g}σ" for ns in n_sigmas) + " (solid, dashed); × means",
            transform=ax.transAxes, fontsize=8, va="bottom")
    return fig


def confusion_figure(cm: np.ndarray, names: Sequence[str], title: str | None = None):
    """A seaborn heat map of a confusion matrix (rows: true class, columns: predicted), with counts."""
    import seaborn as sns

    from . import plots

    fig = plots.new_figure(figsize=(1.2 * len(names) + 2.0, 1.0 * len(names) + 1.4))
    ax = fig.add_subplot()
    sns.heatmap(np.asarray(cm), annot=True, fmt="d", cmap="Blues", xticklabels=list(names),
                yticklabels=list(names), cbar=True, square=True, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return fig


def label_efficiency_figure(summary, title: str | None = None, metric: str = "f1_macro", draws=None):
    """Mean ± std of ``metric`` (band clipped to [0, 1]) against labelled images per class; the k
    values sit at even steps ("all" last, with its mean count per class). ``draws``, the long
    DataFrame of ``label_efficiency``, adds every draw as a faint dot."""
    import seaborn as sns

    from . import plots

    fig = plots.new_figure(figsize=(7.0, 4.2))
    ax = fig.add_subplot()
    colors = sns.color_palette(plots.PALETTE, 10)
    order = summary.drop_duplicates("k").sort_values("per_class", kind="stable")
    pos = {k: i for i, k in enumerate(order["k"])}
    labels = [f"all\n(≈{n:.0f})" if k == "all" else str(k) for k, n in zip(order["k"], order["per_class"])]
    methods = list(dict.fromkeys(summary["method"]))
    width = 0.5 / max(1, len(methods))
    for i, method in enumerate(methods):
        part = summary[summary["method"] == method].sort_values("per_class", kind="stable")
        shift = (i - (len(methods) - 1) / 2) * width * 0.6
        x = np.array([pos[k] for k in part["k"]], float) + shift
        mean, std = part[f"{metric}_mean"].to_numpy(float), part[f"{metric}_std"].to_numpy(float)
        lo, hi = np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1)
        ax.errorbar(x, mean, yerr=[mean - lo, hi - mean], marker="o", ms=5, capsize=3, color=colors[i], label=method)
        if draws is not None:
            d = draws[draws["method"] == method]
            ax.scatter(np.array([pos[k] for k in d["k"]], float) + shift, d[metric], s=9, color=colors[i],
                       alpha=0.35, linewidths=0)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylim(top=1.01)
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel({"f1_macro": "test macro-F1", "accuracy": "test accuracy"}.get(metric, metric)
                  + " (mean ± std; dots: draws)" * (draws is not None) + " (mean ± std)" * (draws is None))
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title)
    return fig
