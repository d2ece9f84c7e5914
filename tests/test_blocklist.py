"""Blocked devices: `wifi block | unblock | blocked | export-blocklist`, roles, audit, exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from facility.accounts.access import current_identity
from facility.settings import Limits
from facility.sources.ingest import Intake, store_leases
from facility.sources.records import LeaseIn
from facility.store import db
from facility.store.models import AuditEntry, BlockedDevice, WifiLease
from facility.trail import audit

ME = current_identity().name
MAC = "aa:bb:cc:00:11:22"
OTHER = "3c:22:fb:01:02:03"


def entries(engine, prefix: str = "wifi.") -> list[AuditEntry]:
    with db.session_scope(engine) as session:
        rows = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
    return [row for row in rows if row.action.startswith(prefix)]


def devices(engine) -> list[BlockedDevice]:
    with db.session_scope(engine) as session:
        return list(session.exec(select(BlockedDevice).order_by(BlockedDevice.mac)).all())


def test_block_list_unblock(cli, engine):
    first = cli("wifi", "block", "AA-BB-CC-00-11-22", "--reason", "port scanning the printers")
    assert first.output.startswith(f"{MAC}: blocked")
    again = cli("wifi", "block", MAC, "--reason", "something else")
    assert f"{MAC}: already blocked since" in again.output and "nothing changed" in again.output
    [device] = devices(engine)
    assert (device.mac, device.reason, device.blocked_by) == (MAC, "port scanning the printers", ME)

    listed = json.loads(cli("wifi", "blocked", "--format", "json").output)
    assert listed == [
        {
            "mac": MAC,
            "reason": "port scanning the printers",
            "blocked_by": ME,
            "blocked_at": device.blocked_at.isoformat().replace("+00:00", "Z"),
        }
    ]
    table = cli("wifi", "blocked").output
    assert MAC in table and "port scanning the printers" in table and ME in table
    [row] = list(csv.DictReader(io.StringIO(cli("wifi", "blocked", "--format", "csv").output)))
    assert (row["mac"], row["blocked_by"], row["reason"]) == (MAC, ME, "port scanning the printers")

    gone = cli("wifi", "unblock", "aabb.cc00.1122", "--reason", "laptop reimaged")
    assert gone.output.startswith(f"{MAC}: unblocked")
    assert devices(engine) == []
    assert "was not blocked; nothing changed" in cli("wifi", "unblock", MAC, "--reason", "x").output
    assert json.loads(cli("wifi", "blocked", "--format", "json").output) == []


def test_audit_names_the_device_by_keyed_hash_only(cli, engine, isolated_env):
    cli("wifi", "block", MAC.upper(), "--reason", "rogue DHCP server")
    cli("wifi", "block", MAC, "--reason", "again")  # no change: no entry
    cli("wifi", "unblock", MAC, "--reason", "owner fixed it")
    key = audit.load_or_create_key(isolated_env / audit.KEY_FILE)
    subject = audit.subject_hash(key, "mac", MAC)
    placed, lifted = entries(engine)
    assert (placed.action, placed.actor) == ("wifi.block", ME)
    assert json.loads(placed.details) == {"subject": subject, "reason": "rogue DHCP server"}
    assert lifted.action == "wifi.unblock"
    details = json.loads(lifted.details)
    assert (details["subject"], details["reason"]) == (subject, "owner fixed it")
    for entry in (placed, lifted):
        text = entry.details.lower()
        assert "aa:bb:cc" not in text and "aabbcc" not in text and "aa-bb-cc" not in text
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["block", "zz:bb:cc:00:11:22", "--reason", "r"], "MAC: 'zz:bb:cc:00:11:22' is not a MAC"),
        (["block", "aa:bb:cc:00:11", "--reason", "r"], "is not a MAC"),
        (["block", MAC, "--reason", "   "], "--reason: must say why"),
        (["block", MAC, "--reason", "a\x00b"], "--reason: contains control characters"),
        (["unblock", "nonsense", "--reason", "r"], "MAC: 'nonsense' is not a MAC"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(cli, engine, args, message):
    result = cli("wifi", *args, code=2)
    assert result.output.count("\n") == 1 and message in result.output
    assert devices(engine) == [] and entries(engine) == []


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("security", True), ("admin", True), ("reception", False), ("privacy", False)],
)
def test_roles(cli, engine, role, allowed):
    config = cli.config(f'[roles]\n{role} = ["{ME}"]\n')
    code = 0 if allowed else 3
    cli("wifi", "block", MAC, "--reason", "r", config=config, code=code)
    cli("wifi", "blocked", config=config, code=code)
    cli("wifi", "export-blocklist", "--format", "kea", config=config, code=code)
    cli("wifi", "unblock", MAC, "--reason", "r", config=config, code=code)
    refused = entries(engine, "refused")
    assert len(refused) == (0 if allowed else 4)
    if not allowed:
        assert json.loads(refused[0].details) == {"command": "wifi block", "needs": ["security"]}
        assert json.loads(refused[1].details)["needs"] == ["security", "admin"]


def test_export_dnsmasq_and_kea(cli, tmp_path):
    empty = cli("wifi", "export-blocklist", "--format", "dnsmasq").output
    assert [line for line in empty.splitlines() if not line.startswith("#")] == []
    assert json.loads(cli("wifi", "export-blocklist", "--format", "kea").output) == {
        "early-global-reservations-lookup": True,
        "reservations": [],
    }
    cli("wifi", "block", MAC, "--reason", "r1")
    cli("wifi", "block", OTHER, "--reason", "r2")
    dnsmasq = cli("wifi", "export-blocklist", "--format", "dnsmasq").output
    assert [line for line in dnsmasq.splitlines() if not line.startswith("#")] == [
        f"dhcp-host={OTHER},ignore",
        f"dhcp-host={MAC},ignore",
    ]
    assert "r1" not in dnsmasq  # reasons stay in facility
    kea = json.loads(cli("wifi", "export-blocklist", "--format", "kea").output)
    assert kea == {
        "early-global-reservations-lookup": True,
        "reservations": [
            {"hw-address": OTHER, "client-classes": ["DROP"]},
            {"hw-address": MAC, "client-classes": ["DROP"]},
        ],
    }
    target = tmp_path / "blocked.conf"
    target.write_text("old content\n")
    written = cli("wifi", "export-blocklist", "--format", "dnsmasq", "--output", str(target))
    assert written.output == f"2 blocked device(s) written to {target} (dnsmasq)\n"
    assert target.read_text() == dnsmasq
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".blocked")) == []
    cli("wifi", "export-blocklist", "--format", "bind", code=2)
    missing = cli(
        "wifi",
        "export-blocklist",
        "--format",
        "kea",
        "--output",
        str(tmp_path / "no" / "f"),
        code=2,
    )
    assert f"--output: directory {tmp_path / 'no'} does not exist" in missing.output


def test_a_block_outlives_the_leases_a_purge_removes(cli, engine):
    long_ago = datetime.now().astimezone() - timedelta(days=800)
    with db.session_scope(engine) as session:
        store_leases(
            session,
            [LeaseIn("dnsmasq-hook", MAC, "10.0.0.5", long_ago, long_ago + timedelta(hours=1))],
            Intake(datetime.now(UTC), Limits()),
        )
    cli("wifi", "block", MAC, "--reason", "stolen laptop seen on the guest network")
    cli("purge")
    with db.session_scope(engine) as session:
        assert session.exec(select(WifiLease)).all() == []
    assert [device.mac for device in devices(engine)] == [MAC]
