"""The camera scanner on real directory trees (Frigate's layout) and both engines: new files
indexed with their start and end, vanished rows dropped, files still being written left alone,
refusals without evidence, symlinks, holds, idempotent rescans, and `facility camera scan`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from connectors import camera
from connectors.camera import Scanner
from facility.retention import holds
from facility.settings import Limits, Settings
from facility.sources import ingest, segments
from facility.sources.records import SegmentIn
from facility.store import db
from facility.store.models import AuditEntry, CameraDir, CameraSegment, Rejection
from tests.conftest import PG_ADMIN_URL, T0
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
    settle(root, relpath)
    return relpath


def settle(root: Path, relpath: str) -> None:
    """Date the directories above `relpath` that were just changed an hour back, as a recorder's
    writes long done are (one modified within `DIR_SETTLE` is read by every scan); the others
    keep their stamps.
    """
    now, past = time.time(), (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    parts = relpath.split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        directory = root.joinpath(*parts[:depth])
        if now - directory.stat().st_mtime < 60:
            os.utime(directory, (past, past))


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
    full = camera.scan(engine, settings(root), now=NOW + timedelta(minutes=2), full=True)
    assert (first.mode, second.mode, full.mode) == ("full", "incremental", "full")
    assert (first.indexed, second.indexed, second.dirs_read, second.vanished) == (30, 0, 0, 0)
    assert (full.indexed, full.known, full.vanished) == (0, 30, 0)
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


# --- incremental scans: only what changed is read --------------------------------------------


def day(root: Path) -> dict[tuple[str, int], list[str]]:
    """Six segments per camera in each of three hours (09, 10, 11): eleven directories."""
    return {
        (cam, h): [record(root, cam, HOUR.replace(hour=h) + i * 10 * S) for i in range(6)]
        for cam in ("back", "front")
        for h in (9, 10, 11)
    }


def test_an_incremental_scan_reads_only_changed_directories_and_finds_every_change(
    engine, root, monkeypatch
):
    monkeypatch.setattr(segments, "PAGE", 4)  # ranges longer than a page go on in new reads
    paths = day(root)
    scanner = Scanner(engine, settings(root))
    first = scanner.scan(now=NOW)
    quiet = scanner.scan(now=NOW + timedelta(minutes=1))
    assert (first.mode, first.dirs_read, first.indexed) == ("full", 11, 36)
    assert (quiet.mode, quiet.dirs_read, quiet.indexed, quiet.vanished) == ("incremental", 0, 0, 0)
    added = record(root, "front", HOUR + timedelta(minutes=5))  # 11/front
    (root / paths["back", 10][2]).unlink()  # 10/back
    settle(root, paths["back", 10][2])
    shutil.rmtree(root / "2026-06-01" / "09" / "back")  # changes 09
    settle(root, paths["back", 9][0].rpartition("/")[0])
    # A directory with subdirectories is looked at every scan: the removed one shows at once.
    first = scanner.scan(now=NOW + timedelta(minutes=2))
    assert (first.mode, first.vanished, first.refused) == ("incremental", 6, None)
    # Quiet leaves take turns: every change is found within COLD_ROUNDS scans, and only the
    # directories that changed are read.
    later = [scanner.scan(now=NOW + timedelta(minutes=3 + i)) for i in range(camera.COLD_ROUNDS)]
    assert sum(r.indexed for r in later) == 1
    assert first.vanished + sum(r.vanished for r in later) == 1 + 6
    assert first.dirs_read + sum(r.dirs_read for r in later) == 3  # 09, 10/back, 11/front
    gone = {paths["back", 10][2], *paths["back", 9]}
    assert set(rows(engine)) == ({p for group in paths.values() for p in group} - gone) | {added}
    assert rows(engine)[added] == ("front", HOUR + 5 * 60 * S, HOUR + 5 * 60 * S + 10 * S)
    assert scanner.scan(now=NOW + timedelta(minutes=30)).dirs_read == 0
    # A new Scanner (the CLI's, a restarted daemon's) carries on from the stamps in the store.
    record(root, "back", HOUR.replace(hour=12))  # a new hour directory
    fresh = camera.scan(engine, settings(root), now=NOW + timedelta(minutes=4))
    assert (fresh.mode, fresh.indexed, fresh.dirs_read) == ("incremental", 1, 3)  # day, 12, back


def test_the_reconciliation_is_due_at_a_start_and_every_interval_after(engine, root):
    fill(root, 3)
    scanner = Scanner(engine, settings(root))
    day = timedelta(days=1)
    assert scanner.read({"2026-06-01/11/front"}, now=NOW) is None  # inotify waits for it
    assert scanner.reconciliation_due(NOW, day)
    assert scanner.scan(now=NOW, full=True).mode == "full"
    assert not scanner.reconciliation_due(NOW + timedelta(hours=23), day)
    assert scanner.reconciliation_due(NOW + day, day)
    assert scanner.read({"2026-06-01/11/front"}, now=NOW).mode == "watch"


def test_a_tree_copied_with_its_times_does_not_hide_new_files(engine, root, tmp_path):
    paths = day(root)
    scanner = Scanner(engine, settings(root))
    scanner.scan(now=NOW)
    hour = root / "2026-06-01" / "10"
    # A restore or rsync -a: the same directories with their times, one file more than before.
    copy = tmp_path / "copy"
    shutil.copytree(hour, copy, copy_function=shutil.copy2)
    extra = copy / "front" / "30.00.mp4"
    extra.write_bytes(b"x")
    past = (HOUR - timedelta(minutes=30)).timestamp()
    os.utime(extra, (past, past))
    shutil.copystat(hour / "front", copy / "front")  # its time as the scanner stamped it
    shutil.rmtree(hour)
    shutil.copytree(copy, hour, copy_function=shutil.copy2)
    shutil.copystat(root / "2026-06-01", root / "2026-06-01")
    report = scanner.scan(now=NOW + timedelta(minutes=1))
    assert report.indexed == 1, report
    assert "2026-06-01/10/front/30.00.mp4" in rows(engine)
    assert report.vanished == 0
    assert len(rows(engine)) == sum(len(group) for group in paths.values()) + 1


def test_a_stamp_that_did_not_change_hides_nothing_from_the_reconciliation(engine, root):
    # A clock set back to the instant of the last scan could give a changed directory its old
    # stamp again (modification and change time both): no test can set the system clock, so the
    # store is given the stamps the directories have now, as such a collision would leave them.
    day(root)
    scanner = Scanner(engine, settings(root))
    scanner.scan(now=NOW)
    added = record(root, "back", HOUR + timedelta(minutes=7))
    (root / "2026-06-01" / "09" / "front" / "00.00.mp4").unlink()
    settle(root, "2026-06-01/09/front/00.00.mp4")
    with db.session_scope(engine) as session:
        for directory in session.execute(select(CameraDir)).scalars():
            directory.stamp = segments._text(camera._stamp(os.lstat(root / directory.path)))
    blind = Scanner(engine, settings(root)).scan(now=NOW + timedelta(minutes=1))
    assert (blind.mode, blind.dirs_read, blind.indexed, blind.vanished) == ("incremental", 0, 0, 0)
    found = Scanner(engine, settings(root)).scan(now=NOW + timedelta(minutes=2), full=True)
    assert (found.mode, found.indexed, found.vanished) == ("full", 1, 1)
    assert added in rows(engine)


def test_a_directory_with_a_file_still_being_written_is_read_again_until_it_settles(engine, root):
    day(root)
    scanner = Scanner(engine, settings(root))
    scanner.scan(now=NOW)
    writing = record(root, "front", HOUR + timedelta(minutes=9), mtime=NOW - 2 * S)
    first = scanner.scan(now=NOW)
    second = scanner.scan(now=NOW + 5 * S)
    assert (first.being_written, first.dirs_read, second.being_written, second.dirs_read) == (
        1,
        1,
        1,
        1,
    )
    settled = scanner.scan(now=NOW + timedelta(minutes=1))
    assert (settled.indexed, settled.dirs_read) == (1, 1)
    assert writing in rows(engine)
    assert scanner.scan(now=NOW + timedelta(minutes=2)).dirs_read == 0


# --- deleting needs positive evidence --------------------------------------------------------


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_missing_or_empty_root_refuses_and_changes_nothing(engine, root, state, full):
    fill(root, 5)
    camera.scan(engine, settings(root), now=NOW)
    before = rows(engine)
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    if state == "missing":
        root.rmdir()
    report = camera.scan(engine, settings(root), now=NOW, full=full)
    assert report.refusal == f"root_{state}"
    assert rows(engine) == before
    assert refusals(engine) == [{"reason": f"root_{state}", "known": 5, "found": 0, "vanished": 0}]


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_most_files_vanishing_at_once_refuses_and_indexes_nothing_either(engine, root, full):
    paths = fill(root, 50)
    camera.scan(engine, settings(root), now=NOW)
    before = rows(engine)
    for relpath in paths[:40]:
        (root / relpath).unlink()
    record(root, "back", HOUR)  # a new file: not indexed by a scan that refuses
    scanner = Scanner(engine, settings(root))
    report = scanner.scan(now=NOW, full=full)
    assert report.refusal == "most_vanished"
    # It stops counting as soon as more than half are gone.
    assert f"at least {50 // 2 + 1} of 50 indexed segment files vanished" in report.refused
    assert rows(engine) == before
    again = scanner.scan(now=NOW + timedelta(minutes=1), full=full)
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


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_a_backlog_bigger_than_memory_allows_is_indexed_by_a_second_walk(
    engine, root, monkeypatch, full
):
    monkeypatch.setattr(camera, "NEW_BUFFER", 8)
    monkeypatch.setattr(camera, "WRITE_BATCH", 4)
    known = fill(root, 30, "front")
    camera.scan(engine, settings(root), now=NOW)
    (root / known[0]).unlink()
    backlog = fill(root, 25, "a_cam")  # sorts before "front": seen while a refusal is possible
    walks = []
    compare = camera._Run.compare
    monkeypatch.setattr(
        camera._Run, "compare", lambda run, pairs: walks.append(1) or compare(run, pairs)
    )
    report = camera.scan(engine, settings(root), now=NOW, full=full)
    assert (report.indexed, report.vanished, report.refused, len(walks)) == (25, 1, None, 2)
    assert set(rows(engine)) == set(known[1:]) | set(backlog)


def _bytes_read() -> int:
    """What this process has read through read(2)/pread(2) so far: SQLite's page reads, too."""
    counters = Path("/proc/self/io").read_text().split()
    return int(counters[counters.index("rchar:") + 1])


def _reads_of(url: str, work) -> int:
    """The bytes `work(engine)` reads, on an engine of its own (SQLite's page cache starts empty)."""
    engine = db.make_engine(url)
    try:
        before = _bytes_read()
        work(engine)
        return _bytes_read() - before
    finally:
        engine.dispose()


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
@pytest.mark.parametrize("change", ["new files", "a vanished file"])
def test_an_incremental_scan_reads_what_changed_not_the_whole_store(
    sqlite_template, tmp_path, root, change
):
    # Whether most files vanished at once is a question about a share of the rows indexed; it
    # needs to know only whether there are more than about twice what the scan has read.
    shutil.copy(sqlite_template, tmp_path / "facility.db")
    url = f"sqlite:///{tmp_path / 'facility.db'}"
    first = [record(root, "front", HOUR + i * 10 * S) for i in range(30)]
    engine = db.make_engine(url)
    camera.scan(engine, settings(root), now=NOW)
    engine.dispose()
    # A long-running site: many more rows, in directories that this scan has no reason to read.
    with closing(sqlite3.connect(tmp_path / "facility.db")) as conn, conn:
        conn.executemany(
            'INSERT INTO camera_segments (camera, path, start, "end", retain_from, known_at) '
            "VALUES ('old', ?, ?, ?, ?, ?)",
            (
                (f"2026-03-{i // 36_000 + 1:02d}/{i:07d}.mp4", *["2026-03-01 00:00:00.000000"] * 4)
                for i in range(100_000)
            ),
        )
    if change == "new files":  # a batch's worth: more than an hour of one camera holds
        added = [record(root, "side", HOUR + i * S) for i in range(camera.WRITE_BATCH + 10)]
    else:
        (root / first[5]).unlink()
        settle(root, first[5])
    reports = []
    scan_reads = _reads_of(
        url, lambda e: reports.append(camera.scan(e, settings(root), now=NOW + timedelta(hours=1)))
    )
    count_reads = _reads_of(url, segments.count)
    (report,) = reports
    assert (report.mode, report.refused) == ("incremental", None)
    if change == "new files":
        assert report.indexed == len(added)
    else:
        assert report.vanished == 1
    assert scan_reads < count_reads / 2, (scan_reads, count_reads)


def test_rows_stream_in_the_same_order_as_the_walk(engine, root):
    names = ["a-c", "a!x", "ab", "a", "Z", "é", "a0"]
    for name in names:
        (root / name).mkdir()
        (root / name / "f").write_bytes(b"")
    (root / "a.txt").write_bytes(b"")
    run = camera._Run(
        Scanner(engine, settings(root)), camera.ScanReport(root="", at=NOW), now=NOW, known=0
    )
    walked = [f.path for f in camera._walk(str(root), run)]
    assert walked == sorted(walked)
    with db.session_scope(engine) as session:
        for i, path in enumerate(walked):
            session.add(
                CameraSegment(camera="c", path=path, start=HOUR + i * S, end=HOUR, retain_from=HOUR)
            )
    assert [
        r.path for r in segments.all_rows(engine, binary=segments.binary_order(engine))
    ] == walked


def test_on_a_postgresql_collation_that_is_not_code_point_order_rows_still_merge(pg_engine, root):
    engine = pg_engine
    with engine.begin() as conn:
        assert segments._binary_order(conn)  # the test cluster's C.UTF-8
        conn.execute(
            text('ALTER TABLE camera_segments ALTER COLUMN path TYPE varchar COLLATE "en-x-icu"')
        )
    with engine.connect() as conn:
        assert not segments._binary_order(conn)
    paths = fill(root, 3, "a-b") + fill(root, 3, "a_b") + fill(root, 3, "ab")
    camera.scan(engine, settings(root), now=NOW)
    assert [
        r.path for r in segments.all_rows(engine, binary=segments.binary_order(engine))
    ] == sorted(paths)
    report = camera.scan(engine, settings(root), now=NOW, full=True)
    assert (report.indexed, report.known, report.vanished, report.unverified) == (0, 9, 0, 0)
    # Each directory's rows read as a range of paths: right under this collation too.
    (root / paths[0]).unlink()
    added = record(root, "a_b", HOUR + timedelta(minutes=5))
    report = camera.scan(engine, settings(root), now=NOW)
    assert (report.mode, report.indexed, report.vanished, report.dirs_read) == (
        "incremental",
        1,
        1,
        2,
    )
    assert set(rows(engine)) == (set(paths) - {paths[0]}) | {added}


# --- the command -----------------------------------------------------------------------------


def test_cli_prints_a_summary_and_exits_0(cli, root):
    fill(root, 3)
    config = cli.config(f'[camera]\nroot = "{root}"\n')
    result = cli("camera", "scan", config=config)
    assert re.search(r"^indexed +3$", result.output, re.MULTILINE), result.output
    assert "refused" not in result.output
    again = cli("camera", "scan", "--format", "json", config=config)
    summary = json.loads(again.output)
    assert (summary["mode"], summary["indexed"], summary["refused"]) == ("incremental", 0, None)
    full = json.loads(cli("camera", "scan", "--full", "--format", "json", config=config).output)
    assert (full["mode"], full["indexed"], full["known"]) == ("full", 0, 3)


def test_cli_exits_1_when_it_refuses_and_2_without_a_root(cli, root):
    config = cli.config(f'[camera]\nroot = "{root}"\n')
    result = cli("camera", "scan", config=config, code=1)
    assert "refused, nothing changed" in result.output
    assert "empty" in result.output
    no_root = cli.config("[camera]\n")
    result = cli("camera", "scan", config=no_root, code=2)
    assert "camera.root" in result.output


def test_a_database_that_sorts_paths_otherwise_gets_a_code_point_index(request, root):
    request.getfixturevalue("pg_template")  # the cluster is up
    name = f"facility_icu_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        )
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        assert not segments.binary_order(engine)
        paths = fill(root, 3, "a-b") + fill(root, 3, "a_b") + fill(root, 3, "ab")
        scanner = Scanner(engine, settings(root))
        assert scanner.scan(now=NOW).indexed == 9
        (root / paths[4]).unlink()
        settle(root, paths[4])
        again = scanner.scan(now=NOW + timedelta(minutes=1))
        assert (again.mode, again.vanished, again.dirs_read) == ("incremental", 1, 1)
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # a small table: what a large one does
            plan = conn.execute(
                text(
                    'EXPLAIN SELECT id FROM camera_segments WHERE path COLLATE "C" >= :low AND '
                    'path COLLATE "C" < :high ORDER BY path COLLATE "C"'
                ),
                {"low": "2026-06-01/11/a_b/", "high": "2026-06-01/11/a_b0"},
            ).scalars()
            assert "ix_camera_segments_path_c" in "\n".join(plan)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
