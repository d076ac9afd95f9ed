"""`make book`: the report as a static website (a Quarto book) in build/book/, from what `make report` wrote.

Nothing is executed: Quarto renders the executed notebooks (reports/notebooks/*.ipynb) with the outputs they
hold, and reports/REPORT.md, into one site with a table of contents and previous/next navigation. The pages
are laid out as in the repository (REPORT.md's links to notebooks, tables, metrics and figures keep working).
Quarto comes from PyPI (`quarto-cli`, pinned in requirements.lock) and needs no network.

    python tools/book.py [--root build/smoke] [--dest build/book]
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quarto() -> str:
    """The quarto executable: beside this Python (the venv's, from quarto-cli), else on $PATH."""
    here = Path(sysconfig.get_path("scripts")) / "quarto"
    found = str(here) if here.exists() else shutil.which("quarto")
    if not found:
        sys.exit("error: quarto not found; expected it in the venv (pip install -r requirements.lock)")
    return found


def _title(notebook: Path) -> str:
    """The notebook's first Markdown heading (its chapter title), else its stem."""
    for cell in json.loads(notebook.read_text()).get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+)$", "".join(cell.get("source", "")), re.M)
            if m:
                return m.group(1).strip()
    return notebook.stem


def _config(chapters: list[Path], tables: list[Path]) -> str:
    """_quarto.yml: a book; chapters in notebook order after the written report; never execute anything."""
    lines = ["project:", "  type: book", "  output-dir: _book",
             "  resources: [\"figures/**\", \"reports/metrics/*.json\", \"reports/tables/*.csv\"]",
             "book:", "  title: \"vae-report\"", "  subtitle: \"Variational autoencoders for 28×28 images\"",
             "  chapters:", "    - index.md", "    - reports/REPORT.md",
             "    - part: \"Chapters (executed notebooks)\"", "      chapters:",
             *[f"        - {p.as_posix()}" for p in chapters]]
    if tables:
        lines += ["  appendices:", *[f"    - {p.as_posix()}" for p in tables]]
    lines += ["execute:", "  enabled: false", "format:", "  html:", "    theme: cosmo", "    toc: true",
              "    number-sections: false", "    code-overflow: wrap", "    html-math-method: plain", ""]
    return "\n".join(lines)


def build(root: Path, dest: Path) -> Path:
    """Render the book of the outputs under ``root`` (a profile's output root) into ``dest``; return index.html."""
    reports = root / "reports"
    notebooks = sorted((reports / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not (reports / "REPORT.md").is_file() or not notebooks:
        sys.exit(f"error: {reports}: no REPORT.md or executed notebooks; expected the outputs of `make report` "
                 "(or `python -m vaelib report --profile smoke` with --root build/smoke)")
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
    (src / "index.md").write_text("\n".join([
        "# Preface {.unnumbered}", "",
        "A reproducible report on variational autoencoders for 28×28 greyscale images (MNIST, Fashion-MNIST).",
        "The [written report](reports/REPORT.md) comes first: findings, key figures and tables. The chapters are the",
        "executed notebooks, as `make report` ran them, with every output; nothing was re-executed to build this site.",
        "", *[f"- [{_title(root / 'reports' / 'notebooks' / c.name)}]({c.as_posix()})" for c in chapters], ""]))
    tables = sorted(Path("reports/tables") / p.name for p in (src / "reports/tables").glob("*.md"))
    (src / "_quarto.yml").write_text(_config(chapters, tables))
    result = subprocess.run([_quarto(), "render", str(src), "--no-execute"], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"error: quarto render failed ({result.returncode}):\n{result.stderr[-4000:]}")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.move(src / "_book", dest)
    return dest / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="output root holding reports/ and figures/ "
                        "(default: the project, i.e. the full profile; build/smoke for the smoke profile)")
    parser.add_argument("--dest", type=Path, default=ROOT / "build" / "book", help="site folder (default build/book)")
    args = parser.parse_args(argv)
    index = build(args.root.resolve(), args.dest.resolve())
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
