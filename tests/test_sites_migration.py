"""The migration to sites, on a database created and filled at the revision before it.

Every row of every table is put in the default site `main`, nothing is lost (counts, links between
loans and visits, roll-call entries, hold scopes), and the commands people use work unchanged
afterwards: on site, sign-out, holds, purge, report, subject export, the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from facility.retention import policies
from facility.settings import Retention
from facility.store import db
from facility.store.models import UTCDateTime
from facility.trail import audit
from tests.conftest import ENGINES, Cli, database_at
from tests.factories import NOW, T0, add_offices

pytestmark = pytest.mark.usefixtures("fixed_clock")

BEFORE = "0010_rights"  # the revision before sites
D, H = timedelta(days=1), timedelta(hours=1)
OPEN_IN = NOW - 2 * H
# The tables that gain a site, and what each holds after the fill below.
FILLED = {
    "visits": 3,
    "badge_loans": 2,
    "door_events": 3,
    "camera_segments": 2,
    "wifi_leases": 1,
    "musters": 1,
    "rejections": 1,
    "job_runs": 1,
    "source_positions": 1,
    "holds": 1,
    "expected_visits": 1,
    "camera_dirs": 1,
}


@pytest.fixture(params=ENGINES)
def old_url(request, tmp_path) -> Iterator[str]:
    """A database migrated to the revision before sites only."""
    yield from database_at(request.param, tmp_path, BEFORE)


def _table(name: str, *columns: str, times: tuple[str, ...] = ()) -> sa.TableClause:
    """The table as it was at the old revision: the columns the fill writes."""
    return sa.table(
        name,
        *(sa.column(c) for c in columns),
        *(sa.column(t, UTCDateTime()) for t in times),
    )


def fill(url: str) -> None:
    """Rows of every kind at the old revision, written as that schema takes them (ids from 1)."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        policies.seed(session, Retention(), now=T0, actor="tests")
        conn = session.connection()
        visits = _table(
            "visits",
            "name",
            "name_key",
            "closed_by",
            times=("signed_in_at", "signed_out_at", "retain_from"),
        )
        conn.execute(
            visits.insert(),
            [
                # Ada is on site; Bob left long ago (expired); Cy left an hour ago.
                {
                    "name": "Ada",
                    "name_key": "ada",
                    "signed_in_at": OPEN_IN,
                    "signed_out_at": None,
                    "retain_from": None,
                    "closed_by": None,
                },
                {
                    "name": "Bob",
                    "name_key": "bob",
                    "signed_in_at": T0,
                    "signed_out_at": T0 + H,
                    "retain_from": T0 + H,
                    "closed_by": "reception",
                },
                {
                    "name": "Cy",
                    "name_key": "cy",
                    "signed_in_at": NOW - 3 * H,
                    "signed_out_at": NOW - H,
                    "retain_from": NOW - H,
                    "closed_by": "reception",
                },
            ],
        )
        for row in ({"visit_id": 1, "badge": "B1"}, {"visit_id": 2, "badge": "B2"}):
            returned = None if row["visit_id"] == 1 else T0 + H
            conn.execute(
                _table(
                    "badge_loans",
                    "visit_id",
                    "badge",
                    "lost",
                    times=("issued_at", "returned_at", "retain_from"),
                ).insert(),
                {
                    **row,
                    "lost": False,
                    "issued_at": T0,
                    "returned_at": returned,
                    "retain_from": returned,
                },
            )
        events = _table(
            "door_events",
            "event_id",
            "door",
            "badge",
            "granted",
            "source",
            times=("at", "retain_from"),
        )
        for i, at in enumerate((T0, NOW - H, OPEN_IN + H)):
            conn.execute(
                events.insert(),
                {
                    "event_id": f"e{i}",
                    "door": "lobby",
                    "badge": "B1",
                    "granted": True,
                    "source": "mqtt",
                    "at": at,
                    "retain_from": at,
                },
            )
        segments = _table(
            "camera_segments", "camera", "path", times=("start", "end", "retain_from")
        )
        for i, start in enumerate((T0, NOW - H)):
            conn.execute(
                segments.insert(),
                {
                    "camera": "dock",
                    "path": f"dock/{i}.mp4",
                    "start": start,
                    "end": start + timedelta(minutes=1),
                    "retain_from": start + timedelta(minutes=1),
                },
            )
        conn.execute(
            _table(
                "wifi_leases", "source", "mac", "ip", times=("starts", "ends", "retain_from")
            ).insert(),
            {
                "source": "/leases",
                "mac": "3c:22:fb:01:02:03",
                "ip": "10.0.0.7",
                "starts": NOW - D,
                "ends": NOW - H,
                "retain_from": NOW - H,
            },
        )
        conn.execute(
            _table("musters", "started_by", times=("started_at",)).insert(),
            {"started_by": "tests", "started_at": NOW - 3 * H},
        )
        conn.execute(
            _table("muster_entries", "muster_id", "visit_id", "name", "status").insert(),
            [
                {"muster_id": 1, "visit_id": 1, "name": "Ada", "status": "safe"},
                {"muster_id": 1, "visit_id": 3, "name": "Cy", "status": "unknown"},
            ],
        )
        conn.execute(
            _table("rejections", "source", "reason", "raw", times=("at",)).insert(),
            {"source": "mqtt", "reason": "not JSON", "raw": "{", "at": NOW - H},
        )
        conn.execute(
            _table("job_runs", "job", times=("last_success",)).insert(),
            {"job": "purge", "last_success": NOW - H},
        )
        conn.execute(
            _table(
                "source_positions", "path", "inode", "size", "offset", times=("updated_at",)
            ).insert(),
            {"path": "/leases", "inode": 1, "size": 10, "offset": 10, "updated_at": NOW - H},
        )
        conn.execute(
            sa.table(
                "expected_visits",
                *(sa.column(c) for c in ("name", "name_key", "created_by")),
                sa.column("expected_on", sa.Date()),
                *(sa.column(t, UTCDateTime()) for t in ("created_at", "retain_from")),
            ).insert(),
            {
                "name": "Dee",
                "name_key": "dee",
                "created_by": "tests",
                "expected_on": (NOW - D).date(),  # yesterday's: its clock has started
                "created_at": NOW - D,
                "retain_from": NOW - H,
            },
        )
        conn.execute(
            _table("camera_dirs", "path", "stamp").insert(), {"path": "dock", "stamp": "1:1:1"}
        )
        conn.execute(
            _table(
                "holds",
                "case",
                "reason",
                "placed_by",
                times=("window_from", "window_to", "placed_at"),
            ).insert(),
            {
                "case": "INC-1",
                "reason": "break-in",
                "placed_by": "tests",
                "window_from": T0,
                "window_to": T0 + D,
                "placed_at": T0 + D,
            },
        )
        conn.execute(
            _table("hold_scopes", "hold_id", "kind", "selector").insert(),
            {"hold_id": 1, "kind": "camera", "selector": "dock"},
        )
        audit.append(session, now=T0, actor="tests", action="test.filled")
    engine.dispose()


def _rows(url: str, sql: str) -> list[tuple]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def test_every_row_lands_in_the_default_site_and_every_command_works(old_url, tmp_path):
    fill(old_url)
    cli = Cli(old_url, tmp_path)
    config = cli.config('timezone = "Europe/Brussels"\ncountry = "BE"\n')
    result = cli("init", config=config)
    assert f"{BEFORE} -> " in result.stdout

    for table, count in FILLED.items():
        assert _rows(old_url, f"SELECT site_id, count(*) FROM {table} GROUP BY site_id") == [
            (1, count)
        ], table
    assert _rows(old_url, "SELECT id, code, timezone, country FROM sites") == [
        (1, "main", "Europe/Brussels", "BE")
    ]
    # Nothing that points at a row was cut loose by the migration.
    assert _rows(old_url, "SELECT visit_id FROM badge_loans ORDER BY visit_id") == [(1,), (2,)]
    assert _rows(old_url, "SELECT visit_id, status FROM muster_entries ORDER BY id") == [
        (1, "safe"),
        (3, "unknown"),
    ]
    assert _rows(old_url, "SELECT kind, selector FROM hold_scopes") == [("camera", "dock")]

    # The commands work as before, with no site mentioned anywhere.
    onsite = json.loads(cli("onsite", "--format", "json").stdout)
    assert [p["name"] for p in onsite["people"]] == ["Ada"]
    assert onsite["people"][0]["badge"] == "B1" and onsite["people"][0]["last_door"] == "lobby"
    assert "INC-1" in cli("hold", "list", "--all").stdout
    cli("visitor", "sign-in", "Dee", "--badge", "B9")
    cli("visitor", "sign-out", "--name", "Ada")
    purged = json.loads(cli("purge", "--format", "json").stdout)
    assert purged["kinds"]["visits"]["deleted"] == 1  # Bob's, long expired
    export = json.loads(cli("subject", "export", "--name", "Cy").stdout)
    assert [v["name"] for v in export["records"]["visits"]] == ["Cy"]
    assert "main" in cli("site", "list").stdout
    assert '"ok": true' in cli("audit", "verify", "--format", "json").stdout
    cli("report", "--format", "json")
    # A second site can be added at once, and the first keeps its records.
    add_offices(cli)
    at_main = json.loads(cli("--site", "main", "onsite", "--format", "json").stdout)
    assert [p["name"] for p in at_main["people"]] == ["Dee"]
    at_bru = json.loads(cli("--site", "bru", "onsite", "--format", "json").stdout)
    assert at_bru["people"] == []


@pytest.fixture(params=ENGINES)
def hostless_url(request, tmp_path) -> Iterator[str]:
    """A database at sites, before the hosts directory was per site."""
    yield from database_at(request.param, tmp_path, "0011_sites")


def test_hosts_and_their_notifications_join_the_default_site(hostless_url, tmp_path):
    engine = db.make_engine(hostless_url)
    with engine.begin() as conn:
        conn.execute(
            _table(
                "hosts", "name", "name_key", "email", times=("added_at", "retain_from")
            ).insert(),
            {
                "name": "Bob Smith",
                "name_key": "bob smith",
                "email": "b@x.org",
                "added_at": T0,
                "retain_from": T0,
            },
        )
        columns = ("message_id", "host_id", "channel", "visitor", "visitor_key")
        conn.execute(
            _table(
                "host_notifications",
                *columns,
                "attempts",
                times=("signed_in_at", "next_attempt_at"),
            )
            .insert()
            .values(
                message_id="m-1",
                host_id=1,
                channel="email",
                visitor="Ada",
                visitor_key="ada",
                attempts=0,
                signed_in_at=T0,
                next_attempt_at=T0,
            )
        )
    engine.dispose()
    cli = Cli(hostless_url, tmp_path)
    assert "0011_sites -> " in cli("init").stdout
    assert _rows(hostless_url, "SELECT site_id, name FROM hosts") == [(1, "Bob Smith")]
    assert _rows(hostless_url, "SELECT site_id, host_id FROM host_notifications") == [(1, 1)]
    shown = json.loads(cli("host", "list", "--format", "json").stdout)
    assert [h["name"] for h in shown] == ["Bob Smith"]
    said = cli("visitor", "sign-in", "Cy", "--host", "bob smith")
    assert "Bob Smith will be told by e-mail" in said.stdout
