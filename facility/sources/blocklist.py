"""Blocked devices: security's decision to refuse a device DHCP, kept apart from the lease log.

A block is a standing decision, not a record of what a device did: it lives in
`blocked_devices`, is never purged with the leases (retention is for the lease log; a block lasts
until someone lifts it), and every block and unblock is audited. The audit trail names the device
by its keyed subject hash (`audit.subject_hash`), never by its MAC, which is personal data here.
The reason is audited with it: once a block is lifted its row is gone and the trail is the only
record of why it was placed and lifted, so a reason describes the misuse, not the person.

The DHCP servers are told through files the operator includes (`dnsmasq_config`, `kea_config`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.sources.macs import normalise_mac
from facility.store.models import BlockedDevice
from facility.timefmt import utc_text
from facility.trail import audit


@dataclass(frozen=True)
class Change:
    """What a block or unblock did: `device` is the block in force before (or after) it."""

    mac: str
    changed: bool
    device: BlockedDevice | None


def block(
    session: Session, mac: str, *, reason: str, actor: str, now: datetime, key: bytes
) -> Change:
    """Block `mac`; a device already blocked keeps its block (and its reason) unchanged."""
    mac, reason = normalise_mac(mac, what="MAC"), _reason(reason)
    existing = session.get(BlockedDevice, mac)
    if existing is not None:
        return Change(mac, False, existing)
    row: dict[str, Any] = {"mac": mac, "reason": reason, "blocked_by": actor, "blocked_at": now}
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Two terminals blocking at once: the second finds the first one's block, not an error.
    inserted = session.execute(
        module.insert(BlockedDevice)
        .values(**row)
        .on_conflict_do_nothing()
        .returning(col(BlockedDevice.mac))
    ).first()
    if inserted is None:
        return Change(mac, False, session.get(BlockedDevice, mac))
    audit.append(
        session,
        now=now,
        actor=actor,
        action="wifi.block",
        subject=audit.subject_hash(key, "mac", mac),
        reason=reason,
    )
    return Change(mac, True, BlockedDevice(**row))


def unblock(
    session: Session, mac: str, *, reason: str, actor: str, now: datetime, key: bytes
) -> Change:
    """Lift the block on `mac`; a device that is not blocked changes nothing."""
    mac, reason = normalise_mac(mac, what="MAC"), _reason(reason)
    existing = session.get(BlockedDevice, mac)
    if existing is None:
        return Change(mac, False, None)
    removed = session.execute(
        delete(BlockedDevice).where(col(BlockedDevice.mac) == mac).returning(col(BlockedDevice.mac))
    ).first()
    if removed is None:  # lifted by someone else meanwhile
        return Change(mac, False, None)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="wifi.unblock",
        subject=audit.subject_hash(key, "mac", mac),
        reason=reason,
        blocked_at=utc_text(existing.blocked_at),
    )
    return Change(mac, True, existing)


def blocked(session: Session) -> list[BlockedDevice]:
    """Every blocked device, oldest block first."""
    query = select(BlockedDevice).order_by(col(BlockedDevice.blocked_at), col(BlockedDevice.mac))
    return list(session.exec(query).all())


def dnsmasq_config(devices: Sequence[BlockedDevice]) -> str:
    """A dnsmasq config file (for `conf-file=`/`conf-dir=`) ignoring every blocked device.

    `dhcp-host=MAC,ignore` makes dnsmasq answer no DHCP request from that hardware address.
    dnsmasq reads config files at start: restart it after installing a new file.
    """
    lines = [
        "# Blocked devices, written by `facility wifi export-blocklist --format dnsmasq`.",
        f"# {len(devices)} device(s). Do not edit: block and unblock with facility.",
        *(f"dhcp-host={device.mac},ignore" for device in sorted(devices, key=_by_mac)),
    ]
    return "\n".join(lines) + "\n"


def kea_config(devices: Sequence[BlockedDevice]) -> str:
    """Kea global reservations putting every blocked device in the built-in `DROP` class.

    The two keys go into the `Dhcp4` (or `Dhcp6`) map. Kea drops every packet classified `DROP`;
    a global reservation can assign it only when reservations are looked up before subnet
    selection, hence `early-global-reservations-lookup` (Kea 2.2 or later). Merge the list with
    any global reservations already configured.
    """
    snippet = {
        "early-global-reservations-lookup": True,
        "reservations": [
            {"hw-address": device.mac, "client-classes": ["DROP"]}
            for device in sorted(devices, key=_by_mac)
        ],
    }
    return json.dumps(snippet, indent=2) + "\n"


def _by_mac(device: BlockedDevice) -> str:
    return device.mac


def _reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise InputError(
            "--reason: must say why (it is audited: describe the misuse, not the person)"
        )
    if not cleaned.isprintable():
        raise InputError("--reason: contains control characters")
    return cleaned
