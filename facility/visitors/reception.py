"""Reception: signing visitors in and out, and lending and taking back visitor badges.

Every function takes the session, the current instant `now` and the instant the event happened
`at` (a receptionist may record a missed time, never a future one), the site it happens at
(`site_id`: a visit, a badge number and its loans are that site's; `facility.sites`) and the
site's zone in which its messages name times. A failure raises InputError before anything is
written, and the caller's transaction rolls back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text, name_key, printable
from facility.notify import outbox
from facility.settings import Limits
from facility.store.models import DEFAULT_SITE, BadgeLoan, Visit, row_id
from facility.timefmt import site_text
from facility.visitors import expected, muster

# A terminal's clock and the server's may differ a little; more than this is a typo. Callers pass
# the configured `limits.clock_skew`; this is its default.
CLOCK_SKEW: timedelta = Limits.model_fields["clock_skew"].default
# Candidates listed when a name fits several people on site.
CANDIDATES = 10


def check_not_future(
    at: datetime,
    now: datetime,
    *,
    what: str = "--at",
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
) -> datetime:
    """Refuse an event time further ahead of `now` than `skew`, naming both in site time."""
    if at > now + skew:
        raise InputError(
            f"{what}: {site_text(at, site_zone)} is in the future "
            f"(now is {site_text(now, site_zone)})"
        )
    return at


def sign_in(
    session: Session,
    *,
    now: datetime,
    name: str,
    company: str | None = None,
    host: str | None = None,
    badge: str | None = None,
    at: datetime | None = None,
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
    expected_id: int | None = None,
) -> Visit:
    """Open a visit at a site, and lend it a badge when one is given.

    The visit fulfils the expected visit `expected_id`, or else the one expected today under
    its name (`expected.fulfil`); its host, found in the hosts directory, is then told
    (queued in `notify.outbox`: the sign-in never waits for a mail server).
    """
    at = check_not_future(at or now, now, skew=skew, site_zone=site_zone)
    clean_name = clean_text(name, what="NAME")
    if not clean_name:
        raise InputError("NAME: a visitor needs a name")
    visit = Visit(
        site_id=site_id,
        name=clean_name,
        name_key=name_key(clean_name),
        company=clean_text(company, what="--company"),
        host=clean_text(host, what="--host"),
        signed_in_at=at,
    )
    session.add(visit)
    session.flush()
    if badge:
        issue_badge(
            session,
            now=now,
            badge=badge,
            visit_id=row_id(visit),
            at=at,
            skew=skew,
            site_zone=site_zone,
            site_id=site_id,
        )
    muster.arrived(session, visit_id=row_id(visit), name=visit.name, now=now, site_id=site_id)
    expected.fulfil(session, visit, site_zone=site_zone, chosen=expected_id)
    outbox.announce(session, visit, now=now)
    return visit


def sign_in_expected(
    session: Session,
    *,
    now: datetime,
    expected_id: int,
    badge: str | None = None,
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> Visit:
    """Sign in the visitor of an expected visit at the site, with its company, host and badge."""
    waiting = expected.waiting(session, expected_id, site_id=site_id)
    return sign_in(
        session,
        now=now,
        name=waiting.name,
        company=waiting.company,
        host=waiting.host,
        badge=badge or waiting.badge,
        skew=skew,
        site_zone=site_zone,
        site_id=site_id,
        expected_id=expected_id,
    )


def find_open_visit(
    session: Session,
    *,
    visit_id: int | None = None,
    name: str | None = None,
    badge: str | None = None,
    site_id: int = DEFAULT_SITE,
) -> Visit:
    """The open visit at the site named by id, visitor name or the badge it holds.

    A visit already signed out gets the same answer whichever way it was named; a visit of
    another site is not found here (its number says so).
    """
    if visit_id is not None:
        visit = session.get(Visit, visit_id)
        if visit is None:
            raise InputError(f"ID: there is no visit {visit_id}")
        if visit.site_id != site_id:
            raise InputError(f"ID: visit {visit_id} is at another site, not this one")
        if visit.signed_out_at is not None:
            raise _already_signed_out(visit)
        return visit
    if badge is not None:
        badge = _badge_number(badge)
        loan = _open_loan(session, badge, site_id)
        if loan is None or loan.visit_id is None:
            last = _last_loan(session, badge, site_id)
            visit = (
                None if last is None or last.visit_id is None else session.get(Visit, last.visit_id)
            )
            if visit is not None and visit.signed_out_at is not None:
                raise _already_signed_out(visit)
            raise InputError(f"--badge: badge {badge} is not out with anyone on site")
        return find_open_visit(session, visit_id=loan.visit_id, site_id=site_id)
    if name is not None:
        return _open_visit_by_name(session, name, site_id)
    raise InputError("give the visit's ID, --name or --badge")


def _open_visit_by_name(session: Session, name: str, site_id: int) -> Visit:
    """The one open visit `name` means: its whole name, else every word of it, matched by key.

    Keys fold case and accents, so "Jose Nunez" finds "José Núñez". Words match whole ("Ann"
    never finds "Anne"); more than one candidate is refused with the list to choose from.
    """
    key = name_key(clean_text(name, what="--name") or "")
    if not key:
        raise InputError("--name: give the visitor's name")
    present = session.exec(
        select(Visit)
        .where(
            Visit.site_id == site_id,
            col(Visit.retain_from).is_(None),
            col(Visit.signed_out_at).is_(None),
        )
        .order_by(col(Visit.signed_in_at), col(Visit.id))
    ).all()
    words = key.split()
    matches = [v for v in present if v.name_key == key] or [
        v for v in present if _has_words(v.name_key.split(), words)
    ]
    if len(matches) == 1:
        return matches[0]
    shown = printable(name)
    if not matches:
        left = session.exec(
            select(Visit)
            .where(
                Visit.site_id == site_id,
                Visit.name_key == key,
                col(Visit.signed_out_at).is_not(None),
            )
            .order_by(col(Visit.signed_out_at).desc(), col(Visit.id).desc())
        ).first()
        if left is not None:
            raise _already_signed_out(left)
        raise InputError(f"--name: nobody called {shown!r} is signed in")
    listed = "; ".join(_candidate(v) for v in matches[:CANDIDATES])
    more = f"; and {len(matches) - CANDIDATES} more" if len(matches) > CANDIDATES else ""
    raise InputError(
        f"--name: {len(matches)} people on site match {shown!r}: {listed}{more}; give the visit ID"
    )


def _has_words(name_words: list[str], wanted: list[str]) -> bool:
    """Every wanted word is a whole word of the name, as often as it is wanted."""
    remaining = list(name_words)
    for word in wanted:
        if word not in remaining:
            return False
        remaining.remove(word)
    return True


def _candidate(visit: Visit) -> str:
    extra = ", ".join(printable(x) for x in (visit.company, visit.host) if x)
    return f"visit {visit.id} {printable(visit.name)}" + (f" ({extra})" if extra else "")


def _already_signed_out(visit: Visit) -> InputError:
    return InputError(f"visit {visit.id} ({printable(visit.name)}) was already signed out")


def sign_out(
    session: Session,
    visit: Visit,
    *,
    now: datetime,
    at: datetime | None = None,
    badge_kept: bool = False,
    closed_by: str = "reception",
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
) -> Visit:
    """Close a visit (its retention clock starts) and take its badges back unless kept."""
    at = check_not_future(at or now, now, skew=skew, site_zone=site_zone)
    if at < visit.signed_in_at:
        raise InputError(
            f"--at: {site_text(at, site_zone)} is before the sign-in at "
            f"{site_text(visit.signed_in_at, site_zone)}"
        )
    visit.signed_out_at = at
    visit.retain_from = at
    visit.closed_by = closed_by
    session.add(visit)
    if not badge_kept:
        for loan in session.exec(
            select(BadgeLoan).where(
                BadgeLoan.visit_id == visit.id, col(BadgeLoan.returned_at).is_(None)
            )
        ):
            _close_loan(session, loan, at)
    session.flush()
    muster.departed(session, visit_id=row_id(visit), at=at, site_id=visit.site_id)
    return visit


def issue_badge(
    session: Session,
    *,
    now: datetime,
    badge: str,
    visit_id: int,
    at: datetime | None = None,
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> BadgeLoan:
    """Lend `badge` (a badge of the site) to an open visit there; a badge already out is refused."""
    at = check_not_future(at or now, now, skew=skew, site_zone=site_zone)
    badge = _badge_number(badge)
    visit = find_open_visit(session, visit_id=visit_id, site_id=site_id)
    if at < visit.signed_in_at:
        raise InputError(
            f"--at: {site_text(at, site_zone)} is before visit {visit.id} signed in "
            f"({site_text(visit.signed_in_at, site_zone)})"
        )
    current = _open_loan(session, badge, site_id)
    if current is not None:
        raise InputError(f"BADGE: badge {badge} is already out with visit {current.visit_id}")
    loan = BadgeLoan(site_id=site_id, badge=badge, visit_id=visit.id, issued_at=at)
    session.add(loan)
    try:
        session.flush()
    except IntegrityError as err:  # another terminal issued it a moment ago
        raise InputError(f"BADGE: badge {badge} is already out") from err
    return loan


def return_badge(
    session: Session,
    *,
    now: datetime,
    badge: str,
    at: datetime | None = None,
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> BadgeLoan:
    """Take a badge of the site back; its loan's retention clock starts."""
    at = check_not_future(at or now, now, skew=skew, site_zone=site_zone)
    badge = _badge_number(badge)
    loan = _open_loan(session, badge, site_id) or _lost_loan(session, badge, site_id)
    if loan is None:
        raise InputError(f"BADGE: badge {badge} is not out")
    if at < loan.issued_at:
        raise InputError(
            f"--at: {site_text(at, site_zone)} is before badge {badge} was issued "
            f"({site_text(loan.issued_at, site_zone)})"
        )
    _close_loan(session, loan, at)
    session.flush()
    return loan


def _close_loan(session: Session, loan: BadgeLoan, at: datetime) -> None:
    loan.returned_at = at
    loan.retain_from = at
    session.add(loan)


def _open_loan(session: Session, badge: str, site_id: int) -> BadgeLoan | None:
    return session.exec(
        select(BadgeLoan).where(
            BadgeLoan.site_id == site_id,
            BadgeLoan.badge == badge,
            col(BadgeLoan.returned_at).is_(None),
            col(BadgeLoan.lost).is_(False),
        )
    ).first()


def _lost_loan(session: Session, badge: str, site_id: int) -> BadgeLoan | None:
    """The newest loan of a badge marked lost and not yet back: finding it closes that loan."""
    return session.exec(
        select(BadgeLoan)
        .where(
            BadgeLoan.site_id == site_id,
            BadgeLoan.badge == badge,
            col(BadgeLoan.returned_at).is_(None),
            col(BadgeLoan.lost).is_(True),
        )
        .order_by(col(BadgeLoan.issued_at).desc())
    ).first()


def _last_loan(session: Session, badge: str, site_id: int) -> BadgeLoan | None:
    return session.exec(
        select(BadgeLoan)
        .where(BadgeLoan.site_id == site_id, BadgeLoan.badge == badge)
        .order_by(col(BadgeLoan.issued_at).desc(), col(BadgeLoan.id).desc())
    ).first()


def _badge_number(badge: str) -> str:
    cleaned = badge.strip()
    if not cleaned or len(cleaned) > 64 or not cleaned.isprintable() or " " in cleaned:
        raise InputError(f"BADGE: {badge!r} is not a badge number")
    return cleaned
