"""Local accounts of the web interface: `user add | passwd | roles | remove | list`,
and their sessions: `user sessions [NAME]`, `user revoke NAME`.

A password is read from a hidden prompt when stdin is a terminal, else as the first line of stdin
(`printf '%s\\n' "$PW" | facility user add rita --role reception`); never from the command line,
where other users could read it in the process list.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from facility.accounts import user_sessions, users
from facility.accounts.permissions import ROLES
from facility.cli.context import app_context, permitted
from facility.errors import InputError
from facility.render import json_text, table
from facility.timefmt import site_text, utc_text

user_app = typer.Typer(no_args_is_help=True, help="Local accounts of the web interface.")

NAME = typer.Argument(..., help="The account name (letters, digits and ._-).")
ROLE = typer.Option(..., "--role", help=f"A role ({', '.join(ROLES)}); repeatable.")


def register(app: typer.Typer) -> None:
    """Add the account commands to `app`."""
    app.add_typer(user_app, name="user")


def read_password() -> str:
    """A new password from a hidden prompt (asked twice) or the first line of stdin."""
    if sys.stdin.isatty():
        typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return typed
    line = sys.stdin.readline()
    if not line:
        raise InputError("password: type it at the prompt or give it as one line on stdin")
    return line.rstrip("\r\n")


@user_app.command("add")
@permitted("user.add")
def add(ctx: typer.Context, name: str = NAME, role: list[str] = ROLE) -> None:
    """Create an account with its roles; the password is asked for."""
    context = app_context(ctx)
    users.clean_name(name)
    users.clean_roles(role)  # refuse bad input before asking for a password
    password = read_password()
    with context.session() as session:
        user = users.add(
            session,
            now=context.now(),
            actor=context.actor,
            name=name,
            password=password,
            roles=role,
        )
    typer.echo(f"account {user.name} added with role {user.roles.replace(',', ', ')}")


@user_app.command("passwd")
@permitted("user.passwd")
def passwd(ctx: typer.Context, name: str = NAME) -> None:
    """Set a new password; this ends the account's sessions."""
    context = app_context(ctx)
    with context.session() as session:
        if users.find(session, name) is None:
            raise InputError(f"NAME: there is no account {name.strip()!r}")
    password = read_password()
    with context.session() as session:
        user = users.set_password(
            session, now=context.now(), actor=context.actor, name=name, password=password
        )
    typer.echo(f"account {user.name}: password changed")


@user_app.command("roles")
@permitted("user.roles")
def roles(ctx: typer.Context, name: str = NAME, role: list[str] = ROLE) -> None:
    """Replace an account's roles; this ends the account's sessions."""
    context = app_context(ctx)
    with context.session() as session:
        user = users.set_roles(
            session, now=context.now(), actor=context.actor, name=name, roles=role
        )
    typer.echo(f"account {user.name}: role {user.roles.replace(',', ', ')}")


@user_app.command("remove")
@permitted("user.remove")
def remove(ctx: typer.Context, name: str = NAME) -> None:
    """Delete an account; its sessions stop working at once."""
    context = app_context(ctx)
    with context.session() as session:
        users.remove(session, now=context.now(), actor=context.actor, name=name)
    typer.echo(f"account {users.clean_name(name)} removed")


@user_app.command("list")
@permitted("user.list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Every account with its roles and how many live sessions it has."""
    context = app_context(ctx)
    now = context.now()
    with context.session() as session:
        found = users.listing(session)
        live = user_sessions.listing(session, now=now)
    counts = {u.name: sum(1 for s in live if s.account == u.name) for u in found}
    items: list[dict[str, Any]] = [
        {"name": u.name, "roles": [r for r in u.roles.split(",") if r], "sessions": counts[u.name]}
        for u in found
    ]
    if as_json:
        typer.echo(json_text(items))
    elif not items:
        typer.echo("no accounts; add one with `facility user add NAME --role ROLE`")
    else:
        rows = [[i["name"], ", ".join(i["roles"]), i["sessions"]] for i in items]
        typer.echo(table(["name", "roles", "sessions"], rows))


@user_app.command("sessions")
@permitted("user.sessions")
def sessions(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Only this account's sessions."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Live web sessions: account, client address, when they started, were last used, end."""
    context = app_context(ctx)
    now = context.now()
    with context.session() as session:
        account = None
        if name is not None:
            account = users.clean_name(name)
            if users.find(session, account) is None:
                raise InputError(f"NAME: there is no account {name.strip()!r}")
        found = user_sessions.listing(session, now=now, account=account)
    if as_json:
        items = [
            {
                "account": s.account,
                "address": s.address,
                "started_at": utc_text(s.started_at),
                "seen_at": utc_text(s.seen_at),
                "expires_at": utc_text(s.expires_at),
            }
            for s in found
        ]
        typer.echo(json_text(items))
        return
    if not found:
        typer.echo("no live sessions")
        return
    zone = context.zone()
    rows = [
        [
            s.account,
            s.address or "",
            site_text(s.started_at, zone),
            site_text(s.seen_at, zone),
            site_text(s.expires_at, zone),
        ]
        for s in found
    ]
    typer.echo(table(["account", "address", "started", "last used", "ends"], rows))


@user_app.command("revoke")
@permitted("user.revoke")
def revoke(ctx: typer.Context, name: str = NAME) -> None:
    """End every session of an account at once (it must log in again)."""
    context = app_context(ctx)
    with context.session() as session:
        ended = users.revoke(session, now=context.now(), actor=context.actor, name=name)
    typer.echo(
        f"account {users.clean_name(name)}: {ended} session{'' if ended == 1 else 's'} ended"
    )
