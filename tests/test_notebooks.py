"""Static checks of notebooks/NN_*.ipynb against the contract (nbval executes them: see pyproject.toml)."""

import re

import nbformat
import pytest

from vaelib.experiments import CHAPTERS
from vaelib.report import notebooks

NOTEBOOKS = notebooks()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_follows_the_contract(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    names = re.findall(r"^(\w+)\s*=", params[0].source, re.M)
    assert names == ["profile", "author", "overrides"], f"{path.name}: parameters cell sets {names}"
    for cell in code:
        assert not re.search(r"^\s*(def|class)\s", cell.source, re.M), f"{path.name}: def/class in a cell"
    assert path.stem in CHAPTERS, f"{path.name}: no entry in vaelib.experiments.CHAPTERS"
    assert f'experiments.settings("{path.stem}", profile, overrides)' in "".join(c.source for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_colab_badge_and_install_cell_name_one_repo(path):
    """The install cell sets REPO once and installs from it; the badge opens this notebook in that REPO."""
    nb = nbformat.read(path, as_version=4)
    repos = [m for c in nb.cells if c.cell_type == "code" for m in re.findall(r'^REPO = "([^"]+)"', c.source, re.M)]
    assert len(repos) == 1, f"{path.name}: expected one `REPO = \"owner/name\"` line, found {repos}"
    install = next(c for c in nb.cells if c.cell_type == "code" and "REPO = " in c.source)
    assert 'if "google.colab" in sys.modules:' in install.source
    assert '%pip install -q "vaelib @ git+https://github.com/{REPO}"' in install.source
    badges = re.findall(r"\(https://colab\.research\.google\.com/github/([^)]+)\)", nb.cells[0].source)
    assert badges == [f"{repos[0]}/blob/main/notebooks/{path.name}"], f"{path.name}: badge {badges} vs REPO {repos[0]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_names_the_project_kernel(path):
    """`make lab` opens notebooks in the venv's kernel, installed by `make setup` as vae-report."""
    spec = nbformat.read(path, as_version=4).metadata.kernelspec
    assert spec.name == "vae-report" and spec.display_name == "vae-report (.venv)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_paired_script_matches_the_notebook(path):
    """notebooks/NN_*.py (jupytext percent format) holds the notebook's cells: run `make pair` after editing one."""
    jupytext = pytest.importorskip("jupytext")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent", f"{path.name}: not paired"
    script = path.with_suffix(".py")
    assert script.is_file(), f"{script.name}: missing; run `make pair`"
    paired = jupytext.read(script)
    cells = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]
    assert [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in paired.cells] == cells, \
        f"{script.name} differs from {path.name}: run `make pair`"
