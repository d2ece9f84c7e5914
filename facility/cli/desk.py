"""The reception desk's everyday tools: the visit log, expected visitors, labels, hosts, kiosks.

`visitor list`, `visitor expect` and `visitor label` join the `visitor` commands; `expected`,
`host` and `kiosk` are groups of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from facility import sites
from facility.accounts import kiosks
from facility.accounts.access import roles_of
from facility.cli.context import AppContext, TableJsonCsv, app_context, permitted
from facility.cli.reception import visitor_app
from facility.files import write_private
from facility.names import printable
from facility.render import csv_text, json_text, table
from facility.store.models import ExpectedVisit, row_id
from facility.timefmt import site_text, utc_text
from facility.visitors import expected, history, hosts, labels, reception

expected_app = typer.Typer(no_args_is_help=True, help="Visitors expected on a day.")
host_app = typer.Typer(no_args_is_help=True, help="The hosts directory: whom to tell, and how.")
kiosk_app = typer.Typer(no_args_is_help=True, help="Tablets where visitors sign themselves in.")

FORMAT = typer.Option(TableJsonCsv.table, "--format", help="table, json or csv.")
LOG_FIELDS = ["visit", "name", "company", "host", "badges", "signed in", "signed out"]
EXPECTED_FIELDS = ["id", "day", "name", "company", "host", "badge", "arrived"]


def register(app: typer.Typer) -> None:
    """Add the desk's groups to `app` (the `visitor` commands join that group on import)."""
    app.add_typer(expected_app, name="expected")
    app.add_typer(host_app, name="host")
    app.add_typer(kiosk_app, name="kiosk")


# --- the visit log -------------------------------------------------------------------------------


@visitor_app.command("list")
@permitted("visitor.list")
def list_visits(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, "--since", help="From this time (ISO 8601, 09:00) or this long ago (7d). Default 7d."
    ),
    until: str | None = typer.Option(None, "--until", help="Signed in up to this time."),
    name: str | None = typer.Option(None, "--name", help="Words of the visitor's name."),
    host: str | None = typer.Option(None, "--host", help="Words of the host's name."),
    company: str | None = typer.Option(None, "--company", help="Words of the company."),
    open_only: bool = typer.Option(False, "--open", help="Only visitors still signed in."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many."),
    output_format: TableJsonCsv = FORMAT,
) -> None:
    """Search the visits that policy still keeps, newest first."""
    context = app_context(ctx)
    now = context.now()
    filters = history.Filters(
        since=context.since(since),
        until=context.instant(until, what="--until"),
        name=name,
        host=host,
        company=company,
        open_only=open_only,
    )
    roles = roles_of(context.identity, context.settings.roles)
    site = context.site()
    with context.session() as session:
        found = history.search(session, filters, now=now, roles=roles, site=site, limit=limit)
    if output_format is TableJsonCsv.json:
        body = {
            "generated_at": utc_text(now),
            "count": found.total,
            "visits": [row.as_json() for row in found.rows],
        }
        typer.echo(json_text(body))
        return
    if output_format is TableJsonCsv.csv:
        fields = ["visit_id", "name", "company", "host", "badges", "signed_in_at", "signed_out_at"]
        rows = [
            [
                r.visit_id,
                r.name,
                r.company,
                r.host,
                " ".join(r.badges),
                r.signed_in_at,
                r.signed_out_at,
            ]
            for r in found.rows
        ]
        typer.echo(csv_text(fields, rows), nl=False)
        return
    zone = context.zone()
    if not found.rows:
        typer.echo("no visits match (only what the visits' policy still keeps is searched)")
        return
    rows = [
        [
            r.visit_id,
            r.name,
            r.company,
            r.host,
            ", ".join(r.badges),
            site_text(r.signed_in_at, zone),
            site_text(r.signed_out_at, zone) if r.signed_out_at else "on site",
        ]
        for r in found.rows
    ]
    typer.echo(table(LOG_FIELDS, rows))
    shown = f"{len(found.rows)} of {found.total}" if len(found.rows) < found.total else found.total
    typer.echo(
        f"{shown} visit(s); visits signed out before {site_text(found.kept_since, zone)} are past their policy"
    )


# --- expected visitors ---------------------------------------------------------------------------


@visitor_app.command("expect")
@permitted("visitor.expect")
def expect(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The visitor's name."),
    host: str = typer.Option(..., "--host", help="Whom they come to see."),
    on: str = typer.Option(..., "--on", help="The day: YYYY-MM-DD, today or tomorrow."),
    company: str | None = typer.Option(None, "--company"),
    badge: str | None = typer.Option(None, "--badge", help="Lend this badge when they arrive."),
) -> None:
    """Announce a visitor for a day; they are signed in with `expected arrive ID`."""
    context = app_context(ctx)
    now, zone, site = context.now(), context.zone(), context.site()
    day = expected.parse_day(on, today=expected.site_day(now, zone))
    with context.session() as session:
        row = expected.expect(
            session,
            now=now,
            actor=context.actor,
            name=name,
            host=host,
            on=day,
            company=company,
            badge=badge,
            site_zone=zone,
            site_id=row_id(site),
        )
        known = hosts.find(session, row.host, site_id=row.site_id) is not None
    told = "" if known else f"; {printable(row.host)} is not in the hosts directory: nobody is told"
    typer.echo(
        f"expected visit {row.id}: {printable(row.name)} on {row.expected_on.isoformat()} "
        f"for {printable(row.host)}{told}"
    )


@expected_app.command("list")
@permitted("expected.list")
def expected_list(
    ctx: typer.Context,
    on: str | None = typer.Option(None, "--on", help="Only this day (default: today on)."),
    waiting: bool = typer.Option(False, "--waiting", help="Only those not arrived yet."),
    output_format: TableJsonCsv = FORMAT,
) -> None:
    """The visitors expected today and later, and which of them arrived."""
    context = app_context(ctx)
    zone, site = context.zone(), context.site()
    today = expected.site_day(context.now(), zone)
    day = expected.parse_day(on, today=today) if on else None
    with context.session() as session:
        rows = expected.listing(
            session, first=day or today, last=day, waiting_only=waiting, site_id=row_id(site)
        )
    if output_format is TableJsonCsv.json:
        typer.echo(json_text([_expected_json(r) for r in rows]))
        return
    if output_format is TableJsonCsv.csv:
        fields = ["id", "expected_on", "name", "company", "host", "badge", "arrived_at", "visit_id"]
        lines = [[j[f] for f in fields] for j in map(_expected_json, rows)]
        typer.echo(csv_text(fields, lines), nl=False)
        return
    if not rows:
        typer.echo("nobody is expected" + (f" on {day.isoformat()}" if day else " from today on"))
        return
    lines = [
        [
            r.id,
            r.expected_on.isoformat(),
            r.name,
            r.company,
            r.host,
            r.badge,
            f"{site_text(r.arrived_at, zone)} (visit {r.visit_id})" if r.arrived_at else "",
        ]
        for r in rows
    ]
    typer.echo(table(EXPECTED_FIELDS, lines))


def _expected_json(row: ExpectedVisit) -> dict[str, Any]:
    return {
        "id": row.id,
        "expected_on": row.expected_on.isoformat(),
        "name": row.name,
        "company": row.company,
        "host": row.host,
        "badge": row.badge,
        "arrived_at": utc_text(row.arrived_at),
        "visit_id": row.visit_id,
    }


@expected_app.command("cancel")
@permitted("expected.cancel")
def expected_cancel(
    ctx: typer.Context, expected_id: int = typer.Argument(..., metavar="ID")
) -> None:
    """Cancel an expected visit: it is deleted, nothing of it is kept."""
    context = app_context(ctx)
    site = context.site()
    with context.session() as session:
        row = expected.cancel(session, expected_id, site_id=row_id(site))
    typer.echo(f"expected visit {row.id} ({printable(row.name)}) cancelled and deleted")


@expected_app.command("arrive")
@permitted("visitor.sign-in")
def expected_arrive(
    ctx: typer.Context,
    expected_id: int = typer.Argument(..., metavar="ID"),
    badge: str | None = typer.Option(None, "--badge", help="Lend this badge (default: its own)."),
) -> None:
    """Sign an expected visitor in, with the company, host and badge given when announced."""
    context = app_context(ctx)
    site, zone = context.site(), context.zone()
    with context.session() as session:
        visit = reception.sign_in_expected(
            session,
            now=context.now(),
            expected_id=expected_id,
            badge=badge,
            skew=context.settings.limits.clock_skew,
            site_zone=zone,
            site_id=row_id(site),
        )
        told = hosts.told(session, visit.host, site_id=visit.site_id)
    when = site_text(visit.signed_in_at, zone)
    typer.echo(f"visit {visit.id}: {printable(visit.name)} signed in at {when}{told}")


# --- labels --------------------------------------------------------------------------------------


@visitor_app.command("label")
@permitted("visitor.label")
def label(
    ctx: typer.Context,
    visit_id: int = typer.Argument(..., metavar="ID", help="The visit's number."),
    output: Path | None = typer.Option(
        None, "--output", help="Write the label page here (mode 0600), e.g. label.html."
    ),
    size: str = typer.Option(
        labels.DEFAULT_SIZE, "--size", help=f"Label stock: {', '.join(labels.SIZES)}."
    ),
) -> None:
    """A printable badge label (name, company, host, date, badge) as one HTML page."""
    context = app_context(ctx)
    stock = labels.size_of(size)
    site, zone = context.site(), context.zone()
    with context.session() as session:
        found = labels.for_visit(session, visit_id, site_zone=zone, site_id=row_id(site))
    page = labels.render(found, stock)
    if output is None:
        typer.echo(page, nl=False)
        return
    write_private(output, page)
    typer.echo(
        f"label of visit {visit_id} ({stock.description}) written to {output}; print it at 100 %"
    )


# --- hosts ---------------------------------------------------------------------------------------


@host_app.command("add")
@permitted("host.add")
def host_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The host's name, as visitors and reception give it."),
    email: str | None = typer.Option(None, "--email", help="Tell them by e-mail here."),
    webhook: str | None = typer.Option(None, "--webhook", help="Tell them by a POST to this URL."),
) -> None:
    """Add a host to this site's directory, or change how an existing one is told."""
    context = app_context(ctx)
    site = context.site()
    with context.session() as session:
        host, created = hosts.add(
            session,
            now=context.now(),
            name=name,
            email=email,
            webhook=webhook,
            site_id=row_id(site),
        )
        ways = hosts.ways(host)
        shown = printable(host.name)
    verb = "added" if created else "changed"
    typer.echo(f"host {shown} {verb}: told by {' and '.join(ways)}{_unconfigured(context, ways)}")


def _unconfigured(context: AppContext, ways: list[str]) -> str:
    notify = context.settings.notify
    missing = [
        setting
        for way, setting, there in (
            ("e-mail", "notify.smtp_host", notify.smtp_host),
            ("webhook", "notify.webhook_secret_file", notify.webhook_secret_file),
        )
        if way in ways and there is None
    ]
    return f" (set {' and '.join(missing)} to send)" if missing else ""


@host_app.command("list")
@permitted("host.list")
def host_list(ctx: typer.Context, output_format: TableJsonCsv = FORMAT) -> None:
    """This site's hosts directory."""
    context = app_context(ctx)
    site, zone = context.site(), context.zone()
    with context.session() as session:
        found = hosts.listing(session, site_id=row_id(site))
        rows: list[dict[str, Any]] = [
            {
                "name": h.name,
                "email": h.email,
                "webhook": h.webhook,
                "added_at": h.added_at,
                "last_used": h.retain_from,
            }
            for h in found
        ]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(rows))
        return
    fields = ["name", "email", "webhook", "added_at", "last_used"]
    if output_format is TableJsonCsv.csv:
        typer.echo(csv_text(fields, [[r[f] for f in fields] for r in rows]), nl=False)
        return
    if not rows:
        typer.echo("the hosts directory is empty (facility host add NAME --email ...)")
        return
    lines = [
        [
            r["name"],
            r["email"],
            r["webhook"],
            site_text(r["added_at"], zone),
            site_text(r["last_used"], zone),
        ]
        for r in rows
    ]
    typer.echo(table(["name", "e-mail", "webhook", "added", "last used"], lines))


@host_app.command("remove")
@permitted("host.remove")
def host_remove(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove a host from this site's directory, with what still waits to be sent to them."""
    context = app_context(ctx)
    site = context.site()
    with context.session() as session:
        host = hosts.remove(session, name, site_id=row_id(site))
    typer.echo(f"host {printable(host.name)} removed")


# --- kiosks --------------------------------------------------------------------------------------


@kiosk_app.command("add")
@permitted("kiosk.add")
def kiosk_add(ctx: typer.Context, name: str = typer.Argument(..., help="e.g. lobby")) -> None:
    """Make a kiosk and print its one-time pairing path (open it on the tablet)."""
    context = app_context(ctx)
    site = context.site()  # the office the tablet stands in: it signs visitors in there
    with context.session() as session:
        kiosk, token = kiosks.add(
            session, now=context.now(), actor=context.actor, name=name, site_id=row_id(site)
        )
        until = site_text(kiosk.pairing_expires_at, context.zone())
    typer.echo(
        f"kiosk {printable(kiosk.name)} at {site.code} ({printable(site.name)}): open this path "
        f"on the tablet once, before {until}:"
    )
    typer.echo(f"{kiosks.PAIR_PATH}{token}")


@kiosk_app.command("list")
@permitted("kiosk.list")
def kiosk_list(ctx: typer.Context, output_format: TableJsonCsv = FORMAT) -> None:
    """The kiosks: waiting to be paired, paired, or revoked."""
    context = app_context(ctx)
    zone = context.zone()
    with context.session() as session:
        found = kiosks.listing(session, context.visible_sites("kiosk.list"))
        codes = {s.id: s.code for s in sites.listing(session)}
        rows: list[dict[str, Any]] = [
            {
                "name": k.name,
                "site": codes.get(k.site_id, str(k.site_id)),
                "state": "revoked" if k.revoked_at else "paired" if k.paired_at else "waiting",
                "added_at": k.added_at,
                "added_by": k.added_by,
                "paired_at": k.paired_at,
                "revoked_at": k.revoked_at,
            }
            for k in found
        ]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(rows))
        return
    fields = ["name", "site", "state", "added_at", "added_by", "paired_at", "revoked_at"]
    if output_format is TableJsonCsv.csv:
        typer.echo(csv_text(fields, [[r[f] for f in fields] for r in rows]), nl=False)
        return
    if not rows:
        typer.echo("no kiosks (facility kiosk add NAME)")
        return
    lines = [
        [
            r["name"],
            r["site"],
            r["state"],
            site_text(r["added_at"], zone),
            r["added_by"],
            site_text(r["paired_at"], zone),
            site_text(r["revoked_at"], zone),
        ]
        for r in rows
    ]
    typer.echo(table(["name", "site", "state", "added", "by", "paired", "revoked"], lines))


@kiosk_app.command("revoke")
@permitted("kiosk.revoke")
def kiosk_revoke(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """End a kiosk: the tablet stops working at its next request."""
    context = app_context(ctx)
    with context.reading() as session:
        found = kiosks.find(session, name)
        code = None if found is None else sites.by_id(session, found.site_id).code
    if code is not None:  # an admin of the kiosk's office (none: the command says there is none)
        context.permit_at("kiosk.revoke", command="kiosk revoke", site=code)
    with context.session() as session:
        kiosk = kiosks.revoke(session, now=context.now(), actor=context.actor, name=name)
    typer.echo(f"kiosk {printable(kiosk.name)} revoked")
