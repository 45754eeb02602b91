"""Release, collect, feedback and export for a cohort, through nbgrader's own API and apps."""

from __future__ import annotations

import csv
import html
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .. import grading
from .course import Cohort, CohortError

EXPORT_COLUMNS = ["learner", "assignment", "score", "max_score", "status", "detail",
                  "graded_at"]
# LMS downloads: one file per learner and notebook, named "<learner id>_<notebook>.ipynb"
# (any folders inside the zip are ignored). Override with --regexp.
DEFAULT_ZIP_REGEXP = r".*/(?P<student_id>[^/]+?)_(?P<file_id>\d\d-[^/]+\.ipynb)$"


def _check(result: dict, what: str) -> None:
    if not result.get("success"):
        raise CohortError(f"nbgrader {what} failed:\n{(result.get('error') or '').strip()}\n"
                          f"{(result.get('log') or '').strip()[-1500:]}")


def release(cohort_dir: Path, assignments: list[str], out: Callable[[str], None] = print):
    """Generate each assignment (source/ -> release/) and release it to the exchange."""
    cohort = Cohort(cohort_dir)
    for assignment in assignments:
        cohort.check_assignment(assignment)
    api = cohort.api()
    for assignment in assignments:
        with grading.quiet_logging():
            _check(api.generate_assignment(assignment), f"generate_assignment {assignment}")
            _check(api.release_assignment(assignment), f"release_assignment {assignment}")
        out(f"released {assignment}: release/{assignment}/ and the exchange")


def collect(cohort_dir: Path, assignment: str, zip_file: Path | None = None,
            regexp: str = DEFAULT_ZIP_REGEXP, out: Callable[[str], None] = print) -> list[str]:
    """Collect submissions into submitted/: from nbgrader's exchange, or from an LMS zip
    through nbgrader's zip_collect. Returns the learners collected."""
    cohort = Cohort(cohort_dir)
    cohort.check_assignment(assignment, released=True)
    before = _submitted(cohort, assignment)
    if zip_file is None:
        config = cohort.config()
        # nbgrader's own collect follows symlinks (a link to source/ arrives as the file)
        config.ExchangeFactory.collect = "mlcourse.cohort.exchange.SafeCollect"
        with grading.quiet_logging():
            _check(cohort.api(config).collect(assignment), f"collect {assignment}")
    else:
        zip_file = Path(zip_file)
        if not zip_file.is_file():
            raise CohortError(f"zip file not found: {zip_file}")
        if not zipfile.is_zipfile(zip_file):
            raise CohortError(f"{zip_file} is not a zip archive")
        archive = cohort.root / "downloaded" / assignment / "archive"
        archive.mkdir(parents=True, exist_ok=True)
        shutil.copy(zip_file, archive / zip_file.name)
        command = [sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
                   "--ZipCollectApp.collector_plugin="
                   "nbgrader.plugins.zipcollect.FileNameCollectorPlugin",
                   f"--FileNameCollectorPlugin.named_regexp={regexp}"]
        result = subprocess.run(command, cwd=cohort.root, capture_output=True, text=True)
        if result.returncode != 0:
            raise CohortError(f"nbgrader zip_collect failed:\n{result.stderr[-1500:]}")
        skipped = re.findall(r"Skipped submission with no match information provided: (.*)",
                             result.stderr)
        for name in skipped:
            out(f"skipped (name does not match <learner>_<notebook>.ipynb): {Path(name).name}")
    collected = sorted(_submitted(cohort, assignment) | set())
    from .grader import non_regular_files
    for learner in collected:
        odd = non_regular_files(cohort.root / "submitted" / learner / assignment)
        if odd:
            out(f"refused: {learner}'s submission holds {', '.join(odd)}, not plain files "
                "(never followed); autograde marks it tampered")
    roster = {learner.id for learner in cohort.roster()}
    strangers = sorted(set(collected) - roster)
    if strangers:
        out(f"warning: not on the roster (kept, not graded): {', '.join(strangers)}")
    out(f"collected {assignment}: {len(collected)} submission(s) "
        f"({len(set(collected) - before)} new)")
    return collected


def _submitted(cohort: Cohort, assignment: str) -> set[str]:
    folder = cohort.root / "submitted"
    if not folder.is_dir():
        return set()
    return {p.name for p in folder.iterdir() if (p / assignment).is_dir()}


# ------------------------------------------------------------------ feedback without secrets

# Learner HTML is made inert with nbconvert's SanitizeHTML (bleach). Its default allow-list is
# bleach's tiny one (no <p>, no headings, no tables): widen it to the formatting a notebook
# output or a written answer uses, so a pandas table or a heading still looks like one. No
# <script>, no event-handler attributes, no <iframe>/<object>/<form>, no id (it could clobber
# a global of the page's own scripts); links and images only to relative, http(s) or mailto
# URLs (bleach's protocols). <style> is kept for pandas' table CSS: CSS cannot run code in a
# current browser.
_EXTRA_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "span", "div", "details",
    "summary", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "colgroup",
    "col", "img", "sub", "sup", "del", "ins", "s", "u", "small", "mark", "kbd", "samp", "var",
    "dl", "dt", "dd", "figure", "figcaption", "style"}
_EXTRA_ATTRIBUTES = {
    "*": ["class", "title"],
    "img": ["src", "alt", "width", "height", "title"],
    "table": ["border", "class"],
    "tr": ["style"], "th": ["align", "colspan", "rowspan", "style"],
    "td": ["align", "colspan", "rowspan", "style"],
    "span": ["style", "class"], "div": ["style", "class"],
    "ol": ["start"], "details": ["open"], "style": ["scoped", "type"],
}


@dataclass(frozen=True)
class Withheld:
    """A feedback page that was not written, or was deleted, and why."""

    learner: str
    assignment: str
    reason: str

    def __str__(self) -> str:
        return f"{self.learner} {self.assignment}: {self.reason}"


@dataclass
class FeedbackResult:
    """What `feedback` did: the pages written and the pages withheld."""

    pages: list[Path] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.withheld else 0


def sanitizer():
    """nbconvert's SanitizeHTML preprocessor with the widened allow-list."""
    import bleach
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    return SanitizeHTML(tags=sorted(set(bleach.ALLOWED_TAGS) | _EXTRA_TAGS),
                        attributes={**bleach.ALLOWED_ATTRIBUTES, **_EXTRA_ATTRIBUTES})


def _sanitized_markdown(source: str, clean) -> str:
    """Markdown rendered as the page would render it, then cleaned by bleach, as one raw HTML
    block that nbconvert's markdown renderer passes through unchanged.

    Cleaning the HTML after rendering (not the markdown source, as SanitizeHTML does) also
    catches markdown links to ``javascript:`` URLs, and does not double-escape ``<`` in code.
    """
    from nbconvert.filters.markdown import markdown2html_mistune

    rendered = clean.sanitize_html_tags(markdown2html_mistune(source))
    block = "<div>" + rendered.replace("\n", "&#10;") + "</div>"
    if markdown2html_mistune(block).strip() == block:
        return block
    return "<pre>" + html.escape(source) + "</pre>"      # never live: the text, escaped


def sanitize(nb, released=None):
    """Make learner HTML inert in place: outputs (text/html and text/markdown cleaned, any
    other unsafe mimetype such as application/javascript or image/svg+xml dropped), markdown and
    raw cells, and the notebook's widget state. Markdown cells whose text is a markdown cell of
    the released exercise are the course's own and are kept as they are."""
    clean = sanitizer()
    course_text = {c.source for c in (released.cells if released is not None else [])
                   if c.cell_type == "markdown"}
    nb.metadata.pop("widgets", None)     # the widget manager would render its HTML live
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            if cell.source not in course_text:
                cell.source = _sanitized_markdown(cell.source, clean)
                cell.pop("attachments", None)
        elif cell.cell_type == "code":
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if "text/markdown" in data:
                    markdown = data.pop("text/markdown")
                    data.setdefault("text/html", _sanitized_markdown(markdown, clean))
            clean.preprocess_cell(cell, {}, index)
        else:
            clean.preprocess_cell(cell, {}, index)
    return nb


def public_view(nb, released=None):
    """The notebook a learner may see: hidden tests removed from every test cell, test-cell
    outputs reduced to the error's name and message (a traceback would quote hidden code), and
    the learner's HTML made inert (see `sanitize`)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if not _is_test_cell(cell):
            continue
        cell.source = grading.HIDDEN_TESTS_REGION.sub("", cell.source).rstrip()
        outputs = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name = output.get("ename", "Error")
                value = grading.ANSI.sub("", output.get("evalue", ""))
                outputs.append(nbformat.v4.new_output(
                    "error", ename=name, evalue=value, traceback=[f"{name}: {value}"]))
        cell.outputs = outputs
    return sanitize(nb, released)


def _is_test_cell(cell) -> bool:
    meta = grading.nbgrader_meta(cell)
    return bool(meta.get("grade") and not meta.get("solution"))


def learner_sources(released, graded) -> list[str]:
    """Text a learner legitimately sees or wrote: every cell of the released exercise (the
    visible tests included) and the learner's own cells of the graded notebook. Test and locked
    cells of the graded notebook are left out: nbgrader restores them from the gradebook,
    hidden tests and all."""
    texts = [cell.source for cell in released.cells]
    for cell in graded.cells:
        if not (_is_test_cell(cell) or grading.nbgrader_meta(cell).get("locked")):
            texts.append(cell.source)
    return texts


def secret_lines(source_nb, visible: Iterable[str] = ()) -> list[str]:
    """Every substantial line (comments too: they can tell how a task is graded) of every
    hidden-test block of the source notebook, less those found in ``visible`` (texts the learner
    legitimately sees: see `learner_sources`)."""
    seen = "\n".join(visible)
    lines = []
    for cell in source_nb.cells:
        for block in grading.HIDDEN_TESTS_REGION.findall(cell.source):
            for line in block.splitlines():
                line = line.strip()
                if (len(line) >= 12 and "HIDDEN TESTS" not in line and line not in seen
                        and line not in lines):
                    lines.append(line)
    return lines


def _visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _one_line(text: str, limit: int = 160) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "no detail")[:limit]


def _feedback_page(cohort: Cohort, api, staging: Path, assignment: str, learner: str,
                   released, source) -> tuple[Path | None, str]:
    """Write one learner's page; return (page, "") or (None, why it was withheld)."""
    notebook = cohort.autograded_folder(learner, assignment) / f"{assignment}.ipynb"
    page = cohort.root / "feedback" / learner / assignment / f"{assignment}.html"
    page.unlink(missing_ok=True)        # a withheld page is never an old one left in place
    graded = grading.read_notebook(notebook)
    # nbgrader renders <autograded_directory>/<learner>/<assignment>: point it at a staging
    # copy holding the public view, so autograded/ is never touched.
    folder = staging / learner / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(public_view(graded, released), folder / notebook.name)
    timestamp = notebook.parent / "timestamp.txt"
    if timestamp.is_file():
        shutil.copy(timestamp, folder / "timestamp.txt")
    with grading.quiet_logging():
        result = api.generate_feedback(assignment, learner)
    if not result.get("success") or not page.is_file():
        page.unlink(missing_ok=True)
        return None, ("nbgrader generate_feedback failed: "
                      f"{_one_line(result.get('error') or result.get('log'))}")
    text = _visible_text(page.read_text())
    leaked = [line for line in secret_lines(source, learner_sources(released, graded))
              if line in text]
    if leaked:
        page.unlink()
        return None, f"would show hidden tests ({leaked[0][:40]!r}...); the page was deleted"
    return page, ""


def feedback(cohort_dir: Path, assignments: list[str],
             out: Callable[[str], None] = print) -> FeedbackResult:
    """Per-learner feedback HTML with nbgrader's generate_feedback, with NO hidden tests and no
    live learner HTML. A page that cannot be made safely is withheld (and named, with why);
    it never stops feedback for the other learners."""
    cohort = Cohort(cohort_dir)
    for assignment in assignments:
        cohort.check_assignment(assignment, released=True)
    result = FeedbackResult()
    with tempfile.TemporaryDirectory(prefix="mlcourse-feedback-") as staging:
        config = cohort.config()
        config.CourseDirectory.autograded_directory = staging
        api = cohort.api(config)
        for assignment in assignments:
            released = cohort.released_notebook(assignment)
            source = grading.read_notebook(cohort.root / "source" / assignment /
                                           f"{assignment}.ipynb")
            written = 0
            for learner in cohort.roster():
                if not (cohort.autograded_folder(learner.id, assignment) /
                        f"{assignment}.ipynb").is_file():
                    continue
                try:
                    page, why = _feedback_page(cohort, api, Path(staging), assignment,
                                               learner.id, released, source)
                except Exception as error:   # one learner's problem is never everyone's
                    page, why = None, f"{type(error).__name__}: {_one_line(str(error))}"
                    (cohort.root / "feedback" / learner.id / assignment /
                     f"{assignment}.html").unlink(missing_ok=True)
                if page is None:
                    withheld = Withheld(learner.id, assignment, why)
                    result.withheld.append(withheld)
                    out(f"withheld {withheld}")
                else:
                    result.pages.append(page)
                    written += 1
            out(f"feedback {assignment}: {written} page(s) in feedback/, hidden tests removed")
    out(f"feedback: {len(result.pages)} page(s) written, {len(result.withheld)} withheld" +
        "".join(f"\n  withheld {w}" for w in result.withheld))
    return result


# ------------------------------------------------------------------ export

def export_rows(cohort_dir: Path) -> list[dict]:
    """One row per learner x released assignment, with a status that is never a silent zero."""
    from nbgrader.api import MissingEntry

    cohort = Cohort(cohort_dir)
    statuses = cohort.statuses()
    rows = []
    with grading.quiet_logging(), cohort.gradebook() as gradebook:
        for assignment in cohort.released_assignments():
            max_score = float(gradebook.find_assignment(assignment).max_score)
            for learner in cohort.roster():
                status = statuses.get((learner.id, assignment))
                row = {"learner": learner.id, "assignment": assignment, "score": 0.0,
                       "max_score": max_score, "status": "missing",
                       "detail": "not autograded yet", "graded_at": ""}
                if status is not None:
                    row.update(status=status.status, detail=status.detail,
                               graded_at=status.graded_at, score=status.score)
                    if status.status in ("graded", "needs-manual-grading", "timeout"):
                        try:   # manual grades given in formgrader since autograding
                            submission = gradebook.find_submission(assignment, learner.id)
                            row["score"] = float(submission.score)
                            if status.status in ("graded", "needs-manual-grading"):
                                row["status"] = ("needs-manual-grading"
                                                 if submission.needs_manual_grade else "graded")
                        except MissingEntry:
                            pass
                rows.append(row)
    return rows


def export(cohort_dir: Path, out_file: Path, out: Callable[[str], None] = print) -> Path:
    rows = export_rows(cohort_dir)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "score": f"{row['score']:g}",
                             "max_score": f"{row['max_score']:g}"})
    out(f"exported {len(rows)} row(s) to {out_file}")
    return out_file
