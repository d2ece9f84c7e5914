"""Parsing and normalising instants and durations.

Instants are read with the standard library's ISO 8601 parser (`datetime.fromisoformat`, which in
3.11 accepts the full extended format) and durations with pydantic's ISO 8601 duration parser, so
we only add what neither knows: the short `3d`/`12h`/`90m` forms and site-local wall time.

Two readers of instants: `parse_instant` for what machines send (a wall time a DST change skips or
repeats resolves to the earlier reading, as the device most likely meant), and `typed_instant` for
what a person types at the CLI or in a form: `09:00` is today in site time, and a wall time that
does not exist or exists twice is refused with both readings offered, since guessing would put a
visit or a hold window an hour off without anyone noticing. `typed_since` also takes `7d`, meaning
that long ago. Both refuse, as InputError naming the field, a time that cannot be converted
between UTC and the site zone (year 1, 9999-12-31 late in the day).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from facility.errors import InputError

_SHORT_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)", re.IGNORECASE)
# A time of day without a date: `9:00`, `09:00`, `09:00:30`, `09:00:30.5`.
_TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?")
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
        try:
            return timedelta(seconds=seconds)
        except OverflowError as err:
            raise InputError(f"{what}: {text!r} is longer than any duration kept") from err
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
    return _utc(_iso(text, what), text, site_zone, what)


def typed_instant(text: str, site_zone: tzinfo, *, now: datetime, what: str = "time") -> datetime:
    """A time a person typed, as aware UTC.

    ISO 8601 with or without an offset (then wall time in `site_zone`), or a time of day alone
    (`09:00`: today, at `now`, in site time). A wall time that a DST change skips or repeats is
    refused, naming both instants it could mean.
    """
    cleaned = text.strip()
    if _TIME_OF_DAY.fullmatch(cleaned):
        day = now.astimezone(site_zone).date()
        try:
            padded = cleaned if cleaned.index(":") == 2 else f"0{cleaned}"
            wall = datetime.combine(day, time.fromisoformat(padded))
        except ValueError as err:
            raise InputError(f"{what}: {text!r} is not a time of day (e.g. 09:30)") from err
    else:
        wall = _iso(cleaned, what)
    if wall.tzinfo is None:
        _refuse_skipped_or_repeated(wall, site_zone, what)
    return _utc(wall, text, site_zone, what)


def typed_since(text: str, site_zone: tzinfo, *, now: datetime, what: str = "--since") -> datetime:
    """The start of a period a person typed: a duration back from `now` (`7d`, `12h`, `P7D`) or
    a time as `typed_instant` reads it."""
    try:
        back = parse_duration(text, what=what)
    except InputError:
        back = None  # not a duration: a time, read below
    if back is not None:
        try:
            return now - back
        except OverflowError as err:
            raise InputError(f"{what}: {text!r} reaches back before the year 1") from err
    try:
        return typed_instant(text, site_zone, now=now, what=what)
    except InputError as err:
        raise InputError(f"{err}, or a duration back from now (e.g. 7d, 12h)") from None


def _iso(text: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise InputError(
            f"{what}: {text!r} is not an ISO 8601 time (e.g. 2026-11-25T09:30 or 2026-11-25T08:30Z)"
        ) from err


def _utc(value: datetime, text: str, site_zone: tzinfo, what: str) -> datetime:
    """`value` as aware UTC, refused when it or its site wall time falls outside the calendar."""
    try:
        utc = to_utc(value, site_zone)
        utc.astimezone(site_zone)  # every message and list shows it in site time
    except OverflowError as err:
        raise InputError(
            f"{what}: {text.strip()!r} is outside the range of dates that can be stored"
        ) from err
    return utc


def _refuse_skipped_or_repeated(wall: datetime, site_zone: tzinfo, what: str) -> None:
    """InputError when `wall` (naive) does not exist in `site_zone` or exists twice.

    `fold` picks the offset before (0) or after (1) a change; the two differ only at one, and
    the wall time survives the round trip through UTC only where it exists.
    """
    try:
        first = wall.replace(tzinfo=site_zone, fold=0)
        second = wall.replace(tzinfo=site_zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return
        readings = [d.astimezone(UTC).astimezone(site_zone) for d in (first, second)]
    except OverflowError:
        return  # `_utc` refuses it
    spec = "minutes" if wall.second == 0 and wall.microsecond == 0 else "seconds"
    typed = wall.isoformat(sep=" ", timespec=spec)
    zone_name = getattr(site_zone, "key", str(site_zone))
    if all(r.replace(tzinfo=None) == wall for r in readings):
        earlier, later = (r.isoformat(timespec=spec) for r in readings)
        raise InputError(
            f"{what}: {typed} happens twice in {zone_name} (the clocks go back); "
            f"type {earlier} for the first or {later} for the second"
        )
    before, after = (r.isoformat(timespec=spec) for r in sorted(readings))
    raise InputError(
        f"{what}: {typed} does not exist in {zone_name} (the clocks skip it); "
        f"type {before} or {after}"
    )


def to_utc(value: datetime, site_zone: tzinfo) -> datetime:
    """`value` as aware UTC, reading a naive value as wall time in `site_zone`.

    A wall time that a DST change skips or repeats resolves with `fold=0`, the earlier reading.
    OverflowError when the result falls outside the calendar (year 1, 9999-12-31).
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
