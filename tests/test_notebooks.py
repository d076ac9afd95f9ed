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
