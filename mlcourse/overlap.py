"""Is an exercise's answer already written in its lesson?

An exercise should make the learner apply the lesson's idea to something new, so no graded
answer may be assembled from the lesson's own code (docs/AUTHORING.md, "apply, not copy").
This module measures that: every statement of a solution region is compared with every
statement of the lesson's code cells, after normalising away what a copy would change
(variable, argument and function names), and keeping what it would not (attribute names,
keyword names, constants, the shape of the expression).

    python -m mlcourse.overlap [NN-slug ...]     # exit 1 when a solution cell is flagged

A solution cell is flagged when at least half of its substantial statements occur in the
lesson, or when a single large statement (a whole expression of many parts) does.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import grading, paths

MIN_NODES = 10          # statements smaller than this (`return table`, `x = y.copy()`) are glue
LARGE_NODES = 40        # one shared statement this big is a copied computation on its own
FLAG_SHARE = 0.5        # at least this share of a cell's substantial statements in the lesson
MAGIC = re.compile(r"^\s*[%!].*$", re.M)


class _Anonymise(ast.NodeTransformer):
    """Replace every name a copy would rename; keep attributes, keywords and constants."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name(id="_", ctx=ast.Load()), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.copy_location(ast.arg(arg="_"), node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.name = "_"
        node.body = [ast.Pass()]      # a def is compared by its signature; its body by statements
        node.decorator_list = []
        node.returns = None
        return node

    def _header_only(self, node):
        self.generic_visit(node)
        node.body = [ast.Pass()]
        if hasattr(node, "orelse"):
            node.orelse = []
        if hasattr(node, "handlers"):
            node.handlers = []
            node.finalbody = []
        return node

    visit_For = visit_While = visit_If = visit_With = visit_Try = _header_only


def _size(node: ast.AST) -> int:
    return sum(1 for _ in ast.walk(node))


def _docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def statements(code: str) -> Iterator[tuple[str, int, str]]:
    """``(normalised form, size, source line)`` for every statement of ``code``, nested ones too.

    A compound statement (a def, a loop, an ``if``) counts by its header; its body's statements
    count one by one. Code that does not parse (a half-written answer) yields nothing.
    """
    try:
        tree = ast.parse(MAGIC.sub("", code))
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or _docstring(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Pass | ast.Raise):
            continue
        line = ast.get_source_segment(code, node) or ""
        anonymous = _Anonymise().visit(ast.parse(ast.unparse(node)).body[0])
        size = _size(anonymous) - (2 if isinstance(anonymous, ast.FunctionDef) else 0)
        yield ast.dump(anonymous, annotate_fields=False), size, line.splitlines()[0] if line else ""


@dataclass
class CellOverlap:
    """How much of one solution cell the lesson already contains."""
    grade_id: str
    substantial: int
    shared: list[str] = field(default_factory=list)   # first lines of the shared statements
    large: list[str] = field(default_factory=list)    # shared statements of LARGE_NODES or more

    @property
    def share(self) -> float:
        return len(self.shared) / self.substantial if self.substantial else 0.0

    @property
    def flagged(self) -> bool:
        return bool(self.large) or (self.substantial > 0 and self.share >= FLAG_SHARE)


def lesson_forms(lesson) -> set[str]:
    return {form for cell in lesson.cells if cell.cell_type == "code"
            for form, _, _ in statements(cell.source)}


def solution_cells(solution) -> dict[str, str]:
    """``{grade_id: code of its solution region}`` for every code cell a learner answers."""
    cells = {}
    for grade_id, cell in grading.graded_cells(solution).items():
        meta = grading.nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("solution"):
            cells[grade_id] = grading.solution_code(cell.source)
    return cells


def compare(lesson, solution) -> list[CellOverlap]:
    known = lesson_forms(lesson)
    results = []
    for grade_id, code in solution_cells(solution).items():
        result = CellOverlap(grade_id, 0)
        for form, size, line in statements(code):
            if size < MIN_NODES:
                continue
            result.substantial += 1
            if form in known:
                result.shared.append(line.strip())
                if size >= LARGE_NODES:
                    result.large.append(line.strip())
        results.append(result)
    return results


def module_overlap(assignment: str, root: Path | None = None) -> list[CellOverlap]:
    root = root or paths.course_root()
    lesson = nbformat.read(root / "lessons" / f"{assignment}.ipynb", as_version=4)
    solution = nbformat.read(root / "solutions" / assignment / f"{assignment}.ipynb",
                             as_version=4)
    return compare(lesson, solution)


def main(argv: list[str] | None = None) -> int:
    assignments = (argv if argv is not None else sys.argv[1:]) or paths.assignment_ids()
    flagged = 0
    for assignment in assignments:
        for cell in module_overlap(assignment):
            if not cell.shared:
                continue
            mark = "FLAGGED" if cell.flagged else "ok"
            print(f"{assignment} {cell.grade_id}: {len(cell.shared)} of {cell.substantial} "
                  f"substantial statements also in the lesson [{mark}]")
            for line in cell.shared:
                big = "  (large)" if line in cell.large else ""
                print(f"    {line[:100]}{big}")
            flagged += cell.flagged
    print(f"{flagged} solution cell(s) flagged")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------------------------
# The lesson's own functions as answers: each must lose points (tests/test_grading.py)

def _functions(code: str) -> dict[str, ast.FunctionDef]:
    try:
        tree = ast.parse(MAGIC.sub("", code))
    except SyntaxError:
        return {}
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _imports(code: str) -> list[str]:
    try:
        tree = ast.parse(MAGIC.sub("", code))
    except SyntaxError:
        return []
    return [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]


def _constants(code: str) -> dict[str, str]:
    """``{name: statement}`` for top-level ``NAME = <literal>`` assignments."""
    try:
        tree = ast.parse(MAGIC.sub("", code))
    except SyntaxError:
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                ast.literal_eval(node.value)
            except ValueError:
                continue
            found[node.targets[0].id] = ast.unparse(node)
    return found


def _arity(node: ast.FunctionDef) -> tuple[int, int]:
    """(required, total) positional parameters."""
    positional = node.args.posonlyargs + node.args.args
    return len(positional) - len(node.args.defaults), len(positional)


def _called_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def lesson_answers(lesson, solution) -> dict[str, list[tuple[str, str]]]:
    """``{solution grade_id: [(lesson function name, code), ...]}``: every lesson function that
    could be pasted as the answer of a solution cell's function.

    A candidate has the answer's name, or accepts exactly as many positional arguments as the
    answer is called with. Its code is the lesson's function renamed to the answer's name, after
    the lesson's imports, the literal constants and the lesson functions it uses (so a learner pasting the cells gets
    a working answer).
    """
    defined: dict[str, ast.FunctionDef] = {}
    imports: list[str] = []
    constants: dict[str, str] = {}
    for cell in lesson.cells:
        if cell.cell_type == "code":
            defined.update(_functions(cell.source))
            imports += _imports(cell.source)
            constants.update(_constants(cell.source))
    candidates: dict[str, list[tuple[str, str]]] = {}
    for grade_id, code in solution_cells(solution).items():
        for name, answer in _functions(code).items():
            wanted = _arity(answer)[1]
            for lesson_name, node in defined.items():
                required, total = _arity(node)
                if lesson_name != name and not required <= wanted <= total:
                    continue
                helpers, queue = [], [node]
                while queue:   # the lesson functions this one calls, transitively
                    for called in sorted(_called_names(queue.pop()) & set(defined)):
                        if called not in helpers and called != lesson_name:
                            helpers.append(called)
                            queue.append(defined[called])
                renamed = ast.parse(ast.unparse(node)).body[0]
                renamed.name = name
                used = set().union(*(_called_names(defined[h]) for h in helpers),
                                   _called_names(node))
                parts = ["\n".join(imports + [constants[c] for c in sorted(used & set(constants))])]
                parts += [ast.unparse(defined[h]) for h in helpers]
                parts.append(ast.unparse(renamed))
                candidates.setdefault(grade_id, []).append((lesson_name, "\n\n\n".join(parts)))
    return candidates


def test_cell_after(solution, grade_id: str) -> str | None:
    """The grade_id of the first autograded test cell after the solution cell ``grade_id``."""
    seen = False
    for cell in solution.cells:
        meta = grading.nbgrader_meta(cell)
        if meta.get("grade_id") == grade_id:
            seen = True
        elif seen and cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            return meta["grade_id"]
    return None


def answer_rounds(lesson, solution) -> list[dict[str, tuple[str, str]]]:
    """The lesson's candidate answers grouped into submissions: round k gives every solution cell
    its k-th candidate, so all candidates are graded in as few runs as the longest list."""
    candidates = lesson_answers(lesson, solution)
    rounds: list[dict[str, tuple[str, str]]] = []
    for grade_id, options in candidates.items():
        for k, option in enumerate(options):
            if len(rounds) <= k:
                rounds.append({})
            rounds[k][grade_id] = option
    return rounds
