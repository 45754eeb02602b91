"""`mlcourse lint`: the mechanical conventions of docs/AUTHORING.md.

Each rule is a small function yielding problems as ``(path, message)``; :func:`lint` runs them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import nbformat

from . import grading, paths

Problem = tuple[str, str]
LESSON_NAME = re.compile(r"^\d\d-[a-z0-9-]+\.ipynb$")
LESSON_OPENING = ["## What you will be able to do", "**Time needed:**", "**Prerequisites:**"]
LESSON_CLOSING = ["## Key takeaways", "## In production"]
LEAK_MARKERS = re.compile(r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|"
                          r"BEGIN MARK SCHEME|END MARK SCHEME")
FIXTURE_HEADER = re.compile(r"^# (cell|loses|mistake): *(.+)$", re.M)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(paths.course_root()))
    except ValueError:
        return str(path)


def _read(path: Path) -> tuple[nbformat.NotebookNode | None, list[Problem]]:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:
        return None, [(_rel(path), f"not a readable notebook: {error}")]
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        problems.append((_rel(path), f"invalid nbformat: {error.message}"))
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        problems.append((_rel(path), "use nbformat 4.5 (cell ids)"))
    return nb, problems


def _stream_and_error_outputs(path: Path, nb) -> Iterator[Problem]:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                yield _rel(path), f"cell {index}: stored error output ({output.get('ename')})"
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                first = output.get("text", "").strip().splitlines()[:1]
                yield _rel(path), f"cell {index}: stderr output: {first}"


def lesson_problems(path: Path) -> Iterator[Problem]:
    nb, problems = _read(path)
    yield from problems
    if nb is None:
        return
    where = _rel(path)
    if not LESSON_NAME.match(path.name):
        yield where, "lesson file names are NN-slug.ipynb"
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    if not markdown or not nb.cells[0].cell_type == "markdown" or \
            not nb.cells[0].source.lstrip().startswith("# "):
        yield where, "the first cell must be markdown opening with a '# ' title"
    else:
        opening = nb.cells[0].source
        for needle in LESSON_OPENING:
            if needle not in opening:
                yield where, f"the first cell needs {needle!r} (objectives, time, prerequisites)"
    text = "\n".join(markdown)
    for needle in LESSON_CLOSING:
        if needle not in text:
            yield where, f"missing the section {needle!r}"
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    if code and not any(c.get("outputs") for c in code):
        yield where, "lessons are stored with outputs: execute it and save"
    yield from _stream_and_error_outputs(path, nb)


def _no_outputs(path: Path, nb) -> Iterator[Problem]:
    for index, cell in enumerate(nb.cells):
        if cell.get("outputs") or cell.get("execution_count"):
            yield _rel(path), f"cell {index}: stored output (keep this folder output-free)"


def solution_problems(path: Path) -> Iterator[Problem]:
    nb, problems = _read(path)
    yield from problems
    if nb is None:
        return
    where = _rel(path)
    yield from _no_outputs(path, nb)
    for grade_id in grading.duplicate_grade_ids(nb):
        yield where, f"grade_id {grade_id!r} is used by more than one cell"
    autograded = 0
    for cell in nb.cells:
        meta = grading.nbgrader_meta(cell)
        if not meta:
            continue
        grade_id = meta.get("grade_id", "?")
        if meta.get("grade") and not meta.get("solution"):  # an autograded test cell
            autograded += 1
            if not meta.get("points"):
                yield where, f"test cell {grade_id!r} has no points"
            if not meta.get("locked"):
                yield where, f"test cell {grade_id!r} is not locked"
            if "### BEGIN HIDDEN TESTS" not in cell.source:
                yield where, f"test cell {grade_id!r} has no hidden-test block"
            if not cell.get("metadata", {}).get("mlcourse", {}).get("skill"):
                yield where, f"test cell {grade_id!r} has no metadata.mlcourse.skill"
        if meta.get("solution") and cell.cell_type == "code" and \
                "### BEGIN SOLUTION" not in cell.source:
            yield where, f"solution cell {grade_id!r} has no BEGIN SOLUTION region"
        if meta.get("grade") and meta.get("solution"):  # a manually graded answer
            if not meta.get("points"):
                yield where, f"written task {grade_id!r} has no points"
            if "rubric" not in cell.source.lower():
                yield where, f"written task {grade_id!r} has no rubric in its solution region"
    if autograded == 0:
        yield where, "no autograded test cell"
    lesson = paths.lessons_dir() / path.name
    if not lesson.is_file():
        yield where, f"no lesson lessons/{path.name} for this solution"


def _solution_texts(solution) -> Iterator[str]:
    """Substantial lines of solution regions and hidden tests (what must never be released),
    leaving out lines that the solution also shows outside those regions (a visible test
    repeated in the hidden block, say)."""
    public = "\n".join(
        grading.HIDDEN_TESTS_REGION.sub("", grading.SOLUTION_REGION.sub("", cell.source))
        for cell in solution.cells)
    for cell in solution.cells:
        regions = grading.SOLUTION_REGION.findall(cell.source)
        regions += [m.group(0) for m in grading.HIDDEN_TESTS_REGION.finditer(cell.source)]
        for region in regions:
            for line in region.splitlines():
                line = line.strip()
                if len(line) >= 30 and not line.startswith("#") and "BEGIN" not in line \
                        and line not in public:
                    yield line


def exercise_problems(path: Path, solution_path: Path) -> Iterator[Problem]:
    nb, problems = _read(path)
    yield from problems
    if nb is None:
        return
    where = _rel(path)
    yield from _no_outputs(path, nb)
    text = path.read_text()
    if LEAK_MARKERS.search(text):
        yield where, "solution, hidden-test or mark-scheme markers leaked into the exercise"
    if solution_path.is_file():
        released = "\n".join(c.source for c in nb.cells)
        solution = nbformat.read(solution_path, as_version=4)
        for line in _solution_texts(solution):
            if line in released:
                yield where, f"solution or hidden-test text in the exercise: {line[:60]!r}"
                break
    else:
        yield where, "no solution notebook for this exercise"


def fixture_problems(path: Path) -> Iterator[Problem]:
    header = dict(FIXTURE_HEADER.findall(path.read_text()))
    where = _rel(path)
    missing = {"cell", "loses", "mistake"} - set(header)
    if missing:
        yield where, f"fixture header lacks {sorted(missing)} (see docs/AUTHORING.md)"
        return
    solution = paths.solutions_dir() / path.parent.name / f"{path.parent.name}.ipynb"
    if not solution.is_file():
        yield where, f"no solution {path.parent.name} for this fixture"
        return
    cells = grading.graded_cells(nbformat.read(solution, as_version=4))
    for key in ("cell", "loses"):
        if header[key].strip() not in cells:
            yield where, f"{key}: {header[key].strip()!r} is not a grade_id of the solution"


def lint() -> list[Problem]:
    root = paths.course_root()
    problems: list[Problem] = []
    for lesson in sorted(paths.lessons_dir().glob("*.ipynb")):
        if LESSON_NAME.match(lesson.name):
            problems += lesson_problems(lesson)
    for assignment in paths.assignment_ids():
        solution = paths.solutions_dir() / assignment / f"{assignment}.ipynb"
        problems += solution_problems(solution)
        exercise = paths.exercises_dir() / assignment / f"{assignment}.ipynb"
        if exercise.is_file():
            problems += exercise_problems(exercise, solution)
        else:
            problems.append((_rel(exercise), "missing: run `make exercises`"))
        fixtures = sorted((root / "tests" / "fixtures" / assignment).glob("*.py"))
        if len(fixtures) < 3:
            problems.append((f"tests/fixtures/{assignment}/",
                             f"{len(fixtures)} wrong-answer fixtures; at least 3 are required"))
        for fixture in fixtures:
            problems += fixture_problems(fixture)
    return problems
