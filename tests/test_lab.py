"""`make lab` serves JupyterLab on 127.0.0.1 with the course home, without reinstalling."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from mlcourse import paths


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
