"""nbval compares printed numbers to one unit of their last digit (mlcourse.nbval_numbers).

The rule is what lets the lessons' stored outputs reproduce on another CPU or BLAS build; these
tests pin both halves of it: a last-digit difference passes, a real change fails. The notebook
tests run real nbval on real kernels, once with the rule and once without it (so they show the
rule, not the notebook, is what passes).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlcourse.nbval_numbers import NUMBER, numbers_agree, texts_agree

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("stored, computed", [
    ("35.0", "34.9"), ("0.655", "0.656"), ("0.655", "0.654"), ("-0.0", "0.0"),
    ("1.2e-05", "1.3e-05"), ("0.3", "0.30000000000000004"), ("12.50", "12.51"),
])
def test_a_number_off_by_one_unit_of_its_last_digit_agrees(stored, computed):
    assert numbers_agree(stored, computed)


@pytest.mark.parametrize("stored, computed", [
    ("35.0", "34.8"), ("0.655", "0.661"), ("8645", "8646"), ("2011", "2012"),
    ("1.2e-05", "1.2e-04"), ("35", "35.0"), ("nan", "0.1"),
])
def test_a_changed_number_does_not_agree(stored, computed):
    assert not numbers_agree(stored, computed)


def test_texts_agree_only_when_words_and_counts_are_the_same():
    table = "model    cost\nlinear   35.0\nrule     37.3\n(8,645 rows)"
    assert texts_agree(table, "model    cost\nlinear   34.9\nrule     37.3\n(8,645 rows)")
    assert texts_agree("a  9.99 b", "a 10.00 b"), "a wider column is the same table"
    assert not texts_agree(table, table.replace("37.3", "38.3")), "a different score"
    assert not texts_agree(table, table.replace("8,645", "8,646")), "a different row count"
    assert not texts_agree(table, table.replace("linear", "ridge")), "a different word"
    assert not texts_agree(table, table + " 1.0"), "an extra number"
    assert not texts_agree("in 2015-2018", "in 2015-2019"), "years are counts"
    assert NUMBER.findall("2015-2018, x1 -0.5 1e-3") == ["2015", "2018", "-0.5", "1e-3"]


def nbval(notebook: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--nbval", str(notebook), "--nbval-sanitize-with",
         str(ROOT / "tests" / "nbval_sanitize.cfg"), "-q", *extra],
        capture_output=True, text=True, cwd=notebook.parent, timeout=300)


SOURCE = '''import pandas as pd
scores = pd.DataFrame({"model": ["rule", "linear"], "cost": [37.31, 35.04]})
print(f"{len(scores)} models; best cost {scores['cost'].min():.1f}")
scores'''


@pytest.fixture(scope="module")
def small_notebook(tmp_path_factory) -> Path:
    """A notebook run for real, its outputs stored: printed text and a DataFrame (text and
    HTML)."""
    from nbclient import NotebookClient

    folder = tmp_path_factory.mktemp("nbval-numbers")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SOURCE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    path = folder / "stored.ipynb"
    nbformat.write(nb, path)
    return path


def edited(source: Path, target: Path, change) -> Path:
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = change(output["text"])
            for mime in ("text/plain", "text/html"):
                if mime in output.get("data", {}):
                    output["data"][mime] = change(output["data"][mime])
    nbformat.write(nb, target)
    return target


def test_nbval_passes_a_last_digit_difference_that_exact_comparison_fails(small_notebook):
    stored = edited(small_notebook, small_notebook.with_name("last-digit.ipynb"),
                    lambda text: text.replace("cost 35.0", "cost 34.9").replace("37.31", "37.32"))
    assert nbval(small_notebook).returncode == 0
    with_rule = nbval(stored)
    assert with_rule.returncode == 0, with_rule.stdout[-2000:]
    exact = nbval(stored, "-p", "no:nbval_numbers")
    assert exact.returncode == 1, "without the rule the same notebook must fail"


@pytest.mark.parametrize("name, change", [
    ("score", lambda text: text.replace("35.04", "35.14")),
    ("count", lambda text: text.replace("2 models", "3 models")),
    ("word", lambda text: text.replace("linear", "ridge")),
])
def test_nbval_still_fails_a_real_change(small_notebook, name, change):
    stored = edited(small_notebook, small_notebook.with_name(f"{name}.ipynb"), change)
    result = nbval(stored)
    assert result.returncode == 1, f"a changed {name} passed nbval"
    assert "Cell outputs differ" in result.stdout


def bump_last_digits(text: str) -> str:
    """Every decimal number one unit of its last digit away, the printed length unchanged."""
    def bump(match: re.Match) -> str:
        token = match.group(0)
        if "." not in token or "e" in token.lower() or not token[-1].isdigit():
            return token
        last = int(token[-1])
        return token[:-1] + str(last + 1 if last < 9 else last - 1)
    return NUMBER.sub(bump, text)


def test_a_real_lesson_passes_with_every_decimal_off_by_one_unit(tmp_path):
    """09-capstone, whose stored 35.0 printed as 34.9 on another CPU: with every decimal number
    in its stored outputs moved by one unit of the last digit it still passes."""
    lesson = ROOT / "lessons" / "09-capstone.ipynb"
    moved = edited(lesson, tmp_path / lesson.name, bump_last_digits)
    changed = sum(a != b for a, b in zip(lesson.read_text().splitlines(),
                                         moved.read_text().splitlines()))
    assert changed >= 10, "the lesson must have decimals in its stored outputs to move"
    result = nbval(moved)
    assert result.returncode == 0, result.stdout[-3000:]
