"""The configuration's [retention] once the database exists: every command warns when they differ,
and `policy sync` applies the configuration, audited, asking before it shortens."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from facility.store import db
from facility.store.models import AuditEntry, Visit
from tests.factories import _policies, pending_policies

WARNING = "retention.visits = 5d in the configuration, 3d in the database"


def _audited(url: str) -> list[dict]:
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        found = session.exec(select(AuditEntry).where(AuditEntry.action == "policy.set")).all()
        details = [json.loads(e.details) for e in found]
    engine.dispose()
    return details


def test_every_command_warns_once_when_the_configuration_differs(cli):
    config = cli.config('[retention]\nvisits = "5d"\n')
    for command in (["onsite"], ["policy", "show"], ["hold", "list"], ["init"]):
        result = cli(*command, config=config)
        warnings = [line for line in result.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1, result.stderr
        assert WARNING in warnings[0] and "facility policy sync" in warnings[0]
    shown = cli("policy", "show", "--format", "json", config=config).stdout
    assert {p["kind"]: p["duration"] for p in json.loads(shown)}["visits"] == "3d"


def test_no_warning_when_the_configuration_sets_no_retention_or_agrees(cli):
    cli("policy", "set", "camera", "21d", "--reason", "longer")  # the Dutch ceiling is 28d
    silent = cli("onsite", config=cli.config('timezone = "UTC"\n'))
    assert "warning" not in silent.stderr
    agrees = cli("onsite", config=cli.config('[retention]\ncamera = "21d"\nvisits = "72h"\n'))
    assert "warning" not in agrees.stderr


def test_sync_lengthening_applies_and_is_audited(cli):
    config = cli.config('[retention]\nvisits = "5d"\nwifi = "365d"\n')
    result = cli("policy", "sync", config=config)
    assert "visits: 3d -> 5d" in result.stdout and "warning" not in result.stderr
    assert _policies(cli.url)["visits"] == 5 * 86400
    (entry,) = _audited(cli.url)
    assert (entry["kind"], entry["old_seconds"], entry["new_seconds"]) == ("visits", 259200, 432000)
    assert str(config) in entry["reason"]
    assert "warning" not in cli("onsite", config=config).stderr
    again = cli("policy", "sync", config=config)
    assert "already match" in again.stdout and len(_audited(cli.url)) == 1


def test_sync_shortening_asks_and_without_a_terminal_needs_yes(cli, monkeypatch):
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        at = datetime.now(UTC) - timedelta(days=2)
        session.add(
            Visit(name="V", name_key="v", signed_in_at=at, signed_out_at=at, retain_from=at)
        )
    engine.dispose()
    config = cli.config('[retention]\nvisits = "1d"\ncamera = "20d"\n')

    refused = cli("policy", "sync", config=config, code=2)
    assert "Shortening visits from 3d to 1d: up to 1 record(s)" in refused.stdout
    assert "pass --yes" in refused.stderr
    assert _policies(cli.url)["visits"] == 3 * 86400 and _audited(cli.url) == []

    monkeypatch.setattr("facility.cli.policy._interactive", lambda: True)
    declined = cli("policy", "sync", config=config, input="n\n", code=1)
    assert "nothing changed" in declined.stderr and _audited(cli.url) == []

    cli("policy", "sync", "--reason", "DPIA 2026-11", config=config, input="y\n")
    # The lengthening is in force at once; the shortening waits for its delay, and the warning
    # that the configuration differs is gone: the database is heading where it says.
    assert pending_policies(cli.url)["visits"][0] == 86400
    assert _policies(cli.url)["camera"] == 20 * 86400
    assert "warning" not in cli("onsite", config=config).stderr
    assert {e["kind"]: e["reason"] for e in _audited(cli.url)} == {
        "visits": "DPIA 2026-11",
        "camera": "DPIA 2026-11",
    }


def test_sync_needs_admin_or_privacy(cli):
    config = cli.config('[retention]\nvisits = "5d"\n[roles]\nreception = ["nobody-here"]\n')
    refused = cli("policy", "sync", config=config, code=3)
    assert "needs role admin or privacy" in refused.stderr
    assert _policies(cli.url)["visits"] == 3 * 86400
