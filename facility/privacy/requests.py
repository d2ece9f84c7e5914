"""The register of data-subject requests: each right asked for, its legal deadline, its outcome.

GDPR article 12(3): a request is answered "without undue delay and in any event within one month
of receipt", a period that may be extended by two further months where necessary, the person
being told so within the first month. Periods are counted as Regulation 1182/71 counts them: a
month from a day ends at the end of the same date in the next month (or of that month's last
day, when it has no such date), in site time. A request is overdue from the first instant after
its due day.

A request names its subject as `subject export` does (`--name`, `--mac`, `--badge`) and the
contact the answer goes to. The commands that answer one can name it (`--request ID`): the
request must be open, of a type that command answers (`ANSWERED_BY`), and about the same
subject; the command's audit entry names the request. `request close` records the outcome and
starts the request's retention clock: a request is a kind of its own (`requests`), kept
`retention.requests` after it is closed, then purged. The report lists the open ones and fails on
an overdue one.

The audit trail names the subject by its keyed hash and the request by its id; the contact and
the outcome stay in the register only.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, and_, true
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text
from facility.privacy.subjects import Subject, check_reason
from facility.store.models import DataRequest
from facility.timefmt import site_text, utc_text
from facility.trail import audit

# The rights a request can ask for, in the order of the GDPR's articles 15 to 21.
TYPES = ("access", "rectification", "erasure", "restriction", "portability", "objection")
ARTICLES = {
    "access": 15,
    "rectification": 16,
    "erasure": 17,
    "restriction": 18,
    "portability": 20,
    "objection": 21,
}
# The commands that answer a request, and the types each may answer.
ANSWERED_BY = {
    "subject export": ("access", "portability"),
    "subject erase": ("erasure",),
    "subject rectify": ("rectification",),
    "subject restrict": ("restriction",),
    "subject unrestrict": ("restriction",),
    "wifi ignore": ("objection",),
}
FIRST_PERIOD = 1  # month (article 12(3))
MOST_EXTENSION = 2  # further months (article 12(3))
STATES = ("open", "overdue", "closed", "all")


def add_months(day: date, months: int) -> date:
    """The same date `months` later, or that month's last day when it has no such date."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_day(received_at: datetime, months: int, site_zone: tzinfo) -> date:
    """The last day of the answer period: `months` after the site date of receipt."""
    return add_months(received_at.astimezone(site_zone).date(), months)


def due_instant(received_at: datetime, months: int, site_zone: tzinfo) -> datetime:
    """The first instant the answer is late: the start of the site day after the due day."""
    after = due_day(received_at, months, site_zone) + timedelta(days=1)
    return datetime.combine(after, time(), tzinfo=site_zone).astimezone(UTC)


def check_type(value: str) -> str:
    """`value` if it names a right a request can ask for; InputError naming TYPE otherwise."""
    cleaned = value.strip().lower()
    if cleaned not in TYPES:
        raise InputError(f"TYPE: {value!r} is not a request type (one of {', '.join(TYPES)})")
    return cleaned


def _text(value: str, what: str, *, limit: int = 500) -> str:
    cleaned = clean_text(value, what=what, limit=limit)
    if not cleaned:
        raise InputError(f"{what}: must not be empty")
    return cleaned


def open_request(
    session: Session,
    *,
    now: datetime,
    actor: str,
    key: bytes,
    request_type: str,
    subject: Subject,
    received_at: datetime,
    contact: str,
    site_zone: tzinfo,
    skew: timedelta = timedelta(0),
) -> DataRequest:
    """Register a request received at `received_at`; its answer is due one month later."""
    request_type = check_type(request_type)
    if received_at > now + skew:
        raise InputError(
            f"--received: {site_text(received_at, site_zone)} is in the future "
            f"(now is {site_text(now, site_zone)})"
        )
    row = DataRequest(
        type=request_type,
        subject_kind=subject.kind,
        subject=subject.value,
        subject_key=subject.key,
        contact=_text(contact, "--contact"),
        received_at=received_at,
        due_at=due_instant(received_at, FIRST_PERIOD, site_zone),
        opened_by=actor,
        opened_at=now,
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        now=now,
        actor=actor,
        action="request.open",
        request=row.id,
        type=request_type,
        subject=subject.hashed(key),
        subject_kind=subject.kind,
        received=utc_text(received_at),
        due=utc_text(row.due_at),
    )
    return row


def get(session: Session, request_id: int, *, what: str = "ID") -> DataRequest:
    """The request `request_id`; InputError naming `what` when there is none."""
    row = session.get(DataRequest, request_id)
    if row is None:
        raise InputError(f"{what}: there is no request {request_id}")
    return row


def _open(session: Session, request_id: int, *, what: str = "ID") -> DataRequest:
    row = get(session, request_id, what=what)
    if row.closed_at is not None:
        raise InputError(f"{what}: request {request_id} is closed")
    return row


def _subject_of(row: DataRequest) -> Subject:
    return Subject(row.subject_kind, row.subject, row.subject_key)


def extend(
    session: Session,
    request_id: int,
    *,
    now: datetime,
    actor: str,
    reason: str,
    months: int,
    site_zone: tzinfo,
) -> DataRequest:
    """Extend the answer period by `months` (at most two in all), decided within the first month.

    The person must be told of an extension, and why, within the first month (article 12(3)):
    after that it is refused, and the request is late.
    """
    row = _open(session, request_id)
    if months < 1 or row.extended_months + months > MOST_EXTENSION:
        left = MOST_EXTENSION - row.extended_months
        raise InputError(
            f"--months: request {request_id} may be extended by {left} more month(s) at most "
            f"(article 12(3) allows {MOST_EXTENSION} in all)"
        )
    first_due = due_instant(row.received_at, FIRST_PERIOD, site_zone)
    if now >= first_due:
        last = due_day(row.received_at, FIRST_PERIOD, site_zone)
        raise InputError(
            f"ID: request {request_id} can no longer be extended: an extension must be decided "
            f"and told to the person within the first month, by {last.isoformat()}"
        )
    reason = check_reason(reason, _subject_of(row))
    row.extended_months += months
    row.extension_reason = reason
    row.due_at = due_instant(row.received_at, FIRST_PERIOD + row.extended_months, site_zone)
    session.add(row)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="request.extend",
        request=row.id,
        months=months,
        due=utc_text(row.due_at),
        reason=reason,
    )
    return row


def close(
    session: Session, request_id: int, *, now: datetime, actor: str, outcome: str
) -> DataRequest:
    """Close the request with its outcome; its retention clock starts now."""
    row = _open(session, request_id)
    row.outcome = _text(outcome, "--outcome")
    row.closed_at = row.retain_from = now
    row.closed_by = actor
    session.add(row)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="request.close",
        request=row.id,
        type=row.type,
        late=now >= row.due_at,
    )
    return row


def answering(
    session: Session, request_id: int | None, *, command: str, subject: Subject
) -> DataRequest | None:
    """The open request `command` answers for `subject` (None when none is named).

    InputError naming --request when it is closed, of a type `command` does not answer, or
    about another subject.
    """
    if request_id is None:
        return None
    row = _open(session, request_id, what="--request")
    types = ANSWERED_BY[command]
    if row.type not in types:
        raise InputError(
            f"--request: request {request_id} asks for {row.type}; `{command}` answers "
            f"{' or '.join(types)}"
        )
    if (row.subject_kind, row.subject_key) != (subject.kind, subject.key):
        raise InputError(f"--request: request {request_id} is about another subject")
    return row


def state_condition(state: str, *, now: datetime) -> ColumnElement[bool]:
    """Which requests `request list` shows: open, overdue (open past due), closed or all."""
    closed = col(DataRequest.closed_at)
    if state == "open":
        return closed.is_(None)
    if state == "overdue":
        return and_(closed.is_(None), col(DataRequest.due_at) <= now)
    if state == "closed":
        return closed.is_not(None)
    return true()


def listing(session: Session, *, now: datetime, state: str = "all") -> list[DataRequest]:
    """Requests in `state` (STATES), oldest receipt first."""
    statement = (
        select(DataRequest)
        .where(state_condition(state, now=now))
        .order_by(col(DataRequest.received_at), col(DataRequest.id))
    )
    return list(session.exec(statement).all())


def of_subject(session: Session, subject: Subject) -> list[DataRequest]:
    """Every request about `subject`: a subject export shows them."""
    statement = (
        select(DataRequest)
        .where(DataRequest.subject_kind == subject.kind, DataRequest.subject_key == subject.key)
        .order_by(col(DataRequest.received_at), col(DataRequest.id))
    )
    return list(session.exec(statement).all())


@dataclass(frozen=True)
class Summary:
    """What the report says of requests: the open ones and those past their deadline."""

    open: list[dict[str, Any]]
    overdue: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        """`{"open": [...], "overdue": [...]}`, each without subject or contact."""
        return {"open": self.open, "overdue": self.overdue}


def summary(session: Session, *, now: datetime) -> Summary:
    """The open requests and the overdue among them, for the report (no subject, no contact)."""
    found = [brief(row, now=now) for row in listing(session, now=now, state="open")]
    return Summary(found, [r for r in found if r["overdue"]])


def brief(row: DataRequest, *, now: datetime) -> dict[str, Any]:
    """A request as the report lists it: no subject, no contact."""
    return {
        "id": row.id,
        "type": row.type,
        "received_at": utc_text(row.received_at),
        "due_at": utc_text(row.due_at),
        "extended_months": row.extended_months,
        "overdue": row.closed_at is None and now >= row.due_at,
    }


def as_json(row: DataRequest, *, now: datetime) -> dict[str, Any]:
    """Every field of a request, times in the machine form, and whether it is overdue."""
    return {
        "id": row.id,
        "type": row.type,
        "subject": {"kind": row.subject_kind, "value": row.subject},
        "contact": row.contact,
        "received_at": utc_text(row.received_at),
        "due_at": utc_text(row.due_at),
        "extended_months": row.extended_months,
        "extension_reason": row.extension_reason,
        "opened_by": row.opened_by,
        "opened_at": utc_text(row.opened_at),
        "closed_at": utc_text(row.closed_at),
        "closed_by": row.closed_by,
        "outcome": row.outcome,
        "state": state_of(row, now=now),
    }


def state_of(row: DataRequest, *, now: datetime) -> str:
    """`closed`, `overdue` or `open`."""
    if row.closed_at is not None:
        return "closed"
    return "overdue" if now >= row.due_at else "open"


def last_due_day(row: DataRequest, site_zone: tzinfo) -> date:
    """The last day the answer is on time (the day before `due_at`, in site time)."""
    return (row.due_at.astimezone(site_zone) - timedelta(seconds=1)).date()


def ids_text(rows: Sequence[dict[str, Any]]) -> str:
    """`3 (access), 7 (erasure)`."""
    return ", ".join(f"{r['id']} ({r['type']})" for r in rows)
