"""Realistic synthetic submissions for demos, tests and benchmarks.

Every learner gets a seeded profile: right, partly wrong (one or two of the course's own
wrong-answer fixtures, tests/fixtures/NN-slug/*.py, which are mistakes learners really make),
blank, late, or broken (invalid JSON, nothing submitted, a deleted or edited test cell).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from pathlib import Path

import nbformat

from .. import grading, paths
from .course import Cohort, CohortError, Learner, write_roster
from .workflow import release

PROFILES = [("right", 0.40), ("partly-wrong", 0.30), ("blank", 0.08), ("late", 0.12),
            ("broken", 0.10)]
FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia",
         "Linus", "Margaret", "Dennis", "Shafi", "Tim", "Hedy", "Claude", "Karen", "Niklaus"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
        "Perlman", "Torvalds", "Hamilton", "Ritchie", "Goldwasser", "Berners-Lee", "Lamarr",
        "Shannon", "Jones", "Wirth"]
TEAMS = ["payments", "search", "risk", "growth", "platform"]
HEADER = re.compile(r"^# (cell|loses|mistake): *(.+)$", re.M)
WRITTEN = ("I would not ship yet: the model must beat the rule-based baseline on expected cost "
           "by more than its uncertainty, and we need a rollback plan.")


def wrong_answers(assignment: str) -> list[tuple[str, str]]:
    """(solution cell grade_id, wrong code) for each fixture of the assignment."""
    folder = paths.course_root() / "tests" / "fixtures" / assignment
    answers = []
    for path in sorted(folder.glob("*.py")):
        text = path.read_text()
        header = {k: v.strip() for k, v in HEADER.findall(text)}
        if "cell" in header:
            answers.append((header["cell"], HEADER.sub("", text).strip() + "\n"))
    return answers


def synthetic_roster(count: int, rng: random.Random) -> list[Learner]:
    learners = []
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        learner_id = f"learner{index + 1:03d}"
        learners.append(Learner(learner_id, first, last, f"{learner_id}@example.com",
                                TEAMS[index % len(TEAMS)]))
    return learners


def _answer_written(nb) -> None:
    for cell in nb.cells:
        meta = grading.nbgrader_meta(cell)
        if meta.get("grade") and meta.get("solution") and cell.cell_type == "markdown":
            cell.source = WRITTEN


def _broken(nb, rng: random.Random) -> tuple[str, object]:
    kind = rng.choice(["invalid-json", "nothing", "deleted-test", "edited-test"])
    tests = [c for c in nb.cells
             if grading.nbgrader_meta(c).get("grade") and not grading.nbgrader_meta(c).get(
                 "solution")]
    if kind == "deleted-test":
        nb.cells.remove(tests[0])
    elif kind == "edited-test":
        tests[0].source = "assert True"
    return kind, nb


def _draw_profiles(rng: random.Random, table: list[tuple[str, float]], count: int) -> list[str]:
    """``count`` profiles drawn by weight; when there are enough learners, every profile with a
    positive weight appears at least once, so a demo cohort always shows every kind."""
    names = [name for name, _ in table]
    drawn = rng.choices(names, [weight for _, weight in table], k=count)
    wanted = [name for name, weight in table if weight > 0]
    if count >= len(wanted):
        for name in wanted:
            if name in drawn:
                continue
            spare = [i for i, got in enumerate(drawn) if drawn.count(got) > 1]
            drawn[rng.choice(spare)] = name
    return drawn


def simulate(cohort_dir: Path, learners: int, seed: int = 0,
             assignments: list[str] | None = None,
             out: Callable[[str], None] = print,
             profiles_weights: list[tuple[str, float]] | None = None) -> dict[str, str]:
    """Write synthetic submissions; create and release the cohort first if DIR is new.

    Returns ``{learner: profile}``.
    """
    if learners < 1:
        raise CohortError("--learners must be at least 1")
    rng = random.Random(seed)
    cohort_dir = Path(cohort_dir)
    if not (cohort_dir / "nbgrader_config.py").is_file():
        roster_file = cohort_dir.parent / f".{cohort_dir.name}-roster.csv"
        cohort_dir.parent.mkdir(parents=True, exist_ok=True)
        write_roster(roster_file, synthetic_roster(learners, rng))
        try:
            Cohort.init(cohort_dir, roster_file)
        finally:
            roster_file.unlink()
        cohort = Cohort(cohort_dir)
        release(cohort_dir, assignments or cohort.assignments_in_source(), out=out)
    cohort = Cohort(cohort_dir)
    assignments = assignments or cohort.released_assignments()
    if not assignments:
        raise CohortError("nothing is released: run `mlcourse cohort release` first")
    # One assignment a week, the last one due yesterday: a cohort in the middle of its course.
    today = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, minute=0, second=0,
                                                     microsecond=0)
    dues = {a: today - dt.timedelta(days=1 + 7 * (len(assignments) - 1 - i))
            for i, a in enumerate(assignments)}
    with grading.quiet_logging(), cohort.gradebook() as gradebook:
        for assignment in assignments:
            gradebook.update_or_create_assignment(assignment, duedate=dues[assignment])
    # A few learners stall after their first assignment and submit nothing more.
    stalled = {learner.id for learner in cohort.roster()[:learners] if rng.random() < 0.1}
    profiles = {}
    roster = cohort.roster()[:learners]
    table = profiles_weights or PROFILES
    for position, assignment in enumerate(assignments):
        due = dues[assignment]
        released = cohort.released_notebook(assignment)
        solution = grading.read_notebook(cohort.root / "source" / assignment /
                                         f"{assignment}.ipynb")
        mistakes = wrong_answers(assignment)
        active = [learner for learner in roster
                  if not (learner.id in stalled and position > 0)]
        drawn = _draw_profiles(rng, table, len(active))
        for learner in roster:
            if learner.id in stalled and position > 0:
                profiles[f"{learner.id}/{assignment}"] = "stalled"
                continue
            profile = drawn.pop(0)
            profiles[f"{learner.id}/{assignment}"] = profile
            folder = cohort.root / "submitted" / learner.id / assignment
            target = folder / f"{assignment}.ipynb"
            submitted_at = due - dt.timedelta(hours=rng.randint(1, 72))
            if profile == "blank":
                nb = released
            elif profile == "partly-wrong" and mistakes:
                chosen = dict(rng.sample(mistakes, k=min(len(mistakes), rng.choice([1, 2]))))
                nb = grading.fill_exercise(released, solution, chosen)
                _answer_written(nb)
            else:
                nb = grading.fill_exercise(released, solution)
                _answer_written(nb)
                if profile == "late":
                    submitted_at = due + dt.timedelta(hours=rng.randint(1, 20))
            kind = None
            if profile == "broken":
                kind, nb = _broken(grading.fill_exercise(released, solution), rng)
                profiles[f"{learner.id}/{assignment}"] = f"broken:{kind}"
                if kind == "nothing":
                    continue
            folder.mkdir(parents=True, exist_ok=True)
            if kind == "invalid-json":
                target.write_text(nbformat.writes(nb)[:-200])
            else:
                nbformat.write(nb, target)
            (folder / "timestamp.txt").write_text(submitted_at.isoformat(" "))
    counts: dict[str, int] = {}
    for profile in profiles.values():
        counts[profile.split(":")[0]] = counts.get(profile.split(":")[0], 0) + 1
    out(f"simulated {len(roster)} learner(s) x {len(assignments)} assignment(s): " +
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return profiles
