"""The store: init and upgrade, the schema check on every command, engines and their failures."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel, select

from facility.store import db
from facility.store.models import Policy
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[1]


def _imports(tree: ast.AST, *, top_level_only: bool) -> list[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = []
    for node in nodes:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_core_imports_nothing_from_connectors_or_scheduler():
    # CLI commands that drive a connector or the daemon import it inside the command, lazily,
    # so `facility` itself never depends on them; everything else in the core never imports them.
    offenders = []
    for path in (ROOT / "facility").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_cli = path.parent.name == "cli"
        for name in _imports(tree, top_level_only=in_cli):
            if name.split(".")[0] in {"connectors", "scheduler"}:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diffs == []


def test_init_creates_then_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'facility.db'}"
    cli = Cli(url, tmp_path)
    first = cli("init")
    assert "schema none -> " in first.output
    assert "policies seeded: visits, badges, door_events, camera, wifi" in first.output
    engine = db.make_engine(url)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*), max(seq) FROM audit_log")).one()
    second = cli("init")
    assert "nothing changed" in second.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), max(seq) FROM audit_log")).one() == before


def test_init_on_a_database_at_head_changes_nothing(db_url, tmp_path):
    cli = Cli(db_url, tmp_path)
    assert "nothing changed" in cli("init").output  # the fixture database is already at head


def test_init_seeds_policies_from_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'facility.db'}"
    cli = Cli(url, tmp_path)
    cli("init", config=cli.config('[retention]\ncamera = "30d"\n'))
    with db.session_scope(db.make_engine(url)) as session:
        assert session.get(Policy, "camera").seconds == 30 * 86400


def test_missing_database_says_run_init(tmp_path):
    cli = Cli(f"sqlite:///{tmp_path / 'absent.db'}", tmp_path)
    result = cli("onsite", code=1)
    assert "facility init" in result.stderr
    assert not (tmp_path / "absent.db").exists()


def test_database_behind_head_says_run_init(tmp_path):
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # a file with no schema at all
    result = Cli(f"sqlite:///{path}", tmp_path)("visitor", "sign-in", "Ada", code=1)
    assert "has no schema" in result.stderr and "facility init" in result.stderr


def test_unreachable_postgresql_names_url_without_password(tmp_path):
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:9/facility"
    result = Cli(url, tmp_path)("onsite", code=1)
    assert "cannot reach database" in result.stderr
    assert "127.0.0.1:9" in result.stderr
    assert "s3cret" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_sqlite_runs_in_wal_with_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


def test_stored_times_come_back_aware_utc(engine):
    from tests.conftest import T0

    with db.session_scope(engine) as session:
        row = session.exec(select(Policy)).first()
        assert row.changed_at == T0
        assert row.changed_at.utcoffset().total_seconds() == 0
