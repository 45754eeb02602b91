"""`mlcourse check` as a learner uses it: the real command on copies of the real exercise."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from mlcourse import grading, paths

ASSIGNMENT = "01-framing"


def run_check(exercises_dir, *extra):
    command = [sys.executable, "-m", "mlcourse.cli", "check", ASSIGNMENT,
               "--exercises-dir", str(exercises_dir), *extra]
    # attempts go to a store next to the learner's copy, never to the repository's progress.db
    env = dict(os.environ, MLCOURSE_PROGRESS_URL=f"sqlite:///{exercises_dir}/progress.db",
               MLCOURSE_LEARNER="tester")
    return subprocess.run(command, capture_output=True, text=True, cwd=paths.course_root(),
                          env=env)


@pytest.fixture
def learner_dir(tmp_path):
    """A learner's copy of the released exercise folder."""
    shutil.copytree(paths.exercises_dir() / ASSIGNMENT, tmp_path / ASSIGNMENT)
    return tmp_path


def notebook_path(learner_dir):
    return learner_dir / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def edit(learner_dir, change):
    path = notebook_path(learner_dir)
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def solution():
    return nbformat.read(paths.solutions_dir() / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                         as_version=4)


def autograded_total(stdout):
    match = re.search(r"autograded: ([\d.]+) of ([\d.]+) points", stdout)
    assert match, stdout
    return float(match.group(1)), float(match.group(2))


def test_untouched_exercise_scores_zero_with_a_message_per_task(learner_dir):
    before = hashlib.sha256(notebook_path(learner_dir).read_bytes()).hexdigest()
    result = run_check(learner_dir)
    assert result.returncode == 0, result.stderr
    score, possible = autograded_total(result.stdout)
    assert score == 0 and possible > 0
    failing = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert len(failing) >= 4
    assert all(len(line.split("FAIL", 1)[1].strip()) > 10 for line in failing), failing
    assert "Traceback" not in result.stdout + result.stderr
    after = hashlib.sha256(notebook_path(learner_dir).read_bytes()).hexdigest()
    assert before == after, "check modified the learner's notebook"


def test_exercise_filled_with_the_solution_scores_full_marks(learner_dir):
    path = notebook_path(learner_dir)
    released = nbformat.read(path, as_version=4)
    nbformat.write(grading.fill_exercise(released, solution()), path)
    result = run_check(learner_dir)
    assert result.returncode == 0, result.stderr
    score, possible = autograded_total(result.stdout)
    assert score == possible > 0, result.stdout
    assert " FAIL " not in result.stdout


def one_error_line(result):
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines()
              if line.startswith("error:")]
    assert len(errors) == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return errors[0]


def test_missing_notebook_is_a_clear_error(learner_dir):
    notebook_path(learner_dir).unlink()
    assert "notebook not found" in one_error_line(run_check(learner_dir))


def test_invalid_json_is_a_clear_error(learner_dir):
    notebook_path(learner_dir).write_text('{"cells": [ this is not json')
    assert "not a valid notebook" in one_error_line(run_check(learner_dir))


def test_empty_file_is_a_clear_error(learner_dir):
    notebook_path(learner_dir).write_text("")
    assert "is empty" in one_error_line(run_check(learner_dir))


def first_test_cell(nb):
    return next(c for c in nb.cells
                if grading.nbgrader_meta(c).get("grade")
                and not grading.nbgrader_meta(c).get("solution"))


def test_edited_locked_test_cell_is_a_clear_error(learner_dir):
    def tamper(nb):
        cell = first_test_cell(nb)
        cell.source = "assert True  # all good"
    edit(learner_dir, tamper)
    line = one_error_line(run_check(learner_dir))
    assert "locked cell" in line and "edited" in line


def test_deleted_test_cell_is_a_clear_error(learner_dir):
    def delete(nb):
        nb.cells.remove(first_test_cell(nb))
    edit(learner_dir, delete)
    assert "was deleted" in one_error_line(run_check(learner_dir))


def test_copied_graded_cell_is_a_clear_error(learner_dir):
    def duplicate(nb):
        cell = first_test_cell(nb)
        copy = nbformat.from_dict(json.loads(json.dumps(cell)))
        copy["id"] = "copied-cell"
        nb.cells.insert(nb.cells.index(cell), copy)
    edit(learner_dir, duplicate)
    assert "more than one cell" in one_error_line(run_check(learner_dir))


def test_endless_loop_is_reported_as_a_timeout(learner_dir):
    path = notebook_path(learner_dir)
    released = nbformat.read(path, as_version=4)
    answers = [gid for gid, c in grading.graded_cells(solution()).items()
               if grading.nbgrader_meta(c).get("solution") and c.cell_type == "code"]
    looping = grading.fill_exercise(released, solution(),
                                    {answers[0]: "while True:\n    pass\n"})
    nbformat.write(looping, path)
    result = run_check(learner_dir, "--timeout", "5")
    assert result.returncode == 0, result.stderr
    assert "time limit" in result.stdout, result.stdout


def test_every_check_is_recorded_in_the_progress_store(learner_dir):
    from mlcourse.progress import NOTEBOOK_TASK, ProgressStore

    run_check(learner_dir)                       # untouched: every task fails
    path = notebook_path(learner_dir)
    nbformat.write(grading.fill_exercise(nbformat.read(path, as_version=4), solution()), path)
    run_check(learner_dir)                       # solved: every autograded task passes
    path.write_text("")
    run_check(learner_dir)                       # broken: one row for the notebook
    store = ProgressStore(f"sqlite:///{learner_dir}/progress.db")
    frame = store.frame()
    store.dispose()
    attempts = frame.groupby("recorded_at")
    assert attempts.ngroups == 3
    auto = frame[frame["kind"] == "autograded"]
    first, second = sorted(auto["recorded_at"].unique())[:2]
    assert set(auto.loc[auto.recorded_at == first, "status"]) <= {"failed", "error"}
    assert set(auto.loc[auto.recorded_at == second, "status"]) == {"passed"}
    assert (auto["skill"] == "framing").all() and (frame["learner"] == "tester").all()
    broken = frame[frame["task"] == NOTEBOOK_TASK]
    assert list(broken["status"]) == ["malformed"]


def test_a_copy_of_an_exercise_the_course_rebuilt_is_named_as_such_not_as_tampered():
    """A learner started the exercise, then the course replaced a task (a new grade_id): their
    copy is told it predates the rebuild, not that they deleted a cell."""
    import copy

    released = nbformat.read(paths.exercises_dir() / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    old = copy.deepcopy(released)
    renamed = next(c for c in old.cells if grading.nbgrader_meta(c).get("solution")
                   and c.cell_type == "code")
    renamed.metadata["nbgrader"]["grade_id"] = "an_old_task"
    with pytest.raises(grading.NotebookProblem, match="rebuilt this exercise"):
        grading.check_submission_shape(old, released, previous=old)
    with pytest.raises(grading.NotebookProblem, match="was deleted"):
        grading.check_submission_shape(old, released)   # no earlier release known: a deletion
