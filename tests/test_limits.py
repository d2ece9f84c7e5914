"""Open-record limits (invariant 4): open visits, unreturned badges and silent leases get closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import col, select

from facility.retention import limits
from facility.settings import Limits
from facility.store import db
from facility.store.models import AuditEntry, BadgeLoan, Visit, WifiLease
from facility.visitors import reception
from tests.conftest import T0

US = timedelta(microseconds=1)
LIMITS = Limits()  # 24 h, 24 h, 30 d


def _add(engine, *rows):
    with db.session_scope(engine) as session:
        for row in rows:
            session.add(row)
        session.flush()
        return [row.id for row in rows]


def _get(engine, model, row_id):
    with db.session_scope(engine) as session:
        return session.get(model, row_id)


def _apply(engine, now=T0, limits_=LIMITS):
    with db.session_scope(engine) as session:
        return limits.apply(session, limits_, now=now, actor="tests")


def _auto_close_entries(engine) -> list[dict]:
    with db.session_scope(engine) as session:
        found = session.exec(select(AuditEntry).where(AuditEntry.action == "auto-close")).all()
        return [json.loads(e.details) for e in found]


def _visit(name: str, signed_in_at: datetime, **extra) -> Visit:
    return Visit(name=name, name_key=name.lower(), signed_in_at=signed_in_at, **extra)


def _lease(mac: str, starts: datetime, **extra) -> WifiLease:
    return WifiLease(source="tests", mac=mac, ip="10.0.0.1", starts=starts, **extra)


def test_a_visit_open_exactly_max_visit_is_closed_one_microsecond_less_is_not(engine):
    # An odd microsecond count checks that the sign-out instant is exact on SQLite's text times.
    at_limit = T0 - LIMITS.max_visit
    closed, still_open = _add(engine, _visit("Ada", at_limit), _visit("Grace", at_limit + US))
    assert _apply(engine) == {"visits": 1, "badges": 0, "wifi": 0}
    visit = _get(engine, Visit, closed)
    assert visit.signed_out_at == visit.retain_from == T0
    assert visit.closed_by == "auto"
    untouched = _get(engine, Visit, still_open)
    assert untouched.signed_out_at is None and untouched.retain_from is None
    assert _apply(engine, now=T0 + US) == {"visits": 1, "badges": 0, "wifi": 0}
    assert _get(engine, Visit, still_open).signed_out_at == T0 + US


def test_auto_close_sets_the_instant_the_limit_was_reached_not_now(engine):
    signed_in = datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC)
    (visit_id,) = _add(engine, _visit("Ada", signed_in))
    _apply(engine, now=signed_in + timedelta(days=10))
    assert _get(engine, Visit, visit_id).signed_out_at == signed_in + LIMITS.max_visit


def test_visits_already_signed_out_are_untouched(engine):
    signed_in = T0 - timedelta(days=5)
    out = signed_in + timedelta(hours=2)
    (visit_id,) = _add(
        engine,
        _visit("Ada", signed_in, signed_out_at=out, retain_from=out, closed_by="reception"),
    )
    assert _apply(engine)["visits"] == 0
    visit = _get(engine, Visit, visit_id)
    assert (visit.signed_out_at, visit.retain_from, visit.closed_by) == (out, out, "reception")


def test_a_badge_not_returned_is_marked_lost_and_its_number_can_go_out_again(engine):
    issued = T0 - LIMITS.max_badge_out
    visit_id, newer_visit = _add(engine, _visit("Ada", issued), _visit("Grace", T0 - US))
    (lost, recent) = _add(
        engine,
        BadgeLoan(badge="B1", visit_id=visit_id, issued_at=issued),
        BadgeLoan(badge="B2", visit_id=newer_visit, issued_at=issued + US),
    )
    counts = _apply(engine)
    assert (counts["badges"], counts["visits"]) == (1, 1)
    loan = _get(engine, BadgeLoan, lost)
    assert loan.lost and loan.returned_at is None and loan.retain_from == T0
    assert not _get(engine, BadgeLoan, recent).lost
    with db.session_scope(engine) as session:
        again = reception.issue_badge(session, now=T0, badge="B1", visit_id=newer_visit)
    assert again.id != lost


def test_badges_returned_or_already_lost_are_untouched(engine):
    issued = T0 - timedelta(days=3)
    back = issued + timedelta(hours=1)
    (visit_id,) = _add(engine, _visit("Ada", issued, signed_out_at=back, retain_from=back))
    returned, lost = _add(
        engine,
        BadgeLoan(
            badge="B1", visit_id=visit_id, issued_at=issued, returned_at=back, retain_from=back
        ),
        BadgeLoan(badge="B2", visit_id=visit_id, issued_at=issued, lost=True, retain_from=back),
    )
    assert _apply(engine)["badges"] == 0
    assert _get(engine, BadgeLoan, returned).retain_from == back
    assert _get(engine, BadgeLoan, lost).retain_from == back


def test_a_silent_never_ending_lease_is_closed_from_when_it_was_last_seen(engine):
    silence = LIMITS.max_lease_silence
    seen = T0 - silence
    never_seen, seen_once, recent, ending, closed = _add(
        engine,
        _lease("02:00:00:00:00:01", starts=seen),
        _lease("02:00:00:00:00:02", starts=seen - timedelta(days=90), last_seen=seen),
        _lease("02:00:00:00:00:03", starts=seen - timedelta(days=90), last_seen=seen + US),
        _lease("02:00:00:00:00:04", starts=seen - timedelta(days=90), ends=seen, retain_from=seen),
        _lease(
            "02:00:00:00:00:05",
            starts=seen - timedelta(days=90),
            closed_at=seen - timedelta(days=1),
            retain_from=seen - timedelta(days=2),
        ),
    )
    assert _apply(engine)["wifi"] == 2
    for lease_id in (never_seen, seen_once):
        lease = _get(engine, WifiLease, lease_id)
        assert (lease.closed_at, lease.retain_from) == (T0, seen)
    assert _get(engine, WifiLease, recent).closed_at is None
    assert _get(engine, WifiLease, ending).closed_at is None
    old = _get(engine, WifiLease, closed)
    assert (old.closed_at, old.retain_from) == (seen - timedelta(days=1), seen - timedelta(days=2))


def test_one_audit_entry_with_counts_only_and_none_when_nothing_closes(engine):
    _add(
        engine,
        _visit("Ada Lovelace", T0 - timedelta(days=2)),
        _visit("Grace Hopper", T0 - timedelta(days=3)),
        _lease("02:00:00:00:00:01", starts=T0 - timedelta(days=60)),
    )
    assert _apply(engine) == {"visits": 2, "badges": 0, "wifi": 1}
    assert _apply(engine) == {"visits": 0, "badges": 0, "wifi": 0}
    entries = _auto_close_entries(engine)
    assert entries == [{"visits": 2, "badges": 0, "wifi": 1}]
    assert "Ada" not in json.dumps(entries)


def test_configured_limits_are_used(engine):
    short = Limits(max_visit=timedelta(hours=1), max_badge_out=timedelta(hours=2))
    (visit_id,) = _add(engine, _visit("Ada", T0 - timedelta(hours=1)))
    _add(engine, BadgeLoan(badge="B1", visit_id=visit_id, issued_at=T0 - timedelta(hours=1)))
    assert _apply(engine, limits_=short) == {"visits": 1, "badges": 0, "wifi": 0}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    signed_in=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    limit=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
)
def test_closing_instant_is_exact_to_the_microsecond(engine, signed_in, limit):
    """SQLite adds in integer microseconds; PostgreSQL adds an interval: both land exactly."""
    (visit_id,) = _add(engine, _visit("Ada", signed_in))
    _add(engine, _lease("02:00:00:00:00:09", starts=signed_in - US, last_seen=signed_in))
    try:
        _apply(
            engine,
            now=signed_in + limit,
            limits_=Limits(max_visit=limit, max_lease_silence=limit),
        )
        assert _get(engine, Visit, visit_id).signed_out_at == signed_in + limit
        with db.session_scope(engine) as session:
            # Compared in SQL too: SQLite's stored text must keep the format that sorts.
            exact = select(func.count()).where(col(Visit.signed_out_at) == signed_in + limit)
            assert session.exec(exact).one() == 1
        with db.session_scope(engine) as session:
            lease = session.exec(select(WifiLease)).one()
            assert lease.closed_at == signed_in + limit
    finally:
        with db.session_scope(engine) as session:
            for model in (Visit, WifiLease):
                for row in session.exec(select(model).where(col(model.id).is_not(None))):
                    session.delete(row)
