"""Sizes of the committed outputs (figures/, reports/) as they are, and what the lean writers make of them:
every GIF re-encoded by plots.web_gif, executed notebooks without the PNGs of saved figures, no HTML copies.
Reads only; prints a table. `python benchmarks/output_sizes.py [ROOT]` (default: the project)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from PIL import Image

from vaelib.plots import web_gif

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
MB = 1e6


def _frames(data_path: Path) -> int:
    with Image.open(data_path) as im:
        return getattr(im, "n_frames", 1)


def main() -> None:
    figures, reports = ROOT / "figures", ROOT / "reports"
    total = lambda folder, pattern="*": sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())
    gifs = sorted(figures.rglob("*.gif"))
    before = after = 0
    print(f"{'GIF':<48} {'frames':>6} {'before MB':>9} {'after MB':>8} {'s':>5}")
    for path in gifs:
        data = path.read_bytes()
        t = time.perf_counter()
        lean = web_gif(data)
        before, after = before + len(data), after + len(lean)
        print(f"{path.relative_to(figures).as_posix():<48} {_frames(path):>6} {len(data) / MB:>9.2f} {len(lean) / MB:>8.2f}"
              f" {time.perf_counter() - t:>5.1f}")
    nb_before = nb_after = 0
    for path in sorted((reports / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        nb_before += path.stat().st_size
        embedded = sum(len(o.get("data", {}).get("image/png", "")) for c in nb["cells"] for o in c.get("outputs", []))
        nb_after += path.stat().st_size - embedded
    html = total(reports / "notebooks", "*.html")
    fig_now, rep_now = total(figures), total(reports)
    fig_lean = fig_now - before + after
    rep_lean = rep_now - html - nb_before + nb_after
    print(f"\nGIFs {before / MB:.1f} → {after / MB:.1f} MB; executed notebooks {nb_before / MB:.1f} → ≈{nb_after / MB:.1f} MB;"
          f" HTML copies {html / MB:.1f} → 0 MB")
    print(f"figures/ {fig_now / MB:.1f} → {fig_lean / MB:.1f} MB; reports/ {rep_now / MB:.1f} → ≈{rep_lean / MB:.1f} MB;"
          f" together {(fig_now + rep_now) / MB:.1f} → ≈{(fig_lean + rep_lean) / MB:.1f} MB")


if __name__ == "__main__":
    main()
