"""`mlcourse check`: grade a learner's own exercise notebooks with the full tests.

The learner's notebook, their copy in workspace/ (:mod:`mlcourse.workspace`) unless another
folder is named, is copied into a private temporary nbgrader course whose source is the solution
notebook, so nbgrader's autograde runs the visible AND the hidden tests. The learner's file is
never modified.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from pathlib import Path

from . import grading, paths, progress, workspace

LEARNER_ENV = "MLCOURSE_LEARNER"


def learner_id() -> str:
    return os.environ.get(LEARNER_ENV) or getpass.getuser() or "learner"


def exercise_path(assignment: str, exercises_dir: Path | None = None) -> Path:
    """The notebook `mlcourse check` grades: in ``exercises_dir``, else the workspace copy."""
    folder = exercises_dir or workspace.workspace_dir()
    return folder / assignment / f"{assignment}.ipynb"


def grade_exercise(assignment: str, notebook: Path, timeout: int = 60,
                   started_from: Path | None = None) -> grading.NotebookResult:
    """Grade one notebook against the assignment's full tests; raise NotebookProblem if it
    cannot be graded as it is.

    ``started_from`` is the earlier release the learner's copy was made from, when the course
    has updated the exercise since: its locked cells are then no edit of the learner's.
    """
    submission = grading.read_notebook(notebook)
    previous = grading.read_notebook(started_from) if started_from else None
    with grading.PrivateCourse(assignment, timeout=timeout) as course:
        grading.check_submission_shape(submission, course.released(), previous)
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


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.course_root()))
    except ValueError:
        return str(path)


def format_result(result: grading.NotebookResult, notebook: Path) -> str:
    width = max([len(t.grade_id) for t in result.tasks] + [4]) + 2
    lines = [f"{result.assignment}  ({_shown(notebook)})",
             f"  {'task':<{width}}{'points':>10}   result"]
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


def sync_workspace(assignments: list[str] | None,
                   out: Callable[[str], None]) -> list[workspace.ModuleState]:
    """Before grading: make the learner's missing copies, refresh untouched ones, and tell of
    course updates to exercises they have started."""
    released = workspace.exercise_ids()
    if not released:
        return []
    states = workspace.sync([a for a in assignments if a in released] if assignments else None)
    for line in workspace.describe(states, summary=False):
        out(line)
    return states


def check(assignments: list[str] | None = None, out: Callable[[str], None] = print,
          exercises_dir: Path | None = None, timeout: int = 60,
          progress_url: str | None = None) -> int:
    """Grade each assignment's exercise and record the attempt in the progress store;
    return 0 if every one could be graded, else 1.

    By default the learner's copies in workspace/ are graded (every one they have started,
    unless assignments are named), after a :func:`mlcourse.workspace.sync` that makes missing
    copies and tells of course updates to started ones. ``exercises_dir`` grades the
    NN-slug/NN-slug.ipynb notebooks of another folder instead, as they are.
    """
    known = set(paths.assignment_ids())
    updated: set[str] = set()
    if exercises_dir is None:
        states = sync_workspace(assignments, out)
        updated = {s.assignment for s in states if s.state == workspace.UPDATED}
        if not assignments:
            assignments = [s.assignment for s in states if s.assignment in known
                           and s.state in (workspace.STARTED, workspace.UPDATED)]
            if not assignments and states:
                out("you have not started an exercise yet: your copies are in workspace/ "
                    "(grade an untouched one with: make check ASSIGNMENT=00-orientation)")
                return 0
    else:
        assignments = assignments or [a for a in paths.assignment_ids()
                                      if exercise_path(a, exercises_dir).is_file()]
    if not assignments:
        out(f"no exercises found in {exercises_dir}: expected NN-slug/NN-slug.ipynb there"
            if exercises_dir else
            "no exercises found: exercises/ has no NN-slug/NN-slug.ipynb to copy into your "
            "workspace (restore it with `git checkout -- exercises/`)")
        return 1
    store = progress.ProgressStore(progress_url) if progress_url != "" else None
    learner, team = learner_id(), os.environ.get("MLCOURSE_TEAM", "")
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
        original = workspace.original_path(assignment)
        started_from = original if assignment in updated and original.is_file() else None
        try:
            result = grade_exercise(assignment, notebook, timeout=timeout,
                                    started_from=started_from)
        except grading.NotebookProblem as problem:
            out(f"error: {assignment}: {problem}")
            if assignment in updated:
                out(f"  The course has updated {assignment} since you started it (see above): "
                    "your copy may have its previous version of this cell. To start over from "
                    f"the new version: {workspace.RESET_COMMAND} {assignment}")
            if store is not None:
                store.record([problem_attempt(assignment, problem, learner, team, when)])
            exit_code = 1
            continue
        if store is not None:
            store.record(attempts_of(result, learner, team, when))
        out(format_result(result, notebook))
        if assignment in updated:
            out(f"  note: the course has updated {assignment} since you started it; "
                "the tests above are the new version's")
        out("")
    if store is not None:
        out(f"progress recorded in {store.url.replace('sqlite:///', '')} "
            "(see it with: mlcourse report --progress FILE --out report.html)")
        store.dispose()
    return exit_code
