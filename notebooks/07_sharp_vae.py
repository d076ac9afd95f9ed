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
# # 07 · Against blurry VAEs: a U-Net-block VAE with a perceptual loss and a PatchGAN, measured
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/07_sharp_vae.ipynb)
#
# Seed report `001` builds a VAE from U-Net-style Down/Mid/Up blocks with self-attention and, "to address
# the common issue of blurry outputs", adds a PatchGAN discriminator and an LPIPS-style perceptual loss on
# VGG16 features; it trains latent sizes 2, 4 and 16 on MNIST, shows latent and reconstruction GIFs, and
# tracks MSE, SSIM and PSNR on train and test. It never measures whether the two extra losses make the
# outputs sharper. This chapter does, with an **ablation**: the same U-Net-block VAE (`arch="unet"`) at each
# latent size, trained three ways with the same data, steps, optimiser and seed:
#
# 1. **pixel only**: the negative ELBO (Bernoulli reconstruction summed over 784 pixels, in nats, + KL);
# 2. **+ perceptual**: plus `perceptual` × an LPIPS-style distance (`losses.perceptual_distance`) on the feature
#    maps of a frozen network (`fid.perceptual_network`: VGG16 with ImageNet weights when torch.hub's cache has
#    them, else the conv blocks of a classifier trained on the data set — its name is in every table and title);
# 3. **+ perceptual + PatchGAN**: plus a PatchGAN discriminator's hinge term, weighted by `adversarial` ×
#    VQGAN's adaptive weight, switched on after `adv_warmup` optimiser steps.
#
# **Measured on the test images**: MSE, PSNR and SSIM of reconstructions decoded from μ; sharpness (variance of
# the Laplacian, `metrics.sharpness`) of those reconstructions and of prior samples (z ~ N(0, I), the same z for
# every variant of a latent size); and the domain-classifier FID of prior samples against test images (as in
# chapter 05: the 128-d features of a classifier trained on the data set, a 95 % basic bootstrap interval over the
# samples, and the real-vs-real floor — real training images against the same test images — at the same N).
# Differences between variants are paired (same test images, same z) with 95 % BCa bootstrap intervals; a
# difference is called measurable only when its interval excludes 0 (for FIDs: when the two intervals separate).
# There is **one training seed** per run, so these intervals cover the evaluation sample, not training noise.

# %%
import sys
REPO = "vae-report/vae-report"  # GitHub OWNER/NAME of this repository (the Colab badge names it too: tools/set_repo.py)
if "google.colab" in sys.modules:  # on Colab: install vaelib (and its pinned-free dependencies) first
    # %pip install -q "vaelib @ git+https://github.com/{REPO}"

# %% tags=["parameters"]
profile = None  # "smoke" or "full"; None: $VAELIB_PROFILE, else "full"
author = ""  # optional watermark on figures
overrides = {}  # settings to change, e.g. {"perceptual": 20.0}; unknown names are rejected (the settings are printed below)

# %%
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from vaelib import data, experiments, fid, metrics, plots, report, store, train
from vaelib.data import to_float

t_start = time.perf_counter()
P = experiments.settings("07_sharp_vae", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
DEVICE = train.resolve_device(None)
configs = experiments.runs(P)
DATASET = configs[0].dataset
net = fid.perceptual_network(DATASET, DEVICE, epochs=P.classifier_epochs, n_train=P.classifier_n_train, seed=P.perceptual_seed)
PERC = net.name  # in every title and table that involves the perceptual loss
VARIANTS = {(False, False): "pixel only", (True, False): "+ perceptual", (True, True): "+ perceptual + PatchGAN"}
PIX, PER, GAN = VARIANTS.values()
runs = {(VARIANTS[bool(c.perceptual), bool(c.adversarial)], c.latent_dim): train.train_or_load(c, perceptual_net=net)
        for c in configs}
variants, sizes = list(dict.fromkeys(v for v, _ in runs)), sorted({z for _, z in runs})
first = runs[PIX, sizes[0]]
prov = first.data.train.provenance
DATA = data.describe(first.data.train)  # in the title of every figure made from these images
for (v, z), run in runs.items():
    print(f"{v}, z = {z}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]}; "
          f"{run.metrics['epochs_run']} epochs, {run.metrics['steps']} steps, {run.metrics['train_seconds']:.0f} s of training)")
print(f"data: {prov['source']} ({prov['path']}) {prov.get('note', '')}")
print(f"train / validation / test images per run: {len(first.data.train):,} / {len(first.data.val):,} / {len(first.data.test):,}")
print(f"perceptual network: {PERC}; device {DEVICE}")

# %% [markdown]
# ## The networks, the loss weights and the training rule
#
# The FID classifier (seed `seed`) and, when VGG16 is not available offline, the perceptual network's classifier
# (seed `perceptual_seed`) are two classifiers trained separately with the same recipe (chapter 05's), so that the
# perceptual loss does not optimise the very features the FID measures. The table gives the loss terms per image
# (training running means) in the first and the last epoch: the perceptual term's share of the reconstruction
# term shows that its weight is not negligible, and the adaptive weight shows how strongly the PatchGAN pushes.

# %%
clf = fid.domain_classifier(DATASET, DEVICE, epochs=P.classifier_epochs, n_train=P.classifier_n_train, seed=P.seed)
perc_clf = (fid.domain_classifier(DATASET, DEVICE, epochs=P.classifier_epochs, n_train=P.classifier_n_train,
                                  seed=P.perceptual_seed) if PERC.startswith("domain perceptual") else None)
nets = pd.DataFrame([{"role": role, "network": c.name, "classifier seed": c.config.seed, "epochs": c.config.epochs,
                      "train images": c.metrics["n_train"], "test accuracy": round(c.metrics["test_accuracy"], 4)}
                     for role, c in (("FID features", clf), (f"perceptual loss ({PERC})", perc_clf)) if c is not None])
if perc_clf is None:
    nets.loc[len(nets)] = {"role": "perceptual loss", "network": PERC}
report.write_table(nets, "07_sharp_vae_networks", P.profile)
rows = []
for (v, z), r in runs.items():
    c, h0, h1 = r.config, r.history[0], r.history[-1]
    rows.append({"variant": v, "latent": z, "perceptual network": PERC if c.perceptual else "—",
                 "recon, epoch 1": h0["train_recon"], "recon, last": h1["train_recon"], "KL, last": h1["train_kl"],
                 "w·perceptual, epoch 1": c.perceptual * h0.get("train_perceptual", 0.0),
                 "w·perceptual, last": c.perceptual * h1.get("train_perceptual", 0.0),
                 "perceptual share, epoch 1": c.perceptual * h0.get("train_perceptual", 0.0) / h0["train_recon"],
                 "perceptual share, last": c.perceptual * h1.get("train_perceptual", 0.0) / h1["train_recon"],
                 "adaptive weight, last": h1.get("train_adv_weight", np.nan),
                 "generator term, last": h1.get("train_adversarial", np.nan),
                 "discriminator loss, last": h1.get("train_discriminator", np.nan),
                 "epochs": r.metrics["epochs_run"], "steps": r.metrics["steps"], "train seconds": r.metrics["train_seconds"]})
losses_table = pd.DataFrame(rows)
report.write_table(losses_table.round(4), "07_sharp_vae_losses", P.profile)
per_epoch = -(-len(first.data.train) // P.batch_size)  # optimiser steps per epoch
share = losses_table[losses_table["variant"] != PIX]
gan_rows = losses_table[losses_table["variant"] == GAN]
display(nets, losses_table.round(3), Markdown(f"""
**Training rule.** Every run trains {P.epochs} epochs of {per_epoch} steps ({P.epochs * per_epoch:,} optimiser steps,
batch {P.batch_size}, Adam lr {P.lr:g}) on {len(first.data.train):,} images ({DATA}) and keeps the last epoch's weights;
U-Net widths {P.channels[0]} (28×28, 14×14) and {P.channels[1]} (7×7). The perceptual weight is {P.perceptual:g}: in
the first epoch the weighted perceptual term is {100 * share['perceptual share, epoch 1'].min():.1f}–{100 * share['perceptual share, epoch 1'].max():.1f} %
of the reconstruction term and in the last {100 * share['perceptual share, last'].min():.1f}–{100 * share['perceptual share, last'].max():.1f} %.
The discriminator starts after {P.adv_warmup} steps (epoch {P.adv_warmup // per_epoch + 1} of {P.epochs}); its generator term is
weighted by {P.adversarial:g} × the adaptive weight, whose last-epoch mean is {gan_rows['adaptive weight, last'].min():.3g}–{gan_rows['adaptive weight, last'].max():.3g}
(it makes the adversarial gradient at the decoder's last layer {P.adversarial:g} × that of the other terms).
"""))

# %% [markdown]
# ## Metrics tracking: MSE, SSIM and PSNR per epoch on train and test (seed 001)
#
# After every epoch each run reconstructs (from μ) `eval_n` fixed training images and `eval_n` test images;
# solid lines are train, dashed are test. One figure per latent size, a colour per variant.

# %%
tracking = {}
for z in sizes:
    fig = plots.curves({v: runs[v, z].history for v in variants}, ("mse", "ssim", "psnr"),
                       {"train_eval_": "train", "test_": "test"},
                       title=f"z = {z}: reconstruction quality per epoch ({P.eval_n:,} train and test images at most; "
                             f"perceptual: {PERC}; {DATA})")
    tracking[z] = plots.save_fig(fig, FIG / f"metrics_tracking_z{z}.png", author=author)
    display(fig)

# %% [markdown]
# ### The loss terms of the + perceptual + PatchGAN runs
#
# Training running means per epoch: reconstruction and KL (nats per image), the perceptual distance (before
# its weight), the generator's hinge term, the adaptive weight (0 before the discriminator starts) and the
# discriminator's hinge loss (2 when it cannot tell real from generated).

# %%
fig = plots.curves({f"z = {z}": runs[GAN, z].history for z in sizes},
                   ("recon", "kl", "perceptual", "adversarial", "adv_weight", "discriminator"), {"train_": "train"},
                   title=f"{GAN}: loss terms per epoch (perceptual: {PERC}; discriminator from step {P.adv_warmup}; {DATA})")
plots.save_fig(fig, FIG / "gan_loss_terms.png", author=author)
fig

# %% [markdown]
# ## Reconstruction and latent-space GIFs (seed 001), + perceptual + PatchGAN
#
# For the full variant at each latent size: the same test images over their reconstructions after every epoch,
# and the test images' μ after every epoch, coloured by digit (z = 2 as it is; larger latents projected on the two
# principal axes of a PCA fitted once on the final epoch's latents). Frame 0 is the untrained model. The stills
# show the first and last frames; the GIFs are in the figures folder. Kept in the result store, like chapter 02's.

# %%
recon_gifs = {z: plots.save_bytes(store.cached(plots.reconstruction_gif, runs[GAN, z], fps=P.gif_fps,
                                               title=f"z = {z} · {GAN} ({PERC}) · {DATA}", author=author),
                                  FIG / f"reconstruction_z{z}.gif") for z in sizes}
latent_gifs = {z: plots.save_bytes(store.cached(plots.latent_gif, runs[GAN, z], fps=P.gif_fps,
                                                title=f"z = {z} · {GAN} ({PERC}) · {DATA}", author=author),
                                   FIG / f"latent_z{z}.gif") for z in sizes}
fig = plots.preview([*recon_gifs.values(), *latent_gifs.values()],
                    labels=[f"{kind} z = {z}" for kind, g in (("reconstruction", recon_gifs), ("latent", latent_gifs)) for z in g])
fig.suptitle(f"GIFs of the {GAN} runs, first and last frames (perceptual: {PERC}; {DATA})")
plots.save_fig(fig, FIG / "gifs_preview.png", author=author)
gif_table = pd.DataFrame([{"latent": z, "variant": GAN, "kind": kind, **plots.gif_info(path)}
                          for kind, paths in (("reconstruction", recon_gifs), ("latent", latent_gifs)) for z, path in paths.items()])
gif_table["MB"] = (gif_table["bytes"] / 2**20).round(2)
report.write_table(gif_table, "07_sharp_vae_gifs", P.profile)
display(gif_table)
fig

# %% [markdown]
# ## The three variants side by side
#
# Test images (top row, a class-stratified set) and their reconstructions from μ by every run; then prior
# samples, the same z ~ N(0, I) for the three variants of a latent size.

# %%
test = first.data.test
x_show = to_float(test.images[train.snapshot_index(test, len(test))[:P.n_show]])  # class round-robin order
tiles = [x_show] + [runs[v, z].model.reconstruct(x_show.to(DEVICE)).cpu() for z in sizes for v in variants]
fig = plots.image_grid(torch.cat(tiles), nrow=P.n_show, row_labels=["test images"] + [f"z = {z} · {v}" for z in sizes for v in variants],
                       title=f"reconstructions from μ\nperceptual: {PERC}\n{DATA}")
plots.save_fig(fig, FIG / "reconstructions.png", author=author)
fig

# %% [markdown]
# ## The ablation, measured
#
# Reconstructions from μ of all test images: MSE, PSNR, SSIM and sharpness. Prior samples: `n_eval` images per
# run (z ~ N(0, I), one generator seed, so the same z across variants), their sharpness, and their FID against
# `n_eval` test images with the domain classifier's features, with a 95 % basic bootstrap interval over the
# samples (`fid.fid_infinity`'s `fid_at_max_ci`, `n_boot` resamples); the real-vs-real floor is `n_eval` real
# training images against the same test images. Sharpness of the real test images is the level to aim for
# (higher is sharper; more than the real images' would be noise, not detail).

# %%
x_test = to_float(test.images)
n = min(P.n_eval, len(test))
x_ref = to_float(data.take(test, n, seed=P.seed).images)  # the FID reference: n test images
x_floor = to_float(data.take(first.data.train, n, seed=P.seed).images)  # real training images: the floor
ref_feats = store.cached(fid.features, clf, x_ref)
floor = store.cached(fid.fid_infinity, ref_feats, store.cached(fid.features, clf, x_floor), [n // 2, n], 1, P.seed, P.n_boot)
gen = {z: torch.Generator().manual_seed(P.seed) for z in sizes}
per_image, samples, fids = {}, {}, {}
for (v, z), r in runs.items():
    rec = r.model.reconstruct(x_test.to(DEVICE)).cpu()
    samples[v, z] = r.model.sample(n, generator=torch.Generator().manual_seed(P.seed)).cpu()  # same z for every variant
    per_image[v, z] = {"mse": metrics.mse(rec, x_test).numpy(), "psnr": metrics.psnr(rec, x_test).numpy(),
                       "ssim": metrics.ssim(rec, x_test).numpy(), "sharp_rec": metrics.sharpness(rec).numpy(),
                       "sharp_prior": metrics.sharpness(samples[v, z]).numpy()}
    fids[v, z] = store.cached(fid.fid_infinity, ref_feats, store.cached(fid.features, clf, samples[v, z]), [n // 2, n], 1,
                              P.seed, P.n_boot)
real_sharp = metrics.sharpness(x_test).numpy()
FIDCOL = f"FID vs test ({clf.name}, N = {n:,})"
rows = [{"latent": z, "variant": v, "perceptual network": PERC if runs[v, z].config.perceptual else "—",
         "MSE (from μ)": m["mse"].mean(), "PSNR dB (from μ)": m["psnr"].mean(), "SSIM (from μ)": m["ssim"].mean(),
         "sharpness of reconstructions": m["sharp_rec"].mean(), "sharpness of prior samples": m["sharp_prior"].mean(),
         FIDCOL: fids[v, z]["fid_at_max"], "FID low": fids[v, z]["fid_at_max_ci"][0], "FID high": fids[v, z]["fid_at_max_ci"][1]}
        for (v, z), m in per_image.items()]
rows.append({"latent": "—", "variant": "real test images", "perceptual network": "—", "sharpness of reconstructions": real_sharp.mean(),
             "sharpness of prior samples": real_sharp.mean(), FIDCOL: floor["fid_at_max"], "FID low": floor["fid_at_max_ci"][0],
             "FID high": floor["fid_at_max_ci"][1]})
ablation = pd.DataFrame(rows)
report.write_table(ablation.round(4), "07_sharp_vae_ablation", P.profile)
gap = max(abs(ablation.set_index(["variant", "latent"]).loc[(v, z), "MSE (from μ)"] - r.metrics["test_mse"]) for (v, z), r in runs.items())
print(f"check: per-image MSE means agree with the runs' own test MSE to {gap:.2g}")
ablation.round(4)

# %%
bars = pd.DataFrame([{"data": f"z = {z}", "model": v, "sampler": "—", "kind": "model", "extractor": clf.name, "n": n,
                      "fid": fids[v, z]["fid_at_max"]} for (v, z) in runs]
                    + [{"data": "real", "model": "training vs test images (floor)", "sampler": "—", "kind": "baseline",
                        "extractor": clf.name, "n": n, "fid": floor["fid_at_max"]}])
fig = plots.fid_bar_chart(bars, title=f"FID of prior samples against test images (lower is better)\nperceptual: {PERC}; {DATA}")
plots.save_fig(fig, FIG / "fid.png", author=author)
fig

# %%
fig = plots.sampler_grids({f"z = {z}": {v: samples[v, z][:P.n_samples] for v in variants} for z in sizes},
                          scores={(f"z = {z}", v): f" · FID {fids[v, z]['fid_at_max']:.3g}" for v, z in runs}, nrow=8,
                          title=f"prior samples, the same z per latent size\nperceptual: {PERC}; {DATA}")
plots.save_fig(fig, FIG / "prior_samples.png", author=author)
fig

# %% [markdown]
# ### Which differences are measurable
#
# Each variant against pixel only at the same latent size: the mean paired difference (same test images; for
# prior samples the same z) with its 95 % BCa bootstrap interval (`metrics.bootstrap_ci`, `n_boot` resamples),
# and the two FIDs with their intervals.

# %%
CI = "{:+.4f} [{:+.4f}, {:+.4f}]"
KEYS = {"sharp_prior": "sharpness of prior samples", "sharp_rec": "sharpness of reconstructions", "mse": "MSE (from μ)",
        "ssim": "SSIM (from μ)"}
diff, verdicts = [], {}
for z in sizes:
    for v in variants[1:]:
        row = {"latent": z, "variant − pixel only": v, "perceptual network": PERC}
        for k, name in KEYS.items():
            d = per_image[v, z][k] - per_image[PIX, z][k]
            lo, hi = metrics.bootstrap_ci(np.mean, d, n_resamples=P.n_boot, seed=P.seed)
            row[f"Δ {name}"] = CI.format(d.mean(), lo, hi)
            verdicts[v, z, k] = (d.mean(), lo, hi, "higher" if lo > 0 else "lower" if hi < 0 else "no measurable difference")
        a, b = fids[PIX, z], fids[v, z]
        fid_way = ("lower" if b["fid_at_max_ci"][1] < a["fid_at_max_ci"][0] else
                   "higher" if b["fid_at_max_ci"][0] > a["fid_at_max_ci"][1] else "indistinguishable (intervals overlap)")
        verdicts[v, z, "fid"] = fid_way
        row.update({"FID pixel only": "{:.3g} [{:.3g}, {:.3g}]".format(a["fid_at_max"], *a["fid_at_max_ci"]),
                    "FID variant": "{:.3g} [{:.3g}, {:.3g}]".format(b["fid_at_max"], *b["fid_at_max_ci"]),
                    "FID of the variant": fid_way,
                    "samples sharper": verdicts[v, z, "sharp_prior"][3], "reconstructions sharper": verdicts[v, z, "sharp_rec"][3]})
        diff.append(row)
diffs = pd.DataFrame(diff)
report.write_table(diffs, "07_sharp_vae_differences", P.profile)
diffs

# %%
sharper = {z: verdicts[GAN, z, "sharp_prior"][1] > 0 for z in sizes}  # interval of the paired difference above 0
fid_ok = {z: verdicts[GAN, z, "fid"] != "higher" for z in sizes}  # equal (overlapping intervals) or lower
holds = [z for z in sizes if sharper[z] and fid_ok[z]]
fmt = {z: (f"z = {z}: Δ sharpness of prior samples {CI.format(*verdicts[GAN, z, 'sharp_prior'][:3])} "
           f"(pixel only {per_image[PIX, z]['sharp_prior'].mean():.4f}, {GAN} {per_image[GAN, z]['sharp_prior'].mean():.4f}), "
           f"FID {fids[PIX, z]['fid_at_max']:.3g} [{fids[PIX, z]['fid_at_max_ci'][0]:.3g}, {fids[PIX, z]['fid_at_max_ci'][1]:.3g}] → "
           f"{fids[GAN, z]['fid_at_max']:.3g} [{fids[GAN, z]['fid_at_max_ci'][0]:.3g}, {fids[GAN, z]['fid_at_max_ci'][1]:.3g}] "
           f"({verdicts[GAN, z, 'fid']})") for z in sizes}
zs = ", ".join(map(str, sizes))
if len(holds) == len(sizes):
    claim = (f"The {GAN} variant is measurably sharper than pixel only at equal or better FID at every latent size ({zs}): "
             + "; ".join(fmt.values()) + ".")
elif holds:
    claim = (f"The {GAN} variant is measurably sharper than pixel only at equal or better FID only at z = "
             f"{', '.join(map(str, holds))}, not at z = {', '.join(str(z) for z in sizes if z not in holds)}: " + "; ".join(fmt.values()) + ".")
else:
    claim = (f"The {GAN} variant is not measurably sharper than pixel only at equal or better FID at any latent size ({zs}): "
             + "; ".join(fmt.values()) + ".")
rec_text = "; ".join(f"z = {z}: {CI.format(*verdicts[GAN, z, 'sharp_rec'][:3])} ({verdicts[GAN, z, 'sharp_rec'][3]})" for z in sizes)
per_text = "; ".join(f"z = {z}: sharpness of samples {CI.format(*verdicts[PER, z, 'sharp_prior'][:3])}, SSIM "
                     f"{CI.format(*verdicts[PER, z, 'ssim'][:3])}, FID {verdicts[PER, z, 'fid']}" for z in sizes)
fid_text = "; ".join(f"z = {z}: " + ", ".join(f"{v} {fids[v, z]['fid_at_max']:.3g}" for v in variants) for z in sizes)
ssim_text = "; ".join(f"z = {z}: " + ", ".join(f"{v} {per_image[v, z]['ssim'].mean():.3f}" for v in variants) for z in sizes)
display(Markdown(f"""
**The seed's claim, measured.** {claim}

Sharpness of the reconstructions from μ, {GAN} − pixel only: {rec_text}. Real test images have sharpness
{real_sharp.mean():.4f}. The perceptual loss alone ({PERC}) against pixel only: {per_text}.

FIDs of prior samples against {n:,} test images ({clf.name}; real-vs-real floor {floor['fid_at_max']:.3g}
[{floor['fid_at_max_ci'][0]:.3g}, {floor['fid_at_max_ci'][1]:.3g}]): {fid_text}. SSIM of reconstructions from μ: {ssim_text}.
One training seed per run: these intervals cover the test images and prior samples drawn, not a second training.
"""))

# %% [markdown]
# ## For the report
#
# The chapter's findings (built from the numbers above), where it differs from seed 001, and the caveats; they
# reach `reports/REPORT.md` through this chapter's metrics file.

# %%
wall = time.perf_counter() - t_start
lo_z, hi_z = sizes[0], sizes[-1]
findings = [
    claim,
    f"Sharpness of test reconstructions from μ, {GAN} − pixel only (paired, 95 % BCa interval): {rec_text}; real test "
    f"images: {real_sharp.mean():.4f}.",
    f"Domain-classifier FID of prior samples against {n:,} test images ({clf.name}; floor {floor['fid_at_max']:.3g}): {fid_text}.",
    f"Reconstruction fidelity (SSIM from μ): {ssim_text}; the perceptual loss alone ({PERC}) against pixel only: {per_text}.",
    f"Loss weights: the perceptual term (weight {P.perceptual:g}) is {100 * share['perceptual share, epoch 1'].min():.1f}–"
    f"{100 * share['perceptual share, epoch 1'].max():.1f} % of the reconstruction term in the first epoch and "
    f"{100 * share['perceptual share, last'].min():.1f}–{100 * share['perceptual share, last'].max():.1f} % in the last; the "
    f"PatchGAN starts at step {P.adv_warmup} of {P.epochs * per_epoch:,}, weighted {P.adversarial:g} × an adaptive weight of "
    f"{gan_rows['adaptive weight, last'].min():.3g}–{gan_rows['adaptive weight, last'].max():.3g} in the last epoch.",
]
display(Markdown("\n".join(f"- {f}" for f in findings)))

# %%
SEED_001 = dict(latents=[2, 4, 16], perceptual="VGG16 (ImageNet), LPIPS-style", data="MNIST")  # from seed report 001
differences = [
    f"Ablation: seed 001 trains one model per latent size with both extra losses and asserts sharper outputs; we train "
    f"pixel only, + perceptual and + perceptual + PatchGAN at z = {zs} with the same data, steps and seed, and measure "
    f"sharpness and FID with intervals.",
    f"Data: seed 001 uses {SEED_001['data']}; we train on {DATA} ({len(first.data.train):,} training images, "
    f"{len(first.data.val):,} held out, {len(test):,} test images).",
    f"Perceptual network: seed 001 uses {SEED_001['perceptual']}; here it is {PERC}"
    + (" — VGG16's ImageNet weights are not available offline, so the conv blocks of an MNIST classifier (trained with "
       "another seed than the FID classifier) stand in." if PERC.startswith("domain perceptual") else "."),
    f"Network size and budget: U-Net widths {P.channels[0]}/{P.channels[1]} and {P.epochs * per_epoch:,} optimiser steps per run "
    f"({P.epochs} epochs), sized so that the 9 trainings fit in about 15 minutes on a 2-core CPU; the library's default "
    f"widths are 32/64 (the `paper` profile, for a GPU).",
    "Metrics: seed 001 plots MSE, SSIM and PSNR without saying on what; here they are per-image means over the test "
    "images of reconstructions from μ, tracked per epoch on fixed train and test images.",
]
caveats = [c for c in [data.caveat(first.data.train)] if c] + [
    "Chapter 07 trains one seed per run: its intervals are over test images and prior samples, not over trainings.",
] + ([f"The perceptual loss ({PERC}) and the FID ({clf.name}) use two MNIST classifiers of one recipe; FID may still "
      "favour the perceptual variants."] if perc_clf is not None else [])
print(f"chapter wall time {wall:.0f} s ({P.profile} profile, device {DEVICE}); training "
      f"{sum(r.metrics['train_seconds'] for r in runs.values()):.0f} s of it when nothing was cached")

# %%
metrics_file = report.write_metrics(P.stem, {
    "data_source": prov["source"], "profile": P.profile, "device": str(DEVICE), "wall_seconds": wall,
    "perceptual_network": PERC, "fid_extractor": clf.name, "n_eval": n,
    "settings": {k: v for k, v in vars(P).items() if k not in ("stem", "profile")},
    "runs": {f"{v} z={z}": r.key[:12] for (v, z), r in runs.items()},
    "train_seconds": {f"{v} z={z}": r.metrics["train_seconds"] for (v, z), r in runs.items()},
    "losses": losses_table.to_dict("records"), "ablation": ablation.to_dict("records"), "differences": diffs.to_dict("records"),
    "floor": {"fid": floor["fid_at_max"], "ci": floor["fid_at_max_ci"]}, "claim_holds_at": holds,
    "gifs": gif_table.to_dict("records"),
    "report": report.chapter_summary(f"Against blurry VAEs: pixel / + perceptual / + PatchGAN at z = {zs}", findings,
                                     FIG / "reconstructions.png", "07_sharp_vae_ablation", differences=differences,
                                     caveats=caveats, profile=P.profile)}, P.profile)
