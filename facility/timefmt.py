"""How instants are written out: one form for programs, one for people.

- `utc_text`, for JSON and CSV (and the audit details they show): ISO 8601 in UTC, spelt with `Z`,
  to the second, with the microseconds when the stored instant has any. A program reading it back
  gets exactly the instant that is stored (a hold window, a record's clock, an audit entry), and a
  whole second stays short: `2026-11-25T08:30:00Z`, `2026-11-25T08:30:00.123456Z`.
- `site_text`, for messages, tables and pages: site wall time to the minute (to the second when the
  seconds are not zero, never further) with the zone's abbreviation, which tells apart the hour a
  DST change repeats: `2026-11-25 09:30 CET`, `2026-10-25 02:30:15 CEST`.
- `site_midnight`, the start of the site's day; `hold_status`, a hold's state as a person reads it.

Reading times is `timeutil`'s job. The audit trail's canonical form (`trail.audit`) is not an output:
it hashes times in a fixed form of its own, which must never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, tzinfo
from typing import Any, overload

from facility.timeutil import ensure_utc


@overload
def utc_text(value: datetime) -> str: ...
@overload
def utc_text(value: None) -> None: ...
@overload
def utc_text(value: datetime | None) -> str | None: ...
def utc_text(value: datetime | None) -> str | None:
    """The machine form of an instant (None stays None): UTC, `Z`, microseconds only if any."""
    if value is None:
        return None
    return ensure_utc(value).replace(tzinfo=None).isoformat() + "Z"


def utc_fields(mapping: Mapping[Any, Any]) -> dict[str, Any]:
    """`mapping` as a dict with every instant in it in the machine form."""
    return {k: utc_text(v) if isinstance(v, datetime) else v for k, v in mapping.items()}


def site_text(value: datetime | None, site_zone: tzinfo) -> str:
    """The human form of an instant ("" for None): site wall time, no microseconds, the zone."""
    if value is None:
        return ""
    utc = ensure_utc(value)
    try:
        local = utc.astimezone(site_zone)
    except OverflowError:  # the first or last hours of the calendar: say it in UTC
        local = utc
    spec = "minutes" if local.second == 0 else "seconds"
    shown = local.replace(tzinfo=None, microsecond=0).isoformat(sep=" ", timespec=spec)
    return f"{shown} {local.tzname()}"


def site_midnight(now: datetime, site_zone: tzinfo) -> datetime:
    """The first instant of the site's day at `now`, as aware UTC.

    `fold=0` reads a midnight that a DST change skips as the instant the clocks jump, and one it
    repeats as the first of the two: either way the first instant of that date.
    """
    day = ensure_utc(now).astimezone(site_zone).date()
    return datetime.combine(day, time(), tzinfo=site_zone).astimezone(UTC)


def hold_status(
    released_at: datetime | None,
    protects_until: datetime | None,
    *,
    now: datetime,
    site_zone: tzinfo,
) -> str:
    """`active`; `released, protects until T` within the release grace; else `released T`.

    `protects_until` is when a released hold stops protecting: its release plus
    `holds.release_grace`.
    """
    if released_at is None:
        return "active"
    if protects_until is not None and protects_until > now:
        return f"released, protects until {site_text(protects_until, site_zone)}"
    return f"released {site_text(released_at, site_zone)}"
