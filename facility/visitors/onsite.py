"""Who is on site now: open visits, their badges, and where one of them was last presented.

A visitor may hold more than one badge (a visitor badge and a parking card): every one is listed,
in the order they were lent, and the last door is the latest press of any of them. The stable
JSON shape keeps `badge` (the first) beside the full `badges` list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from facility.render import csv_text, html_page, json_text, table
from facility.store.models import DEFAULT_SITE, BadgeLoan, DoorEvent, Visit
from facility.timefmt import site_text, utc_fields, utc_text
from facility.timeutil import zone

FIELDS = (
    "visit_id",
    "name",
    "company",
    "host",
    "signed_in_at",
    "badge",
    "last_door",
    "last_door_at",
    "badges",
)
HEADERS = ("visit", "name", "company", "host", "signed in", "badges", "last door", "seen")


class Person(NamedTuple):
    """One person on site, as the evacuation list shows them."""

    # A named tuple rather than a frozen dataclass: as immutable, and built from a row faster (a
    # frozen dataclass sets each field through object.__setattr__), which showed in a listing's
    # time beyond the query's (bench/README.md).

    visit_id: int
    name: str
    company: str | None
    host: str | None
    signed_in_at: datetime
    badge: str | None
    last_door: str | None
    last_door_at: datetime | None
    badges: tuple[str, ...] = ()


@dataclass(frozen=True)
class OnSite:
    """The on-site list of one site at one instant."""

    generated_at: datetime
    people: list[Person]
    site_name: str | None = None  # the office, as the printed list's header names it

    def as_json(self) -> dict[str, Any]:
        """The stable JSON shape of DESIGN.md."""
        return {
            "generated_at": utc_text(self.generated_at),
            "count": len(self.people),
            "people": [_person_json(p) for p in self.people],
        }


def render(listing: OnSite, output_format: str, zone_name: str) -> str:
    """The list as `table`, `json`, `csv` or a printable `html` page, times in the site zone."""
    if output_format == "json":
        return json_text(listing.as_json()) + "\n"
    if output_format == "csv":
        people = listing.as_json()["people"]
        # Badge numbers hold no spaces, so one cell lists them all.
        rows = [[p[k] for k in FIELDS[:-1]] + [" ".join(p["badges"])] for p in people]
        return csv_text(FIELDS, rows)
    site = zone(zone_name)
    rows = [_local_row(p, site) for p in listing.people]
    generated = site_text(listing.generated_at, site)
    office = listing.site_name
    if output_format == "html":
        people = [dict(zip(HTML_FIELDS, row, strict=True)) for row in rows]
        return html_page(
            "onsite.html",
            people=people,
            count=len(people),
            generated=generated,
            zone=zone_name,
            site=office,
        )
    where = f" {office}" if office else ""
    summary = f"{len(rows)} on site{where} at {generated} ({zone_name})\n"
    return f"{table(HEADERS, rows)}\n{summary}" if rows else summary


HTML_FIELDS = ("visit_id", "name", "company", "host", "signed_in_at", "badges", "last_door", "seen")


def _local_row(p: Person, site: tzinfo) -> list[Any]:
    signed_in, seen = site_text(p.signed_in_at, site), site_text(p.last_door_at, site)
    badges = ", ".join(p.badges)
    return [p.visit_id, p.name, p.company, p.host, signed_in, badges, p.last_door, seen]


def _person_json(p: Person) -> dict[str, Any]:
    shown = utc_fields(p._asdict())
    shown["badges"] = list(p.badges)
    return shown


def on_site(
    session: Session, *, now: datetime, site_id: int = DEFAULT_SITE, site_name: str | None = None
) -> OnSite:
    """Everyone signed in at the site and not out, oldest sign-in first."""
    people: dict[int, Person] = {}
    # On the session's connection, fetched at once: plain rows, without the ORM's result
    # machinery and without a fetch call per row, which cost more than the query itself
    # (bench/README.md). One row per open loan, in the order the badges were lent.
    rows = session.connection().execute(_query(), {"site_id": site_id}).all()
    for row in rows:
        known = people.get(row[0])
        if known is None:
            people[row[0]] = Person._make((*row, () if row[5] is None else (row[5],)))
        else:
            people[row[0]] = _with_badge(known, row[5], row[6], row[7])
    return OnSite(now, list(people.values()), site_name)


def _with_badge(person: Person, badge: str, door: str | None, at: datetime | None) -> Person:
    """`person` holding one more badge; its press counts if it is the latest of theirs."""
    later = at is not None and (person.last_door_at is None or at > person.last_door_at)
    door, at = (door, at) if later else (person.last_door, person.last_door_at)
    return person._replace(badges=(*person.badges, badge), last_door=door, last_door_at=at)


def badges_of(session: Session, visit_id: int) -> list[str]:
    """The badges out with this visit now (those sign-out takes back), in the order they were lent."""
    statement = (
        select(col(BadgeLoan.badge))
        .where(col(BadgeLoan.visit_id) == visit_id, col(BadgeLoan.returned_at).is_(None))
        .order_by(col(BadgeLoan.issued_at), col(BadgeLoan.id))
    )
    return list(session.connection().execute(statement).scalars())


@cache
def _query() -> Select[Any]:
    """The on-site query, built once: it takes only the site, and building it costs more than
    running it (the snapshot job and the reception terminal ask often).

    Open visits are found on the (site_id, retain_from) index: a visit's clock starts at sign-out,
    so an open visit's `retain_from` is NULL (both engines index NULLs), where `signed_out_at IS
    NULL` alone would scan every visit ever stored. The last door is looked up per person with an
    index seek on (site_id, badge, at), limited to the site's presses of that badge since it was
    lent to this visit, so an earlier holder's presses (or another office's badge of the same
    number) never show.
    """
    loan = aliased(BadgeLoan)
    last = (
        select(col(DoorEvent.door), col(DoorEvent.at))
        .where(
            col(DoorEvent.site_id) == loan.site_id,
            col(DoorEvent.badge) == loan.badge,
            col(DoorEvent.at) >= loan.issued_at,
        )
        .order_by(col(DoorEvent.at).desc())
        .limit(1)
        .correlate(loan)
    )
    return (
        select(
            col(Visit.id),
            col(Visit.name),
            col(Visit.company),
            col(Visit.host),
            col(Visit.signed_in_at),
            col(loan.badge),
            last.with_only_columns(col(DoorEvent.door)).scalar_subquery(),
            last.with_only_columns(col(DoorEvent.at)).scalar_subquery(),
        )
        .outerjoin(loan, and_(col(loan.visit_id) == col(Visit.id), col(loan.returned_at).is_(None)))
        .where(
            col(Visit.site_id) == bindparam("site_id"),
            col(Visit.retain_from).is_(None),
            col(Visit.signed_out_at).is_(None),
        )
        .order_by(col(Visit.signed_in_at), col(Visit.id), col(loan.issued_at), col(loan.id))
    )


def badges_back(badges: list[str], *, kept: bool) -> str:
    """What became of a visitor's badges at sign-out, as the end of the line that says so."""
    if not badges:
        return ""
    named = " and ".join([", ".join(badges[:-1]), badges[-1]] if len(badges) > 1 else badges)
    noun = "badge" if len(badges) == 1 else "badges"
    if kept:
        return f"; {noun} {named} still out (--badge-kept)"
    return f"; {noun} {named} returned"
