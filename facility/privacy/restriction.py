"""Restriction of processing (GDPR article 18): a person's records kept, but shown to no one else.

`subject restrict (--name|--mac|--badge) --reason R` marks a subject restricted; `subject
unrestrict` lifts it. A restricted subject's records are stored and purged on their policy as
ever, and shown only to whoever holds the privacy role (`admin` holds every role): every other
role's history, exports and hold listings leave them out. The one exception is safety: the
evacuation list and the roll call still show a restricted person who is on site (article 18(2):
the protection of the rights of another person, and vital interests).

This module is the one place that decides it, for everyone to call:

- `restricted(kind, table)`: the SQL condition "this record of `kind` belongs to a restricted
  subject", on the kind's table or an alias of it;
- `visible(kind, roles, table)`: the filter a listing adds for the roles of whoever asks (true for
  the privacy role);
- `sees_restricted(roles)`, `is_restricted(session, kind, id)`, `hide(session, kind, ids,
  roles)`: the same for one record or a list of ids already fetched.

A subject reaches records as `subject export` does (`subjects.selections`): a name its visits,
the badge loans of those visits and their door events during the loans; a badge its loans and
door events; a MAC its leases. Camera segments name no one and are never restricted.

A restriction names the subject (name key, MAC or badge) and so must end too: it is deleted when
lifted, and by the purge (and an erasure) once nothing of its subject is stored any more
(`forget_ended`). The audit trail names the subject by its keyed hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, exists, false, func, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from facility.accounts import permissions
from facility.errors import FacilityError
from facility.privacy.subjects import Subject, check_reason, selections
from facility.store import kinds as registry
from facility.store.models import Restriction, table_of
from facility.timefmt import utc_text
from facility.trail import audit

_R = table_of(Restriction)
_V = registry.get("visits").table
_L = registry.get("badges").table
# The role that sees restricted records (and `admin`, who holds every role).
SEES_RESTRICTED = "privacy"
# The kinds `restricted` hides (`Kind.restrictable`): the records of what a person did on the
# premises. The desk's own records (expected visits, the hosts directory, notifications) are not.
RESTRICTABLE = registry.RESTRICTABLE


def _keys(subject_kind: str) -> Select[Any]:
    return select(_R.c.subject_key).where(_R.c.subject_kind == subject_kind)


def restricted(kind: str, table: FromClause | None = None) -> ColumnElement[bool]:
    """The record of `kind` in `table` (its own table, or an alias) belongs to a restricted subject.

    False for a kind no subject reaches (camera segments, rejected inputs, requests).
    """
    t = registry.get(kind).table if table is None else table
    names = _keys("name")
    if kind == "visits":
        return t.c.name_key.in_(names)
    if kind == "badges":
        visits = select(_V.c.id).where(_V.c.name_key.in_(names))
        return or_(t.c.badge.in_(_keys("badge")), t.c.visit_id.in_(visits))
    if kind == "door_events":
        # As `subjects` links them: an event of a badge during a loan to a restricted visit.
        loan, visit = _L.alias("restricted_loan"), _V.alias("restricted_visit")
        during = (
            exists()
            .where(
                loan.c.badge == t.c.badge,
                t.c.at >= loan.c.issued_at,
                or_(loan.c.returned_at.is_(None), t.c.at <= loan.c.returned_at),
                visit.c.id == loan.c.visit_id,
                visit.c.name_key.in_(names),
            )
            .correlate(t)
        )
        return or_(t.c.badge.in_(_keys("badge")), during)
    if kind == "wifi":
        return t.c.mac.in_(_keys("mac"))
    return false()


def sees_restricted(roles: Iterable[str]) -> bool:
    """Whether someone holding `roles` may see restricted records (the privacy role)."""
    return SEES_RESTRICTED in permissions.held(roles)


def visible(
    kind: str, roles: Iterable[str], table: FromClause | None = None
) -> ColumnElement[bool]:
    """The condition a listing of `kind` adds for whoever holds `roles`."""
    if sees_restricted(roles):
        return true()
    return ~restricted(kind, table)


def is_restricted(session: Session, kind: str, row_id: int) -> bool:
    """Whether the record `row_id` of `kind` belongs to a restricted subject."""
    table = registry.get(kind).table
    statement = select(table.c.id).where(table.c.id == row_id, restricted(kind, table))
    return session.execute(statement).first() is not None


def hide(session: Session, kind: str, ids: Sequence[int], roles: Iterable[str]) -> list[int]:
    """Of `ids` (records of `kind`), those whoever holds `roles` may see, in the same order."""
    if not ids or sees_restricted(roles):
        return list(ids)
    table = registry.get(kind).table
    statement = select(table.c.id).where(table.c.id.in_(ids), restricted(kind, table))
    hidden = set(session.execute(statement).scalars())
    return [i for i in ids if i not in hidden]


# --- restricting and lifting -----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What `restrict` or `unrestrict` did: whether anything changed, and the restriction."""

    changed: bool
    restriction: Restriction | None
    records: dict[str, int]  # the subject's records per kind, now


def records_of(session: Session, subject: Subject) -> dict[str, int]:
    """How many records of each kind a restriction hides `subject` reaches."""
    counts = {}
    for kind, condition in selections(subject).items():
        if kind not in RESTRICTABLE:
            continue
        table = registry.get(kind).table
        statement = select(func.count()).select_from(table).where(condition)
        counts[kind] = session.execute(statement).scalar_one()
    return counts


def restrict(
    session: Session,
    subject: Subject,
    *,
    now: datetime,
    actor: str,
    reason: str,
    key: bytes,
    request_id: int | None = None,
) -> Change:
    """Restrict `subject`'s records; FacilityError when nothing of it is stored."""
    reason = check_reason(reason, subject)
    records = records_of(session, subject)
    existing = _find(session, subject)
    if existing is not None:
        return Change(False, existing, records)
    if not any(records.values()):
        raise FacilityError(
            f"subject restrict: nothing is stored about this {subject.kind}; nothing to restrict"
        )
    row = {
        "subject_kind": subject.kind,
        "subject_key": subject.key,
        "reason": reason,
        "restricted_by": actor,
        "restricted_at": now,
        "request_id": request_id,
    }
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Two officers at once: the second finds the first one's restriction, not an error.
    inserted = session.execute(
        module.insert(Restriction).values(**row).on_conflict_do_nothing().returning(_R.c.id)
    ).first()
    if inserted is None:
        return Change(False, _find(session, subject), records)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="subject.restrict",
        subject=subject.hashed(key),
        subject_kind=subject.kind,
        reason=reason,
        records=records,
        request=request_id,
    )
    return Change(True, session.get(Restriction, inserted[0]), records)


def unrestrict(
    session: Session,
    subject: Subject,
    *,
    now: datetime,
    actor: str,
    reason: str,
    key: bytes,
    request_id: int | None = None,
) -> Change:
    """Lift the restriction of `subject`; one that is not restricted changes nothing."""
    reason = check_reason(reason, subject)
    existing = _find(session, subject)
    records = records_of(session, subject)
    if existing is None:
        return Change(False, None, records)
    session.delete(existing)
    session.flush()
    audit.append(
        session,
        now=now,
        actor=actor,
        action="subject.unrestrict",
        subject=subject.hashed(key),
        subject_kind=subject.kind,
        reason=reason,
        restricted_at=utc_text(existing.restricted_at),
        request=request_id,
    )
    return Change(True, existing, records)


def _find(session: Session, subject: Subject) -> Restriction | None:
    statement = select(Restriction).where(
        col(Restriction.subject_kind) == subject.kind, col(Restriction.subject_key) == subject.key
    )
    return session.execute(statement).scalars().first()


def listing(session: Session) -> list[Restriction]:
    """Every restriction in force, oldest first."""
    statement = select(Restriction).order_by(col(Restriction.restricted_at), col(Restriction.id))
    return list(session.execute(statement).scalars())


def of_subject(session: Session, subject: Subject) -> list[dict[str, Any]]:
    """The restriction of `subject`, if any, as a subject export shows it."""
    found = _find(session, subject)
    if found is None:
        return []
    return [
        {
            "restricted_at": utc_text(found.restricted_at),
            "restricted_by": found.restricted_by,
            "reason": found.reason,
            "request_id": found.request_id,
        }
    ]


def count(session: Session) -> int:
    """How many subjects are restricted."""
    counted: int = session.execute(select(func.count()).select_from(_R)).scalar_one()
    return counted


def forget_ended(session: Session) -> int:
    """Delete the restrictions whose subject has nothing stored any more; return how many."""
    ended = []
    for row in listing(session):
        subject = Subject(row.subject_kind, row.subject_key, row.subject_key)
        if not any(
            session.execute(select(registry.get(kind).table.c.id).where(condition)).first()
            for kind, condition in selections(subject).items()
        ):
            ended.append(row)
    for row in ended:
        session.delete(row)
    session.flush()
    return len(ended)
