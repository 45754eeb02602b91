"""Release, collect, feedback and export for a cohort, through nbgrader's own API and apps."""

from __future__ import annotations

import csv
import html
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import nbformat

from .. import grading
from .course import Cohort, CohortError

EXPORT_COLUMNS = ["learner", "assignment", "score", "max_score", "status", "detail",
                  "graded_at"]
# LMS downloads: one file per learner and notebook, named "<learner id>_<notebook>.ipynb"
# (any folders inside the zip are ignored). Override with --regexp.
DEFAULT_ZIP_REGEXP = r".*/(?P<student_id>[^/]+?)_(?P<file_id>\d\d-[^/]+\.ipynb)$"


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        raise CohortError(f"nbgrader {what} failed:\n{(result.get('error') or '').strip()}\n"
                          f"{(result.get('log') or '').strip()[-1500:]}")


def release(cohort_dir: Path, assignments: list[str], out: Callable[[str], None] = print):
    """Generate each assignment (source/ -> release/) and release it to the exchange."""
    cohort = Cohort(cohort_dir)
    for assignment in assignments:
        cohort.check_assignment(assignment)
    api = cohort.api()
    for assignment in assignments:
        with grading.quiet_logging():
            _check(api.generate_assignment(assignment), f"generate_assignment {assignment}")
            _check(api.release_assignment(assignment), f"release_assignment {assignment}")
        out(f"released {assignment}: release/{assignment}/ and the exchange")


def collect(cohort_dir: Path, assignment: str, zip_file: Path | None = None,
            regexp: str = DEFAULT_ZIP_REGEXP, out: Callable[[str], None] = print) -> list[str]:
    """Collect submissions into submitted/: from nbgrader's exchange, or from an LMS zip
    through nbgrader's zip_collect. Returns the learners collected."""
    cohort = Cohort(cohort_dir)
    cohort.check_assignment(assignment, released=True)
    before = _submitted(cohort, assignment)
    if zip_file is None:
        with grading.quiet_logging():
            _check(cohort.api().collect(assignment), f"collect {assignment}")
    else:
        zip_file = Path(zip_file)
        if not zip_file.is_file():
            raise CohortError(f"zip file not found: {zip_file}")
        if not zipfile.is_zipfile(zip_file):
            raise CohortError(f"{zip_file} is not a zip archive")
        archive = cohort.root / "downloaded" / assignment / "archive"
        archive.mkdir(parents=True, exist_ok=True)
        shutil.copy(zip_file, archive / zip_file.name)
        command = [sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
                   "--ZipCollectApp.collector_plugin="
                   "nbgrader.plugins.zipcollect.FileNameCollectorPlugin",
                   f"--FileNameCollectorPlugin.named_regexp={regexp}"]
        result = subprocess.run(command, cwd=cohort.root, capture_output=True, text=True)
        if result.returncode != 0:
            raise CohortError(f"nbgrader zip_collect failed:\n{result.stderr[-1500:]}")
        skipped = re.findall(r"Skipped submission with no match information provided: (.*)",
                             result.stderr)
        for name in skipped:
            out(f"skipped (name does not match <learner>_<notebook>.ipynb): {Path(name).name}")
    collected = sorted(_submitted(cohort, assignment) | set())
    roster = {learner.id for learner in cohort.roster()}
    strangers = sorted(set(collected) - roster)
    if strangers:
        out(f"warning: not on the roster (kept, not graded): {', '.join(strangers)}")
    out(f"collected {assignment}: {len(collected)} submission(s) "
        f"({len(set(collected) - before)} new)")
    return collected


def _submitted(cohort: Cohort, assignment: str) -> set[str]:
    folder = cohort.root / "submitted"
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if (p / assignment).is_dir()}


# ------------------------------------------------------------------ feedback without secrets

def public_view(nb):
    """The notebook a learner may see: hidden tests removed from every test cell, and test-cell
    outputs reduced to the error's name and message (a traceback would quote hidden code)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        meta = grading.nbgrader_meta(cell)
        if not (meta.get("grade") and not meta.get("solution")):
            continue
        cell.source = grading.HIDDEN_TESTS_REGION.sub("", cell.source).rstrip()
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name = output.get("ename", "Error")
                value = grading.ANSI.sub("", output.get("evalue", ""))
                outputs.append(nbformat.v4.new_output(
                    "error", ename=name, evalue=value, traceback=[f"{name}: {value}"]))
        cell.outputs = outputs
    return nb


def secret_lines(source_nb) -> list[str]:
    """Every substantial line of every hidden-test block of the source notebook."""
    lines = []
    for cell in source_nb.cells:
        for block in grading.HIDDEN_TESTS_REGION.findall(cell.source):
            for line in block.splitlines():
                line = line.strip()
                if len(line) >= 12 and "HIDDEN TESTS" not in line and not line.startswith("#"):
                    lines.append(line)
    return lines


def _visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def feedback(cohort_dir: Path, assignments: list[str],
             out: Callable[[str], None] = print) -> list[Path]:
    """Per-learner feedback HTML with nbgrader's generate_feedback, with NO hidden tests."""
    cohort = Cohort(cohort_dir)
    api = cohort.api()
    written = []
    for assignment in assignments:
        cohort.check_assignment(assignment, released=True)
        source = grading.read_notebook(cohort.root / "source" / assignment /
                                       f"{assignment}.ipynb")
        secrets = secret_lines(source)
        for learner in cohort.roster():
            notebook = cohort.autograded_folder(learner.id, assignment) / f"{assignment}.ipynb"
            if not notebook.is_file():
                continue
            original = notebook.read_bytes()
            try:   # nbgrader renders the autograded notebook: render the public view instead
                nbformat.write(public_view(nbformat.reads(original.decode(), as_version=4)),
                               notebook)
                with grading.quiet_logging():
                    _check(api.generate_feedback(assignment, learner.id),
                           f"generate_feedback {assignment} {learner.id}")
            finally:
                notebook.write_bytes(original)
            page = cohort.root / "feedback" / learner.id / assignment / f"{assignment}.html"
            text = _visible_text(page.read_text())
            leaked = [line for line in secrets if line in text]
            if leaked:
                page.unlink()
                raise CohortError(f"feedback for {learner.id} would show hidden tests "
                                  f"({leaked[0][:40]!r}...); it was deleted")
            written.append(page)
        out(f"feedback {assignment}: {sum(1 for p in written if assignment in p.parts)} "
            "page(s) in feedback/, hidden tests removed")
    return written


# ------------------------------------------------------------------ export

def export_rows(cohort_dir: Path) -> list[dict]:
    """One row per learner x released assignment, with a status that is never a silent zero."""
    from nbgrader.api import MissingEntry

    cohort = Cohort(cohort_dir)
    statuses = cohort.statuses()
    rows = []
    with grading.quiet_logging(), cohort.gradebook() as gradebook:
        for assignment in cohort.released_assignments():
            max_score = float(gradebook.find_assignment(assignment).max_score)
            for learner in cohort.roster():
                status = statuses.get((learner.id, assignment))
                row = {"learner": learner.id, "assignment": assignment, "score": 0.0,
                       "max_score": max_score, "status": "missing",
                       "detail": "not autograded yet", "graded_at": ""}
                if status is not None:
                    row.update(status=status.status, detail=status.detail,
                               graded_at=status.graded_at, score=status.score)
                    if status.status in ("graded", "needs-manual-grading", "timeout"):
                        try:   # manual grades given in formgrader since autograding
                            submission = gradebook.find_submission(assignment, learner.id)
                            row["score"] = float(submission.score)
                            if status.status in ("graded", "needs-manual-grading"):
                                row["status"] = ("needs-manual-grading"
                                                 if submission.needs_manual_grade else "graded")
                        except MissingEntry:
                            pass
                rows.append(row)
    return rows


def export(cohort_dir: Path, out_file: Path, out: Callable[[str], None] = print) -> Path:
    rows = export_rows(cohort_dir)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "score": f"{row['score']:g}",
                             "max_score": f"{row['max_score']:g}"})
    out(f"exported {len(rows)} row(s) to {out_file}")
    return out_file
