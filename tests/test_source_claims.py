"""What outside sources claim, against the real daemon, broker and files (invariant 11).

A real `facility daemon` process reads a real Mosquitto and a recordings tree in Frigate's layout.
Hostile camera announcements (a held file's path with a start in the year 2000, the same path
under another camera, a path the layout rejects) are rejected into `rejections`, and the files
they name outlive purge after purge. Door, lease and segment payloads dated far ahead are
refused with a reason; a lease that names a far end is stored as open.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from facility.store import db
from facility.store.models import CameraSegment, DoorEvent, Rejection, WifiLease
from tests.brokers import Publisher, wait_for
from tests.daemons import Site, frigate_path, make_site
from tests.factories import iso

CASE = "INC-2026-0077"


@pytest.fixture
def site(tmp_path):
    # The scan runs once at start (on an empty root, so it refuses and indexes nothing) and not
    # again for an hour: the rows in these tests come from announcements alone.
    found = make_site(tmp_path, camera={"scan_interval": "1h"})
    found.broker.start()
    yield found
    found.broker.stop()


@pytest.fixture
def daemon(site):
    started = site.daemon().start()
    yield started
    started.kill()


def rejections(site: Site) -> list[tuple[str, str]]:
    engine = db.make_engine(site.url)
    try:
        with db.session_scope(engine) as session:
            rows = session.execute(select(Rejection).order_by(Rejection.id)).scalars()
            return [(r.source, r.reason) for r in rows]
    finally:
        engine.dispose()


def purges(site: Site) -> int:
    return len(site.audit_entries("purge"))


def announce(prefix: str, camera: str, path: str, start: datetime, end: datetime) -> tuple:
    payload = {"path": path, "start": start.timestamp(), "end": end.timestamp()}
    return f"{prefix}/cameras/{camera}/segments", json.dumps(payload).encode()


def test_announcements_only_confirm_the_layout_and_held_files_outlive_the_purge(site, daemon):
    now = datetime.now(UTC).replace(microsecond=0)
    incident = (now - timedelta(days=20)).replace(minute=0, second=0)  # camera policy: 14 days
    site.run(
        "hold", "place", CASE, "--reason", "break-in", "--camera", "cam1",
        "--from", iso(incident - timedelta(hours=1)), "--to", iso(incident + timedelta(hours=1)),
    )  # fmt: skip
    daemon.wait_for_line("MQTT: connected")
    daemon.wait_for_line("camera scan refused")  # the empty root at start
    held = site.segment("cam1", incident)
    other = site.segment("cam1", incident + timedelta(seconds=10))
    unheld = site.segment("cam2", incident)  # same time, another camera: not held
    export = site.drop_file("exports/incident.mp4", incident)  # the layout rejects this path
    relpath = frigate_path("cam1", incident)
    y2k = datetime(2000, 1, 1, tzinfo=UTC)
    publisher = Publisher(site.broker.port)
    try:
        hostile = [
            # The held file, claimed to start in the year 2000.
            announce(site.prefix, "cam1", relpath, y2k, y2k + timedelta(seconds=10)),
            # Another held file, claimed for a camera no hold names.
            announce(site.prefix, "cam2", frigate_path("cam1", incident + timedelta(seconds=10)),
                     incident + timedelta(seconds=10), incident + timedelta(seconds=20)),
            # A file the layout does not read at all.
            announce(site.prefix, "cam1", "exports/incident.mp4", y2k, y2k),
        ]  # fmt: skip
        honest = [
            announce(site.prefix, "cam1", relpath, incident, incident + timedelta(seconds=10)),
            announce(
                site.prefix,
                "cam2",
                frigate_path("cam2", incident),
                incident,
                incident + timedelta(seconds=10),
            ),
        ]
        before = purges(site)
        publisher.send(hostile + honest)
    finally:
        publisher.close()

    # The honest cam2 announcement is stored and purged: announcements do reach the purge.
    wait_for(lambda: not unheld.exists(), 15, "the unheld cam2 file purged")
    wait_for(lambda: purges(site) >= before + 3, 15, "more purge runs")
    assert held.exists() and other.exists(), "a file under an active hold was deleted"
    assert export.exists(), "a file the layout rejects was deleted"
    wait_for(lambda: len(rejections(site)) == 3, 15, "three rejections")
    reasons = [reason for _, reason in rejections(site)]
    assert "the start the frigate layout reads from the path" in reasons[0], reasons
    assert "camera 'cam2' in the topic is not 'cam1'" in reasons[1], reasons
    assert "does not match the frigate layout" in reasons[2], reasons
    engine = db.make_engine(site.url)
    try:
        with db.session_scope(engine) as session:
            (row,) = session.execute(select(CameraSegment)).scalars()
    finally:
        engine.dispose()
    # The one row left is the layout's reading of the held file's path.
    assert (row.camera, row.path, row.start, row.end) == (
        "cam1",
        relpath,
        incident,
        incident + timedelta(seconds=10),
    )
    assert site.audit_entries("purge")[-1][3]["kinds"]["camera"]["held"] == 1
    code, _ = daemon.stop()
    assert code == 0, daemon.output[-4000:]


def test_times_far_ahead_are_refused_with_a_reason_and_far_lease_ends_read_as_open(site, daemon):
    now = datetime.now(UTC).replace(microsecond=0)
    far = datetime(2099, 6, 1, tzinfo=UTC)
    daemon.wait_for_line("MQTT: connected")
    daemon.wait_for_line("camera scan refused")  # the empty root at start
    future_file = site.drop_file(frigate_path("cam1", far), now)
    p = site.prefix

    def message(topic: str, **payload) -> tuple:
        return f"{p}/{topic}", json.dumps(payload).encode()

    lease = {"mac": "aa:bb:cc:00:00:01", "ip": "10.0.0.1", "action": "add"}
    messages = [
        message("doors/lobby/events", event_id="far", badge="B17", at=iso(far), result="granted"),
        message("wifi/leases", **lease, at=far.timestamp()),
        message(
            "cameras/cam1/segments",
            path=frigate_path("cam1", far),
            start=far.timestamp(),
            end=(far + timedelta(seconds=10)).timestamp(),
        ),
        # A controller clock a minute fast is within limits.clock_skew (5 min): stored.
        message(
            "doors/lobby/events",
            event_id="fast",
            badge="B17",
            at=iso(now + timedelta(minutes=1)),
            result="granted",
        ),
        # A lease whose server gave an end far ahead: stored, as a lease without an end.
        message("wifi/leases", **lease | {"ip": "10.0.0.2"}, at=iso(now), expires=iso(far)),
    ]
    publisher = Publisher(site.broker.port)
    try:
        publisher.send(messages)
    finally:
        publisher.close()
    fast = DoorEvent.event_id == "fast"
    wait_for(lambda: site.count(DoorEvent, fast) == 1, 15, "the event from a fast clock")
    wait_for(lambda: site.count(WifiLease, WifiLease.ip == "10.0.0.2") == 1, 15, "the lease")
    assert site.count(DoorEvent) == 1, "a door event dated 2099 was stored"
    assert site.count(WifiLease) == 1, "a lease that starts in 2099 was stored"
    assert site.count(CameraSegment) == 0, "a segment that starts in 2099 was indexed"
    wait_for(lambda: len(rejections(site)) == 3, 15, "three rejections")
    reasons = [reason for _, reason in rejections(site)]
    for what, reason in zip(("event time", "lease start", "segment start"), reasons, strict=True):
        assert f"{what} 2099-06-01 00:00 UTC is in the future" in reason, reasons
        assert "limits.clock_skew (5m)" in reason, reasons
    engine = db.make_engine(site.url)
    try:
        with db.session_scope(engine) as session:
            (stored,) = session.execute(select(WifiLease)).scalars()
            (event,) = session.execute(select(DoorEvent)).scalars()
    finally:
        engine.dispose()
    assert (stored.ip, stored.ends, stored.retain_from) == ("10.0.0.2", None, now)
    assert event.event_id == "fast"
    time.sleep(1.5)  # a purge or two later, the file named 2099 is still there and unindexed
    assert future_file.exists()
    code, _ = daemon.stop()
    assert code == 0, daemon.output[-4000:]
