"""Roll call commands: `muster start | mark NAME STATUS | status | close`."""

from __future__ import annotations

from datetime import tzinfo
from enum import StrEnum

import typer

from facility.cli.context import AppContext, TableJson, app_context, permitted
from facility.names import printable
from facility.render import json_text, table
from facility.store.models import MusterEntry, row_id
from facility.timefmt import site_text
from facility.visitors import muster

muster_app = typer.Typer(
    no_args_is_help=True, help="Evacuation roll call: start from the on-site list, mark, close."
)


class Status(StrEnum):
    """What a person can be marked."""

    safe = "safe"
    missing = "missing"
    unknown = "unknown"


ORDER = {"missing": 0, "unknown": 1, "safe": 2, "left": 3}


def register(app: typer.Typer) -> None:
    """Add the roll call commands to `app`."""
    app.add_typer(muster_app, name="muster")


def _summary(call: muster.RollCall, context: AppContext) -> str:
    m, c, zone = call.muster, call.counts, context.zone()
    state = (
        f"open since {site_text(m.started_at, zone)} ({m.started_by})"
        if m.closed_at is None
        else f"{site_text(m.started_at, zone)} to {site_text(m.closed_at, zone)} ({m.closed_by})"
    )
    left = f", {c['left']} left" if c["left"] else ""
    return (
        f"roll call {m.id}, {state}: {c['safe']} safe, {c['missing']} missing, "
        f"{c['unknown']} not checked{left}, of {c['total']}"
    )


@muster_app.command("start")
@permitted("muster.start")
def start(ctx: typer.Context) -> None:
    """Start a roll call of everyone on site now."""
    context = app_context(ctx)
    with context.session() as session:
        call = muster.start(
            session,
            now=context.now(),
            actor=context.actor,
            site_zone=context.zone(),
            site_id=row_id(context.site()),
        )
    typer.echo(f"roll call {call.muster.id} started: {len(call.entries)} on site")


@muster_app.command("mark")
@permitted("muster.mark")
def mark(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The person's name as on the roll call."),
    status: Status = typer.Argument(..., help="safe, missing, or unknown to undo."),
    entry: int | None = typer.Option(
        None, "--entry", help="The entry's number, when two people share the name."
    ),
) -> None:
    """Mark one person of the open roll call safe or missing."""
    context = app_context(ctx)
    with context.session() as session:
        marked = muster.mark(
            session,
            now=context.now(),
            actor=context.actor,
            status=status.value,
            entry_id=entry,
            name=name,
            site_zone=context.zone(),
            site_id=row_id(context.site()),
        )
        call = muster.get(session, marked.muster_id)
    left = call.counts["unknown"] + call.counts["missing"]
    typer.echo(f"{printable(marked.name)}: {marked.status} ({left} not marked safe)")


@muster_app.command("status")
@permitted("muster.view")
def status(
    ctx: typer.Context,
    muster_id: int | None = typer.Option(
        None, "--id", help="Which roll call (default: the open one, else the last)."
    ),
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """Who is safe, missing and not yet accounted for."""
    context = app_context(ctx)
    site = context.site()
    with context.session() as session:
        call = (
            muster.get(session, muster_id, row_id(site))
            if muster_id
            else muster.latest(session, row_id(site))
        )
    if call is None:
        typer.echo("no roll call yet; start one with `facility muster start`")
        return
    if output_format is TableJson.json:
        typer.echo(json_text(call.as_json()))
        return
    zone = context.zone()
    entries = sorted(call.entries, key=lambda e: ORDER.get(e.status, 3))
    rows = [
        [
            e.id,
            e.name or "(name removed)",
            e.status,
            site_text(e.marked_at, zone),
            e.marked_by,
            _came_and_went(e, zone),
        ]
        for e in entries
    ]
    if rows:
        typer.echo(table(["entry", "name", "status", "marked", "by", "on site"], rows))
    typer.echo(_summary(call, context))


@muster_app.command("close")
@permitted("muster.close")
def close(ctx: typer.Context) -> None:
    """Close the open roll call; it is kept as the record of the drill or incident."""
    context = app_context(ctx)
    with context.session() as session:
        call = muster.close(
            session,
            now=context.now(),
            actor=context.actor,
            site_zone=context.zone(),
            site_id=row_id(context.site()),
        )
    typer.echo(_summary(call, context))


def _came_and_went(entry: MusterEntry, zone: tzinfo) -> str:
    """When someone joined after the start or left while the roll call was open."""
    notes = []
    if entry.joined_at is not None:
        notes.append(f"arrived {site_text(entry.joined_at, zone)}, after the start")
    if entry.left_at is not None:
        notes.append(f"left {site_text(entry.left_at, zone)}")
    return "; ".join(notes)
