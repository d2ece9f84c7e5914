"""Storing what connectors hand over: idempotent, set-based, one transaction per batch.

Idempotency (invariant 9) is the database's job: inserts skip rows whose natural key already
exists (`ON CONFLICT DO NOTHING` on SQLite and PostgreSQL alike), so a redelivered event, lease or
segment is stored once however often it arrives.

Times a source claims are checked against the clock first (`admit`, invariant 11): an event time
further ahead of `now` than `limits.clock_skew` is refused with a reason, whatever the source, so
no record's retention clock starts in the future. A lease's scheduled end is a promise, not an
event: one further ahead than `limits.max_lease_silence` is read as no end at all (an open lease,
which that limit closes), and a lease whose end is still ahead has no clock until the end passes
(`facility.retention.limits` starts it then). A segment's end is clamped to `now`: its file is written, so
its recording ended by then. Every new row records `known_at`, when facility first stored it: a
record imported long after it expired is not overdue before a purge has had the chance to run.

Every row belongs to the site of its source (`Intake.site_id`: the daemon's, the command's): an
event id, a segment path and a lease address are unique within their site only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from typing import Any, TypeVar, overload

from sqlalchemy import bindparam, literal_column, select, text, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from facility.errors import RejectedInput
from facility.settings import Limits
from facility.sources import objections
from facility.sources.records import DoorEventIn, LeaseIn, SegmentIn
from facility.store.models import (
    DEFAULT_SITE,
    CameraSegment,
    DoorEvent,
    Rejection,
    WifiLease,
    table_of,
)
from facility.timefmt import site_text
from facility.timeutil import format_duration

RAW_LIMIT = 512
# Addresses looked up per query: a bound parameter per MAC and source, well under SQLite's limit.
CHUNK = 500


@dataclass(frozen=True)
class Intake:
    """When records arrive, at which site, and the limits their times are held to; times in
    reasons in `zone` (the site's)."""

    now: datetime
    limits: Limits
    zone: tzinfo = UTC
    site_id: int = DEFAULT_SITE

    @cached_property
    def latest(self) -> datetime:
        """The latest event time accepted: `now` plus the allowed clock skew."""
        return self.now + self.limits.clock_skew

    @cached_property
    def horizon(self) -> datetime:
        """A lease end later than this is no end: `now` plus the lease silence limit."""
        return self.now + self.limits.max_lease_silence

    def show(self, value: datetime) -> str:
        """`value` as a message names it: in site time (`timefmt.site_text`)."""
        return site_text(value, self.zone)

    def refuse_future(self, value: datetime | None, what: str) -> None:
        """RejectedInput when `value` lies further ahead than the clock skew allows."""
        if value is not None and value > self.latest:
            raise RejectedInput(
                f"{what} {self.show(value)} is in the future: more than limits.clock_skew "
                f"({format_duration(self.limits.clock_skew)}) after now, {self.show(self.now)}"
            )


Admitted = DoorEventIn | LeaseIn | SegmentIn
_Item = TypeVar("_Item", DoorEventIn, LeaseIn, SegmentIn)  # one kind of item, in and out


@overload
def admit(item: LeaseIn, intake: Intake) -> LeaseIn: ...
@overload
def admit(item: DoorEventIn, intake: Intake) -> DoorEventIn: ...
@overload
def admit(item: SegmentIn, intake: Intake) -> SegmentIn: ...
def admit(item: Admitted, intake: Intake) -> Admitted:
    """`item` as it may be stored at `intake.now`, or RejectedInput saying which time is ahead."""
    if isinstance(item, LeaseIn):  # first: lease files hand over hundreds of thousands at once
        return _admit_lease(item, intake)
    if isinstance(item, DoorEventIn):
        intake.refuse_future(item.at, "event time")
        return item
    intake.refuse_future(item.start, "segment start")
    # The file exists, so its recording ended by now: the clock never starts later.
    end = min(item.end, max(intake.now, item.start))
    return item if end == item.end else replace(item, end=end)


def _admit_lease(lease: LeaseIn, intake: Intake) -> LeaseIn:
    latest = intake.latest
    if lease.starts > latest or (lease.last_seen is not None and lease.last_seen > latest):
        intake.refuse_future(lease.starts, "lease start")
        intake.refuse_future(lease.last_seen, "lease last seen")
    ends = lease.ends
    if ends is None or ends <= latest:
        return lease
    if lease.released:
        # A release ended the lease when it was reported: a later end is no time at all.
        return lease._replace(ends=None)
    if ends > intake.horizon:
        return lease._replace(ends=None)  # "never" in any other spelling: an open lease
    return lease


def admitted(
    items: Iterable[_Item], intake: Intake
) -> tuple[list[_Item], list[tuple[_Item, RejectedInput]]]:
    """The items that may be stored, and each refused one with why."""
    kept: list[_Item] = []
    refused: list[tuple[_Item, RejectedInput]] = []
    for item in items:
        try:
            kept.append(admit(item, intake))
        except RejectedInput as err:
            refused.append((item, err))
    return kept, refused


def _insert_ignoring_duplicates(
    session: Session, model: type[SQLModel], rows: list[dict[str, Any]]
) -> int:
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


def store_door_events(session: Session, events: Sequence[DoorEventIn], intake: Intake) -> int:
    """Store door events; the ones already stored (same event_id) are skipped. Returns new count.

    Raises RejectedInput, storing nothing, if an event's time is in the future (see `admit`).
    """
    rows = [
        {
            "site_id": intake.site_id,
            "event_id": e.event_id,
            "door": e.door,
            "badge": e.badge,
            "at": e.at,
            "granted": e.granted,
            "source": e.source,
            "retain_from": e.at,
            "known_at": intake.now,
        }
        for e in {e.event_id: admit(e, intake) for e in events}.values()
    ]
    return _insert_ignoring_duplicates(session, DoorEvent, rows)


def store_segments(session: Session, segments: Sequence[SegmentIn], intake: Intake) -> int:
    """Index segment files; a path already indexed is skipped. Returns the new count.

    A segment's camera and times must be the layout's reading of its path (invariant 11): the
    scanner's, or an announcement's that agreed with it. RejectedInput for a future start.
    """
    rows = [
        {
            "site_id": intake.site_id,
            "camera": s.camera,
            "path": s.path,
            "start": s.start,
            "end": s.end,
            "retain_from": s.end,
            "known_at": intake.now,
        }
        for s in {s.path: admit(s, intake) for s in segments}.values()
    ]
    return _insert_ignoring_duplicates(session, CameraSegment, rows)


def store_leases(session: Session, leases: Sequence[LeaseIn], intake: Intake) -> tuple[int, int]:
    """Store lease reports, each merged into the lease it continues; returns (new, updated).

    A report continues a stored lease of the same source, MAC and IP when it has the same start,
    or when it starts while that lease still ran (a renewal: ISC and Kea restart `starts` on every
    renewal, and a release follows the lease it ends). Otherwise it is a new lease. The
    lease's end and release follow the reports; `last_seen` only moves forward, so replaying an old
    file never makes a device look more recently seen, or keeps it longer, than it was.
    RejectedInput, storing nothing, if a report's start or sighting is in the future (`admit`).
    The reports of a device whose owner objected (`objections`) are counted there and dropped
    first: neither a new lease nor an update to a stored one.
    """
    leases = objections.drop_ignored(session, leases)
    reports = _by_address([admit(lease, intake) for lease in leases])
    addresses = list(reports)
    _custom_plans(session)
    new = updated = 0
    for start in range(0, len(addresses), CHUNK):
        part = {key: reports[key] for key in addresses[start : start + CHUNK]}
        stored = _stored_leases(session, part.keys(), intake.site_id)
        fresh, changed = _fold(part, stored, intake)
        new += _insert_ignoring_duplicates(session, WifiLease, fresh)
        updated += _update_leases(session, changed)
    return new, updated


_Address = tuple[str, str, str]  # (source, mac, ip): the leases a report can continue
# What a report can change in a stored lease; the address and start never change.
_MUTABLE = ("hostname", "client_id", "ends", "last_seen", "closed_at", "retain_from")
# Both engines look each (source, MAC) pair up in uq_wifi_leases (source, mac, ip, starts). Not a
# row-value IN on (source, mac, ip): SQLite scans the whole table for that (PostgreSQL the whole
# source), which made a large import quadratic. Not IN on ip as well: SQLite would then probe
# every source x MAC x IP combination. Expanding IN keeps the statement in SQLAlchemy's cache.
_BY_SOURCE_AND_MAC = select(table_of(WifiLease)).where(
    table_of(WifiLease).c.site_id == bindparam("site_id"),
    table_of(WifiLease).c.source.in_(bindparam("sources", expanding=True)),
    table_of(WifiLease).c.mac.in_(bindparam("macs", expanding=True)),
)
# The SET clause follows the keys of the parameters: the _MUTABLE columns.
_UPDATE_BY_ID = update(table_of(WifiLease)).where(table_of(WifiLease).c.id == bindparam("row_id"))


def _custom_plans(session: Session) -> None:
    """PostgreSQL: plan each statement for its own values in this transaction (SET LOCAL).

    psycopg prepares a statement run five times, and PostgreSQL then may settle on a generic plan
    for it. On a lease table not yet analyzed (the first import) that plan for the lookup is a
    sequential scan testing every row against every MAC of the batch, far slower than the index
    and growing with the table (bench/README.md).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _by_address(leases: Sequence[LeaseIn]) -> dict[_Address, list[LeaseIn]]:
    """The reports of each address, in start order (the order they are merged in)."""
    grouped: dict[_Address, list[LeaseIn]] = {}
    for lease in sorted(leases, key=lambda x: x.starts):
        grouped.setdefault((lease.source, lease.mac, lease.ip), []).append(lease)
    return grouped


def _fold(
    reports: dict[_Address, list[LeaseIn]],
    stored: dict[_Address, list[dict[str, Any]]],
    intake: Intake,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Merge each address's reports into its leases; returns (new rows, changed stored rows)."""
    fresh: list[dict[str, Any]] = []
    touched: dict[
        int, tuple[dict[str, Any], dict[str, Any]]
    ] = {}  # id -> (the stored values, the row)
    for address, leases in reports.items():
        rows = stored.setdefault(address, [])
        for lease in leases:
            row = _continued(rows, lease)
            if row is None:
                row = _merge(lease, None, intake) | {
                    "known_at": intake.now,
                    "site_id": intake.site_id,
                }
                rows.append(row)
                fresh.append(row)  # a later report of this batch updates it before the insert
                continue
            merged = _merge(lease, row, intake)
            if merged != row:
                if "id" in row:
                    touched.setdefault(row["id"], (dict(row), row))
                row.update(merged)
    # A replay can change a lease and change it back (one report named it, a later one renames
    # it): only a lease that ends up different was updated.
    return fresh, [row for before, row in touched.values() if row != before]


def _stored_leases(
    session: Session, addresses: Collection[_Address], site_id: int
) -> dict[_Address, list[dict[str, Any]]]:
    """The site's stored leases of these addresses, as plain rows (with `id`).

    Leases of the same device at other IPs come along too; `_fold` never looks at them.
    """
    sources = sorted({source for source, _, _ in addresses})
    macs = sorted({mac for _, mac, _ in addresses})
    found: dict[_Address, list[dict[str, Any]]] = {}
    wanted = {"site_id": site_id, "sources": sources, "macs": macs}
    for row in session.connection().execute(_BY_SOURCE_AND_MAC, wanted):
        found.setdefault((row.source, row.mac, row.ip), []).append(row._asdict())
    return found


def _update_leases(session: Session, rows: list[dict[str, Any]]) -> int:
    """Write the changed columns of stored leases in one executemany; returns how many."""
    if rows:
        params = [{"row_id": row["id"], **{name: row[name] for name in _MUTABLE}} for row in rows]
        session.connection().execute(_UPDATE_BY_ID, params)
        _expire_loaded(session, [row["id"] for row in rows])
    return len(rows)


def _expire_loaded(session: Session, ids: list[int]) -> None:
    """Expire those of these leases that the session holds, so that it reads the new values."""
    if not session.identity_map:  # the usual case: connectors store in a session of their own
        return
    for lease_id in ids:
        loaded = session.identity_map.get(session.identity_key(WifiLease, lease_id))
        if loaded is not None:
            session.expire(loaded)


def _continued(rows: list[dict[str, Any]], lease: LeaseIn) -> dict[str, Any] | None:
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


def _merge(lease: LeaseIn, row: dict[str, Any] | None, intake: Intake) -> dict[str, Any]:
    """The stored values after `lease` is reported on top of `row` (None: a new lease).

    Reports fold with max (scheduled end, last seen) and min (release), so their order and
    repeats do not matter: an older report never shortens a lease or reopens a released one.
    `ends` keeps the scheduled end; a release shows in `closed_at` and starts the clock. A
    lease still running (its end ahead) has no clock yet: `facility.retention.limits` starts it at the end.
    """
    last_seen = _latest(lease.last_seen, None if row is None else row["last_seen"])
    ends = row["ends"] if row else lease.ends
    if row and not lease.released:
        ends = None if ends is None or lease.ends is None else max(lease.ends, ends)
    closed_at = row["closed_at"] if row else None
    if lease.released:
        released_at = lease.ends or last_seen or lease.starts
        closed_at = min(closed_at, released_at) if closed_at else released_at
    ended = closed_at if ends is None or (closed_at and closed_at < ends) else ends
    running = ended is not None and ended > intake.latest
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
        "retain_from": None if running else _latest(ended, last_seen),
    }


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t]
    return max(present) if present else None


def record_rejection(
    session: Session, error: RejectedInput, *, now: datetime, site_id: int = DEFAULT_SITE
) -> None:
    """Keep a rejected input as a dead letter of the site: source, reason and its first bytes."""
    raw = error.raw if isinstance(error.raw, bytes) else str(error.raw).encode("utf-8", "replace")
    # PostgreSQL text cannot hold NUL, and the excerpt must survive whatever the source sent.
    excerpt = raw[:RAW_LIMIT].decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    session.execute(
        sa_insert(Rejection).values(
            site_id=site_id,
            at=now,
            source=error.source or "unknown",
            reason=error.reason,
            raw=excerpt,
        )
    )
