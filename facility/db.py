"""Engines, sessions and the schema version: SQLite (embedded default) or PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and every transaction starts with
`BEGIN IMMEDIATE`: a transaction that reads and then writes never deadlocks on the lock upgrade,
it waits its turn instead (the single-writer rule, enforced by SQLite itself).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlmodel import Session

from facility.errors import SchemaNotReady, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000


def redact(url: str) -> str:
    """The URL as it may be shown to a person: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "<unparsable database URL>"


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An engine for `url`; a SQLite file is only created when `create` is set (by init)."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as err:
        raise StoreError(f"database URL {url!r} is not a valid SQLAlchemy URL") from err
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, create=create)
    try:
        # TimeZone UTC: timestamptz values then come back with datetime.UTC rather than the
        # server's zone object, which ensure_utc converts for ~1 us each (600 per on-site list).
        connect_args = {"connect_timeout": 5, "options": "-c TimeZone=UTC"}
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise StoreError(f"cannot use database {redact(url)}: {err}") from err


def _sqlite_engine(url: str, database: str | None, *, create: bool) -> Engine:
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    path = Path(database).absolute()
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise SchemaNotReady(
            f"database {path} does not exist: run `facility init` to create it there, or point "
            "home or database_url at the existing one"
        )
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this code knows."""
    script = ScriptDirectory.from_config(_alembic_config(None))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, None when it has none."""
    with _connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the schema to head; return the revisions before and after."""
    before = current_revision(engine)
    with _connect(engine) as conn, conn.begin():
        command.upgrade(_alembic_config(conn), "head")
    return before, head_revision()


def ensure_ready(engine: Engine) -> None:
    """Raise SchemaNotReady unless the database is at the head revision."""
    current = current_revision(engine)
    if current != head_revision():
        state = "has no schema" if current is None else f"is at revision {current}"
        raise SchemaNotReady(
            f"database {redact(str(engine.url))} {state}; run `facility init` to bring it to "
            f"{head_revision()}"
        )


@contextmanager
def _connect(engine: Engine):
    try:
        conn = engine.connect()
    except exc.OperationalError as err:
        reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        raise StoreError(f"cannot reach database {redact(str(engine.url))}: {reason}") from err
    with conn:
        yield conn


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    try:
        session = Session(engine, expire_on_commit=False)
    except exc.OperationalError as err:  # pragma: no cover - connect is lazy in Session
        raise StoreError(f"cannot reach database {redact(str(engine.url))}") from err
    with session:
        try:
            yield session
            session.commit()
        except exc.OperationalError as err:
            session.rollback()
            reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
            raise StoreError(f"database {redact(str(engine.url))} failed: {reason}") from err
        except BaseException:
            session.rollback()
            raise
