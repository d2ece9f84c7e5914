"""The read-only queries the pages need beyond the core: today's visits and picker values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, text, true
from sqlmodel import Session, col

from facility.privacy import restriction
from facility.store.models import BadgeLoan, Visit, table_of

PICKER_LIMIT = 500


@dataclass(frozen=True)
class VisitRow:
    """One line of the reception desk's list of today's visits."""

    id: int
    name: str
    company: str | None
    host: str | None
    signed_in_at: datetime
    signed_out_at: datetime | None
    badge: str | None  # the badge out with the visit now, else the last one it had
    badge_out: bool

    @property
    def open(self) -> bool:
        """Whether the visitor is still signed in."""
        return self.signed_out_at is None


def todays_visits(
    session: Session, *, since: datetime, site_id: int, hide_restricted: bool = False
) -> list[VisitRow]:
    """Visits at `site_id` still open, or signed in or out since `since`, newest sign-in first.

    `hide_restricted` (whoever asks lacks the privacy role) leaves out the visits of restricted
    people (`privacy.restriction`), except those still open: someone on site stays listed, as on
    the evacuation list, so that they can be signed out.
    """
    shown = (
        or_(col(Visit.signed_out_at).is_(None), ~restriction.restricted("visits", table_of(Visit)))
        if hide_restricted
        else true()
    )
    rows = session.execute(
        select(
            col(Visit.id),
            col(Visit.name),
            col(Visit.company),
            col(Visit.host),
            col(Visit.signed_in_at),
            col(Visit.signed_out_at),
            col(BadgeLoan.badge),
            col(BadgeLoan.returned_at),
        )
        .outerjoin(BadgeLoan, col(BadgeLoan.visit_id) == col(Visit.id))
        .where(
            col(Visit.site_id) == site_id,
            or_(
                col(Visit.signed_out_at).is_(None),
                col(Visit.signed_in_at) >= since,
                col(Visit.signed_out_at) >= since,
            ),
            shown,
        )
        .order_by(col(Visit.signed_in_at).desc(), col(Visit.id).desc(), col(BadgeLoan.issued_at))
    )
    visits: dict[int, VisitRow] = {}
    for vid, name, company, host, signed_in, signed_out, badge, returned in rows:
        out = badge is not None and returned is None
        known = visits.get(vid)
        # Prefer the badge the visitor holds now, then the most recently issued one.
        if known is None or out or not known.badge_out:
            visits[vid] = VisitRow(vid, name, company, host, signed_in, signed_out, badge, out)
    return list(visits.values())


def distinct_values(session: Session, table: str, column: str) -> list[str]:
    """Up to PICKER_LIMIT distinct values of an indexed column, in order.

    A recursive "skip scan": one index seek per distinct value, so it stays fast on tables of
    millions of rows, where SELECT DISTINCT would read them all (PostgreSQL has no skip scan).
    """
    if (table, column) not in {("camera_segments", "camera"), ("door_events", "door")}:
        raise ValueError(f"no picker for {table}.{column}")
    query = text(
        f"WITH RECURSIVE v(x, n) AS ("
        f" SELECT MIN({column}), 1 FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > v.x), n + 1"
        f" FROM v WHERE v.x IS NOT NULL AND n < :limit"
        f") SELECT x FROM v WHERE x IS NOT NULL"
    )
    return [row[0] for row in session.execute(query, {"limit": PICKER_LIMIT})]
