"""Learner code is hostile: an adversarial battery graded in ONE cohort run, beside honest learners.

Every case runs through the real `mlcourse cohort autograde` (real nbgrader, real kernels in the
bubblewrap sandbox, two workers). For each case: the run completes, the honest learners are
graded exactly, the bad submission gets the right status, nothing secret appears in any output
or feedback, and the gradebook passes SQLite's integrity_check.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading

import nbformat
import pytest

from mlcourse import grading, paths
from mlcourse.cohort import workflow
from mlcourse.cohort.course import Cohort, Learner, write_roster

ASSIGNMENT = "00-orientation"
TIMEOUT = 6          # seconds per cell in this run
MEMORY_MB = 1536

# An honest learner answers every task; one honest learner gets one task wrong on purpose.
HONEST = ["honest1", "honest2", "honest3"]

# Code a hostile learner puts in the FIRST solution cell (the rest is the right answer).
HOSTILE_CODE = {
    "infinite_loop": "while True:\n    pass\n",
    "long_sleep": "import time\ntime.sleep(3600)\n",
    "os_exit": "import os\nos._exit(1)\n",
    "memory_bomb": "hog = []\nwhile True:\n    hog.append(bytearray(50 * 1024 * 1024))\n",
    "many_children": ("import subprocess\n"
                      "children = [subprocess.Popen(['sleep', '987'], start_new_session=True)"
                      " for _ in range(40)]\n"),
    "million_lines": "for i in range(1_000_000):\n    print('spam', i)\n",
    # hard limits: each must end as a status whose detail names the limit (see LIMIT_FLAGS)
    "fill_tmp": ("chunk = b'x' * (32 * 1024 * 1024)\n"
                 "for number in range(96):   # 3 GiB in files under the file limit\n"
                 "    with open(f'/tmp/fill-{number}.bin', 'wb') as handle:\n"
                 "        handle.write(chunk)\n"),
    "fill_own_folder": ("chunk = b'x' * (16 * 1024 * 1024)\n"
                        "for number in range(192):   # 3 GiB in files under the file limit\n"
                        "    with open(f'fill-{number}.bin', 'wb') as handle:\n"
                        "        handle.write(chunk * 2)\n"),
    "one_huge_file": ("chunk = b'x' * (16 * 1024 * 1024)\n"
                      "with open('/tmp/huge.bin', 'wb') as handle:\n"
                      "    for _ in range(8):   # 128 MiB, over the file limit\n"
                      "        handle.write(chunk)\n"),
    "fork_many": ("import subprocess\n"
                  "children = [subprocess.Popen(['sleep', '988']) for _ in range(1200)]\n"),
    "fill_connection_folder": (
        "import os\nfrom ipykernel.connect import get_connection_file\n"
        "folder = os.path.dirname(get_connection_file())\n"
        "chunk = b'x' * (60 * 1024 * 1024)\n"
        "for number in range(6):   # 360 MiB next to the kernel's sockets\n"
        "    with open(os.path.join(folder, f'fill-{number}.bin'), 'wb') as handle:\n"
        "        handle.write(chunk)\n"),
    "huge_html_output": ("from IPython.display import HTML, display\n"
                         "display(HTML('<p>' + 'spam ' * 8_000_000 + '</p>'))   # 40 MB\n"),
    "script_in_output": ("from IPython.display import HTML, display\n"
                         "display(HTML('<b>hello</b><script>window.__pwned__ = 1</script>'"
                         "'<img src=x onerror=\"window.__pwned__ = 2\">'))\n"),
    "read_secrets": None,     # filled in by the fixture (needs the cohort's paths)
    "write_outside": None,
    "open_socket": None,
}


def first_solution_cell(nb) -> str:
    return next(gid for gid, cell in grading.graded_cells(nb).items()
                if grading.nbgrader_meta(cell).get("solution") and cell.cell_type == "code")


def file_hash(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Listener:
    """A TCP server on the host's loopback that counts connections (there must be none)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    base = tmp_path_factory.mktemp("battery")
    root = base / "cohort"
    adversarial = list(HOSTILE_CODE) + [
        "malformed_json", "empty_file", "missing_notebook", "renamed_notebook",
        "tampered_test_cell", "deleted_test_cell", "duplicated_grade_id", "changed_cell_type",
        "symlinks_to_secrets", "symlinked_notebook", "exchange_symlink", "linked_inbound",
        "huge_notebook"]
    learners = HONEST + adversarial
    roster = base / "roster.csv"
    write_roster(roster, [Learner(name.replace("_", "-"), "First", "Last",
                                  f"{name}@example.com", "team") for name in learners])
    cohort = Cohort.init(root, roster)
    workflow.release(root, [ASSIGNMENT], out=lambda line: None)
    released = cohort.released_notebook(ASSIGNMENT)
    solution = grading.read_notebook(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    target = first_solution_cell(solution)
    listener = Listener()
    secrets_probe = (
        "import glob, os\n"
        "leaks = []\n"
        f"for pattern in ['{root}/source/*/*.ipynb', '{root}/gradebook.db',\n"
        f"                '{root}/submitted/*/*/*.ipynb', '{root}/autograded/honest1/*/*',\n"
        f"                '{paths.solutions_dir()}/*/*.ipynb', '../../source/*/*.ipynb',\n"
        "                '../../gradebook.db', '../../../source/*/*.ipynb',\n"
        f"                '{paths.course_root()}/.git/config', '/etc/shadow',\n"
        "                '/root/.bashrc', '/root/.profile']:\n"
        "    for path in glob.glob(pattern):\n"
        "        try:\n"
        "            leaks.append(open(path, 'rb').read()[:100000].decode('utf8', 'replace'))\n"
        "        except OSError:\n"
        "            pass\n"
        "print('SECRET-READS', len(leaks))\n"
        "print('\\n'.join(leaks))\n")
    write_probe = (
        "import os\n"
        "wrote = []\n"
        f"for path in ['{root}/gradebook.db', '{root}/source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb',\n"
        f"             '{paths.solutions_dir()}/pwned.txt', '{root}/pwned.txt',\n"
        "             '../../pwned.txt', '../other-assignment.txt']:\n"
        "    try:\n"
        "        with open(path, 'a') as handle:\n"
        "            handle.write('pwned')\n"
        "        wrote.append(path)\n"
        "    except OSError:\n"
        "        pass\n"
        "open('my-own-scratch.txt', 'w').write('fine')\n"
        "print('WROTE-OUTSIDE', wrote)\n")
    socket_probe = (
        "import socket\n"
        "reached = []\n"
        f"for host, port in [('127.0.0.1', {listener.port}), ('1.1.1.1', 443),"
        " ('10.0.2.2', 80)]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=2).close()\n"
        "        reached.append(host)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('REACHED', reached)\n")
    code = dict(HOSTILE_CODE, read_secrets=secrets_probe, write_outside=write_probe,
                open_socket=socket_probe)
    # the solution cell's own answer follows the hostile code, so only the attack is tested
    right_first_cell = grading.solution_code(grading.graded_cells(solution)[target].source)

    def submit(name, notebook=None, text=None, filename=f"{ASSIGNMENT}.ipynb"):
        folder = root / "submitted" / name.replace("_", "-") / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        if text is not None:
            (folder / filename).write_text(text)
        else:
            nbformat.write(notebook, folder / filename)

    for name in HONEST[:2]:
        submit(name, grading.fill_exercise(released, solution))
    wrong = grading.fill_exercise(released, solution, {target: right_first_cell.replace(
        "return", "return None and", 1) if "return" in right_first_cell else "pass\n"})
    submit(HONEST[2], wrong)
    for name, snippet in code.items():
        submit(name, grading.fill_exercise(released, solution,
                                           {target: snippet + "\n" + right_first_cell}))
    good = grading.fill_exercise(released, solution)
    submit("malformed_json", text=nbformat.writes(good)[:-300])
    submit("empty_file", text="")
    submit("renamed_notebook", good, filename="my-work.ipynb")
    tampered = nbformat.from_dict(json.loads(nbformat.writes(good)))
    tests = [c for c in tampered.cells if grading.nbgrader_meta(c).get("grade")
             and not grading.nbgrader_meta(c).get("solution")]
    tests[0].source = "assert True  # trust me"
    submit("tampered_test_cell", tampered)
    deleted = nbformat.from_dict(json.loads(nbformat.writes(good)))
    deleted.cells = [c for c in deleted.cells
                     if grading.nbgrader_meta(c).get("grade_id") !=
                     grading.nbgrader_meta(tests[0]).get("grade_id")]
    submit("deleted_test_cell", deleted)
    duplicated = nbformat.from_dict(json.loads(nbformat.writes(good)))
    first_graded = next(c for c in duplicated.cells if grading.nbgrader_meta(c).get("grade_id"))
    copy = nbformat.from_dict(json.loads(json.dumps(first_graded)))
    copy["id"] = "a-copied-cell"
    duplicated.cells.append(copy)
    submit("duplicated_grade_id", duplicated)
    changed = nbformat.from_dict(json.loads(nbformat.writes(good)))
    cell = next(c for c in changed.cells if grading.nbgrader_meta(c).get("grade_id") == target)
    cell.cell_type = "markdown"
    cell.pop("outputs", None)
    cell.pop("execution_count", None)
    submit("changed_cell_type", changed)

    # symlinks in the submission folder, to the hidden tests and to the solutions
    source_notebook = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    submit("symlinks_to_secrets", good)
    folder = root / "submitted" / "symlinks-to-secrets" / ASSIGNMENT
    (folder / "leak.ipynb").symlink_to(source_notebook)
    (folder / "solutions").symlink_to(paths.solutions_dir())
    folder = root / "submitted" / "symlinked-notebook" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / f"{ASSIGNMENT}.ipynb").symlink_to(source_notebook)
    # the same through the exchange: a learner can write into inbound/ by hand
    inbound = root / "exchange" / cohort.course_id / "inbound" / \
        f"exchange-symlink+{ASSIGNMENT}+2026-01-01 10:00:00.000000 UTC+x1"
    inbound.mkdir(parents=True)
    nbformat.write(good, inbound / f"{ASSIGNMENT}.ipynb")
    (inbound / "timestamp.txt").write_text("2026-01-01 10:00:00.000000 UTC")
    (inbound / "hidden.ipynb").symlink_to(source_notebook)
    os.mkfifo(inbound / "a-pipe")
    # an inbound entry that is itself a link, to another learner's submission
    (inbound.parent / f"linked-inbound+{ASSIGNMENT}+2026-01-01 10:00:00.000000 UTC+x2"
     ).symlink_to(root / "submitted" / "honest1" / ASSIGNMENT)
    collect = subprocess.run([sys.executable, "-m", "mlcourse.cli", "cohort", "collect",
                              str(root), ASSIGNMENT], capture_output=True, text=True,
                             timeout=120)
    # a notebook over the size limit (5 MiB in this run): a big stored output
    huge = nbformat.from_dict(json.loads(nbformat.writes(good)))
    huge.cells.append(nbformat.v4.new_markdown_cell("x" * (6 * 1024 * 1024)))
    submit("huge_notebook", huge)

    protected = [root / "gradebook.db", root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                 paths.solutions_dir() / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"]
    before = {p: file_hash(p) for p in protected if p != root / "gradebook.db"}
    command = [sys.executable, "-m", "mlcourse.cli", "cohort", "autograde", str(root),
               ASSIGNMENT, "--workers", "2", "--timeout", str(TIMEOUT),
               "--memory", str(MEMORY_MB), "--notebook-mb", "5"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    feedback = subprocess.run([sys.executable, "-m", "mlcourse.cli", "cohort", "feedback",
                               str(root), ASSIGNMENT], capture_output=True, text=True)
    export_file = base / "grades.csv"
    export = subprocess.run([sys.executable, "-m", "mlcourse.cli", "cohort", "export",
                             str(root), "--out", str(export_file)],
                            capture_output=True, text=True)
    listener.close()
    rows = {}
    if export_file.is_file():
        with open(export_file) as handle:
            rows = {row["learner"]: row for row in csv.DictReader(handle)}
    yield {"root": root, "run": run, "feedback": feedback, "export": export, "rows": rows,
           "collect": collect,
           "listener": listener, "before": before, "solution": solution, "target": target}


def row(battery, name):
    return battery["rows"][name.replace("_", "-")]


def test_the_run_completes(battery):
    for step in ("run", "feedback", "export"):
        result = battery[step]
        assert result.returncode == 0, f"{step}: {result.stdout}\n{result.stderr}"
    assert "Traceback" not in battery["run"].stdout + battery["run"].stderr


def test_honest_learners_are_graded_exactly(battery):
    auto_points = sum(float(grading.nbgrader_meta(c).get("points", 0))
                      for c in battery["solution"].cells
                      if grading.nbgrader_meta(c).get("grade")
                      and not grading.nbgrader_meta(c).get("solution"))
    for name in HONEST[:2]:
        result = row(battery, name)
        assert result["status"] == "needs-manual-grading", result
        assert float(result["score"]) == auto_points, result
    partly = row(battery, HONEST[2])
    assert partly["status"] == "needs-manual-grading"
    assert 0 < float(partly["score"]) < auto_points, partly


EXPECTED_STATUS = {
    "infinite_loop": "timeout", "long_sleep": "timeout", "os_exit": "crashed",
    "memory_bomb": "crashed", "malformed_json": "malformed", "empty_file": "malformed",
    "missing_notebook": "missing", "renamed_notebook": "missing",
    "tampered_test_cell": "tampered", "deleted_test_cell": "tampered",
    "duplicated_grade_id": "malformed", "changed_cell_type": "tampered",
    "symlinks_to_secrets": "tampered", "symlinked_notebook": "tampered",
    "exchange_symlink": "tampered", "linked_inbound": "tampered", "huge_notebook": "malformed",
    "fill_tmp": "crashed", "fill_own_folder": "crashed", "one_huge_file": "crashed",
    "fork_many": "crashed", "fill_connection_folder": "crashed",
}

# The flag each limit case must name in its detail (the detail says which limit, and how to
# change it).
LIMIT_FLAGS = {
    "fill_tmp": "--scratch-mb", "fill_own_folder": "--disk-mb", "one_huge_file": "--file-mb",
    "fork_many": "--processes", "fill_connection_folder": "--disk-mb",
    "huge_notebook": "--notebook-mb", "memory_bomb": "--memory", "infinite_loop": "--timeout",
    "long_sleep": "--timeout",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_hostile_submission_gets_the_right_status(battery, name):
    result = row(battery, name)
    assert result["status"] == EXPECTED_STATUS[name], result
    assert result["detail"], "every status carries a one-line reason"
    if name in LIMIT_FLAGS:
        assert LIMIT_FLAGS[name] in result["detail"], result
    if name in ("infinite_loop", "long_sleep"):
        # the kernel survived: the attacked task scores 0, the other tasks are still graded
        assert 0 < float(result["score"]) < float(result["max_score"]), result
    elif name in ("memory_bomb", "fill_tmp", "fill_own_folder", "one_huge_file", "fork_many"):
        # the error is raised in the attacked cell (or the kernel dies): never full marks
        assert float(result["score"]) < float(result["max_score"]), result
    elif name == "fill_connection_folder":
        pass   # its code ran to the end; what it left was found and removed afterwards
    else:
        assert float(result["score"]) == 0, result


def test_renamed_notebook_detail_names_the_file(battery):
    assert "my-work.ipynb" in row(battery, "renamed_notebook")["detail"]


def test_memory_bomb_is_reported_as_out_of_memory(battery):
    assert "memory" in row(battery, "memory_bomb")["detail"]


def all_outputs(battery) -> str:
    root = battery["root"]
    texts = [battery[s].stdout + battery[s].stderr for s in ("run", "feedback", "export")]
    for folder in ("autograded", "feedback"):
        for path in (root / folder).rglob("*"):
            if path.is_file() and path.suffix in (".ipynb", ".html", ".txt"):
                texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def test_nothing_secret_appears_in_any_output_or_feedback(battery):
    from mlcourse.cohort.workflow import secret_lines

    # a hidden line that repeats a visible one (a shared assert message) is no secret
    released = grading.read_notebook(paths.exercises_dir() / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    hidden = secret_lines(battery["solution"], [cell.source for cell in released.cells])
    assert hidden, "the assignment must have hidden tests for this test to mean anything"
    root = battery["root"]
    feedback_pages = list((root / "feedback").rglob("*.html"))
    assert feedback_pages
    for page in feedback_pages:
        text = workflow._visible_text(page.read_text())
        assert not [line for line in hidden if line in text], page
    texts = all_outputs(battery)
    assert "SECRET-READS 0" in texts, "the probe could read a protected file"
    for page in feedback_pages:
        assert "BEGIN HIDDEN TESTS" not in page.read_text()


def test_learner_code_cannot_write_outside_its_folder(battery):
    root = battery["root"]
    for path, digest in battery["before"].items():
        assert file_hash(path) == digest, f"{path} was modified"
    assert not (paths.solutions_dir() / "pwned.txt").exists()
    assert not (root / "pwned.txt").exists()
    assert "WROTE-OUTSIDE []" in all_outputs(battery)
    assert not (root / "autograded" / "write-outside" / "other-assignment.txt").exists()
    # what the code writes in its own folder lives in the sandbox's copy and is gone after
    assert not (root / "autograded" / "write-outside" / ASSIGNMENT / "my-own-scratch.txt"
                ).exists()


def test_learner_code_has_no_network_not_even_loopback(battery):
    assert battery["listener"].connections == 0
    assert "REACHED []" in all_outputs(battery)


def test_processes_a_submission_starts_do_not_outlive_its_grading(battery):
    leftover = subprocess.run(["pgrep", "-f", "sleep 98[78]"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", f"orphans: {leftover.stdout}"


def test_a_million_lines_of_output_are_cut_short(battery):
    notebook = battery["root"] / "autograded" / "million-lines" / ASSIGNMENT / \
        f"{ASSIGNMENT}.ipynb"
    assert notebook.stat().st_size < 2_000_000
    # Printing a million lines may not finish within this run's short cell timeout; either
    # way the submission is graded and the stored notebook stays small.
    assert row(battery, "million_lines")["status"] in ("graded", "needs-manual-grading",
                                                        "timeout")


def test_gradebook_passes_integrity_check(battery):
    with sqlite3.connect(battery["root"] / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_failed_regrade_keeps_the_previous_grade(battery, tmp_path):
    """Regrade an honest learner whose new submission kills the kernel: the old grade stays."""
    root = battery["root"]
    before = row(battery, HONEST[0])
    path = root / "submitted" / HONEST[0] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells
                if grading.nbgrader_meta(c).get("grade_id") == battery["target"])
    cell.source = "import os\nos._exit(3)\n" + cell.source
    nbformat.write(nb, path)
    # only this learner: a one-line roster view of the same cohort
    cohort = Cohort(root)
    roster = [learner for learner in cohort.roster() if learner.id == HONEST[0]]
    full_roster = (root / "roster.csv").read_text()
    write_roster(root / "roster.csv", roster)
    try:
        from mlcourse.cohort.grader import autograde
        statuses = autograde(root, [ASSIGNMENT], workers=1, timeout=TIMEOUT,
                             memory_mb=MEMORY_MB, out=lambda line: None, show_progress=False)
    finally:
        (root / "roster.csv").write_text(full_roster)
    (status,) = statuses
    assert status.status == before["status"]
    assert float(status.score) == float(before["score"])
    assert "regrade" in status.detail and "kept" in status.detail
    assert (root / "autograded" / HONEST[0] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()


def folder_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and
               not p.is_symlink()) if folder.exists() else 0


def test_symlinks_are_refused_and_never_followed(battery):
    root = battery["root"]
    assert "refused: exchange-symlink" in battery["collect"].stdout, battery["collect"]
    inbound_copy = root / "submitted" / "exchange-symlink" / ASSIGNMENT
    assert (inbound_copy / "hidden.ipynb").is_symlink(), "collect must copy the link, not the file"
    assert (inbound_copy / "a-pipe").is_symlink(), "a pipe is never opened"
    assert "hidden.ipynb" in row(battery, "exchange_symlink")["detail"]
    assert "leak.ipynb" in row(battery, "symlinks_to_secrets")["detail"]
    for name in ("symlinks-to-secrets", "symlinked-notebook", "exchange-symlink",
                 "linked-inbound"):
        for folder in ("autograded", "feedback"):
            assert not (root / folder / name).exists(), f"{folder}/{name} exists"


def test_a_limit_hit_leaves_nothing_behind(battery):
    root = battery["root"]
    for name in ("fill-own-folder", "fill-tmp", "one-huge-file", "fill-connection-folder"):
        kept = folder_bytes(root / "autograded" / name)
        assert kept < 2 * 1024 * 1024, f"{name} left {kept} bytes in autograded/"


def test_output_is_cut_per_cell_and_the_submission_still_graded(battery):
    result = row(battery, "huge_html_output")
    assert result["status"] in ("graded", "needs-manual-grading"), result
    assert "--output-kb" in result["detail"], result
    notebook = battery["root"] / "autograded" / "huge-html-output" / ASSIGNMENT / \
        f"{ASSIGNMENT}.ipynb"
    assert notebook.stat().st_size < 3 * 1024 * 1024


def test_learner_scripts_are_not_live_in_feedback(battery):
    page = battery["root"] / "feedback" / "script-in-output" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    html = page.read_text()
    assert "hello" in html, "the learner's ordinary output is still shown"
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S | re.I)
    assert not [body for body in scripts if "__pwned__" in body]
    assert not re.search(r"<[^>]+\son\w+\s*=[^>]*__pwned__", html, re.I)
