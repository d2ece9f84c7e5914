"""A shortened policy waits `policy.shortening_delay` before the purge uses it (issue 17).

Tested at the purge, on both engines: a visit that the shorter policy would expire survives every
purge before the delay has passed, goes at the first one after it, survives for good when the
shortening is taken back in time, and goes at once when an admin applies the shortening. `policy
show`, the report and the audit trail say what waits and what happened.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import col, select

from facility.accounts.access import current_identity
from facility.retention import policies
from facility.settings import Settings
from facility.store import db
from facility.store.models import AuditEntry, Visit
from tests.factories import NOW, D, H, add, add_offices, ids, make_settings, run, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

DELAY = timedelta(hours=24)


def _shorten_visits_to_one_day(cli) -> None:
    out = cli("policy", "set", "visits", "1d", "--reason", "DPIA 2026-11", "--yes").stdout
    assert "visits: 3d -> 1d from 2026-07-02 14:00 CEST" in out
    assert "until then 3d stays in force" in out


def _actions(engine) -> list[tuple[str, dict]]:
    with db.session_scope(engine) as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
        return [(r.action, json.loads(r.details)) for r in rows]


def test_the_purge_keeps_the_longer_policy_until_the_delay_has_passed(cli, engine, isolated_env):
    # Signed out 36 hours ago: past a 1d policy already, and kept by the 3d one until NOW + 36h.
    (visit_id,) = add(engine, visit("Ada Lovelace", NOW - 37 * H, NOW - 36 * H))
    settings = make_settings(home=isolated_env)
    _shorten_visits_to_one_day(cli)

    # Within the delay the 3d policy is in force: a run an hour later, and one a minute before
    # the shortening takes effect, delete nothing.
    for later in (H, DELAY - timedelta(minutes=1)):
        result = run(engine, settings, now=NOW + later)
        assert result.kinds["visits"].deleted == 0, later
        assert ids(engine, Visit) == {visit_id}
    # The first run after the delay (still before the 3d policy would let it go) uses the
    # shorter policy, and says so.
    result = run(engine, settings, now=NOW + DELAY + timedelta(minutes=1))
    assert result.kinds["visits"].deleted == 1 and ids(engine, Visit) == set()
    assert "visits: the shortening to 1d took effect" in result.notes
    shortened = [d for action, d in _actions(engine) if action == "policy.shortened"]
    assert shortened == [
        {
            "kind": "visits",
            "old_seconds": 3 * 86400,
            "new_seconds": 86400,
            "in_force_since": "2026-07-02T12:00:00Z",
        }
    ]
    shown = json.loads(cli("policy", "show", "--format", "json").stdout)[0]
    assert (shown["seconds"], shown["pending"]) == (86400, None)


def test_a_shortening_taken_back_within_the_delay_deletes_nothing(cli, engine, isolated_env):
    (kept,) = add(engine, visit("Ada Lovelace", NOW - 37 * H, NOW - 36 * H))
    _shorten_visits_to_one_day(cli)
    out = cli("policy", "set", "visits", "3d", "--reason", "typo: meant camera").stdout
    assert "the shortening to 1d that was waiting is withdrawn" in out
    run(engine, make_settings(home=isolated_env), now=NOW + DELAY + H)
    assert ids(engine, Visit) == {kept}
    withdrawn = [d for a, d in _actions(engine) if a == "policy.set"][-1]
    assert withdrawn["withdrawn_seconds"] == 86400 and withdrawn["new_seconds"] == 3 * 86400


def test_an_admin_applies_a_shortening_at_once_with_a_reason(cli, engine, isolated_env, tmp_path):
    add(engine, visit("Ada Lovelace", NOW - 37 * H, NOW - 36 * H))
    _shorten_visits_to_one_day(cli)
    refused = cli("policy", "apply", "camera", "--reason", "r", code=2)
    assert "no shortening of camera is waiting" in refused.stderr
    privacy_only = tmp_path / "privacy-only.toml"  # not ./facility.toml: later commands skip it
    privacy_only.write_text(f'[roles]\nprivacy = ["{_me()}"]\n', encoding="utf-8")
    denied = cli("policy", "apply", "visits", "--reason", "r", config=privacy_only, code=3)
    assert "needs role admin" in denied.stderr
    assert "in force now" in cli("policy", "apply", "visits", "--reason", "court order").stdout
    assert run(engine, make_settings(home=isolated_env), now=NOW + H).kinds["visits"].deleted == 1
    applied = [d for a, d in _actions(engine) if a == "policy.apply"]
    assert applied[0]["reason"] == "court order" and applied[0]["new_seconds"] == 86400


def test_policy_show_and_the_report_say_what_waits(cli):
    _shorten_visits_to_one_day(cli)
    table = cli("policy", "show").stdout
    assert "1d from 2026-07-02 14:00 CEST" in table.splitlines()[2]
    report = json.loads(cli("report", "--format", "json").stdout)
    assert report["pending_policies"] == [
        {
            "kind": "visits",
            "duration": "1d",
            "seconds": 86400,
            "takes_effect": "2026-07-02T12:00:00Z",
            "set_by": _me(),
        }
    ]
    assert report["kinds"]["visits"]["policy_seconds"] == 3 * 86400
    assert any("visits: a shortening to 1d waits for its delay" in w for w in report["warnings"])
    assert "| visits | 1d | 2026-07-02 14:00 CEST |" in cli("report").stdout


def test_a_delay_of_zero_shortens_at_once(cli, monkeypatch):
    monkeypatch.setenv("FACILITY_POLICY__SHORTENING_DELAY", "0s")
    out = cli("policy", "set", "visits", "1d", "--reason", "r", "--yes").stdout
    assert "visits: 3d -> 1d (takes effect at the next purge)" in out
    shown = json.loads(cli("policy", "show", "--format", "json").stdout)[0]
    assert (shown["seconds"], shown["pending"]) == (86400, None)


def test_in_force_counts_a_shortening_only_from_its_instant(engine):
    with db.session_scope(engine) as session:
        change = policies.set_policy(
            session, "camera", 7 * D, now=NOW, actor="t", reason="r", delay=DELAY
        )
    assert change.takes_effect == NOW + DELAY
    with db.session_scope(engine) as session:
        before = policies.in_force(session, now=NOW + DELAY - timedelta(microseconds=1))
        at = policies.in_force(session, now=NOW + DELAY)
    assert (before["camera"], at["camera"]) == (14 * D, 7 * D)
    assert Settings().policy.shortening_delay == DELAY


def _me() -> str:
    from facility.accounts.access import current_identity

    return current_identity().name


def test_policy_show_for_a_site_shows_its_own_waiting_shortening(cli):
    add_offices(cli)
    said = cli("--site", "bru", "policy", "set", "visits", "1d", "--reason", "less", "--yes")
    assert "from 2026-07-02 14:00" in said.stdout

    def at(site: str) -> dict:
        shown = json.loads(cli("--site", site, "policy", "show", "--format", "json").stdout)
        return next(p for p in shown if p["kind"] == "visits")

    waiting = at("bru")
    assert (waiting["from"], waiting["seconds"]) == ("site", 3 * 86400)
    assert waiting["pending"] == {
        "duration": "1d",
        "seconds": 86400,
        "takes_effect": "2026-07-02T12:00:00Z",
        "set_by": current_identity().name,
    }
    assert at("main")["pending"] is None  # the organisation's policy waits for nothing
    table = cli("--site", "bru", "policy", "show").stdout
    assert "shortening waiting" in table
    assert "1d from 2026-07-02 14:00" in next(
        line for line in table.splitlines() if "visits" in line
    )
    # A site that follows the organisation's policy sees the organisation's shortening waiting.
    cli("policy", "set", "camera", "7d", "--reason", "DPIA", "--yes")
    camera = json.loads(cli("--site", "main", "policy", "show", "--format", "json").stdout)
    assert next(p for p in camera if p["kind"] == "camera")["pending"]["seconds"] == 7 * 86400
