"""Imports point one way: `scheduler → connectors → facility`, and the core under the edges.

The core (every part of `facility/` but `cli/` and `web/`) is what the CLI, the web app, the
connectors and the daemon share; if it imported one of them, a command would start a broker client
or a web route would need the daemon. Connectors never reach the daemon or the edges either. The
CLI imports the scheduler only inside `facility daemon`, so that no other command loads it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Every absolute import in a module, with whether it runs when the module is loaded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    at_load = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` and `try:` blocks at the top level load too
        if isinstance(node, ast.If | ast.Try):
            at_load.update(id(child) for child in ast.walk(node))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in at_load) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in at_load))
    return found


def _part(path: Path) -> str:
    """`core`, `cli`, `web`, `connectors` or `scheduler`."""
    relative = path.relative_to(ROOT).parts
    if relative[0] == "facility":
        return relative[1] if relative[1] in ("cli", "web") else "core"
    return relative[0]


def _owner(module: str) -> str:
    if module.startswith(("facility.cli", "facility.web")):
        return module.split(".")[1]
    return {"facility": "core"}.get(module.split(".")[0], module.split(".")[0])


# Which parts a part may import at all; the CLI's scheduler import must also wait for its call.
MAY_IMPORT = {
    "core": {"core"},
    "connectors": {"core", "connectors"},
    "web": {"core", "web"},
    "cli": {"core", "cli", "web", "connectors", "scheduler"},
    "scheduler": {"core", "connectors", "scheduler", "web"},
}
OURS = set(MAY_IMPORT)


def test_imports_point_one_way() -> None:
    wrong = []
    for folder in ("facility", "connectors", "scheduler"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            part = _part(path)
            for module, at_load in _imports(path):
                owner = _owner(module)
                if owner not in OURS:
                    continue
                lazy_only = part == "cli" and owner == "scheduler"
                if owner not in MAY_IMPORT[part] or (lazy_only and at_load):
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert wrong == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The walk above would notice the core importing an edge (it is not blind to a new form)."""
    module = tmp_path / "wrong.py"
    module.write_text("from facility.web import app\nimport connectors.mqtt\n", encoding="utf-8")
    owners = {_owner(name) for name, _ in _imports(module)}
    assert owners - MAY_IMPORT["core"] == {"web", "connectors"}
