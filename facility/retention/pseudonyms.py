"""Released holds forget whom they were about: personal selectors become keyed hashes after grace.

A hold's scopes name people (a visitor's name key, a badge number, a MAC address). While the hold
protects (active, or released less than `holds.release_grace` ago) it needs them in the clear to
keep those records. Once its grace has passed it keeps nothing, and only its history stays: the
case, reason, window, who placed and released it and why, and which kinds it covered. Every purge
run then replaces each personal selector by `pseudonym:` and the subject's keyed hash
(`audit.subject_hash`, under `audit.key`, the hash the audit trail uses), and stamps
`pseudonymised_at`. The site holding the key can still answer "was I named in a hold?" (subject
export), and erasure replaces the hash too; without the key, the database names no one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlmodel import Session

from facility.store.models import Hold, HoldScope, table_of
from facility.trail import audit

# Scope kinds whose selector names a person or device, and the subject kind that names them.
PERSONAL = {"visits": "name", "badges": "badge", "wifi": "mac"}
SUBJECT_SCOPE = {subject: scope for scope, subject in PERSONAL.items()}
PREFIX = "pseudonym:"
ERASED = "erased"
_H = table_of(Hold)
_S = table_of(HoldScope)


def pseudonym(key: bytes, scope_kind: str, selector: str) -> str:
    """What a personal selector becomes once its hold's grace has passed."""
    return PREFIX + audit.subject_hash(key, PERSONAL[scope_kind], selector)


def _past_grace(now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """The hold was released and its grace is over: it protects nothing any more."""
    return and_(_H.c.released_at.is_not(None), _H.c.released_at <= now - grace)


def _personal_in_clear() -> ColumnElement[bool]:
    return and_(
        _S.c.kind.in_(PERSONAL), _S.c.selector.is_not(None), _S.c.pseudonymised_at.is_(None)
    )


def due(session: Session, *, now: datetime, grace: timedelta) -> bool:
    """Whether a released hold past its grace still has a personal selector in the clear."""
    statement = (
        select(_S.c.id)
        .join(_H, _S.c.hold_id == _H.c.id)
        .where(_past_grace(now, grace), _personal_in_clear())
        .limit(1)
    )
    return session.execute(statement).first() is not None


def pseudonymise_released(
    session: Session, *, now: datetime, grace: timedelta, key: bytes, actor: str
) -> int:
    """Pseudonymise the personal selectors of every hold whose grace has passed; audit the cases."""
    statement = (
        select(_S.c.id, _S.c.kind, _S.c.selector, _H.c.case)
        .join(_H, _S.c.hold_id == _H.c.id)
        .where(_past_grace(now, grace), _personal_in_clear())
        .order_by(_S.c.id)
    )
    rows = session.execute(statement).all()
    for scope_id, kind, selector, _case in rows:
        session.execute(
            update(_S)
            .where(_S.c.id == scope_id)
            .values(selector=pseudonym(key, kind, selector), pseudonymised_at=now)
        )
    if rows:
        audit.append(
            session,
            now=now,
            actor=actor,
            action="hold.pseudonymise",
            cases=sorted({case for *_, case in rows}),
            scopes=len(rows),
        )
    return len(rows)


@dataclass(frozen=True)
class Status:
    """The report's view: personal selectors in the clear, and those overdue for pseudonymising."""

    in_clear: int  # of holds that protect, or whose grace ended within one purge interval
    overdue: int  # of holds whose grace ended longer ago than one purge interval
    pseudonymised: int

    def as_json(self) -> dict[str, Any]:
        """Counts for `report --format json`."""
        return {
            "in_clear": self.in_clear,
            "overdue": self.overdue,
            "pseudonymised": self.pseudonymised,
        }


def status(session: Session, *, now: datetime, grace: timedelta, interval: timedelta) -> Status:
    """How many personal hold selectors are in the clear, overdue, and pseudonymised."""
    joined = _S.join(_H, _S.c.hold_id == _H.c.id)
    personal = and_(_S.c.kind.in_(PERSONAL), _S.c.selector.is_not(None))

    def _count(*conditions: ColumnElement[bool]) -> int:
        statement = select(func.count()).select_from(joined).where(personal, *conditions)
        counted: int = session.execute(statement).scalar_one()
        return counted

    clear = _count(_S.c.pseudonymised_at.is_(None))
    overdue = _count(_S.c.pseudonymised_at.is_(None), _past_grace(now, grace + interval))
    return Status(clear - overdue, overdue, _count(_S.c.pseudonymised_at.is_not(None)))


def scopes_naming(
    session: Session, subject_kind: str, subject_key: str, *, key: bytes
) -> list[dict[str, Any]]:
    """The hold scopes that name a subject, in the clear or by its pseudonym."""
    scope_kind = SUBJECT_SCOPE.get(subject_kind)
    if scope_kind is None:
        return []
    named = _S.c.selector.in_((subject_key, pseudonym(key, scope_kind, subject_key)))
    statement = (
        select(
            _S.c.id, _H.c.case, _S.c.kind, _S.c.selector, _S.c.pseudonymised_at, _H.c.released_at
        )
        .join(_H, _S.c.hold_id == _H.c.id)
        .where(_S.c.kind == scope_kind, named)
        .order_by(_H.c.case, _S.c.id)
    )
    return [
        {
            "id": scope_id,
            "case": case,
            "kind": kind,
            "selector": selector,
            "pseudonymised": pseudonymised_at is not None,
            "hold": "released" if released_at is not None else "active",
        }
        for scope_id, case, kind, selector, pseudonymised_at, released_at in session.execute(
            statement
        )
    ]


def erase_pseudonyms(session: Session, scope_ids: list[int]) -> int:
    """Cut the link from pseudonymised scopes to their subject (erasure); others are untouched."""
    if not scope_ids:
        return 0
    statement = (
        update(_S)
        .where(_S.c.id.in_(scope_ids), _S.c.pseudonymised_at.is_not(None))
        .values(selector=PREFIX + ERASED)
    )
    return session.exec(statement).rowcount
