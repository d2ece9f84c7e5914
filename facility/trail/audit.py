"""The audit trail: append-only entries chained with a keyed MAC, and their verification.

Each entry's MAC (HMAC-SHA256) covers a canonical JSON form of the entry (sorted keys, no spaces,
UTC times with microseconds) and the previous entry's MAC, so editing, deleting, inserting or
reordering any entry breaks the chain from that point. The key lives outside the database, so
someone who can write to the database but cannot read the key cannot recompute the chain after an
edit, as anyone could with a plain hash. A trigger in the schema refuses UPDATE and DELETE as well.
The stored details must be exactly their canonical text: a duplicate key or another spelling of
the same object would let a reader see something other than what was signed.

Trails begun at schema 0001 were chained with plain SHA-256. Their entries still verify, as
a prefix only: `facility init` seals them with a keyed `audit.seal` entry whose MAC covers the old
head, and after the first keyed entry every entry must be keyed. A trail without a keyed entry
fails: it was emptied, or rewritten with the plain method. A cut-off tail is what the database
cannot show about itself; `trail.heads` anchors heads in a file outside it.

Entries hold no personal data: records by id, holds by case reference, subjects by keyed hash.

Keys (`trail.keys`): the chain is signed with a key derived from the site secret in `audit.key`,
which every host using the database shares; subject hashes use that secret directly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, text
from sqlalchemy import select as core_select  # sqlmodel's select types four columns at most
from sqlmodel import Session, col, select

from facility.errors import FacilityError, InputError
from facility.names import name_key
from facility.sources.macs import normalise_mac
from facility.store.models import AuditEntry
from facility.timeutil import ensure_utc
from facility.trail import keys
from facility.trail.keys import KEY_BYTES as KEY_BYTES
from facility.trail.keys import KEY_FILE as KEY_FILE
from facility.trail.keys import load_or_create_key as load_or_create_key

GENESIS = "0" * 64
SUBJECT_KINDS = ("name", "mac", "badge")
SEAL_ACTION = "audit.seal"
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
# The canonical form: sorted keys, no spaces, text as it is (one encoder, made once).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# Any constant works; it names the lock that serialises appends on PostgreSQL.
_APPEND_LOCK = 0x46AC_0001
_COLUMNS = (
    col(AuditEntry.seq),
    col(AuditEntry.at),
    col(AuditEntry.actor),
    col(AuditEntry.action),
    col(AuditEntry.details),
    col(AuditEntry.prev_hash),
    col(AuditEntry.hash),
)


# --- entries ------------------------------------------------------------------------------------


class EntryLike(Protocol):
    """An entry as verification reads it: an AuditEntry or a row of its columns."""

    seq: int
    at: datetime
    actor: str
    action: str
    details: str
    prev_hash: str
    hash: str


def canonical(seq: int, at: datetime, actor: str, action: str, details: Any, prev: str) -> bytes:
    """The bytes an entry's MAC (or, before 0002, its plain hash) is computed over."""
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "details": details,
        "prev": prev,
    }
    return _dumps(body).encode()


def stored_message(entry: EntryLike) -> bytes:
    """`canonical` of a stored entry, built around its details text as stored.

    The same bytes as `canonical` when that text is canonical, as `append` writes it; any other
    text (a duplicate key, another spelling) makes other bytes, so its MAC no longer matches. No
    parse is needed: a whole walk costs a string join per entry, not a JSON round trip.
    """
    at = ensure_utc(entry.at).isoformat(timespec="microseconds")
    return (
        f'{{"action":{_string(entry.action)},"actor":{_string(entry.actor)},"at":"{at}",'
        f'"details":{entry.details},"prev":{_string(entry.prev_hash)},"seq":{int(entry.seq)}}}'
    ).encode()


def _mac(key: bytes, message: bytes) -> str:
    return hmac.digest(key, message, "sha256").hex()


def _string(value: str) -> str:
    return _ENCODER.encode(value)


def entry_mac(
    key: bytes, seq: int, at: datetime, actor: str, action: str, details: Any, prev: str
) -> str:
    """The keyed chain MAC of an entry."""
    return _mac(key, canonical(seq, at, actor, action, details, prev))


def plain_hash(seq: int, at: datetime, actor: str, action: str, details: Any, prev: str) -> str:
    """The plain SHA-256 chain hash entries had at schema 0001 (read, never written)."""
    return hashlib.sha256(canonical(seq, at, actor, action, details, prev)).hexdigest()


def details_text(details: Mapping[str, Any]) -> str:
    """The canonical text an entry stores for `details`."""
    return _dumps(json.loads(json.dumps(details, default=str)))


def parse_details(text_: str) -> Any:
    """The details of a stored entry; ValueError unless the text is exactly canonical."""
    value = json.loads(text_)
    if _dumps(value) != text_:
        # A duplicate key can never read back the same; the hook says so by name.
        json.loads(text_, object_pairs_hook=_refuse_duplicates)
        raise ValueError("not in canonical form")
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a duplicate key")
    return found


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def append(
    session: Session, *, now: datetime, actor: str, action: str, **details: Any
) -> AuditEntry:
    """Add an entry in the caller's transaction, so it commits with the change it describes."""
    return _append(session, keys.chain_key(), now=now, actor=actor, action=action, details=details)


def _append(
    session: Session,
    key: bytes,
    *,
    now: datetime,
    actor: str,
    action: str,
    details: Mapping[str, Any],
) -> AuditEntry:
    # MAC the instant as it will read back from the store (UTC), or verify would see an edit.
    now = ensure_utc(now)
    last = _newest(session, lock=True)
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    entry = AuditEntry(
        seq=seq,
        at=now,
        actor=actor,
        action=action,
        details=details_text(details),
        prev_hash=prev,
        hash="",  # the MAC of the fields above, set next
    )
    entry.hash = _mac(key, stored_message(entry))
    session.add(entry)
    session.flush()
    return entry


def _newest(session: Session, *, lock: bool = False) -> AuditEntry | None:
    if lock and session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK})
    return session.exec(select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(1)).first()


def seal(session: Session, *, now: datetime, actor: str) -> AuditEntry | None:
    """Seal a trail chained with plain SHA-256 with a keyed entry; None when it needs none.

    The seal's MAC covers the old head, so the old entries can no longer be rewritten with the
    plain method. A newest entry that is neither keyed with this site's key nor a plain entry
    means another key (or an edit): nothing is written then.
    """
    key = keys.chain_key()
    last = _newest(session, lock=True)
    if last is None or _signed(last, key):
        return None
    if not _plain(last):
        raise FacilityError(
            f"the newest audit entry (seq {last.seq}) is not signed with the audit key in "
            f"{keys.site_home()}: if this host is new, copy audit.key from the host that ran "
            "`facility init` first; otherwise run `facility audit verify --full`"
        )
    details = {"entries": last.seq, "head": last.hash, "method": "sha256"}
    return _append(session, key, now=now, actor=actor, action=SEAL_ACTION, details=details)


def newest(session: Session) -> AuditEntry | None:
    """The newest entry, None for an empty trail."""
    return _newest(session)


def newest_signed(session: Session) -> int | None:
    """The seq of the newest entry unless the trail is empty or that entry is a plain one."""
    last = _newest(session)
    return None if last is None or _plain(last) else last.seq


def _signed(entry: EntryLike, key: bytes) -> bool:
    return hmac.compare_digest(_mac(key, stored_message(entry)), entry.hash)


def _plain(entry: EntryLike) -> bool:
    digest = hashlib.sha256(stored_message(entry)).hexdigest()
    return hmac.compare_digest(digest, entry.hash)


def head(session: Session) -> str:
    """The MAC of the newest entry (GENESIS for an empty trail)."""
    last = session.exec(
        select(AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
    ).first()
    return last or GENESIS


def chain_id(session: Session) -> str | None:
    """What names this trail in a head file: the start of its first entry's MAC."""
    first = session.exec(select(AuditEntry.hash).where(AuditEntry.seq == 1)).first()
    return None if first is None else first[:16]


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A head recorded outside the database: entry `seq` had MAC `head` when `kind` wrote it."""

    seq: int
    head: str
    kind: str  # purge, init, verified (a checkpoint)
    at: datetime


# Who anchors heads, as messages name them.
ANCHORED_BY = {"purge": "a purge", "init": "`facility init`", "verified": "a verification"}


@dataclass(frozen=True)
class Verdict:
    """What `verify` found."""

    ok: bool
    entries: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None
    checked: int = 0  # entries whose MAC this run recomputed
    from_seq: int = 0  # the checkpoint the run started after; 0: the whole chain
    anchors: int = 0  # anchored heads compared
    warnings: tuple[str, ...] = field(default=())


def verify_entries(
    entries: Iterable[EntryLike],
    *,
    key: bytes,
    start: Anchor | None = None,
    anchors: Iterable[Anchor] = (),
    expected_head: str | None = None,
) -> Verdict:
    """Walk the chain (after the checkpoint `start`, if any); the first entry that does not follow
    from its predecessor, or differs from an anchored head, is bad."""
    walk = _Walk(key, start, expected_head)
    pending = {a.seq: a for a in anchors if start is None or a.seq > start.seq}
    compared = 0
    for entry in entries:
        problem = walk.step(entry)
        anchor = pending.pop(entry.seq, None)
        if problem is None and anchor is not None:
            compared += 1
            if not hmac.compare_digest(anchor.head, entry.hash):
                by = ANCHORED_BY.get(anchor.kind, anchor.kind)
                problem = (
                    f"entry {entry.seq} is not the entry {by} anchored outside the database: "
                    "the trail was rewritten from there"
                )
        if problem:
            return walk.verdict(False, entry.seq, problem, compared)
    return walk.finish(pending, compared)


class _Walk:
    """The state of one walk along the chain."""

    def __init__(self, key: bytes, start: Anchor | None, expected_head: str | None) -> None:
        self.key = key
        self.from_seq = start.seq if start else 0
        self.prev = start.head if start else GENESIS
        self.count = self.from_seq
        self.checked = 0
        self.keyed = start is not None  # a checkpoint is always a keyed entry
        self.expected_head = expected_head
        self.seen_expected = expected_head in (None, self.prev)

    def step(self, entry: EntryLike) -> str | None:
        problem = self._check(entry)
        if problem is None:
            self.prev, self.count, self.checked = entry.hash, self.count + 1, self.checked + 1
            if entry.hash == self.expected_head:
                self.seen_expected = True
        return problem

    def _check(self, entry: EntryLike) -> str | None:
        if entry.seq != self.count + 1:
            return f"entry {entry.seq} follows entry {self.count}: an entry is missing or moved"
        if entry.prev_hash != self.prev:
            return f"entry {entry.seq} does not link to the entry before it"
        message = stored_message(entry)
        if hmac.compare_digest(_mac(self.key, message), entry.hash):
            self.keyed = True
            return None
        # Plain entries only before the first keyed one: the seal's MAC pins them.
        if not self.keyed and hmac.compare_digest(hashlib.sha256(message).hexdigest(), entry.hash):
            return None
        try:
            parse_details(entry.details)
        except ValueError as err:
            return f"entry {entry.seq} has details that are not as written ({err})"
        return f"entry {entry.seq} was altered after it was written (or not with this site's key)"

    def verdict(self, ok: bool, bad: int | None, problem: str | None, compared: int) -> Verdict:
        return Verdict(
            ok, self.count, self.prev, bad, problem, self.checked, self.from_seq, compared
        )

    def finish(self, pending: dict[int, Anchor], compared: int) -> Verdict:
        if self.count == 0:
            problem = (
                "the trail is empty, yet `facility init` writes its first entry: it was emptied"
            )
            return self.verdict(False, None, problem, compared)
        if not self.keyed:
            problem = (
                "no entry is signed with this site's audit key: the trail was rewritten, or this "
                "host's audit.key is not the one it was written with, or `facility init` has not "
                "sealed it yet"
            )
            return self.verdict(False, None, problem, compared)
        if pending:
            beyond = pending[max(pending)]
            by = ANCHORED_BY.get(beyond.kind, beyond.kind)
            problem = (
                f"the trail ends at entry {self.count}, but {by} anchored entry {beyond.seq} "
                "outside the database: entries were cut off"
            )
            return self.verdict(False, None, problem, compared)
        if not self.seen_expected:
            problem = f"head {self.expected_head} is not in the trail: entries were cut off"
            return self.verdict(False, None, problem, compared)
        return self.verdict(True, None, None, compared)


def verify(
    session: Session,
    *,
    key: bytes | None = None,
    anchors: Iterable[Anchor] = (),
    start: Anchor | None = None,
    expected_head: str | None = None,
) -> Verdict:
    """Verify the trail in the database, streaming it in seq order: all of it, or what follows
    the checkpoint `start` (which `start_holds` has approved)."""
    key = keys.chain_key() if key is None else key
    anchors = list(anchors)
    if (
        start is not None
        and expected_head is not None
        and _at_or_before(session, expected_head, start.seq)
    ):
        expected_head = None
    statement = core_select(*_COLUMNS).order_by(col(AuditEntry.seq))
    if start is not None:
        statement = statement.where(col(AuditEntry.seq) > start.seq)
    # Core rows, not ORM ones: a whole walk reads every entry once.
    rows = session.connection().execute(statement.execution_options(yield_per=2000))
    return verify_entries(rows, key=key, start=start, anchors=anchors, expected_head=expected_head)


def start_holds(session: Session, key: bytes, start: Anchor, anchors: list[Anchor]) -> bool:
    """Whether the checkpoint entry is still in place and signed, nothing was put before entry 1,
    and the anchors at or before it still match: each an index lookup, whatever the length.

    What lies before the checkpoint is not read again (a count of it would be): an entry edited or
    deleted there is found by the whole walk, `audit verify --full`.
    """
    entry = session.execute(core_select(*_COLUMNS).where(col(AuditEntry.seq) == start.seq)).first()
    if entry is None or entry.hash != start.head or not _signed(entry, key):
        return False
    if session.execute(select(func.min(AuditEntry.seq))).scalar_one() != 1:
        return False
    earlier = {a.seq: a.head for a in anchors if a.seq <= start.seq}
    if not earlier:
        return True
    found = dict(
        session.execute(
            select(AuditEntry.seq, AuditEntry.hash).where(col(AuditEntry.seq).in_(list(earlier)))
        ).all()
    )
    return found == earlier


def committed_since(session: Session, anchors: Iterable[Anchor]) -> set[int]:
    """The anchored entries beyond the session's snapshot that exist now, as anchored.

    A PostgreSQL snapshot can predate a purge whose head was anchored before the head file was
    read: such an anchor is new, not a sign of a cut. A SQLite session holds the write lock from
    its start, so nothing can have committed since and there is nothing to look up.
    """
    newest = session.execute(select(func.max(AuditEntry.seq))).scalar_one() or 0
    beyond = {a.seq: a.head for a in anchors if a.seq > newest}
    bind = session.get_bind()
    if not beyond or bind.dialect.name != "postgresql":
        return set()
    with bind.engine.connect() as conn:
        found = dict(
            conn.execute(
                select(AuditEntry.seq, AuditEntry.hash).where(col(AuditEntry.seq).in_(list(beyond)))
            ).all()
        )
    return {seq for seq, head_ in beyond.items() if found.get(seq) == head_}


def _at_or_before(session: Session, head_: str, seq: int) -> bool:
    found = session.execute(
        select(AuditEntry.seq).where(AuditEntry.hash == head_, col(AuditEntry.seq) <= seq)
    ).first()
    return found is not None


def is_head(value: str) -> bool:
    """Whether `value` looks like a chain MAC (64 lower-case hex digits)."""
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


# --- the keyed hash for data subjects -----------------------------------------------------------
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
