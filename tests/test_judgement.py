"""Judgement tasks answer only "right" or "wrong, reread this section" (docs/AUTHORING.md).

A judgement task (is this ML? which columns leak? data or model?) has a small answer space: if
its failure message named the wrong item, or changed with the answer, a learner would solve it by
re-running `make check`. Its answer cell carries ``metadata.mlcourse.judgement``: ``true`` for a
dict answer (every key is changed in turn to each other value the dict uses), or
``{"universe": "<expression>"}`` for a collection answer (every item of the universe is toggled in
turn). The solution notebook runs once in a real kernel; then, in that kernel, the task's test
cell (hidden tests included) runs against the right answer and against every one-item change.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

from mlcourse import grading, overlap, paths


def judgement_tasks() -> list[tuple[str, str]]:
    tasks = []
    for assignment in paths.assignment_ids():
        nb = nbformat.read(paths.solutions_dir() / assignment / f"{assignment}.ipynb", 4)
        for grade_id, cell in grading.graded_cells(nb).items():
            if cell.get("metadata", {}).get("mlcourse", {}).get("judgement"):
                tasks.append((assignment, grade_id))
    return tasks


PROBE = textwrap.dedent('''
    import copy as _copy, json as _json
    _name, _right = {name!r}, _copy.deepcopy(globals()[{name!r}])
    _universe = {universe}

    def _variants(answer):
        if isinstance(answer, dict):
            values = list(dict.fromkeys(answer.values()))
            if all(isinstance(v, bool) for v in values):
                values = [True, False]
            for key, value in answer.items():
                for other in values:
                    if other != value:
                        yield {{**answer, key: other}}
        else:
            kind = type(answer)
            for item in _universe:
                items = [x for x in answer if x != item] if item in answer else [*answer, item]
                yield kind(items)

    def _run(answer):
        globals()[_name] = answer
        try:
            exec(compile({test!r}, "<test>", "exec"), globals())
            return None
        except AssertionError as error:
            return str(error)
        except Exception as error:
            return f"{{type(error).__name__}}: {{error}}"

    _report = {{"right": _run(_right), "wrong": [_run(v) for v in _variants(_right)],
               "keys": [str(k) for k in (_right if isinstance(_right, dict) else _universe)]}}
    globals()[_name] = _right
    print(_json.dumps(_report))
''')


def answer_name(cell) -> str:
    tree = ast.parse(grading.solution_code(cell.source))
    names = [t.id for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)]
    assert len(names) == 1, f"a judgement cell assigns exactly one name, not {names}"
    return names[0]


def probe(assignment: str, grade_id: str) -> dict:
    nb = nbformat.read(paths.solutions_dir() / assignment / f"{assignment}.ipynb", 4)
    cells = grading.graded_cells(nb)
    answer = cells[grade_id]
    spec = answer.metadata["mlcourse"]["judgement"]
    universe = spec.get("universe", "[]") if isinstance(spec, dict) else "[]"
    test = cells[overlap.test_cell_after(nb, grade_id)].source
    nb.cells.append(nbformat.v4.new_code_cell(PROBE.format(
        name=answer_name(answer), universe=universe, test=test)))
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(paths.solutions_dir() / assignment)}}
                   ).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return json.loads(text.strip().splitlines()[-1])


def test_the_course_has_its_judgement_tasks():
    modules = {assignment for assignment, _ in judgement_tasks()}
    assert {"01-framing", "02-data", "04-diagnose"} <= modules, modules


@pytest.mark.parametrize("task", judgement_tasks(), ids=lambda t: f"{t[0]}/{t[1]}")
def test_a_judgement_task_says_only_right_or_wrong(task):
    report = probe(*task)
    assert report["right"] is None, f"the right answer fails: {report['right']}"
    assert report["wrong"], "no one-item change was tried"
    assert all(message for message in report["wrong"]), \
        "a one-item change of the right answer passes the hidden tests"
    messages = set(report["wrong"])
    assert len(messages) == 1, \
        f"the message depends on which item is wrong, so re-running check finds it: {messages}"
    message = messages.pop()
    named = [key for key in report["keys"]
             if key and re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", message)]
    assert not named, f"the message names items: {named}"
    assert "reread" in message.lower() or "section" in message.lower(), \
        f"the message should point to the lesson section to reread: {message!r}"
