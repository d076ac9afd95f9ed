"""`make book`: the report as a static website in build/book/, from what `make report` wrote.

Nothing is executed: MyST-NB (under Sphinx, with the Jupyter Book theme) renders reports/REPORT.md and the
executed notebooks (reports/notebooks/*.ipynb) with the outputs they hold into one site with a table of
contents and previous/next links. Pages keep the repository's layout, so REPORT.md's links to notebooks,
tables, metrics and figures work. Everything comes from PyPI through requirements.lock; no network is used.

    python tools/book.py [--root build/smoke] [--dest build/book]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONF = '''\
project = "vae-report"
author = "the vae-report authors"
extensions = ["myst_nb"]
nb_execution_mode = "off"  # render the stored outputs; never run a notebook
nb_output_stderr = "show"
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing", "misc.highlighting_failure"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = "vae-report"
html_static_path = []
html_theme_options = {"show_toc_level": 2, "home_page_in_toc": True, "use_download_button": False}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
'''


def _title(notebook: Path) -> str:
    """The notebook's first Markdown heading (its chapter title), else its stem."""
    for cell in json.loads(notebook.read_text()).get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(cell.get("source", "")), re.M)
            if m:
                return m.group(1).strip()
    return notebook.stem


def _index(chapters: list[Path], titles: list[str], tables: list[Path]) -> str:
    """index.md: a preface and the table of contents (the written report, the chapters, the tables)."""
    def toc(caption: str, entries: list[str], depth: int = 1) -> list[str]:
        return ["```{toctree}", f":caption: {caption}", f":maxdepth: {depth}", "", *entries, "```", ""]

    lines = ["# vae-report", "",
             "A reproducible report on variational autoencoders for 28×28 greyscale images (MNIST, Fashion-MNIST).",
             "The [written report](reports/REPORT.md) comes first: findings, key figures and tables. The chapters are",
             "the executed notebooks as `make report` ran them, with every output; nothing was re-executed to build",
             "this site.", "", *[f"- [{t}]({c.as_posix()})" for c, t in zip(chapters, titles)], "",
             *toc("Report", ["reports/REPORT"], 2),
             *toc("Chapters (executed notebooks)", [c.with_suffix("").as_posix() for c in chapters])]
    if tables:
        lines += toc("Tables", [t.with_suffix("").as_posix() for t in tables])
    return "\n".join(lines)


def build(root: Path, dest: Path) -> Path:
    """Render the book of the outputs under ``root`` (a profile's output root) into ``dest``; return index.html."""
    reports = root / "reports"
    notebooks = sorted((reports / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not (reports / "REPORT.md").is_file() or not notebooks:
        raise SystemExit(f"error: {reports}: no REPORT.md or executed notebooks; expected the outputs of `make report`"
                         " (or of `python -m vaelib report --profile smoke`, with --root build/smoke)")
    src = dest.parent / f"{dest.name}-src"
    shutil.rmtree(src, ignore_errors=True)
    for sub in ("figures", "reports/tables", "reports/metrics"):
        if (root / sub).is_dir():
            shutil.copytree(root / sub, src / sub)
    (src / "reports/notebooks").mkdir(parents=True)
    shutil.copy2(reports / "REPORT.md", src / "reports/REPORT.md")
    for nb in notebooks:
        shutil.copy2(nb, src / "reports/notebooks" / nb.name)
    chapters = [Path("reports/notebooks") / nb.name for nb in notebooks]
    tables = sorted(Path("reports/tables") / p.name for p in (src / "reports/tables").glob("*.md"))
    for table in tables:  # a table file is a bare Markdown table: give its page a heading
        path = src / table
        path.write_text(f"# {table.stem}\n\n[csv]({table.stem}.csv)\n\n{path.read_text()}")
    (src / "index.md").write_text(_index(chapters, [_title(nb) for nb in notebooks], tables))
    (src / "conf.py").write_text(CONF)
    html = src / "_build" / "html"
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", str(src), str(html)],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"error: sphinx failed ({result.returncode}):\n{result.stderr[-4000:]}")
    for sub in ("figures", "reports/metrics", "reports/tables"):  # files that pages link to (not only embed)
        for path in (src / sub).rglob("*") if (src / sub).is_dir() else ():
            target = html / path.relative_to(src)
            if path.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(html, dest)
    shutil.rmtree(src, ignore_errors=True)
    if result.stderr.strip():
        print(result.stderr.strip(), file=sys.stderr)
    return dest / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="output root holding reports/ and figures/ "
                        "(default: the project, i.e. the full profile; build/smoke for the smoke profile)")
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "book", help="site folder (default build/book)")
    args = parser.parse_args(argv)
    print(f"wrote {build(args.root.resolve(), args.dest.resolve())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
