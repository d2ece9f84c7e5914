"""Two daemons on one real PostgreSQL database: one purge at a time, nothing counted twice, and
ingestion in both (each daemon a site of its own: its own topics, client id and lease file).

Each purge run writes one audit entry whose time is the run's start; its duration is in the
daemon's log line for that run (which names the entry by its hash). Together they give each run's
span, and the spans must not overlap.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from facility.store import db
from facility.store.models import AuditEntry, DoorEvent, WifiLease
from facility.trail import audit
from tests.brokers import Publisher, wait_for
from tests.daemons import KEA_HEADER, Daemon, door_message, kea_row, toml_text
from tests.factories import old_door_events

WAVE = 40_000
# A run reads the clock a moment before it tries the lock; a run that ended within this much of
# another's start is not an overlap (the locked work itself is what must not overlap).
CLOCK_SLACK = timedelta(milliseconds=250)


def count(engine, *where) -> int:
    with db.session_scope(engine) as session:
        query = select(func.count()).select_from(DoorEvent)
        return session.execute(query.where(*where) if where else query).scalar_one()


def purge_entries(engine) -> list[AuditEntry]:
    with db.session_scope(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == "purge").order_by(AuditEntry.seq)
        return list(session.execute(query).scalars())


def test_two_daemons_never_purge_at_once_and_count_nothing_twice(pg_url, broker, tmp_path):
    engine = db.make_engine(pg_url)
    sites = []
    for name in ("north", "south"):
        folder = tmp_path / name
        folder.mkdir()
        leases = folder / "kea-leases4.csv"
        leases.write_text(KEA_HEADER)
        prefix = f"{name}{uuid.uuid4().hex[:6]}"
        config = folder / "facility.toml"
        config.write_text(
            toml_text(
                {
                    "database_url": pg_url,
                    "timezone": "UTC",
                    "purge": {"interval": "1s", "batch_size": 300},
                    "mqtt": {
                        "port": broker.port,
                        "client_id": f"facility-{prefix}",
                        "topic_prefix": prefix,
                        "esp_rfid_topic": "",
                        "uhppoted_topic": "",
                    },
                    "dhcp": [{"format": "kea", "path": str(leases), "poll_interval": "1s"}],
                    "snapshot": {"interval": "1s"},
                }
            )
        )
        sites.append((prefix, leases, Daemon(config, folder / "home")))
    daemons = [daemon for *_, daemon in sites]
    try:
        old_door_events(engine, WAVE, prefix="w1")
        for daemon in daemons:
            daemon.start()
        for daemon in daemons:
            daemon.wait_for_line("MQTT: connected")
        wait_for(lambda: count(engine) == 0, 30, "the first wave purged")
        old_door_events(engine, WAVE, prefix="w2")  # a second wave while both run

        # Ingestion runs in both: each site's door events and lease file.
        now = datetime.now(UTC)
        publisher = Publisher(broker.port)
        try:
            for prefix, leases, _ in sites:
                publisher.send([door_message(prefix, f"{prefix}-{i}", now) for i in range(100)])
                with leases.open("a") as handle:
                    handle.write(kea_row("10.1.0.1", "aa:bb:cc:00:01:01", now + timedelta(hours=1)))
        finally:
            publisher.close()
        for prefix, leases, _ in sites:
            wait_for(
                lambda p=prefix: count(engine, DoorEvent.event_id.like(f"{p}-%")) == 100,
                20,
                f"{prefix}'s door events",
            )
            wait_for(lambda s=str(leases): _leases(engine, s) == 1, 20, f"{leases}")
        wait_for(lambda: count(engine, DoorEvent.source == "seed") == 0, 30, "the second wave")
        time.sleep(2)  # a few more rounds in which both try
        for daemon in daemons:
            code, _ = daemon.stop()
            assert code == 0, daemon.output[-4000:]
    finally:
        for daemon in daemons:
            daemon.kill()

    entries = purge_entries(engine)
    deleted = [json.loads(e.details)["kinds"]["door_events"]["deleted"] for e in entries]
    assert sum(deleted) == 2 * WAVE, deleted  # every seeded row counted once, by one run

    # Each run's span: its entry's time (the start) plus the duration its daemon logged for it.
    took = {}
    for daemon in daemons:
        for line in daemon.matching("job purge done"):
            found = re.search(r"done in ([\d.]+) s.*audit_head=([0-9a-f]{64})", line)
            took[found.group(2)] = timedelta(seconds=float(found.group(1)))
    spans = sorted((e.at, e.at + took[e.hash], e.seq) for e in entries)
    for (_, end, seq), (start, _, next_seq) in itertools.pairwise(spans):
        assert start >= end - CLOCK_SLACK, f"purge {next_seq} started before purge {seq} ended"
    busy = [line for daemon in daemons for line in daemon.matching("another daemon is purging")]
    assert busy, "the two daemons never met at the lock: the test proved nothing"
    by_daemon = [len(daemon.matching("job purge done")) for daemon in daemons]
    assert sum(by_daemon) == len(entries), (by_daemon, len(entries))
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok
    engine.dispose()


def _leases(engine, source: str) -> int:
    with db.session_scope(engine) as session:
        query = select(func.count()).select_from(WifiLease).where(WifiLease.source == source)
        return session.execute(query).scalar_one()
