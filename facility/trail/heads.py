"""The head file: audit heads anchored outside the database, and verification against them.

`audit.heads` in FACILITY_HOME only ever grows. Every purge adds the head its audit entry made,
once that entry has committed; `facility init` adds the head it leaves; every verification that
passes adds the head it verified, as a **checkpoint**. `audit verify` and the report read the file
without being told: a trail that no longer holds an anchored head, or holds another entry in its
place, fails. So a trail cut back to before the last purge fails with no argument given. Entries up
to the last checkpoint were verified before, so a verification walks only what follows it (after
checking that the checkpoint entry and the anchors up to it are still in place); `full` walks all.

A line is `AT CHAIN SEQ HEAD KIND MAC`: when (UTC), which trail (the start of its first entry's
MAC, so lines a home wrote for another database are left aside), the entry and its MAC, what wrote
it, and an HMAC of the rest under a key derived from `audit.key`, so that no line can be forged
without the key. The file is per host: several daemons on one PostgreSQL each keep their own, and
each checks the anchors it has.

What a verification does with the file, decided:
- no file, or no line about this trail: a WARN (a new host, or the file was lost); the whole chain
  is walked, and a pass starts the file;
- a damaged line or a torn last line (a write cut short): a WARN, the line is skipped (the next
  append ends a torn line first);
- an anchored head missing from the trail, or another entry in its place: a FAIL naming the entry;
- a file that cannot be read (a symlink, no permission, not a file) or that others may write: a
  FAIL, since the anchors cannot be checked;
- an emptied trail fails whatever the file holds (`audit.verify_entries`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hmac
import logging
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from facility.errors import FacilityError
from facility.store import db
from facility.store.models import AuditEntry
from facility.trail import audit, keys

log = logging.getLogger(__name__)

HEAD_FILE = "audit.heads"  # in FACILITY_HOME, beside audit.key
KINDS = ("purge", "init", "verified")
CHECKPOINT = "verified"
_BLOCK = 64 * 1024
_LINE = re.compile(
    r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (?P<chain>[0-9a-f]{16}) (?P<seq>[1-9]\d{0,18}) "
    r"(?P<head>[0-9a-f]{64}) (?P<kind>[a-z]+) (?P<mac>[0-9a-f]{64})"
)


def head_file() -> Path:
    """Where this host keeps its head file."""
    return keys.site_home() / HEAD_FILE


# --- lines --------------------------------------------------------------------------------------


def line_text(key: bytes, chain: str, anchor: audit.Anchor) -> str:
    """One line of the head file, newline included."""
    at = anchor.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = f"{at} {chain} {anchor.seq} {anchor.head} {anchor.kind}"
    return f"{body} {_mac(key, body)}\n"


def parse_line(key: bytes, raw: bytes) -> tuple[str, audit.Anchor] | None:
    """The trail and anchor a line names; None for a line that is damaged or not signed."""
    try:
        found = _LINE.fullmatch(raw.decode("ascii"))
    except UnicodeDecodeError:
        return None
    if found is None or found["kind"] not in KINDS:
        return None
    body = raw[: -len(found["mac"]) - 1].decode("ascii")
    if not hmac.compare_digest(found["mac"], _mac(key, body)):
        return None
    at = datetime.strptime(found["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    anchor = audit.Anchor(int(found["seq"]), found["head"], found["kind"], at)
    return found["chain"], anchor


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode("ascii"), "sha256").hexdigest()


# --- reading ------------------------------------------------------------------------------------


@dataclass
class HeadLog:
    """What the head file says about one trail."""

    path: Path
    exists: bool = False
    size: int = 0  # bytes when read: a checkpoint is written only if nothing came since
    checkpoint: audit.Anchor | None = None  # the newest one, unless the whole file was read
    anchors: list[audit.Anchor] = field(default_factory=list)  # file order, after the checkpoint
    complete: bool = False  # every line was read (no checkpoint, or asked for all)
    damaged: int = 0
    torn: bool = False
    others: int = 0  # lines about other trails

    def warnings(self) -> list[str]:
        """What a person should know about the file, in the words the CLI and report show."""
        found = []
        if not self.exists:
            found.append(
                f"no head file {self.path}: a cut-off tail cannot be detected on this host until "
                "heads are anchored there (a new host, or the file was lost)"
            )
        elif self.complete and not self.anchors and self.checkpoint is None:
            others = f" ({self.others} name other trails)" if self.others else ""
            found.append(
                f"head file {self.path} anchors no head of this trail{others}: a cut-off tail "
                "cannot be detected until one is anchored"
            )
        if self.torn:
            found.append(f"the last line of {self.path} is incomplete (a write cut short); skipped")
        if self.damaged:
            found.append(
                f"{self.damaged} line(s) of {self.path} are damaged or not signed with this "
                "site's key; skipped"
            )
        return found


def read(path: Path, key: bytes, chain: str | None, *, full: bool) -> HeadLog:
    """The anchors of trail `chain`: all of them, or from its newest checkpoint on."""
    found = HeadLog(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        found.complete = True
        return found
    except OSError as err:
        raise FacilityError(f"cannot read head file {path}: {_why(err)}") from err
    try:
        found.exists, found.size = True, _check_file(fd, path)
        newest_first: list[audit.Anchor] = []
        for raw, last in _lines_backward(fd, found.size):
            if last and raw:
                found.torn = True
                continue
            if not raw:
                continue
            parsed = parse_line(key, raw)
            if parsed is None:
                found.damaged += 1
            elif parsed[0] != chain:
                found.others += 1
            elif parsed[1].kind == CHECKPOINT and found.checkpoint is None and not full:
                found.checkpoint = parsed[1]
                break
            else:
                newest_first.append(parsed[1])
        else:
            found.complete = True
    finally:
        os.close(fd)
    found.anchors = newest_first[::-1]
    return found


def _check_file(fd: int, path: Path) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise FacilityError(f"head file {path} is not a regular file")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise FacilityError(
            f"head file {path} may be written by others (mode {stat.S_IMODE(info.st_mode):o}); "
            "run chmod 600 on it"
        )
    return info.st_size


def _lines_backward(fd: int, size: int) -> Iterator[tuple[bytes, bool]]:
    """The file's lines from the end, each with whether it is the part after the last newline."""
    position, rest, last = size, b"", True
    while position > 0:
        step = min(_BLOCK, position)
        position -= step
        parts = (os.pread(fd, step, position) + rest).split(b"\n")
        rest = parts[0]
        for part in reversed(parts[1:]):
            yield part, last
            last = False
    yield rest, last


def _why(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "it is a symbolic link"
    return err.strerror or str(err)


# --- writing ------------------------------------------------------------------------------------


def append(
    path: Path, key: bytes, chain: str, anchor: audit.Anchor, *, if_size: int | None = None
) -> bool:
    """Add one line, durably; with `if_size`, only if the file still has that many bytes.

    Created 0600 without following a symlink. Appends are serialised with flock, so a torn last
    line is ended before the next one goes after it. Returns whether the line was written.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    created = not path.exists()
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as err:
        raise FacilityError(f"cannot write head file {path}: {_why(err)}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = _check_file(fd, path)
        if if_size is not None and size != if_size:
            return False
        ending = b"" if size == 0 or os.pread(fd, 1, size - 1) == b"\n" else b"\n"
        os.write(fd, ending + line_text(key, chain, anchor).encode("ascii"))
        os.fsync(fd)
    except OSError as err:
        raise FacilityError(f"cannot write head file {path}: {_why(err)}") from err
    finally:
        os.close(fd)  # releases the lock
    if created:
        _sync_directory(path.parent)
    return True


def _sync_directory(directory: Path) -> None:
    # The new file's name is durable only once its directory is synced.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def anchor(engine: Engine, entry: AuditEntry, *, kind: str, now: datetime) -> str | None:
    """Anchor a committed entry's head in this host's head file; the problem, if it could not."""
    try:
        with db.session_scope(engine) as session:
            chain = audit.chain_id(session)
        if chain is None:  # the entry rolled back after all
            return None
        point = audit.Anchor(entry.seq, entry.hash, kind, now)
        append(head_file(), keys.heads_key(), chain, point)
    except FacilityError as err:
        log.warning("audit head not anchored outside the database: %s", err)
        return f"audit head not anchored outside the database: {err}"
    return None


# --- verifying ----------------------------------------------------------------------------------


def verify_trail(
    session: Session, *, now: datetime, full: bool = False, expected_head: str | None = None
) -> audit.Verdict:
    """Verify the trail against this host's head file, from the last checkpoint unless `full`;
    a pass is recorded as a new checkpoint."""
    secret = keys.site_key()
    key, line_key = keys.chain_key(secret), keys.heads_key(secret)
    path = head_file()
    chain = audit.chain_id(session)
    heads = read(path, line_key, chain, full=full)
    start = heads.checkpoint
    if start is not None and not audit.start_holds(session, key, start, heads.anchors):
        start = None  # something up to the checkpoint moved: the whole walk says what
    if start is None and not heads.complete:
        heads = read(path, line_key, chain, full=True)
    anchors = list(heads.anchors)
    fresh = audit.committed_since(session, anchors)
    anchors = [a for a in anchors if a.seq not in fresh]
    verdict = audit.verify(
        session, key=key, anchors=anchors, start=start, expected_head=expected_head
    )
    # The walk compared the anchors after the checkpoint; start_holds the ones up to it.
    earlier = sum(1 for a in anchors if a.seq <= start.seq) + 1 if start else 0
    verdict = replace(verdict, anchors=verdict.anchors + earlier + len(fresh))
    warnings = heads.warnings()
    if verdict.ok and chain is not None and _new_checkpoint(heads, verdict):
        point = audit.Anchor(verdict.entries, verdict.head, CHECKPOINT, now)
        try:
            append(path, line_key, chain, point, if_size=heads.size)
        except FacilityError as err:
            warnings.append(f"no checkpoint recorded: {err}")
    return replace(verdict, warnings=tuple(warnings))


def _new_checkpoint(heads: HeadLog, verdict: audit.Verdict) -> bool:
    last = heads.checkpoint
    if last is None and heads.complete:
        checkpoints = [a for a in heads.anchors if a.kind == CHECKPOINT]
        last = checkpoints[-1] if checkpoints else None
    return last is None or last.seq != verdict.entries
