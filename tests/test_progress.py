"""The progress store keeps every attempt and never loses one; the report reads it."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pandas as pd
import pytest

from mlcourse import progress, report


def attempt(learner="ada", task="test_a", score=1.0, status="passed", day=1, **extra):
    values = dict(learner=learner, assignment="01-framing", task=task, skill="framing",
                  kind="autograded", score=score, max_score=2.0, status=status,
                  attempted_at=dt.datetime(2026, 3, day, 12), team="risk",
                  submission_status="graded")
    values.update(extra)
    return progress.Attempt(**values)


@pytest.fixture
def store(tmp_path):
    store = progress.ProgressStore(tmp_path / "progress.db")
    yield store
    store.dispose()


def test_every_attempt_is_kept_in_order(store):
    store.record([attempt(score=0.0, status="failed", day=1)])
    store.record([attempt(score=2.0, status="passed", day=3)])
    frame = store.frame()
    assert list(frame["score"]) == [0.0, 2.0]
    assert list(frame["status"]) == ["failed", "passed"]


@pytest.mark.parametrize("statement", ["UPDATE attempts SET score = 99",
                                       "DELETE FROM attempts"])
def test_history_cannot_be_rewritten_even_with_sql(store, tmp_path, statement):
    store.record([attempt()])
    with sqlite3.connect(tmp_path / "progress.db") as db, \
            pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute(statement)
    assert len(store.frame()) == 1


def test_the_store_has_no_method_that_changes_history():
    mutators = [name for name in dir(progress.ProgressStore)
                if any(word in name for word in ("delete", "update", "remove", "clear"))]
    assert mutators == []


def test_report_reads_latest_attempt_per_task_and_flags_repeated_failures(store, tmp_path):
    store.record([attempt(learner="ada", score=0.0, status="failed", day=d) for d in (1, 2, 3)])
    store.record([attempt(learner="bob", score=0.0, status="failed", day=1),
                  attempt(learner="bob", score=2.0, status="passed", day=2)])
    data = report.load(progress_url=str(tmp_path / "progress.db"),
                       as_of=dt.datetime(2026, 3, 5))
    points = report.module_points(data).set_index("learner")
    assert points.loc["bob", "score"] == 2.0 and points.loc["ada", "score"] == 0.0
    reasons = report.needs_attention(data)
    assert any("3 failed attempts" in r for r in reasons.loc[reasons.learner == "ada", "reason"])
    assert reasons.loc[reasons.learner == "bob"].empty


def test_report_flags_stale_and_broken_learners(store, tmp_path):
    store.record([attempt(learner="old", day=1),
                  attempt(learner="new", day=20),
                  attempt(learner="broken", task=progress.NOTEBOOK_TASK, kind="notebook",
                          score=0.0, max_score=0.0, status="tampered",
                          submission_status="tampered", day=20)])
    data = report.load(progress_url=str(tmp_path / "progress.db"),
                       as_of=dt.datetime(2026, 3, 25))
    reasons = report.needs_attention(data).groupby("learner")["reason"].apply(" ".join)
    assert "no progress for" in reasons["old"]
    assert "tampered" in reasons["broken"]
    assert "new" not in reasons


def test_report_is_one_self_contained_html_file(store, tmp_path):
    store.record([attempt(learner=f"l{i}", task=t, score=float(i % 3), day=1 + i % 20)
                  for i in range(12) for t in ("test_a", "test_b")])
    out = report.build(tmp_path / "report.html", progress_url=str(tmp_path / "progress.db"))
    page = out.read_text()
    assert page.count("<img") >= 5 and "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page, "the report must open offline"
    for section in ("Needs attention", "Completion by module", "Skills", "Every task",
                    "Progress over weeks"):
        assert section in page


def test_report_for_a_learner_alone(store, tmp_path):
    store.record([attempt(learner="me", task="test_a", score=2.0),
                  attempt(learner="me", task="test_b", score=0.0, status="failed")])
    page = report.build(tmp_path / "me.html", progress_url=str(tmp_path / "progress.db"))
    assert 'data-key="learners"><b>1</b>' in page.read_text()


def test_report_on_a_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="grade something first"):
        report.build(tmp_path / "r.html", progress_url=str(tmp_path / "nothing.db"))


def test_weekly_trend_grows_as_learners_pass(store, tmp_path):
    store.record([attempt(learner="ada", score=0.0, status="failed", day=2),
                  attempt(learner="ada", score=2.0, status="passed", day=16)])
    data = report.load(progress_url=str(tmp_path / "progress.db"),
                       as_of=dt.datetime(2026, 3, 20))
    trend = report.weekly_trend(data)
    assert trend["mean progress"].iloc[0] == 0.0
    assert trend["mean progress"].iloc[-1] == 1.0
    assert pd.Series(trend["mean progress"]).is_monotonic_increasing
