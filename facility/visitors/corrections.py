"""Rectification (GDPR article 16): correcting a visit's name, company, host or times.

Reception corrects today's visits (`visitor edit`: a visit still open, or signed in or out since
the site's midnight); the privacy officer any visit (`subject rectify`, with a reason and the
request it answers). Both come here, and the audit entry names the visit and the fields that
changed, never their old or new values (invariant 7).

A visit's retention clock is its sign-out, so a corrected sign-out moves it: the record lives its
policy from the true time, never from the time of the correction, so a correction can neither
make it live longer than that nor keep it alive by itself. The badge loans that the wrong times
opened or closed (issued at the old sign-in, returned at the old sign-out) move with it, for the
same reason; so the door events a person's loans reach move too. A clock moved this way is
"known" from the correction (`known_at`), so the report gives the next purge its interval to take
a record whose true time is long past, as it does for a record imported late. A corrected name
also reaches the roll calls that list the visit.

A restricted visit (`privacy.restriction`) is the privacy officer's alone to correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text, name_key
from facility.privacy import restriction
from facility.store.models import DEFAULT_SITE, BadgeLoan, MusterEntry, Visit
from facility.timefmt import site_text
from facility.trail import audit
from facility.visitors.reception import CLOCK_SKEW, check_not_future

FIELDS = ("name", "company", "host", "signed_in_at", "signed_out_at")


@dataclass(frozen=True)
class Edit:
    """What to change; None leaves a field as it is, "" clears company or host."""

    name: str | None = None
    company: str | None = None
    host: str | None = None
    signed_in_at: datetime | None = None
    signed_out_at: datetime | None = None

    def given(self) -> bool:
        """Whether any field is to be changed."""
        return any(getattr(self, f) is not None for f in FIELDS)


@dataclass(frozen=True)
class Correction:
    """A correction done: the visit as it is now, the fields that changed, the loans moved."""

    visit: Visit
    fields: list[str]
    loans_moved: int

    def describe(self, site_zone: tzinfo) -> str:
        """One line for the person who corrected it."""
        visit = self.visit
        if not self.fields:
            return f"visit {visit.id}: already so; nothing changed"
        line = f"visit {visit.id}: {', '.join(self.fields)} corrected"
        if "signed_out_at" in self.fields:
            line += f"; its retention clock starts {site_text(visit.retain_from, site_zone)}"
        if self.loans_moved:
            line += f"; {self.loans_moved} badge loan(s) moved with it"
        return line


def todays_visit(
    session: Session, visit_id: int, *, since: datetime, site_id: int = DEFAULT_SITE
) -> Visit:
    """The visit reception at the site may correct: of that site, open, or signed in or out since
    `since` (site midnight), and not restricted; InputError naming ID otherwise."""
    visit = session.get(Visit, visit_id)
    today = (
        visit is not None
        and visit.site_id == site_id
        and (
            visit.signed_out_at is None
            or visit.signed_in_at >= since
            or visit.signed_out_at >= since
        )
    )
    if visit is None or not today:
        raise InputError(
            f"ID: visit {visit_id} is not one of today's visits; the privacy officer corrects "
            "older ones (`facility subject rectify`)"
        )
    if restriction.is_restricted(session, "visits", visit_id):
        raise InputError(
            f"ID: visit {visit_id} is restricted; only the privacy officer may correct it "
            "(`facility subject rectify`)"
        )
    return visit


def any_visit(session: Session, visit_id: int) -> Visit:
    """The visit `visit_id`, whenever it was; InputError naming ID when there is none."""
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise InputError(f"ID: there is no visit {visit_id}")
    return visit


def correct(
    session: Session,
    visit: Visit,
    edit: Edit,
    *,
    now: datetime,
    actor: str,
    by: str,
    reason: str | None = None,
    request_id: int | None = None,
    skew: timedelta = CLOCK_SKEW,
    site_zone: tzinfo = UTC,
) -> Correction:
    """Apply `edit` to `visit`, move the clocks it moves, and audit the fields changed.

    `by` is the role that corrects (`reception` or `privacy`). Nothing is written when no field
    changes. InputError, before anything is written, for a time in the future, a sign-in after
    the sign-out, a sign-out of a visit still open, or a loan the new times would turn inside out.
    """
    if not edit.given():
        raise InputError(
            "give at least one of --name, --company, --host, --signed-in, --signed-out"
        )
    new = _new_values(visit, edit, now=now, skew=skew, site_zone=site_zone)
    fields = [f for f in FIELDS if new[f] != getattr(visit, f)]
    if not fields:
        return Correction(visit, [], 0)
    old_in, old_out = visit.signed_in_at, visit.signed_out_at
    moved = _move_loans(session, visit, old_in, old_out, new, now=now, site_zone=site_zone)
    for name in fields:
        setattr(visit, name, new[name])
    if "name" in fields:
        visit.name_key = name_key(new["name"])
        session.execute(
            update(MusterEntry)
            .where(col(MusterEntry.visit_id) == visit.id, col(MusterEntry.name).is_not(None))
            .values(name=new["name"])
        )
    if "signed_out_at" in fields:
        visit.retain_from, visit.known_at = new["signed_out_at"], now
    session.add(visit)
    session.flush()
    details: dict[str, Any] = {"visit": visit.id, "fields": fields, "by": by}
    if moved:
        details["loans_moved"] = moved
    if reason is not None:
        details["reason"] = reason
    if request_id is not None:
        details["request"] = request_id
    audit.append(session, now=now, actor=actor, action="visit.rectify", **details)
    return Correction(visit, fields, moved)


def _new_values(
    visit: Visit, edit: Edit, *, now: datetime, skew: timedelta, site_zone: tzinfo
) -> dict[str, Any]:
    new: dict[str, Any] = {f: getattr(visit, f) for f in FIELDS}
    if edit.name is not None:
        cleaned = clean_text(edit.name, what="--name")
        if not cleaned:
            raise InputError("--name: a visitor needs a name")
        new["name"] = cleaned
    for field in ("company", "host"):
        typed = getattr(edit, field)
        if typed is not None:
            new[field] = clean_text(typed, what=f"--{field}") or None
    if edit.signed_in_at is not None:
        new["signed_in_at"] = check_not_future(
            edit.signed_in_at, now, what="--signed-in", skew=skew, site_zone=site_zone
        )
    if edit.signed_out_at is not None:
        if visit.signed_out_at is None:
            raise InputError(
                f"--signed-out: visit {visit.id} is still signed in; sign it out "
                "(`facility visitor sign-out ID --at T`)"
            )
        new["signed_out_at"] = check_not_future(
            edit.signed_out_at, now, what="--signed-out", skew=skew, site_zone=site_zone
        )
    if new["signed_out_at"] is not None and new["signed_out_at"] < new["signed_in_at"]:
        raise InputError(
            f"--signed-out: {site_text(new['signed_out_at'], site_zone)} is before the sign-in at "
            f"{site_text(new['signed_in_at'], site_zone)}"
        )
    return new


def _move_loans(
    session: Session,
    visit: Visit,
    old_in: datetime,
    old_out: datetime | None,
    new: dict[str, Any],
    *,
    now: datetime,
    site_zone: tzinfo,
) -> int:
    """Move the visit's loans that began at its old sign-in or ended at its old sign-out."""
    loans = session.exec(select(BadgeLoan).where(BadgeLoan.visit_id == visit.id)).all()
    moved = 0
    for loan in loans:
        issued, returned = loan.issued_at, loan.returned_at
        if issued == old_in:
            issued = new["signed_in_at"]
        if returned is not None and old_out is not None and returned == old_out:
            returned = new["signed_out_at"]
        if (issued, returned) == (loan.issued_at, loan.returned_at):
            continue
        if returned is not None and returned < issued:
            raise InputError(
                f"badge {loan.badge} was lent to visit {visit.id} from "
                f"{site_text(issued, site_zone)} to {site_text(returned, site_zone)}: the "
                "corrected times would turn that loan inside out; correct both times"
            )
        if returned != loan.returned_at:
            loan.retain_from, loan.known_at = returned, now
        loan.issued_at, loan.returned_at = issued, returned
        session.add(loan)
        moved += 1
    return moved
