"""Operator commands: `init`, `doctor` and `daemon`."""

from __future__ import annotations

from enum import StrEnum

import typer

from facility import audit, db, policies
from facility.cli.context import app_context
from facility.doctor import run_checks
from facility.errors import InputError
from facility.render import json_text, table


def register(app: typer.Typer) -> None:
    """Add the operator commands to `app`."""
    app.command("init")(init)
    app.command("daemon")(daemon)
    app.command("doctor")(doctor)


def init(ctx: typer.Context) -> None:
    """Create or upgrade the database to the newest schema and seed the retention policies."""
    context = app_context(ctx)
    engine = db.make_engine(context.settings.url, create=True)
    before, after = db.upgrade(engine)
    # The key behind subject hashes in the audit trail lives beside the data, never in the database.
    audit.load_or_create_key(context.settings.home / audit.KEY_FILE)
    now = context.now()
    with db.session_scope(engine) as session:
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
    where = db.redact(context.settings.url)
    if before == after and not seeded:
        typer.echo(f"{where}: already at schema {after}, policies in place; nothing changed")
        return
    typer.echo(
        f"{where}: schema {before or 'none'} -> {after}; policies seeded: {', '.join(seeded) or 'none'}"
    )


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
    raise typer.Exit(run(context.settings, log_format=log_format.value))
