"""CSRF tokens: one random token per session, put in every form and checked on every POST."""

from __future__ import annotations

import hmac
import secrets

from facility.web.sessions import CookieSession

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def token(session: CookieSession) -> str:
    """The session's token, made on first use."""
    value: str | None = session.get("c")
    if not value:
        value = secrets.token_urlsafe(32)
        session.set("c", value)
    return value


def valid(session: CookieSession, supplied: object) -> bool:
    """Whether `supplied` is this session's token (compared in constant time)."""
    expected = session.get("c")
    if not expected or not supplied or not isinstance(supplied, str):
        return False
    return hmac.compare_digest(expected.encode(), supplied.encode())
