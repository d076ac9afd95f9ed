"""Sample quality of the report's models (chapter 05): samplers, real references, the FID table.

For every trained model (``vaelib.experiments.all_runs`` through the run cache) and two ways to
sample it — the prior z ~ N(0, I), and an ex-post 10-component Gaussian mixture fitted to the
posterior means of the training images (as in the RAE paper and Pythae's
``GaussianMixtureSampler``) — N decoded images are compared with N real training images of the
same data set (and the same classes, for class-filtered models) on two feature extractors:
Inception-v3 pool3 and the data set's domain classifier. Baselines at the same N: N real test
images, and N images of uniform noise.

Real features are cached per data set, classes, split, extractor and N (``fid.cached_features``,
with their mean and covariance in ``fid.cached_stats``).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import fid
from .data import load_dataset, take, to_float
from .errors import InputError
from .models import VAE
from .result_cache import digest
from .runs import Run, RunConfig, train_or_load

__all__ = [
    "SAMPLERS", "EXTRACTOR_KINDS", "load_runs", "prior_samples", "fit_latent_gmm", "run_latent_gmm", "gmm_latents",
    "gmm_samples", "noise_images", "real_images", "Reference", "build_reference", "compare",
    "baseline_rows", "reference_key", "reference_groups", "evaluate_runs", "fid_vs_n",
    "untrained_extractor", "untrained_fids", "classifier_table", "summary_by_reference", "sweeps",
    "fid_captions", "wide_table",
    "fid_bar_chart", "sampler_grids",
]

SAMPLERS = {"prior": "prior N(0, I)", "gmm": "GMM-10 (ex post)"}
EXTRACTOR_KINDS = ("Inception", "domain classifier")
METRICS = ("fid", "kid", "kid_std", "precision", "recall")
COMPARE_VERSION = 1  # bump when ``compare``'s scores change for the same features


def load_runs(configs: Mapping[str, RunConfig], max_models: int | None = None,
              device: str | torch.device | None = None) -> dict[str, Run]:
    """``train_or_load`` for the first ``max_models`` configs (None: all), keeping their labels."""
    chosen = list(configs.items())[:max_models] if max_models is not None else list(configs.items())
    return {label: train_or_load(cfg, device=device) for label, cfg in chosen}


# --------------------------------------------------------------------------- samplers


def _check_n(n: int) -> int:
    if int(n) < 1:
        raise InputError(f"n={n}: expected a positive number of images")
    return int(n)


def prior_samples(model: VAE, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images decoded from z ~ N(0, I) (float (n, 1, 28, 28) in [0, 1], on the CPU).

    z is drawn on the CPU from a generator seeded with ``seed``: the same z on every device.
    """
    z = torch.randn(_check_n(n), model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return model.generate(z).cpu()


def fit_latent_gmm(model: VAE, images: torch.Tensor, n_components: int = 10, seed: int = 0,
                   covariance_type: str = "full"):
    """scikit-learn ``GaussianMixture`` fitted to the posterior means μ of ``images``
    (float (N, 1, 28, 28)); k-means initialisation, ``random_state=seed``."""
    from sklearn.mixture import GaussianMixture

    z = model.latents(images).double().numpy()
    if len(z) < n_components:
        raise InputError(f"images: {len(z)} for {n_components} mixture components; expected at least {n_components}")
    return GaussianMixture(n_components=n_components, covariance_type=covariance_type, reg_covar=1e-6,
                           max_iter=500, random_state=seed).fit(z)


def run_latent_gmm(run: Run, n_components: int = 10, seed: int = 0):
    """``fit_latent_gmm`` on the posterior means of ``run``'s training images, cached next to the
    run cache (``runs/latent-gmm``, keyed by the run's directory name): the fit on 54,000 codes
    takes seconds. Returns a fitted scikit-learn ``GaussianMixture``."""
    from scipy.linalg import cholesky, solve_triangular
    from sklearn.mixture import GaussianMixture

    def fit() -> dict:
        gmm = fit_latent_gmm(run.model, to_float(run.data.train.images), n_components, seed)
        return {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}

    key = {"run": run.path.name, "n_components": n_components, "seed": seed, "covariance_type": "full"}
    params = fid.cached_arrays(key, fit, kind="latent-gmm")
    gmm = GaussianMixture(n_components=n_components, covariance_type="full", random_state=seed)
    gmm.weights_, gmm.means_, gmm.covariances_ = params["weights"], params["means"], params["covariances"]
    gmm.precisions_cholesky_ = np.stack([solve_triangular(cholesky(c, lower=True), np.eye(len(c)), lower=True).T
                                         for c in gmm.covariances_])
    return gmm


def gmm_latents(gmm, n: int, seed: int = 0) -> np.ndarray:
    """``n`` latent codes from a fitted full-covariance GaussianMixture (float64 (n, d)).

    Own sampler (not ``gmm.sample``, whose output is ordered by component and whose
    randomness is the estimator's fixed ``random_state``): component k ~ weights, then
    z = mean_k + L_k ε with L_k the Cholesky factor of covariance_k; seeded by ``seed``.
    """
    if getattr(gmm, "covariance_type", None) != "full":
        raise InputError(f"gmm: covariance_type {getattr(gmm, 'covariance_type', None)!r}; expected 'full'")
    rng = np.random.default_rng(seed)
    n = _check_n(n)
    weights = np.asarray(gmm.weights_, dtype=np.float64)
    comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
    eps = rng.standard_normal((n, gmm.means_.shape[1]))
    chol = np.linalg.cholesky(gmm.covariances_)
    return gmm.means_[comp] + np.einsum("nij,nj->ni", chol[comp], eps)


def gmm_samples(model: VAE, gmm, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images decoded from codes of ``gmm_latents`` (float (n, 1, 28, 28), CPU)."""
    z = torch.from_numpy(gmm_latents(gmm, n, seed)).float()
    if z.shape[1] != model.latent_dim:
        raise InputError(f"gmm: latent size {z.shape[1]}; expected the model's {model.latent_dim}")
    return model.generate(z).cpu()


def noise_images(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images of i.i.d. uniform noise in [0, 1] (the "worst" baseline)."""
    return torch.rand(_check_n(n), 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- real references


def real_images(dataset: str, split: str, classes: Sequence[int] | None, n: int, seed: int = 0):
    """(float images, ImageSet) of a seeded class-stratified subset of ``n`` images of a split
    (all of them when the split holds fewer)."""
    ds = take(load_dataset(dataset, split, classes=classes), _check_n(n), seed=seed)
    return to_float(ds.images), ds


def _group_name(dataset: str, classes: Sequence[int] | None) -> str:
    return dataset if classes is None else f"{dataset} [{','.join(str(c) for c in classes)}]"


@dataclass
class Reference:
    """Real features of one data set (and class filter): ``train`` (the reference every model
    is compared with) and ``test`` (the real-vs-real baseline), per extractor name."""

    dataset: str
    classes: tuple[int, ...] | None
    n_train: int
    n_test: int
    source: str
    note: str
    extractors: dict[str, str]  # extractor name -> kind ("Inception" / "domain classifier")
    train: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return _group_name(self.dataset, self.classes)


def _real_features(extractor: fid.FeatureExtractor, dataset: str, split: str,
                   classes: Sequence[int] | None, n: int, seed: int, batch_size: int) -> tuple[np.ndarray, dict]:
    x, ds = real_images(dataset, split, classes, n, seed)
    key = {"dataset": dataset, "classes": None if classes is None else list(classes), "split": split,
           "extractor": extractor.name, "n": len(ds), "seed": seed,
           "source": ds.provenance.get("source"), "sha256": ds.provenance.get("sha256")}
    feats = fid.cached_features(key, lambda: extractor.features(x, batch_size=batch_size))
    fid.cached_stats(key, lambda: fid.feature_stats(feats))  # mean/covariance alone, for FID users
    return feats, {"n": len(ds), "source": ds.provenance.get("source", ""), "note": ds.provenance.get("note", "")}


def build_reference(dataset: str, classes: Sequence[int] | None,
                    extractors: Mapping[str, fid.FeatureExtractor], n: int, seed: int = 0,
                    batch_size: int = 64) -> Reference:
    """Features of N real train and N real test images (``take``, seeded) of ``dataset``
    restricted to ``classes``, for each extractor (``extractors``: kind -> extractor); cached."""
    classes = None if classes is None else tuple(int(c) for c in classes)
    ref = Reference(dataset, classes, 0, 0, "", "", {e.name: kind for kind, e in extractors.items()})
    for kind, ext in extractors.items():
        ref.train[ext.name], info = _real_features(ext, dataset, "train", classes, n, seed, batch_size)
        ref.n_train, ref.source, ref.note = info["n"], info["source"], info["note"]
        ref.test[ext.name], info = _real_features(ext, dataset, "test", classes, n, seed + 1, batch_size)
        ref.n_test = info["n"]
    return ref


# --------------------------------------------------------------------------- metrics


def compare(real: np.ndarray, fake: np.ndarray, kid_subsets: int = 100, k: int = 3, seed: int = 0) -> dict:
    """FID, KID (mean, std over subsets of half the smaller N) and precision/recall (k-NN).

    With N below the feature dimension the covariances are singular; scipy's warning about
    that is silenced here (``fid.frechet_distance`` still retries with ε·I if sqrtm fails).
    The scores are cached under the SHA-256 of both feature arrays and the settings
    (``runs/fid-scores``): a 2048-d FID's matrix square root costs about a second.
    """
    key = {"real": digest(np.asarray(real, np.float64)), "fake": digest(np.asarray(fake, np.float64)), "kid_subsets": kid_subsets, "k": k, "seed": seed,
           "version": COMPARE_VERSION}
    scores = fid.cached_arrays(key, lambda: _compare(real, fake, kid_subsets, k, seed), kind="fid-scores")
    return {name: float(scores[name]) for name in METRICS}


def _compare(real: np.ndarray, fake: np.ndarray, kid_subsets: int, k: int, seed: int) -> dict:
    from scipy.linalg import LinAlgWarning

    m = min(len(real), len(fake))
    kid_mean, kid_std = fid.kid(real, fake, n_subsets=kid_subsets, subset_size=max(2, m // 2), seed=seed)
    precision, recall = fid.precision_recall(real, fake, k=min(k, m - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        distance = fid.fid_from_features(real, fake)
    return {"fid": distance, "kid": kid_mean, "kid_std": kid_std, "precision": precision, "recall": recall}


def _row(label: str, kind: str, ref: Reference, sampler: str, ext_name: str, n: int, metrics: dict,
         **extra) -> dict:
    return {"model": label, "kind": kind, "data": ref.name, "sampler": sampler,
            "extractor": ref.extractors[ext_name], "extractor_name": ext_name, "n": n,
            "n_ref": len(ref.train[ext_name]), **metrics, **extra}


def baseline_rows(refs: Mapping[str, Reference], extractors: Mapping[str, Mapping[str, fid.FeatureExtractor]],
                  n: int, seed: int = 0, kid_subsets: int = 100, batch_size: int = 64) -> pd.DataFrame:
    """Real test vs real train and uniform noise vs real train, per reference and extractor.

    ``extractors``: data set -> (kind -> extractor). Noise features are computed once per
    extractor (the same N noise images for every reference) and cached like real features.
    """
    noise = noise_images(n, seed)
    noise_feats: dict[str, np.ndarray] = {}
    rows = []
    for ref in refs.values():
        for ext in extractors[ref.dataset].values():
            if ext.name not in noise_feats:
                key = {"noise": "uniform", "n": n, "seed": seed, "extractor": ext.name}
                noise_feats[ext.name] = fid.cached_features(key, lambda: ext.features(noise, batch_size=batch_size))
            real = ref.train[ext.name]
            rows.append(_row("real test images", "baseline", ref, "—", ext.name, len(ref.test[ext.name]),
                             compare(real, ref.test[ext.name], kid_subsets, seed=seed)))
            rows.append(_row("uniform noise", "baseline", ref, "—", ext.name, n,
                             compare(real, noise_feats[ext.name], kid_subsets, seed=seed)))
    return pd.DataFrame(rows)


def reference_key(cfg: RunConfig) -> str:
    """Name of the real reference a model is compared with: its data set and class filter."""
    return _group_name(cfg.dataset, cfg.classes)


def reference_groups(runs: Mapping[str, Run]) -> dict[str, tuple[str, tuple[int, ...] | None]]:
    """{reference name: (data set, classes)} for the runs, in order of first appearance."""
    return {reference_key(r.config): (r.config.dataset, r.config.classes) for r in runs.values()}


def evaluate_runs(runs: Mapping[str, Run], refs: Mapping[str, Reference],
                  extractors: Mapping[str, Mapping[str, fid.FeatureExtractor]], n: int, seed: int = 0,
                  samplers: Sequence[str] = tuple(SAMPLERS), kid_subsets: int = 100, n_keep: int = 16,
                  batch_size: int = 64) -> tuple[pd.DataFrame, dict]:
    """FID, KID, precision and recall of every run and sampler against its reference.

    Features of generated images are cached per run (its config hash), sampler, N, seed and
    extractor, so re-running the chapter extracts nothing again.
    Returns (long table: one row per model × sampler × extractor, with seconds spent,
    {label: {sampler: first ``n_keep`` images}} for the figures). The GMM is fitted to the
    posterior means of the run's own training images (``run.data.train``).
    """
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        raise InputError(f"samplers {unknown}: unknown; expected some of {list(SAMPLERS)}")
    rows, kept = [], {}
    for label, run in runs.items():
        ref = refs[reference_key(run.config)]
        kept[label] = {}
        for sampler in samplers:
            t0 = time.perf_counter()
            if sampler == "prior":
                images = prior_samples(run.model, n, seed)
            else:
                images = gmm_samples(run.model, run_latent_gmm(run, 10, seed), n, seed)
            kept[label][sampler] = images[:n_keep]
            for ext in extractors[ref.dataset].values():
                key = {"run": run.path.name, "sampler": sampler, "n": n, "seed": seed, "extractor": ext.name}
                feats = fid.cached_features(key, lambda: ext.features(images, batch_size=batch_size))
                rows.append(_row(label, "model", ref, SAMPLERS[sampler], ext.name, n,
                                 compare(ref.train[ext.name], feats, kid_subsets, seed=seed),
                                 arch=run.config.arch, latent_dim=run.config.latent_dim, beta=run.config.beta,
                                 seconds=time.perf_counter() - t0))
                t0 = time.perf_counter()
    return pd.DataFrame(rows), kept


def fid_vs_n(real_a: np.ndarray, real_b: np.ndarray, ns: Sequence[int]) -> pd.DataFrame:
    """FID between the first n rows of two real feature sets, for each n (FID's bias in N)."""
    from scipy.linalg import LinAlgWarning

    ns = [int(k) for k in ns if 2 <= int(k) <= min(len(real_a), len(real_b))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        return pd.DataFrame({"n": ns, "fid": [fid.fid_from_features(real_a[:k], real_b[:k]) for k in ns]})


def untrained_extractor(seed: int = 0) -> fid.ClassifierExtractor:
    """A randomly initialised (untrained) DomainClassifier as extractor — the seed's mistake."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = fid.DomainClassifier()
    return fid.ClassifierExtractor(model, name="untrained-classifier")


def untrained_fids(run: Run, n: int, seed: int = 0, extractor: fid.FeatureExtractor | None = None,
                   kid_subsets: int = 20, label: str = "model, prior samples") -> pd.DataFrame:
    """The seed's set-up: FID etc. with an *untrained* small CNN, for real test images, uniform
    noise and the run's prior samples, each against N real training images of its data."""
    ext = extractor or untrained_extractor(seed)
    cfg = run.config
    real, _ = real_images(cfg.dataset, "train", cfg.classes, n, seed)
    test, _ = real_images(cfg.dataset, "test", cfg.classes, n, seed + 1)
    ref = ext.features(real)
    rows = []
    for label, images in (("real test images", test), ("uniform noise", noise_images(n, seed)),
                          (label, prior_samples(run.model, n, seed))):
        rows.append({"images": label, "data": reference_key(cfg), "extractor": ext.name, "n": len(images),
                     **compare(ref, ext.features(images), kid_subsets, seed=seed)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- tables and figures


def classifier_table(classifiers: Mapping[str, fid.TrainedClassifier]) -> pd.DataFrame:
    """One row per domain classifier: data, recipe, test accuracy against its target, cache."""
    rows = []
    for dataset, c in classifiers.items():
        m, cfg = c.metrics, c.config
        aug = ", ".join(f"{k} {v:g}" for k, v in (("rotate°", cfg.rotate), ("shift px", cfg.shift),
                                                   ("zoom", cfg.scale)) if v) + (", h-flip" if cfg.hflip else "")
        rows.append({"data set": dataset, "source": m.get("source", ""), "train images": m["n_train"],
                     "test images": m["n_test"], "epochs": cfg.epochs, "augmentation": aug or "none",
                     "test accuracy": round(m["test_accuracy"], 4), "target": m.get("target_accuracy"),
                     "meets target": m.get("meets_target"), "training s": round(m.get("train_seconds", 0.0), 1),
                     "device": m.get("device", ""), "from cache": c.cached, "extractor name": c.name})
    return pd.DataFrame(rows)


def summary_by_reference(everything: pd.DataFrame) -> pd.DataFrame:
    """Per reference data and extractor: N, the real-vs-real floor, the noise FID, the best model
    × sampler, its FID and its ratio to the floor, and (over that reference's model × sampler
    pairs) the Spearman rank correlation between the two extractors' FIDs."""
    rows = []
    for (data, kind), g in everything.groupby(["data", "extractor"], sort=False):
        models, base = g[g["kind"] == "model"], g[g["kind"] == "baseline"].set_index("model")
        if models.empty:
            continue
        best = models.loc[models["fid"].idxmin()]
        floor = float(base.loc["real test images", "fid"]) if "real test images" in base.index else float("nan")
        pairs = everything[(everything["data"] == data) & (everything["kind"] == "model")].pivot_table(
            index=["model", "sampler"], columns="extractor", values="fid", sort=False)
        rho = float(pairs.corr(method="spearman").iloc[0, 1]) if len(pairs) >= 3 and pairs.shape[1] == 2 else float("nan")
        rows.append({"data": data, "extractor": kind, "N": int(best["n"]), "real test FID": floor,
                     "noise FID": float(base.loc["uniform noise", "fid"]) if "uniform noise" in base.index else float("nan"),
                     "best model": best["model"], "best sampler": best["sampler"], "best FID": float(best["fid"]),
                     "best / real": float(best["fid"]) / floor, "pairs": len(pairs), "Spearman ρ (extractors)": rho})
    return pd.DataFrame(rows)


def sweeps(results: pd.DataFrame, min_values: int = 3) -> pd.DataFrame:
    """FID along the report's sweeps: models of one reference, architecture, extractor and
    sampler that differ only in latent size (same β) or only in β (same latent size), when
    there are at least ``min_values`` of them; with the Spearman ρ between parameter and FID."""
    from scipy.stats import spearmanr

    rows = []
    models = results[results["kind"] == "model"]
    for param, fixed in (("latent_dim", "beta"), ("beta", "latent_dim")):
        for key, g in models.groupby(["data", "arch", fixed, "extractor", "sampler"], sort=False):
            g = g.sort_values(param)
            if g[param].nunique() < min_values or g[param].duplicated().any():
                continue
            rho = float(spearmanr(g[param], g["fid"]).statistic)
            rows.append({"data": key[0], "arch": key[1], "fixed": f"{fixed} = {key[2]:g}", "extractor": key[3],
                         "sampler": key[4], "parameter": "latent size" if param == "latent_dim" else "β",
                         "values": " → ".join(f"{v:g}" for v in g[param]),
                         "FID": " → ".join(f"{v:.1f}" for v in g["fid"]), "Spearman ρ": rho})
    return pd.DataFrame(rows, columns=["data", "arch", "fixed", "extractor", "sampler", "parameter", "values",
                                       "FID", "Spearman ρ"])


def fid_captions(results: pd.DataFrame) -> dict[tuple[str, str], str]:
    """{(model, sampler key): "FID Inception … · classifier …"} for ``sampler_grids`` titles."""
    keys = {v: k for k, v in SAMPLERS.items()}
    out: dict[tuple[str, str], str] = {}
    for (model, sampler), g in results[results["kind"] == "model"].groupby(["model", "sampler"], sort=False):
        parts = [f"{kind.split()[-1]} {g.loc[g['extractor'] == kind, 'fid'].iloc[0]:.3g}"
                 for kind in EXTRACTOR_KINDS if (g["extractor"] == kind).any()]
        out[(model, keys.get(sampler, sampler))] = "\nFID " + " · ".join(parts)
    return out


def wide_table(results: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """One row per model × sampler (and baseline), one column per metric × extractor kind;
    FID, precision and recall rounded to ``digits`` decimals, KID (×10³) to 4 significant digits."""
    cols = {"fid": "FID", "kid": "KID×10³", "precision": "precision", "recall": "recall"}
    df = results.reset_index(drop=True)
    df["kid"] = df["kid"] * 1e3
    index = ["data", "model", "sampler", "n"]
    wide = df.pivot_table(index=index, columns="extractor", values=list(cols), aggfunc="first", sort=False)
    wide.columns = [f"{cols[m]} ({e})" for m, e in wide.columns]
    order = [f"{cols[m]} ({e})" for e in EXTRACTOR_KINDS for m in cols]
    wide = wide[[c for c in order if c in wide.columns]].reset_index()
    kid_cols = [c for c in wide.columns if c.startswith("KID")]
    wide[kid_cols] = wide[kid_cols].apply(lambda col: col.map(lambda v: float(f"{v:.4g}")))  # KID spans many decades: 4 digits
    other = [c for c in wide.columns if c not in kid_cols]
    wide[other] = wide[other].round(digits)
    return wide.rename(columns={"n": "N", "data": "data (reference)"})


def fid_bar_chart(results: pd.DataFrame, title: str | None = None):
    """Horizontal bars of FID (log scale) per model × sampler and baseline (hatched, grey),
    one panel per extractor kind, rows grouped by reference data."""
    from matplotlib.ticker import NullFormatter

    from . import plots

    kinds = [k for k in EXTRACTOR_KINDS if k in set(results["extractor"])]
    df = results.reset_index(drop=True)
    groups = list(dict.fromkeys(df["data"]))
    df = df.assign(_g=df["data"].map(groups.index), _k=(df["kind"] != "baseline").astype(int))
    df = df.sort_values(["_g", "_k"], kind="stable")
    df["row"] = df["data"] + " · " + df["model"]
    with_sampler = df["sampler"] != "—"
    df.loc[with_sampler, "row"] = df.loc[with_sampler, "row"] + " · " + df.loc[with_sampler, "sampler"]
    labels = list(dict.fromkeys(df["row"]))
    fig = plots.new_figure(figsize=(4.2 * len(kinds) + 3.2, 0.3 * len(labels) + 1.3))
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    y = np.arange(len(labels))
    for ax, kind in zip(axes, kinds):
        sub = df[df["extractor"] == kind].set_index("row").reindex(labels)
        vals = sub["fid"].to_numpy(dtype=float)
        baseline = (sub["kind"] == "baseline").to_numpy()
        bars = ax.barh(y, np.clip(np.nan_to_num(vals, nan=0.0), 1e-6, None),
                       color=["0.65" if b else "C0" for b in baseline])
        for bar, b, v in zip(bars, baseline, vals):
            if b:
                bar.set_hatch("//")
            if np.isfinite(v):
                ax.text(v, bar.get_y() + bar.get_height() / 2, f" {v:.3g}", va="center", fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        n_txt = ", ".join(f"N={k}" for k in sorted(set(sub["n"].dropna().astype(int))))
        ax.set_title(f"{kind} features ({n_txt})", fontsize=10)
        ax.set_xlabel("FID (log scale)")
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].invert_yaxis()  # shared y: invert once
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def sampler_grids(samples: Mapping[str, Mapping[str, torch.Tensor]], scores: Mapping | None = None,
                  nrow: int = 8, title: str | None = None):
    """One row of panels per model: its prior samples beside its GMM samples.

    ``scores``: optional {(label, sampler): text} shown in the panel titles (e.g. the FIDs)."""
    from . import plots

    labels = list(samples)
    samplers = list(dict.fromkeys(s for d in samples.values() for s in d))
    if not labels:
        raise InputError("samples: empty; expected {model: {sampler: images}}")
    n_max = max(len(im) for d in samples.values() for im in d.values())
    rows_per_panel = -(-n_max // nrow)
    fig = plots.new_figure(figsize=(len(samplers) * (nrow * 0.5 + 0.3), len(labels) * (rows_per_panel * 0.5 + 0.75)))
    axes = fig.subplots(len(labels), len(samplers), squeeze=False)
    for i, label in enumerate(labels):
        for j, sampler in enumerate(samplers):
            ax = axes[i, j]
            if sampler not in samples[label]:
                ax.axis("off")
                continue
            plots.image_grid(samples[label][sampler], nrow=nrow, ax=ax)
            extra = (scores or {}).get((label, sampler), "")
            ax.set_title(f"{label}\n{SAMPLERS.get(sampler, sampler)}{extra}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
