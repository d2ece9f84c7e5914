"""Operator commands: `init`, `doctor` and `daemon`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from sqlalchemy import Engine

from facility import files
from facility.cli.context import app_context, permitted
from facility.errors import FacilityError, InputError
from facility.operations.doctor import run_checks
from facility.render import json_text, table
from facility.retention import policies
from facility.store import db
from facility.trail import audit, heads


def register(app: typer.Typer) -> None:
    """Add the operator commands to `app`."""
    app.command("init")(init)
    app.command("daemon")(daemon)
    app.command("doctor")(doctor)


@permitted("store.init")
def init(ctx: typer.Context) -> None:
    """Create or upgrade the database to the newest schema and seed the retention policies."""
    context = app_context(ctx)
    # Home holds the database, the snapshots and audit.key: private unless the group was let in.
    tightened = [files.private_directory(context.settings.home)]
    engine = db.make_engine(context.settings.url, create=True)
    database = db.sqlite_path(engine)
    tightened += db.tighten(database) if database else []
    for change in filter(None, tightened):
        typer.echo(f"made private: {change}")
    settings = context.settings
    before, after = db.upgrade(
        engine, site_timezone=settings.timezone, site_country=settings.country
    )
    if database and before is not None and before != after:
        problem = db.rewrite(engine)
        if problem:
            typer.echo(f"facility init: {problem}", err=True)
    # The key behind subject hashes and the chain's MACs lives beside the data, never in it.
    key_path = context.settings.home / audit.KEY_FILE
    if not key_path.exists():
        _refuse_a_second_key(engine, key_path)
    audit.load_or_create_key(key_path)
    now = context.now()
    with db.session_scope(engine) as session:
        sealed = audit.seal(session, now=now, actor=context.actor)
        seeded = policies.seed(session, context.settings.retention, now=now, actor=context.actor)
        if before != after:
            audit.append(
                session,
                now=now,
                actor=context.actor,
                action="schema.upgrade",
                before=before,
                after=after,
            )
        context.warn_policy_drift(session)
        newest = audit.newest(session)
    wrote = sealed is not None or seeded or before != after
    if newest is not None and (wrote or not heads.head_file().exists()):
        problem = heads.anchor(engine, newest, kind="init", now=now)
        if problem:
            typer.echo(f"facility: warning: {problem}", err=True)
    where = db.redact(context.settings.url)
    if sealed is not None:
        typer.echo(
            f"{where}: the {sealed.seq - 1} audit entries chained with plain SHA-256 are sealed "
            f"by entry {sealed.seq}, signed with the audit key"
        )
    if not wrote:
        typer.echo(f"{where}: already at schema {after}, policies in place; nothing changed")
        return
    typer.echo(
        f"{where}: schema {before or 'none'} -> {after}; policies seeded: {', '.join(seeded) or 'none'}"
    )


def _refuse_a_second_key(engine: Engine, key_path: Path) -> None:
    """A new key for a trail signed with another would break the chain at the next entry."""
    with db.session_scope(engine) as session:
        signed = audit.newest_signed(session)
    if signed is not None:
        raise FacilityError(
            f"audit key {key_path} is missing, but this database's audit trail is signed "
            f"(entry {signed}): copy audit.key from the host that ran `facility init` first "
            "(every host needs the same one), or restore it from backup"
        )


@permitted("doctor.run")
def doctor(
    ctx: typer.Context,
    output_format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Check settings, database, broker, recordings, lease files, roles and the daemon's jobs."""
    context = app_context(ctx)
    checks = run_checks(context.settings, now=context.now(), config=context.config)
    if output_format == "json":
        typer.echo(json_text([vars(check) for check in checks]))
    elif output_format == "table":
        typer.echo(
            table(
                ["status", "check", "what to know"], [[c.status, c.name, c.message] for c in checks]
            )
        )
    else:
        raise InputError(f"--format: {output_format!r} is not table or json")
    if any(check.status == "FAIL" for check in checks):
        raise typer.Exit(1)


class LogFormat(StrEnum):
    """How the daemon writes its log lines."""

    text = "text"
    json = "json"


@permitted("daemon.run")
def daemon(
    ctx: typer.Context,
    log_format: LogFormat = typer.Option(
        LogFormat.text, "--log-format", help="text or json lines."
    ),
) -> None:
    """Run the background daemon: ingestion and the scheduled jobs, until SIGTERM or Ctrl-C."""
    from scheduler.daemon import run  # the core never imports the scheduler at module level

    context = app_context(ctx)
    context.engine()  # refuse to start on a missing or old schema
    raise typer.Exit(
        run(context.settings, log_format=log_format.value, site_code=context.site_code)
    )
