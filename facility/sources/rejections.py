"""Rejected inputs (dead letters): what was refused, kept for `retention.rejections`, then purged.

A rejection keeps the source, the reason and the first bytes of what was refused, so an operator
can see why a lease line or a payload did not count. Those bytes are raw: MAC and IP addresses,
host names, badge numbers, names. So rejections are a kind of their own (`facility.store.kinds`:
a policy beside the record kinds), counted on the report, purged by every purge run in batches,
listed only to the roles that may see personal data, and found and erased by data-subject
requests. No hold keeps a rejection: an incident is about the records that were stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from facility.sites import narrow
from facility.store.models import Rejection, row_id, table_of
from facility.timefmt import utc_text

Sites = int | Collection[int] | None  # one site, several, or every site (`sites.narrow`)

TABLE = table_of(Rejection)
# Rows a subject request reads at a time while it looks for the subject in the excerpts.
_SCAN = 5_000


@dataclass(frozen=True)
class Listed:
    """One rejection as shown to a person or a program."""

    id: int
    at: datetime
    source: str
    reason: str
    raw: str

    def as_json(self) -> dict[str, Any]:
        """The `rejections list --format json` shape."""
        return {
            "id": self.id,
            "at": utc_text(self.at),
            "source": self.source,
            "reason": self.reason,
            "raw": self.raw,
        }


def listing(
    session: Session,
    *,
    source: str | None = None,
    since: datetime | None = None,
    at: datetime | None = None,
    limit: int | None = None,
    site: Sites = None,
) -> list[Listed]:
    """Rejections at `site`, newest first: of one source, since an instant, or at one instant."""
    statement = select(TABLE.c.id, TABLE.c.at, TABLE.c.source, TABLE.c.reason, TABLE.c.raw)
    statement = statement.where(narrow(TABLE, site))
    if source is not None:
        statement = statement.where(TABLE.c.source == source)
    if since is not None:
        statement = statement.where(TABLE.c.at >= since)
    if at is not None:
        statement = statement.where(TABLE.c.at == at)
    statement = statement.order_by(TABLE.c.at.desc(), TABLE.c.id.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return [Listed(*row) for row in session.execute(statement)]


def count(
    session: Session,
    *,
    source: str | None = None,
    at: datetime | None = None,
    site: Sites = None,
) -> int:
    """How many rejections there are at `site` (of one source, or recorded at one instant)."""
    statement = select(func.count()).select_from(TABLE).where(narrow(TABLE, site))
    if source is not None:
        statement = statement.where(TABLE.c.source == source)
    if at is not None:
        statement = statement.where(TABLE.c.at == at)
    counted: int = session.execute(statement).scalar_one()
    return counted


def mentioning(session: Session, mentions: Callable[[str], bool], site: Sites = None) -> list[int]:
    """Ids of the rejections at `site` whose reason or excerpt `mentions` the subject.

    The excerpts are free text in whatever form the source wrote (a MAC with dashes, a name in
    capitals), so each is tested in Python by the subject's own matcher; the table holds at most
    a policy's worth of rows.
    """
    found, after = [], 0
    while True:
        statement = (
            select(TABLE.c.id, TABLE.c.reason, TABLE.c.raw)
            .where(TABLE.c.id > after, narrow(TABLE, site))
            .order_by(TABLE.c.id)
            .limit(_SCAN)
        )
        rows = session.execute(statement).all()
        found += [i for i, reason, raw in rows if mentions(raw) or mentions(reason)]
        if len(rows) < _SCAN:
            return found
        after = rows[-1][0]


def rows(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    """The rejections with these ids, oldest first, as a subject export lists them."""
    found: list[Rejection] = []
    for chunk in _chunks(ids):
        statement = select(Rejection).where(col(Rejection.id).in_(chunk))
        found += session.execute(statement).scalars().all()
    found.sort(key=lambda r: (r.at, r.id))
    return [Listed(row_id(r), r.at, r.source, r.reason, r.raw).as_json() for r in found]


def erase(session: Session, ids: list[int]) -> int:
    """Delete the rejections with these ids."""
    return sum(
        session.exec(delete(TABLE).where(TABLE.c.id.in_(chunk))).rowcount for chunk in _chunks(ids)
    )


def _chunks(ids: list[int]) -> list[list[int]]:
    # Well under SQLite's limit of bound parameters per statement.
    return [ids[i : i + _SCAN] for i in range(0, len(ids), _SCAN)]
