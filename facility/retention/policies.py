"""Retention policies: one duration per kind, kept in the database so every daemon agrees.

A change takes effect at the next purge and rewrites no rows: a record expires at
`retain_from + policy(kind)` under whatever policy is in force when the purge runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from facility.errors import InputError
from facility.settings import Retention
from facility.store import kinds
from facility.store.models import Policy
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
    """The policy in force for every kind."""
    return {p.kind: timedelta(seconds=p.seconds) for p in session.exec(select(Policy)).all()}


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


def policy_of(session: Session, kind: str) -> timedelta:
    """The policy in force for `kind`; InputError when it has none (database not initialised)."""
    row = session.get(Policy, check_kind(kind))
    if row is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    return timedelta(seconds=row.seconds)


def expiring_if(session: Session, kind: str, new_duration: timedelta, *, now: datetime) -> int:
    """How many records of `kind` the next purge would expire under `new_duration` and not now.

    Holds are not considered: held records are counted too, so this is an upper bound.
    """
    old = policy_of(session, kind)
    if new_duration >= old:
        return 0
    clock = kinds.get(kind).clock_column
    statement = select(func.count()).where(clock <= now - new_duration, clock > now - old)
    return session.exec(statement).one()


def set_policy(
    session: Session, kind: str, duration: timedelta, *, now: datetime, actor: str, reason: str
) -> Change:
    """Set the policy of `kind` and audit the old and new value with the reason."""
    check_kind(kind)
    check_duration(duration)
    reason = " ".join(reason.split())
    if not reason:
        raise InputError("--reason: say why the policy changes")
    # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises): two changes at
    # once must each audit the value they really replaced.
    row = session.exec(select(Policy).where(Policy.kind == kind).with_for_update()).first()
    if row is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    change = Change(kind, timedelta(seconds=row.seconds), duration)
    if change.new == change.old:
        return change
    row.seconds, row.changed_by, row.changed_at = int(duration.total_seconds()), actor, now
    session.add(row)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="policy.set",
        kind=kind,
        old_seconds=int(change.old.total_seconds()),
        new_seconds=row.seconds,
        reason=reason,
    )
    return change


def drift(session: Session, configured: dict[str, timedelta]) -> list[Change]:
    """Where the configuration's retention differs from the policy in force (old: stored)."""
    stored = current(session)
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


def rows(session: Session) -> list[Policy]:
    """Every kind's policy row, in the registry's order."""
    found = {p.kind: p for p in session.exec(select(Policy)).all()}
    return [found[k] for k in kinds.NAMES if k in found]
