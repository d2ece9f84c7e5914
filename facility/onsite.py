"""Who is on site now: open visits, their badge, and where that badge was last presented."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from facility.models import BadgeLoan, DoorEvent, Visit


@dataclass(frozen=True)
class Person:
    """One person on site, as the evacuation list shows them."""

    visit_id: int
    name: str
    company: str | None
    host: str | None
    signed_in_at: datetime
    badge: str | None
    last_door: str | None
    last_door_at: datetime | None


@dataclass(frozen=True)
class OnSite:
    """The on-site list at one instant."""

    generated_at: datetime
    people: list[Person]

    def as_json(self) -> dict:
        """The stable JSON shape of DESIGN.md."""
        return {
            "generated_at": _iso(self.generated_at),
            "count": len(self.people),
            "people": [
                {k: _iso(v) if isinstance(v, datetime) else v for k, v in asdict(p).items()}
                for p in self.people
            ],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def on_site(session: Session, *, now: datetime) -> OnSite:
    """Everyone signed in and not out, oldest sign-in first.

    The last door is looked up per person with an index seek on (badge, at), limited to the time
    since the badge was lent to this visit, so an earlier holder's presses never show.
    """
    loan = aliased(BadgeLoan)
    last = (
        select(DoorEvent.door, DoorEvent.at)
        .where(DoorEvent.badge == loan.badge, DoorEvent.at >= loan.issued_at)
        .order_by(col(DoorEvent.at).desc())
        .limit(1)
        .correlate(loan)
    )
    query = (
        select(
            Visit.id,
            Visit.name,
            Visit.company,
            Visit.host,
            Visit.signed_in_at,
            loan.badge,
            last.with_only_columns(DoorEvent.door).scalar_subquery(),
            last.with_only_columns(DoorEvent.at).scalar_subquery(),
        )
        .outerjoin(loan, and_(loan.visit_id == Visit.id, col(loan.returned_at).is_(None)))
        .where(col(Visit.signed_out_at).is_(None))
        .order_by(col(Visit.signed_in_at), col(Visit.id))
    )
    people: dict[int, Person] = {}
    for row in session.execute(query):
        # A visit holding two badges shows once, with the first badge found.
        people.setdefault(row[0], Person(*row))
    return OnSite(now, list(people.values()))
