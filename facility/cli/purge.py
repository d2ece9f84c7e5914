"""The `purge` command: one purge run now (role `admin`), or a dry run that changes nothing."""

from __future__ import annotations

import typer

from facility import purge as purging
from facility.cli.context import TableJson, app_context
from facility.render import json_text, table


def register(app: typer.Typer) -> None:
    """Add the purge command to `app`."""
    app.command("purge")(purge)


def purge(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would go and which cases keep what; change nothing."
    ),
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """Delete every expired record no hold keeps, and print the audit head."""
    context = app_context(ctx)
    # Deleting is an operator's act on the whole store; DESIGN.md gives no role, so: admin.
    context.require("admin", command="purge")
    report = purging.run(
        context.engine(),
        context.settings,
        now=context.now(),
        actor=context.actor,
        dry_run=dry_run,
    )
    if output_format is TableJson.json:
        typer.echo(json_text(report.as_json()))
        return
    typer.echo(render(report))


def render(report: purging.PurgeReport) -> str:
    """The report as a person reads it, ending with the audit head line."""
    if report.skipped:
        return "\n".join([*report.notes, f"audit head: {report.audit_head}"])
    first = "would delete" if report.dry_run else "deleted"
    rows = [[k, r.deleted, r.held, r.errors] for k, r in report.kinds.items()]
    lines = [table(["kind", first, "held", "errors"], rows)]
    files = report.files
    if not report.dry_run:
        lines.append(
            f"files: {files.deleted} deleted, {files.vanished} already gone, "
            f"{files.refused} refused, {files.failed} could not be deleted"
        )
    lines += _kept_by(report)
    lines += [f"note: {note}" for note in report.notes]
    lines += [f"auto-closed: {k} {n}" for k, n in report.limits.items() if n]
    if report.dry_run:
        lines.append("dry run: nothing was changed")
    lines.append(f"audit head: {report.audit_head}")
    return "\n".join(lines)


def _kept_by(report: purging.PurgeReport) -> list[str]:
    lines = []
    for kind, result in report.kinds.items():
        for case, count in (result.kept_by or {}).items():
            lines.append(f"kept by {case}: {count} {kind}")
    return lines
