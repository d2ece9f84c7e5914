"""Objection to wifi recording (GDPR article 21, issue 17): `wifi ignore MAC` stops storing that
device's leases from then on, whatever source reports them: a real Kea lease file read by the
poller, the real Mosquitto broker through the MQTT connector, dnsmasq's hook in its own process.
Each dropped report is counted on the device's objection, nothing of it is stored, and the leases
stored before keep their state and follow their policy (or an erasure). Both engines.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from connectors.leasefile import poll
from connectors.mqtt import MqttConnector
from facility.settings import DhcpSource, Settings
from facility.store import db
from facility.store.models import AuditEntry, WifiLease
from tests.brokers import Publisher, end_session, wait_for
from tests.conftest import MQTT_PORT
from tests.daemons import hook, kea_row, lease_message

IGNORED, OTHER = "aa:bb:cc:00:00:0a", "aa:bb:cc:00:00:0b"
KEA_HEADER = (
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,"
    "user_context\n"
)


def _leases(engine) -> dict[str, list[tuple[str, datetime | None]]]:
    """Per MAC, each stored lease's IP and scheduled end."""
    with db.session_scope(engine) as session:
        rows = session.exec(select(WifiLease).order_by(WifiLease.id)).all()
        found: dict[str, list[tuple[str, datetime | None]]] = {}
        for row in rows:
            found.setdefault(row.mac, []).append((row.ip, row.ends))
        return found


def _ignored(cli) -> dict[str, int]:
    listed = json.loads(cli("wifi", "ignored", "--format", "json").stdout)
    return {d["mac"]: d["leases_ignored"] for d in listed}


def test_a_lease_file_s_reports_of_an_ignored_device_are_counted_not_stored(cli, engine, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    path = tmp_path / "kea-leases4.csv"
    path.write_text(KEA_HEADER + kea_row("10.0.0.5", IGNORED, now + timedelta(hours=1)))
    source = DhcpSource(format="kea", path=path)
    poll(engine, source, now=now)
    before = _leases(engine)
    assert list(before) == [IGNORED]

    out = cli("wifi", "ignore", IGNORED.upper(), "--reason", "objection DSR-21").stdout
    assert out.startswith(f"{IGNORED}: its leases are no longer stored from now on")
    # A renewal of the stored lease, a new lease of the same device, and another device (Kea
    # writes the end; the rows' hour-long leases start an hour before it).
    with path.open("a") as handle:
        handle.write(kea_row("10.0.0.5", IGNORED, now + timedelta(minutes=61)))
        handle.write(kea_row("10.0.0.6", IGNORED, now + timedelta(minutes=50)))
        handle.write(kea_row("10.0.0.7", OTHER, now + timedelta(minutes=50)))
    assert poll(engine, source, now=now + timedelta(minutes=1)).rejected == 0
    after = _leases(engine)
    assert after[IGNORED] == before[IGNORED], "the stored lease was neither renewed nor joined"
    assert [ip for ip, _ in after[OTHER]] == ["10.0.0.7"]
    assert _ignored(cli) == {IGNORED: 2}

    # The objection is on the record of the device (export), and an erasure keeps it.
    exported = json.loads(cli("subject", "export", "--mac", IGNORED).stdout)
    assert [d["leases_ignored"] for d in exported["ignored_devices"]] == [2]
    cli("subject", "erase", "--mac", IGNORED, "--reason", "DSR-22", "--yes", code=1)  # in use
    assert _ignored(cli) == {IGNORED: 2}

    cli("wifi", "unignore", IGNORED, "--reason", "objection withdrawn")
    with path.open("a") as handle:
        handle.write(kea_row("10.0.0.8", IGNORED, now + timedelta(minutes=62)))
    assert poll(engine, source, now=now + timedelta(minutes=2)).stored == 1
    assert [ip for ip, _ in _leases(engine)[IGNORED]] == ["10.0.0.5", "10.0.0.8"]
    assert _ignored(cli) == {}


def test_the_broker_s_and_the_hook_s_reports_of_an_ignored_device_are_not_stored(
    cli, engine, db_url
):
    cli("wifi", "ignore", IGNORED, "--reason", "objection DSR-23")
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        timezone="UTC",
        mqtt={
            "port": MQTT_PORT,
            "client_id": f"facility-test-{tag}",
            "topic_prefix": f"t{tag}",
            "esp_rfid_topic": f"t{tag}-esprfid",
            "uhppoted_topic": f"t{tag}-uhppoted/gateway",
        },
    )
    connector = MqttConnector(settings, engine)
    publisher = Publisher()
    try:
        connector.start()
        wait_for(lambda: connector.status().connected, 10, "the connector to connect")
        now = datetime.now(UTC)
        publisher.send(
            [
                lease_message(f"t{tag}", IGNORED, "10.0.1.5", "add", now),
                lease_message(f"t{tag}", IGNORED.upper(), "10.0.1.6", "add", now),
                lease_message(f"t{tag}", OTHER, "10.0.1.7", "add", now),
            ]
        )
        wait_for(lambda: OTHER in _leases(engine), 20, "the other device's lease")
        wait_for(lambda: _ignored(cli) == {IGNORED: 2}, 10, "both reports counted")
    finally:
        connector.stop()
        publisher.close()
        end_session(settings.mqtt.client_id or "")
    expires = str(int(time.time()) + 3600)
    done = hook(db_url, "add", IGNORED, "10.0.1.8", "laptop", DNSMASQ_LEASE_EXPIRES=expires)
    assert done.returncode == 0, done.stderr
    assert list(_leases(engine)) == [OTHER]
    assert _ignored(cli) == {IGNORED: 3}
    with db.session_scope(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "wifi.ignore")).one()
    details = json.loads(entry.details)
    assert details["reason"] == "objection DSR-23" and IGNORED not in entry.details


def test_what_an_objection_refuses(cli):
    refused = cli("wifi", "ignore", "not-a-mac", "--reason", "r", code=2)
    assert "MAC" in refused.stderr
    named = cli("wifi", "ignore", IGNORED, "--reason", f"owner of {IGNORED.upper()}", code=2)
    assert "contains the subject's mac" in named.stderr
    cli("wifi", "ignore", IGNORED, "--reason", "DSR-24")
    assert "already ignored since" in cli("wifi", "ignore", IGNORED, "--reason", "DSR-24").stdout
    out = cli("request", "open", "access", "--mac", IGNORED, "--received", "2026-01-05",
              "--contact", "c").stdout  # fmt: skip
    request = out.split()[1].rstrip(":")
    wrong = cli("wifi", "ignore", OTHER, "--reason", "r", "--request", request, code=2)
    assert "asks for access" in wrong.stderr
    assert "was not ignored" in cli("wifi", "unignore", OTHER, "--reason", "r").stdout


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_an_objection_ingest_looks_at_the_table_once(engine):
    """No objection recorded: `drop_ignored` hands every report through untouched."""
    from facility.sources.objections import drop_ignored
    from facility.sources.records import LeaseIn

    report = LeaseIn(
        source="t", mac=OTHER, ip="10.0.0.1", starts=datetime(2026, 1, 1, tzinfo=UTC), ends=None
    )
    with db.session_scope(engine) as session:
        assert drop_ignored(session, [report]) == [report]
