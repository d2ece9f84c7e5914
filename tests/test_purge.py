"""The purge (invariants 1-3, 5, 6): expiry boundaries, what each hold keeps, batches, camera
files, dry runs, the audit entry, and several purges at once. `now` is always passed in.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, text, update

from facility import sites
from facility.names import name_key
from facility.retention import camera_files, holds, purge
from facility.store import db, kinds, locks
from facility.store.models import (
    DEFAULT_SITE,
    AuditEntry,
    BadgeLoan,
    CameraSegment,
    DoorEvent,
    Muster,
    MusterEntry,
    Policy,
    Visit,
    WifiLease,
    row_id,
)
from facility.trail import audit
from tests.factories import (
    NOW,
    OLD,
    D,
    H,
    add,
    door,
    ids,
    lease,
    loan,
    make_settings,
    place,
    run,
    segment,
    visit,
    write_files,
)

US = timedelta(microseconds=1)
POLICY = {"visits": 3 * D, "badges": 3 * D, "door_events": 3 * D, "camera": 14 * D, "wifi": 365 * D}


# --- expiry (invariants 1 and 3) -----------------------------------------------------------------


def _on_the_boundary(kind: str, at: datetime):
    """A record of `kind` whose clock starts at `at`."""
    return {
        "visits": lambda: visit("Ada", at - H, at),
        "badges": lambda: loan("B1", None, at - H, at),
        "door_events": lambda: door("D1", "B1", at),
        "camera": lambda: segment("cam", at - timedelta(minutes=1), at),
        "wifi": lambda: lease("aa:bb:cc:dd:ee:01", at - H, ends=at),
    }[kind]()


@pytest.mark.parametrize("kind", list(POLICY))
def test_a_record_expiring_exactly_now_goes_one_microsecond_later_stays(engine, kind, tmp_path):
    root = tmp_path / "rec"
    expires_now = _on_the_boundary(kind, NOW - POLICY[kind])
    not_yet = _on_the_boundary(kind, NOW - POLICY[kind] + US)
    gone, kept = add(engine, expires_now, not_yet)
    if kind == "camera":
        write_files(root, expires_now, not_yet)
    report = run(engine, make_settings(root))
    assert ids(engine, type(expires_now)) == {kept}
    assert report.kinds[kind].deleted == 1
    assert all(r.deleted == 0 for k, r in report.kinds.items() if k != kind)
    assert gone != kept


def test_open_records_are_never_purged(engine):
    open_visit, open_loan = add(engine, visit("Ada", OLD - 400 * D), loan("B9", None, OLD, None))
    open_lease = add(engine, lease("aa:bb:cc:dd:ee:02", OLD - 800 * D))[0]
    run(engine, now=NOW + 1000 * D)
    assert ids(engine, Visit) == {open_visit}
    assert ids(engine, BadgeLoan) == {open_loan}
    assert ids(engine, WifiLease) == {open_lease}


def test_a_run_applies_the_open_record_limits_first(engine):
    (stale,) = add(engine, visit("Ada", NOW - 10 * D))  # never signed out
    report = run(engine, make_settings(limits={}))  # default limits: closed after 24 h
    assert report.limits["visits"] == 1
    assert report.kinds["visits"].deleted == 1  # closed at +24 h, expired 3 d later
    assert stale not in ids(engine, Visit)


def test_a_policy_change_takes_effect_at_the_next_purge(engine):
    (row,) = add(engine, door("D1", "B1", NOW - 2 * D))
    run(engine)
    assert ids(engine, DoorEvent) == {row}
    with db.session_scope(engine) as session:
        session.execute(update(Policy).where(Policy.kind == "door_events").values(seconds=86400))
    report = run(engine, now=NOW + US)
    assert ids(engine, DoorEvent) == set()
    assert report.kinds["door_events"].deleted == 1


def test_a_kind_without_a_policy_is_left_alone(engine):
    (row,) = add(engine, door("D1", "B1", OLD))
    with db.session_scope(engine) as session:
        session.execute(Policy.__table__.delete().where(Policy.kind == "door_events"))
    report = run(engine)
    assert ids(engine, DoorEvent) == {row}
    assert any("door_events: no retention policy" in n for n in report.notes)


# --- what holds keep (invariant 2) ---------------------------------------------------------------


def test_camera_hold_keeps_that_cameras_segments_overlapping_the_window(engine, tmp_path):
    root = tmp_path / "rec"
    start, end = OLD, OLD + H
    segs = [
        segment("front", start - timedelta(minutes=1), start),  # touches the window's start
        segment("front", end, end + timedelta(minutes=1)),  # touches the window's end
        segment("front", start + 10 * timedelta(minutes=1)),  # inside
        segment("front", start - 2 * timedelta(minutes=1), start - US),  # ends just before
        segment("front", end + US),  # starts just after
        segment("back", start + timedelta(minutes=5)),  # another camera
    ]
    got = add(engine, *segs)
    write_files(root, *segs)
    place(engine, "INC-1", [("camera", "front")], start, end)
    report = run(engine, make_settings(root))
    assert ids(engine, CameraSegment) == set(got[:3])
    assert report.kinds["camera"].held == 3
    assert report.files.deleted == 3
    for seg in segs[:3]:
        assert (root / seg.path).exists()


def test_door_hold_keeps_only_events_at_that_door_in_the_window(engine):
    at = OLD + H
    kept, *_ = add(
        engine,
        door("D1", "B1", at),
        door("D1", "B1", at + H + US),  # after the window
        door("D2", "B1", at),  # another door
    )
    place(engine, "INC-1", [("door_events", "D1")], at - H, at + H)
    run(engine)
    assert ids(engine, DoorEvent) == {kept}


def test_badge_hold_keeps_its_loans_and_door_events_only(engine):
    at = OLD
    loans = add(
        engine,
        loan("B1", None, at, at + 2 * H),  # overlaps
        loan("B1", None, at + 5 * H, at + 6 * H),  # after the window
        loan("B2", None, at, at + 2 * H),  # another badge
    )
    events = add(
        engine,
        door("D1", "B1", at + H),
        door("D1", "B1", at + 5 * H),  # outside the window
        door("D1", "B2", at + H),  # another badge
    )
    place(engine, "INC-1", [("badges", "B1")], at + H, at + 3 * H)
    report = run(engine)
    assert ids(engine, BadgeLoan) == {loans[0]}
    assert ids(engine, DoorEvent) == {events[0]}
    assert report.kinds["badges"].held == 1 and report.kinds["door_events"].held == 1


def test_mac_hold_keeps_leases_of_that_device_seen_in_the_window(engine):
    mac, other = "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"
    start = OLD - 400 * D  # wifi keeps a year
    leases = add(
        engine,
        lease(mac, start - 2 * H, ends=start - H, last_seen=start),  # seen at the start: kept
        lease(mac, start - 2 * H, ends=start - US),  # ended just before
        lease(mac, start + 2 * H, ends=start + 3 * H),  # after the window
        lease(other, start - H, ends=start + H),  # another device
    )
    place(engine, "INC-1", [("wifi", mac)], start, start + H)
    run(engine)
    assert ids(engine, WifiLease) == {leases[0]}


def test_visitor_hold_keeps_their_visit_loans_and_door_events_not_the_next_holder(engine):
    day = OLD
    ann, bob, ann_other_day = add(
        engine,
        visit("Ann Smith", day + 9 * H, day + 12 * H),
        visit("Bob", day + 13 * H, day + 15 * H),
        visit("Ann Smith", day + 5 * D, day + 5 * D + H),  # outside the window
    )
    ann_loan, bob_loan = add(
        engine,
        loan("B1", ann, day + 9 * H, day + 12 * H),
        loan("B1", bob, day + 13 * H, day + 15 * H),  # same badge, next holder
    )
    ann_event, bob_event, between, before = add(
        engine,
        door("D1", "B1", day + 10 * H),
        door("D1", "B1", day + 14 * H),  # Bob's use of the same badge, in the window
        door("D1", "B1", day + 12 * H + 30 * timedelta(minutes=1)),  # nobody held it
        door("D1", "B1", day + 9 * H - US),  # just before Ann got the badge
    )
    place(engine, "INC-1", [("visits", name_key("  ANN smith "))], day, day + 20 * H)
    report = run(engine)
    assert ids(engine, Visit) == {ann}
    assert ids(engine, BadgeLoan) == {ann_loan}
    assert ids(engine, DoorEvent) == {ann_event}
    assert {bob, ann_other_day, bob_loan, bob_event, between, before}.isdisjoint(
        ids(engine, Visit) | ids(engine, BadgeLoan) | ids(engine, DoorEvent)
    )
    assert report.kinds["visits"].held == 1


def test_visitor_hold_keeps_only_door_events_inside_the_window(engine):
    ann = add(engine, visit("Ann", OLD, OLD + 8 * H))[0]
    add(engine, loan("B1", ann, OLD, OLD + 8 * H))
    inside, _ = add(engine, door("D1", "B1", OLD + 2 * H), door("D1", "B1", OLD + 6 * H))
    place(engine, "INC-1", [("visits", "ann")], OLD + H, OLD + 3 * H)
    run(engine)
    assert ids(engine, DoorEvent) == {inside}
    assert len(ids(engine, BadgeLoan)) == 1 and ids(engine, Visit) == {ann}


def test_visitor_hold_reaches_loans_and_events_only_through_a_visit_it_keeps(engine):
    # Ann signed out at 10:00 but kept the badge until 12:00. A hold on Ann for 11:00-12:00 misses
    # the visit, so it keeps neither the loan nor the 11:30 event: a loan or event kept through a
    # visitor always belongs to a visit the same hold keeps, so the visit_id link cannot vanish.
    ann = add(engine, visit("Ann", OLD + 9 * H, OLD + 10 * H))[0]
    add(engine, loan("B1", ann, OLD + 9 * H, OLD + 12 * H))
    add(engine, door("D1", "B1", OLD + 11 * H + 30 * timedelta(minutes=1)))
    place(engine, "INC-1", [("visits", "ann")], OLD + 11 * H, OLD + 12 * H)
    place(engine, "VISITS", [("visits", None)], OLD + 9 * H, OLD + 9 * H)  # keeps the visit only
    run(engine)
    assert ids(engine, Visit) == {ann}
    assert ids(engine, BadgeLoan) == ids(engine, DoorEvent) == set()


def test_whole_kind_hold_keeps_that_kind_in_the_window_and_nothing_else(engine):
    ann = add(engine, visit("Ann", OLD, OLD + H))[0]
    loan_id = add(engine, loan("B1", ann, OLD, OLD + H))[0]
    add(engine, visit("Old", OLD - 5 * D, OLD - 5 * D + H))
    add(engine, door("D1", "B1", OLD + H))
    place(engine, "INC-1", [("visits", None)], OLD, OLD + 2 * H)
    run(engine)
    assert ids(engine, Visit) == {ann}
    assert loan_id not in ids(engine, BadgeLoan)  # --kind visits does not reach the loans
    assert ids(engine, DoorEvent) == set()


def test_release_grace_keeps_protecting_until_it_has_passed(engine):
    rows = add(engine, *(door("D1", "B1", OLD) for _ in range(3)))
    grace = 24 * H
    scope = [("door_events", None)]
    place(engine, "STILL", scope, OLD, OLD, released_at=NOW - grace + US)
    run(engine)
    assert ids(engine, DoorEvent) == set(rows)
    report = run(engine, now=NOW + US)  # released exactly one grace ago: no longer active
    assert ids(engine, DoorEvent) == set()
    assert report.kinds["door_events"].deleted == 3


def test_a_released_hold_outside_the_grace_keeps_nothing_an_active_one_still_does(engine):
    kept, gone = add(engine, door("D1", "B1", OLD), door("D2", "B1", OLD))
    place(engine, "ACTIVE", [("door_events", "D1")], OLD, OLD)
    place(engine, "OLDCASE", [("door_events", "D2")], OLD, OLD, released_at=NOW - 2 * D)
    run(engine)
    assert ids(engine, DoorEvent) == {kept}
    assert gone != kept


# --- batches -------------------------------------------------------------------------------------


def test_batches_smaller_than_the_rows_delete_every_unheld_row_one_transaction_each(engine):
    events = [door("D1" if i % 3 else "HELD", "B1", OLD + i * US) for i in range(25)]
    rows = add(engine, *events)
    # Same instant for several rows: the keyset cursor must not skip or repeat ties.
    add(engine, *(door("D1", "B1", OLD + 5 * US) for _ in range(4)))
    place(engine, "INC-1", [("door_events", "HELD")], OLD - D, OLD + D)
    commits = []

    def count(_conn) -> None:
        commits.append(1)

    event.listen(engine, "commit", count)
    report = run(engine, make_settings(batch=3))
    event.remove(engine, "commit", count)
    held = {r for r, e in zip(rows, events, strict=True) if e.door == "HELD"}
    assert ids(engine, DoorEvent) == held
    assert report.kinds["door_events"].deleted == 29 - len(held)
    assert report.kinds["door_events"].held == len(held)
    assert len(commits) >= 29 // 3


# --- camera files (invariants 5 and 6) -----------------------------------------------------------


@pytest.fixture
def recordings(tmp_path) -> tuple[Path, Path]:
    """A recordings root with one unrelated file in it, and a directory outside it."""
    root, outside = tmp_path / "recordings", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "README").write_text("not a segment")
    return root, outside


def test_expired_files_and_rows_go_together_vanished_files_rows_go_too(engine, recordings):
    root, _ = recordings
    present, vanished, fresh = segment("c", OLD), segment("c", OLD), segment("c", NOW - D)
    add(engine, present, vanished, fresh)
    write_files(root, present, fresh)
    report = run(engine, make_settings(root))
    assert ids(engine, CameraSegment) == {fresh.id}
    assert not (root / present.path).exists()
    assert (root / fresh.path).exists()
    assert (report.files.deleted, report.files.vanished, report.files.refused) == (1, 1, 0)
    assert report.kinds["camera"].deleted == 2


def test_symlinks_and_dotdot_paths_are_refused_and_their_targets_untouched(engine, recordings):
    root, outside = recordings
    target = outside / "secret.mp4"
    target.write_bytes(b"keep me")
    (outside / "dir").mkdir()
    (outside / "dir" / "x.mp4").write_bytes(b"keep me too")
    (root / "cam").mkdir()
    (root / "cam" / "link.mp4").symlink_to(target)
    (root / "linked").symlink_to(outside / "dir", target_is_directory=True)
    refused = [
        segment("c", OLD, path="cam/link.mp4"),  # a symlink to a file outside
        segment("c", OLD, path="../outside/secret.mp4"),  # climbs out
        segment("c", OLD, path="cam/../../outside/secret.mp4"),
        segment("c", OLD, path="linked/x.mp4"),  # through a symlinked directory
    ]
    add(engine, *refused)
    report = run(engine, make_settings(root))
    assert target.read_bytes() == b"keep me"
    assert (outside / "dir" / "x.mp4").read_bytes() == b"keep me too"
    assert (root / "cam" / "link.mp4").is_symlink()
    assert ids(engine, CameraSegment) == {s.id for s in refused}
    assert report.files.refused == 4
    assert report.kinds["camera"].errors == 4 and report.kinds["camera"].deleted == 0


def test_a_failed_unlink_keeps_the_row_counts_it_and_the_next_run_retries(
    engine, recordings, monkeypatch
):
    root, _ = recordings
    stuck, fine = segment("c", OLD), segment("c", OLD)
    add(engine, stuck, fine)
    write_files(root, stuck, fine)
    real_unlink = os.unlink
    stuck_name = Path(stuck.path).name

    # Tests run as root, which ignores directory permissions, and tmpfs has no immutable flag:
    # an unlink failure cannot be caused for real here, so this one fault is injected.
    def failing_unlink(path, *args, **kwargs):
        if os.fspath(path) == stuck_name:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(camera_files.os, "unlink", failing_unlink)
    report = run(engine, make_settings(root))
    assert ids(engine, CameraSegment) == {stuck.id}
    assert (root / stuck.path).exists()
    assert report.kinds["camera"].errors == 1 and report.files.failed == 1
    monkeypatch.setattr(camera_files.os, "unlink", real_unlink)
    again = run(engine, make_settings(root), now=NOW + US)
    assert ids(engine, CameraSegment) == set()
    assert not (root / stuck.path).exists()
    assert again.files.deleted == 1 and again.kinds["camera"].errors == 0


def test_without_a_recordings_root_no_camera_row_or_file_is_touched(engine, recordings):
    root, _ = recordings
    seg = segment("c", OLD)
    add(engine, seg)
    write_files(root, seg)
    report = run(engine, make_settings(None))
    assert ids(engine, CameraSegment) == {seg.id}
    assert any("no recordings root" in n for n in report.notes)


def test_an_empty_recordings_root_looks_unmounted_and_nothing_is_purged(engine, tmp_path):
    root = tmp_path / "mnt"
    root.mkdir()
    seg = segment("c", OLD)
    add(engine, seg)
    report = run(engine, make_settings(root))
    assert ids(engine, CameraSegment) == {seg.id}
    assert report.files.vanished == 0
    assert any("empty" in n for n in report.notes)


# --- dry run and audit ---------------------------------------------------------------------------


def _snapshot(engine, root: Path) -> tuple:
    tables = (Visit, BadgeLoan, DoorEvent, CameraSegment, WifiLease)
    files = sorted(str(p) for p in root.rglob("*"))
    with db.session_scope(engine) as session:
        audit_rows = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    return tuple(ids(engine, t) for t in tables), files, audit_rows


def test_dry_run_changes_nothing_and_says_which_case_keeps_what(engine, recordings):
    root, _ = recordings
    segs = [segment("front", OLD), segment("back", OLD)]
    add(engine, *segs)
    write_files(root, *segs)
    add(engine, door("D1", "B1", OLD), door("D1", "B1", OLD), door("D2", "B1", OLD))
    place(engine, "INC-1", [("door_events", "D1"), ("camera", "front")], OLD, OLD + H)
    place(engine, "INC-2", [("door_events", None)], OLD, OLD)
    before = _snapshot(engine, root)
    report = run(engine, make_settings(root), dry_run=True)
    assert _snapshot(engine, root) == before
    assert report.dry_run
    out = report.as_json()
    assert out["kinds"]["door_events"] == {
        "deleted": 0,
        "held": 3,
        "errors": 0,
        "kept_by": {"INC-1": 2, "INC-2": 3},
    }
    assert out["kinds"]["camera"]["deleted"] == 1
    assert out["kinds"]["camera"]["kept_by"] == {"INC-1": 1}
    with db.session_scope(engine) as session:
        assert out["audit_head"] == audit.head(session)


def test_every_run_writes_one_audit_entry_with_counts_and_reports_the_head(engine):
    add(engine, door("D1", "B1", OLD), door("D1", "B1", OLD))
    first = run(engine)
    second = run(engine, now=NOW + H)
    with db.session_scope(engine) as session:
        entries = audit.entries(session, action="purge")
        assert audit.head(session) == second.audit_head
        assert audit.verify(session).ok
    assert [e.hash for e in entries] == [first.audit_head, second.audit_head]
    details = json.loads(entries[0].details)
    assert details["kinds"]["door_events"] == {"deleted": 2, "held": 0, "errors": 0}
    assert json.loads(entries[1].details)["kinds"]["door_events"]["deleted"] == 0


def test_report_json_has_the_documented_shape(engine):
    out = run(engine).as_json()
    assert {"at", "dry_run", "kinds", "files", "audit_head"} <= set(out)
    assert set(out["kinds"]) == set(kinds.NAMES)
    assert all(set(v) == {"deleted", "held", "errors"} for v in out["kinds"].values())
    assert set(out["files"]) == {"deleted", "vanished", "refused"}


# --- many sites sharing the store ----------------------------------------------------------------

# Statements a site's pass may run when nothing of it has expired: its lock, limits, policy,
# housekeeping and audit entry, not a batch, hold look-up and count for every kind.
STATEMENTS_PER_IDLE_SITE = 16


def test_sites_with_nothing_expired_cost_a_few_statements_each_and_expired_rows_still_go(engine):
    with db.session_scope(engine) as session:
        made = [
            sites.add(
                session,
                code=f"o{n:02d}",
                name=f"Office {n}",
                timezone="Europe/Amsterdam",
                country="NL",
                now=NOW - D,
                actor="tests",
            )
            for n in range(19)
        ]
        site_ids = [DEFAULT_SITE, *(row_id(site) for site in made)]
    fresh = [door("D1", "B1", NOW - H) for _ in site_ids]
    for row, site_id in zip(fresh, site_ids, strict=True):
        row.site_id = site_id
    kept = add(engine, *fresh)
    statements: list[str] = []

    def counted(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", counted)
    try:
        dry = run(engine, dry_run=True)
        dry_statements = len(statements)
        report = run(engine)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    assert len(report.sites) == len(site_ids) == 20
    assert all(r.deleted == r.held == 0 for r in report.kinds.values())
    for name, counted_dry in dry.kinds.items():
        assert (counted_dry.deleted, counted_dry.held) == (0, 0), name
    assert len(statements) - dry_statements <= STATEMENTS_PER_IDLE_SITE * len(site_ids)
    assert dry_statements <= STATEMENTS_PER_IDLE_SITE * len(site_ids)
    # The cheap skip still sees one expired record at one site among the twenty.
    expired = door("D2", "B2", OLD)
    expired.site_id = site_ids[7]
    add(engine, expired)
    assert run(engine, dry_run=True).kinds["door_events"].deleted == 1
    assert run(engine).kinds["door_events"].deleted == 1
    assert ids(engine, DoorEvent) == set(kept)


def test_a_later_sites_purged_visit_takes_its_roll_call_name_in_the_same_run(engine):
    with db.session_scope(engine) as session:
        later = sites.add(
            session,
            code="zz9",  # purged after the default site
            name="Last office",
            timezone="Europe/Amsterdam",
            country="NL",
            now=NOW - 10 * D,
            actor="tests",
        )
        gone = visit("Ada", OLD - H, OLD)
        gone.site_id = row_id(later)
        call = Muster(site_id=row_id(later), started_at=OLD - H, started_by="tests")
        session.add_all([gone, call])
        session.flush()
        session.add(MusterEntry(muster_id=row_id(call), visit_id=gone.id, name="Ada"))
    report = run(engine)
    assert report.sites["zz9"].kinds["visits"].deleted == 1
    assert "zz9: 1 roll-call names removed with their visits" in report.notes
    with db.session_scope(engine) as session:
        (entry,) = session.scalars(select(MusterEntry)).all()
        assert entry.visit_id is None and entry.name is None


# --- several purges at once ----------------------------------------------------------------------


def test_concurrent_purges_delete_everything_once_without_error(engine, recordings):
    root, _ = recordings
    segs = [segment("c", OLD + i * US) for i in range(60)]
    add(engine, *segs)
    write_files(root, *segs)
    add(engine, *(door("D1", "B1", OLD + i * US) for i in range(300)))
    settings = make_settings(root, batch=7)
    barrier, reports, errors = threading.Barrier(3), [], []

    def one() -> None:
        try:
            barrier.wait()
            reports.append(run(engine, settings))
        except Exception as err:  # collected, asserted below
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(r.kinds["door_events"].deleted for r in reports) == 300
    assert sum(r.kinds["camera"].deleted for r in reports) == 60
    assert sum(r.files.deleted for r in reports) == 60
    assert sum(r.files.vanished for r in reports) == 0
    assert ids(engine, DoorEvent) == set() and ids(engine, CameraSegment) == set()
    with db.session_scope(engine) as session:
        assert audit.verify(session).ok


def test_a_second_purge_on_postgresql_skips_while_the_first_holds_the_lock(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serialises batch by batch")
    (row,) = add(engine, door("D1", "B1", OLD))
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": locks.lock_key(purge.LOCK_NAME)})
        report = run(engine)
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": locks.lock_key(purge.LOCK_NAME)})
    assert report.skipped and "another purge is running" in report.notes[0]
    assert ids(engine, DoorEvent) == {row}
    with db.session_scope(engine) as session:
        assert audit.entries(session, action="purge") == []
        assert report.audit_head == audit.head(session)
    assert run(engine).kinds["door_events"].deleted == 1


def test_a_stop_request_ends_the_run_after_the_current_batch_and_is_audited(engine):
    add(engine, *(door("D1", "B1", OLD + i * US) for i in range(10)))
    stop = threading.Event()

    def shutdown_during_a_batch(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("DELETE FROM door_events"):
            stop.set()  # as the daemon's SIGTERM handler would, while a batch runs

    event.listen(engine, "before_cursor_execute", shutdown_during_a_batch)
    report = purge.run(engine, make_settings(batch=4), now=NOW, actor="tests", stop=stop)
    event.remove(engine, "before_cursor_execute", shutdown_during_a_batch)
    assert report.kinds["door_events"].deleted == 4  # that batch finished, no other began
    assert "stopped early" in report.notes[-1]
    with db.session_scope(engine) as session:
        (entry,) = audit.entries(session, action="purge")
    assert json.loads(entry.details)["kinds"]["door_events"]["deleted"] == 4
    assert len(ids(engine, DoorEvent)) == 6
    assert run(engine, now=NOW + US).kinds["door_events"].deleted == 6


def test_purge_command_prints_counts_and_the_audit_head(cli):
    engine = db.make_engine(cli.url)
    add(engine, door("D1", "B1", OLD), door("D2", "B1", OLD))
    engine.dispose()
    cli("hold", "place", "INC-1", "--reason", "r", "--from", "2026-06-01T11:00Z",
        "--to", "2026-06-01T13:00Z", "--door", "D1")  # fmt: skip
    dry = cli("purge", "--dry-run").stdout
    assert "would delete" in dry and "kept by INC-1: 1 door_events" in dry
    out = json.loads(cli("purge", "--format", "json").stdout)
    assert out["kinds"]["door_events"] == {"deleted": 1, "held": 1, "errors": 0}
    table = cli("purge").stdout
    head = table.strip().splitlines()[-1]
    assert head.startswith("audit head: ") and len(head) == len("audit head: ") + 64
    config = cli.config('[roles]\nadmin = ["nobody"]\n')
    assert "needs role admin" in cli("purge", code=3, config=config).stderr


def test_dry_run_list_shows_which_records_and_files_would_go(cli, recordings):
    root, _ = recordings
    engine = db.make_engine(cli.url)
    ada = add(engine, visit("Ada Lovelace", OLD, OLD + H))[0]
    add(engine, loan("B1", ada, OLD, OLD + H))
    kept, gone = add(engine, door("D1", "B1", OLD), door("D2", "B1", OLD))
    events = add(engine, *(door("D3", f"B{i}", OLD + i * US) for i in range(30)))
    segs = [segment("front", OLD, path="2026-06-01/12/front/00.00.mp4"), segment("back", OLD)]
    add(engine, *segs)
    write_files(root, *segs)
    add(engine, lease("aa:bb:cc:dd:ee:01", OLD, ends=OLD + H))  # wifi is kept a year
    before = _snapshot(engine, root)
    cli("hold", "place", "INC-1", "--reason", "r", "--from", "2026-06-01T11:00Z",
        "--to", "2026-06-01T13:00Z", "--door", "D1")  # fmt: skip
    config = cli.config(f'[camera]\nroot = "{root}"\n')

    listed = cli("purge", "--dry-run", "--list", config=config).stdout
    assert "visits that would go: 1" in listed and "Ada Lovelace" in listed
    assert "badges that would go: 1" in listed
    assert "door_events that would go: 31" in listed
    assert "... and 11 more (--format json lists them all)" in listed
    assert "files that would be deleted: 2" in listed
    assert str(root / "2026-06-01/12/front/00.00.mp4") in listed.splitlines()
    assert "wifi that would go" not in listed
    assert "dry run: nothing was changed" in listed

    out = json.loads(cli("purge", "--dry-run", "--list", "--format", "json", config=config).stdout)
    records = out["listed"]["records"]
    assert {r["id"] for r in records["door_events"]} == {gone, *events}  # all, not 20
    assert kept not in {r["id"] for r in records["door_events"]}  # held by INC-1
    assert records["visits"][0]["name"] == "Ada Lovelace"
    assert records["visits"][0]["expired_at"] == "2026-06-04T13:00:00Z"  # sign-out + 3 d
    assert records["wifi"] == [] and out["listed"]["totals"]["door_events"] == 31
    assert sorted(out["listed"]["files"]) == sorted(str(root / s.path) for s in segs)
    assert out["kinds"]["door_events"]["deleted"] == 31  # the counts are as before

    refused = cli("purge", "--list", config=config, code=2).stderr
    assert "--list: only with --dry-run" in refused
    assert _snapshot(engine, root)[:2] == before[:2]  # nothing deleted by any of it
    engine.dispose()


def test_camera_purge_removes_the_directories_it_emptied_never_the_root(engine, tmp_path):
    root, outside = tmp_path / "recordings", tmp_path / "outside"
    (outside / "2026-06-01").mkdir(parents=True)
    expired = [
        segment("front", OLD, path=f"2026-06-01/12/front/{m:02}.00.mp4") for m in range(3)
    ] + [segment("back", OLD, path="2026-06-01/12/back/00.00.mp4")]
    held = segment("dock", OLD, path="2026-06-01/12/dock/00.00.mp4")
    fresh = segment("front", NOW - D, path="2026-06-30/12/front/00.00.mp4")
    add(engine, *expired, held, fresh)
    write_files(root, *expired, held, fresh)
    (root / "2026-06-01/13/front").mkdir(parents=True)  # empty, but no file of ours was in it
    (root / "elsewhere").symlink_to(outside / "2026-06-01", target_is_directory=True)
    place(engine, "INC-1", [("camera", "dock")], OLD, OLD + H)
    report = run(engine, make_settings(root))
    assert report.files.deleted == 4 and report.files.directories_removed == 2  # front, back
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert left == [
        "2026-06-01",
        "2026-06-01/12",
        "2026-06-01/12/dock",
        "2026-06-01/12/dock/00.00.mp4",
        "2026-06-01/13",
        "2026-06-01/13/front",
        "2026-06-30",
        "2026-06-30/12",
        "2026-06-30/12/front",
        "2026-06-30/12/front/00.00.mp4",
        "elsewhere",
    ]
    assert (outside / "2026-06-01").is_dir()
    with db.session_scope(engine) as session:
        (entry,) = audit.entries(session, action="purge")
    assert json.loads(entry.details)["files"]["directories_removed"] == 2
    # Once the hold is released, the last directories of that day go too; the root never does.
    with db.session_scope(engine) as session:
        holds.release(session, now=NOW, actor="tests", case="INC-1", reason="done")
    later = run(engine, make_settings(root, grace="0s"), now=NOW + 60 * D)
    assert (later.files.deleted, later.files.directories_removed) == (2, 5)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "2026-06-01",
        "2026-06-01/13",
        "2026-06-01/13/front",
        "elsewhere",
    ]
