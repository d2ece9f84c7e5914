"""Which action each route performs, and the navigation that follows from it.

A route names its action through its dependency (`auth.permitted`, `api_permitted`, `public`);
the two things the app serves without a route of ours, the static files and the OpenAPI
document, are named in UNROUTED. The navigation lists pages by label and path only: an account
sees an entry when it may perform the action of the page's GET route.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from facility.accounts import permissions

if TYPE_CHECKING:
    from facility.web.auth import Account

try:  # FastAPI 0.137.2 and later keep included routers as a tree, flattened by this function
    from fastapi.routing import iter_route_contexts
except ImportError:  # earlier ones copy every included route into app.routes
    # mypy sees FastAPI's own signature, which this stand-in need not repeat.
    def iter_route_contexts(routes: Iterable[Any]) -> Iterator[Any]:  # type: ignore[misc]
        return iter(routes)


UNROUTED = {"/static": "web.static", "/api/openapi.json": "web.api-description"}
# The pages in the order the navigation shows them.
NAVIGATION = (
    ("Reception", "/reception"),
    ("Expected", "/expected"),
    ("On site", "/onsite"),
    ("Roll call", "/muster"),
    ("Holds", "/holds"),
    ("Report", "/report"),
    ("Visits", "/visits"),  # last: the privacy officer lands on the report
)


def routes(app: Any) -> list[Any]:
    """Every route `app` serves, with its `path` (and `methods`, but for mounts)."""
    return list(iter_route_contexts(app.routes))


def action_of(route: Any) -> str | None:
    """The action `route` declares, or None when it declares none (a bug the tests catch)."""
    path = getattr(route, "path", None)
    if path in UNROUTED:
        return UNROUTED[path]
    call = _declaring(route)
    found: str | None = getattr(call, "action", None)
    return found


def _declaring(route: Any) -> Any:
    """The dependency of `route` that declares its action, if any."""
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        if getattr(dependant.call, "action", None) is not None:
            return dependant.call
        pending.extend(dependant.dependencies)
    return None


def _page_actions(request: Request) -> dict[str, tuple[permissions.Action, bool]]:
    """Each GET path's action, and whether it is performed for the whole organisation."""
    return {
        route.path: (
            permissions.declared(action_of(route) or ""),
            bool(getattr(_declaring(route), "organisation", False)),
        )
        for route in routes(request.app)
        if "GET" in (getattr(route, "methods", None) or ())
    }


def pages(request: Request, account: Account) -> list[tuple[str, str]]:
    """(label, path) of the pages `account` may open at its terminal's site (or for the whole
    organisation, for a page that shows all of it)."""
    actions = _page_actions(request)
    return [
        (label, path)
        for label, path in NAVIGATION
        if actions[path][0].allows(account.roles, None if actions[path][1] else account.site.code)
    ]


def home(request: Request, account: Account) -> str:
    """The first page `account` may open here; else the first it may open at another site
    (which refuses it, naming this one); the login page when there is none."""
    found = pages(request, account)
    if found:
        return found[0][1]
    actions = _page_actions(request)
    elsewhere = [path for _, path in NAVIGATION if actions[path][0].visible(account.roles)]
    return elsewhere[0] if elsewhere else "/login"
