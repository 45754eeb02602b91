"""`mlcourse lint` catches each convention it promises to check, on a small broken course."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from mlcourse import lint, paths

GOOD_OPENING = ("# Module 98: Demo\n\n## What you will be able to do\n- a\n- b\n- c\n\n"
                "**Time needed:** 5 min\n\n**Prerequisites:** none\n")


def nbgrader(**fields):
    meta = {"grade": False, "solution": False, "locked": False, "task": False,
            "schema_version": 3}
    meta.update(fields)
    return {"nbgrader": meta}


@pytest.fixture
def course(tmp_path, monkeypatch):
    root = tmp_path / "course"
    for folder in ("lessons", "solutions/98-demo", "exercises/98-demo", "tests/fixtures"):
        (root / folder).mkdir(parents=True)
    shutil.copy(paths.course_root() / "nbgrader_config.py", root)
    monkeypatch.setenv("MLCOURSE_ROOT", str(root))
    lesson = new_notebook(cells=[
        new_markdown_cell(GOOD_OPENING),
        new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")]),
        new_markdown_cell("## Key takeaways\n- x\n\n## In production\ny")])
    nbformat.write(lesson, root / "lessons" / "98-demo.ipynb")
    test_meta = nbgrader(grade=True, locked=True, points=1, grade_id="test_f")
    test_meta["mlcourse"] = {"skill": "demo"}
    solution = new_notebook(cells=[
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 'the secret answer value'\n"
                      "    ### END SOLUTION", metadata=nbgrader(solution=True, grade_id="f")),
        new_code_cell("assert f()\n### BEGIN HIDDEN TESTS\nassert f() == 'x'\n"
                      "### END HIDDEN TESTS", metadata=test_meta)])
    nbformat.write(solution, root / "solutions" / "98-demo" / "98-demo.ipynb")
    exercise = new_notebook(cells=[
        new_code_cell("def f():\n    raise NotImplementedError()",
                      metadata=nbgrader(solution=True, grade_id="f")),
        new_code_cell("assert f()", metadata=test_meta)])
    nbformat.write(exercise, root / "exercises" / "98-demo" / "98-demo.ipynb")
    fixtures = root / "tests" / "fixtures" / "98-demo"
    fixtures.mkdir()
    for i in range(3):
        (fixtures / f"m{i}.py").write_text(
            f"# cell: f\n# loses: test_f\n# mistake: m{i}\ndef f():\n    return {i}\n")
    return root


def messages():
    return [message for _, message in lint.lint()]


def test_a_conforming_course_is_clean(course):
    assert lint.lint() == []


def test_stderr_in_a_lesson_is_reported(course):
    path = course / "lessons" / "98-demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs.append(new_output("stream", name="stderr", text="FutureWarning: x\n"))
    nbformat.write(nb, path)
    assert any("stderr" in m for m in messages())


def test_lesson_without_objectives_or_takeaways_is_reported(course):
    path = course / "lessons" / "98-demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# Module 98: Demo\n"
    nb.cells[2].source = "The end."
    nbformat.write(nb, path)
    found = messages()
    assert any("What you will be able to do" in m for m in found)
    assert any("Key takeaways" in m for m in found)


def test_outputs_in_solutions_are_reported(course):
    path = course / "solutions" / "98-demo" / "98-demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].outputs = [new_output("stream", name="stdout", text="x\n")]
    nbformat.write(nb, path)
    assert any("stored output" in m for m in messages())


def test_test_cell_without_hidden_tests_or_points_is_reported(course):
    path = course / "solutions" / "98-demo" / "98-demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "assert f()"
    nb.cells[1].metadata["nbgrader"]["points"] = 0
    nbformat.write(nb, path)
    found = messages()
    assert any("hidden-test block" in m for m in found)
    assert any("no points" in m for m in found)


def test_duplicate_grade_ids_are_reported(course):
    path = course / "solutions" / "98-demo" / "98-demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["nbgrader"]["grade_id"] = "f"
    nbformat.write(nb, path)
    assert any("more than one cell" in m for m in messages())


def test_solution_text_in_an_exercise_is_reported(course):
    path = course / "exercises" / "98-demo" / "98-demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "def f():\n    return 'the secret answer value'"
    nbformat.write(nb, path)
    assert any("solution or hidden-test text" in m for m in messages())


def test_fixture_naming_an_unknown_cell_is_reported(course):
    (course / "tests" / "fixtures" / "98-demo" / "m0.py").write_text(
        "# cell: nope\n# loses: test_f\n# mistake: x\n")
    assert any("'nope' is not a grade_id" in m for m in messages())
