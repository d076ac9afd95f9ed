from pathlib import Path

import pytest

from vaelib import paths
from vaelib.errors import InputError


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("VAELIB_OUT", raising=False)
    monkeypatch.delenv("VAELIB_RUNS", raising=False)
    return tmp_path


def test_root_found_from_a_subfolder(project):
    assert paths.project_root() == project
    assert paths.runs_dir() == project / "runs"


def test_out_root_per_profile(project, monkeypatch):
    assert paths.out_root("full") == project
    assert paths.out_root("smoke") == project / "build" / "smoke"
    monkeypatch.setenv("VAELIB_OUT", "build/elsewhere")  # relative to the project root
    assert paths.out_root("smoke") == project / "build" / "elsewhere"
    assert paths.figure_dir("01_vae", "smoke") == project / "build" / "elsewhere" / "figures" / "01_vae"
    assert paths.tables_dir("full").is_dir() and paths.metrics_dir("full") == project / "reports" / "metrics"


def test_env_overrides(project, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("runs")
    monkeypatch.setenv("VAELIB_RUNS", str(elsewhere))
    monkeypatch.setenv("VAELIB_PROFILE", "smoke")
    assert paths.runs_dir() == elsewhere
    assert paths.out_root() == project / "build" / "smoke"


def test_unknown_profile(project):
    with pytest.raises(InputError, match="smoke, full"):
        paths.out_root("huge")


def test_falls_back_to_package_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.project_root() == Path(paths.__file__).resolve().parents[1]
