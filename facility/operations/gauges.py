"""What the store holds, as the daemon's metrics show it: per site and kind, how many records, how
old the oldest, the policy in force there, and how many are overdue and not held.

A few indexed statements per kind (a count, a minimum, a range), cheap enough to run on each
scrape of a site's store; the overdue rule is the report's (`report.overdue_condition`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, true
from sqlmodel import Session

from facility import sites
from facility.privacy import report
from facility.retention import policies
from facility.store import kinds as registry
from facility.store.kinds import Kind
from facility.store.models import Site, row_id


@dataclass(frozen=True)
class KindFigures:
    """One kind's figures at one site (or the organisation's, for a kind of no site) at one
    instant."""

    kind: str
    records: int
    oldest_age: timedelta | None  # since the oldest retention clock started; None: none started
    policy: timedelta | None
    overdue: int  # expired for longer than a purge interval and not held
    site: str = ""  # the site's code; "" for a kind that belongs to no site (the organisation's)


def kinds(
    session: Session,
    *,
    now: datetime,
    interval: timedelta,
    grace: timedelta,
    at: Sequence[Site] | None = None,
) -> list[KindFigures]:
    """Every kind's figures at `now`: per site (those `at`, else every site) under the site's
    policy in force, and once for the kinds that belong to no site, under the organisation's."""
    chosen = sites.listing(session) if at is None else list(at)
    organisation = policies.in_force(session, now=now)
    found = []
    for site in chosen:
        policy = policies.for_site(session, site, now=now)
        found += [
            _figures(session, declared, policy.get(declared.name), site, now, interval, grace)
            for declared in registry.ALL
            if declared.per_site
        ]
    found += [
        _figures(session, declared, organisation.get(declared.name), None, now, interval, grace)
        for declared in registry.ALL
        if not declared.per_site
    ]
    return found


def _figures(
    session: Session,
    declared: Kind,
    policy: timedelta | None,
    site: Site | None,
    now: datetime,
    interval: timedelta,
    grace: timedelta,
) -> KindFigures:
    kind, table = declared.name, declared.table
    here = true() if site is None else table.c.site_id == row_id(site)
    records: int = session.execute(select(func.count()).select_from(table).where(here)).scalar_one()
    oldest: datetime | None = session.execute(
        select(func.min(declared.clock_column)).where(here)
    ).scalar_one()
    overdue = 0
    if policy is not None:
        condition = report.overdue_condition(kind, now, policy, interval)
        kept = report.kept_by_hold(declared, now, grace)
        overdue = session.execute(
            select(func.count()).select_from(table).where(here, condition, ~kept)
        ).scalar_one()
    return KindFigures(
        kind=kind,
        records=records,
        oldest_age=None if oldest is None else now - oldest,
        policy=policy,
        overdue=overdue,
        site="" if site is None else site.code,
    )
