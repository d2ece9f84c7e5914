"""Held footage preserved against the recorder: evidence copies of the segments holds keep.

A recorder (Frigate, a NVR) has retention of its own and deletes old recordings, held or not, and
deletes more when its disk fills. So when a hold keeps camera segments, each segment's file is
hard-linked into `<evidence root>/footage/<its path>`: the recorder deleting its name leaves the
file's data under ours. When a link cannot be made (the evidence directory is on another file
system: EXDEV; or the kernel's protected_hardlinks refuses to link a file we do not own: EPERM) the
file is copied instead, to a temporary name, its SHA-256 taken while copying and again from what
was written, and renamed into place only when the two agree.

The walk on both sides is the purge's (`camera_files`): no path outside the recordings root is
read, no symlink is followed, on the way in or out, and a link is checked afterwards to be the very
file that was opened (device and inode), so a name swapped meanwhile is undone, not preserved.

`preserve` runs when a hold is placed or extended (at once, for what it covers) and after each
camera scan (segments a hold keeps as they are recorded). `release` runs in every purge: the copy
of a segment no active hold keeps any more (released and past its grace, or the row gone) is
removed, with the directories it empties, unless another hold keeps the segment. The rows
(`evidence_copies`) say which copies exist, how they were made and, for copies, their hash.

`open_footage` reads a segment for viewing or export: the recorder's file while it exists, else
the evidence copy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select
from sqlmodel import Session

from facility.errors import FacilityError
from facility.files import sync_file_system
from facility.retention import camera_files, holds
from facility.retention.camera_files import Outcome, PathRefused
from facility.settings import Settings
from facility.store import db
from facility.store import kinds as registry
from facility.store.models import DEFAULT_SITE, EvidenceCopy, table_of
from facility.trail import audit

log = logging.getLogger(__name__)

FOOTAGE = "footage"  # under the evidence root: copies at the segments' own relative paths
EXPORTS = "exports"  # under the evidence root: exports made from the web app
CHUNK = 1024 * 1024
BATCH = 1000  # segments preserved per transaction
_E = table_of(EvidenceCopy)
_C = registry.get("camera").table
# link() errors after which a copy is made instead: another file system, or a link the kernel
# refuses (protected_hardlinks: the recorder's file belongs to another user).
_COPY_INSTEAD = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP}


@dataclass
class Preserved:
    """What one `preserve` did."""

    linked: int = 0
    copied: int = 0
    missing: int = 0  # the recorder's file was already gone, and no copy had been made
    refused: int = 0  # a symlink or a path outside the root: left alone
    failed: int = 0  # an error reading or writing (disk full, permissions): tried again next time
    skipped: str | None = None  # why nothing was looked at (no evidence root configured, ...)
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        """Segments preserved by this run."""
        return self.linked + self.copied

    def as_json(self) -> dict[str, Any]:
        """Counts, and why it was skipped."""
        return {
            "linked": self.linked,
            "copied": self.copied,
            "missing": self.missing,
            "refused": self.refused,
            "failed": self.failed,
            "skipped": self.skipped,
        }

    def summary(self) -> str:
        """One line for people."""
        if self.skipped:
            return f"held footage not preserved: {self.skipped}"
        parts = [f"{self.done} segment file(s) preserved in the evidence directory"]
        if self.done:
            parts[0] += f" ({self.linked} linked, {self.copied} copied)"
        if self.missing:
            parts.append(f"{self.missing} already deleted by the recorder")
        if self.refused + self.failed:
            parts.append(f"{self.refused + self.failed} could not be (see the log)")
        return "; ".join(parts)


def footage_root(settings: Settings) -> Path | None:
    """Where evidence copies live, or None without an evidence root."""
    root = settings.evidence.root
    return None if root is None else root / FOOTAGE


def exports_root(settings: Settings) -> Path | None:
    """Where the web app writes exports, or None without an evidence root."""
    root = settings.evidence.root
    return None if root is None else root / EXPORTS


def problem(settings: Settings) -> str | None:
    """Why the evidence root cannot be used with the recordings root (None: it can)."""
    root, evidence = settings.camera.root, settings.evidence.root
    if evidence is None:
        return "no evidence root configured (evidence.root)"
    if root is None:
        return "no recordings root configured (camera.root)"
    inner, outer = Path(os.path.abspath(evidence)), Path(os.path.abspath(root))
    if inner == outer or outer in inner.parents:
        # The scanner would index the copies as new recordings, and purge them.
        return f"evidence.root {evidence} is inside camera.root {root}; put it beside it"
    if inner in outer.parents:
        return f"camera.root {root} is inside evidence.root {evidence}; put them side by side"
    return None


def preserve(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    actor: str,
    case: str | None = None,
    site_id: int = DEFAULT_SITE,
) -> Preserved:
    """Preserve the held segments that have no evidence copy yet: of hold `case`, or of any hold.

    Only segments of `site_id`, the site whose recordings `settings.camera.root` holds: another
    office's paths name files under its own root.
    """
    result = Preserved()
    result.skipped = problem(settings)
    if result.skipped:
        return result
    root, footage = settings.camera.root, footage_root(settings)
    assert root is not None and footage is not None
    grace = settings.holds.release_grace
    hold_id = None
    with db.read_scope(engine) as session:
        if case is not None:
            hold_id = holds.get(session, case).id
        kept = holds.held("camera", _C, now=now, grace=grace, hold_id=hold_id)
        copied = select(_E.c.id).where(_E.c.segment_id == _C.c.id).exists()
        mine = _C.c.site_id == site_id
        statement = select(_C.c.id, _C.c.path).where(mine, kept, ~copied).order_by(_C.c.id)
        pending = session.execute(statement).all()
    if not pending:
        return result
    try:
        _private(settings.evidence.root, footage)
    except OSError as err:
        result.skipped = f"evidence directory {footage}: {err.strerror or err}"
        log.warning("held footage not preserved: %s", result.skipped)
        return result
    for start in range(0, len(pending), BATCH):
        made = []
        for segment_id, relpath in pending[start : start + BATCH]:
            copy = _preserve_one(root, footage, relpath, result)
            if copy is not None:
                made.append({"segment_id": segment_id, "path": relpath, **copy})
        if any(m["method"] == "copy" for m in made):
            try:
                _sync(footage)  # the copies are on disk before their rows say so
            except OSError as err:
                log.warning("evidence: copies not preserved, the file system failed: %s", err)
                result.copied -= sum(m["method"] == "copy" for m in made)
                result.failed += sum(m["method"] == "copy" for m in made)
                made = [m for m in made if m["method"] != "copy"]
        if made:
            _store(engine, made, now)
    if result.done or result.missing or result.refused or result.failed:
        with db.session_scope(engine) as session:
            audit.append(
                session, now=now, actor=actor, action="evidence.preserve", case=case,
                **{k: v for k, v in result.as_json().items() if k != "skipped"},
            )  # fmt: skip
    return result


def _private(evidence: Path | None, footage: Path) -> None:
    """Create the evidence root and its footage folder, 0700, if missing."""
    assert evidence is not None
    for folder in (evidence, footage):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        if folder.is_symlink() and folder != evidence:
            raise OSError(errno.ELOOP, "is a symbolic link")


def _sync(footage: Path) -> None:
    fd = os.open(footage, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sync_file_system(fd)
    finally:
        os.close(fd)


def _store(engine: Engine, made: list[dict[str, Any]], now: datetime) -> None:
    """Insert the new rows; a row left for the same path by a dropped segment row is taken over."""
    with db.session_scope(engine) as session:
        paths = [m["path"] for m in made]
        session.execute(delete(_E).where(_E.c.path.in_(paths), _E.c.segment_id.is_(None)))
        session.execute(insert(_E), [m | {"preserved_at": now} for m in made])


def _preserve_one(
    root: Path, footage: Path, relpath: str, result: Preserved
) -> dict[str, Any] | None:
    """Link (or copy) one segment's file; the row's fields, or None when it was not preserved."""
    try:
        folder, name = camera_files.split(relpath)
        source_dir = camera_files.open_directory(root, folder)
    except FileNotFoundError:
        result.missing += 1
        return None
    except PathRefused as err:
        log.warning("evidence: refused to preserve %s", err)
        result.refused += 1
        return None
    except OSError as err:
        log.warning("evidence: cannot read %r: %s", relpath, err.strerror)
        result.failed += 1
        return None
    try:
        return _from_directory(source_dir, footage, folder, name, relpath, result)
    finally:
        os.close(source_dir)


def _from_directory(
    source_dir: int, footage: Path, folder: str, name: str, relpath: str, result: Preserved
) -> dict[str, Any] | None:
    try:
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_dir)
    except FileNotFoundError:
        result.missing += 1
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            log.warning("evidence: refused to preserve %r: it is a symlink", relpath)
            result.refused += 1
        else:
            log.warning("evidence: cannot read %r: %s", relpath, err.strerror)
            result.failed += 1
        return None
    try:
        found = os.fstat(source)
        if not stat.S_ISREG(found.st_mode):
            log.warning("evidence: refused to preserve %r: not a regular file", relpath)
            result.refused += 1
            return None
        target = camera_files.open_directory(footage, folder, create=True)
        try:
            return _place(source, found, source_dir, target, name, relpath, result)
        finally:
            os.close(target)
    except PathRefused as err:
        log.warning("evidence: refused to write %s", err)
        result.refused += 1
        return None
    except OSError as err:
        log.warning("evidence: cannot preserve %r: %s", relpath, err.strerror or err)
        result.failed += 1
        return None
    finally:
        os.close(source)


def _place(
    source: int,
    found: os.stat_result,
    source_dir: int,
    target: int,
    name: str,
    relpath: str,
    result: Preserved,
) -> dict[str, Any] | None:
    """Link `name` from `source_dir` into `target` (or copy it); the row's fields."""
    _clear(target, name)
    try:
        os.link(name, name, src_dir_fd=source_dir, dst_dir_fd=target, follow_symlinks=False)
    except OSError as err:
        if err.errno not in _COPY_INSTEAD:
            raise
        digest = copy_verified(source, target, name)
        result.copied += 1
        return {"method": "copy", "size": found.st_size, "sha256": digest}
    linked = os.stat(name, dir_fd=target, follow_symlinks=False)
    if (linked.st_dev, linked.st_ino) != (found.st_dev, found.st_ino):
        # The recorder's name was swapped (for a symlink, another file) after it was checked.
        os.unlink(name, dir_fd=target)
        log.warning("evidence: refused to preserve %r: it changed while it was linked", relpath)
        result.refused += 1
        return None
    result.linked += 1
    return {"method": "link", "size": found.st_size, "sha256": None}


def _clear(target: int, name: str) -> None:
    """Remove what an interrupted run may have left at `name` (never following a link)."""
    try:
        os.unlink(name, dir_fd=target)
    except FileNotFoundError:
        return
    except IsADirectoryError as err:
        raise PathRefused(f"{name!r} is a directory in the evidence folder") from err


def copy_verified(source: int, target: int, name: str) -> str:
    """Copy open file `source` to `name` in directory `target`, 0600; its SHA-256, verified.

    Written to a temporary name, read back and hashed again: only a copy whose bytes hash as the
    source did is renamed into place. FacilityError when they differ. Not synced here: `preserve`
    syncs the file system once per batch of copies, before it records them.
    """
    temporary = f".{name}.{secrets.token_hex(6)}.part"
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(temporary, flags, 0o600, dir_fd=target)
    try:
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(source, CHUNK, offset):
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
            offset += len(chunk)
        written = hash_descriptor(out)
        if written != digest.hexdigest():
            raise FacilityError(f"the copy of {name} does not read back as the original")
        os.rename(temporary, name, src_dir_fd=target, dst_dir_fd=target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=target)
        raise
    finally:
        os.close(out)
    return digest.hexdigest()


def hash_descriptor(fd: int) -> str:
    """The SHA-256 of everything in open file `fd`, read from its start."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


# --- releasing -----------------------------------------------------------------------------------


@dataclass
class Released:
    """What one `release` did with evidence copies no hold keeps any more."""

    removed: int = 0  # files deleted (or found gone) and rows dropped
    refused: int = 0
    failed: int = 0
    directories_removed: int = 0
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Counts, and why it was skipped."""
        return {
            "removed": self.removed,
            "refused": self.refused,
            "failed": self.failed,
            "directories_removed": self.directories_removed,
            "skipped": self.skipped,
        }


def release(engine: Engine, settings: Settings, *, now: datetime) -> Released:
    """Remove the evidence copies of segments no active hold keeps (or whose row is gone)."""
    result = Released()
    grace = settings.holds.release_grace
    with db.read_scope(engine) as session:
        if session.execute(select(_E.c.id).limit(1)).first() is None:
            return result
    footage = footage_root(settings)
    reason = (
        "no evidence root configured (evidence.root)"
        if footage is None
        else camera_files.root_state(footage)
    )
    if reason is not None:  # unmounted, or configured away: deleting needs positive evidence
        result.skipped = reason.replace("recordings root", "evidence folder")
        return result
    assert footage is not None
    with db.session_scope(engine) as session:
        holds.freeze(session)  # a hold placed meanwhile waits, and then finds the copy still there
        kept = holds.held("camera", _C, now=now, grace=grace)
        joined = _E.outerjoin(_C, _C.c.id == _E.c.segment_id)
        unkept = or_(_E.c.segment_id.is_(None), ~kept)
        rows = session.execute(select(_E.c.id, _E.c.path).select_from(joined).where(unkept)).all()
        gone = []
        with camera_files.Remover(footage) as remover:
            for row_id, relpath in rows:
                outcome = remover.remove(relpath)
                if outcome in (Outcome.deleted, Outcome.vanished):
                    gone.append(row_id)
                elif outcome is Outcome.refused:
                    result.refused += 1
                else:
                    result.failed += 1
            result.directories_removed = remover.prune()
        if gone:
            session.execute(delete(_E).where(_E.c.id.in_(gone)))
        result.removed = len(gone)
    return result


# --- reading -------------------------------------------------------------------------------------


def open_footage(settings: Settings, relpath: str) -> tuple[int, str]:
    """An open descriptor of a segment's file and where it came from (`recordings`, `evidence`).

    The recorder's file while it is there; its evidence copy once the recorder deleted it.
    FileNotFoundError when neither exists; PathRefused for a path that is not safe to read.
    """
    root, footage = settings.camera.root, footage_root(settings)
    if root is not None:
        try:
            return camera_files.open_segment(root, relpath), "recordings"
        except FileNotFoundError:
            pass
    if footage is not None:
        with contextlib.suppress(FileNotFoundError):
            return camera_files.open_segment(footage, relpath), "evidence"
    raise FileNotFoundError(errno.ENOENT, "neither the recording nor an evidence copy exists")


def counts(session: Session) -> dict[str, int]:
    """Evidence copies by how they were made (`link`, `copy`), and their `bytes`."""
    statement = select(_E.c.method, func.count(), func.coalesce(func.sum(_E.c.size), 0))
    found = {"link": 0, "copy": 0, "bytes": 0}
    for method, n, size in session.execute(statement.group_by(_E.c.method)).all():
        found[method] = n
        found["bytes"] += int(size)
    return found
