"""Sessions of the web accounts, kept in the database so that ending one ends it everywhere.

A session is a random token in the browser's cookie and a row here keyed by the token's SHA-256
(a copy of the database signs nobody in). It lasts `LIFETIME` from login and ends earlier when its
row goes: logout, a new password or new roles, `facility user revoke`, removing the account.

A row names a person (the account and the client address it logged in from), so every row has an
end: expired rows are deleted at every login and by every purge run (`delete_expired`), and the
report counts what is there. Staff accounts are not data subjects of `facility subject`; `facility
user sessions NAME` shows what is kept about one account and `facility user revoke NAME` erases it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from facility.store.models import User, WebSession

LIFETIME = timedelta(hours=12)  # a working day at the desk; then log in again
SEEN_EVERY = timedelta(minutes=5)  # how stale `seen_at` may get before a request updates it
CLOCK_SLACK = timedelta(minutes=1)  # a session started this far "in the future" still counts
MAX_ADDRESS = 64  # longer than any IPv6 text; what a proxy says is cut to this
TOKEN_BYTES = 32


@dataclass(frozen=True)
class Live:
    """A session found for a token: the row and its account."""

    row: WebSession
    user: User


def token_id(token: str) -> str:
    """The stored key of a session token."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start(
    session: Session,
    *,
    account: str,
    address: str | None,
    now: datetime,
    site_id: int | None = None,
) -> str:
    """A new session for `account` at the site its terminal serves (None: not chosen yet, or
    the server's own); its token (only the hash is stored). Expired rows go."""
    delete_expired(session, now=now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        WebSession(
            id=token_id(token),
            account=account,
            address=address[:MAX_ADDRESS] if address else None,
            site_id=site_id,
            started_at=now,
            seen_at=now,
            expires_at=now + LIFETIME,
        )
    )
    session.flush()
    return token


def find(session: Session, token: str, *, now: datetime) -> Live | None:
    """The live session of `token` with its account, or None (unknown, ended or expired)."""
    found = session.execute(
        select(WebSession, User)
        .join(User, col(User.name) == col(WebSession.account))
        .where(col(WebSession.id) == token_id(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.expires_at <= now or row.started_at > now + CLOCK_SLACK:
        return None
    return Live(row, user)


def needs_touch(row: WebSession, *, now: datetime) -> bool:
    """Whether `seen_at` is stale enough to be written again."""
    return now - row.seen_at >= SEEN_EVERY


def touch(session: Session, session_id: str, *, now: datetime) -> None:
    """Note that a session was used at `now`."""
    session.execute(update(WebSession).where(col(WebSession.id) == session_id).values(seen_at=now))


def choose(session: Session, session_id: str, *, site_id: int) -> None:
    """The site a session's terminal serves from now on (chosen after the password)."""
    session.execute(
        update(WebSession).where(col(WebSession.id) == session_id).values(site_id=site_id)
    )


def end(session: Session, token: str) -> bool:
    """End one session (logout); whether it was there."""
    result = session.exec(delete(WebSession).where(col(WebSession.id) == token_id(token)))
    return bool(result.rowcount)


def end_all(session: Session, account: str) -> int:
    """End every session of `account`; how many there were."""
    result = session.exec(delete(WebSession).where(col(WebSession.account) == account))
    return result.rowcount or 0


def delete_expired(session: Session, *, now: datetime) -> int:
    """Delete the sessions that expired at or before `now`; how many."""
    result = session.exec(delete(WebSession).where(col(WebSession.expires_at) <= now))
    return result.rowcount or 0


def listing(session: Session, *, now: datetime, account: str | None = None) -> list[WebSession]:
    """Live sessions (of `account`, or of everyone), by account and then oldest first."""
    statement = select(WebSession).where(col(WebSession.expires_at) > now)
    if account is not None:
        statement = statement.where(col(WebSession.account) == account)
    statement = statement.order_by(col(WebSession.account), col(WebSession.started_at))
    return list(session.execute(statement).scalars())


def counts(session: Session, *, now: datetime) -> dict[str, int]:
    """Sessions stored: live, and expired but not yet deleted (for the report)."""
    total = session.execute(select(func.count()).select_from(WebSession)).scalar_one()
    expired = session.execute(
        select(func.count()).select_from(WebSession).where(col(WebSession.expires_at) <= now)
    ).scalar_one()
    return {"live": total - expired, "expired": expired}
