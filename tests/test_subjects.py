"""Data-subject requests: export finds everything of a subject and nothing of another; erase removes
exactly the unheld records (invariant 2), names the case with exit 4, and the audit trail names the
subject by keyed hash only. Both engines.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from facility.accounts.access import current_identity
from facility.errors import InputError
from facility.privacy import subjects
from facility.retention import holds
from facility.store import db
from facility.store.kinds import HOLDABLE
from facility.store.kinds import get as kind_of
from facility.store.models import (
    BadgeLoan,
    BlockedDevice,
    DoorEvent,
    Muster,
    MusterEntry,
    Visit,
    WifiLease,
)
from facility.trail import audit
from tests.factories import NOW, D, H, add, door, ids, lease, loan, place, visit

pytestmark = pytest.mark.usefixtures("fixed_clock")

MIN = timedelta(minutes=1)
ANN_MAC, OTHER_MAC = "3c:22:fb:01:02:0a", "3c:22:fb:01:02:0b"
ME = current_identity().name


def seed(engine) -> dict[str, list[int]]:
    """Ann, Anne, two spellings of Åsa, devices and badges; the ids each subject owns."""
    t = NOW - 2 * D
    ann1, ann2, anne, asa1, asa2 = add(
        engine,
        visit("Ann", t, t + 4 * H),
        visit("ANN", t + D, t + D + 2 * H),
        visit("Anne", t, t + 4 * H),
        visit("Åsa Berg", t, t + H),
        visit("åsa berg", t + D, t + D + H),
    )
    loans = add(
        engine,
        loan("B1", ann1, t, t + 4 * H),  # Ann's loan of B1
        loan("B1", anne, t + 5 * H, t + 6 * H),  # later the same badge goes to Anne
        loan("B2", ann2, t + D, t + D + 2 * H),
        loan("B3", anne, t, t + 4 * H),
        loan("B4", asa1, t, t + H),
    )
    events = add(
        engine,
        door("D1", "B1", t + H),  # Ann's, during her loan
        door("D2", "B1", t + 2 * H),  # Ann's
        door("D1", "B1", t + 5 * H + MIN),  # Anne's (same badge, her loan)
        door("D1", "B2", t + D + H),  # Ann's second visit
        door("D1", "B3", t + H),  # Anne's
        door("D1", "B4", t + 30 * MIN),  # Åsa's
        door("D1", "B1", t - H),  # B1 before anyone had it: nobody's visit
    )
    leases = add(
        engine,
        lease(ANN_MAC, t, ends=t + 8 * H),
        lease(ANN_MAC, t + D, ends=t + D + 8 * H),
        lease(OTHER_MAC, t, ends=t + 8 * H),
    )
    return {
        "ann_visits": [ann1, ann2],
        "ann_loans": [loans[0], loans[2]],
        "ann_events": [events[0], events[1], events[3]],
        "anne_visits": [anne],
        "asa_visits": [asa1, asa2],
        "asa_loans": [loans[4]],
        "asa_events": [events[5]],
        "b1_loans": [loans[0], loans[1]],
        "b1_events": [events[0], events[1], events[2], events[6]],
        "mac_leases": leases[:2],
        "other_lease": [leases[2]],
        "loans": loans,
        "events": events,
    }


def _block(engine, mac: str) -> None:
    with db.session_scope(engine) as session:
        session.add(BlockedDevice(mac=mac, reason="abuse", blocked_by="sec", blocked_at=NOW))


def _export(cli, *args: str, code: int = 0) -> dict:
    return json.loads(cli("subject", "export", *args, code=code).stdout)


def _ids(body: dict, kind: str) -> list[int]:
    return [r["id"] for r in body["records"][kind]]


def test_export_by_name_finds_every_record_of_the_person_and_nothing_of_anne(cli, engine):
    owned = seed(engine)
    body = _export(cli, "--name", "ann")
    assert body["subject"] == {"kind": "name", "value": "ann"}
    assert set(body) >= {"subject", "records", "held", "matched_names"}
    assert sorted(_ids(body, "visits")) == sorted(owned["ann_visits"])
    assert sorted(_ids(body, "badges")) == sorted(owned["ann_loans"])
    assert sorted(_ids(body, "door_events")) == sorted(owned["ann_events"])
    assert body["records"]["wifi"] == [] and body["records"]["camera"] == []
    assert body["matched_names"] == ["ANN", "Ann"]
    assert body["held"] == []
    names = {r["name"] for r in body["records"]["visits"]}
    assert "Anne" not in names


def test_export_matches_case_and_unicode_forms_exactly(cli, engine):
    owned = seed(engine)
    decomposed = unicodedata.normalize("NFD", "ÅSA BERG")  # A + combining ring, as some keyboards
    body = _export(cli, "--name", decomposed)
    assert sorted(_ids(body, "visits")) == sorted(owned["asa_visits"])
    assert body["matched_names"] == ["Åsa Berg", "åsa berg"]
    assert _ids(body, "badges") == owned["asa_loans"]
    assert _ids(body, "door_events") == owned["asa_events"]
    folded = _export(cli, "--name", "asa berg")  # accents folded too (issue 13.12)
    assert sorted(_ids(folded, "visits")) == sorted(owned["asa_visits"])
    assert _export(cli, "--name", "Åsa")["records"]["visits"] == []  # no partial match


def test_export_by_mac_and_by_badge(cli, engine):
    owned = seed(engine)
    by_mac = _export(cli, "--mac", "3C22.FB01.020A")
    assert sorted(_ids(by_mac, "wifi")) == sorted(owned["mac_leases"])
    assert all(not by_mac["records"][k] for k in ("visits", "badges", "door_events"))
    by_badge = _export(cli, "--badge", "B1")
    assert sorted(_ids(by_badge, "badges")) == sorted(owned["b1_loans"])
    assert sorted(_ids(by_badge, "door_events")) == sorted(owned["b1_events"])
    assert by_badge["records"]["visits"] == [] and by_badge["matched_names"] == []


def test_export_marks_held_records_with_their_case(cli, engine):
    owned = seed(engine)
    t = NOW - 2 * D
    place(engine, "INC-9", [("door_events", "D2")], t, t + 3 * H, now=NOW - H)
    place(engine, "INC-10", [("visits", "ann")], t + D, t + D + H, now=NOW - H)
    body = _export(cli, "--name", "Ann")
    held = {(h["kind"], h["id"], h["case"]) for h in body["held"]}
    ann2, loan2, event2 = owned["ann_visits"][1], owned["ann_loans"][1], owned["ann_events"][2]
    assert held == {
        ("door_events", owned["ann_events"][1], "INC-9"),
        ("visits", ann2, "INC-10"),
        ("badges", loan2, "INC-10"),
        ("door_events", event2, "INC-10"),
    }


def test_export_as_csv_and_to_a_private_file(cli, engine, tmp_path):
    owned = seed(engine)
    lines = cli("subject", "export", "--mac", ANN_MAC, "--format", "csv").stdout.splitlines()
    assert lines[0].startswith("kind,id,held_by,")
    assert sorted(int(line.split(",")[1]) for line in lines[1:]) == sorted(owned["mac_leases"])
    target = tmp_path / "ann.json"
    out = cli("subject", "export", "--name", "Ann", "--output", str(target)).stdout
    assert f"exported to {target}: visits 2, badges 2, door_events 3; 0 held" in out
    assert target.stat().st_mode & 0o077 == 0
    assert json.loads(target.read_text(encoding="utf-8"))["matched_names"] == ["ANN", "Ann"]


def test_export_includes_a_block_and_roll_call_entries(cli, engine):
    owned = seed(engine)
    _block(engine, ANN_MAC)
    (muster,) = add(engine, Muster(started_at=NOW - D, started_by="r"))
    add(engine, MusterEntry(muster_id=muster, visit_id=owned["ann_visits"][0], name="Ann"))
    assert _export(cli, "--mac", ANN_MAC)["blocked_devices"][0]["reason"] == "abuse"
    (entry,) = _export(cli, "--name", "Ann")["muster_entries"]
    assert entry["visit_id"] == owned["ann_visits"][0]


def test_exactly_one_subject_option(cli):
    assert "exactly one of" in cli("subject", "export", code=2).stderr
    both = cli("subject", "export", "--name", "Ann", "--mac", ANN_MAC, code=2)
    assert "exactly one of" in both.stderr
    assert "--mac" in cli("subject", "export", "--mac", "nope", code=2).stderr
    assert "--badge" in cli("subject", "export", "--badge", "B 1", code=2).stderr


def test_subject_commands_need_role_privacy(cli):
    security = cli.config(f'[roles]\nsecurity = ["{ME}"]\n')
    cli("subject", "export", "--name", "Ann", config=security, code=3)
    cli("subject", "erase", "--name", "Ann", "--reason", "r", "--yes", config=security, code=3)


# --- the audit trail ----------------------------------------------------------------------------


def _key(isolated_env) -> bytes:
    return audit.load_or_create_key(isolated_env / audit.KEY_FILE)


def _raw_trail(engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log ORDER BY seq")).all()
    return "\n".join(" ".join(str(c) for c in row) for row in rows).casefold()


def test_export_and_erase_audit_a_keyed_hash_never_the_subject(cli, engine, isolated_env):
    seed(engine)
    _export(cli, "--name", "Ann")
    _export(cli, "--mac", ANN_MAC)
    cli("subject", "erase", "--name", "Ann", "--reason", "DSR-2026-7", "--yes")
    cli("subject", "erase", "--mac", ANN_MAC.upper(), "--reason", "DSR-2026-8", "--yes")
    key = _key(isolated_env)
    with db.session_scope(engine) as session:
        entries = [json.loads(e.details) for e in audit.entries(session, action="subject")]
    name_hash = audit.subject_hash(key, "name", "Ann")
    mac_hash = audit.subject_hash(key, "mac", ANN_MAC)
    assert [e["subject"] for e in entries] == [name_hash, mac_hash, name_hash, mac_hash]
    none = {"rejections": 0, "hold_scopes": 0}
    desk = {"expected": 0, "hosts": 0, "notifications": 0}  # a name reaches the desk's records
    assert entries[2]["erased"] == {"visits": 2, "badges": 2, "door_events": 3} | desk | none
    assert entries[2]["reason"] == "DSR-2026-7" and entries[3]["erased"] == {"wifi": 2} | none
    raw = _raw_trail(engine)
    for secret in ("ann", ANN_MAC, ANN_MAC.replace(":", ""), "3c-22-fb"):
        assert secret not in raw, secret
    assert name_hash in raw
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok


def test_a_reason_naming_the_subject_is_refused(cli, engine):
    seed(engine)
    for subject, reason in (
        (["--name", "Ann"], "request from ANN by mail"),
        (["--mac", ANN_MAC], "device 3C22.FB01.020A asked"),
        (["--badge", "B1"], "badge b1 lost"),
    ):
        result = cli("subject", "erase", *subject, "--reason", reason, "--yes", code=2)
        assert "--reason" in result.stderr
    assert len(ids(engine, Visit)) == 5
    # A word that merely contains the name is fine.
    cli("subject", "erase", "--name", "Ann", "--reason", "annual clean-up DSR-1", "--yes")


# --- erasure ------------------------------------------------------------------------------------


def _held_everywhere(engine) -> dict[str, set[int]]:
    """Every record any active hold keeps, by kind (the rule purge uses)."""
    found = {}
    with db.session_scope(engine) as session:
        for kind in HOLDABLE:
            table = kind_of(kind).table
            kept = holds.held(kind, table, now=NOW, grace=timedelta(hours=24))
            found[kind] = set(session.execute(select(table.c.id).where(kept)).scalars())
    return found


def _remaining(engine) -> dict[str, set[int]]:
    models = {"visits": Visit, "badges": BadgeLoan, "door_events": DoorEvent, "wifi": WifiLease}
    return {kind: ids(engine, model) for kind, model in models.items()}


def test_erase_removes_exactly_the_unheld_records_and_exits_4_naming_the_case(cli, engine):
    owned = seed(engine)
    t = NOW - 2 * D
    place(engine, "INC-9", [("door_events", "D2")], t, t + 3 * H, now=NOW - H)
    held_before = _held_everywhere(engine)
    assert held_before["door_events"] == {owned["ann_events"][1]}
    before = _remaining(engine)
    result = cli("subject", "erase", "--name", "Ann", "--reason", "DSR-1", "--yes", code=4)
    assert "INC-9" in result.stderr and "were erased" in result.stderr
    assert "kept by hold INC-9: door_events 1" in result.stdout
    assert "erased: visits 2, badges 2, door_events 2" in result.stdout
    after = _remaining(engine)
    assert after["visits"] == before["visits"] - set(owned["ann_visits"])
    assert after["badges"] == before["badges"] - set(owned["ann_loans"])
    gone = set(owned["ann_events"]) - {owned["ann_events"][1]}
    assert after["door_events"] == before["door_events"] - gone
    assert after["wifi"] == before["wifi"]
    for kind, kept in held_before.items():  # invariant 2
        assert kept <= after.get(kind, kept), kind


def test_a_visitor_hold_keeps_the_visit_its_loans_and_events(cli, engine):
    owned = seed(engine)
    t = NOW - 2 * D
    place(engine, "INC-10", [("visits", "ann")], t + D, t + D + H, now=NOW - H)
    held_before = _held_everywhere(engine)
    cli("subject", "erase", "--name", "Ann", "--reason", "DSR-2", "--yes", code=4)
    after = _remaining(engine)
    assert set(owned["ann_visits"]) & after["visits"] == {owned["ann_visits"][1]}
    assert set(owned["ann_loans"]) & after["badges"] == {owned["ann_loans"][1]}
    assert set(owned["ann_events"]) & after["door_events"] == {owned["ann_events"][2]}
    for kind, kept in held_before.items():
        assert kept <= after.get(kind, kept), kind
    # Released, and past the grace: a second request erases the rest.
    with db.session_scope(engine) as session:
        holds.release(session, now=NOW - 2 * D, actor="t", case="INC-10", reason="done")
    cli("subject", "erase", "--name", "Ann", "--reason", "DSR-2", "--yes")
    assert not set(owned["ann_visits"]) & _remaining(engine)["visits"]


def test_erase_by_badge_and_by_mac(cli, engine):
    owned = seed(engine)
    add(engine, lease(ANN_MAC, NOW - H))  # running: its clock has not started
    _block(engine, ANN_MAC)
    cli("subject", "erase", "--badge", "B1", "--reason", "DSR-3", "--yes")
    after = _remaining(engine)
    assert not set(owned["b1_loans"]) & after["badges"]
    assert not set(owned["b1_events"]) & after["door_events"]
    assert set(owned["ann_visits"]) <= after["visits"]  # a badge request reaches no visit
    result = cli("subject", "erase", "--mac", ANN_MAC, "--reason", "DSR-4", "--yes", code=1)
    assert "still in use" in result.stderr
    left = _remaining(engine)["wifi"]
    assert not set(owned["mac_leases"]) & left and set(owned["other_lease"]) <= left
    assert len(left) == 2  # the other device's lease and the running one
    with db.session_scope(engine) as session:  # a block is a decision, not a record: it stays
        assert session.get(BlockedDevice, ANN_MAC) is not None


def test_erase_forgets_the_name_in_roll_calls(cli, engine):
    owned = seed(engine)
    (muster,) = add(engine, Muster(started_at=NOW - D, started_by="r"))
    (entry,) = add(
        engine, MusterEntry(muster_id=muster, visit_id=owned["ann_visits"][0], name="Ann")
    )
    cli("subject", "erase", "--name", "Ann", "--reason", "DSR-5", "--yes")
    with db.session_scope(engine) as session:
        row = session.get(MusterEntry, entry)
        assert row.name is None and row.visit_id is None and row.status == "unknown"


def test_erase_asks_first_and_needs_yes_without_a_terminal(cli, engine, monkeypatch):
    owned = seed(engine)
    refused = cli("subject", "erase", "--name", "Ann", "--reason", "DSR-6", code=2)
    assert "will erase: visits 2, badges 2, door_events 3" in refused.stdout
    assert "--yes" in refused.stderr
    monkeypatch.setattr("facility.cli.subject._interactive", lambda: True)
    declined = cli("subject", "erase", "--name", "Ann", "--reason", "DSR-6", input="n\n", code=1)
    assert "nothing erased" in declined.stderr
    assert set(owned["ann_visits"]) <= _remaining(engine)["visits"]
    cli("subject", "erase", "--name", "Ann", "--reason", "DSR-6", input="y\n")
    assert not set(owned["ann_visits"]) & _remaining(engine)["visits"]
    with db.session_scope(engine) as session:
        assert len(audit.entries(session, action="subject.erase")) == 1


def test_erasing_nobody_says_so_and_is_still_audited(cli, engine):
    seed(engine)
    out = cli("subject", "erase", "--name", "Zed", "--reason", "DSR-7").stdout
    assert "erased: nothing" in out
    with db.session_scope(engine) as session:
        (entry,) = audit.entries(session, action="subject.erase")
        erased = json.loads(entry.details)["erased"]
        assert erased == {
            "visits": 0,
            "badges": 0,
            "door_events": 0,
            "expected": 0,
            "hosts": 0,
            "notifications": 0,
            "rejections": 0,
            "hold_scopes": 0,
        }


def test_subject_from_normalises_and_checks():
    assert subjects.subject_from(name="  Ann   Smith ").key == "ann smith"
    assert subjects.subject_from(mac="3C-22-FB-01-02-0A").key == ANN_MAC
    assert subjects.subject_from(badge=" B1 ").key == "B1"
    with pytest.raises(InputError, match="--name"):
        subjects.subject_from(name="   ")
    with pytest.raises(InputError, match="exactly one"):
        subjects.subject_from()
