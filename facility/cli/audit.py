"""Audit commands: `audit show` reads the trail, `audit verify` proves its chain is whole.

`audit verify` needs no argument: the key and the anchored heads are in the home (`trail.heads`).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from facility.cli.context import TableJson, TableJsonCsv, app_context, permitted
from facility.errors import FacilityError, InputError
from facility.render import csv_text, json_text, table
from facility.store.models import AuditEntry
from facility.timefmt import site_text, utc_text
from facility.trail import audit, heads

audit_app = typer.Typer(no_args_is_help=True, help="Read and verify the audit trail.")

_FIELDS = ["seq", "at", "actor", "action", "details", "hash"]


def register(app: typer.Typer) -> None:
    """Add the audit commands to `app`."""
    app.add_typer(audit_app, name="audit")


@audit_app.command("show")
@permitted("audit.show")
def show(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="Only entries from this time on (ISO 8601, 09:00, or 7d ago)."
    ),
    action: str | None = typer.Option(
        None, "--action", help="Only this action, or those below it (policy: policy.set, ...)."
    ),
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json or csv."
    ),
) -> None:
    """The audit trail, oldest first."""
    context = app_context(ctx)
    start = context.since(since)
    if action is not None and not action.strip():
        raise InputError("--action: give an action name, e.g. policy.set")
    with context.session() as session:
        found = audit.entries(session, since=start, action=action and action.strip())
    if output_format is TableJsonCsv.json:
        typer.echo(json_text([_as_json(e) for e in found]))
    elif output_format is TableJsonCsv.csv:
        rows = [[e.seq, utc_text(e.at), e.actor, e.action, e.details, e.hash] for e in found]
        typer.echo(csv_text(_FIELDS, rows), nl=False)
    else:
        zone = context.zone()
        rows = [[e.seq, site_text(e.at, zone), e.actor, e.action, e.details] for e in found]
        typer.echo(table(_FIELDS[:-1], rows) if rows else "no entries")


@audit_app.command("verify")
@permitted("audit.verify")
def verify(
    ctx: typer.Context,
    head: str | None = typer.Option(
        None, "--head", help="A head shown earlier (purge, report): fail if it is no longer there."
    ),
    full: bool = typer.Option(
        False, "--full", help="Walk the whole chain, not only what follows the last checkpoint."
    ),
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """Check the chain against its key and the heads anchored in the home; exit 1 on a fault."""
    context = app_context(ctx)
    expected = _head_option(head)
    with context.session() as session:
        verdict = heads.verify_trail(session, now=context.now(), full=full, expected_head=expected)
    for warning in verdict.warnings:
        typer.echo(f"facility: warning: {warning}", err=True)
    if output_format is TableJson.json:
        typer.echo(json_text(_verdict_json(verdict)))
    elif verdict.ok:
        typer.echo(f"audit trail intact: {verdict.entries} entries, head {verdict.head}")
        typer.echo(_how_far(verdict))
    else:
        typer.echo(f"audit trail BROKEN after {verdict.entries} good entries, head {verdict.head}")
    if not verdict.ok:
        where = f" (first bad entry: seq {verdict.first_bad_seq})" if verdict.first_bad_seq else ""
        raise FacilityError(f"audit verify: {verdict.problem}{where}")


def _how_far(verdict: audit.Verdict) -> str:
    if verdict.from_seq and not verdict.checked:
        walked = f"no entry since the checkpoint at seq {verdict.from_seq} (--full checks all)"
    elif verdict.from_seq:
        walked = (
            f"entries {verdict.from_seq + 1}-{verdict.entries} checked after the checkpoint at "
            f"seq {verdict.from_seq} (--full checks all)"
        )
    else:
        walked = f"all {verdict.entries} entries checked"
    return f"{walked}; {verdict.anchors} anchored head(s) match"


def _head_option(head: str | None) -> str | None:
    if head is None:
        return None
    value = head.strip().lower()
    if not audit.is_head(value):
        raise InputError(f"--head: {head!r} is not an audit head (64 hex digits)")
    return value


def _verdict_json(verdict: audit.Verdict) -> dict[str, Any]:
    return {
        "ok": verdict.ok,
        "entries": verdict.entries,
        "head": verdict.head,
        "first_bad_seq": verdict.first_bad_seq,
        "problem": verdict.problem,
        "from_seq": verdict.from_seq,
        "checked": verdict.checked,
        "anchors": verdict.anchors,
        "warnings": list(verdict.warnings),
    }


def _as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": utc_text(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "details": json.loads(entry.details),
        "hash": entry.hash,
    }
