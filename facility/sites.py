"""Sites: the offices of one organisation, and the two rules every part applies to them.

Every record, roll call, rejection, job run and lease-file position belongs to one site
(`site_id`); a hold to one site or, with NULL, to the whole organisation. A single-site install
has one site, `main` (id `DEFAULT_SITE`, made by the migration), and never names it.

**How a command learns its site** (`resolve`): the code given explicitly (`--site`, the web
terminal's choice), else the configured one (`site`, `FACILITY_SITE`, the daemon's), else the only
site there is. With several sites and none chosen, or an unknown code, it raises InputError (exit 2)
listing the sites. The edges call it once (`cli.context.AppContext.site`, the web app, the daemon)
and pass the site's id (and zone) down; the core never guesses.

**How a query is narrowed to it** (`narrow`): `narrow(table, site)` is the condition on a table's
`site_id` for one site, several, or (None) every site. Organisation-wide views (the report, subject
requests, the hold list) pass the sites the caller may see.

Times: a site's own `timezone` reads what is typed there and writes what people read there
(`zone_of`). The configuration's `timezone`, when it sets one, is the zone of its own site (the one
its `site` names, else the default site), so a single-site install keeps following it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

import iso3166
from sqlalchemy import ColumnElement, FromClause, true
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import clean_text
from facility.store.models import DEFAULT_SITE, Site
from facility.timefmt import utc_text
from facility.timeutil import zone
from facility.trail import audit

if TYPE_CHECKING:
    from facility.settings import Settings

__all__ = ["DEFAULT_SITE", "Site"]

CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
NAME_LIMIT = 100
# How sites are named in messages that list them: at most this many, then a count.
LISTED = 20


class NotChosen(InputError):
    """Several sites exist and nothing chose one (exit 2, listing them)."""


# --- checking what is typed ----------------------------------------------------------------------


def check_code(code: str, *, what: str = "--site") -> str:
    """A site code as stored; InputError unless it is one (lower case letters, digits, -)."""
    cleaned = code.strip()
    if not CODE.fullmatch(cleaned):
        raise InputError(
            f"{what}: {code!r} is not a site code (lower case letters, digits and -, at most 32, "
            "e.g. ams)"
        )
    return cleaned


def check_name(name: str, *, what: str = "--name") -> str:
    """A site's name for people, cleaned; InputError when empty."""
    cleaned = clean_text(name, what=what, limit=NAME_LIMIT)
    if not cleaned:
        raise InputError(f"{what}: a site needs a name (e.g. Amsterdam office)")
    return cleaned


def check_timezone(name: str, *, what: str = "--timezone") -> str:
    """An IANA time zone name; InputError naming `what` otherwise."""
    try:
        zone(name.strip())
    except InputError as err:
        raise InputError(f"{what}: {str(err).removeprefix('timezone: ')}") from err
    return name.strip()


def check_country(code: str, *, what: str = "--country") -> str:
    """An ISO 3166-1 alpha-2 country code, upper case; InputError otherwise."""
    cleaned = code.strip().upper()
    if len(cleaned) != 2 or cleaned not in iso3166.countries_by_alpha2:
        raise InputError(f"{what}: {code!r} is not an ISO 3166-1 country code (e.g. NL, BE)")
    return cleaned


# --- reading -------------------------------------------------------------------------------------


def listing(session: Session) -> list[Site]:
    """Every site, by code."""
    return list(session.exec(select(Site).order_by(col(Site.code))).all())


def find(session: Session, code: str) -> Site | None:
    """The site with this code, or None."""
    return session.exec(select(Site).where(Site.code == code.strip())).first()


def by_id(session: Session, site_id: int) -> Site:
    """The site with this id (it exists: rows refer to it)."""
    site = session.get(Site, site_id)
    if site is None:  # pragma: no cover - a foreign key keeps it
        raise InputError(f"there is no site {site_id}")
    return site


def named(sites: Iterable[Site]) -> str:
    """Sites as messages list them: `ams (Amsterdam), bru (Brussels)`."""
    every = list(sites)
    shown = ", ".join(f"{s.code} ({s.name})" for s in every[:LISTED])
    return shown + (f" and {len(every) - LISTED} more" if len(every) > LISTED else "")


def get(session: Session, code: str, *, what: str = "--site") -> Site:
    """The site with this code; InputError listing the known ones otherwise."""
    found = find(session, check_code(code, what=what))
    if found is None:
        raise InputError(
            f"{what}: there is no site {code.strip()!r} (sites: {named(listing(session))})"
        )
    return found


def resolve(session: Session, *, explicit: str | None, configured: str | None) -> Site:
    """The site a command works at: `explicit`, else `configured`, else the only site.

    InputError (exit 2) for an unknown code, or when several sites exist and none was chosen.
    """
    if explicit is not None:
        return get(session, explicit)
    if configured is not None:
        return get(session, configured, what="site (FACILITY_SITE)")
    every = listing(session)
    if len(every) == 1:
        return every[0]
    if not every:  # pragma: no cover - the migration makes the default site
        raise InputError("there is no site yet; run `facility init`")
    raise NotChosen(f"several sites: {named(every)}; choose one with --site or FACILITY_SITE")


def zone_name(site: Site, settings: Settings) -> str:
    """The time zone of `site`: its own, or the configuration's when this is its own site."""
    if settings.timezone_configured:
        own = site.code == settings.site if settings.site else site.id == DEFAULT_SITE
        if own:
            return settings.timezone
    return site.timezone


def zone_of(site: Site, settings: Settings) -> tzinfo:
    """`zone_name` as a zone object."""
    return zone(zone_name(site, settings))


# --- narrowing queries ---------------------------------------------------------------------------


def narrow(table: FromClause, site: int | Collection[int] | None) -> ColumnElement[bool]:
    """The rows of `table` at `site`: one site's id, several, or (None) every site."""
    if site is None:
        return true()
    column = table.c.site_id
    if isinstance(site, int):
        return column == site
    return column.in_(sorted(site))


# --- changes (admin, audited) --------------------------------------------------------------------


def add(
    session: Session,
    *,
    code: str,
    name: str,
    timezone: str,
    country: str,
    now: datetime,
    actor: str,
) -> Site:
    """Add a site; its code must be new."""
    site = Site(
        code=check_code(code, what="CODE"),
        name=check_name(name),
        timezone=check_timezone(timezone),
        country=check_country(country),
        created_at=now,
        created_by=actor,
    )
    if find(session, site.code) is not None:
        raise InputError(f"CODE: a site {site.code} already exists")
    session.add(site)
    session.flush()
    audit.append(
        session,
        now=now,
        actor=actor,
        action="site.add",
        site=site.code,
        name=site.name,
        timezone=site.timezone,
        country=site.country,
    )
    return site


def change(
    session: Session,
    code: str,
    *,
    name: str | None = None,
    timezone: str | None = None,
    country: str | None = None,
    now: datetime,
    actor: str,
) -> tuple[Site, dict[str, tuple[str, str]]]:
    """Change a site's name, time zone or country; return it and what changed (old, new)."""
    site = get(session, code, what="CODE")
    wanted = {
        "name": None if name is None else check_name(name),
        "timezone": None if timezone is None else check_timezone(timezone),
        "country": None if country is None else check_country(country),
    }
    if all(value is None for value in wanted.values()):
        raise InputError("site set: give --name, --timezone and/or --country")
    changed = {}
    for field, value in wanted.items():
        if value is not None and value != getattr(site, field):
            changed[field] = (getattr(site, field), value)
            setattr(site, field, value)
    if changed:
        session.add(site)
        session.flush()
        audit.append(
            session,
            now=now,
            actor=actor,
            action="site.set",
            site=site.code,
            **{field: {"old": old, "new": new} for field, (old, new) in changed.items()},
        )
    return site, changed


def as_json(site: Site) -> dict[str, object]:
    """A site as `site list --format json` gives it."""
    return {
        "code": site.code,
        "name": site.name,
        "timezone": site.timezone,
        "country": site.country,
        "created_at": utc_text(site.created_at),
        "created_by": site.created_by,
    }
