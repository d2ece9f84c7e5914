"""The register of data-subject requests and its deadlines (GDPR article 12(3), issue 17).

End to end through the CLI on both engines: a request is due one month after it was received
(counted as Regulation 1182/71 counts months), may be extended by two months within the first,
makes the report fail once it is overdue, is answered by the commands that name it, and is kept
`retention.requests` after it is closed, then purged like any record.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, select

from facility.accounts.access import current_identity
from facility.privacy.requests import add_months, due_instant
from facility.store import db
from facility.store.models import AuditEntry, DataRequest
from facility.timeutil import zone
from tests.factories import NOW, D, H, add, make_settings, run, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

AMSTERDAM = zone("Europe/Amsterdam")
NAME = "Ada Lovelace"
# NOW is 2026-07-01 14:00 CEST.


def _open(cli, kind: str = "access", *who: str, received: str = "2026-06-20") -> int:
    args = who or ("--name", NAME)
    out = cli("request", "open", kind, *args, "--received", received, "--contact", "ada@x.org")
    return int(out.stdout.split()[1].rstrip(":"))


def _listed(cli, *args: str) -> list[dict]:
    return json.loads(cli("request", "list", *args, "--format", "json").stdout)


def _audit(engine, action: str) -> list[dict]:
    with db.session_scope(engine) as session:
        rows = session.exec(
            select(AuditEntry).where(AuditEntry.action == action).order_by(col(AuditEntry.seq))
        ).all()
        return [json.loads(r.details) for r in rows]


def test_a_request_is_due_one_month_after_it_was_received(cli, engine):
    out = cli(
        "request", "open", "access", "--name", NAME, "--received", "2026-06-20",
        "--contact", "ada@example.org",
    ).stdout  # fmt: skip
    assert out.startswith("request 1: access about name Ada Lovelace, received 2026-06-20 00:00")
    assert out.rstrip().endswith("answer by 2026-07-20")
    (row,) = _listed(cli)
    assert row["due_at"] == "2026-07-20T22:00:00Z"  # the end of 20 July, Amsterdam time
    assert (row["state"], row["contact"], row["subject"]) == (
        "open",
        "ada@example.org",
        {"kind": "name", "value": NAME},
    )
    # The trail names the request and the subject's keyed hash, never the name or the contact.
    (entry,) = _audit(engine, "request.open")
    assert entry["request"] == 1 and entry["type"] == "access" and len(entry["subject"]) == 64
    assert NAME not in json.dumps(entry) and "ada@" not in json.dumps(entry)


def test_an_overdue_request_fails_the_report_until_it_is_closed(cli, engine):
    late = _open(cli, "erasure", received="2026-05-31")  # due at the end of 30 June
    _open(cli, "access", received="2026-06-30")
    assert [r["id"] for r in _listed(cli, "--overdue")] == [late]
    assert len(_listed(cli, "--open")) == 2
    failed = cli("report", "--format", "json", code=1)
    body = json.loads(failed.stdout)
    assert body["ok"] is False
    assert (
        "requests: 1 data-subject request(s) past their deadline: 1 (erasure)" in body["failures"]
    )
    assert [r["id"] for r in body["requests"]["open"]] == [1, 2]
    assert [r["id"] for r in body["requests"]["overdue"]] == [late]
    assert "contact" not in body["requests"]["open"][0]  # the report names no one
    assert (
        "| 1 | erasure | 2026-05-31 00:00 CEST | 2026-06-30 |  | OVERDUE |"
        in cli("report", code=1).stdout
    )
    assert (
        "closed (past its deadline)"
        in cli("request", "close", str(late), "--outcome", "erased, told by mail").stdout
    )
    assert json.loads(cli("report", "--format", "json").stdout)["ok"] is True
    (closed,) = _audit(engine, "request.close")
    assert closed == {"request": late, "type": "erasure", "late": True}


def test_an_extension_is_decided_within_the_first_month_and_is_at_most_two(cli):
    first = _open(cli, received="2026-06-15")  # due 15 July
    named = cli("request", "extend", str(first), "--reason", f"asked by {NAME}", code=2)
    assert "contains the subject's name" in named.stderr  # the trail keeps the reason
    out = cli("request", "extend", str(first), "--months", "1", "--reason", "many records").stdout
    assert "answer by 2026-08-15" in out
    again = cli("request", "extend", str(first), "--months", "2", "--reason", "r", code=2)
    assert "1 more month(s) at most" in again.stderr
    cli("request", "extend", str(first), "--months", "1", "--reason", "still many")
    assert {r["id"]: r["due_at"] for r in _listed(cli)}[first] == "2026-09-15T22:00:00Z"
    # Past the first month the person should already have been told: too late to extend.
    late = _open(cli, received="2026-05-15")
    refused = cli("request", "extend", str(late), "--reason", "r", code=2)
    assert "within the first month, by 2026-06-15" in refused.stderr
    assert {r["id"]: r["extended_months"] for r in _listed(cli)}[late] == 0


def test_the_commands_that_answer_a_request_name_it_and_check_it(cli, engine):
    add(engine, visit(NAME, NOW - 2 * H, NOW - H))
    access = _open(cli, "access")
    erasure = _open(cli, "erasure")
    other = _open(cli, "access", "--name", "Grace Hopper")
    wrong_type = cli("subject", "export", "--name", NAME, "--request", str(erasure), code=2)
    assert "asks for erasure; `subject export` answers access or portability" in wrong_type.stderr
    wrong_person = cli("subject", "export", "--name", NAME, "--request", str(other), code=2)
    assert "is about another subject" in wrong_person.stderr
    missing = cli("subject", "export", "--name", NAME, "--request", "99", code=2)
    assert "there is no request 99" in missing.stderr
    exported = json.loads(cli("subject", "export", "--name", NAME, "--request", str(access)).stdout)
    assert [r["id"] for r in exported["requests"]] == [access, erasure]  # access reaches them
    assert _audit(engine, "subject.export")[-1]["request"] == access
    cli("request", "close", str(access), "--outcome", "export sent")
    closed = cli("subject", "export", "--name", NAME, "--request", str(access), code=2)
    assert f"request {access} is closed" in closed.stderr
    erased = cli(
        "subject", "erase", "--name", NAME, "--reason", "DSR-2", "--yes", "--request", str(erasure)
    ).stdout
    assert "visits 1" in erased and "kept: 2 data-subject request(s)" in erased
    assert _audit(engine, "subject.erase")[-1]["request"] == erasure
    assert len(_listed(cli)) == 3  # the register itself outlives the erasure


def test_bad_input_is_refused_and_nothing_is_stored(cli, engine):
    for args, message in (
        (["sue", "--name", NAME, "--received", "2026-06-01"], "TYPE: 'sue' is not a request"),
        (["access", "--received", "2026-06-01"], "give exactly one of --name, --mac, --badge"),
        (["access", "--name", NAME, "--received", "2026-07-09"], "is in the future"),
        (["access", "--name", NAME, "--received", "yesterday"], "--received: 'yesterday'"),
    ):
        refused = cli("request", "open", *args, "--contact", "c", code=2)
        assert message in refused.stderr, refused.stderr
    blank = cli("request", "open", "access", "--name", NAME, "--received", "2026-06-01",
                "--contact", "  ", code=2)  # fmt: skip
    assert "--contact: must not be empty" in blank.stderr
    assert cli("request", "close", "7", "--outcome", "x", code=2).stderr.endswith(
        "there is no request 7\n"
    )
    with db.session_scope(engine) as session:
        assert session.exec(select(DataRequest)).all() == []


def test_a_closed_request_is_kept_its_policy_then_purged(cli, engine, isolated_env):
    first = _open(cli)
    cli("request", "close", str(first), "--outcome", "export sent")
    settings = make_settings(home=isolated_env)
    assert run(engine, settings, now=NOW + 729 * D).kinds["requests"].deleted == 0
    assert run(engine, settings, now=NOW + 731 * D).kinds["requests"].deleted == 1
    # An open request is in use: never purged, however old.
    _open(cli, received="2020-01-01")
    assert run(engine, settings, now=NOW + 4000 * D).kinds["requests"].deleted == 0


def test_the_roles_that_may_handle_requests(cli, tmp_path):
    me = current_identity().name
    reception = tmp_path / "reception.toml"
    reception.write_text(f'[roles]\nreception = ["{me}"]\n', encoding="utf-8")
    refused = cli("request", "list", config=reception, code=3)
    assert "needs role privacy" in refused.stderr


# --- the period itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (date(2026, 1, 15), date(2026, 2, 15)),
        (date(2026, 1, 31), date(2026, 2, 28)),  # no 31 February: the month's last day
        (date(2028, 1, 30), date(2028, 2, 29)),
        (date(2026, 12, 31), date(2027, 1, 31)),
    ],
)
def test_one_month_is_the_same_date_or_the_month_s_last_day(received, due):
    assert add_months(received, 1) == due


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2199, 1, 1)), st.integers(1, 3))
def test_a_period_of_months_ends_in_the_right_month_never_before_its_start(day, months):
    end = add_months(day, months)
    assert (end.year * 12 + end.month) - (day.year * 12 + day.month) == months
    assert end.day == day.day or (end.day < day.day and (end + timedelta(days=1)).day == 1)
    # The deadline is the first instant of the day after, in site time, whatever DST does.
    received = datetime.combine(day, time(12), tzinfo=AMSTERDAM)
    late = due_instant(received, months, AMSTERDAM).astimezone(AMSTERDAM)
    assert late.date() == end + timedelta(days=1) and late.time() == time(0)
