"""What every command shares: the settings, the acting user, the clock, the database, the check.

Built once per invocation by the top-level callback and handed to commands as `ctx.obj`. Only this
edge reads the wall clock; everything below takes `now` as an argument.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, get_type_hints, overload

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from facility.accounts import permissions
from facility.accounts.access import Identity, roles_of
from facility.errors import InputError, StoreError
from facility.retention import policies
from facility.settings import Settings
from facility.store import db
from facility.timeutil import typed_instant, typed_since
from facility.trail import audit, keys

# The times a person may type: anything outside is a typo (year 0001, 9999-12-31).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
F = TypeVar("F", bound=Callable[..., Any])


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
    config: Path | None = None  # the configuration file in force, if one was found
    check_drift: bool = True  # `policy sync` turns the warning off: it is the answer to it
    _engine: Engine | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Every audit entry is signed with the key in the home (and verified against its heads).
        keys.use_home(self.settings.home)

    @property
    def actor(self) -> str:
        """The name written into audit entries."""
        return self.identity.name

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        return datetime.now(UTC)

    @overload
    def instant(self, text: str, *, what: str = "--at") -> datetime: ...
    @overload
    def instant(self, text: str | None, *, what: str = "--at") -> datetime | None: ...
    def instant(self, text: str | None, *, what: str = "--at") -> datetime | None:
        """A user-typed time as aware UTC (site time without an offset; `09:00` is today), or None.

        Refused (exit 2, naming `what`) outside EARLIEST..LATEST: such a time is a typo, and
        the arithmetic done on it later (zones, windows, grace periods) must stay in range.
        """
        if text is None:
            return None
        return _plausible(
            typed_instant(text, self.settings.site_zone, now=self.now(), what=what), text, what
        )

    def since(self, text: str | None, *, what: str = "--since") -> datetime | None:
        """The start of a period the user typed: a time, or a duration back from now (`7d`)."""
        if text is None:
            return None
        return _plausible(
            typed_since(text, self.settings.site_zone, now=self.now(), what=what), text, what
        )

    def engine(self) -> Engine:
        """The database engine, checked to be at the schema head."""
        if self._engine is None:
            engine = db.make_engine(self.settings.url)
            db.ensure_ready(engine)
            self._engine = engine
            if self.check_drift:
                try:
                    with db.session_scope(engine) as session:
                        self.warn_policy_drift(session)
                except StoreError:
                    pass  # a busy database: the command's own transaction says so, or waits

        return self._engine

    def warn_policy_drift(self, session: Session) -> None:
        """One line on stderr when the configured retention differs from the policy in force."""
        changes = policies.drift(session, self.settings.retention_configured)
        if changes:
            typer.echo(
                f"facility: warning: {policies.describe_drift(changes)}; the database's value is "
                "in force: `facility policy sync` applies the configuration",
                err=True,
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction on the checked database."""
        with db.session_scope(self.engine()) as session:
            yield session

    def permit(self, action: str, *, command: str) -> None:
        """Go on only if the user may perform `action`; else audit the refusal and stop (exit 3)."""

        def audit_refusal(**entry: Any) -> None:
            # The refusal is the one line said: no drift warning from opening the database here.
            self.check_drift = False
            with self.session() as session:
                audit.append(session, now=self.now(), **entry)

        requester = permissions.Requester(
            actor=self.actor,
            label=f"user {self.actor!r}",
            roles=roles_of(self.identity, self.settings.roles),
            remedy=" (see [roles] in the configuration)",
        )
        permissions.check(action, requester, where=command, audit_refusal=audit_refusal)


def permitted(action: str) -> Callable[[F], F]:
    """Declare the action a command performs: it runs only for a user who may (exit 3, audited).

    The check comes before the command's body; the audit names the command as typed
    (`hold place`), without its arguments.
    """
    permissions.declared(action)

    def declare(command: F) -> F:
        # Typer passes the context to the parameter annotated typer.Context, by name.
        name = next(n for n, t in get_type_hints(command).items() if t is typer.Context)

        @functools.wraps(command)
        def checked(**kwargs: Any) -> Any:
            ctx = kwargs[name]
            where = " ".join(ctx.command_path.split()[1:])  # without the program's name
            app_context(ctx).permit(action, command=where)
            return command(**kwargs)

        checked.action = action  # type: ignore[attr-defined]  # read by the test that walks the app
        return checked  # type: ignore[return-value]  # wraps keeps the signature Typer reads

    return declare


def app_context(ctx: typer.Context) -> AppContext:
    """The AppContext the top-level callback stored."""
    return ctx.ensure_object(AppContext)


def _plausible(when: datetime, text: str, what: str) -> datetime:
    if not EARLIEST <= when < LATEST:
        raise InputError(
            f"{what}: {text!r} is not between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
        )
    return when
