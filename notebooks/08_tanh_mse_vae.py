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
# # 08 · Seed 002 reproduced: a tanh/MSE conv VAE with 2-D and 8-D latents, and a resumed training
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/08_tanh_mse_vae.ipynb)
#
# Seed report `002`: a convolutional VAE whose decoder ends in **tanh**, so images live in [−1, 1], trained
# with a **mean-squared-error** reconstruction term plus an α-weighted KL term (α is our β); a 2-D run trained
# long (128 epochs) and an 8-D run trained short (32 epochs) on EMNIST; latent-space and traversal videos;
# reconstructions at the first, middle and last epoch; and training resumed from a checkpoint.
#
# We train `conv-tanh` (the conv VAE of chapter 02 with a tanh output) with likelihood `mse`. The seed does not
# give its α; the value used here is printed below with the settings (`beta`). The data are EMNIST digits when a
# copy is present (`$VAELIB_DATA`, the system folder, the download cache, or a download when online); otherwise
# MNIST stands in, and every title says so.
#
# **Units.** The reconstruction term is the squared error summed over the 784 pixels on the [−1, 1] scale,
# Σ (tanh(out) − (2x − 1))², averaged over images: for the same reconstruction it is 4 × 784 × the per-pixel MSE
# on the [0, 1] scale. The KL term is in nats; the "−ELBO" is reconstruction + β·KL in these mixed units (a Gaussian
# decoder with variance ½ on the [−1, 1] scale, up to a constant), with a sampled z. MSE, PSNR and SSIM are
# per-image means on the reconstruction decoded from μ, in [0, 1] pixel units.

# %%
import sys
REPO = "vae-report/vae-report"  # GitHub OWNER/NAME of this repository (the Colab badge names it too: tools/set_repo.py)
if "google.colab" in sys.modules:  # on Colab: install vaelib (and its pinned-free dependencies) first
    # %pip install -q "vaelib @ git+https://github.com/{REPO}"

# %% tags=["parameters"]
profile = None  # "smoke" or "full"; None: $VAELIB_PROFILE, else "full"
author = ""  # optional watermark on figures
overrides = {}  # settings to change, e.g. {"long_epochs": 10}; unknown names are rejected (the settings are printed below)

# %%
import dataclasses

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from vaelib import data, experiments, metrics, plots, report, store, train
from vaelib.data import to_float

P = experiments.settings("08_tanh_mse_vae", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
SEED = dict(data="EMNIST", latents=(2, 8), epochs=(128, 32), recon_epochs=((1, 64, 128), (16, 32)))  # seed 002
wanted = data.load_or_fallback(P.dataset, P.fallback, "train")  # EMNIST digits when present, else the fallback
fallback = bool(wanted.provenance.get("fallback_for"))
configs = experiments.runs(P)  # the run table: a 2-D run (long_ settings) and an 8-D run (short_ settings)
if fallback:  # the same runs on the stand-in data set
    configs = [dataclasses.replace(c, dataset=P.fallback) for c in configs]
cfg2, cfg8 = configs
DATA = data.describe(wanted)  # in the title of every figure made from these images
prov = wanted.provenance
print(f"data: {prov['source']} ({prov['path']}) {prov.get('note', '')}")
if fallback:
    print(f"{P.dataset} is not available here, so the runs train on {P.fallback} instead "
          f"(dataset {P.dataset!r} replaced by {P.fallback!r} in both configs): {prov['fallback_reason']}")
run2, run8 = train.train_or_load(cfg2), train.train_or_load(cfg8)
for run in (run2, run8):
    print(f"{run.config.label}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]}; "
          f"{run.metrics['epochs_run']} epochs, {run.metrics['train_seconds']:.0f} s of training)")
print(f"train / validation / test images per run: {len(run2.data.train):,} / {len(run2.data.val):,} / "
      f"{len(run2.data.test):,}")

# %% [markdown]
# ## Training rule and convergence
#
# The seed trains the 2-D model for 128 epochs and the 8-D model for 32 on EMNIST digits (240,000 training
# images). On smaller data an epoch is far fewer optimiser steps, so each run's epoch count is raised to at least
# a number of steps (`long_min_steps`, `short_min_steps`); with the full EMNIST the seed's epochs apply. There is no
# early stopping (the seed trains a fixed number of epochs), so the last epoch's weights are kept.

# %%
conv = {z: train.convergence(r) for z, r in ((2, run2), (8, run8))}  # how each run's training ended
TAIL, FLAT = train.TAIL, train.FLAT  # flattened: the last TAIL of epochs moved val −ELBO by < FLAT of its fall
per_epoch = -(-len(run2.data.train) // P.batch_size)  # optimiser steps per epoch
rule = {z: (f"{c.epochs} epochs" + (f" raised to {conv[z]['epoch_cap']} to reach {c.min_steps:,} steps"
                                    if conv[z]["epoch_cap"] > c.epochs else
                                    f" ({c.epochs * per_epoch:,} steps; the floor of {c.min_steps:,} steps does not raise it)"))
        for z, c in ((2, cfg2), (8, cfg8))}
training = pd.DataFrame([{"latent": z, "seed's epochs": e, **c} for (z, c), e in zip(conv.items(), SEED["epochs"])])
report.write_table(training.round(4), "08_tanh_mse_vae_training", P.profile)
display(Markdown(f"""
**Training rule.** Adam (lr {cfg2.lr:g}, batch {cfg2.batch_size}), β = α = {cfg2.beta:g}. Data: {DATA};
{len(run2.data.train):,} training images make {per_epoch} steps per epoch. The 2-D run: {rule[2]}; the 8-D run:
{rule[8]}. Validation: the held-out {100 * cfg2.val_fraction:.0f} % of the training split ({len(run2.data.val):,} images),
evaluated after every epoch.

**Convergence.** Over the last {100 * TAIL:.0f} % of its epochs the validation −ELBO of the 2-D run moved by
{conv[2]['tail_change']:+.2f} ({100 * conv[2]['share_of_fall']:.1f} % of its fall since epoch 1:
{'flattened' if conv[2]['flat'] else 'not flattened'}) and that of the 8-D run by {conv[8]['tail_change']:+.2f}
({100 * conv[8]['share_of_fall']:.1f} %: {'flattened' if conv[8]['flat'] else 'not flattened'}; the threshold is
{100 * FLAT:.0f} %).
"""))
training.round(4)

# %% [markdown]
# ## Loss curves: the MSE and KL parts, train and validation
#
# Training values are running means over each epoch's batches; validation is evaluated after each epoch with a
# sampled z (−ELBO and its terms) and from μ (MSE, PSNR, SSIM in [0, 1] pixel units).

# %%
histories = {"z = 2": run2.history, "z = 8": run8.history}
fig = plots.curves(histories, ("total", "recon", "kl", "mse", "psnr", "ssim"), {"train_": "train", "val_": "validation"},
                   title=f"seed 002's tanh/MSE conv VAE: loss parts per epoch, train and validation\n{DATA}",
                   likelihood="mse")
plots.save_fig(fig, FIG / "loss_curves.png", author=author)
fig

# %% [markdown]
# ## Test metrics
#
# The weights after the last epoch, on the whole test split. −ELBO and its reconstruction term use a sampled z (in
# the squared-error units above); MSE, PSNR and SSIM use the reconstruction decoded from μ, in [0, 1] pixel units.

# %%
rows = []
for z, r in ((2, run2), (8, run8)):
    m = r.metrics
    rows.append({"latent": z, "data": DATA, "n_test": m["n_test"], "epochs run": m["epochs_run"], "steps": m["steps"],
                 "−ELBO (sampled z)": m["test_total"], "squared error [−1, 1] (sampled z)": m["test_recon"],
                 "KL (nats)": m["test_kl"], "MSE (from μ)": m["test_mse"], "PSNR dB (from μ)": m["test_psnr"],
                 "SSIM (from μ)": m["test_ssim"], "train seconds": m["train_seconds"]})
table = pd.DataFrame(rows)
report.write_table(table.round(4), "08_tanh_mse_vae_metrics", P.profile)
x_test = to_float(run2.data.test.images)
per_image = {z: {"mse": metrics.mse(r.model.reconstruct(x_test), x_test).numpy(),
                 "ssim": metrics.ssim(r.model.reconstruct(x_test), x_test).numpy()} for z, r in ((2, run2), (8, run8))}
paired = {k: per_image[8][k] - per_image[2][k] for k in ("mse", "ssim")}  # 8-D minus 2-D, per test image
ci = {k: metrics.bootstrap_ci(np.mean, d, seed=P.seed) for k, d in paired.items()}  # 95 % paired bootstrap
real = {k: lo > 0 or hi < 0 for k, (lo, hi) in ci.items()}
table.round(4)

# %% [markdown]
# ## The 2-D latent space: the test set's μ by digit

# %%
z_test = run2.model.latents(x_test)
sil = {z: metrics.silhouette(r.model.latents(x_test), r.data.test.labels, seed=P.seed) for z, r in ((2, run2), (8, run8))}
fig = plots.latent_scatter(z_test, run2.data.test.labels, run2.data.test.classes,
                           title=f"z = 2: test set μ ({len(z_test):,} images; silhouette {sil[2]:.2f})\n{DATA}")
plots.save_fig(fig, FIG / "latent_scatter_z2.png", author=author)
fig

# %% [markdown]
# ## Latent-space GIFs (the seed's videos): the followed test images' μ after every epoch
#
# z = 2 as it is; z = 8 projected on the two principal axes of a PCA fitted once on the last epoch's μ and applied
# to every frame. Frame 0 is the untrained model. The still shows each GIF's first and last frame.

# %%
latent_gifs = {z: plots.save_bytes(store.cached(plots.latent_gif, r, fps=P.gif_fps, title=f"z = {z} · {DATA}",
                                                author=author), FIG / f"latent_z{z}.gif") for z, r in ((2, run2), (8, run8))}
fig = plots.preview(list(latent_gifs.values()), labels=[f"z = {z}" for z in latent_gifs])
fig.suptitle(f"latent-space GIFs, first and last frames\n{DATA}")
plots.save_fig(fig, FIG / "latent_gifs_preview.png", author=author)
fig

# %% [markdown]
# ## Latent traversals
#
# z = 2: a loop of radius 1.5 around the origin, decoded point by point, beside the test μ. z = 8: one dimension per
# column, decoding μ + a·e_d for a few test images, a sweeping from −3 to 3 and back.

# %%
traversal_gifs = {z: plots.save_bytes(store.cached(plots.traversal_gif, r, fps=P.gif_fps, steps=P.traversal_steps,
                                                   n_images=P.n_traverse, title=f"z = {z} · {DATA}", author=author),
                                      FIG / f"traversal_z{z}.gif") for z, r in ((2, run2), (8, run8))}
fig = plots.preview(list(traversal_gifs.values()), where=(0.0, 0.5), labels=[f"z = {z}" for z in traversal_gifs])
fig.suptitle(f"latent traversals\n{DATA}")
plots.save_fig(fig, FIG / "traversal_gifs_preview.png", author=author)
fig

# %% [markdown]
# ## Reconstructions at the first, middle and last epoch
#
# From the runs' training snapshots: after every epoch each run reconstructs (from μ) the same eight test images, one
# per class in turn. The rows are the test images and their reconstructions after the first, middle and last epoch;
# the row label gives the mean MSE of those eight ([0, 1] pixel units).

# %%
fig = plots.new_figure(figsize=(12.0, 4.0))
axes = fig.subplots(1, 2)
recon_epochs = {}
for ax, (z, r) in zip(axes, ((2, run2), (8, run8))):
    snap, last = r.snapshots, r.metrics["epochs_run"]
    shown = sorted({1, max(1, last // 2), last})  # first, middle, last epoch
    at = [int((snap["epoch"] == e).nonzero()[-1]) for e in shown]  # the snapshot taken at the end of that epoch
    originals = to_float(r.data.test.images[snap["index"][:snap["recon"].shape[1]]])
    recons = [snap["recon"][t].float() / 255 for t in at]
    recon_epochs[z] = {e: float(metrics.mse(x, originals).mean()) for e, x in zip(shown, recons)}
    plots.image_grid(torch.cat([originals, *recons]), len(originals), ax=ax, title=f"z = {z}",
                     row_labels=["test images", *[f"epoch {e} · MSE {recon_epochs[z][e]:.4f}" for e in shown]])
fig.suptitle(f"reconstructions from μ after the first, middle and last epoch\n{DATA}")
plots.save_fig(fig, FIG / "reconstructions_by_epoch.png", author=author)
fig

# %% [markdown]
# ## Resuming a training (seed 002's `trainer.train(resume_from=...)`)
#
# The seed resumes its training from a checkpoint path. Here the 2-D run is trained a second time in two parts: a
# first run stops after a fraction `resume_at` of the 2-D run's epochs; a second run with the full budget continues
# it with `train.train_or_load(cfg_full, resume_from=cfg_part)`, restoring its weights, optimiser, random
# generators, history and snapshots. Since training is deterministic, the resumed run should equal the straight
# 2-D run above bit for bit; the cell below checks that, and whether the curves continue across the resume point.

# %%
cap2 = conv[2]["epoch_cap"]
cfg_part = dataclasses.replace(cfg2, epochs=max(1, round(P.resume_at * cap2)), min_steps=0)  # stops at the resume point
k = cfg_part.epochs
part = train.train_or_load(cfg_part)
resumed = train.train_or_load(cfg2, resume_from=cfg_part)  # continues part's training up to the full budget
for r in (part, resumed):
    print(f"{r.config.epochs} epochs: {'loaded from' if r.cached else 'trained into'} the result store "
          f"(key {r.key[:12]}; {r.metrics['train_seconds']:.0f} s of training)")
KEYS = [c for c in resumed.history[0] if c != "seconds"]  # every logged quantity except wall time
prefix_same = all(resumed.history[i][c] == part.history[i][c] for i in range(k) for c in KEYS)
same_length = len(resumed.history) == len(run2.history)
hist_diff = max(abs(a[c] - b[c]) for a, b in zip(resumed.history, run2.history) for c in KEYS)
weights_same = all(torch.equal(a, b) for a, b in zip(resumed.model.state_dict().values(), run2.model.state_dict().values()))
snaps_same = all(torch.equal(resumed.snapshots[s], run2.snapshots[s]) for s in ("mu", "recon", "epoch", "step"))
tests_same = all(resumed.metrics[c] == run2.metrics[c] for c in resumed.metrics if c.startswith("test_"))
identical = same_length and hist_diff == 0 and weights_same and snaps_same and tests_same
steps_tr = np.diff([h["train_total"] for h in resumed.history])  # epoch-to-epoch change of the training −ELBO
jump = steps_tr[k - 1] if k < len(resumed.history) else float("nan")  # from epoch k to k + 1: across the resume
near = np.r_[steps_tr[max(0, k - 6):k - 1], steps_tr[k:k + 5]]  # the five changes either side of it
within = bool(len(near)) and near.min() <= jump <= near.max()
resume_check = pd.DataFrame([
    {"check": f"resumed history, epochs 1–{k}, equals the first part's", "result": prefix_same},
    {"check": "resumed run has as many epochs as the straight run", "result": same_length},
    {"check": "largest difference of any logged value from the straight run", "result": hist_diff},
    {"check": "final weights equal the straight run's", "result": weights_same},
    {"check": "training snapshots equal the straight run's", "result": snaps_same},
    {"check": "test metrics equal the straight run's", "result": tests_same},
    {"check": f"change of training −ELBO from epoch {k} to {k + 1}", "result": jump},
    {"check": "range of that change over the five epochs either side",
     "result": f"{near.min():+.3f} … {near.max():+.3f}" if len(near) else "no neighbouring epochs"},
])
report.write_table(resume_check.astype({"result": str}), "08_tanh_mse_vae_resume", P.profile)
resume_check

# %%
fig = plots.curves({f"first part (epochs 1–{k})": part.history, f"resumed (epochs {k}–{len(resumed.history)})":
                    resumed.history[k - 1:]}, ("total", "recon", "kl"), {"train_": "train", "val_": "validation"},
                   title=f"z = 2 trained to epoch {k}, then resumed to epoch {len(resumed.history)} "
                         f"(dotted line: the resume point)\n{DATA}", likelihood="mse")
for ax in fig.axes:
    ax.axvline(k, color="crimson", ls=":", lw=1.5)
plots.save_fig(fig, FIG / "resumed_curves.png", author=author)
fig

# %%
display(Markdown(f"""
**Does the resumed run match the seed's claim?** The resumed run's history begins with the first part's {k} epochs
{'unchanged' if prefix_same else 'changed (it should not be)'}, and the change of the training −ELBO across the resume
point (epoch {k} → {k + 1}: {jump:+.3f}) {'lies within' if within else 'lies outside' if len(near) else 'has no neighbours to compare with:'}
{f'the range of the changes over the five epochs on either side ({near.min():+.3f} to {near.max():+.3f})' if len(near) else 'this profile trains too few epochs'}{': the curves continue' if within else ''}.
Compared with the straight 2-D run of {len(run2.history)} epochs: the largest difference of any logged value is
{hist_diff:.3g}, the final weights are {'identical' if weights_same else 'different'}, the snapshots
{'identical' if snaps_same else 'different'} and the test metrics {'identical' if tests_same else 'different'}, so
resuming {'reproduces the straight training bit for bit' if identical else 'does not reproduce the straight training exactly'}.
"""))

# %% [markdown]
# ## The same resume from the command line
#
# The `vae` command (chapter 06, seed 000's grammar) saves the training state in its model file and continues it with
# `--resume`; the epoch budget counts the epochs trained already, so training K epochs and then resuming to N equals
# training N epochs straight:
#
# ```sh
# vae TRAIN.npz VAL.npz train vae.pth gmm_params.pkl --arch conv --latent-dim 2 --batch-size 64 --epochs K
# vae TRAIN.npz VAL.npz train vae.pth gmm_params.pkl --arch conv --latent-dim 2 --batch-size 64 --resume vae.pth --epochs N
# ```
#
# The command line trains the Bernoulli `mlp` and `conv` models only: it has no option for the tanh/MSE model of this
# chapter, so the commands above resume a conv VAE with the same schedule. They are shown, not run here.

# %%
display(Markdown(f"With this chapter's 2-D schedule: `--epochs {k}` for the first part, then "
                 f"`--resume vae.pth --epochs {len(resumed.history)}` (batch size {cfg2.batch_size}, lr {cfg2.lr:g}, "
                 f"seed {cfg2.seed})."))

# %% [markdown]
# ## GIF files

# %%
gif_table = pd.DataFrame([{"latent": z, "kind": kind, **plots.gif_info(path)}
                          for kind, paths in (("latent", latent_gifs), ("traversal", traversal_gifs))
                          for z, path in paths.items()])
gif_table["MB"] = (gif_table["bytes"] / 2**20).round(2)
report.write_table(gif_table, "08_tanh_mse_vae_gifs", P.profile)
gif_table

# %% [markdown]
# ## For the report
#
# The chapter's findings (built from the numbers above), where it differs from seed 002 and why, and the data
# caveat; they reach `reports/REPORT.md` through this chapter's metrics file.

# %%
m2, m8 = run2.metrics, run8.metrics
verdict = {c: (f"the 95 % paired bootstrap interval of the difference over the {len(x_test):,} test images, "
               f"[{ci[c][0]:+.4f}, {ci[c][1]:+.4f}], " + ("excludes 0: real" if real[c] else "includes 0: indistinguishable"))
           for c in ("mse", "ssim")}
mean_diff = {c: float(d.mean()) for c, d in paired.items()}  # 8-D minus 2-D
up = {"ssim": 1, "mse": -1}  # which way is better
phrase = {c: ("better than" if mean_diff[c] * up[c] > 0 else "worse than") if real[c] else "not measurably different from"
          for c in up}
epochs_n = {z: f"{n} epoch{'s' if n != 1 else ''}" for z, n in ((2, conv[2]["epochs_run"]), (8, conv[8]["epochs_run"]))}
ends = {z: (d[min(d)], d[max(d)]) for z, d in recon_epochs.items()}  # MSE of the followed images: first, last epoch
over = {z: (f"{'falls' if b < a else 'rises' if b > a else 'stays'} from {a:.4f} after epoch 1 to {b:.4f} after epoch "
             f"{max(recon_epochs[z])}" if max(recon_epochs[z]) > 1 else f"is {b:.4f} after its only epoch")
        for z, (a, b) in ends.items()}
findings = [
    f"With the tanh decoder and the MSE loss (β = α = {cfg2.beta:g}) on {DATA}, the 8-D run's test reconstructions from "
    f"μ are {phrase['ssim']} the 2-D run's by SSIM ({m8['test_ssim']:.3f} against {m2['test_ssim']:.3f}; {verdict['ssim']}) "
    f"and {phrase['mse']} them by MSE ({m8['test_mse']:.4f} against {m2['test_mse']:.4f}; {verdict['mse']}).",
    f"The KL term is {m2['test_kl']:.2f} nats at z = 2 and {m8['test_kl']:.2f} at z = 8; the test μ separate by digit "
    f"with silhouette {sil[2]:.2f} (z = 2) and {sil[8]:.2f} (z = 8, in the full latent space).",
    f"The MSE of the eight followed test images {over[2]} (z = 2) and {over[8]} (z = 8).",
    f"Resuming the 2-D training at epoch {k} of {len(resumed.history)} "
    + ("reproduces the straight run bit for bit (history, snapshots, weights and test metrics)" if identical else
       f"does not reproduce the straight run exactly (largest logged difference {hist_diff:.3g})")
    + (f"; the training −ELBO's change across the resume point ({jump:+.3f}) lies within that of the neighbouring "
       "epochs: the curves continue." if within else "."),
    f"Over the last {100 * TAIL:.0f} % of epochs validation −ELBO moved by {100 * conv[2]['share_of_fall']:.1f} % (z = 2, "
    f"{epochs_n[2]}) and {100 * conv[8]['share_of_fall']:.1f} % (z = 8, {epochs_n[8]}) "
    f"of its fall since epoch 1: {'both' if conv[2]['flat'] and conv[8]['flat'] else 'not both'} under "
    f"{100 * FLAT:.0f} % ({'flattened' if conv[2]['flat'] and conv[8]['flat'] else 'see the training table'}).",
]
display(Markdown("\n".join(f"- {f}" for f in findings)))

# %%
differences = [
    f"Data: seed 002 trains on {SEED['data']}; here {DATA}" + (
        f" ({P.dataset} was not available, so {P.fallback} stands in for it)" if fallback else "") +
    f": {len(run2.data.train):,} training, {len(run2.data.val):,} validation and {len(run2.data.test):,} test images.",
    f"Training length: seed 002 trains {SEED['epochs'][0]} epochs (z = 2) and {SEED['epochs'][1]} (z = 8); here the same "
    f"epoch counts raised to at least {cfg2.min_steps:,} and {cfg8.min_steps:,} optimiser steps on small data "
    f"({conv[2]['epochs_run']} and {conv[8]['epochs_run']} epochs of {per_epoch} steps), since an epoch of this data is far "
    "fewer steps than one of EMNIST; no early stopping, as in the seed.",
    f"α: seed 002 weights the KL term by a configurable α without giving its value; we use β = α = {cfg2.beta:g}, the "
    "plain ELBO of a Gaussian decoder with variance ½ on the [−1, 1] scale.",
    f"Videos: seed 002's latent-space and traversal videos are .avi files; here they are looping GIFs "
    f"({len(gif_table)} files, {gif_table['MB'].sum():.1f} MB in all), drawn from training snapshots, with stills for pages "
    "that do not play them.",
    f"Resume: seed 002 resumes by editing a checkpoint path in its script; here `train_or_load(cfg, resume_from=...)` "
    f"(and `vae train --resume`) continue a stored training, and the chapter checks the resumed run against a straight "
    f"one{' (bit-identical)' if identical else ''}. Measurements: test MSE/PSNR/SSIM from μ and a validation split, "
    "which the seed does not report.",
]
caveats = [c for c in [data.caveat(wanted)] if c]  # the warning REPORT.md puts first
metrics_file = report.write_metrics(P.stem, {
    "data_source": prov["source"], "dataset": run2.config.dataset, "wanted": P.dataset, "fallback": fallback,
    "beta": cfg2.beta, "runs": {f"z={z}": r.key[:12] for z, r in ((2, run2), (8, run8))},
    "resume": {"part": part.key[:12], "resumed": resumed.key[:12], "resume_epoch": k, "identical": identical,
               "largest_history_difference": hist_diff, "jump": float(jump), "within_neighbours": within},
    "metrics": table.to_dict("records"), "training": training.to_dict("records"),
    "paired_ci_8_minus_2": {c: list(v) for c, v in ci.items()}, "silhouette": {str(z): s for z, s in sil.items()},
    "recon_mse_by_epoch": {str(z): {str(e): v for e, v in d.items()} for z, d in recon_epochs.items()},
    "gifs": gif_table.to_dict("records"),
    "report": report.chapter_summary("Seed 002: a tanh/MSE conv VAE with 2-D and 8-D latents, and a resumed training",
                                     findings, FIG / "reconstructions_by_epoch.png", "08_tanh_mse_vae_metrics",
                                     differences=differences, caveats=caveats, profile=P.profile)}, P.profile)
