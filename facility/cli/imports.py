"""Import commands: `import leases`, a one-shot read of a whole DHCP lease file (role admin).

The file's absolute path is the leases' source, as for a configured `[[dhcp]]` source, so
importing a file the daemon also polls merges into the same leases; the daemon's reading
position (`source_positions`) is left alone. Importing the same file twice stores nothing twice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from facility.cli.context import app_context
from facility.errors import InputError

FORMATS = ("isc", "dnsmasq", "kea")

import_app = typer.Typer(no_args_is_help=True, help="One-shot imports.")


def register(app: typer.Typer) -> None:
    """Add the import commands to `app`."""
    app.add_typer(import_app, name="import")


@import_app.command("leases")
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
    context.require("admin", command="import leases")
    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    engine = context.engine()
    with _progress(file.name) as advance:
        report = import_file(
            engine,
            file,
            fmt,
            now=context.now(),
            limits=context.settings.limits,
            site_zone=context.settings.site_zone,
            progress=advance,
        )
    typer.echo(
        f"{report.path}: {report.stored} stored, {report.updated} updated, "
        f"{report.rejected} rejected"
    )
    if report.rejected and not report.leases:
        raise InputError(
            f"--format: no {fmt} lease could be read from {file}; is it really that format?"
        )


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
