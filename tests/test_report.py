"""The report runner, on tiny notebooks in a temp folder (two kernel starts in all)."""

import json

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from vaelib.__main__ import main
from vaelib.errors import InputError, NotebookError
from vaelib.report import notebooks, run_report, select, write_metrics, write_table


def _notebook(folder, stem, *sources):
    params = new_code_cell('profile = "full"', metadata={"tags": ["parameters"]})
    nb = new_notebook(cells=[params, *(new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder.mkdir(exist_ok=True)
    nbformat.write(nb, folder / f"{stem}.ipynb")


def test_write_table_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_OUT", str(tmp_path))
    md = write_table(pd.DataFrame({"model": ["mlp"], "loss": [1.25]}), "losses", "smoke")
    assert "| mlp" in md.read_text() and (tmp_path / "reports/tables/losses.csv").read_text().startswith("model,loss")
    path = write_metrics("01_vae", {"loss": 1.25}, "smoke")
    assert json.loads(path.read_text()) == {"loss": 1.25}
    with pytest.raises(InputError):
        write_table(pd.DataFrame(), "../escape", "smoke")


def test_notebooks_and_select(tmp_path):
    for name in ("00_data.ipynb", "01_vae.ipynb", "scratch.ipynb", "1_bad.ipynb"):
        (tmp_path / name).write_text("{}")
    found = notebooks(tmp_path)
    assert [p.stem for p in found] == ["00_data", "01_vae"]
    assert [p.stem for p in select(found, "01")] == ["01_vae"]
    assert [p.stem for p in select(found, "00_data")] == ["00_data"]
    assert select(found, None) == found
    with pytest.raises(InputError, match="00_data, 01_vae"):
        select(found, "02")


@pytest.mark.kernel
def test_run_report_writes_copies_and_report(tmp_path, capsys):
    nbs, out = tmp_path / "notebooks", tmp_path / "out"
    _notebook(nbs, "00_demo",
              "import pandas as pd\nfrom vaelib.report import write_metrics, write_table",
              'write_table(pd.DataFrame({"a": [1, 2]}), "demo")\n'
              'write_metrics("00_demo", {"loss": 1.5, "nested": {"k": 2}})\n'
              'print("ran with", profile)')
    _notebook(nbs, "01_next", "import os, sys\nprint(os.environ['VAELIB_PROFILE'], 'vaelib.plots' in sys.modules, os.getcwd())",
              "print('tagged by', author)")
    timings = run_report("smoke", notebooks_dir=nbs, out=out, author="A. Tester")
    assert list(timings) == ["00_demo", "01_next"]
    assert "[1/2] 00_demo ..." in capsys.readouterr().out
    executed = out / "reports/notebooks/00_demo.ipynb"
    assert "ran with smoke" in executed.read_text()
    assert "ran with smoke" in executed.with_suffix(".html").read_text()
    # the second kernel was started (and its imports done) while the first notebook ran, in the notebooks folder
    second = nbformat.read(out / "reports/notebooks/01_next.ipynb", as_version=4)
    assert second.cells[-2].outputs[0]["text"].strip() == f"smoke True {nbs}"
    assert second.cells[-1].outputs[0]["text"].strip() == "tagged by A. Tester"  # the author parameter
    # reproducible copies: project-relative paths, a fixed id for papermill's cell, no execution timestamps
    assert second.metadata.papermill.input_path == "notebooks/01_next.ipynb"
    assert second.metadata.papermill.output_path == "reports/notebooks/01_next.ipynb"
    assert [c.id for c in second.cells if "injected-parameters" in c.metadata.get("tags", [])] == ["injected-parameters"]
    assert str(tmp_path) not in json.dumps(second.metadata) and "iopub" not in json.dumps(second.cells[-1].metadata)
    report = (out / "reports/REPORT.md").read_text()
    for expected in ("| 00_demo |", "### demo", "|   a |", "loss: 1.5", "nested.k: 2"):
        assert expected in report
    assert not [p for p in out.rglob(".*tmp*")]


@pytest.mark.kernel
def test_failing_notebook_names_notebook_and_cell(tmp_path):
    nbs, out = tmp_path / "notebooks", tmp_path / "out"
    _notebook(nbs, "03_bad", "x = 1", 'raise ValueError("boom")')
    with pytest.raises(NotebookError) as err:
        run_report("smoke", "03", notebooks_dir=nbs, out=out, log=lambda *a, **k: None)
    message = str(err.value)
    assert "03_bad.ipynb" in message and "cell [" in message and "ValueError: boom" in message
    folder = out / "reports/notebooks"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert not (out / "reports/REPORT.md").exists()


def test_unknown_profile_and_name(tmp_path, capsys):
    with pytest.raises(InputError, match="smoke, full"):
        run_report("medium", notebooks_dir=tmp_path)
    assert main(["report", "--profile", "medium"]) == 2
    assert main(["report", "--only", "no-such-notebook"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "expected one of" in err[1]
