"""The report's experiments as data: each chapter's settings per profile and the runs they define.

``CHAPTERS[stem]`` holds the chapter's settings for the ``full`` profile, what ``smoke`` (seconds per notebook,
for tests) and ``paper`` (full data sets, 5 training seeds, the seeds' epoch counts without step budgets or early
stopping, N = 10,000 for the FIDs: for a GPU or a cluster) change, and
its run templates. A run template fixes some ``RunConfig`` fields; every other field takes the
setting of the same name (with the template's ``prefix`` first), and a list-valued setting gives
one run per value (but ``classes``, ``hidden`` and ``channels`` are one value each). The setting ``seeds`` (a list)
gives one run per training seed, while ``seed`` stays the chapter's seed for its own draws; only the first seed's
runs keep training snapshots and per-epoch evaluation (``eval_n``), since the GIFs and curves show that seed. A profile only changes sizes, never code paths.

Training budgets (issue: models trained to convergence): ``epochs`` is the seed report's epoch count,
``min_steps`` raises it on small data (the 5,000-image MNIST sample gives ~30 optimiser steps per
epoch), ``patience`` stops once validation −ELBO has not improved for that many epochs and keeps the
best epoch (``train.epoch_budget``). With the full data sets the seeds' epochs apply. ``precision="auto"`` (the conv
VAEs of 02–04) trains under bfloat16 autocast where the hardware has it (``train.resolve_precision``: ~1.3× on a CPU
with AMX; the MLPs gain nothing and stay float32, as do 07 and 08). ``settings`` is what a
notebook's parameters cell feeds; ``run_table`` is what the CLI and any executor read.
"""
from __future__ import annotations

import dataclasses
import os
from types import SimpleNamespace
from typing import Any

from .errors import InputError
from .train import RunConfig

PROFILES = ("smoke", "full", "paper")
_RUN_FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
_FASHION = dict(dataset="fashion-mnist", arch="conv")

CHAPTERS: dict[str, dict[str, Any]] = {
    "00_data": dict(full=dict(seed=0, n_grid_per_class=10), smoke=dict(n_grid_per_class=4), runs=[]),
    "01_vae": dict(  # seed 004: MLP VAE 784-400-2 on MNIST
        full=dict(seed=0, epochs=20, min_steps=5000, patience=20, batch_size=128, lr=1e-3, latent_dim=2, n_train=None,
                  manifold_n=20, n_samples=64),
        smoke=dict(epochs=2, min_steps=0, patience=2, n_train=1024, manifold_n=6, n_samples=16),
        paper=dict(min_steps=0, patience=0),
        runs=[dict(dataset="mnist", arch="mlp")]),
    "02_latent_sizes": dict(  # seeds 001/002: conv VAE on MNIST, one run per latent size; GIFs from snapshots
        full=dict(seed=0, seeds=[0, 1, 2], latent_dim=[2, 4, 8, 16], epochs=30, min_steps=3000, patience=8,
                  batch_size=128, lr=1e-3, precision="auto", n_train=None, n_test=None, snapshot_n=1000, eval_n=500, n_traverse=4,
                  traversal_steps=40, gif_fps=4),
        smoke=dict(seeds=[0], latent_dim=[2, 4], epochs=2, min_steps=0, patience=2, n_train=256, n_test=200,
                   snapshot_n=100, eval_n=64, n_traverse=2, traversal_steps=6),
        paper=dict(seeds=list(range(5)), min_steps=0, patience=0),
        runs=[dict(dataset="mnist", arch="conv")]),
    "03_beta_sweep": dict(  # seed 003: Fashion conv VAE (z=16), and a β sweep on three classes (z=2)
        full=dict(seed=0, epochs=25, batch_size=128, lr=1e-3, precision="auto", latent_dim=16, n_train=None, n_test=None, eval_n=1000,
                  n_recon=16, n_samples=64, sweep_beta=[0.1, 0.5, 1.0], sweep_classes=[0, 1, 7], sweep_latent_dim=2,
                  sweep_seeds=[0, 1, 2], sweep_epochs=20, sweep_n_train=None, sweep_n_test=None, sweep_snapshot_every=25,
                  sweep_snapshot_n=600, sweep_eval_n=0, n_quality=1000, gif_fps=10),
        smoke=dict(epochs=1, n_train=256, n_test=300, eval_n=100, n_recon=8, n_samples=16, sweep_beta=[0.1, 1.0], sweep_seeds=[0],
                   sweep_epochs=2, sweep_n_train=256, sweep_n_test=240, sweep_snapshot_every=2, sweep_snapshot_n=60,
                   n_quality=64),
        paper=dict(sweep_seeds=list(range(5))),
        runs=[_FASHION, dict(_FASHION, prefix="sweep_")]),
    "04_frozen_mu": dict(  # seed 003 §9 on chapter 03's Fashion model; z = 0 + σ·ε for each σ
        full=dict(seed=0, sigmas=[0.1, 0.5, 1.0], n_samples=64, n_draws=20, n_recon=16, n_test=None),
        smoke=dict(n_draws=3, n_recon=8, n_test=256),
        runs=[dict(_FASHION, chapter="03_beta_sweep")]),
    "05_fid": dict(  # images per model × sampler and per real set, each reference capped at its test split's size:
        # n_classifier for the domain-classifier FID (every model and training seed); Inception (≈ 0.03 s/image on a
        # 2-core CPU with AMX, 0.07 without) on the full-data references only: FID∞ up to n_inception_max, and the FID at n for each
        # configuration's first seed. n_boot / n_boot_inception: bootstrap resamples per FID. extra_seeds: training
        # seeds added to each evaluated model (smoke: a second seed, so that the seed aggregation runs).
        # classifier_n_train: a stratified subset per classifier (MNIST's offline sample is smaller: all of it)
        full=dict(seed=0, n_classifier=2000, n_inception_max=500, n=256, n_boot=200, n_boot_inception=100,
                  max_models=None, extra_seeds=[], classifier_epochs=None, classifier_n_train=30_000, kid_subsets=100,
                  n_grid=16),
        smoke=dict(n_classifier=64, n_inception_max=12, n=8, n_boot=20, n_boot_inception=10, max_models=1,
                   extra_seeds=[1], classifier_epochs=2, classifier_n_train=1000, kid_subsets=10, n_grid=8),
        paper=dict(n_classifier=10_000, n_inception_max=10_000, n=10_000, classifier_n_train=None),  # each capped at the test split's size
        runs=[]),
    "06_gmm": dict(  # seed 000: digits 1, 4, 8, an MLP VAE 784-512-256-z (one 400-wide layer
        # reaches validation SSIM 0.57-0.59 on these 1,020 images, this one ~0.60); the first latent size is the model
        full=dict(seed=0, seeds=[0, 1, 2], epochs=50, min_steps=4000, patience=30, batch_size=128, lr=1e-3,
                  hidden=(512, 256), latent_dim=[2, 8], n_train=None, val_fraction=0.15, manifold_n=20, n_draws=10, n_grid=8),
        smoke=dict(seeds=[0], epochs=3, min_steps=0, patience=2, n_train=450, val_fraction=0.2, manifold_n=6,
                   n_draws=2, n_grid=4),
        paper=dict(seeds=list(range(5)), min_steps=0, patience=0),
        runs=[dict(dataset="mnist", arch="mlp", classes=(1, 4, 8))]),
    "07_sharp_vae": dict(  # seed 001: U-Net-block VAE with attention on MNIST; ablation pixel / +perceptual / +PatchGAN.
        # perceptual: weight of the (domain or VGG16) perceptual distance, ~2 per image at the start against ~540 nats of
        # Bernoulli reconstruction, so 50 makes it ~20 % there; adversarial: × VQGAN's adaptive weight, from step
        # adv_warmup (of ~29 per epoch on the 5k sample); perceptual_seed: the perceptual network's classifier seed,
        # another than the FID classifier's (seed), so that the loss does not optimise the features FID measures.
        # Full: ~580 steps per run; measured 22 min cold on a 2-core CPU (9 runs: 78 s pixel, ~160 s + perceptual, ~215 s + PatchGAN). A GPU run (full MNIST,
        # 422 steps per epoch) would use channels=(32, 64), adv_warmup=2000, snapshot_n=2000, eval_n=1000, n_eval=10_000.
        full=dict(seed=0, latent_dim=[2, 4, 16], channels=(16, 32), epochs=20, batch_size=128, lr=1e-3, perceptual=50.0,
                  adversarial=0.5, adv_warmup=200, n_train=None, n_test=None, snapshot_n=500, eval_n=300, gif_fps=4,
                  n_eval=1000, n_boot=200, n_show=8, n_samples=32, classifier_epochs=None, classifier_n_train=None,
                  perceptual_seed=1),
        smoke=dict(latent_dim=[2], channels=(8, 16), epochs=2, adv_warmup=2, n_train=256, n_test=200, snapshot_n=64,
                   eval_n=32, n_eval=64, n_boot=20, n_samples=16, classifier_epochs=1, classifier_n_train=500),
        paper=dict(channels=(32, 64), adv_warmup=2000, snapshot_n=2000, eval_n=1000, n_eval=10_000),
        perceptual_net=dict(epochs="classifier_epochs", n_train="classifier_n_train", seed="perceptual_seed"),
        runs=[dict(dataset="mnist", arch="unet", perceptual=0.0, adversarial=0.0, adv_warmup=0),
              dict(dataset="mnist", arch="unet", adversarial=0.0, adv_warmup=0),
              dict(dataset="mnist", arch="unet")]),
    "08_tanh_mse_vae": dict(  # seed 002: conv VAE, tanh decoder on [-1, 1], MSE + α·KL (α is our β), on EMNIST digits.
        # Full: a 5,000-image class-stratified subset of EMNIST digits' 240,000 (all of the MNIST sample when it stands in),
        # so that seed 002's 128 + 32 epochs take ~10 min on a 2-core CPU; a GPU run would use n_train=None (~4 h on CPU).
        full=dict(seed=0, dataset="emnist-digits", fallback="mnist", beta=1.0, batch_size=64, lr=1e-3,
                  long_epochs=128, long_min_steps=6000, short_epochs=32, short_min_steps=2000, resume_at=0.5,
                  n_train=5000, n_test=1000, snapshot_n=1000, gif_fps=8, traversal_steps=40, n_traverse=4),
        smoke=dict(long_epochs=2, long_min_steps=0, short_epochs=1, short_min_steps=0, n_train=256, n_test=200,
                   snapshot_n=32, traversal_steps=4, n_traverse=2),
        paper=dict(long_min_steps=0, short_min_steps=0, n_train=None, n_test=None),
        runs=[dict(arch="conv-tanh", likelihood="mse", latent_dim=2, prefix="long_"),
              dict(arch="conv-tanh", likelihood="mse", latent_dim=8, prefix="short_")]),
}


def default_profile() -> str:
    """The profile named by $VAELIB_PROFILE, or "full"."""
    return check_profile(os.environ.get("VAELIB_PROFILE") or "full", "$VAELIB_PROFILE")


def check_profile(profile: str, what: str = "profile") -> str:
    if profile not in PROFILES:
        raise InputError(f"{what} {profile!r}: unknown profile; expected one of {', '.join(PROFILES)}")
    return profile


def settings(stem: str, profile: str | None = None, overrides: dict | None = None) -> SimpleNamespace:
    """The settings of chapter ``stem`` under ``profile`` (None: ``default_profile()``), with
    ``overrides`` applied; an unknown chapter or setting is an InputError naming the allowed ones."""
    if stem not in CHAPTERS:
        raise InputError(f"chapter {stem!r}: unknown; expected one of {', '.join(CHAPTERS)}")
    profile = check_profile(profile or default_profile())
    chapter = CHAPTERS[stem]
    values = {**chapter["full"], **(chapter.get(profile, {}) if profile != "full" else {})}
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise InputError(f"setting {', '.join(map(repr, unknown))} of {stem}: unknown; "
                         f"expected some of {', '.join(sorted(values))}")
    return SimpleNamespace(stem=stem, profile=profile, **{**values, **(overrides or {})})


def runs(p: SimpleNamespace) -> list[RunConfig]:
    """The run configurations that settings ``p`` define, in table order."""
    out: list[RunConfig] = []
    for template in CHAPTERS[p.stem]["runs"]:
        template = dict(template)
        if "chapter" in template:  # another chapter's run: its settings under the same profile
            source = settings(template.pop("chapter"), p.profile)
            out += [c for c in runs(source) if all(getattr(c, k) == v for k, v in template.items())][:1]
            continue
        prefix, fixed = template.pop("prefix", ""), template
        values = {f: getattr(p, prefix + f, getattr(p, f, None)) for f in _RUN_FIELDS if f not in fixed}
        seeds = getattr(p, prefix + "seeds", getattr(p, "seeds", None))
        if seeds is not None and "seed" not in fixed:
            values["seed"] = list(seeds)
        values = {f: v for f, v in values.items() if v is not None or f in ("n_train", "n_test")}
        grid = [(f, v) for f, v in values.items() if isinstance(v, list) and f not in ("classes", "hidden", "channels")]
        combos = [{}]
        for f, options in grid:
            combos = [{**c, f: o} for c in combos for o in options]
        configs = [RunConfig(**{**values, **fixed, **combo}) for combo in combos]
        if isinstance(values.get("seed"), list):  # snapshots (GIFs) and per-epoch curves: the first seed's, shown
            configs = [c if c.seed == values["seed"][0] else dataclasses.replace(c, snapshot_n=0, eval_n=0) for c in configs]
        out += configs
    return out


def run_table(profile: str | None = None) -> dict[str, list[RunConfig]]:
    """Chapter → its run configurations under ``profile``: what the report trains."""
    return {stem: runs(settings(stem, profile)) for stem in CHAPTERS}


def all_runs(profile: str | None = None) -> list[RunConfig]:
    """Every distinct run of the report, in chapter order."""
    return list(dict.fromkeys(c for configs in run_table(profile).values() for c in configs))


def _bad_value(value: Any, current: Any, full: Any) -> str | None:
    """Why ``value`` cannot replace a setting now ``current`` (``full`` in the full profile), or None."""
    if value is None:
        return None if current is None or full is None else "None"
    if current is None:
        return None
    if isinstance(current, (list, tuple)):  # a grid (list: one value is fine) or a tuple such as hidden widths
        if not isinstance(value, (list, tuple)) and isinstance(current, tuple):
            return "not a list"
        items = value if isinstance(value, (list, tuple)) else [value]
        return next((why for v in items if current for why in [_bad_value(v, current[0], current[0])] if why), None)
    if isinstance(current, bool) or isinstance(value, bool):
        return None if isinstance(value, bool) and isinstance(current, bool) else "not of the setting's type"
    if isinstance(current, (int, float)):
        if not isinstance(value, (int, float)) or (isinstance(current, int) and not isinstance(value, int)):
            return "not a whole number" if isinstance(current, int) else "not a number"
        return None if value >= 0 and value != float("inf") else "not a finite number ≥ 0"
    return None if isinstance(value, type(current)) else f"not a {type(current).__name__}"


def perceptual_options(p: SimpleNamespace) -> dict[str, Any]:
    """The options of ``fid.perceptual_network`` that chapter settings ``p`` give (its ``perceptual_net`` entry
    in ``CHAPTERS``: option → setting), so that a sweep keys its runs as the notebook does."""
    return {option: getattr(p, name) for option, name in CHAPTERS[p.stem].get("perceptual_net", {}).items()}


def sweep_settings(stems: list[str] | None = None, profile: str | None = None, overrides: dict | None = None,
                   seeds: int | None = None) -> dict[str, SimpleNamespace]:
    """Chapter → settings for ``python -m vaelib sweep`` (their runs: ``runs``): the chapters ``stems`` (None: all)
    under ``profile``, each override applied to the chapters that have that setting, and with ``seeds`` every
    seed-list setting of their runs (``seeds``, ``sweep_seeds``) set to 0..seeds-1. An unknown chapter, a setting
    no chapter has, or a value of the wrong type is an InputError."""
    stems, overrides = list(stems or CHAPTERS), dict(overrides or {})
    bases = {stem: settings(stem, profile) for stem in stems}  # unknown chapters, profile: InputError
    if seeds is not None and not (isinstance(seeds, int) and seeds >= 1):
        raise InputError(f"seeds {seeds!r}: not a number of seeds; expected a whole number ≥ 1")
    unknown = sorted(k for k in overrides if not any(hasattr(p, k) for p in bases.values()))
    if unknown:
        allowed = sorted({k for p in bases.values() for k in vars(p)} - {"stem", "profile"})
        raise InputError(f"setting {', '.join(map(repr, unknown))} of {', '.join(stems)}: unknown; "
                         f"expected some of {', '.join(allowed)}")
    table = {}
    for stem, base in bases.items():
        mine = {k: v for k, v in overrides.items() if hasattr(base, k)}
        for k, v in mine.items():  # a list for a run field is a grid, one run per value (``runs``)
            current = getattr(base, k)
            grid = isinstance(v, list) and k in _RUN_FIELDS and not isinstance(current, (list, tuple))
            why = next(filter(None, (_bad_value(x, current, CHAPTERS[stem]["full"].get(k)) for x in
                                     (v if grid else [v]))), None)
            if why:
                raise InputError(f"setting {k}={v!r} of {stem}: {why}; expected a value like {getattr(base, k)!r}")
        if seeds is not None:  # the seed lists that runs() reads for this chapter's templates
            prefixes = {t.get("prefix", "") for t in CHAPTERS[stem]["runs"] if "chapter" not in t}
            mine.update({p + "seeds": list(range(seeds)) for p in prefixes if hasattr(base, p + "seeds")})
        try:
            table[stem] = settings(stem, profile, mine)
            runs(table[stem])
        except (TypeError, ValueError) as e:
            raise InputError(f"settings {mine} of {stem}: {e}; expected values like the profile's") from None
    return table
