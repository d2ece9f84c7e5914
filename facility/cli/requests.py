"""The register of data-subject requests: `request open`, `extend`, `close` and `list`.

A request is due one month after it was received (GDPR article 12(3)); `request extend` adds up
to two months, decided within the first; the report fails on a request past its deadline. The
commands that answer one (`subject export`, `subject erase`, `subject rectify`, `subject
restrict`, `wifi ignore`) name it with `--request ID` (`privacy.requests`).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

import typer

from facility.cli.context import TableJsonCsv, app_context, permitted
from facility.errors import InputError
from facility.names import printable
from facility.privacy import requests, subjects
from facility.render import csv_text, json_text, table
from facility.store.models import DataRequest
from facility.timefmt import site_text
from facility.trail import keys

request_app = typer.Typer(
    no_args_is_help=True,
    help="Data-subject requests (access, rectification, erasure, restriction, objection, "
    "portability) and their deadlines.",
)


class State(StrEnum):
    """Which requests `request list` shows."""

    open = "open"
    overdue = "overdue"
    closed = "closed"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add the request commands to `app`."""
    app.add_typer(request_app, name="request")


@request_app.command("open")
@permitted("request.open")
def open_(
    ctx: typer.Context,
    request_type: str = typer.Argument(
        ..., metavar="TYPE", help=f"The right asked for: {', '.join(requests.TYPES)}."
    ),
    name: str | None = typer.Option(None, "--name", help="The person it is about."),
    mac: str | None = typer.Option(None, "--mac", help="The device it is about."),
    badge: str | None = typer.Option(None, "--badge", help="The badge it is about."),
    received: str = typer.Option(
        ..., "--received", help="When it was received: a date (site time) or a time."
    ),
    contact: str = typer.Option(..., "--contact", help="Where the answer goes (kept with it)."),
) -> None:
    """Register a request; its answer is due one month after it was received."""
    context = app_context(ctx)
    request_type = requests.check_type(request_type)
    subject = subjects.subject_from(name=name, mac=mac, badge=badge)
    received_at = context.instant(received, what="--received")
    if received_at is None:  # the option is required: never so
        raise InputError("--received: required")
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    zone = context.settings.site_zone
    with context.session() as session:
        row = requests.open_request(
            session,
            now=context.now(),
            actor=context.actor,
            key=key,
            request_type=request_type,
            subject=subject,
            received_at=received_at,
            contact=contact,
            site_zone=zone,
            skew=context.settings.limits.clock_skew,
        )
    typer.echo(
        f"request {row.id}: {row.type} about {subject.kind} {printable(subject.value)}, received "
        f"{site_text(row.received_at, zone)}; answer by {requests.last_due_day(row, zone)}"
    )


@request_app.command("extend")
@permitted("request.extend")
def extend(
    ctx: typer.Context,
    request_id: int = typer.Argument(..., metavar="ID", help="The request's number."),
    reason: str = typer.Option(
        ..., "--reason", help="Why it needs longer (audited; tell the person too)."
    ),
    months: int = typer.Option(2, "--months", help="1 or 2; at most two in all."),
) -> None:
    """Extend a request's deadline by one or two months (article 12(3))."""
    context = app_context(ctx)
    zone = context.settings.site_zone
    with context.session() as session:
        row = requests.extend(
            session,
            request_id,
            now=context.now(),
            actor=context.actor,
            reason=reason,
            months=months,
            site_zone=zone,
        )
    typer.echo(
        f"request {row.id}: extended by {months} month(s); answer by "
        f"{requests.last_due_day(row, zone)}. Tell the person, with the reason, now"
    )


@request_app.command("close")
@permitted("request.close")
def close(
    ctx: typer.Context,
    request_id: int = typer.Argument(..., metavar="ID", help="The request's number."),
    outcome: str = typer.Option(..., "--outcome", help="What was done, e.g. 'export sent'."),
) -> None:
    """Close a request with its outcome; it is kept retention.requests from now."""
    context = app_context(ctx)
    now = context.now()
    with context.session() as session:
        row = requests.close(session, request_id, now=now, actor=context.actor, outcome=outcome)
    late = " (past its deadline)" if now >= row.due_at else ""
    typer.echo(f"request {row.id}: closed{late}")


@request_app.command("list")
@permitted("request.list")
def list_(
    ctx: typer.Context,
    open_only: bool = typer.Option(False, "--open", help="Only the open requests."),
    overdue: bool = typer.Option(False, "--overdue", help="Only those past their deadline."),
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json or csv."
    ),
) -> None:
    """The requests, oldest first, with their deadlines."""
    if open_only and overdue:
        raise InputError("request list: give --open or --overdue, not both")
    state = State.overdue if overdue else State.open if open_only else State.all
    context = app_context(ctx)
    now = context.now()
    with context.session() as session:
        rows = requests.listing(session, now=now, state=state.value)
    found = [requests.as_json(row, now=now) for row in rows]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(found))
        return
    if output_format is TableJsonCsv.csv:
        headers = [*CSV_FIELDS]
        lines = [[_csv_value(item, f) for f in CSV_FIELDS] for item in found]
        typer.echo(csv_text(headers, lines), nl=False)
        return
    zone = context.settings.site_zone
    typer.echo(table(HEADERS, [_row(row, now, zone) for row in rows]))


CSV_FIELDS = (
    "id",
    "type",
    "subject_kind",
    "subject",
    "contact",
    "received_at",
    "due_at",
    "extended_months",
    "state",
    "closed_at",
    "outcome",
)
HEADERS = ["id", "type", "subject", "received", "answer by", "state", "contact"]


def _csv_value(item: dict[str, Any], name: str) -> Any:
    if name == "subject_kind":
        return item["subject"]["kind"]
    if name == "subject":
        return item["subject"]["value"]
    return item[name]


def _row(row: DataRequest, now: datetime, zone: tzinfo) -> list[Any]:
    state = requests.state_of(row, now=now)
    extended = f" (+{row.extended_months}m)" if row.extended_months else ""
    return [
        row.id,
        row.type,
        f"{row.subject_kind} {row.subject}",
        site_text(row.received_at, zone),
        f"{requests.last_due_day(row, zone)}{extended}",
        state.upper() if state == "overdue" else state,
        row.contact,
    ]
