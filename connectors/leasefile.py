"""Reading DHCP lease files incrementally: only what changed since the last read, crash-safe.

`poll` reads one configured `[[dhcp]]` source and hands what it parsed (`connectors.dhcp`) to the
core. Where it got to is kept per path in `source_positions`: inode, size, offset and a small
JSON reading state (`header` column), written in the SAME transaction as the leases and
rejections of the bytes it covers, so a crash between reads never skips nor repeats a byte, and a
second reader that got there first makes this one stop (the position it expected moved).

ISC dhcpd and Kea append to their files, so only the bytes after the offset are read, in chunks
of at most `CHUNK` bytes, one transaction each. The last, half-written entry is left for the next
read (`ParseResult.consumed`). The file is read again from the start when it is a different file
or no longer the one we read: a new inode (dhcpd writes a new file and keeps the old one as
`dhcpd.leases~`; Kea's lease file cleanup renames it to `.2` and starts a new one), a size below
the offset (truncated), or different bytes just before the offset (replaced in place, or an inode
number reused). Before that, the unread tail of the old file is read if it is still there under
the name the server gave it (`~`, `.2`): the same file, followed across its rename, so entries
written between the last read and the rotation are not lost. Nothing else beside the configured
path is read (`.1`, `.output`, `.completed` are Kea's own copies of what we read already). A
re-read stores nothing twice: the core merges each report into the lease it continues.

dnsmasq rewrites its whole, small file in place on every change, so it is read whole whenever
its inode, size or mtime changed (or its mtime was too recent to trust). Only lines not seen in an
earlier read are handed over, so a line is stored and a bad line rejected once, not on every
rewrite. Seen lines are remembered as short digests until `FORGET_AFTER` complete reads in a
row missed them, so that a read that caught the file empty or half written (dnsmasq truncates,
then writes; a read that close to the mtime is always followed by another) does not make every
line new again: for a never-ending lease that would count as a renewal. A line that
disappears is not taken as a release (the view may be truncated): a dnsmasq lease ends at its
expiry, or earlier through the `--dhcp-script` hook's `del`. dnsmasq records no start, so leases
start at `min(read time, expiry)` (see `parse_dnsmasq`): a renewal read later starts inside the
stored lease and merges into it; `last_seen` stays None (reading a file is not a sighting).

A lease whose start or sighting lies further ahead than `limits.clock_skew` is rejected (counted
and recorded, the excerpt naming the lease), and an end further ahead than
`limits.max_lease_silence` is read as none (`facility.sources.ingest.admit`).

A missing or unreadable file is reported and logged once per outage, and polling goes on; a
database failure propagates (the daemon's job runner logs it and runs again later).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat as stat_mode
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from connectors.dhcp import ParseResult, kea_header, parse_dnsmasq, parse_isc, parse_kea
from facility.errors import InputError, RejectedInput
from facility.settings import DhcpSource, Limits
from facility.sources import ingest
from facility.sources.records import LeaseIn
from facility.store import db
from facility.store.models import DEFAULT_SITE, SourcePosition
from facility.timefmt import utc_text

log = logging.getLogger("facility.leases")

CHUNK = 8 << 20  # bytes read, parsed and committed at a time: bounds memory on huge files
FINGERPRINT = 64  # bytes before the offset that must be unchanged for a read to go on from it
FORGET_AFTER = 3  # dnsmasq: complete reads a line must be missing from before it is forgotten
RACY = timedelta(seconds=2)  # an mtime this close to the read may hide a later write in its tick
REJECTIONS_PER_POLL = 1000  # rejection rows one poll writes at most; all are counted
ROTATED = {"isc": ("~",), "kea": (".2",), "dnsmasq": ()}  # where the server moves its old file
_INODE_MASK = (1 << 63) - 1  # the column is a signed 64-bit integer
_failing: dict[str, str] = {}  # path -> the problem already logged for it


@dataclass
class PollReport:
    """What one read of a lease file did."""

    path: str
    leases: int = 0  # leases read and handed to the core (new, merged or already stored)
    stored: int = 0  # new leases
    updated: int = 0  # stored leases a report changed (renewed, released, named)
    rejected: int = 0  # entries that could not be read (at most REJECTIONS_PER_POLL recorded)
    bytes_read: int = 0  # bytes of complete entries read
    restarted: bool = False  # the file was replaced, truncated or rewritten: read from the start
    error: str | None = None  # why the file could not be read; nothing changed then

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form, e.g. for the daemon's job log."""
        return {
            "path": self.path,
            "leases": self.leases,
            "stored": self.stored,
            "updated": self.updated,
            "rejected": self.rejected,
            "bytes_read": self.bytes_read,
            "restarted": self.restarted,
            "error": self.error,
        }


@dataclass(frozen=True)
class _Position:
    """Where a file was read to; `state` is the JSON kept in the `header` column."""

    inode: int
    size: int
    offset: int
    state: dict[str, Any] = field(default_factory=dict, compare=False)
    header: str | None = None  # `state` as stored: compared to detect another reader


class _Moved(Exception):
    """Another reader advanced the position since we loaded it: stop, it has this part."""


def source_name(path: Path | str) -> str:
    """The `source` of leases and rejections from a lease file: its absolute path."""
    return os.path.abspath(os.fspath(path))


def poll(
    engine: Engine,
    source: DhcpSource,
    *,
    now: datetime,
    limits: Limits | None = None,
    site_zone: tzinfo | None = None,
    chunk_size: int = CHUNK,
    site_id: int = DEFAULT_SITE,
) -> PollReport:
    """Read what changed in `source`'s lease file since the last poll and store it at the site
    (its leases, rejections and reading position are that site's).

    `limits` (default: the settings' defaults) bound how far ahead a lease's times may be.
    """
    path = source_name(source.path)
    run = _Run(engine, path, source.format, _intake(now, limits, site_zone, site_id), chunk_size)
    try:
        if source.format == "dnsmasq":
            run.whole_if_changed()
        else:
            run.appended()
    except OSError as err:
        run.report.error = _problem(path, err)
        _failed(path, run.report.error)
        return run.report
    except _Moved:
        log.info("lease file %s: another reader moved on meanwhile; leaving it to that one", path)
    _recovered(path)
    run.log_rejections()
    return run.report


def import_file(
    engine: Engine,
    path: Path | str,
    fmt: str,
    *,
    now: datetime,
    limits: Limits | None = None,
    site_zone: tzinfo | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = CHUNK,
    site_id: int = DEFAULT_SITE,
) -> PollReport:
    """Read a whole lease file once, without touching any source position (InputError if unreadable)."""
    name = source_name(path)
    if fmt not in ROTATED:
        raise InputError(f"--format: {fmt!r} is not one of isc, dnsmasq, kea")
    run = _Run(engine, name, fmt, _intake(now, limits, site_zone, site_id), chunk_size)
    run.remember = False
    run.progress = progress
    try:
        with _opened(name) as (fd, stat):
            run.read(fd, stat, start=None, state={})
            run.reject_tail(fd, stat)
    except OSError as err:
        raise InputError(f"FILE: {_problem(name, err)}") from err
    return run.report


def _intake(
    now: datetime, limits: Limits | None, site_zone: tzinfo | None, site_id: int
) -> ingest.Intake:
    return ingest.Intake(now, limits or Limits(), site_zone or UTC, site_id)


class _Run:
    """One read of one file: the chunk loop, the commits, the report."""

    def __init__(
        self, engine: Engine, path: str, fmt: str, intake: ingest.Intake, chunk_size: int
    ) -> None:
        self.engine, self.path, self.fmt = engine, path, fmt
        self.intake, self.chunk_size = intake, chunk_size
        self.now, self.site_zone = intake.now, intake.zone
        self.report = PollReport(path)
        self.remember = True  # keep source_positions (False: a one-shot import)
        self.progress: Callable[[int, int], None] | None = None
        self.recorded = 0  # rejection rows written by this run
        self.first_reason: str | None = None
        self.expected: _Position | None = None  # the stored position our next commit replaces
        self.present: set[str] = set()  # dnsmasq: digests of the lines in this read

    # --- ISC and Kea: appended bytes ---------------------------------------------------------

    def appended(self) -> None:
        """Read what was appended since the stored offset, or everything after a rewrite."""
        saved = self.expected = _load(self.engine, self.intake.site_id, self.path)
        with _opened(self.path) as (fd, stat):
            inode = stat.st_ino & _INODE_MASK
            if saved is None:
                self.read(fd, stat, start=None, state={})
                return
            if inode != saved.inode:
                self.report.restarted = True
                self._finish_rotated(saved)
                self.read(fd, stat, start=None, state={})
            elif stat.st_size < saved.offset or not _unchanged_before(fd, saved):
                self.report.restarted = True
                self.read(fd, stat, start=None, state={})
            else:
                self.read(fd, stat, start=saved, state=saved.state)

    def _finish_rotated(self, saved: _Position) -> None:
        """Read the unread tail of the file we followed, if the server only renamed it."""
        for suffix in ROTATED[self.fmt]:
            try:
                with _opened(self.path + suffix) as (fd, stat):
                    same = (stat.st_ino & _INODE_MASK) == saved.inode
                    if same and stat.st_size >= saved.offset and _unchanged_before(fd, saved):
                        self.read(fd, stat, start=saved, state=saved.state)
                        return
            except FileNotFoundError:
                continue

    # --- dnsmasq: the whole file, when it changed --------------------------------------------

    def whole_if_changed(self) -> None:
        """Read the whole file if it changed since the last read, handing over only new lines."""
        saved = self.expected = _load(self.engine, self.intake.site_id, self.path)
        with _opened(self.path) as (fd, stat):
            inode = stat.st_ino & _INODE_MASK
            if saved is not None:
                same = (inode, stat.st_size) == (saved.inode, saved.size)
                if same and saved.state.get("mtime_ns") == stat.st_mtime_ns:
                    return
                self.report.restarted = inode != saved.inode or stat.st_size < saved.offset
            state = {"seen": dict(saved.state.get("seen", {})) if saved else {}}
            self.read(fd, stat, start=None, state=state)

    # --- the chunk loop ----------------------------------------------------------------------

    def read(
        self, fd: int, stat: os.stat_result, *, start: _Position | None, state: dict[str, Any]
    ) -> None:
        """Read complete entries from `start` (None: the beginning) to the end, chunk by chunk."""
        offset = start.offset if start else 0
        state = dict(state)
        inode = stat.st_ino & _INODE_MASK
        while True:
            data = os.pread(fd, self.chunk_size, offset)
            at_end = len(data) < self.chunk_size
            if not data and self._unmoved(inode, offset):
                return  # nothing new: no transaction at all
            parsed, state = self._parse(data, offset, state, stat, at_end=at_end)
            advance = parsed.consumed
            if advance == 0 and not at_end:  # one entry longer than a whole chunk
                advance = _oversized(data)
                parsed.rejects.append(self._too_long(data))
            end = offset + advance
            if self.remember and self.fmt != "dnsmasq":
                state["fingerprint"] = _fingerprint(fd, end)
            self._commit(parsed, _Position(inode, stat.st_size, end, state))
            self.report.bytes_read += advance
            offset = end
            if self.progress:
                self.progress(offset, stat.st_size)
            if at_end or advance == 0:
                return

    def _unmoved(self, inode: int, offset: int) -> bool:
        expected = self.expected
        return expected is not None and (expected.inode, expected.offset) == (inode, offset)

    def _parse(
        self, data: bytes, offset: int, state: dict[str, Any], stat: os.stat_result, *, at_end: bool
    ) -> tuple[ParseResult, dict[str, Any]]:
        if self.fmt == "isc":
            return parse_isc(data, source=self.path, site_zone=self.site_zone), state
        if self.fmt == "kea":
            return self._parse_kea(data, offset, state)
        return self._parse_dnsmasq(data, state, stat, at_end=at_end)

    def _parse_kea(
        self, data: bytes, offset: int, state: dict[str, Any]
    ) -> tuple[ParseResult, dict[str, Any]]:
        header = state.get("header")
        names = header.split(",") if header and offset > 0 else None
        parsed = parse_kea(data, source=self.path, header=names)
        latest = _last_kea_header(data[: parsed.consumed])
        return parsed, ({**state, "header": latest} if latest else state)

    def _parse_dnsmasq(
        self, data: bytes, state: dict[str, Any], stat: os.stat_result, *, at_end: bool
    ) -> tuple[ParseResult, dict[str, Any]]:
        end = data.rfind(b"\n") + 1
        seen: dict[str, int] = state["seen"] if self.remember else {}  # digest -> reads missed
        new: list[bytes] = []
        for line in data[:end].split(b"\n")[:-1]:  # split as parse_dnsmasq does
            digest = _digest(line)
            if digest not in seen:
                new.append(line + b"\n")
            seen[digest] = 0
            self.present.add(digest)
        parsed = parse_dnsmasq(b"".join(new), source=self.path, read_at=self.now)
        parsed.consumed = end
        if not (self.remember and at_end):
            return parsed, state
        # Read to the end: count a miss for every line not in this read, forget the long gone,
        # and trust this mtime only if it is not too close to the read.
        missed = {d: 0 if d in self.present else n + 1 for d, n in seen.items()}
        kept = {digest: n for digest, n in missed.items() if n < FORGET_AFTER}
        racy = stat.st_mtime_ns >= int((self.now - RACY).timestamp() * 1e9)
        return parsed, {**state, "seen": kept, "mtime_ns": None if racy else stat.st_mtime_ns}

    def reject_tail(self, fd: int, stat: os.stat_result) -> None:
        """One-shot reads only: an incomplete last entry will not be completed, so reject it."""
        tail = os.pread(fd, ingest.RAW_LIMIT, self.report.bytes_read)
        if tail.strip():
            reason = f"incomplete entry at the end ({stat.st_size - self.report.bytes_read} bytes)"
            with db.session_scope(self.engine) as session:
                self._reject(session, [RejectedInput(reason, source=self.path, raw=tail)])

    def _too_long(self, data: bytes) -> RejectedInput:
        return RejectedInput(
            f"entry longer than {self.chunk_size} bytes; skipped to the next line",
            source=self.path,
            raw=data[: ingest.RAW_LIMIT],
        )

    # --- storing -----------------------------------------------------------------------------

    def _commit(self, parsed: ParseResult, position: _Position) -> None:
        """Store the leases and rejections of one chunk together with the position after it."""
        header = json.dumps(position.state, sort_keys=True, separators=(",", ":"))
        position = replace(position, header=header)
        try:
            with db.session_scope(self.engine) as session:
                if self.remember:
                    self._check_position(session)
                leases, refused = ingest.admitted(parsed.leases, self.intake)
                stored, updated = ingest.store_leases(session, leases, self.intake)
                self._reject(session, parsed.rejects + [self._refused(*r) for r in refused])
                if self.remember:
                    _save(session, self.intake.site_id, self.path, position, self.now)
        except sa_exc.IntegrityError as err:  # another reader created the position first
            raise _Moved from err
        self.expected = position
        self.report.leases += len(parsed.leases)
        self.report.stored += stored
        self.report.updated += updated

    def _refused(self, lease: LeaseIn, err: RejectedInput) -> RejectedInput:
        """A lease the clock refused, as a rejection naming it (its entry is parsed by now)."""
        raw = f"{lease.ip} {lease.mac} starts {utc_text(lease.starts)}"
        return RejectedInput(f"lease {lease.ip}: {err.reason}", source=self.path, raw=raw)

    def _check_position(self, session: Session) -> None:
        key = (self.intake.site_id, self.path)
        row = session.get(SourcePosition, key, with_for_update=True)
        current = None if row is None else (row.inode, row.offset, row.header)
        expected = self.expected
        if current != (
            None if expected is None else (expected.inode, expected.offset, expected.header)
        ):
            raise _Moved

    def _reject(self, session: Session, rejects: list[RejectedInput]) -> None:
        self.report.rejected += len(rejects)
        for err in rejects:
            self.first_reason = self.first_reason or err.reason
            if self.recorded < REJECTIONS_PER_POLL:
                record_rejection(session, err, now=self.now, site_id=self.intake.site_id)
                self.recorded += 1

    def log_rejections(self) -> None:
        """One log line for the rejections of this run, not one per entry."""
        if self.report.rejected:
            log.warning(
                "lease file %s: %d entr%s rejected (%d recorded), first: %s",
                self.path,
                self.report.rejected,
                "y" if self.report.rejected == 1 else "ies",
                self.recorded,
                self.first_reason,
            )


def record_rejection(
    session: Session, err: RejectedInput, *, now: datetime, site_id: int = DEFAULT_SITE
) -> None:
    """Keep a dead letter of the site; NUL escaped in reason and excerpt (PostgreSQL refuses it)."""
    raw = err.raw if isinstance(err.raw, bytes) else str(err.raw).encode("utf-8", "replace")
    safe = RejectedInput(
        err.reason.replace("\x00", "\\x00"),
        source=err.source,
        raw=raw.replace(b"\x00", b"\\x00"),
    )
    ingest.record_rejection(session, safe, now=now, site_id=site_id)


# --- positions ---------------------------------------------------------------------------------


def _load(engine: Engine, site_id: int, path: str) -> _Position | None:
    with db.session_scope(engine) as session:
        row = session.get(SourcePosition, (site_id, path))
        if row is None:
            return None
        state = json.loads(row.header) if row.header else {}
        return _Position(row.inode, row.size, row.offset, state, row.header)


def _save(session: Session, site_id: int, path: str, position: _Position, now: datetime) -> None:
    row = session.get(SourcePosition, (site_id, path))
    if row is None:
        row = SourcePosition(site_id=site_id, path=path, inode=0, size=0, offset=0, updated_at=now)
    row.inode, row.size, row.offset = position.inode, position.size, position.offset
    row.header, row.updated_at = position.header, now
    session.add(row)
    session.flush()


# --- files -------------------------------------------------------------------------------------


@contextmanager
def _opened(path: str) -> Iterator[tuple[int, os.stat_result]]:
    """The file open for reading, with its fstat: what we read is the file we looked at."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.fstat(fd)
        if not stat_mode.S_ISREG(stat.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", path)
        yield fd, stat
    finally:
        os.close(fd)


def _fingerprint(fd: int, offset: int) -> str:
    """A digest of the bytes just before `offset`: they must still be there to go on from it."""
    start = max(0, offset - FINGERPRINT)
    return hashlib.blake2b(os.pread(fd, offset - start, start), digest_size=8).hexdigest()


def _unchanged_before(fd: int, saved: _Position) -> bool:
    return saved.offset == 0 or _fingerprint(fd, saved.offset) == saved.state.get("fingerprint")


def _digest(line: bytes) -> str:
    return hashlib.blake2b(line.rstrip(), digest_size=8).hexdigest()


def _oversized(data: bytes) -> int:
    """Bytes to skip past an entry too long to read: its first line, or the whole chunk."""
    newline = data.find(b"\n")
    return newline + 1 if newline >= 0 else len(data)


def _last_kea_header(data: bytes) -> str | None:
    """The last Kea header line in `data` (a file can gain one mid-way), as text."""
    at = data.rfind(b"\naddress,")
    start = at + 1 if at >= 0 else (0 if data.startswith(b"address,") else -1)
    if start < 0:
        return None
    names = kea_header(data[start:])
    return ",".join(name.strip() for name in names) if names else None


def _problem(path: str, err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return f"{path} does not exist"
    return f"cannot read {path}: {err.strerror or err}"


def _failed(path: str, problem: str) -> None:
    if _failing.get(path) != problem:
        log.warning("lease file %s; will try again at the next poll", problem)
        _failing[path] = problem


def _recovered(path: str) -> None:
    if _failing.pop(path, None) is not None:
        log.info("lease file %s is readable again", path)
