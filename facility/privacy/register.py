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

from facility import sites as offices
from facility.accounts import users
from facility.privacy import notice, restriction
from facility.privacy.report_render import md_table
from facility.privacy.subjects import Subject, selections
from facility.render import html_page, json_text
from facility.retention import holds, policies
from facility.settings import Settings
from facility.sources import objections
from facility.store import kinds as registry
from facility.store.models import Site, User, row_id
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
    site: str | None = None  # with several sites: the site's code (None: the organisation's)
    policy_from: str = "organisation"  # "site": the site's own policy, else the organisation's
    legal_limit: LegalLimit | None = None  # the site's country's ceiling, where it is named

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
        } | self._per_site()

    def _per_site(self) -> dict[str, Any]:
        """With several sites: the site, where its policy comes from and its legal limit; for
        one site, the legal limit only where it cuts the policy short."""
        shown: dict[str, Any] = {}
        if self.site is not None:
            shown["site"] = self.site
            shown["policy_from"] = self.policy_from
        if self.site is not None or self.legal_limit is not None:
            shown["legal_limit"] = None if self.legal_limit is None else self.legal_limit.as_json()
        return shown


@dataclass(frozen=True)
class LegalLimit:
    """A country's legal ceiling of a kind, with the law or guideline it comes from."""

    country: str
    duration: timedelta
    source: str
    cuts_short: bool = False  # the policy is longer: the ceiling is what is in force

    def text(self) -> str:
        """`31d (31 days) in BE: Belgian camera law ...`."""
        return (
            f"{format_duration(self.duration)} ({notice.english(self.duration)}) in "
            f"{self.country}: {self.source}"
            + ("; the policy is longer, so the ceiling is in force" if self.cuts_short else "")
        )

    def as_json(self) -> dict[str, Any]:
        """`{"country", "seconds", "duration", "source"}`."""
        return {
            "country": self.country,
            "seconds": int(self.duration.total_seconds()),
            "duration": format_duration(self.duration),
            "source": self.source,
            "cuts_policy_short": self.cuts_short,
        }


@dataclass
class SiteSection:
    """One office's part of the register (with several sites): its entries and its notice."""

    code: str
    name: str
    country: str
    timezone: str
    notice_version: notice.Version
    entries: list[Entry]

    def as_json(self) -> dict[str, Any]:
        """`{"site", "notice", "entries"}`: the entries in the shape of the top level's."""
        return {
            "site": {
                "code": self.code,
                "name": self.name,
                "country": self.country,
                "timezone": self.timezone,
            },
            "notice": self.notice_version.as_json(),
            "entries": [e.as_json() for e in self.entries],
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
    # With several sites: each site's entries (`entries` above: the kinds that belong to none).
    sites: list[SiteSection] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many entries it has in all."""
        return len(self.entries) + sum(len(s.entries) for s in self.sites)

    def as_json(self) -> dict[str, Any]:
        """`{"generated_at", "controller", "contact", "dpo", "notice", "entries", "measures"}`,
        and with several sites `"sites": {CODE: {"site", "notice", "entries"}}`."""
        shown = {
            "generated_at": utc_text(self.generated_at),
            "controller": self.controller,
            "contact": self.contact,
            "dpo": self.dpo,
            "notice": self.notice_version.as_json(),
            "entries": [e.as_json() for e in self.entries],
            "measures": list(self.measures),
        }
        if self.sites:
            shown["sites"] = {s.code: s.as_json() for s in self.sites}
        return shown


def build(
    session: Session, settings: Settings, *, now: datetime, only: Site | None = None
) -> Register:
    """The register at `now`, from the policies in force, the settings and the database.

    One site: one entry per kind, under what is in force there. Several: one entry per kind and
    site (`sites`, each under its own policy and naming its country's ceiling) and, at the top,
    the kinds that belong to no site; `only` narrows it to one site.
    """
    every = offices.listing(session)
    common = _Common(session, settings, now)
    if len(every) != 1:
        sections = [_section(common, site) for site in every if only is None or site.id == only.id]
        organisation = _organisation(session, now)
        kinds = [k for k in registry.ALL if not k.per_site and k.name in organisation]
        entries = [common.entry(kind, organisation) for kind in kinds]
        version = notice.version(session, settings.privacy, now=now)
    else:
        sections, version = [], notice.version(session, settings.privacy, now=now, site=every[0])
        found = policies.at_site(session, every[0], now=now)
        entries = [
            common.entry(registry.get(p.kind), _Policy.of(p, every[0], named=False)) for p in found
        ]
    return Register(
        generated_at=now,
        controller=settings.privacy.controller,
        contact=settings.privacy.contact,
        dpo=settings.privacy.dpo,
        notice_version=version,
        entries=entries,
        measures=measures(session, settings),
        sites=sections,
    )


@dataclass(frozen=True)
class _Policy:
    """A kind's policy as an entry tells it: where, how long, waiting, from where, the limit."""

    duration: timedelta
    pending: policies.Pending | None
    site: Site | None = None  # None: the organisation's records (every site's, with one)
    source: str = "organisation"
    limit: LegalLimit | None = None

    @classmethod
    def of(cls, found: policies.InForce, site: Site, *, named: bool) -> _Policy:
        """From what is in force at `site`; `named` (several sites): the entry is the site's, and
        names its country's ceiling where one exists (one site: only where it cuts it short)."""
        limit = None
        if found.ceiling is not None and (named or found.capped):
            source = found.ceiling_source or ""
            limit = LegalLimit(site.country, found.ceiling, source, found.capped)
        return cls(found.duration, found.waiting, site if named else None, found.source, limit)


def _organisation(session: Session, now: datetime) -> dict[str, _Policy]:
    waiting = {p.kind: p for p in policies.pending(session, now=now)}
    return {
        kind: _Policy(duration, waiting.get(kind))
        for kind, duration in policies.in_force(session, now=now).items()
    }


class _Common:
    """What every entry of one register shares: the accounts, the kinds a restriction reaches."""

    def __init__(self, session: Session, settings: Settings, now: datetime) -> None:
        self.session, self.settings, self.now = session, settings, now
        self.reached = _reached_by_subjects()
        self.accounts = list(users.listing(session))

    def active_holds(self, site: Site | None) -> int:
        """Holds that protect now: at `site` (its own and the organisation's), or every one."""
        grace = self.settings.holds.release_grace
        where = None if site is None else row_id(site)
        return len(holds.listing(self.session, now=self.now, grace=grace, sites=where))

    def entry(self, kind: registry.Kind, policy: _Policy | dict[str, _Policy]) -> Entry:
        """The entry of `kind` under `policy` (a mapping: the organisation's, by kind)."""
        found = policy[kind.name] if isinstance(policy, dict) else policy
        site = found.site
        table = kind.table
        statement = select(func.count()).select_from(table)
        if site is not None:
            statement = statement.where(offices.narrow(table, row_id(site)))
        limit = None if kind.open_limit is None else getattr(self.settings.limits, kind.open_limit)
        return Entry(
            kind=kind.name,
            label=kind.label,
            purpose=kind.purpose,
            people=kind.people,
            data=kind.data,
            legal_basis=self.settings.privacy.basis(kind.name),
            recipients=[self.recipient(r, site) for r in kind.seen_by],
            retention=found.duration,
            clock=kind.clock_text,
            pending=found.pending,
            open_limit=limit,
            holdable=kind.holdable,
            active_holds=self.active_holds(site) if kind.holdable else 0,
            records=self.session.execute(statement).scalar_one(),
            restrictable=kind.name in self.reached,
            site=None if site is None else site.code,
            policy_from=found.source,
            legal_limit=found.limit,
        )

    def recipient(self, role: str, site: Site | None) -> str:
        """The role, who holds it (at `site`: everywhere or there) and how many web accounts."""
        if site is None:
            return _recipient(role, self.settings, _accounts_per_role(self.accounts))
        who = ROLE_NAMES.get(role, role)
        code = site.code
        roles = self.settings.roles
        if roles is None:
            given = "every user: no [roles] section"
        else:
            listed = [
                name
                for name in getattr(roles, role) + roles.admin
                if ":" not in name or name.rpartition(":")[2] == code
            ]
            given = ", ".join(listed) if listed else "nobody in [roles]"
        held = sum(1 for user in self.accounts if {role, f"{role}:{code}"} & users.roles_of(user))
        return f"{who} at {code} (role {role}: {given}; web accounts: {held})"


def _section(common: _Common, site: Site) -> SiteSection:
    session, now = common.session, common.now
    found = policies.at_site(session, site, now=now)
    entries = [
        common.entry(registry.get(p.kind), _Policy.of(p, site, named=True))
        for p in found
        if registry.get(p.kind).per_site
    ]
    return SiteSection(
        code=site.code,
        name=site.name,
        country=site.country,
        timezone=offices.zone_name(site, common.settings),
        notice_version=notice.version(session, common.settings.privacy, now=now, site=site),
        entries=entries,
    )


def _reached_by_subjects() -> set[str]:
    """The kinds a data subject reaches that a restriction hides."""
    found: set[str] = set()
    for kind in SUBJECT_KINDS:
        found.update(selections(Subject(kind, "-", "-")))
    return found & set(restriction.RESTRICTABLE)


def _accounts_per_role(accounts: list[User]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for user in accounts:
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
    held = accounts.get(role, 0)  # `users.roles_of` already gives an admin every role
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
    """What the templates need in display form; each site's times in its own zone."""

    def __init__(self, register: Register, site: tzinfo) -> None:
        self.r, self.site = register, site
        self.generated = site_text(register.generated_at, site)
        self.since = site_text(register.notice_version.since, site)
        self.zones = {s.code: zone(s.timezone) for s in register.sites}
        self.names = {s.code: s for s in register.sites}

    def _zone(self, entry: Entry) -> tzinfo:
        return self.site if entry.site is None else self.zones.get(entry.site, self.site)

    def notice_line(self) -> str:
        """Which notice is in force: the only site's, or (several) the organisation's."""
        which = (
            "Privacy notice in force"
            if not self.r.sites
            else ("Privacy notice of the organisation's policies")
        )
        return (
            f"{which}: version {self.r.notice_version.digest} (retention as in force since "
            f"{self.since})."
        )

    def office(self, section: SiteSection) -> str:
        """`ams: Amsterdam (NL, Europe/Amsterdam)`."""
        return f"{section.code}: {section.name} ({section.country}, {section.timezone})"

    def section_notice(self, section: SiteSection) -> str:
        """The notice in force at a site, with its version."""
        since = site_text(section.notice_version.since, zone(section.timezone))
        return (
            f"Privacy notice in force at {section.code}: version {section.notice_version.digest} "
            f"(retention as in force since {since}); `facility --site {section.code} notice` "
            "prints it."
        )

    def heading(self, entry: Entry) -> str:
        """`camera: camera segments`, or with several sites `camera at ams (Amsterdam): ...`."""
        if entry.site is None:
            return f"{entry.kind}: {entry.label}"
        name = self.names[entry.site].name if entry.site in self.names else entry.site
        return f"{entry.kind} at {entry.site} ({name}): {entry.label}"

    def where(self, entry: Entry) -> str:
        """The site an entry is about, and whose policy is in force there ("" for one site)."""
        if entry.site is None:
            return ""
        found = self.names.get(entry.site)
        office = entry.site if found is None else self.office(found)
        own = "its own policy" if entry.policy_from == "site" else "the organisation's policy"
        return f"{office}; retention: {own}"

    def pending(self, entry: Entry) -> str:
        """A shortening still waiting, as a sentence ("" when none)."""
        p = entry.pending
        if p is None:
            return ""
        return (
            f"shortened to {format_duration(p.duration)} ({notice.english(p.duration)}) from "
            f"{site_text(p.takes_effect, self._zone(entry))}, set by {p.set_by}"
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

    def rows(self, entry: Entry) -> list[list[str]]:
        """The entry's table: label, value."""
        rows = [["site", self.where(entry)]] if entry.site is not None else []
        rows += [
            ["purpose", entry.purpose],
            ["data subjects", entry.people],
            ["personal data", entry.data],
            ["legal basis", entry.legal_basis],
            ["recipients", "; ".join(entry.recipients)],
            ["retention", entry.retention_text()],
        ]
        if entry.legal_limit is not None:
            rows.append(["legal limit", entry.legal_limit.text()])
        if entry.pending is not None:
            rows.append(["shortening waiting", self.pending(entry)])
        if entry.open_limit is not None:
            rows.append(["open-record limit", self.limit(entry)])
        rows.append(["kept longer", self.exception(entry)])
        if entry.restrictable:
            rows.append(["restriction", "a restricted subject's records are shown to privacy only"])
        rows.append(["records now", str(entry.records)])
        return rows


def markdown(register: Register, site: tzinfo, zone_name: str) -> str:
    """The register as Markdown: one section per processing activity (with several sites, per
    site and kind, then the kinds that belong to no site), then the measures."""
    view = _View(register, site)
    out = [
        "# Register of processing activities (GDPR article 30)",
        "",
        f"Generated {view.generated} ({zone_name}). Controller: "
        f"{register.controller or '(not configured: privacy.controller)'}. Contact: "
        f"{register.contact or '(not configured: privacy.contact)'}. Data protection officer: "
        f"{register.dpo or '(none configured)'}. {view.notice_line()}",
    ]
    level = "##"
    for section in register.sites:
        out += ["", f"## Site {view.office(section)}", "", view.section_notice(section)]
        for entry in section.entries:
            out += ["", f"### {view.heading(entry)}", "", md_table(["", ""], view.rows(entry))]
    if register.sites and register.entries:
        out += ["", "## The whole organisation (kinds that belong to no site)"]
        level = "###"
    for entry in register.entries:
        out += ["", f"{level} {view.heading(entry)}", "", md_table(["", ""], view.rows(entry))]
    out += ["", "## Technical and organisational measures", ""]
    out += [f"- {m}" for m in register.measures]
    return "\n".join(out) + "\n"
