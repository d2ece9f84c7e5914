"""Reception: signing visitors in and out, and lending and taking back visitor badges.

Every function takes the session, the current instant `now` and the instant the event happened
`at` (a receptionist may record a missed time, never a future one). A failure raises InputError
before anything is written, and the caller's transaction rolls back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from facility import muster
from facility.errors import InputError
from facility.models import BadgeLoan, Visit
from facility.names import clean_text, name_key

# A terminal's clock and the server's may differ a little; more than this is a typo.
CLOCK_SKEW = timedelta(minutes=1)


def check_not_future(at: datetime, now: datetime, *, what: str = "--at") -> datetime:
    """Refuse an event time in the future."""
    if at > now + CLOCK_SKEW:
        raise InputError(f"{what}: {at.isoformat()} is in the future (now is {now.isoformat()})")
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
) -> Visit:
    """Open a visit, and lend it a badge when one is given."""
    at = check_not_future(at or now, now)
    clean_name = clean_text(name, what="NAME")
    if not clean_name:
        raise InputError("NAME: a visitor needs a name")
    visit = Visit(
        name=clean_name,
        name_key=name_key(clean_name),
        company=clean_text(company, what="--company"),
        host=clean_text(host, what="--host"),
        signed_in_at=at,
    )
    session.add(visit)
    session.flush()
    if badge:
        issue_badge(session, now=now, badge=badge, visit_id=visit.id, at=at)
    muster.arrived(session, visit_id=visit.id, name=visit.name, now=now)
    return visit


def find_open_visit(
    session: Session,
    *,
    visit_id: int | None = None,
    name: str | None = None,
    badge: str | None = None,
) -> Visit:
    """The open visit named by id, visitor name or the badge it holds."""
    if visit_id is not None:
        visit = session.get(Visit, visit_id)
        if visit is None:
            raise InputError(f"ID: there is no visit {visit_id}")
        if visit.signed_out_at is not None:
            raise InputError(f"ID: visit {visit_id} was already signed out")
        return visit
    if badge is not None:
        loan = _open_loan(session, badge)
        if loan is None or loan.visit_id is None:
            raise InputError(f"--badge: badge {badge} is not out with anyone on site")
        return find_open_visit(session, visit_id=loan.visit_id)
    if name is not None:
        return _open_visit_by_name(session, name)
    raise InputError("give the visit's ID, --name or --badge")


def _open_visit_by_name(session: Session, name: str) -> Visit:
    matches = session.exec(
        select(Visit).where(Visit.name_key == name_key(name), col(Visit.signed_out_at).is_(None))
    ).all()
    if not matches:
        raise InputError(f"--name: nobody called {name!r} is signed in")
    if len(matches) > 1:
        ids = ", ".join(str(v.id) for v in matches)
        raise InputError(
            f"--name: {len(matches)} people called {name!r} are signed in (visits {ids}); give the ID"
        )
    return matches[0]


def sign_out(
    session: Session,
    visit: Visit,
    *,
    now: datetime,
    at: datetime | None = None,
    badge_kept: bool = False,
    closed_by: str = "reception",
) -> Visit:
    """Close a visit (its retention clock starts) and take its badges back unless kept."""
    at = check_not_future(at or now, now)
    if at < visit.signed_in_at:
        raise InputError(
            f"--at: {at.isoformat()} is before the sign-in at {visit.signed_in_at.isoformat()}"
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
    muster.departed(session, visit_id=visit.id, at=at)
    return visit


def issue_badge(
    session: Session, *, now: datetime, badge: str, visit_id: int, at: datetime | None = None
) -> BadgeLoan:
    """Lend `badge` to an open visit; a badge already out is refused."""
    at = check_not_future(at or now, now)
    badge = _badge_number(badge)
    visit = find_open_visit(session, visit_id=visit_id)
    if at < visit.signed_in_at:
        raise InputError(f"--at: {at.isoformat()} is before visit {visit.id} signed in")
    current = _open_loan(session, badge)
    if current is not None:
        raise InputError(f"BADGE: badge {badge} is already out with visit {current.visit_id}")
    loan = BadgeLoan(badge=badge, visit_id=visit.id, issued_at=at)
    session.add(loan)
    try:
        session.flush()
    except IntegrityError as err:  # another terminal issued it a moment ago
        raise InputError(f"BADGE: badge {badge} is already out") from err
    return loan


def return_badge(
    session: Session, *, now: datetime, badge: str, at: datetime | None = None
) -> BadgeLoan:
    """Take a badge back; its loan's retention clock starts."""
    at = check_not_future(at or now, now)
    badge = _badge_number(badge)
    loan = _open_loan(session, badge) or _lost_loan(session, badge)
    if loan is None:
        raise InputError(f"BADGE: badge {badge} is not out")
    if at < loan.issued_at:
        raise InputError(f"--at: {at.isoformat()} is before badge {badge} was issued")
    _close_loan(session, loan, at)
    session.flush()
    return loan


def _close_loan(session: Session, loan: BadgeLoan, at: datetime) -> None:
    loan.returned_at = at
    loan.retain_from = at
    session.add(loan)


def _open_loan(session: Session, badge: str) -> BadgeLoan | None:
    return session.exec(
        select(BadgeLoan).where(
            BadgeLoan.badge == badge,
            col(BadgeLoan.returned_at).is_(None),
            col(BadgeLoan.lost).is_(False),
        )
    ).first()


def _lost_loan(session: Session, badge: str) -> BadgeLoan | None:
    """The newest loan of a badge marked lost and not yet back: finding it closes that loan."""
    return session.exec(
        select(BadgeLoan)
        .where(
            BadgeLoan.badge == badge,
            col(BadgeLoan.returned_at).is_(None),
            col(BadgeLoan.lost).is_(True),
        )
        .order_by(col(BadgeLoan.issued_at).desc())
    ).first()


def _badge_number(badge: str) -> str:
    cleaned = badge.strip()
    if not cleaned or len(cleaned) > 64 or any(ch.isspace() for ch in cleaned):
        raise InputError(f"BADGE: {badge!r} is not a badge number")
    return cleaned
