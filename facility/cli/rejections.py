"""`rejections list`: what was refused, from which source, and why.

The excerpts are raw input (MACs, host names, badge numbers, names), so the listing is for the
roles that may see personal data; they are kept for `retention.rejections` only.
"""

from __future__ import annotations

import os

import typer
from sqlmodel import Session

from facility.cli.context import TableJsonCsv, app_context, permitted
from facility.errors import InputError
from facility.render import csv_text, json_text, table
from facility.sources import rejections
from facility.timefmt import site_text

rejections_app = typer.Typer(no_args_is_help=True, help="Inputs that were refused, and why.")

FIELDS = ["id", "at", "source", "reason", "raw"]
# Characters of an excerpt a table shows; json and csv give it whole.
SHOWN = 60


def register(app: typer.Typer) -> None:
    """Add the rejections commands to `app`."""
    app.add_typer(rejections_app, name="rejections")


@rejections_app.command("list")
@permitted("rejections.list")
def list_(
    ctx: typer.Context,
    source: str | None = typer.Option(
        None, "--source", help="Only this source: mqtt, a lease file's path, the camera root..."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only those refused from this time on (ISO 8601, 09:00, or 7d ago)."
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json or csv."
    ),
) -> None:
    """Rejected inputs, newest first, with the reason and the start of what was sent."""
    context = app_context(ctx)
    start = context.since(since)
    visible = context.visible_sites("rejections.list")
    with context.session() as session:
        wanted = _source(session, source)
        found = rejections.listing(session, source=wanted, since=start, limit=limit, site=visible)
        total = rejections.count(session, source=wanted, site=visible)
    if output_format is TableJsonCsv.json:
        typer.echo(json_text([r.as_json() for r in found]))
        return
    if output_format is TableJsonCsv.csv:
        rows = [[r.id, r.as_json()["at"], r.source, r.reason, r.raw] for r in found]
        typer.echo(csv_text(FIELDS, rows), nl=False)
        return
    if not found:
        typer.echo("no rejections" + (f" from {wanted}" if wanted else ""))
        return
    zone = context.zone()
    rows = [[r.id, site_text(r.at, zone), r.source, r.reason, _short(r.raw)] for r in found]
    typer.echo(table(FIELDS, rows))
    typer.echo(f"{len(found)} shown of {total}; kept for the rejections policy (policy show)")


def _source(session: Session, source: str | None) -> str | None:
    """The source as stored: as given, or a lease file named by a relative path."""
    if source is None:
        return None
    if not source.strip():
        raise InputError("--source: give a source, e.g. mqtt or a lease file's path")
    if rejections.count(session, source=source) or "/" not in source:
        return source
    return os.path.abspath(source)


def _short(raw: str) -> str:
    flat = " ".join(raw.split())
    return flat if len(flat) <= SHOWN else flat[: SHOWN - 1] + "…"
