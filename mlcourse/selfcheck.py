"""`mlcourse check`: grade a learner's own exercise notebooks with the full tests.

The learner's notebook in exercises/ is copied into a private temporary nbgrader course whose
source is the solution notebook, so nbgrader's autograde runs the visible AND the hidden tests.
The learner's file is never modified.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path

from . import grading, paths, progress

LEARNER_ENV = "MLCOURSE_LEARNER"


def learner_id() -> str:
    return os.environ.get(LEARNER_ENV) or getpass.getuser() or "learner"


def exercise_path(assignment: str, exercises_dir: Path | None = None) -> Path:
    folder = exercises_dir or paths.exercises_dir()
    return folder / assignment / f"{assignment}.ipynb"


def grade_exercise(assignment: str, notebook: Path, timeout: int = 60) -> grading.NotebookResult:
    """Grade one notebook against the assignment's full tests; raise NotebookProblem if it
    cannot be graded as it is."""
    submission = grading.read_notebook(notebook)
    with grading.PrivateCourse(assignment, timeout=timeout) as course:
        grading.check_submission_shape(submission, course.released())
        course.submit("learner", notebook)
        result = course.autograde("learner")
        result.skills = progress.task_skills(course.solution(), assignment)
        return result


def task_status(task: grading.TaskResult) -> str:
    if task.kind == "manual":
        return "needs-manual-grading"
    return "passed" if task.passed else task.status


def attempts_of(result: grading.NotebookResult, learner: str, team: str,
                when) -> list[progress.Attempt]:
    skills = result.skills
    fallback = progress.MODULE_SKILLS.get(result.assignment, result.assignment)
    if result.notes:
        overall = "timeout"
    elif any(t.kind == "manual" for t in result.tasks):
        overall = "needs-manual-grading"
    else:
        overall = "graded"
    return [progress.Attempt(learner=learner, team=team, assignment=result.assignment,
                             task=task.grade_id, skill=skills.get(task.grade_id, fallback),
                             kind=task.kind, score=task.score, max_score=task.max_score,
                             status=task_status(task), attempted_at=when, source="check",
                             submission_status=overall)
            for task in result.tasks]


def problem_attempt(assignment: str, problem: grading.NotebookProblem, learner: str,
                    team: str, when) -> progress.Attempt:
    return progress.Attempt(learner=learner, team=team, assignment=assignment,
                            task=progress.NOTEBOOK_TASK,
                            skill=progress.MODULE_SKILLS.get(assignment, assignment),
                            kind="notebook", score=0.0, max_score=0.0, status=problem.status,
                            attempted_at=when, source="check",
                            submission_status=problem.status)


def format_result(result: grading.NotebookResult, notebook: Path) -> str:
    width = max([len(t.grade_id) for t in result.tasks] + [4]) + 2
    lines = [f"{result.assignment}  ({notebook})", f"  {'task':<{width}}{'points':>10}   result"]
    for task in result.tasks:
        if task.kind == "manual":
            points, verdict = f"- / {task.max_score:g}", "written: graded by an instructor"
        else:
            points = f"{task.score:g} / {task.max_score:g}"
            verdict = "PASS" if task.passed else f"FAIL  {task.message}"
        lines.append(f"  {task.grade_id:<{width}}{points:>10}   {verdict}")
    summary = (f"  autograded: {result.auto_score:g} of {result.auto_max:g} points")
    if result.manual_max:
        summary += (f"; {result.manual_max:g} more for written answers, graded by an instructor"
                    " (see the rubric in solutions/ once you have written yours)")
    lines.append(summary)
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)


def check(assignments: list[str] | None = None, out: Callable[[str], None] = print,
          exercises_dir: Path | None = None, timeout: int = 60,
          progress_url: str | None = None) -> int:
    """Grade each assignment's exercise and record the attempt in the progress store;
    return 0 if every one could be graded, else 1."""
    store = progress.ProgressStore(progress_url) if progress_url != "" else None
    learner, team = learner_id(), os.environ.get("MLCOURSE_TEAM", "")
    assignments = assignments or [a for a in paths.assignment_ids()
                                  if exercise_path(a, exercises_dir).is_file()]
    if not assignments:
        out("no exercises found: run `make exercises` first")
        return 1
    known = set(paths.assignment_ids())
    exit_code = 0
    for assignment in assignments:
        notebook = exercise_path(assignment, exercises_dir)
        if assignment not in known:
            out(f"error: unknown assignment {assignment!r}; the course has: "
                f"{', '.join(sorted(known))}")
            exit_code = 1
            continue
        out(f"grading {assignment} ...")
        when = progress.utcnow()
        try:
            result = grade_exercise(assignment, notebook, timeout=timeout)
        except grading.NotebookProblem as problem:
            out(f"error: {assignment}: {problem}")
            if store is not None:
                store.record([problem_attempt(assignment, problem, learner, team, when)])
            exit_code = 1
            continue
        if store is not None:
            store.record(attempts_of(result, learner, team, when))
        out(format_result(result, notebook))
        out("")
    if store is not None:
        out(f"progress recorded in {store.url.replace('sqlite:///', '')} "
            "(see it with: mlcourse report --progress FILE --out report.html)")
        store.dispose()
    return exit_code
