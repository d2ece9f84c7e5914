"""Personal data outside the record tables ends too (DESIGN invariant 12, issue 13.5).

Rejected inputs expire by their own policy, show on the report, and are reached by subject export
and erasure; a released hold's personal selectors are pseudonymised once its grace has passed and
never before; and on SQLite nothing a purge or an erasure deleted can be read back from the
database file or its WAL, read as bytes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from facility.errors import RejectedInput
from facility.privacy import report
from facility.retention import pseudonyms
from facility.sources.ingest import record_rejection
from facility.store import db
from facility.store.models import Hold, HoldScope, Rejection
from facility.trail import audit
from tests.conftest import Cli
from tests.factories import NOW, D, H, add, lease, loan, make_settings, place, run, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

MAC = "de:ad:be:ef:12:34"
NAME = "Zebulon Quixotic-Marr"
GRACE = timedelta(hours=24)


def _reject(engine, raw: str, at, source: str = "mqtt") -> None:
    with db.session_scope(engine) as session:
        record_rejection(session, RejectedInput("bad payload", source=source, raw=raw), now=at)


def _rejections(engine) -> list[str]:
    with db.session_scope(engine) as session:
        return sorted(session.execute(select(Rejection.raw)).scalars())


# --- rejections ----------------------------------------------------------------------------------


def test_rejections_expire_by_their_policy_and_show_on_the_report(engine, isolated_env):
    _reject(engine, '{"mac": "' + MAC + '", "at": "nonsense"}', NOW - 8 * D)
    _reject(engine, "lease 10.0.0.7 { hardware ethernet " + MAC + "; ", NOW - 6 * D)
    with db.session_scope(engine) as session:
        before = report.build(session, now=NOW, interval=timedelta(minutes=15), grace=GRACE)
    status = before.kinds["rejections"]
    assert status.policy == 7 * D and status.count == 2 and status.overdue_unheld == 1
    assert "rejections: 1 record(s) overdue and not held" in before.failures

    result = run(engine, make_settings(home=isolated_env))
    assert result.kinds["rejections"].deleted == 1
    assert _rejections(engine) == ["lease 10.0.0.7 { hardware ethernet " + MAC + "; "]
    with db.session_scope(engine) as session:
        after = report.build(session, now=NOW, interval=timedelta(minutes=15), grace=GRACE)
    assert after.kinds["rejections"].count == 1 and after.kinds["rejections"].overdue_unheld == 0
    assert after.as_json()["kinds"]["rejections"]["policy_seconds"] == 7 * 86400


def test_the_rejections_policy_is_shown_and_set_like_any_other(cli):
    assert re.search(r"^rejections +7d ", cli("policy", "show").stdout, re.M)
    cli("policy", "set", "rejections", "2d", "--reason", "DPIA", "--yes")
    shown = json.loads(cli("policy", "show", "--format", "json").stdout)
    assert {p["kind"]: p["pending"]["seconds"] for p in shown if p["pending"]} == {
        "rejections": 2 * 86400
    }


def test_subject_export_and_erase_reach_rejections(cli, engine):
    _reject(engine, '{"mac": "DE-AD-BE-EF-12-34", "ip": "10.0.0.9"}', NOW - H)
    _reject(engine, "host " + NAME.upper() + " refused", NOW - H, source="/var/lib/misc/x")
    _reject(engine, '{"mac": "de:ad:be:ef:12:35"}', NOW - H)  # somebody else's device
    by_mac = json.loads(cli("subject", "export", "--mac", MAC).stdout)
    assert [r["raw"] for r in by_mac["rejections"]] == [
        '{"mac": "DE-AD-BE-EF-12-34", "ip": "10.0.0.9"}'
    ]
    by_name = json.loads(cli("subject", "export", "--name", "zebulon quixotic-marr").stdout)
    assert [r["source"] for r in by_name["rejections"]] == ["/var/lib/misc/x"]

    out = cli("subject", "erase", "--mac", MAC, "--reason", "DSR-1", "--yes").stdout
    assert "rejections 1" in out
    cli("subject", "erase", "--name", NAME, "--reason", "DSR-2", "--yes")
    assert _rejections(engine) == ['{"mac": "de:ad:be:ef:12:35"}']


# --- released holds -------------------------------------------------------------------------------


def _scopes(engine) -> list[tuple[str, str | None, bool]]:
    with db.session_scope(engine) as session:
        rows = session.execute(
            select(HoldScope.kind, HoldScope.selector, HoldScope.pseudonymised_at).order_by(
                HoldScope.id
            )
        ).all()
    return [(kind, selector, at is not None) for kind, selector, at in rows]


def _hold(engine) -> tuple:
    with db.session_scope(engine) as session:
        hold = session.execute(select(Hold)).scalar_one()
        return (hold.case, hold.reason, hold.window_from, hold.window_to, hold.released_at)


def test_a_released_holds_selectors_are_pseudonymised_after_its_grace_never_before(
    engine, isolated_env
):
    released = NOW - 3 * D
    scopes = [("visits", "zebulon quixotic-marr"), ("badges", "B17"), ("wifi", MAC)]
    scopes += [("camera", "dock-1"), ("door_events", None)]
    place(engine, "INC-7", scopes, NOW - 10 * D, NOW - 9 * D, released_at=released)
    before = _hold(engine)
    settings = make_settings(home=isolated_env)

    run(engine, settings, now=released + GRACE - timedelta(seconds=1))
    assert [s[1] for s in _scopes(engine)] == ["zebulon quixotic-marr", "B17", MAC, "dock-1", None]
    with db.session_scope(engine) as session:
        inside = report.build(
            session, now=released + GRACE, interval=timedelta(minutes=15), grace=GRACE
        )
        late = report.build(session, now=NOW, interval=timedelta(minutes=15), grace=GRACE)
    assert inside.ok, inside.failures  # the grace has just ended: the next run does it
    assert any("personal selector" in f for f in late.failures)

    result = run(engine, settings, now=released + GRACE)
    assert result.pseudonymised == 3
    key = audit.load_or_create_key(isolated_env / audit.KEY_FILE)
    assert _scopes(engine) == [
        ("visits", pseudonyms.pseudonym(key, "visits", "zebulon quixotic-marr"), True),
        ("badges", pseudonyms.pseudonym(key, "badges", "B17"), True),
        ("wifi", pseudonyms.pseudonym(key, "wifi", MAC), True),
        ("camera", "dock-1", False),  # a camera names no one
        ("door_events", None, False),
    ]
    assert _hold(engine) == before  # case, reason, window and release stay
    assert run(engine, settings, now=NOW).pseudonymised == 0  # once
    with db.session_scope(engine) as session:
        assert report.build(session, now=NOW, interval=timedelta(minutes=15), grace=GRACE).ok


def test_subject_export_finds_a_pseudonymised_scope_and_erasure_cuts_the_link(cli, engine):
    home = Path.cwd() / "var"  # FACILITY_HOME of every test: the CLI's audit.key lives there
    place(engine, "INC-8", [("wifi", MAC)], NOW - 10 * D, NOW - 9 * D, released_at=NOW - 2 * D)
    run(engine, make_settings(home=home))
    found = json.loads(cli("subject", "export", "--mac", MAC).stdout)["hold_scopes"]
    assert [(s["case"], s["pseudonymised"]) for s in found] == [("INC-8", True)]
    cli("subject", "erase", "--mac", MAC, "--reason", "DSR-3", "--yes")
    assert _scopes(engine) == [("wifi", "pseudonym:erased", True)]
    assert json.loads(cli("subject", "export", "--mac", MAC).stdout)["hold_scopes"] == []


# --- what SQLite's files still hold ---------------------------------------------------------------


def _sqlite_cli(tmp_path: Path) -> tuple[Cli, Path]:
    path = tmp_path / "var" / "facility.db"
    cli = Cli(f"sqlite:///{path}", tmp_path)
    cli("init")
    return cli, path


def _leftovers(path: Path, *secrets: str) -> dict[str, list[str]]:
    """Which of `secrets` (and their lower-case forms) each of the database's files still holds."""
    found = {}
    for name in (path.name, f"{path.name}-wal"):
        part = path.with_name(name)
        data = part.read_bytes() if part.exists() else b""
        hits = [s for s in secrets if s.encode() in data or s.lower().encode() in data]
        if hits:
            found[name] = hits
    return found


def _seed_person(cli_engine) -> None:
    t = NOW - 10 * D
    (v,) = add(cli_engine, visit(NAME, t, t + H))
    add(cli_engine, loan("B-77231", v, t, t + H), lease(MAC, t, ends=t + H))
    _reject(cli_engine, '{"mac": "' + MAC + '", "hostname": "' + NAME + '"}', t)


def test_nothing_purged_can_be_read_back_from_the_sqlite_file_or_its_wal(tmp_path, isolated_env):
    cli, path = _sqlite_cli(tmp_path)
    engine = db.make_engine(cli.url)
    _seed_person(engine)
    reader = sqlite3.connect(path)  # another process's connection keeps the WAL file in place
    reader.execute("SELECT count(*) FROM visits").fetchone()
    assert _leftovers(path, NAME, MAC), "the seed should be in the files before the purge"
    cli("policy", "set", "wifi", "1d", "--reason", "test", "--yes")
    cli("policy", "apply", "wifi", "--reason", "test")  # without waiting for the delay
    run(engine, make_settings(home=isolated_env))
    assert _leftovers(path, NAME, MAC, "B-77231") == {}
    reader.close()
    engine.dispose()


def test_nothing_erased_can_be_read_back_from_the_sqlite_file_or_its_wal(tmp_path):
    cli, path = _sqlite_cli(tmp_path)
    engine = db.make_engine(cli.url)
    _seed_person(engine)
    reader = sqlite3.connect(path)
    reader.execute("SELECT count(*) FROM visits").fetchone()
    cli("subject", "erase", "--name", NAME, "--reason", "DSR-4", "--yes")
    cli("subject", "erase", "--mac", MAC, "--reason", "DSR-5", "--yes")
    assert path.with_name(f"{path.name}-wal").exists()
    assert _leftovers(path, NAME, MAC, "B-77231") == {}
    reader.close()
    engine.dispose()
