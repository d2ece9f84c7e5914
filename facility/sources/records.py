"""Plain values that connectors hand to the core's ingest functions.

Connectors parse outside formats into these; the core validates and stores them. Every datetime here
is timezone-aware UTC: connectors convert before building one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class DoorEventIn:
    """One badge presented at one door."""

    event_id: str  # stable across redelivery: the same event always gets the same id
    door: str
    badge: str
    at: datetime
    granted: bool
    source: str  # "mqtt", "esp-rfid", "uhppoted", "cli", ...


class LeaseIn(NamedTuple):
    """One DHCP lease as the server last described it.

    A named tuple, not a frozen dataclass like the others: as immutable, and built faster (a
    frozen dataclass sets each field through object.__setattr__), which shows when a large Kea
    file is parsed (one per address: bench/README.md).
    """

    source: str  # the lease file path or "dnsmasq-hook" / "mqtt"
    mac: str  # lower-case, colon separated, six octets
    ip: str
    starts: datetime  # lease start, or the first time the server reported it
    ends: datetime | None  # None: the server said the lease never ends
    hostname: str | None = None
    client_id: str | None = None
    last_seen: datetime | None = None  # a time the server or network reported the device
    released: bool = False  # the server rubbed the lease out (released, expired, deleted)


@dataclass(frozen=True, slots=True)
class SegmentIn:
    """One camera recording segment file, path relative to the recordings root."""

    camera: str
    path: str  # POSIX, relative to the root, no ".." parts
    start: datetime
    end: datetime
