"""Objections to wifi recording (GDPR article 21): devices whose leases are no longer stored.

`wifi ignore MAC --reason R` records the objection; from then on every lease report of that
device, from every source (lease files, the dnsmasq hook, MQTT), is counted at ingest and dropped
before anything is written (`drop_ignored`, called by `ingest.store_leases`): no new lease, and no
update to a stored one either, since a renewal or a later sighting would keep it longer. The
leases stored before the objection follow their policy, or go at once with `subject erase --mac`.
`wifi unignore` lifts the objection, and leases are stored again from then on.

The row names the device by its MAC, in the clear, like a blocked device: ingest must recognise
it without the site key, which the dnsmasq hook running as dnsmasq's user may not read. It lives
as long as the objection stands; a subject export of the MAC shows it, the report counts it, and
the audit trail names the device by its keyed hash only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from facility.privacy.subjects import Subject, check_reason
from facility.sources.macs import normalise_mac
from facility.sources.records import LeaseIn
from facility.store.models import IgnoredDevice, table_of
from facility.timefmt import utc_text
from facility.trail import audit

_I = table_of(IgnoredDevice)
CHUNK = 500  # MACs looked up per query: a bound parameter each, well under SQLite's limit
_COUNT = (
    update(_I)
    .where(_I.c.mac == bindparam("device"))
    .values(leases_ignored=_I.c.leases_ignored + bindparam("dropped"))
)


@dataclass(frozen=True)
class Change:
    """What `ignore` or `unignore` did: the MAC, whether anything changed, and the objection."""

    mac: str
    changed: bool
    device: IgnoredDevice | None


def ignore(
    session: Session,
    mac: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
    key: bytes,
    request_id: int | None = None,
) -> Change:
    """Stop storing leases of `mac` from now on; audited under the device's keyed hash."""
    mac = normalise_mac(mac, what="MAC")
    reason = _reason(reason, mac)
    row = {
        "mac": mac,
        "reason": reason,
        "ignored_by": actor,
        "ignored_at": now,
        "request_id": request_id,
        "leases_ignored": 0,
    }
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Two officers at once: the second finds the first one's objection, not an error.
    inserted = session.execute(
        module.insert(IgnoredDevice).values(**row).on_conflict_do_nothing().returning(_I.c.id)
    ).first()
    if inserted is None:
        return Change(mac, False, _find(session, mac))
    audit.append(
        session,
        now=now,
        actor=actor,
        action="wifi.ignore",
        subject=audit.subject_hash(key, "mac", mac),
        reason=reason,
        request=request_id,
    )
    return Change(mac, True, session.get(IgnoredDevice, inserted[0]))


def unignore(
    session: Session, mac: str, *, reason: str, actor: str, now: datetime, key: bytes
) -> Change:
    """Store leases of `mac` again from now on; a device not ignored changes nothing."""
    mac = normalise_mac(mac, what="MAC")
    reason = _reason(reason, mac)
    existing = _find(session, mac)
    if existing is None:
        return Change(mac, False, None)
    removed = session.execute(
        delete(IgnoredDevice).where(col(IgnoredDevice.mac) == mac).returning(_I.c.id)
    ).first()
    if removed is None:  # lifted by someone else meanwhile
        return Change(mac, False, None)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="wifi.unignore",
        subject=audit.subject_hash(key, "mac", mac),
        reason=reason,
        ignored_at=utc_text(existing.ignored_at),
        leases_ignored=existing.leases_ignored,
    )
    return Change(mac, True, existing)


def _find(session: Session, mac: str) -> IgnoredDevice | None:
    statement = select(IgnoredDevice).where(col(IgnoredDevice.mac) == mac)
    return session.execute(statement).scalars().first()


def ignored(session: Session) -> list[IgnoredDevice]:
    """Every device whose leases are not stored, oldest objection first."""
    statement = select(IgnoredDevice).order_by(col(IgnoredDevice.ignored_at), col(IgnoredDevice.id))
    return list(session.execute(statement).scalars())


def of_mac(session: Session, mac: str) -> list[dict[str, Any]]:
    """The objection of the device `mac` (normalised), as a subject export shows it."""
    found = _find(session, mac)
    return [] if found is None else [as_json(found)]


def as_json(device: IgnoredDevice) -> dict[str, Any]:
    """`{"mac", "reason", "ignored_by", "ignored_at", "request_id", "leases_ignored"}`."""
    return {
        "mac": device.mac,
        "reason": device.reason,
        "ignored_by": device.ignored_by,
        "ignored_at": utc_text(device.ignored_at),
        "request_id": device.request_id,
        "leases_ignored": device.leases_ignored,
    }


def totals(session: Session) -> dict[str, int]:
    """`{"devices", "leases_ignored"}`: what the report counts."""
    devices, leases = session.execute(
        select(func.count(), func.coalesce(func.sum(_I.c.leases_ignored), 0))
    ).one()
    return {"devices": int(devices), "leases_ignored": int(leases)}


def drop_ignored(session: Session, leases: Sequence[LeaseIn]) -> list[LeaseIn]:
    """`leases` without those of ignored devices, which are counted on their device's row.

    With no objection recorded (the usual case) this is one look at an empty table.
    """
    if not leases or not session.execute(select(exists().select_from(_I))).scalar():
        return list(leases)
    macs = sorted({lease.mac for lease in leases})
    found: set[str] = set()
    for start in range(0, len(macs), CHUNK):
        part = macs[start : start + CHUNK]
        found.update(session.execute(select(_I.c.mac).where(_I.c.mac.in_(part))).scalars())
    if not found:
        return list(leases)
    dropped = Counter(lease.mac for lease in leases if lease.mac in found)
    session.connection().execute(
        _COUNT, [{"device": mac, "dropped": n} for mac, n in sorted(dropped.items())]
    )
    return [lease for lease in leases if lease.mac not in found]


def _reason(reason: str, mac: str) -> str:
    """The reason, cleaned; InputError when empty or naming the device (the trail keeps it)."""
    return check_reason(reason, Subject("mac", mac, mac))
