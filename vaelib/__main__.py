"""``python -m vaelib report|sweep|store ...``; anything else goes to the ``vae`` command (vaelib.cli)."""

from __future__ import annotations

import argparse
import math
import sys

from .errors import InputError, NotebookError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's hook (subcommands too): one InputError line, exit status 2
        raise InputError(f"{message}; expected `{' '.join(self.format_usage().split()).removeprefix('usage: ')}`")


def _days(text: str) -> float:
    """An argparse type: a finite number of days ≥ 0 (a negative one would prune every entry)."""
    try:
        days = float(text)
    except ValueError:
        days = float("nan")
    if not (math.isfinite(days) and days >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days; expected a finite number ≥ 0")
    return days


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vaelib")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="execute the notebooks with papermill and write reports/REPORT.md")
    report.add_argument("--profile", default=None, help="smoke | full | paper (default: $VAELIB_PROFILE or full)")
    report.add_argument("--only", metavar="NAME", help="one notebook: a stem (01_vae) or a prefix (01)")
    report.add_argument("--author", help="tag on every figure and GIF (default: `git config user.name`)")
    sweep = sub.add_parser("sweep", help="train (or load) every run of the report's run table into the store")
    sweep.add_argument("--profile", default=None, help="smoke | full | paper (default: $VAELIB_PROFILE or full)")
    sweep.add_argument("--only", metavar="CHAPTER", help="one chapter's runs (a stem such as 02_latent_sizes)")
    st = sub.add_parser("store", help="list, verify or prune the result store ($VAELIB_RUNS or runs/)")
    st.add_argument("action", choices=("list", "verify", "prune"))
    st.add_argument("--older-than", type=_days, metavar="DAYS", help="prune: also entries unused for DAYS days")
    st.add_argument("--dry-run", action="store_true", help="prune: only say what would be deleted")
    return parser


def _sweep(profile: str | None, only: str | None) -> None:
    from .experiments import run_table
    from .train import train_or_load

    table = run_table(profile)
    if only is not None and only not in table:
        raise InputError(f"chapter {only!r}: unknown; expected one of {', '.join(table)}")
    configs = list(dict.fromkeys(c for stem, cs in table.items() if only in (None, stem) for c in cs))
    for i, cfg in enumerate(configs, 1):
        run = train_or_load(cfg)
        print(f"[{i}/{len(configs)}] {cfg.label}: {'loaded' if run.cached else 'trained'} "
              f"({run.metrics['train_seconds']:.0f} s of training, test −ELBO {run.metrics['test_total']:.2f})")


def _author(given: str | None) -> str:
    """``given``, else the git user name of this checkout, else no tag."""
    if given is not None:
        return given
    import subprocess

    try:
        return subprocess.run(["git", "config", "user.name"], capture_output=True, text=True).stdout.strip()
    except OSError:  # no git
        return ""


def _store(action: str, older_than: float | None, dry_run: bool) -> int:
    from . import store

    if action == "list":
        rows = store.entries()
        for row in rows:
            print(f"{row['fn']:<42} {row['key'][:16]}  {row['bytes'] / 2**20:8.2f} MB  last used {row['last_used']}")
        print(f"{len(rows)} entries, {sum(r['bytes'] for r in rows) / 2**20:.1f} MB in {store.root()}")
        return 0
    if action == "verify":
        problems = store.verify()
        for folder, problem in problems:
            print(f"damaged: {folder}: {problem}")
        print(f"{len(store.entries())} entries checked, {len(problems)} damaged")
        return 1 if problems else 0
    for folder in store.prune(older_than, dry_run):
        print(f"{'would delete' if dry_run else 'deleted'} {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("report", "sweep", "store"):
        from . import cli

        return cli.main(argv) or 0
    try:
        args = _parser().parse_args(argv)
        if args.command == "report":
            from .experiments import default_profile
            from .report import run_report

            run_report(args.profile or default_profile(), args.only, author=_author(args.author))
        elif args.command == "sweep":
            _sweep(args.profile, args.only)
        else:
            return _store(args.action, args.older_than, args.dry_run)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NotebookError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
