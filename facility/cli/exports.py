"""Export commands: `export list | handed-over | verify | key` (`hold export` writes one)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import typer

from facility.cli.context import TableJson, TableJsonCsv, app_context, permitted
from facility.cli.holds import permit_at_hold
from facility.errors import FacilityError, InputError
from facility.render import csv_text, json_text, table
from facility.retention import handover, manifest
from facility.timefmt import site_text
from facility.trail import signing

export_app = typer.Typer(
    no_args_is_help=True,
    help="Case exports for hand-over: the register, hand-over, checking one, the signing key.",
)


def register(app: typer.Typer) -> None:
    """Add the export commands to `app`."""
    app.add_typer(export_app, name="export")


_FIELDS = [
    "id",
    "case",
    "location",
    "exported_at",
    "exported_by",
    "handed_over_at",
    "handed_over_to",
    "handover_reference",
    "removed_at",
    "removal",
    "files",
    "bytes",
    "manifest_sha256",
]


@export_app.command("list")
@permitted("export.list")
def list_(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Include exports already deleted here."),
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json, csv."
    ),
) -> None:
    """The registered exports still on disk here (or all), oldest first: of the holds of the
    sites you may see (or the one --site names) and the organisation's."""
    context = app_context(ctx)
    visible = context.visible_sites("export.list")
    with context.session() as session:
        listed = handover.listing(session, include_removed=show_all, sites=visible)
        found = [handover.as_json(row) for row in listed]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(found))
        return
    if output_format is TableJsonCsv.csv:
        typer.echo(csv_text(_FIELDS, [[item[f] for f in _FIELDS] for item in found]), nl=False)
        return
    if not found:
        typer.echo("no exports" if show_all else "no export is on disk here")
        return
    zone = context.settings.site_zone
    rows = [
        [
            item["id"],
            item["case"],
            item["location"],
            _local(item["exported_at"], zone) + f" by {item['exported_by']}",
            _handed(item, zone),
            _local(item["removed_at"], zone) if item["removed_at"] else "on disk",
        ]
        for item in found
    ]
    typer.echo(table(["id", "case", "location", "exported", "handed over", "here"], rows))


def _local(value: str | None, zone: tzinfo) -> str:
    return "" if value is None else site_text(datetime.fromisoformat(value), zone)


def _handed(item: dict[str, Any], zone: tzinfo) -> str:
    if item["handed_over_at"] is None:
        return "" if item["complete"] else "incomplete"
    when = _local(item["handed_over_at"], zone)
    return f"{when} to {item['handed_over_to']} ({item['handover_reference']})"


@export_app.command("handed-over")
@permitted("export.handed-over")
def handed_over(
    ctx: typer.Context,
    export_id: int = typer.Argument(..., metavar="ID", help="The export's number (export list)."),
    to: str = typer.Option(..., "--to", help="Who received it, e.g. the officer and the force."),
    reference: str = typer.Option(..., "--reference", help="The recipient's reference."),
) -> None:
    """Record that an export was handed over; the next purge deletes the copy kept here."""
    context = app_context(ctx)
    if export_id < 1 or export_id > 2**31 - 1:
        raise InputError(f"ID: {export_id} is not an export number")
    with context.reading() as session:
        case = handover.hold_of(session, export_id).case
    permit_at_hold(context, "export.handed-over", case)
    with context.session() as session:
        export, case = handover.hand_over(
            session,
            export_id=export_id,
            to=to,
            reference=reference,
            now=context.now(),
            actor=context.actor,
        )
        location = export.location
    typer.echo(
        f"export {export_id} of {case} handed over to {to.strip()} ({reference.strip()}); "
        f"the next purge deletes the copy at {location}"
    )


@export_app.command("verify")
@permitted("export.verify")
def verify(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., metavar="DIR", help="The export directory."),
    key: Path | None = typer.Option(
        None,
        "--key",
        help="The public key (PEM) to check the signature with (default: this installation's "
        "key if this host has it, else the one in the export).",
    ),
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """Check an export's signature and every file's SHA-256; exit 1 naming the first difference."""
    app_context(ctx)  # the home, whose audit.key holds this installation's key
    public: signing.Ed25519PublicKey | None
    if key is not None:
        public, source = signing.load_public(key.read_bytes(), what="--key"), "given"
    else:
        public, source = _installation_key()
    verdict = manifest.verify(directory, key=public, key_source=source)
    if output_format is TableJson.json:
        typer.echo(json_text(verdict.as_json()))
    elif verdict.ok:
        typer.echo(
            f"OK: {verdict.files} files, {verdict.size} bytes of case {verdict.case} as "
            f"exported; signature by key {verdict.key_fingerprint} ({_SOURCES[source]})"
        )
    if not verdict.ok:
        raise FacilityError(f"export verify: {verdict.problem}")


_SOURCES = {
    "given": "the key given with --key",
    "installation": "this installation's key",
    "included": "the key included in the export: compare it with the one you were given",
}


def _installation_key() -> tuple[signing.Ed25519PublicKey | None, str]:
    """This installation's public key if this host can read its secret; else (None, included)."""
    try:
        return signing.private_key().public_key(), "installation"
    except FacilityError:
        return None, "included"


@export_app.command("key")
@permitted("export.key")
def key_(
    ctx: typer.Context,
) -> None:
    """Print the installation's public key that signs exports (PEM), and its fingerprint."""
    app_context(ctx)
    public = signing.private_key().public_key()
    typer.echo(signing.public_pem(public).decode(), nl=False)
    typer.echo(f"fingerprint (SHA-256): {signing.fingerprint(public)}", err=True)
