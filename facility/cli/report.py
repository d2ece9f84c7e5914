"""The `report` command: proof that nothing is kept past its policy.

It exits 1 when a record is overdue and not held, a data-subject request is past its deadline,
or the audit chain does not verify, after writing the report: a cron job mails the output and
alerts on the exit code.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from facility.cli.context import app_context, permitted
from facility.errors import FacilityError, InputError
from facility.files import write_private
from facility.privacy import report
from facility.privacy.report_render import render
from facility.store.models import row_id
from facility.trail import audit


class ReportFormat(StrEnum):
    """Output formats of `report`."""

    md = "md"
    json = "json"
    html = "html"


def register(app: typer.Typer) -> None:
    """Add the report command to `app`."""
    app.command("report")(report_command)


@permitted("report.view")
def report_command(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None,
        "--since",
        help="Start of the period for runs, releases and rejections: a time, or 7d ago "
        "(default 30d).",
    ),
    output_format: ReportFormat = typer.Option(
        ReportFormat.md, "--format", help="md, json or html (one self-contained printable file)."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write to this file (mode 0600), not stdout."
    ),
    head: str | None = typer.Option(
        None, "--head", help="A head from an earlier report: fail if it is no longer in the trail."
    ),
) -> None:
    """Retention against policy, holds, purge runs, jobs and the audit chain; exit 1 on a failure."""
    context = app_context(ctx)
    now = context.now()
    start = context.since(since)
    if start is not None and start > now:
        raise InputError(f"--since: {since} is in the future")
    expected = _head(head)
    settings = context.settings
    chosen = context.narrowed()  # --site: that site's records only
    with context.session() as session:
        built = report.build(
            session,
            now=now,
            interval=settings.purge.interval,
            grace=settings.holds.release_grace,
            since=start,
            expected_head=expected,
            skew=settings.limits.clock_skew,
            only=None if chosen is None else {row_id(chosen)},
            privacy=settings.privacy,
        )
    text = render(built, output_format.value, settings.timezone)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_private(output, text)
        state = "OK" if built.ok else "FAILED"
        typer.echo(f"report written to {output}: {state}, audit head {built.verdict.head}")
    if not built.ok:
        raise FacilityError("report: " + "; ".join(built.failures))


def _head(head: str | None) -> str | None:
    if head is None:
        return None
    value = head.strip().lower()
    if not audit.is_head(value):
        raise InputError(f"--head: {head!r} is not an audit head (64 hex digits)")
    return value
