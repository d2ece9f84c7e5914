"""The retention report: overdue records fail it by id, held ones are listed by case, its JSON shape,
the audit chain, the period's bookkeeping and the age buckets. Both engines; the CLI's clock is
fixed at NOW so the data can sit on exact boundaries.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from facility.errors import RejectedInput
from facility.operations import jobruns
from facility.privacy import report
from facility.privacy.report_render import md_table
from facility.retention import holds
from facility.sources import ingest
from facility.store import db, kinds
from facility.store.models import AuditEntry
from tests.factories import (
    DROP_TRIGGERS,
    NOW,
    D,
    H,
    add,
    door,
    lease,
    loan,
    make_settings,
    place,
    run,
    segment,
    visit,
    write_files,
)

pytestmark = pytest.mark.usefixtures("fixed_clock")

MIN = timedelta(minutes=1)
REQUIRED_KIND_KEYS = {
    "policy_seconds",
    "count",
    "oldest_retain_from",
    "overdue_unheld",
    "overdue_held",
}


def _report(cli, *args: str, code: int = 0) -> dict:
    result = cli("report", "--format", "json", *args, code=code)
    return json.loads(result.stdout) | {"_stderr": result.stderr}


def seed_site(engine, root) -> dict[str, list[int]]:
    """Records of every kind: fresh ones, expired ones, open ones; returns the fresh ids."""
    fresh_segment = segment("cam1", NOW - 2 * D)
    old_segment = segment("cam1", NOW - 20 * D)
    write_files(root, fresh_segment, old_segment)
    fresh = {
        "visits": add(engine, visit("Ada", NOW - 2 * D - H, NOW - 2 * D)),
        "badges": add(engine, loan("B1", None, NOW - 2 * D - H, NOW - 2 * D)),
        "door_events": add(engine, door("D1", "B1", NOW - H), door("D1", "B1", NOW - 2 * D)),
        "camera": add(engine, fresh_segment),
        "wifi": add(engine, lease("aa:bb:cc:dd:ee:01", NOW - 100 * D, ends=NOW - 99 * D)),
    }
    add(engine, visit("Old", NOW - 10 * D, NOW - 10 * D + H), door("D2", "B7", NOW - 9 * D))
    add(engine, old_segment, lease("aa:bb:cc:dd:ee:02", NOW - 400 * D, ends=NOW - 399 * D))
    fresh["open"] = add(engine, visit("Still Here", NOW - H))
    return fresh


def test_a_report_after_a_normal_purge_is_ok_with_nothing_overdue(cli, engine, tmp_path):
    fresh = seed_site(engine, tmp_path / "rec")
    with db.session_scope(engine) as session:
        ingest.record_rejection(session, RejectedInput("bad", source="mqtt", raw=b"x"), now=NOW)
        ingest.record_rejection(session, RejectedInput("bad", source="mqtt", raw=b"y"), now=NOW)
        jobruns.record(session, "purge", now=NOW - MIN, detail={})
        jobruns.record(session, "camera scan", now=NOW - H, error="root not mounted")
    purged = run(engine, make_settings(tmp_path / "rec"), now=NOW - MIN)
    body = _report(cli)
    assert body["ok"] is True and body["failures"] == []
    for kind, status in body["kinds"].items():
        assert status["overdue_unheld"] == 0, kind
        assert status["overdue_held"] == 0, kind
    counts = {kind: s["count"] for kind, s in body["kinds"].items()}
    assert counts == {
        "visits": 2,
        "badges": 1,
        "door_events": 2,
        "camera": 1,
        "wifi": 1,
        "rejections": 2,
        "requests": 0,
        "expected": 0,
        "hosts": 0,
        "notifications": 0,
    }
    assert body["kinds"]["visits"]["open"] == 1
    assert body["kinds"]["visits"]["policy_seconds"] == 3 * 86400
    assert body["kinds"]["door_events"]["oldest_retain_from"] == _iso(NOW - 2 * D)
    assert body["kinds"]["door_events"]["oldest_age_seconds"] == 2 * 86400
    # Every started record is in exactly one age bucket.
    for kind, status in body["kinds"].items():
        charted = sum(
            b["within"] + b["held"] + b["awaiting"] + b["overdue"] for b in status["ages"]
        )
        assert charted == status["count"] - status["open"], kind
    (run_,) = body["purges"]
    assert run_["deleted"] == {k: v.deleted for k, v in purged.kinds.items()}
    assert run_["deleted"]["camera"] == 1 and run_["deleted"]["wifi"] == 1
    assert body["rejections"] == {"mqtt": 2}
    jobs = {j["job"]: j for j in body["jobs"]}
    assert jobs["purge"]["failing"] is False and jobs["camera scan"]["failing"] is True
    assert any("camera scan" in w for w in body["warnings"])
    assert body["audit"]["ok"] is True and body["audit"]["head"] == purged.audit_head
    md = cli("report").stdout
    assert "**Result: OK.**" in md and purged.audit_head in md
    assert body["kinds"]["visits"]["oldest_retain_from"] == _iso(NOW - 2 * D)
    assert fresh["open"][0] not in body["kinds"]["visits"]["overdue_unheld_ids"]


def test_the_json_keeps_the_documented_shape(cli):
    body = _report(cli)
    assert {"generated_at", "kinds", "holds", "purges", "audit"} <= set(body)
    assert body["generated_at"] == _iso(NOW)
    assert list(body["kinds"]) == list(kinds.NAMES)
    for status in body["kinds"].values():
        assert set(status) >= REQUIRED_KIND_KEYS
        assert isinstance(status["overdue_unheld"], int)
        assert isinstance(status["overdue_held"], int)
    assert {"ok", "entries", "head"} <= set(body["audit"])
    assert body["audit"]["entries"] == 1  # the policy seed
    assert body["holds"] == [] and body["purges"] == []
    assert "no purge run in the period" in body["warnings"]


def test_a_record_past_its_policy_with_no_purge_fails_the_report_by_id(cli, engine):
    # Expired by more than one purge interval (15 min): overdue. Expired by less: awaiting.
    (late,) = add(engine, visit("Late", NOW - 3 * D - 2 * H, NOW - 3 * D - 16 * MIN))
    (awaiting,) = add(engine, visit("Soon", NOW - 3 * D - 2 * H, NOW - 3 * D - 14 * MIN))
    body = _report(cli, code=1)
    visits = body["kinds"]["visits"]
    assert visits["overdue_unheld"] == 1 and visits["overdue_unheld_ids"] == [late]
    assert visits["awaiting_purge"] == 1 and awaiting not in visits["overdue_unheld_ids"]
    assert body["ok"] is False
    assert "visits: 1 record(s) overdue and not held" in body["_stderr"]
    md = cli("report", code=1)
    assert "**Result: FAILED.**" in md.stdout
    assert f"**visits overdue, not held:** ids {late}" in md.stdout
    run(engine, now=NOW)
    assert _report(cli)["kinds"]["visits"]["overdue_unheld"] == 0


def test_the_overdue_id_list_is_capped_but_the_count_is_not(cli, engine, monkeypatch):
    monkeypatch.setattr(report, "ID_CAP", 3)
    rows = add(engine, *(door("D1", "B1", NOW - 5 * D - i * MIN) for i in range(5)))
    status = _report(cli, code=1)["kinds"]["door_events"]
    assert status["overdue_unheld"] == 5
    assert status["overdue_unheld_ids"] == sorted(rows, reverse=True)[:3]  # oldest first
    assert status["overdue_unheld_ids_capped"] is True


def test_held_overdue_records_are_listed_under_their_case(cli, engine):
    incident = NOW - 10 * D
    add(engine, door("D1", "B1", incident), door("D1", "B2", incident + H))
    add(engine, door("D2", "B3", incident))  # same time, another door: not held, purged
    place(engine, "INC-1", [("door_events", "D1")], incident - H, incident + 2 * H, now=incident)
    cli(
        "hold", "place", "INC-2", "--reason", "r", "--from", "2026-01-01T00:00Z",
        "--to", "2026-01-02T00:00Z", "--camera", "cam9", "--review-by", _iso(NOW - D),
    )  # fmt: skip
    place(engine, "INC-OLD", [("door_events", "D9")], incident, incident, now=incident)
    with db.session_scope(engine) as session:
        holds.release(session, now=NOW - H, actor="tests", case="INC-OLD", reason="closed")
    run(engine, now=NOW)
    body = _report(cli)
    status = body["kinds"]["door_events"]
    assert status["count"] == 2 and status["overdue_unheld"] == 0
    assert status["overdue_held"] == 2
    assert status["overdue_held_by_case"] == {"INC-1": 2}
    cases = {h["case"]: h for h in body["holds"]}
    assert set(cases) == {"INC-1", "INC-2", "INC-OLD"}  # INC-OLD still protects (grace)
    assert cases["INC-1"]["keeps"]["door_events"] == 2
    assert cases["INC-1"]["age_seconds"] == 10 * 86400
    assert cases["INC-2"]["review_passed"] is True and cases["INC-1"]["review_passed"] is False
    assert cases["INC-OLD"]["protects_until"] == _iso(NOW - H + 24 * H)
    assert [r["case"] for r in body["releases"]] == ["INC-OLD"]
    assert "hold INC-2: review date passed" in body["warnings"]
    past = [b for b in status["ages"] if b["held"]]
    assert sum(b["held"] for b in past) == 2 and all(b["from_seconds"] >= 3 * 86400 for b in past)
    md = cli("report").stdout
    assert "| INC-1 | door_events | 2 |" in md


def test_a_broken_audit_chain_fails_the_report(cli, engine):
    run(engine, now=NOW)
    with engine.begin() as conn:
        for statement in DROP_TRIGGERS[engine.dialect.name]:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("UPDATE audit_log SET actor = 'someone' WHERE seq = 1")
    body = _report(cli, code=1)
    assert body["audit"]["ok"] is False and body["audit"]["first_bad_seq"] == 1
    assert "audit chain broken at seq 1" in body["_stderr"]
    assert "BROKEN" in cli("report", code=1).stdout


def test_a_head_from_an_earlier_report_must_still_be_in_the_trail(cli, engine):
    head = _report(cli)["audit"]["head"]
    run(engine, now=NOW)
    assert _report(cli, "--head", head)["audit"]["ok"] is True
    body = _report(cli, "--head", "f" * 64, code=1)
    assert "cut off" in body["audit"]["problem"]
    assert "--head" in cli("report", "--head", "nope", code=2).stderr


def test_since_narrows_the_period(cli, engine):
    run(engine, now=NOW - 5 * D)
    run(engine, now=NOW - D)
    assert len(_report(cli)["purges"]) == 2
    assert len(_report(cli, "--since", _iso(NOW - 2 * D))["purges"]) == 1
    assert "--since" in cli("report", "--since", "tomorrow", code=2).stderr


def test_output_goes_to_a_file_and_stdout_says_where(cli, engine, tmp_path):
    target = tmp_path / "report.md"
    out = cli("report", "--output", str(target)).stdout
    assert f"report written to {target}: OK" in out
    assert target.read_text(encoding="utf-8").startswith("# Retention report")
    add(engine, door("D1", "B1", NOW - 10 * D))
    failed = cli("report", "--format", "html", "--output", str(target), code=1)
    assert "FAILED" in failed.stdout and "<svg" in target.read_text(encoding="utf-8")


def test_the_report_needs_role_privacy(cli):
    from facility.accounts.access import current_identity

    me = current_identity().name
    reception = cli.config(f'[roles]\nreception = ["{me}"]\n')
    assert "needs role privacy" in cli("report", config=reception, code=3).stderr


def test_the_html_is_one_self_contained_file(cli, engine):
    add(engine, door("D1", "B1", NOW - H))
    page = cli("report", "--format", "html").stdout
    charts = page.count('<svg xmlns="http://www.w3.org/2000/svg"')
    assert charts == len(kinds.NAMES)  # a chart per policy kind
    for needle in ("<script", "src=", "<link", "@import", "url(", "http://", "https://"):
        # pygal names itself in SVG comments and xmlns; nothing else may point outside.
        outside = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
        outside = outside.replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")
        outside = "".join(part.split("-->", 1)[-1] for part in outside.split("<!--"))
        assert needle not in outside, needle
    assert "@media print" in page


# --- pieces -------------------------------------------------------------------------------------


def test_bucket_edges_put_the_policy_on_an_edge_and_reach_the_oldest_record():
    policy = timedelta(days=3)
    edges = report.bucket_edges(policy, timedelta(days=1))
    assert edges[report.AGE_BUCKETS] == policy and len(edges) == report.AGE_BUCKETS + 3
    far = report.bucket_edges(policy, timedelta(days=400))
    assert far[-1] >= timedelta(days=400) and len(far) <= 2 * report.AGE_BUCKETS + 1
    assert report.bucket_edges(timedelta(0), None)[:3] == [
        -timedelta(hours=1),
        timedelta(0),
        timedelta(hours=1),
    ]
    odd = report.bucket_edges(timedelta(seconds=7), timedelta(seconds=7))
    assert timedelta(seconds=7) in odd and odd == sorted(odd)


def test_future_clocks_count_as_young_and_a_zero_policy_still_reports(engine):
    add(engine, lease("aa:bb:cc:dd:ee:03", NOW - D, ends=NOW + 5 * D))
    add(engine, lease("aa:bb:cc:dd:ee:04", NOW - D, ends=NOW - 5 * MIN))
    year, zero = timedelta(days=365), timedelta(0)
    with db.session_scope(engine) as session:
        status = report.kind_status(session, "wifi", year, NOW, 15 * MIN, D)
        assert status.ages[0].within == 2 and status.oldest_age == 5 * MIN
        nothing_kept = report.kind_status(session, "wifi", zero, NOW, 15 * MIN, D)
        assert nothing_kept.overdue_unheld == 0 and nothing_kept.awaiting == 1
        assert nothing_kept.ages[0].within == 1  # the clock that starts in five days
        assert nothing_kept.ages[1].awaiting == 1
        later = report.kind_status(session, "wifi", zero, NOW + 6 * D, 15 * MIN, D)
        assert later.overdue_unheld == 2


def test_md_tables_escape_pipes():
    assert md_table(["a"], [["x|y\nz"]]).splitlines()[-1] == "| x\\|y z |"


def test_the_report_writes_nothing_to_the_trail(cli, engine):
    before = _entries(engine)
    cli("report")
    assert _entries(engine) == before


def _entries(engine) -> int:
    with db.session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
