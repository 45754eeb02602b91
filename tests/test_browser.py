"""What people look at, in a real browser (Debian's chromium driven by Playwright).

The course home in JupyterLab, served by the real `make lab`, as a learner first sees it.

A simulated cohort is graded for real; the report must render, not be blank, and show the same
numbers as the grade export; the dashboard must render its widgets and redraw its figure when a
filter changes. Screenshots are kept in artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from mlcourse import paths
from mlcourse.cohort import grader, simulate, workflow

ASSIGNMENT = "00-orientation"
SHOTS = paths.course_root() / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "chromium is installed by `make test` (apt-get)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser") / "cohort"
    simulate.simulate(root, learners=10, seed=7, assignments=[ASSIGNMENT],
                      out=lambda line: None)
    grader.autograde(root, [ASSIGNMENT], workers=2, out=lambda line: None,
                     show_progress=False)
    export = root / "grades.csv"
    workflow.export(root, export, out=lambda line: None)
    with open(export) as handle:
        rows = list(csv.DictReader(handle))
    result = subprocess.run([sys.executable, "-m", "mlcourse.cli", "report", "--course",
                             str(root), "--out", str(root / "report.html")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return root, rows


def test_report_renders_and_its_numbers_match_the_export(browser, cohort):
    root, rows = cohort
    page = browser.new_page(viewport={"width": 1200, "height": 1600})
    page.goto((root / "report.html").as_uri())
    page.wait_for_load_state("load")
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
    assert "Team progress" in page.title()
    assert len(page.inner_text("body")) > 500, "the report is blank"
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) >= 5 and all(w > 100 for w in widths), widths
    learners = page.inner_text('[data-key="learners"] b')
    assert int(learners) == len({row["learner"] for row in rows})
    cells = page.eval_on_selector_all(
        "#points td[data-learner]",
        "tds => tds.map(td => [td.dataset.learner, td.dataset.assignment, td.dataset.score,"
        " td.dataset.status])")
    shown = {(learner, assignment): (float(score), status)
             for learner, assignment, score, status in cells}
    for row in rows:
        key = (row["learner"], row["assignment"])
        assert key in shown, f"{key} is missing from the report"
        assert shown[key] == (float(row["score"]), row["status"]), (key, shown[key], row)
    page.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(cohort):
    root, _ = cohort
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcourse.cli", "dashboard", "--course", str(root),
         "--port", str(port), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def test_dashboard_renders_widgets_and_a_filter_redraws_the_figure(browser, dashboard, cohort):
    root, _ = cohort
    page = browser.new_page(viewport={"width": 1200, "height": 1200})
    page.goto(dashboard, timeout=90_000)
    page.wait_for_selector(".widget-dropdown select", timeout=90_000)
    page.wait_for_selector(".jp-OutputArea-output img", timeout=90_000)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    assert page.locator(".widget-dropdown select").count() == 3      # team, module, skill
    assert page.locator("input[type=date]").count() == 2               # the date range
    before = page.locator(".jp-OutputArea-output img").first.get_attribute("src")
    team = page.locator(".widget-dropdown select").first
    options = team.locator("option").all_inner_texts()
    assert options[0] == "(all)" and len(options) > 2
    team.select_option(options[1])
    page.wait_for_function(
        "before => { const img = document.querySelector('.jp-OutputArea-output img');"
        " return img && img.src !== before; }", arg=before, timeout=60_000)
    with open(root / "roster.csv") as handle:
        rows = list(csv.DictReader(handle))
    members = sum(1 for row in rows if row["team"] == options[1])
    others = [row["id"] for row in rows if row["team"] != options[1]]
    # every view follows the filter: the count, and the needs-attention list below the figure
    # (its update arrives after the figure's, so wait for it before the screenshot)
    page.wait_for_function(
        "([n, others]) => { const text = document.body.innerText;"
        " if (!text.includes(n + ' learners')) return false;"
        " const below = text.split('Needs attention').pop();"
        " return (below.includes('Nobody needs attention') || below.includes('reason'))"
        " && !others.some(id => below.includes(id)); }",
        arg=[str(members), others], timeout=30_000)
    page.screenshot(path=str(SHOTS / "dashboard-filtered.png"), full_page=True)
    page.close()


def test_make_lab_opens_the_course_home_in_a_browser(browser, lab):
    base, process = lab
    assert process.poll() is None, "jupyter lab exited early"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/lessons/HOME.ipynb", timeout=90_000)
    # the notebook's markdown, rendered: the heading and the module table with its links
    page.wait_for_selector(".jp-RenderedMarkdown h2:has-text('The modules')", timeout=90_000)
    page.wait_for_selector(".jp-RenderedMarkdown table a[href*='01-framing.ipynb']",
                           timeout=30_000)
    page.screenshot(path=str(SHOTS / "lab-home.png"))
    links = page.locator(".jp-RenderedMarkdown table a").all_inner_texts()
    lessons = sorted(p.stem for p in (paths.course_root() / "lessons").glob("[0-9][0-9]-*.ipynb"))
    assert [name for name in links if name in lessons] == lessons
    # JupyterLab's news and update pop-ups are switched off by the settings `make lab` installs
    assert page.locator("text=Would you like to get notified about official Jupyter news?"
                        ).count() == 0
    page.close()
