"""Kiosks: visitor-facing sign-in devices, paired once with a link rather than a staff login.

`add` makes a kiosk with a one-time pairing token (valid for PAIRING_LIFETIME); opening
`/kiosk/pair/<token>` on the tablet and confirming trades it for a device token kept in the
tablet's cookie. Only SHA-256 hashes of both tokens are stored, so a copy of the database pairs
nothing. `revoke` ends the kiosk at once: its cookie is worth nothing from the next request on.
Adding, pairing and revoking are audited by kiosk name (a device, not a person).

A kiosk stands in one office (`site_id`, the site `kiosk add` ran at): it signs visitors in and
out there only, whichever web server serves it. Names are the organisation's: `lobby` at two
offices needs two names (`ams-lobby`, `bru-lobby`), so `kiosk revoke NAME` never has to ask which.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text, printable
from facility.store.models import DEFAULT_SITE, Kiosk, Site
from facility.trail import audit

PAIRING_LIFETIME = timedelta(hours=24)
PAIR_PATH = "/kiosk/pair/"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add(
    session: Session, *, now: datetime, actor: str, name: str, site_id: int = DEFAULT_SITE
) -> tuple[Kiosk, str]:
    """A new kiosk at `site_id` (or a new pairing for a revoked one, now standing there) and its
    one-time pairing token."""
    clean = clean_text(name, what="NAME", limit=64)
    if not clean:
        raise InputError("NAME: a kiosk needs a name (e.g. lobby)")
    token = secrets.token_urlsafe(32)
    kiosk = session.exec(select(Kiosk).where(Kiosk.name == clean)).first()
    if kiosk is not None and kiosk.revoked_at is None:
        raise InputError(
            f"NAME: kiosk {printable(clean)!r} exists; `facility kiosk revoke` it first to pair "
            "another device"
        )
    kiosk = kiosk or Kiosk(name=clean, added_at=now, added_by=actor)
    kiosk.added_at, kiosk.added_by, kiosk.site_id = now, actor, site_id
    kiosk.pairing_hash = _hash(token)
    kiosk.pairing_expires_at = now + PAIRING_LIFETIME
    kiosk.device_hash, kiosk.paired_at, kiosk.revoked_at = None, None, None
    session.add(kiosk)
    try:
        session.flush()
    except IntegrityError as err:
        raise InputError(f"NAME: kiosk {printable(clean)!r} was just added elsewhere") from err
    site = session.get(Site, site_id)
    code = site.code if site is not None else str(site_id)
    audit.append(session, now=now, actor=actor, action="kiosk.add", kiosk=clean, site=code)
    return kiosk, token


def find(session: Session, name: str) -> Kiosk | None:
    """The kiosk called `name`, revoked or not."""
    return session.exec(select(Kiosk).where(Kiosk.name == (name or "").strip())).first()


def revoke(session: Session, *, now: datetime, actor: str, name: str) -> Kiosk:
    """End a kiosk: its pairing link and its device cookie stop working at once."""
    kiosk = find(session, name)
    if kiosk is None or kiosk.revoked_at is not None:
        raise InputError(f"NAME: there is no kiosk {printable(name)!r} to revoke")
    kiosk.revoked_at = now
    kiosk.pairing_hash = kiosk.device_hash = kiosk.pairing_expires_at = None
    session.add(kiosk)
    session.flush()
    audit.append(session, now=now, actor=actor, action="kiosk.revoke", kiosk=kiosk.name)
    return kiosk


def listing(session: Session, site_ids: Collection[int] | None = None) -> list[Kiosk]:
    """Every kiosk (of the sites `site_ids`, when given), by name."""
    statement = select(Kiosk).order_by(col(Kiosk.name))
    if site_ids is not None:
        statement = statement.where(col(Kiosk.site_id).in_(sorted(site_ids)))
    return list(session.exec(statement))


def pairing(session: Session, token: str, *, now: datetime) -> Kiosk | None:
    """The kiosk this pairing token may still pair, if any."""
    kiosk = session.exec(select(Kiosk).where(Kiosk.pairing_hash == _hash(token))).first()
    if kiosk is None or kiosk.revoked_at is not None:
        return None
    if kiosk.pairing_expires_at is None or kiosk.pairing_expires_at <= now:
        return None
    return kiosk


def pair(session: Session, token: str, *, now: datetime) -> tuple[Kiosk, str] | None:
    """Trade a valid pairing token for a device token, once; None if it is not (or no longer) valid."""
    kiosk = pairing(session, token, now=now)
    if kiosk is None:
        return None
    device = secrets.token_urlsafe(32)
    taken = session.exec(
        update(Kiosk)
        .where(col(Kiosk.id) == kiosk.id, col(Kiosk.pairing_hash) == _hash(token))
        .values(
            pairing_hash=None, pairing_expires_at=None, device_hash=_hash(device), paired_at=now
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # paired by someone else a moment ago
        return None
    audit.append(
        session, now=now, actor=f"kiosk:{kiosk.name}", action="kiosk.pair", kiosk=kiosk.name
    )
    session.refresh(kiosk)
    return kiosk, device


def device(session: Session, token: str | None) -> Kiosk | None:
    """The live kiosk this device token belongs to, if any."""
    if not token:
        return None
    kiosk = session.exec(select(Kiosk).where(Kiosk.device_hash == _hash(token))).first()
    return None if kiosk is None or kiosk.revoked_at is not None else kiosk
