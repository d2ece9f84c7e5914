"""The kiosk: a tablet at the entrance where visitors sign themselves in and out.

No staff login: the tablet is paired once (`facility kiosk add NAME` prints a one-time path
`/kiosk/pair/<token>`; opening it and confirming stores a device token in the tablet's cookie),
and every kiosk request is checked against that token, so `facility kiosk revoke NAME` stops the
tablet at its next request. The pages show the privacy notice before the sign-in form, name only
what the visitor typed, and never who else is on site (`visitors.self_service`). Sign-ins and
sign-outs are limited per kiosk and per client address (`web.kiosk_actions_per_minute`), and so
are pairing attempts per address.
"""

from __future__ import annotations

import math
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from facility import sites
from facility.accounts import kiosks
from facility.errors import InputError
from facility.store.models import Kiosk
from facility.visitors import hosts, self_service
from facility.visitors.kiosk_notice import privacy_notice
from facility.web import csrf, sessions, terminal
from facility.web.auth import Refused, csrf_form, public
from facility.web.context import client_address, web_of
from facility.web.inputs import check_form, form_text
from facility.web.terminal import Office
from facility.web.views import flash, page, redirect

router = APIRouter(include_in_schema=False)
COOKIE = "facility_kiosk"
COOKIE_AGE = timedelta(days=400)  # browsers cap a cookie's life near this; re-pair after
DONE_SECONDS = 8  # the thank-you page goes back to the start by itself
NOT_PAIRED = (
    "This device is not a kiosk, or its kiosk was revoked. Ask the administrator for a new "
    "pairing link (facility kiosk add NAME)."
)


def _device(request: Request) -> Kiosk:
    """The live kiosk of this device's cookie; Refused (403) otherwise."""
    with web_of(request).reading() as session:
        kiosk = kiosks.device(session, request.cookies.get(COOKIE))
    if kiosk is None:
        raise Refused(NOT_PAIRED)
    return kiosk


def _office(request: Request, kiosk: Kiosk) -> Office:
    """The office the kiosk stands in: visitors sign in and out there, whatever the server's."""
    web = web_of(request)
    with web.reading() as session:
        return terminal.office(sites.by_id(session, kiosk.site_id), web.settings)


def _limit(request: Request, kiosk: Kiosk | None = None) -> None:
    """Count one action; Refused (429) beyond `web.kiosk_actions_per_minute`.

    Sign-ins and sign-outs count per kiosk and per address; pairing attempts per address apart,
    so that pairing a tablet takes nothing from its visitors.
    """
    web = web_of(request)
    now = web.now()
    address = client_address(request)
    keys = [f"pair:{address}"] if kiosk is None else [f"kiosk:{kiosk.id}", f"address:{address}"]
    until = web.kiosk_rate.take(keys, now)
    if until is not None:
        wait = max(1, math.ceil((until - now).total_seconds()))
        raise Refused(
            "Many sign-ins here just now: please wait a moment, or ask at reception.",
            status=429,
            retry_after=wait,
        )


# --- pairing -------------------------------------------------------------------------------------


@router.get("/kiosk/pair/{token}", dependencies=[public("kiosk.pair")])
def pair_page(request: Request, token: str) -> Response:
    """Confirm pairing this device as the kiosk the link was made for."""
    _limit(request)
    web = web_of(request)
    with web.reading() as session:
        kiosk = kiosks.pairing(session, token, now=web.now())
    if kiosk is None:
        return _kiosk_page(request, "kiosk_message.html", status=404, message=_LINK_GONE)
    return _kiosk_page(request, "kiosk_pair.html", kiosk=kiosk.name, token=token)


_LINK_GONE = (
    "This pairing link is not valid: it was used already, has expired, or its kiosk was revoked."
)


@router.post("/kiosk/pair/{token}", dependencies=[public("kiosk.pair")])
def pair(request: Request, token: str, form: FormData = Depends(csrf_form)) -> Response:
    """Pair this device: the link is used up, the device gets its own token in a cookie."""
    _limit(request)
    web = web_of(request)
    with web.session() as session:
        paired = kiosks.pair(session, token, now=web.now())
    if paired is None:
        return _kiosk_page(request, "kiosk_message.html", status=404, message=_LINK_GONE)
    kiosk, device = paired
    response = redirect("/kiosk")
    response.set_cookie(
        COOKIE,
        device,
        max_age=int(COOKIE_AGE.total_seconds()),
        path="/kiosk",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    flash(request, f"This device is now the kiosk {kiosk.name}.")
    return response


# --- the visitor's pages -------------------------------------------------------------------------


@router.get("/kiosk", dependencies=[public("kiosk.use")])
def start(request: Request) -> Response:
    """The privacy notice, the sign-in form (host from the directory) and the sign-out form."""
    kiosk = _device(request)
    return _start(request, kiosk)


def _start(
    request: Request,
    kiosk: Kiosk,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    web = web_of(request)
    here = _office(request, kiosk)
    with web.reading() as session:
        notice = privacy_notice(
            session,
            web.settings.privacy,
            web.settings.limits,
            now=web.now(),
            site_zone=here.zone,
            site=sites.by_id(session, here.id),
        )
        directory = [(h.id, h.name) for h in hosts.listing(session, site_id=here.id)]
    return _kiosk_page(
        request,
        "kiosk.html",
        status=status,
        kiosk=kiosk.name,
        notice=notice,
        directory=directory,
        form=form or {"name": "", "company": "", "host": "", "leaving": ""},
        error=error,
    )


@router.post("/kiosk/sign-in", dependencies=[public("kiosk.use")])
def kiosk_sign_in(request: Request, form: FormData = Depends(csrf_form)) -> Response:
    """A visitor signs themselves in, having been shown the notice."""
    kiosk = _device(request)
    _limit(request, kiosk)
    web = web_of(request)
    typed = {k: form_text(form, k) for k in ("name", "company", "host")} | {"leaving": ""}
    try:
        check_form(form)
        if form_text(form, "notice") != "read":
            raise InputError("Please read the privacy notice and tick the box to go on.")
        host_id = int(typed["host"]) if typed["host"].isdigit() else None
        if typed["host"] and host_id is None:
            raise InputError("Please choose the person you visit from the list.")
        here = _office(request, kiosk)
        with web.session() as session:
            visit = self_service.sign_in(
                session,
                now=web.now(),
                name=typed["name"],
                company=typed["company"] or None,
                host_id=host_id,
                skew=web.settings.limits.clock_skew,
                site_zone=here.zone,
                site_id=here.id,
            )
            told = (
                visit.host is not None
                and hosts.find(session, visit.host, site_id=here.id) is not None
            )
    except InputError as err:
        return _start(request, kiosk, status=400, form=typed, error=_plain(err))
    web.notifier.kick()
    said = f"Welcome, {visit.name}. You are signed in."
    flash(request, said + (" We have told the person you visit." if told else ""))
    return redirect("/kiosk/done")


@router.post("/kiosk/sign-out", dependencies=[public("kiosk.use")])
def kiosk_sign_out(request: Request, form: FormData = Depends(csrf_form)) -> Response:
    """A visitor signs themselves out by their full name."""
    kiosk = _device(request)
    _limit(request, kiosk)
    web = web_of(request)
    typed = {"name": "", "company": "", "host": "", "leaving": form_text(form, "leaving")}
    try:
        check_form(form)
        here = _office(request, kiosk)
        with web.session() as session:
            visit, badges = self_service.sign_out(
                session,
                now=web.now(),
                name=typed["leaving"],
                skew=web.settings.limits.clock_skew,
                site_zone=here.zone,
                site_id=here.id,
            )
    except InputError as err:
        return _start(request, kiosk, status=400, form=typed, error=_plain(err))
    back = f" Please leave badge {', '.join(badges)} at reception." if badges else ""
    flash(request, f"Goodbye, {visit.name}. You are signed out.{back}")
    return redirect("/kiosk/done")


@router.get("/kiosk/done", dependencies=[public("kiosk.use")])
def done(request: Request) -> Response:
    """What just happened, in one line; back to the start after a few seconds."""
    kiosk = _device(request)
    return _kiosk_page(request, "kiosk_message.html", kiosk=kiosk.name, refresh=DONE_SECONDS)


def _kiosk_page(
    request: Request, template: str, *, status: int = 200, **context: object
) -> Response:
    context.setdefault("kiosk", None)
    context.setdefault("message", None)
    context.setdefault("refresh", None)
    csrf.token(sessions.of(request))
    return page(request, template, status=status, title="Welcome", **context)


def _plain(err: InputError) -> str:
    """A refusal as a visitor reads it: without the option names the CLI uses."""
    text = str(err)
    for prefix in ("NAME: ", "--company ", "--company: ", "--host: ", "name: "):
        text = text.removeprefix(prefix)
    return text[:1].upper() + text[1:]
