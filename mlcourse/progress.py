"""The progress store: an append-only history of every graded task of every attempt.

nbgrader's gradebook keeps only the latest grade; managers and learners need the history (who
is stuck, what changed week by week). One row per graded task per attempt:

    learner, team, assignment, task (grade_id), skill, kind, score, max_score, status,
    attempted_at, recorded_at, source

`mlcourse check` (a learner alone is a cohort of one) and `mlcourse cohort autograde` append to
it; the report and the dashboard only read it. SQLite by default; any SQLAlchemy URL works,
PostgreSQL included. Nothing ever updates or deletes a row: the store has no such method, and on
SQLite and PostgreSQL a database trigger refuses UPDATE and DELETE as well.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from . import paths

PROGRESS_URL_ENV = "MLCOURSE_PROGRESS_URL"
# The skill each module's tasks train (CURRICULUM.md); a task's own metadata.mlcourse.skill wins.
MODULE_SKILLS = {
    "00-orientation": "orientation", "01-framing": "framing", "02-data": "data",
    "03-first-model": "modeling", "04-diagnose": "diagnosis", "05-test-version": "testing",
    "06-evaluate": "evaluation", "07-ship": "shipping", "08-monitor": "monitoring",
    "09-capstone": "capstone",
}
NOTEBOOK_TASK = "(notebook)"   # the task of a row about a whole submission (missing, tampered)

metadata = sa.MetaData()
attempts = sa.Table(
    "attempts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("learner", sa.String(64), nullable=False, index=True),
    sa.Column("team", sa.String(128), nullable=False, default=""),
    sa.Column("assignment", sa.String(64), nullable=False, index=True),
    sa.Column("task", sa.String(128), nullable=False),
    sa.Column("skill", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),          # autograded | manual | notebook
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    # the status of the whole submission (the export's status column) this row belongs to
    sa.Column("submission_status", sa.String(32), nullable=False, default=""),
    sa.Column("attempted_at", sa.DateTime, nullable=False, index=True),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),        # check | cohort | demo
)

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS attempts_no_update BEFORE UPDATE ON attempts "
        "BEGIN SELECT RAISE(ABORT, 'the progress store is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS attempts_no_delete BEFORE DELETE ON attempts "
        "BEGIN SELECT RAISE(ABORT, 'the progress store is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION attempts_append_only() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'the progress store is append-only'; END; $$ LANGUAGE plpgsql",
        "DROP TRIGGER IF EXISTS attempts_no_change ON attempts",
        "CREATE TRIGGER attempts_no_change BEFORE UPDATE OR DELETE ON attempts "
        "FOR EACH ROW EXECUTE FUNCTION attempts_append_only()",
    ],
}


@dataclass
class Attempt:
    learner: str
    assignment: str
    task: str
    skill: str
    kind: str
    score: float
    max_score: float
    status: str
    attempted_at: dt.datetime
    team: str = ""
    source: str = "check"
    submission_status: str = ""


def default_url(folder: Path | None = None) -> str:
    """``$MLCOURSE_PROGRESS_URL``, else ``progress.db`` in ``folder`` (default: the course)."""
    if os.environ.get(PROGRESS_URL_ENV):
        return os.environ[PROGRESS_URL_ENV]
    folder = folder or paths.course_root()
    return f"sqlite:///{Path(folder).resolve() / 'progress.db'}"


def as_url(location: str | Path) -> str:
    """Accept a URL or a path to a SQLite file."""
    text = str(location)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


class ProgressStore:
    """Append-only access to the attempts table."""

    def __init__(self, url: str | Path | None = None):
        self.url = as_url(url) if url else default_url()
        self.engine = sa.create_engine(self.url)
        metadata.create_all(self.engine)
        statements = _APPEND_ONLY.get(self.engine.dialect.name, [])
        with self.engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)

    def record(self, rows: Iterable[Attempt]) -> int:
        now = utcnow()
        values = [asdict(row) | {"recorded_at": now} for row in rows]
        if not values:
            return 0
        with self.engine.begin() as connection:
            connection.execute(attempts.insert(), values)
        return len(values)

    def frame(self) -> pd.DataFrame:
        """Every attempt, oldest first."""
        query = sa.select(attempts).order_by(attempts.c.attempted_at, attempts.c.id)
        with self.engine.connect() as connection:
            frame = pd.read_sql(query, connection)
        for column in ("attempted_at", "recorded_at"):
            frame[column] = pd.to_datetime(frame[column])
        return frame

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | Path) -> ProgressStore:
    """An existing store (raises FileNotFoundError for a missing SQLite file)."""
    url = as_url(url)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise FileNotFoundError(f"no progress store at {url[len('sqlite:///'):]}: grade "
                                "something first (mlcourse check, or mlcourse cohort autograde)")
    return ProgressStore(url)


def task_skills(notebook, assignment: str) -> dict[str, str]:
    """``{grade_id: skill}`` from each graded cell's metadata.mlcourse.skill."""
    from .grading import graded_cells

    fallback = MODULE_SKILLS.get(assignment, assignment)
    return {grade_id: cell.get("metadata", {}).get("mlcourse", {}).get("skill", fallback)
            for grade_id, cell in graded_cells(notebook).items()}
