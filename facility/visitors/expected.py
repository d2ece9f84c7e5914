"""Expected visitors: who is announced for which day, and which of them came.

An expected visit names a person before they arrive, so it is a record kind of its own
(`retention.expected`): its clock is the end of the expected day in site time, and it is deleted
one day later by default, whether the person came or not. Whoever did come has a visit of their
own, kept by the visits' policy.

A sign-in fulfils the expected visit it was made from (the web's one-click sign-in, or `visitor
sign-in --expected ID`), or else the one expected that day under the same name when there is
exactly one; the sign-in then takes that expected visit's host and company when none was typed.

An expected visit belongs to the office the visitor is expected at: it is listed, cancelled and
fulfilled there only (another office's number is "no expected visit" here).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text, name_key, printable
from facility.store import kinds
from facility.store.models import DEFAULT_SITE, ExpectedVisit, Visit
from facility.visitors import hosts

# An expected day further ahead than this is a typo (and would keep the name that long); the
# registry lets the clock (the day's end) start that far ahead, and the report no further.
FURTHEST = kinds.get("expected").planned_ahead - timedelta(days=1)


def site_day(instant: datetime, site_zone: tzinfo) -> date:
    """The site's calendar day at `instant`."""
    return instant.astimezone(site_zone).date()


def day_end(day: date, site_zone: tzinfo) -> datetime:
    """The first instant after `day` in site time, aware UTC: an expected visit's clock."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=site_zone).astimezone(UTC)


def parse_day(text: str, *, today: date, what: str = "--on") -> date:
    """`today`, `tomorrow` or an ISO date (2026-11-25) as a date; InputError naming `what`."""
    word = text.strip().casefold()
    if word == "today":
        return today
    if word == "tomorrow":
        return today + timedelta(days=1)
    try:
        return date.fromisoformat(text.strip())
    except ValueError as err:
        raise InputError(
            f"{what}: {printable(text)!r} is not a day (YYYY-MM-DD, today or tomorrow)"
        ) from err


def expect(
    session: Session,
    *,
    now: datetime,
    actor: str,
    name: str,
    host: str,
    on: date,
    company: str | None = None,
    badge: str | None = None,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> ExpectedVisit:
    """Announce a visitor at a site for day `on` (today or later, within a year)."""
    clean = clean_text(name, what="NAME")
    if not clean:
        raise InputError("NAME: an expected visitor needs a name")
    host_name = clean_text(host, what="--host")
    if not host_name:
        raise InputError("--host: say whom the visitor comes to see")
    listed = hosts.find(session, host_name, site_id=site_id)
    if listed is not None:  # as the directory spells it, so the sign-in finds the host
        host_name = listed.name
    today = site_day(now, site_zone)
    if on < today:
        raise InputError(f"--on: {on.isoformat()} is in the past (today is {today.isoformat()})")
    if on > today + FURTHEST:
        raise InputError(f"--on: {on.isoformat()} is more than a year ahead")
    row = ExpectedVisit(
        site_id=site_id,
        name=clean,
        name_key=name_key(clean),
        company=clean_text(company, what="--company"),
        host=host_name,
        badge=_badge(badge),
        expected_on=on,
        created_at=now,
        created_by=actor,
        retain_from=day_end(on, site_zone),
    )
    session.add(row)
    session.flush()
    return row


def _badge(badge: str | None) -> str | None:
    if badge is None or not badge.strip():
        return None
    cleaned = badge.strip()
    if len(cleaned) > 64 or not cleaned.isprintable() or " " in cleaned:
        raise InputError(f"--badge: {printable(badge)!r} is not a badge number")
    return cleaned


def get(session: Session, expected_id: int, *, site_id: int = DEFAULT_SITE) -> ExpectedVisit:
    """The expected visit with this id at the site; InputError when there is none."""
    row = session.get(ExpectedVisit, expected_id)
    if row is None or row.site_id != site_id:
        raise InputError(f"ID: there is no expected visit {expected_id}")
    return row


def listing(
    session: Session,
    *,
    first: date,
    last: date | None = None,
    waiting_only: bool = False,
    site_id: int = DEFAULT_SITE,
) -> list[ExpectedVisit]:
    """Expected visits at the site from day `first` (to `last`), by day and name."""
    statement = select(ExpectedVisit).where(
        col(ExpectedVisit.site_id) == site_id, col(ExpectedVisit.expected_on) >= first
    )
    if last is not None:
        statement = statement.where(col(ExpectedVisit.expected_on) <= last)
    if waiting_only:
        statement = statement.where(col(ExpectedVisit.arrived_at).is_(None))
    order = (col(ExpectedVisit.expected_on), col(ExpectedVisit.name_key), col(ExpectedVisit.id))
    return list(session.exec(statement.order_by(*order)))


def cancel(session: Session, expected_id: int, *, site_id: int = DEFAULT_SITE) -> ExpectedVisit:
    """Delete an expected visit at the site that has not arrived: nothing of it is kept."""
    row = get(session, expected_id, site_id=site_id)
    if row.arrived_at is not None:
        raise InputError(
            f"expected visit {row.id} ({printable(row.name)}) already arrived as visit "
            f"{row.visit_id}; it ends with its day"
        )
    session.delete(row)
    session.flush()
    return row


def waiting(session: Session, expected_id: int, *, site_id: int = DEFAULT_SITE) -> ExpectedVisit:
    """The expected visit with this id at the site, if its visitor has not arrived yet."""
    row = get(session, expected_id, site_id=site_id)
    if row.arrived_at is not None:
        raise InputError(
            f"expected visit {row.id} ({printable(row.name)}) already arrived as visit "
            f"{row.visit_id}"
        )
    return row


def fulfil(
    session: Session, visit: Visit, *, site_zone: tzinfo, chosen: int | None = None
) -> ExpectedVisit | None:
    """Mark the expected visit `visit` fulfils as arrived; fill the visit's blank host, company.

    `chosen` names it; otherwise it is the one expected on the visit's day under the same name,
    when exactly one is (two namesakes expected that day are left to the receptionist).
    """
    if chosen is not None:
        row: ExpectedVisit | None = waiting(session, chosen, site_id=visit.site_id)
    else:
        row = _namesake(session, visit, site_zone)
    if row is None:
        return None
    row.arrived_at = visit.signed_in_at
    row.visit_id = visit.id
    session.add(row)
    if visit.host is None and row.host is not None:
        visit.host = row.host
    if visit.company is None and row.company is not None:
        visit.company = row.company
    session.add(visit)
    session.flush()
    return row


def _namesake(session: Session, visit: Visit, site_zone: tzinfo) -> ExpectedVisit | None:
    """The one visit expected at `visit`'s site on its day under its name, if exactly one is and
    is waiting."""
    day = site_day(visit.signed_in_at, site_zone)
    same = (
        col(ExpectedVisit.site_id) == visit.site_id,
        col(ExpectedVisit.expected_on) == day,
        col(ExpectedVisit.name_key) == visit.name_key,
    )
    found = session.exec(select(ExpectedVisit).where(*same).limit(2)).all()
    if len(found) != 1 or found[0].arrived_at is not None:
        return None
    return found[0]
