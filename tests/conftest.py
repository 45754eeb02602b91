"""Shared fixtures: the course's assignments, their fixtures, and graded submissions.

Grading is real nbgrader on real notebooks; a session-wide cache grades each submission once.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from mlcourse import grading, paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
HEADER = re.compile(r"^# (cell|loses|mistake): *(.+)$", re.M)

# Keep Jupyter/IPython/matplotlib state out of ~ even when pytest is run by hand.
for variable, folder in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                         ("MPLCONFIGDIR", "matplotlib")]:
    os.environ.setdefault(variable, str(ROOT / ".jupyter" / folder))


@dataclass(frozen=True)
class WrongAnswer:
    """A realistic mistake: the code of one solution cell, and the test that must catch it."""

    assignment: str
    name: str
    cell: str
    loses: str
    mistake: str
    code: str

    @classmethod
    def read(cls, path: Path) -> WrongAnswer:
        text = path.read_text()
        header = {key: value.strip() for key, value in HEADER.findall(text)}
        code = HEADER.sub("", text).strip() + "\n"
        return cls(path.parent.name, path.stem, header["cell"], header["loses"],
                   header["mistake"], code)


def assignments() -> list[str]:
    return paths.assignment_ids()


def wrong_answers() -> list[WrongAnswer]:
    return [WrongAnswer.read(p) for a in assignments()
            for p in sorted((FIXTURES / a).glob("*.py"))]


class GradedCourse:
    """One private nbgrader course per assignment, grading each named submission once."""

    def __init__(self, assignment: str, workdir: Path):
        self.course = grading.PrivateCourse(assignment, workdir=workdir)
        self.course.__enter__()
        self.released = self.course.released()
        self.solution = self.course.solution()
        self._results: dict[str, grading.NotebookResult] = {}

    def grade(self, learner: str, notebook) -> grading.NotebookResult:
        if learner not in self._results:
            self.course.submit(learner, notebook)
            self._results[learner] = self.course.autograde(learner)
        return self._results[learner]

    def filled(self, replace: dict[str, str] | None = None):
        return grading.fill_exercise(self.released, self.solution, replace)


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    courses: dict[str, GradedCourse] = {}

    def get(assignment: str) -> GradedCourse:
        if assignment not in courses:
            courses[assignment] = GradedCourse(assignment,
                                               tmp_path_factory.mktemp(f"course-{assignment}"))
        return courses[assignment]

    return get


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)


def pytest_collection_modifyitems(items):
    """Group tests for pytest-xdist's --dist loadgroup: the grading round trips of one
    assignment share a private course (one group per assignment, so assignments grade in
    parallel); every other file keeps its module-scoped fixtures on one worker."""
    for item in items:
        path = item.path.name
        if path == "test_grading.py":
            callspec = getattr(item, "callspec", None)
            params = callspec.params if callspec else {}
            assignment = params.get("assignment") or getattr(params.get("wrong"),
                                                              "assignment", None)
            group = f"grading-{assignment}"
        else:
            group = path
        item.add_marker(pytest.mark.xdist_group(group))


# ------------------------------------------------------------------ `make lab`, for real

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.fixture(scope="module")
def lab():
    port = free_port()
    command = ["make", "--no-print-directory", "lab", f"PORT={port}",
               "LAB_ARGS=--no-browser --IdentityProvider.token="]
    process = subprocess.Popen(command, cwd=paths.course_root(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            get(f"{base}/api/status")
            break
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.5)
    try:
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
