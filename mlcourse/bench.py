"""`mlcourse bench`: figures for the performance targets (never asserted in tests).

First section: every lesson and solution run top to bottom by nbclient in a fresh kernel, with
its wall time and the kernel's peak resident memory. Each notebook runs in its own worker
process, so that the worker's RUSAGE_CHILDREN peak is that notebook's kernel alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import paths

WALL_TARGET_S = 60.0
RSS_TARGET_MIB = 1024.0

_WORKER = r"""
import json, resource, sys, time
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
start = time.perf_counter()
error = ""
try:
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": sys.argv[2]}}).execute()
except Exception as exc:
    error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
wall = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_rss_mib": peak_kib / 1024, "error": error}))
"""


@dataclass
class NotebookRun:
    notebook: str
    wall_s: float
    peak_rss_mib: float
    error: str

    @property
    def within_targets(self) -> bool:
        return not self.error and self.wall_s <= WALL_TARGET_S and \
            self.peak_rss_mib <= RSS_TARGET_MIB


def notebooks() -> list[Path]:
    lessons = sorted(paths.lessons_dir().glob("[0-9][0-9]-*.ipynb"))
    solutions = [paths.solutions_dir() / a / f"{a}.ipynb" for a in paths.assignment_ids()]
    return lessons + solutions


def run_notebook(path: Path) -> NotebookRun:
    """Execute one notebook in a fresh worker and kernel; measure it."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _WORKER, str(path), str(path.parent)],
                            capture_output=True, text=True)
    rel = str(path.relative_to(paths.course_root()))
    if result.returncode != 0:
        return NotebookRun(rel, time.perf_counter() - started, 0.0,
                           result.stderr.strip().splitlines()[-1] if result.stderr else "failed")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return NotebookRun(rel, figures["wall_s"], figures["peak_rss_mib"], figures["error"])


def notebook_table(runs: list[NotebookRun]) -> str:
    width = max(len(r.notebook) for r in runs) + 2
    lines = [f"{'notebook':<{width}}{'wall s':>8}{'peak RSS MiB':>14}  within 60 s / 1 GiB"]
    for run in runs:
        verdict = "yes" if run.within_targets else ("ERROR " + run.error if run.error else "NO")
        lines.append(f"{run.notebook:<{width}}{run.wall_s:>8.1f}{run.peak_rss_mib:>14.0f}  "
                     f"{verdict}")
    return "\n".join(lines)


def bench(out: Callable[[str], None] = print, only: str | None = None,
          sections: tuple[str, ...] = ("notebooks", "cohort", "report"),
          learners: int = 100) -> int:
    """Run the benchmark sections; return 1 if a target is missed."""
    missed = False
    if "report" in sections:
        missed |= report_bench(out=out) > 10.0
        out("")
    if "notebooks" in sections:
        missed |= notebook_bench(out, only) != 0
    if "cohort" in sections:
        out("")
        figures = cohort_bench(learners=learners, out=out)
        missed |= figures["speedup_vs_stock"] < 1.8 or figures["overhead_vs_floor"] > 0.2
    return 1 if missed else 0


def notebook_bench(out: Callable[[str], None] = print, only: str | None = None) -> int:
    """Every lesson and solution, top to bottom; return 1 if a target is missed."""
    selected = [p for p in notebooks() if only is None or only in p.name]
    out(f"Notebooks: {len(selected)} run top to bottom, one fresh kernel each "
        f"(targets: {WALL_TARGET_S:.0f} s, {RSS_TARGET_MIB:.0f} MiB)")
    runs = []
    for index, path in enumerate(selected, 1):
        out(f"  [{index}/{len(selected)}] {path.name} ...")
        runs.append(run_notebook(path))
    out(notebook_table(runs))
    return 0 if all(r.within_targets for r in runs) else 1


# ------------------------------------------------------------------ cohort grading throughput

_FLOOR_WORKER = r"""
import pathlib, sys
import nbformat
from nbclient import NotebookClient
for line in sys.stdin:          # one notebook path per line, handed out by the parent
    path = line.strip()
    if not path:
        break
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(pathlib.Path(path).parent)}})
    client.execute()
    print("done", flush=True)
"""

RUNNABLE_PROFILES = [("right", 0.5), ("partly-wrong", 0.35), ("blank", 0.05), ("late", 0.10)]


def _floor(notebooks: list[Path], workers: int) -> float:
    """Raw nbclient execution of the same notebooks over the same number of processes, each
    taking the next notebook when it is free (as the grader's workers do): what grading would
    cost if it did nothing but run the code."""
    import collections
    import shutil
    import tempfile
    import threading

    with tempfile.TemporaryDirectory(prefix="mlcourse-floor-") as scratch:
        copies = collections.deque()
        for index, notebook in enumerate(notebooks):   # run copies: never touch the originals
            folder = Path(scratch) / str(index)
            folder.mkdir()
            shutil.copy(notebook, folder / notebook.name)
            copies.append(str(folder / notebook.name))
        lock = threading.Lock()

        def hand_out(process: subprocess.Popen) -> None:
            with lock:
                process.stdin.write((copies.popleft() if copies else "") + "\n")
                process.stdin.flush()

        def pump(process: subprocess.Popen) -> None:
            for _ in process.stdout:
                hand_out(process)

        started = time.perf_counter()
        processes = [subprocess.Popen([sys.executable, "-c", _FLOOR_WORKER],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
                     for _ in range(min(workers, len(copies)))]
        threads = []
        for process in processes:
            hand_out(process)
            threads.append(threading.Thread(target=pump, args=(process,), daemon=True))
            threads[-1].start()
        for process in processes:
            process.wait()
        return time.perf_counter() - started


def cohort_bench(learners: int = 100, assignments: list[str] | None = None,
                 workers: int | None = None, out: Callable[[str], None] = print) -> dict:
    """Grade one simulated cohort three ways in one run and compare their wall times."""
    import os
    import shutil
    import tempfile

    from .cohort import grader, simulate

    assignments = assignments or paths.assignment_ids()[:2]
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-") as scratch:
        ours_dir, stock_dir = Path(scratch) / "ours", Path(scratch) / "stock"
        simulate.simulate(ours_dir, learners, seed=0, assignments=assignments,
                          out=lambda line: None, profiles_weights=RUNNABLE_PROFILES)
        shutil.copytree(ours_dir, stock_dir)
        submissions = sorted((ours_dir / "submitted").glob("*/*/*.ipynb"))
        out(f"Cohort grading: {learners} learners x {len(assignments)} assignments = "
            f"{len(submissions)} submissions ({', '.join(assignments)}), {workers} workers")

        out("  [1/3] raw nbclient execution (the floor) ...")
        floor = _floor(submissions, workers)

        out("  [2/3] mlcourse cohort autograde (sandboxed, parallel) ...")
        started = time.perf_counter()
        grader.autograde(ours_dir, assignments, workers=workers, out=lambda line: None,
                         show_progress=False)
        ours = time.perf_counter() - started

        out("  [3/3] stock nbgrader autograde (one command per assignment) ...")
        started = time.perf_counter()
        for assignment in assignments:
            done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment,
                                   "--force"], cwd=stock_dir, capture_output=True, text=True)
            if done.returncode != 0:   # a failed stock run would make a meaningless ratio
                tail = "\n".join(done.stderr.splitlines()[-5:])
                raise RuntimeError(f"stock nbgrader autograde {assignment} failed:\n{tail}")
        stock = time.perf_counter() - started

    figures = {"submissions": len(submissions), "floor_s": floor, "ours_s": ours,
               "stock_s": stock, "speedup_vs_stock": stock / ours,
               "overhead_vs_floor": ours / floor - 1}
    out(f"{'grader':<34}{'wall s':>9}{'per submission s':>18}")
    for name, seconds in [("raw nbclient (floor)", floor), ("mlcourse cohort autograde", ours),
                          ("stock nbgrader autograde", stock)]:
        out(f"{name:<34}{seconds:>9.1f}{seconds / len(submissions):>18.2f}")
    out(f"ours vs stock: {figures['speedup_vs_stock']:.2f}x faster (target >= 1.8x); "
        f"ours vs floor: {figures['overhead_vs_floor']:+.0%} (target <= +20%)")
    return figures


# ------------------------------------------------------------------ report build time

def synthetic_progress(store_url: str, learners: int = 500, seed: int = 0) -> int:
    """Fill a progress store with a plausible history: every task of every module, one to
    three attempts each, spread over ten weeks. Returns the number of rows."""
    import datetime as dt

    import numpy as np

    from . import grading, progress

    rng = np.random.default_rng(seed)
    tasks = []
    for assignment in paths.assignment_ids():
        solution = grading.read_notebook(paths.solutions_dir() / assignment /
                                         f"{assignment}.ipynb")
        skills = progress.task_skills(solution, assignment)
        for grade_id, cell in grading.graded_cells(solution).items():
            meta = grading.nbgrader_meta(cell)
            if meta.get("grade"):
                kind = "manual" if meta.get("solution") else "autograded"
                tasks.append((assignment, grade_id, skills[grade_id], kind,
                              float(meta.get("points", 1))))
    start = progress.utcnow() - dt.timedelta(weeks=10)
    teams = ["payments", "search", "risk", "growth", "platform"]
    rows = []
    for index in range(learners):
        learner, team = f"learner{index:04d}", teams[index % len(teams)]
        ability, reached = rng.uniform(0.3, 1.0), rng.integers(1, len(tasks) + 1)
        for position, (assignment, task, skill, kind, points) in enumerate(tasks[:reached]):
            day = start + dt.timedelta(days=float(position) * 70 / len(tasks))
            for attempt in range(int(rng.integers(1, 4))):
                passed = rng.random() < ability + 0.15 * attempt
                score = points if passed else 0.0
                status = ("passed" if passed else "failed") if kind == "autograded" else \
                    "needs-manual-grading"
                rows.append(progress.Attempt(
                    learner=learner, team=team, assignment=assignment, task=task, skill=skill,
                    kind=kind, score=score if kind == "autograded" else 0.0,
                    max_score=points, status=status,
                    attempted_at=day + dt.timedelta(hours=int(attempt * 30)),
                    source="demo", submission_status="needs-manual-grading"))
    store = progress.ProgressStore(store_url)
    store.record(rows)
    store.dispose()
    return len(rows)


def report_bench(learners: int = 500, out: Callable[[str], None] = print) -> float:
    import tempfile

    from . import report

    with tempfile.TemporaryDirectory(prefix="mlcourse-report-") as scratch:
        url = f"sqlite:///{scratch}/progress.db"
        rows = synthetic_progress(url, learners=learners)
        started = time.perf_counter()
        page = report.build(Path(scratch) / "report.html", progress_url=url)
        seconds = time.perf_counter() - started
        size = page.stat().st_size
    out(f"Report: {learners} learners x {len(paths.assignment_ids())} modules, {rows:,} "
        f"attempts: built in {seconds:.1f} s (target <= 10 s), {size / 1e6:.1f} MB HTML")
    return seconds
