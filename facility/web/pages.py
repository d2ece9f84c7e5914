"""The pages: reception desk, on site / evacuation list, roll call, holds, report, notice.

Plain HTML forms (no script needed); every POST is checked for its CSRF token first, then for the
role, and answers with a redirect so a reload never posts twice. A form that fails keeps what was
typed and says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, overload
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from facility import sites
from facility.errors import InputError
from facility.names import name_key
from facility.privacy import notice, restriction, wording
from facility.retention import holds
from facility.store.kinds import HOLDABLE
from facility.store.models import Hold, MusterEntry, row_id
from facility.timefmt import hold_status, site_midnight
from facility.visitors import expected, hosts, muster, onsite, reception
from facility.web import cases, lists, terminal
from facility.web.auth import Account, csrf_form, permitted, public
from facility.web.context import Web, web_of
from facility.web.inputs import RecordId, instant
from facility.web.inputs import form_text as _field
from facility.web.reporting import REPORT_CSP, build_report, report_available
from facility.web.terminal import Office
from facility.web.views import flash, page, redirect

router = APIRouter(include_in_schema=False)
ONSITE_REFRESH_SECONDS = 30
ROLL_FILTERS = ("all", "open", "missing", "safe")


def _act(
    request: Request, back: str, act: Callable[[Session], str], *, failed: str = ""
) -> Response:
    """Run `act` in one session and go to `back`, flashing what it returns or its input error."""
    try:
        with web_of(request).session() as session:
            message = act(session)
    except InputError as err:
        flash(request, f"{failed}{err}", "error")
    else:
        flash(request, message)
    return redirect(back)


def _items(form: FormData, name: str, *, commas: bool = True) -> list[str]:
    """Values typed one per line (or comma separated) into a textarea."""
    text = _field(form, name)
    parts = re.split(r"[\n,]" if commas else r"\n", text)
    return [p.strip() for p in parts if p.strip()]


# --- reception -----------------------------------------------------------------------------------


@router.get("/reception")
def reception_page(
    request: Request, account: Account = Depends(permitted("visits.today"))
) -> Response:
    """Sign-in form, badge return, and today's list with one-tap sign-out."""
    return _reception(request, account)


def _reception(
    request: Request,
    account: Account,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    web = web_of(request)
    here = account.site
    now = web.now()
    local_now = now.astimezone(here.zone)
    midnight = site_midnight(now, here.zone)
    with web.session() as session:
        visits = lists.todays_visits(
            session,
            since=midnight,
            hide_restricted=not restriction.sees_restricted(account.roles),
            site_id=here.id,
        )
        waiting = expected.listing(
            session,
            first=local_now.date(),
            last=local_now.date(),
            waiting_only=True,
            site_id=here.id,
        )
        told = notice.build(
            session,
            web.settings.privacy,
            web.settings.limits,
            now=now,
            site_zone=here.zone,
            site=sites.by_id(session, here.id),
        )
    return page(
        request,
        "reception.html",
        status=status,
        title="Reception",
        visits=visits,
        on_site=sum(1 for v in visits if v.open),
        today=local_now.strftime("%A %d %B %Y"),
        when=lambda value: _when(here, value, local_now.date()),
        form=form or {"name": "", "company": "", "host": "", "badge": ""},
        expected=waiting,
        error=error,
        notice_lines=told.visitor_lines(),
        notice_version=told.version.digest,
    )


def _when(here: Office, value: datetime | None, today: date) -> str:
    """Time of day for today; date and time for a visit still open from an earlier day."""
    if value is None:
        return ""
    local = value.astimezone(here.zone)
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%d %b %H:%M")


@router.post("/reception/sign-in")
def sign_in(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("visitor.sign-in")),
) -> Response:
    """Sign a visitor in, with company, host and a badge if given."""
    web = web_of(request)
    typed = {k: _field(form, k) for k in ("name", "company", "host", "badge")}
    try:
        with web.session() as session:
            visit = reception.sign_in(
                session,
                now=web.now(),
                name=typed["name"],
                company=typed["company"] or None,
                host=typed["host"] or None,
                badge=typed["badge"] or None,
                skew=web.settings.limits.clock_skew,
                site_zone=account.site.zone,
                site_id=account.site.id,
            )
            told = hosts.told(session, visit.host, site_id=account.site.id)
    except InputError as err:
        return _reception(request, account, status=400, form=typed, error=str(err))
    web.notifier.kick()
    badge = f" with badge {typed['badge']}" if typed["badge"] else ""
    at = account.site.clock_time(visit.signed_in_at)
    flash(request, f"{visit.name} signed in at {at}{badge}{told}")
    return redirect("/reception")


@router.post("/reception/visits/{visit_id}/sign-out")
def sign_out(
    request: Request,
    visit_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("visitor.sign-out")),
) -> Response:
    """Sign a visitor out (one tap); their badge comes back."""
    web = web_of(request)

    def signed_out(session: Session) -> str:
        visit = reception.find_open_visit(session, visit_id=visit_id, site_id=account.site.id)
        held = onsite.badges_of(session, row_id(visit))
        reception.sign_out(session, visit, now=web.now(), site_zone=account.site.zone)
        back = onsite.badges_back(held, kept=False)
        return f"{visit.name} signed out at {account.site.clock_time(visit.signed_out_at)}{back}"

    return _act(request, "/reception", signed_out)


@router.post("/reception/visits/{visit_id}/badge")
def issue_badge(
    request: Request,
    visit_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("badge.issue")),
) -> Response:
    """Lend a badge to a visitor who is signed in."""
    web = web_of(request)

    def issue(session: Session) -> str:
        loan = reception.issue_badge(
            session,
            now=web.now(),
            badge=_field(form, "badge"),
            visit_id=visit_id,
            site_zone=account.site.zone,
            site_id=account.site.id,
        )
        return f"badge {loan.badge} issued"

    return _act(request, "/reception", issue)


@router.post("/reception/badges/return")
def return_badge(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("badge.return")),
) -> Response:
    """Take a badge back without signing anyone out."""
    web = web_of(request)

    def give_back(session: Session) -> str:
        loan = reception.return_badge(
            session,
            now=web.now(),
            badge=_field(form, "badge"),
            site_zone=account.site.zone,
            site_id=account.site.id,
        )
        return f"badge {loan.badge} returned"

    return _act(request, "/reception", give_back)


# --- on site -------------------------------------------------------------------------------------


@router.get("/onsite")
def onsite_page(request: Request, account: Account = Depends(permitted("onsite.view"))) -> Response:
    """The evacuation list: who is on site, with the door each badge last opened."""
    web = web_of(request)
    here = account.site
    now = web.now()
    with web.session() as session:
        listing = onsite.on_site(session, now=now, site_id=here.id, site_name=here.name)
        current = muster.open_muster(session, here.id)
    return page(
        request,
        "onsite.html",
        title=f"On site: {len(listing.people)}",
        people=listing.people,
        generated=here.local(now),
        local=here.local,
        refresh=ONSITE_REFRESH_SECONDS,
        open_muster=current,
    )


# --- roll call -----------------------------------------------------------------------------------


@router.get("/muster")
def muster_page(request: Request, account: Account = Depends(permitted("muster.view"))) -> Response:
    """The open roll call, or a button to start one and the record of past ones."""
    web = web_of(request)
    here = account.site
    with web.session() as session:
        current = muster.open_muster(session, here.id)
        if current is None:
            people = len(onsite.on_site(session, now=web.now(), site_id=here.id).people)
            past = muster.history(session, site_id=here.id)
    if current is not None:
        return _roll_call(request, account, row_id(current))
    return page(
        request, "muster_start.html", title="Roll call", people=people, past=past, local=here.local
    )


@router.get("/muster/{muster_id}")
def muster_record(
    request: Request, muster_id: RecordId, account: Account = Depends(permitted("muster.view"))
) -> Response:
    """One roll call, open (to tick) or closed (the record)."""
    return _roll_call(request, account, muster_id)


@dataclass(frozen=True)
class RollRow:
    """One person on the roll call page."""

    entry: MusterEntry
    company: str | None
    host: str | None
    badge: str | None
    last_door: str | None
    last_door_at: str
    next_id: int | None


def _roll_call(request: Request, account: Account, muster_id: int) -> Response:
    web = web_of(request)
    here = account.site
    show = request.query_params.get("show", "all")
    show = show if show in ROLL_FILTERS else "all"
    query = request.query_params.get("q", "").strip()
    with web.session() as session:
        call = muster.get(session, muster_id, here.id)
        listing = onsite.on_site(session, now=web.now(), site_id=here.id)
        people = {p.visit_id: p for p in listing.people}
    shown = [e for e in call.entries if _shows(e, show, query)]
    rows = []
    for index, entry in enumerate(shown):
        person = None if entry.visit_id is None else people.get(entry.visit_id)
        following = shown[index + 1].id if index + 1 < len(shown) else None
        rows.append(
            RollRow(
                entry,
                person.company if person else None,
                person.host if person else None,
                ", ".join(person.badges) if person else None,
                person.last_door if person else None,
                here.local(person.last_door_at) if person else "",
                following,
            )
        )
    counts = call.counts
    return page(
        request,
        "muster.html",
        title=f"Roll call {call.muster.id}",
        call=call,
        counts=counts,
        unaccounted=counts["unknown"] + counts["missing"],
        rows=rows,
        show=show,
        q=query,
        filters=ROLL_FILTERS,
        back=urlencode({"show": show, "q": query}),
        local=here.local,
        generated=here.local(web.now()),
    )


def _shows(entry: MusterEntry, show: str, query: str) -> bool:
    if query and name_key(query) not in name_key(entry.name or ""):
        return False
    if show == "open":
        return entry.status in ("unknown", "missing")
    return show == "all" or entry.status == show


@router.post("/muster/start")
def muster_start(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("muster.start")),
) -> Response:
    """Start a roll call of everyone on site now."""
    web = web_of(request)
    try:
        with web.session() as session:
            call = muster.start(
                session,
                now=web.now(),
                actor=account.actor,
                site_zone=account.site.zone,
                site_id=account.site.id,
            )
    except InputError as err:
        flash(request, str(err), "error")
        return redirect("/muster")
    people = len(call.entries)
    flash(
        request,
        f"roll call {call.muster.id} started: {people} {'person' if people == 1 else 'people'}",
    )
    return redirect(f"/muster/{call.muster.id}")


@router.post("/muster/{muster_id}/entries/{entry_id}")
def muster_mark(
    request: Request,
    muster_id: RecordId,
    entry_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("muster.mark")),
) -> Response:
    """Tick one person safe or missing (or back to unknown)."""
    web = web_of(request)
    show = _field(form, "show") if _field(form, "show") in ROLL_FILTERS else "all"
    query = _field(form, "q")
    status = _field(form, "status")
    try:
        with web.session() as session:
            entry = muster.mark(
                session,
                now=web.now(),
                actor=account.actor,
                status=status,
                entry_id=entry_id,
                muster_id=muster_id,
                site_zone=account.site.zone,
                site_id=account.site.id,
            )
    except InputError as err:
        flash(request, str(err), "error")
        return redirect(f"/muster/{muster_id}")
    # Come back to the same place in a long list: this row, or the next if it left the view.
    following = _field(form, "next")
    anchor = entry.id if _shows(entry, show, query) else (following if following.isdigit() else "")
    target = f"/muster/{muster_id}?{urlencode({'show': show, 'q': query})}"
    return redirect(f"{target}#e{anchor}" if anchor else target)


@router.post("/muster/{muster_id}/close")
def muster_close(
    request: Request,
    muster_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("muster.close")),
) -> Response:
    """Close the roll call; it stays as the record of the drill or incident."""
    web = web_of(request)
    try:
        with web.session() as session:
            call = muster.close(
                session,
                now=web.now(),
                actor=account.actor,
                muster_id=muster_id,
                site_zone=account.site.zone,
                site_id=account.site.id,
            )
    except InputError as err:
        flash(request, str(err), "error")
        return redirect(f"/muster/{muster_id}")
    counts = call.counts
    flash(
        request,
        f"roll call {muster_id} closed: {counts['safe']} safe, {counts['missing']} missing, "
        f"{counts['unknown']} not checked",
        "ok" if counts["safe"] == counts["total"] else "warn",
    )
    return redirect(f"/muster/{muster_id}")


# --- holds ---------------------------------------------------------------------------------------


@router.get("/holds")
def holds_page(request: Request, account: Account = Depends(permitted("hold.list"))) -> Response:
    """Holds that protect now (or all), a form to place one, and extend/release for each: this
    office's and the organisation's."""
    return _holds(request, account)


def _holds(
    request: Request,
    account: Account,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    web = web_of(request)
    now = web.now()
    show_all = request.query_params.get("all") == "1"
    grace = web.settings.holds.release_grace
    here = account.site
    with web.session() as session:
        found = holds.listing(
            session, now=now, grace=grace, include_inactive=show_all, sites=here.id
        )
        cameras = lists.distinct_values(session, "camera_segments", "camera")
        doors = lists.distinct_values(session, "door_events", "door")
    local_now = now.astimezone(here.zone)
    defaults = {
        "case": "",
        "reason": "",
        "from": (local_now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "to": local_now.strftime("%Y-%m-%dT%H:%M"),
        "review_by": "",
        "cameras": "",
        "doors": "",
        "badges": "",
        "macs": "",
        "visitors": "",
        "kinds": [],
        "camera_pick": [],
        "door_pick": [],
    }
    return page(
        request,
        "holds.html",
        status=status,
        title="Holds",
        holds=[_hold_view(web, here, hold, scopes, now) for hold, scopes in found],
        show_all=show_all,
        cameras=cameras,
        doors=doors,
        kinds=HOLDABLE,
        form=defaults | (form or {}),
        error=error,
    )


def _hold_view(
    web: Web, here: Office, hold: Hold, scopes: list[holds.Scope], now: datetime
) -> dict[str, Any]:
    grace = web.settings.holds.release_grace
    until = None if hold.released_at is None else hold.released_at + grace
    state = hold_status(hold.released_at, until, now=now, site_zone=here.zone)
    return {
        "case": hold.case,
        "organisation": hold.site_id is None,
        "reason": hold.reason,
        "window": f"{here.local(hold.window_from)} to {here.local(hold.window_to)}",
        "to": hold.window_to.astimezone(here.zone).strftime("%Y-%m-%dT%H:%M"),
        "state": state,
        "active": hold.released_at is None,
        "placed": f"{here.local(hold.placed_at)} by {hold.placed_by}",
        "review_by": here.local(hold.review_by),
        "overdue": hold.released_at is None
        and hold.review_by is not None
        and hold.review_by <= now,
        "scopes": [
            f"{s.kind}: {s.selector}" if s.selector is not None else f"all {s.kind}" for s in scopes
        ],
        "release_reason": hold.release_reason,
        # Released but still protecting: the release can be taken back (`holds.reinstate`).
        "reinstatable": until is not None and now < until,
        "link": f"/holds/{hold.case}",
    }


def _picked(form: FormData, name: str) -> list[str]:
    """The values of a multiple select or a set of checkboxes."""
    return [v for v in form.getlist(name) if isinstance(v, str)]


def _scopes(form: FormData) -> list[holds.Scope]:
    return holds.scopes_from_options(
        cameras=_items(form, "cameras") + _picked(form, "camera_pick"),
        doors=_items(form, "doors") + _picked(form, "door_pick"),
        badges=_items(form, "badges"),
        macs=_items(form, "macs"),
        visitors=_items(form, "visitors", commas=False),
        kinds=_picked(form, "kinds"),
    )


@overload
def _instant(
    web: Web, here: Office, form: FormData, name: str, label: str, *, required: Literal[True]
) -> datetime: ...
@overload
def _instant(
    web: Web, here: Office, form: FormData, name: str, label: str, *, required: bool
) -> datetime | None: ...
def _instant(
    web: Web, here: Office, form: FormData, name: str, label: str, *, required: bool
) -> datetime | None:
    text = _field(form, name)
    if not text:
        if required:
            raise InputError(f"{label}: required")
        return None
    return instant(text, here.zone, now=web.now(), what=label)


@router.post("/holds/place")
def hold_place(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("hold.place")),
) -> Response:
    """Place a hold from the form's case, reason, window and scope pickers."""
    web = web_of(request)
    typed: dict[str, Any] = {
        k: _field(form, k)
        for k in ("case", "reason", "from", "to", "review_by", "cameras", "doors", "badges")
    }
    typed |= {"macs": _field(form, "macs"), "visitors": _field(form, "visitors")}
    typed |= {k: _picked(form, k) for k in ("kinds", "camera_pick", "door_pick")}
    try:
        scopes = _scopes(form)
        here = account.site
        start = _instant(web, here, form, "from", "from", required=True)
        end = _instant(web, here, form, "to", "to", required=True)
        review = _instant(web, here, form, "review_by", "review by", required=False)
        with web.session() as session:
            hold = holds.place(
                session,
                now=web.now(),
                actor=account.actor,
                case=typed["case"],
                reason=typed["reason"],
                window_from=start,
                window_to=end,
                scopes=scopes,
                review_by=review,
                site_zone=here.zone,
                site_id=here.id,
            )
    except InputError as err:
        return _holds(request, account, status=400, form=typed, error=str(err))
    flash(request, f"hold {hold.case} placed with {len(scopes)} scope(s)")
    preserved = cases.preserve_now(web, account, hold.case)
    if preserved:
        flash(request, preserved)
    return redirect("/holds")


@router.post("/holds/extend")
def hold_extend(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("hold.extend")),
) -> Response:
    """Move a hold's end later and/or add scopes."""
    web = web_of(request)
    here = account.site
    case = _field(form, "case")
    cases.hold_here(request, account, case, "hold.extend")
    extended: list[str] = []

    def extend(session: Session) -> str:
        end = _instant(web, here, form, "to", "to", required=False)
        scopes = _scopes(form)
        if end is not None and end == holds.get(session, case).window_to:
            end = None  # the form shows the current end; leaving it is not a change
        hold, added = holds.extend(
            session,
            now=web.now(),
            actor=account.actor,
            case=case,
            window_to=end,
            scopes=scopes,
            site_zone=here.zone,
        )
        extended.append(hold.case)
        return (
            f"hold {hold.case} now ends {here.local(hold.window_to)}; {len(added)} scope(s) added"
        )

    response = _act(request, "/holds", extend, failed=f"hold {case}: ")
    if extended:  # committed: what it covers now is preserved at once
        preserved = cases.preserve_now(web, account, extended[0])
        if preserved:
            flash(request, preserved)
    return response


@router.post("/holds/release")
def hold_release(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("hold.release")),
) -> Response:
    """Release a hold with a reason; it protects for the release grace still."""
    web = web_of(request)
    here = account.site
    case = _field(form, "case")
    cases.hold_here(request, account, case, "hold.release")

    def release(session: Session) -> str:
        hold = holds.release(
            session,
            now=web.now(),
            actor=account.actor,
            case=case,
            reason=_field(form, "reason"),
            site_zone=here.zone,
        )
        assert hold.released_at is not None  # release sets it
        until = hold.released_at + web.settings.holds.release_grace
        return f"hold {hold.case} released; it keeps protecting until {here.local(until)}"

    return _act(request, "/holds", release, failed=f"hold {case}: ")


@router.post("/holds/reinstate")
def hold_reinstate(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("hold.reinstate")),
) -> Response:
    """Take a release back while the hold still protects (within the release grace)."""
    web = web_of(request)
    here = account.site
    case = _field(form, "case")
    cases.hold_here(request, account, case, "hold.reinstate")

    def reinstate(session: Session) -> str:
        hold = holds.reinstate(
            session,
            now=web.now(),
            actor=account.actor,
            case=case,
            grace=web.settings.holds.release_grace,
            site_zone=here.zone,
        )
        return f"hold {hold.case} protects again, as before its release"

    return _act(request, "/holds", reinstate, failed=f"hold {case}: ")


# --- the privacy notice ---------------------------------------------------------------------------


@router.get("/notice", dependencies=[public("notice.view")])
def notice_page(request: Request) -> Response:
    """The privacy notice (article 13) as one page, printable on A4; `?lang=nl` in Dutch."""
    web = web_of(request)
    lang = request.query_params.get("lang", "en")
    with web.session() as session:
        site = terminal.of_notice(session, server=web.site, asked=request.query_params.get("site"))
        made = notice.build(
            session,
            web.settings.privacy,
            web.settings.limits,
            now=web.now(),
            site_zone=web.settings.site_zone if site is None else sites.zone_of(site, web.settings),
            lang=lang if lang in wording.LANGUAGES else "en",
            site=site,
        )
    return HTMLResponse(
        notice.render(made, "html"), headers={"Content-Security-Policy": REPORT_CSP}
    )


# --- report --------------------------------------------------------------------------------------


@router.get("/report")
def report_page(
    request: Request, account: Account = Depends(permitted("report.view", organisation=True))
) -> Response:
    """The privacy report's verdict, with links to the printable report and its JSON."""
    if not report_available():
        return page(request, "report.html", title="Report", built=None)
    web = web_of(request)
    built = build_report(web)
    return page(
        request,
        "report.html",
        title="Report",
        built=built,
        generated=account.site.local(built.generated_at),
    )


@router.get("/report/print")
def report_print(
    request: Request, account: Account = Depends(permitted("report.view", organisation=True))
) -> Response:
    """The printable report, the same page as `facility report --format html`."""
    if not report_available():
        return redirect("/report")
    from facility.privacy.report_render import render

    web = web_of(request)
    html = render(build_report(web), "html", web.settings.timezone)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP})
