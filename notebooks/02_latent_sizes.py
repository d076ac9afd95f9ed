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
# # 02 · How big should the latent space be? A conv VAE on MNIST with z = 2, 4, 8, 16
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/02_latent_sizes.ipynb)
#
# Seed reports `001` (latent sizes 2/4/16; latent and reconstruction GIFs; MSE/SSIM/PSNR tracked on
# train and test) and `002` (a conv VAE; latent traversal). One convolutional VAE (seed 003's
# architecture: two stride-2 convolutions with batch norm, a transposed-convolution decoder) is
# trained per latent size and per training seed with the same data, training rule and optimiser;
# only `latent_dim` and the seed change (the settings `latent_dim` and `seeds` are lists: one run per
# pair). A seed sets the initial weights, the batch order, the sampling noise and which images of the
# training split are held out for validation.
#
# **Seeds and intervals.** The curves, GIFs and traversals show one run per latent size, the one
# trained with the first seed in `seeds` (seed 0 unless overridden; the titles say which). The final
# tables cover every seed: per run, and per latent size as mean ± s.d. over seeds. Sizes are compared
# with 95 % t-intervals over seeds (mean ± t · s.d./√n, t the 97.5 % quantile of Student's t with n − 1
# degrees of freedom); a difference is called real only when the two intervals do not overlap,
# otherwise it is *indistinguishable at this number of seeds*.
#
# Training keeps *snapshots*: after every epoch the posterior means μ of a fixed set of test images
# and the reconstructions of the first eight. The GIFs are drawn from these snapshots and kept in the
# result store with the runs, so a re-run of this notebook loads both without retraining or redrawing
# (a GIF is redrawn when the code that draws it changes).
#
# **Units.** Losses are in nats per image (sum over 784 pixels, mean over images); the −ELBO and its
# terms use a sampled z; MSE, PSNR and SSIM use the reconstruction decoded from μ.

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
import pandas as pd
from IPython.display import Markdown, display

from vaelib import data, experiments, metrics, plots, report, store, train
from vaelib.data import to_float

P = experiments.settings("02_latent_sizes", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
runs = {(cfg.latent_dim, cfg.seed): train.train_or_load(cfg) for cfg in experiments.runs(P)}  # one run per (latent, seed)
sizes, seeds = sorted({z for z, _ in runs}), sorted({s for _, s in runs})
s0 = P.seeds[0]  # the seed whose run of each size the curves, GIFs and traversals show
shown = {z: runs[z, s0] for z in sizes}
first = shown[sizes[0]]
prov = first.data.train.provenance
DATA = data.describe(first.data.train)  # what the data are, in the title of every figure made from these images
for (z, s), run in runs.items():
    print(f"z = {z}, seed {s}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]}; "
          f"{run.metrics['epochs_run']} epochs, {run.metrics['train_seconds']:.0f} s of training)")
print(f"data: {prov['source']} ({prov['path']}) {prov.get('note', '')}")
print(f"train / validation / test images per run: {len(first.data.train):,} / {len(first.data.val):,} / {len(first.data.test):,}")

# %% [markdown]
# ## Training rule and convergence
#
# The rule, with this profile's values, and what every run's validation curve (all seeds) did at the
# end of training.

# %%
conv = {k: train.convergence(r) for k, r in runs.items()}  # how each run's training ended
per_epoch = -(-len(first.data.train) // P.batch_size)  # optimiser steps per epoch
cap = max(c["epoch_cap"] for c in conv.values())
display(Markdown(f"""
**Training rule.** Each run trains for at most {cap} epochs: the chapter's {P.epochs} epochs, raised where needed to
reach at least {P.min_steps:,} optimiser steps. Data: {DATA}, {len(first.data.train):,} training images in
batches of {P.batch_size} make {per_epoch} steps per epoch, so {P.epochs} epochs would be {P.epochs * per_epoch:,} steps
and the {'step minimum' if cap > P.epochs else 'epoch count'} sets the cap. Training stops early once validation −ELBO
(on the held-out {100 * first.config.val_fraction:.0f} % of the training split) has not improved for {P.patience} epochs, and
the best epoch's weights are kept. {len(runs)} runs: latent sizes {', '.join(map(str, sizes))} × seeds
{', '.join(map(str, seeds))}. Precision of the training forward passes: **{first.config.precision}** (the setting
`precision` "{P.precision}": bfloat16 autocast where the hardware computes it natively, ~1.3× faster here; float32
weights, optimiser and losses, and every evaluation in float32).
"""))

# %%
TAIL, FLAT = train.TAIL, train.FLAT  # flattened: the last TAIL of epochs moved val −ELBO by < FLAT of its fall
training = pd.DataFrame([{"latent": z, "seed": s, **c, "best val −ELBO": min(h["val_total"] for h in runs[z, s].history)}
                         for (z, s), c in conv.items()])
report.write_table(training.round(4), "02_latent_sizes_training", P.profile)
rng = {c: f"{training[c].min():,}" + (f"–{training[c].max():,}" if training[c].max() > training[c].min() else "")
       for c in ("epochs_run", "steps", "best_epoch")}  # "low–high" over runs
early, flat, rose = training["stopped_early"], training["flat"], training["tail_change"] > 0
worst = training.loc[training["share_of_fall"].idxmax()]
ended = (f"every validation curve had flattened (under {100 * FLAT:.0f} % of its fall in every run)" if flat.all() else
         f"{int((~flat).sum())} of {len(training)} validation curves had not flattened (moved by {100 * FLAT:.0f} % or more)")
display(Markdown(f"""
**Convergence.** {int(early.sum())} of {len(training)} runs stopped early (no lower validation
−ELBO for {P.patience} epochs) and {int((~early).sum())} ran to the cap; runs lasted {rng['epochs_run']}
epochs ({rng['steps']} steps), with best epochs {rng['best_epoch']}. Over the last {100 * TAIL:.0f} % of each run's epochs,
validation −ELBO moved by {training['tail_change'].min():+.2f} to {training['tail_change'].max():+.2f} nats per image,
at most {100 * worst['share_of_fall']:.1f} % of its fall since epoch 1 (z = {worst['latent']}, seed {worst['seed']}): {ended}.
{f'In {int(rose.sum())} run(s) it rose instead (by up to {training["tail_change"].max():.2f} nats): validation −ELBO got worse after the best epoch, whose weights are the ones kept.' if rose.any() else 'In no run did it rise over that span.'}
"""))
training.round(4)

# %% [markdown]
# ## Loss curves
#
# One run per latent size, the first seed's (see the title). Training values are running means over
# each epoch's batches; validation is the held-out 10 % of the training split, test the data set's
# test split (both evaluated after every epoch). Runs end at different epochs (early stopping); the
# weights kept are those of the best validation epoch.

# %%
histories = {f"z = {z}": run.history for z, run in shown.items()}
fig = plots.curves(histories, ("total", "recon", "kl"), {"train_": "train", "val_": "validation", "test_": "test"},
                   title=f"−ELBO and its terms per epoch, per latent size (seed {s0}; {DATA})")
plots.save_fig(fig, FIG / "loss_curves.png", author=author)
fig

# %% [markdown]
# ## Metrics tracking: MSE, SSIM and PSNR per epoch on train and test (seed 001)
#
# After every epoch the model reconstructs (from μ) a fixed, class-stratified set of training images
# and the test images; solid lines are train, dashed are test. The first seed's run per latent size.

# %%
fig = plots.curves(histories, ("mse", "ssim", "psnr"), {"train_eval_": "train", "test_": "test"},
                   title=f"reconstruction quality per epoch ({P.eval_n:,} train and test images each at most; "
                         f"seed {s0}; {DATA})")
plots.save_fig(fig, FIG / "metrics_tracking.png", author=author)
fig

# %% [markdown]
# ## Reconstruction GIFs: the same test images after every epoch
#
# Frame 0 is the untrained model; the last frame is held for a moment before the loop restarts.
# The still below shows the first and last frame of each GIF (the GIFs are in the figures folder).
# The first seed's run per latent size.

# %%
recon_gifs = {z: plots.save_bytes(store.cached(plots.reconstruction_gif, run, fps=P.gif_fps,
                                               title=f"z = {z} · seed {s0} · {DATA}", author=author),
                                  FIG / f"reconstruction_z{z}.gif") for z, run in shown.items()}
fig = plots.preview(list(recon_gifs.values()), labels=[f"z = {z}" for z in recon_gifs])
fig.suptitle(f"reconstruction GIFs, first and last frames (seed {s0}; {DATA})")
plots.save_fig(fig, FIG / "reconstruction_gifs_preview.png", author=author)
fig

# %% [markdown]
# ## Latent-space GIFs: the test set's μ after every epoch, coloured by digit
#
# z = 2 is shown as it is. Larger latents are projected on the two principal axes of a PCA fitted
# once, on the final epoch's latents, and applied to every frame, so the axes stay fixed and the
# movement is the model's, not the projection's. The first seed's run per latent size.

# %%
latent_gifs = {z: plots.save_bytes(store.cached(plots.latent_gif, run, fps=P.gif_fps,
                                                title=f"z = {z} · seed {s0} · {DATA}", author=author),
                                   FIG / f"latent_z{z}.gif") for z, run in shown.items()}
fig = plots.preview(list(latent_gifs.values()), labels=[f"z = {z}" for z in latent_gifs])
fig.suptitle(f"latent-space GIFs, first and last frames (seed {s0}; {DATA})")
plots.save_fig(fig, FIG / "latent_gifs_preview.png", author=author)
fig

# %% [markdown]
# ## Latent traversals (seed 002)
#
# In 2-D, a loop of radius 1.5 (prior standard deviations) around the origin, decoded point by
# point. In more dimensions, one dimension at a time: column *d* decodes μ + a·e_d for a few test
# images' μ, with a sweeping from −3 to 3 and back. The first seed's run per latent size.

# %%
traversal_gifs = {z: plots.save_bytes(store.cached(plots.traversal_gif, run, fps=2 * P.gif_fps, steps=P.traversal_steps,
                                                   n_images=P.n_traverse, title=f"z = {z} · seed {s0} · {DATA}",
                                                   author=author), FIG / f"traversal_z{z}.gif")
                  for z, run in shown.items()}
fig = plots.preview(list(traversal_gifs.values()), where=(0.0, 0.5), labels=[f"z = {z}" for z in traversal_gifs])
fig.suptitle(f"latent traversals (seed {s0}; {DATA})")
plots.save_fig(fig, FIG / "traversal_gifs_preview.png", author=author)
fig

# %% [markdown]
# ## GIF files

# %%
gif_table = pd.DataFrame([{"latent": z, "seed": s0, "kind": kind, **plots.gif_info(path)}
                          for kind, paths in (("reconstruction", recon_gifs), ("latent", latent_gifs),
                                              ("traversal", traversal_gifs))
                          for z, path in paths.items()])
gif_table["MB"] = (gif_table["bytes"] / 2**20).round(2)
report.write_table(gif_table, "02_latent_sizes_gifs", P.profile)
gif_table

# %% [markdown]
# ## Final test metrics per latent size, over seeds
#
# Every run's test metrics (the weights of its best validation epoch), then per latent size the
# mean ± s.d. over seeds. The silhouette score measures how well the test set's μ separate by digit
# (1: tight, separate clusters; 0: overlapping), computed in the full latent space.

# %%
rows = []
for (z, s), r in runs.items():
    m = r.metrics
    rows.append({"latent": z, "seed": s, "n_test": m["n_test"], "−ELBO (sampled z)": m["test_total"],
                 "reconstruction (sampled z)": m["test_recon"], "KL": m["test_kl"], "MSE (from μ)": m["test_mse"],
                 "PSNR dB (from μ)": m["test_psnr"], "SSIM (from μ)": m["test_ssim"],
                 "silhouette of test μ": metrics.silhouette(r.model.latents(to_float(r.data.test.images)),
                                                            r.data.test.labels, seed=P.seed),
                 "epochs run": m["epochs_run"], "best epoch": m["best_epoch"], "steps": m["steps"],
                 "train seconds": m["train_seconds"]})
per_run = pd.DataFrame(rows)
report.write_table(per_run.round(4), "02_latent_sizes_runs", P.profile)
per_run.round(4)

# %%
COLS = {"−ELBO (sampled z)": 2, "reconstruction (sampled z)": 2, "KL": 2, "MSE (from μ)": 4, "PSNR dB (from μ)": 2,
        "SSIM (from μ)": 3, "silhouette of test μ": 3, "epochs run": 1, "best epoch": 1, "steps": 0}  # decimals shown
over = metrics.seed_summary(per_run, "latent", list(COLS)).sort_index()  # per size: n, mean, sd, 95 % t-interval
n, mean, sd = over["n"], over["mean"], over["sd"]
table = pd.DataFrame({c: [f"{mean.loc[z, c]:.{d}f}" + (f" ± {sd.loc[z, c]:.{d}f}" if n.loc[z, c] > 1 else "")
                          for z in mean.index] for c, d in COLS.items()}, index=mean.index)
table.insert(0, "seeds", n.max(axis=1))
report.write_table(table, "02_latent_sizes_metrics", P.profile)
table

# %% [markdown]
# ### Which differences between latent sizes are real
#
# Neighbouring sizes, and the smallest against the largest: each side's mean with its 95 % t-interval
# over seeds; "real" when the intervals do not overlap.

# %%
nseeds = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
indist = f"indistinguishable at {nseeds}"
ci = {c: {z: f"[{over['low'].loc[z, c]:.{d}f}, {over['high'].loc[z, c]:.{d}f}]" if n.loc[z, c] > 1
          else "(one seed: no interval)" for z in sizes} for c, d in COLS.items()}
q = {c: {z: f"{mean.loc[z, c]:.{d}f} {ci[c][z]}" for z in sizes} for c, d in COLS.items()}  # "mean [95 % interval]"
sep = {(c, a, b): metrics.apart(over, c, a, b) for c in COLS for a in sizes for b in sizes}  # intervals apart
pairs = list(zip(sizes, sizes[1:])) + ([(sizes[0], sizes[-1])] if len(sizes) > 2 else [])
diffs = pd.DataFrame([{"metric": c, "z (a)": a, "z (b)": b, "a: mean [95 % CI]": q[c][a], "b: mean [95 % CI]": q[c][b],
                       "b − a": mean.loc[b, c] - mean.loc[a, c], "verdict": "real" if sep[c, a, b] else indist}
                      for c in list(COLS)[:7] for a, b in pairs])
report.write_table(diffs.round(4), "02_latent_sizes_differences", P.profile)
diffs.round(4)

# %%
fig = plots.draws_plot(per_run.assign(condition=[f"z = {z}" for z in per_run["latent"]]), "−ELBO (sampled z)",
                       title=f"test −ELBO: seeds (dots), mean ± s.d. ({DATA})")
plots.save_fig(fig, FIG / "elbo_by_seed.png", author=author)
fig

# %%
E, R, K, MS, PS, SS, SI = list(COLS)[:7]  # −ELBO, reconstruction, KL, MSE, PSNR, SSIM, silhouette
lo, hi = sizes[0], sizes[-1]
best, sbest = mean[E].idxmin(), mean[SI].idxmax()
ties = {c: [z for z in sizes if z != b and not sep[c, b, z]] for c, b in ((E, best), (SI, sbest))}
tie = {c: f", {indist} from z = {', '.join(map(str, t))}" if t else ", its interval clear of every other size's"
       for c, t in ties.items()}
steps = {c: "; ".join(f"{a}→{b} {'real' if sep[c, a, b] else indist}" for a, b in zip(sizes, sizes[1:])) for c in COLS}
verdict = {c: "real" if sep[c, lo, hi] else indist for c in COLS}  # z = lo against z = hi
way = {c: ("rises" if mean.loc[hi, c] > mean.loc[lo, c] else "falls") if sep[c, lo, hi] else "goes" for c in COLS}
evals = {k: (to_float(data.take(r.data.train, P.eval_n, seed=r.config.seed).images),  # the kept weights on eval_n
             to_float(data.take(r.data.test, P.eval_n, seed=r.config.seed).images)) for k, r in runs.items()}  # images
gaps = pd.DataFrame([{"latent": z, "gap": float(metrics.mse(r.model.reconstruct(xt), xt).mean()
                                               - metrics.mse(r.model.reconstruct(xs), xs).mean())}
                     for (z, s), r in runs.items() for xs, xt in [evals[z, s]]])
gap = metrics.seed_summary(gaps, "latent", ["gap"]).xs("gap", axis=1, level=1)  # columns n, mean, sd, low, high
gtext = {z: f"{gap.loc[z, 'mean']:+.4f}" + (f" ± {gap.loc[z, 'sd']:.4f}" if gap.loc[z, "n"] > 1 else "") for z in sizes}
display(Markdown(f"""
**What the numbers show** (test set; each value is the mean over {nseeds} with its 95 % t-interval in
brackets; a difference is real only when the intervals do not overlap). From z = {lo} to z = {hi} the test −ELBO
{way[E]} from {q[E][lo]} to {q[E][hi]} nats per image ({verdict[E]}; lower is better); the lowest mean is at z =
{best}{tie[E]}.
Between neighbouring sizes: {steps[E]}. The reconstruction term {way[R]} from {q[R][lo]} to {q[R][hi]} ({verdict[R]}) and the KL
term — the information the code carries — {way[K]} from {q[K][lo]} to {q[K][hi]} nats
({verdict[K]}){': the extra dimensions are used, not left idle' if way[K] == 'rises' and sep[K, lo, hi] else ''}.
Reconstructions from μ: SSIM {q[SS][lo]} → {q[SS][hi]}, PSNR {q[PS][lo]} → {q[PS][hi]} dB, MSE {q[MS][lo]} →
{q[MS][hi]} (z = {lo} against z = {hi}: SSIM {verdict[SS]}, PSNR {verdict[PS]}, MSE {verdict[MS]}; neighbouring sizes, SSIM:
{steps[SS]}).

Only z = 2 can be looked at without a projection; the silhouette of the test μ by digit is {q[SI][lo]} at
z = {lo} and {q[SI][hi]} at z = {hi} (distances in the full latent space); the highest mean is at z = {sbest}{tie[SI]}.
With each run's kept (best-epoch) weights, test MSE minus train MSE ({P.eval_n:,} images each; mean ± s.d. over seeds) is {gtext[lo]} at z = {lo} and
{gtext[hi]} at z = {hi}{' (at z = ' + str(hi) + ' its 95 % interval lies above zero: the model fits its training images better than new ones)' if gap.loc[hi, 'low'] > 0 else ' (no gap we can call real)'}.
Each run trained on {len(first.data.train):,} images ({DATA}; {len(first.data.val):,} held out for validation, a
different draw per seed) for {rng['epochs_run']} epochs (the training table above).
"""))

# %% [markdown]
# ## For the report
#
# The chapter's findings (built from the numbers above), where it differs from seeds 001 and 002, and
# the data caveat; they reach `reports/REPORT.md` through this chapter's metrics file.

# %%
findings = [
    f"Test −ELBO {way[E]} from {q[E][lo]} nats/image at z = {lo} to {q[E][hi]} at z = {hi} (mean and 95 % t-interval over "
    f"{nseeds}; {verdict[E]}); the lowest mean is at z = {best}{tie[E]}.",
    f"Between neighbouring latent sizes the −ELBO differences are: {steps[E]}.",
    f"The KL term {way[K]} from {q[K][lo]} to {q[K][hi]} nats and the SSIM of reconstructions from μ from {q[SS][lo]} to "
    f"{q[SS][hi]} (z = {lo} against z = {hi}: KL {verdict[K]}, SSIM {verdict[SS]}).",
    f"The silhouette of the test μ by digit is highest at z = {sbest} ({q[SI][sbest]}){tie[SI]}.",
    f"{int(early.sum())} of {len(training)} runs stopped early (patience {P.patience}), the others at the cap of {cap} "
    f"epochs; runs lasted {rng['epochs_run']} epochs, and over each run's last {100 * TAIL:.0f} % of epochs validation "
    f"−ELBO moved by at most {100 * worst['share_of_fall']:.1f} % of its fall since epoch 1: {int(flat.sum())} of "
    f"{len(training)} curves had flattened (under {100 * FLAT:.0f} %).",
]
display(Markdown("\n".join(f"- {f}" for f in findings)))

# %%
SEED_001 = dict(latents=[2, 4, 16])  # from seed report 001 (U-Net-style VAE with attention, PatchGAN + VGG16 losses)
SEED_002 = dict(latents=[2, 8], epochs=[128, 32], data="EMNIST")  # from seed report 002 (conv VAE, MSE loss, tanh output)
differences = [
    "Architecture: seed 001 describes a U-Net-style VAE with attention trained with PatchGAN and VGG16 perceptual losses, "
    "seed 002 a conv VAE with an MSE loss; we train one plain conv VAE (seed 003's) with a Bernoulli reconstruction term "
    "for every size, so that only the latent size changes.",
    f"Latent sizes: seed 001 trained z = {', '.join(map(str, SEED_001['latents']))} and seed 002 z = "
    f"{', '.join(map(str, SEED_002['latents']))}; we train z = {', '.join(map(str, sizes))}.",
    f"Data and length: seed 002 trained on {SEED_002['data']} for {SEED_002['epochs'][0]} (z = {SEED_002['latents'][0]}) and "
    f"{SEED_002['epochs'][1]} (z = {SEED_002['latents'][1]}) epochs; we train on {DATA} for at most {cap} epochs "
    f"(at least {P.min_steps:,} steps), stop early with patience {P.patience} on validation −ELBO and keep the best epoch.",
    f"Repeats: the seeds show one run per latent size; we train {nseeds} per size and compare sizes with 95 % "
    "t-intervals over seeds.",
    "Metrics: the seeds plot MSE, SSIM and PSNR without saying on what; here all three are per-image means on the "
    "reconstruction decoded from μ, and the −ELBO and its terms are nats per image with a sampled z.",
    *(["Precision: our training forward passes run under bfloat16 autocast (this CPU computes it natively; about 1.3× "
       "faster), with float32 weights, optimiser, losses and evaluation; the seeds trained in float32."]
      if first.config.precision == "bfloat16" else []),
]
caveats = [c for c in [data.caveat(first.data.train)] if c]  # the warning REPORT.md puts first

# %%
metrics_file = report.write_metrics(P.stem, {
    "data_source": prov["source"], "seeds": seeds, "interval": "95 % t-interval over seeds",
    "runs": {f"z={z} seed {s}": r.key[:12] for (z, s), r in runs.items()}, "per_run": per_run.to_dict("records"),
    "mean": mean.reset_index().to_dict("records"), "sd": sd.reset_index().to_dict("records"),
    "differences": diffs.to_dict("records"), "training": training.to_dict("records"), "gifs": gif_table.to_dict("records"),
    "report": report.chapter_summary(f"Latent size: a conv VAE on MNIST with z = {', '.join(map(str, sizes))}", findings,
                                     FIG / "elbo_by_seed.png", "02_latent_sizes_metrics", differences=differences,
                                     caveats=caveats, profile=P.profile)}, P.profile)
