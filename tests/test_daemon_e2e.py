"""`facility daemon` end to end, as an operator runs it: a real process, broker, files and database.

The daemon runs as a subprocess on a SQLite database initialised with the CLI, against a Mosquitto
of the test's own (so the test can stop it), a recordings root in Frigate's layout and a Kea lease
file, every interval one second. Old data is seeded with old timestamps, never waited for.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facility.store import db
from facility.store.models import DEFAULT_SITE, CameraSegment, DoorEvent, JobRun, Visit, WifiLease
from facility.trail import audit
from tests.brokers import Publisher, retained, wait_for
from tests.daemons import (
    KEA_HEADER,
    Site,
    door_message,
    kea_row,
    lease_message,
    make_site,
)
from tests.factories import iso

HOLD_CASE = "INC-2026-0042"


@pytest.fixture
def site(tmp_path):
    found = make_site(tmp_path, broker_extra="max_inflight_messages 1000\n")
    found.broker.start()
    yield found
    found.broker.stop()


# --- end to end ------------------------------------------------------------------------------


def test_the_daemon_ingests_purges_holds_snapshots_and_stops_cleanly(site, daemons):
    began = time.monotonic()
    now = datetime.now(UTC).replace(microsecond=0)
    old_camera = now - timedelta(days=20)  # camera retention is 14 d
    # Before the daemon: a visitor on site, one whose visit expired, a hold over camera camB.
    site.run("visitor", "sign-in", "Ada Lovelace", "--company", "ACME", "--badge", "B17")
    site.run("visitor", "sign-in", "Old Visitor", "--at", iso(now - timedelta(days=10)), "--yes")
    site.run("visitor", "sign-out", "--name", "Old Visitor", "--at", iso(now - timedelta(days=9)))
    window = (
        "--from",
        iso(old_camera - timedelta(hours=1)),
        "--to",
        iso(old_camera + timedelta(hours=1)),
    )
    site.run("hold", "place", HOLD_CASE, "--reason", "theft", *window, "--camera", "camB")
    recent = [site.segment("camA", now - timedelta(minutes=m)) for m in (30, 20, 10)]
    site.leases.write_text(
        KEA_HEADER + kea_row("10.0.0.10", "aa:bb:cc:00:00:10", now + timedelta(hours=1))
    )

    daemon = site.daemon().start()
    daemons.append(daemon)
    daemon.wait_for_line("MQTT: connected")

    # While it runs: old and new camera files, door and lease messages, a line appended.
    old_a = [site.segment("camA", old_camera + timedelta(seconds=10 * i)) for i in range(5)]
    old_b = [site.segment("camB", old_camera + timedelta(seconds=10 * i)) for i in range(5)]
    publisher = Publisher(site.broker.port)
    try:
        new_events = [
            door_message(site.prefix, f"new-{i}", now - timedelta(minutes=i)) for i in range(50)
        ]
        old_events = [
            door_message(site.prefix, f"old-{i}", now - timedelta(days=5, minutes=i))
            for i in range(20)
        ]
        long_ago = now - timedelta(days=400)  # wifi retention is 365 d
        leases = [
            lease_message(site.prefix, "aa:bb:cc:00:00:01", "10.0.0.1", "add", now),
            lease_message(site.prefix, "aa:bb:cc:00:00:02", "10.0.0.2", "del", long_ago),
        ]
        publisher.send(new_events + old_events + leases, every=50)
        with site.leases.open("a") as handle:
            handle.write(kea_row("10.0.0.11", "aa:bb:cc:00:00:11", now + timedelta(hours=1)))

        # Everything ingested; the old, unheld part purged (by the audit trail's own counts).
        wait_for(
            lambda: site.count(DoorEvent, DoorEvent.event_id.like("new-%")) == 50, 15, "door events"
        )
        wait_for(lambda: site.purged("door_events") == 20, 15, "the 20 old door events purged")
        assert site.count(DoorEvent, DoorEvent.event_id.like("old-%")) == 0
        wait_for(
            lambda: site.count(WifiLease, WifiLease.source == str(site.leases)) == 2,
            15,
            "file leases",
        )
        wait_for(lambda: site.purged("wifi") == 1, 15, "the old lease purged")
        assert site.count(WifiLease, WifiLease.mac == "aa:bb:cc:00:00:01") == 1
        wait_for(lambda: site.purged("visits") == 1, 15, "the old visit purged")
        assert site.count(Visit) == 1  # Ada, on site
        wait_for(lambda: site.purged("camera") == 5, 15, "camA's old segments purged")
        assert not any(path.exists() for path in old_a)
        assert all(path.exists() for path in old_b + recent), "held or recent files were deleted"
        assert site.count(CameraSegment, CameraSegment.camera == "camB") == 5
        assert site.count(CameraSegment, CameraSegment.camera == "camA") == 3
        last_purge = site.audit_entries("purge")[-1][3]
        assert last_purge["kinds"]["camera"]["held"] == 5

        # The evacuation list, on disk beside the database.
        wait_for(lambda: "Ada Lovelace" in _read(site.home / "onsite.html"), 10, "onsite.html")
        assert "Ada Lovelace" in _read(site.home / "onsite.csv")
        assert "Old Visitor" not in _read(site.home / "onsite.html")

        # An hour-equivalent of load: 20 000 door events and 2 000 segment files.
        load_start = now - timedelta(hours=6)
        for i in range(2000):
            site.segment("camC", load_start + timedelta(seconds=10 * i))
        load = [
            door_message(site.prefix, f"load-{i}", now - timedelta(seconds=i % 3600), f"d{i % 20}")
            for i in range(20_000)
        ]
        publisher.send(load, every=500, timeout=60)
        wait_for(lambda: site.count(DoorEvent) == 20_050, 30, "20 000 more door events")
        wait_for(
            lambda: site.count(CameraSegment, CameraSegment.camera == "camC") == 2000,
            20,
            "2 000 segments",
        )
        memory = daemon.memory_kib()
        print(
            f"\ndaemon memory after 20 000 door events + 2 000 segment files: "
            f"VmRSS {memory['VmRSS'] / 1024:.1f} MiB, peak VmHWM {memory['VmHWM'] / 1024:.1f} MiB"
        )
        assert memory["VmRSS"] < 250 * 1024, memory
    finally:
        publisher.close()

    code, took = daemon.stop(timeout=10)
    assert code == 0, daemon.output[-4000:]
    assert took < 10
    assert retained(f"{site.prefix}/status", site.broker.port) == b"offline"
    actions = [action for _, _, action, _ in site.audit_entries()]
    assert actions.count("daemon.start") == 1 and actions[-1] == "daemon.stop", actions[-5:]
    verified = site.run("audit", "verify", "--format", "json")
    assert json.loads(verified.output)["ok"] is True
    assert time.monotonic() - began < 60


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


# --- stopping --------------------------------------------------------------------------------


def _seed_expired_door_events(url: str, count: int) -> None:
    """`count` door events five days old, written straight into the SQLite file."""
    path = url.removeprefix("sqlite:///")
    at = datetime.now(UTC) - timedelta(days=5)
    rows = [
        (f"seed-{i}", "lobby", "B1", (at - timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f"))
        for i in range(count)
    ]
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO door_events (event_id, door, badge, at, granted, source, retain_from)"
                " VALUES (?, ?, ?, ?, 1, 'seed', ?)",
                [(e, d, b, t, t) for e, d, b, t in rows],
            )
    finally:
        conn.close()


def test_sigterm_during_a_long_purge_stops_after_the_batch_and_exits_0(tmp_path, daemons):
    site = make_site(tmp_path, purge={"interval": "1h", "batch_size": 1000})
    site.broker.start()
    try:
        seeded = 200_000
        _seed_expired_door_events(site.url, seeded)
        daemon = site.daemon().start()
        daemons.append(daemon)
        path = site.url.removeprefix("sqlite:///")

        def purging() -> bool:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return conn.execute("SELECT count(*) FROM door_events").fetchone()[0] < seeded
            finally:
                conn.close()

        wait_for(purging, 20, "the purge to start deleting")
        code, took = daemon.stop(timeout=10)
        assert code == 0, daemon.output[-4000:]
        assert took < 10
        runs = site.audit_entries("purge")
        assert len(runs) == 1
        details = runs[0][3]
        assert any("stopped early" in note for note in details["notes"]), details
        left = site.count(DoorEvent)
        assert 0 < left < seeded, "the purge should have stopped part way"
        assert details["kinds"]["door_events"]["deleted"] == seeded - left
        assert site.audit_entries()[-1][2] == "daemon.stop"
        assert daemon.matching("stopped_early=True"), daemon.output[-3000:]
    finally:
        site.broker.stop()


def test_a_second_signal_exits_at_once_while_the_stop_is_stuck(tmp_path, daemons):
    site = make_site(tmp_path)
    daemon = site.daemon().start()  # no broker: it runs on and says so
    daemons.append(daemon)
    daemon.wait_for_line("job purge done")
    # Another process holds SQLite's write lock: the stop cannot write its audit entry.
    blocker = sqlite3.connect(site.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        daemon.signal(signal.SIGTERM)
        daemon.wait_for_line("stopping")
        time.sleep(1.5)  # past the window in which a repeat counts as the same request
        assert daemon.process.poll() is None, "the stop should be waiting for the lock"
        daemon.signal(signal.SIGTERM)
        code, took = daemon.wait(3)
        assert code != 0
        assert took < 2
        assert daemon.matching("second signal")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert site.audit_entries()[-1][2] != "daemon.stop"


def test_a_stop_stuck_on_a_database_lock_still_exits_within_10_seconds(tmp_path, daemons):
    site = make_site(tmp_path)
    daemon = site.daemon().start()
    daemons.append(daemon)
    daemon.wait_for_line("job purge done")
    blocker = sqlite3.connect(site.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # held for longer than SQLite's 30 s busy timeout
        code, took = daemon.stop(timeout=10)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert code == 1, "a stop that could not finish must not look clean"
    assert took < 10
    assert daemon.matching("stop did not finish"), daemon.output[-3000:]


# --- the broker going away -------------------------------------------------------------------


def test_broker_outage_purging_goes_on_logged_once_and_nothing_published_after_is_lost(
    site, daemons
):
    daemon = site.daemon().start()
    daemons.append(daemon)
    daemon.wait_for_line("MQTT: connected")

    def last_purge() -> datetime | None:
        engine = db.make_engine(site.url)
        try:
            with db.session_scope(engine) as session:
                run = session.get(JobRun, (DEFAULT_SITE, "purge"))
                return run.last_success if run else None
        finally:
            engine.dispose()

    wait_for(lambda: last_purge() is not None, 10, "a first purge")
    site.broker.stop()
    daemon.wait_for_line("unavailable", 10)
    stopped_at = last_purge()
    wait_for(lambda: last_purge() >= stopped_at + timedelta(seconds=2), 10, "purges meanwhile")
    time.sleep(1)  # several reconnect attempts while it is down

    site.broker.start()  # from its persistence: our session and subscriptions survive
    publisher = Publisher(site.broker.port)
    try:
        events = [door_message(site.prefix, f"after-{i}", datetime.now(UTC)) for i in range(300)]
        publisher.send(events, every=100)
    finally:
        publisher.close()
    daemon.wait_for_line("again after", 20)
    wait_for(lambda: site.count(DoorEvent) == 300, 20, "all 300 events published after the return")
    outage = daemon.matching(lambda line: "unavailable" in line or "cannot connect" in line)
    assert len(outage) == 1, outage
    code, _ = daemon.stop()
    assert code == 0, daemon.output[-4000:]
    assert audit_ok(site)


def audit_ok(site: Site) -> bool:
    engine = db.make_engine(site.url)
    try:
        with db.session_scope(engine) as session:
            return audit.verify(session).ok
    finally:
        engine.dispose()
