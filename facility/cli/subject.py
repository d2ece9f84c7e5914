"""Data-subject requests: `subject export` for access, `subject erase` for erasure.

Both are audited under the subject's keyed hash, with the site key (`audit.key` in FACILITY_HOME,
never made here: `keys.site_key`). Erase shows what it will erase and asks first (the
question is asked outside any transaction, then the erasure recounts and runs in one); without a
terminal it needs `--yes`.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import typer

from facility.cli.context import app_context, permitted
from facility.errors import FacilityError, HeldError, InputError
from facility.files import write_private
from facility.privacy import subjects
from facility.render import csv_text, json_text
from facility.store import db
from facility.store.kinds import NAMES
from facility.trail import keys

subject_app = typer.Typer(
    no_args_is_help=True, help="Data-subject requests: what is stored about someone; erasure."
)

NAME = typer.Option(
    None, "--name", help="A visitor's name (exact, ignoring case and accents' form)."
)
MAC = typer.Option(None, "--mac", help="A device's MAC address.")
BADGE = typer.Option(None, "--badge", help="A badge number.")


class ExportFormat(StrEnum):
    """Output formats of `subject export`."""

    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    """Add the subject commands to `app`."""
    app.add_typer(subject_app, name="subject")


@subject_app.command("export")
@permitted("subject.export")
def export(
    ctx: typer.Context,
    name: str | None = NAME,
    mac: str | None = MAC,
    badge: str | None = BADGE,
    output_format: ExportFormat = typer.Option(ExportFormat.json, "--format", help="json or csv."),
    output: Path | None = typer.Option(
        None, "--output", help="Write to this file (mode 0600), e.g. to give to the person."
    ),
) -> None:
    """Everything stored about a person or device, with the records a hold keeps."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    with context.session() as session:
        found = subjects.export(
            session,
            subject,
            now=context.now(),
            grace=context.settings.holds.release_grace,
            actor=context.actor,
            key=key,
            output_format=output_format.value,
            sites=context.visible_sites("subject.export"),
        )
    body = json_text(found.as_json()) + "\n" if output_format is ExportFormat.json else _csv(found)
    if output is None:
        typer.echo(body, nl=False)
        return
    write_private(output, body)
    extra = {"rejections": len(found.rejections), "hold_scopes": len(found.hold_scopes)}
    counts = ", ".join(f"{k} {n}" for k, n in (found.counts() | extra).items() if n) or "no records"
    typer.echo(f"exported to {output}: {counts}; {len(found.held)} held")


_CSV_LEAD = ["kind", "id", "held_by"]


def _csv(found: subjects.Export) -> str:
    """One row per record, columns the union of every kind's fields."""
    held: dict[tuple[str, int | None], list[str]] = {}
    for h in found.held:
        held.setdefault((h["kind"], h["id"]), []).append(h["case"])
    tables = {**found.records, "muster_entries": found.muster_entries}
    tables["blocked_devices"] = found.blocked_devices
    tables["rejections"] = found.rejections
    tables["hold_scopes"] = found.hold_scopes
    fields: list[str] = []
    for rows in tables.values():
        for row in rows:
            fields += [f for f in row if f not in fields and f != "id"]
    lines = []
    for kind, rows in tables.items():
        for row in rows:
            cases = " ".join(held.get((kind, row.get("id")), []))
            lines.append([kind, row.get("id", ""), cases, *(row.get(f) for f in fields)])
    return csv_text([*_CSV_LEAD, *fields], lines)


@subject_app.command("erase")
@permitted("subject.erase")
def erase(
    ctx: typer.Context,
    name: str | None = NAME,
    mac: str | None = MAC,
    badge: str | None = BADGE,
    reason: str = typer.Option(
        ..., "--reason", help="Why, e.g. the request's reference (audited; no personal data)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Erase without asking."),
) -> None:
    """Erase what is stored about a subject, except what a hold keeps (exit 4 naming the case)."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    subjects.check_reason(reason, subject)
    grace, visible = context.settings.holds.release_grace, context.visible_sites("subject.erase")
    with context.session() as session:
        planned = subjects.plan(
            session, subject, now=context.now(), grace=grace, key=key, sites=visible
        )
    typer.echo(_describe(planned, done=False))
    if planned.total_erased:
        _confirm(yes)
    with context.session() as session:
        done = subjects.erase(
            session,
            subject,
            now=context.now(),
            grace=grace,
            actor=context.actor,
            key=key,
            reason=reason,
            sites=visible,
        )
    # Nothing erased may be readable from the database file or its journal afterwards.
    db.scrub(context.engine())
    typer.echo(_describe(done, done=True))
    _exit_for(done)


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not _interactive():
        raise InputError("subject erase: erasing needs confirmation; pass --yes")
    if not typer.confirm("Erase these records?", default=False):
        typer.echo("subject erase: not confirmed; nothing erased", err=True)
        raise typer.Exit(1)


def _interactive() -> bool:
    """Whether a person can answer a question on stdin (the seam tests replace)."""
    return sys.stdin.isatty()


def _describe(result: subjects.Erasure, *, done: bool) -> str:
    verb = "erased" if done else "will erase"
    lines = [f"{verb}: " + _per_kind(result.erased)]
    for case, kinds in sorted(result.cases.items()):
        exported = result.exports.get(case)
        also = (
            f" (and in its export(s) {', '.join(map(str, exported))} kept here, until the hold ends)"
            if exported
            else ""
        )
        lines.append(f"kept by hold {case}: " + _per_kind(kinds) + also)
    if result.total_open:
        lines.append("kept, still in use (clock not started): " + _per_kind(result.open))
    return "\n".join(lines)


def _per_kind(counts: dict[str, int]) -> str:
    order = (*NAMES, subjects.HOLD_SCOPES)
    shown = [f"{k} {counts[k]}" for k in order if counts.get(k)]
    return ", ".join(shown) or "nothing"


def _exit_for(done: subjects.Erasure) -> None:
    """Exit 4 naming the cases when holds kept records; 1 when records in use were kept."""
    if done.total_held:
        cases = sorted(done.cases)
        raise HeldError(
            f"subject erase: {done.total_held} record(s) kept by hold(s) {', '.join(cases)}; "
            f"the {done.total_erased} unheld record(s) were erased. The kept ones are purged "
            "on their policy once the hold is released",
            cases,
        )
    if done.total_open:
        raise FacilityError(
            f"subject erase: {done.total_open} record(s) still in use were kept (a visit not "
            "signed out, a badge still out, a running lease); close them and erase again"
        )
