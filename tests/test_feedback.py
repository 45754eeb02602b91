"""Feedback pages for a whole graded cohort: no hidden tests, no live learner HTML, and one
learner's problem never stops feedback for the others.

ONE cohort is simulated and graded for real (nbgrader in the bubblewrap sandbox, two workers)
and shared by every test of this file (conftest puts a file's tests in one xdist group): three
simulated learners over all ten modules (seed 4 draws every kind: right, partly wrong, blank,
late, broken, and one learner who stalls after module 00), plus three planted learners on
00-orientation: one whose code prints a hidden-test line (a real leak), one whose outputs and
written answer carry scripts, one whose answer quotes a hidden-test line (not a leak). Feedback
runs twice through the CLI: on a copy of the cohort without the planted learners (must exit 0),
and on 00-orientation with them (must withhold exactly the leaker's page and exit 1).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import io
import re
import shutil
import time
from html.parser import HTMLParser

import nbformat
import pytest

from mlcourse import cli, grading, paths
from mlcourse.cohort import grader, simulate, workflow
from mlcourse.cohort.course import Cohort, Learner, read_roster, write_roster

ASSIGNMENTS = paths.assignment_ids()
LEARNERS, SEED = 3, 4            # the smallest cohort found in which every kind appears
KINDS = {"right", "partly-wrong", "blank", "late", "broken"}
PLANTED = "00-orientation"       # the cheapest module to grade
LEAKER, SCRIPTER, QUOTER = "planted-leaker", "planted-scripter", "planted-quoter"
MARKER = "window.__pwned__=1"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS[^\n]*\n(.*?)### END HIDDEN TESTS", re.S)


def hidden_lines(source_nb) -> list[str]:
    """Every substantial line inside the hidden-test markers of the source notebook (written
    here again, not taken from workflow.secret_lines, so the test checks the code)."""
    lines = []
    for cell in source_nb.cells:
        for block in HIDDEN.findall(cell.source):
            lines += [line.strip() for line in block.splitlines() if len(line.strip()) >= 12]
    return lines


def page_text(page) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def first_code_answer(nb) -> str:
    return next(gid for gid, cell in grading.graded_cells(nb).items()
                if grading.nbgrader_meta(cell).get("solution") and cell.cell_type == "code")


def run_feedback(root, assignments) -> tuple[int, str]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stdout):
        code = cli.main(["cohort", "feedback", str(root), *assignments])
    return code, stdout.getvalue()


def digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def plant(root) -> dict:
    """Add the planted learners to the roster and submit their 00-orientation notebooks."""
    cohort = Cohort(root)
    released = cohort.released_notebook(PLANTED)
    source = grading.read_notebook(root / "source" / PLANTED / f"{PLANTED}.ipynb")
    visible = "\n".join(cell.source for cell in released.cells)
    secret = next(line for line in hidden_lines(source) if line not in visible)
    target = first_code_answer(source)
    right = grading.solution_code(grading.graded_cells(source)[target].source)
    leak = (f"print(bytes.fromhex({secret.encode().hex()!r}).decode())  # built, not written\n"
            + right)
    scripts = ("from IPython.display import HTML, Javascript, display\n"
               f"display(HTML('<script>{MARKER}</script><b>learner-bold-output</b>'))\n"
               f"display(HTML('<img src=\"x\" onerror=\"{MARKER}\">'))\n"
               f"display(Javascript('{MARKER}'))\n"
               "display(pd.DataFrame({'learner_column': [1, 2]}))\n"
               "print('learner-ordinary-output')\n" + right)
    quote = f"# my notes: {secret}\n" + right
    notebooks = {LEAKER: grading.fill_exercise(released, source, {target: leak}),
                 SCRIPTER: grading.fill_exercise(released, source, {target: scripts}),
                 QUOTER: grading.fill_exercise(released, source, {target: quote})}
    for cell in notebooks[SCRIPTER].cells:      # the written answer, with raw HTML in it
        meta = grading.nbgrader_meta(cell)
        if cell.cell_type == "markdown" and meta.get("solution"):
            cell.source = (f"learner-written-answer <script>{MARKER}</script>\n\n"
                           f"<img src=x onerror=\"{MARKER}\"> [a link](javascript:{MARKER})")
    roster = read_roster(root / "roster.csv")
    extra = [Learner(name, "Planted", name.split("-")[1].title(), f"{name}@example.com", "qa")
             for name in notebooks]
    write_roster(root / "roster.csv", roster + extra)
    with grading.quiet_logging(), cohort.gradebook() as gradebook:
        due = gradebook.find_assignment(PLANTED).duedate
        for learner in extra:
            gradebook.update_or_create_student(learner.id, first_name=learner.first_name,
                                               last_name=learner.last_name)
    for name, notebook in notebooks.items():
        path = cohort.submission_path(name, PLANTED)
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
        (path.parent / "timestamp.txt").write_text(str(due - dt.timedelta(hours=2)))
    return {"secret": secret, "roster": roster}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    started = time.perf_counter()
    base = tmp_path_factory.mktemp("feedback")
    root = base / "cohort"
    profiles = simulate.simulate(root, LEARNERS, seed=SEED, assignments=ASSIGNMENTS,
                                 out=lambda _: None)
    planted = plant(root)
    grader.autograde(root, ASSIGNMENTS, workers=2, out=lambda _: None, show_progress=False)
    graded_at = time.perf_counter()
    # The simulated cohort alone: a copy whose roster leaves the planted learners out.
    simulated = base / "simulated"
    shutil.copytree(root, simulated)
    write_roster(simulated / "roster.csv", planted["roster"])
    autograded_before = digests(simulated / "autograded")
    code, output = run_feedback(simulated, ASSIGNMENTS)
    planted_code, planted_output = run_feedback(root, [PLANTED])
    timings = {"grade": graded_at - started, "total": time.perf_counter() - started}
    print(f"\nfeedback fixture: graded in {timings['grade']:.0f} s, "
          f"{timings['total']:.0f} s with both feedback runs")
    return {"root": root, "simulated": simulated, "profiles": profiles, "code": code,
            "output": output, "planted_code": planted_code, "planted_output": planted_output,
            "secret": planted["secret"], "autograded_before": autograded_before}


def pages(root, assignment, learners) -> dict[str, object]:
    return {learner: root / "feedback" / learner / assignment / f"{assignment}.html"
            for learner in learners}


def autograded_learners(root, assignment) -> list[str]:
    """The learners of the cohort's roster with an autograded notebook of the assignment."""
    return [learner.id for learner in Cohort(root).roster()
            if (Cohort(root).autograded_folder(learner.id, assignment) /
                f"{assignment}.ipynb").is_file()]


def visible_to(root, learner, assignment) -> str:
    """What the learner legitimately sees or wrote: the released exercise and their submission."""
    texts = [cell.source for cell in Cohort(root).released_notebook(assignment).cells]
    submitted = root / "submitted" / learner / assignment / f"{assignment}.ipynb"
    texts += [cell.source for cell in grading.read_notebook(submitted).cells]
    return "\n".join(texts)


def source(root, assignment):
    return grading.read_notebook(root / "source" / assignment / f"{assignment}.ipynb")


# ------------------------------------------------------------------ the simulated cohort

def test_the_cohort_has_every_kind_of_learner(graded):
    kinds = {profile.split(":")[0] for profile in graded["profiles"].values()}
    assert KINDS <= kinds, f"seed {SEED} no longer draws every kind: {sorted(kinds)}"
    for assignment in ASSIGNMENTS:
        assert autograded_learners(graded["simulated"], assignment), \
            f"nobody was autograded on {assignment}: its feedback would go untested"


def test_every_graded_learner_gets_a_page_and_the_run_exits_0(graded):
    root = graded["simulated"]
    assert graded["code"] == 0, graded["output"]
    assert "0 withheld" in graded["output"], graded["output"]
    for assignment in ASSIGNMENTS:
        for learner, page in pages(root, assignment,
                                   autograded_learners(root, assignment)).items():
            assert page.is_file(), f"no feedback for {learner} {assignment}:\n" \
                                   f"{graded['output']}"


def test_no_page_shows_a_hidden_test(graded):
    checked = 0
    for root, assignments in ((graded["simulated"], ASSIGNMENTS), (graded["root"], [PLANTED])):
        for assignment in assignments:
            hidden = hidden_lines(source(root, assignment))
            for page in (root / "feedback").glob(f"*/{assignment}/{assignment}.html"):
                learner = page.parent.parent.name
                visible = visible_to(root, learner, assignment)
                text = page_text(page)
                shown = [line for line in hidden if line not in visible and line in text]
                assert not shown, f"{learner} {assignment} shows hidden tests: {shown[:2]}"
                assert "HIDDEN TESTS" not in page.read_text()
                checked += 1
    assert checked >= len(ASSIGNMENTS)


def test_a_hidden_line_the_learner_may_see_does_not_withhold_the_page(graded):
    """The defect: a hidden-test line also in a visible test (01-framing) or in a right
    learner's own answer withheld the page and stopped everyone's feedback."""
    root = graded["simulated"]
    kept = set()
    for assignment in ASSIGNMENTS:
        hidden = hidden_lines(source(root, assignment))
        released = "\n".join(c.source for c in Cohort(root).released_notebook(assignment).cells)
        for learner in autograded_learners(root, assignment):
            text = page_text(pages(root, assignment, [learner])[learner])
            if any(line in text for line in hidden):
                kept.add(assignment)
            if assignment == "01-framing":
                assert [line for line in hidden if line in released and line in text]
    assert {"01-framing", "02-data", "03-first-model", "05-test-version", "06-evaluate",
            "08-monitor"} <= kept, sorted(kept)


# ------------------------------------------------------------------ planted learners

def test_a_hidden_line_in_the_learners_own_answer_is_not_a_leak(graded):
    page = pages(graded["root"], PLANTED, [QUOTER])[QUOTER]
    assert page.is_file(), graded["planted_output"]
    assert graded["secret"] in page_text(page)


def test_a_real_leak_is_withheld_and_named_and_the_others_still_get_feedback(graded):
    root, output = graded["root"], graded["planted_output"]
    assert graded["planted_code"] == 1, output
    assert not pages(root, PLANTED, [LEAKER])[LEAKER].exists()
    withheld = [line for line in output.splitlines() if line.strip().startswith("withheld")]
    assert withheld and all(LEAKER in line for line in withheld), output
    assert PLANTED in withheld[0] and "hidden tests" in withheld[0]
    assert graded["secret"][:20] in withheld[0], "the reason quotes the leaked line"
    assert "1 withheld" in output, output
    others = [name for name in autograded_learners(root, PLANTED) if name != LEAKER]
    assert len(others) >= 3
    for learner, page in pages(root, PLANTED, others).items():
        assert page.is_file(), f"{learner} got no feedback after the leak:\n{output}"


def test_an_unreadable_graded_notebook_is_withheld_and_the_others_still_get_feedback(
        graded, tmp_path):
    root = tmp_path / "cohort"
    shutil.copytree(graded["root"], root)
    broken = root / "autograded" / SCRIPTER / PLANTED / f"{PLANTED}.ipynb"
    broken.write_text('{"cells": [')
    code, output = run_feedback(root, [PLANTED])
    assert code == 1, output
    assert f"withheld {SCRIPTER} {PLANTED}: NotebookProblem" in output, output
    assert not pages(root, PLANTED, [SCRIPTER])[SCRIPTER].exists(), "the old page is gone too"
    assert pages(root, PLANTED, [QUOTER])[QUOTER].is_file()
    assert "2 withheld" in output, output          # the scripter and the leaker


class Live(HTMLParser):
    """What a browser would run: <script> contents, on* attributes, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.in_script, self.scripts, self.handlers, self.urls = False, [], [], []

    def handle_starttag(self, tag, attrs):
        self.in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}={value}")
            if name in ("href", "src") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.urls.append(value)

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script:
            self.scripts.append(data)


def test_learner_scripts_are_not_live_in_the_page(graded):
    page = pages(graded["root"], PLANTED, [SCRIPTER])[SCRIPTER]
    assert page.is_file(), graded["planted_output"]
    live = Live()
    live.feed(page.read_text())
    assert not [s for s in live.scripts if "__pwned__" in s]
    assert not live.handlers
    assert not live.urls
    assert live.scripts, "nbconvert's own scripts (MathJax) are still there"


def test_the_page_still_shows_the_learners_ordinary_outputs(graded):
    page = pages(graded["root"], PLANTED, [SCRIPTER])[SCRIPTER].read_text()
    assert "learner-ordinary-output" in page
    assert "<b>learner-bold-output</b>" in page
    assert re.search(r"<table[^>]*>.*learner_column", page, re.S), "the DataFrame is a table"
    assert "learner-written-answer" in page
    assert "<h2" in page and "<details>" in page, "the course's own markdown is unchanged"


def test_feedback_leaves_the_autograded_notebooks_alone(graded):
    assert digests(graded["simulated"] / "autograded") == graded["autograded_before"]


# ------------------------------------------------------------------ the public view itself

def test_public_view_drops_or_cleans_every_kind_of_live_output():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={
            "application/javascript": MARKER, "text/plain": "js"}),
        nbformat.v4.new_output("display_data", data={
            "text/html": f'<p onmouseover="{MARKER}">hi</p><script>{MARKER}</script>'}),
        nbformat.v4.new_output("display_data", data={
            "text/markdown": f"[x](javascript:{MARKER}) <script>{MARKER}</script>"}),
        nbformat.v4.new_output("display_data", data={
            "image/svg+xml": f"<svg onload='{MARKER}'/>", "text/plain": "svg"}),
    ]
    nb.cells = [code, nbformat.v4.new_raw_cell(f"<script>{MARKER}</script>")]
    view = workflow.public_view(nb)
    assert "widgets" not in view.metadata
    js, html_output, markdown, svg = (o.data for o in view.cells[0].outputs)
    assert "application/javascript" not in js and js["text/plain"] == "js"
    assert "onmouseover" not in html_output["text/html"]
    assert "<script>" not in html_output["text/html"] and "<p>hi</p>" in html_output["text/html"]
    assert "text/markdown" not in markdown
    assert "javascript:" not in markdown["text/html"] and "<script>" not in markdown["text/html"]
    assert "image/svg+xml" not in svg
    assert "<script>" not in view.cells[1].source
    assert "widgets" in nb.metadata, "the notebook given is not changed"
