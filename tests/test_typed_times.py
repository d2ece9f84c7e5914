"""Times people type: `09:00` is today, DST gaps and repeats refused with both readings, years that
overflow refused by field, a mistyped year refused unless confirmed, `--since 7d` wherever help
offers it, and times in messages shown in site time without microseconds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from facility.errors import InputError
from facility.store import db
from facility.timeutil import typed_instant, typed_since
from tests.factories import cli_commands

# Two neighbours that share the EU rule, and two southern-hemisphere zones (Lord Howe moves its
# clocks by half an hour).
ZONES = ("Europe/Amsterdam", "Europe/Brussels", "Australia/Sydney", "Australia/Lord_Howe")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _transitions(name: str) -> list[datetime]:
    """The UTC instants at which `name` changes its offset, 2024 to 2030, found by scanning."""
    zone, found = ZoneInfo(name), []
    step, at = timedelta(minutes=30), datetime(2024, 1, 1, tzinfo=UTC)
    while at.year < 2031:
        if (at + step).astimezone(zone).utcoffset() != at.astimezone(zone).utcoffset():
            found.append(at + step)
        at += step
    return found


TRANSITIONS = [(name, t) for name in ZONES for t in _transitions(name)]


def _instants_showing(wall: datetime, zone: ZoneInfo, offsets: set[timedelta]) -> set[datetime]:
    """Every instant whose wall time in `zone` is `wall`: the oracle, by trying each offset."""
    candidates = {(wall - offset).replace(tzinfo=UTC) for offset in offsets}
    return {c for c in candidates if c.astimezone(zone).replace(tzinfo=None) == wall}


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(TRANSITIONS),
    st.integers(min_value=-150 * 60, max_value=150 * 60),
    st.booleans(),
)
def test_wall_times_around_dst_changes_round_trip_or_are_refused_with_both_readings(
    transition, seconds, with_seconds
):
    name, change = transition
    zone = ZoneInfo(name)
    before = (change - timedelta(seconds=1)).astimezone(zone)
    offsets = {before.utcoffset(), change.astimezone(zone).utcoffset()}
    wall = before.replace(tzinfo=None) + timedelta(seconds=seconds + 1)
    if not with_seconds:
        wall = wall.replace(second=0)
    typed = wall.isoformat(timespec="seconds")
    meanings = _instants_showing(wall, zone, offsets)
    if len(meanings) == 1:
        (expected,) = meanings
        assert typed_instant(typed, zone, now=NOW, what="--at") == expected
        return
    with pytest.raises(InputError) as refused:
        typed_instant(typed, zone, now=NOW, what="--at")
    message = str(refused.value)
    assert message.startswith("--at: ")
    assert ("happens twice" if meanings else "does not exist") in message
    # Both readings, as site times with their offsets: each can be typed back and means itself.
    readings = meanings if meanings else {(wall - offset).replace(tzinfo=UTC) for offset in offsets}
    spec = "minutes" if wall.second == 0 else "seconds"
    for instant in readings:
        shown = instant.astimezone(zone).isoformat(timespec=spec)
        assert shown in message
        assert typed_instant(shown, zone, now=NOW) == instant


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)),
)
def test_every_wall_time_that_exists_once_round_trips(name, wall):
    zone = ZoneInfo(name)
    wall = wall.replace(fold=0)
    readings = {wall.replace(tzinfo=zone, fold=f).utcoffset() for f in (0, 1)}
    if len(_instants_showing(wall, zone, readings)) != 1:
        return  # a gap or a repeat: the test above
    parsed = typed_instant(wall.isoformat(), zone, now=NOW)
    assert parsed.tzinfo is UTC
    assert parsed.astimezone(zone).replace(tzinfo=None) == wall


@pytest.mark.parametrize(
    "typed",
    [
        "0001-01-01T00:00",  # east of Greenwich: before the year 1 in UTC
        "0001-01-01T00:30+01:00",
        "9999-12-31T14:00-10:00",  # after 9999 in UTC
        "9999-12-31T23:30Z",  # fine in UTC, but past 9999 in site time
    ],
)
def test_years_at_the_edge_of_the_calendar_are_input_errors_naming_the_field(typed):
    with pytest.raises(InputError, match=r"^--review-by: .* outside the range"):
        typed_instant(typed, ZoneInfo("Europe/Amsterdam"), now=NOW, what="--review-by")


def test_since_reads_durations_back_from_now_and_times():
    zone = ZoneInfo("Europe/Amsterdam")
    assert typed_since("7d", zone, now=NOW) == NOW - timedelta(days=7)
    assert typed_since("P1DT2H", zone, now=NOW) == NOW - timedelta(days=1, hours=2)
    assert typed_since("2026-05-01", zone, now=NOW) == datetime(2026, 4, 30, 22, tzinfo=UTC)
    assert typed_since("09:00", zone, now=NOW) == datetime(2026, 6, 1, 7, tzinfo=UTC)
    with pytest.raises(InputError, match=r"--since: 'last week' .* or a duration"):
        typed_since("last week", zone, now=NOW)
    with pytest.raises(InputError, match="--since"):
        typed_since("9999999999d", zone, now=NOW)


# --- at the CLI ----------------------------------------------------------------------------------


def _visits(url: str) -> list[tuple[str, datetime]]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, signed_in_at FROM visits ORDER BY id")).all()
    engine.dispose()
    return [(name, _aware(at)) for name, at in rows]


def _aware(value) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _daytime_zone() -> ZoneInfo:
    """A zone where it is day now, no DST change near: `--at 06:00` is then earlier today."""
    for name in ("Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "America/Los_Angeles"):
        local = datetime.now(UTC).astimezone(ZoneInfo(name))
        if 8 <= local.hour < 22:
            return ZoneInfo(name)
    return ZoneInfo("Asia/Kolkata")  # some zone above is always in daytime; never reached


def test_a_time_of_day_alone_is_today_in_site_time(cli):
    zone = _daytime_zone()
    config = cli.config(f'timezone = "{zone.key}"\n')
    cli("visitor", "sign-in", "Ada", "--at", "06:00", config=config)
    today = datetime.now(UTC).astimezone(zone).date()
    expected = datetime(today.year, today.month, today.day, 6, 0, tzinfo=zone).astimezone(UTC)
    assert _visits(cli.url) == [("Ada", expected)]


@pytest.mark.parametrize(
    ("typed", "readings"),
    [
        ("2026-03-29T02:30", ("2026-03-29T01:30+01:00", "2026-03-29T03:30+02:00")),
        ("2026-10-25T02:30", ("2026-10-25T02:30+02:00", "2026-10-25T02:30+01:00")),
    ],
)
def test_a_dst_gap_or_repeat_at_the_cli_is_refused_with_both_readings(cli, typed, readings):
    result = cli("visitor", "sign-in", "Ada", "--at", typed, "--yes", code=2)
    assert all(reading in result.stderr for reading in readings), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _visits(cli.url) == []
    # Either reading, typed back, is taken as it is.
    cli("visitor", "sign-in", "Ada", "--at", readings[1], "--yes")
    assert _visits(cli.url) == [("Ada", datetime.fromisoformat(readings[1]).astimezone(UTC))]


PLACE = ["hold", "place", "C-1", "--reason", "r", "--kind", "visits"]
WINDOW = ["--from", "2026-01-01T00:00", "--to", "2026-01-02T00:00"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["visitor", "sign-in", "Ada", "--at", "0001-01-01T00:00", "--yes"], "--at"),
        (["door", "event", "--door", "d", "--badge", "b", "--at", "0001-01-01T00:00"], "--at"),
        (
            [*PLACE, "--from", "0001-01-01T00:00", "--to", "2026-01-01T00:00"],
            "--from",
        ),
        (
            [*PLACE, *WINDOW, "--review-by", "9999-12-31T14:00-10:00"],
            "--review-by",
        ),
        (["audit", "show", "--since", "9999-12-31T23:30Z"], "--since"),
    ],
)
def test_calendar_edge_years_are_one_line_exit_2_naming_the_field(cli, args, field):
    result = cli(*args, code=2)
    assert result.stderr.startswith(f"facility: {field}: "), result.stderr
    assert "Traceback" not in result.output and "Overflow" not in result.output


def test_a_mistyped_year_is_refused_unless_confirmed(cli):
    result = cli("visitor", "sign-in", "Ada", "--at", "2020-01-01T09:00", code=2)
    assert "2020-01-01 09:00 CET" in result.stderr  # site time, as typed
    assert "limits.max_visit = 1d" in result.stderr and "--yes" in result.stderr
    assert _visits(cli.url) == []
    cli("visitor", "sign-in", "Ada", "--at", "2020-01-01T09:00", "--yes")
    assert _visits(cli.url) == [("Ada", datetime(2020, 1, 1, 8, 0, tzinfo=UTC))]
    # Lending a badge that long ago would mark it lost at once: asked about too.
    issue = ["badge", "issue", "B1", "--visit", "1", "--at", "2020-01-01T10:00"]
    assert "limits.max_badge_out" in cli(*issue, code=2).stderr
    cli(*issue, "--yes")


def test_a_receptionist_at_a_terminal_is_asked(cli, monkeypatch):
    monkeypatch.setattr("facility.cli.reception._interactive", lambda: True)
    declined = cli("visitor", "sign-in", "Ada", "--at", "2020-01-01T09:00", input="n\n", code=2)
    assert "Record it anyway?" in declined.stdout and "nothing was recorded" in declined.stderr
    assert _visits(cli.url) == []
    cli("visitor", "sign-in", "Ada", "--at", "2020-01-01T09:00", input="y\n")
    assert len(_visits(cli.url)) == 1


def test_a_recent_time_needs_no_confirmation(cli):
    recent = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    cli("visitor", "sign-in", "Ada", "--at", recent)
    assert len(_visits(cli.url)) == 1


def test_since_takes_a_duration_wherever_help_offers_it(cli):
    from facility.cli import app

    root = typer.main.get_command(app)
    offered = [
        (path, option)
        for path, command in cli_commands(root)
        for option in command.params
        if "--since" in option.opts
    ]
    assert offered, "no command has --since"
    for path, option in offered:
        assert "7d" in (option.help or ""), f"{' '.join(path)} --since: help shows no duration"
        result = cli.runner.invoke(app, ["--db", cli.url, *path, "--since", "7d"])
        assert result.exit_code in (0, 1), f"{' '.join(path)} --since 7d: {result.output}"
        assert "--since" not in result.output


def test_times_in_messages_are_site_time_without_microseconds(cli):
    cli(
        "hold",
        *("place", "C-1", "--reason", "r", "--kind", "visits"),
        *("--from", "2026-01-01T10:00:00.123456Z", "--to", "2026-01-01T12:00:00Z"),
    )
    shrink = cli("hold", "extend", "C-1", "--to", "2026-01-01T11:00:00.5Z", code=2).stderr
    assert "2026-01-01 12:00 CET is before the hold's end 2026-01-01 13:00 CET" in shrink
    cli("muster", "start")
    again = cli("muster", "start", code=2).stderr
    assert re.search(r"is open since \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? CES?T;", again), again
    assert not any(mark in again + shrink for mark in ("+00:00", ".123456", ".5"))
    as_json = json.loads(cli("hold", "show", "C-1", "--format", "json").stdout)
    assert as_json["from"] == "2026-01-01T10:00:00.123456Z"  # machine output keeps it all


def test_the_hold_form_on_the_web_refuses_a_repeated_wall_time_too(db_url, engine, monkeypatch):
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from facility.accounts import users
    from tests.webapp import Clock, add_user, form_token, login, make_app, stored

    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024))
    add_user(engine, "sam", "security")
    browser = TestClient(make_app(db_url, engine, Clock(NOW)), base_url="https://testserver")
    login(browser, "sam")
    typed = {
        "csrf_token": form_token(browser.get("/holds").text),
        "case": "INC-7",
        "reason": "tailgating",
        "from": "2026-10-25T02:30",
        "to": "2026-10-25T04:00",
        "doors": "lobby",
    }
    refused = browser.post("/holds/place", data=typed)
    assert refused.status_code == 400
    assert "2026-10-25T02:30+02:00" in refused.text and "2026-10-25T02:30+01:00" in refused.text
    assert stored(engine)["holds"] == 0
