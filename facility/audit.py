"""The audit trail: append-only, SHA-256 hash-chained entries, and their verification.

Each entry's hash covers a canonical JSON form of the entry (sorted keys, no spaces, UTC times with
microseconds) and the previous entry's hash, so editing, deleting, inserting or reordering any entry
breaks the chain from that point. A trigger in the schema refuses UPDATE and DELETE as well.

Entries hold no personal data: records by id, holds by case reference, subjects by keyed hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from facility.models import AuditEntry

GENESIS = "0" * 64
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
