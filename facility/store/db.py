"""Engines, sessions and the schema version: SQLite (embedded default) or PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout, and every transaction starts with
`BEGIN IMMEDIATE`: a transaction that reads and then writes never deadlocks on the lock upgrade,
it waits its turn instead (the single-writer rule, enforced by SQLite itself). A `read_scope`
only reads, so it starts with a plain `BEGIN` and never holds up a writer.

What is deleted must not be readable from the files afterwards (DESIGN invariant 12): every
SQLite connection runs with `secure_delete` on, so deleted rows, index entries and freed pages are
overwritten with zeros, and `scrub` (after a purge run or an erasure) checkpoints the WAL into the
database and truncates it, so no older copy of a page stays in the journal. The database file is
created private (`private_file_mode`), and SQLite gives its `-wal` and `-shm` files the same mode.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlmodel import Session

from facility.errors import FacilityError, SchemaNotReady, StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "facility_read_only"  # execution option of the engine a read_scope binds to


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
        # server's zone object, which ensure_utc would convert for every time of every row read
        # (bench/README.md).
        connect_args = {"connect_timeout": 5, "options": "-c TimeZone=UTC"}
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as err:
        raise StoreError(f"cannot use database {redact(url)}: {err}") from err


def _sqlite_engine(url: str, database: str | None, *, create: bool) -> Engine:
    if not database or database == ":memory:":
        raise StoreError("an in-memory SQLite database cannot be shared; give a file path")
    path = Path(database).absolute()
    if create:
        create_private(path)
    elif not path.exists():
        raise SchemaNotReady(
            f"database {path} does not exist: run `facility init` to create it there, or point "
            "home or database_url at the existing one"
        )
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def private_file_mode(folder: Path) -> int:
    """The mode of the database and its journals: 0600, or 0640 where the folder admits its group.

    The folder decides because the service decides it: a unit whose StateDirectoryMode (or an
    operator's chmod) lets the service's group, and only it, into its home (0750) asks for that
    group to read the data too. A private home (`facility init` creates it 0700), or one open to
    everyone (0755, what a umask gives, not a choice), keeps it to the owner. Others never.
    """
    try:
        folder_mode = os.stat(folder).st_mode
    except OSError:
        return 0o600
    shared = folder_mode & stat.S_IXGRP and not folder_mode & stat.S_IRWXO
    return 0o640 if shared else 0o600


def create_private(path: Path) -> None:
    """Create the folder (0700 if new) and an empty database file with its private mode."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, private_file_mode(path.parent))
    except FileExistsError:
        return
    except OSError as err:
        raise FacilityError(f"cannot create database {path}: {err.strerror}") from err
    os.close(fd)


def tighten(path: Path) -> list[str]:
    """Take away what others (and, in a private folder, the group) may do to the database files.

    Returns the files whose mode changed, for `facility init` to say so. Never follows a symlink.
    """
    allowed = private_file_mode(path.parent)
    changed = []
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal"):
        candidate = path.with_name(name)
        try:
            found = candidate.lstat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(found.st_mode)
        if not stat.S_ISREG(found.st_mode) or mode & ~allowed == 0:
            continue
        with suppress(OSError):  # not ours to change: doctor and the next init say so again
            os.chmod(candidate, mode & allowed, follow_symlinks=False)
            changed.append(f"{candidate} {mode:o} -> {mode & allowed:o}")
    return changed


def sqlite_path(engine: Engine) -> Path | None:
    """The database file of a SQLite engine; None for PostgreSQL."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(engine.url.database)


def scrub(engine: Engine) -> bool:
    """Move the WAL into the database file and empty it, so deleted rows live on in neither.

    With `secure_delete` on, the pages written by a delete carry zeros where the rows were, but
    until a checkpoint the WAL still holds older copies of those pages. A TRUNCATE checkpoint
    waits (busy timeout) for readers of older snapshots, copies every page home and cuts the WAL
    to zero bytes. Returns False when a reader kept it from finishing: the next one finishes it.
    PostgreSQL: nothing to do here (VACUUM, run by autovacuum, reclaims dead rows).
    """
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        busy, _log, _done = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    except sqlite3.OperationalError:  # locked beyond the busy timeout: the next run does it
        return False
    finally:
        raw.close()
    return bool(busy == 0)


def rewrite(engine: Engine) -> str | None:
    """SQLite: rebuild the file (VACUUM) and scrub the WAL, leaving no free page with old rows.

    `facility init` does it once after an upgrade: rows deleted before `secure_delete` was on may
    still sit in free pages and free space of the file. Returns why it could not, or None.
    """
    if engine.dialect.name != "sqlite":
        return None
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("VACUUM")
    except sqlite3.Error as err:
        return (
            f"database {redact(str(engine.url))} could not be rewritten ({err}): rows deleted "
            "by an older version may stay in its free pages until reused; with the daemon "
            "stopped, run `sqlite3 FILE VACUUM`"
        )
    finally:
        raw.close()
    scrub(engine)
    return None


def _alembic_config(connection: Connection | None, **attributes: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes.update(attributes)
    return config


@functools.cache  # the migrations ship with the code: reading them once per process is enough
def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None, "the package ships its migrations"
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, None when it has none (read beside any writer)."""
    with _connect(engine.execution_options(**{_READ_ONLY: True})) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(
    engine: Engine,
    *,
    site_timezone: str | None = None,
    site_country: str | None = None,
    target: str = "head",
) -> tuple[str | None, str]:
    """Bring the schema to `target` (head); return the revisions before and after.

    `site_timezone` and `site_country` describe the default site the migration to sites creates
    (the configuration's `timezone` and `country`). On SQLite foreign keys are off while the
    migrations run (a table is copied in their course, and dropping the original with them on
    would run the ON DELETE actions of the rows that point at it); every reference is checked
    before the transaction commits.
    """
    before = current_revision(engine)
    attributes = {"site_timezone": site_timezone, "site_country": site_country}
    with _connect(engine) as conn:
        sqlite = engine.dialect.name == "sqlite"
        driver = conn.connection.driver_connection if sqlite else None
        if driver is not None:  # on the driver's connection, outside any transaction, or
            driver.execute("PRAGMA foreign_keys=OFF")  # SQLite ignores it
        try:
            with conn.begin():
                command.upgrade(_alembic_config(conn, **attributes), target)
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise StoreError(
                            f"the upgrade left a broken reference in table {broken[0]}; "
                            "nothing was changed"
                        )
        finally:
            if driver is not None:
                driver.execute("PRAGMA foreign_keys=ON")
    return before, current_revision(engine) or target


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
def _connect(engine: Engine) -> Iterator[Connection]:
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


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """One transaction that only reads: on SQLite it takes no write lock (a WAL reader).

    Only read in it: a write would have to upgrade the lock, which SQLite refuses (busy) when
    another writer came first. Writes belong in `session_scope`.
    """
    with session_scope(engine.execution_options(**{_READ_ONLY: True})) as session:
        yield session
