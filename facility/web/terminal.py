"""Which office a web request serves: the one place that decides it.

A terminal serves one site. In this order:

1. the server's own site: `[web] site` (or `facility --site CODE web`) binds every terminal of
   that server to it, whatever the account or the request says;
2. for a browser, the site chosen at login and kept in its session (`web_sessions.site_id`):
   an account with a role at several sites picks one of them after its password (the last one
   picked on that browser preselected, from a signed cookie of its own); an account with a role
   at one site only gets it without being asked;
3. for the API without a session, the `Facility-Site: CODE` header;
4. else the only site there is.

A browser session with no site while several exist goes to the choice first (`ChooseSite`);
an API call that cannot tell answers 400 listing the sites, and so does an unknown code.

Why a header for the API: it names the office on every call without changing a documented path
or body, works the same for GET and POST, and a terminal script sets it once with its
credentials. A header that names another site than the server's or the session's is refused
(400) rather than ignored, so a misconfigured script finds out at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session

from facility import sites
from facility.accounts import permissions
from facility.errors import InputError
from facility.settings import Settings
from facility.store.models import Site, row_id
from facility.timefmt import site_text

HEADER = "Facility-Site"
REMEMBERED = "facility_office"  # the last office chosen on this browser, to preselect
REMEMBERED_AGE = timedelta(days=400)  # browsers cap a cookie's life near this
_SALT = "facility.web.office"


class ChooseSite(Exception):
    """Several sites, and this session has not chosen one (pages: the choice; API: 400)."""


@dataclass(frozen=True)
class Office:
    """The site a request serves, as pages and queries need it."""

    id: int
    code: str
    name: str
    zone_name: str
    zone: tzinfo

    def local(self, value: datetime | None) -> str:
        """A stored instant as this office's time (`timefmt.site_text`)."""
        return site_text(value, self.zone)

    def clock_time(self, value: datetime | None) -> str:
        """A stored instant as this office's wall time of day, `HH:MM`."""
        return "" if value is None else value.astimezone(self.zone).strftime("%H:%M")


def office(site: Site, settings: Settings) -> Office:
    """`site` as a request serves it, in its own time zone."""
    name = sites.zone_name(site, settings)
    return Office(row_id(site), site.code, site.name, name, sites.zone_of(site, settings))


def bound(session: Session, code: str | None) -> Site | None:
    """The server's own site (`[web] site`), or None when it serves whichever is chosen."""
    return None if code is None else sites.get(session, code, what="[web] site")


def offered(session: Session, roles: Iterable[str]) -> list[Site]:
    """The sites where `roles` hold any role (every site for a role held everywhere)."""
    granted = permissions.held(roles)
    every = sites.listing(session)
    if any(":" not in grant for grant in granted):
        return every
    codes = {grant.partition(":")[2] for grant in granted}
    return [site for site in every if site.code in codes]


def of_notice(session: Session, *, server: str | None, asked: str | None) -> Site | None:
    """The site whose privacy notice the public `/notice` page shows: the server's, else the one
    `?site=CODE` names, else the only site; None (the organisation's policies) when several
    exist and none is named. InputError (400) for an unknown code or another site than the
    server's."""
    return _resolved(session, server=server, chosen=None, asked=asked, what="site")


def serving(
    session: Session,
    settings: Settings,
    *,
    server: str | None,
    chosen: int | None,
    asked: str | None = None,
) -> Office:
    """The office a request serves: the server's, else `chosen` (the session's), else `asked`
    (the API's header), else the only site.

    ChooseSite when a session has to choose among several; InputError (400) for an API call
    that cannot tell, an unknown code, or a header naming another site than the one in force.
    """
    site = _resolved(session, server=server, chosen=chosen, asked=asked, what=HEADER)
    if site is None:
        raise ChooseSite(f"several sites: {sites.named(sites.listing(session))}")
    return office(site, settings)


def _resolved(
    session: Session, *, server: str | None, chosen: int | None, asked: str | None, what: str
) -> Site | None:
    """The server's site, else `chosen`, else the one `asked` names (`what`: where it was asked),
    else the only site; None when several exist and nothing chose one."""
    site = bound(session, server)
    if site is None and chosen is not None:
        site = session.get(Site, chosen)
    if asked is not None:
        named = sites.get(session, asked, what=what)
        if site is not None and named.id != site.id:
            raise InputError(
                f"{what}: this {'server' if server else 'session'} serves site {site.code} "
                f"({site.name}), not {named.code}"
            )
        site = named
    if site is None:
        every = sites.listing(session)
        if len(every) == 1:
            return every[0]
    return site


def remembered(signer: URLSafeTimedSerializer, raw: str | None) -> str | None:
    """The office last chosen on this browser, from its cookie (None: none, forged or old)."""
    if not raw:
        return None
    try:
        data = signer.loads(raw, salt=_SALT, max_age=int(REMEMBERED_AGE.total_seconds()))
    except BadSignature:
        return None
    return data if isinstance(data, str) else None


def remember(signer: URLSafeTimedSerializer, code: str) -> str:
    """The cookie value that remembers `code` on this browser."""
    return signer.dumps(code, salt=_SALT)
