"""The hosts directory: the staff whom visitors come to see, and how each wants to be told.

A host belongs to one site: the office whose visitors come to see them (`site_id`; a name is
unique per site, and the same person may be listed at two offices). A sign-in finds its host at
the visit's site. Every function takes the site and defaults to the default site, for callers
written before sites.

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
from facility.store.models import DEFAULT_SITE, Host

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
    site_id: int = DEFAULT_SITE,
) -> tuple[Host, bool]:
    """Add a host at a site or change an existing one's addresses; (entry, whether it is new).

    An option left out keeps what the entry had.
    """
    clean = clean_text(name, what="NAME")
    if not clean:
        raise InputError("NAME: a host needs a name")
    email, webhook = check_email(email), check_webhook(webhook)
    host = find(session, clean, site_id=site_id)
    created = host is None
    if host is None:
        if email is None and webhook is None:
            raise InputError("give --email, --webhook or both: how the host is told")
        host = Host(site_id=site_id, name=clean, name_key=name_key(clean), added_at=now)
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


def remove(session: Session, name: str, *, site_id: int = DEFAULT_SITE) -> Host:
    """Remove a host of a site (and what is still waiting to be sent to them)."""
    host = find(session, name, site_id=site_id)
    if host is None:
        raise InputError(f"NAME: there is no host {printable(name)!r}")
    session.delete(host)
    session.flush()
    return host


def find(session: Session, name: str | None, *, site_id: int = DEFAULT_SITE) -> Host | None:
    """The entry of the site whose name matches `name` (by key), if any."""
    key = name_key(name or "")
    if not key:
        return None
    return session.exec(select(Host).where(Host.site_id == site_id, Host.name_key == key)).first()


def get(session: Session, host_id: int, *, site_id: int | None = None) -> Host:
    """The entry with this id (at `site_id`, when given); InputError when there is none."""
    host = session.get(Host, host_id)
    if host is None or (site_id is not None and host.site_id != site_id):
        raise InputError("host: there is no such host in the directory")
    return host


def listing(session: Session, *, site_id: int | None = DEFAULT_SITE) -> list[Host]:
    """Every entry of a site (None: of every site), by name."""
    statement = select(Host).order_by(col(Host.name_key), col(Host.site_id))
    if site_id is not None:
        statement = statement.where(Host.site_id == site_id)
    return list(session.exec(statement))


def used(session: Session, host: Host, *, now: datetime) -> None:
    """A sign-in named this host: its clock starts again."""
    if host.retain_from is None or host.retain_from < now:
        host.retain_from = now
        session.add(host)


def ways(host: Host) -> list[str]:
    """How `host` is told: `e-mail`, `webhook`, or both."""
    return [way for way, there in (("e-mail", host.email), ("webhook", host.webhook)) if there]


def told(session: Session, name: str | None, *, site_id: int = DEFAULT_SITE) -> str:
    """`; Bob Smith will be told by e-mail`, for a sign-in's message; "" for a host not listed
    at the visit's site."""
    host = find(session, name, site_id=site_id)
    if host is None:
        return ""
    return f"; {printable(host.name)} will be told by {' and '.join(ways(host))}"
