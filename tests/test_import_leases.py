"""`facility import leases`: one-shot imports of real sample files, exit codes, positions untouched."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from connectors import leasefile
from facility.accounts.access import current_identity
from facility.cli import imports
from facility.settings import DhcpSource
from facility.store import db
from facility.store.models import DEFAULT_SITE, Rejection, SourcePosition
from tests.conftest import SAMPLES, T0
from tests.factories import stored, utc

DHCP = SAMPLES / "dhcp"


def test_isc_sample_imports_once(cli, engine):
    path = DHCP / "isc-dhcpd-4.2.8-pfsense.leases"
    first = cli("import", "leases", str(path), "--format", "isc")
    assert first.output == f"{path}: 2 stored, 0 updated, 0 rejected\n"
    leases = stored(engine)
    lease = leases["10.0.10.72"]
    assert (lease.source, lease.mac, lease.hostname, lease.client_id) == (
        str(path),
        "64:5a:04:6a:07:a2",
        "Satellite-C700",
        "01:64:5a:04:6a:07:a2",
    )
    assert (lease.starts, lease.ends) == (utc(2015, 7, 6, 7, 50, 42), utc(2015, 7, 6, 8, 20, 42))
    assert leases["10.0.0.36"].hostname == "Gebruiker-PC"
    again = cli("import", "leases", str(path), "--format", "isc")
    assert again.output == f"{path}: 0 stored, 0 updated, 0 rejected\n"
    assert len(stored(engine)) == 2


def test_dnsmasq_sample_starts_at_the_expiry_already_past(cli, engine):
    path = DHCP / "dnsmasq-home.leases"
    result = cli("import", "leases", str(path), "--format", "dnsmasq")
    assert result.output == f"{path}: 21 stored, 0 updated, 0 rejected\n"
    lease = stored(engine)["172.17.2.174"]
    ends = datetime.fromtimestamp(1621611137, UTC)
    assert (lease.mac, lease.hostname, lease.starts, lease.ends, lease.last_seen) == (
        "dc:a6:32:1a:b6:2b",
        "zatanna",
        ends,  # expired before the import: min(read time, expiry)
        ends,
        None,
    )
    assert lease.client_id == "ff:32:1a:b6:2b:00:01:00:01:27:ad:87:e7:dc:a6:32:1a:b6:2b"


def test_a_file_with_nothing_readable_is_bad_input(cli, engine):
    path = DHCP / "kea-leases4-2.1.csv"  # Kea's test data: two-byte hardware addresses
    result = cli("import", "leases", str(path), "--format", "kea", code=2)
    assert result.stdout.splitlines() == [f"{path}: 0 stored, 0 updated, 2 rejected"]
    errors = result.stderr.splitlines()
    assert [line.startswith("  rejected: ") for line in errors] == [True, True, False]
    assert errors[-1] == (
        f"facility: --format: no kea lease could be read from {path}; is it really that format?"
    )
    with db.session_scope(engine) as session:
        reasons = [r.reason for r in session.exec(select(Rejection).order_by(Rejection.id))]
    assert reasons == [
        "lease 0.0.0.10: hwaddr '32:30' is not a 6-octet MAC",
        "lease 0.0.0.12: hwaddr '32:32' is not a 6-octet MAC",
    ]
    wrong = cli("import", "leases", str(DHCP / "dnsmasq-home.leases"), "--format", "isc", code=2)
    assert "no isc lease could be read" in wrong.output
    assert stored(engine) == {}


def test_import_leaves_the_pollers_position_alone(cli, engine, tmp_path):
    path = tmp_path / "kea-leases4.csv"
    header = (DHCP / "kea-leases4-2.1.csv").read_text().splitlines()[0] + "\n"
    row = "10.1.0.{n},aa:bb:cc:00:00:0{n},,3600,{e},1,0,0,host{n},0,\n"
    expire = int((T0 + timedelta(hours=1)).timestamp())
    path.write_text(header + row.format(n=1, e=expire))
    # Polled after the lease ended (its clock starts then), so the later import changes nothing.
    after = T0 + timedelta(hours=2)
    leasefile.poll(engine, DhcpSource(format="kea", path=path), now=after)
    with db.session_scope(engine) as session:
        before = session.get(SourcePosition, (DEFAULT_SITE, str(path))).model_dump()
    with path.open("a") as handle:
        handle.write(row.format(n=2, e=expire))
    result = cli("import", "leases", str(path), "--format", "kea")
    assert result.output == f"{path}: 1 stored, 0 updated, 0 rejected\n"
    with db.session_scope(engine) as session:
        assert session.get(SourcePosition, (DEFAULT_SITE, str(path))).model_dump() == before
    report = leasefile.poll(engine, DhcpSource(format="kea", path=path), now=after)
    assert (report.stored, report.updated) == (0, 0)  # row 2 merged into what the import stored
    assert sorted(stored(engine)) == ["10.1.0.1", "10.1.0.2"]


def test_relative_paths_name_the_same_source(cli, engine, tmp_path):
    path = tmp_path / "dhcpd.leases"
    path.write_bytes((DHCP / "isc-dhcpd-4.2.8-pfsense.leases").read_bytes())
    os.chdir(tmp_path)
    cli("import", "leases", "dhcpd.leases", "--format", "isc")
    again = cli("import", "leases", str(path), "--format", "isc")
    assert again.output.endswith(": 0 stored, 0 updated, 0 rejected\n")
    assert {lease.source for lease in stored(engine).values()} == {str(path)}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "absent.leases", "does not exist"),
        (lambda tmp: tmp, "not a regular file"),
    ],
)
def test_unreadable_file_exits_2_with_one_line(cli, tmp_path, make, message):
    result = cli("import", "leases", str(make(tmp_path)), "--format", "isc", code=2)
    assert result.output.count("\n") == 1 and message in result.output
    assert result.output.startswith("facility: FILE: ")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_exits_2(cli, tmp_path):
    path = tmp_path / "secret.leases"
    path.write_text("")
    path.chmod(0)
    result = cli("import", "leases", str(path), "--format", "isc", code=2)
    assert "Permission denied" in result.output


def test_bad_format_exits_2_with_one_line(cli):
    result = cli("import", "leases", str(DHCP / "dnsmasq-home.leases"), "--format", "csv", code=2)
    assert result.output == "facility: --format: 'csv' is not one of isc, dnsmasq, kea\n"


def test_needs_role_admin(cli, engine):
    config = cli.config(f'[roles]\nsecurity = ["{current_identity().name}"]\n')
    path = DHCP / "isc-dhcpd-4.2.8-pfsense.leases"
    result = cli("import", "leases", str(path), "--format", "isc", config=config, code=3)
    assert "needs role admin" in result.output
    assert stored(engine) == {}


def test_progress_bar_only_on_a_terminal(cli, engine, tmp_path, monkeypatch):
    path = tmp_path / "dhcpd.leases"
    path.write_bytes((DHCP / "isc-dhcpd-4.2.8-pfsense.leases").read_bytes())
    monkeypatch.setattr(imports, "_stderr_is_terminal", lambda: True)
    result = cli("import", "leases", str(path), "--format", "isc")
    assert result.stdout == f"{path}: 2 stored, 0 updated, 0 rejected\n"
    seen: list[tuple[int, int]] = []
    report = leasefile.import_file(
        engine,
        path,
        "isc",
        now=T0,
        progress=lambda done, total: seen.append((done, total)),
        chunk_size=256,
    )
    size = path.stat().st_size
    assert report.bytes_read == size and seen[-1] == (size, size) and len(seen) > 1
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
