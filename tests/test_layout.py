"""The test suite's own layout: a shared helper has one home, and no test module is a library.

Shared helpers live in `tests/factories.py` (records, times, counts), `tests/webapp.py` (the
in-process web app), the helper modules beside them (`brokers`, `daemons`, `services`,
`webserver`) and, for fixtures, `conftest.py`. A test module importing another one runs that
module's fixtures and import side effects where nobody looks for them; a helper copied into a
second module drifts from the first.
"""

from __future__ import annotations

import ast
import copy
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MODULES = sorted(TESTS.glob("*.py"))


def _test_modules_imported(tree: ast.Module) -> set[str]:
    """The test modules (`test_*`) of this folder that a module imports, however it spells it."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = node.module or ""
            if node.level == 0 and package.split(".")[0] != "tests":
                continue
            names = [package] + [".".join(filter(None, [package, a.name])) for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tests":
                parts = parts[1:]
            if parts and parts[0].startswith("test_"):
                found.add(parts[0])
    return found


class _Normalised(ast.NodeTransformer):
    """A definition stripped of what copies may change freely: docstrings, annotations, and the
    names of its parameters (renamed by position)."""

    def __init__(self, definition: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.renamed: dict[str, str] = {}
        if not isinstance(definition, ast.ClassDef):
            arguments = definition.args
            every = [*arguments.posonlyargs, *arguments.args, arguments.vararg]
            every += [*arguments.kwonlyargs, arguments.kwarg]
            for position, argument in enumerate(a for a in every if a is not None):
                self.renamed[argument.arg] = f"_{position}"

    def _without_docstring(self, node):
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
            node.body = node.body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    def visit_FunctionDef(self, node):
        node.returns = None
        return self._without_docstring(node)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = _without_docstring

    def visit_arg(self, node):
        node.annotation = None
        node.arg = self.renamed.get(node.arg, node.arg)
        return node

    def visit_Name(self, node):
        node.id = self.renamed.get(node.id, node.id)
        return node


def _shape(definition) -> str:
    return ast.dump(_Normalised(definition).visit(copy.deepcopy(definition)))


def test_no_module_of_the_tests_imports_a_test_module():
    every_form = ast.parse(
        "import tests.test_a\nfrom tests import test_b\nfrom tests.test_c import x\n"
        "from .test_d import y\nfrom . import test_e, webapp\nfrom tests.webapp import z\n"
    )
    assert _test_modules_imported(every_form) == {"test_a", "test_b", "test_c", "test_d", "test_e"}
    imports = {}
    for path in MODULES:
        imported = _test_modules_imported(ast.parse(path.read_text(encoding="utf-8")))
        if imported - {path.stem}:
            imports[path.name] = sorted(imported - {path.stem})
    assert imports == {}, f"move what these use into tests/factories.py or conftest.py: {imports}"


def test_no_helper_is_defined_twice():
    """The same name with the same body in two modules is one helper copied: keep one."""
    one, other, different = (
        ast.parse(source).body[0]
        for source in (
            "def utc(*args) -> datetime:\n    return datetime(*args, tzinfo=UTC)",
            'def utc(*parts: int):\n    """Doc."""\n    return datetime(*parts, tzinfo=UTC)',
            "def utc(*parts):\n    return datetime(*parts, tzinfo=ZONE)",
        )
    )
    assert _shape(one) == _shape(other) != _shape(different)
    homes = defaultdict(list)
    for path in MODULES:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                homes[node.name, _shape(node)].append(path.name)
    copies = {name: found for (name, _), found in homes.items() if len(found) > 1}
    assert copies == {}, f"keep one, in tests/factories.py, a helper module or conftest: {copies}"
