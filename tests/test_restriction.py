"""Restriction of processing (GDPR article 18, issue 17), on both engines.

A restricted person's records are kept and purged on time, shown to the privacy role only: the
reception desk's list of the day leaves their past visits out (web page and API), while the
evacuation list still shows them on site. `privacy.restriction` is the one place that decides,
for every kind a subject reaches; restrict and unrestrict are audited under the keyed hash.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import col

from facility.privacy import restriction
from facility.store import db
from facility.store.models import AuditEntry, BadgeLoan, DoorEvent, Restriction, Visit, WifiLease
from tests.factories import (
    D,
    H,
    add,
    door,
    ids,
    lease,
    loan,
    make_settings,
    place,
    run,
    visit,
)
from tests.webapp import Clock, add_user, api_client, login, make_app

pytestmark = pytest.mark.usefixtures("fast_hashes", "site_clock")

NAME, OTHER, MAC = "Ada Lovelace", "Grace Hopper", "3c:22:fb:01:02:03"
# 14:00 in Amsterdam; the site's day began at 00:00 CEST.
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def site_clock(monkeypatch) -> None:
    """The CLI's clock at this module's NOW (the web app's is given to it)."""
    from facility.cli.context import AppContext

    monkeypatch.setattr(AppContext, "now", lambda self: NOW)


def _shown(html: str) -> set[int]:
    """The visit ids in the reception page's list of the day."""
    return {int(found) for found in re.findall(r'<tr id="v(\d+)"', html)}


def _restricted_people(engine) -> tuple[int, int, int, int]:
    """Ada's visit this morning (closed) and now (on site), Grace's this morning; Ada restricted."""
    morning, now = visit(NAME, NOW - 5 * H, NOW - 4 * H), visit(NAME, NOW - H)
    grace = visit(OTHER, NOW - 5 * H, NOW - 3 * H)
    ada_then, ada_now, grace_then = add(engine, morning, now, grace)
    (ada_loan,) = add(engine, loan("B17", ada_then, NOW - 5 * H, NOW - 4 * H))
    return ada_then, ada_now, grace_then, ada_loan


def test_a_restricted_person_is_left_out_of_reception_s_list_but_stays_on_the_evacuation_list(
    cli, engine, db_url
):
    ada_then, ada_now, grace_then, _ = _restricted_people(engine)
    out = cli("subject", "restrict", "--name", NAME, "--reason", "DSR-18 accuracy contested")
    assert out.stdout.startswith("restricted: visits 2, badges 1")
    add_user(engine, "rita", "reception")
    add_user(engine, "pat", "reception", "privacy")
    app = make_app(db_url, engine, Clock(NOW))

    desk = TestClient(app, base_url="https://testserver")
    login(desk, "rita")
    page = desk.get("/reception").text
    # Ada's morning visit is gone from the desk's history; she is on site, so her visit now stays.
    assert _shown(page) == {ada_now, grace_then}
    api = api_client(app, "rita")
    assert {v["visit_id"] for v in api.get("/api/visits/today").json()} == {ada_now, grace_then}
    # And from the visit log; her visit now stays there too, for the desk to sign her out.
    assert _shown(desk.get("/visits").text) == {ada_now, grace_then}
    # The evacuation list shows her, on the web and on the command line.
    assert NAME in desk.get("/onsite").text
    onsite = json.loads(cli("onsite", "--format", "json").stdout)
    assert [p["visit_id"] for p in onsite["people"]] == [ada_now]

    officer = TestClient(app, base_url="https://testserver")
    login(officer, "pat")
    assert _shown(officer.get("/reception").text) == {ada_then, ada_now, grace_then}
    assert _shown(officer.get("/visits").text) == {ada_then, ada_now, grace_then}

    assert cli("subject", "unrestrict", "--name", NAME, "--reason", "DSR-18 settled").stdout == (
        "restriction lifted\n"
    )
    assert _shown(desk.get("/reception").text) == {ada_then, ada_now, grace_then}


def test_every_kind_a_subject_reaches_is_hidden_from_roles_without_privacy(engine):
    ada_then, _, grace_then, ada_loan = _restricted_people(engine)
    (graces_loan,) = add(engine, loan("B18", grace_then, NOW - 5 * H, NOW - 3 * H))
    during = door("lobby", "B17", NOW - 4 * H - timedelta(minutes=30))
    after = door("lobby", "B17", NOW - 2 * H)  # the badge was back at the desk by then
    graces = door("lobby", "B18", NOW - 4 * H)
    event_during, event_after, event_grace = add(engine, during, after, graces)
    mine, other = add(engine, lease(MAC, NOW - D, NOW - H), lease("3c:22:fb:00:00:01", NOW - D))
    with db.session_scope(engine) as session:
        session.add(
            Restriction(
                subject_kind="name", subject_key="ada lovelace", reason="r", restricted_by="t",
                restricted_at=NOW,
            )
        )  # fmt: skip
        session.add(
            Restriction(
                subject_kind="mac",
                subject_key=MAC,
                reason="r",
                restricted_by="t",
                restricted_at=NOW,
            )
        )
    reception, privacy, admin = ["reception"], ["privacy"], ["admin"]
    with db.session_scope(engine) as session:
        assert restriction.hide(session, "visits", [ada_then, grace_then], reception) == [
            grace_then
        ]
        assert restriction.hide(session, "badges", [ada_loan, graces_loan], reception) == [
            graces_loan
        ]
        events = [event_during, event_after, event_grace]
        assert restriction.hide(session, "door_events", events, ["security"]) == [
            event_after,
            event_grace,
        ]
        assert restriction.hide(session, "wifi", [mine, other], ["security"]) == [other]
        for roles in (privacy, admin):
            assert restriction.hide(session, "door_events", events, roles) == events
        assert restriction.is_restricted(session, "visits", ada_then)
        assert not restriction.is_restricted(session, "camera", 1)
        # As a filter in a listing's own query, on the table or an alias of it.
        alias = DoorEvent.__table__.alias("listed")
        statement = select(alias.c.id).where(restriction.visible("door_events", reception, alias))
        assert sorted(session.execute(statement).scalars()) == [event_after, event_grace]
        statement = select(col(Visit.id)).where(restriction.visible("visits", privacy))
        assert len(session.execute(statement).all()) == 3
        leases = select(col(WifiLease.id)).where(restriction.restricted("wifi"))
        assert list(session.execute(leases).scalars()) == [mine]


def test_a_hold_s_case_file_leaves_a_restricted_person_out_for_security_and_says_so(
    cli, engine, db_url
):
    ada_then, ada_now, grace_then, ada_loan = _restricted_people(engine)
    place(engine, "INC-7", [("visits", None), ("badges", None)], NOW - 6 * H, NOW, now=NOW)
    cli("subject", "restrict", "--name", NAME, "--reason", "DSR-18 accuracy contested")
    add_user(engine, "sam", "security")
    add_user(engine, "pat", "security", "privacy")
    app = make_app(db_url, engine, Clock(NOW))

    guard = api_client(app, "sam").get("/api/holds/INC-7/records").json()
    assert [r["id"] for r in guard["records"]["visits"]] == [grace_then]
    assert guard["records"]["badges"] == []
    assert (guard["totals"]["visits"], guard["totals"]["badges"]) == (1, 0)
    assert guard["withheld"] == {"visits": 2, "badges": 1}
    officer = api_client(app, "pat").get("/api/holds/INC-7/records").json()
    assert {r["id"] for r in officer["records"]["visits"]} == {ada_then, ada_now, grace_then}
    assert [r["id"] for r in officer["records"]["badges"]] == [ada_loan]
    assert officer["withheld"] == {}

    page = TestClient(app, base_url="https://testserver")
    login(page, "sam")
    html = page.get("/holds/INC-7").text
    assert NAME not in html and OTHER in html
    assert "And 2 of a restricted person (GDPR article 18), shown to the privacy role only" in html


def test_restricted_records_are_purged_on_time_and_the_restriction_ends_with_them(
    cli, engine, isolated_env
):
    old = NOW - 10 * D
    (vid,) = add(engine, visit(NAME, old - H, old))
    add(engine, loan("B17", vid, old - H, old))
    cli("subject", "restrict", "--name", NAME, "--reason", "DSR-18")
    result = run(engine, make_settings(home=isolated_env), now=NOW)
    assert (result.kinds["visits"].deleted, result.kinds["badges"].deleted) == (1, 1)
    assert "1 restriction(s) ended: nothing of their subject is left" in result.notes
    assert ids(engine, Visit) == ids(engine, BadgeLoan) == ids(engine, Restriction) == set()


def test_restricting_is_audited_without_the_person_and_refuses_what_makes_no_sense(cli, engine):
    (vid,) = add(engine, visit(NAME, NOW - 2 * H, NOW - H))
    nothing = cli("subject", "restrict", "--name", OTHER, "--reason", "DSR-1", code=1)
    assert "nothing is stored about this name; nothing to restrict" in nothing.stderr
    named = cli("subject", "restrict", "--name", NAME, "--reason", "Ada Lovelace asked", code=2)
    assert "contains the subject's name" in named.stderr
    cli("subject", "restrict", "--name", NAME, "--reason", "DSR-18")
    again = cli("subject", "restrict", "--name", "ADA LOVELACE", "--reason", "DSR-18").stdout
    assert again.startswith("already restricted since")
    listed = json.loads(cli("subject", "restricted", "--format", "json").stdout)
    assert [(r["subject_kind"], r["subject"], r["reason"]) for r in listed] == [
        ("name", "ada lovelace", "DSR-18")
    ]
    exported = json.loads(cli("subject", "export", "--name", NAME).stdout)
    assert [r["reason"] for r in exported["restrictions"]] == ["DSR-18"]
    # Reception may not correct a restricted visit; the privacy officer may.
    edit = cli("visitor", "edit", str(vid), "--host", "Bob", code=2)
    assert f"visit {vid} is restricted" in edit.stderr
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(AuditEntry).where(col(AuditEntry.action).like("subject.%restrict"))
        ).scalars()
        entries = [(r.action, json.loads(r.details)) for r in rows]
    (action, details), *_ = entries
    assert action == "subject.restrict" and len(details["subject"]) == 64
    assert details["records"] == {"visits": 1, "badges": 0, "door_events": 0}
    assert "Lovelace" not in json.dumps(entries).title()
    erased = cli("subject", "erase", "--name", NAME, "--reason", "DSR-19", "--yes").stdout
    assert "the subject's restriction ended" in erased
    assert json.loads(cli("subject", "restricted", "--format", "json").stdout) == []
