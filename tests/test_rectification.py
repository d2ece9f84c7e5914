"""Rectification (GDPR article 16, issue 17): reception corrects today's visits, the privacy
officer any visit; the trail names the fields changed, never their values; a corrected sign-out
moves the retention clock, and the badge loan it closed, to the true time; both engines.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import col, select

from facility.privacy import report
from facility.store import db
from facility.store.models import AuditEntry, BadgeLoan, Visit
from facility.timeutil import zone
from tests.factories import NOW, D, H, add, ids, iso, loan, make_settings, run, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

NAME = "Ada Lovelace"
AMSTERDAM = zone("Europe/Amsterdam")
# NOW is 2026-07-01 14:00 CEST; the site's day began at 00:00 CEST.


def _rectified(engine) -> list[dict]:
    with db.session_scope(engine) as session:
        rows = session.exec(
            select(AuditEntry)
            .where(AuditEntry.action == "visit.rectify")
            .order_by(col(AuditEntry.seq))
        ).all()
        return [json.loads(r.details) for r in rows]


def _visit(engine, visit_id: int) -> Visit:
    with db.session_scope(engine) as session:
        found = session.get(Visit, visit_id)
        assert found is not None
        session.expunge(found)
        return found


def _site(at) -> str:
    return at.astimezone(AMSTERDAM).strftime("%Y-%m-%dT%H:%M")


def test_reception_corrects_today_s_visit_and_the_trail_keeps_no_values(cli, engine):
    cli("visitor", "sign-in", "Ada Lovelac", "--company", "ACME", "--host", "Bob", "--badge", "B1")
    cli("muster", "start")
    out = cli("visitor", "edit", "1", "--name", NAME, "--company", "", "--host", "Bob").stdout
    assert out.strip() == "visit 1: name, company corrected"
    fixed = _visit(engine, 1)
    assert (fixed.name, fixed.name_key, fixed.company, fixed.host) == (
        NAME,
        "ada lovelace",
        None,
        "Bob",
    )
    # The roll call that lists the visit shows the corrected name, and a request finds it.
    assert (
        json.loads(cli("muster", "status", "--format", "json").stdout)["entries"][0]["name"] == NAME
    )
    exported = json.loads(cli("subject", "export", "--name", NAME).stdout)
    assert [v["id"] for v in exported["records"]["visits"]] == [1]
    (entry,) = _rectified(engine)
    assert entry == {"visit": 1, "fields": ["name", "company"], "by": "reception"}
    assert "Lovelac" not in json.dumps(entry) and "ACME" not in json.dumps(entry)
    assert "already so; nothing changed" in cli("visitor", "edit", "1", "--host", "Bob").stdout
    assert len(_rectified(engine)) == 1


def test_a_rectified_sign_out_moves_the_clock_and_the_loan_it_closed(cli, engine, isolated_env):
    # Left five days ago, but nobody signed the visit out: the limit closed it a day ago.
    true_out, closed = NOW - 5 * D, NOW - D
    (vid,) = add(engine, visit(NAME, true_out - 2 * H, closed))
    (lid,) = add(engine, loan("B17", vid, true_out - 2 * H, closed))
    settings = make_settings(home=isolated_env)
    assert run(engine, settings).kinds["visits"].deleted == 0  # 3d from the wrong time: kept

    out = cli(
        "subject", "rectify", str(vid), "--signed-out", _site(true_out), "--reason", "DSR-31"
    ).stdout
    assert "signed_out_at corrected" in out and "1 badge loan(s) moved with it" in out
    assert "its retention clock starts 2026-06-26 14:00 CEST" in out
    moved = _visit(engine, vid)
    assert (moved.signed_out_at, moved.retain_from, moved.known_at) == (true_out, true_out, NOW)
    # Until a purge has had its interval, the report does not call it overdue; the next purge
    # deletes the visit and its loan, three days after the true sign-out.
    body = json.loads(cli("report", "--format", "json").stdout)
    assert body["ok"] and body["kinds"]["visits"]["awaiting_purge"] == 1
    result = run(engine, settings)
    assert (result.kinds["visits"].deleted, result.kinds["badges"].deleted) == (1, 1)
    assert ids(engine, Visit) == set() and ids(engine, BadgeLoan) == set()
    assert lid not in ids(engine, BadgeLoan)
    (entry,) = _rectified(engine)
    assert entry == {
        "visit": vid,
        "fields": ["signed_out_at"],
        "by": "privacy",
        "loans_moved": 1,
        "reason": "DSR-31",
    }


def test_a_later_true_sign_out_keeps_it_its_policy_from_the_true_time_only(
    cli, engine, isolated_env
):
    # Signed out by mistake four days ago; the visitor really left a day ago.
    (vid,) = add(engine, visit(NAME, NOW - 4 * D - H, NOW - 4 * D))
    cli("subject", "rectify", str(vid), "--signed-out", _site(NOW - D), "--reason", "DSR-32")
    settings = make_settings(home=isolated_env)
    assert run(engine, settings).kinds["visits"].deleted == 0
    kept_until = NOW - D + 3 * D  # the policy from the true time, not from the correction
    assert run(engine, settings, now=kept_until - timedelta(minutes=1)).kinds["visits"].deleted == 0
    assert run(engine, settings, now=kept_until).kinds["visits"].deleted == 1
    with db.session_scope(engine) as session:
        late = report.build(
            session, now=NOW + 20 * timedelta(minutes=1), interval=timedelta(minutes=15),
            grace=timedelta(hours=24),
        )  # fmt: skip
    assert late.kinds["visits"].overdue_unheld == 0


def test_a_correction_made_long_ago_is_overdue_once_a_purge_had_its_chance(cli, engine):
    (vid,) = add(engine, visit(NAME, NOW - 6 * D, NOW - D))
    cli("subject", "rectify", str(vid), "--signed-out", _site(NOW - 5 * D), "--reason", "DSR-33")
    with db.session_scope(engine) as session:
        later = report.build(
            session, now=NOW + timedelta(minutes=16), interval=timedelta(minutes=15),
            grace=timedelta(hours=24),
        )  # fmt: skip
    assert later.kinds["visits"].overdue_unheld == 1  # no purge ran: that is a failure


def test_what_reception_may_not_correct(cli, engine):
    (yesterday,) = add(engine, visit("Grace Hopper", NOW - D - 3 * H, NOW - D - 2 * H))
    cli("visitor", "sign-in", NAME, "--at", "12:00")  # visit 2, still on site
    for args, message in (
        ([str(yesterday), "--host", "X"], "visit 1 is not one of today's visits"),
        (["99", "--host", "X"], "visit 99 is not one of today's visits"),
        (["2"], "give at least one of --name"),
        (["2", "--signed-out", "13:00"], "visit 2 is still signed in"),
        (["2", "--signed-in", "15:00"], "--signed-in: 2026-07-01 15:00 CEST is in the future"),
        (["2", "--name", "  "], "--name: a visitor needs a name"),
    ):
        refused = cli("visitor", "edit", *args, code=2)
        assert message in refused.stderr, refused.stderr
    cli("visitor", "sign-out", "2", "--at", "13:30")
    before = cli("visitor", "edit", "2", "--signed-out", "13:00", "--signed-in", "13:10", code=2)
    assert "13:00 CEST is before the sign-in at 2026-07-01 13:10 CEST" in before.stderr
    assert _rectified(engine) == []
    # Yesterday's visit is the privacy officer's, with a reason that names nobody.
    named = cli("subject", "rectify", "1", "--host", "X", "--reason", "Grace Hopper asked", code=2)
    assert "contains the subject's name" in named.stderr
    renamed = cli(
        "subject",
        "rectify",
        "1",
        "--name",
        "Grace B. Hopper",
        "--reason",
        "per Grace B. Hopper",
        code=2,
    )
    assert "contains the subject's name" in renamed.stderr
    assert (
        "host corrected"
        in cli("subject", "rectify", "1", "--host", "X", "--reason", "DSR-9").stdout
    )


def test_a_rectification_request_is_named_and_checked(cli, engine):
    (vid,) = add(engine, visit(NAME, NOW - 2 * D, NOW - 2 * D + H))
    out = cli(
        "request", "open", "rectification", "--name", NAME, "--received", iso(NOW - D),
        "--contact", "ada@x.org",
    ).stdout  # fmt: skip
    assert out.startswith("request 1: rectification")
    access = cli(
        "request", "open", "access", "--name", NAME, "--received", iso(NOW - D), "--contact", "c"
    )
    assert access.stdout.startswith("request 2")
    wrong = cli("subject", "rectify", str(vid), "--company", "ACME", "--reason", "DSR",
                "--request", "2", code=2)  # fmt: skip
    assert "asks for access" in wrong.stderr
    cli("subject", "rectify", str(vid), "--company", "ACME", "--reason", "DSR", "--request", "1")
    assert _rectified(engine)[-1]["request"] == 1
    assert _visit(engine, vid).company == "ACME"
