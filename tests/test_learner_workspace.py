"""A learner's work survives every course command and every course update.

A learner clones the course, runs `make lab` (which makes their workspace/), answers an exercise
in their copy, runs the make targets a learner runs, then pulls a course update that changes
that exercise and another one. Real git, real make, real JupyterLab, real nbgrader.

The "upstream" course is this working tree as it is (committed or not, ignored files left out)
committed into a fresh repository: the code under test is the uncommitted code of this tree,
which a clone of HEAD would not have. The learner's clone shares the already-built .venv (a
symlink) and runs its own copy of the mlcourse package (PYTHONPATH), as a real clone would.
The last tests run the workspace library in place, on a small course folder.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from conftest import free_port, get
from mlcourse import grading

ROOT = Path(__file__).resolve().parent.parent
STARTED = "00-orientation"         # the learner answers this one; the update changes it
UNTOUCHED = "01-framing"           # the learner never opens this one; the update changes it too
OLD_HABIT = "02-data"              # answered in exercises/ directly, as before the workspace
# The course update: a sentence added to a locked instruction cell of each exercise
UPDATE = {STARTED: ("task_sexing_split", "The label is the column the model must predict."),
          UNTOUCHED: ("intro", "The data card lists every column and its quirks.")}
# Files the venv's stamp (.venv/.installed) depends on in the Makefile
STAMP_INPUTS = ["requirements.txt", "pyproject.toml",
                "mlcourse/resources/jupyterlab-overrides.json"]


def run(command: list[str], cwd: Path, env: dict, timeout: int = 600,
        check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check:
        assert result.returncode == 0, (f"{' '.join(command)} failed:\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def git(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return run(["git", *args], repo, env)


class Course:
    """The upstream course and a learner's clone of it, with the commands each side runs."""

    def __init__(self, base: Path):
        self.upstream, self.learner = base / "upstream", base / "learner"
        empty = base / "gitconfig"
        empty.write_text("")
        self.env = {key: value for key, value in os.environ.items()
                    if not key.startswith(("MLCOURSE_", "JUPYTER_", "GIT_"))}
        self.env.update(GIT_CONFIG_GLOBAL=str(empty), GIT_CONFIG_NOSYSTEM="1",
                        GIT_AUTHOR_NAME="Course", GIT_AUTHOR_EMAIL="course@example.org",
                        GIT_COMMITTER_NAME="Course", GIT_COMMITTER_EMAIL="course@example.org",
                        MLCOURSE_LEARNER="learner")

    def side_env(self, repo: Path) -> dict:
        """The environment of commands run in ``repo``: its own package and Jupyter state."""
        env = dict(self.env, PYTHONPATH=str(repo))
        for variable, folder in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                                 ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                                 ("MPLCONFIGDIR", "matplotlib")]:
            env[variable] = str(repo / ".jupyter" / folder)
        return env

    def make_upstream(self) -> None:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                                cwd=ROOT, capture_output=True, check=True).stdout
        for name in filter(None, listed.decode().split("\0")):
            source = ROOT / name
            if source.is_file() or source.is_symlink():      # a deleted tracked file is skipped
                target = self.upstream / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target, follow_symlinks=False)
        git(self.upstream, self.env, "init", "-q", "-b", "main")
        git(self.upstream, self.env, "add", "-A")
        git(self.upstream, self.env, "commit", "-q", "-m", "the course")

    def clone_for_the_learner(self) -> None:
        git(self.upstream.parent, self.env, "clone", "-q", str(self.upstream), str(self.learner))
        (self.learner / ".venv").symlink_to(ROOT / ".venv")
        # A fresh clone's files are newer than the shared venv's stamp: make them older, so
        # make sees the venv as up to date (as it is) and never reinstalls into it.
        stamp = (ROOT / ".venv" / ".installed").stat().st_mtime
        for name in STAMP_INPUTS:
            os.utime(self.learner / name, (stamp - 3600, stamp - 3600))
        dry_run = self.make("--dry-run", "setup", "lab").stdout
        assert "pip install" not in dry_run, dry_run

    def make(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run(["make", "--no-print-directory", *args], self.learner,
                   self.side_env(self.learner), check=check)

    def mlcourse(self, *args: str, repo: Path | None = None,
                 check: bool = True) -> subprocess.CompletedProcess:
        repo = repo or self.learner
        return run([str(ROOT / ".venv" / "bin" / "python"), "-m", "mlcourse.cli", *args], repo,
                   self.side_env(repo), check=check)

    def make_lab(self) -> str:
        """Run `make lab` as the lab fixture of conftest.py does, check that JupyterLab serves
        every workspace copy the course home links, stop it; return what make printed."""
        port = free_port()
        process = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"PORT={port}",
             "LAB_ARGS=--no-browser --IdentityProvider.token="],
            cwd=self.learner, env=self.side_env(self.learner), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    get(f"{base}/api/status")
                    break
                except OSError:
                    assert process.poll() is None, "make lab exited early"
                    assert time.monotonic() < deadline, "JupyterLab did not answer in 90 s"
                    time.sleep(0.5)
            for link in home_exercise_links(self.learner):
                path = (Path("lessons") / link).as_posix()
                status, _ = get(f"{base}/api/contents/{normalise(path)}?content=0")
                assert status == 200, link
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                output, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                output, _ = process.communicate()
        return output

    def copy(self, assignment: str) -> Path:
        return self.learner / "workspace" / assignment / f"{assignment}.ipynb"

    def exercise(self, repo: Path, assignment: str) -> Path:
        return repo / "exercises" / assignment / f"{assignment}.ipynb"

    def solution(self, repo: Path, assignment: str) -> Path:
        return repo / "solutions" / assignment / f"{assignment}.ipynb"


def normalise(path: str) -> str:
    """lessons/../workspace/x -> workspace/x"""
    return os.path.normpath(path)


def home_exercise_links(repo: Path) -> list[str]:
    home = nbformat.read(repo / "lessons" / "HOME.ipynb", as_version=4).cells[0].source
    return re.findall(r"\((\.\./workspace/[^)]+\.ipynb)\)", home)


def edit_locked_markdown(path: Path, grade_id: str, added: str) -> None:
    nb = nbformat.read(path, as_version=4)
    cell = grading.graded_cells(nb)[grade_id]
    assert cell.cell_type == "markdown" and grading.nbgrader_meta(cell)["locked"]
    cell.source = cell.source.rstrip() + "\n\n" + added
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = Course(tmp_path_factory.mktemp("learner-workspace"))
    course.make_upstream()
    course.clone_for_the_learner()
    return course


@pytest.fixture(scope="module")
def before_update(course):
    """The learner sets up, opens the lab, answers one exercise and runs the other targets."""
    seen = {"help": course.make("help").stdout,
            "setup": course.make("setup").stdout + course.make("setup").stderr,
            "lab": course.make_lab()}
    copy = course.copy(STARTED)
    released = nbformat.read(copy, as_version=4)
    solution = nbformat.read(course.solution(course.learner, STARTED), as_version=4)
    nbformat.write(grading.fill_exercise(released, solution), copy)
    seen["answers"] = copy.read_bytes()
    seen["untouched"] = course.copy(UNTOUCHED).read_bytes()
    # The targets a learner may run. Not run here: `make test` (the whole suite: this test is
    # part of it), `make bench` and `make demo` (minutes of grading, and they write nothing a
    # learner keeps), `make datasets`/`make wheels` (downloads, an author's rebuild) and
    # `make system-packages` (apt-get, as root).
    for target in ["exercises", "lint", "clean", "help"]:
        seen[target] = course.make(target).stdout
        assert copy.read_bytes() == seen["answers"], f"make {target} changed the answers"
    # what git sees: no tracked file changed, workspace/ ignored (the .venv symlink of this
    # test is not a folder, so the `.venv/` pattern does not cover it)
    status = git(course.learner, course.env, "status", "--porcelain").stdout.splitlines()
    seen["git status"] = [line for line in status if line != "?? .venv"]
    return seen


@pytest.fixture(scope="module")
def after_update(course, before_update):
    """The course updates both exercises; the learner pulls, opens the lab and checks."""
    up = course.upstream
    for assignment, (grade_id, _) in UPDATE.items():
        edit_locked_markdown(course.solution(up, assignment), grade_id, "A first draft.")
    course.mlcourse("exercises", STARTED, UNTOUCHED, repo=up)
    # the author revises the draft and regenerates before committing: `mlcourse exercises`
    # overwrites its own uncommitted output (only other local edits are refused)
    for assignment, (_, sentence) in UPDATE.items():
        solution = course.solution(up, assignment)
        solution.write_text(solution.read_text().replace("A first draft.", sentence))
    generated = course.mlcourse("exercises", STARTED, UNTOUCHED, repo=up).stdout
    assert f"generated exercises/{STARTED}/" in generated, generated
    git(up, course.env, "commit", "-q", "-am", "course update: clearer instructions")
    seen = {"pull": run(["git", "pull"], course.learner, course.env, check=False)}
    seen["lab"] = course.make_lab()
    seen["workspace"] = course.mlcourse("workspace").stdout
    seen["status"] = course.mlcourse("workspace", "--status").stdout
    seen["answers"] = course.copy(STARTED).read_bytes()
    seen["untouched"] = course.copy(UNTOUCHED).read_bytes()
    seen["check"] = course.make("check", f"ASSIGNMENT={STARTED}", check=False)
    seen["answers after check"] = course.copy(STARTED).read_bytes()
    return seen


def test_make_lab_makes_a_copy_of_every_exercise_that_the_home_links(course, before_update):
    modules = sorted(p.name for p in (course.learner / "exercises").iterdir() if p.is_dir())
    for module in modules:
        assert course.copy(module).is_file(), module
    assert sorted(Path(link).parent.name for link in home_exercise_links(course.learner)) == \
        modules
    assert "made your copy of" in before_update["lab"], before_update["lab"]
    assert "Installing" not in before_update["lab"]
    assert "make lab" in before_update["help"]
    assert "Installing" not in before_update["setup"], before_update["setup"]


def test_learner_make_targets_leave_the_answers_and_the_clone_alone(before_update):
    # (the answers were compared byte for byte after each target, in the fixture)
    assert f"exercises/{STARTED}/ is up to date" in before_update["exercises"]
    assert before_update["git status"] == [], before_update["git status"]


def test_git_pull_of_a_course_update_does_not_conflict(after_update):
    pull = after_update["pull"]
    assert pull.returncode == 0, pull.stdout + pull.stderr
    assert "CONFLICT" not in pull.stdout + pull.stderr


def test_started_exercise_is_kept_byte_for_byte_and_the_learner_is_told(course, before_update,
                                                                       after_update):
    assert after_update["answers"] == before_update["answers"]
    for output in (after_update["lab"], after_update["workspace"], after_update["status"],
                   after_update["check"].stdout):
        notice = output[output.index(f"{STARTED}: the course has updated"):]
        assert f"workspace/{STARTED}/{STARTED}.ipynb" in notice, output
        assert f"exercises/{STARTED}/{STARTED}.ipynb" in notice, output
        assert f"--reset {STARTED}" in notice, output
    assert re.search(rf"^{STARTED} +course updated since you started", after_update["status"],
                     re.M), after_update["status"]


def test_untouched_exercise_follows_the_course_update_without_a_notice(course, before_update,
                                                                       after_update):
    new_release = course.exercise(course.learner, UNTOUCHED).read_bytes()
    assert after_update["untouched"] == new_release != before_update["untouched"]
    assert re.search(rf"^{UNTOUCHED} +not started", after_update["status"], re.M)
    for output in (after_update["lab"], after_update["workspace"]):
        assert f"{UNTOUCHED}: the course has updated" not in output


def test_make_check_grades_the_kept_answers_in_full(course, after_update):
    # the learner's copy has the old version of a locked cell: no edit of theirs, so it grades
    grade_id, sentence = UPDATE[STARTED]
    mine = nbformat.reads(after_update["answers"].decode(), as_version=4)
    new = nbformat.read(course.exercise(course.learner, STARTED), as_version=4)
    assert sentence in grading.graded_cells(new)[grade_id].source
    assert sentence not in grading.graded_cells(mine)[grade_id].source
    check = after_update["check"]
    assert check.returncode == 0, check.stdout + check.stderr
    score = re.search(r"autograded: ([\d.]+) of ([\d.]+) points", check.stdout)
    assert score and float(score.group(1)) == float(score.group(2)) > 0, check.stdout
    assert f"({Path('workspace') / STARTED / STARTED}.ipynb)" in check.stdout
    assert "the tests above are the new version's" in check.stdout
    assert after_update["answers after check"] == after_update["answers"]


def test_exercises_refuses_to_overwrite_answers_typed_into_exercises(course, after_update):
    exercise = course.exercise(course.learner, OLD_HABIT)
    solution = nbformat.read(course.solution(course.learner, OLD_HABIT), as_version=4)
    nbformat.write(grading.fill_exercise(nbformat.read(exercise, as_version=4), solution),
                   exercise)
    typed = exercise.read_bytes()
    notes = exercise.parent / "my-notes.md"
    notes.write_text("a file the release does not have\n")
    workspace_copy = course.copy(OLD_HABIT).read_bytes()
    refused = course.mlcourse("exercises", OLD_HABIT, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"exercises/{OLD_HABIT}/{OLD_HABIT}.ipynb has local edits" in refused.stdout
    assert f"nothing written for {OLD_HABIT}" in refused.stdout
    assert f"exercises/{OLD_HABIT}/my-notes.md is not part of the generated exercise: left " \
           "in place" in refused.stdout
    assert exercise.read_bytes() == typed and notes.is_file()
    assert course.copy(OLD_HABIT).read_bytes() == workspace_copy
    git(course.learner, course.env, "checkout", "--", f"exercises/{OLD_HABIT}")
    notes.unlink()


def test_answers_typed_into_exercises_before_the_workspace_move_there_and_stay(course,
                                                                               after_update):
    module = "03-first-model"
    folder = course.learner / "workspace" / module
    shutil.move(folder, course.learner / "elsewhere")     # as if it had never been made
    exercise = course.exercise(course.learner, module)
    solution = nbformat.read(course.solution(course.learner, module), as_version=4)
    nbformat.write(grading.fill_exercise(nbformat.read(exercise, as_version=4), solution),
                   exercise)
    typed = exercise.read_bytes()
    moved = course.mlcourse("workspace", module).stdout
    assert course.copy(module).read_bytes() == typed
    assert f"exercises/{module}/ had edits of yours" in moved, moved
    # exercises/ back to the course's version: the copy is the learner's, never refreshed
    git(course.learner, course.env, "checkout", "--", f"exercises/{module}")
    status = course.mlcourse("workspace").stdout + course.mlcourse("workspace", "--status").stdout
    assert course.copy(module).read_bytes() == typed
    assert re.search(rf"^{module} +started", status, re.M), status


def test_a_locked_cell_that_cannot_be_told_from_an_edit_says_the_course_was_updated(
        course, after_update):
    # without the record of the release the copy was made from, the old locked cell looks
    # like an edit: grading refuses it, and says why that may be
    original = course.learner / "workspace" / ".mlcourse" / "originals" / STARTED
    shutil.move(original, course.learner / "original-aside")
    try:
        check = course.mlcourse("check", STARTED, "--no-record", check=False)
    finally:
        shutil.move(course.learner / "original-aside", original)
    assert check.returncode == 1, check.stdout + check.stderr
    error = check.stdout[check.stdout.index("error:"):]
    assert f"the locked cell {UPDATE[STARTED][0]!r} was edited" in error, check.stdout
    assert f"The course has updated {STARTED} since you started it" in error, check.stdout
    assert f"--reset {STARTED}" in error, check.stdout


def test_reset_moves_the_answers_to_a_backup_and_copies_the_new_version(course, before_update,
                                                                        after_update):
    reset = course.mlcourse("workspace", "--reset", STARTED).stdout
    backups = list((course.learner / "workspace" / "backups").glob(f"{STARTED}-*"))
    assert len(backups) == 1, reset
    assert (backups[0] / f"{STARTED}.ipynb").read_bytes() == before_update["answers"]
    assert course.copy(STARTED).read_bytes() == \
        course.exercise(course.learner, STARTED).read_bytes()
    assert re.search(rf"^{STARTED} +not started",
                     course.mlcourse("workspace", "--status").stdout, re.M)


# ------------------------------------------------------------- the workspace library, in place

@pytest.fixture
def small_course(tmp_path, monkeypatch):
    """A course folder (not a git clone) with two one-file exercises."""
    (tmp_path / "nbgrader_config.py").write_text("")
    (tmp_path / "lessons").mkdir()
    for module in ("91-one", "92-two"):
        folder = tmp_path / "exercises" / module
        folder.mkdir(parents=True)
        (folder / f"{module}.ipynb").write_text(f"{module}: release 1\n")
    monkeypatch.setenv("MLCOURSE_ROOT", str(tmp_path))
    return tmp_path


def test_without_a_manifest_no_copy_is_refreshed_over(small_course):
    from mlcourse import workspace

    workspace.sync()
    (small_course / "workspace" / workspace.MANIFEST_NAME).write_text("{not json")
    for module in ("91-one", "92-two"):
        (small_course / "exercises" / module / f"{module}.ipynb").write_text("release 2\n")
    states = {s.assignment: s for s in workspace.sync()}
    # an unreadable manifest cannot tell an untouched copy from the learner's: both are kept
    for module in ("91-one", "92-two"):
        copy = small_course / "workspace" / module / f"{module}.ipynb"
        assert copy.read_text() == f"{module}: release 1\n"
        assert states[module].state == workspace.STARTED and states[module].action == ""


def test_reset_never_deletes_a_copy(small_course):
    from mlcourse import workspace

    workspace.sync(["91-one"])
    copy = small_course / "workspace" / "91-one" / "91-one.ipynb"
    assert workspace.reset("91-one") is None          # untouched: nothing of the learner's
    backups = []
    for attempt in ("first", "second"):
        copy.write_text(f"{attempt} attempt\n")
        backups.append(workspace.reset("91-one"))
    assert backups[0] != backups[1]
    assert [(b / "91-one.ipynb").read_text() for b in backups] == ["first attempt\n",
                                                                  "second attempt\n"]
    assert copy.read_text() == "91-one: release 1\n"
    with pytest.raises(workspace.WorkspaceError, match="unknown module"):
        workspace.reset("93-three")
