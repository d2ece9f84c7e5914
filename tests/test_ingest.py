"""Ingest is idempotent (invariant 9) and merges lease reports the way a person reading them would."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from facility.errors import RejectedInput
from facility.settings import Limits
from facility.sources import ingest
from facility.sources.ingest import (
    record_rejection,
    store_door_events,
    store_leases,
    store_segments,
)
from facility.sources.records import DoorEventIn, LeaseIn, SegmentIn
from facility.store import db
from facility.store.models import CameraSegment, DoorEvent, Rejection, WifiLease
from tests.conftest import T0

# Stored a month after the test data: every time in it lies in the past.
LATER = ingest.Intake(T0 + timedelta(days=30), Limits())

MAC = "00:11:22:33:44:55"


def _lease(**changes) -> LeaseIn:
    base = {
        "source": "kea",
        "mac": MAC,
        "ip": "10.0.0.5",
        "starts": T0,
        "ends": T0 + timedelta(hours=1),
    }
    return LeaseIn(**{**base, **changes})


def _count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_events_and_segments_delivered_twice_are_stored_once(engine):
    events = [
        DoorEventIn(f"e{i}", "lobby", "B1", T0 + timedelta(seconds=i), True, "mqtt")
        for i in range(700)
    ]
    segments = [
        SegmentIn("cam1", f"2026-06-01/12/cam1/{i:02d}.00.mp4", T0, T0 + timedelta(seconds=10))
        for i in range(60)
    ]
    with db.session_scope(engine) as session:
        assert store_door_events(session, events + events[:5], LATER) == 700
        assert store_segments(session, segments, LATER) == 60
    with db.session_scope(engine) as session:
        assert store_door_events(session, events, LATER) == 0
        assert store_segments(session, segments[::-1], LATER) == 0
        assert _count(session, DoorEvent) == 700
        assert _count(session, CameraSegment) == 60
        seg = session.exec(
            select(CameraSegment).where(CameraSegment.path == segments[0].path)
        ).one()
        assert seg.retain_from == seg.end


def test_lease_renewal_updates_end_and_clock(engine):
    with db.session_scope(engine) as session:
        assert store_leases(session, [_lease(hostname="laptop")], LATER) == (1, 0)
    with db.session_scope(engine) as session:
        renewed = _lease(ends=T0 + timedelta(hours=5), last_seen=T0 + timedelta(hours=2))
        assert store_leases(session, [renewed], LATER) == (0, 1)
        assert store_leases(session, [renewed], LATER) == (0, 0)
    with db.session_scope(engine) as session:
        row = session.exec(select(WifiLease)).one()
        assert row.hostname == "laptop"  # a report without a name keeps the one we had
        assert row.retain_from == T0 + timedelta(hours=5)  # the later of end and last seen


def test_last_seen_never_moves_back_and_release_closes(engine):
    with db.session_scope(engine) as session:
        store_leases(session, [_lease(last_seen=T0 + timedelta(hours=3))], LATER)
        store_leases(session, [_lease(last_seen=T0 + timedelta(minutes=1))], LATER)
        row = session.exec(select(WifiLease)).one()
        assert row.last_seen == T0 + timedelta(hours=3)
        store_leases(session, [_lease(ends=T0 + timedelta(minutes=30), released=True)], LATER)
        row = session.exec(select(WifiLease)).one()
        assert row.closed_at == T0 + timedelta(minutes=30)
        assert row.retain_from == T0 + timedelta(hours=3)


def test_never_ending_lease_has_no_clock_until_seen(engine):
    with db.session_scope(engine) as session:
        store_leases(session, [_lease(ends=None)], LATER)
        assert session.exec(select(WifiLease.retain_from)).one() is None
        store_leases(session, [_lease(ends=None, last_seen=T0 + timedelta(days=2))], LATER)
        assert session.exec(select(WifiLease.retain_from)).one() == T0 + timedelta(days=2)


def test_rejection_keeps_a_bounded_excerpt(engine):
    with db.session_scope(engine) as session:
        record_rejection(
            session, RejectedInput("bad json", source="mqtt", raw=b"\xff" * 2000), now=T0
        )
        row = session.exec(select(Rejection)).one()
        assert (row.source, row.reason) == ("mqtt", "bad json")
        assert row.raw.startswith("\\xff") and row.raw.count("\\xff") == 512
        record_rejection(session, RejectedInput("nul", source="mqtt", raw=b"a\x00b"), now=T0)
        nul = session.exec(select(Rejection).where(Rejection.reason == "nul")).one()
        assert nul.raw == "a\\x00b"


def _state(session) -> set[tuple]:
    rows = session.exec(select(WifiLease)).all()
    return {(r.ip, r.starts, r.ends, r.last_seen, r.closed_at, r.retain_from) for r in rows}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    reports=st.lists(
        st.tuples(
            st.sampled_from(["10.0.0.1", "10.0.0.2"]),
            st.integers(0, 3),
            st.integers(0, 48),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    ),
    split=st.integers(0, 12),
)
def test_redelivering_leases_changes_nothing(engine, reports, split):
    leases = [
        _lease(ip=ip, starts=T0 + timedelta(hours=s), ends=T0 + timedelta(hours=s + e), released=r)
        for ip, s, e, r in reports
    ]
    with db.session_scope(engine) as session:
        session.execute(WifiLease.__table__.delete())
        store_leases(session, leases[:split], LATER)
        store_leases(session, leases[split:], LATER)
        delivered = _state(session)
        assert store_leases(session, leases, LATER) == (0, 0)
        assert store_leases(session, leases[split:], LATER) == (0, 0)
        assert _state(session) == delivered
        # Every report's lease is covered by exactly one stored lease of its address.
        for lease in leases:
            covering = [r for r in delivered if r[0] == lease.ip and r[1] <= lease.starts]
            assert covering, lease


def test_renewal_continues_the_lease_a_later_one_starts_anew(engine):
    first = _lease(starts=T0, ends=T0 + timedelta(hours=1))
    renewal = _lease(starts=T0 + timedelta(minutes=30), ends=T0 + timedelta(hours=2))
    after_expiry = _lease(starts=T0 + timedelta(hours=3), ends=T0 + timedelta(hours=4))
    with db.session_scope(engine) as session:
        assert store_leases(session, [first], LATER) == (1, 0)
        assert store_leases(session, [renewal], LATER) == (0, 1)
        assert store_leases(session, [after_expiry], LATER) == (1, 0)
        rows = session.exec(select(WifiLease).order_by(WifiLease.starts)).all()
        assert [(r.starts, r.ends) for r in rows] == [
            (T0, T0 + timedelta(hours=2)),
            (T0 + timedelta(hours=3), T0 + timedelta(hours=4)),
        ]
        # A later start is not a sighting by itself: parsers report sightings (ISC/Kea cltt).
        assert rows[0].last_seen is None


def _reports(count: int) -> list[LeaseIn]:
    """Renewals, gaps, releases and never-ending leases over two sources and one MAC at two IPs."""
    rng = random.Random(8)
    addresses = [
        (source, f"00:11:22:33:44:{m:02x}", f"10.0.{m}.{i}")
        for source in ("kea", "/var/lib/dhcp/dhcpd.leases")
        for m in range(6)
        for i in range(2)
    ]
    leases = []
    for _ in range(count):
        source, mac, ip = rng.choice(addresses)
        starts = T0 + timedelta(minutes=20 * rng.randrange(40))
        leases.append(
            LeaseIn(
                source=source,
                mac=mac,
                ip=ip,
                starts=starts,
                ends=None if rng.random() < 0.05 else starts + timedelta(hours=1),
                hostname=rng.choice([None, "laptop", "phone"]),
                last_seen=rng.choice([None, starts]),
                released=rng.random() < 0.1,
            )
        )
    return sorted(leases, key=lambda x: x.starts)


_COLUMNS = (
    "source",
    "mac",
    "ip",
    "hostname",
    "starts",
    "ends",
    "last_seen",
    "closed_at",
    "retain_from",
)


def _rows(session) -> dict[int, tuple]:
    rows = session.exec(select(WifiLease))
    return {r.id: tuple(getattr(r, name) for name in _COLUMNS) for r in rows}


def test_a_batch_stores_what_its_reports_one_at_a_time_do(engine, monkeypatch):
    # Small lookups, so that one batch spans several, each with stored and new leases.
    monkeypatch.setattr(ingest, "CHUNK", 5)
    leases = _reports(300)
    earlier, batch = leases[:100], leases[100:]
    with db.session_scope(engine) as session:
        for lease in earlier:
            store_leases(session, [lease], LATER)
        before = _rows(session)
        new, updated = store_leases(session, batch, LATER)
        after = _rows(session)
        assert new == len(after) - len(before)
        # Each stored lease the batch changed counts once, however many of its reports did.
        assert updated == sum(after[key] != row for key, row in before.items()) > 0
        assert store_leases(session, leases, LATER) == (0, 0)
        assert _rows(session) == after
        session.execute(WifiLease.__table__.delete())
    with db.session_scope(engine) as session:
        for lease in leases:
            store_leases(session, [lease], LATER)
        assert set(_rows(session).values()) == set(after.values())
