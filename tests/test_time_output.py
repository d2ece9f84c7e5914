"""Times as programs and people read them: one machine form in JSON and CSV, site time in messages.

Scripts parse DESIGN.md's stable outputs, so every instant in every JSON or CSV output, API answer
and JSON log line is UTC written one way (`facility.timefmt.utc_text`): `2026-11-25T08:30:00Z`,
with `.ffffff` before the `Z` when the stored instant has microseconds. The tests below run every
command that offers JSON or CSV and every API route on a store holding every kind of record, and
fail on any value that looks like a time written otherwise (`+00:00`, a space for the `T`, a local
offset or zone). Messages and tables name site time without microseconds (`timefmt.site_text`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from facility.accounts import users
from facility.settings import Settings
from facility.timefmt import hold_status, site_midnight, site_text, utc_text
from facility.web import create_app
from scheduler.logs import JsonFormatter
from tests.factories import cli_commands
from tests.webserver import PASSWORD

MACHINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
# Anything a reader would take for a date and time, in any spelling this project ever wrote.
TIME_LIKE = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?\s?(Z|UTC|GMT|[+-]\d\d(:?\d\d)?|[A-Z]{3,5})?"
)
HUMAN = r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? [A-Z]{3,5}"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The outputs that name no instant at all (a count, a hash, names and roles).
TIMELESS = {"audit verify", "doctor", "user list", "export verify"}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """Cheap argon2 parameters: these tests are about times, not the hash's cost."""
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024))


def _checked(value: Any, where: str) -> int:
    """Assert every time-like string in `value` is in the machine form; how many there were."""
    if isinstance(value, dict):
        return sum(_checked(v, f"{where}.{k}") for k, v in value.items())
    if isinstance(value, list):
        return sum(_checked(v, f"{where}[{i}]") for i, v in enumerate(value))
    if not isinstance(value, str):
        return 0
    if value[:1] in "{[":  # JSON inside a CSV cell: the audit trail's details
        try:
            return _checked(json.loads(value), where)
        except ValueError:
            return 0
    if TIME_LIKE.fullmatch(value.strip()):
        assert MACHINE.fullmatch(value), (
            f"{where}: {value!r} is not UTC written as {MACHINE.pattern}"
        )
        return 1
    return 0


def _csv_checked(text: str, where: str) -> int:
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) > 1, f"{where}: no rows\n{text}"
    return sum(_checked(cell, f"{where} row {i}") for i, row in enumerate(rows) for cell in row)


def _seed(cli, config: Path, tmp_path: Path) -> None:
    """Every kind of record, with instants to the microsecond (the clock's) and whole ones (typed)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    run = lambda *args, **kw: cli(*args, config=config, **kw)  # noqa: E731
    run("visitor", "sign-in", "Ada Lovelace", "--company", "ACME", "--badge", "B1")
    run("badge", "issue", "B2", "--visit", "1")
    run("door", "event", "--door", "lobby", "--badge", "B1")
    run(
        "visitor",
        "sign-in",
        "Old Visitor",
        "--at",
        utc_text(now - 5 * DAY),
        "--badge",
        "B9",
        "--yes",
    )
    run("visitor", "sign-out", "--name", "Old Visitor", "--at", utc_text(now - 4 * DAY))
    leases = tmp_path / "dnsmasq.leases"
    expires = int((now + DAY).timestamp())
    leases.write_text(f"{expires} 3c:22:fb:01:02:03 10.0.0.7 laptop *\nnot a lease line\n")
    run("import", "leases", str(leases), "--format", "dnsmasq")
    run("wifi", "block", "3c:22:fb:0a:0b:0c", "--reason", "rogue access point")
    run("wifi", "ignore", "3c:22:fb:0d:0e:0f", "--reason", "objection REQ-2")
    run(
        "request", "open", "access", "--name", "Old Visitor", "--received", utc_text(now - DAY),
        "--contact", "old.visitor@example.org",
    )  # fmt: skip
    run(
        "subject", "restrict", "--mac", "3c:22:fb:01:02:03", "--reason", "REQ-1 contests the leases"
    )
    window = (
        "--from",
        utc_text(now - DAY + timedelta(microseconds=123456)),
        "--to",
        utc_text(now + DAY),
    )
    review = ("--review-by", utc_text(now - HOUR))
    run(
        "hold", "place", "INC-1", "--reason", "theft", *window, *review, "--visitor", "Ada Lovelace"
    )
    run("hold", "extend", "INC-1", "--to", utc_text(now + 2 * DAY))
    run("hold", "place", "INC-2", "--reason", "drill", *window, "--door", "lobby")
    run("hold", "release", "INC-2", "--reason", "drill over")
    run("muster", "start")
    run("muster", "mark", "Ada Lovelace", "safe")
    segment = now - 2 * HOUR
    path = tmp_path / "recordings" / f"{segment:%Y-%m-%d/%H}/dock/{segment:%M.%S}.mp4"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    stamp = (segment + timedelta(seconds=10)).timestamp()
    os.utime(path, (stamp, stamp))
    run("host", "add", "Bob Smith", "--email", "bob@example.org")
    run("visitor", "expect", "Grace Hopper", "--host", "Bob Smith", "--on", "today")
    run("expected", "arrive", "1")
    run("kiosk", "add", "lobby")
    run("user", "add", "rita", "--role", "reception", input=f"{PASSWORD}\n")
    run("user", "add", "sam", "--role", "security", input=f"{PASSWORD}\n")
    run("user", "add", "pia", "--role", "privacy", input=f"{PASSWORD}\n")


def _app(url: str):
    """The web app on the test's database, on the real clock like the CLI."""
    return create_app(Settings(database_url=url), clock=lambda: datetime.now(UTC))


def _basic(app, name: str) -> TestClient:
    """A client of the JSON API with HTTP Basic credentials (no session)."""
    client = TestClient(app, base_url="https://testserver")
    client.auth = (name, PASSWORD)
    return client


def _offers_machine_output(command) -> bool:
    for option in command.params:
        if "--json" in option.opts:
            return True
        if "--format" in option.opts and re.search(r"\b(json|csv)\b", option.help or ""):
            return True
    return False


def test_every_json_and_csv_output_writes_utc_one_way(cli, tmp_path):
    from facility.cli import app

    config = cli.config(f'[camera]\nroot = "{tmp_path / "recordings"}"\n')
    _seed(cli, config, tmp_path)
    package = tmp_path / "export"
    cli("hold", "export", "INC-1", "--output", str(package), config=config)
    calls = {
        "onsite": ["--format", "json"],
        "hold list": ["--all", "--format", "json"],
        "hold show": ["INC-1", "--format", "json"],
        "hold records": ["INC-1", "--format", "json"],
        "export list": ["--all", "--format", "json"],
        "export verify": [str(package), "--format", "json"],
        "muster status": ["--format", "json"],
        "policy show": ["--format", "json"],
        "policy ceiling show": ["--format", "json"],
        "site list": ["--format", "json"],
        "site show": ["main", "--format", "json"],
        "wifi blocked": ["--format", "json"],
        "rejections list": ["--format", "json"],
        "audit show": ["--format", "json"],
        "audit verify": ["--format", "json"],
        "subject export": ["--name", "Ada Lovelace", "--format", "json"],
        "camera scan": ["--format", "json"],
        "purge": ["--dry-run", "--list", "--format", "json"],
        "report": ["--format", "json"],
        "doctor": ["--format", "json"],
        "user list": ["--json"],
        "user sessions": ["--json"],
        "request list": ["--format", "json"],
        "subject restricted": ["--format", "json"],
        "wifi ignored": ["--format", "json"],
        "register": ["--format", "json"],
        "visitor list": ["--format", "json"],
        "expected list": ["--format", "json"],
        "host list": ["--format", "json"],
        "kiosk list": ["--format", "json"],
    }
    csv_calls = {
        "onsite": ["--format", "csv"],
        "hold list": ["--all", "--format", "csv"],
        "hold records": ["INC-1", "--format", "csv"],
        "export list": ["--all", "--format", "csv"],
        "wifi blocked": ["--format", "csv"],
        "rejections list": ["--format", "csv"],
        "audit show": ["--format", "csv"],
        "subject export": ["--name", "Ada Lovelace", "--format", "csv"],
        "request list": ["--format", "csv"],
        "subject restricted": ["--format", "csv"],
        "wifi ignored": ["--format", "csv"],
        "visitor list": ["--format", "csv"],
        "expected list": ["--format", "csv"],
        "host list": ["--format", "csv"],
        "kiosk list": ["--format", "csv"],
    }
    offered = {
        " ".join(path) for path, command in cli_commands() if _offers_machine_output(command)
    }
    assert offered == set(calls), "a command offers JSON or CSV that this test does not run"
    # A web session, so that `user sessions` has one to show.
    web = TestClient(_app(cli.url), base_url="https://testserver")
    assert web.post("/api/session", json={"name": "rita", "password": PASSWORD}).status_code == 200
    seen: dict[str, int] = {}
    for name, args in calls.items():
        result = cli.runner.invoke(
            app, ["--config", str(config), "--db", cli.url, *name.split(), *args]
        )
        assert result.exit_code in (0, 1), f"{name}: exit {result.exit_code}\n{result.output}"
        seen[name] = _checked(json.loads(result.stdout), f"{name} {' '.join(args)}")
    ran = json.loads(cli("purge", "--format", "json", config=config).stdout)  # a run, not a dry one
    seen["purge run"] = _checked(ran, "purge --format json")
    for name, args in csv_calls.items():
        out = cli(*name.split(), *args, config=config).stdout
        seen[f"{name} csv"] = _csv_checked(out, f"{name} {' '.join(args)}")
    empty = sorted(k for k, n in seen.items() if not n and k not in TIMELESS)
    assert not empty, f"outputs that showed no time at all (is the store seeded?): {empty}"


def test_the_readme_gives_the_shape_of_every_json_output():

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Times, and the JSON and CSV outputs", 1)[1].split("\n## ", 1)[0]
    missing = [
        " ".join(path)
        for path, command in cli_commands()
        if _offers_machine_output(command) and f"`{' '.join(path)} " not in section
    ]
    assert not missing, f"README: no JSON shape for {missing}"


def test_every_api_answer_writes_utc_one_way(cli, tmp_path):
    config = cli.config(f'[camera]\nroot = "{tmp_path / "recordings"}"\n')
    _seed(cli, config, tmp_path)
    app = _app(cli.url)
    desk, guard, officer = (_basic(app, name) for name in ("rita", "sam", "pia"))
    now = datetime.now(UTC)
    answers = {
        "POST /api/visits": desk.post("/api/visits", json={"name": "Web Visitor", "badge": "W1"}),
        "POST /api/badges": desk.post("/api/badges", json={"badge": "W2", "visit_id": 1}),
        "POST /api/badges/{badge}/return": desk.post("/api/badges/W2/return", json={}),
        "GET /api/visits/today": desk.get("/api/visits/today"),
        "GET /api/onsite": guard.get("/api/onsite"),
        "GET /api/musters": guard.get("/api/musters"),
        "GET /api/musters/{muster_id}": guard.get("/api/musters/1"),
        "POST /api/musters/{muster_id}/entries/{entry_id}": guard.post(
            "/api/musters/1/entries/1", json={"status": "missing"}
        ),
        "POST /api/musters/{muster_id}/close": guard.post("/api/musters/1/close", json={}),
        "POST /api/musters": guard.post("/api/musters", json={}),
        "POST /api/holds": guard.post(
            "/api/holds",
            json={
                "case": "INC-3",
                "reason": "web",
                "from": utc_text(now - DAY),
                "to": utc_text(now),
                "scopes": [{"kind": "door_events", "selector": "lobby"}],
            },
        ),
        "POST /api/holds/{case}/extend": guard.post(
            "/api/holds/INC-3/extend", json={"to": utc_text(now + DAY)}
        ),
        "GET /api/holds": guard.get("/api/holds", params={"all": True}),
        "GET /api/holds/{case}": guard.get("/api/holds/INC-1"),
        "GET /api/holds/{case}/records": guard.get("/api/holds/INC-1/records"),
        "POST /api/holds/{case}/release": guard.post(
            "/api/holds/INC-3/release", json={"reason": "done"}
        ),
        "GET /api/report": officer.get("/api/report"),
        "POST /api/visits/{visit_id}/sign-out": desk.post("/api/visits/1/sign-out", json={}),
    }
    for route, response in answers.items():
        assert response.status_code in (200, 201), f"{route}: {response.text}"
        assert _checked(response.json(), route), f"{route} showed no time"
    routes = {
        f"{method.upper()} {re.sub(r':path}', '}', path)}"
        for path, item in app.openapi()["paths"].items()
        for method in item
    }
    session_routes = {"POST /api/session", "DELETE /api/session", "GET /api/me"}
    assert routes - session_routes == set(answers), "an API route this test does not call"


def test_the_daemons_json_log_writes_utc_one_way():
    record = logging.LogRecord("facility.daemon", logging.INFO, __file__, 1, "done", (), None)
    record.fields = {
        "event": "job.done",
        "since": datetime(2026, 6, 1, 11, 0, tzinfo=ZoneInfo("Europe/Amsterdam")),
    }
    line = json.loads(JsonFormatter().format(record))
    assert MACHINE.fullmatch(line["time"]), line
    assert line["since"] == "2026-06-01T09:00:00Z"


# --- messages and tables: site time, no microseconds ----------------------------------------------


def test_a_refused_time_is_named_in_site_time_without_microseconds(cli):
    config = cli.config('timezone = "America/New_York"\n')
    now = datetime.now(UTC)
    tomorrow = (
        (now + DAY)
        .astimezone(ZoneInfo("America/New_York"))
        .replace(hour=9, minute=0, second=0, microsecond=0, tzinfo=None)
    )
    future = cli(
        "visitor", "sign-in", "Ada", "--at", tomorrow.isoformat(), code=2, config=config
    ).stderr
    assert re.search(
        rf"--at: {tomorrow:%Y-%m-%d} 09:00 E[SD]T is in the future \(now is {HUMAN}\)", future
    ), future
    door = cli(
        *("door", "event", "--door", "lobby", "--badge", "B1", "--at", tomorrow.isoformat()),
        code=2,
        config=config,
    ).stderr
    assert re.search(rf"{tomorrow:%Y-%m-%d} 09:00 E[SD]T is in the future", door), door
    signed_in = now - 2 * HOUR + timedelta(microseconds=654321)
    cli("visitor", "sign-in", "Ada", "--at", utc_text(signed_in), "--badge", "B1", config=config)
    early = utc_text(signed_in - HOUR)
    before = [
        cli("visitor", "sign-out", "1", "--at", early, code=2, config=config).stderr,
        cli("badge", "issue", "B2", "--visit", "1", "--at", early, code=2, config=config).stderr,
        cli("badge", "return", "B1", "--at", early, code=2, config=config).stderr,
    ]
    site = ZoneInfo("America/New_York")
    typed, stored = site_text(signed_in - HOUR, site), site_text(signed_in, site)
    assert re.fullmatch(HUMAN, stored) and stored.endswith(("EST", "EDT")), stored
    for message in before:
        assert f"--at: {typed} is before" in message and stored in message, message
    for message in [future, door, *before]:
        assert not re.search(r"\d\d:\d\d:\d\d\.\d|[+-]\d\d:\d\d|\dT\d", message), message


def test_a_hold_status_reads_the_same_in_the_list_the_report_and_the_page(cli, tmp_path):
    cli("user", "add", "sam", "--role", "security", input=f"{PASSWORD}\n")
    window = ("--from", "2026-01-01T10:00", "--to", "2026-01-02T10:00")
    cli("hold", "place", "INC-1", "--reason", "r", "--kind", "visits", *window)
    cli("hold", "release", "INC-1", "--reason", "closed")
    shown = json.loads(cli("hold", "show", "INC-1", "--format", "json").stdout)
    released = datetime.fromisoformat(shown["released_at"])
    zone = ZoneInfo("Europe/Amsterdam")
    until = released + Settings().holds.release_grace
    expected = hold_status(released, until, now=datetime.now(UTC), site_zone=zone)
    assert expected.startswith("released, protects until ") and re.search(HUMAN + "$", expected)
    assert expected in cli("hold", "list").stdout
    assert expected in cli("report", "--format", "md").stdout
    browser = TestClient(_app(cli.url), base_url="https://testserver")
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text).group(1)
    browser.post("/login", data={"csrf_token": token, "name": "sam", "password": PASSWORD})
    assert expected in browser.get("/holds").text


# --- the forms themselves --------------------------------------------------------------------------

ZONES = sorted(available_timezones() - {"Factory", "localtime"})
INSTANTS = st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@given(INSTANTS)
def test_the_machine_form_is_the_stored_instant_exactly(instant):
    text = utc_text(instant)
    assert MACHINE.fullmatch(text), text
    assert datetime.fromisoformat(text) == instant
    assert utc_text(instant.replace(tzinfo=None)) == text  # SQLite hands back naive UTC


@given(INSTANTS, st.sampled_from(ZONES))
def test_the_human_form_is_site_wall_time_without_microseconds(instant, name):
    zone = ZoneInfo(name)
    text = site_text(instant, zone)
    local = instant.astimezone(zone)
    wall = local.replace(tzinfo=None, microsecond=0)
    shown, abbreviation = text.rsplit(" ", 1)
    assert abbreviation == local.tzname()
    assert datetime.fromisoformat(shown) == (wall if wall.second else wall.replace(second=0))
    assert "." not in shown


@given(INSTANTS, st.sampled_from(ZONES))
def test_local_midnight_is_the_first_instant_of_the_sites_day(instant, name):
    zone = ZoneInfo(name)
    start = site_midnight(instant, zone)
    assert start.tzinfo is UTC and start <= instant
    assert start.astimezone(zone).date() == instant.astimezone(zone).date()
    assert (start - timedelta(microseconds=1)).astimezone(zone).date() < start.astimezone(
        zone
    ).date()
