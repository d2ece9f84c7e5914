"""`facility wifi dnsmasq-hook`: the real console script, called the way dnsmasq calls it."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from facility.cli import app
from facility.store import db
from facility.store.models import AuditEntry, Rejection, WifiLease
from tests.daemons import hook
from tests.factories import stored

DUID_EN = "00:02:00:00:00:09:0c:c0:84:d3:03:00"  # names no MAC: dnsmasq adds DNSMASQ_MAC
EXPIRES = int(time.time()) + 86400  # dnsmasq's expiry: a day from when the tests run


def rejected(engine) -> list[Rejection]:
    with db.session_scope(engine) as session:
        return list(session.exec(select(Rejection)).all())


def test_add_old_del_as_dnsmasq_calls_them(db_url, engine):
    before = datetime.now(UTC)
    add = hook(
        db_url,
        "add",
        "AA:BB:CC:DD:EE:01",
        "192.168.1.20",
        "laptop",
        DNSMASQ_LEASE_EXPIRES=str(EXPIRES),
        DNSMASQ_TIME_REMAINING="3600",
        DNSMASQ_CLIENT_ID="01:aa:bb:cc:dd:ee:01",
        DNSMASQ_INTERFACE="br-lan",
    )
    after = datetime.now(UTC)
    assert (add.returncode, add.stdout, add.stderr) == (0, "", "")
    lease = stored(engine)["192.168.1.20"]
    assert (lease.source, lease.mac, lease.hostname, lease.client_id) == (
        "dnsmasq-hook",
        "aa:bb:cc:dd:ee:01",
        "laptop",
        "01:aa:bb:cc:dd:ee:01",
    )
    assert lease.ends == datetime.fromtimestamp(EXPIRES, UTC)
    assert before <= lease.starts == lease.last_seen <= after
    # The `old` replay at dnsmasq's start-up repeats the lease: it merges into the stored one.
    old = hook(
        db_url,
        "old",
        "aa:bb:cc:dd:ee:01",
        "192.168.1.20",
        "laptop",
        DNSMASQ_LEASE_EXPIRES=str(EXPIRES),
        DNSMASQ_DATA_MISSING="1",
    )
    assert old.returncode == 0 and len(stored(engine)) == 1
    replayed = stored(engine)["192.168.1.20"]
    assert (replayed.starts, replayed.ends, replayed.closed_at) == (lease.starts, lease.ends, None)
    gone = hook(db_url, "del", "aa:bb:cc:dd:ee:01", "192.168.1.20", "laptop")
    assert gone.returncode == 0
    released = stored(engine)["192.168.1.20"]
    assert after <= released.closed_at <= datetime.now(UTC)
    assert released.retain_from == released.closed_at
    assert rejected(engine) == []


def test_ipv6_takes_the_mac_from_dnsmasq_mac(db_url, engine):
    result = hook(
        db_url,
        "add",
        DUID_EN,
        "2001:db8::9",
        "phone",
        DNSMASQ_MAC="52:54:00:00:00:09",
        DNSMASQ_IAID="7",
        DNSMASQ_LEASE_EXPIRES="0",
    )
    assert result.returncode == 0, result.stderr
    lease = stored(engine)["2001:db8::9"]
    assert (lease.mac, lease.client_id, lease.hostname, lease.ends) == (
        "52:54:00:00:00:09",
        DUID_EN,
        "phone",
        None,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["init"],
        ["tftp", "4096", "192.168.1.20", "/srv/tftp/pxelinux.0"],
        ["arp-add", "aa:bb:cc:dd:ee:01", "192.168.1.20"],
        ["relay-snoop", "00:01:00:01", "2001:db8::1", "eth0"],
    ],
)
def test_other_actions_are_ignored_without_opening_the_database(tmp_path, argv):
    missing = f"sqlite:///{tmp_path / 'no' / 'such.db'}"
    result = hook(missing, *argv)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_bad_input_is_recorded_and_still_exits_0(db_url, engine):
    result = hook(db_url, "add", "nonsense", "192.168.1.20", "laptop")
    assert result.returncode == 0
    assert "rejected: 'nonsense' is not a MAC address" in result.stderr
    [rejection] = rejected(engine)
    assert (rejection.source, rejection.raw) == ("dnsmasq-hook", "add nonsense 192.168.1.20 laptop")
    assert stored(engine) == {}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_locked_database_makes_it_give_up_quickly_with_exit_0(db_url, engine):
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        started = time.monotonic()
        result = hook(
            db_url, "add", "aa:bb:cc:dd:ee:02", "192.168.1.21", DNSMASQ_LEASE_EXPIRES=str(EXPIRES)
        )
        elapsed = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
    assert result.returncode == 0
    assert "gave up after 3 attempts" in result.stderr and "database is locked" in result.stderr
    assert elapsed < 10, elapsed
    assert stored(engine) == {}  # the lease file, read by the poller, still has it


def test_an_unreachable_database_makes_it_give_up_with_exit_0(tmp_path):
    started = time.monotonic()
    result = hook(
        "postgresql+psycopg://facility@127.0.0.1:1/none", "add", "aa:bb:cc:dd:ee:03", "10.0.0.3"
    )
    assert result.returncode == 0 and time.monotonic() - started < 15
    assert "facility wifi dnsmasq-hook:" in result.stderr


def test_no_role_is_needed_and_no_refusal_is_audited(db_url, engine, tmp_path):
    config = tmp_path / "facility.toml"
    config.write_text('[roles]\nsecurity = ["nobody-here"]\nadmin = ["nobody-here"]\n')
    result = CliRunner().invoke(
        app,
        [
            "--config",
            str(config),
            "--db",
            db_url,
            "wifi",
            "dnsmasq-hook",
            "add",
            "aa:bb:cc:dd:ee:04",
            "10.0.0.4",
        ],
        env={"DNSMASQ_LEASE_EXPIRES": str(EXPIRES)},
    )
    assert result.exit_code == 0, result.output
    assert "10.0.0.4" in stored(engine)
    with db.session_scope(engine) as session:
        refusals = session.exec(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "refused")
        ).one()
    assert refusals == 0


# --- no call makes it fail or changes what is stored when it rejects ----------------------------

ACTIONS = st.sampled_from(
    ["add", "old", "del", "init", "tftp", "arp-add", "arp-del", "relay-snoop"]
)
MACS = st.sampled_from(["aa:bb:cc:dd:ee:05", "AA-BB-CC-DD-EE-06", "06-01:23:45:67:89:ab", DUID_EN])
IPS = st.sampled_from(["10.0.0.5", "10.0.0.6", "2001:db8::5", "300.1.1.1", "fe80::1%eth0"])
JUNK = st.text(max_size=20) | st.sampled_from(["\udcff", "--help", "-x", "--", "\x00", "*"])
ENV_NAMES = st.sampled_from(
    [
        "DNSMASQ_LEASE_EXPIRES",
        "DNSMASQ_LEASE_LENGTH",
        "DNSMASQ_TIME_REMAINING",
        "DNSMASQ_CLIENT_ID",
        "DNSMASQ_MAC",
        "DNSMASQ_DATA_MISSING",
        "DNSMASQ_INTERFACE",
    ]
)
# Calls shaped like dnsmasq's (ACTION MAC IP [HOSTNAME]) with near misses, and anything at all.
LEASE_ACTIONS = st.sampled_from(["add", "old", "del"])


def mostly(good, bad):
    """Three draws in four from `good`: most calls get far enough to be stored."""
    return st.integers(0, 3).flatmap(lambda pick: bad if pick == 0 else good)


PLAUSIBLE = st.tuples(
    mostly(LEASE_ACTIONS, ACTIONS | JUNK),
    mostly(MACS, JUNK),
    mostly(IPS, JUNK),
    st.lists(JUNK, max_size=1),
).map(lambda call: [call[0], call[1], call[2], *call[3]])
ARGV = mostly(PLAUSIBLE, st.lists(ACTIONS | MACS | IPS | JUNK, max_size=5))
ENV_VALUES = st.integers(0, 2**70).map(str) | st.sampled_from(["1", "x", "", "01:aa:bb"]) | JUNK
ENV = mostly(
    st.just({"DNSMASQ_LEASE_EXPIRES": str(EXPIRES), "DNSMASQ_MAC": "52:54:00:00:00:09"})
    | st.just({}),
    st.dictionaries(ENV_NAMES, ENV_VALUES, max_size=4),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(argv=ARGV, env=ENV)
def test_no_call_fails_or_changes_stored_leases_on_rejection(db_url, engine, argv, env):
    def snapshot():
        with db.session_scope(engine) as session:
            leases = session.exec(select(WifiLease).order_by(WifiLease.id)).all()
            count = session.exec(select(func.count()).select_from(Rejection)).one()
        return [(x.mac, x.ip, x.starts, x.ends, x.last_seen, x.closed_at) for x in leases], count

    leases_before, rejections_before = snapshot()
    environment = {name: value.replace("\x00", "") for name, value in env.items()}  # as execve
    result = CliRunner().invoke(
        app, ["--db", db_url, "wifi", "dnsmasq-hook", *argv], env=environment
    )
    assert result.exit_code == 0, result.output
    assert "not stored (" not in result.stderr  # no unexpected failure behind the exit 0
    leases_after, rejections_after = snapshot()
    if rejections_after != rejections_before or argv[:1] not in (["add"], ["old"], ["del"]):
        assert leases_after == leases_before
    changed = "stored" if leases_after != leases_before else "ignored or unchanged"
    event("rejected" if rejections_after != rejections_before else changed)
