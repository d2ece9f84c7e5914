"""The `purge` command: one purge run now, or a dry run that changes nothing."""

from __future__ import annotations

from datetime import datetime, tzinfo

import typer

from facility import sites
from facility.cli.context import AppContext, TableJson, app_context, permitted
from facility.errors import InputError
from facility.render import json_text, table
from facility.retention import purge as purging
from facility.store import kinds
from facility.store.models import row_id
from facility.timefmt import site_text

# Records per kind the table shows with --list; JSON lists them all.
SHOWN_PER_KIND = 20


def register(app: typer.Typer) -> None:
    """Add the purge command to `app`."""
    app.command("purge")(purge)


@permitted("purge.run")
def purge(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would go and which cases keep what; change nothing."
    ),
    list_: bool = typer.Option(
        False,
        "--list",
        help=f"With --dry-run: which records and files would go (table: the first "
        f"{SHOWN_PER_KIND} of each kind; json: all).",
    ),
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """Delete every expired record no hold keeps, and print the audit head: at every site, each
    under its own policy (--site: that site's only)."""
    if list_ and not dry_run:
        raise InputError("--list: only with --dry-run (a run lists what it deleted nowhere)")
    context = app_context(ctx)
    now, chosen = context.now(), context.narrowed()
    only = None if chosen is None else {row_id(chosen)}
    camera_site = _camera_site(context)
    report = purging.run(
        context.engine(),
        context.settings,
        now=now,
        actor=context.actor,
        dry_run=dry_run,
        only=only,
        camera_site=camera_site,
    )
    listing = None
    if list_:
        limit = None if output_format is TableJson.json else SHOWN_PER_KIND
        listing = purging.would_delete(
            context.engine(),
            context.settings,
            now=now,
            limit=limit,
            only=only,
            camera_site=camera_site,
        )
    if output_format is TableJson.json:
        shown = report.as_json()
        if listing is not None:
            shown["listed"] = listing.as_json()
        typer.echo(json_text(shown))
        return
    typer.echo(render(report))
    if listing is not None:
        typer.echo(render_listing(listing, context))


def _camera_site(context: AppContext) -> int | None:
    """The site whose recordings `camera.root` holds: the configuration's own (`site`, else the
    only one); None when it names none of several (no camera file is removed then)."""
    with context.reading() as session:
        try:
            return row_id(sites.resolve(session, explicit=None, configured=context.settings.site))
        except sites.NotChosen:
            return None


def render(report: purging.PurgeReport) -> str:
    """The report as a person reads it, ending with the audit head line."""
    if report.skipped:
        return "\n".join([*report.notes, f"audit head: {report.audit_head}"])
    first = "would delete" if report.dry_run else "deleted"
    rows = [[k, r.deleted, r.held, r.errors] for k, r in report.kinds.items()]
    lines = [table(["kind", first, "held", "errors"], rows)]
    if report.sites:  # several sites: the table is their total
        per_site = [
            [code, *(each.kinds[k].deleted for k in report.kinds)]
            for code, each in report.sites.items()
        ]
        lines.append(table([f"site ({first})", *report.kinds], per_site))
    files = report.files
    if not report.dry_run:
        lines.append(
            f"files: {files.deleted} deleted, {files.vanished} already gone, "
            f"{files.refused} refused, {files.failed} could not be deleted; "
            f"{files.directories_removed} emptied directories removed"
        )
    lines += _kept_by(report)
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"auto-closed: {k} {n}" for k, n in report.limits.items() if n]
    if report.dry_run:
        lines.append("dry run: nothing was changed")
    lines.append(f"audit head: {report.audit_head}")
    return "\n".join(lines)


def render_listing(listing: purging.Listing, context: AppContext) -> str:
    """What `--list` adds to the dry run's table: the records of each kind, then the files."""
    zone = context.zone()
    lines = []
    for kind, rows in listing.records.items():
        total = listing.totals[kind]
        if not total:
            continue
        lines.append(f"\n{kind} that would go: {total}")
        listed = kinds.get(kind).listed
        cells = [
            [
                row["id"],
                *(_cell(row[column], zone) for column, _header in listed),
                _cell(row["expired_at"], zone),
            ]
            for row in rows
        ]
        headers = [kinds.get(kind).noun, *(header for _column, header in listed), "expired"]
        lines.append(table(headers, cells))
        if total > len(rows):
            lines.append(f"... and {total - len(rows)} more (--format json lists them all)")
    if listing.files:
        more = listing.totals["camera"] - len(listing.files)
        lines.append(f"\nfiles that would be deleted: {listing.totals['camera']}")
        lines += [str(path) for path in listing.files]
        if more:
            lines.append(f"... and {more} more (--format json lists them all)")
    return "\n".join(lines) if lines else "nothing would go"


def _cell(value: object, zone: tzinfo) -> object:
    if isinstance(value, datetime):
        return site_text(value, zone)
    if isinstance(value, bool):
        return "yes" if value else ""
    return value


def _kept_by(report: purging.PurgeReport) -> list[str]:
    lines = []
    for kind, result in report.kinds.items():
        for case, count in (result.kept_by or {}).items():
            lines.append(f"kept by {case}: {count} {kind}")
    return lines
