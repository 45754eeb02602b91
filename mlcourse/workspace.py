"""A learner's workspace: their own copy of every exercise, which the course never overwrites.

exercises/ is the course's release: authors regenerate it and `git pull` updates it. A learner
works in workspace/NN-slug/ instead (gitignored), copied from exercises/NN-slug/ on first use by
`make lab`, `mlcourse workspace` or `mlcourse check`. The manifest
workspace/.mlcourse-workspace.json records, per assignment, the sha256 of each file as it was
copied, and workspace/.mlcourse/originals/ keeps each notebook as it was released then. When
the course updates an exercise:

- a copy still identical to what was copied (not started) is refreshed to the new version;
- a copy the learner changed (started) is never touched: they are told which module, where the
  new version is, and that ``mlcourse workspace --reset NN-slug`` starts over from it, moving
  their copy into workspace/backups/.

Nothing in the workspace is ever deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import exercises, paths

MANIFEST_NAME = ".mlcourse-workspace.json"
ORIGINALS = Path(".mlcourse") / "originals"
BACKUPS = "backups"
RESET_COMMAND = ".venv/bin/mlcourse workspace --reset"

NO_COPY = "no copy yet"
NOT_STARTED = "not started"
STARTED = "started"
UPDATED = "course updated since you started"

# What one file of a copy is, against the course's release of it.
MISSING = "missing"              # no copy of it yet
CURRENT = "current"              # identical to the release
UNTOUCHED = "untouched"          # as copied, and the course has changed it since
EDITED = "edited"                # the learner's own; the release is still what was copied
EDITED_OUTDATED = "edited-outdated"   # the learner's own, and the course has changed it since


class WorkspaceError(RuntimeError):
    """A workspace request that cannot be carried out (an unknown module, say)."""


def workspace_dir() -> Path:
    return paths.workspace_dir()


def exercise_ids() -> list[str]:
    """The modules exercises/ releases: every exercises/NN-slug/ holding NN-slug.ipynb."""
    folder = paths.exercises_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and (p / f"{p.name}.ipynb").is_file())


def notebook_path(assignment: str) -> Path:
    """The learner's copy of an exercise notebook: workspace/NN-slug/NN-slug.ipynb."""
    return workspace_dir() / assignment / f"{assignment}.ipynb"


def original_path(assignment: str) -> Path:
    """The notebook as released when the learner's copy was made (or last refreshed)."""
    return workspace_dir() / ORIGINALS / assignment / f"{assignment}.ipynb"


def _relative(path: Path) -> str:
    try:
        return path.relative_to(paths.course_root()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------
# The manifest

def read_manifest() -> dict:
    """``{"assignments": {id: {"files": {name: sha256 as copied}, "copied_at": ...}}}``.

    A missing or unreadable manifest reads as empty: every existing copy then counts as the
    learner's own work, so nothing is refreshed over it (the safe side).
    """
    path = workspace_dir() / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("assignments"), dict):
            raise ValueError("no assignments")
    except (OSError, ValueError, AttributeError):
        manifest = {}
    manifest.setdefault("about", "mlcourse workspace: the release each copy was made from "
                                 "(sha256 per file). Written by mlcourse; do not edit.")
    manifest.setdefault("assignments", {})
    return manifest


def write_manifest(manifest: dict) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    exercises.write_atomically(workspace_dir() / MANIFEST_NAME, text.encode())


# --------------------------------------------------------------------------------------------
# Comparing a copy with the release

@dataclass
class FileCheck:
    """One file of a module: the course's release of it and what the learner's copy is."""

    name: str
    release: bytes
    verdict: str
    exercise_edited: bool       # exercises/ itself has local edits (a learner's old habit)


@dataclass
class ModuleState:
    """Where one module's workspace copy stands against the course's release."""

    assignment: str
    state: str
    files: list[FileCheck] = field(default_factory=list)
    action: str = ""            # what sync did: "created", "added", "refreshed" or ""
    from_edited_exercise: bool = False   # created from an exercises/ file the learner edited

    @property
    def notebook(self) -> Path:
        return notebook_path(self.assignment)

    @property
    def exercise(self) -> Path:
        return paths.exercises_dir() / self.assignment / f"{self.assignment}.ipynb"

    @property
    def outdated(self) -> list[str]:
        """Files the learner changed and the course has updated since."""
        return [f.name for f in self.files if f.verdict == EDITED_OUTDATED]

    @property
    def exercise_edits(self) -> list[str]:
        return [f.name for f in self.files if f.exercise_edited]


def verdict(copy: Path, release_sha: str, copied_sha: str | None) -> str:
    """What the learner's copy of one file is (MISSING, CURRENT, UNTOUCHED, EDITED or
    EDITED_OUTDATED), given the sha256 of the release now and of the release it was copied
    from (None when unknown: the copy then counts as the learner's own)."""
    if not copy.is_file():
        return MISSING
    mine = exercises.sha256(copy.read_bytes())
    if mine == release_sha:
        return CURRENT
    if copied_sha is None:
        return EDITED
    if mine == copied_sha:
        return UNTOUCHED
    return EDITED if copied_sha == release_sha else EDITED_OUTDATED


def module_state(verdicts: list[str]) -> str:
    if not verdicts or all(v == MISSING for v in verdicts):
        return NO_COPY
    if EDITED_OUTDATED in verdicts:
        return UPDATED
    return STARTED if EDITED in verdicts else NOT_STARTED


def survey(assignment: str, manifest: dict) -> ModuleState:
    """Compare every file of exercises/<id>/ with the learner's copy; change nothing."""
    source, folder = paths.exercises_dir() / assignment, workspace_dir() / assignment
    copied = manifest["assignments"].get(assignment, {}).get("files", {})
    record = exercises.generated_record()
    checks = []
    for name in sorted(exercises.folder_files(source)):
        release, edited = exercises.released_version(source / name, record)
        checks.append(FileCheck(name, release, verdict(folder / name, exercises.sha256(release),
                                                       copied.get(name)), edited))
    return ModuleState(assignment, module_state([c.verdict for c in checks]), checks)


def _selected(assignments: list[str] | None) -> list[str]:
    known = exercise_ids()
    for assignment in assignments or []:
        if assignment not in known:
            raise WorkspaceError(f"unknown module {assignment!r}: exercises/ has "
                                 f"{', '.join(known) or 'none'}")
    return known if assignments is None else list(assignments)


def status(assignments: list[str] | None = None) -> list[ModuleState]:
    """The state of each module's copy (NO_COPY, NOT_STARTED, STARTED or UPDATED), read only."""
    manifest = read_manifest()
    return [survey(a, manifest) for a in _selected(assignments)]


# --------------------------------------------------------------------------------------------
# Changing the workspace: only ever files that are missing or still exactly as copied

def _record_copy(manifest: dict, assignment: str, check: FileCheck) -> None:
    entry = manifest["assignments"].setdefault(assignment, {"files": {}})
    entry["files"][check.name] = exercises.sha256(check.release)
    entry["copied_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    if check.name == f"{assignment}.ipynb":
        original = original_path(assignment)
        if not original.is_file() or original.read_bytes() != check.release:
            exercises.write_atomically(original, check.release)


def _apply(state: ModuleState, manifest: dict) -> tuple[str, bool]:
    """Create missing files and refresh untouched ones; return (action, created from an edited
    exercise)."""
    source, folder = paths.exercises_dir() / state.assignment, workspace_dir() / state.assignment
    copied = manifest["assignments"].get(state.assignment, {}).get("files", {})
    created = refreshed = from_edited = False
    first_copy = state.state == NO_COPY
    for check in state.files:
        target = folder / check.name
        if check.verdict == MISSING:
            # as exercises/ has it: answers a learner typed there out of habit come along,
            # while the manifest records the release, so the copy counts as started
            exercises.write_atomically(target, (source / check.name).read_bytes())
            created, from_edited = True, from_edited or check.exercise_edited
        elif check.verdict == UNTOUCHED:
            if exercises.sha256(target.read_bytes()) != copied.get(check.name):
                continue                   # saved by the learner a moment ago: theirs now
            exercises.write_atomically(target, check.release)
            refreshed = True
        elif check.verdict == CURRENT:
            recorded = copied.get(check.name) == exercises.sha256(check.release)
            if recorded and (check.name != state.notebook.name
                             or original_path(state.assignment).is_file()):
                continue
        else:
            continue                       # the learner's work: never touched
        _record_copy(manifest, state.assignment, check)
    action = ("created" if created and first_copy else "added" if created else
              "refreshed" if refreshed else "")
    return action, from_edited


def sync(assignments: list[str] | None = None) -> list[ModuleState]:
    """Make the workspace's missing copies and bring untouched ones up to the course's release.

    A copy the learner changed is never touched. Returns the state of each module after the
    sync, with ``action`` saying what was done.
    """
    manifest = read_manifest()
    before = json.dumps(manifest, sort_keys=True)
    states = []
    for assignment in _selected(assignments):
        action, from_edited = _apply(survey(assignment, manifest), manifest)
        state = survey(assignment, manifest)
        state.action, state.from_edited_exercise = action, from_edited
        states.append(state)
    if json.dumps(manifest, sort_keys=True) != before:
        write_manifest(manifest)
    return states


def _backup_folder(assignment: str, now: datetime) -> Path:
    base = workspace_dir() / BACKUPS / f"{assignment}-{now:%Y%m%d-%H%M%S}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def reset(assignment: str, now: datetime | None = None) -> Path | None:
    """Start a module over from the course's current release.

    The learner's copy, workspace/<id>/, is moved (never deleted) to
    workspace/backups/<id>-<date>-<time>/ and a fresh copy of the exercise takes its place.

    Returns
    -------
    Path or None
        The backup folder, or None when there was nothing to move (no copy yet, or a copy
        identical to the current release).
    """
    _selected([assignment])
    folder, backup = workspace_dir() / assignment, None
    manifest = read_manifest()
    state = survey(assignment, manifest)
    extra = exercises.folder_files(folder) - {c.name for c in state.files}
    if folder.exists() and (extra or any(c.verdict != CURRENT for c in state.files)):
        backup = _backup_folder(assignment, now or datetime.now())
        backup.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(backup)
    manifest["assignments"].pop(assignment, None)
    for check in state.files:
        if backup is not None or not (folder / check.name).is_file():
            exercises.write_atomically(folder / check.name, check.release)
        _record_copy(manifest, assignment, check)
    write_manifest(manifest)
    return backup


# --------------------------------------------------------------------------------------------
# What to tell the learner

def update_notice(state: ModuleState) -> str:
    """The notice for a module the course updated after the learner started it."""
    a = state.assignment
    lines = [f"{a}: the course has updated this exercise since you started it.",
             f"  Your copy is kept as it is:  {_relative(state.notebook)}",
             f"  The new version:             {_relative(state.exercise)}"]
    others = [name for name in state.outdated if name != f"{a}.ipynb"]
    if others:
        lines.append(f"  (also changed by you and by the course: {', '.join(others)})")
    lines += [f"  To start over from the new version: {RESET_COMMAND} {a}",
              f"  (your copy then moves to {_relative(workspace_dir() / BACKUPS)}/; "
              "nothing is deleted)"]
    return "\n".join(lines)


def describe(states: list[ModuleState], summary: bool = True) -> list[str]:
    """Lines telling the learner what a sync did and what needs their attention."""
    lines = []
    created = [s.assignment for s in states if s.action == "created"]
    if created:
        lines.append(f"workspace/: made your copy of {', '.join(created)} from exercises/. "
                     "Your work lives in workspace/: no course command and no course update "
                     "overwrites it.")
    for s in states:
        a = s.assignment
        if s.from_edited_exercise:
            lines.append(f"{a}: exercises/{a}/ had edits of yours: they are in workspace/{a}/ "
                         f"now, where you carry on (`git checkout -- exercises/{a}` then "
                         "returns exercises/ to the course's version).")
        elif s.exercise_edits:
            lines.append(f"{a}: note: exercises/{a}/{s.exercise_edits[0]} has local edits, but "
                         f"your work lives in workspace/{a}/ (`make check` grades that one).")
        if s.action == "added":
            lines.append(f"workspace/{a}/: added the files of the exercise that were missing.")
        if s.action == "refreshed":
            lines.append(f"workspace/{a}/: the course updated this exercise and you had not "
                         "started it, so your copy now is the new version.")
        if s.state == UPDATED:
            lines.append(update_notice(s))
    if summary and states:
        started = sum(s.state in (STARTED, UPDATED) for s in states)
        lines.append(f"your work: {_relative(workspace_dir())}/ ({started} of {len(states)} "
                     "exercises started; `.venv/bin/mlcourse workspace --status` for each)")
    return lines


def format_status(states: list[ModuleState]) -> str:
    width = max([len(s.assignment) for s in states] + [6]) + 2
    lines = [f"{'module':<{width}}{'state':<35}your copy"]
    for s in states:
        lines.append(f"{s.assignment:<{width}}{s.state:<35}"
                     f"{_relative(s.notebook) if s.state != NO_COPY else '-'}")
    lines += [update_notice(s) for s in states if s.state == UPDATED]
    return "\n".join(lines)
