"""Jobs that must run in one process at a time across every daemon sharing a database.

On PostgreSQL a session-level advisory lock, held on its own connection for as long as the work
runs, decides; a daemon that does not get it skips this round. On SQLite, BEGIN IMMEDIATE already
serialises every writer on the file, so the work may always go ahead.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, exc, text

from facility.errors import StoreError
from facility.store import db


def lock_key(name: str) -> int:
    """A stable 31-bit advisory-lock key for a job name."""
    return zlib.crc32(f"facility:{name}".encode()) & 0x7FFFFFFF


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Whether this process may do `name` now; on PostgreSQL, holds the lock while it does."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    try:
        conn = engine.connect()
    except exc.OperationalError as err:
        raise StoreError(f"cannot reach database {db.redact(str(engine.url))}") from err
    key = lock_key(name)
    with conn:
        mine = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        conn.commit()  # the lock belongs to the session; no transaction stays open while we work
        try:
            yield mine
        finally:
            if mine:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
