"""The `camera scan` command: one scan of the recordings root now, with a summary.

Exit 1 when the scan refused to change anything for lack of evidence (root missing or empty, most
files vanished at once); exit 2 when no recordings root is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from facility.cli.context import TableJson, app_context, permitted
from facility.errors import ConfigError
from facility.render import json_text, table
from facility.retention import evidence
from facility.store.models import row_id

if TYPE_CHECKING:  # for the annotation only: the command imports the scanner when it runs
    from connectors.camera import ScanReport

camera_app = typer.Typer(no_args_is_help=True, help="Camera recordings: index the recordings root.")


def register(app: typer.Typer) -> None:
    """Add the camera commands to `app`."""
    app.add_typer(camera_app, name="camera")


@camera_app.command("scan")
@permitted("camera.scan")
def scan(
    ctx: typer.Context,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
    full: bool = typer.Option(
        False, "--full", help="Walk the whole root, not only the directories that changed."
    ),
) -> None:
    """Index new segment files and drop the rows of files the recorder removed."""
    # The core never imports connectors at module level: only this command needs the scanner.
    from connectors.camera import scan as run_scan

    context = app_context(ctx)
    if context.settings.camera.root is None:
        raise ConfigError("camera.root: no recordings root is configured; set it in [camera]")
    site = context.site()
    report = run_scan(
        context.engine(),
        context.settings,
        now=context.now(),
        actor=context.actor,
        full=full,
        site_id=row_id(site),
        site_zone=context.zone(),
        site_code=site.code,
    )
    preserved = None
    if not report.refused and context.settings.evidence.root is not None:
        # New segments a hold keeps are preserved at once, as the daemon's scan does.
        preserved = evidence.preserve(
            context.engine(),
            context.settings,
            now=context.now(),
            actor=context.actor,
            site_id=row_id(site),
        )
    if output_format is TableJson.json:
        typer.echo(json_text(report.as_json()))
    else:
        typer.echo(render(report))
        if preserved is not None and (preserved.done or preserved.failed or preserved.refused):
            typer.echo(preserved.summary())
    if report.refused:
        raise typer.Exit(1)


def render(report: ScanReport) -> str:
    """The summary as a person reads it."""
    rows = [
        ["directories read", report.dirs_read],
        ["indexed", report.indexed],
        ["already known", report.known],
        ["vanished, rows dropped", report.vanished],
        ["vanished, kept by a hold", report.held_missing],
        ["not seen, kept (unconfirmed)", report.unverified],
        ["still being written", report.being_written],
        ["rejected (do not fit the layout)", report.rejected],
        ["symlinks skipped", report.symlinks],
        ["unreadable directories", report.unreadable],
    ]
    lines = [
        f"recordings root: {report.root} ({report.mode} scan)",
        table(["files", "count"], rows),
    ]
    lines += [f"rejected: {example}" for example in report.rejected_examples]
    if report.refused:
        lines.append(f"refused, nothing changed: {report.refused}")
    return "\n".join(lines)
