"""The outbox of host notifications: queued by the sign-in, sent by someone else, later.

A sign-in never waits for a mail server or a webhook: it only adds rows here, in its own
transaction (a sign-in that rolls back tells nobody). Senders (the web server's background thread
right after a sign-in, and the daemon's `notify` job every `notify.retry_interval`) claim due rows
one at a time with a conditional UPDATE, so that two senders never send the same row, and a
sender that died mid-attempt leaves a claim that lapses after `lease`. A delivered row is deleted
at once; a failed one is tried again after a growing pause (`backoff`: from
`notify.retry_interval`, doubling, at most LONGEST_PAUSE), and what was never
delivered is purged by its policy (`retention.notifications`), like any record.

One row per way of telling (e-mail, webhook), so each is retried on its own. A row holds what the
message says and nothing more: the visitor's name and company, and the time they signed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlmodel import Session, col, select

from facility.store.models import Host, HostNotification, Visit, row_id
from facility.visitors import hosts

# A sign-in recorded this long after it happened (`--at`) tells nobody: the visitor is not waiting.
FRESH = timedelta(hours=1)
LONGEST_PAUSE = timedelta(minutes=15)
CHANNELS = ("email", "webhook")


@dataclass(frozen=True)
class Claimed:
    """A notification a sender is now attempting, with where it goes."""

    id: int
    message_id: str
    channel: str
    address: str  # the host's e-mail address or webhook URL
    visitor: str
    company: str | None
    signed_in_at: datetime
    attempts: int  # including this one


@dataclass(frozen=True)
class Waiting:
    """What the outbox holds: for `doctor` and the logs."""

    count: int
    failing: int  # tried at least once without success
    oldest: datetime | None  # when the oldest waiting row was queued
    last_error: str | None
    last_failure: datetime | None


def announce(session: Session, visit: Visit, *, now: datetime) -> list[HostNotification]:
    """Queue a notification per way the visit's host (from its site's directory) wants to be
    told, at the visit's site."""
    if visit.host is None or visit.signed_in_at < now - FRESH:
        return []
    host = hosts.find(session, visit.host, site_id=visit.site_id)
    if host is None or host.id is None:
        return []
    hosts.used(session, host, now=now)
    addresses = {"email": host.email, "webhook": host.webhook}
    rows = [
        HostNotification(
            site_id=visit.site_id,
            message_id=uuid.uuid4().hex,
            host_id=host.id,
            channel=channel,
            visitor=visit.name,
            visitor_key=visit.name_key,
            company=visit.company,
            signed_in_at=visit.signed_in_at,
            next_attempt_at=now,
            retain_from=now,
        )
        for channel in CHANNELS
        if addresses[channel]
    ]
    session.add_all(rows)
    session.flush()
    return rows


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(HostNotification.next_attempt_at) <= now,
        or_(
            col(HostNotification.claimed_until).is_(None),
            col(HostNotification.claimed_until) <= now,
        ),
    )


def claim_due(
    session: Session,
    *,
    now: datetime,
    lease: timedelta,
    limit: int = 50,
    site_id: int | None = None,
) -> list[Claimed]:
    """Claim up to `limit` due notifications for `lease`, oldest due first, of the site `site_id`
    (None: of every site); commit before sending."""
    order = (col(HostNotification.next_attempt_at), col(HostNotification.id))
    candidates_of = select(HostNotification.id).where(_due(now))
    if site_id is not None:
        candidates_of = candidates_of.where(HostNotification.site_id == site_id)
    candidates = session.exec(candidates_of.order_by(*order).limit(limit)).all()
    claimed = []
    for notification_id in candidates:
        taken = session.exec(
            update(HostNotification)
            .where(col(HostNotification.id) == notification_id, _due(now))
            .values(
                claimed_until=now + lease,
                attempts=HostNotification.attempts + 1,
                last_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # another sender was quicker
            continue
        row = session.exec(
            select(HostNotification, Host)
            .join(Host, col(Host.id) == HostNotification.host_id)
            .where(HostNotification.id == notification_id)
        ).first()
        if row is None:
            continue
        notification, host = row
        address = host.email if notification.channel == "email" else host.webhook
        if not address:  # the host's entry changed since: nothing to send this way any more
            session.delete(notification)
            continue
        claimed.append(
            Claimed(
                id=row_id(notification),
                message_id=notification.message_id,
                channel=notification.channel,
                address=address,
                visitor=notification.visitor,
                company=notification.company,
                signed_in_at=notification.signed_in_at,
                attempts=notification.attempts,
            )
        )
    return claimed


def delivered(session: Session, notification_id: int) -> None:
    """The host was told: the row, and the name in it, go."""
    row = session.get(HostNotification, notification_id)
    if row is not None:
        session.delete(row)


def failed(
    session: Session, notification_id: int, *, now: datetime, error: str, pause: timedelta
) -> datetime | None:
    """Note a failed attempt; return when it is tried again (None: the row is gone meanwhile).

    `pause` is the first pause (`notify.retry_interval`); it doubles with each failure.
    """
    row = session.get(HostNotification, notification_id)
    if row is None:
        return None
    row.next_attempt_at = now + backoff(row.attempts, pause)
    row.claimed_until = None
    row.last_error = error[:500]
    session.add(row)
    return row.next_attempt_at


def backoff(attempts: int, pause: timedelta) -> timedelta:
    """The pause after the `attempts`-th failure: `pause`, doubling, at most LONGEST_PAUSE."""
    doubled: timedelta = pause * 2 ** min(max(attempts - 1, 0), 16)
    return min(doubled, max(LONGEST_PAUSE, pause))


def waiting(session: Session) -> Waiting:
    """How many notifications wait, how many of them failed, and the newest failure."""
    n = HostNotification
    count, failing, oldest = session.execute(
        select(
            func.count(),
            func.count(n.last_error),  # type: ignore[arg-type]
            func.min(n.retain_from),
        ).select_from(n)
    ).one()
    last = session.exec(
        select(n)
        .where(col(n.last_error).is_not(None))
        .order_by(col(n.last_attempt_at).desc())
        .limit(1)
    ).first()
    return Waiting(
        count=count,
        failing=failing,
        oldest=oldest,
        last_error=None if last is None else last.last_error,
        last_failure=None if last is None else last.last_attempt_at,
    )
