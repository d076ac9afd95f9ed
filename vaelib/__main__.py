"""``python -m vaelib report [--profile smoke|full] [--only NAME]``; other arguments go to the ``vae`` CLI."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from .errors import InputError, NotebookError


def _report(argv: list[str]) -> int:
    from .profiles import default_profile
    from .report import run_report

    parser = argparse.ArgumentParser(prog="python -m vaelib report",
                                     description="Execute the notebooks with papermill and write REPORT.md.")
    parser.add_argument("--profile", default=None, help="smoke | full (default: $VAELIB_PROFILE or full)")
    parser.add_argument("--only", metavar="NAME", help="one notebook: a stem (01_vae) or a prefix (01)")
    args = parser.parse_args(argv)
    try:
        run_report(args.profile or default_profile(), args.only)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NotebookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch: ``report`` here, anything else to ``vaelib.cli.main`` when that module exists."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        return _report(argv[1:])
    if importlib.util.find_spec("vaelib.cli") is not None:
        from . import cli

        return cli.main(argv) or 0
    print("usage: python -m vaelib report [--profile smoke|full] [--only NAME]\n"
          f"error: command {' '.join(argv) or '(none)'!r}: unknown; expected 'report'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
