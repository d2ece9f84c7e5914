"""The camera scanner: index the recordings root's new segment files, drop rows of vanished ones.

One scan walks the root and the `camera_segments` rows side by side, both in code-point order of
the relative path, and merges them like two sorted lists: a file without a row is new, a row
without a file is a candidate vanished file, both present is known. Nothing is loaded whole: the
walk lists one directory at a time (`os.scandir`, iterative, children sorted so that the
depth-first order is the order of the full paths), and rows come in keyset pages by path (or, on a
PostgreSQL database whose collation is not code-point order, one server-side cursor ordered by
`path COLLATE "C"`).

- New files are parsed with the configured layout and indexed through `facility.sources.ingest` in
  batches. A file modified within `SETTLE` of `now` is still being written and is left for a later
  scan. A segment ends `segment_length` after it starts, or where its camera's next file starts if
  that is earlier: the next file in walk order (known, new or still being written), which for the
  built-in layouts and any year-first pattern is the next in time, and `end_from_next` within
  each batch.
- Symlinks are never followed, only counted; nor are other non-regular files indexed.
- A file that does not fit the layout is counted in every report (it is never indexed, so it
  would never expire) and recorded in `rejections` once per path per `Scanner`. So is a file whose
  path names a start further ahead than `limits.clock_skew` (a recorder clock set wrong): it is
  indexed by the first scan after that time, never with a clock in the future.
- A row whose file was not seen is dropped only on positive evidence: `lstat` says the path no
  longer exists. An unreadable directory, a symlinked one, a file created during the scan: all are
  kept. Rows an active hold keeps stay (`holds.held`), reported as held but missing.

Deleting needs positive evidence (STYLE rule 6, invariant 5): when the root is missing or empty
(`camera_files.root_state`), or more than half of the indexed rows (and more than
`MIN_VANISHED`) have vanished at once, the scan changes nothing, logs, writes an audit entry
(`camera.scan.refused`, counts only) and reports the refusal. To decide that without holding a
huge backlog in memory, new rows and deletions are written early only once the remaining rows
could no longer tip the balance; a backlog bigger than `NEW_BUFFER` before that point is indexed
by a second walk after the decision.

A daemon keeps one `Scanner` and calls `scan(now=...)` every interval: a refusal is then logged and
audited once per outage, not once a minute; `scan()` below is the one-shot form for the CLI.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from array import array
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.engine import Connection

from connectors.camera_layout import SOURCE, end_from_next, layout_for
from facility.errors import ConfigError, RejectedInput
from facility.retention import camera_files, holds
from facility.settings import Settings
from facility.sources import ingest
from facility.sources.records import SegmentIn
from facility.store import db
from facility.store.models import CameraSegment, table_of
from facility.timefmt import utc_text
from facility.timeutil import ensure_utc
from facility.trail import audit

log = logging.getLogger("facility.camera")

SETTLE = timedelta(seconds=10)  # a file modified more recently than this is still being written
MIN_VANISHED = 20  # "a handful": fewer vanished rows never count as a mass disappearance
VANISHED_SHARE = 0.5  # more than this share of indexed rows gone at once: refuse
NEW_BUFFER = 20_000  # new segments held while a refusal is still possible
WRITE_BATCH = 1_000  # rows per insert or delete transaction
PAGE = 5_000  # rows per keyset page
REMEMBERED_REJECTIONS = 10_000  # rejected paths a Scanner remembers (and records) at most
REJECTIONS_PER_SCAN = 100  # new rejection rows one scan writes at most
EXAMPLES = 5
_BINARY_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"})
_GONE = {errno.ENOENT, errno.ENOTDIR}
_T = table_of(CameraSegment)


@dataclass
class ScanReport:
    """What one scan found and did."""

    root: str
    at: datetime
    found: int = 0  # regular files seen under the root
    indexed: int = 0  # new rows
    known: int = 0  # files already indexed
    vanished: int = 0  # rows dropped because their file is gone
    held_missing: int = 0  # rows kept by an active hold although their file is gone
    unverified: int = 0  # rows whose file was not seen and could not be confirmed gone: kept
    being_written: int = 0  # new files left for a later scan
    rejected: int = 0  # files that do not fit the layout
    rejected_examples: list[str] = field(default_factory=list)
    symlinks: int = 0  # symlinks skipped, never followed
    other: int = 0  # fifos, sockets, devices: skipped
    unreadable: int = 0  # directories that could not be listed
    refused: str | None = None  # why nothing was changed, None when the scan went ahead
    refusal: str | None = None  # root_missing | root_empty | most_vanished

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form with every count."""
        return {
            "root": self.root,
            "at": utc_text(self.at),
            "found": self.found,
            "indexed": self.indexed,
            "known": self.known,
            "vanished": self.vanished,
            "held_missing": self.held_missing,
            "unverified": self.unverified,
            "being_written": self.being_written,
            "rejected": self.rejected,
            "rejected_examples": list(self.rejected_examples),
            "symlinks": self.symlinks,
            "other": self.other,
            "unreadable": self.unreadable,
            "refused": self.refused,
            "refusal": self.refusal,
        }


class _Refuse(Exception):
    """Too many rows vanished: the scan stops and changes nothing."""


def scan(
    engine: Engine, settings: Settings, *, now: datetime, actor: str = "scanner"
) -> ScanReport:
    """One scan of `settings.camera.root` at `now` (ConfigError when no root is configured)."""
    return Scanner(engine, settings).scan(now=now, actor=actor)


class Scanner:
    """Scans one recordings root; keep one per process so refusals and rejections log once."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        camera = settings.camera
        if camera.root is None:
            raise ConfigError("camera.root: no recordings root is configured")
        self.root = Path(camera.root)
        self.layout = layout_for(
            camera.layout,
            pattern=camera.pattern,
            site_zone=settings.site_zone,
            segment_length=camera.segment_length,
        )
        self.engine = engine
        self.grace = settings.holds.release_grace
        self.limits = settings.limits
        self.zone = settings.site_zone
        self._remembered: set[str] = set()  # rejected paths already recorded
        self._refusing: str | None = None  # the refusal in force at the last scan
        self._refused_scans = 0
        self._held_missing = 0

    def intake(self, now: datetime) -> ingest.Intake:
        """The clock and limits new segments are held to."""
        return ingest.Intake(now, self.limits, self.zone)

    def scan(self, *, now: datetime, actor: str = "scanner") -> ScanReport:
        """Index new files and drop rows of vanished ones, or refuse and change nothing."""
        report = ScanReport(root=str(self.root), at=now)
        problem = camera_files.root_state(self.root)
        if problem is not None:
            code = _root_code(self.root)
            return self._refuse(report, code, problem, known=self._count(), actor=actor)
        known = self._count()
        run = _Run(self, report, now=now, known=known, decided=False)
        try:
            run.compare()
        except _Refuse:  # stopped as soon as the count passed the line: "at least" that many
            return self._refuse_vanished(report, run, actor, early=True)
        if _too_many(run.vanished_seen, known):
            return self._refuse_vanished(report, run, actor)
        run.finish()
        if run.overflowed:  # the backlog did not fit: index it now that the decision is made
            second = _Run(self, ScanReport(root=report.root, at=now), now=now, known=known)
            second.compare()
            second.finish()
            report.indexed += second.report.indexed
            report.vanished += second.report.vanished
            report.held_missing += second.report.held_missing
        self._done(report)
        return report

    # --- outcomes ----------------------------------------------------------------------------

    def _refuse_vanished(
        self, report: ScanReport, run: _Run, actor: str, *, early: bool = False
    ) -> ScanReport:
        share = f"{'at least ' if early else ''}{run.vanished_seen} of {run.known}"
        reason = (
            f"{share} indexed segment files vanished at once under {self.root} "
            "(not mounted, or restored too late?)"
        )
        return self._refuse(
            report,
            "most_vanished",
            reason,
            known=run.known,
            actor=actor,
            vanished=run.vanished_seen,
        )

    def _refuse(
        self,
        report: ScanReport,
        code: str,
        reason: str,
        *,
        known: int,
        actor: str,
        vanished: int = 0,
    ) -> ScanReport:
        report.refused, report.refusal = reason, code
        self._refused_scans += 1
        if self._refusing == code:
            log.debug("camera scan refused again: %s", reason)
            return report
        self._refusing = code
        log.warning("camera scan refused to change anything: %s", reason)
        with db.session_scope(self.engine) as session:
            audit.append(
                session,
                now=report.at,
                actor=actor,
                action="camera.scan.refused",
                reason=code,
                known=known,
                found=report.found,
                vanished=vanished,
            )
        return report

    def _done(self, report: ScanReport) -> None:
        if self._refusing is not None:
            log.info("camera scan works again after %d refused scan(s)", self._refused_scans)
            self._refusing, self._refused_scans = None, 0
        if report.held_missing and report.held_missing != self._held_missing:
            log.warning(
                "%d camera segment row(s) kept by an active hold have no file any more",
                report.held_missing,
            )
        self._held_missing = report.held_missing

    def _count(self) -> int:
        with db.session_scope(self.engine) as session:
            counted: int = session.execute(select(func.count()).select_from(_T)).scalar_one()
            return counted

    # --- rejections --------------------------------------------------------------------------

    def unrecorded(self, path: str) -> bool:
        """Whether a rejection of `path` is still to be recorded (bounded: the first N paths)."""
        return path not in self._remembered and len(self._remembered) < REMEMBERED_REJECTIONS

    def recorded(self, paths: list[str]) -> None:
        """Remember that rejections of `paths` are in the rejections table."""
        self._remembered.update(paths)


class _Row(NamedTuple):
    id: int
    path: str
    camera: str
    start: datetime


class _File(NamedTuple):
    path: str
    entry: os.DirEntry[str]


class _Run:
    """One merge of the walk with the rows, and the changes it plans."""

    def __init__(
        self,
        scanner: Scanner,
        report: ScanReport,
        *,
        now: datetime,
        known: int,
        decided: bool = True,
    ) -> None:
        self.scanner = scanner
        self.report = report
        self.now = now
        self.known = known
        self.decided = decided  # True: the refusal question is settled, write as we go
        self.intake = scanner.intake(now)
        # Per camera, the newest new segments (several when files share a start: a movie and its
        # preview); they wait for the camera's next file to learn where they end.
        self.pending: dict[str, list[SegmentIn]] = {}
        self.buffer: list[SegmentIn] = []
        self.vanished = array("q")  # ids of rows whose files are gone, not yet dropped
        self.vanished_seen = 0
        self.rejections: list[tuple[str, RejectedInput]] = []
        self.rows_seen = 0
        self.overflowed = False

    # --- the merge ---------------------------------------------------------------------------

    def compare(self) -> None:
        """Walk files and rows in path order and sort each into new, known or missing."""
        scanner = self.scanner
        with closing(_known_rows(scanner.engine)) as rows:
            files = _walk(scanner.root, self.report)
            file, row = next(files, None), next(rows, None)
            while file is not None or row is not None:
                if row is None or (file is not None and file.path < row.path):
                    assert file is not None  # the loop runs while either is left
                    self._new(file)
                    file = next(files, None)
                elif file is None or row.path < file.path:
                    self._missing(row)
                    row = next(rows, None)
                else:
                    self._known(row)
                    file, row = next(files, None), next(rows, None)

    def _new(self, file: _File) -> None:
        self.report.found += 1
        try:
            segment = self._reading(file.path)
        except RejectedInput as err:
            self._rejected(file.path, err)
            return
        try:
            mtime = file.entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return  # gone since it was listed
        self._boundary(segment.camera, segment.start)
        if abs(self.now.timestamp() - mtime) < SETTLE.total_seconds():
            self.report.being_written += 1
            return
        self.pending.setdefault(segment.camera, []).append(segment)

    def _reading(self, path: str) -> SegmentIn:
        """The layout's reading of `path`, if its start is not in the future; else RejectedInput."""
        segment = self.scanner.layout.parse(path)
        try:
            return ingest.admit(segment, self.intake)
        except RejectedInput as err:
            raise RejectedInput(
                f"{path[:200]!r}: {err.reason}", source=SOURCE, raw=path[:512]
            ) from err

    def _known(self, row: _Row) -> None:
        self.report.found += 1
        self.report.known += 1
        self.rows_seen += 1
        self._boundary(row.camera, ensure_utc(row.start))

    def _missing(self, row: _Row) -> None:
        self.rows_seen += 1
        if not _confirmed_gone(self.scanner.root, row.path):
            self.report.unverified += 1
            return
        self.vanished.append(row.id)
        self.vanished_seen += 1
        if not self.decided and _too_many(self.vanished_seen, self.known):
            raise _Refuse
        if len(self.vanished) >= WRITE_BATCH and self._may_write():
            self._drop()

    def _boundary(self, camera: str, start: datetime) -> None:
        """A file of `camera` starts at `start`: the camera's pending segments end there at most."""
        group = self.pending.get(camera)
        if not group or start == group[0].start:
            return  # no pending segment, or a file sharing its start: not its successor
        del self.pending[camera]
        for segment in group:
            # An earlier start is out of walk order (an unusual pattern): no successor known.
            end = min(segment.end, start) if start > segment.start else segment.end
            self._queue(replace(segment, end=end))

    def _queue(self, segment: SegmentIn) -> None:
        if self.overflowed:
            return  # the second walk indexes it
        self.buffer.append(segment)
        if len(self.buffer) < WRITE_BATCH:
            return
        if self._may_write():
            self._index()
        elif len(self.buffer) >= NEW_BUFFER:
            self.overflowed, self.buffer = True, []

    def _rejected(self, path: str, err: RejectedInput) -> None:
        self.report.rejected += 1
        if len(self.report.rejected_examples) < EXAMPLES:
            self.report.rejected_examples.append(err.reason)
        if len(self.rejections) < REJECTIONS_PER_SCAN and self.scanner.unrecorded(path):
            self.rejections.append((path, err))

    def _may_write(self) -> bool:
        """Whether changes may be written now: no refusal can follow, whatever the rest holds."""
        if self.decided:
            return True
        remaining = max(0, self.known - self.rows_seen)
        return not _too_many(self.vanished_seen + remaining, self.known)

    # --- writing -----------------------------------------------------------------------------

    def finish(self) -> None:
        """Write what is left: the pending segments, the buffer, the drops and the rejections."""
        for group in self.pending.values():
            for segment in group:
                self._queue(segment)
        self.pending.clear()
        self.decided = True
        self._index()
        self._drop()
        self._record_rejections()

    def _index(self) -> None:
        batch, self.buffer = end_from_next(self.buffer), []
        for start in range(0, len(batch), WRITE_BATCH):
            with db.session_scope(self.scanner.engine) as session:
                new = ingest.store_segments(
                    session, batch[start : start + WRITE_BATCH], self.intake
                )
            self.report.indexed += new
            self.report.known += len(batch[start : start + WRITE_BATCH]) - new  # raced in

    def _drop(self) -> None:
        ids, self.vanished = list(self.vanished), array("q")
        held = holds.held("camera", _T, now=self.now, grace=self.scanner.grace)
        for start in range(0, len(ids), WRITE_BATCH):
            chunk = ids[start : start + WRITE_BATCH]
            with db.session_scope(self.scanner.engine) as session:
                kept = session.execute(
                    select(func.count()).select_from(_T).where(_T.c.id.in_(chunk), held)
                ).scalar_one()
                dropped = session.exec(delete(_T).where(_T.c.id.in_(chunk), ~held)).rowcount
            self.report.vanished += dropped
            self.report.held_missing += kept

    def _record_rejections(self) -> None:
        if not self.rejections:
            return
        with db.session_scope(self.scanner.engine) as session:
            for _, rejection in self.rejections:
                ingest.record_rejection(session, rejection, now=self.now)
        self.scanner.recorded([path for path, _ in self.rejections])
        log.warning(
            "camera scan: %d file(s) under %s do not fit the %s layout, e.g. %s",
            len(self.rejections),
            self.scanner.root,
            self.scanner.layout.name,
            self.rejections[0][1].reason,
        )
        self.rejections = []


def _root_code(root: Path) -> str:
    """A short name for what `root_state` found wrong with `root`, for the audit entry."""
    if not root.exists():
        return "root_missing"
    with contextlib.suppress(OSError):
        if root.is_dir() and not any(root.iterdir()):
            return "root_empty"
    return "root_unusable"


def _too_many(vanished: int, known: int) -> bool:
    return vanished > MIN_VANISHED and vanished > known * VANISHED_SHARE


def _confirmed_gone(root: Path, relpath: str) -> bool:
    """Whether `relpath` provably no longer exists under `root` (any other error: not proven)."""
    try:
        os.lstat(root / relpath)
    except OSError as err:
        return err.errno in _GONE
    return False


# --- the walk ------------------------------------------------------------------------------------


def _walk(root: Path, report: ScanReport) -> Iterator[_File]:
    """Regular files under `root`, in code-point order of their relative paths; links skipped."""
    stack = [iter(_listing(str(root), "", report))]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        relpath, entry, is_dir = item
        if is_dir:
            stack.append(iter(_listing(entry.path, relpath + "/", report)))
        else:
            yield _File(relpath, entry)


def _listing(
    path: str, prefix: str, report: ScanReport
) -> list[tuple[str, os.DirEntry[str], bool]]:
    """One directory's entries as (relpath, entry, is_dir), sorted so full paths come in order."""
    try:
        with os.scandir(path) as listing:
            entries = list(listing)
    except OSError as err:
        report.unreadable += 1
        log.warning("camera scan: cannot list %s: %s", path, err.strerror)
        return []
    keyed = []
    for entry in entries:
        try:
            if entry.is_symlink():
                report.symlinks += 1
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if not is_dir and not entry.is_file(follow_symlinks=False):
                report.other += 1
                continue
        except OSError:
            report.unreadable += 1
            continue
        # "name/" for a directory: its files then sort exactly where their full paths do.
        keyed.append(
            (entry.name + "/" if is_dir else entry.name, prefix + entry.name, entry, is_dir)
        )
    keyed.sort(key=lambda item: item[0])
    return [(relpath, entry, is_dir) for _, relpath, entry, is_dir in keyed]


# --- the rows ------------------------------------------------------------------------------------


def _known_rows(engine: Engine) -> Generator[_Row, None, None]:
    """Every camera segment row as (id, path, camera, start), in code-point order of path."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            binary = _binary_order(conn)
        if not binary:
            return _streamed_rows(engine)
    return _paged_rows(engine)


def _paged_rows(engine: Engine) -> Generator[_Row, None, None]:
    """Keyset pages on the path index, each in its own short transaction."""
    last: str | None = None
    columns = (_T.c.id, _T.c.path, _T.c.camera, _T.c.start)
    while True:
        query = select(*columns).order_by(_T.c.path).limit(PAGE)
        if last is not None:
            query = query.where(_T.c.path > last)
        with db.session_scope(engine) as session:
            page = [_Row(*row) for row in session.execute(query)]
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1].path


def _streamed_rows(engine: Engine) -> Generator[_Row, None, None]:
    """One server-side cursor in code-point order, for a PostgreSQL collation that is not."""
    columns = (_T.c.id, _T.c.path, _T.c.camera, _T.c.start)
    query = select(*columns).order_by(_T.c.path.collate("C"))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=PAGE).execute(query)
        for row in result:
            yield _Row(*row)


def _binary_order(conn: Connection) -> bool:
    """Whether PostgreSQL orders `camera_segments.path` by code point (C-like collation)."""
    column = conn.execute(
        text(
            "SELECT collation_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'camera_segments' AND column_name = 'path'"
        )
    ).scalar()
    if column:
        return column in _BINARY_COLLATIONS
    collate, provider = conn.execute(
        text(
            "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM pg_database d "
            "WHERE datname = current_database()"
        )
    ).one()
    return provider in (None, "c", "b") and collate in _BINARY_COLLATIONS
