"""Where things live: project root, run cache, and per-profile output folders.

Outputs of profile "full" go under the project root (committed figures and reports);
outputs of "smoke" go under $VAELIB_OUT (default <root>/build/smoke) so tests and CI
never overwrite them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .profiles import check_profile, default_profile

__all__ = ["project_root", "runs_dir", "out_root", "figure_dir", "tables_dir", "metrics_dir"]


def _root_above(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def project_root() -> Path:
    """Nearest folder holding pyproject.toml above the cwd, else above the vaelib package, else the cwd."""
    cwd = Path.cwd()
    return _root_above(cwd) or _root_above(Path(__file__).resolve().parent) or cwd


def _env_dir(var: str, default: Path) -> Path:
    """$var as a folder (relative to the project root), or ``default``."""
    value = os.environ.get(var)
    return project_root() / value if value else default


def runs_dir() -> Path:
    """The run cache: $VAELIB_RUNS or <root>/runs."""
    return _env_dir("VAELIB_RUNS", project_root() / "runs")


def out_root(profile: str | None = None) -> Path:
    """Root of a profile's outputs: the project root for "full", $VAELIB_OUT or <root>/build/smoke for "smoke"."""
    profile = check_profile(profile or default_profile())
    if profile == "full":
        return project_root()
    return _env_dir("VAELIB_OUT", project_root() / "build" / "smoke")


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def figure_dir(stem: str, profile: str | None = None) -> Path:
    """<out_root>/figures/<stem>/ (created)."""
    return _made(out_root(profile) / "figures" / stem)


def tables_dir(profile: str | None = None) -> Path:
    """<out_root>/reports/tables/ (created)."""
    return _made(out_root(profile) / "reports" / "tables")


def metrics_dir(profile: str | None = None) -> Path:
    """<out_root>/reports/metrics/ (created)."""
    return _made(out_root(profile) / "reports" / "metrics")
