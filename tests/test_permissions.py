"""Who may do what is declared once (`facility.accounts.permissions`) and every edge obeys it.

The command tree and the web app's routes are walked, so a command or route added without naming
its action fails here; every command whose action needs a role is then run by a user holding no
role (exit 3, one line, audited by command), and the README's roles table must be the one these
declarations give.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from typer.core import TyperArgument
from typer.testing import CliRunner

from facility.accounts import permissions
from facility.accounts.access import current_identity
from facility.cli import app as cli_app
from facility.settings import Settings
from facility.store import db
from facility.store.models import AuditEntry
from facility.web import create_app
from facility.web.actions import NAVIGATION, action_of, routes
from tests.conftest import fresh_database
from tests.factories import cli_commands

README = Path(__file__).resolve().parents[1] / "README.md"


def commands() -> Iterator[tuple[str, Any]]:
    """Every runnable command of the CLI, named as typed (`hold place`)."""
    for path, command in cli_commands():
        yield " ".join(path), command


def web_routes() -> list[tuple[str, Any]]:
    """Every route of the web app, named as the audit trail names it (`GET /api/holds`)."""
    never_used = create_engine("sqlite://")
    app = create_app(
        Settings(), clock=lambda: datetime.now(UTC), engine=never_used, secret=bytes(32)
    )
    named = []
    for route in routes(app):
        methods = getattr(route, "methods", None)
        if methods is None:  # a mount: everything below its path
            named.append((f"GET {route.path}/…", route))
            continue
        named += [(f"{method} {route.path}", route) for method in sorted(methods - {"HEAD"})]
    return named


def cli_actions() -> dict[str, str | None]:
    return {name: getattr(cmd.callback, "action", None) for name, cmd in commands()}


def web_actions() -> dict[str, str | None]:
    return {name: action_of(route) for name, route in web_routes()}


def test_every_command_and_route_names_a_declared_action():
    for where, found in (cli_actions() | web_actions()).items():
        assert found is not None, f"{where} names no action (facility.accounts.permissions)"
        assert found in permissions.BY_NAME, f"{where} names {found!r}, which is not declared"


def test_every_declared_action_is_reached_by_a_command_or_a_route():
    used = set(cli_actions().values()) | set(web_actions().values())
    assert [a.name for a in permissions.ACTIONS if a.name not in used] == []


def test_the_navigation_opens_pages_whose_action_needs_a_role():
    found = web_actions()
    for label, path in NAVIGATION:
        action = found.get(f"GET {path}")
        assert action is not None, f"navigation entry {label} has no page at {path}"
        assert not permissions.BY_NAME[action].public, f"{label} would show to everyone"


def test_admin_holds_every_role_and_public_actions_need_none():
    assert permissions.held(["admin"]) == frozenset(permissions.ROLES)
    assert all(a.allows(["admin"]) for a in permissions.ACTIONS)
    assert all(a.allows([]) == a.public for a in permissions.ACTIONS)


# --- every guarded command refuses a user without the role -----------------------------------


def _value(param: Any) -> str:
    """A value the parser takes: the check comes before the command judges it."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice:
        first = next(iter(descriptor.choices))
        return str(getattr(first, "value", first))
    return "1" if "int" in param.display_type(None) else "x"


def _argv(command: Any) -> list[str]:
    argv: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        if isinstance(param, TyperArgument):
            argv.append(_value(param))
        else:
            argv += [next(o for o in param.opts if o.startswith("--")), _value(param)]
    return argv


@pytest.fixture
def sqlite_url(request, tmp_path) -> Iterator[str]:
    yield from fresh_database("sqlite", request, tmp_path)


def test_every_guarded_command_refuses_a_user_without_the_role(sqlite_url, tmp_path):
    config = tmp_path / "facility.toml"
    config.write_text('[retention]\nvisits = "5d"\n[roles]\nadmin = ["somebody-else"]\n')
    me = current_identity().name
    guarded = []
    for name, command in commands():
        action = permissions.BY_NAME[command.callback.action]
        if action.public:
            continue
        argv = ["--config", str(config), "--db", sqlite_url, *name.split(), *_argv(command)]
        result = CliRunner().invoke(cli_app, argv)
        assert result.exit_code == 3, f"{name}: exit {result.exit_code}\n{result.output}"
        wanted = f"facility: {name}: user {me!r} needs role {' or '.join(action.roles)}"
        # One line: not even the warning that the configured retention differs.
        assert result.stderr.splitlines() == [f"{wanted} (see [roles] in the configuration)"]
        guarded.append((name, list(action.roles)))
    engine = db.make_engine(sqlite_url)
    with db.session_scope(engine) as session:
        refused = session.scalars(select(AuditEntry).where(AuditEntry.action == "refused")).all()
        audited = [(e.actor, json.loads(e.details)) for e in refused]
    engine.dispose()
    assert audited == [(me, {"command": name, "needs": needs}) for name, needs in guarded]
    assert len(guarded) > 30


# --- the README's table ------------------------------------------------------------------------


def roles_table() -> str:
    """The README's table of who may do what, as the declarations and the edges give it."""
    by_action: dict[str, tuple[list[str], list[str]]] = {}
    for name, action in cli_actions().items():
        by_action.setdefault(action or "", ([], []))[0].append(f"`{name}`")
    for name, action in web_actions().items():
        by_action.setdefault(action or "", ([], []))[1].append(f"`{name}`")
    lines = ["| action | who may | command | web | what |", "|---|---|---|---|---|"]
    for action in permissions.ACTIONS:
        who = " or ".join(action.roles) if action.roles != permissions.ROLES else "any role"
        cli, web = by_action.get(action.name, ([], []))
        lines.append(
            f"| `{action.name}` | {who or 'anyone'} | {', '.join(cli)} | {', '.join(web)} "
            f"| {action.description} |"
        )
    return "\n".join(lines) + "\n"


def test_the_readme_roles_table_is_the_declared_one():
    text = README.read_text(encoding="utf-8")
    section = re.search(r"\n## Roles\n(.*?)\n## ", text, re.S)
    assert section, "README.md has no Roles section"
    table = "\n".join(line for line in section.group(1).splitlines() if line.startswith("|"))
    expected = roles_table()
    assert table + "\n" == expected, f"README.md's roles table should read:\n\n{expected}"
