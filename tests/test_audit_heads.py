"""The head file (`audit.heads` in the home) and verification from the last checkpoint (issue 19).

Real files in the test's home, real symlinks, `os.stat`; the CLI in-process on both engines.
"""

from __future__ import annotations

import json
import os
import stat

import pytest
from sqlmodel import select

from facility.store import db
from facility.store.models import AuditEntry
from facility.trail import audit, heads
from tests.factories import _fill, _tamper, _verify_json


def _lines(home) -> list[list[str]]:
    return [line.split() for line in (home / heads.HEAD_FILE).read_text().splitlines()]


def _purge(cli) -> str:
    return json.loads(cli("purge", "--format", "json").stdout)["audit_head"]


def test_a_purge_anchors_its_head_in_a_private_file(cli, engine, isolated_env):
    head = _purge(cli)
    path = isolated_env / heads.HEAD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ((at, chain, seq, anchored, kind, mac),) = _lines(isolated_env)
    with db.session_scope(engine) as session:
        assert chain == audit.chain_id(session)
        assert session.exec(select(AuditEntry.hash).where(AuditEntry.seq == int(seq))).one() == head
    assert (anchored, kind, len(mac)) == (head, "purge", 64) and at.endswith("Z")
    second = _purge(cli)
    assert [line[3] for line in _lines(isolated_env)] == [head, second]


def test_a_symlink_in_place_of_the_head_file_is_never_followed(cli, isolated_env, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not facility's\n")
    (isolated_env / heads.HEAD_FILE).symlink_to(elsewhere)
    notes = json.loads(cli("purge", "--format", "json").stdout)["notes"]
    assert any("not anchored" in note and "symbolic link" in note for note in notes), notes
    assert elsewhere.read_text() == "not facility's\n"
    assert "symbolic link" in cli("audit", "verify", code=1).stderr


def test_a_head_file_others_may_write_fails(cli, isolated_env):
    _purge(cli)
    os.chmod(isolated_env / heads.HEAD_FILE, 0o620)
    assert "chmod 600" in cli("audit", "verify", code=1).stderr


def test_no_head_file_warns_loudly_then_starts_one(cli, isolated_env):
    first = cli("audit", "verify")
    assert (
        "warning: no head file" in first.stderr
        and "cut-off tail cannot be detected" in first.stderr
    )
    assert [line[4] for line in _lines(isolated_env)] == ["verified"]
    assert cli("audit", "verify").stderr == ""


def test_a_head_anchored_by_a_purge_and_replaced_fails(cli, engine):
    # Cut back to before the purge; then an honest command writes a new entry with that number.
    _fill(engine, 2)
    head = _purge(cli)
    with db.session_scope(engine) as session:
        seq = session.exec(select(AuditEntry.seq).where(AuditEntry.hash == head)).one()
    _tamper(engine, f"DELETE FROM audit_log WHERE seq >= {seq}")
    _fill(engine, 2)
    verdict = _verify_json(cli, code=1)
    assert verdict["first_bad_seq"] == seq and "a purge anchored" in verdict["stderr"]


def test_damaged_and_torn_lines_are_skipped_with_a_warning(cli, engine, isolated_env):
    first = _purge(cli)
    path = isolated_env / heads.HEAD_FILE
    forged = path.read_text().replace(first, "f" * 64)  # a line changed without the key
    with path.open("a") as handle:
        handle.write(forged + "2026-06-01T12:00:00Z 0123")  # and a write cut short
    verified = cli("audit", "verify")
    assert "1 line(s)" in verified.stderr and "damaged" in verified.stderr
    assert "incomplete" in verified.stderr
    second = _purge(cli)  # ends the torn line before its own
    assert path.read_text().splitlines()[-1].split()[3] == second
    _tamper(engine, "DELETE FROM audit_log WHERE seq > 1")
    assert "cut off" in cli("audit", "verify", code=1).stderr


# --- from the last checkpoint --------------------------------------------------------------------


def test_verify_walks_only_what_follows_the_last_checkpoint(cli, engine):
    _fill(engine, 4)
    whole = _verify_json(cli, code=0)
    assert (whole["from_seq"], whole["checked"], whole["entries"]) == (0, 5, 5)
    _fill(engine, 3)
    assert "entries 6-8 checked after the checkpoint at seq 5" in cli("audit", "verify").stdout
    _fill(engine, 1)
    since = _verify_json(cli, code=0)
    assert (since["from_seq"], since["checked"], since["entries"]) == (8, 1, 9)
    again = _verify_json(cli, "--full", code=0)
    assert (again["from_seq"], again["checked"], again["entries"]) == (0, 9, 9)
    report = json.loads(cli("report", "--format", "json").stdout)["audit"]
    assert report["ok"] and (report["from_seq"], report["checked"]) == (9, 0)


def test_an_edit_after_the_checkpoint_is_found(cli, engine):
    _fill(engine, 4)
    cli("audit", "verify")  # checkpoint at 5
    _fill(engine, 2)
    _tamper(engine, "UPDATE audit_log SET actor = 'x' WHERE seq = 7")
    verdict = _verify_json(cli, code=1)
    assert (verdict["from_seq"], verdict["first_bad_seq"]) == (5, 7)  # without reading 1-5


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'x' WHERE seq = 3", "DELETE FROM audit_log WHERE seq = 3"],
    ids=["edited", "deleted"],
)
def test_an_entry_changed_before_the_checkpoint_needs_full(cli, engine, statement):
    _fill(engine, 4)
    cli("audit", "verify")  # checkpoint at 5
    _tamper(engine, statement)
    assert _verify_json(cli, code=0)["from_seq"] == 5  # what was verified is not read again
    assert _verify_json(cli, "--full", code=1)["first_bad_seq"] in (3, 4)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET hash = '" + "e" * 64 + "' WHERE seq = 5",
        "INSERT INTO audit_log (seq, at, actor, action, details, prev_hash, hash) VALUES "
        "(0, '2026-06-01 12:00:00', 'x', 'x', '{}', 'x', 'x')",
    ],
    ids=["checkpoint-replaced", "inserted-before"],
)
def test_a_change_up_to_the_checkpoint_makes_the_whole_walk_run(cli, engine, statement):
    _fill(engine, 4)
    cli("audit", "verify")  # checkpoint at 5
    _fill(engine, 1)
    _tamper(engine, statement)
    verdict = _verify_json(cli, code=1)
    assert verdict["from_seq"] == 0 and verdict["first_bad_seq"] is not None


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_each_host_on_one_postgresql_checks_the_heads_it_anchored(
    cli, engine, isolated_env, tmp_path, monkeypatch
):
    # Two hosts, each with its own home and the same key; host A purges, host B only verifies.
    host_b = tmp_path / "host-b"
    host_b.mkdir(mode=0o700)
    os.link(isolated_env / audit.KEY_FILE, host_b / audit.KEY_FILE)

    def on_b(*args: str, code: int = 0):
        with monkeypatch.context() as env:
            env.setenv("FACILITY_HOME", str(host_b))
            return cli(*args, code=code)

    cli("audit", "verify")
    on_b("audit", "verify")
    _fill(engine, 1)
    head = _purge(cli)
    with db.session_scope(engine) as session:
        seq = session.exec(select(AuditEntry.seq).where(AuditEntry.hash == head)).one()
    _tamper(engine, f"DELETE FROM audit_log WHERE seq >= {seq}")
    assert "cut off" in cli("audit", "verify", code=1).stderr
    on_b("audit", "verify")  # B anchored nothing after what was cut: it cannot tell
    assert not (host_b / heads.HEAD_FILE).read_text().count(head)
