"""Operator commands: `init`, `doctor` and `daemon`."""

from __future__ import annotations

import typer

from facility import audit, db, policies
from facility.cli.context import app_context


def register(app: typer.Typer) -> None:
    """Add the operator commands to `app`."""
    app.command("init")(init)
    app.command("daemon")(daemon)


def init(ctx: typer.Context) -> None:
    """Create or upgrade the database to the newest schema and seed the retention policies."""
    context = app_context(ctx)
    engine = db.make_engine(context.settings.url, create=True)
    before, after = db.upgrade(engine)
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
    where = db.redact(context.settings.url)
    if before == after and not seeded:
        typer.echo(f"{where}: already at schema {after}, policies in place; nothing changed")
        return
    typer.echo(
        f"{where}: schema {before or 'none'} -> {after}; policies seeded: {', '.join(seeded) or 'none'}"
    )


def daemon(ctx: typer.Context) -> None:
    """Run the background daemon: ingestion and the scheduled jobs, until SIGTERM or Ctrl-C."""
    from scheduler.daemon import run  # the core never imports the scheduler at module level

    context = app_context(ctx)
    context.engine()  # refuse to start on a missing or old schema
    raise typer.Exit(run(context.settings))
