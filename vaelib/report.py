"""The report: where a profile's outputs go, the tables and metrics notebooks write, and the
papermill runner that executes notebooks/NN_*.ipynb in order and writes reports/REPORT.md.

Outputs of profile "full" go under the project root (the committed figures/ and reports/); those
of "smoke" under $VAELIB_OUT (default <root>/build/smoke), so tests never overwrite them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import InputError, NotebookError
from .experiments import check_profile, default_profile
from .store import atomic_path, atomic_write, project_root, write_json

__all__ = ["out_root", "figure_dir", "write_table", "write_metrics", "notebooks", "select", "run_report"]

_NOTEBOOK = re.compile(r"\d\d_.+\.ipynb")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def out_root(profile: str | None = None) -> Path:
    """The project root for "full"; $VAELIB_OUT (relative to the root) or <root>/build/smoke for "smoke"."""
    if check_profile(profile or default_profile()) == "full":
        return project_root()
    value = os.environ.get("VAELIB_OUT")
    return project_root() / value if value else project_root() / "build" / "smoke"


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
    """Write a notebook's headline numbers to reports/metrics/<stem>.json; return the path."""
    _check_name(stem, "notebook stem")
    return write_json(out_root(profile) / "reports" / "metrics" / f"{stem}.json", dict(metrics))


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


def _start_kernel(notebook: Path, profile: str, out: Path) -> Any:
    """A python3 kernel in ``notebook``'s folder, started now so that its start-up and imports overlap
    the notebook before it. It inherits the profile, the output root and this vaelib on the path; the
    inline backend puts figures into the executed notebook and progress bars stay out (VAELIB_QUIET)."""
    from jupyter_client import KernelManager

    package_parent = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "VAELIB_PROFILE": profile, "VAELIB_OUT": str(out), "VAELIB_QUIET": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    preload = f"import importlib as _i; [_i.import_module(m) for m in {_PRELOAD!r}]; del _i"
    km = KernelManager(kernel_name="python3", client_class="jupyter_client.asynchronous.AsyncKernelClient")
    km.start_kernel(cwd=str(notebook.parent), env=env,
                    extra_arguments=["--IPKernelApp.log_level=ERROR", f"--IPKernelApp.exec_lines={preload}"])
    return km


def _execute(notebook: Path, dest: Path, parameters: dict, km: Any) -> None:
    """Execute ``notebook`` in kernel ``km`` into dest (.ipynb) plus dest.html, both atomically."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    with atomic_path(dest) as tmp_nb:
        try:
            nb = pm.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters, km=km,
                                     kernel_name="python3", language="python", progress_bar=False,
                                     log_output=False, record_timing=False)
        except pm.PapermillExecutionError as e:
            first_line = (e.source.strip().splitlines() or [""])[0][:60]
            raise NotebookError(f"{notebook}: cell [{e.exec_count}] ({first_line!r}) "
                                f"raised {e.ename}: {e.evalue}".rstrip()) from None
        except Exception as e:  # kernel died, bad notebook JSON, ...
            raise NotebookError(f"{notebook}: could not execute: {type(e).__name__}: {e}") from e
        # Reproducible copies: paths relative to the project, a fixed id for the injected cell.
        nb.metadata.papermill.update(input_path=f"notebooks/{notebook.name}", output_path=f"reports/notebooks/{dest.name}")
        for cell in nb.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                cell.id = "injected-parameters"
        nbformat.write(nb, tmp_nb)
        body, _ = HTMLExporter().from_notebook_node(nb)
        with atomic_write(dest.with_suffix(".html"), "w") as f:
            f.write(body)


def run_report(profile: str = "full", only: str | None = None, *, author: str = "",
               notebooks_dir: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
               log: Callable[..., Any] = print) -> dict[str, float]:
    """Execute the notebooks in order and write REPORT.md; return wall seconds per stem.

    ``author`` tags every figure and GIF (the notebooks' ``author`` parameter); ``notebooks_dir`` defaults
    to <root>/notebooks and ``out`` to ``out_root(profile)``.
    Raises InputError for an unknown profile or name and NotebookError when a notebook fails
    (that notebook gets no executed copy; the ones before it keep theirs).
    """
    check_profile(profile)
    available = notebooks(notebooks_dir)
    chosen = select(available, only)
    out = Path(out) if out is not None else out_root(profile)
    reports = out / "reports"
    timings_path = reports / "notebooks" / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    timings = {stem: t for stem, t in timings.items() if stem in {p.stem for p in available}}
    if not chosen:
        log(f"no notebooks (NN_*.ipynb) in {notebooks_dir or project_root() / 'notebooks'}")
    kernels = [_start_kernel(chosen[0], profile, out)] if chosen else []
    try:
        for i, notebook in enumerate(chosen, 1):
            if i < len(chosen):  # the next notebook's kernel starts up while this one runs
                kernels.append(_start_kernel(chosen[i], profile, out))
            log(f"[{i}/{len(chosen)}] {notebook.stem} ...", end=" ", flush=True)
            start = time.perf_counter()
            try:
                _execute(notebook, reports / "notebooks" / f"{notebook.stem}.ipynb",
                         {"profile": profile, "author": author}, kernels[i - 1])
            except NotebookError:
                log("FAILED", flush=True)
                raise
            timings[notebook.stem] = round(time.perf_counter() - start, 1)
            log(f"{timings[notebook.stem]:.1f} s", flush=True)
            write_json(timings_path, timings)
            kernels[i - 1].shutdown_kernel(now=True)
    finally:
        for km in kernels:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    report = _write_summary(reports, profile, timings)
    log(f"wrote {report}")
    return {p.stem: timings[p.stem] for p in chosen}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _write_summary(reports: Path, profile: str, timings: Mapping[str, float]) -> Path:
    """REPORT.md: wall time per notebook, every table, every metrics file."""
    lines = [f"# vae-report: results (profile `{profile}`)", "",
             f"Regenerate with `python -m vaelib report --profile {profile}`.", "",
             "## Notebooks", "", "| notebook | wall time (s) | executed copy |", "| --- | --- | --- |"]
    for stem in sorted(timings):
        lines.append(f"| {stem} | {timings[stem]:.1f} | "
                     f"[ipynb](notebooks/{stem}.ipynb), [html](notebooks/{stem}.html) |")
    tables = sorted((reports / "tables").glob("*.md"))
    lines += ["", "## Tables", ""] + ([] if tables else ["(none)", ""])
    for table in tables:
        lines += [f"### {table.stem}", "", table.read_text().rstrip(), ""]
    metrics = sorted((reports / "metrics").glob("*.json"))
    lines += ["## Metrics", ""] + ([] if metrics else ["(none)", ""])
    for path in metrics:
        lines += [f"### {path.stem}", ""]
        lines += [f"- {key}: {_fmt(value)}" for key, value in _flatten(json.loads(path.read_text()))]
        lines.append("")
    with atomic_write(reports / "REPORT.md", "w") as f:
        f.write("\n".join(lines).rstrip() + "\n")
    return reports / "REPORT.md"
