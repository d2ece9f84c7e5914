"""Hold commands: `hold place | extend | release | reinstate | list | show`."""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import typer
from sqlmodel import Session

from facility import sites
from facility.accounts.access import roles_of
from facility.cli.context import AppContext, TableJson, TableJsonCsv, app_context, permitted
from facility.render import csv_text, json_text, table
from facility.retention import casefile, evidence, handover, holds
from facility.store import kinds
from facility.store.models import Hold, row_id
from facility.timefmt import hold_status, site_text, utc_text

hold_app = typer.Typer(
    no_args_is_help=True, help="Incident holds: keep what an incident needs past its policy."
)


CASE = typer.Argument(..., help="The case reference, e.g. INC-2026-0042.")
CAMERA = typer.Option(None, "--camera", help="Keep this camera's segments (repeatable).")
DOOR = typer.Option(None, "--door", help="Keep the door events at this door (repeatable).")
BADGE = typer.Option(None, "--badge", help="Keep this badge's loans and door events (repeatable).")
MAC = typer.Option(None, "--mac", help="Keep this device's wifi leases (repeatable).")
VISITOR = typer.Option(
    None,
    "--visitor",
    help="Keep this person's visits, their badge loans and those badges' door events (repeatable).",
)
KIND = typer.Option(
    None, "--kind", help=f"Keep every record of a kind: {kinds.described(kinds.HOLDABLE)}."
)


def register(app: typer.Typer) -> None:
    """Add the hold commands to `app`."""
    app.add_typer(hold_app, name="hold")


def _scopes(
    camera: list[str] | None,
    door: list[str] | None,
    badge: list[str] | None,
    mac: list[str] | None,
    visitor: list[str] | None,
    kind: list[str] | None,
) -> list[holds.Scope]:
    return holds.scopes_from_options(
        cameras=camera or (),
        doors=door or (),
        badges=badge or (),
        macs=mac or (),
        visitors=visitor or (),
        kinds=kind or (),
    )


@hold_app.command("place")
@permitted("hold.place")
def place(
    ctx: typer.Context,
    case: str = CASE,
    reason: str = typer.Option(..., "--reason", help="Why the records are needed."),
    window_from: str = typer.Option(..., "--from", help="Start of the incident window (ISO 8601)."),
    window_to: str = typer.Option(..., "--to", help="End of the incident window (ISO 8601)."),
    camera: list[str] | None = CAMERA,
    door: list[str] | None = DOOR,
    badge: list[str] | None = BADGE,
    mac: list[str] | None = MAC,
    visitor: list[str] | None = VISITOR,
    kind: list[str] | None = KIND,
    review_by: str | None = typer.Option(
        None, "--review-by", help="When the hold should be reviewed (reported once passed)."
    ),
    organisation: bool = typer.Option(
        False,
        "--organisation",
        help="Keep records at every site, not only this one (security for the whole organisation).",
    ),
) -> None:
    """Place an incident hold at this site (or, with --organisation, at every site): what it
    scopes is kept past its policy until released."""
    context = app_context(ctx)
    site_id = None if organisation else row_id(context.site())
    scopes = _scopes(camera, door, badge, mac, visitor, kind)
    start = context.instant(window_from, what="--from")
    end = context.instant(window_to, what="--to")
    review = context.instant(review_by, what="--review-by")
    with context.session() as session:
        hold = holds.place(
            session,
            now=context.now(),
            actor=context.actor,
            case=case,
            reason=reason,
            window_from=start,
            window_to=end,
            scopes=scopes,
            review_by=review,
            grace=context.settings.holds.release_grace,
            site_zone=context.zone(),
            site_id=site_id,
        )
    typer.echo(f"hold {hold.case} placed: {_window(hold, context)}, {_count_scopes(len(scopes))}")
    _preserve(context, hold.case)


@hold_app.command("extend")
@permitted("hold.extend")
def extend(
    ctx: typer.Context,
    case: str = CASE,
    window_to: str | None = typer.Option(None, "--to", help="A later end of the window."),
    camera: list[str] | None = CAMERA,
    door: list[str] | None = DOOR,
    badge: list[str] | None = BADGE,
    mac: list[str] | None = MAC,
    visitor: list[str] | None = VISITOR,
    kind: list[str] | None = KIND,
) -> None:
    """Move a hold's end later and/or add scopes; a hold never shrinks."""
    context = app_context(ctx)
    scopes = _scopes(camera, door, badge, mac, visitor, kind)
    end = context.instant(window_to, what="--to")
    permit_at_hold(context, "hold.extend", case)  # after the arguments: a bad one is named
    with context.session() as session:
        hold, added = holds.extend(
            session,
            now=context.now(),
            actor=context.actor,
            case=case,
            window_to=end,
            scopes=scopes,
            site_zone=context.zone(),
        )
    typer.echo(f"hold {hold.case}: {_window(hold, context)}, {_count_scopes(len(added))} added")
    _preserve(context, hold.case)


def _preserve(context: AppContext, case: str) -> None:
    """Preserve at once the footage the hold keeps at this configuration's site (whose
    recordings root it names), against the recorder's own deletions."""
    try:
        site_id = row_id(context.site())
    except sites.NotChosen:  # no site of its own: each site's daemon preserves at its next scan
        return
    done = evidence.preserve(
        context.engine(),
        context.settings,
        now=context.now(),
        actor=context.actor,
        case=case,
        site_id=site_id,
    )
    if done.done or done.missing or done.refused or done.failed:
        typer.echo(done.summary())
    elif done.skipped and context.settings.camera.root is not None:
        typer.echo(done.summary(), err=True)


@hold_app.command("release")
@permitted("hold.release")
def release(
    ctx: typer.Context,
    case: str = CASE,
    reason: str = typer.Option(..., "--reason", help="Why the records are no longer needed."),
) -> None:
    """Release a hold; it keeps protecting for holds.release_grace, then its records may go."""
    context = app_context(ctx)
    permit_at_hold(context, "hold.release", case)
    with context.session() as session:
        hold = holds.release(
            session,
            now=context.now(),
            actor=context.actor,
            case=case,
            reason=reason,
            site_zone=context.zone(),
        )
    assert hold.released_at is not None  # release sets it
    until = hold.released_at + context.settings.holds.release_grace
    typer.echo(
        f"hold {hold.case} released; it keeps protecting until "
        f"{site_text(until, context.zone())} "
        f"(undo before then: facility hold reinstate {hold.case})"
    )


@hold_app.command("reinstate")
@permitted("hold.reinstate")
def reinstate(ctx: typer.Context, case: str = CASE) -> None:
    """Undo a mistaken release while the hold still protects (within holds.release_grace)."""
    context = app_context(ctx)
    permit_at_hold(context, "hold.reinstate", case)
    with context.session() as session:
        hold = holds.reinstate(
            session,
            now=context.now(),
            actor=context.actor,
            case=case,
            grace=context.settings.holds.release_grace,
            site_zone=context.zone(),
        )
    typer.echo(f"hold {hold.case} reinstated: active again, {_window(hold, context)}")


@hold_app.command("list")
@permitted("hold.list")
def list_(
    ctx: typer.Context,
    show_all: bool = typer.Option(
        False, "--all", help="Include holds released longer ago than the release grace."
    ),
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json, csv."
    ),
) -> None:
    """Holds that protect now (or all with --all), oldest first: of the sites you may see (or
    the one --site names) and the organisation's."""
    context = app_context(ctx)
    now, visible = context.now(), context.visible_sites("hold.list")
    with context.session() as session:
        found = holds.listing(
            session,
            now=now,
            grace=context.settings.holds.release_grace,
            include_inactive=show_all,
            sites=visible,
        )
        codes = _codes(session)
    items = [holds.as_json(hold, scopes, codes) for hold, scopes in found]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(items))
    elif output_format is TableJsonCsv.csv:
        typer.echo(csv_text(_CSV_FIELDS, [_csv_row(item) for item in items]), nl=False)
    elif not items:
        typer.echo("no holds" if show_all else "no hold protects anything now")
    else:
        typer.echo(_table(found, context, now, codes))


@hold_app.command("show")
@permitted("hold.show")
def show(
    ctx: typer.Context,
    case: str = CASE,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """One hold: window, scopes, status, and how many records of each kind it keeps now."""
    context = app_context(ctx)
    permit_at_hold(context, "hold.show", case)
    now, grace = context.now(), context.settings.holds.release_grace
    with context.session() as session:
        hold = holds.get(session, case)
        scopes = holds.scopes_of(session, hold)
        kept = holds.keeps(session, hold, now=now, grace=grace)
        done = holds.history(session, hold)
        codes = _codes(session)
    item = holds.as_json(hold, scopes, codes)
    item.update(released_by=hold.released_by, release_reason=hold.release_reason, keeps=kept)
    item["protects"] = holds.is_active(hold, now=now, grace=grace)
    item["history"] = [
        {"action": action, "at": utc_text(at), "by": actor} for action, at, actor in done
    ]
    if output_format is TableJson.json:
        typer.echo(json_text(item))
        return
    typer.echo(_details(hold, scopes, kept, context, now, done, codes))


@hold_app.command("records")
@permitted("hold.records")
def records(
    ctx: typer.Context,
    case: str = CASE,
    kind: list[str] | None = typer.Option(
        None, "--kind", help=f"Only this kind (repeatable): {kinds.described(kinds.HOLDABLE)}."
    ),
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json, csv."
    ),
) -> None:
    """Every record a hold keeps now, per kind, with its times and camera, door, badge or MAC."""
    context = app_context(ctx)
    permit_at_hold(context, "hold.records", case)
    now = context.now()
    with context.session() as session:
        found = casefile.case_file(
            session,
            case,
            now=now,
            grace=context.settings.holds.release_grace,
            roles=roles_of(context.identity, context.settings.roles),
            kinds=kind,
        )
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(casefile.as_json(found)))
    elif output_format is TableJsonCsv.csv:
        headers, rows = casefile.csv_rows(found)
        typer.echo(csv_text(headers, rows), nl=False)
    else:
        typer.echo(_records_table(found, context))


def _records_table(found: casefile.CaseFile, context: AppContext) -> str:
    zone = context.zone()
    parts = [f"hold {found.hold.case}: {_window(found.hold, context)}"]
    for name, rows in found.records.items():
        kind = kinds.get(name)
        parts.append(f"\n{kind.label}: {found.totals[name]}{_withheld(found, name)}")
        if not rows:
            continue
        headers = ["id", *(header for _, header in kind.listed)]
        columns = ["id", *(column for column, _ in kind.listed)]
        if name == "camera":
            headers.append("evidence")
            columns.append("evidence")
        shown = [[_cell(row[c], zone) for c in columns] for row in rows]
        parts.append(table(headers, shown))
    return "\n".join(parts)


def _withheld(found: casefile.CaseFile, kind: str) -> str:
    hidden = found.withheld.get(kind, 0)
    if not hidden:
        return ""
    return f" (and {hidden} of a restricted person, shown to the privacy role only)"


def _cell(value: Any, zone: tzinfo) -> Any:
    return site_text(value, zone) if isinstance(value, datetime) else value


@hold_app.command("export")
@permitted("hold.export")
def export(
    ctx: typer.Context,
    case: str = CASE,
    output: Path = typer.Option(
        ..., "--output", help="A new (or empty) directory to write the package into."
    ),
) -> None:
    """Write what a hold keeps for hand-over: footage, records as CSV and JSON, a signed manifest."""
    context = app_context(ctx)
    permit_at_hold(context, "hold.export", case)
    written = handover.export_case(
        context.engine(),
        context.settings,
        case=case,
        output=output,
        now=context.now(),
        actor=context.actor,
        roles=roles_of(context.identity, context.settings.roles),
    )
    counts = ", ".join(f"{k} {n}" for k, n in written.counts.items() if n) or "no records"
    typer.echo(
        f"export {written.export_id} of {written.case} written to {written.location}: "
        f"{written.files} files, {written.size} bytes ({counts}); manifest SHA-256 "
        f"{written.manifest_sha256}"
    )
    if written.missing:
        typer.echo(
            f"{len(written.missing)} held segment(s) had no file left, neither the recorder's "
            "nor an evidence copy (listed in the manifest as missing_segments)",
            err=True,
        )
    typer.echo(
        f"after handing it over: facility export handed-over {written.export_id} "
        '--to "..." --reference "..."'
    )


_CSV_FIELDS = [
    "case",
    "reason",
    "from",
    "to",
    "status",
    "placed_by",
    "placed_at",
    "review_by",
    "released_at",
    "scopes",
]


def _csv_row(item: dict[str, Any]) -> list[Any]:
    scopes = " ".join(f"{s['kind']}:{s['selector'] or '*'}" for s in item["scopes"])
    return [*(item[k] for k in _CSV_FIELDS[:-1]), scopes]


def _table(
    found: list[tuple[Hold, list[holds.Scope]]],
    context: AppContext,
    now: datetime,
    codes: dict[int, str] | None = None,
) -> str:
    """The holds as a table; with several sites' `codes`, a column naming each hold's site."""
    zone = context.zone()
    headers = ["case", "from", "to", "status", "placed by", "review by", "scopes", "reason"]
    rows = [
        [
            hold.case,
            site_text(hold.window_from, zone),
            site_text(hold.window_to, zone),
            _status(hold, context, now),
            hold.placed_by,
            _review(hold, now, context),
            ", ".join(_scope_text(s) for s in scopes),
            hold.reason,
        ]
        for hold, scopes in found
    ]
    if codes is not None:
        headers.insert(1, "site")
        for row, (hold, _) in zip(rows, found, strict=True):
            row.insert(1, _site_text(hold, codes))
    return table(headers, rows)


def _codes(session: Session) -> dict[int, str] | None:
    """The sites' codes by id, when there are several to tell apart (a single-site install's
    output stays as it was)."""
    every = sites.listing(session)
    return {row_id(site): site.code for site in every} if len(every) > 1 else None


def _site_text(hold: Hold, codes: dict[int, str]) -> str:
    return "(organisation)" if hold.site_id is None else codes.get(hold.site_id, "?")


def permit_at_hold(context: AppContext, action: str, case: str) -> None:
    """Go on only if the user may perform `action` on this hold: at its site, or for the whole
    organisation when it keeps records at every site (exit 3, audited, otherwise)."""
    with context.reading() as session:
        code = holds.site_code(session, holds.get(session, case))
    context.permit_at(action, command=action.replace(".", " "), site=code)


def _details(
    hold: Hold,
    scopes: list[holds.Scope],
    kept: dict[str, int],
    context: AppContext,
    now: datetime,
    done: list[tuple[str, datetime, str]],
    codes: dict[int, str] | None = None,
) -> str:
    zone = context.zone()
    lines = [
        f"case:       {hold.case}",
        f"reason:     {hold.reason}",
        f"window:     {_window(hold, context)}",
        f"status:     {_status(hold, context, now)}",
        f"placed:     {site_text(hold.placed_at, zone)} by {hold.placed_by}",
    ]
    if codes is not None:
        lines.insert(1, f"site:       {_site_text(hold, codes)}")
    if hold.review_by is not None:
        lines.append(f"review by:  {_review(hold, now, context)}")
    if hold.released_at is not None:
        when = site_text(hold.released_at, zone)
        lines.append(f"released:   {when} by {hold.released_by}: {hold.release_reason}")
    lines.append("scopes:     " + ", ".join(_scope_text(s) for s in scopes))
    lines.append("keeps now:  " + ", ".join(f"{k} {n}" for k, n in kept.items()))
    if done:
        steps = [
            f"{_DONE.get(action, action)} {site_text(at, zone)} by {actor}"
            for action, at, actor in done
        ]
        lines.append("history:    " + "; ".join(steps))
    return "\n".join(lines)


_DONE = {
    "place": "placed",
    "extend": "extended",
    "release": "released",
    "reinstate": "reinstated",
}


def _status(hold: Hold, context: AppContext, now: datetime) -> str:
    grace, zone = context.settings.holds.release_grace, context.zone()
    until = None if hold.released_at is None else hold.released_at + grace
    return hold_status(hold.released_at, until, now=now, site_zone=zone)


def _review(hold: Hold, now: datetime, context: AppContext) -> str:
    if hold.review_by is None:
        return ""
    when = site_text(hold.review_by, context.zone())
    overdue = hold.released_at is None and hold.review_by <= now
    return f"{when} (overdue)" if overdue else when


def _scope_text(scope: holds.Scope) -> str:
    return f"{scope.kind}:{scope.selector}" if scope.selector is not None else f"all {scope.kind}"


def _window(hold: Hold, context: AppContext) -> str:
    zone = context.zone()
    return f"{site_text(hold.window_from, zone)} to {site_text(hold.window_to, zone)}"


def _count_scopes(count: int) -> str:
    return f"{count} scope" + ("" if count == 1 else "s")
