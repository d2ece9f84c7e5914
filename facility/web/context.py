"""What every request handler shares: the settings, the clock, the database and the templates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import URLSafeTimedSerializer
from jinja2 import Environment
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request

from facility import db
from facility.render import local_time
from facility.settings import Settings


@dataclass(frozen=True)
class Web:
    """The app's state, built once by `create_app` from what the edge passed in."""

    settings: Settings
    engine: Engine
    clock: Callable[[], datetime]
    templates: Environment
    signer: URLSafeTimedSerializer

    def now(self) -> datetime:
        """The current instant from the injected clock, aware UTC."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the web clock must return an aware datetime")
        return now.astimezone(UTC)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with db.session_scope(self.engine) as session:
            yield session

    def local(self, value: datetime | None) -> str:
        """A stored instant as site wall time, `YYYY-MM-DD HH:MM`."""
        return local_time(value, self.settings.site_zone)

    def clock_time(self, value: datetime | None) -> str:
        """A stored instant as site wall time of day, `HH:MM`."""
        return "" if value is None else value.astimezone(self.settings.site_zone).strftime("%H:%M")


def web_of(request: Request) -> Web:
    """The Web state of the app serving `request`."""
    return request.app.state.web
