"""The visit log: searching past and current visits, within what the visits' policy still keeps.

A visit whose retention has run out is not shown even before the purge deletes it, nor when an
incident hold keeps it: the hold keeps it for security staff, not for the desk. The period is
the visits' span meeting [since, until]: a visit still open, or signed out after `since`, and
signed in before `until`.

The log is one site's: the visits signed in at that office, kept by that site's policy.

Name, host and company are matched as people type them: every word given must appear in the
field, ignoring case and accents ("jose" finds "José Núñez", "anal eng" finds "Analytical
Engines"). The policy bounds how many visits there are to look through, so the words are matched
here, after one indexed query, and the page is cut from what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, or_, select
from sqlmodel import Session, col

from facility.names import name_key
from facility.privacy import restriction
from facility.retention import policies
from facility.store.models import BadgeLoan, Site, Visit, row_id, table_of
from facility.timefmt import utc_text

_Query = TypeVar("_Query", bound=Select[*tuple[Any, ...]])

DEFAULT_SINCE = timedelta(days=7)
PAGE = 50


@dataclass(frozen=True)
class Filters:
    """What to look for; None leaves a filter out."""

    since: datetime | None = None
    until: datetime | None = None
    name: str | None = None
    host: str | None = None
    company: str | None = None
    open_only: bool = False


@dataclass(frozen=True)
class Row:
    """One visit as the log shows it."""

    visit_id: int
    name: str
    company: str | None
    host: str | None
    signed_in_at: datetime
    signed_out_at: datetime | None
    closed_by: str | None
    badges: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The row in `visitor list --format json`."""
        return {
            "visit_id": self.visit_id,
            "name": self.name,
            "company": self.company,
            "host": self.host,
            "badges": list(self.badges),
            "signed_in_at": utc_text(self.signed_in_at),
            "signed_out_at": utc_text(self.signed_out_at),
            "closed_by": self.closed_by,
        }


@dataclass(frozen=True)
class Found:
    """A page of the log, and how many visits match in all."""

    rows: list[Row]
    total: int
    offset: int
    kept_since: datetime  # visits signed out before this are past their policy: never shown


def search(
    session: Session,
    filters: Filters,
    *,
    now: datetime,
    roles: frozenset[str],
    site: Site,
    offset: int = 0,
    limit: int | None = None,
) -> Found:
    """The visits at `site` matching `filters` that its policy still keeps, newest sign-in first."""
    kept_since = now - policies.policy_of(session, "visits", site)
    since = filters.since if filters.since is not None else now - DEFAULT_SINCE
    statement = (
        select(
            col(Visit.id),
            col(Visit.name),
            col(Visit.name_key),
            col(Visit.company),
            col(Visit.host),
            col(Visit.signed_in_at),
            col(Visit.signed_out_at),
            col(Visit.closed_by),
        )
        .where(col(Visit.site_id) == row_id(site))
        .where(or_(col(Visit.retain_from).is_(None), col(Visit.retain_from) > kept_since))
        .where(or_(col(Visit.signed_out_at).is_(None), col(Visit.signed_out_at) >= since))
        .order_by(col(Visit.signed_in_at).desc(), col(Visit.id).desc())
    )
    if filters.until is not None:
        statement = statement.where(col(Visit.signed_in_at) <= filters.until)
    if filters.open_only:
        statement = statement.where(col(Visit.signed_out_at).is_(None))
    statement = restricted(statement, roles)
    wanted = [(field, _words(text)) for field, text in _texts(filters) if text]
    matching = [
        row
        for row in session.execute(statement)
        if all(_has(words, getattr(row, field)) for field, words in wanted)
    ]
    page = matching[offset:] if limit is None else matching[offset : offset + limit]
    badges_kept_since = now - policies.policy_of(session, "badges", site)
    badges = _badges(session, [row.id for row in page], kept_since=badges_kept_since)
    rows = [
        Row(
            visit_id=row.id,
            name=row.name,
            company=row.company,
            host=row.host,
            signed_in_at=row.signed_in_at,
            signed_out_at=row.signed_out_at,
            closed_by=row.closed_by,
            badges=tuple(badges.get(row.id, ())),
        )
        for row in page
    ]
    return Found(rows=rows, total=len(matching), offset=offset, kept_since=kept_since)


def restricted(statement: _Query, roles: frozenset[str]) -> _Query:
    """Where a data subject's restriction (article 18) hides them from the log for everyone but
    `privacy`: their past visits go; a visit still open stays, so that the desk can sign them out
    (as on the desk's list of the day and the evacuation list)."""
    if restriction.sees_restricted(roles):
        return statement
    hidden = restriction.restricted("visits", table_of(Visit))
    return statement.where(or_(col(Visit.signed_out_at).is_(None), ~hidden))


def _texts(filters: Filters) -> list[tuple[str, str | None]]:
    return [("name_key", filters.name), ("host", filters.host), ("company", filters.company)]


def _words(text: str) -> list[str]:
    return name_key(text).split()


def _has(words: list[str], value: str | None) -> bool:
    folded = name_key(value or "")
    return all(word in folded for word in words)


def _badges(
    session: Session, visit_ids: list[int], *, kept_since: datetime
) -> dict[int, list[str]]:
    """The badges each visit was lent that policy still keeps, in the order they were issued."""
    if not visit_ids:
        return {}
    kept = or_(col(BadgeLoan.retain_from).is_(None), col(BadgeLoan.retain_from) > kept_since)
    statement = (
        select(col(BadgeLoan.visit_id), col(BadgeLoan.badge))
        .where(col(BadgeLoan.visit_id).in_(visit_ids), kept)
        .order_by(col(BadgeLoan.issued_at), col(BadgeLoan.id))
    )
    found: dict[int, list[str]] = {}
    for visit_id, badge in session.execute(statement):
        found.setdefault(visit_id, []).append(badge)
    return found
