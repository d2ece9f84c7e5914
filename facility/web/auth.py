"""Who is asking: login and logout, the signed-in account, role checks, and refusals.

Pages and the API share `signed_in` and `permit`; they differ in how they ask to log in (a redirect
to the login page, or 401) and in how a POST proves it was meant (a form token, or the API's
header/Basic rules in `api_account`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from starlette.datastructures import FormData

from facility import audit, users
from facility.models import User
from facility.web import csrf, sessions
from facility.web.context import web_of
from facility.web.sessions import SESSION_LIFETIME
from facility.web.views import page

router = APIRouter(include_in_schema=False)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BASIC = HTTPBasic(auto_error=False, description="A local account (`facility user add`).")
# Pages, and the roles that open them, in the order the navigation shows them.
PAGES = (
    ("Reception", "/reception", ("reception",)),
    ("On site", "/onsite", ("reception", "security")),
    ("Roll call", "/muster", ("reception", "security")),
    ("Holds", "/holds", ("security",)),
    ("Report", "/report", ("privacy",)),
)


@dataclass(frozen=True)
class Account:
    """A signed-in local account."""

    name: str
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        """How the audit trail names this account."""
        return f"web:{self.name}"

    def may(self, *roles: str) -> bool:
        """Whether the account holds one of `roles`."""
        return bool(self.roles.intersection(roles))

    def pages(self) -> list[tuple[str, str]]:
        """(label, path) of the pages this account may open."""
        return [(label, path) for label, path, roles in PAGES if self.may(*roles)]


class LoginRequired(Exception):
    """Nobody is signed in (pages: go to the login page; API: 401)."""

    def __init__(self, message: str = "log in first") -> None:
        super().__init__(message)


class Refused(Exception):
    """The request is not allowed: missing role (audited), bad CSRF token, wrong content type."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def _account(user: User) -> Account:
    return Account(user.name, users.roles_of(user))


def signed_in(request: Request) -> Account | None:
    """The account of the session cookie, if it is still valid; a stale session is cleared."""
    if hasattr(request.state, "account"):
        return request.state.account
    session = sessions.of(request)
    account = None
    name, print_, since = session.get("u"), session.get("f"), session.get("t")
    if name and print_ and isinstance(since, int | float):
        web = web_of(request)
        now = web.now()
        started = datetime.fromtimestamp(since, UTC)
        if started <= now + timedelta(minutes=1) and now - started <= SESSION_LIFETIME:
            with web.session() as db:
                user = db.get(User, name)
            if user is not None and users.fingerprint(user) == print_:
                account = _account(user)
    if account is None and name:
        session.replace({"c": csrf.token(session)})
    request.state.account = account
    return account


def permit(request: Request, account: Account, roles: tuple[str, ...], what: str) -> None:
    """Go on if `account` holds one of `roles`; otherwise audit the refusal and raise Refused."""
    if account.may(*roles):
        return
    web = web_of(request)
    with web.session() as db:
        audit.append(
            db,
            now=web.now(),
            actor=account.actor,
            action="refused",
            command=what,
            needs=list(roles),
        )
    raise Refused(f"{what}: account {account.name!r} needs role {' or '.join(roles)}")


def require(*roles: str):
    """A dependency: the signed-in account, which must hold one of `roles` (pages)."""

    def dependency(request: Request) -> Account:
        account = signed_in(request)
        if account is None:
            raise LoginRequired()
        permit(request, account, roles, f"{request.method} {request.url.path}")
        return account

    return dependency


async def csrf_form(request: Request) -> FormData:
    """A dependency: the posted form, refused (403) unless it carries the session's token."""
    form = await request.form()
    if not csrf.valid(sessions.of(request), form.get(csrf.FIELD)):
        raise Refused(
            "this form has expired or did not come from this site; reload the page and try again"
        )
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
        account = signed_in(request)
        if account is None:
            raise LoginRequired("log in: HTTP Basic credentials of a local account, or a session")
        token = request.headers.get(csrf.HEADER)
        if request.method not in SAFE_METHODS and not csrf.valid(sessions.of(request), token):
            raise Refused(f"a request with the session cookie needs the {csrf.HEADER} header")
    request.state.account = account
    return account


def api_require(*roles: str):
    """A dependency: the API caller, who must hold one of `roles`."""

    def dependency(request: Request, account: Account = Depends(api_account)) -> Account:
        permit(request, account, roles, f"{request.method} {request.url.path}")
        return account

    return dependency


def _basic(request: Request, credentials: HTTPBasicCredentials) -> Account:
    return _account(check_login(request, credentials.username, credentials.password))


def _login_problem(request: Request, result: users.Login) -> str:
    if result.locked_until is None:
        return "wrong name or password"
    until = web_of(request).local(result.locked_until)
    return (
        f"this account is locked after {users.MAX_FAILED_LOGINS} failed logins until {until}; "
        "wait, or have an administrator run `facility user passwd`"
    )


def home_of(account: Account) -> str:
    """The first page an account may open."""
    pages = account.pages()
    return pages[0][1] if pages else "/login"


def _local_path(value: str | None) -> str | None:
    """`value` if it is a path on this site (no scheme, no host, no backslash tricks)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


@router.get("/")
def root(request: Request) -> RedirectResponse:
    """Each account lands on its first page; nobody signed in, on the login page."""
    account = signed_in(request)
    return RedirectResponse(home_of(account) if account else "/login", status_code=303)


@router.get("/login")
def login_page(request: Request, next: str | None = None):
    """The login form (or straight on, when already signed in)."""
    account = signed_in(request)
    if account is not None:
        return RedirectResponse(_local_path(next) or home_of(account), status_code=303)
    return page(request, "login.html", title="Log in", next=_local_path(next) or "", name="")


@router.post("/login")
def login(request: Request, form: FormData = Depends(csrf_form)):
    """Check the name and password; on success start a fresh session."""
    web = web_of(request)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = _local_path(str(form.get("next", "")))
    now = web.now()
    with web.session() as db:
        result = users.authenticate(db, now=now, name=name, password=password)
    if not result.ok:
        return page(
            request,
            "login.html",
            status=401,
            title="Log in",
            next=target or "",
            name=name,
            error=_login_problem(request, result),
        )
    account = start_session(request, result.user)
    return RedirectResponse(target or home_of(account), status_code=303)


def start_session(request: Request, user: User) -> Account:
    """Sign `user` in on this request's session, which starts afresh with a new token."""
    session = sessions.of(request)
    # Nothing of the session before login is kept, so a token planted in it is worth nothing.
    session.replace({"u": user.name, "f": users.fingerprint(user)})
    session.set("t", web_of(request).now().timestamp())
    csrf.token(session)
    account = _account(user)
    request.state.account = account
    return account


def check_login(request: Request, name: str, password: str) -> User:
    """The user with this name and password; LoginRequired saying why not (counts failures)."""
    web = web_of(request)
    with web.session() as db:
        result = users.authenticate(db, now=web.now(), name=name, password=password)
    if not result.ok:
        raise LoginRequired(_login_problem(request, result))
    return result.user


@router.post("/logout")
def logout(request: Request, form: FormData = Depends(csrf_form)) -> RedirectResponse:
    """End the session in this browser."""
    sessions.of(request).replace({})
    return RedirectResponse("/login", status_code=303)
