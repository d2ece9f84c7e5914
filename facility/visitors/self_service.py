"""What a visitor may do alone at a kiosk: sign in, and sign out by their own full name.

Nothing here tells a visitor about anyone else. A sign-out needs the whole name (matched by key,
ignoring case and accents, never by part of it), and every way it can fail (nobody by that name on
site, or several) gets the same answer, so a kiosk cannot be used to learn who is in the building.
The host is chosen from the hosts directory, so every sign-in made here can tell its host.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text, name_key
from facility.store.models import DEFAULT_SITE, Visit, row_id
from facility.visitors import hosts, onsite, reception

NOT_FOUND = (
    "We could not sign you out under that name. Please type your full name as you gave it "
    "when you arrived, or ask at reception."
)


def sign_in(
    session: Session,
    *,
    now: datetime,
    name: str,
    company: str | None,
    host_id: int | None,
    skew: timedelta = reception.CLOCK_SKEW,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> Visit:
    """Sign the visitor in now at `site_id` (the kiosk's), visiting the directory's host
    `host_id` (None: not known)."""
    host = None if host_id is None else hosts.get(session, host_id, site_id=site_id).name
    return reception.sign_in(
        session,
        now=now,
        name=name,
        company=company,
        host=host,
        skew=skew,
        site_zone=site_zone,
        site_id=site_id,
    )


def sign_out(
    session: Session,
    *,
    now: datetime,
    name: str,
    skew: timedelta = reception.CLOCK_SKEW,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> tuple[Visit, list[str]]:
    """Sign out the one visitor on site `site_id` (the kiosk's) with exactly this name; (visit,
    badges to hand back). Someone on another office's site is not found here.

    InputError(NOT_FOUND) when there is none or more than one.
    """
    key = name_key(clean_text(name, what="name") or "")
    if not key:
        raise InputError(NOT_FOUND)
    found = session.exec(
        select(Visit)
        .where(
            Visit.site_id == site_id,
            Visit.name_key == key,
            col(Visit.signed_out_at).is_(None),
            col(Visit.retain_from).is_(None),
        )
        .limit(2)
    ).all()
    if len(found) != 1:
        raise InputError(NOT_FOUND)
    visit = found[0]
    badges = onsite.badges_of(session, row_id(visit))
    reception.sign_out(session, visit, now=now, skew=skew, site_zone=site_zone)
    return visit, list(badges)
