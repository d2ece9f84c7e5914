"""The audit trail (invariants 7, 13): tampering is detected, the database refuses edits, the CLI.

Attacks by someone who can write to the database but not read the key are in test_audit_tamper.py;
the head file and incremental verification in test_audit_heads.py.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import exc, text
from sqlmodel import select

from facility.accounts.access import current_identity
from facility.errors import FacilityError, InputError
from facility.store import db
from facility.store.models import AuditEntry
from facility.trail import audit, keys
from tests.conftest import T0
from tests.factories import _fill, _tamper, _verify_json

ME = current_identity().name


@pytest.fixture
def trail(cli, engine) -> str:
    """A trail of six entries (the policy seed and five more); returns its head."""
    return _fill(engine)


def test_an_intact_trail_verifies(cli, trail):
    out = cli("audit", "verify").stdout
    assert f"6 entries, head {trail}" in out
    verdict = _verify_json(cli, "--head", trail, code=0)
    assert {k: verdict[k] for k in ("ok", "entries", "head", "first_bad_seq")} == {
        "ok": True,
        "entries": 6,
        "head": trail,
        "first_bad_seq": None,
    }


@pytest.mark.parametrize(
    ("statements", "first_bad"),
    [
        pytest.param(
            ["UPDATE audit_log SET details = '{\"step\":99}' WHERE seq = 3"], 3, id="edit"
        ),
        pytest.param(["UPDATE audit_log SET actor = 'someone' WHERE seq = 6"], 6, id="edit-last"),
        pytest.param(["DELETE FROM audit_log WHERE seq = 3"], 4, id="delete"),
        pytest.param(
            [
                "UPDATE audit_log SET seq = -1 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 4",
                "UPDATE audit_log SET seq = 4 WHERE seq = -1",
            ],
            3,
            id="swap",
        ),
        pytest.param(
            [
                "DELETE FROM audit_log WHERE seq = 4",
                "UPDATE audit_log SET seq = 1 - seq WHERE seq >= 5",
                "UPDATE audit_log SET seq = -seq WHERE seq < 0",
            ],
            4,
            id="delete-and-renumber",
        ),
    ],
)
def test_tampering_makes_verify_exit_1_naming_the_first_bad_entry(
    cli, engine, trail, statements, first_bad
):
    _tamper(engine, *statements)
    verdict = _verify_json(cli, code=1)
    assert verdict["ok"] is False and verdict["first_bad_seq"] == first_bad
    assert f"first bad entry: seq {first_bad}" in verdict["stderr"]
    assert f"seq {first_bad}" in cli("audit", "verify", code=1).stderr


def test_a_forged_entry_inserted_in_the_middle_is_detected_at_itself(cli, engine, trail):
    # The forger shifts the later entries up and writes a well-formed entry chained the only way
    # they can without the key: with a plain hash.
    _tamper(
        engine,
        "UPDATE audit_log SET seq = -seq WHERE seq >= 3",
        "UPDATE audit_log SET seq = 1 - seq WHERE seq < 0",
    )
    with db.session_scope(engine) as session:
        prev = session.exec(select(AuditEntry).where(AuditEntry.seq == 2)).one().hash
        forged = {"seq": 3, "at": T0, "actor": "tests", "action": "test.step1", "details": {}}
        session.add(
            AuditEntry(
                **forged | {"details": "{}"},
                prev_hash=prev,
                hash=audit.plain_hash(**forged, prev=prev),
            )
        )
    verdict = _verify_json(cli, code=1)
    assert verdict["first_bad_seq"] == 3 and "not with this site's key" in verdict["stderr"]


def test_a_forged_entry_with_a_made_up_hash_is_detected(cli, engine, trail):
    with db.session_scope(engine) as session:
        session.add(
            AuditEntry(
                seq=7,
                at=T0,
                actor="x",
                action="purge",
                details="{}",
                prev_hash=trail,
                hash="f" * 64,
            )
        )
    assert _verify_json(cli, code=1)["first_bad_seq"] == 7


def test_a_tail_cut_after_the_last_anchor_needs_the_old_head(cli, engine, trail):
    # No purge has anchored a head yet: only a head shown earlier can tell.
    _tamper(engine, "DELETE FROM audit_log WHERE seq >= 5")
    assert "4 entries" in cli("audit", "verify").stdout
    verdict = _verify_json(cli, "--head", trail, code=1)
    assert verdict["ok"] is False and verdict["entries"] == 4 and verdict["first_bad_seq"] is None
    assert "cut off" in verdict["stderr"]


def test_a_head_that_is_not_a_hash_is_bad_input(cli, trail):
    assert "--head" in cli("audit", "verify", "--head", "abc", code=2).stderr
    cli("audit", "verify", "--head", trail.upper())  # the hex case does not matter


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"],
)
def test_the_database_refuses_update_and_delete(engine, statement):
    with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite has no TRUNCATE
def test_postgresql_refuses_truncate(engine):
    with pytest.raises(exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_log"))


def test_an_append_with_a_non_utc_clock_still_verifies(engine):
    with db.session_scope(engine) as session:
        audit.append(
            session, now=T0.astimezone(timezone(timedelta(hours=2))), actor="t", action="x"
        )
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok


# --- audit show ---------------------------------------------------------------------------------


def test_show_filters_by_time_and_action_in_every_format(cli, trail):
    shown = json.loads(cli("audit", "show", "--format", "json").stdout)
    assert [e["seq"] for e in shown] == [1, 2, 3, 4, 5, 6]
    assert (
        shown[0]["action"] == "policy.seed" and shown[0]["details"]["seconds"]["camera"] == 1209600
    )
    assert set(shown[1]) == {"seq", "at", "actor", "action", "details", "hash"}
    since = json.loads(
        cli("audit", "show", "--since", "2026-06-01T12:03:00Z", "--format", "json").stdout
    )
    assert [e["seq"] for e in since] == [4, 5, 6]
    step1 = json.loads(cli("audit", "show", "--action", "test.step1", "--format", "json").stdout)
    assert [e["seq"] for e in step1] == [3, 5]
    tests = json.loads(cli("audit", "show", "--action", "test", "--format", "json").stdout)
    assert [e["seq"] for e in tests] == [2, 3, 4, 5, 6]
    assert cli("audit", "show", "--action", "tes", "--format", "json").stdout.strip() == "[]"
    csv_out = cli("audit", "show", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "seq,at,actor,action,details,hash" and len(csv_out) == 7
    table_out = cli("audit", "show", "--action", "policy").stdout
    assert "policy.seed" in table_out and "test.step" not in table_out


def test_show_rejects_a_bad_time(cli):
    assert "--since" in cli("audit", "show", "--since", "yesterday", code=2).stderr


def test_show_needs_privacy_or_admin_verify_any_role(cli, trail):
    reception = cli.config(f'[roles]\nreception = ["{ME}"]\n')
    assert "privacy or admin" in cli("audit", "show", config=reception, code=3).stderr
    cli("audit", "verify", config=reception)
    privacy = cli.config(f'[roles]\nprivacy = ["{ME}"]\n')
    refusals = json.loads(
        cli("audit", "show", "--action", "refused", "--format", "json", config=privacy).stdout
    )
    assert refusals[0]["details"] == {"command": "audit show", "needs": ["privacy", "admin"]}


# --- verify_entries on in-memory chains ---------------------------------------------------------


KEY = keys.chain_key(bytes(32))


def _chain(steps: list[tuple[str, str, int]]) -> list[AuditEntry]:
    entries, prev = [], audit.GENESIS
    for seq, (actor, action, value) in enumerate(steps, start=1):
        at, details = T0 + timedelta(seconds=seq), {"value": value}
        digest = audit.entry_mac(KEY, seq, at, actor, action, details, prev)
        entries.append(
            AuditEntry(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                details=audit.details_text(details),
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    return entries


def _copy(entry: AuditEntry, **changes) -> AuditEntry:
    return AuditEntry(**entry.model_dump() | changes)


_STEPS = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["x", "y"]), st.integers(0, 3)),
    min_size=2,
    max_size=12,
)


@settings(max_examples=500, deadline=None)
@given(steps=_STEPS, data=st.data())
def test_any_single_mutation_is_detected(steps, data):
    chain = _chain(steps)
    assert audit.verify_entries(chain, key=KEY).ok
    mutation = data.draw(st.sampled_from(["edit", "delete", "insert", "swap", "swap_seq"]))
    i = data.draw(st.integers(0, len(chain) - 1))
    tampered, first_bad = list(chain), chain[i].seq
    if mutation == "edit":
        field = data.draw(st.sampled_from(["actor", "action", "details", "at"]))
        new = {
            "actor": chain[i].actor + "!",
            "action": chain[i].action + "!",
            "details": audit.details_text({"value": -1}),
            "at": chain[i].at + timedelta(microseconds=1),
        }[field]
        tampered[i] = _copy(chain[i], **{field: new})
    elif mutation == "delete":
        # Deleting the last entry is a cut-off tail: covered with the head below.
        i = min(i, len(chain) - 2)
        del tampered[i]
        first_bad = chain[i + 1].seq
    elif mutation == "insert":
        prev = chain[i - 1].hash if i else audit.GENESIS
        forged_at = chain[i].at
        forged = AuditEntry(
            seq=chain[i].seq,
            at=forged_at,
            actor="forger",
            action="x",
            details="{}",
            prev_hash=prev,
            hash=audit.entry_mac(KEY, chain[i].seq, forged_at, "forger", "x", {}, prev),
        )
        tampered.insert(i, forged)
        first_bad = chain[i].seq  # the genuine entry that now follows the forged one
    else:
        j = data.draw(st.integers(0, len(chain) - 1).filter(lambda j: j != i))
        i, j = min(i, j), max(i, j)
        if mutation == "swap":  # rows change places, each keeps its seq
            tampered[i], tampered[j] = chain[j], chain[i]
        else:  # rows keep their places, their seq numbers are exchanged
            tampered[i] = _copy(chain[j], seq=chain[i].seq)
            tampered[j] = _copy(chain[i], seq=chain[j].seq)
        first_bad = tampered[i].seq  # whatever now sits where the first change is
    verdict = audit.verify_entries(tampered, key=KEY)
    assert not verdict.ok
    assert verdict.first_bad_seq == first_bad


@settings(max_examples=200, deadline=None)
@given(steps=_STEPS, data=st.data())
def test_a_rewritten_or_cut_tail_is_detected_with_the_head_or_an_anchor(steps, data):
    chain = _chain(steps)
    head = chain[-1].hash
    cut = data.draw(st.integers(0, len(chain) - 1))
    # Cut off the tail from `cut` on, then rewrite from there with valid MACs (a key holder):
    # only a head seen earlier, given or anchored, can tell.
    rebuilt = chain[:cut] + _rechain(chain[cut:-1], chain[cut - 1].hash if cut else audit.GENESIS)
    assert audit.verify_entries(rebuilt, key=KEY).ok
    verdict = audit.verify_entries(rebuilt, key=KEY, expected_head=head)
    assert not verdict.ok
    anchor = audit.Anchor(chain[-1].seq, head, "purge", T0)
    verdict = audit.verify_entries(rebuilt, key=KEY, anchors=[anchor])
    assert not verdict.ok and verdict.first_bad_seq in (None, chain[-1].seq)


@settings(max_examples=200, deadline=None)
@given(steps=_STEPS, cut=st.integers(1, 11))
def test_a_walk_from_a_checkpoint_agrees_with_the_whole_walk(steps, cut):
    chain = _chain(steps)
    cut = min(cut, len(chain))
    start = audit.Anchor(chain[cut - 1].seq, chain[cut - 1].hash, "verified", T0)
    whole = audit.verify_entries(chain, key=KEY)
    part = audit.verify_entries(chain[cut:], key=KEY, start=start)
    assert (part.ok, part.entries, part.head) == (whole.ok, whole.entries, whole.head)
    assert part.checked == len(chain) - cut and part.from_seq == cut


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(actor=st.text(), action=st.text(), details=st.dictionaries(st.text(), _JSON, max_size=4))
def test_the_mac_over_the_stored_text_is_the_mac_over_the_canonical_form(actor, action, details):
    # The walk builds each entry's bytes from its stored details text instead of parsing it.
    entry = AuditEntry(
        seq=7,
        at=T0,
        actor=actor,
        action=action,
        details=audit.details_text(details),
        prev_hash="a" * 64,
    )
    definition = audit.canonical(7, T0, actor, action, details, "a" * 64)
    assert audit.stored_message(entry) == definition
    assert audit.parse_details(entry.details) == details


def _rechain(entries: list[AuditEntry], prev: str) -> list[AuditEntry]:
    out = []
    for entry in entries:
        details = {"value": 99}
        digest = audit.entry_mac(KEY, entry.seq, entry.at, entry.actor, entry.action, details, prev)
        out.append(_copy(entry, details=audit.details_text(details), prev_hash=prev, hash=digest))
        prev = digest
    return out


# --- the keyed hash for data subjects -----------------------------------------------------------


def test_the_key_is_created_once_with_mode_0600_and_read_back(tmp_path):
    path = tmp_path / "home" / audit.KEY_FILE
    key = audit.load_or_create_key(path)
    assert len(key) == audit.KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit.load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == [audit.KEY_FILE]  # no temporary left


def test_a_key_readable_by_others_or_damaged_is_refused(tmp_path):
    path = tmp_path / audit.KEY_FILE
    audit.load_or_create_key(path)
    os.chmod(path, 0o640)
    audit.load_or_create_key(path)  # a shared group may read it
    os.chmod(path, 0o644)
    with pytest.raises(FacilityError, match="chmod 600"):
        audit.load_or_create_key(path)
    os.chmod(path, 0o600)
    for damaged in (b"not hex\n", b"\xff" * 64, b"ab" * 31):
        path.write_bytes(damaged)
        with pytest.raises(FacilityError, match="restore it"):
            audit.load_or_create_key(path)
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.key")
    with pytest.raises(FacilityError, match="cannot use audit key"):
        audit.load_or_create_key(path)


def test_subject_hash_normalises_and_separates_kinds(tmp_path):
    key = audit.load_or_create_key(tmp_path / audit.KEY_FILE)
    name = audit.subject_hash(key, "name", "Ada  Lovelace")
    assert name == audit.subject_hash(key, "name", " ada lovelace ")
    assert len(name) == 64 and "ada" not in name
    mac = audit.subject_hash(key, "mac", "AA-BB-CC-DD-EE-FF")
    assert mac == audit.subject_hash(key, "mac", "aa:bb:cc:dd:ee:ff")
    assert audit.subject_hash(key, "badge", "42") != audit.subject_hash(key, "name", "42")
    assert audit.subject_hash(b"\1" * 32, "name", "Ada Lovelace") != name
    with pytest.raises(InputError, match="MAC"):
        audit.subject_hash(key, "mac", "not-a-mac")
    with pytest.raises(InputError, match="subject kind"):
        audit.subject_hash(key, "email", "ada@example.org")
