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
# # 01 · A variational autoencoder with a 2-D latent space (MNIST)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/01_vae.ipynb)
#
# Seed report `004`: an MLP VAE 784-400-2 trained on MNIST for 20 epochs with Adam (lr 1e-3,
# batch 128), a Bernoulli decoder (binary cross-entropy with logits) and the analytic KL to N(0, I).
# A 2-D latent space can be looked at directly: we plot the test set's posterior means and decode
# a grid of latent points (the *manifold*).
#
# **Units.** Losses are in nats per image (summed over the 784 pixels, averaged over images).
# The −ELBO uses a sampled z; MSE, PSNR and SSIM are measured on the reconstruction decoded from
# the posterior mean μ.
#
# **Training length.** The seed's epoch count is the least budget: on small data the budget is
# raised to a number of optimiser steps, and training may stop early once the validation −ELBO stops improving
# (the rule, with this run's values, is stated below).

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
from sklearn.metrics import silhouette_samples

from vaelib import data, experiments, plots, report, train
from vaelib.data import per_class, to_float
from vaelib.metrics import ssim

P = experiments.settings("01_vae", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
SEED_EPOCHS, SEED_N_TRAIN, SEED_N_TEST = 20, 60_000, 10_000  # seed 004: full MNIST (torchvision), 20 epochs
cfg, = experiments.runs(P)
label = cfg.label
run = train.train_or_load(cfg)
m = run.metrics
prov = run.data.train.provenance
TAG = data.describe(run.data.train)  # what the data are, in every figure title
print(f"{label}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]})")
print(f"data: {prov['source']} ({prov['path']}) {prov.get('note', '')}")

# %% [markdown]
# ## Training: the rule and the curves

# %%
h, conv = run.history, train.convergence(run)  # how training ended: epoch cap, early stop, flattened or not
TAIL, FLAT = train.TAIL, train.FLAT  # its rule: the last TAIL of epochs moved val −ELBO by < FLAT of its fall
per_epoch, budget = -(-m["n_train"] // cfg.batch_size), conv["epoch_cap"]
display(Markdown(
    f"**Training rule.** Adam (lr {cfg.lr:g}, batch {cfg.batch_size}) for the seed's {cfg.epochs} epochs" + (
        f", raised to at least {cfg.min_steps:,} optimiser steps because the data are small: {m['n_train']:,} "
        f"training images make {per_epoch} steps per epoch, so the budget is {budget} epochs "
        f"({budget * per_epoch:,} steps). " if budget > cfg.epochs else
        f" ({budget * per_epoch:,} steps of {per_epoch} per epoch on {m['n_train']:,} training images; the floor "
        f"of {cfg.min_steps:,} steps does not raise it). ") + (
        f"Training stops early once the validation −ELBO has not improved for {cfg.patience} epochs, and the "
        "weights of the best validation epoch are kept. " if cfg.patience else
        "Early stopping is off: the last epoch's weights are kept. ") +
    f"This run {'stopped early after' if conv['stopped_early'] else 'ran all'} {conv['epochs_run']} epochs "
    f"({conv['steps']:,} steps); its best validation epoch was {conv['best_epoch']}. Over its last "
    f"{conv['tail_epochs']} epoch(s) ({100 * TAIL:.0f} %) the validation −ELBO changed by {conv['tail_change']:+.2f} "
    f"nats per image, {100 * conv['share_of_fall']:.1f} % of its fall since epoch 1: " + (
        f"under {100 * FLAT:.0f} %, so the curve had flattened." if conv["flat"] else
        f"more than {100 * FLAT:.0f} %, so the curve had not flattened.")))

# %%
fig = plots.curves({label: run.history}, ("total", "recon", "kl", "mse", "psnr", "ssim"),
                   {"train_": "train", "val_": "validation"}, title=f"{label}: train vs validation · {TAG}")
plots.save_fig(fig, FIG / "curves.png", author=author)
fig

# %% [markdown]
# ## Originals and reconstructions (two test images per class, decoded from μ; SSIM under each)

# %%
x = to_float(per_class(run.data.test, 2, seed=P.seed).images)
rec = run.model.reconstruct(x)
fig = plots.recon_rows(x, rec, captions=[f"{s:.2f}" for s in ssim(rec, x).tolist()],
                       title=f"top: test images · bottom: reconstructions from μ · {TAG}")
plots.save_fig(fig, FIG / "reconstructions.png", author=author)
fig

# %% [markdown]
# ## The latent space: test-set posterior means by class

# %%
z_test = run.model.latents(to_float(run.data.test.images))
fig = plots.latent_scatter(z_test, run.data.test.labels, run.data.test.classes,
                           title=f"test set μ ({len(z_test):,} images)\n{TAG}")
plots.save_fig(fig, FIG / "latent_scatter.png", author=author)
fig

# %% [markdown]
# ## The manifold: decoding a grid of Gaussian quantiles

# %%
fig = plots.manifold(run.model.generate, n=P.manifold_n, latent_dim=cfg.latent_dim,
                     title=f"{P.manifold_n}×{P.manifold_n} decoded grid over N(0, I) quantiles\nVAE trained on {TAG}")
plots.save_fig(fig, FIG / "manifold.png", author=author)
fig

# %% [markdown]
# ## Samples from the prior z ~ N(0, I)

# %%
samples = run.model.sample(P.n_samples, generator=torch.Generator().manual_seed(P.seed))
fig = plots.image_grid(samples, nrow=8, title=f"{P.n_samples} samples, z ~ N(0, I)\nVAE trained on {TAG}")
plots.save_fig(fig, FIG / "samples.png", author=author)
fig

# %% [markdown]
# ## Test metrics

# %%
table = pd.DataFrame([{
    "model": label, "data": prov["source"], "n_test": m["n_test"], "epochs run": m["epochs_run"],
    "best epoch": m["best_epoch"], "steps": m["steps"],
    "−ELBO (sampled z)": m["test_total"], "reconstruction (sampled z)": m["test_recon"], "KL": m["test_kl"],
    "MSE (from μ)": m["test_mse"], "PSNR dB (from μ)": m["test_psnr"], "SSIM (from μ)": m["test_ssim"],
}]).round(4)
report.write_table(table, "01_vae_metrics", P.profile)
table

# %% [markdown]
# ## Discussion

# %%
h0, hb = h[0], h[m["best_epoch"] - 1]
labels = run.data.test.labels.numpy()
per_class_sil = pd.Series(silhouette_samples(z_test.numpy(), labels), index=labels).groupby(level=0).mean()
best, worst, sil = per_class_sil.idxmax(), per_class_sil.idxmin(), per_class_sil.mean()
structure = ("no substantial" if sil <= 0.25 else "weak" if sil <= 0.5 else "reasonable" if sil <= 0.7 else "strong")
drop = 100 * (h0["train_total"] - hb["train_total"]) / h0["train_total"]
gap = hb["val_total"] - hb["train_total"]
bits = m["test_kl"] / np.log(2)
display(Markdown(f"""
Over {len(h)} epochs the training −ELBO fell from {h0['train_total']:.1f} nats per image to
{hb['train_total']:.1f} at epoch {m['best_epoch']}, the epoch with the lowest validation −ELBO, whose weights are
kept ({drop:.1f} % lower); there the validation −ELBO was {hb['val_total']:.1f} (a gap of {gap:+.1f} nats to
training). Of the test −ELBO of {m['test_total']:.1f} nats, {m['test_recon']:.1f} are reconstruction and
{m['test_kl']:.2f} are KL: with only two latent dimensions the code carries about {m['test_kl']:.1f} nats ≈
{bits:.1f} bits per image, so the decoder must fill in the rest — reconstructions are recognisable but blurred
(test SSIM {m['test_ssim']:.3f}, PSNR {m['test_psnr']:.1f} dB, MSE {m['test_mse']:.4f} from μ).
The silhouette of the test μ by digit is {sil:.2f} on average (1 = perfectly separated clusters, 0 = overlapping;
by Kaufman and Rousseeuw's bands, {structure} structure), per digit from {per_class_sil[worst]:.2f} (digit {worst})
to {per_class_sil[best]:.2f} (digit {best}); decoded points between clusters in the manifold look like blends of
two digits. Later chapters raise the latent size (02), change the data and β (03) and measure sample quality
with FID (05).
"""))

# %%
n_fit = m["n_train"] + m["n_val"]
caveats = [c for c in [data.caveat(run.data.train)] if c]  # the warning REPORT.md puts first
findings = [
    f"The 2-D MLP VAE reaches a test −ELBO of {m['test_total']:.1f} nats per image ({m['n_test']:,} test images): "
    f"{m['test_recon']:.1f} reconstruction and {m['test_kl']:.2f} KL, about {bits:.1f} bits carried by the code.",
    f"Reconstructions decoded from μ score test SSIM {m['test_ssim']:.3f}, PSNR "
    f"{m['test_psnr']:.1f} dB, MSE {m['test_mse']:.4f}.",
    f"The test μ show {structure} cluster structure by digit: mean silhouette {sil:.2f}, per digit from "
    f"{per_class_sil[worst]:.2f} (digit {worst}) to {per_class_sil[best]:.2f} (digit {best}).",
    f"Trained {conv['epochs_run']} epochs ({conv['steps']:,} steps; best validation epoch {conv['best_epoch']}); over "
    f"the last {100 * TAIL:.0f} % of epochs the validation −ELBO moved by {conv['tail_change']:+.2f} nats, "
    f"{100 * conv['share_of_fall']:.1f} % of its fall since epoch 1"
    + (f" (under {100 * FLAT:.0f} %: flattened)." if conv["flat"] else f" (over {100 * FLAT:.0f} %: not flattened)."),
]
display(Markdown("**For the report.**\n\n" + "\n".join(f"- {f}" for f in findings)))

# %%
differences = [
    *([f"Data: seed 004 uses torchvision's full MNIST ({SEED_N_TRAIN:,} training / {SEED_N_TEST:,} test images); "
       f"here MNIST comes from {prov['source']}: {n_fit:,} training images ({m['n_train']:,} fitted, {m['n_val']:,} "
       f"held out) and {m['n_test']:,} test images."] if (n_fit, m["n_test"]) != (SEED_N_TRAIN, SEED_N_TEST) else []),
    f"Validation: seed 004 has no validation split; here {100 * m['n_val'] / n_fit:.0f} % of the training split is "
    "held out (stratified, seeded) for the validation curves and early stopping.",
    f"Training length: seed 004 trains {SEED_EPOCHS} epochs; here {cfg.epochs} epochs" + (
        f" raised to at least {cfg.min_steps:,} optimiser steps ({budget} epochs on this data)" if budget > cfg.epochs
        else "") + f", stopped after {cfg.patience} epochs without a lower validation −ELBO with the best weights "
    f"kept: {len(h)} epochs run, best epoch {m['best_epoch']}.",
    "Measurements: seed 004 shows its training loss curve and pictures; here the −ELBO and its terms are nats per "
    "image on train, validation and test, with MSE, PSNR and SSIM of the reconstructions from μ and the silhouette "
    "of the test codes.",
    "Decoder output: seed 004 ends in a sigmoid and applies BCE to probabilities; ours outputs logits with "
    "BCE-with-logits, the same loss computed stably.",
]
metrics_file = report.write_metrics(P.stem, {
    "label": label, "run": run.key[:12], **m, "final_epoch": h[-1], "best_epoch_row": hb,
    "budget_epochs": budget, "val_change_last_10pct": conv["tail_change"], "val_change_share": conv["share_of_fall"],
    "convergence": conv,
    "silhouette_mean": float(sil), "silhouette_per_digit": {str(k): float(s) for k, s in per_class_sil.items()},
    "report": report.chapter_summary("A VAE with a 2-D latent space on MNIST", findings, FIG / "latent_scatter.png",
                                     "01_vae_metrics", differences=differences, caveats=caveats, profile=P.profile),
}, P.profile)
