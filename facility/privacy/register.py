"""The register of processing activities (GDPR article 30), made from what the product does.

One entry per record kind: its purpose, the categories of people and of data, the legal basis
(`[privacy]`, else the kind's default), the recipients (the roles whose work shows it, with whom
`[roles]` gives them and how many web accounts hold them), the retention from the policy in force
(with any shortening still waiting) and what starts it, the open-record limit, and incident holds
as the one exception. Then the technical and organisational measures the product actually applies
here, read from the settings and the database rather than promised: roles, the signed and anchored
audit trail that names people by keyed hash, how deletion is made final on this engine, private
files, encryption in transit where it is configured, restriction, objection, and the guarded
shortening of a policy.

Markdown to keep beside the other paperwork, one printable HTML page, or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlmodel import Session

from facility.accounts import users
from facility.privacy import notice, restriction
from facility.privacy.report_render import md_table
from facility.privacy.subjects import Subject, selections
from facility.render import html_page, json_text
from facility.retention import holds, policies
from facility.settings import Settings
from facility.sources import objections
from facility.store import kinds as registry
from facility.timefmt import site_text, utc_text
from facility.timeutil import format_duration, zone
from facility.trail.audit import SUBJECT_KINDS

ROLE_NAMES = {
    "reception": "reception staff",
    "security": "security staff",
    "privacy": "the privacy officer",
    "admin": "administrators",
}
TEMPLATE = "register.html"


@dataclass
class Entry:
    """One processing activity: a record kind."""

    kind: str
    label: str
    purpose: str
    people: str
    data: str
    legal_basis: str
    recipients: list[str]
    retention: timedelta
    clock: str
    pending: policies.Pending | None
    open_limit: timedelta | None
    holdable: bool
    active_holds: int
    records: int
    restrictable: bool

    def retention_text(self) -> str:
        """`3d (3 days) after you sign out`."""
        return f"{format_duration(self.retention)} ({notice.english(self.retention)}) {self.clock}"

    def as_json(self) -> dict[str, Any]:
        """The entry for `register --format json`."""
        return {
            "kind": self.kind,
            "label": self.label,
            "purpose": self.purpose,
            "data_subjects": self.people,
            "personal_data": self.data,
            "legal_basis": self.legal_basis,
            "recipients": self.recipients,
            "retention": {
                "seconds": int(self.retention.total_seconds()),
                "duration": format_duration(self.retention),
                "starts": self.clock,
                "pending": None if self.pending is None else self.pending.as_json(),
                "open_limit_seconds": None
                if self.open_limit is None
                else int(self.open_limit.total_seconds()),
            },
            "holds": {"may_keep_longer": self.holdable, "active": self.active_holds},
            "restriction": self.restrictable,
            "records": self.records,
        }


@dataclass
class Register:
    """The whole register at one instant."""

    generated_at: datetime
    controller: str
    contact: str
    dpo: str
    notice_version: notice.Version
    entries: list[Entry]
    measures: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """`{"generated_at", "controller", "contact", "dpo", "notice", "entries", "measures"}`."""
        return {
            "generated_at": utc_text(self.generated_at),
            "controller": self.controller,
            "contact": self.contact,
            "dpo": self.dpo,
            "notice": self.notice_version.as_json(),
            "entries": [e.as_json() for e in self.entries],
            "measures": list(self.measures),
        }


def build(session: Session, settings: Settings, *, now: datetime) -> Register:
    """The register at `now`, from the policies in force, the settings and the database."""
    in_force = policies.in_force(session, now=now)
    waiting = {p.kind: p for p in policies.pending(session, now=now)}
    grace = settings.holds.release_grace
    active = len(holds.listing(session, now=now, grace=grace))
    accounts = _accounts_per_role(session)
    reached = _reached_by_subjects()
    entries = []
    for kind in registry.ALL:
        if kind.name not in in_force:
            continue
        count = session.execute(select(func.count()).select_from(kind.table)).scalar_one()
        limit = None if kind.open_limit is None else getattr(settings.limits, kind.open_limit)
        entries.append(
            Entry(
                kind=kind.name,
                label=kind.label,
                purpose=kind.purpose,
                people=kind.people,
                data=kind.data,
                legal_basis=settings.privacy.basis(kind.name),
                recipients=[_recipient(r, settings, accounts) for r in kind.seen_by],
                retention=in_force[kind.name],
                clock=kind.clock_text,
                pending=waiting.get(kind.name),
                open_limit=limit,
                holdable=kind.holdable,
                active_holds=active if kind.holdable else 0,
                records=count,
                restrictable=kind.name in reached,
            )
        )
    return Register(
        generated_at=now,
        controller=settings.privacy.controller,
        contact=settings.privacy.contact,
        dpo=settings.privacy.dpo,
        notice_version=notice.version(session, settings.privacy, now=now),
        entries=entries,
        measures=measures(session, settings),
    )


def _reached_by_subjects() -> set[str]:
    """The kinds a data subject reaches that a restriction hides."""
    found: set[str] = set()
    for kind in SUBJECT_KINDS:
        found.update(selections(Subject(kind, "-", "-")))
    return found & set(restriction.RESTRICTABLE)


def _accounts_per_role(session: Session) -> dict[str, int]:
    counts: dict[str, int] = {}
    for user in users.listing(session):
        for role in users.roles_of(user):
            counts[role] = counts.get(role, 0) + 1
    return counts


def _recipient(role: str, settings: Settings, accounts: dict[str, int]) -> str:
    who = ROLE_NAMES.get(role, role)
    if settings.roles is None:
        given = "every user: no [roles] section"
    else:
        listed = getattr(settings.roles, role) + settings.roles.admin
        given = ", ".join(listed) if listed else "nobody in [roles]"
    held = accounts.get(role, 0) + (accounts.get("admin", 0) if role != "admin" else 0)
    return f"{who} (role {role}: {given}; web accounts: {held})"


def measures(session: Session, settings: Settings) -> list[str]:
    """The technical and organisational measures this installation applies, as configured."""
    engine = session.get_bind().dialect.name
    found = [
        "Access by role: every command, page and API call is one declared action with the roles "
        "that may perform it; a refusal is audited. "
        + (
            "Roles are given by the [roles] section."
            if settings.roles is not None
            else "WARNING: no [roles] section, so every user holds every role."
        ),
        "Audit trail: append-only (database triggers refuse UPDATE and DELETE); every entry is "
        "signed with HMAC-SHA256 under a key kept outside the database, and its head is anchored "
        "outside the database after every purge, so an edited, emptied or cut trail fails "
        "`facility audit verify`.",
        "Pseudonymised trail: people and devices are named in the audit trail by a keyed hash "
        "only; the personal selectors of released incident holds are replaced by a keyed hash "
        f"once their grace ({format_duration(settings.holds.release_grace)}) has passed.",
        f"Deletion: expired records are purged every {format_duration(settings.purge.interval)} "
        "in set-based batches; the report fails on any record kept past its policy.",
        _deletion(engine),
        "Files that name people (exports, lists, reports) are written readable by their owner "
        "only (0600), never through a symbolic link.",
        *_transit(settings),
        "Restriction (article 18): "
        f"{restriction.count(session)} subject(s) restricted now; their records are kept and "
        "purged on time, and shown to the privacy role only (the evacuation list excepted).",
        "Objection to wifi recording (article 21): "
        f"{objections.totals(session)['devices']} device(s) whose leases are counted at ingest "
        "and not stored.",
        "Guarded shortening: a shortened retention policy takes effect "
        f"{format_duration(settings.policy.shortening_delay)} after it is set "
        "(policy.shortening_delay), so a mistaken change can be taken back before anything is "
        "deleted; an administrator may apply one at once, with a reason (audited).",
        "Data-subject requests are registered with their one-month deadline; the report fails "
        "on one answered late.",
    ]
    return found


def _deletion(engine: str) -> str:
    if engine == "sqlite":
        return (
            "SQLite runs with secure_delete on and every purge and erasure truncates the WAL, so "
            "deleted rows cannot be read back from the database file or its journal."
        )
    return (
        "PostgreSQL: deleted rows stay in the table files and the WAL until (auto)vacuum and WAL "
        "recycling reclaim them; the data directory, its WAL archive and backups are protected "
        "like the data itself."
    )


def _transit(settings: Settings) -> list[str]:
    mqtt = (
        "MQTT: TLS to the broker (mqtt.tls_ca is set)."
        if settings.mqtt.tls_ca is not None
        else "MQTT: no TLS (mqtt.tls_ca unset): the broker must be on a trusted network."
    )
    url = make_url(settings.url)
    if url.get_backend_name() == "sqlite":
        database = "Database: a local SQLite file; no data crosses the network."
    else:
        mode = url.query.get("sslmode")
        mode = mode if isinstance(mode, str) else None
        database = (
            f"Database: PostgreSQL over TLS (sslmode={mode})."
            if mode in ("require", "verify-ca", "verify-full")
            else "Database: PostgreSQL without required TLS (no sslmode=require in database_url): "
            "keep the database on a trusted network."
        )
    web = (
        "Web interface: TLS from `facility web --tls-cert/--tls-key` or the TLS proxy in front of "
        "it (set when it starts); the session cookie is Secure behind TLS."
    )
    return [mqtt, database, web]


# --- rendering -----------------------------------------------------------------------------------


HEADERS = ["kind", "purpose", "data subjects", "personal data", "legal basis", "recipients"]


def render(register: Register, output_format: str, zone_name: str) -> str:
    """The register as `md`, `html` (one self-contained printable page) or `json`."""
    if output_format == "json":
        return json_text(register.as_json()) + "\n"
    site = zone(zone_name)
    if output_format == "html":
        return html_page(TEMPLATE, r=register, v=_View(register, site), zone=zone_name)
    return markdown(register, site, zone_name)


class _View:
    """What the templates need in display form."""

    def __init__(self, register: Register, site: tzinfo) -> None:
        self.r, self.site = register, site
        self.generated = site_text(register.generated_at, site)
        self.since = site_text(register.notice_version.since, site)

    def pending(self, entry: Entry) -> str:
        """A shortening still waiting, as a sentence ("" when none)."""
        p = entry.pending
        if p is None:
            return ""
        return (
            f"shortened to {format_duration(p.duration)} ({notice.english(p.duration)}) from "
            f"{site_text(p.takes_effect, self.site)}, set by {p.set_by}"
        )

    def limit(self, entry: Entry) -> str:
        """The open-record limit, as a sentence ("" when the kind has none)."""
        if entry.open_limit is None:
            return ""
        return f"left open, closed automatically after {format_duration(entry.open_limit)}"

    def exception(self, entry: Entry) -> str:
        """What may keep the kind's records longer."""
        if not entry.holdable:
            return "none: no incident hold can keep these records"
        return (
            "an incident hold (security role, with a case reference and reason, audited, "
            f"reviewed) keeps the records in its scope and window; {entry.active_holds} hold(s) "
            "protect now"
        )


def markdown(register: Register, site: tzinfo, zone_name: str) -> str:
    """The register as Markdown: one section per processing activity, then the measures."""
    view = _View(register, site)
    out = [
        "# Register of processing activities (GDPR article 30)",
        "",
        f"Generated {view.generated} ({zone_name}). Controller: "
        f"{register.controller or '(not configured: privacy.controller)'}. Contact: "
        f"{register.contact or '(not configured: privacy.contact)'}. Data protection officer: "
        f"{register.dpo or '(none configured)'}. Privacy notice in force: version "
        f"{register.notice_version.digest} (retention as in force since {view.since}).",
    ]
    for entry in register.entries:
        rows = [
            ["purpose", entry.purpose],
            ["data subjects", entry.people],
            ["personal data", entry.data],
            ["legal basis", entry.legal_basis],
            ["recipients", "; ".join(entry.recipients)],
            ["retention", entry.retention_text()],
        ]
        if entry.pending is not None:
            rows.append(["shortening waiting", view.pending(entry)])
        if entry.open_limit is not None:
            rows.append(["open-record limit", view.limit(entry)])
        rows.append(["kept longer", view.exception(entry)])
        if entry.restrictable:
            rows.append(["restriction", "a restricted subject's records are shown to privacy only"])
        rows.append(["records now", str(entry.records)])
        out += ["", f"## {entry.kind}: {entry.label}", "", md_table(["", ""], rows)]
    out += ["", "## Technical and organisational measures", ""]
    out += [f"- {m}" for m in register.measures]
    return "\n".join(out) + "\n"
