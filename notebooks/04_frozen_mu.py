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
# # 04 · Frozen μ: sampling around the origin with a chosen σ
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/04_frozen_mu.ipynb)
#
# Seed report `003`, section 9, on the latent-16 Fashion-MNIST VAE of chapter 03 (the same run,
# loaded from the result store). We decode 64 samples for z ~ N(0, I) and for μ frozen at 0 with
# z = σ·ε, ε ~ N(0, I), for several σ, and measure each set's diversity (mean pairwise L2 distance)
# over repeated draws. Note that σ = 1 with μ = 0 *is* N(0, I): the two conditions differ only by
# the random draw, which the repeated draws make visible.
#
# Then, for test images, decoding the posterior mean μ against decoding one sampled
# z = μ + σ(x)·ε — and which one each reconstruction number in this report uses.

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
import torch
from IPython.display import Markdown, display

from vaelib import experiments, losses, metrics, plots, report, train
from vaelib.data import per_class, take, to_float

P = experiments.settings("04_frozen_mu", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
run, = [train.train_or_load(cfg) for cfg in experiments.runs(P)]  # chapter 03's model: same config, same stored run
label, model = run.config.label, run.model
prov = run.data.train.provenance
print(f"{label}: {'loaded from' if run.cached else 'trained into'} the result store (key {run.key[:12]})")
print(f"data: {prov['source']} ({prov['path']})")
conditions = {"z ~ N(0, I)": 1.0, **{f"μ = 0, σ = {s:g}": float(s) for s in P.sigmas}}

# %% [markdown]
# ## 64 samples per condition
#
# Every condition is drawn `n_draws` times, each draw from its own seed (so two conditions with the
# same σ still get different samples); the grids show draw 0.

# %%
rows, grids = [], {}
for c, (name, sigma) in enumerate(conditions.items()):
    for draw in range(P.n_draws):
        g = torch.Generator().manual_seed(P.seed * 100_003 + 1_000 * c + draw)
        x = model.sample(P.n_samples, generator=g, scale=sigma).cpu()  # z = 0 + σ·ε
        grids.setdefault(name, x)
        rows.append({"condition": name, "σ": sigma, "draw": draw, "diversity": metrics.diversity(x),
                     "sharpness": float(metrics.sharpness(x).mean())})
draws = pd.DataFrame(rows)
fig = plots.sampler_grids({label: grids}, nrow=8, title="decoded samples per condition (draw 0)")
plots.save_fig(fig, FIG / "frozen_mu_samples.png", author=author)
fig

# %% [markdown]
# ## Diversity per condition, over repeated draws

# %%
summary = (draws.groupby("condition", sort=False)
           .agg(σ=("σ", "first"), draws=("draw", "count"), diversity_mean=("diversity", "mean"),
                diversity_std=("diversity", "std"), sharpness_mean=("sharpness", "mean"))
           .reset_index().round(4))
report.write_table(summary, "04_frozen_mu_diversity", P.profile)
summary

# %%
fig = plots.draws_plot(draws, "diversity", title=f"diversity of {P.n_samples} samples: {P.n_draws} draws per condition")
plots.save_fig(fig, FIG / "frozen_mu_diversity.png", author=author)
fig

# %% [markdown]
# ## Test images decoded from μ and from a sampled z
#
# One z = μ + σ(x)·ε per image, ε from a seeded generator; the same decodings give the table below.

# %%
xr = to_float(per_class(run.data.test, 2, seed=P.seed).images)[: P.n_recon].to(model.device)
with torch.no_grad():
    logits_z, mu, _ = model(xr, generator=torch.Generator(device=model.device).manual_seed(P.seed))
    shown = torch.cat([xr, torch.sigmoid(model.decode(mu)), torch.sigmoid(logits_z)]).cpu()
fig = plots.image_grid(shown, nrow=len(xr), row_labels=["test image", "decoded from μ", "decoded from sampled z"])
plots.save_fig(fig, FIG / "mu_vs_sampled.png", author=author)
fig

# %%
x = to_float(take(run.data.test, P.n_test, seed=P.seed).images, model.device)
with torch.no_grad():
    logits_z, mu, logvar = model(x, generator=torch.Generator(device=model.device).manual_seed(P.seed))
    decoded = {"decoded from μ": model.decode(mu), "decoded from sampled z": logits_z}
rows = []
for name, logits in decoded.items():  # per-image numbers, averaged: nats for the ELBO terms (Bernoulli)
    terms, rec = losses.elbo_terms(logits, x, mu, logvar), torch.sigmoid(logits)
    rows.append({"decoding": name, "images": len(x), "reconstruction (nats)": terms["recon"].mean().item(),
                 "KL (nats)": terms["kl"].mean().item(), "MSE": metrics.mse(rec, x).mean().item(),
                 "PSNR dB": metrics.psnr(rec, x).mean().item(), "SSIM": metrics.ssim(rec, x).mean().item()})
recon_table = pd.DataFrame(rows).round(4)
report.write_table(recon_table, "04_frozen_mu_reconstruction", P.profile)
recon_table

# %%
s = summary.set_index("condition")
base, same = "z ~ N(0, I)", f"μ = 0, σ = {1:g}"
r = recon_table.set_index("decoding")
lines = [f"- {c}: diversity {s.loc[c, 'diversity_mean']:.2f} ± {s.loc[c, 'diversity_std']:.2f}" for c in s.index]
gap = (s.loc[base, "diversity_mean"] - s.loc[same, "diversity_mean"]) if same in s.index else float("nan")
noise = s.loc[base, "diversity_std"]
frozen = s[s.index != base].sort_values("σ")["diversity_mean"]
grows = bool((frozen.diff().dropna() > 0).all())
display(Markdown("\n".join([
    f"Mean pairwise L2 distance of {P.n_samples} decoded samples (mean ± std over {P.n_draws} draws):", *lines, "",
    f"With μ frozen at 0, diversity {'grows with σ at every step' if grows else 'does not grow monotonically with σ'} "
    f"({frozen.iloc[0]:.2f} at σ = {s.loc[frozen.index[0], 'σ']:g} to {frozen.iloc[-1]:.2f} at σ = "
    f"{s.loc[frozen.index[-1], 'σ']:g}): near the origin every z decodes to much the same average garment. "
    f"z ~ N(0, I) and μ = 0, σ = 1 are the same distribution; their mean diversities differ by {gap:+.2f}, "
    f"against a draw-to-draw standard deviation of {noise:.2f}"
    + (" — so the seed's placing of the baseline 'between σ = 0.5 and σ = 1.0' is sampling noise." if abs(gap) < 2 * noise
       else " — more than twice the draw-to-draw noise, which a shared distribution should not give."), "",
    f"**Which decoding each number uses.** On {int(r.iloc[0]['images']):,} test images, decoding μ gives MSE "
    f"{r.loc['decoded from μ', 'MSE']:.4f}, SSIM {r.loc['decoded from μ', 'SSIM']:.3f} and a reconstruction term of "
    f"{r.loc['decoded from μ', 'reconstruction (nats)']:.1f} nats; one sampled z gives MSE "
    f"{r.loc['decoded from sampled z', 'MSE']:.4f}, SSIM {r.loc['decoded from sampled z', 'SSIM']:.3f} and "
    f"{r.loc['decoded from sampled z', 'reconstruction (nats)']:.1f} nats. In this report every MSE, PSNR and SSIM "
    f"is measured on the reconstruction from μ; every −ELBO and its reconstruction term use a sampled z (a fixed "
    f"seed), because that is the quantity the ELBO bounds.",
])))

# %% [markdown]
# ## For the report
#
# The chapter's findings (built from the numbers above) and where it differs from seed 003 §9; they
# reach `reports/REPORT.md` through this chapter's metrics file.

# %%
lo_s, hi_s = frozen.index[0], frozen.index[-1]
fz = s.loc[frozen.index]  # the frozen-μ conditions by σ: is each step's gap wider than the two s.d.s together?
apart = bool((fz["diversity_mean"].diff().abs() > fz["diversity_std"] + fz["diversity_std"].shift()).iloc[1:].all())
findings = [
    f"With μ frozen at 0, the diversity of {P.n_samples} decoded samples "
    f"{'grows with σ at every step' if grows else 'does not grow monotonically with σ'}: "
    f"{s.loc[lo_s, 'diversity_mean']:.2f} ± {s.loc[lo_s, 'diversity_std']:.2f} at σ = {s.loc[lo_s, 'σ']:g} to "
    f"{s.loc[hi_s, 'diversity_mean']:.2f} ± {s.loc[hi_s, 'diversity_std']:.2f} at σ = {s.loc[hi_s, 'σ']:g} "
    f"(mean ± s.d. over {P.n_draws} draws; "
    f"{'the intervals of every two neighbouring σ are apart' if apart else f'not every step is real: some neighbouring intervals overlap at {P.n_draws} draws'}).",
    *([f"z ~ N(0, I) ({s.loc[base, 'diversity_mean']:.2f} ± {s.loc[base, 'diversity_std']:.2f}) and μ = 0, σ = 1 "
      f"({s.loc[same, 'diversity_mean']:.2f} ± {s.loc[same, 'diversity_std']:.2f}) are one distribution; their means differ "
      f"by {gap:+.2f}, " + (f"indistinguishable at {P.n_draws} draws (under twice the draw-to-draw s.d. of {noise:.2f})."
                           if abs(gap) < 2 * noise else f"more than twice the draw-to-draw s.d. of {noise:.2f}.")]
      if same in s.index else []),  # only when σ = 1 is among the conditions
    f"On {int(r.iloc[0]['images']):,} test images, decoding μ gives MSE {r.loc['decoded from μ', 'MSE']:.4f} and SSIM "
    f"{r.loc['decoded from μ', 'SSIM']:.3f}; one sampled z gives MSE {r.loc['decoded from sampled z', 'MSE']:.4f} and "
    f"SSIM {r.loc['decoded from sampled z', 'SSIM']:.3f}. Every MSE, PSNR and SSIM in this report is measured from μ.",
]
differences = [
    f"Seed 003 decoded one draw per condition and placed z ~ N(0, I) between σ = 0.5 and σ = 1.0 from it; we draw every "
    f"condition {P.n_draws} times, each from its own seed, and compare means against the draw-to-draw spread.",
    f"The model is chapter 03's latent-{run.config.latent_dim} conv VAE, trained on {len(run.data.train):,} images with "
    f"{len(run.data.val):,} held out for validation; seed 003's was trained on the whole training split.",
]
display(Markdown("\n".join(f"- {f}" for f in findings)))

# %%
metrics_file = report.write_metrics(P.stem, {
    "label": label, "run": run.key[:12], "conditions": conditions, "diversity": summary.to_dict("records"),
    "reconstruction": recon_table.to_dict("records"),
    "report": report.chapter_summary("Frozen μ: sampling around the origin with a chosen σ", findings,
                                     FIG / "frozen_mu_diversity.png", "04_frozen_mu_diversity",
                                     differences=differences, profile=P.profile)}, P.profile)
