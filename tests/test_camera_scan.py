"""The camera scanner on real directory trees (Frigate's layout) and both engines: new files
indexed with their start and end, vanished rows dropped, files still being written left alone,
refusals without evidence, symlinks, holds, idempotent rescans, and `facility camera scan`.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from connectors import camera
from connectors.camera import Scanner
from facility.retention import holds
from facility.settings import Limits, Settings
from facility.sources import ingest
from facility.sources.records import SegmentIn
from facility.store import db
from facility.store.models import AuditEntry, CameraSegment, Rejection
from tests.conftest import T0
from tests.daemons import frigate_path
from tests.factories import count

S = timedelta(seconds=1)
HOUR = T0.replace(hour=11)  # recordings from 11:00 UTC
NOW = T0 + timedelta(hours=1)  # 13:00: everything written an hour ago has settled


def settings(root: Path | None, **camera_settings) -> Settings:
    return Settings(camera={"root": root, **camera_settings})


def record(root: Path, cam: str, start: datetime, *, mtime: datetime | None = None) -> str:
    """Write one segment file the way Frigate names it; its mtime defaults to ten seconds in."""
    relpath = frigate_path(cam, start)
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    stamp = (mtime or start + 10 * S).timestamp()
    os.utime(path, (stamp, stamp))
    return relpath


def rows(engine) -> dict[str, tuple[str, datetime, datetime]]:
    with db.session_scope(engine) as session:
        found = session.execute(
            select(CameraSegment.path, CameraSegment.camera, CameraSegment.start, CameraSegment.end)
        ).all()
    return {p: (c, _utc(s), _utc(e)) for p, c, s, e in found}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def refusals(engine) -> list[dict]:
    with db.session_scope(engine) as session:
        entries = session.execute(
            select(AuditEntry.details).where(AuditEntry.action == "camera.scan.refused")
        ).scalars()
        return [json.loads(d) for d in entries]


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


def fill(root: Path, n: int, cam: str = "front") -> list[str]:
    """`n` ten-second segments of `cam` from 11:00."""
    return [record(root, cam, HOUR + i * 10 * S) for i in range(n)]


# --- indexing --------------------------------------------------------------------------------


def test_new_files_are_indexed_with_start_and_end_from_the_next_segment(engine, root):
    a = record(root, "front", HOUR)
    b = record(root, "front", HOUR + 10 * S)
    short = record(root, "front", HOUR + 20 * S)  # ends early: the next starts 4 s later
    c = record(root, "front", HOUR + 24 * S)
    last = record(root, "front", HOUR + timedelta(minutes=59, seconds=55))
    next_hour = record(root, "front", HOUR + timedelta(hours=1))  # another directory
    other = record(root, "back_yard", HOUR + 3 * S)
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.indexed, report.known, report.found) == (7, 0, 7)
    assert report.refused is None
    assert rows(engine) == {
        a: ("front", HOUR, HOUR + 10 * S),
        b: ("front", HOUR + 10 * S, HOUR + 20 * S),
        short: ("front", HOUR + 20 * S, HOUR + 24 * S),
        c: ("front", HOUR + 24 * S, HOUR + 34 * S),
        last: ("front", HOUR + timedelta(minutes=59, seconds=55), HOUR + timedelta(hours=1)),
        next_hour: ("front", HOUR + timedelta(hours=1), HOUR + timedelta(hours=1, seconds=10)),
        other: ("back_yard", HOUR + 3 * S, HOUR + 13 * S),
    }


def test_a_rescan_is_idempotent(engine, root):
    fill(root, 30)
    first = camera.scan(engine, settings(root), now=NOW)
    before = rows(engine)
    second = camera.scan(engine, settings(root), now=NOW + timedelta(minutes=1))
    assert (first.indexed, second.indexed, second.known, second.vanished) == (30, 0, 30, 0)
    assert rows(engine) == before


def test_files_still_being_written_wait_until_they_settle(engine, root):
    done = record(root, "front", HOUR)
    writing = record(root, "front", HOUR + 6 * S, mtime=NOW - 2 * S)
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.indexed, report.being_written) == (1, 1)
    # The settled file ends where the one still being written starts.
    assert rows(engine) == {done: ("front", HOUR, HOUR + 6 * S)}
    later = camera.scan(engine, settings(root), now=NOW + timedelta(minutes=1))
    assert (later.indexed, later.being_written, later.known) == (1, 0, 1)
    assert rows(engine)[writing] == ("front", HOUR + 6 * S, HOUR + 16 * S)


def test_files_the_recorder_removed_lose_their_rows(engine, root):
    paths = fill(root, 30)
    camera.scan(engine, settings(root), now=NOW)
    for relpath in paths[:3]:
        (root / relpath).unlink()
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.vanished, report.known, report.refused) == (3, 27, None)
    assert set(rows(engine)) == set(paths[3:])


def test_a_file_that_does_not_fit_the_layout_is_reported_every_scan_recorded_once(engine, root):
    fill(root, 2)
    (root / "2026-06-01" / "11" / "front" / "notes.txt").write_text("not a segment")
    scanner = Scanner(engine, settings(root))
    first = scanner.scan(now=NOW)
    second = scanner.scan(now=NOW + timedelta(minutes=1))
    assert (first.rejected, second.rejected) == (1, 1)
    assert "does not match the frigate layout" in first.rejected_examples[0]
    assert count(engine, Rejection) == 1
    assert count(engine, CameraSegment) == 2


# --- deleting needs positive evidence --------------------------------------------------------


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_missing_or_empty_root_refuses_and_changes_nothing(engine, root, state):
    fill(root, 5)
    camera.scan(engine, settings(root), now=NOW)
    before = rows(engine)
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    if state == "missing":
        root.rmdir()
    report = camera.scan(engine, settings(root), now=NOW)
    assert report.refusal == f"root_{state}"
    assert rows(engine) == before
    assert refusals(engine) == [{"reason": f"root_{state}", "known": 5, "found": 0, "vanished": 0}]


def test_most_files_vanishing_at_once_refuses_and_indexes_nothing_either(engine, root):
    paths = fill(root, 50)
    camera.scan(engine, settings(root), now=NOW)
    before = rows(engine)
    for relpath in paths[:40]:
        (root / relpath).unlink()
    record(root, "back", HOUR)  # a new file: not indexed by a scan that refuses
    scanner = Scanner(engine, settings(root))
    report = scanner.scan(now=NOW)
    assert report.refusal == "most_vanished"
    # It stops counting as soon as more than half are gone.
    assert f"at least {50 // 2 + 1} of 50 indexed segment files vanished" in report.refused
    assert rows(engine) == before
    again = scanner.scan(now=NOW + timedelta(minutes=1))
    assert again.refusal == "most_vanished"
    # One audit entry per outage, counts only.
    (entry,) = refusals(engine)
    assert entry == {"reason": "most_vanished", "known": 50, "found": 1, "vanished": 26}


def test_a_handful_vanishing_is_not_a_mass_disappearance(engine, root):
    paths = fill(root, camera.MIN_VANISHED)
    camera.scan(engine, settings(root), now=NOW)
    for relpath in paths:
        (root / relpath).unlink()
    record(root, "back", HOUR)  # keeps the root from looking unmounted
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.refused, report.vanished, report.indexed) == (None, camera.MIN_VANISHED, 1)


def test_symlinks_are_skipped_and_never_followed(engine, root, tmp_path):
    fill(root, 2)
    elsewhere = tmp_path / "elsewhere" / "front"
    elsewhere.mkdir(parents=True)
    (elsewhere / "00.30.mp4").write_bytes(b"x")
    os.utime(elsewhere / "00.30.mp4", (0, 0))
    (root / "2026-06-01" / "12").mkdir()
    (root / "2026-06-01" / "12" / "front").symlink_to(elsewhere)  # a linked directory
    (root / "2026-06-01" / "11" / "front" / "00.40.mp4").symlink_to(elsewhere / "00.30.mp4")
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.indexed, report.symlinks) == (2, 2)
    assert all("12/" not in p and "00.40" not in p for p in rows(engine))


def test_a_row_whose_file_lies_behind_a_symlink_is_not_proof_of_absence(engine, root, tmp_path):
    fill(root, 2)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "00.00.mp4").write_bytes(b"x")
    (root / "2026-06-01" / "10").mkdir()
    (root / "2026-06-01" / "10" / "front").symlink_to(elsewhere)
    announced = SegmentIn("front", "2026-06-01/10/front/00.00.mp4", HOUR - 3600 * S, HOUR)
    with db.session_scope(engine) as session:
        ingest.store_segments(session, [announced], ingest.Intake(NOW, Limits()))
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.vanished, report.unverified) == (0, 1)
    assert announced.path in rows(engine)


def test_rows_an_active_hold_keeps_stay_when_their_files_vanish(engine, root):
    paths = fill(root, 30)
    record(root, "back", HOUR)
    camera.scan(engine, settings(root), now=NOW)
    with db.session_scope(engine) as session:
        holds.place(
            session,
            now=NOW,
            actor="tests",
            case="INC-1",
            reason="tests",
            window_from=HOUR,
            window_to=HOUR + 15 * S,
            scopes=[holds.Scope("camera", "front")],
        )
    for relpath in paths[:4]:  # 11:00:00 and 11:00:10 are held; 11:00:20 and :30 are not
        (root / relpath).unlink()
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.vanished, report.held_missing) == (2, 2)
    assert set(paths[:2]) <= set(rows(engine))
    assert not set(paths[2:4]) & set(rows(engine))


def test_a_backlog_bigger_than_memory_allows_is_indexed_by_a_second_walk(engine, root, monkeypatch):
    monkeypatch.setattr(camera, "NEW_BUFFER", 8)
    monkeypatch.setattr(camera, "WRITE_BATCH", 4)
    known = fill(root, 30, "front")
    camera.scan(engine, settings(root), now=NOW)
    (root / known[0]).unlink()
    backlog = fill(root, 25, "a_cam")  # sorts before "front": seen while a refusal is possible
    walks = []
    compare = camera._Run.compare
    monkeypatch.setattr(camera._Run, "compare", lambda run: walks.append(1) or compare(run))
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.indexed, report.vanished, report.refused, len(walks)) == (25, 1, None, 2)
    assert set(rows(engine)) == set(known[1:]) | set(backlog)


def test_rows_stream_in_the_same_order_as_the_walk(engine, root):
    names = ["a-c", "a!x", "ab", "a", "Z", "é", "a0"]
    for name in names:
        (root / name).mkdir()
        (root / name / "f").write_bytes(b"")
    (root / "a.txt").write_bytes(b"")
    walked = [f.path for f in camera._walk(root, camera.ScanReport(root="", at=NOW))]
    assert walked == sorted(walked)
    with db.session_scope(engine) as session:
        for i, path in enumerate(walked):
            session.add(
                CameraSegment(camera="c", path=path, start=HOUR + i * S, end=HOUR, retain_from=HOUR)
            )
    assert [r.path for r in camera._known_rows(engine)] == walked


def test_on_a_postgresql_collation_that_is_not_code_point_order_rows_still_merge(pg_engine, root):
    engine = pg_engine
    with engine.begin() as conn:
        assert camera._binary_order(conn)  # the test cluster's C.UTF-8
        conn.execute(
            text('ALTER TABLE camera_segments ALTER COLUMN path TYPE varchar COLLATE "en-x-icu"')
        )
    with engine.connect() as conn:
        assert not camera._binary_order(conn)
    paths = fill(root, 3, "a-b") + fill(root, 3, "a_b") + fill(root, 3, "ab")
    camera.scan(engine, settings(root), now=NOW)
    assert [r.path for r in camera._known_rows(engine)] == sorted(paths)
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.indexed, report.known, report.vanished, report.unverified) == (0, 9, 0, 0)


# --- the command -----------------------------------------------------------------------------


def test_cli_prints_a_summary_and_exits_0(cli, root):
    fill(root, 3)
    config = cli.config(f'[camera]\nroot = "{root}"\n')
    result = cli("camera", "scan", config=config)
    assert re.search(r"^indexed +3$", result.output, re.MULTILINE), result.output
    assert "refused" not in result.output
    again = cli("camera", "scan", "--format", "json", config=config)
    summary = json.loads(again.output)
    assert (summary["indexed"], summary["known"], summary["refused"]) == (0, 3, None)


def test_cli_exits_1_when_it_refuses_and_2_without_a_root(cli, root):
    config = cli.config(f'[camera]\nroot = "{root}"\n')
    result = cli("camera", "scan", config=config, code=1)
    assert "refused, nothing changed" in result.output
    assert "empty" in result.output
    no_root = cli.config("[camera]\n")
    result = cli("camera", "scan", config=no_root, code=2)
    assert "camera.root" in result.output
