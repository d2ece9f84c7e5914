"""The hosts directory: the staff whom visitors come to see, and how each wants to be told.

An entry is found by its name's key (`names.name_key`), so a sign-in's `--host "bob smith"` finds
"Bob Smith". Each entry has an e-mail address, a webhook URL, or both. The directory names people,
so each entry ends like any record (`retention.hosts`): its clock restarts when it is added,
changed or named at a sign-in, and an entry nobody has used for that long is purged.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text, name_key, printable
from facility.store.models import Host

# Deliberately loose: one @, no spaces or angle brackets, a dot in the domain. The mail server
# has the last word; this catches what was typed into the wrong option.
_EMAIL = re.compile(r"^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$")


def check_email(value: str | None) -> str | None:
    """An e-mail address as stored, or None; InputError naming --email."""
    text = clean_text(value, what="--email", limit=254)
    if text is None:
        return None
    if not _EMAIL.match(text):
        raise InputError(f"--email: {printable(text)!r} is not an e-mail address")
    return text


def check_webhook(value: str | None) -> str | None:
    """A webhook URL as stored (http or https, with a host), or None; InputError naming --webhook."""
    text = clean_text(value, what="--webhook", limit=2000)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in text:
        raise InputError(f"--webhook: {printable(text)!r} is not an http(s) URL")
    return text


def add(
    session: Session,
    *,
    now: datetime,
    name: str,
    email: str | None = None,
    webhook: str | None = None,
) -> tuple[Host, bool]:
    """Add a host or change an existing one's addresses; (entry, whether it is new).

    An option left out keeps what the entry had.
    """
    clean = clean_text(name, what="NAME")
    if not clean:
        raise InputError("NAME: a host needs a name")
    email, webhook = check_email(email), check_webhook(webhook)
    host = find(session, clean)
    created = host is None
    if host is None:
        if email is None and webhook is None:
            raise InputError("give --email, --webhook or both: how the host is told")
        host = Host(name=clean, name_key=name_key(clean), added_at=now)
    host.name = clean
    host.email = email if email is not None else host.email
    host.webhook = webhook if webhook is not None else host.webhook
    host.retain_from = now
    session.add(host)
    try:
        session.flush()
    except IntegrityError as err:  # another terminal added the same name a moment ago
        raise InputError(f"NAME: host {printable(clean)!r} was just added elsewhere") from err
    return host, created


def remove(session: Session, name: str) -> Host:
    """Remove a host (and what is still waiting to be sent to them)."""
    host = find(session, name)
    if host is None:
        raise InputError(f"NAME: there is no host {printable(name)!r}")
    session.delete(host)
    session.flush()
    return host


def find(session: Session, name: str | None) -> Host | None:
    """The entry whose name matches `name` (by key), if any."""
    key = name_key(name or "")
    if not key:
        return None
    return session.exec(select(Host).where(Host.name_key == key)).first()


def get(session: Session, host_id: int) -> Host:
    """The entry with this id; InputError when there is none."""
    host = session.get(Host, host_id)
    if host is None:
        raise InputError("host: there is no such host in the directory")
    return host


def listing(session: Session) -> list[Host]:
    """Every entry, by name."""
    return list(session.exec(select(Host).order_by(col(Host.name_key))))


def used(session: Session, host: Host, *, now: datetime) -> None:
    """A sign-in named this host: its clock starts again."""
    if host.retain_from is None or host.retain_from < now:
        host.retain_from = now
        session.add(host)


def ways(host: Host) -> list[str]:
    """How `host` is told: `e-mail`, `webhook`, or both."""
    return [way for way, there in (("e-mail", host.email), ("webhook", host.webhook)) if there]


def told(session: Session, name: str | None) -> str:
    """`; Bob Smith will be told by e-mail`, for a sign-in's message; "" for a host not listed."""
    host = find(session, name)
    if host is None:
        return ""
    return f"; {printable(host.name)} will be told by {' and '.join(ways(host))}"
