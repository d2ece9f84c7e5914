"""The session cookie: a signed dict (itsdangerous), written back only when it changed.

It holds the token of the server-side session (`facility.accounts.user_sessions`: the database decides
whether it is still valid), the CSRF token and one-shot flash messages; never a password.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from facility.accounts.user_sessions import LIFETIME

COOKIE = "facility_session"
_SALT = "facility.web.session"


class CookieSession:
    """The session of one request: a dict that knows whether it was changed."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = dict(data)
        self.changed = False

    def get(self, key: str, default: Any = None) -> Any:
        """The value under `key`, or `default`."""
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Store `value` under `key`."""
        if self._data.get(key) != value:
            self._data[key] = value
            self.changed = True

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove and return the value under `key`."""
        if key in self._data:
            self.changed = True
        return self._data.pop(key, default)

    def replace(self, data: dict[str, Any]) -> None:
        """Start over with `data` (login, logout): nothing of the old session is kept."""
        self._data = dict(data)
        self.changed = True

    def data(self) -> dict[str, Any]:
        """A copy of the content."""
        return dict(self._data)


def serializer(secret: bytes) -> URLSafeTimedSerializer:
    """The signer of session cookies under the site's web key."""
    return URLSafeTimedSerializer(secret, salt=_SALT)


def load(signer: URLSafeTimedSerializer, raw: str | None) -> dict[str, Any]:
    """The session in a cookie value; empty when missing, forged, or older than its lifetime."""
    if not raw:
        return {}
    try:
        data = signer.loads(raw, max_age=int(LIFETIME.total_seconds()))
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


_Next = Callable[[Request], Awaitable[Response]]  # the rest of the app, as a middleware sees it


def middleware(
    signer: URLSafeTimedSerializer, *, always_secure: bool
) -> Callable[[Request, _Next], Awaitable[Response]]:
    """An HTTP middleware that loads the session before a request and stores it after."""

    async def session_cookie(request: Request, call_next: _Next) -> Response:
        session = CookieSession(load(signer, request.cookies.get(COOKIE)))
        request.state.session = session
        response = await call_next(request)
        if session.changed:
            secure = always_secure or request.url.scheme == "https"
            content = session.data()
            if content:
                response.set_cookie(
                    COOKIE,
                    signer.dumps(content),
                    path="/",
                    httponly=True,
                    samesite="strict",
                    secure=secure,
                )
            else:
                response.delete_cookie(
                    COOKIE, path="/", httponly=True, samesite="strict", secure=secure
                )
        return response

    return session_cookie


def of(request: Request) -> CookieSession:
    """The session of `request`."""
    session: CookieSession = request.state.session
    return session
