"""The tables: record kinds with their retention clock, holds, policies, audit trail, bookkeeping.

Every record table carries `retain_from`, the instant its retention timer starts (NULL while it
has not started), indexed with the site it belongs to; the ones fed by outside sources also carry
`known_at`, when facility stored it. Alembic owns the schema (`facility/store/migrations`); these
models describe it and a test checks the two agree.

Sites: every record, roll call, rejection, job run and lease-file position belongs to one site
(`site_id`, `facility.sites` says how a command learns it and how a query is narrowed to it); a
hold belongs to a site or, with NULL, to the whole organisation. `site_id` defaults to the default
site that the migration created (`DEFAULT_SITE`), in the database as in Python, so that a
single-site install and code written before sites store their rows where they always went.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import Table
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from facility.timeutil import ensure_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in Python; naive UTC text on SQLite (so it sorts), timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        """SQLite's text straight to aware UTC; elsewhere the impl's value through `ensure_utc`."""
        if dialect.name == "sqlite":
            return _utc_from_sqlite_text
        return super().result_processor(dialect, coltype)


def _utc_from_sqlite_text(value: str | None) -> datetime | None:
    # What SQLite's DATETIME processor (`fromisoformat`) and then `process_result_value` give, at
    # a fraction of the cost: the store writes naive UTC text, and naming its offset lets one C
    # call build the aware value, where `replace(tzinfo=...)` and the decorator's chain of three
    # calls cost more than the parsing, for every time of every row the on-site listing reads
    # (figures in bench/README.md).
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value + "+00:00")
    except ValueError:  # text with an offset of its own, or not a time at all (raises again)
        parsed = datetime.fromisoformat(value)
    # A bare date takes the appended "+00:00" for a time of day and stays naive.
    return parsed if parsed.tzinfo is UTC else ensure_utc(parsed)


# The site the migration to sites created and put every existing row in (code `main`).
DEFAULT_SITE = 1


def _site() -> Any:
    """The site a row belongs to (NOT NULL, the default site unless given)."""
    return Field(
        default=DEFAULT_SITE,
        sa_column=Column(
            Integer, ForeignKey("sites.id"), nullable=False, server_default=text(str(DEFAULT_SITE))
        ),
    )


def _site_key() -> Any:
    """The site as the first part of a composite primary key."""
    return Field(
        default=DEFAULT_SITE,
        sa_column=Column(
            Integer,
            ForeignKey("sites.id"),
            primary_key=True,
            server_default=text(str(DEFAULT_SITE)),
        ),
    )


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for set-based SQL on it."""
    # SQLAlchemy's declarative mapping sets `__table__`; SQLModel does not declare it.
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


class _Stored(Protocol):
    @property
    def id(self) -> int | None: ...


def row_id(row: _Stored) -> int:
    """The id of a row read from the store or flushed to it (a model types it `int | None`)."""
    assert row.id is not None, "the row is not stored yet"
    return row.id


def _at(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _retain_from() -> Any:
    # Indexed in each table's `__table_args__`: with the site (`_site_clock`), or alone in a
    # table whose rows belong to no site (`_clock`).
    return _at(nullable=True)


def _clock(table: str) -> Index:
    """The clock index of a table whose rows are the organisation's (no site)."""
    return Index(f"ix_{table}_retain_from", "retain_from")


def _site_clock(table: str, clock: str = "retain_from") -> Index:
    """The index every per-site query of a kind walks: (site_id, its clock)."""
    return Index(f"ix_{table}_site_{clock}", "site_id", clock)


def _known_at() -> Any:
    # When facility first stored the row (NULL: before it kept track). A record that arrives
    # already expired is not overdue until a purge has had one interval to take it.
    return _at(nullable=True)


class Site(SQLModel, table=True):
    """An office: its own reception, sources, time zone, country (legal ceilings) and policies."""

    __tablename__ = "sites"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True)  # lower case, `facility.sites.CODE`; what --site takes
    name: str
    timezone: str  # IANA zone: typed times, messages and pages of this site
    country: str  # ISO 3166-1 alpha-2, upper case: which legal ceilings apply
    created_at: datetime = _at()
    created_by: str


class Visit(SQLModel, table=True):
    __tablename__ = "visits"
    __table_args__ = (_site_clock("visits"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()
    name: str
    name_key: str = Field(index=True)  # names.name_key: how holds, sign-out and requests match
    company: str | None = None
    host: str | None = None
    signed_in_at: datetime = _at()
    signed_out_at: datetime | None = _at(nullable=True)
    closed_by: str | None = None  # "reception" or "auto"
    retain_from: datetime | None = _retain_from()
    # Set when a correction moved the clock (`visitors.corrections`): the report gives the record
    # one purge interval from then, as it does a record imported late. NULL: known as it happened.
    known_at: datetime | None = _known_at()


class BadgeLoan(SQLModel, table=True):
    __tablename__ = "badge_loans"
    __table_args__ = (
        # One open loan per badge, enforced by the database so two terminals cannot both issue it.
        Index(
            "uq_badge_loans_open",
            "site_id",
            "badge",
            unique=True,
            sqlite_where=text("returned_at IS NULL AND NOT lost"),
            postgresql_where=text("returned_at IS NULL AND NOT lost"),
        ),
        _site_clock("badge_loans"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()
    badge: str = Field(index=True)
    visit_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("visits.id", ondelete="SET NULL"), index=True),
    )
    issued_at: datetime = _at()
    returned_at: datetime | None = _at(nullable=True)
    lost: bool = False
    retain_from: datetime | None = _retain_from()
    known_at: datetime | None = _known_at()  # as for visits: set when a correction moved the clock


class DoorEvent(SQLModel, table=True):
    __tablename__ = "door_events"
    __table_args__ = (
        # A badge number and an event id mean something at their own site only.
        UniqueConstraint("site_id", "event_id", name="uq_door_events_site_event_id"),
        Index("ix_door_events_site_badge_at", "site_id", "badge", "at"),
        _site_clock("door_events"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()
    event_id: str
    door: str = Field(index=True)
    badge: str
    at: datetime = _at()
    granted: bool = True
    source: str = "cli"
    retain_from: datetime | None = _retain_from()
    known_at: datetime | None = _known_at()


class CameraSegment(SQLModel, table=True):
    __tablename__ = "camera_segments"
    __table_args__ = (
        UniqueConstraint("site_id", "path", name="uq_camera_segments_site_path"),
        _site_clock("camera_segments"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()
    camera: str = Field(index=True)
    path: str  # relative to the site's recordings root, POSIX
    start: datetime = _at()
    end: datetime = _at()
    retain_from: datetime | None = _retain_from()
    known_at: datetime | None = _known_at()


class CameraDir(SQLModel, table=True):
    """A directory under the recordings root as the camera scanner last read it (no personal data).

    The scanner lists a directory again only when its stamp changed: the next scan after a file in
    it was added or removed, or when it is NULL (files in it were still being written).
    """

    __tablename__ = "camera_dirs"

    site_id: int = _site_key()  # each office's root has its own directories
    path: str = Field(primary_key=True)  # relative to the recordings root, POSIX; "" is the root
    stamp: str | None = None  # "mtime_ns:ctime_ns:inode" when it was last read


class WifiLease(SQLModel, table=True):
    __tablename__ = "wifi_leases"
    __table_args__ = (
        UniqueConstraint("site_id", "source", "mac", "ip", "starts", name="uq_wifi_leases"),
        _site_clock("wifi_leases"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()
    source: str
    mac: str = Field(index=True)
    ip: str
    hostname: str | None = None
    client_id: str | None = None
    starts: datetime = _at()
    ends: datetime | None = _at(nullable=True)  # NULL: the server said it never ends
    last_seen: datetime | None = _at(nullable=True)
    closed_at: datetime | None = _at(nullable=True)  # closed by release or the silence limit
    retain_from: datetime | None = _retain_from()
    known_at: datetime | None = _known_at()


class BlockedDevice(SQLModel, table=True):
    __tablename__ = "blocked_devices"

    mac: str = Field(primary_key=True)
    reason: str
    blocked_by: str
    blocked_at: datetime = _at()


class Hold(SQLModel, table=True):
    __tablename__ = "holds"

    id: int | None = Field(default=None, primary_key=True)
    # The site whose records it keeps; NULL: every site's (an organisation hold).
    site_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("sites.id"), nullable=True)
    )
    case: str = Field(unique=True)
    reason: str
    window_from: datetime = _at()
    window_to: datetime = _at()
    placed_by: str
    placed_at: datetime = _at()
    review_by: datetime | None = _at(nullable=True)
    released_at: datetime | None = _at(nullable=True, index=True)
    released_by: str | None = None
    release_reason: str | None = None


class HoldScope(SQLModel, table=True):
    __tablename__ = "hold_scopes"
    __table_args__ = (Index("ix_hold_scopes_kind_selector", "kind", "selector"),)

    id: int | None = Field(default=None, primary_key=True)
    hold_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("holds.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    kind: str  # a record kind; "visitor" and "badge" selectors also reach linked kinds
    selector: str | None = None  # NULL: every record of the kind in the window
    # Set when the hold's release grace had passed and a personal selector (visitor, badge, MAC)
    # was replaced by its keyed hash (`holds.pseudonymise_released`).
    pseudonymised_at: datetime | None = _at(nullable=True)


class EvidenceCopy(SQLModel, table=True):
    """A held segment's file preserved in the evidence directory, against the recorder deleting it.

    The copy lives at the segment's own relative path under `<evidence root>/footage`. The row
    outlives its segment row only until the next purge (segment_id NULL: nothing keeps it).
    """

    __tablename__ = "evidence_copies"

    id: int | None = Field(default=None, primary_key=True)
    segment_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("camera_segments.id", ondelete="SET NULL"), index=True
        ),
    )
    path: str = Field(unique=True)  # relative to `<evidence root>/footage`: the segment's path
    method: str  # "link" (a hard link to the recorder's file) or "copy" (another file system)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str | None = None  # a copy's hash, checked against the original when it was made
    preserved_at: datetime = _at()


class CaseExport(SQLModel, table=True):
    """A hand-over package written for a case: where it is, what it holds, who took it.

    The product's own copy is deleted by the purge once it was handed over, or once its hold was
    released and the grace passed; the row stays as the record of the hand-over.
    """

    __tablename__ = "case_exports"

    id: int | None = Field(default=None, primary_key=True)
    hold_id: int = Field(
        sa_column=Column(Integer, ForeignKey("holds.id"), nullable=False, index=True)
    )
    location: str  # the export directory, absolute
    device: int = Field(sa_column=Column(BigInteger, nullable=False))  # the directory we made
    inode: int = Field(sa_column=Column(BigInteger, nullable=False))
    manifest_sha256: str | None = None  # None while it is being written
    files: int = 0
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    exported_by: str
    exported_at: datetime = _at()
    handed_over_at: datetime | None = _at(nullable=True)
    handed_over_by: str | None = None
    handed_over_to: str | None = None
    handover_reference: str | None = None
    removed_at: datetime | None = _at(nullable=True, index=True)  # the product's copy is gone
    removal: str | None = None  # how: purged, gone (already), erased


class Policy(SQLModel, table=True):
    """The organisation's policy of a kind: in force at every site without one of its own."""

    __tablename__ = "policies"

    kind: str = Field(primary_key=True)
    seconds: int = Field(sa_column=Column(BigInteger, nullable=False))  # the policy in force
    changed_by: str
    changed_at: datetime = _at()
    # A shortening waits `policy.shortening_delay` before it takes effect (`retention.policies`):
    # the new duration, when it takes effect and who set it. NULL: none is waiting.
    pending_seconds: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    pending_from: datetime | None = _at(nullable=True)
    pending_by: str | None = None


class SitePolicy(SQLModel, table=True):
    """A site's own policy of a kind, in force there instead of the organisation's."""

    __tablename__ = "site_policies"

    site_id: int = Field(sa_column=Column(Integer, ForeignKey("sites.id"), primary_key=True))
    kind: str = Field(primary_key=True)
    seconds: int = Field(sa_column=Column(BigInteger, nullable=False))
    changed_by: str
    changed_at: datetime = _at()
    # A shortening waits like the organisation's (`Policy.pending_*`).
    pending_seconds: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    pending_from: datetime | None = _at(nullable=True)
    pending_by: str | None = None


class LegalCeiling(SQLModel, table=True):
    """The longest a country's law (or its regulator's guideline) lets a kind be kept."""

    __tablename__ = "legal_ceilings"

    country: str = Field(primary_key=True)  # ISO 3166-1 alpha-2
    kind: str = Field(primary_key=True)
    max_seconds: int = Field(sa_column=Column(BigInteger, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))  # the law or guideline, cited
    changed_by: str
    changed_at: datetime = _at()


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True)
    at: datetime = _at()
    actor: str
    action: str = Field(index=True)
    details: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    prev_hash: str
    hash: str


class Rejection(SQLModel, table=True):
    __tablename__ = "rejections"
    __table_args__ = (_site_clock("rejections", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()
    at: datetime = _at()
    source: str = Field(index=True)
    reason: str
    raw: str = Field(sa_column=Column(Text, nullable=False))  # at most 512 bytes, escaped


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"

    site_id: int = _site_key()  # each site's daemon runs its own jobs
    job: str = Field(primary_key=True)
    last_success: datetime | None = _at(nullable=True)
    last_failure: datetime | None = _at(nullable=True)
    last_error: str | None = None
    last_detail: str | None = None


class SourcePosition(SQLModel, table=True):
    __tablename__ = "source_positions"

    site_id: int = _site_key()  # two offices may read lease files at the same path
    path: str = Field(primary_key=True)
    inode: int = Field(sa_column=Column(BigInteger, nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    header: str | None = None  # e.g. the Kea CSV header, needed to read appended rows
    updated_at: datetime = _at()


class Muster(SQLModel, table=True):
    __tablename__ = "musters"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()  # one roll call open at a time per site
    started_at: datetime = _at()
    started_by: str
    closed_at: datetime | None = _at(nullable=True)
    closed_by: str | None = None


class MusterEntry(SQLModel, table=True):
    __tablename__ = "muster_entries"

    id: int | None = Field(default=None, primary_key=True)
    muster_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("musters.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    visit_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("visits.id", ondelete="SET NULL"), index=True),
    )
    name: str | None = None  # removed when the visit expires; the roll call itself stays
    status: str = "unknown"  # safe | missing | unknown | left
    marked_at: datetime | None = _at(nullable=True)
    marked_by: str | None = None
    joined_at: datetime | None = _at(nullable=True)  # signed in after the roll call started
    left_at: datetime | None = _at(nullable=True)  # signed out while it was open


class User(SQLModel, table=True):
    __tablename__ = "users"

    name: str = Field(primary_key=True)
    password_hash: str
    roles: str  # comma separated
    # Unused since the sessions migration: lock-outs live in the web server's memory, per account
    # and client address, so that nobody can lock a real user out from elsewhere. Migrations only
    # add, so the columns stay.
    failed_logins: int = 0
    locked_until: datetime | None = _at(nullable=True)


class WebSession(SQLModel, table=True):
    """A signed-in browser or API client of the web interface; the row is the session.

    The cookie carries a random token and only its SHA-256 is stored, so a copy of the database
    cannot sign anyone in. Deleting the row ends the session: logout, a new password or roles,
    `facility user revoke`, removing the account; expired rows go at the next login and purge.
    """

    __tablename__ = "web_sessions"

    id: str = Field(primary_key=True)  # SHA-256 of the cookie's token, hex
    account: str = Field(
        sa_column=Column(
            String, ForeignKey("users.name", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    address: str | None = None  # the client address it logged in from
    # The site the terminal serves (chosen at login when the server serves several); NULL: the
    # server's own (`[web] site`) or the only site.
    site_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("sites.id"), nullable=True)
    )
    started_at: datetime = _at()
    seen_at: datetime = _at()
    expires_at: datetime = _at(index=True)


class DataRequest(SQLModel, table=True):
    """A data-subject request (access, rectification, erasure, restriction, objection,
    portability), its deadline and its outcome (`privacy.requests`). A kind of its own: kept
    `retention.requests` after it is closed."""

    __tablename__ = "requests"
    __table_args__ = (_clock("requests"),)

    id: int | None = Field(default=None, primary_key=True)
    type: str  # the right exercised: privacy.requests.TYPES
    subject_kind: str  # name | mac | badge, as `subject export` takes them
    subject: str  # as the officer typed it, cleaned
    subject_key: str = Field(index=True)  # the form the store matches: name key, MAC, badge
    contact: str  # how to reach the person with the answer
    received_at: datetime = _at()
    due_at: datetime = _at(index=True)  # the answer is late from this instant on
    extended_months: int = 0  # article 12(3): at most two
    extension_reason: str | None = None
    opened_by: str
    opened_at: datetime = _at()
    closed_at: datetime | None = _at(nullable=True)
    closed_by: str | None = None
    outcome: str | None = None
    retain_from: datetime | None = _retain_from()  # the closing


class Restriction(SQLModel, table=True):
    """A data subject whose records are restricted (article 18): kept, purged on time, and shown
    to the privacy role only (`privacy.restriction`). Lifted by `subject unrestrict`; ends by
    itself once nothing of the subject is stored any more."""

    __tablename__ = "restrictions"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_key", name="uq_restrictions_subject"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subject_kind: str  # name | mac | badge
    subject_key: str  # the form the store matches: name key, MAC, badge
    reason: str
    restricted_by: str
    restricted_at: datetime = _at()
    request_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("requests.id", ondelete="SET NULL"), nullable=True),
    )


class IgnoredDevice(SQLModel, table=True):
    """A device whose owner objected to wifi recording: its leases are counted at ingest and not
    stored (`sources.objections`). Lifted by `wifi unignore`."""

    __tablename__ = "ignored_devices"
    __table_args__ = (UniqueConstraint("mac", name="uq_ignored_devices_mac"),)

    id: int | None = Field(default=None, primary_key=True)
    mac: str
    reason: str
    ignored_by: str
    ignored_at: datetime = _at()
    request_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("requests.id", ondelete="SET NULL"), nullable=True),
    )
    leases_ignored: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )


# --- the reception desk's tools: expected visitors, the hosts directory, notifications, kiosks ---


class ExpectedVisit(SQLModel, table=True):
    """A visitor announced for a day; it ends a day after that day (`retention.expected`)."""

    __tablename__ = "expected_visits"
    __table_args__ = (
        Index("ix_expected_visits_site_day", "site_id", "expected_on", "name_key"),
        _site_clock("expected_visits"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()  # the office the visitor is expected at
    name: str
    name_key: str = Field(index=True)
    company: str | None = None
    host: str | None = None
    badge: str | None = None  # lent at once when the visitor is signed in
    expected_on: date = Field(sa_column=Column(Date, nullable=False))  # the site's day
    created_at: datetime = _at()
    created_by: str
    arrived_at: datetime | None = _at(nullable=True)
    # The visit it became. No foreign key: an expectation ends a day after its day, before its
    # visit does, and must never keep a visit from its own purge.
    visit_id: int | None = None
    retain_from: datetime | None = _retain_from()  # the end of the expected day, site time


class Host(SQLModel, table=True):
    """A member of staff whom visitors come to see, and how they want to be told."""

    __tablename__ = "hosts"
    __table_args__ = (
        Index("uq_hosts_site_name_key", "site_id", "name_key", unique=True),
        _site_clock("hosts"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()  # the office whose visitors come to see them
    name: str
    name_key: str  # a sign-in's `--host` finds the entry by it
    email: str | None = None
    webhook: str | None = None
    added_at: datetime = _at()
    # Last added, changed or named at a sign-in: an entry nobody uses ends (`retention.hosts`).
    retain_from: datetime | None = _retain_from()


class HostNotification(SQLModel, table=True):
    """A message to a host that a visitor arrived, until it is delivered (then the row goes)."""

    __tablename__ = "host_notifications"
    __table_args__ = (_site_clock("host_notifications"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()  # the visit's office (its host's)
    message_id: str = Field(unique=True)  # the same on every attempt: a retry can be told apart
    host_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    channel: str  # "email" | "webhook"
    visitor: str
    visitor_key: str = Field(index=True)  # names.name_key: how subject requests find it
    company: str | None = None
    signed_in_at: datetime = _at()
    attempts: int = 0
    next_attempt_at: datetime = _at(index=True)
    claimed_until: datetime | None = _at(nullable=True)  # a sender is trying it until then
    last_attempt_at: datetime | None = _at(nullable=True)
    last_error: str | None = None  # in our words, naming no one
    retain_from: datetime | None = _retain_from()  # when it was queued


class Kiosk(SQLModel, table=True):
    """A visitor-facing sign-in device, paired once with a link and known by its cookie.

    Only hashes of the pairing and device tokens are stored, as for web sessions.
    """

    __tablename__ = "kiosks"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = _site()  # the office it stands in: it signs visitors in and out there
    name: str = Field(unique=True)
    pairing_hash: str | None = Field(default=None, unique=True)  # SHA-256 of the one-time token
    pairing_expires_at: datetime | None = _at(nullable=True)
    device_hash: str | None = Field(default=None, unique=True)  # SHA-256 of the device cookie
    added_at: datetime = _at()
    added_by: str
    paired_at: datetime | None = _at(nullable=True)
    revoked_at: datetime | None = _at(nullable=True)
