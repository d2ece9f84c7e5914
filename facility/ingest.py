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
# Leases looked up per query: well under SQLite's limit on bound parameters.
CHUNK = 500


def _insert_ignoring_duplicates(session: Session, model: type[SQLModel], rows: list[dict]) -> int:
    """Insert `rows`, skipping any that collide with a unique key; return how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(dialect)
    if module is None:  # pragma: no cover - only the two supported engines reach here
        raise NotImplementedError(dialect)
    # executemany with RETURNING: SQLAlchemy batches it into multi-row statements ("insertmanyvalues")
    # and the returned rows count what was new (psycopg's rowcount is -1 here).
    statement = module.insert(model).on_conflict_do_nothing().returning(literal_column("1"))
    return len(session.connection().execute(statement, rows).all())


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
    """Store lease reports, each merged into the lease it continues; returns (new, updated).

    A report continues a stored lease of the same source, MAC and IP when it has the same start,
    or when it starts while that lease still ran (a renewal: ISC and Kea restart `starts` on every
    renewal, and a release follows the lease it ends). Otherwise it is a new lease. The
    lease's end and release follow the reports; `last_seen` only moves forward, so replaying an old
    file never makes a device look more recently seen, or keeps it longer, than it was.
    """
    new = updated = 0
    ordered = sorted(leases, key=lambda x: x.starts)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        known = _stored_leases(session, chunk)
        changed: dict[int, dict] = {}
        fresh: list[dict] = []
        for lease in chunk:
            rows = known.setdefault((lease.source, lease.mac, lease.ip), [])
            row = _continued(rows, lease)
            if row is None:
                row = _merge(lease, None)
                rows.append(row)
                fresh.append(row)
                continue
            merged = _merge(lease, row)
            if merged != row:
                row.update(merged)
                if "id" in row:
                    changed[row["id"]] = row
        new += _insert_ignoring_duplicates(session, WifiLease, fresh)
        for row in changed.values():
            session.execute(update(WifiLease).where(WifiLease.id == row["id"]).values(**row))
        updated += len(changed)
    return new, updated


_LEASE_COLUMNS = (
    "source",
    "mac",
    "ip",
    "hostname",
    "client_id",
    "starts",
    "ends",
    "last_seen",
    "closed_at",
    "retain_from",
)


def _stored_leases(session: Session, leases: Sequence[LeaseIn]) -> dict[tuple, list[dict]]:
    keys = list({(x.source, x.mac, x.ip) for x in leases})
    found: dict[tuple, list[dict]] = {}
    query = select(WifiLease).where(tuple_(WifiLease.source, WifiLease.mac, WifiLease.ip).in_(keys))
    for row in session.exec(query.order_by(WifiLease.starts)):
        values = {name: getattr(row, name) for name in _LEASE_COLUMNS}
        found.setdefault((row.source, row.mac, row.ip), []).append({"id": row.id, **values})
    return found


def _continued(rows: list[dict], lease: LeaseIn) -> dict | None:
    """The stored lease this report belongs to, if any."""
    for row in rows:
        if row["starts"] == lease.starts:
            return row
    for row in sorted(rows, key=lambda r: r["starts"], reverse=True):
        # The scheduled end only grows, so a report delivered again finds the lease it joined.
        end = None if row["ends"] is None else _latest(row["ends"], row["last_seen"])
        if row["starts"] <= lease.starts and (end is None or end >= lease.starts):
            return row
    return None


def _merge(lease: LeaseIn, row: dict | None) -> dict:
    """The stored values after `lease` is reported on top of `row` (None: a new lease).

    Reports fold with max (scheduled end, last seen) and min (release), so their order and
    repeats do not matter: an older report never shortens a lease or reopens a released one.
    `ends` keeps the scheduled end; a release shows in `closed_at` and starts the clock.
    """
    last_seen = _latest(lease.last_seen, row and row["last_seen"])
    ends = row["ends"] if row else lease.ends
    if row and not lease.released:
        ends = None if ends is None or lease.ends is None else max(lease.ends, ends)
    closed_at = row["closed_at"] if row else None
    if lease.released:
        released_at = lease.ends or last_seen or lease.starts
        closed_at = min(closed_at, released_at) if closed_at else released_at
    ended = closed_at if ends is None or (closed_at and closed_at < ends) else ends
    return {
        **(row or {}),
        "source": lease.source,
        "mac": lease.mac,
        "ip": lease.ip,
        "hostname": lease.hostname or (row and row["hostname"]) or None,
        "client_id": lease.client_id or (row and row["client_id"]) or None,
        "starts": row["starts"] if row else lease.starts,
        "ends": ends,
        "last_seen": last_seen,
        "closed_at": closed_at,
        # A lease that never ends has no clock until it is seen or closed; then the later counts.
        "retain_from": _latest(ended, last_seen),
    }


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t]
    return max(present) if present else None


def record_rejection(session: Session, error: RejectedInput, *, now: datetime) -> None:
    """Keep a rejected input as a dead letter: source, reason and the first bytes of it."""
    raw = error.raw if isinstance(error.raw, bytes) else str(error.raw).encode("utf-8", "replace")
    # PostgreSQL text cannot hold NUL, and the excerpt must survive whatever the source sent.
    excerpt = raw[:RAW_LIMIT].decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    session.execute(
        sa_insert(Rejection).values(
            at=now, source=error.source or "unknown", reason=error.reason, raw=excerpt
        )
    )
