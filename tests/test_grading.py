"""Grading round trips with real nbgrader: solutions score full marks (hidden tests included),
released exercises score nothing, and every wrong-answer fixture loses points on its task."""

from __future__ import annotations

import pytest
from conftest import assignments, wrong_answers


@pytest.mark.parametrize("assignment", assignments())
def test_solution_scores_full_autograded_marks(graded_course, assignment):
    course = graded_course(assignment)
    result = course.grade("solution", course.filled())
    failing = [(t.grade_id, t.message) for t in result.tasks
               if t.kind == "autograded" and not t.passed]
    assert not failing, f"the solution fails its own tests: {failing}"
    assert result.auto_max > 0
    assert result.auto_score == result.auto_max


@pytest.mark.parametrize("assignment", assignments())
def test_released_exercise_scores_zero(graded_course, assignment):
    course = graded_course(assignment)
    result = course.grade("untouched", course.released)
    assert result.auto_max > 0
    assert result.auto_score == 0, [(t.grade_id, t.score) for t in result.tasks if t.score]
    assert all(t.message for t in result.tasks if t.kind == "autograded"), \
        "every failing task must tell the learner why"


@pytest.mark.parametrize("assignment", assignments())
def test_exercise_has_written_task_and_four_autograded_tasks(graded_course, assignment):
    result = graded_course(assignment).grade("untouched", graded_course(assignment).released)
    autograded = [t for t in result.tasks if t.kind == "autograded"]
    manual = [t for t in result.tasks if t.kind == "manual"]
    assert len(autograded) >= 4, f"{assignment}: {len(autograded)} autograded tasks"
    assert len(manual) >= 1, f"{assignment}: no manually graded written task"


@pytest.mark.parametrize("assignment", assignments())
def test_every_exercise_has_three_wrong_answer_fixtures(assignment):
    fixtures = [w for w in wrong_answers() if w.assignment == assignment]
    assert len(fixtures) >= 3, f"{assignment}: {len(fixtures)} fixtures"


@pytest.mark.parametrize("wrong", wrong_answers(), ids=lambda w: f"{w.assignment}/{w.name}")
def test_wrong_answer_loses_points_on_its_task(graded_course, wrong):
    course = graded_course(wrong.assignment)
    result = course.grade(f"wrong-{wrong.name}", course.filled({wrong.cell: wrong.code}))
    target = result.task(wrong.loses)
    assert target.score < target.max_score, (
        f"{wrong.name} ({wrong.mistake}) was not caught by {wrong.loses}")
    assert target.message, f"{wrong.loses} fails without telling the learner why"
