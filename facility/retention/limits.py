"""The open-record limits (invariant 4): every record's retention clock eventually starts.

A visit nobody signed out, a badge nobody brought back and a never-ending lease nobody sees any more
would otherwise be kept forever. `apply` closes them in three set-based UPDATEs, each setting the
instant the limit was reached (not `now`), so a late run gives the same result as a timely one.
A lease whose scheduled end is further ahead than `max_lease_silence` counts as never-ending
(ingest reads such an end as none; older rows may still carry one).

A lease still running when it was stored has no clock yet (a clock never starts in the future,
invariant 11); `apply` starts it once its end has passed, at that end (or at the last sighting,
if later). That is not an auto-close and is not counted or audited as one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Interval,
    String,
    Update,
    case,
    cast,
    func,
    literal,
    or_,
    update,
)
from sqlalchemy.sql.elements import SQLCoreOperations
from sqlmodel import Session, col

from facility.settings import Limits
from facility.sites import narrow
from facility.store.models import BadgeLoan, Visit, WifiLease, table_of
from facility.trail import audit

_US = 1_000_000


def apply(
    session: Session,
    limits: Limits,
    *,
    now: datetime,
    actor: str,
    site_id: int | None = None,
    site: str | None = None,
) -> dict[str, int]:
    """Close what has been open past its limit (at one site, or at every site when `site_id` is
    None); return counts per kind and audit them (naming the `site` code) if any."""
    plus = _adder(session.get_bind().dialect.name)
    counts = {
        "visits": _close_visits(session, limits.max_visit, now, plus, site_id),
        "badges": _mark_badges_lost(session, limits.max_badge_out, now, plus, site_id),
        "wifi": _close_silent_leases(session, limits.max_lease_silence, now, plus, site_id),
    }
    _start_ended_leases(session, now, site_id)
    if any(counts.values()):
        where = {} if site is None else {"site": site}
        audit.append(session, now=now, actor=actor, action="auto-close", **counts, **where)
    return counts


# `timestamp + duration` in SQL, built for one dialect.
_Plus = Callable[[SQLCoreOperations[Any], timedelta], ColumnElement[Any]]


def _close_visits(
    session: Session, limit: timedelta, now: datetime, plus: _Plus, site_id: int | None
) -> int:
    reached = plus(col(Visit.signed_in_at), limit)
    statement = (
        update(Visit)
        .where(
            narrow(table_of(Visit), site_id),
            col(Visit.signed_out_at).is_(None),
            col(Visit.signed_in_at) <= now - limit,
        )
        .values(signed_out_at=reached, retain_from=reached, closed_by="auto")
    )
    return _run(session, statement)


def _mark_badges_lost(
    session: Session, limit: timedelta, now: datetime, plus: _Plus, site_id: int | None
) -> int:
    # returned_at stays NULL: the badge did not come back. Being lost takes the loan out of the
    # partial unique index, so the same badge number can be issued again.
    statement = (
        update(BadgeLoan)
        .where(
            narrow(table_of(BadgeLoan), site_id),
            col(BadgeLoan.returned_at).is_(None),
            col(BadgeLoan.lost).is_(False),
            col(BadgeLoan.issued_at) <= now - limit,
        )
        .values(lost=True, retain_from=plus(col(BadgeLoan.issued_at), limit))
    )
    return _run(session, statement)


def _close_silent_leases(
    session: Session, limit: timedelta, now: datetime, plus: _Plus, site_id: int | None
) -> int:
    seen = func.coalesce(col(WifiLease.last_seen), col(WifiLease.starts))
    statement = (
        update(WifiLease)
        .where(
            narrow(table_of(WifiLease), site_id),
            or_(col(WifiLease.ends).is_(None), col(WifiLease.ends) > now + limit),
            col(WifiLease.closed_at).is_(None),
            seen <= now - limit,
        )
        .values(closed_at=plus(seen, limit), retain_from=seen)
    )
    return _run(session, statement)


def _start_ended_leases(session: Session, now: datetime, site_id: int | None) -> int:
    """Start the clock of each lease whose end (scheduled or released) has passed."""
    ends, closed, seen = col(WifiLease.ends), col(WifiLease.closed_at), col(WifiLease.last_seen)
    # The same end as ingest's: the release, unless the scheduled end came first.
    ended = case(
        (closed.is_(None), ends),
        (or_(ends.is_(None), closed < ends), closed),
        else_=ends,
    )
    statement = (
        update(WifiLease)
        .where(
            narrow(table_of(WifiLease), site_id), col(WifiLease.retain_from).is_(None), ended <= now
        )
        .values(retain_from=case((seen > ended, seen), else_=ended))
    )
    return _run(session, statement)


def _run(session: Session, statement: Update) -> int:
    # The rows may be loaded in this session; tell it nothing, the caller re-reads what it needs.
    result = session.exec(statement.execution_options(synchronize_session=False))
    return result.rowcount


def _adder(dialect: str) -> _Plus:
    """A function building `timestamp + duration` in SQL for the dialect, exact to the microsecond."""
    return _pg_plus if dialect == "postgresql" else _sqlite_plus


def _pg_plus(instant: SQLCoreOperations[Any], delta: timedelta) -> ColumnElement[Any]:
    later: ColumnElement[Any] = instant + literal(delta, Interval())
    return later


def _sqlite_plus(instant: SQLCoreOperations[Any], delta: timedelta) -> ColumnElement[Any]:
    # The store keeps SQLite times as fixed-width 'YYYY-MM-DD HH:MM:SS.ffffff' UTC text. SQLite's
    # own date functions keep milliseconds at most, so add in integer microseconds and format back.
    # strftime('%s') rather than unixepoch(), which SQLite only has since 3.38.
    whole = cast(func.strftime("%s", func.substr(instant, 1, 19)), Integer)
    micros = cast(func.substr(instant, 21, 6), Integer)
    total = whole * _US + micros + _micros(delta)
    seconds = func.strftime("%Y-%m-%d %H:%M:%S", total // _US, "unixepoch", type_=String)
    return seconds + "." + func.printf("%06d", total % _US, type_=String)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds
