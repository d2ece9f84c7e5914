"""Retention policies: one duration per kind, kept in the database so every daemon agrees.

A change takes effect at the next purge and rewrites no rows: a record expires at
`retain_from + policy(kind)` under whatever policy is in force when the purge runs.

A shortening is guarded: it waits `policy.shortening_delay` (24 h) before it is in force, so a
mistaken one can be taken back (set the old value again) before anything is deleted; an admin
can apply it at once with a reason (`apply_now`). Until then the row keeps the longer duration
in force and the shorter one as pending (`pending_seconds` from `pending_from`). Every reader
asks `in_force(now)`, which counts a pending shortening only once its instant has passed, and
the purge first makes such shortenings the stored policy (`settle`, audited).

Per site: the organisation's policy of a kind (`policies`) is in force at every site that has
none of its own (`site_policies`, guarded the same way). Legal ceilings (`legal_ceilings`, per
country and kind, with the law or guideline they come from) bound both: `set_policy` refuses a
duration above the ceiling of the site's country (for the organisation's: of every site that
falls back to it), and what is in force at a site is never longer than its country's ceiling
(`for_site`), so a ceiling lowered later, or a site moved to another country, takes effect at the
next purge. Only an incident hold keeps a record longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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

# A policy row: the organisation's, or a site's own (both can wait for a shortening).
Row = Policy | SitePolicy

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
    """The stored policy of every kind, a pending shortening not counted: never shorter than the
    one in force. Who decides what to delete or report asks `in_force` instead."""
    return {p.kind: timedelta(seconds=p.seconds) for p in session.exec(select(Policy)).all()}


def in_force(session: Session, *, now: datetime) -> dict[str, timedelta]:
    """The policy in force at `now` for every kind: a shortening once its delay has passed."""
    return {p.kind: effective(p, now=now) for p in session.exec(select(Policy)).all()}


def effective(row: Row, *, now: datetime) -> timedelta:
    """The duration `row` puts in force at `now`."""
    if row.pending_seconds is not None and row.pending_from is not None and row.pending_from <= now:
        return timedelta(seconds=row.pending_seconds)
    return timedelta(seconds=row.seconds)


@dataclass(frozen=True)
class Pending:
    """A shortening waiting for its delay: the kind, the new duration, when, and who set it."""

    kind: str
    duration: timedelta
    takes_effect: datetime
    set_by: str

    def as_json(self) -> dict[str, Any]:
        """`{"duration", "seconds", "takes_effect", "set_by"}`."""
        return {
            "duration": format_duration(self.duration),
            "seconds": int(self.duration.total_seconds()),
            "takes_effect": utc_text(self.takes_effect),
            "set_by": self.set_by,
        }


def pending_of(row: Row, *, now: datetime) -> Pending | None:
    """The shortening `row` waits for at `now`, if any (one whose time has come is in force)."""
    if row.pending_seconds is None or row.pending_from is None or row.pending_from <= now:
        return None
    return Pending(
        row.kind, timedelta(seconds=row.pending_seconds), row.pending_from, row.pending_by or ""
    )


def pending(session: Session, *, now: datetime) -> list[Pending]:
    """Every shortening still waiting at `now`, in the registry's order."""
    found = [pending_of(row, now=now) for row in rows(session)]
    return [p for p in found if p is not None]


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
    ceiling_since: datetime | None = None  # when the ceiling was last set
    # A shortening still waiting, of the policy it follows (the site's own, else the
    # organisation's), that will shorten what is in force (with `now`).
    waiting: Pending | None = None
    since: datetime | None = None  # when what is in force took effect (with `now`)

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
            "pending": None if self.waiting is None else self.waiting.as_json(),
        }


@dataclass(frozen=True)
class Stored:
    """The policy rows and legal ceilings `at_site` works from: the organisation's policies by
    kind, each site's own by site id and kind, and the ceilings by country and kind."""

    default: dict[str, Policy]
    own: dict[int, dict[str, SitePolicy]]
    ceilings: dict[str, dict[str, LegalCeiling]]


def stored(session: Session, site: Site | None = None) -> Stored:
    """The rows `at_site` needs for `site`, or for every site (three statements either way)."""
    own_rows = select(SitePolicy)
    ceiling_rows = select(LegalCeiling)
    if site is not None:
        own_rows = own_rows.where(SitePolicy.site_id == row_id(site))
        ceiling_rows = ceiling_rows.where(LegalCeiling.country == site.country)
    found = Stored(
        default={p.kind: p for p in session.exec(select(Policy)).all()}, own={}, ceilings={}
    )
    for own in session.exec(own_rows):
        found.own.setdefault(own.site_id, {})[own.kind] = own
    for ceiling in session.exec(ceiling_rows):
        found.ceilings.setdefault(ceiling.country, {})[ceiling.kind] = ceiling
    return found


def at_site(session: Session, site: Site, *, now: datetime | None = None) -> list[InForce]:
    """Every kind's policy at `site` in force at `now` (without `now`: the stored ones), in the
    registry's order (kinds with no policy left out)."""
    return in_force_at(stored(session, site), site, now=now)


def in_force_at(rows: Stored, site: Site, *, now: datetime | None = None) -> list[InForce]:
    """`at_site` from rows already read (`stored`): many sites' policies from one read."""
    default = rows.default
    own = rows.own.get(row_id(site), {})
    ceilings = rows.ceilings.get(site.country, {})
    found = []
    for kind in kinds.NAMES:
        row: Policy | SitePolicy | None = own.get(kind) or default.get(kind)
        if row is None:
            continue
        ceiling = ceilings.get(kind)
        waiting = None if now is None else pending_of(row, now=now)
        if waiting is not None and ceiling is not None:
            # A shortening to no less than the ceiling changes nothing: the ceiling decides.
            waiting = waiting if waiting.duration.total_seconds() < ceiling.max_seconds else None
        found.append(
            InForce(
                kind=kind,
                set_to=timedelta(seconds=row.seconds) if now is None else effective(row, now=now),
                source="site" if kind in own else "organisation",
                changed_by=row.changed_by,
                changed_at=row.changed_at,
                ceiling=None if ceiling is None else timedelta(seconds=ceiling.max_seconds),
                ceiling_source=None if ceiling is None else ceiling.source,
                ceiling_since=None if ceiling is None else ceiling.changed_at,
                waiting=waiting,
                since=None if now is None else _since(row, now),
            )
        )
    return found


def _since(row: Row, now: datetime) -> datetime:
    """When `row`'s duration in force at `now` took effect: its change, or a shortening's
    instant once it has passed."""
    passed = row.pending_from is not None and row.pending_from <= now
    return max(row.changed_at, row.pending_from) if passed and row.pending_from else row.changed_at


def for_site(session: Session, site: Site, *, now: datetime) -> dict[str, timedelta]:
    """What the purge keeps each kind for at `site` at `now` (`InForce.duration`)."""
    return {p.kind: p.duration for p in at_site(session, site, now=now)}


def for_sites(
    session: Session, every: list[Site], *, now: datetime
) -> dict[int, dict[str, timedelta]]:
    """`for_site` of each of these sites, by site id, from one read of the policies."""
    rows = stored(session)
    return {
        row_id(site): {p.kind: p.duration for p in in_force_at(rows, site, now=now)}
        for site in every
    }


def over_ceilings(session: Session, site: Site) -> list[str]:
    """What a person should be told about policies of `site` that its ceilings cut short."""
    return [
        f"{site.code}: {p.kind} is set to {format_duration(p.set_to)}, above {site.country}'s "
        f"legal ceiling of {format_duration(p.ceiling)} ({p.ceiling_source}); the ceiling is in "
        "force: lower the policy to match"
        for p in at_site(session, site)
        if p.capped and p.ceiling is not None
    ]


@dataclass(frozen=True)
class Change:
    """One policy change: the kind, its duration before and after, and when the new one is in
    force (None: at once; else a shortening waiting for its delay)."""

    kind: str
    old: timedelta
    new: timedelta
    takes_effect: datetime | None = None
    withdrawn: timedelta | None = None  # a pending shortening this change took back
    changed: bool = True  # False: the policy was already this (in force or waiting)

    @property
    def shortens(self) -> bool:
        """Whether records will expire sooner than before."""
        return self.new < self.old

    @property
    def waits(self) -> bool:
        """Whether the new duration waits for the shortening delay."""
        return self.takes_effect is not None


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


def policy_of(
    session: Session, kind: str, site: Site | None = None, *, now: datetime | None = None
) -> timedelta:
    """The policy of `kind` (at `site`: its own, else the organisation's) in force at `now`
    (without `now`: the stored one, never shorter); InputError when it has none (database not
    initialised)."""
    check_kind(kind)
    own = None if site is None else session.get(SitePolicy, (row_id(site), kind))
    row: Row | None = own or session.get(Policy, kind)
    if row is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    return timedelta(seconds=row.seconds) if now is None else effective(row, now=now)


def target_of(row: Row) -> timedelta:
    """Where `row` is heading: its pending shortening, else the policy in force."""
    seconds = row.seconds if row.pending_seconds is None else row.pending_seconds
    return timedelta(seconds=seconds)


def expiring_if(
    session: Session,
    kind: str,
    new_duration: timedelta,
    *,
    now: datetime,
    site: Site | None = None,
) -> int:
    """How many records of `kind` would expire under `new_duration` that the policy in force
    keeps now (at `site`, or at every site that falls back to the organisation's policy).

    Holds are not considered: held records are counted too, so this is an upper bound.
    """
    old = policy_of(session, kind, site, now=now)
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
    delay: timedelta,
    site: Site | None = None,
) -> Change:
    """Set the policy of `kind` (at `site`, or the organisation's) and audit the old and new value
    with the reason; InputError above a legal ceiling that binds it (`check_ceiling`).

    A lengthening (or a return to the duration in force) takes effect at once and withdraws any
    shortening still waiting. A shortening takes effect `delay` after `now` (at once when `delay`
    is zero): until then the longer policy stays in force.
    """
    check_kind(kind)
    check_duration(duration)
    if site is not None and not kinds.get(kind).per_site:
        raise InputError(
            f"--site: {kind} belong to no site; set the organisation's policy (without --site)"
        )
    reason = _reason(reason)
    check_ceiling(session, kind, duration, site)
    row, pinned = _locked_at(session, kind, site)
    settle_row(session, row, now=now, actor=actor)
    old = timedelta(seconds=row.seconds)
    waiting = pending_of(row, now=now)
    # Nothing new: the value in force, or the one already waiting (but a site's first policy of
    # its own is stored even when it equals the organisation's: it no longer follows it).
    if duration == target_of(row) and not pinned:
        takes_effect = None if waiting is None else waiting.takes_effect
        return Change(kind, old, duration, takes_effect, changed=False)
    details: dict[str, Any] = {}
    if waiting is not None:
        details["withdrawn_seconds"] = int(waiting.duration.total_seconds())
    seconds = int(duration.total_seconds())
    if duration >= old or delay <= timedelta(0):
        row.seconds, row.changed_by, row.changed_at = seconds, actor, now
        _clear_pending(row)
        change = Change(
            kind, old, duration, withdrawn=None if waiting is None else waiting.duration
        )
    else:
        row.pending_seconds, row.pending_from, row.pending_by = seconds, now + delay, actor
        details["takes_effect"] = utc_text(row.pending_from)
        change = Change(kind, old, duration, row.pending_from)
    session.add(row)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="policy.set",
        kind=kind,
        old_seconds=int(old.total_seconds()),
        new_seconds=seconds,
        reason=reason,
        **details,
        **({} if site is None else {"site": site.code}),
    )
    return change


def apply_now(
    session: Session,
    kind: str,
    *,
    now: datetime,
    actor: str,
    reason: str,
    site: Site | None = None,
) -> Change:
    """Put the shortening `kind` waits for (at `site`, or the organisation's) in force at once (an
    admin's decision), audited."""
    check_kind(kind)
    reason = _reason(reason)
    row, pinned = _locked_at(session, kind, site)
    if pinned:
        raise InputError(f"KIND: {kind} has no policy of its own at {site and site.code}")
    settle_row(session, row, now=now, actor=actor)
    waiting = pending_of(row, now=now)
    if waiting is None:
        raise InputError(f"KIND: no shortening of {kind} is waiting; nothing to apply")
    old = timedelta(seconds=row.seconds)
    row.seconds, row.changed_by, row.changed_at = int(waiting.duration.total_seconds()), actor, now
    _clear_pending(row)
    session.add(row)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="policy.apply",
        kind=kind,
        old_seconds=int(old.total_seconds()),
        new_seconds=row.seconds,
        set_by=waiting.set_by,
        was_due=utc_text(waiting.takes_effect),
        reason=reason,
        **({} if site is None else {"site": site.code}),
    )
    return Change(kind, old, waiting.duration)


def settle(session: Session, *, now: datetime, actor: str) -> list[Change]:
    """Make every shortening whose delay has passed the stored policy; audit each one."""
    due: list[Row] = [
        *session.exec(select(Policy).where(col(Policy.pending_from) <= now).with_for_update()),
        *session.exec(
            select(SitePolicy).where(col(SitePolicy.pending_from) <= now).with_for_update()
        ),
    ]
    found = [settle_row(session, row, now=now, actor=actor) for row in due]
    return [change for change in found if change is not None]


def settle_row(session: Session, row: Row, *, now: datetime, actor: str) -> Change | None:
    """If the shortening `row` waited for is due at `now`, store it as in force (audited)."""
    if row.pending_seconds is None or row.pending_from is None or row.pending_from > now:
        return None
    old, new = timedelta(seconds=row.seconds), timedelta(seconds=row.pending_seconds)
    # In force since its instant, by whoever set it: `policy show` tells the change as it was.
    row.seconds, row.changed_by, row.changed_at = (
        row.pending_seconds,
        row.pending_by or actor,
        row.pending_from,
    )
    effective_at = row.pending_from
    _clear_pending(row)
    session.add(row)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="policy.shortened",
        kind=row.kind,
        **({"site": _code(session, row.site_id)} if isinstance(row, SitePolicy) else {}),
        old_seconds=int(old.total_seconds()),
        new_seconds=row.seconds,
        in_force_since=utc_text(effective_at),
    )
    return Change(row.kind, old, new)


def _locked(session: Session, kind: str) -> Policy:
    # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises): two changes at
    # once must each audit the value they really replaced.
    row = session.exec(select(Policy).where(Policy.kind == kind).with_for_update()).first()
    if row is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    return row


def _locked_at(session: Session, kind: str, site: Site | None) -> tuple[Row, bool]:
    """The row to change, locked: the site's own (a new one, copying the organisation's stored
    policy, when it has none: then True), or the organisation's."""
    default = _locked(session, kind)
    if site is None:
        return default, False
    own = session.exec(
        select(SitePolicy)
        .where(SitePolicy.site_id == row_id(site), SitePolicy.kind == kind)
        .with_for_update()
    ).first()
    if own is not None:
        return own, False
    fresh = SitePolicy(
        site_id=row_id(site),
        kind=kind,
        seconds=default.seconds,
        changed_by=default.changed_by,
        changed_at=default.changed_at,
    )
    return fresh, True


def _code(session: Session, site_id: int) -> str:
    found = session.get(Site, site_id)
    return found.code if found is not None else str(site_id)


def _clear_pending(row: Row) -> None:
    row.pending_seconds = row.pending_from = row.pending_by = None


def _reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InputError("--reason: say why the policy changes")
    return cleaned


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
    """Where the configuration's retention differs from the database's (old: the stored policy,
    or the shortening it waits for), at `site` (its own or the organisation's) or the
    organisation's."""
    stored = {row.kind: target_of(row) for row in session.exec(select(Policy)).all()}
    if site is not None:
        own = session.exec(select(SitePolicy).where(SitePolicy.site_id == row_id(site))).all()
        stored |= {p.kind: target_of(p) for p in own}
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
    """Every kind's policy row, in the registry's order."""
    found = {p.kind: p for p in session.exec(select(Policy)).all()}
    return [found[k] for k in kinds.NAMES if k in found]
