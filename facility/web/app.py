"""The app factory: state from the edge, middleware, static files, routers and error handlers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from facility import audit, audit_keys, db
from facility.errors import FacilityError, InputError
from facility.settings import Settings
from facility.web import api, auth, pages, sessions, views
from facility.web.context import Web

KEY_FILE = "web.key"  # in FACILITY_HOME: signs session cookies; every web process shares it
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    engine: Engine | None = None,
    secret: bytes | None = None,
    secure_cookies: bool = False,
) -> FastAPI:
    """The web app on `settings`, reading time only from `clock`.

    `engine` defaults to one on `settings.url`; `secret` (the cookie signing key) to the key file
    in the home directory, created on first use. `secure_cookies` marks the session cookie Secure
    even on plain HTTP (for a TLS proxy that does not send X-Forwarded-Proto).
    """
    audit_keys.use_home(settings.home)  # audit entries are signed with the key there
    if engine is None:
        engine = db.make_engine(settings.url)
    if secret is None:
        secret = audit.load_or_create_key(settings.home / KEY_FILE)
    signer = sessions.serializer(secret)
    app = FastAPI(
        title="facility",
        version=_version(),
        description=api.DESCRIPTION,
        openapi_url="/api/openapi.json",
        docs_url=None,  # the bundled viewers load scripts from a CDN; sites are often offline
        redoc_url=None,
    )
    app.state.web = Web(
        settings=settings,
        engine=engine,
        clock=clock,
        templates=views.environment(),
        signer=signer,
    )
    app.middleware("http")(sessions.middleware(signer, always_secure=secure_cookies))
    app.middleware("http")(_security_headers)
    app.mount("/static", StaticFiles(packages=[("facility", "static")]), name="static")
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    _handlers(app)
    return app


def _version() -> str:
    try:
        return version("facility")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0"


async def _security_headers(request: Request, call_next) -> Response:
    response = await call_next(request)
    headers = response.headers
    headers.setdefault("Content-Security-Policy", _CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not request.url.path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")  # lists of people stay off disk caches
    return response


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _problem(request: Request, status: int, message: str, title: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, status_code=status)
    return views.page(request, "error.html", status=status, title=title, message=message)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(auth.LoginRequired)
    async def _login(request: Request, err: auth.LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse({"error": str(err)}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(auth.Refused)
    async def _refused(request: Request, err: auth.Refused) -> Response:
        return _problem(request, err.status, str(err), "Not allowed")

    @app.exception_handler(InputError)
    async def _input(request: Request, err: InputError) -> Response:
        return _problem(request, 400, str(err), "Cannot do that")

    @app.exception_handler(FacilityError)
    async def _failure(request: Request, err: FacilityError) -> Response:
        return _problem(request, 503, str(err), "Something is wrong")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> Response:
        return _problem(request, 400, describe_validation(err), "Cannot do that")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> Response:
        message = err.detail if isinstance(err.detail, str) else "request refused"
        if err.status_code == 404 and err.detail == "Not Found":
            message = "there is no such page"
        return _problem(request, err.status_code, message, "Not found")


def describe_validation(err: RequestValidationError) -> str:
    """The first problem of a request that did not validate, naming the field."""
    problems = err.errors()
    if not problems:
        return "the request is not valid"
    first = problems[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    message = first.get("msg", "is not valid")
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON"
    if first.get("type") == "missing":
        return f"{where}: required"
    if first.get("type") == "extra_forbidden":
        return f"{where}: not a known field"
    return f"{where}: {message}"
