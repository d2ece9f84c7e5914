"""Retention policies: one duration per kind, kept in the database so every daemon agrees."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from facility import audit
from facility.models import Policy
from facility.settings import KINDS, Retention


def seed(session: Session, retention: Retention, *, now: datetime, actor: str) -> list[str]:
    """Insert the configured policy of every kind that has none yet; return the kinds seeded."""
    existing = set(session.exec(select(Policy.kind)).all())
    seeded = []
    for kind in KINDS:
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
