"""Parsing and normalising instants and durations.

Instants are read with the standard library's ISO 8601 parser (`datetime.fromisoformat`, which in
3.11 accepts the full extended format) and durations with pydantic's ISO 8601 duration parser, so
we only add what neither knows: the short `3d`/`12h`/`90m` forms and site-local wall time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from facility.errors import InputError

_SHORT_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_TIMEDELTA = TypeAdapter(timedelta)
# Year 2000 is the floor for device clocks: anything earlier is an unsynchronised clock, not an event.
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)


def zone(name: str) -> tzinfo:
    """The IANA time zone called `name`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise InputError(f"unknown time zone {name!r}") from err


def parse_duration(text: str, *, what: str = "duration") -> timedelta:
    """`3d`, `12h`, `90m`, `1d12h`, `0s` or ISO 8601 `P14D` / `PT36H` as a timedelta."""
    cleaned = text.strip()
    if cleaned and _SHORT_DURATION.sub("", cleaned).strip() == "" and cleaned[0].isdigit():
        seconds = sum(
            float(n) * _UNIT_SECONDS[u.lower()] for n, u in _SHORT_DURATION.findall(cleaned)
        )
        return timedelta(seconds=seconds)
    if cleaned.upper().startswith("P"):
        try:
            value = _TIMEDELTA.validate_python(cleaned.upper())
        except ValidationError:
            value = None
        if value is not None and value >= timedelta(0):
            return value
    raise InputError(f"{what}: {text!r} is not a duration (use e.g. 3d, 12h, 90m or P14D)")


def format_duration(value: timedelta) -> str:
    """The shortest `3d`, `12h`, `90m`, `1d12h` style text for a duration."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_instant(text: str, site_zone: tzinfo, *, what: str = "time") -> datetime:
    """An ISO 8601 instant as aware UTC; without an offset it is wall time in `site_zone`."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise InputError(
            f"{what}: {text!r} is not an ISO 8601 time (e.g. 2026-11-25T09:30 or 2026-11-25T08:30Z)"
        ) from err
    return to_utc(value, site_zone)


def to_utc(value: datetime, site_zone: tzinfo) -> datetime:
    """`value` as aware UTC, reading a naive value as wall time in `site_zone`.

    A wall time that a DST change skips or repeats resolves with `fold=0`, the earlier reading.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=site_zone)
    return value.astimezone(UTC)


def from_epoch(value: float | int | str, *, what: str = "time") -> datetime:
    """Seconds since the Unix epoch as aware UTC."""
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError) as err:
        raise InputError(f"{what}: {value!r} is not an epoch time") from err


def ensure_utc(value: datetime) -> datetime:
    """Aware UTC for a value read from storage (SQLite hands back naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
