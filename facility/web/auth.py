"""Who is asking: login and logout, the signed-in account, the action check, and refusals.

Every route names its action (`permitted` for pages, `api_permitted` for the API, `public` for
the doors anyone may use); `permit` asks `facility.accounts.permissions.check`, which audits a
refusal (once per account and route a minute, `refusals`) and raises NotPermitted (403).

Pages and the API share `signed_in` and `permit`; they differ in how they ask to log in (a redirect
to the login page, or 401) and in how a POST proves it was meant (a form token, or the API's
header/Basic rules in `api_account`).

A login reads the account, checks the password outside any transaction (argon2 takes a deliberate
while, and SQLite has one writer), and only then writes, briefly: the new session. A wrong
password writes nothing; the limits on wrong passwords are in `throttle`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.responses import Response

from facility.accounts import permissions, user_sessions, users
from facility.store.models import Site, User, row_id
from facility.timefmt import site_text
from facility.web import actions, csrf, inputs, sessions, terminal
from facility.web.context import Busy, client_address, web_of
from facility.web.refusals import audit_once
from facility.web.terminal import Office
from facility.web.throttle import LOCKOUT, MAX_FAILURES, Verdict
from facility.web.views import page

router = APIRouter(include_in_schema=False)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BASIC = HTTPBasic(auto_error=False, description="A local account (`facility user add`).")
WRONG = "wrong name or password"


@dataclass(frozen=True)
class Account:
    """A signed-in local account, and the office its request serves (`terminal`)."""

    name: str
    roles: frozenset[str]
    site: Office

    @property
    def actor(self) -> str:
        """How the audit trail names this account."""
        return f"web:{self.name}"


class LoginRequired(Exception):
    """Nobody is signed in, or a login failed (pages: go to the login page; API: 401)."""

    def __init__(self, message: str = "log in first") -> None:
        super().__init__(message)


class Refused(Exception):
    """The request is not allowed: bad CSRF token, wrong content type, too many wrong passwords
    from the client's address (429). A missing role is NotPermitted (`permit`)."""

    def __init__(self, message: str, status: int = 403, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _account(user: User, office: Office) -> Account:
    return Account(user.name, users.roles_of(user), office)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _asked(request: Request) -> str | None:
    """The site an API call names in its header (pages never read it)."""
    return request.headers.get(terminal.HEADER) if _is_api(request) else None


def route_of(request: Request) -> str:
    """The request as the audit trail names it: method and route template, never the raw path."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', None) or '(no route)'}"


def _live(request: Request) -> user_sessions.Live | None:
    """The live server-side session of the cookie, if any (its last use noted now and then)."""
    cookie = sessions.of(request)
    token = cookie.get("s")
    if not isinstance(token, str) or not token:
        return None
    web = web_of(request)
    now = web.now()
    with web.reading() as session:
        live = user_sessions.find(session, token, now=now)
    if live is None:  # ended or expired: keep only the form token
        cookie.replace({"c": csrf.token(cookie)})
        return None
    if user_sessions.needs_touch(live.row, now=now):
        with web.session() as session:
            user_sessions.touch(session, live.row.id, now=now)
    return live


def signed_in(request: Request) -> Account | None:
    """The account of the session cookie, if its server-side session is live, with the office
    it serves; ChooseSite while the session has to choose one."""
    if hasattr(request.state, "account"):
        known: Account | None = request.state.account
        return known
    live = _live(request)
    account = None
    if live is not None:
        web = web_of(request)
        with web.reading() as session:
            office = terminal.serving(
                session,
                web.settings,
                server=web.site,
                chosen=live.row.site_id,
                asked=_asked(request),
            )
        account = _account(live.user, office)
    request.state.account = account
    return account


def permit(request: Request, account: Account, action: str, *, organisation: bool = False) -> None:
    """Go on if `account` may perform `action` at its terminal's site (or, `organisation`, for
    the whole organisation); else audit the refusal, naming the site, and raise NotPermitted."""
    web = web_of(request)
    requester = permissions.Requester(
        actor=account.actor, label=f"account {account.name!r}", roles=account.roles
    )
    permissions.check(
        action,
        requester,
        where=route_of(request),
        audit_refusal=lambda **entry: audit_once(web, now=web.now(), **entry),
        site=None if organisation else account.site.code,
    )


def permitted(action: str, *, organisation: bool = False) -> Callable[[Request], Account]:
    """A dependency for pages: the signed-in account, which must be allowed `action` at the
    terminal's site (or, `organisation`, for the whole organisation)."""
    permissions.declared(action)

    def dependency(request: Request) -> Account:
        account = signed_in(request)
        if account is None:
            raise LoginRequired()
        permit(request, account, action, organisation=organisation)
        return account

    return _declaring(dependency, action, organisation=organisation)


def public(action: str) -> Any:
    """A route dependency that only declares an action anyone may perform (login, logout...)."""
    if not permissions.declared(action).public:
        raise ValueError(f"{action} needs a role: use permitted() or api_permitted()")

    def dependency() -> None:
        return None

    return Depends(_declaring(dependency, action))


def _declaring(
    dependency: Callable[..., Any], action: str, *, organisation: bool = False
) -> Callable[..., Any]:
    dependency.action = action  # type: ignore[attr-defined]  # read by `actions.action_of`
    dependency.organisation = organisation  # type: ignore[attr-defined]  # and by the navigation
    return dependency


async def csrf_form(request: Request) -> FormData:
    """A dependency: the posted form, refused (403) unless it carries the session's token."""
    form = await request.form()
    if not csrf.valid(sessions.of(request), form.get(csrf.FIELD)):
        raise Refused(
            "this form has expired or did not come from this site; reload the page and try again"
        )
    inputs.check_form(form)
    return form


def require_json(request: Request) -> None:
    """Refuse (415) a body that is not declared JSON.

    A page on another site can make a browser send a form or text, with whatever credentials the
    browser holds, but not `application/json` without asking this server first (CORS), which it
    never allows.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Refused("send a JSON body (Content-Type: application/json)", status=415)


def api_account(
    request: Request, credentials: HTTPBasicCredentials | None = Depends(_BASIC)
) -> Account:
    """A dependency: the API caller, by HTTP Basic credentials or by session cookie + token."""
    if credentials is not None:
        if request.method not in SAFE_METHODS:
            require_json(request)  # Basic has no token: the JSON type is what a page cannot forge
        account = _basic(request, credentials)
    else:
        by_cookie = signed_in(request)
        if by_cookie is None:
            raise LoginRequired("log in: HTTP Basic credentials of a local account, or a session")
        account = by_cookie
        token = request.headers.get(csrf.HEADER)
        if request.method not in SAFE_METHODS and not csrf.valid(sessions.of(request), token):
            raise Refused(f"a request with the session cookie needs the {csrf.HEADER} header")
    request.state.account = account
    request.state.by_cookie = credentials is None
    return account


def api_permitted(action: str, *, organisation: bool = False) -> Callable[..., Account]:
    """A dependency for the API: the caller, who must be allowed `action` at the site its call
    serves (or, `organisation`, for the whole organisation)."""
    permissions.declared(action)

    def dependency(request: Request, account: Account = Depends(api_account)) -> Account:
        permit(request, account, action, organisation=organisation)
        return account

    return _declaring(dependency, action, organisation=organisation)


def _basic(request: Request, credentials: HTTPBasicCredentials) -> Account:
    user, upgraded = check_login(request, credentials.username, credentials.password)
    web = web_of(request)
    if upgraded is not None:
        with web.session() as session:
            users.store_upgraded_hash(session, name=user.name, old=user.password_hash, new=upgraded)
    with web.reading() as session:  # no session: the server's site, the header, or the only one
        office = terminal.serving(
            session, web.settings, server=web.site, chosen=None, asked=_asked(request)
        )
    return _account(user, office)


def _local_path(value: str | None) -> str | None:
    """`value` if it is a path on this site (no scheme, no host, no backslash tricks)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


@router.get("/", dependencies=[public("web.home")])
def root(request: Request) -> RedirectResponse:
    """Each account lands on its first page; nobody signed in, on the login page."""
    account = signed_in(request)
    return RedirectResponse(actions.home(request, account) if account else "/login", 303)


@router.get("/login", dependencies=[public("web.login")])
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form (or straight on, when already signed in)."""
    account = signed_in(request)
    if account is not None:
        return RedirectResponse(_local_path(next) or actions.home(request, account), 303)
    return page(
        request,
        "login.html",
        title="Log in",
        next=_local_path(next) or "",
        name="",
        office=_server_office(request),
    )


def _server_office(request: Request) -> Office | None:
    """The office of a server bound to one (`[web] site`), named on its login page."""
    web = web_of(request)
    if web.site is None:
        return None
    with web.reading() as session:
        server = terminal.bound(session, web.site)
    return None if server is None else terminal.office(server, web.settings)


@router.post("/login", dependencies=[public("web.login")])
def login(request: Request, form: FormData = Depends(csrf_form)) -> Response:
    """Check the name and password; on success start a fresh session."""
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = _local_path(str(form.get("next", "")))
    try:
        user, upgraded = check_login(request, name, password)
    except (LoginRequired, Refused) as err:
        status = err.status if isinstance(err, Refused) else 401
        response = page(
            request,
            "login.html",
            status=status,
            title="Log in",
            next=target or "",
            name=name if len(name) <= 64 else "",
            error=str(err),
        )
        if isinstance(err, Refused) and err.retry_after:
            response.headers["Retry-After"] = str(err.retry_after)
        return response
    try:
        with web_of(request).reading() as session:
            site_id = login_site(session, request, user)
    except Refused as err:
        return page(
            request,
            "login.html",
            status=err.status,
            title="Log in",
            next=target or "",
            name=name,
            error=str(err),
        )
    account = start_session(request, user, upgraded, site_id=site_id)
    if account is None:  # several offices: this browser chooses one first
        return RedirectResponse(_choice_path(target), status_code=303)
    return RedirectResponse(target or actions.home(request, account), status_code=303)


def _choice_path(target: str | None) -> str:
    return "/login/site" + (f"?next={quote(target)}" if target else "")


def login_site(session: Session, request: Request, user: User) -> int | None:
    """The site a new session serves: the server's, else the one site the account has a role
    at; None when it has several to choose from (the browser chooses next). Refused (403)
    for an account with a role at no site there is."""
    server = terminal.bound(session, web_of(request).site)
    if server is not None:
        return row_id(server)
    offered = terminal.offered(session, users.roles_of(user))
    if not offered:
        raise Refused(f"account {user.name!r} has a role at no site of this installation")
    return row_id(offered[0]) if len(offered) == 1 else None


def check_login(request: Request, name: str, password: str) -> tuple[User, str | None]:
    """The user with this name and password, and its hash if it needs new parameters.

    LoginRequired (401) for a wrong name or password or a name locked at this address, the same
    for names with and without an account; Refused (429) while the address made too many wrong
    attempts; Refused (503) while too many passwords are being checked at once.
    """
    web = web_of(request)
    now = web.now()
    address = client_address(request)
    verdict = web.throttle.check(address, name, now)
    if verdict is not None:
        raise _held_back(request, verdict)
    with web.reading() as session:
        user = users.find(session, name)

    def check() -> tuple[bool, str | None]:
        right = users.verify(user, password)
        return right, users.upgraded_hash(user, password) if right and user else None

    try:
        right, upgraded = web.check_password(check)
    except Busy as err:
        raise Refused(
            "the server is checking many logins; try again in a moment", 503, retry_after=2
        ) from err
    if not right or user is None:
        locked_until = web.throttle.failed(address, name, now)
        if locked_until is None:
            raise LoginRequired(WRONG)
        if user is not None:  # a name without an account is not written to the trail
            audit_once(
                web,
                now=now,
                actor="web",  # whoever typed the passwords; not necessarily the account's owner
                action="user.locked",
                user=user.name,
                failed_logins=MAX_FAILURES,
                minutes=int(LOCKOUT.total_seconds() // 60),
            )
        raise _held_back(request, Verdict("locked", locked_until))
    web.throttle.succeeded(address, name)
    return user, upgraded


def _held_back(request: Request, verdict: Verdict) -> Exception:
    web = web_of(request)
    here = _server_office(request)  # nobody signed in yet: the server's office, else the default
    until = site_text(verdict.until, here.zone if here else web.settings.site_zone)
    if verdict.reason == "address":
        wait = max(1, int((verdict.until - web.now()).total_seconds()) + 1)
        return Refused(
            f"too many wrong passwords from this address; try again after {until}",
            status=429,
            retry_after=wait,
        )
    return LoginRequired(
        f"{MAX_FAILURES} wrong passwords in a row for this name from this address; "
        f"it can be tried again from here after {until}"
    )


def start_session(
    request: Request, user: User, upgraded: str | None = None, *, site_id: int | None
) -> Account | None:
    """Sign `user` in at `site_id`: a new server-side session, and a cookie that starts afresh.

    The account signed in; None while the session has yet to choose its office (`site_id`
    None with several sites: `/login/site`).
    """
    web = web_of(request)
    cookie = sessions.of(request)
    previous = cookie.get("s")
    with web.session() as session:
        if upgraded is not None:
            users.store_upgraded_hash(session, name=user.name, old=user.password_hash, new=upgraded)
        if isinstance(previous, str) and previous:
            user_sessions.end(session, previous)
        token = user_sessions.start(
            session,
            account=user.name,
            address=client_address(request),
            now=web.now(),
            site_id=site_id,
        )
        try:
            office = terminal.serving(
                session, web.settings, server=web.site, chosen=site_id, asked=_asked(request)
            )
        except terminal.ChooseSite:
            office = None
    # Nothing of the cookie before login is kept, so a token planted in it is worth nothing.
    cookie.replace({"s": token})
    csrf.token(cookie)
    account = None if office is None else _account(user, office)
    request.state.account = account
    return account


@router.get("/login/site", dependencies=[public("web.login")])
def site_page(request: Request, next: str | None = None) -> Response:
    """After the password: which office this browser serves, among the account's."""
    web = web_of(request)
    target = _local_path(next) or ""
    live = _live(request)
    if live is None:
        return RedirectResponse("/login" + (f"?next={quote(target)}" if target else ""), 303)
    if web.site is not None:
        return RedirectResponse(target or "/", 303)
    return _site_form(request, live, target)


def _site_form(
    request: Request,
    live: user_sessions.Live,
    target: str,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    web = web_of(request)
    with web.reading() as session:
        offered = terminal.offered(session, users.roles_of(live.user))
        current = None if live.row.site_id is None else session.get(Site, live.row.site_id)
    last = terminal.remembered(web.signer, request.cookies.get(terminal.REMEMBERED))
    chosen = current.code if current is not None else last
    return page(
        request,
        "login_site.html",
        status=status,
        title="Choose the office",
        offered=offered,
        chosen=chosen,
        next=target,
        user=live.user.name,
        error=error,
    )


@router.post("/login/site", dependencies=[public("web.login")])
def choose_site(request: Request, form: FormData = Depends(csrf_form)) -> Response:
    """Serve the chosen office for the rest of this session; remember it on this browser."""
    web = web_of(request)
    target = _local_path(str(form.get("next", ""))) or ""
    live = _live(request)
    if live is None:
        return RedirectResponse("/login" + (f"?next={quote(target)}" if target else ""), 303)
    if web.site is not None:
        return RedirectResponse(target or "/", 303)
    code = str(form.get("site", "")).strip()
    roles = users.roles_of(live.user)
    with web.session() as session:
        picked = next((s for s in terminal.offered(session, roles) if s.code == code), None)
        if picked is not None:
            user_sessions.choose(session, live.row.id, site_id=row_id(picked))
            office = terminal.office(picked, web.settings)
    if picked is None:
        return _site_form(
            request, live, target, status=400, error="choose one of the offices listed"
        )
    account = _account(live.user, office)
    request.state.account = account
    response = RedirectResponse(target or actions.home(request, account), status_code=303)
    response.set_cookie(
        terminal.REMEMBERED,
        terminal.remember(web.signer, picked.code),
        max_age=int(terminal.REMEMBERED_AGE.total_seconds()),
        path="/login",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def end_session(request: Request) -> None:
    """End this request's session on the server, and clear the cookie."""
    cookie = sessions.of(request)
    token = cookie.get("s")
    if isinstance(token, str) and token:
        with web_of(request).session() as session:
            user_sessions.end(session, token)
    cookie.replace({})


@router.post("/logout", dependencies=[public("web.logout")])
def logout(request: Request, form: FormData = Depends(csrf_form)) -> RedirectResponse:
    """End the session, here and on the server: the cookie is worth nothing after this."""
    end_session(request)
    return RedirectResponse("/login", status_code=303)
