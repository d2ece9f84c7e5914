"""Rendering pages: the Jinja2 environment (autoescape always on), flash messages, redirects."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from facility.web import actions, csrf, sessions
from facility.web.context import web_of

STATIC_PREFIX = "/static"


def environment() -> Environment:
    """The templates of `facility/templates/web`, every value escaped unless marked safe."""
    env = Environment(
        loader=PackageLoader("facility", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{STATIC_PREFIX}/{name}"
    return env


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from `templates/web`, with the account, navigation, form token and flashes."""
    web = web_of(request)
    session = sessions.of(request)
    account = getattr(request.state, "account", None)
    office = account.site if account else context.pop("office", None)
    html = web.templates.get_template(f"web/{template}").render(
        account=account,
        office=office,
        # Without a server's own office, a signed-in browser may change the one it serves.
        may_change_office=account is not None and web.site is None,
        pages=actions.pages(request, account) if account else [],
        here=request.url.path,
        csrf_field=csrf.FIELD,
        csrf_token=csrf.token(session),
        flashes=session.pop("m") or [],
        zone=office.zone_name if office else web.settings.timezone,
        error=context.pop("error", None),
        **context,
    )
    return HTMLResponse(html, status_code=status)


def flash(request: Request, text: str, kind: str = "ok") -> None:
    """A message shown once, on the next page this session sees."""
    session = sessions.of(request)
    messages = list(session.get("m") or [])
    messages.append([kind, text])
    session.set("m", messages[-5:])


def redirect(path: str) -> RedirectResponse:
    """See-other to `path` (after a POST, so a reload does not post again)."""
    return RedirectResponse(path, status_code=303)
