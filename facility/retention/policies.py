"""Retention policies: one duration per kind, kept in the database so every daemon agrees.

A change takes effect at the next purge and rewrites no rows: a record expires at
`retain_from + policy(kind)` under whatever policy is in force when the purge runs.

Per site: the organisation's policy of a kind (`policies`) is in force at every site that has
none of its own (`site_policies`). Legal ceilings (`legal_ceilings`, per country and kind, with
the law or guideline they come from) bound both: `set_policy` refuses a duration above the
ceiling of the site's country (for the organisation's: of every site that falls back to it), and
what is in force at a site is never longer than its country's ceiling (`for_site`), so a ceiling
lowered later, or a site moved to another country, takes effect at the next purge. Only an
incident hold keeps a record longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from facility.errors import InputError
from facility.settings import Retention
from facility.store import kinds
from facility.store.models import LegalCeiling, Policy, Site, SitePolicy, row_id
from facility.timefmt import utc_text
from facility.timeutil import format_duration
from facility.trail import audit

# A century: longer is a typo, and `now - policy` must stay a representable instant.
LONGEST = timedelta(days=36_500)


def seed(session: Session, retention: Retention, *, now: datetime, actor: str) -> list[str]:
    """Insert the configured policy of every kind that has none yet; return the kinds seeded."""
    existing = set(session.exec(select(Policy.kind)).all())
    seeded = []
    for kind in kinds.NAMES:
        if kind in existing:
            continue
        seconds = int(getattr(retention, kind).total_seconds())
        session.add(Policy(kind=kind, seconds=seconds, changed_by=actor, changed_at=now))
        seeded.append(kind)
    if seeded:
        policies = {k: int(getattr(retention, k).total_seconds()) for k in seeded}
        audit.append(session, now=now, actor=actor, action="policy.seed", seconds=policies)
    return seeded


def current(session: Session) -> dict[str, timedelta]:
    """The organisation's policy of every kind (what a site without its own has)."""
    return {p.kind: timedelta(seconds=p.seconds) for p in session.exec(select(Policy)).all()}


@dataclass(frozen=True)
class InForce:
    """A kind's policy in force at a site: where it comes from, and the ceiling that bounds it."""

    kind: str
    set_to: timedelta  # the site's own policy, else the organisation's
    source: str  # "site" or "organisation"
    changed_by: str
    changed_at: datetime
    ceiling: timedelta | None = None  # the site's country's legal ceiling, if any
    ceiling_source: str | None = None

    @property
    def duration(self) -> timedelta:
        """What the purge keeps it for: the policy, never longer than the ceiling."""
        return self.set_to if self.ceiling is None else min(self.set_to, self.ceiling)

    @property
    def capped(self) -> bool:
        """Whether the ceiling, not the policy, decides (a ceiling lowered after the policy)."""
        return self.ceiling is not None and self.set_to > self.ceiling

    def as_json(self) -> dict[str, object]:
        """`policy show --site`'s item: `policy show`'s keys, where it comes from, the ceiling."""
        return {
            "kind": self.kind,
            "duration": format_duration(self.duration),
            "seconds": int(self.duration.total_seconds()),
            "changed_by": self.changed_by,
            "changed_at": utc_text(self.changed_at),
            "from": self.source,
            "set_seconds": int(self.set_to.total_seconds()),
            "ceiling_seconds": None if self.ceiling is None else int(self.ceiling.total_seconds()),
            "ceiling_source": self.ceiling_source,
        }


def in_force(session: Session, site: Site) -> list[InForce]:
    """Every kind's policy at `site`, in the registry's order (kinds with no policy left out)."""
    default = {p.kind: p for p in session.exec(select(Policy)).all()}
    own = {
        p.kind: p
        for p in session.exec(select(SitePolicy).where(SitePolicy.site_id == row_id(site)))
    }
    ceilings = {
        c.kind: c
        for c in session.exec(select(LegalCeiling).where(LegalCeiling.country == site.country))
    }
    found = []
    for kind in kinds.NAMES:
        row: Policy | SitePolicy | None = own.get(kind) or default.get(kind)
        if row is None:
            continue
        ceiling = ceilings.get(kind)
        found.append(
            InForce(
                kind=kind,
                set_to=timedelta(seconds=row.seconds),
                source="site" if kind in own else "organisation",
                changed_by=row.changed_by,
                changed_at=row.changed_at,
                ceiling=None if ceiling is None else timedelta(seconds=ceiling.max_seconds),
                ceiling_source=None if ceiling is None else ceiling.source,
            )
        )
    return found


def for_site(session: Session, site: Site) -> dict[str, timedelta]:
    """What the purge keeps each kind for at `site` (`InForce.duration`)."""
    return {p.kind: p.duration for p in in_force(session, site)}


def over_ceilings(session: Session, site: Site) -> list[str]:
    """What a person should be told about policies of `site` that its ceilings cut short."""
    return [
        f"{site.code}: {p.kind} is set to {format_duration(p.set_to)}, above {site.country}'s "
        f"legal ceiling of {format_duration(p.ceiling)} ({p.ceiling_source}); the ceiling is in "
        "force: lower the policy to match"
        for p in in_force(session, site)
        if p.capped and p.ceiling is not None
    ]


@dataclass(frozen=True)
class Change:
    """One policy change: the kind, and its duration before and after."""

    kind: str
    old: timedelta
    new: timedelta

    @property
    def shortens(self) -> bool:
        """Whether records will expire sooner than before."""
        return self.new < self.old


def check_kind(kind: str) -> str:
    """`kind` if it is a record kind; InputError naming KIND otherwise."""
    if kind not in kinds.NAMES:
        raise InputError(f"KIND: {kind!r} is not a kind (one of {', '.join(kinds.NAMES)})")
    return kind


def check_duration(duration: timedelta) -> timedelta:
    """`duration` if it can be a policy: whole seconds, at most a century."""
    if duration < timedelta(0) or duration > LONGEST:
        raise InputError(f"DURATION: {format_duration(duration)} is not between 0s and 36500d")
    if duration.microseconds:
        raise InputError("DURATION: a policy is a whole number of seconds")
    return duration


def policy_of(session: Session, kind: str, site: Site | None = None) -> timedelta:
    """The policy set for `kind` (at `site`: its own, else the organisation's); InputError when
    it has none (database not initialised)."""
    check_kind(kind)
    if site is not None:
        own = session.get(SitePolicy, (row_id(site), kind))
        if own is not None:
            return timedelta(seconds=own.seconds)
    row = session.get(Policy, kind)
    if row is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    return timedelta(seconds=row.seconds)


def expiring_if(
    session: Session,
    kind: str,
    new_duration: timedelta,
    *,
    now: datetime,
    site: Site | None = None,
) -> int:
    """How many records of `kind` the next purge would expire under `new_duration` and not now
    (at `site`, or at every site that falls back to the organisation's policy).

    Holds are not considered: held records are counted too, so this is an upper bound.
    """
    old = policy_of(session, kind, site)
    if new_duration >= old:
        return 0
    declared = kinds.get(kind)
    clock = declared.clock_column
    statement = select(func.count()).select_from(declared.table)
    statement = statement.where(clock <= now - new_duration, clock > now - old)
    # A kind that belongs to no site is the organisation's alone, under its policy.
    if declared.per_site and site is not None:
        statement = statement.where(declared.table.c.site_id == row_id(site))
    elif declared.per_site:
        statement = statement.where(declared.table.c.site_id.not_in(_own_policy_sites(kind)))
    return session.exec(statement).one()


def _own_policy_sites(kind: str) -> SelectOfScalar[int]:
    return select(SitePolicy.site_id).where(SitePolicy.kind == kind)


def check_ceiling(session: Session, kind: str, duration: timedelta, site: Site | None) -> None:
    """InputError naming the ceiling and its source when `duration` exceeds one that binds.

    A site's policy is bound by its country's ceiling; the organisation's by the ceiling of every
    site that has no policy of its own for `kind`.
    """
    if site is not None:
        bound = [site]
    else:
        own = set(session.exec(_own_policy_sites(kind)).all())
        bound = [s for s in session.exec(select(Site).order_by(Site.code)) if s.id not in own]
    countries = {s.country: s for s in bound}
    if not countries:
        return
    ceilings = session.exec(
        select(LegalCeiling).where(
            LegalCeiling.kind == kind, col(LegalCeiling.country).in_(sorted(countries))
        )
    ).all()
    for ceiling in sorted(ceilings, key=lambda c: c.max_seconds):
        if duration.total_seconds() > ceiling.max_seconds:
            where = countries[ceiling.country]
            whose = (
                f"site {where.code}" if site is not None else f"site {where.code}, which follows it"
            )
            raise InputError(
                f"DURATION: {format_duration(duration)} is above the legal ceiling for {kind} in "
                f"{ceiling.country} ({whose}): at most "
                f"{format_duration(timedelta(seconds=ceiling.max_seconds))}, {ceiling.source}"
            )


def set_policy(
    session: Session,
    kind: str,
    duration: timedelta,
    *,
    now: datetime,
    actor: str,
    reason: str,
    site: Site | None = None,
) -> Change:
    """Set the policy of `kind` (at `site`, or the organisation's) and audit the old and new value
    with the reason; InputError above a legal ceiling that binds it (`check_ceiling`)."""
    check_kind(kind)
    check_duration(duration)
    if site is not None and not kinds.get(kind).per_site:
        raise InputError(
            f"--site: {kind} belong to no site; set the organisation's policy (without --site)"
        )
    reason = " ".join(reason.split())
    if not reason:
        raise InputError("--reason: say why the policy changes")
    check_ceiling(session, kind, duration, site)
    # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises): two changes at
    # once must each audit the value they really replaced.
    default = session.exec(select(Policy).where(Policy.kind == kind).with_for_update()).first()
    if default is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    row: Policy | SitePolicy = default
    pinned = False  # a site's first policy of its own, even if it equals the organisation's
    if site is not None:
        own = session.exec(
            select(SitePolicy)
            .where(SitePolicy.site_id == row_id(site), SitePolicy.kind == kind)
            .with_for_update()
        ).first()
        pinned = own is None
        row = own or SitePolicy(
            site_id=row_id(site),
            kind=kind,
            seconds=default.seconds,
            changed_by=default.changed_by,
            changed_at=default.changed_at,
        )
    change = Change(kind, timedelta(seconds=row.seconds), duration)
    if change.new == change.old and not pinned:
        return change
    row.seconds, row.changed_by, row.changed_at = int(duration.total_seconds()), actor, now
    session.add(row)
    where = {} if site is None else {"site": site.code}
    audit.append(
        session,
        now=now,
        actor=actor,
        action="policy.set",
        kind=kind,
        old_seconds=int(change.old.total_seconds()),
        new_seconds=row.seconds,
        reason=reason,
        **where,
    )
    return change


def ceilings(session: Session) -> list[LegalCeiling]:
    """Every legal ceiling, by country and kind."""
    statement = select(LegalCeiling).order_by(col(LegalCeiling.country), col(LegalCeiling.kind))
    return list(session.exec(statement).all())


def set_ceiling(
    session: Session,
    country: str,
    kind: str,
    duration: timedelta,
    *,
    source: str,
    now: datetime,
    actor: str,
) -> tuple[timedelta | None, list[str]]:
    """Set a country's legal ceiling for a kind (audited); return the old one and what the new
    one cuts short (policies above it, which the ceiling now bounds)."""
    check_kind(kind)
    check_duration(duration)
    cited = " ".join(source.split())
    if not cited:
        raise InputError("--source: name the law or guideline the ceiling comes from")
    row = session.get(LegalCeiling, (country, kind))
    old = None if row is None else timedelta(seconds=row.max_seconds)
    row = row or LegalCeiling(
        country=country, kind=kind, max_seconds=0, source="", changed_by=actor, changed_at=now
    )
    row.max_seconds, row.source = int(duration.total_seconds()), cited
    row.changed_by, row.changed_at = actor, now
    session.add(row)
    session.flush()
    audit.append(
        session,
        now=now,
        actor=actor,
        action="policy.ceiling",
        country=country,
        kind=kind,
        old_seconds=None if old is None else int(old.total_seconds()),
        new_seconds=row.max_seconds,
        source=cited,
    )
    affected = session.exec(select(Site).where(Site.country == country).order_by(Site.code))
    return old, [line for site in affected for line in over_ceilings(session, site) if kind in line]


def drift(
    session: Session, configured: dict[str, timedelta], site: Site | None = None
) -> list[Change]:
    """Where the configuration's retention differs from the policy set (old: stored), at `site`
    (its own or the organisation's) or the organisation's."""
    stored = current(session)
    if site is not None:
        own = session.exec(select(SitePolicy).where(SitePolicy.site_id == row_id(site))).all()
        stored |= {p.kind: timedelta(seconds=p.seconds) for p in own}
    return [
        Change(kind, stored[kind], configured[kind])
        for kind in kinds.NAMES
        if kind in configured and kind in stored and stored[kind] != configured[kind]
    ]


def describe_drift(changes: list[Change]) -> str:
    """One line naming, for each kind, the configured value and the one in the database."""
    return "; ".join(
        f"retention.{c.kind} = {format_duration(c.new)} in the configuration, "
        f"{format_duration(c.old)} in the database"
        for c in changes
    )


def site_rows(session: Session) -> list[SitePolicy]:
    """Every site's own policies, by site and in the registry's order."""
    found = session.exec(select(SitePolicy)).all()
    order = {kind: i for i, kind in enumerate(kinds.NAMES)}
    return sorted(found, key=lambda p: (p.site_id, order.get(p.kind, len(order))))


def rows(session: Session) -> list[Policy]:
    """Every kind's organisation policy row, in the registry's order."""
    found = {p.kind: p for p in session.exec(select(Policy)).all()}
    return [found[k] for k in kinds.NAMES if k in found]
