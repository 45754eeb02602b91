"""The instructor workflow end to end: roster checks, release to the exchange, a learner
fetching and submitting with nbgrader's own commands, collect (exchange and LMS zip), export."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import zipfile

import nbformat
import pytest

from mlcourse import grading
from mlcourse.cohort import grader, simulate, workflow
from mlcourse.cohort.course import Cohort, CohortError

ASSIGNMENT = "00-orientation"
ROSTER = ("id,first_name,last_name,email,team\n"
          "alice,Alice,Liddell,alice@example.com,risk\n"
          "bob,Bob,Builder,bob@example.com,search\n"
          "carol,Carol,Danvers,carol@example.com,risk\n")


def mlcourse(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mlcourse.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def roster(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    return path


@pytest.mark.parametrize("text, message", [
    ("id,first_name,last_name,email\nalice,A,L,a@x\n", "missing column(s) team"),
    (ROSTER + "alice,Again,L,a2@x,risk\n", "duplicate id 'alice'"),
    ("id,first_name,last_name,email,team\n../evil,A,L,a@x,t\n", "id '../evil'"),
    ("id,first_name,last_name,email,team\n", "no learners"),
])
def test_a_bad_roster_is_a_clear_error_and_changes_nothing(tmp_path, text, message):
    roster = tmp_path / "bad.csv"
    roster.write_text(text)
    result = mlcourse("cohort", "init", tmp_path / "cohort", "--roster", roster)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cohort").exists()


def test_init_refuses_a_folder_that_is_not_empty(tmp_path, roster):
    (tmp_path / "cohort").mkdir()
    (tmp_path / "cohort" / "precious.txt").write_text("keep me")
    result = mlcourse("cohort", "init", tmp_path / "cohort", "--roster", roster)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert (tmp_path / "cohort" / "precious.txt").read_text() == "keep me"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    base = tmp_path_factory.mktemp("workflow")
    roster = base / "roster.csv"
    roster.write_text(ROSTER)
    result = mlcourse("cohort", "init", base / "cohort", "--roster", roster)
    assert result.returncode == 0, result.stderr
    result = mlcourse("cohort", "release", base / "cohort", ASSIGNMENT)
    assert result.returncode == 0, result.stderr
    return Cohort(base / "cohort")


def test_init_makes_a_standard_nbgrader_course(cohort):
    for name in ("nbgrader_config.py", "roster.csv", "source", "gradebook.db", "exchange"):
        assert (cohort.root / name).exists(), name
    with cohort.gradebook() as gradebook:
        assert sorted(s.id for s in gradebook.students) == ["alice", "bob", "carol"]
        assert gradebook.find_student("alice").email == "alice@example.com"


def test_release_generates_the_assignment_and_puts_it_on_the_exchange(cohort):
    assert (cohort.root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    outbound = cohort.root / "exchange" / cohort.course_id / "outbound" / ASSIGNMENT
    assert (outbound / f"{ASSIGNMENT}.ipynb").is_file()
    text = (outbound / f"{ASSIGNMENT}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text


def nbgrader_as_learner(cohort, home, learner, *args):
    """Run nbgrader's own learner commands (fetch, submit) as ``learner``."""
    home.mkdir(exist_ok=True)
    (home / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.Exchange.root = {str(cohort.root / 'exchange')!r}\n"
        "c.Exchange.path_includes_course = True\n"
        f"c.CourseDirectory.course_id = {cohort.course_id!r}\n")
    env = dict(os.environ, USER=learner, LOGNAME=learner)
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=home, env=env,
                          capture_output=True, text=True)


def test_learners_fetch_and_submit_through_the_exchange_and_collect_finds_them(cohort,
                                                                                 tmp_path):
    for learner in ("alice", "bob"):
        home = tmp_path / learner
        fetched = nbgrader_as_learner(cohort, home, learner, "fetch_assignment", ASSIGNMENT)
        assert fetched.returncode == 0, fetched.stderr
        # with Exchange.path_includes_course, nbgrader fetches into <course id>/<assignment>
        assert (home / cohort.course_id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
        # one OS user plays every learner here: name the learner explicitly, as a hub would
        submitted = nbgrader_as_learner(cohort, home, learner, "submit", ASSIGNMENT,
                                        f"--student={learner}")
        assert submitted.returncode == 0, submitted.stderr
    result = mlcourse("cohort", "collect", cohort.root, ASSIGNMENT)
    assert result.returncode == 0, result.stderr
    for learner in ("alice", "bob"):
        assert cohort.submission_path(learner, ASSIGNMENT).is_file()
    assert not cohort.submission_path("carol", ASSIGNMENT).exists()


def test_collect_from_an_lms_zip(cohort, tmp_path):
    solution = grading.read_notebook(cohort.root / "source" / ASSIGNMENT /
                                     f"{ASSIGNMENT}.ipynb")
    filled = grading.fill_exercise(cohort.released_notebook(ASSIGNMENT), solution)
    archive = tmp_path / "lms-download.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"submissions/carol_{ASSIGNMENT}.ipynb", nbformat.writes(filled))
        bundle.writestr("submissions/readme.txt", "not a notebook")
    result = mlcourse("cohort", "collect", cohort.root, ASSIGNMENT, "--zip", archive)
    assert result.returncode == 0, result.stderr
    assert cohort.submission_path("carol", ASSIGNMENT).is_file()


def test_collect_rejects_a_file_that_is_not_a_zip(cohort, tmp_path):
    fake = tmp_path / "download.zip"
    fake.write_text("not a zip")
    result = mlcourse("cohort", "collect", cohort.root, ASSIGNMENT, "--zip", fake)
    assert result.returncode == 2 and "not a zip archive" in result.stderr


def test_unknown_or_unreleased_assignment_is_a_clear_error(cohort):
    result = mlcourse("cohort", "autograde", cohort.root, "99-nothing")
    assert result.returncode == 2 and "unknown assignment" in result.stderr
    result = mlcourse("cohort", "autograde", cohort.root, "01-framing")
    assert result.returncode == 2 and "not released yet" in result.stderr


def test_export_writes_one_row_per_learner_with_the_documented_columns(cohort, tmp_path):
    released = cohort.released_notebook(ASSIGNMENT)
    solution = grading.read_notebook(cohort.root / "source" / ASSIGNMENT /
                                     f"{ASSIGNMENT}.ipynb")
    for learner, notebook in [("alice", released), ("bob", released),
                              ("carol", grading.fill_exercise(released, solution))]:
        path = cohort.submission_path(learner, ASSIGNMENT)
        if not path.exists():   # when run alone, without the exchange and zip tests
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, path)
    grader.autograde(cohort.root, [ASSIGNMENT], workers=2, out=lambda line: None,
                     show_progress=False)
    out = tmp_path / "grades.csv"
    result = mlcourse("cohort", "export", cohort.root, "--out", out)
    assert result.returncode == 0, result.stderr
    with open(out) as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == workflow.EXPORT_COLUMNS
        rows = {row["learner"]: row for row in reader}
    assert set(rows) == {"alice", "bob", "carol"}
    assert rows["carol"]["status"] == "needs-manual-grading"
    assert float(rows["carol"]["score"]) > 0
    # alice and bob submitted the blank exercise: nbgrader scores an untouched written answer 0
    # without asking for manual grading, so they are graded, and zero
    for learner in ("alice", "bob"):
        assert rows[learner]["status"] == "graded"
        assert float(rows[learner]["score"]) == 0
    assert all(row["graded_at"] for row in rows.values())


def test_simulate_makes_every_kind_of_submission(tmp_path):
    profiles = simulate.simulate(tmp_path / "demo", learners=30, seed=3,
                                 assignments=[ASSIGNMENT], out=lambda line: None)
    kinds = {p.split(":")[0] for p in profiles.values()}
    assert kinds == {"right", "partly-wrong", "blank", "late", "broken"}
    again = simulate.simulate(tmp_path / "again", learners=30, seed=3,
                              assignments=[ASSIGNMENT], out=lambda line: None)
    assert again == profiles, "the same seed must give the same cohort"


def test_simulate_rejects_a_bad_count(tmp_path):
    with pytest.raises(CohortError):
        simulate.simulate(tmp_path / "demo", learners=0)
