"""Two offices, two daemons, one real PostgreSQL: each daemon ingests its own sources (broker
topics, lease file, recordings root), purges by its own site's policy and writes its own
evacuation list, and the privacy officer's report adds both up.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from facility.store import db
from facility.store.models import CameraSegment, DoorEvent, WifiLease
from tests.brokers import Publisher, wait_for
from tests.conftest import Cli
from tests.daemons import KEA_HEADER, Daemon, door_message, frigate_path, kea_row, toml_text
from tests.factories import OFFICES, add_offices, old_door_events, site_ids

SEEDED = 50


def at_site(engine, model, site_id: int, *where) -> int:
    with db.session_scope(engine) as session:
        query = select(func.count()).select_from(model).where(model.site_id == site_id, *where)
        return session.execute(query).scalar_one()


def test_two_daemons_for_two_offices_each_keep_to_their_own(pg_url, broker, tmp_path):
    cli = Cli(pg_url, tmp_path)
    add_offices(cli)
    cli("policy", "set", "door_events", "10d", "--reason", "organisation", "--yes")
    cli("--site", "bru", "policy", "set", "door_events", "2d", "--reason", "Brussels", "--yes")
    # A shortening waits policy.shortening_delay; the admin applies it at once.
    cli("--site", "bru", "policy", "apply", "door_events", "--reason", "tests: at once")
    cli("--site", "ams", "visitor", "sign-in", "Ada Amsterdam")
    cli("--site", "bru", "visitor", "sign-in", "Bo Brussels")
    engine = db.make_engine(pg_url)
    ids = site_ids(pg_url)
    for code in OFFICES:
        # Five days old: past Brussels' two days, within the organisation's ten.
        old_door_events(engine, SEEDED, prefix=f"old-{code}", site_id=ids[code])

    offices = {}
    for code in OFFICES:
        folder = tmp_path / code
        recordings = folder / "recordings"
        recordings.mkdir(parents=True)
        leases = folder / "kea-leases4.csv"
        leases.write_text(KEA_HEADER)
        prefix = f"{code}{uuid.uuid4().hex[:6]}"
        config = folder / "facility.toml"
        config.write_text(
            toml_text(
                {
                    "database_url": pg_url,
                    "site": code,
                    "purge": {"interval": "1s", "batch_size": 300},
                    "mqtt": {
                        "port": broker.port,
                        "client_id": f"facility-{prefix}",
                        "topic_prefix": prefix,
                        "esp_rfid_topic": "",
                        "uhppoted_topic": "",
                    },
                    "camera": {"root": str(recordings), "scan_interval": "1s"},
                    "dhcp": [{"format": "kea", "path": str(leases), "poll_interval": "1s"}],
                    "snapshot": {"interval": "1s"},
                }
            )
        )
        offices[code] = (prefix, leases, recordings, Daemon(config, folder / "home"))
    daemons = [daemon for *_, daemon in offices.values()]
    try:
        for daemon in daemons:
            daemon.start()
        for daemon in daemons:
            daemon.wait_for_line("MQTT: connected")
        now = datetime.now(UTC)
        publisher = Publisher(broker.port)
        try:
            for code, (prefix, leases, recordings, _) in offices.items():
                publisher.send([door_message(prefix, f"{code}-{i}", now) for i in range(20)])
                with leases.open("a") as handle:
                    mac = "aa:bb:cc:00:01:01" if code == "ams" else "aa:bb:cc:00:02:02"
                    handle.write(kea_row("10.1.0.1", mac, now + timedelta(hours=1)))
                segment = recordings / frigate_path(f"{code}-cam", now - timedelta(minutes=5))
                segment.parent.mkdir(parents=True)
                segment.write_bytes(b"\x00\x00\x00\x18ftypmp42")
                settled = (now - timedelta(minutes=1)).timestamp()  # written, not being written
                os.utime(segment, (settled, settled))
        finally:
            publisher.close()
        fresh = DoorEvent.source != "seed"
        for code in OFFICES:
            site = ids[code]
            wait_for(lambda s=site: at_site(engine, DoorEvent, s, fresh) == 20, 30, f"{code} doors")
            wait_for(lambda s=site: at_site(engine, WifiLease, s) == 1, 30, f"{code}'s lease")
            wait_for(lambda s=site: at_site(engine, CameraSegment, s) == 1, 30, f"{code} camera")
        # Brussels' daemon purges Brussels' old events (2 days); Amsterdam's keeps its own (10).
        seeded = DoorEvent.source == "seed"
        wait_for(lambda: at_site(engine, DoorEvent, ids["bru"], seeded) == 0, 30, "bru purged")
        for daemon in daemons:
            daemon.wait_for_line("job purge done")
        assert at_site(engine, DoorEvent, ids["ams"], seeded) == SEEDED
        # Each office's evacuation list names its own visitor only.
        for code, visitor, other in (("ams", "Ada", "Bo"), ("bru", "Bo", "Ada")):
            snapshot = tmp_path / code / "home" / "onsite.csv"
            wait_for(snapshot.exists, 20, f"{code}'s snapshot")
            listed = snapshot.read_text()
            assert visitor in listed and other not in listed
        for daemon in daemons:
            code, _ = daemon.stop()
            assert code == 0, daemon.output[-4000:]
    finally:
        for daemon in daemons:
            daemon.kill()
        engine.dispose()

    ams = json.loads(cli("--site", "ams", "onsite", "--format", "json").stdout)
    assert [p["name"] for p in ams["people"]] == ["Ada Amsterdam"]
    shown = json.loads(cli("report", "--format", "json").stdout)
    for kind in ("door_events", "wifi", "camera"):
        per_site = sum(found["kinds"][kind]["count"] for found in shown["sites"].values())
        assert per_site == shown["kinds"][kind]["count"], kind
    assert shown["sites"]["ams"]["kinds"]["door_events"]["count"] == SEEDED + 20
    assert shown["sites"]["bru"]["kinds"]["door_events"]["count"] == 20
