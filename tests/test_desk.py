"""The reception desk's everyday tools: the visit log, expected visitors, badge labels.

Through the CLI (in-process, both engines) and the web pages (in-process app, a fixed clock).
The log shows only what the visits' policy still keeps; an expected visit is personal data with
its own policy, fulfilled by its visitor's sign-in, exported and erased with the person.
"""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from facility.cli.context import AppContext
from facility.store import db
from facility.store.models import BadgeLoan, ExpectedVisit, Visit
from facility.visitors import hosts
from tests.factories import NOW, add, visit
from tests.webapp import Clock, add_user, make_app, page_client

pytestmark = pytest.mark.usefixtures("fast_hashes")
D = timedelta(days=1)
H = timedelta(hours=1)


def _names(cli, *args: str) -> list[str]:
    body = json.loads(cli("visitor", "list", *args, "--format", "json").stdout)
    assert body["count"] == len(body["visits"])
    return [v["name"] for v in body["visits"]]


def _at(monkeypatch, when: datetime) -> None:
    monkeypatch.setattr(AppContext, "now", lambda self: when)


# --- the visit log -------------------------------------------------------------------------------


def test_the_log_shows_only_what_the_policy_still_keeps(cli, engine, fixed_clock):
    add(
        engine,
        visit("On Site", NOW - 2 * H),
        visit("Left Yesterday", NOW - D - 2 * H, NOW - D),
        visit("Past Policy", NOW - 4 * D - H, NOW - 4 * D),  # visits: 3d, not purged yet
        visit("Held Past Policy", NOW - 5 * D - H, NOW - 5 * D),
    )
    window = ["--from", (NOW - 10 * D).isoformat(), "--to", NOW.isoformat()]
    cli("hold", "place", "INC-1", "--reason", "theft", *window, "--visitor", "Held Past Policy")
    assert _names(cli, "--since", "30d") == ["On Site", "Left Yesterday"]
    assert _names(cli, "--since", "30d", "--open") == ["On Site"]
    # Within a longer policy, the default period is the last seven days.
    cli("policy", "set", "visits", "30d", "--reason", "registry test")
    add(engine, visit("Last Month", NOW - 20 * D - H, NOW - 20 * D))
    assert "Last Month" not in _names(cli)
    assert _names(cli, "--since", "21d")[-3:] == ["Past Policy", "Held Past Policy", "Last Month"]
    table = cli("visitor", "list").stdout
    assert "On Site" in table and "on site" in table
    assert "are past their policy" in table


def test_filters_match_words_ignoring_case_and_accents(cli, engine, fixed_clock):
    jose = visit("José Núñez", NOW - 3 * H, NOW - 2 * H)
    jose.company, jose.host = "Analytical Engines Ltd", "Bob Smith"
    grace = visit("Grace Hopper", NOW - 30 * H)
    grace.company, grace.host = "Navy", "Alice Jones"
    add(engine, jose, grace)
    add(engine, BadgeLoan(badge="B7", visit_id=jose.id, issued_at=NOW - 3 * H))
    assert _names(cli, "--name", "jose nunez") == ["José Núñez"]
    assert _names(cli, "--name", "NÚÑEZ") == ["José Núñez"]
    assert _names(cli, "--host", "smith") == ["José Núñez"]
    assert _names(cli, "--company", "anal eng") == ["José Núñez"]
    assert _names(cli, "--company", "navy", "--host", "smith") == []
    assert _names(cli, "--until", (NOW - 4 * H).isoformat()) == ["Grace Hopper"]
    csv_out = cli("visitor", "list", "--name", "jose", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "visit_id,name,company,host,badges,signed_in_at,signed_out_at"
    assert ",B7," in csv_out[1]
    refused = cli("visitor", "list", "--since", "yesterday-ish", code=2)
    assert "--since" in refused.stderr


def test_the_web_log_is_paged_and_keeps_its_filters(db_url, engine):
    clock = Clock(NOW)
    add(engine, *(visit(f"Visitor {i:03}", NOW - (i + 1) * H / 4) for i in range(120)))
    add_user(engine, "rita", "reception")
    client, _ = page_client(make_app(db_url, engine, clock), "rita")
    first = client.get("/visits")
    assert first.status_code == 200
    assert "120 visits · page 1 of 3" in first.text
    assert first.text.count('<tr id="v') == 50 and "Visitor 000" in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    last = client.get("/visits?name=visitor&page=3")
    assert last.text.count('<tr id="v') == 20 and "Visitor 119" in last.text
    assert 'href="/visits?name=visitor&amp;page=2" rel="prev"' in last.text
    one = client.get("/visits?name=visitor+007&since=2d")
    assert "1 visit ·" in one.text and "Visitor 007" in one.text
    bad = client.get("/visits?since=not+a+time")
    assert bad.status_code == 400 and "since" in bad.text


# --- expected visitors ---------------------------------------------------------------------------


def test_expect_list_arrive_and_cancel_on_the_command_line(cli, monkeypatch):
    now = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam
    _at(monkeypatch, now)
    cli("host", "add", "Bob Smith", "--email", "bob@example.org")
    out = cli(
        "visitor", "expect", "Ada Lovelace", "--host", "bob smith", "--on", "today",
        "--company", "ACME", "--badge", "B17",
    ).stdout  # fmt: skip
    assert "expected visit 1: Ada Lovelace on 2026-06-10 for Bob Smith" in out
    out = cli("visitor", "expect", "Grace Hopper", "--host", "Alice", "--on", "2026-06-11").stdout
    assert "Alice is not in the hosts directory: nobody is told" in out
    for on, why in (("2026-06-09", "is in the past"), ("2027-07-01", "more than a year ahead"),
                    ("next week", "is not a day")):  # fmt: skip
        refused = cli("visitor", "expect", "X", "--host", "Bob", "--on", on, code=2)
        assert why in refused.stderr
    listed = json.loads(cli("expected", "list", "--format", "json").stdout)
    assert [(x["id"], x["expected_on"], x["name"]) for x in listed] == [
        (1, "2026-06-10", "Ada Lovelace"),
        (2, "2026-06-11", "Grace Hopper"),
    ]
    assert (
        json.loads(cli("expected", "list", "--on", "tomorrow", "--format", "json").stdout)[0][
            "name"
        ]
        == "Grace Hopper"
    )
    arrived = cli("expected", "arrive", "1").stdout
    assert "Ada Lovelace signed in" in arrived and "Bob Smith will be told by e-mail" in arrived
    onsite = json.loads(cli("onsite", "--format", "json").stdout)["people"]
    assert [(p["name"], p["company"], p["host"], p["badge"]) for p in onsite] == [
        ("Ada Lovelace", "ACME", "Bob Smith", "B17")
    ]
    again = cli("expected", "arrive", "1", code=2)
    assert "already arrived as visit 1" in again.stderr
    refused = cli("expected", "cancel", "1", code=2)
    assert "already arrived" in refused.stderr
    assert "cancelled and deleted" in cli("expected", "cancel", "2").stdout
    waiting = json.loads(cli("expected", "list", "--waiting", "--format", "json").stdout)
    assert waiting == []


def test_a_sign_in_by_name_fulfils_the_one_visit_expected_that_day(cli, engine, monkeypatch):
    _at(monkeypatch, datetime(2026, 6, 10, 7, 0, tzinfo=UTC))
    cli(
        "visitor",
        "expect",
        "Ada Lovelace",
        "--host",
        "Bob Smith",
        "--on",
        "today",
        "--company",
        "ACME",
    )
    cli("visitor", "expect", "Ann Lee", "--host", "Bob Smith", "--on", "today")
    cli("visitor", "expect", "Ann Lee", "--host", "Eve Jones", "--on", "today")
    cli("visitor", "sign-in", "ada LOVELACE")
    cli("visitor", "sign-in", "Ann Lee")  # two are expected under that name: the desk decides
    with db.session_scope(engine) as session:
        visits = {v.name: v for v in session.execute(select(Visit)).scalars()}
        rows = session.execute(select(ExpectedVisit).order_by(ExpectedVisit.id)).scalars().all()
        assert (visits["ada LOVELACE"].host, visits["ada LOVELACE"].company) == (
            "Bob Smith",
            "ACME",
        )
        assert visits["Ann Lee"].host is None
        assert [(r.visit_id, r.arrived_at is not None) for r in rows] == [
            (visits["ada LOVELACE"].id, True),
            (None, False),
            (None, False),
        ]


@pytest.mark.parametrize(
    ("day", "end"),
    [
        (date(2026, 7, 1), datetime(2026, 7, 1, 22, 0, tzinfo=UTC)),  # midnight CEST
        (date(2026, 10, 25), datetime(2026, 10, 25, 23, 0, tzinfo=UTC)),  # a 25-hour day
    ],
)
def test_expected_visits_are_purged_one_day_after_their_day(cli, monkeypatch, engine, day, end):
    _at(monkeypatch, end - 20 * H)
    cli("visitor", "expect", "Never Came", "--host", "Bob", "--on", day.isoformat())
    cli("visitor", "expect", "Came", "--host", "Bob", "--on", day.isoformat())
    cli("expected", "arrive", "2")
    with db.session_scope(engine) as session:
        clocks = session.execute(select(ExpectedVisit.retain_from)).scalars().all()
    assert clocks == [end, end]  # the end of the expected day, site time
    for when, left in ((end + D - timedelta(seconds=1), 2), (end + D, 0)):
        _at(monkeypatch, when)
        done = json.loads(cli("purge", "--format", "json").stdout)
        assert done["kinds"]["expected"]["deleted"] == 2 - left
        report = json.loads(cli("report", "--format", "json").stdout)
        assert report["kinds"]["expected"]["count"] == left
        assert report["kinds"]["expected"]["overdue_unheld"] == 0


def test_expected_visits_are_exported_and_erased_with_the_person(cli, engine, monkeypatch):
    _at(monkeypatch, datetime(2026, 6, 10, 7, 0, tzinfo=UTC))
    for name, on in (("Ada Lovelace", "today"), ("ADA LOVELACE", "tomorrow"), ("Grace", "today")):
        cli(
            "visitor", "expect", name, "--host", "Bob", "--on", on, "--badge", f"B-{name[0]}{on[0]}"
        )
    exported = json.loads(cli("subject", "export", "--name", "Ada Lovelace").stdout)
    assert [x["expected_on"] for x in exported["records"]["expected"]] == [
        "2026-06-10",
        "2026-06-11",
    ]
    by_badge = json.loads(cli("subject", "export", "--badge", "B-Gt").stdout)
    assert [x["name"] for x in by_badge["records"]["expected"]] == ["Grace"]
    out = cli("subject", "erase", "--name", "ada lovelace", "--reason", "DSR-3", "--yes").stdout
    assert "erased: expected 2" in out
    with db.session_scope(engine) as session:
        left = session.execute(select(ExpectedVisit.name)).scalars().all()
    assert left == ["Grace"]


def test_the_desk_signs_an_expected_visitor_in_with_one_click(db_url, engine):
    clock = Clock(datetime(2026, 6, 10, 7, 0, tzinfo=UTC))
    add_user(engine, "rita", "reception")
    with db.session_scope(engine) as session:
        hosts.add(session, now=clock.now, name="Bob Smith", email="bob@example.org")
    client, token = page_client(make_app(db_url, engine, clock), "rita")
    typed = {"csrf_token": token, "name": "Ada Lovelace", "company": "ACME", "host": "Bob Smith"}
    bad = client.post("/expected", data=typed | {"on": "2026-06-01"})
    assert bad.status_code == 400 and "is in the past" in bad.text
    assert 'value="Ada Lovelace"' in bad.text  # what was typed stays
    added = client.post(
        "/expected", data=typed | {"on": "2026-06-10", "badge": "B17"}, follow_redirects=False
    )
    assert added.status_code == 303 and added.headers["location"] == "/expected?day=2026-06-10"
    desk = client.get("/reception")
    assert (
        "Expected today" in desk.text and 'aria-label="sign in expected Ada Lovelace"' in desk.text
    )
    (row_id,) = re.findall(r'action="/expected/(\d+)/sign-in"', desk.text)
    form = {"csrf_token": token, "back": "/reception"}
    done = client.post(f"/expected/{row_id}/sign-in", data=form, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/reception"
    after = client.get("/reception")
    assert "Ada Lovelace signed in at 09:00; Bob Smith will be told by e-mail" in after.text
    assert "Expected today" not in after.text
    with db.session_scope(engine) as session:
        (v,) = session.execute(select(Visit)).scalars().all()
        loan = session.execute(select(BadgeLoan)).scalar_one()
        assert (v.name, v.company, v.host, loan.badge) == (
            "Ada Lovelace",
            "ACME",
            "Bob Smith",
            "B17",
        )
    twice = client.post(
        f"/expected/{row_id}/sign-in", data={"csrf_token": token}, follow_redirects=False
    )
    assert twice.status_code == 303
    assert "already arrived" in client.get(twice.headers["location"]).text


# --- labels --------------------------------------------------------------------------------------


def test_a_label_names_visitor_company_host_day_and_badge(cli, tmp_path, monkeypatch):
    _at(monkeypatch, datetime(2026, 11, 25, 8, 30, tzinfo=UTC))
    cli(
        "visitor",
        "sign-in",
        "Ada <b>Lovelace</b>",
        "--company",
        "ACME",
        "--host",
        "Bob",
        "--badge",
        "B17",
    )
    output = tmp_path / "label.html"
    out = cli("visitor", "label", "1", "--output", str(output)).stdout
    assert "Brother DK-11202, 62 x 100 mm" in out
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    page = output.read_text()
    assert "@page { size: 62mm 100mm; margin: 0mm; }" in page
    assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in page and "<b>Lovelace" not in page
    for shown in ('id="company">ACME<', "Visiting: Bob", "Wed 25 Nov 2026", 'id="badge">B17<'):
        assert shown in page, shown
    a4 = cli("visitor", "label", "1", "--size", "a4").stdout
    assert "@page { size: A4; margin: 15mm; }" in a4
    assert (
        "--size: '99x99' is not a label size"
        in cli("visitor", "label", "1", "--size", "99x99", code=2).stderr
    )
    assert "there is no visit 9" in cli("visitor", "label", "9", code=2).stderr


def test_the_web_serves_the_label_with_a_print_button(db_url, engine):
    clock = Clock(datetime(2026, 11, 25, 8, 30, tzinfo=UTC))
    add_user(engine, "rita", "reception")
    add(engine, visit("Ada Lovelace", clock.now - H))
    client, _ = page_client(make_app(db_url, engine, clock), "rita")
    label = client.get("/visits/1/label?size=89x36")
    assert label.status_code == 200
    assert "style-src 'unsafe-inline'" in label.headers["content-security-policy"]
    assert "@page { size: 89mm 36mm;" in label.text and "data-print" in label.text
    assert 'Visiting: <span class="write">' in label.text  # no host: a line to write on
    assert client.get("/visits/1/label?size=huge").status_code == 400
    assert client.get("/visits/99/label").status_code == 400
