"""The app factory: state from the edge, middleware, static files, routers and error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, Response
from starlette.types import Scope

from facility.errors import FacilityError, HeldError, InputError, NotPermitted
from facility.settings import Settings
from facility.store import db
from facility.trail import keys
from facility.web import api, auth, cases, desk, footage, kiosk, pages, sessions, terminal, views
from facility.web.context import Web, web_of
from facility.web.digest import Digest
from facility.web.headers import SecurityHeaders, secure
from facility.web.limits import RequestLimits
from facility.web.notifier import Notifier
from facility.web.rate import Rate
from facility.web.refusals import write_due
from facility.web.throttle import LoginThrottle

KEY_FILE = "web.key"  # in FACILITY_HOME: signs session cookies; every web process shares it
TITLES = {400: "Cannot do that", 404: "Not found", 413: "Too large", 414: "Too long"}
# How our errors answer (facility.errors), the most specific first; what the API document says.
STATUS = (
    (InputError, 400, "Cannot do that"),
    (NotPermitted, 403, "Not allowed"),
    (HeldError, 409, "Kept by an incident hold"),
    (FacilityError, 503, "Something is wrong"),  # StoreError: the database is away or failed
)
_log = logging.getLogger("facility.web")


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    engine: Engine | None = None,
    secret: bytes | None = None,
    secure_cookies: bool = False,
    site: str | None = None,
) -> FastAPI:
    """The web app on `settings`, reading time only from `clock`.

    `engine` defaults to one on `settings.url`; `secret` (the cookie signing key) to the site key
    in the home directory (`facility init` creates it). `secure_cookies` marks the session cookie Secure
    even on plain HTTP (for a TLS proxy that does not send X-Forwarded-Proto). `site` binds every
    terminal to that site (default: `[web] site`; unset: chosen at login, `web.terminal`).
    """
    keys.use_home(settings.home)  # audit entries are signed with the key there
    if engine is None:
        engine = db.make_engine(settings.url)
    if secret is None:
        secret = keys.site_key()  # never a new key: the trail is signed with the site's
    signer = sessions.serializer(secret)
    web = Web(
        settings=settings,
        engine=engine,
        clock=clock,
        templates=views.environment(),
        signer=signer,
        throttle=LoginThrottle(settings.web.login_failures_per_minute),
        digest=Digest(),
        notifier=Notifier(engine, settings, clock),
        kiosk_rate=Rate(settings.web.kiosk_actions_per_minute),
        site=site if site is not None else settings.web.site,
    )
    app = FastAPI(
        title="facility",
        version=_version(),
        description=api.DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # the bundled viewers load scripts from a CDN; sites are often offline
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.web = web

    async def refuse(scope: Scope, status: int, message: str) -> Response:
        return _bare_problem(web, scope["path"], status, message)

    # Outermost last: headers on every answer, the session cookie, then the size limits, which
    # must hand the routes their counting `receive` directly (a BaseHTTPMiddleware between them
    # would wrap its refusal in an exception group).
    app.add_middleware(RequestLimits, refuse=refuse)
    app.middleware("http")(sessions.middleware(signer, always_secure=secure_cookies))
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(packages=[("facility", "static")]), name="static")
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(cases.router)
    app.include_router(footage.router)
    app.include_router(desk.router)
    app.include_router(kiosk.router)
    app.include_router(api.router)
    _handlers(app)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While serving, write the counts of repeated refusals as their windows pass; all at the end."""
    web: Web = app.state.web

    async def flush() -> None:
        while True:
            await asyncio.sleep(web.digest.window.total_seconds() / 2)
            try:
                await asyncio.to_thread(write_due, web, web.now())
            except Exception:  # the database may be away for a while: the counts wait in memory
                _log.exception("could not write the counts of repeated refusals")

    task = asyncio.create_task(flush())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        web.hasher.shutdown(wait=False, cancel_futures=True)
        web.notifier.stop()
        try:
            write_due(web, web.now(), everything=True)
        except Exception:
            _log.exception("could not write the counts of repeated refusals at shutdown")


def _version() -> str:
    try:
        return version("facility")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0"


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _problem(request: Request, status: int, message: str, title: str | None = None) -> Response:
    if _is_api(request.url.path):
        return JSONResponse({"error": message}, status_code=status)
    title = title or TITLES.get(status, "Not allowed")
    return views.page(request, "error.html", status=status, title=title, message=message)


def _bare_problem(web: Web, path: str, status: int, message: str) -> Response:
    """An answer made without the request's session: refusals before it, unexpected errors."""
    if _is_api(path):
        response: Response = JSONResponse({"error": message}, status_code=status)
    else:
        html = web.templates.get_template("web/error.html").render(
            account=None,
            pages=[],
            here=path,
            csrf_field="",
            csrf_token="",
            flashes=[],
            zone=web.settings.timezone,
            office=None,
            may_change_office=False,
            error=None,
            title=TITLES.get(status, "Something is wrong"),
            message=message,
        )
        response = HTMLResponse(html, status_code=status)
    secure(MutableHeaders(raw=response.raw_headers), path)
    return response


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(auth.LoginRequired)
    async def _login(request: Request, err: auth.LoginRequired) -> Response:
        if _is_api(request.url.path):
            return JSONResponse({"error": str(err)}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(terminal.ChooseSite)
    async def _choose(request: Request, err: terminal.ChooseSite) -> Response:
        if _is_api(request.url.path):
            hint = f"send the {terminal.HEADER} header with the code of the office it serves"
            return JSONResponse({"error": f"{err}; {hint}"}, status_code=400)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login/site?next={quote(target)}", status_code=303)

    @app.exception_handler(auth.Refused)
    async def _refused(request: Request, err: auth.Refused) -> Response:
        response = _problem(request, err.status, str(err), "Not allowed")
        if err.retry_after:
            response.headers["Retry-After"] = str(err.retry_after)
        return response

    @app.exception_handler(FacilityError)
    async def _ours(request: Request, err: FacilityError) -> Response:
        status, title = next((s, t) for kind, s, t in STATUS if isinstance(err, kind))
        return _problem(request, status, str(err), title)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> Response:
        return _problem(request, 400, describe_validation(err), "Cannot do that")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        message = err.detail if isinstance(err.detail, str) else "request refused"
        if err.status_code == 404 and err.detail == "Not Found":
            message = "there is no such page"
        return _problem(request, err.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> Response:
        # Starlette logs the traceback after this answer; the client gets one line and our headers.
        return _bare_problem(
            web_of(request),
            request.url.path,
            500,
            "something went wrong on the server; it is in the server's log",
        )


def describe_validation(err: RequestValidationError) -> str:
    """The first problem of a request that did not validate, naming the field."""
    problems = err.errors()
    if not problems:
        return "the request is not valid"
    first = problems[0]
    skip = {"body", "path", "query", "header", "cookie"}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in skip) or "body"
    message = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON"
    if first.get("type") == "missing":
        return f"{where}: required"
    if first.get("type") == "extra_forbidden":
        return f"{where}: not a known field"
    return f"{where}: {message}"
