"""Point every notebook's Colab badge and install cell at one GitHub repository.

    python tools/set_repo.py OWNER/NAME     # e.g. you/vae-report (a fork)
    python tools/set_repo.py                # print the repository the notebooks name now

The install cell holds `REPO = "owner/name"` and installs `vaelib @ git+https://github.com/{REPO}` on Colab;
the badge opens `colab.research.google.com/github/{REPO}/blob/main/notebooks/<notebook>`.
tests/test_notebooks.py checks that the two agree in every notebook. The paired scripts (notebooks/NN_*.py)
are rewritten too.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REPO_LINE = re.compile(r'^REPO = "([^"]*)"', re.M)
BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)([^/]+/[^/]+)(/blob/)")
NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def main(argv: list[str]) -> int:
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not argv:
        for path in paths:
            cells = nbformat.read(path, as_version=4).cells
            print(path.name, *{m for c in cells for m in REPO_LINE.findall(c.source)})
        return 0
    if len(argv) != 1 or not NAME.fullmatch(argv[0]):
        print(f"error: {' '.join(argv)!r}: expected one GitHub repository as OWNER/NAME", file=sys.stderr)
        return 2
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.source = BADGE.sub(lambda m: f"{m[1]}{argv[0]}{m[3]}", cell.source)
            if cell.cell_type == "code":
                cell.source = REPO_LINE.sub(f'REPO = "{argv[0]}"', cell.source)
        nbformat.write(nb, path)
        if path.with_suffix(".py").exists():  # its jupytext pair (make pair)
            import jupytext

            jupytext.write(nb, path.with_suffix(".py"), fmt="py:percent")
    print(f"{len(paths)} notebooks now name {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
