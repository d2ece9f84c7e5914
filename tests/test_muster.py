"""Evacuation roll calls: start from the on-site list, mark, close, and names that expire."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import select

from facility.errors import InputError
from facility.retention import purge
from facility.settings import Settings
from facility.store import db
from facility.store.models import AuditEntry, Muster, MusterEntry, Visit
from facility.visitors import muster, reception

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _sign_in(engine, *names: str, at: datetime = T0) -> list[int]:
    with db.session_scope(engine) as session:
        return [reception.sign_in(session, now=at, name=n).id for n in names]


def _audit(engine, action: str) -> list[dict]:
    with db.session_scope(engine) as session:
        rows = session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()
        return [json.loads(r.details) for r in rows]


def test_start_lists_everyone_on_site_as_unknown_and_audits_without_names(engine):
    _sign_in(engine, "Zoë Quist", "Ada Lovelace", "Grace Hopper")
    with db.session_scope(engine) as session:
        gone = reception.find_open_visit(session, name="Grace Hopper")
        reception.sign_out(session, gone, now=T0 + timedelta(minutes=5))
    with db.session_scope(engine) as session:
        call = muster.start(session, now=T0 + timedelta(minutes=10), actor="alice")
    assert [e.name for e in call.entries] == ["Ada Lovelace", "Zoë Quist"]  # by name
    assert {e.status for e in call.entries} == {"unknown"}
    assert call.counts == {"safe": 0, "missing": 0, "unknown": 2, "left": 0, "total": 2}
    assert call.muster.started_by == "alice"
    (details,) = _audit(engine, "muster.start")
    assert details == {"muster": call.muster.id, "people": 2}


def test_one_roll_call_at_a_time_and_late_arrivals_join_it(engine):
    _sign_in(engine, "Ada")
    with db.session_scope(engine) as session:
        first = muster.start(session, now=T0, actor="alice")
    late = T0 + timedelta(minutes=1)
    _sign_in(engine, "Latecomer", at=late)
    zone = ZoneInfo("Europe/Amsterdam")
    with (
        pytest.raises(InputError, match="is open since 2026-06-01 11:00 CEST"),
        db.session_scope(engine) as session,
    ):
        muster.start(session, now=T0 + timedelta(minutes=2), actor="bob", site_zone=zone)
    with db.session_scope(engine) as session:
        entries = muster.get(session, first.muster.id).entries
        assert [(e.name, e.joined_at) for e in entries] == [("Ada", None), ("Latecomer", late)]
        assert session.exec(select(func.count()).select_from(Muster)).one() == 1


def test_mark_by_name_or_entry_and_close_keeps_the_record(engine):
    _sign_in(engine, "Ada Lovelace", "Grace Hopper", "Linus")
    with db.session_scope(engine) as session:
        call = muster.start(session, now=T0, actor="alice")
    later = T0 + timedelta(minutes=3)
    with db.session_scope(engine) as session:
        muster.mark(session, now=later, actor="bob", status="safe", name="  ada   LOVELACE ")
        grace = next(e for e in call.entries if e.name == "Grace Hopper")
        muster.mark(session, now=later, actor="bob", status="missing", entry_id=grace.id)
    with db.session_scope(engine) as session:
        current = muster.get(session, call.muster.id)
        assert current.counts == {"safe": 1, "missing": 1, "unknown": 1, "left": 0, "total": 3}
        assert [e.name for e in current.unaccounted] == ["Grace Hopper", "Linus"]
        ada = next(e for e in current.entries if e.name == "Ada Lovelace")
        assert (ada.marked_by, ada.marked_at) == ("bob", later)
        closed = muster.close(session, now=later, actor="carol")
    assert closed.muster.closed_by == "carol"
    assert _audit(engine, "muster.close")[0] == {
        "muster": call.muster.id,
        "safe": 1,
        "missing": 1,
        "unknown": 1,
        "left": 0,
        "total": 3,
    }
    marks = _audit(engine, "muster.mark")
    assert [m["status"] for m in marks] == ["safe", "missing"]
    assert all("name" not in m for m in marks)
    with pytest.raises(InputError, match="no roll call is open"), db.session_scope(engine) as s:
        muster.mark(s, now=later, actor="bob", status="safe", name="Linus")
    with pytest.raises(InputError, match="is a record now"), db.session_scope(engine) as s:
        muster.mark(s, now=later, actor="bob", status="safe", name="Linus", muster_id=1)
    with pytest.raises(InputError, match="no roll call is open"), db.session_scope(engine) as s:
        muster.close(s, now=later, actor="bob")


def test_mark_refuses_what_it_cannot_pin_down(engine):
    _sign_in(engine, "Ada", "ada", "Grace")
    with db.session_scope(engine) as session:
        call = muster.start(session, now=T0, actor="alice")
    grace = next(e for e in call.entries if e.name == "Grace")
    cases = [
        ({"name": "Ada"}, "2 people called 'Ada'"),
        ({"name": "Nobody"}, "nobody called 'Nobody'"),
        ({"name": "  "}, "give the person's name"),
        ({"entry_id": 9999}, "has no entry 9999"),
        ({"entry_id": grace.id, "name": "Ada"}, f"entry {grace.id} is Grace"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message), db.session_scope(engine) as session:
            muster.mark(session, now=T0, actor="bob", status="safe", **kwargs)
    with pytest.raises(InputError, match="not one of"), db.session_scope(engine) as session:
        muster.mark(session, now=T0, actor="bob", status="fine", name="Grace")
    with db.session_scope(engine) as session:
        assert {e.status for e in muster.get(session, call.muster.id).entries} == {"unknown"}


def test_names_are_forgotten_when_the_purge_deletes_the_visits(engine, db_url):
    ids = _sign_in(engine, "Ada", "Grace")
    with db.session_scope(engine) as session:
        call = muster.start(session, now=T0, actor="alice")
        muster.mark(session, now=T0, actor="alice", status="safe", name="Ada")
        muster.close(session, now=T0, actor="alice")
        reception.sign_out(session, session.get(Visit, ids[0]), now=T0 + timedelta(hours=1))
    settings = Settings(database_url=db_url)
    report = purge.run(engine, settings, now=T0 + timedelta(days=3, hours=2), actor="tests")
    # Ada's visit expired; Grace's was auto-closed after a day and has not expired yet.
    assert report.kinds["visits"].deleted == 1
    assert "1 roll-call names removed with their visits" in report.notes  # the purge did it
    with db.session_scope(engine) as session:
        entries = {e.visit_id: e for e in muster.get(session, call.muster.id).entries}
        assert entries[None].name is None and entries[None].status == "safe"
        assert entries[ids[1]].name == "Grace"
        assert muster.get(session, call.muster.id).counts["total"] == 2  # the drill is kept
        assert muster.forget_expired_names(session) == 0


def test_history_and_latest(engine):
    _sign_in(engine, "Ada")
    with db.session_scope(engine) as session:
        assert muster.latest(session) is None
        first = muster.start(session, now=T0, actor="alice")
        muster.close(session, now=T0, actor="alice")
        second = muster.start(session, now=T0 + timedelta(hours=1), actor="alice")
        muster.mark(session, now=T0, actor="alice", status="missing", name="Ada")
    with db.session_scope(engine) as session:
        found = muster.history(session)
        assert [m.id for m, _ in found] == [second.muster.id, first.muster.id]
        assert found[0][1] == {"safe": 0, "missing": 1, "unknown": 0, "left": 0, "total": 1}
        assert muster.latest(session).muster.id == second.muster.id
        assert muster.get(session, second.muster.id).as_json()["entries"][0]["status"] == "missing"
    with pytest.raises(InputError, match="no roll call 42"), db.session_scope(engine) as session:
        muster.get(session, 42)


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_roll_call(cli):
    cli("visitor", "sign-in", "Ada Lovelace", "--badge", "B1")
    cli("visitor", "sign-in", "Grace Hopper")
    assert "no roll call yet" in cli("muster", "status").stdout
    assert "started: 2 on site" in cli("muster", "start").stdout
    assert "already" not in cli("muster", "start", code=2).stdout
    assert "(1 not marked safe)" in cli("muster", "mark", "ada lovelace", "safe").stdout
    cli("muster", "mark", "Grace Hopper", "missing")
    cli("muster", "mark", "Nobody", "safe", code=2)
    cli("muster", "mark", "Grace Hopper", "fine", code=2)
    status = cli("muster", "status").stdout
    assert "1 safe, 1 missing, 0 not checked, of 2" in status
    assert status.index("Grace Hopper") < status.index("Ada Lovelace")  # missing first
    as_json = json.loads(cli("muster", "status", "--format", "json").stdout)
    assert as_json["counts"] == {"safe": 1, "missing": 1, "unknown": 0, "left": 0, "total": 2}
    assert "1 safe, 1 missing" in cli("muster", "close").stdout
    cli("muster", "close", code=2)
    assert "to" in cli("muster", "status", "--id", "1").stdout
    cli("muster", "status", "--id", "7", code=2)


def test_cli_roll_call_needs_a_role(cli):
    config = cli.config('[roles]\nprivacy = ["somebody-else"]\n')
    result = cli("muster", "start", config=config, code=3)
    assert "needs role reception or security" in result.stderr
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Muster)).one() == 0
        assert session.exec(select(func.count()).select_from(MusterEntry)).one() == 0
        refused = session.exec(select(AuditEntry).where(AuditEntry.action == "refused")).one()
        assert json.loads(refused.details)["command"] == "muster start"
    engine.dispose()


def test_cli_roll_call_gains_late_arrivals_and_marks_leavers(cli):
    cli("visitor", "sign-in", "Ada Lovelace", "--badge", "B1")
    cli("visitor", "sign-in", "Grace Hopper")
    cli("visitor", "sign-in", "Linus Torvalds")
    cli("muster", "start")
    cli("muster", "mark", "Linus Torvalds", "safe")
    cli("visitor", "sign-in", "Ken Thompson")  # arrives during the roll call
    cli("visitor", "sign-out", "--name", "Grace Hopper")  # leaves before anyone checked her
    cli("visitor", "sign-out", "--name", "Linus Torvalds")  # leaves after being marked safe
    as_json = json.loads(cli("muster", "status", "--format", "json").stdout)
    entries = {e["name"]: e for e in as_json["entries"]}
    assert set(entries) == {"Ada Lovelace", "Grace Hopper", "Ken Thompson", "Linus Torvalds"}
    assert entries["Ken Thompson"]["status"] == "unknown"
    assert entries["Ken Thompson"]["joined_at"] is not None
    assert entries["Ada Lovelace"]["joined_at"] is None
    assert (entries["Grace Hopper"]["status"], entries["Grace Hopper"]["left_at"] is None) == (
        "left",
        False,
    )
    assert entries["Linus Torvalds"]["status"] == "safe"  # checked: stays safe, and left
    assert entries["Linus Torvalds"]["left_at"] is not None
    assert as_json["counts"] == {"safe": 1, "missing": 0, "unknown": 2, "left": 1, "total": 4}
    status = cli("muster", "status").stdout
    ken = next(line for line in status.splitlines() if "Ken Thompson" in line)
    assert "after the start" in ken
    grace = next(line for line in status.splitlines() if "Grace Hopper" in line)
    assert "left" in grace
    assert "1 safe, 0 missing, 2 not checked, 1 left, of 4" in status
    # A person may not be marked `left` by hand: that comes from reception.
    cli("muster", "mark", "Ada Lovelace", "left", code=2)
    cli("muster", "close")
    cli("visitor", "sign-in", "Dennis Ritchie")  # after the close: the record stays as it was
    assert json.loads(cli("muster", "status", "--format", "json").stdout)["counts"]["total"] == 4


def test_the_roll_call_page_shows_late_arrivals_and_leavers(db_url, engine, monkeypatch):
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from facility.accounts import users
    from tests.webapp import Clock, add_user, form_token, login, make_app

    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024))
    add_user(engine, "rita", "reception")
    clock = Clock(T0)
    browser = TestClient(make_app(db_url, engine, clock), base_url="https://testserver")
    login(browser, "rita")
    token = form_token(browser.get("/reception").text)

    def sign_in(name: str) -> None:
        response = browser.post("/reception/sign-in", data={"name": name, "csrf_token": token})
        assert response.status_code in (200, 303), response.text

    sign_in("Ada Lovelace")
    sign_in("Grace Hopper")
    browser.post("/muster/start", data={"csrf_token": token})
    clock.advance(minutes=4)
    sign_in("Ken Thompson")
    clock.advance(minutes=2)
    with db.session_scope(engine) as session:
        grace = session.exec(select(Visit).where(Visit.name == "Grace Hopper")).one()
    browser.post(f"/reception/visits/{grace.id}/sign-out", data={"csrf_token": token})
    page = browser.get("/muster/1").text
    rows = {
        name: re.search(rf"<tr id=\"e\d+\"[^>]*>\s*<td class=\"name\">{name}.*?</tr>", page, re.S)
        for name in ("Ada Lovelace", "Grace Hopper", "Ken Thompson")
    }
    assert all(rows.values()), page
    assert "arrived 2026-06-01 11:04 CEST, after the start" in rows["Ken Thompson"].group(0)
    assert "after the start" not in rows["Ada Lovelace"].group(0)
    grace_row = rows["Grace Hopper"].group(0)
    assert 'class="status-left"' in grace_row and "left 2026-06-01 11:06" in grace_row
    # Leavers are accounted for: the list of people still to find leaves them out.
    still_open = browser.get("/muster/1?show=open").text
    assert "Ken Thompson" in still_open and "Grace Hopper" not in still_open
    assert "<b>1</b> left" in page
