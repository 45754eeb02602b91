"""Exercises are generated from solutions by nbgrader's own generate_assignment.

`mlcourse exercises` regenerates exercises/NN-slug/ from solutions/NN-slug/; `--check` only
reports which ones are out of date (the test suite runs it).
"""

from __future__ import annotations

import filecmp
import shutil
from collections.abc import Callable
from pathlib import Path

from . import grading, paths


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and ".ipynb_checkpoints" not in p.parts}


def generate(assignments: list[str] | None = None,
             out: Callable[[str], None] = print) -> list[Path]:
    """Regenerate exercises/<id>/ for each assignment; return the folders written."""
    written = []
    for assignment in assignments or paths.assignment_ids():
        with grading.PrivateCourse(assignment) as course:
            release = course.released_path.parent
            target = paths.exercises_dir() / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(release, target)
            written.append(target)
            out(f"generated {target.relative_to(paths.course_root())}/")
    return written


def stale(assignments: list[str] | None = None) -> list[str]:
    """Descriptions of every exercise that differs from what its solution generates."""
    problems = []
    all_ids = paths.assignment_ids()
    for assignment in assignments or all_ids:
        with grading.PrivateCourse(assignment) as course:
            release = course.released_path.parent
            target = paths.exercises_dir() / assignment
            if not target.is_dir():
                problems.append(f"{assignment}: exercises/{assignment}/ is missing")
                continue
            expected, actual = _files(release), _files(target)
            for name in sorted(expected - actual):
                problems.append(f"{assignment}: {name} is missing from exercises/")
            for name in sorted(actual - expected):
                problems.append(f"{assignment}: exercises/{assignment}/{name} has no source")
            for name in sorted(expected & actual):
                if not filecmp.cmp(release / name, target / name, shallow=False):
                    problems.append(f"{assignment}: {name} differs from what "
                                    f"solutions/{assignment}/ generates")
    if not assignments:
        for folder in sorted(paths.exercises_dir().iterdir()):
            if folder.is_dir() and folder.name not in all_ids:
                problems.append(f"{folder.name}: exercises/{folder.name}/ has no solution")
    return problems
