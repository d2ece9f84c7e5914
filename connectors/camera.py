"""The camera scanner: index the recordings root's new segment files, drop rows of vanished ones.

Two ways to scan, one merge. Both compare files with `camera_segments` rows in code-point order of
the relative path and merge them like two sorted lists: a file without a row is new, a row without
a file is a candidate vanished file, both present is known. The store's side of it lives in
`facility.sources.segments` (a connector writes no SQL).

- The **reconciliation** (`scan(full=True)`, the first scan of a `Scanner` whose store remembers no
  directory, `facility camera scan --full`, the daemon's start and every `camera.reconcile_interval`)
  walks the whole root (`os.scandir`, iterative, children sorted so that the depth-first order is
  the order of the full paths) against every row (keyset pages by path, or one server-side cursor
  on a PostgreSQL collation that is not code-point order), and remembers every directory's stamp.
- The **incremental scan** (every other scan) `lstat`s remembered directories and reads only
  those whose stamp changed (the first of a `Scanner` looks at all of them; later ones at those
  with subdirectories, those read in the last `HOT_SCANS` scans and a rotating share of the
  quiet rest, see `_looked_at`): a directory's modification time changes when an entry is added to it
  or removed from it, its change time too (which nobody can set back, unlike the modification time
  that a copy preserves), and a directory replaced by another has another inode. A directory read
  is listed and merged with the rows of its own files (a range of paths, leaving out its
  subdirectories' ranges); a new subdirectory is read whole; rows under a subdirectory that is gone
  are candidates vanished. What a clock set back or a tree copied with its times could still hide,
  the next reconciliation finds. `read(dirs, closed=...)` is the same for directories that inotify
  named (`connectors.camera_watch`), without the `lstat` pass.

A directory is remembered without a stamp, and so read again by the next scan, while a file in it
is still being written or while its own modification time is within `DIR_SETTLE` of the wall
clock (a file added within the file system's timestamp granularity could otherwise leave the stamp
unchanged).

- New files are parsed with the configured layout and indexed through `facility.sources.ingest` in
  batches. A file modified within `SETTLE` of `now` is still being written and is left for a later
  scan, unless inotify saw it closed. A segment ends `segment_length` after it starts, or where its
  camera's next file starts if that is earlier: the next file in walk order among the files the
  scan reads (known, new or still being written), which for the built-in layouts and any
  year-first pattern is the next in time, and `end_from_next` within each batch. (An incremental
  scan reads fewer files, so a late file's successor may be one it did not read: the segment then
  ends later, never earlier.)
- Symlinks are never followed, only counted; nor are other non-regular files indexed.
- A file that does not fit the layout is counted in every report (it is never indexed, so it
  would never expire; an incremental report repeats the count of the directories it did not read)
  and recorded in `rejections` once per path per `Scanner`. So is a file whose path names a start
  further ahead than `limits.clock_skew` (a recorder clock set wrong): it is indexed by the first
  scan that reads it after that time, never with a clock in the future.
- A row whose file was not seen is dropped only on positive evidence: `lstat` says the path (or a
  directory above it) no longer exists. An unreadable directory, a symlinked one, a file created
  during the scan: all are kept. Rows an active hold keeps stay (`holds.held`), reported as held
  but missing.

Deleting needs positive evidence (STYLE rule 6, invariant 5), whichever way the scan reads: when the
root is missing or empty (`camera_files.root_state`), or more than half of the indexed rows (and
more than `MIN_VANISHED`) have vanished at once, the scan changes nothing, logs, writes an audit
entry (`camera.scan.refused`, counts only) and reports the refusal. To decide that without holding
a huge backlog in memory, new rows and deletions are written early only once the remaining rows
could no longer tip the balance; a backlog bigger than `NEW_BUFFER` before that point is indexed
by a second pass after the decision. An incremental scan asks those questions ("more than N rows
indexed?") with counts that stop after about twice N rows, N following what it has read: a full
count of the store would make a scan that finds a new hour, or one vanished file, cost in
proportion to every row indexed.

A daemon keeps one `Scanner` and calls `scan(now=...)` every interval: a refusal is then logged and
audited once per outage, not once a minute; `scan()` below is the one-shot form for the CLI.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import math
import os
import stat
import threading
import time
from array import array
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Engine

from connectors.camera_layout import SOURCE, end_from_next, layout_for
from facility.errors import ConfigError, RejectedInput
from facility.retention import camera_files
from facility.settings import Settings
from facility.sources import ingest, segments
from facility.sources.records import SegmentIn
from facility.sources.segments import Row, Stamp
from facility.store.models import DEFAULT_SITE
from facility.timefmt import utc_text
from facility.timeutil import ensure_utc

log = logging.getLogger("facility.camera")

SETTLE = timedelta(seconds=10)  # a file modified more recently than this is still being written
# A leaf directory (no subdirectories) that has not changed for `HOT_SCANS` scans is quiet: a scan
# looks at a rotating `1/COLD_ROUNDS` of the quiet ones (a system call each costs more than a
# hundredth of listing the files a Frigate hour directory holds); every other directory, every scan.
HOT_SCANS = 10
COLD_ROUNDS = 10
# A directory modified this recently (by the wall clock, which stamps the file system) is read
# again next time: an entry added within the file system's timestamp granularity would not
# change the stamp.
DIR_SETTLE = 2.0
MIN_VANISHED = 20  # "a handful": fewer vanished rows never count as a mass disappearance
VANISHED_SHARE = 0.5  # more than this share of indexed rows gone at once: refuse
NEW_BUFFER = 20_000  # new segments held while a refusal is still possible
WRITE_BATCH = 1_000  # rows per insert or delete transaction
REMEMBERED_REJECTIONS = 10_000  # rejected paths a Scanner remembers (and records) at most
REJECTIONS_PER_SCAN = 100  # new rejection rows one scan writes at most
EXAMPLES = 5
_GONE = {errno.ENOENT, errno.ENOTDIR}
_UNKNOWN = (-1, -1, -1)


@dataclass
class ScanReport:
    """What one scan found and did."""

    root: str
    at: datetime
    mode: str = "full"  # full | incremental | watch
    dirs_read: int = 0  # directories listed
    found: int = 0  # regular files seen in the directories listed
    indexed: int = 0  # new rows
    known: int = 0  # files already indexed
    vanished: int = 0  # rows dropped because their file is gone
    held_missing: int = 0  # rows kept by an active hold although their file is gone
    unverified: int = 0  # rows whose file was not seen and could not be confirmed gone: kept
    being_written: int = 0  # new files left for a later scan
    rejected: int = 0  # files that do not fit the layout
    rejected_examples: list[str] = field(default_factory=list)
    rejected_new: int = 0  # rejected files recorded in `rejections` by this scan
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
            "mode": self.mode,
            "dirs_read": self.dirs_read,
            "found": self.found,
            "indexed": self.indexed,
            "known": self.known,
            "vanished": self.vanished,
            "held_missing": self.held_missing,
            "unverified": self.unverified,
            "being_written": self.being_written,
            "rejected": self.rejected,
            "rejected_examples": list(self.rejected_examples),
            "rejected_new": self.rejected_new,
            "symlinks": self.symlinks,
            "other": self.other,
            "unreadable": self.unreadable,
            "refused": self.refused,
            "refusal": self.refusal,
        }


class _Refuse(Exception):
    """Too many rows vanished: the scan stops and changes nothing."""


def scan(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    actor: str = "scanner",
    full: bool = False,
    site_id: int = DEFAULT_SITE,
    site_zone: tzinfo | None = None,
    site_code: str | None = None,
) -> ScanReport:
    """One scan of `settings.camera.root` at `now` (ConfigError when no root is configured)."""
    scanner = Scanner(engine, settings, site_id=site_id, site_zone=site_zone, site_code=site_code)
    return scanner.scan(now=now, actor=actor, full=full)


@dataclass
class _Tally:
    """What one directory held besides indexable files, when it was last read."""

    rejected: int = 0
    examples: list[str] = field(default_factory=list)
    symlinks: int = 0
    other: int = 0

    def __bool__(self) -> bool:
        return bool(self.rejected or self.symlinks or self.other)


class _File(NamedTuple):
    path: str
    entry: os.DirEntry[str]


# One directory's files and rows, each in code-point order of path.
Pair = tuple[Iterator[_File], Generator[Row, None, None]]


class Scanner:
    """Scans one site's recordings root; keep one per process so refusals and rejections log once.

    The root's files are compared with that site's rows only: another office's root holds its own.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        site_id: int = DEFAULT_SITE,
        site_zone: tzinfo | None = None,
        site_code: str | None = None,
    ) -> None:
        camera = settings.camera
        if camera.root is None:
            raise ConfigError("camera.root: no recordings root is configured")
        self.root = Path(camera.root)
        self.site_id, self.site_code = site_id, site_code
        self.zone = site_zone or settings.site_zone
        self._root = str(self.root)
        self.layout = layout_for(
            camera.layout,
            pattern=camera.pattern,
            site_zone=self.zone,
            segment_length=camera.segment_length,
        )
        self.engine = engine
        self.grace = settings.holds.release_grace
        self.limits = settings.limits
        self._lock = threading.Lock()  # one scan or read at a time
        self._binary: bool | None = None
        self._dirs: dict[str, Stamp | None] | None = None  # remembered directories and stamps
        self._tallies: dict[str, _Tally] = {}  # per directory, from its last reading
        self._reconciled: datetime | None = None  # when this process last walked the whole root
        self._scans = 0  # incremental scans (and inotify reads) this process ran
        self._hot: dict[str, int] = {}  # directory -> the scan that last read it
        self._parents: set[str] = set()  # directories with subdirectories
        self._rotation: list[str] = []  # quiet directories, in the order they take turns
        self._turn = 0
        self._remembered: set[str] = set()  # rejected paths already recorded
        self._refusing: str | None = None  # the refusal in force at the last scan
        self._refused_scans = 0
        self._held_missing = 0

    def intake(self, now: datetime) -> ingest.Intake:
        """The clock and limits new segments are held to."""
        return ingest.Intake(now, self.limits, self.zone, self.site_id)

    @property
    def binary(self) -> bool:
        """Whether the store orders paths by code point (read once)."""
        if self._binary is None:
            self._binary = segments.binary_order(self.engine)
        return self._binary

    def reconciliation_due(self, now: datetime, every: timedelta) -> bool:
        """Whether the next scan should walk the whole root: never yet here, or `every` since."""
        return self._reconciled is None or now - self._reconciled >= every

    def scan(self, *, now: datetime, actor: str = "scanner", full: bool = False) -> ScanReport:
        """Index new files and drop rows of vanished ones, or refuse and change nothing.

        Incremental when the store remembers directories from an earlier scan, unless `full`.
        """
        with self._lock:
            if self._dirs is None:
                self._dirs = segments.read_dirs(self.engine, self.site_id)
            if full or not self._dirs:
                return self._full(now, actor)
            report = ScanReport(root=self._root, at=now, mode="incremental")
            if (refused := self._root_refusal(report, actor)) is not None:
                return refused
            changed = self._changed(report)
            return self._go(report, lambda run: run.read(changed), actor, known=None)

    def read(
        self,
        dirs: Collection[str],
        *,
        now: datetime,
        closed: Collection[str] = (),
        actor: str = "scanner",
    ) -> ScanReport | None:
        """Read the directories `dirs` (relative; inotify saw them change) now.

        Files in `closed` were seen closed after writing, so they need not settle. None when no
        reconciliation has run yet in this process (the scan that will do it reads them anyway).
        """
        with self._lock:
            if self._reconciled is None:
                return None
            report = ScanReport(root=self._root, at=now, mode="watch")
            if (refused := self._root_refusal(report, actor)) is not None:
                return refused
            return self._go(
                report, lambda run: run.read(sorted(dirs)), actor, known=None, closed=set(closed)
            )

    # --- the two ways ------------------------------------------------------------------------

    def _full(self, now: datetime, actor: str) -> ScanReport:
        report = ScanReport(root=self._root, at=now, mode="full")
        if (refused := self._root_refusal(report, actor)) is not None:
            return refused
        known = segments.count(self.engine, self.site_id)
        binary = self.binary

        def pairs(run: _Run) -> Iterable[Pair]:
            return [
                (
                    _walk(self._root, run),
                    segments.all_rows(self.engine, binary=binary, site_id=self.site_id),
                )
            ]

        return self._go(report, pairs, actor, known=known, full=True)

    def _root_refusal(self, report: ScanReport, actor: str) -> ScanReport | None:
        problem = camera_files.root_state(self.root)
        if problem is None:
            return None
        code = _root_code(self.root)
        return self._refuse(
            report, code, problem, known=segments.count(self.engine, self.site_id), actor=actor
        )

    def _looked_at(self) -> Iterable[str]:
        """The remembered directories this scan `lstat`s: every one at this scanner's first
        incremental scan (the CLI's only one), then those with subdirectories, those read in the
        last `HOT_SCANS` scans and the quiet leaves' turn.
        """
        assert self._dirs is not None
        self._scans += 1
        if self._scans == 1:
            self._parents = {_parent(path) for path in self._dirs if path}
            return list(self._dirs)
        recent = self._scans - HOT_SCANS
        self._hot = {path: at for path, at in self._hot.items() if at > recent}
        if self._turn == 0:
            quiet = (p for p in self._dirs if p not in self._parents and p not in self._hot)
            self._rotation = sorted(quiet)
        size = -(-len(self._rotation) // COLD_ROUNDS)
        turn = self._rotation[self._turn * size : (self._turn + 1) * size]
        self._turn = (self._turn + 1) % COLD_ROUNDS
        return {*self._parents, *self._hot, *turn}

    def _changed(self, report: ScanReport) -> list[str]:
        """The directories looked at whose stamp changed; those gone are forgotten."""
        assert self._dirs is not None
        changed, gone = [], []
        lstat, below, remembered = os.lstat, self._root + "/", self._dirs
        # The one loop a steady-state scan makes: a system call and a tuple comparison each.
        for path in self._looked_at():
            stamp = remembered.get(path, _UNKNOWN)
            if stamp is _UNKNOWN:
                continue  # forgotten since it took its turn
            try:
                info = lstat(below + path if path else self._root)
            except OSError as err:
                if err.errno in _GONE:
                    gone.append(path)  # its parent changed with it: reading that finds its rows
                else:
                    report.unreadable += 1
                continue
            if stamp is not None and stamp == (info.st_mtime_ns, info.st_ctime_ns, info.st_ino):
                continue
            if stat.S_ISDIR(info.st_mode):  # else a link or a file now: its parent tells
                changed.append(path)
        if gone:
            for path in gone:
                del self._dirs[path]
                self._tallies.pop(path, None)
            self._parents.difference_update(gone)
            segments.save_dirs(self.engine, {}, gone, site_id=self.site_id)
        return changed

    def _go(
        self,
        report: ScanReport,
        pairs: Callable[[_Run], Iterable[Pair]],
        actor: str,
        *,
        known: int | None,
        full: bool = False,
        closed: set[str] | None = None,
    ) -> ScanReport:
        now = report.at
        run = _Run(self, report, now=now, known=known, decided=False, closed=closed)
        try:
            run.compare(pairs(run))
        except _Refuse:  # stopped as soon as the count passed the line: "at least" that many
            return self._refuse_vanished(report, run, actor, early=True)
        if run.too_many_vanished():
            return self._refuse_vanished(report, run, actor)
        run.finish()
        last = run
        if run.overflowed:  # the backlog did not fit: index it now that the decision is made
            sub = ScanReport(root=report.root, at=now, mode=report.mode)
            last = _Run(self, sub, now=now, known=run.counted, closed=closed)
            last.compare(pairs(last))
            last.finish()
            report.indexed += sub.indexed
            report.vanished += sub.vanished
            report.held_missing += sub.held_missing
        self._remember(last, full=full)
        self._totals(report, last)
        self._done(report)
        return report

    def _remember(self, run: _Run, *, full: bool) -> None:
        """Keep the stamps and tallies of the directories `run` read, in memory and in the store."""
        assert self._dirs is not None
        if full:
            old, self._dirs = self._dirs, dict(run.stamps)
            self._tallies = {p: t for p, t in run.tallies.items() if t}
            removed = [path for path in old if path not in self._dirs]
            changed = {p: s for p, s in self._dirs.items() if p not in old or old[p] != s}
            self._reconciled = run.now
            self._hot = {p: self._scans for p, s in run.stamps.items() if s is None}
            self._parents = {_parent(path) for path in self._dirs if path}
            self._turn = 0
        else:
            removed = []
            changed = {p: s for p, s in run.stamps.items() if self._dirs.get(p, "-") != s}
            self._parents.update(_parent(p) for p in run.stamps if p and p not in self._dirs)
            self._dirs.update(run.stamps)
            for path in run.stamps:
                self._tallies.pop(path, None)
                self._hot[path] = self._scans
            self._tallies.update((p, t) for p, t in run.tallies.items() if t)
        if changed or removed:
            segments.save_dirs(self.engine, changed, removed, site_id=self.site_id)

    def _totals(self, report: ScanReport, run: _Run) -> None:
        """Rejected files, symlinks and other files: of every remembered directory."""
        tallies = self._tallies.values()
        report.rejected = sum(t.rejected for t in tallies)
        report.symlinks = sum(t.symlinks for t in tallies)
        report.other = sum(t.other for t in tallies)
        examples = [e for t in run.tallies.values() for e in t.examples]
        examples += [e for t in tallies for e in t.examples if e not in examples]
        report.rejected_examples = examples[:EXAMPLES]

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
        segments.record_refusal(
            self.engine,
            now=report.at,
            actor=actor,
            code=code,
            known=known,
            found=report.found,
            vanished=vanished,
            site_code=self.site_code,
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

    # --- rejections --------------------------------------------------------------------------

    def unrecorded(self, path: str) -> bool:
        """Whether a rejection of `path` is still to be recorded (bounded: the first N paths)."""
        return path not in self._remembered and len(self._remembered) < REMEMBERED_REJECTIONS

    def recorded(self, paths: list[str]) -> None:
        """Remember that rejections of `paths` are in the rejections table."""
        self._remembered.update(paths)


class _Run:
    """One merge of files with rows, and the changes it plans."""

    def __init__(
        self,
        scanner: Scanner,
        report: ScanReport,
        *,
        now: datetime,
        known: int | None,
        decided: bool = True,
        closed: set[str] | None = None,
    ) -> None:
        self.scanner = scanner
        self.report = report
        self.now = now
        self._count = known  # None: counted when first needed
        self._at_least = 0  # what a count that stopped early found: there are at least this many
        self.decided = decided  # True: the refusal question is settled, write as we go
        self.closed = closed or set()
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
        self.stamps: dict[str, Stamp | None] = {}  # directories listed, with their stamps
        self.tallies: dict[str, _Tally] = {}
        self._gone_dirs: set[str] = set()  # directories lstat proved gone (cache)

    @property
    def known(self) -> int:
        """How many rows there were when the scan began (counted once, when needed)."""
        if self._count is None:
            self._count = segments.count(self.scanner.engine, self.scanner.site_id)
        return self._count

    @property
    def counted(self) -> int | None:
        """How many rows there were, if a count of them all has been needed so far."""
        return self._count

    def _more_known_than(self, threshold: int) -> bool:
        """Whether more than `threshold` rows were indexed, counting only about twice that far.

        The refusal's questions are of this kind, with thresholds that follow what the scan has
        read: an incremental scan that counted every row to answer them would cost in proportion
        to the whole store, not to what changed.
        """
        if self._count is not None:
            return self._count > threshold
        if self._at_least > threshold:
            return True
        limit = 2 * threshold + WRITE_BATCH  # doubling: a growing threshold counts again rarely
        found = segments.count_up_to(self.scanner.engine, limit, self.scanner.site_id)
        if found < limit:
            self._count = found
            return found > threshold
        self._at_least = found
        return True

    def too_many_vanished(self) -> bool:
        """`_too_many(vanished so far, known)`, without counting further than it needs."""
        vanished = self.vanished_seen
        if vanished <= MIN_VANISHED:
            return False
        # vanished > known * share, that is: known < vanished / share
        return not self._more_known_than(math.ceil(vanished / VANISHED_SHARE) - 1)

    # --- what is read --------------------------------------------------------------------------

    def read(self, paths: Iterable[str]) -> Iterator[Pair]:
        """Each directory in `paths` and every new directory below them, in walk order."""
        scanner = self.scanner
        remembered = scanner._dirs or {}
        heap = [(_key(p), p) for p in paths]
        heapq.heapify(heap)
        queued = {p for _, p in heap}
        while heap:
            _, path = heapq.heappop(heap)
            full = _join(scanner._root, path)
            try:
                info = os.lstat(full)
            except OSError:
                continue  # gone since (its parent tells) or unreadable (the next scan retries)
            if not stat.S_ISDIR(info.st_mode):
                continue
            listing = self.listing(full, path, info)
            if listing is None:
                continue
            subdirs = []
            for relpath, _entry, is_dir in listing:
                if is_dir:
                    subdirs.append(relpath)
                    if relpath not in remembered and relpath not in queued:
                        queued.add(relpath)
                        heapq.heappush(heap, (_key(relpath), relpath))
            files = (_File(r, e) for r, e, is_dir in listing if not is_dir)
            yield files, _own_rows(scanner, path, subdirs)

    def listing(
        self, full: str, relpath: str, info: os.stat_result
    ) -> list[tuple[str, os.DirEntry[str], bool]] | None:
        """One directory's entries, sorted so full paths come in order; its stamp remembered."""
        report = self.report
        try:
            with os.scandir(full) as listing:
                entries = list(listing)
        except OSError as err:
            report.unreadable += 1
            log.warning("camera scan: cannot list %s: %s", full, err.strerror)
            self.stamps[relpath] = None
            return None
        report.dirs_read += 1
        recent = abs(time.time() - info.st_mtime) < DIR_SETTLE
        self.stamps[relpath] = None if recent else _stamp(info)
        tally = _Tally()
        prefix = relpath + "/" if relpath else ""
        keyed = []
        for entry in entries:
            try:
                if entry.is_symlink():
                    tally.symlinks += 1
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                if not is_dir and not entry.is_file(follow_symlinks=False):
                    tally.other += 1
                    continue
            except OSError:
                report.unreadable += 1
                continue
            # "name/" for a directory: its files then sort exactly where their full paths do.
            keyed.append(
                (entry.name + "/" if is_dir else entry.name, prefix + entry.name, entry, is_dir)
            )
        if tally:
            self.tallies[relpath] = tally
        keyed.sort(key=lambda item: item[0])
        return [(path, entry, is_dir) for _, path, entry, is_dir in keyed]

    # --- the merge ---------------------------------------------------------------------------

    def compare(self, pairs: Iterable[Pair]) -> None:
        """Merge each pair's files with its rows and sort each into new, known or missing."""
        for files_in, rows_in in pairs:
            with closing(rows_in):
                files, rows = iter(files_in), rows_in
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
        if (
            abs(self.now.timestamp() - mtime) < SETTLE.total_seconds()
            and file.path not in self.closed
        ):
            self.report.being_written += 1
            self.stamps[_parent(file.path)] = None  # read it again next time
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

    def _known(self, row: Row) -> None:
        self.report.found += 1
        self.report.known += 1
        self.rows_seen += 1
        self._boundary(row.camera, ensure_utc(row.start))

    def _missing(self, row: Row) -> None:
        self.rows_seen += 1
        if not self._confirmed_gone(row.path):
            self.report.unverified += 1
            return
        self.vanished.append(row.id)
        self.vanished_seen += 1
        if not self.decided and self.too_many_vanished():
            raise _Refuse
        if len(self.vanished) >= WRITE_BATCH and self._may_write():
            self._drop()

    def _confirmed_gone(self, relpath: str) -> bool:
        """Whether `relpath` provably no longer exists (any other error: not proven)."""
        parent = _parent(relpath)
        if parent in self._gone_dirs:
            return True
        try:
            os.lstat(_join(self.scanner._root, relpath))
        except OSError as err:
            if err.errno not in _GONE:
                return False
        else:
            return False
        # Gone: if its directory is gone too, so are the rest of the rows below it.
        try:
            os.lstat(_join(self.scanner._root, parent))
        except OSError as err:
            if err.errno in _GONE:
                self._gone_dirs.add(parent)
        return True

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
            return  # the second pass indexes it
        self.buffer.append(segment)
        if len(self.buffer) < WRITE_BATCH:
            return
        if self._may_write():
            self._index()
        elif len(self.buffer) >= NEW_BUFFER:
            self.overflowed, self.buffer = True, []

    def _rejected(self, path: str, err: RejectedInput) -> None:
        tally = self.tallies.setdefault(_parent(path), _Tally())
        tally.rejected += 1
        if len(tally.examples) < EXAMPLES:
            tally.examples.append(err.reason)
        if len(self.rejections) < REJECTIONS_PER_SCAN and self.scanner.unrecorded(path):
            self.rejections.append((path, err))

    def _may_write(self) -> bool:
        """Whether changes may be written now: no refusal can follow, whatever the rest holds."""
        if self.decided:
            return True
        seen, vanished = self.rows_seen, self.vanished_seen
        # With more rows than this in all, those not yet seen could still tip the balance (all
        # of them vanished); an incremental scan has seen few, so a short count settles it.
        tipping = max(
            seen, MIN_VANISHED + seen - vanished, int((seen - vanished) / (1 - VANISHED_SHARE))
        )
        if self._more_known_than(tipping):
            return False
        remaining = max(0, self.known - seen)  # counted in full by now, and at most `tipping`
        return not _too_many(vanished + remaining, self.known)

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
            chunk = batch[start : start + WRITE_BATCH]
            new = segments.store(self.scanner.engine, chunk, self.intake)
            self.report.indexed += new
            self.report.known += len(chunk) - new  # raced in

    def _drop(self) -> None:
        ids, self.vanished = list(self.vanished), array("q")
        for start in range(0, len(ids), WRITE_BATCH):
            dropped, kept = segments.drop(
                self.scanner.engine,
                ids[start : start + WRITE_BATCH],
                now=self.now,
                grace=self.scanner.grace,
            )
            self.report.vanished += dropped
            self.report.held_missing += kept

    def _record_rejections(self) -> None:
        if not self.rejections:
            return
        segments.record_rejections(
            self.scanner.engine,
            (rejection for _, rejection in self.rejections),
            now=self.now,
            site_id=self.scanner.site_id,
        )
        self.scanner.recorded([path for path, _ in self.rejections])
        self.report.rejected_new += len(self.rejections)
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


def _stamp(info: os.stat_result) -> Stamp:
    """What changes when a directory's entries change, or the directory is replaced."""
    return (info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def _join(root: str, relpath: str) -> str:
    return f"{root}/{relpath}" if relpath else root


def _parent(relpath: str) -> str:
    return relpath.rpartition("/")[0]


def _key(relpath: str) -> str:
    """A directory's place in walk order: its files sort right after this."""
    return relpath + "/" if relpath else ""


def _own_rows(scanner: Scanner, path: str, subdirs: list[str]) -> Generator[Row, None, None]:
    """The rows in directory `path` and below it, minus the ranges of the subdirectories listed.

    What is left are its own files' rows and those of subdirectories that are gone.
    """
    prefix, end = (path + "/", path + "0") if path else ("", None)
    low: str | None = prefix or None
    ranges: list[tuple[str | None, str | None]] = []
    for subdir in sorted(subdirs, key=_key):
        ranges.append((low, subdir + "/"))
        low = subdir + "0"  # "/" + 1: just past everything below the subdirectory
    ranges.append((low, end))
    return segments.rows_in(scanner.engine, ranges, binary=scanner.binary, site_id=scanner.site_id)


# --- the walk ------------------------------------------------------------------------------------


def _walk(root: str, run: _Run) -> Iterator[_File]:
    """Regular files under `root`, in code-point order of their relative paths; links skipped."""
    try:
        info = os.lstat(root)
    except OSError:
        return
    stack = [iter(run.listing(root, "", info) or [])]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        relpath, entry, is_dir = item
        if is_dir:
            try:
                info = os.lstat(entry.path)
            except OSError:
                continue
            stack.append(iter(run.listing(entry.path, relpath, info) or []))
        else:
            yield _File(relpath, entry)
