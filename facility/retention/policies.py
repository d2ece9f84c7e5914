"""Retention policies: one duration per kind, kept in the database so every daemon agrees.

A change takes effect at the next purge and rewrites no rows: a record expires at
`retain_from + policy(kind)` under whatever policy is in force when the purge runs.

A shortening is guarded: it waits `policy.shortening_delay` (24 h) before it is in force, so a
mistaken one can be taken back (set the old value again) before anything is deleted; an admin
can apply it at once with a reason (`apply_now`). Until then the row keeps the longer duration
in force and the shorter one as pending (`pending_seconds` from `pending_from`). Every reader
asks `in_force(now)`, which counts a pending shortening only once its instant has passed, and
the purge first makes such shortenings the stored policy (`settle`, audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.settings import Retention
from facility.store import kinds
from facility.store.models import Policy
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
    """The stored policy of every kind, a pending shortening not counted: never shorter than the
    one in force. Who decides what to delete or report asks `in_force` instead."""
    return {p.kind: timedelta(seconds=p.seconds) for p in session.exec(select(Policy)).all()}


def in_force(session: Session, *, now: datetime) -> dict[str, timedelta]:
    """The policy in force at `now` for every kind: a shortening once its delay has passed."""
    return {p.kind: effective(p, now=now) for p in session.exec(select(Policy)).all()}


def effective(row: Policy, *, now: datetime) -> timedelta:
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


def pending_of(row: Policy, *, now: datetime) -> Pending | None:
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


def policy_of(session: Session, kind: str, *, now: datetime | None = None) -> timedelta:
    """The policy of `kind` in force at `now` (without `now`: the stored one, never shorter);
    InputError when it has none (database not initialised)."""
    row = session.get(Policy, check_kind(kind))
    if row is None:
        raise InputError(f"KIND: {kind} has no policy yet; run `facility init`")
    return timedelta(seconds=row.seconds) if now is None else effective(row, now=now)


def target_of(row: Policy) -> timedelta:
    """Where `row` is heading: its pending shortening, else the policy in force."""
    seconds = row.seconds if row.pending_seconds is None else row.pending_seconds
    return timedelta(seconds=seconds)


def expiring_if(session: Session, kind: str, new_duration: timedelta, *, now: datetime) -> int:
    """How many records of `kind` would expire under `new_duration` that the policy in force
    keeps now.

    Holds are not considered: held records are counted too, so this is an upper bound.
    """
    old = policy_of(session, kind, now=now)
    if new_duration >= old:
        return 0
    clock = kinds.get(kind).clock_column
    statement = select(func.count()).where(clock <= now - new_duration, clock > now - old)
    return session.exec(statement).one()


def set_policy(
    session: Session,
    kind: str,
    duration: timedelta,
    *,
    now: datetime,
    actor: str,
    reason: str,
    delay: timedelta,
) -> Change:
    """Set the policy of `kind` and audit the old and new value with the reason.

    A lengthening (or a return to the duration in force) takes effect at once and withdraws any
    shortening still waiting. A shortening takes effect `delay` after `now` (at once when `delay`
    is zero): until then the longer policy stays in force.
    """
    check_kind(kind)
    check_duration(duration)
    reason = _reason(reason)
    row = _locked(session, kind)
    settle_row(session, row, now=now, actor=actor)
    old = timedelta(seconds=row.seconds)
    waiting = pending_of(row, now=now)
    if duration == target_of(row):  # nothing new: the value in force, or the one already waiting
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
    )
    return change


def apply_now(session: Session, kind: str, *, now: datetime, actor: str, reason: str) -> Change:
    """Put the shortening `kind` waits for in force at once (an admin's decision), audited."""
    check_kind(kind)
    reason = _reason(reason)
    row = _locked(session, kind)
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
    )
    return Change(kind, old, waiting.duration)


def settle(session: Session, *, now: datetime, actor: str) -> list[Change]:
    """Make every shortening whose delay has passed the stored policy; audit each one."""
    due = session.exec(
        select(Policy).where(col(Policy.pending_from) <= now).with_for_update()
    ).all()
    found = [settle_row(session, row, now=now, actor=actor) for row in due]
    return [change for change in found if change is not None]


def settle_row(session: Session, row: Policy, *, now: datetime, actor: str) -> Change | None:
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


def _clear_pending(row: Policy) -> None:
    row.pending_seconds = row.pending_from = row.pending_by = None


def _reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InputError("--reason: say why the policy changes")
    return cleaned


def drift(session: Session, configured: dict[str, timedelta]) -> list[Change]:
    """Where the configuration's retention differs from the database's (old: the stored policy,
    or the shortening it waits for)."""
    stored = {row.kind: target_of(row) for row in session.exec(select(Policy)).all()}
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
