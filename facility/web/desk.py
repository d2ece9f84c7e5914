"""The reception desk's pages beyond sign-in: the visit log, expected visitors, badge labels.

Plain HTML forms like the other pages (`pages`): each POST checks its form token, then the role,
and answers with a redirect. A sign-in made here tells the host through the web server's
background sender (`notifier`), after the answer's transaction has committed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from facility import sites
from facility.accounts import permissions
from facility.errors import InputError
from facility.store.models import Visit
from facility.timeutil import parse_duration
from facility.visitors import expected, history, hosts, labels, reception
from facility.web.auth import Account, csrf_form, permitted
from facility.web.context import Web, web_of
from facility.web.inputs import RecordId, check_form, form_text, instant, text_problem
from facility.web.terminal import Office
from facility.web.views import flash, page, redirect

router = APIRouter(include_in_schema=False)
LOG_FILTERS = ("since", "until", "name", "host", "company")
MAX_BACK = timedelta(days=36_500)  # further back than any policy: a typo
# A label page is self-contained (inline CSS); its print button is our static script.
LABEL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


# --- the visit log -------------------------------------------------------------------------------


@router.get("/visits")
def visits_page(
    request: Request, account: Account = Depends(permitted("visitor.list"))
) -> Response:
    """The visit log: filters, a page of visits, and links to the pages around it."""
    web = web_of(request)
    here = account.site
    now = web.now()
    query = request.query_params
    typed = {key: query.get(key, "").strip() for key in LOG_FILTERS}
    open_only = query.get("open") == "1"
    number = _page_number(query.get("page", "1"))
    try:
        for key, value in typed.items():
            if problem := text_problem(value):
                raise InputError(f"{key}: {problem}")
        filters = history.Filters(
            since=_typed_time(web, here, typed["since"], "since", since=True),
            until=_typed_time(web, here, typed["until"], "until"),
            name=typed["name"] or None,
            host=typed["host"] or None,
            company=typed["company"] or None,
            open_only=open_only,
        )
        with web.reading() as session:
            found = history.search(
                session,
                filters,
                now=now,
                roles=account.roles,
                site=sites.by_id(session, here.id),
                offset=(number - 1) * history.PAGE,
                limit=history.PAGE,
            )
    except InputError as err:
        return page(
            request,
            "visits.html",
            status=400,
            title="Visits",
            typed=typed,
            open_only=open_only,
            found=None,
            error=str(err),
        )
    page_count = max(1, -(-found.total // history.PAGE))
    shown = {k: v for k, v in typed.items() if v} | ({"open": "1"} if open_only else {})
    return page(
        request,
        "visits.html",
        title="Visits",
        typed=typed,
        open_only=open_only,
        found=found,
        number=number,
        page_count=page_count,
        link=lambda n: "/visits?" + urlencode(shown | {"page": n}),
        local=here.local,
        kept_since=here.local(found.kept_since),
        may_label=permissions.declared("visitor.label").allows(account.roles, here.code),
    )


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < int(text) < 1_000_000 else 1


def _typed_time(
    web: Web, here: Office, text: str, what: str, *, since: bool = False
) -> datetime | None:
    """A time typed into a filter; `since` also takes how long ago (`7d`)."""
    if not text:
        return None
    if since:
        try:
            back = parse_duration(text, what=what)
        except InputError:
            back = None
        if back is not None and back <= MAX_BACK:
            return web.now() - back
    return instant(text, here.zone, now=web.now(), what=what)


# --- labels --------------------------------------------------------------------------------------


@router.get("/visits/{visit_id}/label")
def label_page(
    request: Request, visit_id: RecordId, account: Account = Depends(permitted("visitor.label"))
) -> Response:
    """A visitor's badge label, ready to print (`?size=` picks the stock)."""
    web = web_of(request)
    stock = labels.size_of(request.query_params.get("size", labels.DEFAULT_SIZE))
    with web.reading() as session:
        visit = session.get(Visit, visit_id)
        if visit is not None and visit.site_id != account.site.id:  # another office's visitor
            raise HTTPException(404, f"there is no visit {visit_id} at {account.site.name}")
        found = labels.for_visit(
            session, visit_id, site_zone=account.site.zone, site_id=account.site.id
        )
    html = labels.render(found, stock, print_button="/static/facility.js")
    return HTMLResponse(html, headers={"Content-Security-Policy": LABEL_CSP})


# --- expected visitors ---------------------------------------------------------------------------


@router.get("/expected")
def expected_page(
    request: Request, account: Account = Depends(permitted("expected.list"))
) -> Response:
    """The visitors expected on a day (today unless `?day=`), and a form to announce one."""
    return _expected(request, account)


def _expected(
    request: Request,
    account: Account,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    web = web_of(request)
    here = account.site
    today = expected.site_day(web.now(), here.zone)
    try:
        day = expected.parse_day(request.query_params.get("day", "") or "today", today=today)
    except InputError as err:
        day, error, status = today, str(err), 400
    with web.reading() as session:
        rows = expected.listing(session, first=day, last=day, site_id=here.id)
        directory = [h.name for h in hosts.listing(session, site_id=here.id)]
    return page(
        request,
        "expected.html",
        status=status,
        title="Expected visitors",
        day=day,
        today=today,
        shift=lambda n: (day + timedelta(days=n)).isoformat(),
        rows=rows,
        directory=directory,
        form=form or {"name": "", "company": "", "host": "", "on": day.isoformat(), "badge": ""},
        local=here.local,
        error=error,
    )


@router.post("/expected")
def expected_add(
    request: Request,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("visitor.expect")),
) -> Response:
    """Announce a visitor for a day."""
    web = web_of(request)
    typed = {k: form_text(form, k) for k in ("name", "company", "host", "on", "badge")}
    try:
        check_form(form)
        today = expected.site_day(web.now(), account.site.zone)
        day = expected.parse_day(typed["on"] or "today", today=today, what="day")
        with web.session() as session:
            row = expected.expect(
                session,
                now=web.now(),
                actor=account.actor,
                name=typed["name"],
                host=typed["host"],
                on=day,
                company=typed["company"] or None,
                badge=typed["badge"] or None,
                site_zone=account.site.zone,
                site_id=account.site.id,
            )
    except InputError as err:
        return _expected(request, account, status=400, form=typed, error=str(err))
    flash(request, f"{row.name} expected on {_day(row.expected_on)} for {row.host}")
    return redirect(f"/expected?day={row.expected_on.isoformat()}")


@router.post("/expected/{expected_id}/sign-in")
def expected_sign_in(
    request: Request,
    expected_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("visitor.sign-in")),
) -> Response:
    """Sign an expected visitor in with one click: company, host and badge as announced."""
    web = web_of(request)
    back = _back(form)
    try:
        with web.session() as session:
            visit = reception.sign_in_expected(
                session,
                now=web.now(),
                expected_id=expected_id,
                skew=web.settings.limits.clock_skew,
                site_zone=account.site.zone,
                site_id=account.site.id,
            )
            told = hosts.told(session, visit.host, site_id=account.site.id)
    except InputError as err:
        flash(request, str(err), "error")
        return redirect(back)
    web.notifier.kick()  # the host is told in the background, after the sign-in committed
    flash(request, f"{visit.name} signed in at {account.site.clock_time(visit.signed_in_at)}{told}")
    return redirect(back)


@router.post("/expected/{expected_id}/cancel")
def expected_cancel(
    request: Request,
    expected_id: RecordId,
    form: FormData = Depends(csrf_form),
    account: Account = Depends(permitted("expected.cancel")),
) -> Response:
    """Cancel an expected visit; it is deleted."""
    web = web_of(request)

    def cancel(session: Session) -> str:
        row = expected.cancel(session, expected_id, site_id=account.site.id)
        return f"{row.name} is no longer expected on {_day(row.expected_on)}"

    try:
        with web.session() as session:
            message = cancel(session)
    except InputError as err:
        flash(request, str(err), "error")
    else:
        flash(request, message)
    return redirect(_back(form))


def _back(form: FormData) -> str:
    """Where a form asked to come back to: the reception desk or a day of the expected list."""
    back = form_text(form, "back")
    if back == "/reception" or (back.startswith("/expected?day=") and back[14:24].count("-") == 2):
        return back[:24]
    return "/expected"


def _day(value: date) -> str:
    return value.strftime("%a %d %b %Y")
