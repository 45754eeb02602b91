"""The gradebook on PostgreSQL: a real server (Debian's postgresql) on loopback, two parallel
grading workers writing to it, and not one update lost."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pytest
from conftest import wrong_answers

from mlcourse import grading
from mlcourse.cohort import grader, workflow
from mlcourse.cohort.course import Cohort, Learner, write_roster


ASSIGNMENT = "00-orientation"
LEARNERS = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    assert found, "PostgreSQL is not installed: `make test` installs Debian's postgresql"
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres_url():
    bindir = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="mlcourse-pg-", dir="/tmp"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:            # PostgreSQL refuses to run as root
        account = pwd.getpwnam("postgres")
        for path in (folder, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                              "-U", "postgres"], check=True, capture_output=True)
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w",
                              "-l", str(folder / "server.log"), "start"],
                   check=True, capture_output=True)
    try:
        subprocess.run(as_user + [str(bindir.parent / "bin" / "createdb"), "-h", "127.0.0.1",
                                  "-p", str(port), "-U", "postgres", "gradebook"],
                       check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                  "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def graded_on_postgres(postgres_url, tmp_path_factory):
    base = tmp_path_factory.mktemp("pg-cohort")
    roster = base / "roster.csv"
    names = [f"pg{i:02d}" for i in range(LEARNERS)]
    write_roster(roster, [Learner(n, "F", "L", f"{n}@example.com", "team") for n in names])
    root = base / "cohort"
    cohort = Cohort.init(root, roster, db_url=postgres_url)
    workflow.release(root, [ASSIGNMENT], out=lambda line: None)
    released = cohort.released_notebook(ASSIGNMENT)
    solution = grading.read_notebook(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    points = {gid: float(grading.nbgrader_meta(c).get("points", 0))
              for gid, c in grading.graded_cells(solution).items()
              if grading.nbgrader_meta(c).get("grade")
              and not grading.nbgrader_meta(c).get("solution")}
    mistakes = [w for w in wrong_answers() if w.assignment == ASSIGNMENT]
    expected = {}
    for index, name in enumerate(names):
        replace = {}
        if index % 3 == 2:          # every third learner makes one realistic mistake
            mistake = mistakes[index % len(mistakes)]
            replace = {mistake.cell: mistake.code}
            expected[name] = sum(points.values()) - points[mistake.loses]
        else:
            expected[name] = sum(points.values())
        folder = root / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(grading.fill_exercise(released, solution, replace),
                       folder / f"{ASSIGNMENT}.ipynb")
    statuses = grader.autograde(root, [ASSIGNMENT], workers=2, timeout=60,
                                out=lambda line: None, show_progress=False)
    return cohort, statuses, expected


def test_cohort_config_points_at_postgres(graded_on_postgres, postgres_url):
    cohort, _, _ = graded_on_postgres
    assert cohort.db_url == postgres_url
    assert not (cohort.root / "gradebook.db").exists()


def test_parallel_workers_lose_no_update(graded_on_postgres):
    cohort, statuses, expected = graded_on_postgres
    assert len(statuses) == LEARNERS
    with cohort.gradebook() as gradebook:
        for name, score in expected.items():
            submission = gradebook.find_submission(ASSIGNMENT, name)
            autograded = sum(g.auto_score or 0 for nb in submission.notebooks
                             for g in nb.grades if not g.needs_manual_grade and
                             g.cell_type == "code")
            assert autograded == pytest.approx(score), name
        assert len(gradebook.find_assignment(ASSIGNMENT).submissions) == LEARNERS


def test_statuses_and_export_agree_with_the_postgres_gradebook(graded_on_postgres, tmp_path):
    cohort, statuses, expected = graded_on_postgres
    assert {s.status for s in statuses} == {"needs-manual-grading"}
    rows = {row["learner"]: row for row in workflow.export_rows(cohort.root)}
    for name, score in expected.items():
        assert rows[name]["score"] == pytest.approx(score), rows[name]


def test_progress_store_on_postgres_is_append_only(postgres_url):
    import datetime as dt

    import sqlalchemy as sa

    from mlcourse import progress

    store = progress.ProgressStore(postgres_url)
    row = progress.Attempt(learner="pg", assignment="01-framing", task="test_x",
                           skill="framing", kind="autograded", score=1.0, max_score=2.0,
                           status="failed", attempted_at=dt.datetime(2026, 5, 1))
    store.record([row, row])
    assert len(store.frame()) == 2
    for statement in ("UPDATE attempts SET score = 2", "DELETE FROM attempts"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with store.engine.begin() as connection:
                connection.exec_driver_sql(statement)
    assert len(store.frame()) == 2
    store.dispose()
