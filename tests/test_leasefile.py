"""connectors.leasefile: real lease files in tmp_path, appended, rewritten and rotated, on both engines."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from connectors import leasefile
from connectors.leasefile import poll
from facility.errors import StoreError
from facility.settings import DhcpSource
from facility.store import db
from facility.store.models import DEFAULT_SITE, Rejection, SourcePosition, WifiLease
from tests.conftest import T0

MAC_A, MAC_B, MAC_C = "aa:bb:cc:00:00:0a", "aa:bb:cc:00:00:0b", "aa:bb:cc:00:00:0c"
KEA4_HEADER = (
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,"
    "user_context\n"
)


def isc_time(at: datetime) -> str:
    return at.strftime("%w %Y/%m/%d %H:%M:%S")


def isc_block(ip: str, mac: str | None, starts: datetime, ends: datetime, **extra: str) -> str:
    lines = [f"lease {ip} {{", f"  starts {isc_time(starts)};", f"  ends {isc_time(ends)};"]
    lines.append(f"  cltt {isc_time(starts)};")
    lines.append(f"  binding state {extra.get('state', 'active')};")
    if mac:
        lines.append(f"  hardware ethernet {mac};")
    if "host" in extra:
        lines.append(f'  client-hostname "{extra["host"]}";')
    return "\n".join([*lines, "}", ""])


def kea_row(ip: str, mac: str, expire: datetime, lifetime: int = 3600, host: str = "", state=0):
    return f"{ip},{mac},,{lifetime},{int(expire.timestamp())},1,0,0,{host},{state},\n"


def dnsmasq_line(expiry: datetime | None, mac: str, ip: str, host: str = "*") -> str:
    return f"{int(expiry.timestamp()) if expiry else 0} {mac} {ip} {host} *\n"


def source(path: Path, fmt: str) -> DhcpSource:
    return DhcpSource(format=fmt, path=path)


def append(path: Path, text: str | bytes) -> None:
    with path.open("ab") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)


def rewrite_in_place(path: Path, text: str, *, mtime: datetime) -> None:
    """What dnsmasq does: truncate the same inode and write it again."""
    with path.open("r+b") as handle:
        handle.truncate(0)
        handle.write(text.encode())
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))


def leases(engine) -> dict[str, WifiLease]:
    with db.session_scope(engine) as session:
        rows = session.exec(select(WifiLease).order_by(WifiLease.id)).all()
    by_ip: dict[str, WifiLease] = {}
    for row in rows:
        assert row.ip not in by_ip, f"two leases for {row.ip}: duplicates"
        by_ip[row.ip] = row
    return by_ip


def snapshot(engine) -> dict[str, tuple]:
    return {
        ip: (row.mac, row.hostname, row.starts, row.ends, row.last_seen, row.closed_at)
        for ip, row in leases(engine).items()
    }


def rejections(engine) -> list[Rejection]:
    with db.session_scope(engine) as session:
        return list(session.exec(select(Rejection).order_by(Rejection.id)).all())


def position(engine, path: Path) -> SourcePosition | None:
    with db.session_scope(engine) as session:
        return session.get(SourcePosition, (DEFAULT_SITE, str(path)))


def counts(report) -> tuple[int, int, int]:
    return report.stored, report.updated, report.rejected


# --- ISC dhcpd ---------------------------------------------------------------------------------


def test_isc_appended_blocks_renewals_and_releases(engine, tmp_path):
    path = tmp_path / "dhcpd.leases"
    path.write_text(
        "# written by isc-dhcp-4.4.3\n"
        + isc_block("10.0.0.5", MAC_A, T0, T0 + timedelta(hours=1), host="laptop")
    )
    first = poll(engine, source(path, "isc"), now=T0)
    assert (counts(first), first.bytes_read, first.restarted) == (
        (1, 0, 0),
        path.stat().st_size,
        False,
    )
    lease = leases(engine)["10.0.0.5"]
    assert (lease.source, lease.mac, lease.hostname) == (str(path), MAC_A, "laptop")
    assert (lease.starts, lease.ends, lease.last_seen, lease.closed_at) == (
        T0,
        T0 + timedelta(hours=1),
        T0,
        None,
    )

    nothing = poll(engine, source(path, "isc"), now=T0 + timedelta(seconds=30))
    assert (counts(nothing), nothing.bytes_read) == ((0, 0, 0), 0)

    renewal = isc_block("10.0.0.5", MAC_A, T0 + timedelta(minutes=30), T0 + timedelta(minutes=90))
    newcomer = isc_block("10.0.0.6", MAC_B, T0 + timedelta(minutes=31), T0 + timedelta(hours=2))
    append(path, renewal + newcomer)
    second = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=32))
    assert (counts(second), second.bytes_read) == ((1, 1, 0), len(renewal + newcomer))
    stored = leases(engine)
    assert (stored["10.0.0.5"].starts, stored["10.0.0.5"].ends) == (T0, T0 + timedelta(minutes=90))
    assert stored["10.0.0.5"].last_seen == T0 + timedelta(minutes=30)
    assert stored["10.0.0.5"].hostname == "laptop"  # the renewal named no host: the name stays
    assert (stored["10.0.0.6"].mac, stored["10.0.0.6"].ends) == (MAC_B, T0 + timedelta(hours=2))

    release = isc_block(
        "10.0.0.5", MAC_A, T0 + timedelta(minutes=30), T0 + timedelta(minutes=45), state="free"
    )
    append(path, release)
    third = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=46))
    assert counts(third) == (0, 1, 0)
    released = leases(engine)["10.0.0.5"]
    # The release closes the lease and starts its clock; `ends` keeps the scheduled end.
    assert released.closed_at == T0 + timedelta(minutes=45)
    assert released.ends == T0 + timedelta(minutes=90)

    # A rubout names no client: with nothing earlier for that address in the same read it is
    # skipped (see the module docstring), neither stored nor rejected, and changes nothing.
    append(path, "lease 10.0.0.6 {\n  deleted;\n}\n")
    fourth = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=47))
    assert counts(fourth) == (0, 0, 0) and fourth.bytes_read > 0
    assert leases(engine)["10.0.0.6"].closed_at is None
    assert rejections(engine) == []


def test_isc_half_written_block_waits_for_the_next_poll(engine, tmp_path):
    path = tmp_path / "dhcpd.leases"
    whole = isc_block("10.0.0.5", MAC_A, T0, T0 + timedelta(hours=1))
    second = isc_block("10.0.0.6", MAC_B, T0, T0 + timedelta(hours=1), host="phone")
    cut = second.index("hardware") + 12  # mid-statement, as a reader can catch dhcpd
    path.write_text(whole + second[:cut])
    report = poll(engine, source(path, "isc"), now=T0)
    assert (counts(report), report.bytes_read) == ((1, 0, 0), len(whole))
    assert position(engine, path).offset == len(whole)
    append(path, second[cut:])
    report = poll(engine, source(path, "isc"), now=T0 + timedelta(seconds=30))
    assert (counts(report), report.bytes_read) == ((1, 0, 0), len(second))
    assert leases(engine)["10.0.0.6"].hostname == "phone"
    assert rejections(engine) == []


def test_isc_rewrite_and_rename_reads_the_old_tail_then_the_new_file(engine, tmp_path):
    path = tmp_path / "dhcpd.leases"
    a = isc_block("10.0.0.5", MAC_A, T0, T0 + timedelta(hours=1))
    path.write_text(a)
    poll(engine, source(path, "isc"), now=T0)
    # Appended after our last read, then dhcpd rewrites: new file, old one kept as `~`.
    b = isc_block("10.0.0.6", MAC_B, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10))
    append(path, b)
    c = isc_block("10.0.0.7", MAC_C, T0 + timedelta(minutes=6), T0 + timedelta(hours=1))
    fresh = tmp_path / "dhcpd.leases.1780000000"
    fresh.write_text("# rewritten\n" + a + c)  # b expired meanwhile: dhcpd no longer lists it
    os.link(path, tmp_path / "dhcpd.leases~")
    os.rename(fresh, path)
    report = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=20))
    assert report.restarted and counts(report) == (2, 0, 0)  # b from the tail of `~`, then c
    stored = leases(engine)
    assert set(stored) == {"10.0.0.5", "10.0.0.6", "10.0.0.7"}
    assert (stored["10.0.0.6"].mac, stored["10.0.0.6"].ends) == (MAC_B, T0 + timedelta(minutes=10))
    assert position(engine, path).inode == path.stat().st_ino
    again = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=21))
    assert (counts(again), again.restarted, again.bytes_read) == ((0, 0, 0), False, 0)


def test_isc_file_replaced_in_place_is_read_from_the_start(engine, tmp_path):
    path = tmp_path / "dhcpd.leases"
    path.write_text(isc_block("10.0.0.5", MAC_A, T0, T0 + timedelta(hours=1)))
    poll(engine, source(path, "isc"), now=T0)
    # Same inode, longer than before, different bytes before the old offset (a copytruncate).
    other = isc_block("10.0.0.9", MAC_C, T0, T0 + timedelta(hours=3), host="printer-with-a-name")
    with path.open("r+b") as handle:
        handle.truncate(0)
        handle.write((other + isc_block("10.0.0.5", MAC_A, T0, T0 + timedelta(hours=1))).encode())
    report = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=1))
    assert report.restarted and counts(report) == (1, 0, 0)
    assert set(leases(engine)) == {"10.0.0.5", "10.0.0.9"}
    path.write_text("")  # truncated below the offset
    report = poll(engine, source(path, "isc"), now=T0 + timedelta(minutes=2))
    assert report.restarted and counts(report) == (0, 0, 0)
    assert position(engine, path).offset == 0
    assert set(leases(engine)) == {"10.0.0.5", "10.0.0.9"}  # nothing is dropped for it


# --- dnsmasq -----------------------------------------------------------------------------------


def test_dnsmasq_rewrites_in_place_store_each_lease_once(engine, tmp_path):
    path = tmp_path / "dnsmasq.leases"
    read1, read2, read3 = T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)
    ends_a = T0 + timedelta(hours=1)
    path.write_text(
        dnsmasq_line(ends_a, MAC_A, "192.168.1.5", "laptop")
        + dnsmasq_line(None, MAC_B, "192.168.1.6")  # expiry 0: never ends
    )
    os.utime(path, (read1.timestamp() - 60, read1.timestamp() - 60))
    first = poll(engine, source(path, "dnsmasq"), now=read1)
    assert counts(first) == (2, 0, 0)
    stored = leases(engine)
    a, b = stored["192.168.1.5"], stored["192.168.1.6"]
    assert (a.mac, a.hostname, a.starts, a.ends, a.last_seen) == (
        MAC_A,
        "laptop",
        read1,
        ends_a,
        None,
    )
    assert (b.starts, b.ends, b.last_seen, b.retain_from) == (read1, None, None, None)

    # dnsmasq renews a and rewrites the whole file in place; b's line is unchanged.
    renewed = ends_a + timedelta(hours=1)
    rewrite_in_place(
        path,
        dnsmasq_line(None, MAC_B, "192.168.1.6")
        + dnsmasq_line(renewed, MAC_A, "192.168.1.5", "laptop"),
        mtime=read2 - timedelta(minutes=1),
    )
    second = poll(engine, source(path, "dnsmasq"), now=read2)
    assert counts(second) == (0, 1, 0)  # the renewal merged into a; b was not handed over again
    stored = snapshot(engine)
    # The core counts a renewal as the server reporting the device; dnsmasq's renewal is known
    # when the file is read, and never later than the lease's end, so the clock is the end's.
    # Reading the file again is not a sighting: last_seen stays unknown.
    assert stored["192.168.1.5"] == (MAC_A, "laptop", read1, renewed, None, None)
    assert stored["192.168.1.6"] == (MAC_B, None, read1, None, None, None)  # not a sighting

    # Caught mid-rewrite: empty, then the same content again. Nothing lost, nothing repeated.
    rewrite_in_place(path, "", mtime=read3 - timedelta(seconds=30))
    empty = poll(engine, source(path, "dnsmasq"), now=read3)
    assert (counts(empty), empty.restarted) == ((0, 0, 0), True)
    rewrite_in_place(
        path,
        dnsmasq_line(None, MAC_B, "192.168.1.6")
        + dnsmasq_line(renewed, MAC_A, "192.168.1.5", "laptop"),
        mtime=read3 - timedelta(seconds=20),
    )
    back = poll(engine, source(path, "dnsmasq"), now=read3 + timedelta(seconds=30))
    assert counts(back) == (0, 0, 0)
    assert snapshot(engine) == stored


def test_dnsmasq_bad_line_is_rejected_once_across_rewrites(engine, tmp_path):
    path = tmp_path / "dnsmasq.leases"
    good = dnsmasq_line(T0 + timedelta(hours=1), MAC_A, "192.168.1.5")
    bad = "1780000000 not-a-mac 192.168.1.7 * *\n"
    path.write_text(good + bad)
    os.utime(path, (T0.timestamp() - 60,) * 2)
    assert counts(poll(engine, source(path, "dnsmasq"), now=T0)) == (1, 0, 1)
    later = T0 + timedelta(minutes=5)
    rewrite_in_place(
        path,
        bad + good + dnsmasq_line(None, MAC_C, "192.168.1.8"),
        mtime=later - timedelta(seconds=30),
    )
    assert counts(poll(engine, source(path, "dnsmasq"), now=later)) == (1, 0, 0)
    [rejection] = rejections(engine)
    assert (rejection.source, rejection.raw) == (str(path), bad.strip())
    assert "not a MAC" in rejection.reason


def test_dnsmasq_unchanged_file_is_not_read_unless_its_mtime_was_too_recent(engine, tmp_path):
    path = tmp_path / "dnsmasq.leases"
    path.write_text(dnsmasq_line(T0 + timedelta(hours=1), MAC_A, "192.168.1.5"))
    os.utime(path, (T0.timestamp(),) * 2)  # written in the very second we read it: racy
    assert poll(engine, source(path, "dnsmasq"), now=T0).bytes_read > 0
    state = json.loads(position(engine, path).header)
    assert state["mtime_ns"] is None and len(state["seen"]) == 1
    again = poll(engine, source(path, "dnsmasq"), now=T0 + timedelta(seconds=30))
    assert again.bytes_read > 0 and counts(again) == (0, 0, 0)  # read again; nothing new in it
    quiet = poll(engine, source(path, "dnsmasq"), now=T0 + timedelta(seconds=60))
    assert quiet.bytes_read == 0  # now the mtime is old enough to trust


def test_dnsmasq_forgets_a_line_only_after_several_reads_without_it(engine, tmp_path):
    path = tmp_path / "dnsmasq.leases"
    a = dnsmasq_line(T0 + timedelta(hours=1), MAC_A, "192.168.1.5")
    b = dnsmasq_line(None, MAC_B, "192.168.1.6")
    c = dnsmasq_line(None, MAC_C, "192.168.1.7")
    lines = {"a": a, "b": b, "c": c}
    digest = {name: leasefile._digest(line.encode().rstrip(b"\n")) for name, line in lines.items()}
    path.write_text("")
    remembered = []
    for minute, content in enumerate([a, b, b + c, c, c + a]):
        now = T0 + timedelta(minutes=minute)
        rewrite_in_place(path, content, mtime=now - timedelta(seconds=30))
        poll(engine, source(path, "dnsmasq"), now=now)
        seen = json.loads(position(engine, path).header)["seen"]
        remembered.append({name: seen.get(value) for name, value in digest.items()})
    assert remembered == [
        {"a": 0, "b": None, "c": None},
        {"a": 1, "b": 0, "c": None},
        {"a": 2, "b": 0, "c": 0},
        {"a": None, "b": 1, "c": 0},  # missing from three reads: forgotten
        {"a": 0, "b": 2, "c": 0},
    ]
    # a came back after it was forgotten: handed over again, and merged into its lease.
    assert set(leases(engine)) == {"192.168.1.5", "192.168.1.6", "192.168.1.7"}


# --- Kea ---------------------------------------------------------------------------------------


def test_kea_appended_rows_use_the_remembered_header(engine, tmp_path):
    path = tmp_path / "kea-leases4.csv"
    path.write_text(KEA4_HEADER + kea_row("10.1.0.5", MAC_A, T0 + timedelta(hours=1), host="a"))
    assert counts(poll(engine, source(path, "kea"), now=T0)) == (1, 0, 0)
    assert json.loads(position(engine, path).header)["header"] == KEA4_HEADER.strip()
    row = kea_row("10.1.0.6", MAC_B, T0 + timedelta(hours=2), lifetime=7200, host="b&#x2cc")
    append(path, row)
    report = poll(engine, source(path, "kea"), now=T0 + timedelta(minutes=1))
    assert (counts(report), report.bytes_read) == ((1, 0, 0), len(row))
    lease = leases(engine)["10.1.0.6"]
    assert (lease.mac, lease.hostname, lease.starts, lease.ends) == (
        MAC_B,
        "b,c",
        T0,
        T0 + timedelta(hours=2),
    )
    release = kea_row("10.1.0.5", MAC_A, T0 + timedelta(minutes=2), lifetime=0, state=0)
    append(path, release)  # valid_lifetime 0: deleted
    assert counts(poll(engine, source(path, "kea"), now=T0 + timedelta(minutes=3))) == (0, 1, 0)
    assert leases(engine)["10.1.0.5"].closed_at == T0 + timedelta(minutes=2)


def test_kea_cleanup_rotation_follows_the_renamed_file_and_reads_only_the_configured_path(
    engine, tmp_path
):
    path = tmp_path / "kea-leases4.csv"
    path.write_text(KEA4_HEADER + kea_row("10.1.0.5", MAC_A, T0 + timedelta(hours=1)))
    poll(engine, source(path, "kea"), now=T0)
    late = kea_row("10.1.0.6", MAC_B, T0 + timedelta(hours=1))
    append(path, late)  # written after our read, just before the cleanup started
    # kea-lfc: the live file becomes .2, a new one starts; .1/.output/.completed are its copies.
    os.rename(path, tmp_path / "kea-leases4.csv.2")
    path.write_text(KEA4_HEADER + kea_row("10.1.0.7", MAC_C, T0 + timedelta(hours=1)))
    copies = KEA4_HEADER + kea_row("10.1.0.99", "aa:bb:cc:00:00:99", T0 + timedelta(hours=1))
    for suffix in (".1", ".output", ".completed"):
        (tmp_path / f"kea-leases4.csv{suffix}").write_text(copies)
    report = poll(engine, source(path, "kea"), now=T0 + timedelta(minutes=1))
    assert report.restarted and counts(report) == (2, 0, 0)
    assert set(leases(engine)) == {"10.1.0.5", "10.1.0.6", "10.1.0.7"}
    # After kea-lfc finished, .2 is gone: the next rotation just starts the new file.
    (tmp_path / "kea-leases4.csv.2").unlink()
    os.rename(path, tmp_path / "old")
    path.write_text(KEA4_HEADER + kea_row("10.1.0.8", MAC_A, T0 + timedelta(hours=1)))
    report = poll(engine, source(path, "kea"), now=T0 + timedelta(minutes=2))
    assert report.restarted and counts(report) == (1, 0, 0)
    assert "10.1.0.99" not in leases(engine)


# --- crashes, chunks and outages ---------------------------------------------------------------


def test_a_fresh_engine_after_a_crash_reads_nothing_twice(db_url, engine, tmp_path, monkeypatch):
    path = tmp_path / "dhcpd.leases"
    blocks = [
        isc_block(
            f"10.0.{i // 200}.{i % 200 + 1}",
            f"aa:bb:cc:00:{i // 256:02x}:{i % 256:02x}",
            T0,
            T0 + timedelta(hours=1),
        )
        for i in range(300)
    ]
    path.write_text("".join(blocks))
    real = leasefile.ingest.store_leases
    calls = {"n": 0}

    def crash_on_third(session, batch, intake):
        calls["n"] += 1
        if calls["n"] == 3:
            raise StoreError("the power went out")
        return real(session, batch, intake)

    monkeypatch.setattr(leasefile.ingest, "store_leases", crash_on_third)
    with pytest.raises(StoreError):
        poll(engine, source(path, "isc"), now=T0, chunk_size=4096)
    done = position(engine, path).offset
    assert 0 < done < path.stat().st_size
    assert len(leases(engine)) == sum(1 for _ in blocks if _ in path.read_text()[:done])
    monkeypatch.setattr(leasefile.ingest, "store_leases", real)
    before = len(leases(engine))
    fresh = db.make_engine(db_url)  # a new process: nothing in memory survives
    try:
        report = poll(fresh, source(path, "isc"), now=T0 + timedelta(seconds=30), chunk_size=4096)
    finally:
        fresh.dispose()
    assert report.bytes_read == path.stat().st_size - done
    assert (report.stored, report.updated) == (300 - before, 0)
    stored = leases(engine)
    assert len(stored) == 300
    assert stored["10.0.1.100"].mac == "aa:bb:cc:00:01:2b"  # block 299
    assert position(engine, path).offset == path.stat().st_size


def test_large_files_are_read_in_bounded_chunks(engine, tmp_path, monkeypatch):
    path = tmp_path / "kea-leases4.csv"
    rows = [
        kea_row(
            f"10.2.{i // 250}.{i % 250 + 1}",
            f"aa:bb:cc:01:{i // 256:02x}:{i % 256:02x}",
            T0 + timedelta(hours=1),
        )
        for i in range(2000)
    ]
    path.write_text(KEA4_HEADER + "".join(rows))
    sizes: list[int] = []
    real_pread = os.pread

    def spy(fd, size, offset):
        sizes.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(leasefile.os, "pread", spy)
    report = poll(engine, source(path, "kea"), now=T0, chunk_size=8192)
    assert (counts(report), report.bytes_read) == ((2000, 0, 0), path.stat().st_size)
    assert (
        max(sizes) == 8192 and len([s for s in sizes if s == 8192]) >= path.stat().st_size // 8192
    )
    assert leases(engine)["10.2.7.250"].mac == "aa:bb:cc:01:07:cf"  # row 1999


def test_an_entry_longer_than_a_chunk_is_rejected_and_skipped(engine, tmp_path):
    path = tmp_path / "dnsmasq.leases"
    monster = "1780000000 " + "x" * 600 + " 192.168.1.9 * *\n"
    path.write_text(monster + dnsmasq_line(T0 + timedelta(hours=1), MAC_A, "192.168.1.5"))
    os.utime(path, (T0.timestamp() - 60,) * 2)
    report = poll(engine, source(path, "dnsmasq"), now=T0, chunk_size=256)
    assert report.stored == 1 and report.rejected >= 1
    assert "longer than 256 bytes" in rejections(engine)[0].reason
    assert set(leases(engine)) == {"192.168.1.5"}


def test_missing_or_unreadable_file_is_reported_and_logged_once(engine, tmp_path, caplog):
    path = tmp_path / "absent.leases"
    caplog.set_level(logging.INFO, logger="facility.leases")
    first = poll(engine, source(path, "isc"), now=T0)
    second = poll(engine, source(path, "isc"), now=T0 + timedelta(seconds=30))
    assert first.error == second.error == f"{path} does not exist"
    assert [r.message for r in caplog.records].count(
        f"lease file {path} does not exist; will try again at the next poll"
    ) == 1
    assert position(engine, path) is None
    path.mkdir()
    assert "not a regular file" in poll(engine, source(path, "isc"), now=T0).error
    path.rmdir()
    path.write_text(isc_block("10.0.0.5", MAC_A, T0, T0 + timedelta(hours=1)))
    assert counts(poll(engine, source(path, "isc"), now=T0)) == (1, 0, 0)
    assert f"lease file {path} is readable again" in caplog.text


def test_nul_bytes_and_control_characters_never_stop_a_file(engine, tmp_path):
    path = tmp_path / "kea-leases4.csv"
    path.write_bytes(
        KEA4_HEADER.encode()
        + b"10.1.0.5,aa:bb:cc:00:00:0a,,3600,1780000000,1,0,0,na&#x00me,0,\n"
        + b"10.1.\x00.6,zz,,3600,1780000000,1,0,0,,0,\n"
    )
    report = poll(engine, source(path, "kea"), now=T0)
    assert counts(report) == (1, 0, 1)
    assert leases(engine)["10.1.0.5"].hostname == "na\ufffdme"
    assert "\\x00" in rejections(engine)[0].raw
