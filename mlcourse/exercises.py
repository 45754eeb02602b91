"""Exercises are generated from solutions by nbgrader's own generate_assignment.

`mlcourse exercises` writes exercises/NN-slug/ from solutions/NN-slug/; `--check` only reports
which ones are out of date (the test suite runs it). It is an author's command: learners work in
their own copies in workspace/ (:mod:`mlcourse.workspace`). Generating never deletes a file, and
it refuses to overwrite a file of exercises/ that carries local edits (a learner's answers typed
into exercises/ out of habit, say) unless told to with ``force``.

A file has local edits when it differs both from git's committed version and from what
`mlcourse exercises` itself last wrote in this clone (recorded next to git's own data, so an
author can regenerate an exercise again and again before committing it).
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import grading, paths

RECORD_NAME = "mlcourse-generated-exercises.json"


def folder_files(folder: Path) -> set[str]:
    """Every file under ``folder`` (as posix paths relative to it), JupyterLab checkpoints left
    out."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and ".ipynb_checkpoints" not in p.parts}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: a reader (or a crash)
    sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# What git knows about a file

def _git(*args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=paths.course_root(), capture_output=True)
    except FileNotFoundError:      # no git on this machine
        return None


def git_dir() -> Path | None:
    """The git directory of the course's clone, or None outside a git checkout."""
    result = _git("rev-parse", "--absolute-git-dir")
    if result is None or result.returncode != 0:
        return None
    return Path(result.stdout.decode().strip())


def committed_bytes(path: Path) -> bytes | None:
    """The content of ``path`` in git's HEAD commit, or None (not in git, or not committed)."""
    relative = path.resolve().relative_to(paths.course_root()).as_posix()
    result = _git("show", f"HEAD:./{relative}")
    if result is None or result.returncode != 0:
        return None
    return result.stdout


def _record_path() -> Path | None:
    folder = git_dir()
    return folder / RECORD_NAME if folder else None


def generated_record() -> dict[str, str]:
    """``{path relative to the course: sha256}`` of every file `mlcourse exercises` wrote here."""
    record = _record_path()
    if record is None or not record.is_file():
        return {}
    try:
        return dict(json.loads(record.read_text()))
    except (ValueError, TypeError):     # unreadable: as if nothing was recorded (the safe side)
        return {}


def _save_record(record: dict[str, str]) -> None:
    path = _record_path()
    if path is not None:
        write_atomically(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


def has_local_edits(path: Path, record: dict[str, str] | None = None) -> bool:
    """True when the file in exercises/ differs from git's committed version and from what
    `mlcourse exercises` last wrote there: someone edited it by hand.

    Outside a git checkout nothing tells an edit from an earlier release, so any existing file
    counts as edited (generating over it then needs ``force``).
    """
    if not path.is_file():
        return False
    data = path.read_bytes()
    if data == committed_bytes(path):
        return False
    relative = path.resolve().relative_to(paths.course_root()).as_posix()
    return (generated_record() if record is None else record).get(relative) != sha256(data)


def released_version(path: Path, record: dict[str, str] | None = None) -> tuple[bytes, bool]:
    """The course's release of an exercise file, and whether the file carries local edits.

    The release is the file itself, or git's committed version when the file carries local
    edits (which are nobody's release).
    """
    if has_local_edits(path, record):
        committed = committed_bytes(path)
        return (committed if committed is not None else path.read_bytes()), True
    return path.read_bytes(), False


# --------------------------------------------------------------------------------------------
# Generating

@dataclass
class Generated:
    """What `generate` did with one exercise folder (file names relative to it)."""

    assignment: str
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)   # local edits: the module was not written
    extra: list[str] = field(default_factory=list)     # not in the release: left in place


def _plan(assignment: str, release: Path, target: Path, record: dict[str, str],
          force: bool) -> tuple[Generated, dict[str, bytes]]:
    """Compare a fresh release with exercises/<id>/: what to write, and what must not be."""
    outcome, writes = Generated(assignment), {}
    root = paths.course_root()
    for name in sorted(folder_files(release)):
        data, current = (release / name).read_bytes(), target / name
        if current.is_file() and current.read_bytes() == data:
            outcome.unchanged.append(name)
            continue
        if not force and has_local_edits(current, record):
            outcome.refused.append(name)
        writes[name] = data
    if target.is_dir():
        outcome.extra = sorted(folder_files(target) - folder_files(release))
    if outcome.refused:
        writes = {}
    outcome.written = sorted(writes)
    for name in outcome.written:
        record[(target / name).relative_to(root).as_posix()] = sha256(writes[name])
    return outcome, writes


def refusal_message(outcome: Generated) -> str:
    folder = f"exercises/{outcome.assignment}"
    files = ", ".join(f"{folder}/{name}" for name in outcome.refused)
    return (f"error: {files} has local edits (it differs from git's committed version): "
            f"nothing written for {outcome.assignment}.\n"
            f"  Learners: your work belongs in workspace/{outcome.assignment}/, which `make lab` "
            "or `mlcourse workspace` makes (from your edited file, if you have no copy there "
            "yet); exercises/ is the course's release.\n"
            f"  Authors: `mlcourse exercises --force {outcome.assignment}` overwrites it.")


def generate(assignments: list[str] | None = None, out: Callable[[str], None] = print,
             force: bool = False) -> list[Generated]:
    """Write exercises/<id>/ from solutions/<id>/ for each assignment, with real nbgrader.

    Only files whose content changes are written. No file is ever deleted: files that the
    release does not have are reported. A module with a file carrying local edits
    (:func:`has_local_edits`) is not written at all unless ``force``.

    Returns
    -------
    list of Generated
        One per assignment; ``refused`` is non-empty for a module left as it was.
    """
    record = generated_record()
    recorded = dict(record)
    outcomes = []
    for assignment in assignments or paths.assignment_ids():
        target = paths.exercises_dir() / assignment
        with grading.PrivateCourse(assignment) as course:
            outcome, writes = _plan(assignment, course.released_path.parent, target, record,
                                    force)
        for name, data in writes.items():
            write_atomically(target / name, data)
        outcomes.append(outcome)
        if outcome.refused:
            out(refusal_message(outcome))
        elif outcome.written:
            out(f"generated exercises/{assignment}/ ({len(outcome.written)} file(s) written)")
        else:
            out(f"exercises/{assignment}/ is up to date")
        for name in outcome.extra:
            out(f"  exercises/{assignment}/{name} is not part of the generated exercise: "
                "left in place (delete it yourself if it should go)")
    if record != recorded:
        _save_record(record)
    return outcomes


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
            expected, actual = folder_files(release), folder_files(target)
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
