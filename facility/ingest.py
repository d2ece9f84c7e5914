"""Storing what connectors hand over: idempotent, set-based, one transaction per batch.

Idempotency (invariant 9) is the database's job: inserts skip rows whose natural key already
exists (`ON CONFLICT DO NOTHING` on SQLite and PostgreSQL alike), so a redelivered event, lease or
segment is stored once however often it arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert as sa_insert
from sqlalchemy import literal_column, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, select

from facility.errors import RejectedInput
from facility.models import CameraSegment, DoorEvent, Rejection, WifiLease
from facility.records import DoorEventIn, LeaseIn, SegmentIn

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


def store_segments(session: Session, segments: Sequence[SegmentIn]) -> int:
    """Index segment files; a path already indexed is skipped. Returns the new count."""
    rows = [
        {"camera": s.camera, "path": s.path, "start": s.start, "end": s.end, "retain_from": s.end}
        for s in {s.path: s for s in segments}.values()
    ]
    return _insert_ignoring_duplicates(session, CameraSegment, rows)


def store_leases(session: Session, leases: Sequence[LeaseIn]) -> tuple[int, int]:
    """Store leases, merging each into the row with its (source, mac, ip, starts); (new, updated).

    The newest report of a lease wins for its end, names and release; `last_seen` only moves
    forward, so replaying an old file never makes a device look more recently seen than it was.
    """
    latest = {(x.source, x.mac, x.ip, x.starts): x for x in leases}
    new = updated = 0
    keys = list(latest)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        existing = {
            (row.source, row.mac, row.ip, row.starts): row
            for row in session.exec(
                select(WifiLease).where(
                    tuple_(WifiLease.source, WifiLease.mac, WifiLease.ip, WifiLease.starts).in_(
                        chunk
                    )
                )
            )
        }
        fresh = [_lease_row(latest[k], None) for k in chunk if k not in existing]
        new += _insert_ignoring_duplicates(session, WifiLease, fresh)
        for key, row in existing.items():
            values = _lease_row(latest[key], row)
            if any(getattr(row, name) != value for name, value in values.items()):
                session.execute(update(WifiLease).where(WifiLease.id == row.id).values(**values))
                updated += 1
    return new, updated


def _lease_row(lease: LeaseIn, current: WifiLease | None) -> dict:
    seen = [t for t in (lease.last_seen, current.last_seen if current else None) if t is not None]
    last_seen = max(seen) if seen else None
    closed_at = (lease.ends or last_seen) if lease.released else None
    if (
        current is not None
        and not lease.released
        and current.closed_at
        and current.ends == lease.ends
    ):
        closed_at = current.closed_at  # a replay of the same lease does not reopen a closed one
    clock = [t for t in (lease.ends, last_seen) if t is not None]
    # A lease that never ends has no clock until it is closed or seen; then the later time counts.
    retain_from = max(clock) if clock else None
    return {
        "source": lease.source,
        "mac": lease.mac,
        "ip": lease.ip,
        "hostname": lease.hostname or (current.hostname if current else None),
        "client_id": lease.client_id or (current.client_id if current else None),
        "starts": lease.starts,
        "ends": lease.ends,
        "last_seen": last_seen,
        "closed_at": closed_at,
        "retain_from": retain_from,
    }


def record_rejection(session: Session, error: RejectedInput, *, now: datetime) -> None:
    """Keep a rejected input as a dead letter: source, reason and the first bytes of it."""
    raw = error.raw if isinstance(error.raw, bytes) else str(error.raw).encode("utf-8", "replace")
    excerpt = raw[:RAW_LIMIT].decode("utf-8", "backslashreplace")
    session.execute(
        sa_insert(Rejection).values(
            at=now, source=error.source or "unknown", reason=error.reason, raw=excerpt
        )
    )
