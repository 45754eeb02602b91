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


def bench(out: Callable[[str], None] = print, only: str | None = None) -> int:
    """Run every benchmark section; return 1 if a target is missed."""
    selected = [p for p in notebooks() if only is None or only in p.name]
    out(f"Notebooks: {len(selected)} run top to bottom, one fresh kernel each "
        f"(targets: {WALL_TARGET_S:.0f} s, {RSS_TARGET_MIB:.0f} MiB)")
    runs = []
    for index, path in enumerate(selected, 1):
        out(f"  [{index}/{len(selected)}] {path.name} ...")
        runs.append(run_notebook(path))
    out(notebook_table(runs))
    return 0 if all(r.within_targets for r in runs) else 1
