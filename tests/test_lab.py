"""`make lab` serves JupyterLab on 127.0.0.1 with the course home, without reinstalling.

The `lab` fixture (conftest.py) runs the real `make lab`; tests/test_browser.py also looks at
the course home in chromium."""

from __future__ import annotations

import json
import subprocess

from conftest import get
from mlcourse import paths


def test_lab_serves_the_course_home(lab):
    base, process = lab
    assert process.poll() is None, "jupyter lab exited early"
    status, page = get(f"{base}/lab/tree/lessons/HOME.ipynb")
    assert status == 200 and "JupyterLab" in page
    status, body = get(f"{base}/api/contents/lessons/HOME.ipynb")
    home = json.loads(body)["content"]["cells"][0]["source"]
    assert "The modules" in home and "make check" in home


def test_lab_listens_on_loopback_only(lab):
    base, _ = lab
    assert base.startswith("http://127.0.0.1:")
    status, body = get(f"{base}/api/contents/lessons")
    names = {item["name"] for item in json.loads(body)["content"]}
    assert "HOME.ipynb" in names


def test_a_second_make_lab_does_not_reinstall():
    dry_run = subprocess.run(["make", "--dry-run", "lab"], cwd=paths.course_root(),
                             capture_output=True, text=True)
    assert "pip install" not in dry_run.stdout, dry_run.stdout
