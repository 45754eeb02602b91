"""Where the course's folders are.

The course root is the folder holding ``nbgrader_config.py`` and ``lessons/``. It is found from
``$MLCOURSE_ROOT``, else upwards from the working directory, else next to this package (an
editable install in the repository).
"""

from __future__ import annotations

import os
from pathlib import Path


class CourseNotFound(RuntimeError):
    """Raised when no course root can be found."""


def _is_root(path: Path) -> bool:
    return (path / "nbgrader_config.py").is_file() and (path / "lessons").is_dir()


def course_root() -> Path:
    env = os.environ.get("MLCOURSE_ROOT")
    if env:
        root = Path(env).resolve()
        if not _is_root(root):
            raise CourseNotFound(f"MLCOURSE_ROOT={env} is not a course folder "
                                 "(no nbgrader_config.py and lessons/ there)")
        return root
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if _is_root(candidate):
            return candidate
    beside_package = Path(__file__).resolve().parent.parent
    if _is_root(beside_package):
        return beside_package
    raise CourseNotFound("cannot find the course folder: run from inside the repository "
                         "or set MLCOURSE_ROOT")


def datasets_dir() -> Path:
    env = os.environ.get("MLCOURSE_DATASETS")
    return Path(env).resolve() if env else course_root() / "datasets"


def solutions_dir() -> Path:
    return course_root() / "solutions"


def exercises_dir() -> Path:
    return course_root() / "exercises"


def workspace_dir() -> Path:
    """The learner's own copies of the exercises (gitignored; see mlcourse.workspace)."""
    return course_root() / "workspace"


def lessons_dir() -> Path:
    return course_root() / "lessons"


def wheel_cache_dir() -> Path:
    return course_root() / ".cache" / "wheels"


def assignment_ids() -> list[str]:
    """The assignments, in course order: every solutions/NN-slug folder with its notebook."""
    folder = solutions_dir()
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and (p / f"{p.name}.ipynb").is_file())
