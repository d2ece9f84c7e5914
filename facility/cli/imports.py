"""Import commands: `import leases`, a one-shot read of a whole DHCP lease file.

The file's absolute path is the leases' source, as for a configured `[[dhcp]]` source, so
importing a file the daemon also polls merges into the same leases; the daemon's reading
position (`source_positions`) is left alone. Importing the same file twice stores nothing twice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import typer

from facility.cli.context import AppContext, app_context, permitted
from facility.errors import InputError
from facility.names import printable
from facility.sources import rejections
from facility.store.models import row_id

FORMATS = ("isc", "dnsmasq", "kea")
SHOWN_REJECTIONS = 5  # rejected entries printed after an import; the rest are listed on request
EXCERPT = 100  # characters of each rejected entry printed

import_app = typer.Typer(no_args_is_help=True, help="One-shot imports.")


def register(app: typer.Typer) -> None:
    """Add the import commands to `app`."""
    app.add_typer(import_app, name="import")


@import_app.command("leases")
@permitted("import.leases")
def leases(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The lease file to read."),
    fmt: str = typer.Option(
        ..., "--format", help="isc (dhcpd.leases), dnsmasq or kea (memfile CSV)."
    ),
) -> None:
    """Read every lease in FILE once and print what was stored, updated and rejected."""
    from connectors.leasefile import import_file  # the core never imports connectors at load time

    context = app_context(ctx)
    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    engine = context.engine()
    now = context.now()
    site = context.site()
    with _progress(file.name) as advance:
        report = import_file(
            engine,
            file,
            fmt,
            now=now,
            limits=context.settings.limits,
            site_zone=context.zone(),
            progress=advance,
            site_id=row_id(site),
        )
    typer.echo(
        f"{report.path}: {report.stored} stored, {report.updated} updated, "
        f"{report.rejected} rejected"
    )
    if report.rejected:
        _show_rejections(context, report.path, now)
    if report.rejected and not report.leases:
        raise InputError(
            f"--format: no {fmt} lease could be read from {file}; is it really that format?"
        )


def _show_rejections(context: AppContext, source: str, now: datetime) -> None:
    """The first rejected entries of this import with their reasons, on stderr."""
    with context.session() as session:
        found = rejections.listing(session, source=source, at=now, site=row_id(context.site()))
    found.reverse()  # in the file's order
    for rejection in found[:SHOWN_REJECTIONS]:
        excerpt = " ".join(rejection.raw.split())[:EXCERPT]
        typer.echo(f"  rejected: {printable(rejection.reason)}: {printable(excerpt)}", err=True)
    if len(found) > SHOWN_REJECTIONS:
        typer.echo(f"  ... see `facility rejections list --source {source}`", err=True)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr while a person watches; nothing when stderr is not a terminal."""
    if not _stderr_is_terminal():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _stderr_is_terminal() -> bool:
    """Whether a person sees stderr (the seam tests replace)."""
    return sys.stderr.isatty()
