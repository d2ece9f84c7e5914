"""What every command shares: the settings, the acting user, the clock, the database, the check,
and the site.

Built once per invocation by the top-level callback and handed to commands as `ctx.obj`. Only this
edge reads the wall clock; everything below takes `now` as an argument.

The site (`facility.sites`): a command that works at one site calls `context.site()` (the global
`--site`, else the `site` setting, else the only site; exit 2 listing the sites when it cannot
tell) and passes `site.id` and `context.zone()` down. An organisation-wide command calls
`context.narrowed()`: the site `--site` names, or None for every site. Times typed without an
offset are read in the site's zone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, get_type_hints, overload

import typer
from sqlalchemy import Engine
from sqlmodel import Session

from facility import sites
from facility.accounts import permissions
from facility.accounts.access import Identity, roles_of
from facility.errors import InputError, StoreError
from facility.retention import policies
from facility.settings import Settings
from facility.store import db
from facility.store.models import Site
from facility.timeutil import typed_instant, typed_since, zone
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
    site_code: str | None = None  # the global --site option
    check_drift: bool = True  # `policy sync` turns the warning off: it is the answer to it
    _engine: Engine | None = field(default=None, repr=False)
    _site: Site | None = field(default=None, repr=False)
    _drift_told: bool = field(default=False, repr=False)

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
        return _plausible(typed_instant(text, self.zone(), now=self.now(), what=what), text, what)

    def since(self, text: str | None, *, what: str = "--since") -> datetime | None:
        """The start of a period the user typed: a time, or a duration back from now (`7d`)."""
        if text is None:
            return None
        return _plausible(typed_since(text, self.zone(), now=self.now(), what=what), text, what)

    def site(self) -> Site:
        """The site this command works at: --site, else the `site` setting, else the only one.

        InputError (exit 2) listing the sites when there are several and none was chosen, or
        the code is unknown.
        """
        if self._site is None:
            # Not `engine()`: a refusal that needed the site must stay the one line said.
            with db.read_scope(self._opened()) as session:
                self._site = sites.resolve(
                    session, explicit=self.site_code, configured=self.settings.site
                )
        return self._site

    def narrowed(self) -> Site | None:
        """For an organisation-wide command: the site --site names, or None (every site)."""
        return None if self.site_code is None else self.site()

    def zone_name(self) -> str:
        """The time zone people read and type times in: the site's, when there is one to tell."""
        try:
            return sites.zone_name(self.site(), self.settings)
        except sites.NotChosen:  # several sites and none chosen: the configuration's
            return self.settings.timezone

    def zone(self) -> tzinfo:
        """`zone_name` as a zone object."""
        return zone(self.zone_name())

    def engine(self) -> Engine:
        """The database engine, checked to be at the schema head (warning of policy drift once)."""
        engine = self._opened()
        if self.check_drift and not self._drift_told:
            self._drift_told = True
            try:
                with db.read_scope(engine) as session:
                    self.warn_policy_drift(session)
            except StoreError:
                pass  # a busy database: the command's own transaction says so, or waits
        return engine

    def _opened(self) -> Engine:
        if self._engine is None:
            engine = db.make_engine(self.settings.url)
            db.ensure_ready(engine)
            self._engine = engine
        return self._engine

    def warn_policy_drift(self, session: Session) -> None:
        """One line on stderr when the configured retention differs from the policy in force."""
        configured = self.settings.site
        site = None if configured is None else sites.find(session, configured)
        changes = policies.drift(session, self.settings.retention_configured, site)
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

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One transaction that only reads: on SQLite it never waits for a writer."""
        with db.read_scope(self.engine()) as session:
            yield session

    def permit(self, action: str, *, command: str, organisation: bool = False) -> None:
        """Go on only if the user may perform `action` where this command performs it; else audit
        the refusal and stop (exit 3).

        Where: at the command's site (a SITE action, unless `organisation`), for the whole
        organisation or the site --site names (ORGANISATION), over every site the user may see
        or the one --site names (VISIBLE), for the whole organisation whatever --site names
        (WHOLE: the registers that belong to no site). A role held everywhere needs no site
        resolved.
        """
        declared = permissions.declared(action)
        requester = self.requester()
        if declared.allows(requester.roles):
            return
        site: str | None
        if organisation or declared.at == permissions.WHOLE:  # for every site, whatever --site
            site = None
        elif declared.at == permissions.SITE:
            site = self.site().code
        else:
            site = None if self.site_code is None else self.site().code
        anywhere = declared.at == permissions.VISIBLE and site is None
        self.permit_at(action, command=command, site=site, anywhere=anywhere)

    def permit_at(
        self, action: str, *, command: str, site: str | None, anywhere: bool = False
    ) -> None:
        """`permit` at a site the command found itself (a hold's), or the organisation (None)."""

        def audit_refusal(**entry: Any) -> None:
            # The refusal is the one line said: no drift warning from opening the database here.
            self.check_drift = False
            with self.session() as session:
                audit.append(session, now=self.now(), **entry)

        permissions.check(
            action,
            self.requester(),
            where=command,
            audit_refusal=audit_refusal,
            site=site,
            anywhere=anywhere,
        )

    def requester(self) -> permissions.Requester:
        """The OS user as the permission check sees them."""
        return permissions.Requester(
            actor=self.actor,
            label=f"user {self.actor!r}",
            roles=roles_of(self.identity, self.settings.roles),
            remedy=" (see [roles] in the configuration)",
        )

    def visible_sites(self, action: str) -> frozenset[int] | None:
        """The ids of the sites whose records `action` shows this user (None: every site);
        only the one --site names, when given."""
        allowed = permissions.declared(action).visible(self.requester().roles)
        chosen = self.narrowed()
        if allowed is None and chosen is None:
            return None
        with self.reading() as session:
            every = sites.listing(session)
        return frozenset(
            s.id
            for s in every
            if s.id is not None
            and (allowed is None or s.code in allowed)
            and (chosen is None or s.id == chosen.id)
        )


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
            # `hold place --organisation` is performed for the organisation, not at a site.
            organisation = bool(kwargs.get("organisation", False))
            app_context(ctx).permit(action, command=where, organisation=organisation)
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
