"""``python -m vaelib report|sweep|store ...``; anything else goes to the ``vae`` command (vaelib.cli)."""

from __future__ import annotations

import argparse
import math
import sys

from .errors import InputError, NotebookError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's hook (subcommands too): one InputError line, exit status 2
        raise InputError(f"{message}; expected `{' '.join(self.format_usage().split()).removeprefix('usage: ')}`")


def _at_least_zero(noun: str):
    """An argparse type: a finite number ≥ 0 (``noun`` names it in the error: a negative number of days would
    prune every entry; CPUs or GPUs per run)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}; expected a finite number ≥ 0")
        return value
    return parse


_days, _amount = _at_least_zero("a number of days"), _at_least_zero("an amount")


def _count(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count; expected a whole number ≥ 1")
    return int(text)


def _setting(text: str) -> tuple[str, object]:
    """An argparse type: ``key=value`` → (key, the value as a Python literal, else as a string)."""
    import ast

    key, eq, value = text.partition("=")
    if not eq or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not a setting; expected KEY=VALUE, e.g. epochs=5")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vaelib")
    sub = parser.add_subparsers(dest="command", required=True)
    report = sub.add_parser("report", help="execute the notebooks with papermill and write reports/REPORT.md")
    report.add_argument("--profile", default=None, help="smoke | full | paper (default: $VAELIB_PROFILE or full)")
    report.add_argument("--only", metavar="NAME", help="one notebook: a stem (01_vae) or a prefix (01)")
    report.add_argument("--author", help="tag on every figure and GIF (default: `git config user.name`)")
    sweep = sub.add_parser("sweep", help="train (or load) every run of the report's run table into the store")
    sweep.add_argument("chapter", nargs="?", metavar="CHAPTER", help="one chapter's runs (default: every chapter's)")
    sweep.add_argument("--only", metavar="CHAPTER", help="the same as CHAPTER")
    sweep.add_argument("--profile", default=None, help="smoke | full | paper (default: $VAELIB_PROFILE or full)")
    sweep.add_argument("--seeds", type=_count, metavar="N", help="train seeds 0..N-1 where a chapter has seed lists")
    sweep.add_argument("--set", action="append", default=[], type=_setting, metavar="KEY=VALUE", dest="overrides",
                       help="change a setting (a Python literal: 5, 0.5, [2, 4], None); repeatable")
    sweep.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: one run at a time in this process (default); ray: one Ray task per run")
    sweep.add_argument("--address", help="ray: the cluster (auto, ray://host:port; default: start a local one)")
    sweep.add_argument("--cpus-per-run", type=_amount, metavar="N", help="CPUs (torch threads) per run (ray default 1)")
    sweep.add_argument("--gpus-per-run", type=_amount, default=0, metavar="N", help="ray: GPUs per run (default 0)")
    st = sub.add_parser("store", help="list, verify or prune the result store ($VAELIB_RUNS or runs/)")
    st.add_argument("action", choices=("list", "verify", "prune"))
    st.add_argument("--older-than", type=_days, metavar="DAYS", help="prune: also entries unused for DAYS days")
    st.add_argument("--dry-run", action="store_true", help="prune: only say what would be deleted")
    return parser


def _sweep(args: argparse.Namespace) -> int:
    """Train (or load) the runs of the chosen chapters with the chosen engine; one line per run, then a table."""
    from tabulate import tabulate
    from tqdm.auto import tqdm

    from . import executor, experiments
    from .train import progress_enabled

    if args.chapter and args.only and args.chapter != args.only:
        raise InputError(f"CHAPTER {args.chapter!r} and --only {args.only!r}: two chapters; expected one")
    chapter = args.chapter or args.only
    if args.engine == "ray":
        executor.import_ray()
    chapters = experiments.sweep_settings(chapter and [chapter], args.profile, dict(args.overrides), args.seeds)
    jobs, nets = {}, {}
    for p in chapters.values():
        for cfg in experiments.runs(p):
            net = None
            if cfg.perceptual:  # the chapter's perceptual network, as its notebook builds it
                from .fid import perceptual_network

                options = experiments.perceptual_options(p)
                name = (cfg.dataset, *sorted(options.items()))
                net = nets[name] = nets.get(name) or perceptual_network(cfg.dataset, None, **options).cpu()
            job = executor.train_job(cfg, net)
            jobs.setdefault(job.key, job)
    jobs = list(jobs.values())
    rows, failed = [], 0
    with tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress_enabled()) as bar:
        for i, out in enumerate(executor.run(jobs, args.engine, address=args.address, num_cpus=args.cpus_per_run,
                                             num_gpus=args.gpus_per_run), 1):
            m, status = out.metrics or {}, {"computed": "trained"}.get(out.status, out.status)
            failed += status == "failed"
            tqdm.write(f"[{i}/{len(jobs)}] {out.job.label}: {status}" + (
                f" ({m['train_seconds']:.0f} s of training, test −ELBO {m['test_total']:.2f})" if m else
                f" ({out.error})"))
            rows.append([out.job.label, status, m.get("train_seconds"), m.get("test_total"), out.job.key[:12]])
            bar.update(1)
    print(tabulate(rows, ["run", "status", "train s", "test −ELBO", "key"], floatfmt=".1f"))
    print(f"{len(rows)} runs: {sum(r[1] == 'loaded' for r in rows)} loaded, "
          f"{sum(r[1] == 'trained' for r in rows)} trained, {failed} failed")
    return 1 if failed else 0


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
            return _sweep(args)
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
