"""Retention policies: `policy show`, `policy set`, the shortening question, roles and the audit."""

from __future__ import annotations

import json
import os
import pty
import select as select_fd
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from facility.accounts.access import current_identity
from facility.errors import InputError
from facility.retention import policies
from facility.store import db
from facility.store.models import AuditEntry, Visit
from tests.conftest import T0
from tests.factories import _policies, pending_policies

ME = current_identity().name
DELAY = timedelta(hours=24)


def _audit(url: str, action: str) -> list[dict]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        found = session.exec(select(AuditEntry).where(AuditEntry.action == action)).all()
        details = [json.loads(e.details) | {"actor": e.actor} for e in found]
    engine.dispose()
    return details


def _visits_retained_from(url: str, *instants: datetime | None) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        for at in instants:
            signed_in = (at or datetime.now(UTC)) - timedelta(hours=1)
            session.add(
                Visit(
                    name="V", name_key="v", signed_in_at=signed_in, signed_out_at=at, retain_from=at
                )
            )
    engine.dispose()


def test_show_lists_every_kind_in_table_and_json(cli):
    out = cli("policy", "show").stdout
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[2:]}
    assert rows["visits"] == rows["door_events"] == "3d"
    assert (rows["camera"], rows["wifi"], rows["rejections"]) == ("14d", "365d", "7d")
    shown = json.loads(cli("policy", "show", "--format", "json").stdout)
    kinds = ["visits", "badges", "door_events", "camera", "wifi", "rejections"]
    kinds += ["requests", "expected", "hosts", "notifications"]
    assert [p["kind"] for p in shown] == kinds
    assert shown[3] == {
        "kind": "camera",
        "duration": "14d",
        "seconds": 14 * 86400,
        "changed_by": "tests",
        "changed_at": "2026-06-01T12:00:00Z",
        "pending": None,
    }


def test_lengthening_needs_no_question_and_is_audited(cli):
    # 21 days: the Dutch ceiling (28 days) binds the default site, which is in NL.
    out = cli("policy", "set", "camera", "P21D", "--reason", "insurer asks for 21 days").stdout
    assert "camera: 14d -> 21d" in out
    assert _policies(cli.url)["camera"] == 21 * 86400
    (entry,) = _audit(cli.url, "policy.set")
    assert entry == {
        "kind": "camera",
        "old_seconds": 14 * 86400,
        "new_seconds": 21 * 86400,
        "reason": "insurer asks for 21 days",
        "actor": ME,
    }
    shown = json.loads(cli("policy", "show", "--format", "json").stdout)
    assert shown[3]["changed_by"] == ME and shown[3]["duration"] == "21d"


def test_setting_the_same_value_changes_nothing(cli):
    assert "already 3d" in cli("policy", "set", "visits", "72h", "--reason", "r").stdout
    assert _audit(cli.url, "policy.set") == []


def test_shortening_without_a_terminal_and_without_yes_refuses(cli):
    _visits_retained_from(cli.url, datetime.now(UTC) - timedelta(days=2))
    result = cli("policy", "set", "visits", "1d", "--reason", "minimise", code=2)
    assert "up to 1 record(s)" in result.stdout
    assert "pass --yes" in result.stderr
    assert _policies(cli.url)["visits"] == 3 * 86400
    assert _audit(cli.url, "policy.set") == []


def test_shortening_with_yes_counts_what_will_expire_and_applies(cli):
    now = datetime.now(UTC)
    _visits_retained_from(
        cli.url,
        now - timedelta(days=2),  # kept under 3d, expires under 1d: counted
        now - timedelta(days=2, hours=12),  # counted
        now - timedelta(days=4),  # expired already: not counted
        now - timedelta(hours=12),  # kept under 1d too: not counted
        None,  # still open: its clock has not started
    )
    out = cli("policy", "set", "visits", "1d", "--reason", "minimise", "--yes").stdout
    assert "Shortening visits from 3d to 1d: up to 2 record(s)" in out
    assert "visits: 3d -> 1d from " in out and "until then 3d stays in force" in out
    # The shortening waits for its delay: the policy in force is still the longer one.
    assert _policies(cli.url)["visits"] == 3 * 86400
    seconds, takes_effect = pending_policies(cli.url)["visits"]
    assert seconds == 86400 and takes_effect - now >= timedelta(hours=24)


def test_shortening_asks_a_person_at_a_terminal(cli, monkeypatch):
    # CliRunner's stdin is never a terminal; the real terminal is tested in a subprocess below.
    monkeypatch.setattr("facility.cli.policy._interactive", lambda: True)
    declined = cli("policy", "set", "visits", "1d", "--reason", "r", input="n\n", code=1)
    assert "Shorten the policy?" in declined.stdout and "nothing changed" in declined.stderr
    assert _policies(cli.url)["visits"] == 3 * 86400
    cli("policy", "set", "visits", "1d", "--reason", "r", input="y\n")
    assert pending_policies(cli.url)["visits"][0] == 86400


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_shortening_on_a_real_terminal(db_url):
    primary, secondary = pty.openpty()
    command = [sys.executable, "-c", "from facility.cli import main; main()"]
    args = ["--db", db_url, "policy", "set", "wifi", "90d", "--reason", "minimise"]
    proc = subprocess.Popen(
        command + args, stdin=secondary, stdout=secondary, stderr=secondary, env=os.environ.copy()
    )
    os.close(secondary)
    try:
        seen = _read_until(primary, b"Shorten the policy? [y/N]:")
        assert b"from 365d to 90d" in seen
        os.write(primary, b"y\n")
        assert proc.wait(timeout=30) == 0, _read_until(primary, b"\n")
    finally:
        proc.kill()
        os.close(primary)
    assert pending_policies(db_url)["wifi"][0] == 90 * 86400


def _read_until(fd: int, marker: bytes, timeout: float = 30) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select_fd.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
    return seen


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cctv", "3d"], "KIND: 'cctv' is not a kind"),
        (["visits", "three days"], "DURATION: 'three days' is not a duration"),
        (["visits", "1.5s"], "DURATION: a policy is a whole number of seconds"),
        (["visits", "40000d"], "DURATION: 40000d is not between 0s and 36500d"),
    ],
)
def test_bad_kind_or_duration_exits_2_naming_it(cli, args, message):
    result = cli("policy", "set", *args, "--reason", "r", "--yes", code=2)
    assert message in result.stderr
    assert _audit(cli.url, "policy.set") == []


def test_a_blank_reason_is_refused(cli):
    assert "--reason" in cli("policy", "set", "wifi", "400d", "--reason", "  ", code=2).stderr


def test_set_needs_admin_or_privacy_show_any_role(cli):
    reception_only = cli.config(f'[roles]\nreception = ["{ME}"]\n')
    cli("policy", "show", config=reception_only)
    refused = cli("policy", "set", "wifi", "400d", "--reason", "r", config=reception_only, code=3)
    assert "needs role admin or privacy" in refused.stderr
    (entry,) = _audit(cli.url, "refused")
    assert entry["command"] == "policy set"
    privacy = cli.config(f'[roles]\nprivacy = ["{ME}"]\n')
    cli("policy", "set", "wifi", "400d", "--reason", "r", config=privacy)
    nobody = cli.config('[roles]\nadmin = ["someone-else"]\n')
    assert "policy show" in cli("policy", "show", config=nobody, code=3).stderr


def test_expiring_if_counts_only_what_the_change_newly_expires(engine):
    new, old = timedelta(days=1), timedelta(days=3)
    us = timedelta(microseconds=1)
    instants = [
        T0 - new,  # expires exactly at T0 under the new policy: counted
        T0 - new + us,  # one microsecond short: not counted
        T0 - old + us,  # still kept under the old policy: counted
        T0 - old,  # already expired under the old policy: not counted
    ]
    with db.session_scope(engine) as session:
        for at in instants:
            session.add(
                Visit(
                    name="V", name_key="v", signed_in_at=at - us, signed_out_at=at, retain_from=at
                )
            )
    with db.session_scope(engine) as session:
        assert policies.expiring_if(session, "visits", new, now=T0) == 2
        assert policies.expiring_if(session, "visits", old, now=T0) == 0
        assert policies.expiring_if(session, "camera", timedelta(0), now=T0) == 0


def test_set_policy_refuses_unknown_kind_and_reports_the_change(engine):
    with db.session_scope(engine) as session:
        with pytest.raises(InputError, match="KIND"):
            policies.set_policy(
                session, "cctv", timedelta(days=1), now=T0, actor="t", reason="r", delay=DELAY
            )
        change = policies.set_policy(
            session, "badges", timedelta(hours=12), now=T0, actor="t", reason="r", delay=DELAY
        )
    assert change.shortens and (change.old, change.new) == (timedelta(days=3), timedelta(hours=12))
    assert change.takes_effect == T0 + DELAY
