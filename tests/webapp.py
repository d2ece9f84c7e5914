"""The web app in-process for tests (FastAPI's TestClient): an injected clock, accounts, logins
through the form and through the API, and what the app stored. The real server over HTTP is in
webserver.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facility.accounts import users
from facility.settings import Settings
from facility.store import db
from facility.store.models import AuditEntry, BadgeLoan, Hold, HoldScope, Muster, MusterEntry, Visit
from facility.web import create_app

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse"
SECRET = b"0123456789abcdef0123456789abcdef"
STORED = (Visit, BadgeLoan, Muster, MusterEntry, Hold, HoldScope)


class Clock:
    """The injected clock: stands still unless moved."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_app(db_url: str, engine, clock: Clock, **options):
    """The app on a test database, with a fixed signing key."""
    return create_app(
        Settings(database_url=db_url), clock=clock, engine=engine, secret=SECRET, **options
    )


def add_user(engine, name: str, *roles: str, password: str = PASSWORD) -> None:
    with db.session_scope(engine) as session:
        users.add(session, now=T0, actor="tests", name=name, password=password, roles=roles)


def form_token(html: str) -> str:
    """The CSRF token a page put in its forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD):
    """Log in through the form, as a browser does; return the response to the POST."""
    token = form_token(client.get("/login").text)
    return client.post(
        "/login",
        data={"csrf_token": token, "name": name, "password": password},
        follow_redirects=False,
    )


def page_client(app, name: str) -> tuple[TestClient, str]:
    """A browser-like client logged in through the form, and the form token of its pages."""
    client = TestClient(app, base_url="https://testserver")
    assert login(client, name).status_code == 303
    return client, form_token(client.get("/").text)


def api_client(app, name: str, password: str = PASSWORD) -> TestClient:
    """A client logged in through POST /api/session, sending the token on every request."""
    client = TestClient(app, base_url="https://testserver")
    response = client.post("/api/session", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def stored(engine) -> dict[str, int]:
    """How many rows each table the API writes holds."""
    with db.session_scope(engine) as session:
        return {
            m.__tablename__: session.execute(select(func.count()).select_from(m)).scalar_one()
            for m in STORED
        }


def audit_actions(engine) -> list[tuple[str, str, dict]]:
    with db.session_scope(engine) as session:
        rows = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        return [(r.actor, r.action, json.loads(r.details)) for r in rows]
