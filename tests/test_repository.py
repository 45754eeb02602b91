"""The repository's own promises: layout, pins, exercises in sync, lint clean, offline."""

from __future__ import annotations

import os
import re
import socket

import pytest
import yaml

from mlcourse import exercises, lint, paths

ROOT = paths.course_root()


def test_top_level_layout_is_complete():
    for name in ["README.md", "environment.yml", "requirements.txt", "pyproject.toml",
                 "Makefile", "nbgrader_config.py", "lessons", "solutions", "exercises",
                 "datasets", "mlcourse", "tests", ".ci/run"]:
        assert (ROOT / name).exists(), name
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def pins(lines):
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
            assert match, f"not an exact pin: {line!r}"
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_environment_yml_and_requirements_pin_the_same_versions():
    requirements = pins((ROOT / "requirements.txt").read_text().splitlines())
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == requirements
    for needed in ["jupyterlab", "nbgrader", "scikit-learn", "pandas", "seaborn",
                   "ipywidgets", "nbval"]:
        assert needed in requirements, f"{needed} is not pinned"


def test_exercises_are_in_sync_with_solutions():
    assert exercises.stale() == []


def test_lint_is_clean():
    assert lint.lint() == []


@pytest.mark.skipif(os.environ.get("MLCOURSE_OFFLINE") != "1",
                    reason="the Makefile runs the suite offline only where unshare is allowed")
def test_the_suite_really_runs_without_network():
    with pytest.raises(OSError):
        socket.create_connection(("1.1.1.1", 443), timeout=3)


def test_course_home_links_every_module_that_exists_and_no_other():
    import nbformat

    home = nbformat.read(ROOT / "lessons" / "HOME.ipynb", as_version=4).cells[0].source
    linked = set(re.findall(r"\]\((\d\d-[a-z0-9-]+)\.ipynb\)", home))
    lessons = {p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]-*.ipynb")}
    assert linked == lessons
    for module in lessons:
        # the exercise column opens the learner's own copy, which `make lab` makes from exercises/
        assert f"../workspace/{module}/{module}.ipynb" in home
        assert (ROOT / "exercises" / module / f"{module}.ipynb").is_file()


def test_readme_marks_exactly_the_existing_modules_ready():
    readme = (ROOT / "README.md").read_text()
    ready = set(re.findall(r"^\| (\d\d-[a-z0-9-]+) \|.*\| ready \|$", readme, re.M))
    lessons = {p.stem for p in (ROOT / "lessons").glob("[0-9][0-9]-*.ipynb")}
    assert ready == lessons


def _lesson_times(module: str) -> tuple[str, str]:
    """("45 min", "60 min") from the lesson's own 'Time needed' line."""
    import nbformat

    text = "\n".join(c.source for c in nbformat.read(ROOT / "lessons" / f"{module}.ipynb",
                                                     as_version=4).cells[:3])
    found = re.search(r"Time needed:\*\* about (\d+) minutes for the lesson, "
                      r"(\d+)(?: to (\d+))? minutes for the exercise", text)
    assert found, f"lessons/{module}.ipynb has no 'Time needed' line in the usual form"
    lesson, low, high = found.groups()
    return f"{lesson} min", f"{low}-{high} min" if high else f"{low} min"


def test_home_and_readme_give_the_times_the_lessons_give():
    import nbformat

    home = nbformat.read(ROOT / "lessons" / "HOME.ipynb", as_version=4).cells[0].source
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "lessons").glob("[0-9][0-9]-*.ipynb")):
        lesson, exercise = _lesson_times(path.stem)
        home_row = re.search(rf"^\| \*\*\[{path.stem}\].*$", home, re.M).group(0)
        assert f"| {lesson} | [{exercise}](" in home_row, (path.stem, home_row)
        readme_row = re.search(rf"^\| {path.stem} \|.*$", readme, re.M).group(0)
        assert f"| {lesson} | {exercise} |" in readme_row, (path.stem, readme_row)
