"""What the store holds, as the daemon's metrics show it: per kind, how many records, how old the
oldest, the policy it is held to, and how many are overdue and not held.

A few indexed statements per kind (a count, a minimum, a range), cheap enough to run on each
scrape of a site's store; the overdue rule is the report's (`report.overdue_condition`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from facility.privacy import report
from facility.retention import policies
from facility.store import kinds as registry


@dataclass(frozen=True)
class KindFigures:
    """One kind's figures at one instant."""

    kind: str
    records: int
    oldest_age: timedelta | None  # since the oldest retention clock started; None: none started
    policy: timedelta | None
    overdue: int  # expired for longer than a purge interval and not held


def kinds(
    session: Session, *, now: datetime, interval: timedelta, grace: timedelta
) -> list[KindFigures]:
    """Every kind's figures at `now`."""
    policy = policies.current(session)
    found = []
    for declared in registry.ALL:
        kind, table = declared.name, declared.table
        records: int = session.execute(select(func.count()).select_from(table)).scalar_one()
        oldest: datetime | None = session.execute(
            select(func.min(declared.clock_column))
        ).scalar_one()
        overdue = 0
        if kind in policy:
            condition = report.overdue_condition(kind, now, policy[kind], interval)
            kept = report.kept_by_hold(declared, now, grace)
            overdue = session.execute(
                select(func.count()).select_from(table).where(condition, ~kept)
            ).scalar_one()
        found.append(
            KindFigures(
                kind=kind,
                records=records,
                oldest_age=None if oldest is None else now - oldest,
                policy=policy.get(kind),
                overdue=overdue,
            )
        )
    return found
