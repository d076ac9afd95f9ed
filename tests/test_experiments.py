"""Settings per chapter and profile, the run table, and where a profile's outputs go."""
import dataclasses

import pytest

from vaelib import experiments, report, store
from vaelib.errors import InputError
from vaelib.train import RunConfig


def test_profiles_change_sizes_only():
    for stem, chapter in experiments.CHAPTERS.items():
        assert set(chapter["smoke"]) | set(chapter.get("paper", {})) <= set(chapter["full"]), stem
        full, smoke = experiments.runs(experiments.settings(stem, "full")), experiments.runs(experiments.settings(stem, "smoke"))
        assert len(smoke) <= len(full), stem
        for a, b in zip(smoke, full):  # same architecture, data and likelihood: the same code path
            assert (a.arch, a.dataset, a.likelihood, a.classes) == (b.arch, b.dataset, b.likelihood, b.classes), stem


def test_unknown_settings_are_rejected_with_the_allowed_ones():
    with pytest.raises(InputError, match=r"'epoch' of 01_vae: unknown; expected some of .*epochs"):
        experiments.settings("01_vae", "full", {"epoch": 3})
    with pytest.raises(InputError, match="expected one of 00_data"):
        experiments.settings("99_nope", "full")
    with pytest.raises(InputError, match="smoke, full"):
        experiments.settings("01_vae", "medium")


def test_overrides_and_grids():
    p = experiments.settings("02_latent_sizes", "full", {"latent_dim": [3, 5], "epochs": 4, "seeds": [0]})
    assert [(c.latent_dim, c.epochs, c.arch, c.snapshot_n) for c in experiments.runs(p)] == [(3, 4, "conv", 1000), (5, 4, "conv", 1000)]
    sweep = experiments.runs(experiments.settings("03_beta_sweep", "full"))
    assert sweep[0] == RunConfig(dataset="fashion-mnist", arch="conv", latent_dim=16, epochs=25, eval_n=1000, precision="auto")
    assert [(c.beta, c.seed, c.latent_dim, c.classes, c.epochs, c.snapshot_every, c.eval_n) for c in sweep[1:]] == [
        (b, s, 2, (0, 1, 7), 20, 25, 0) for b in (0.1, 0.5, 1.0) for s in (0, 1, 2)]
    assert experiments.runs(experiments.settings("04_frozen_mu", "full")) == sweep[:1]
    gmm = experiments.runs(experiments.settings("06_gmm", "full", {"seeds": [4]}))
    assert [(c.latent_dim, c.hidden, c.classes, c.seed, c.val_fraction, c.epochs, c.min_steps, c.patience)
            for c in gmm] == [(z, (512, 256), (1, 4, 8), 4, 0.15, 50, 4000, 30) for z in (2, 8)]
    as_json = experiments.settings("06_gmm", "full", {"hidden": [64, 32], "seeds": [0]})  # papermill passes lists
    assert [c.hidden for c in experiments.runs(as_json)] == [(64, 32), (64, 32)]


def test_seeds_give_one_run_per_training_seed_and_seed_stays_the_chapters():
    p = experiments.settings("02_latent_sizes", "full", {"latent_dim": [2, 16]})
    assert p.seed == 0 and p.seeds == [0, 1, 2]
    assert [(c.latent_dim, c.seed) for c in experiments.runs(p)] == [(z, s) for z in (2, 16) for s in (0, 1, 2)]
    assert [c.seed for c in experiments.runs(experiments.settings("02_latent_sizes", "smoke"))] == [0, 0]  # one seed
    # the GIFs show the first seed: only its runs keep snapshots
    assert [(c.seed, c.snapshot_n, c.eval_n) for c in experiments.runs(p)][:3] == [(0, 1000, 500), (1, 0, 0), (2, 0, 0)]
    sweep = experiments.runs(experiments.settings("03_beta_sweep", "full"))[1:]
    assert [c.snapshot_n for c in sweep] == [600, 0, 0] * 3
    assert experiments.runs(experiments.settings("06_gmm", "full", {"seeds": []})) == []
    p = experiments.settings("01_vae", "full", {"seed": 3})  # no seeds setting: the chapter's seed trains
    assert [c.seed for c in experiments.runs(p)] == [3]


def test_run_table_and_all_runs():
    table = experiments.run_table("smoke")
    assert list(table) == list(experiments.CHAPTERS) and table["05_fid"] == []
    every = experiments.all_runs("smoke")
    assert len(every) == len(set(every)) and table["04_frozen_mu"][0] in every
    assert all(isinstance(c, RunConfig) and dataclasses.is_dataclass(c) for c in every)


def test_default_profile(monkeypatch):
    monkeypatch.setenv("VAELIB_PROFILE", "smoke")
    assert experiments.settings("01_vae").profile == "smoke"
    monkeypatch.setenv("VAELIB_PROFILE", "big")
    with pytest.raises(InputError, match=r"\$VAELIB_PROFILE 'big'"):
        experiments.default_profile()


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("VAELIB_OUT", raising=False)
    monkeypatch.delenv("VAELIB_RUNS", raising=False)
    return tmp_path


def test_output_and_store_folders(project, monkeypatch):
    assert store.project_root() == project and store.root() == project / "runs"
    assert report.out_root("full") == project and report.out_root("smoke") == project / "build" / "smoke"
    monkeypatch.setenv("VAELIB_OUT", "build/elsewhere")  # relative to the project root
    assert report.figure_dir("01_vae", "smoke") == project / "build" / "elsewhere" / "figures" / "01_vae"
    monkeypatch.setenv("VAELIB_RUNS", "cache")
    assert store.root() == project / "cache"


def test_paper_profile_is_full_data_5_seeds_the_seeds_epochs_and_n_10000_for_the_fids(monkeypatch):
    paper, full = experiments.settings("05_fid", "paper"), experiments.settings("05_fid", "full")
    assert (paper.n_classifier, paper.n_inception_max, paper.n) == (10_000, 10_000, 10_000)
    assert (paper.classifier_n_train, full.classifier_n_train) == (None, 30_000)  # paper: all training images
    sizes = ("profile", "n_classifier", "n_inception_max", "n", "classifier_n_train")
    assert {k: v for k, v in vars(paper).items() if k not in sizes} == {k: v for k, v in vars(full).items() if k not in sizes}
    table, full_table = experiments.run_table("paper"), experiments.run_table("full")
    assert {(c.arch, c.dataset, c.likelihood, c.classes) for cs in table.values() for c in cs} == \
        {(c.arch, c.dataset, c.likelihood, c.classes) for cs in full_table.values() for c in cs}  # same code paths
    assert [len(table[s]) for s in ("02_latent_sizes", "03_beta_sweep", "06_gmm")] == [4 * 5, 1 + 3 * 5, 2 * 5]
    assert {c.seed for c in table["02_latent_sizes"]} == set(range(5))
    runs = experiments.all_runs("paper")
    assert all(c.n_train is None and c.min_steps == 0 for c in runs)  # full data, the seeds' epoch counts
    assert all(c.patience == 0 for s in ("01_vae", "02_latent_sizes", "06_gmm") for c in table[s])
    assert [c.epochs for c in table["08_tanh_mse_vae"]] == [128, 32] and table["08_tanh_mse_vae"][0].n_test is None
    monkeypatch.delenv("VAELIB_OUT", raising=False)
    assert report.out_root("paper") == store.project_root() / "build" / "paper"