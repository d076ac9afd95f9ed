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
# # 03 · Fashion-MNIST: a standard conv VAE, and a β sweep with training GIFs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/03_beta_sweep.ipynb)
#
# Seed report `003`. Part 1 trains its convolutional VAE (latent 16, β = 1, Adam 1e-3, batch 128,
# 25 epochs) on Fashion-MNIST and compares the test loss with the seed's (one run). Part 2 trains a
# VAE with a 2-D latent space per β and per training seed (`sweep_seeds`) on three classes
# (T-shirt/top, Trouser, Sneaker) and follows the latent space and the reconstructions during
# training, a frame every few batches; the seed's adjectives ("sharp", "diverse", "good separation")
# become measured columns.
#
# **Seeds and intervals.** The GIFs and the per-run figures of Part 2 show each β's run with the first
# seed in `sweep_seeds` (seed 0 unless overridden; the titles say which). The β table covers every
# seed: per run, and per β as mean ± s.d. over seeds. β values are compared with 95 % t-intervals over
# seeds (mean ± t · s.d./√n, t the 97.5 % quantile of Student's t with n − 1 degrees of freedom); a
# difference is called real only when the two intervals do not overlap, otherwise it is
# *indistinguishable at this number of seeds*.
#
# The loss is the β-ELBO: Bernoulli reconstruction (binary cross-entropy, nats per image) + β·KL.
# The −ELBO and its terms use a sampled z; MSE, PSNR and SSIM the reconstruction from μ.
# β is a setting: run this notebook with papermill `-p overrides '{"sweep_beta": [0.1, 0.5, 1, 2, 4]}'`
# for a wider sweep (the β-sweep settings are the ones prefixed `sweep_`).

# %%
import sys
REPO = "vae-report/vae-report"  # GitHub OWNER/NAME of this repository (the Colab badge names it too: tools/set_repo.py)
if "google.colab" in sys.modules:  # on Colab: install vaelib (and its pinned-free dependencies) first
    # %pip install -q "vaelib @ git+https://github.com/{REPO}"

# %% tags=["parameters"]
profile = None  # "smoke" or "full"; None: $VAELIB_PROFILE, else "full"
author = ""  # optional watermark on figures
overrides = {}  # settings to change, e.g. {"epochs": 5}; unknown names are rejected (the settings are printed below)

# %%
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from vaelib import experiments, metrics, plots, report, store, train
from vaelib.data import per_class, to_float

P = experiments.settings("03_beta_sweep", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
run, *sweep = [train.train_or_load(cfg) for cfg in experiments.runs(P)]  # the standard model, then one per (β, seed)
cfg, label = run.config, run.config.label
prov = run.data.train.provenance
print(f"{label}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]}; "
      f"{run.metrics['train_seconds']:.0f} s of training)")
print(f"data: {prov['source']} ({prov['path']}); train / validation / test images: "
      f"{len(run.data.train):,} / {len(run.data.val):,} / {len(run.data.test):,}")
print(f"training forward passes in {cfg.precision} (setting precision={P.precision!r}: bfloat16 autocast where the "
      "hardware computes it natively; float32 weights, optimiser, losses and evaluation)")

# %% [markdown]
# ## Part 1 · The standard VAE (latent 16, β = 1)
#
# Train values are running means over each epoch's batches (as the seed logs them); test values
# are the whole test split evaluated after every epoch (z sampled with a fixed seed).

# %%
fig = plots.curves(run.history, ("total", "recon", "kl"),
                   {"train_": "train (running mean)", "val_": "validation", "test_": "test"},
                   title=f"{label}: loss per image per epoch")
plots.save_fig(fig, FIG / "curves.png", author=author)
fig

# %% [markdown]
# ### Beside seed 003 (its log: epoch 5 train ≈ 246.19, test ≈ 247.77; epoch 25 train ≈ 240.46, test ≈ 242.31)

# %%
SEED_003 = {5: (246.19, 247.77), 25: (240.46, 242.31)}  # epoch: (train, test) −ELBO, nats/image, from the seed report
SEED_003_N = dict(train=60_000, sweep_train=18_000)  # the seed's training images: all of Fashion-MNIST; its 3 classes
hist = {h["epoch"]: h for h in run.history}
shown = sorted({e for e in SEED_003 if e in hist} | {max(hist)})
vs_seed = pd.DataFrame([{"epoch": e, "seed 003 train": SEED_003.get(e, (None, None))[0],
                         "ours train (running mean)": hist[e]["train_total"],
                         "seed 003 test": SEED_003.get(e, (None, None))[1], "ours test": hist[e].get("test_total"),
                         "ours test recon": hist[e].get("test_recon"), "ours test KL": hist[e].get("test_kl")}
                        for e in shown]).round(2)
report.write_table(vs_seed, "03_beta_sweep_vs_seed", P.profile)
vs_seed

# %% [markdown]
# ### 16 test images and their reconstructions (from μ)

# %%
x16 = to_float(per_class(run.data.test, 2, seed=P.seed).images)[: P.n_recon]
fig = plots.recon_rows(x16, run.model.reconstruct(x16), per_row=8, title="top: test images · bottom: reconstructions from μ")
plots.save_fig(fig, FIG / "reconstructions.png", author=author)
fig

# %% [markdown]
# ### 64 samples from the prior z ~ N(0, I)

# %%
samples = run.model.sample(P.n_samples, generator=torch.Generator().manual_seed(P.seed))
fig = plots.image_grid(samples, nrow=8, title=f"{P.n_samples} samples, z ~ N(0, I), latent {cfg.latent_dim}")
plots.save_fig(fig, FIG / "samples.png", author=author)
fig

# %% [markdown]
# ## Part 2 · The β sweep (2-D latent; T-shirt/top, Trouser, Sneaker)
#
# One VAE per β and per seed in `sweep_seeds`, with the same data and epochs. Each snapshot (every
# `sweep_snapshot_every` optimiser steps, and one before training) holds the μ of a fixed,
# class-stratified set of test images and the reconstructions of eight of them: the GIF frames. The
# GIFs, the loss curves and the latent panels show each β's first-seed run; the table covers every seed.

# %%
sweep_runs = {(r.config.beta, r.config.seed): r for r in sweep}
betas, seeds = sorted({b for b, _ in sweep_runs}), sorted({s for _, s in sweep_runs})
s0 = P.sweep_seeds[0]  # the seed whose run of each β the GIFs and per-run figures show
beta_run = {b: sweep_runs[b, s0] for b in betas}
b0 = beta_run[betas[0]]
print(f"classes: {', '.join(b0.data.train.classes[c] for c in b0.config.classes)}; train / validation / test images: "
      f"{len(b0.data.train):,} / {len(b0.data.val):,} / {len(b0.data.test):,}")
for (b, s), r in sweep_runs.items():
    print(f"β = {b:g}, seed {s}: {'loaded from' if r.cached else 'trained into'} the result store (key {r.key[:12]}; "
          f"{r.metrics['train_seconds']:.0f} s" + (f"; {len(r.snapshots['step'])} snapshots of {r.snapshots['mu'].shape[1]} "
                                                    "test images)" if r.snapshots else ")"))

# %% [markdown]
# ### Training GIFs: the latent space (left) and originals over reconstructions (right)
#
# Each β's first-seed run.

# %%
beta_gifs = {b: plots.save_bytes(store.cached(plots.beta_gif, r, fps=P.gif_fps, title=f"β = {b:g} · seed {s0}", author=author),
                                 FIG / f"beta_{b:g}_training.gif") for b, r in beta_run.items()}
fig = plots.preview(list(beta_gifs.values()), where=(0.0, 0.1, 1.0), labels=[f"β = {b:g}, seed {s0}" for b in beta_gifs])
plots.save_fig(fig, FIG / "beta_gifs_preview.png", author=author)
fig

# %%
gif_table = pd.DataFrame([{"β": b, "seed": s0, **plots.gif_info(p)} for b, p in beta_gifs.items()])
gif_table["MB"] = (gif_table["bytes"] / 2**20).round(2)
report.write_table(gif_table, "03_beta_sweep_gifs", P.profile)
gif_table

# %% [markdown]
# ### Loss per β (first seed)

# %%
fig = plots.curves({f"β = {b:g}": r.history for b, r in beta_run.items()}, ("total", "recon", "kl"),
                   {"train_": "train", "val_": "validation"}, title=f"β-ELBO, reconstruction and KL per epoch (seed {s0})")
plots.save_fig(fig, FIG / "beta_curves.png", author=author)
fig

# %% [markdown]
# ### Final test latents per β (first seed)

# %%
latents = {k: r.model.latents(to_float(r.data.test.images)) for k, r in sweep_runs.items()}  # every run's test μ
fig = plots.latent_panels({f"β = {b:g}": (latents[b, s0], r.data.test.labels) for b, r in beta_run.items()},
                          b0.data.test.classes, title=f"test set μ ({len(b0.data.test):,} images) after training, seed {s0}")
plots.save_fig(fig, FIG / "beta_latents.png", author=author)
fig

# %% [markdown]
# ### The comparison table, measured
#
# Reconstruction and KL: last epoch's training running means (as the seed reports them) and the
# test set (sampled z). Sharpness: mean variance of the Laplacian of prior samples (higher is
# sharper). Diversity: mean pairwise L2 distance between prior samples. Cluster separation:
# silhouette score of the test set's μ by class. SSIM: test reconstructions from μ. First every run,
# then per β the mean ± s.d. over seeds beside the seed report's value or adjective.

# %%
rows = []
for (b, s), r in sweep_runs.items():
    prior = r.model.sample(P.n_quality, generator=torch.Generator().manual_seed(P.seed)).cpu()  # z ~ N(0, I)
    rows.append({"β": b, "seed": s, "train recon": r.history[-1]["train_recon"], "train KL": r.history[-1]["train_kl"],
                 "test recon": r.metrics["test_recon"], "test KL": r.metrics["test_kl"],
                 "sharpness": float(metrics.sharpness(prior).mean()), "diversity": metrics.diversity(prior),
                 "silhouette": metrics.silhouette(latents[b, s], r.data.test.labels, seed=P.seed),
                 "SSIM (from μ)": r.metrics["test_ssim"]})
beta_runs = pd.DataFrame(rows)
report.write_table(beta_runs.round(4), "03_beta_sweep_runs", P.profile)
beta_runs.round(4)

# %%
SEED_003_BETA = {0.1: (209.47, 8.76, "High (sharp)", "Low", "Poor"),  # from the seed report's table
                 0.5: (209.79, 6.12, "Medium", "Medium", "Moderate"),
                 1.0: (210.55, 5.28, "Lower (blurrier)", "High", "Good")}
COLS = {"train recon": 2, "train KL": 2, "test recon": 2, "test KL": 2, "sharpness": 4, "diversity": 2, "silhouette": 3,
        "SSIM (from μ)": 3}  # decimals shown
over = metrics.seed_summary(beta_runs, "β", list(COLS)).sort_index()  # per β: n, mean, sd, 95 % t-interval
n, mean, sd = over["n"], over["mean"], over["sd"]
cell = {c: [f"{mean.loc[b, c]:.{d}f}" + (f" ± {sd.loc[b, c]:.{d}f}" if n.loc[b, c] > 1 else "") for b in betas]
        for c, d in COLS.items()}
seed_says = {b: SEED_003_BETA.get(b, (None, None, "", "", "")) for b in betas}
beta_table = pd.DataFrame({"seeds": n.max(axis=1), "train recon": cell["train recon"], "seed recon": [seed_says[b][0] for b in betas],
                           "train KL": cell["train KL"], "seed KL": [seed_says[b][1] for b in betas],
                           "test recon": cell["test recon"], "test KL": cell["test KL"], "sharpness": cell["sharpness"],
                           "seed sharpness": [seed_says[b][2] for b in betas], "diversity": cell["diversity"],
                           "seed diversity": [seed_says[b][3] for b in betas], "silhouette": cell["silhouette"],
                           "seed separation": [seed_says[b][4] for b in betas], "SSIM (from μ)": cell["SSIM (from μ)"]},
                          index=pd.Index(betas, name="β"))
report.write_table(beta_table, "03_beta_sweep_table", P.profile)
beta_table

# %% [markdown]
# ### Which β differences are real
#
# Every pair of β values: each side's mean with its 95 % t-interval over seeds; "real" when the
# intervals do not overlap.

# %%
nseeds = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
indist = f"indistinguishable at {nseeds}"
q = {c: {b: f"{mean.loc[b, c]:.{d}f} " + (f"[{over['low'].loc[b, c]:.{d}f}, {over['high'].loc[b, c]:.{d}f}]"
                                          if n.loc[b, c] > 1 else "(one seed: no interval)") for b in betas}
     for c, d in COLS.items()}
sep = {(c, a, b): metrics.apart(over, c, a, b) for c in COLS for a in betas for b in betas}  # intervals apart
pairs = [(a, b) for i, a in enumerate(betas) for b in betas[i + 1:]]
diffs = pd.DataFrame([{"metric": c, "β (a)": a, "β (b)": b, "a: mean [95 % CI]": q[c][a], "b: mean [95 % CI]": q[c][b],
                       "b − a": mean.loc[b, c] - mean.loc[a, c], "verdict": "real" if sep[c, a, b] else indist}
                      for c in COLS for a, b in pairs])
report.write_table(diffs.round(4), "03_beta_sweep_differences", P.profile)
diffs.round(4)

# %%
fig = plots.draws_plot(beta_runs.assign(condition=[f"β = {b:g}" for b in beta_runs["β"]]), "SSIM (from μ)",
                       title=f"test SSIM: seeds (dots), mean ± s.d. ({nseeds} per β)")
plots.save_fig(fig, FIG / "beta_ssim_by_seed.png", author=author)
fig

# %%
lo, hi = betas[0], betas[-1]
verdict = {c: "real" if sep[c, lo, hi] else indist for c in COLS}  # β = lo against β = hi
way = {c: ("rises" if mean.loc[hi, c] > mean.loc[lo, c] else "falls") if sep[c, lo, hi] else "shows no real change"
       for c in COLS}
ADJ = {"sharpness": ("blurrier", -1), "diversity": ("more diverse", 1), "silhouette": ("better separated", 1)}  # seed: larger β
agree = {c: (("agrees" if np.sign(mean.loc[hi, c] - mean.loc[lo, c]) == d else "contradicts it") if sep[c, lo, hi]
             else indist) for c, (_, d) in ADJ.items()}
real_pairs = {c: [f"{a:g} vs {b:g}" for a, b in pairs if sep[c, a, b]] for c in COLS}
real_text = "; ".join(f"{c}: {', '.join(v)}" for c, v in real_pairs.items() if v)
real_text = (f"Real differences between β values (intervals apart): {real_text}. Every other pair in the differences table above is {indist}."
             if real_text else f"No difference between β values is real: every pair in the differences table above is {indist}.")
sl, sh = SEED_003_BETA.get(lo), SEED_003_BETA.get(hi)  # the seed's row for each end of the sweep, if it has one
seed_text = (f"in the seed's table (one run per β) the KL {'falls' if sh[1] < sl[1] else 'rises'} ({sl[1]} → {sh[1]}) and the "
             f"reconstruction {'rises' if sh[0] > sl[0] else 'falls'} ({sl[0]} → {sh[0]})" if sl and sh
             else "the seed's table has no such pair of β")

# %%
last = run.history[-1]
s25 = SEED_003[25]
display(Markdown(f"""
**Part 1.** After {last['epoch']} epoch(s) the standard VAE's test −ELBO is {last['test_total']:.2f} nats per image
({last['test_recon']:.2f} reconstruction + {last['test_kl']:.2f} KL), against the seed's {s25[1]} at epoch 25;
the training running mean is {last['train_total']:.2f} (seed: {s25[0]}). This is one run (seed {cfg.seed}), so these numbers
carry no interval. We train on {len(run.data.train):,} images and keep {len(run.data.val):,} for validation; the seed
trained on all {SEED_003_N['train']:,}.

**Part 2** (each value: the mean over {nseeds} with its 95 % t-interval in brackets; a difference is real only when the
intervals do not overlap). From β = {lo:g} to β = {hi:g} the training KL {way['train KL']} ({q['train KL'][lo]} →
{q['train KL'][hi]} nats; {verdict['train KL']}) and the reconstruction term {way['train recon']}
({q['train recon'][lo]} → {q['train recon'][hi]}; {verdict['train recon']}); {seed_text}. The seed's adjectives say that with larger β samples get blurrier, more diverse and better
separated. Measured: sharpness {q['sharpness'][lo]} → {q['sharpness'][hi]} ({ADJ['sharpness'][0]}: {agree['sharpness']}),
diversity {q['diversity'][lo]} → {q['diversity'][hi]} ({ADJ['diversity'][0]}: {agree['diversity']}), the silhouette of the
test latents {q['silhouette'][lo]} → {q['silhouette'][hi]} ({ADJ['silhouette'][0]}: {agree['silhouette']}), and test SSIM
{q['SSIM (from μ)'][lo]} → {q['SSIM (from μ)'][hi]} ({verdict['SSIM (from μ)']}).

{real_text} Where a measured column disagrees with an adjective, the measurement stands: the adjectives were read
off single frames of one run per β.
"""))

# %% [markdown]
# ## For the report
#
# The chapter's findings (built from the numbers above) and where it differs from seed 003; they
# reach `reports/REPORT.md` through this chapter's metrics file.

# %%
SS = "SSIM (from μ)"
ss_text = (f"real differences: {', '.join(real_pairs[SS])}" if real_pairs[SS] else f"every pair of β values is {indist}")
findings = [
    f"The standard VAE (latent {cfg.latent_dim}, one run, so no interval) reaches a test −ELBO of "
    f"{last['test_total']:.2f} nats per image after {last['epoch']} epoch(s), against seed 003's {s25[1]} at epoch 25.",
    f"From β = {lo:g} to β = {hi:g} the training KL {way['train KL']} ({q['train KL'][lo]} → {q['train KL'][hi]} nats, mean "
    f"and 95 % t-interval over {nseeds}; {verdict['train KL']}) and the reconstruction term {way['train recon']} "
    f"({q['train recon'][lo]} → {q['train recon'][hi]}; {verdict['train recon']}).",
    "Test SSIM from μ is " + ", ".join(f"{q[SS][b]} at β = {b:g}" for b in betas) + f": {ss_text}.",
    f"Against seed 003's adjectives for larger β — {'; '.join(f'{adj}: {agree[c]}' for c, (adj, _) in ADJ.items())} "
    f"(sharpness {q['sharpness'][lo]} → {q['sharpness'][hi]}, diversity {q['diversity'][lo]} → {q['diversity'][hi]}, "
    f"silhouette {q['silhouette'][lo]} → {q['silhouette'][hi]}).",
]
display(Markdown("\n".join(f"- {f}" for f in findings)))

# %%
differences = [
    f"Part 1 trains on {len(run.data.train):,} images and holds out {len(run.data.val):,} for validation; seed 003 trained "
    f"on all {SEED_003_N['train']:,}.",
    f"Test values are {len(run.data.test):,} test images evaluated after every epoch with z sampled from a fixed seed; "
    f"seed 003 logged its train and test loss every {min(SEED_003)} epochs.",
    f"The β sweep trains {nseeds} per β (seed 003: one run each) on {len(b0.data.train):,} images of its three classes, "
    f"with {len(b0.data.val):,} held out for validation (seed 003: {SEED_003_N['sweep_train']:,}), and reports mean ± s.d.",
    f"Seed 003's sharpness, diversity and cluster separation were adjectives read off GIF frames; here they are measured: "
    f"variance of the Laplacian and mean pairwise L2 distance of {P.n_quality:,} prior samples per run, and the silhouette "
    f"of the test μ by class.",
    f"Seed 003's GIF frames encode the current training mini-batch; ours follow a fixed, class-stratified set of "
    f"{b0.snapshots['mu'].shape[1]:,} test images, a frame every {P.sweep_snapshot_every} optimiser steps.",
    *([f"Precision: our training forward passes run under bfloat16 autocast (this CPU computes it natively; about 1.3× "
       "faster), with float32 weights, optimiser, losses and evaluation; seed 003 trained in float32."]
      if cfg.precision == "bfloat16" else []),
]

# %%
metrics_file = report.write_metrics(P.stem, {
    "data_source": prov["source"], "standard": {"label": label, "run": run.key[:12], **run.metrics, "final_epoch": last},
    "vs_seed": vs_seed.to_dict("records"), "sweep_seeds": seeds, "interval": "95 % t-interval over seeds",
    "beta_runs": beta_runs.to_dict("records"), "beta_mean": mean.reset_index().to_dict("records"),
    "beta_sd": sd.reset_index().to_dict("records"), "beta_differences": diffs.to_dict("records"),
    "gifs": gif_table.to_dict("records"),
    "report": report.chapter_summary("Fashion-MNIST: the standard conv VAE and a β sweep", findings,
                                     FIG / "beta_ssim_by_seed.png", "03_beta_sweep_table", differences=differences,
                                     profile=P.profile)}, P.profile)
