"""Reception at the sign-in terminal: visitors, badges, door events, on site now, roles."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, text
from sqlmodel import select

from facility.errors import InputError
from facility.settings import Limits
from facility.sources import ingest
from facility.store import db
from facility.store.models import AuditEntry, BadgeLoan, DoorEvent, Visit
from facility.visitors import reception
from facility.visitors.onsite import on_site


def _counts(url: str) -> tuple[int, ...]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        counts = tuple(
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("visits", "badge_loans", "door_events")
        )
    engine.dispose()
    return counts


def _onsite(cli) -> dict:
    return json.loads(cli("onsite", "--format", "json").stdout)


def test_sign_in_badge_door_and_on_site(cli):
    cli(
        "visitor", "sign-in", "Ada Lovelace", "--company", "ACME", "--host", "Bob", "--badge", "B17"
    )
    cli("visitor", "sign-in", "Grace Hopper", "--at", "2020-01-01T09:00:00Z", "--yes")
    cli("door", "event", "--door", "lobby", "--badge", "B17", "--at", "2020-01-01T10:00:00Z")
    cli("door", "event", "--door", "lab-2", "--badge", "B17")
    listing = _onsite(cli)
    assert listing["count"] == 2
    grace, ada = listing["people"]  # oldest sign-in first
    assert grace["name"] == "Grace Hopper" and grace["signed_in_at"] == "2020-01-01T09:00:00Z"
    assert grace["badge"] is None and grace["last_door"] is None
    assert (ada["company"], ada["host"], ada["badge"]) == ("ACME", "Bob", "B17")
    # The 2020 press happened before Ada held the badge, so only the later one counts.
    assert ada["last_door"] == "lab-2"
    assert set(ada) == {
        "visit_id",
        "name",
        "company",
        "host",
        "signed_in_at",
        "badge",
        "last_door",
        "last_door_at",
        "badges",
    }


def test_sign_out_by_id_name_and_badge_returns_the_badge(cli):
    cli("visitor", "sign-in", "Ada", "--badge", "B1")
    cli("visitor", "sign-in", "Grace", "--badge", "B2")
    cli("visitor", "sign-in", "Linus", "--badge", "B3")
    cli("visitor", "sign-out", "1")
    cli("visitor", "sign-out", "--name", "GRACE")
    cli("visitor", "sign-out", "--badge", "B3")
    assert _onsite(cli)["count"] == 0
    cli(
        "visitor", "sign-in", "Ken", "--badge", "B1"
    )  # B1 came back with Ada, so it can go out again


def test_sign_out_with_badge_kept_leaves_the_loan_open(cli):
    cli("visitor", "sign-in", "Ada", "--badge", "B1")
    cli("visitor", "sign-out", "1", "--badge-kept")
    cli("visitor", "sign-in", "Grace")
    assert "already out" in cli("badge", "issue", "B1", "--visit", "2", code=2).stderr
    cli("badge", "return", "B1")
    cli("badge", "issue", "B1", "--visit", "2")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["visitor", "sign-out", "99"], "no visit 99"),
        (["visitor", "sign-out", "--name", "Nobody"], "nobody called 'Nobody'"),
        (["visitor", "sign-out", "--badge", "B404"], "badge B404 is not out"),
        (["visitor", "sign-out"], "exactly one of"),
        (["badge", "issue", "B1", "--visit", "1"], "already out with visit 1"),
        (["badge", "issue", "B9", "--visit", "42"], "no visit 42"),
        (["badge", "return", "B404"], "badge B404 is not out"),
        (["visitor", "sign-in", "X", "--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601"),
        (["visitor", "sign-in", "X", "--at", "2999-01-01T00:00"], "is in the future"),
        (["visitor", "sign-in", "   "], "needs a name"),
        (["visitor", "sign-out", "1", "--at", "2000-01-01T00:00Z"], "before the sign-in"),
        (
            ["door", "event", "--door", "d", "--badge", "b", "--at", "3000-01-01T00:00Z"],
            "in the future",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(cli, args, message):
    cli("visitor", "sign-in", "Ada", "--badge", "B1")
    before = _counts(cli.url)
    result = cli(*args, code=2)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _counts(cli.url) == before


@pytest.mark.parametrize("args", [["onsite", "--format", "xml"], ["visitor", "sign-out", "abc"]])
def test_bad_arguments_are_usage_errors(cli, args):
    assert cli(*args, code=2).exit_code == 2


def test_ambiguous_name_asks_for_the_id(cli):
    cli("visitor", "sign-in", "Jan de Vries")
    cli("visitor", "sign-in", "jan  de vries")
    result = cli("visitor", "sign-out", "--name", "Jan de Vries", code=2)
    assert "visit 1 Jan de Vries" in result.stderr and "visit 2 jan de vries" in result.stderr


def test_door_event_is_stored_once(cli):
    args = ["door", "event", "--door", "d1", "--badge", "B1", "--at", "2026-01-01T10:00Z"]
    assert "stored" in cli(*args).stdout
    assert "already stored" in cli(*args).stdout
    by_id = ["door", "event", "--door", "x", "--badge", "y", "--event-id", "E1"]
    assert "stored" in cli(*by_id).stdout
    assert "already stored" in cli(*by_id).stdout
    assert _counts(cli.url)[2] == 2


def test_onsite_csv_and_html(cli, tmp_path):
    cli(
        "visitor",
        "sign-in",
        "<script>alert(1)</script>",
        "--company",
        "Ünïcode & Co",
        "--badge",
        "B5",
    )
    rows = list(csv.DictReader(io.StringIO(cli("onsite", "--format", "csv").stdout)))
    assert rows[0]["name"] == "<script>alert(1)</script>" and rows[0]["badge"] == "B5"
    page = tmp_path / "onsite.html"
    cli("onsite", "--format", "html", "--output", str(page))
    html = page.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@page" in html and "A4" in html
    assert '<div class="count" id="count">1 person</div>' in html
    assert "http://" not in html and "https://" not in html  # self-contained


def test_onsite_shows_every_badge_a_visitor_holds_in_every_format(cli, tmp_path):
    cli("visitor", "sign-in", "Ada Lovelace", "--badge", "B1")
    cli("badge", "issue", "P7", "--visit", "1")  # a parking card beside the visitor badge
    cli("visitor", "sign-in", "Grace Hopper", "--badge", "B3")
    cli("door", "event", "--door", "garage", "--badge", "P7")
    (ada, grace) = _onsite(cli)["people"]
    assert (ada["badge"], ada["badges"]) == ("B1", ["B1", "P7"])  # `badge` kept: the first
    assert ada["last_door"] == "garage"  # the latest press of any of her badges
    assert (grace["badge"], grace["badges"]) == ("B3", ["B3"])
    rows = list(csv.DictReader(io.StringIO(cli("onsite", "--format", "csv").stdout)))
    assert [(r["badge"], r["badges"]) for r in rows] == [("B1", "B1 P7"), ("B3", "B3")]
    assert "B1, P7" in cli("onsite").stdout
    page = tmp_path / "onsite.html"
    cli("onsite", "--format", "html", "--output", str(page))
    assert "<td>B1, P7</td>" in page.read_text(encoding="utf-8")


def test_sign_out_says_which_badges_came_back(cli):
    cli("visitor", "sign-in", "Ada", "--badge", "B1")
    cli("badge", "issue", "P7", "--visit", "1")
    cli("visitor", "sign-in", "Grace", "--badge", "B3")
    cli("badge", "issue", "P8", "--visit", "2")
    assert "; badges B1 and P7 returned" in cli("visitor", "sign-out", "--name", "Ada").stdout
    kept = cli("visitor", "sign-out", "2", "--badge-kept").stdout
    assert "; badges B3 and P8 still out (--badge-kept)" in kept
    cli("visitor", "sign-in", "Linus")
    assert "badge" not in cli("visitor", "sign-out", "3").stdout
    cli("badge", "issue", "B1", "--visit", "1", code=2)  # Ada's visit is over
    cli("visitor", "sign-in", "Ken", "--badge", "P7")  # and her parking card came back


def test_empty_site_says_so(cli):
    assert "0 on site" in cli("onsite").stdout
    assert "Nobody is signed in" in cli("onsite", "--format", "html").stdout


def test_sign_in_across_dst_change_is_stored_in_utc(cli):
    # Europe/Amsterdam leaves summer time on 2026-10-25: 02:30 happens twice, 03:30 once (CET).
    cli("visitor", "sign-in", "Before", "--at", "2026-10-25T01:30", "--yes")
    cli("visitor", "sign-in", "After", "--at", "2026-10-25T03:30", "--yes")
    cli("visitor", "sign-in", "Spring", "--at", "2026-03-29T03:30", "--yes")
    people = {p["name"]: p["signed_in_at"] for p in _onsite(cli)["people"]}
    assert people == {
        "Before": "2026-10-24T23:30:00Z",
        "After": "2026-10-25T02:30:00Z",
        "Spring": "2026-03-29T01:30:00Z",
    }
    visit_hours = datetime.fromisoformat(people["After"]) - datetime.fromisoformat(people["Before"])
    assert visit_hours == timedelta(hours=3)  # two wall-clock hours, three real ones


def test_offset_in_input_wins_over_site_zone(cli):
    cli("visitor", "sign-in", "Tokyo", "--at", "2026-01-01T09:00+09:00", "--yes")
    assert _onsite(cli)["people"][0]["signed_in_at"] == "2026-01-01T00:00:00Z"


def test_roles_refuse_with_exit_3_and_audit(cli):
    config = cli.config('[roles]\nreception = ["somebody-else", "@no-such-group"]\n')
    result = cli("visitor", "sign-in", "Ada", config=config, code=3)
    assert "needs role reception" in result.stderr
    assert _counts(cli.url)[0] == 0
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "refused")).one()
        assert json.loads(entry.details)["command"] == "visitor sign-in"
        assert entry.actor  # the OS login name


def test_roles_grant_by_user_and_group(cli):
    import grp
    import os
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    cli("visitor", "sign-in", "Ada", config=cli.config(f'[roles]\nreception = ["{me}"]\n'))
    cli("onsite", config=cli.config(f'[roles]\nreception = ["@{group}"]\n'))
    cli("onsite", config=cli.config(f'[roles]\nadmin = ["{me}"]\n'))


def test_core_functions_roll_back_on_error(engine):
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    with db.session_scope(engine) as session:
        reception.sign_in(session, now=now, name="Ada", badge="B1")
    with pytest.raises(InputError), db.session_scope(engine) as session:
        reception.sign_in(session, now=now, name="Grace", badge="B1")
    with db.session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Visit)).one() == 1
        assert session.exec(select(func.count()).select_from(BadgeLoan)).one() == 1


def test_on_site_last_door_is_the_latest_press_since_issue(engine):
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    from facility.sources.ingest import store_door_events
    from facility.sources.records import DoorEventIn

    with db.session_scope(engine) as session:
        reception.sign_in(session, now=now, name="Ada", badge="B1", at=now - timedelta(hours=3))
        events = [
            DoorEventIn(f"e{i}", door, "B1", now - timedelta(hours=h), True, "test")
            for i, (door, h) in enumerate([("old", 5), ("lobby", 2), ("lab", 1), ("lobby", 1.5)])
        ]
        store_door_events(session, events, ingest.Intake(now, Limits()))
    with db.session_scope(engine) as session:
        (person,) = on_site(session, now=now).people
        assert (person.last_door, person.last_door_at) == ("lab", now - timedelta(hours=1))
        assert session.exec(select(func.count()).select_from(DoorEvent)).one() == 4


def test_on_site_lists_a_visit_holding_two_badges_once(engine):
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    with db.session_scope(engine) as session:
        visit = reception.sign_in(session, now=now, name="Ada", badge="B1")
        reception.issue_badge(session, now=now, badge="B2", visit_id=visit.id)
        reception.sign_in(session, now=now, name="Grace", badge="B3")
    with db.session_scope(engine) as session:
        people = on_site(session, now=now).people
    assert [(p.name, p.badges) for p in people] == [("Ada", ("B1", "B2")), ("Grace", ("B3",))]
    with pytest.raises(AttributeError):
        people[0].name = "Eve"  # the list handed to renderers cannot be changed under them


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # PostgreSQL stores timestamptz
def test_on_site_reads_sqlite_time_text_of_any_iso_form_as_aware_utc(engine):
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    with db.session_scope(engine) as session:
        for name in ("Offset", "Date", "Plain"):
            reception.sign_in(session, now=now, name=name)
    # Text this code never writes, but a hand-edited or older store may hold.
    with engine.begin() as conn:
        for name, stored in (("Offset", "2026-06-01 10:30:00+02:00"), ("Date", "2026-05-31")):
            conn.execute(
                text("UPDATE visits SET signed_in_at = :at WHERE name = :name"),
                {"at": stored, "name": name},
            )
    with db.session_scope(engine) as session:
        people = on_site(session, now=now).people
    assert [(p.name, p.signed_in_at) for p in people] == [
        ("Date", datetime(2026, 5, 31, tzinfo=UTC)),
        ("Offset", datetime(2026, 6, 1, 8, 30, tzinfo=UTC)),
        ("Plain", now),
    ]
    assert all(p.signed_in_at.tzinfo is UTC for p in people)


def test_the_reception_page_says_which_badges_came_back(db_url, engine, monkeypatch):
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from facility.accounts import users
    from tests.webapp import Clock, add_user, form_token, login, make_app

    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024))
    add_user(engine, "rita", "reception")
    now = datetime(2026, 6, 1, 9, tzinfo=UTC)
    with db.session_scope(engine) as session:
        visit = reception.sign_in(session, now=now, name="Ada", badge="B1")
        reception.issue_badge(session, now=now, badge="P7", visit_id=visit.id)
    browser = TestClient(make_app(db_url, engine, Clock(now)), base_url="https://testserver")
    login(browser, "rita")
    token = form_token(browser.get("/reception").text)
    page = browser.post(f"/reception/visits/{visit.id}/sign-out", data={"csrf_token": token}).text
    assert "Ada signed out at" in page and "badges B1 and P7 returned" in page
