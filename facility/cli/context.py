"""What every command shares: the settings, the acting user, the clock and the database.

Built once per invocation by the top-level callback and handed to commands as `ctx.obj`. Only this
edge reads the wall clock; everything below takes `now` as an argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from facility import audit, audit_keys, db
from facility.access import Identity, roles_of
from facility.errors import NotPermitted
from facility.settings import Settings
from facility.timeutil import typed_instant, typed_since


class TableJson(StrEnum):
    """Output formats of commands that show one result."""

    table = "table"
    json = "json"


class TableJsonCsv(StrEnum):
    """Output formats of list commands."""

    table = "table"
    json = "json"
    csv = "csv"


class Format(StrEnum):
    """Output formats of list commands."""

    table = "table"
    json = "json"
    csv = "csv"
    html = "html"


@dataclass
class AppContext:
    """Per-invocation state: settings built at the edge, the OS user, a lazily opened engine."""

    settings: Settings
    identity: Identity
    _engine: Engine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Every audit entry is signed with the key in the home (and verified against its heads).
        audit_keys.use_home(self.settings.home)

    @property
    def actor(self) -> str:
        """The name written into audit entries."""
        return self.identity.name

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        return datetime.now(UTC)

    def instant(self, text: str | None, *, what: str = "--at") -> datetime | None:
        """A user-typed time as aware UTC (site time without an offset; `09:00` is today), or None."""
        if text is None:
            return None
        return typed_instant(text, self.settings.site_zone, now=self.now(), what=what)

    def since(self, text: str | None, *, what: str = "--since") -> datetime | None:
        """The start of a period the user typed: a time, or a duration back from now (`7d`)."""
        if text is None:
            return None
        return typed_since(text, self.settings.site_zone, now=self.now(), what=what)

    def engine(self) -> Engine:
        """The database engine, checked to be at the schema head."""
        if self._engine is None:
            engine = db.make_engine(self.settings.url)
            db.ensure_ready(engine)
            self._engine = engine
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction on the checked database."""
        with db.session_scope(self.engine()) as session:
            yield session

    def require(self, *roles: str, command: str) -> None:
        """Go on only if the user holds one of `roles`; otherwise audit the refusal and stop (exit 3)."""
        held = roles_of(self.identity, self.settings.roles)
        if held.intersection(roles):
            return
        with self.session() as session:
            audit.append(
                session,
                now=self.now(),
                actor=self.actor,
                action="refused",
                command=command,
                needs=list(roles),
            )
        wanted = " or ".join(roles)
        raise NotPermitted(
            f"{command}: user {self.actor!r} needs role {wanted} (see [roles] in the configuration)"
        )


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the top-level callback stored."""
    return ctx.ensure_object(AppContext)
