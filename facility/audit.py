"""The audit trail: append-only, SHA-256 hash-chained entries, and their verification.

Each entry's hash covers a canonical JSON form of the entry (sorted keys, no spaces, UTC times with
microseconds) and the previous entry's hash, so editing, deleting, inserting or reordering any entry
breaks the chain from that point. A trigger in the schema refuses UPDATE and DELETE as well.

Entries hold no personal data: records by id, holds by case reference, subjects by keyed hash.

The keyed hash (`subject_hash`) is HMAC-SHA256 under a site secret kept in a file outside the
database, `audit.key` in FACILITY_HOME by default (`load_or_create_key`). A copy of the database
alone, or of the trail, cannot be searched for a name by hashing guesses; the site, holding the key,
can still find every entry about a subject who asks. Losing the key loses that link, so it is
backed up with the configuration, not with the database. Every host that runs the CLI or a daemon
against one database needs the same key file.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from facility.errors import FacilityError, InputError
from facility.macs import normalise_mac
from facility.models import AuditEntry
from facility.names import name_key
from facility.timeutil import ensure_utc

GENESIS = "0" * 64
KEY_FILE = "audit.key"  # in FACILITY_HOME unless configured otherwise
KEY_BYTES = 32
SUBJECT_KINDS = ("name", "mac", "badge")
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
# Any constant works; it names the lock that serialises appends on PostgreSQL.
_APPEND_LOCK = 0x46AC_0001


def canonical(seq: int, at: datetime, actor: str, action: str, details: dict, prev: str) -> bytes:
    """The bytes an entry's hash is computed over."""
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "details": details,
        "prev": prev,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(seq: int, at: datetime, actor: str, action: str, details: dict, prev: str) -> str:
    """The SHA-256 chain hash of an entry."""
    return hashlib.sha256(canonical(seq, at, actor, action, details, prev)).hexdigest()


def append(
    session: Session, *, now: datetime, actor: str, action: str, **details: Any
) -> AuditEntry:
    """Add an entry in the caller's transaction, so it commits with the change it describes."""
    # Hash the instant as it will read back from the store (UTC), or verify would see an edit.
    now = ensure_utc(now)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK})
    last = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    clean = json.loads(json.dumps(details, default=str))
    entry = AuditEntry(
        seq=seq,
        at=now,
        actor=actor,
        action=action,
        details=json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
        prev_hash=prev,
        hash=entry_hash(seq, now, actor, action, clean, prev),
    )
    session.add(entry)
    session.flush()
    return entry


def head(session: Session) -> str:
    """The hash of the newest entry (GENESIS for an empty trail)."""
    last = session.exec(
        select(AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
    ).first()
    return last or GENESIS


@dataclass(frozen=True)
class Verdict:
    """What `verify` found."""

    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_entries(entries: Iterable[AuditEntry], *, expected_head: str | None = None) -> Verdict:
    """Walk the chain; the first entry that does not follow from its predecessor is bad."""
    prev, count, expected_seq = GENESIS, 0, 1
    seen_heads = {GENESIS}
    for entry in entries:
        problem = _check(entry, prev, expected_seq)
        if problem:
            return Verdict(False, count, prev, entry.seq, problem)
        prev, count, expected_seq = entry.hash, count + 1, entry.seq + 1
        if expected_head is not None:
            seen_heads.add(entry.hash)
    if expected_head is not None and expected_head not in seen_heads:
        return Verdict(
            False,
            count,
            prev,
            None,
            f"head {expected_head} is not in the trail: entries were cut off",
        )
    return Verdict(True, count, prev)


def _check(entry: AuditEntry, prev: str, expected_seq: int) -> str | None:
    if entry.seq != expected_seq:
        return f"entry {entry.seq} follows entry {expected_seq - 1}: an entry is missing or moved"
    if entry.prev_hash != prev:
        return f"entry {entry.seq} does not link to the entry before it"
    try:
        details = json.loads(entry.details)
    except ValueError:
        return f"entry {entry.seq} has unreadable details"
    recomputed = entry_hash(
        entry.seq, entry.at, entry.actor, entry.action, details, entry.prev_hash
    )
    if recomputed != entry.hash:
        return f"entry {entry.seq} was altered after it was written"
    return None


def verify(session: Session, *, expected_head: str | None = None) -> Verdict:
    """Verify the whole trail in the database, streaming it in seq order."""
    rows = session.exec(
        select(AuditEntry).order_by(col(AuditEntry.seq)).execution_options(yield_per=2000)
    )
    return verify_entries(rows, expected_head=expected_head)


def is_head(value: str) -> bool:
    """Whether `value` looks like a chain hash (64 lower-case hex digits)."""
    return bool(_HEX_HASH.fullmatch(value))


def entries(
    session: Session, *, since: datetime | None = None, action: str | None = None
) -> list[AuditEntry]:
    """Entries in seq order from `since` on, of `action` or below it (`policy`: `policy.set`)."""
    statement = select(AuditEntry).order_by(col(AuditEntry.seq))
    if since is not None:
        statement = statement.where(col(AuditEntry.at) >= since)
    if action:
        statement = statement.where(
            (col(AuditEntry.action) == action)
            | col(AuditEntry.action).startswith(action + ".", autoescape=True)
        )
    return list(session.exec(statement).all())


def subject_hash(key: bytes, kind: str, value: str) -> str:
    """The keyed hash naming a data subject in the trail: HMAC-SHA256 of the normalised value."""
    if kind not in SUBJECT_KINDS:
        raise InputError(f"subject kind {kind!r} is not one of {', '.join(SUBJECT_KINDS)}")
    normal = _normalise_subject(kind, value)
    # The kind is part of the message, so a badge "42" and a name "42" do not collide.
    message = f"{kind}\0{normal}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _normalise_subject(kind: str, value: str) -> str:
    if kind == "name":
        normal = name_key(value)
    elif kind == "mac":
        normal = normalise_mac(value)  # the form the store keeps, so hashes match records
    else:
        normal = value.strip()
    if not normal:
        raise InputError(f"--{kind}: empty")
    return normal


def load_or_create_key(path: Path) -> bytes:
    """The site's subject-hash key from `path`, created (mode 0600, 32 random bytes) if missing."""
    try:
        try:
            return _read_key(path)
        except FileNotFoundError:
            _create_key(path)
        return _read_key(path)
    except OSError as err:  # a symlink (O_NOFOLLOW), no permission, a read-only home
        raise FacilityError(f"cannot use audit key {path}: {err.strerror}") from err


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        content = handle.read(4 * KEY_BYTES)
    # Group read is allowed (a `facility` group of CLI users); world access is not.
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise FacilityError(
            f"audit key {path} is accessible to others (mode {stat.S_IMODE(mode):o}); "
            "run chmod 600 (or 640 for a shared group) on it"
        )
    try:
        key = bytes.fromhex(content.decode("ascii").strip())
    except ValueError:  # not ASCII, or not hex
        key = b""
    if len(key) != KEY_BYTES:
        raise FacilityError(f"audit key {path} is not {KEY_BYTES} bytes of hex; restore it")
    return key


def _create_key(path: Path) -> None:
    """Write a new key atomically: two processes creating it at once end up with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if another process got there first: then theirs is the key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
