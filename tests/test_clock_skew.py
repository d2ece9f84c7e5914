"""Times from outside held to the clock: `limits.clock_skew`, far lease ends, when records are known.

Every source refuses an event time further ahead than `limits.clock_skew` with a reason: lease
files (ISC, Kea, dnsmasq) through `facility import leases`, the dnsmasq hook as dnsmasq runs it,
the web API and the CLI (MQTT: tests/test_source_claims.py). A lease end far ahead is stored as
no end and closed later by the silence limit; a running lease's clock starts when it ends. The
report fails on a clock that starts in the future, and an old record imported today is not
overdue before a purge interval has passed. An ISC block without `ends` is read as dhcpd does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, text

from connectors.dhcp import parse_isc
from facility.cli.context import AppContext
from facility.retention import limits, purge
from facility.settings import Limits, Settings
from facility.store import db
from facility.store.models import DoorEvent, ExpectedVisit, Rejection, Visit, WifiLease
from facility.web import create_app
from tests.conftest import T0, database_at
from tests.daemons import hook
from tests.webapp import SECRET, Clock, add_user, api_client

pytestmark = pytest.mark.usefixtures("fast_hashes")

D = timedelta(days=1)
MIN = timedelta(minutes=1)
FAR = datetime(2099, 6, 4, 10, tzinfo=UTC)
NEVER_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def isc_time(value: datetime) -> str:
    return value.strftime("0 %Y/%m/%d %H:%M:%S")  # dhcpd writes the weekday; nobody reads it


def leases(engine) -> dict[str, WifiLease]:
    with db.session_scope(engine) as session:
        return {row.ip: row for row in session.execute(select(WifiLease)).scalars()}


def reasons(engine) -> list[str]:
    with db.session_scope(engine) as session:
        return list(session.execute(select(Rejection.reason).order_by(Rejection.id)).scalars())


# --- lease files ---------------------------------------------------------------------------------


def test_lease_files_refuse_future_starts_and_read_far_ends_as_open(cli, engine, tmp_path):
    started = now() - timedelta(hours=1)
    isc = tmp_path / "dhcpd.leases"
    isc.write_text(
        "lease 10.0.0.1 {\n"
        f"  starts {isc_time(FAR)};\n  ends {isc_time(FAR + timedelta(hours=1))};\n"
        "  hardware ethernet aa:bb:cc:00:00:01;\n}\n"
        "lease 10.0.0.2 {\n"
        f"  starts {isc_time(started)};\n  ends 5 9999/12/31 23:59:59;\n"
        f"  cltt {isc_time(started)};\n  hardware ethernet aa:bb:cc:00:00:02;\n}}\n"
    )
    kea = tmp_path / "kea-leases4.csv"
    header = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname"
    expire = int(FAR.timestamp())
    almost_never = 4294967294  # a lifetime one short of Kea's "infinite": ~136 years
    kea.write_text(
        f"{header},state,user_context\n"
        f"10.0.0.3,aa:bb:cc:00:00:03,,3600,{expire},1,0,0,,0,\n"
        f"10.0.0.5,aa:bb:cc:00:00:05,,{almost_never},{int(started.timestamp()) + almost_never}"
        ",1,0,0,,0,\n"
    )
    dnsmasq = tmp_path / "dnsmasq.leases"
    dnsmasq.write_text(f"{NEVER_EPOCH} aa:bb:cc:00:00:04 10.0.0.4 phone *\n")

    assert (
        "1 stored, 0 updated, 1 rejected"
        in cli("import", "leases", str(isc), "--format", "isc").output
    )
    assert (
        "1 stored, 0 updated, 1 rejected"
        in cli("import", "leases", str(kea), "--format", "kea").output
    )
    cli("import", "leases", str(dnsmasq), "--format", "dnsmasq")

    refused = reasons(engine)
    assert refused[0].startswith("lease 10.0.0.1: lease start 2099-06-04 12:00 CEST is in")
    assert refused[1].startswith("lease 10.0.0.3: lease start 2099-06-04 ")
    assert all("in the future: more than limits.clock_skew (5m) after now" in r for r in refused)
    stored = leases(engine)
    assert sorted(stored) == ["10.0.0.2", "10.0.0.4", "10.0.0.5"]
    for ip in stored:  # stored as leases that name no end, closed by the silence limit
        assert stored[ip].ends is None and stored[ip].closed_at is None, ip
    assert stored["10.0.0.2"].retain_from == started  # open: its clock is the last sighting

    # Thirty days of silence later (limits.max_lease_silence), the limit closes every one.
    later = now() + 31 * D
    run = purge.run(engine, Settings(), now=later, actor="tests")
    assert run.limits["wifi"] == 3
    closed = leases(engine)
    assert closed["10.0.0.2"].closed_at == started + 30 * D
    assert closed["10.0.0.5"].closed_at == started + 30 * D
    assert all(row.closed_at <= later and row.retain_from <= later for row in closed.values())


def test_the_dnsmasq_hook_refuses_a_lease_that_starts_in_the_future(db_url, engine):
    far_expiry = str(int(FAR.timestamp()) + 3600)
    replay = hook(
        db_url,
        "old",
        "aa:bb:cc:00:00:07",
        "10.0.0.7",
        DNSMASQ_LEASE_EXPIRES=far_expiry,
        DNSMASQ_LEASE_LENGTH="3600",
    )
    assert replay.returncode == 0
    assert "rejected: lease start 2099-06-04 12:00 CEST" in replay.stderr
    assert "is in the future" in replay.stderr
    never = hook(
        db_url, "add", "aa:bb:cc:00:00:08", "10.0.0.8", DNSMASQ_LEASE_EXPIRES=str(NEVER_EPOCH)
    )
    assert (never.returncode, never.stderr) == (0, "")
    stored = leases(engine)
    assert list(stored) == ["10.0.0.8"] and stored["10.0.0.8"].ends is None
    with db.session_scope(engine) as session:
        (row,) = session.execute(select(Rejection)).scalars()
    assert row.source == "dnsmasq-hook" and "in the future" in row.reason


# --- the CLI and the web API ---------------------------------------------------------------------


def test_the_cli_holds_every_time_to_limits_clock_skew(cli, engine):
    config = cli.config('[limits]\nclock_skew = "1h"\n')
    soon, late = now() + timedelta(minutes=30), now() + timedelta(hours=2)
    cli(
        "door", "event", "--door", "lobby", "--badge", "B1", "--at", soon.isoformat(), config=config
    )
    cli("visitor", "sign-in", "Ada", "--at", soon.isoformat(), config=config)
    refused = cli(
        "door", "event", "--door", "lobby", "--badge", "B2", "--at", late.isoformat(),
        code=2, config=config,
    )  # fmt: skip
    assert "--at:" in refused.stderr and "is in the future" in refused.stderr
    refused = cli("visitor", "sign-in", "Grace", "--at", late.isoformat(), code=2, config=config)
    assert "is in the future" in refused.stderr
    # Without the setting (./facility.toml is read too) the default holds: five minutes.
    cli.config("")
    cli("door", "event", "--door", "lobby", "--badge", "B3", "--at", (now() + 3 * MIN).isoformat())
    cli("door", "event", "--door", "lobby", "--badge", "B4", "--at", soon.isoformat(), code=2)
    with db.session_scope(engine) as session:
        badges = sorted(session.execute(select(DoorEvent.badge)).scalars())
        visitors = list(session.execute(select(Visit.name)).scalars())
    assert (badges, visitors) == (["B1", "B3"], ["Ada"])


def test_the_api_holds_times_to_limits_clock_skew(db_url, engine):
    add_user(engine, "rita", "reception")
    settings = Settings(database_url=db_url, limits={"clock_skew": "1h"})
    app = create_app(settings, clock=Clock(T0), engine=engine, secret=SECRET)
    desk = api_client(app, "rita")
    soon = (T0 + 30 * MIN).isoformat()
    created = desk.post("/api/visits", json={"name": "Ada", "at": soon})
    assert created.status_code == 201, created.text
    late = desk.post("/api/visits", json={"name": "Grace", "at": (T0 + 2 * D).isoformat()})
    assert late.status_code == 400
    assert "is in the future" in late.text
    visit = created.json()["visit_id"]
    out = desk.post(f"/api/visits/{visit}/sign-out", json={"at": (T0 + 50 * MIN).isoformat()})
    assert out.status_code == 200, out.text
    with db.session_scope(engine) as session:
        assert list(session.execute(select(Visit.name)).scalars()) == ["Ada"]


# --- the report ----------------------------------------------------------------------------------


def test_the_report_fails_on_a_clock_that_starts_in_the_future_naming_it(cli, engine):
    # As an older version stored it from MQTT: a door event dated 2099.
    with db.session_scope(engine) as session:
        session.execute(
            insert(DoorEvent).values(
                event_id="far", door="lobby", badge="B17", at=FAR, retain_from=FAR
            )
        )
        (event_id,) = session.execute(select(DoorEvent.id)).scalars()
    result = cli("report", "--format", "json", code=1)
    body = json.loads(result.stdout)
    assert body["kinds"]["door_events"]["future_clock_ids"] == [event_id]
    expected = f"door_events: 1 record(s) whose clock starts in the future (ids {event_id})"
    assert expected in body["failures"] and expected in result.stderr


def test_a_visitor_expected_within_the_year_is_no_clock_in_the_future_one_beyond_it_is(cli, engine):
    # An expected visit's clock is its day's end: ahead by design, as far as a year.
    within_a_year = (now() + 300 * D).date().isoformat()
    for on in ("tomorrow", within_a_year):
        cli("visitor", "expect", "Ada Lovelace", "--host", "Bob", "--on", on)
    body = json.loads(cli("report", "--format", "json").stdout)
    assert body["ok"] is True and body["kinds"]["expected"]["future_clock"] == 0
    # A row no command would make (as a database edited by hand): its clock is past the year.
    beyond = now() + 400 * D
    with db.session_scope(engine) as session:
        row = ExpectedVisit(
            name="Far",
            name_key="far",
            expected_on=beyond.date(),
            created_at=now(),
            created_by="x",
            retain_from=beyond,
        )
        session.add(row)
        session.flush()
        far_id = row.id
    body = json.loads(cli("report", "--format", "json", code=1).stdout)
    assert body["kinds"]["expected"]["future_clock_ids"] == [far_id]


def test_an_imported_old_lease_is_overdue_only_once_known_for_a_purge_interval(
    cli, engine, tmp_path, monkeypatch
):
    ended = now() - 400 * D  # wifi is kept 365 days
    kea = tmp_path / "old-leases.csv"
    kea.write_text(
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname\n"
        f"10.0.0.9,aa:bb:cc:00:00:09,,3600,{int(ended.timestamp())},1,0,0,old\n"
    )
    cli("import", "leases", str(kea), "--format", "kea")
    fresh = json.loads(cli("report", "--format", "json").stdout)
    assert fresh["ok"] is True
    assert fresh["kinds"]["wifi"]["overdue_unheld"] == 0
    assert fresh["kinds"]["wifi"]["awaiting_purge"] == 1
    # One purge interval (15 min) after it became known, it is overdue like any other record.
    later = now() + 16 * MIN
    monkeypatch.setattr(AppContext, "now", lambda self: later)
    (lease_id,) = [row.id for row in leases(engine).values()]
    stale = json.loads(cli("report", "--format", "json", code=1).stdout)
    assert stale["kinds"]["wifi"]["overdue_unheld_ids"] == [lease_id]
    assert "wifi: 1 record(s) overdue and not held" in stale["failures"]


# --- ISC dhcpd without `ends` --------------------------------------------------------------------

# A free lease as dhcpd writes it when it has no end to keep (the shape of python-isc-dhcp-leases'
# `static.leases`): no `ends` statement at all.
FREE_WITHOUT_ENDS = b"""lease 10.0.0.15 {
  starts 4 2015/09/10 00:29:00;
  tstp 4 2015/09/10 00:28:44;
  tsfp 4 2015/09/10 00:29:00;
  atsfp 4 2015/09/10 00:29:00;
  binding state free;
  hardware ethernet 2a:b2:2a:b2:2a:b2;
  uid "\\001\\000!\\314\\006\\224\\351";
}
lease 10.0.0.16 {
  starts 4 2015/09/10 00:30:00;
  cltt 4 2015/09/10 00:31:00;
  hardware ethernet 2a:b2:2a:b2:2a:b3;
}
"""


def test_an_isc_block_without_ends_is_a_lease_that_is_over(cli, engine, tmp_path):
    result = parse_isc(FREE_WITHOUT_ENDS, source="dhcpd.leases")
    assert result.rejects == []
    free, unstated = sorted(result.leases, key=lambda lease: lease.ip)
    assert (free.ip, free.mac, free.released, free.ends) == (
        "10.0.0.15",
        "2a:b2:2a:b2:2a:b2",
        True,
        None,
    )
    assert free.starts == datetime(2015, 9, 10, 0, 29, tzinfo=UTC)
    # No binding state either: dhcpd makes it free, since its end (time 0) has passed.
    assert (unstated.released, unstated.ends) == (True, None)
    path = tmp_path / "dhcpd.leases"
    path.write_bytes(FREE_WITHOUT_ENDS)
    cli("import", "leases", str(path), "--format", "isc")
    stored = leases(engine)
    # Released when it was last heard of: its last transaction, or else its start.
    assert stored["10.0.0.15"].closed_at == datetime(2015, 9, 10, 0, 29, tzinfo=UTC)
    assert stored["10.0.0.16"].closed_at == datetime(2015, 9, 10, 0, 31, tzinfo=UTC)
    assert all(row.retain_from == row.closed_at for row in stored.values())


# --- clocks of leases that are still running -----------------------------------------------------


def test_a_running_lease_gets_its_clock_when_it_ends_and_far_ends_are_closed(engine):
    ends = T0 + timedelta(hours=8)
    with db.session_scope(engine) as session:
        session.execute(
            insert(WifiLease),
            [
                # Stored while running: no clock yet.
                dict(source="s", mac="aa:bb:cc:00:00:01", ip="10.0.0.1", starts=T0, ends=ends,
                     last_seen=T0),
                # As an older version stored a far end: no clock, and an end it never reaches.
                dict(source="s", mac="aa:bb:cc:00:00:02", ip="10.0.0.2", starts=T0,
                     ends=datetime(9999, 12, 31, tzinfo=UTC), last_seen=T0),
            ],
        )  # fmt: skip
    with db.session_scope(engine) as session:
        limits.apply(session, Limits(), now=ends - MIN, actor="tests")
    assert {ip: row.retain_from for ip, row in leases(engine).items()} == {
        "10.0.0.1": None,
        "10.0.0.2": None,
    }
    with db.session_scope(engine) as session:
        counts = limits.apply(session, Limits(), now=ends, actor="tests")
    assert counts["wifi"] == 0  # a clock that starts is not an auto-close
    assert leases(engine)["10.0.0.1"].retain_from == ends
    with db.session_scope(engine) as session:
        counts = limits.apply(session, Limits(), now=T0 + 30 * D, actor="tests")
    far = leases(engine)["10.0.0.2"]
    assert counts["wifi"] == 1 and far.closed_at == T0 + 30 * D and far.retain_from == T0


def test_the_migration_clears_lease_clocks_that_start_in_the_future(tmp_path):
    url = next(database_at("sqlite", tmp_path, "0001"))
    engine = db.make_engine(url)
    try:
        soon = now() + timedelta(hours=1)
        with engine.connect() as conn, conn.begin():
            for ip, clock in (("10.0.0.1", soon), ("10.0.0.2", T0)):
                conn.execute(
                    text(
                        "INSERT INTO wifi_leases (source, mac, ip, starts, ends, retain_from)"
                        " VALUES ('s', 'aa:bb:cc:00:00:01', :ip, :t0, :clock, :clock)"
                    ),
                    {"ip": ip, "t0": _text(T0 - D), "clock": _text(clock)},
                )
        db.upgrade(engine)
        stored = leases(engine)
        assert stored["10.0.0.1"].retain_from is None and stored["10.0.0.1"].ends == soon
        assert stored["10.0.0.2"].retain_from == T0 and stored["10.0.0.2"].known_at is None
    finally:
        engine.dispose()


def _text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
