"""The JSON API under /api/: the same actions as the pages, for other terminals and badge printers.

Authentication: HTTP Basic with a local account (write requests then must send
`Content-Type: application/json`, which a page on another site cannot make a browser send), or the
session cookie from `POST /api/session` plus its token in an X-CSRF-Token header. Bad input
answers 400 with `{"error": "..."}` naming the field, and stores nothing; a missing role answers
403 (audited). Each route names its action (`facility.accounts.permissions`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from facility import sites
from facility.errors import InputError
from facility.privacy import restriction
from facility.retention import casefile, evidence, holds
from facility.store.kinds import HOLDABLE
from facility.store.models import BadgeLoan, Visit, row_id
from facility.timefmt import site_midnight, utc_text
from facility.visitors import muster, onsite, reception
from facility.web import lists, sessions, terminal
from facility.web.auth import (
    Account,
    api_account,
    api_permitted,
    check_login,
    end_session,
    login_site,
    public,
    require_json,
    start_session,
)
from facility.web.cases import hold_here
from facility.web.context import web_of
from facility.web.inputs import MAX_ID, Body, PathText, RecordId, instant
from facility.web.reporting import build_report, report_available
from facility.web.terminal import Office

DESCRIPTION = (
    "The sign-in terminal, evacuation roll call and incident holds of facility. Authenticate "
    "with HTTP Basic (a local account made with `facility user add`), or with the browser "
    "session cookie (`POST /api/session`) and its token in the `X-CSRF-Token` header. Bodies are "
    "JSON; a write request with Basic credentials must say `Content-Type: application/json` even "
    "without a body. Each call serves one office: the server's own (`[web] site`), else the "
    "session's, else the one the `Facility-Site: CODE` header names, else the only site (400 "
    "listing the sites when it cannot tell). Times are ISO 8601; without an offset they are "
    "that office's time. "
    'Errors: `{"error": "message"}` with 400 (bad input, nothing stored), 401 (not logged in, '
    "wrong password, or the name locked at this address), 403 (role missing; audited), 409 "
    "(an incident hold keeps what the request would remove; the message names the case), 413 "
    "(body over 1 MB), 415 (not JSON), 429 (too many wrong passwords from this address), 503 "
    "(the database cannot be reached or failed; nothing stored, try again). Which roles may call "
    "what: the README's roles table."
)
router = APIRouter(prefix="/api")
T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad input; nothing was stored"},
    401: {"description": "Not logged in, wrong password, or the name locked at this address"},
    403: {"description": "The account lacks the role (audited)"},
    413: {"description": "The body is larger than the server takes"},
    415: {"description": "A Basic-authenticated write request not declared JSON"},
    429: {"description": "Too many wrong passwords from this address; see Retry-After"},
    503: {"description": "The database cannot be reached or failed; nothing was stored"},
}


class SignIn(Body):
    name: str = Field(description="The visitor's name.")
    company: str | None = None
    host: str | None = Field(None, description="Who they visit.")
    badge: str | None = Field(None, description="Lend this badge now.")
    at: str | None = Field(None, description="When it happened (default: now).")


class SignOut(Body):
    badge_kept: bool = Field(False, description="The visitor keeps the badge for now.")
    at: str | None = None


class BadgeIssue(Body):
    badge: str
    visit_id: int = Field(ge=1, le=MAX_ID)
    at: str | None = None


class BadgeReturn(Body):
    at: str | None = None


class Mark(Body):
    status: Literal["safe", "missing", "unknown"]


HoldKind = Literal[HOLDABLE]  # type: ignore[valid-type]  # the registry's names, as an enum


class ScopeIn(Body):
    kind: HoldKind
    selector: str | None = Field(None, description="null: every record of the kind in the window")


class HoldPlace(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)  # "from" is a keyword

    case: str = Field(description="Case reference, e.g. INC-2026-0042.")
    reason: str
    window_from: str = Field(alias="from")
    window_to: str = Field(alias="to")
    review_by: str | None = None
    scopes: list[ScopeIn] = Field(min_length=1)


class HoldExtend(Body):
    to: str | None = None
    scopes: list[ScopeIn] = Field(default_factory=list)


class HoldRelease(Body):
    reason: str


class VisitOut(BaseModel):
    visit_id: int
    name: str
    company: str | None
    host: str | None
    signed_in_at: str
    signed_out_at: str | None
    badge: str | None = None


class PersonOut(BaseModel):
    visit_id: int
    name: str
    company: str | None
    host: str | None
    signed_in_at: str
    badge: str | None = Field(description="The first badge lent; `badges` lists them all.")
    last_door: str | None
    last_door_at: str | None
    badges: list[str] = []


class OnSiteOut(BaseModel):
    generated_at: str
    count: int
    people: list[PersonOut]


class EntryOut(BaseModel):
    id: int
    visit_id: int | None
    name: str | None
    status: str
    marked_at: str | None
    marked_by: str | None


class MusterOut(BaseModel):
    id: int
    started_at: str
    started_by: str
    closed_at: str | None
    closed_by: str | None
    counts: dict[str, int]
    entries: list[EntryOut]


class MusterSummary(BaseModel):
    id: int
    started_at: str
    started_by: str
    closed_at: str | None
    closed_by: str | None
    counts: dict[str, int]


class ScopeOut(BaseModel):
    kind: str
    selector: str | None


class HoldOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    case: str
    reason: str
    window_from: str | None = Field(alias="from")
    window_to: str | None = Field(alias="to")
    status: str
    placed_by: str
    placed_at: str | None
    review_by: str | None
    released_at: str | None
    scopes: list[ScopeOut]


class BadgeOut(BaseModel):
    badge: str
    visit_id: int | None
    issued_at: str
    returned_at: str | None


class Me(BaseModel):
    name: str
    roles: list[str]
    site: str | None = Field(None, description="The code of the office the calls serve.")
    csrf_token: str | None = Field(None, description="For requests made with the session cookie.")


@overload
def _at(here: Office, text: str, what: str = "at") -> datetime: ...
@overload
def _at(here: Office, text: str | None, what: str = "at") -> datetime | None: ...
def _at(here: Office, text: str | None, what: str = "at") -> datetime | None:
    return None if text is None else instant(text, here.zone, what=what)


def _visit(visit: Visit, badge: str | None = None) -> dict[str, Any]:
    return {
        "visit_id": visit.id,
        "name": visit.name,
        "company": visit.company,
        "host": visit.host,
        "signed_in_at": utc_text(visit.signed_in_at),
        "signed_out_at": utc_text(visit.signed_out_at),
        "badge": badge,
    }


def _loan(loan: BadgeLoan) -> dict[str, Any]:
    return {
        "badge": loan.badge,
        "visit_id": loan.visit_id,
        "issued_at": utc_text(loan.issued_at),
        "returned_at": utc_text(loan.returned_at),
    }


def _found(fetch: Callable[[], T]) -> T:
    """What `fetch` finds; its InputError (nothing by that id) becomes 404."""
    try:
        return fetch()
    except InputError as err:
        raise HTTPException(404, str(err)) from err


def _scopes(items: list[ScopeIn]) -> list[holds.Scope]:
    picked: dict[str, list[str]] = {kind: [] for kind in HOLDABLE}
    kinds = []
    for item in items:
        if item.selector is None:
            kinds.append(item.kind)
        else:
            picked[item.kind].append(item.selector)
    return holds.scopes_from_options(
        cameras=picked["camera"],
        doors=picked["door_events"],
        badges=picked["badges"],
        macs=picked["wifi"],
        visitors=picked["visits"],
        kinds=kinds,
    )


# --- session -------------------------------------------------------------------------------------


class Credentials(Body):
    name: str
    password: str


@router.post(
    "/session",
    response_model=Me,
    responses=ERRORS,
    tags=["session"],
    dependencies=[public("web.login")],
)
def api_login(request: Request, body: Credentials) -> dict[str, Any]:
    """Log in once and get the session cookie and its token (cheaper than Basic on every call).

    The session serves the server's site, else the one the `Facility-Site` header names, else
    the one site the account has a role at, else the only site; 400 listing them otherwise."""
    require_json(request)
    user, upgraded = check_login(request, body.name, body.password)
    web = web_of(request)
    asked = request.headers.get(terminal.HEADER)
    with web.reading() as session:
        site_id = login_site(session, request, user)
        if site_id is None and asked is not None:
            site_id = row_id(sites.get(session, asked, what=terminal.HEADER))
    account = start_session(request, user, upgraded, site_id=site_id)
    if account is None:
        end_session(request)
        raise terminal.ChooseSite(
            f"account {user.name!r} has roles at several sites; name one in the "
            f"{terminal.HEADER} header"
        )
    token = sessions.of(request).get("c")
    return {
        "name": account.name,
        "roles": sorted(account.roles),
        "site": account.site.code,
        "csrf_token": token,
    }


@router.delete(
    "/session",
    status_code=204,
    responses=ERRORS,
    tags=["session"],
    dependencies=[public("web.logout")],
)
def api_logout(request: Request, account: Account = Depends(api_account)) -> Response:
    """End the session on the server: its cookie is worth nothing after this."""
    end_session(request)
    return Response(status_code=204)


# --- who am I ------------------------------------------------------------------------------------


@router.get(
    "/me",
    response_model=Me,
    responses=ERRORS,
    tags=["session"],
    dependencies=[public("web.whoami")],
)
def me(request: Request, account: Account = Depends(api_account)) -> dict[str, Any]:
    """The calling account and its roles (and the session's token, when called with the cookie)."""
    by_cookie = getattr(request.state, "by_cookie", False)
    token = sessions.of(request).get("c") if by_cookie else None
    return {
        "name": account.name,
        "roles": sorted(account.roles),
        "site": account.site.code,
        "csrf_token": token,
    }


# --- reception -----------------------------------------------------------------------------------


@router.post(
    "/visits", status_code=201, response_model=VisitOut, responses=ERRORS, tags=["reception"]
)
def api_sign_in(
    request: Request, body: SignIn, account: Account = Depends(api_permitted("visitor.sign-in"))
) -> dict[str, Any]:
    """Sign a visitor in, and lend a badge when one is given."""
    web = web_of(request)
    here = account.site
    with web.session() as session:
        visit = reception.sign_in(
            session,
            now=web.now(),
            name=body.name,
            company=body.company,
            host=body.host,
            badge=body.badge,
            at=_at(here, body.at),
            skew=web.settings.limits.clock_skew,
            site_zone=here.zone,
            site_id=here.id,
        )
    web.notifier.kick()  # the host is told in the background, after the sign-in committed
    return _visit(visit, body.badge.strip() if body.badge else None)


@router.get("/visits/today", response_model=list[VisitOut], responses=ERRORS, tags=["reception"])
def api_today(
    request: Request, account: Account = Depends(api_permitted("visits.today"))
) -> list[dict[str, Any]]:
    """Today's visits (site time) and every visit still open, newest sign-in first; a restricted
    person's past visits only for the privacy role."""
    web = web_of(request)
    here = account.site
    midnight = site_midnight(web.now(), here.zone)
    hide = not restriction.sees_restricted(account.roles)
    with web.session() as session:
        rows = lists.todays_visits(session, since=midnight, hide_restricted=hide, site_id=here.id)
    return [
        {
            "visit_id": r.id,
            "name": r.name,
            "company": r.company,
            "host": r.host,
            "signed_in_at": utc_text(r.signed_in_at),
            "signed_out_at": utc_text(r.signed_out_at),
            "badge": r.badge if r.badge_out else None,
        }
        for r in rows
    ]


@router.post(
    "/visits/{visit_id}/sign-out", response_model=VisitOut, responses=ERRORS, tags=["reception"]
)
def api_sign_out(
    request: Request,
    visit_id: RecordId,
    body: SignOut | None = None,
    account: Account = Depends(api_permitted("visitor.sign-out")),
) -> dict[str, Any]:
    """Sign a visitor out; their badge comes back unless `badge_kept`."""
    web = web_of(request)
    body = body or SignOut()
    here = account.site
    with web.session() as session:
        visit = reception.find_open_visit(session, visit_id=visit_id, site_id=here.id)
        reception.sign_out(
            session,
            visit,
            now=web.now(),
            at=_at(here, body.at),
            badge_kept=body.badge_kept,
            skew=web.settings.limits.clock_skew,
            site_zone=here.zone,
        )
    return _visit(visit)


@router.post(
    "/badges", status_code=201, response_model=BadgeOut, responses=ERRORS, tags=["reception"]
)
def api_issue_badge(
    request: Request, body: BadgeIssue, account: Account = Depends(api_permitted("badge.issue"))
) -> dict[str, Any]:
    """Lend a badge to a visitor who is signed in."""
    web = web_of(request)
    with web.session() as session:
        loan = reception.issue_badge(
            session,
            now=web.now(),
            badge=body.badge,
            visit_id=body.visit_id,
            at=_at(account.site, body.at),
            skew=web.settings.limits.clock_skew,
            site_zone=account.site.zone,
            site_id=account.site.id,
        )
    return _loan(loan)


@router.post(
    "/badges/{badge:path}/return", response_model=BadgeOut, responses=ERRORS, tags=["reception"]
)
def api_return_badge(
    request: Request,
    badge: PathText,
    body: BadgeReturn | None = None,
    account: Account = Depends(api_permitted("badge.return")),
) -> dict[str, Any]:
    """Take a badge back."""
    web = web_of(request)
    body = body or BadgeReturn()
    with web.session() as session:
        loan = reception.return_badge(
            session,
            now=web.now(),
            badge=badge,
            at=_at(account.site, body.at),
            skew=web.settings.limits.clock_skew,
            site_zone=account.site.zone,
            site_id=account.site.id,
        )
    return _loan(loan)


@router.get("/onsite", response_model=OnSiteOut, responses=ERRORS, tags=["on site"])
def api_onsite(
    request: Request, account: Account = Depends(api_permitted("onsite.view"))
) -> dict[str, Any]:
    """Who is on site now (the stable shape of `facility onsite --format json`)."""
    web = web_of(request)
    here = account.site
    with web.session() as session:
        return onsite.on_site(
            session, now=web.now(), site_id=here.id, site_name=here.name
        ).as_json()


# --- roll call -----------------------------------------------------------------------------------


@router.get("/musters", response_model=list[MusterSummary], responses=ERRORS, tags=["roll call"])
def api_musters(
    request: Request,
    limit: int = Query(50, ge=1, le=500),
    account: Account = Depends(api_permitted("muster.view")),
) -> list[dict[str, Any]]:
    """Recent roll calls, newest first, with their counts."""
    web = web_of(request)
    with web.session() as session:
        found = muster.history(session, limit=limit, site_id=account.site.id)
    return [
        {
            "id": m.id,
            "started_at": utc_text(m.started_at),
            "started_by": m.started_by,
            "closed_at": utc_text(m.closed_at),
            "closed_by": m.closed_by,
            "counts": counts,
        }
        for m, counts in found
    ]


@router.post(
    "/musters", status_code=201, response_model=MusterOut, responses=ERRORS, tags=["roll call"]
)
def api_muster_start(
    request: Request, account: Account = Depends(api_permitted("muster.start"))
) -> dict[str, Any]:
    """Start a roll call of everyone on site now (400 while another is open)."""
    web = web_of(request)
    here = account.site
    with web.session() as session:
        return muster.start(
            session, now=web.now(), actor=account.actor, site_zone=here.zone, site_id=here.id
        ).as_json()


@router.get("/musters/{muster_id}", response_model=MusterOut, responses=ERRORS, tags=["roll call"])
def api_muster(
    request: Request, muster_id: RecordId, account: Account = Depends(api_permitted("muster.view"))
) -> dict[str, Any]:
    """One roll call with every entry, by name."""
    web = web_of(request)
    with web.session() as session:
        return _found(lambda: muster.get(session, muster_id, account.site.id).as_json())


@router.post(
    "/musters/{muster_id}/entries/{entry_id}",
    response_model=EntryOut,
    responses=ERRORS,
    tags=["roll call"],
)
def api_muster_mark(
    request: Request,
    muster_id: RecordId,
    entry_id: RecordId,
    body: Mark,
    account: Account = Depends(api_permitted("muster.mark")),
) -> dict[str, Any]:
    """Mark one person safe, missing, or back to unknown."""
    web = web_of(request)
    with web.session() as session:
        entry = muster.mark(
            session,
            now=web.now(),
            actor=account.actor,
            status=body.status,
            entry_id=entry_id,
            muster_id=muster_id,
            site_zone=account.site.zone,
            site_id=account.site.id,
        )
    return {
        "id": entry.id,
        "visit_id": entry.visit_id,
        "name": entry.name,
        "status": entry.status,
        "marked_at": utc_text(entry.marked_at),
        "marked_by": entry.marked_by,
    }


@router.post(
    "/musters/{muster_id}/close", response_model=MusterOut, responses=ERRORS, tags=["roll call"]
)
def api_muster_close(
    request: Request, muster_id: RecordId, account: Account = Depends(api_permitted("muster.close"))
) -> dict[str, Any]:
    """Close the roll call; it is kept as the record."""
    web = web_of(request)
    with web.session() as session:
        return muster.close(
            session,
            now=web.now(),
            actor=account.actor,
            muster_id=muster_id,
            site_zone=account.site.zone,
            site_id=account.site.id,
        ).as_json()


# --- holds ---------------------------------------------------------------------------------------


@router.get("/holds", response_model=list[HoldOut], responses=ERRORS, tags=["holds"])
def api_holds(
    request: Request,
    all: bool = Query(False, description="Include holds no longer protecting."),
    account: Account = Depends(api_permitted("hold.list")),
) -> list[dict[str, Any]]:
    """Holds that protect now, or all of them (the `hold list --format json` shape)."""
    web = web_of(request)
    with web.session() as session:
        found = holds.listing(
            session,
            now=web.now(),
            grace=web.settings.holds.release_grace,
            include_inactive=all,
            sites=account.site.id,
        )
    return [holds.as_json(hold, scopes) for hold, scopes in found]


@router.post("/holds", status_code=201, response_model=HoldOut, responses=ERRORS, tags=["holds"])
def api_hold_place(
    request: Request, body: HoldPlace, account: Account = Depends(api_permitted("hold.place"))
) -> dict[str, Any]:
    """Place an incident hold."""
    web = web_of(request)
    here = account.site
    scopes = _scopes(body.scopes)
    start, end = _at(here, body.window_from, "from"), _at(here, body.window_to, "to")
    review = _at(here, body.review_by, "review_by")
    with web.session() as session:
        hold = holds.place(
            session,
            now=web.now(),
            actor=account.actor,
            case=body.case,
            reason=body.reason,
            window_from=start,
            window_to=end,
            scopes=scopes,
            review_by=review,
            site_zone=here.zone,
            site_id=here.id,
        )
        placed = holds.as_json(hold, holds.scopes_of(session, hold))
    evidence.preserve(web.engine, web.settings, now=web.now(), actor=account.actor, case=body.case)
    return placed


# Before `GET /holds/{case:path}`, whose path would take ".../records" for a case reference.
@router.get("/holds/{case:path}/records", responses=ERRORS, tags=["holds"])
def api_hold_records(
    request: Request,
    case: PathText,
    kind: list[HoldKind] | None = Query(None, description="Only these kinds (repeatable)."),
    account: Account = Depends(api_permitted("hold.records")),
) -> dict[str, Any]:
    """Every record the hold keeps now, per kind (the `hold records --format json` shape)."""
    web = web_of(request)
    hold_here(request, account, case, "hold.records")
    with web.reading() as session:
        found = _found(
            lambda: casefile.case_file(
                session,
                case,
                now=web.now(),
                grace=web.settings.holds.release_grace,
                roles=account.roles,
                kinds=kind,
            )
        )
    return casefile.as_json(found)


@router.get("/holds/{case:path}", response_model=HoldOut, responses=ERRORS, tags=["holds"])
def api_hold(
    request: Request, case: PathText, account: Account = Depends(api_permitted("hold.show"))
) -> dict[str, Any]:
    """One hold."""
    web = web_of(request)
    hold_here(request, account, case, "hold.show")
    with web.session() as session:
        hold = _found(lambda: holds.get(session, case))
        return holds.as_json(hold, holds.scopes_of(session, hold))


@router.post("/holds/{case:path}/extend", response_model=HoldOut, responses=ERRORS, tags=["holds"])
def api_hold_extend(
    request: Request,
    case: PathText,
    body: HoldExtend,
    account: Account = Depends(api_permitted("hold.extend")),
) -> dict[str, Any]:
    """Move a hold's end later and/or add scopes."""
    web = web_of(request)
    hold_here(request, account, case, "hold.extend")
    scopes = _scopes(body.scopes)
    end = _at(account.site, body.to, "to")
    with web.session() as session:
        hold, _added = holds.extend(
            session,
            now=web.now(),
            actor=account.actor,
            case=case,
            window_to=end,
            scopes=scopes,
            site_zone=account.site.zone,
        )
        extended = holds.as_json(hold, holds.scopes_of(session, hold))
    evidence.preserve(web.engine, web.settings, now=web.now(), actor=account.actor, case=case)
    return extended


@router.post("/holds/{case:path}/release", response_model=HoldOut, responses=ERRORS, tags=["holds"])
def api_hold_release(
    request: Request,
    case: PathText,
    body: HoldRelease,
    account: Account = Depends(api_permitted("hold.release")),
) -> dict[str, Any]:
    """Release a hold with a reason; it keeps protecting for the release grace."""
    web = web_of(request)
    hold_here(request, account, case, "hold.release")
    with web.session() as session:
        hold = holds.release(
            session,
            now=web.now(),
            actor=account.actor,
            case=case,
            reason=body.reason,
            site_zone=account.site.zone,
        )
        return holds.as_json(hold, holds.scopes_of(session, hold))


# --- report --------------------------------------------------------------------------------------


@router.get("/report", responses=ERRORS | {404: {"description": "No report here"}}, tags=["report"])
def api_report(
    request: Request, account: Account = Depends(api_permitted("report.view", organisation=True))
) -> dict[str, Any]:
    """The privacy report (the shape of `facility report --format json`)."""
    if not report_available():
        raise HTTPException(404, "this installation has no report; use `facility report`")
    return build_report(web_of(request)).as_json()
