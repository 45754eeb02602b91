"""Grading building blocks on top of real nbgrader.

nbgrader does the work (generate_assignment, autograde, the Gradebook); this module adds what the
course needs around it: a private temporary course directory to grade in, checks that tell a
learner precisely what is wrong with a notebook before grading (instead of a silent zero), and a
per-task result that carries the failing assert's message.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import paths

NBFORMAT_VERSION = 4
SOLUTION_REGION = re.compile(r"[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)[ \t]*### END SOLUTION[^\n]*\n?",
                             re.S)
HIDDEN_TESTS_REGION = re.compile(
    r"[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.S)

# nbgrader creates a new gradebook by running the `alembic` command: it must be on PATH even
# when this process was started as .venv/bin/mlcourse without an activated environment.
_bin = str(Path(sys.executable).parent)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")


class NotebookProblem(ValueError):
    """A notebook that cannot be graded as it is; the message is one line for the learner.

    ``status`` is the submission status it leads to: missing, malformed or tampered.
    """

    def __init__(self, message: str, status: str = "malformed"):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Reading notebooks and their nbgrader cells

def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def read_notebook(path: Path | str) -> nbformat.NotebookNode:
    """Read a notebook, turning every way it can be unreadable into a one-line NotebookProblem."""
    path = Path(path)
    if not path.is_file():
        raise NotebookProblem(f"notebook not found: {path}", status="missing")
    if path.stat().st_size == 0:
        raise NotebookProblem(f"{path} is empty (0 bytes): restore it from git or re-download it")
    try:
        return nbformat.read(path, as_version=NBFORMAT_VERSION)
    except Exception as error:  # nbformat raises several types for bad JSON / schema
        detail = str(error).splitlines()[0] if str(error) else error.__class__.__name__
        raise NotebookProblem(f"{path} is not a valid notebook (JSON): {detail[:160]}") from None


def graded_cells(nb) -> dict[str, nbformat.NotebookNode]:
    """``{grade_id: cell}`` for every cell nbgrader tracks (graded, solution or locked)."""
    cells = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade_id"):
            cells[meta["grade_id"]] = cell
    return cells


def duplicate_grade_ids(nb) -> list[str]:
    seen, duplicates = set(), []
    for cell in nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id:
            if grade_id in seen and grade_id not in duplicates:
                duplicates.append(grade_id)
            seen.add(grade_id)
    return duplicates


def check_submission_shape(submission, released, previous=None) -> None:
    """Raise NotebookProblem when a submission cannot be trusted to grade fairly.

    The released notebook is the reference: every graded or locked cell must still be there,
    with its type, and locked cells must be unchanged. (nbgrader would silently restore an edited
    test cell, so the learner would never learn that their edit was thrown away.)

    ``previous`` is an earlier release the learner started from, when the course has updated
    the exercise since: a locked cell may also be as it was there. That is no edit of theirs,
    and nbgrader grades every locked cell from the current release anyway.
    """
    duplicates = duplicate_grade_ids(submission)
    if duplicates:
        raise NotebookProblem(
            f"grade_id {duplicates[0]!r} is on more than one cell (a copied or split graded "
            "cell?): move your code into the original cell and delete the copy")
    mine = graded_cells(submission)
    before = graded_cells(previous) if previous is not None else {}
    current = graded_cells(released)
    rebuilt = [gid for gid in current if gid not in mine and gid not in before]
    if previous is not None and rebuilt:
        raise NotebookProblem(
            f"the course rebuilt this exercise since you started it: your copy has no cell "
            f"{rebuilt[0]!r} (and its tasks may have changed), so it cannot be graded against "
            "the new release")
    for grade_id, reference in current.items():
        meta = nbgrader_meta(reference)
        if grade_id not in mine:
            kind = "test cell" if meta.get("grade") and not meta.get("solution") else "cell"
            raise NotebookProblem(f"the {kind} {grade_id!r} was deleted: restore it from "
                                  "the released exercise (exercises/ has it, or download it again)",
                                  status="tampered")
        cell = mine[grade_id]
        if cell.cell_type != reference.cell_type:
            raise NotebookProblem(f"cell {grade_id!r} was changed from {reference.cell_type} "
                                  f"to {cell.cell_type}: change it back", status="tampered")
        as_released = {reference.source.strip()}
        if grade_id in before:
            as_released.add(before[grade_id].source.strip())
        if meta.get("locked") and cell.source.strip() not in as_released:
            raise NotebookProblem(f"the locked cell {grade_id!r} was edited: undo your change "
                                  "(tests are always graded from the original)",
                                  status="tampered")


# --------------------------------------------------------------------------------------------
# Building submissions from solutions (used by tests, the bench and `cohort simulate`)

def solution_code(cell_source: str) -> str:
    """The code inside a solution cell's BEGIN/END SOLUTION region, markers removed."""
    return SOLUTION_REGION.sub(lambda m: m.group(1), cell_source)


def fill_exercise(released, solution, replace: dict[str, str] | None = None):
    """A learner-like submission: the released notebook with each solution cell answered.

    Every solution cell gets the solution's code (markers stripped), except the cells named in
    ``replace``, which get the given source instead (a wrong answer, say).
    """
    replace = replace or {}
    answers = {gid: cell for gid, cell in graded_cells(solution).items()
               if nbgrader_meta(cell).get("solution")}
    unknown = set(replace) - set(answers)
    if unknown:
        raise KeyError(f"no solution cell with grade_id {sorted(unknown)}")
    filled = copy.deepcopy(released)
    for cell in filled.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in replace:
            cell.source = replace[grade_id]
        elif grade_id in answers:
            cell.source = solution_code(answers[grade_id].source)
    return filled


# --------------------------------------------------------------------------------------------
# A private nbgrader course directory

def course_config(root: Path, course_id: str = "mlcourse", timeout: int = 60,
                  db_url: str | None = None):
    """nbgrader configuration for a course directory at ``root`` (standard layout)."""
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = course_id
    config.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    config.Exchange.root = str(root / "exchange")
    config.ExecutePreprocessor.timeout = timeout
    config.Execute.timeout = timeout
    config.ClearOutputPreprocessor.enabled = True
    # Kernels talk over unix sockets in a private folder: no TCP ports to collide between
    # parallel graders, and no "running over TCP without encryption" warning.
    ipc_dir = root / ".kernel-ipc"
    ipc_dir.mkdir(parents=True, exist_ok=True)
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(ipc_dir / "kernel")
    return config


@contextlib.contextmanager
def quiet_logging() -> Iterator[None]:
    """nbgrader logs through the root logger and traitlets; keep a learner's terminal clean."""
    previous = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # nbgrader 0.9.6's gradebook triggers SQLAlchemy autoflush warnings; harmless here.
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.root.setLevel(previous)


class GradingError(RuntimeError):
    """nbgrader itself failed (not the learner's code)."""


@dataclass
class TaskResult:
    grade_id: str
    kind: str                 # "autograded" or "manual"
    score: float
    max_score: float
    message: str = ""         # first line of the failing error, or a note
    status: str = "graded"    # graded | failed | error | timeout | manual

    @property
    def passed(self) -> bool:
        return self.kind == "autograded" and self.score >= self.max_score


@dataclass
class NotebookResult:
    assignment: str
    tasks: list[TaskResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # problems outside the test cells
    skills: dict[str, str] = field(default_factory=dict)   # grade_id -> skill

    @property
    def auto_score(self) -> float:
        return sum(t.score for t in self.tasks if t.kind == "autograded")

    @property
    def auto_max(self) -> float:
        return sum(t.max_score for t in self.tasks if t.kind == "autograded")

    @property
    def manual_max(self) -> float:
        return sum(t.max_score for t in self.tasks if t.kind == "manual")

    def task(self, grade_id: str) -> TaskResult:
        for task in self.tasks:
            if task.grade_id == grade_id:
                return task
        raise KeyError(grade_id)


class PrivateCourse:
    """A throw-away nbgrader course holding one assignment's source, for grading in.

    The learner's files are only ever copied in, never modified.
    """

    def __init__(self, assignment: str, solutions_dir: Path | None = None,
                 timeout: int = 60, workdir: Path | None = None):
        self.assignment = assignment
        self.source_folder = (solutions_dir or paths.solutions_dir()) / assignment
        if not (self.source_folder / f"{assignment}.ipynb").is_file():
            raise NotebookProblem(f"unknown assignment {assignment!r}: no "
                                  f"{self.source_folder / (assignment + '.ipynb')}")
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="mlcourse-grade-")
        self.root = Path(workdir or self._tmp.name)
        self.timeout = timeout
        self._api = None

    # context manager: the temporary folder goes away afterwards
    def __enter__(self) -> PrivateCourse:
        shutil.copytree(self.source_folder, self.root / "source" / self.assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        result = self._call("generate_assignment", self.assignment)
        if not result.get("success"):
            raise GradingError(f"nbgrader generate_assignment failed:\n{result.get('error', '')}"
                               f"\n{result.get('log', '')[-2000:]}")
        return self

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def api(self):
        if self._api is None:
            from nbgrader.apps import NbGraderAPI
            from nbgrader.coursedir import CourseDirectory

            config = course_config(self.root, timeout=self.timeout)
            self._api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        return self._api

    def _call(self, method: str, *args) -> dict:
        with quiet_logging(), contextlib.redirect_stdout(io.StringIO()):
            return getattr(self.api, method)(*args)

    @property
    def released_path(self) -> Path:
        return self.root / "release" / self.assignment / f"{self.assignment}.ipynb"

    @property
    def solution_path(self) -> Path:
        return self.root / "source" / self.assignment / f"{self.assignment}.ipynb"

    def released(self):
        return nbformat.read(self.released_path, as_version=NBFORMAT_VERSION)

    def solution(self):
        return nbformat.read(self.solution_path, as_version=NBFORMAT_VERSION)

    def submit(self, learner: str, notebook) -> Path:
        """Place a submission (a NotebookNode or a path to copy) for ``learner``."""
        folder = self.root / "submitted" / learner / self.assignment
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{self.assignment}.ipynb"
        if isinstance(notebook, (str, os.PathLike)):
            shutil.copyfile(notebook, target)
        else:
            nbformat.write(notebook, target)
        return target

    def autograde(self, learner: str) -> NotebookResult:
        result = self._call("autograde", self.assignment, learner)
        if not result.get("success"):
            raise GradingError(f"nbgrader autograde failed for {learner}:\n"
                               f"{result.get('error', '')}\n{result.get('log', '')[-3000:]}")
        return self.results(learner)

    def results(self, learner: str) -> NotebookResult:
        """Per-task scores from the gradebook, with messages from the autograded notebook."""
        from nbgrader.api import Gradebook

        graded_nb = nbformat.read(self.root / "autograded" / learner / self.assignment /
                                  f"{self.assignment}.ipynb", as_version=NBFORMAT_VERSION)
        cells = graded_cells(graded_nb)
        messages = {gid: error_summary(cell) for gid, cell in cells.items()}
        outcome = NotebookResult(self.assignment, notes=timeout_notes(graded_nb))
        with quiet_logging(), Gradebook(self.api.coursedir.db_url,
                                        course_id="mlcourse") as gradebook:
            notebook = gradebook.find_submission_notebook(self.assignment, self.assignment,
                                                          learner)
            order = {gid: i for i, gid in enumerate(cells)}
            for grade in sorted(notebook.grades, key=lambda g: order.get(g.name, 1 << 30)):
                # A graded cell that is also a solution cell is a written answer: a person
                # grades it (nbgrader only pre-scores an untouched one as 0).
                manual = bool(nbgrader_meta(cells.get(grade.name, {})).get("solution"))
                status, message = messages.get(grade.name, ("graded", ""))
                if manual:
                    status, message = "manual", "written answer: graded by an instructor"
                outcome.tasks.append(TaskResult(
                    grade_id=grade.name, kind="manual" if manual else "autograded",
                    score=float(grade.score or 0.0), max_score=float(grade.max_score),
                    message=message, status=status))
        return outcome


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def timeout_notes(nb) -> list[str]:
    """One note per cell that ran past the time limit, test cell or not."""
    notes = []
    for index, cell in enumerate(nb.cells):
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            name = nbgrader_meta(cell).get("grade_id") or f"number {index + 1}"
            notes.append(f"cell {name} ran past the time limit and was stopped "
                         "(an endless loop?); the cells after it ran without it")
    return notes


def error_summary(cell) -> tuple[str, str]:
    """(status, one-line message) from a graded cell's outputs."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name, value = output.get("ename", "Error"), ANSI.sub("", output.get("evalue", ""))
            first = value.strip().splitlines()[0] if value.strip() else ""
            if name == "CellTimeoutError":
                return "timeout", "the cell ran past the time limit (an endless loop?)"
            if name == "NotImplementedError":
                return "failed", "not answered yet (the function still raises NotImplementedError)"
            if name == "AssertionError":
                return "failed", first or "an assert failed (no message)"
            return "error", f"{name}: {first}" if first else name
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = output.get("text", "").strip().splitlines()
            return "error", "wrote to stderr (a warning?), which scores 0: " + (
                text[0][:120] if text else "")
    return "graded", ""
