"""Invariant 13: someone who can write to the database, but cannot read the key, cannot make a
changed trail verify. Each attack drops the append-only triggers first, and `facility audit
verify` is run with no argument, on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete
from sqlmodel import select

from facility.store import db
from facility.store.models import AuditEntry
from facility.trail import audit, heads
from tests.conftest import ENGINES, T0, Cli, database_at
from tests.daemons import FACILITY
from tests.factories import _fill, _tamper, _verify_json


def _rows(engine) -> list[dict]:
    with db.session_scope(engine) as session:
        found = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
        return [entry.model_dump() for entry in found]


def _replace_trail(engine, rows: list[dict]) -> None:
    """Put `rows` in place of the whole trail, as an attacker with database access can."""
    _tamper(engine)
    with db.session_scope(engine) as session:
        session.execute(delete(AuditEntry))
        session.add_all(AuditEntry(**row) for row in rows)


def _plain_chain(rows: list[dict], prev: str = audit.GENESIS) -> list[dict]:
    """`rows` chained again with plain SHA-256: the method every entry used before 0002."""
    out = []
    for row in rows:
        details = json.loads(row["details"])
        text = audit.details_text(details)
        at = row["at"]
        digest = audit.plain_hash(row["seq"], at, row["actor"], row["action"], details, prev)
        out.append(row | {"details": text, "prev_hash": prev, "hash": digest})
        prev = digest
    return out


def _edited(rows: list[dict], seq: int, **details) -> list[dict]:
    return [r | {"details": audit.details_text(details)} if r["seq"] == seq else r for r in rows]


@pytest.mark.parametrize("start", [1, 3], ids=["whole-trail", "from-entry-3"])
def test_an_edit_rechained_with_the_plain_hash_method_fails(cli, engine, start):
    _fill(engine)
    rows = _edited(_rows(engine), 3, step=99)
    kept = rows[: start - 1]
    _replace_trail(
        engine, kept + _plain_chain(rows[start - 1 :], kept[-1]["hash"] if kept else audit.GENESIS)
    )
    verdict = _verify_json(cli, code=1)
    assert verdict["ok"] is False
    if start == 1:  # every entry links, none is signed
        assert verdict["first_bad_seq"] is None and "no entry is signed" in verdict["stderr"]
    else:
        assert verdict["first_bad_seq"] == 3


def test_an_emptied_trail_fails(cli, engine):
    _fill(engine)
    _tamper(engine, "DELETE FROM audit_log")
    verdict = _verify_json(cli, code=1)
    assert verdict["entries"] == 0 and "emptied" in verdict["stderr"]


def test_a_tail_cut_back_before_the_last_purge_fails(cli, engine):
    _fill(engine, 2)
    purged = json.loads(cli("purge", "--format", "json").stdout)
    _fill(engine, 3)
    with db.session_scope(engine) as session:
        seq = session.exec(
            select(AuditEntry.seq).where(AuditEntry.hash == purged["audit_head"])
        ).one()
    _tamper(engine, f"DELETE FROM audit_log WHERE seq >= {seq}")
    verdict = _verify_json(cli, code=1)
    assert verdict["entries"] == seq - 1 and "cut off" in verdict["stderr"]
    assert f"anchored entry {seq}" in verdict["stderr"]


@pytest.mark.parametrize(
    "text",
    ['{"step":99,"step":1}', '{"step": 1}', '{"\\u0073tep":1}'],
    ids=["duplicate-key", "spaced", "escaped"],
)
def test_details_not_exactly_as_signed_fail_even_with_the_head(cli, engine, text):
    head = _fill(engine)
    # Entry 3 says {"step":1}; each text parses to the same object, and reads otherwise elsewhere.
    _tamper(engine, f"UPDATE audit_log SET details = '{text}' WHERE seq = 3")
    for args in ([], ["--head", head]):
        verdict = _verify_json(cli, *args, code=1)
        assert verdict["first_bad_seq"] == 3, verdict
        assert "not as written" in verdict["stderr"]


def test_a_host_with_another_audit_key_cannot_verify(cli, engine, isolated_env):
    _fill(engine)
    (isolated_env / audit.KEY_FILE).write_text("ab" * 32 + "\n")
    verdict = _verify_json(cli, code=1)
    assert verdict["first_bad_seq"] == 1


def test_a_host_without_the_key_writes_no_entry_and_makes_no_key(cli, engine, isolated_env):
    key = isolated_env / audit.KEY_FILE
    key.unlink()  # a second host, set up without copying audit.key
    before = _rows(engine)
    for args in (
        ["subject", "export", "--name", "Ada Lovelace"],
        ["policy", "set", "camera", "7d", "--reason", "DPIA", "--yes"],
    ):
        assert "copy it from the host that ran `facility init`" in cli(*args, code=1).stderr
    daemon = subprocess.run(
        [FACILITY, "--db", cli.url, "daemon"], capture_output=True, text=True, timeout=60
    )
    assert daemon.returncode == 1 and "audit key" in daemon.stderr, daemon.stderr
    assert not key.exists() and _rows(engine) == before


# --- an install at schema 0001 ----------------------------------------------------------------


def _legacy_trail(url: str, count: int = 5) -> str:
    """The trail as revision 0001 left it, in a database at 0001: chained with plain SHA-256; its
    head."""
    engine = db.make_engine(url)
    rows, prev = [], audit.GENESIS
    for seq in range(1, count + 1):
        row = {"seq": seq, "at": T0 + timedelta(minutes=seq), "actor": "old"}
        row |= {"action": "purge", "details": audit.details_text({"deleted": seq})}
        rows.append(row)
    rows = _plain_chain(rows, prev)
    with db.session_scope(engine) as session:
        session.add_all(AuditEntry(**row) for row in rows)
    engine.dispose()
    return rows[-1]["hash"]


@pytest.fixture(params=ENGINES)
def upgraded(request, tmp_path) -> Iterator[tuple[Cli, str]]:
    """A 0001 install with five plain entries, upgraded by `facility init`; and its old head."""
    databases = database_at(request.param, tmp_path, "0001")
    url = next(databases)
    old_head = _legacy_trail(url)  # the home keeps its audit.key, as such an install has
    cli = Cli(url, tmp_path)
    assert "sealed by entry 6" in cli("init").stdout
    yield cli, old_head
    next(databases, None)


def test_init_seals_the_old_trail_which_keeps_verifying(upgraded):
    cli, old_head = upgraded
    verdict = _verify_json(cli, "--head", old_head, code=0)
    assert verdict["ok"] and verdict["entries"] >= 7  # 5 old, the seal, the schema upgrade
    (seal,) = json.loads(cli("audit", "show", "--action", "audit.seal", "--format", "json").stdout)
    assert seal["seq"] == 6 and seal["details"] == {
        "entries": 5,
        "head": old_head,
        "method": "sha256",
    }
    assert "nothing changed" in cli("init").stdout  # sealed once


@pytest.mark.parametrize("rewrite", ["old-part", "everything", "everything-no-head-file"])
def test_the_old_part_rewritten_with_the_plain_method_fails(upgraded, isolated_env, rewrite):
    cli, _ = upgraded
    engine = db.make_engine(cli.url)
    rows = _edited(_rows(engine), 2, deleted=0)
    if rewrite == "old-part":  # the keyed entries kept as they are
        _replace_trail(engine, _plain_chain(rows[:5]) + rows[5:])
    else:  # every entry chained with the plain method
        _replace_trail(engine, _plain_chain(rows))
    engine.dispose()
    if rewrite == "everything-no-head-file":  # a host that anchored nothing
        (isolated_env / heads.HEAD_FILE).unlink()
    verdict = _verify_json(cli, code=1)
    if rewrite == "old-part":  # the seal's MAC covers the old head
        assert verdict["first_bad_seq"] == 6 and "does not link" in verdict["stderr"]
    elif rewrite == "everything":  # init anchored the newest entry
        assert verdict["first_bad_seq"] == len(rows)
        assert "`facility init` anchored" in verdict["stderr"]
    else:
        assert verdict["first_bad_seq"] is None and "no entry is signed" in verdict["stderr"]


def test_init_will_not_make_a_second_key_for_a_signed_trail(cli, isolated_env):
    key = isolated_env / audit.KEY_FILE
    key.unlink()  # a new host, set up without copying the key
    assert "copy audit.key" in cli("init", code=1).stderr
    assert not key.exists()
