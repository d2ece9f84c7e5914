"""Storing what connectors hand over: idempotent, set-based, one transaction per batch.

Idempotency (invariant 9) is the database's job: inserts skip rows whose natural key already
exists (`ON CONFLICT DO NOTHING` on SQLite and PostgreSQL alike), so a redelivered event, lease or
segment is stored once however often it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert as sa_insert
from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from facility.errors import RejectedInput
from facility.models import DoorEvent, Rejection
from facility.records import DoorEventIn

RAW_LIMIT = 512
# Rows per INSERT statement: well under SQLite's limit on bound parameters.
CHUNK = 500


def _insert_ignoring_duplicates(session: Session, model: type[SQLModel], rows: list[dict]) -> int:
    """Insert `rows`, skipping any that collide with a unique key; return how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(dialect)
    if module is None:  # pragma: no cover - only the two supported engines reach here
        raise NotImplementedError(dialect)
    stored = 0
    for start in range(0, len(rows), CHUNK):
        statement = (
            module.insert(model)
            .values(rows[start : start + CHUNK])
            .on_conflict_do_nothing()
            .returning(literal_column("1"))  # rowcount is -1 here on psycopg
        )
        stored += len(session.execute(statement).all())
    return stored


def store_door_events(session: Session, events: Sequence[DoorEventIn]) -> int:
    """Store door events; the ones already stored (same event_id) are skipped. Returns new count."""
    rows = [
        {
            "event_id": e.event_id,
            "door": e.door,
            "badge": e.badge,
            "at": e.at,
            "granted": e.granted,
            "source": e.source,
            "retain_from": e.at,
        }
        for e in {e.event_id: e for e in events}.values()
    ]
    return _insert_ignoring_duplicates(session, DoorEvent, rows)


def record_rejection(session: Session, error: RejectedInput, *, now: datetime) -> None:
    """Keep a rejected input as a dead letter: source, reason and the first bytes of it."""
    raw = error.raw if isinstance(error.raw, bytes) else str(error.raw).encode("utf-8", "replace")
    excerpt = raw[:RAW_LIMIT].decode("utf-8", "backslashreplace")
    session.execute(
        sa_insert(Rejection).values(
            at=now, source=error.source or "unknown", reason=error.reason, raw=excerpt
        )
    )
