"""Data-subject rights: `subject export` (access, portability), `subject erase` (erasure),
`subject rectify` (rectification of a visit), `subject restrict` and `unrestrict` (restriction).

Each can name the request it answers (`--request ID`, from `facility request open`): the request
must be open, of a type the command answers, and about the same subject.

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

from facility.cli.context import TableJsonCsv, app_context, permitted
from facility.errors import FacilityError, HeldError, InputError
from facility.files import write_private
from facility.privacy import requests, restriction, subjects
from facility.render import csv_text, json_text, table
from facility.store import db
from facility.store.kinds import NAMES
from facility.timefmt import site_text
from facility.trail import keys
from facility.visitors import corrections

subject_app = typer.Typer(
    no_args_is_help=True,
    help="Data-subject rights: access, erasure, rectification, restriction.",
)

NAME = typer.Option(
    None, "--name", help="A visitor's name (exact, ignoring case and accents' form)."
)
MAC = typer.Option(None, "--mac", help="A device's MAC address.")
BADGE = typer.Option(None, "--badge", help="A badge number.")
REQUEST = typer.Option(
    None, "--request", help="The request this answers (`facility request list`); audited with it."
)


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
    request: int | None = REQUEST,
) -> None:
    """Everything stored about a person or device, with the records a hold keeps."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    with context.session() as session:
        requests.answering(session, request, command="subject export", subject=subject)
        found = subjects.export(
            session,
            subject,
            now=context.now(),
            grace=context.settings.holds.release_grace,
            actor=context.actor,
            key=key,
            output_format=output_format.value,
            sites=context.visible_sites("subject.export"),
            request_id=request,
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
    tables["requests"] = found.requests
    tables["restrictions"] = found.restrictions
    tables["ignored_devices"] = found.ignored_devices
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
    request: int | None = REQUEST,
) -> None:
    """Erase what is stored about a subject, except what a hold keeps (exit 4 naming the case)."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    subjects.check_reason(reason, subject)
    grace, visible = context.settings.holds.release_grace, context.visible_sites("subject.erase")
    with context.session() as session:
        requests.answering(session, request, command="subject erase", subject=subject)
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
            request_id=request,
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
    if done and result.kept_requests:
        lines.append(
            f"kept: {result.kept_requests} data-subject request(s) about this subject, the record "
            "of answering them (they go retention.requests after they are closed)"
        )
    if result.restriction_ended:
        lines.append("the subject's restriction ended: nothing of it is stored any more")
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


# --- rectification ---------------------------------------------------------------------------


@subject_app.command("rectify")
@permitted("subject.rectify")
def rectify(
    ctx: typer.Context,
    visit_id: int = typer.Argument(..., metavar="ID", help="The visit's number."),
    name: str | None = typer.Option(None, "--name", help="The corrected name."),
    company: str | None = typer.Option(
        None, "--company", help="The corrected company ('' clears)."
    ),
    host: str | None = typer.Option(None, "--host", help="The corrected host ('' clears)."),
    signed_in: str | None = typer.Option(None, "--signed-in", help="The true sign-in time."),
    signed_out: str | None = typer.Option(
        None, "--signed-out", help="The true sign-out time: the retention clock moves with it."
    ),
    reason: str = typer.Option(
        ..., "--reason", help="Why, e.g. the request's reference (audited; no personal data)."
    ),
    request: int | None = REQUEST,
) -> None:
    """Correct any visit (name, company, host, times); audited with the fields, not the values."""
    context = app_context(ctx)
    edit = corrections.Edit(
        name=name,
        company=company,
        host=host,
        signed_in_at=context.instant(signed_in, what="--signed-in"),
        signed_out_at=context.instant(signed_out, what="--signed-out"),
    )
    settings = context.settings
    with context.session() as session:
        visit = corrections.any_visit(session, visit_id)
        person = subjects.Subject("name", visit.name, visit.name_key)
        cleaned = subjects.check_reason(reason, person)
        if name is not None:
            subjects.check_reason(cleaned, subjects.subject_from(name=name))
        requests.answering(session, request, command="subject rectify", subject=person)
        done = corrections.correct(
            session,
            visit,
            edit,
            now=context.now(),
            actor=context.actor,
            by="privacy",
            reason=cleaned,
            request_id=request,
            skew=settings.limits.clock_skew,
            site_zone=settings.site_zone,
        )
    typer.echo(done.describe(settings.site_zone))


# --- restriction -----------------------------------------------------------------------------


@subject_app.command("restrict")
@permitted("subject.restrict")
def restrict(
    ctx: typer.Context,
    name: str | None = NAME,
    mac: str | None = MAC,
    badge: str | None = BADGE,
    reason: str = typer.Option(
        ..., "--reason", help="Why, e.g. the request's reference (audited; no personal data)."
    ),
    request: int | None = REQUEST,
) -> None:
    """Restrict a subject's records (article 18): kept and purged on time, shown to privacy only."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    with context.session() as session:
        requests.answering(session, request, command="subject restrict", subject=subject)
        change = restriction.restrict(
            session,
            subject,
            now=context.now(),
            actor=context.actor,
            reason=reason,
            key=key,
            request_id=request,
        )
    counts = _per_kind(change.records)
    if not change.changed and change.restriction is not None:
        since = site_text(change.restriction.restricted_at, context.settings.site_zone)
        typer.echo(f"already restricted since {since}; nothing changed ({counts})")
        return
    typer.echo(
        f"restricted: {counts}. Shown to the privacy role only (the evacuation list still shows "
        "a person on site); purged on time as ever"
    )


@subject_app.command("unrestrict")
@permitted("subject.unrestrict")
def unrestrict(
    ctx: typer.Context,
    name: str | None = NAME,
    mac: str | None = MAC,
    badge: str | None = BADGE,
    reason: str = typer.Option(..., "--reason", help="Why it is lifted (audited)."),
    request: int | None = REQUEST,
) -> None:
    """Lift a restriction: the subject's records show as before."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    with context.session() as session:
        requests.answering(session, request, command="subject unrestrict", subject=subject)
        change = restriction.unrestrict(
            session,
            subject,
            now=context.now(),
            actor=context.actor,
            reason=reason,
            key=key,
            request_id=request,
        )
    typer.echo("restriction lifted" if change.changed else "not restricted; nothing changed")


@subject_app.command("restricted")
@permitted("subject.restricted")
def restricted(
    ctx: typer.Context,
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json or csv."
    ),
) -> None:
    """The restricted subjects, oldest restriction first."""
    context = app_context(ctx)
    with context.session() as session:
        rows = restriction.listing(session)
    found = [
        {
            "subject_kind": r.subject_kind,
            "subject": r.subject_key,
            "restricted_at": r.restricted_at,
            "restricted_by": r.restricted_by,
            "reason": r.reason,
            "request_id": r.request_id,
        }
        for r in rows
    ]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(found))
        return
    if output_format is TableJsonCsv.csv:
        lines = [[f[k] for k in RESTRICTED_FIELDS] for f in found]
        typer.echo(csv_text(list(RESTRICTED_FIELDS), lines), nl=False)
        return
    zone = context.settings.site_zone
    body = [
        [r.subject_kind, r.subject_key, site_text(r.restricted_at, zone), r.restricted_by]
        for r in rows
    ]
    typer.echo(table(["kind", "subject", "since", "by"], body))


RESTRICTED_FIELDS = (
    "subject_kind",
    "subject",
    "restricted_at",
    "restricted_by",
    "reason",
    "request_id",
)
