"""The report: where a profile's outputs go, the tables and metrics notebooks write (with each chapter's
"report" block: title, findings, key figure and table), and the papermill runner that executes
notebooks/NN_*.ipynb in order and writes reports/REPORT.md from those blocks.

Outputs of profile "full" go under the project root (the committed figures/ and reports/); those
of "smoke" and "paper" under $VAELIB_OUT (default <root>/build/<profile>), so tests never overwrite them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import InputError, NotebookError
from .experiments import check_profile, default_profile
from .store import atomic_write, project_root, write_json

__all__ = ["out_root", "figure_dir", "write_table", "write_metrics", "chapter_summary", "notebooks", "select",
           "run_report"]

_NOTEBOOK = re.compile(r"\d\d_.+\.ipynb")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def out_root(profile: str | None = None) -> Path:
    """The project root for "full"; else $VAELIB_OUT (relative to the root) or <root>/build/<profile>.
    In a notebook the report runner executes, $VAELIB_STAGE: a staging folder it moves into place on success."""
    profile = check_profile(profile or default_profile())
    if os.environ.get("VAELIB_STAGE"):
        return _folder(project_root() / os.environ["VAELIB_STAGE"], "$VAELIB_STAGE")
    if profile == "full":
        return project_root()
    value = os.environ.get("VAELIB_OUT")
    return _folder(project_root() / (value or f"build/{profile}"), "$VAELIB_OUT" if value else "output folder")


def _folder(path: Path, what: str) -> Path:
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path}: not a folder; expected a folder (existing or not) for the report's outputs")
    return path


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir(stem: str, profile: str | None = None) -> Path:
    """<out_root>/figures/<stem>/ (created)."""
    return _made(out_root(profile) / "figures" / _check_name(stem, "notebook stem"))


def _check_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise InputError(f"{what} {name!r}: not a plain file name; expected letters, digits, '_', '-', '.'")
    return name


def write_table(df: Any, name: str, profile: str | None = None) -> Path:
    """Write a pandas DataFrame to reports/tables/<name>.md (Markdown) and .csv; return the .md path."""
    import pandas as pd

    _check_name(name, "table name")
    index = not isinstance(df.index, pd.RangeIndex)
    folder = _made(out_root(profile) / "reports" / "tables")
    with atomic_write(folder / f"{name}.csv", "w") as f:
        df.to_csv(f, index=index)
    with atomic_write(folder / f"{name}.md", "w") as f:
        f.write(df.to_markdown(index=index) + "\n")
    return folder / f"{name}.md"


def write_metrics(stem: str, metrics: Mapping[str, Any], profile: str | None = None) -> Path:
    """Write a notebook's headline numbers to reports/metrics/<stem>.json; return the path.

    A "report" entry, if any, is the chapter's block for REPORT.md (see ``chapter_summary``); it is
    checked here, so that a bad block fails in its notebook rather than when REPORT.md is written.
    """
    _check_name(stem, "notebook stem")
    path = out_root(profile) / "reports" / "metrics" / f"{stem}.json"
    metrics = dict(metrics)
    if "report" in metrics:
        metrics["report"] = _check_block(metrics["report"], out_root(profile), str(path))
    return write_json(path, metrics)


def notebooks(directory: str | os.PathLike | None = None) -> list[Path]:
    """The report's notebooks, notebooks/NN_*.ipynb, in order."""
    folder = Path(directory) if directory is not None else project_root() / "notebooks"
    return sorted(p for p in folder.glob("*.ipynb") if _NOTEBOOK.fullmatch(p.name))


def select(paths: list[Path], only: str | None) -> list[Path]:
    """The notebooks named by ``only``: a stem ("01_vae"), a prefix ("01"), or None for all."""
    if only is None:
        return paths
    name = Path(only).name.removesuffix(".ipynb")
    chosen = [p for p in paths if p.stem == name] or [p for p in paths if name and p.stem.startswith(name)]
    if not chosen:
        valid = ", ".join(p.stem for p in paths) or "(no notebooks found)"
        raise InputError(f"notebook {only!r}: not found; expected one of {valid}")
    return chosen


# Imported by each kernel while the notebook before it runs (module caches only, no names in the namespace).
_PRELOAD = ("pandas", "vaelib.plots", "vaelib.fid")
# Also run in each kernel: a saved figure (plots.save_fig) is shown with its file's path in the output's
# metadata, so that the executed copy can refer to the file instead of holding a second copy (_refer).
_FIGURE_HOOK = ("get_ipython().display_formatter.formatters['image/png'].for_type_by_name("
                "'vaelib.plots', 'ReportFigure', __import__('vaelib.report').report._figure_png)")


def _figure_png(fig: Any) -> Any:
    """A ReportFigure as PNG, as the inline backend draws it, with ``{"vaelib_file": path}`` as metadata once
    ``plots.save_fig`` saved it."""
    from IPython.core.pylabtools import print_figure

    png = print_figure(fig, "png", bbox_inches="tight")
    saved = getattr(fig, "saved_as", None)
    return (png, {"vaelib_file": str(saved)}) if saved else png


def _build_dir(out: Path) -> Path:
    """Run-specific files that are never committed (timings, kernel logs): <out>/build/ (build/ for "full")."""
    return out / "build"


def _start_kernel(notebook: Path, profile: str, out: Path, stage: Path) -> Any:
    """A python3 kernel in ``notebook``'s folder, started now so that its start-up and imports overlap
    the notebook before it. It inherits the profile, the output root, its staging folder (where it writes)
    and this vaelib on the path; the inline backend puts figures into the executed notebook and progress
    bars stay out (VAELIB_QUIET). Its own output (warnings, logs) goes to <out>/build/logs/<stem>.log."""
    from jupyter_client import KernelManager

    package_parent = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "VAELIB_PROFILE": profile, "VAELIB_OUT": str(out), "VAELIB_STAGE": str(stage),
           "VAELIB_QUIET": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    preload = f"import importlib as _i; [_i.import_module(m) for m in {_PRELOAD!r}]; del _i; {_FIGURE_HOOK}"
    log = _made(_build_dir(out) / "logs") / f"{notebook.stem}.log"
    km = KernelManager(kernel_name="python3", client_class="jupyter_client.asynchronous.AsyncKernelClient")
    with open(log, "w") as f:  # the kernel keeps its own copy of the descriptor
        km.start_kernel(cwd=str(notebook.parent), env=env, stdout=f, stderr=f,
                        extra_arguments=["--IPKernelApp.log_level=ERROR", f"--IPKernelApp.exec_lines={preload}"])
    return km


class _Progress:
    """One live line per notebook, "[i/n] stem  cell k/m  elapsed  ETA": the ETA is the recorded time of
    the cells still to run (from the last run's timings), less what the current cell has already taken.
    On a terminal the line is redrawn every second; elsewhere only the final line is written."""

    def __init__(self, label: str, previous: Mapping[str, Any] | None, stream: Any = None):
        self.label, self.stream = label, stream or sys.stdout
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.previous = list((previous or {}).get("cells", []))
        self.cells: list[float] = []
        self.start = self.cell_start = time.perf_counter()
        self.index, self.total, self.code, self.done_code = 0, 0, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True) if self.live else None
        self._draw()  # "starting": the kernel may still be importing

    def begin(self, cells: list[Any]) -> None:
        self.total, self.code = len(cells), [c.cell_type == "code" for c in cells]
        self.cells = [0.0] * len(cells)
        if self._thread:
            self._thread.start()

    def cell(self, event: str, index: int) -> None:
        now = time.perf_counter()
        if event == "start":
            self.index, self.cell_start = index, now
        elif 0 <= index < len(self.cells):
            self.cells[index] = round(now - self.cell_start, 3)
            self.done_code += bool(self.code[index])
        self._draw()

    def eta(self) -> float | None:
        if len(self.previous) != self.total or not self.total:
            return None
        in_cell = time.perf_counter() - self.cell_start
        return max(self.previous[self.index] - in_cell, 0.0) + sum(self.previous[self.index + 1:])

    def line(self) -> str:
        if not self.total:
            return f"{self.label}  starting  {_clock(time.perf_counter() - self.start)}"
        eta = self.eta()
        return (f"{self.label}  cell {min(self.done_code + 1, sum(self.code))}/{sum(self.code)}  "
                f"{_clock(time.perf_counter() - self.start)}  ETA {'?' if eta is None else _clock(eta)}")

    def _draw(self) -> None:
        if self.live:
            self.stream.write(f"\r\033[K{self.line()}")
            self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._draw()

    def close(self, status: str) -> None:
        self._stop.set()
        if self._thread and self._thread.is_alive():
            self._thread.join()
        self.stream.write(f"{chr(13) + chr(27) + '[K' if self.live else ''}{self.label}  {status}\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _engine(progress: _Progress) -> str:
    """Register (and name) a papermill engine that reports each cell's start and end to ``progress``."""
    from papermill.engines import NBClientEngine, papermill_engines

    class ProgressEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            start, complete = nb_man.cell_start, nb_man.cell_complete

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                progress.cell("start", cell_index)
                return start(cell, cell_index, **kw)

            def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                progress.cell("end", cell_index)
                return complete(cell, cell_index, **kw)

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
            progress.begin(nb_man.nb.cells)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("vaelib-progress", ProgressEngine)
    return "vaelib-progress"


_START_TIMEOUT = 300  # seconds for a kernel to answer: its imports (torch) take minutes on a loaded 2-core CPU


def _execute(notebook: Path, stage: Path, out: Path, parameters: dict, km: Any, progress: _Progress | None = None) -> None:
    """Execute ``notebook`` in kernel ``km``; its executed copy goes into stage/reports/notebooks/<stem>.ipynb,
    made reproducible by ``_clean`` (the staging folder written as ``out``, saved figures referred to)."""
    import nbformat
    import papermill as pm

    dest = stage / "reports" / "notebooks" / f"{notebook.stem}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    engine = _engine(progress) if progress is not None else None
    try:
        nb = pm.execute_notebook(str(notebook), str(dest), parameters=parameters, km=km,
                                 kernel_name="python3", language="python", progress_bar=False,
                                 log_output=False, record_timing=False, engine_name=engine,
                                 start_timeout=_START_TIMEOUT)
    except pm.PapermillExecutionError as e:
        first_line = (e.source.strip().splitlines() or [""])[0][:60]
        raise NotebookError(f"{notebook}: cell [{e.exec_count}] ({first_line!r}) "
                            f"raised {e.ename}: {e.evalue}".rstrip()) from None
    except Exception as e:  # kernel died, bad notebook JSON, ...
        raise NotebookError(f"{notebook}: could not execute: {type(e).__name__}: {e}") from e
    nb = _clean(nb, notebook, stage, out)
    nb = nbformat.reads(nbformat.writes(nb).replace(str(stage), str(out)), as_version=4)
    with atomic_write(dest, "w") as f:
        nbformat.write(nb, f)


# Papermill's notebook metadata that changes from run to run (the rest: parameters, paths, version).
_RUN_METADATA = ("start_time", "end_time", "duration", "exception")


def _clean(nb: Any, notebook: Path, stage: Path, out: Path) -> Any:
    """An executed notebook made byte-stable and lean: project-relative paths, a fixed id for papermill's
    cell, no times, durations or statuses in notebook or cell metadata, and every figure that
    ``plots.save_fig`` saved shown as a Markdown image of its file (relative to reports/notebooks/)."""
    pm_meta = nb.metadata.setdefault("papermill", {})
    for key in _RUN_METADATA:
        pm_meta.pop(key, None)
    pm_meta.update(input_path=f"notebooks/{notebook.name}", output_path=f"reports/notebooks/{notebook.stem}.ipynb")
    nb.metadata.pop("jupytext", None)  # the pairing with notebooks/*.py is the source's, not the executed copy's
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
        for output in cell.get("outputs", []):
            _refer(output, stage, out)
    return nb


def _refer(output: Any, stage: Path, out: Path) -> None:
    """Replace a saved figure's embedded PNG by a Markdown image of the file, when the file is there."""
    saved = output.get("metadata", {}).get("image/png", {}).get("vaelib_file")
    if "image/png" not in output.get("data", {}) or not saved:
        return
    path = Path(saved)
    for root in (stage, out):
        if path.is_relative_to(root) and (stage / path.relative_to(root)).is_file():
            rel = path.relative_to(root)
            break
    else:
        return  # not one of this notebook's saved files: keep the image
    link = Path(os.path.relpath(out / rel, out / "reports" / "notebooks")).as_posix()
    output["data"] = {"text/markdown": f"![{rel.name}]({quote(link)})",
                      "text/plain": output["data"].get("text/plain", rel.name)}
    output["metadata"] = {}


def _commit(stage: Path, out: Path) -> None:
    """Move a notebook's staged outputs into ``out``: each figures/<stem>/ folder whole (the old one and its
    stale files go), every other file one by one; all are renames within one file system."""
    for folder in sorted(p for p in stage.glob("figures/*") if p.is_dir()):
        target, old = out / "figures" / folder.name, out / "figures" / f".old-{folder.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        folder.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        target = out / path.relative_to(stage)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def run_report(profile: str = "full", only: str | None = None, *, author: str = "",
               notebooks_dir: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
               log: Callable[..., Any] = print, stream: Any = None) -> dict[str, float]:
    """Execute the notebooks in order and write REPORT.md; return wall seconds per stem.

    ``author`` tags every figure and GIF (the notebooks' ``author`` parameter); ``notebooks_dir`` defaults
    to <root>/notebooks and ``out`` to ``out_root(profile)``. Each notebook writes into a staging folder,
    <out>/.staging/<stem>/ ($VAELIB_STAGE), whose figures, tables, metrics and executed copy replace the
    previous ones only when the whole notebook succeeds. ``stream`` (default stdout) gets a live progress
    line per notebook and a table of times at the end; times per cell are kept in <out>/build/timings.json
    (not committed) for the next run's ETA, and each kernel's own output in <out>/build/logs/<stem>.log.
    Raises InputError for an unknown profile or name, or an output root that is a file, and NotebookError
    (naming the notebook and the cell) when a notebook fails: its previous outputs stay as they were, and
    the ones before it keep their new outputs.
    """
    check_profile(profile)
    available = notebooks(notebooks_dir)
    chosen = select(available, only)
    out = _folder(Path(out).absolute(), "output folder") if out is not None else out_root(profile)
    reports, staging = out / "reports", out / ".staging"
    timings_path = _build_dir(out) / "timings.json"
    recorded = _read_timings(timings_path)
    previous = recorded.get(profile, {})
    before = {stem: t.get("seconds") for stem, t in previous.items() if isinstance(t, dict)}
    if not chosen:
        log(f"no notebooks (NN_*.ipynb) in {notebooks_dir or project_root() / 'notebooks'}")
    kernels = [_start_kernel(chosen[0], profile, out, staging / chosen[0].stem)] if chosen else []
    times: dict[str, float] = {}
    try:
        for i, notebook in enumerate(chosen, 1):
            if i < len(chosen):  # the next notebook's kernel starts up while this one runs
                kernels.append(_start_kernel(chosen[i], profile, out, staging / chosen[i].stem))
            progress = _Progress(f"[{i}/{len(chosen)}] {notebook.stem}", previous.get(notebook.stem), stream)
            start, stage = time.perf_counter(), staging / notebook.stem
            shutil.rmtree(stage, ignore_errors=True)  # left over from an interrupted run
            try:
                _execute(notebook, stage, out, {"profile": profile, "author": author}, kernels[i - 1], progress)
            except NotebookError:
                progress.close(f"FAILED after {_clock(time.perf_counter() - start)}")
                raise
            for stale in (f"{notebook.stem}.html", "timings.json"):  # written by earlier versions of the runner
                (reports / "notebooks" / stale).unlink(missing_ok=True)
            _commit(stage, out)
            times[notebook.stem] = round(time.perf_counter() - start, 1)
            progress.close(f"{times[notebook.stem]:.1f} s")
            previous[notebook.stem] = {"seconds": times[notebook.stem], "cells": progress.cells}
            write_json(timings_path, {**recorded, profile: previous})
            kernels[i - 1].shutdown_kernel(now=True)
    finally:
        for km in kernels:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
        shutil.rmtree(staging, ignore_errors=True)
    report = _write_summary(reports, profile,
                            [p.stem for p in available if (reports / "notebooks" / f"{p.stem}.ipynb").is_file()])
    if times:
        log(_time_table(times, before))
    log(f"wrote {report}")
    return times


def _read_timings(path: Path) -> dict[str, Any]:
    """{profile: {stem: {"seconds", "cells"}}} from an earlier run; {} when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _time_table(times: Mapping[str, float], before: Mapping[str, Any]) -> str:
    """The run's wall time per notebook beside the previous run's, and the total."""
    width = max(len("notebook"), *map(len, times))
    rows = [f"{'notebook':<{width}}  {'this run':>9}  {'last run':>9}"]
    for stem, t in times.items():
        last = before.get(stem)
        rows.append(f"{stem:<{width}}  {t:>7.1f} s  {f'{last:.1f} s' if isinstance(last, (int, float)) else '-':>9}")
    rows.append(f"{'total':<{width}}  {sum(times.values()):>7.1f} s")
    return "\n".join(rows)
def _text_list(value: Any, what: str, where: str, least: int = 0, most: int | None = None) -> list[str]:
    """``value`` as a list of one-line, non-empty strings (a single string is rejected, not split)."""
    expected = f"expected a list of {f'{least} to {most}' if most else 'zero or more'} one-line, non-empty strings"
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{where}: {what} is a {type(value).__name__}; {expected}")
    if not least <= len(value) <= (most or len(value)):
        raise InputError(f"{where}: {what} has {len(value)} entries; {expected}")
    for i, s in enumerate(value):
        if not isinstance(s, str) or not s.strip() or "\n" in s.strip():
            raise InputError(f"{where}: {what}[{i}] is {s!r}; {expected}")
    return [s.strip() for s in value]


def _check_block(block: Any, root: Path, where: str) -> dict[str, Any]:
    """A chapter's "report" block, checked (types; figure and table files under ``root``) and normalised."""
    keys = {"title", "findings", "figure", "table", "differences", "caveats"}
    if not isinstance(block, Mapping) or not {"title", "findings", "figure", "table"} <= set(block) <= keys:
        got = sorted(block) if isinstance(block, Mapping) else type(block).__name__
        raise InputError(f"{where}: report block has {got}; expected title, findings, figure, table "
                         "and optionally differences, caveats (build it with report.chapter_summary)")
    title = block["title"]
    if not isinstance(title, str) or not title.strip() or "\n" in title.strip():
        raise InputError(f"{where}: title is {title!r}; expected a one-line, non-empty string")
    figure, table = block["figure"], block["table"]
    parts = Path(figure).parts if isinstance(figure, str) else ()
    if not parts or Path(figure).is_absolute() or ".." in parts:
        raise InputError(f"{where}: figure is {figure!r}; expected a path relative to the output root {root}")
    if not (root / figure).is_file():
        raise InputError(f"{root / figure}: not found; expected the chapter's key figure (made before its summary)")
    if not isinstance(table, str):
        raise InputError(f"{where}: table is {type(table).__name__}; expected a table name (reports/tables/<name>.md)")
    if not (root / "reports" / "tables" / f"{_check_name(table, 'table name')}.md").is_file():
        raise InputError(f"{root / 'reports' / 'tables' / table}.md: not found; expected the chapter's key table "
                         "(write it with report.write_table first)")
    return {"title": title.strip(), "findings": _text_list(block["findings"], "findings", where, 1, 5),
            "figure": Path(figure).as_posix(), "table": table,
            "differences": _text_list(block.get("differences", []), "differences", where),
            "caveats": _text_list(block.get("caveats", []), "caveats", where)}


def chapter_summary(title: str, findings: list[str] | tuple[str, ...], figure: str | os.PathLike,
                    table: str | os.PathLike, differences: list[str] | tuple[str, ...] = (),
                    caveats: list[str] | tuple[str, ...] = (), profile: str | None = None) -> dict[str, Any]:
    """A chapter's "report" block for REPORT.md: ``write_metrics(stem, {..., "report": chapter_summary(...)})``.

    ``title`` is the chapter's heading; ``findings`` 1 to 5 formatted sentences (the first one goes into the
    summary); ``figure`` the key figure, absolute (``figure_dir(...) / "x.png"``) or relative to
    ``out_root(profile)``; ``table`` the key table's name, or the path ``write_table`` returned;
    ``differences`` where and why the chapter differs from its seed; ``caveats`` what a reader must know
    first (shown at the top of REPORT.md). Returns {"title", "findings", "figure" (a POSIX path relative to
    the output root), "table" (a name), "differences", "caveats"}, all strings or lists of strings.
    Raises InputError naming the missing file, or the argument of the wrong type.
    """
    root = out_root(profile)
    if isinstance(figure, os.PathLike) or isinstance(figure, str) and Path(figure).is_absolute():
        path = Path(figure).resolve()
        if not path.is_relative_to(root.resolve()):
            raise InputError(f"{figure}: not under the output root; expected a figure in {root / 'figures'}")
        figure = path.relative_to(root.resolve()).as_posix()
    if isinstance(table, os.PathLike):
        path = Path(table)
        if path.suffix != ".md" or path.resolve().parent != (root / "reports" / "tables").resolve():
            raise InputError(f"{path}: not a table that write_table wrote; "
                             f"expected {root / 'reports' / 'tables'}/<name>.md")
        table = path.stem
    block = {"title": title, "findings": findings, "figure": figure, "table": table,
             "differences": differences, "caveats": caveats}
    return _check_block(block, root, "chapter_summary")


def _link(text: str, target: str) -> str:
    return f"[{text}]({quote(target)})"


def _read_metrics(folder: Path) -> dict[str, dict]:
    metrics = {}
    for path in sorted(folder.glob("*.json")):
        try:
            metrics[path.stem] = json.loads(path.read_text())
        except ValueError as e:
            raise InputError(f"{path}: not valid JSON ({e}); expected what report.write_metrics writes") from None
    return metrics


def _write_summary(reports: Path, profile: str, executed: Iterable[str]) -> Path:
    """REPORT.md from what the notebooks wrote: caveats first, then the first finding of each chapter, one
    section per chapter with a "report" block in its metrics (key figure, key table, findings), the
    differences from the seeds, links to every other table and metrics file, and the executed notebooks
    (``executed``: their stems) last. No wall times: they change from run to run, and REPORT.md must not."""
    executed = sorted(executed)
    root = reports.parent
    metrics = _read_metrics(reports / "metrics")
    chapters = {stem: _check_block(m["report"], root, str(reports / "metrics" / f"{stem}.json"))
                for stem, m in metrics.items() if isinstance(m, dict) and "report" in m}
    key_tables = {c["table"] for c in chapters.values()}
    tables = [p.stem for p in sorted((reports / "tables").glob("*.md")) if p.stem not in key_tables]
    caveats = list(dict.fromkeys(c for chapter in chapters.values() for c in chapter["caveats"]))
    caveats = [c for c in caveats if not any(c != other and c in other for other in caveats)]  # said once

    lines = [f"# vae-report: results (profile `{profile}`)", "",
             f"Generated by the notebooks; regenerate with `python -m vaelib report --profile {profile}` "
             f"(profile `{profile}`).", "",
             "## Data", "", *([f"- {c}" for c in caveats] or ["No chapter recorded a caveat."]), "",
             "## Summary of findings", "",
             *([f"- **{c['title']}**: {c['findings'][0]}" for c in chapters.values()]
               or ["(none: no chapter's metrics file holds a report block)"]), ""]
    for stem, c in chapters.items():
        figure = Path(os.path.relpath(root / c["figure"], reports)).as_posix()
        alt = c["title"].replace("[", "(").replace("]", ")")
        table = c["table"]
        lines += [f"## {c['title']}", "", f"![{alt}]({quote(figure)})", "",
                  f"Table `{table}` ({_link('csv', f'tables/{table}.csv')}):", "",
                  (reports / "tables" / f"{table}.md").read_text().rstrip(), "",
                  *[f"- {f}" for f in c["findings"]], "",
                  f"Executed notebook: {_link(f'{stem}.ipynb', f'notebooks/{stem}.ipynb')}; "
                  f"metrics: {_link(f'{stem}.json', f'metrics/{stem}.json')}.", ""]
    lines += ["## Where we differ from the seeds", ""]
    differing = [c for c in chapters.values() if c["differences"]]
    for c in differing:
        lines += [f"### {c['title']}", "", *[f"- {d}" for d in c["differences"]], ""]
    lines += [] if differing else ["No chapter recorded a difference.", ""]

    lines += ["## Other tables and metrics", ""]
    stems = sorted(set(metrics) | set(executed))
    owner = {t: max((s for s in stems if t == s or t.startswith(f"{s}_")), key=len, default="") for t in tables}
    other = []
    for stem in [*stems, ""]:
        links = [_link(f"{stem}.json", f"metrics/{stem}.json")] if stem in metrics else []
        links += [_link(t, f"tables/{t}.md") for t in tables if owner[t] == stem]
        other += [f"- {stem or 'other'}: " + ", ".join(links)] if links else []
    lines += [*(other or ["(none)"]), ""]

    lines += ["## Executed notebooks", "",
              "Each chapter as run (outputs included; its figures are the files in `figures/`). Wall times change "
              "from run to run, so they are not kept here: `make report` prints them (and keeps them in "
              "`build/timings.json`). `make book` renders these notebooks and this page as a website.", ""]
    lines += [f"- {_link(f'{stem}.ipynb', f'notebooks/{stem}.ipynb')}" for stem in executed] or ["(none)"]
    with atomic_write(reports / "REPORT.md", "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return reports / "REPORT.md"
