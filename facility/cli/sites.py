"""Site commands: `site add | list | show | set` (adding and changing a site: admin, audited)."""

from __future__ import annotations

import typer

from facility import sites
from facility.cli.context import AppContext, TableJson, app_context, permitted
from facility.render import json_text, table
from facility.retention import policies
from facility.store.models import Site
from facility.timefmt import site_text
from facility.timeutil import format_duration

site_app = typer.Typer(no_args_is_help=True, help="Sites: the offices, each with its own records.")

CODE = typer.Argument(..., help="The site's code: lower case letters, digits and -, e.g. ams.")


def register(app: typer.Typer) -> None:
    """Add the site commands to `app`."""
    app.add_typer(site_app, name="site")


@site_app.command("add")
@permitted("site.add")
def add(
    ctx: typer.Context,
    code: str = CODE,
    name: str = typer.Option(..., "--name", help="What people call it, e.g. Amsterdam office."),
    timezone: str = typer.Option(
        ..., "--timezone", help="Its IANA time zone, e.g. Europe/Brussels."
    ),
    country: str = typer.Option(
        ...,
        "--country",
        help="Its country, ISO 3166-1 alpha-2 (NL, BE): which legal ceilings apply.",
    ),
) -> None:
    """Add a site; its records, roll calls, holds and policies are its own from then on."""
    context = app_context(ctx)
    with context.session() as session:
        site = sites.add(
            session,
            code=code,
            name=name,
            timezone=timezone,
            country=country,
            now=context.now(),
            actor=context.actor,
        )
    typer.echo(
        f"site {site.code} added: {site.name}, {site.timezone}, {site.country}; give its daemon "
        f'and terminals `site = "{site.code}"`'
    )


@site_app.command("list")
@permitted("site.list")
def list_(
    ctx: typer.Context,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """Every site: code, name, time zone, country."""
    context = app_context(ctx)
    with context.session() as session:
        found = sites.listing(session)
    if output_format is TableJson.json:
        typer.echo(json_text([sites.as_json(s) for s in found]))
        return
    rows = [[s.code, s.name, sites.zone_name(s, context.settings), s.country] for s in found]
    typer.echo(table(["code", "name", "time zone", "country"], rows))


@site_app.command("show")
@permitted("site.show")
def show(
    ctx: typer.Context,
    code: str = CODE,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """One site and the retention in force there (its own, or the organisation's)."""
    context = app_context(ctx)
    with context.session() as session:
        site = sites.get(session, code, what="CODE")
        effective = policies.at_site(session, site, now=context.now())
    if output_format is TableJson.json:
        shown = sites.as_json(site)
        shown["policies"] = [p.as_json() for p in effective]
        typer.echo(json_text(shown))
        return
    typer.echo(_details(site, context))
    rows = [
        [
            p.kind,
            format_duration(p.duration),
            p.source,
            "" if p.ceiling is None else format_duration(p.ceiling),
        ]
        for p in effective
    ]
    typer.echo(table(["kind", "kept", "set by", "legal ceiling"], rows))


@site_app.command("set")
@permitted("site.set")
def set_(
    ctx: typer.Context,
    code: str = CODE,
    name: str | None = typer.Option(None, "--name", help="A new name."),
    timezone: str | None = typer.Option(None, "--timezone", help="A new IANA time zone."),
    country: str | None = typer.Option(None, "--country", help="A new country (ISO 3166-1)."),
) -> None:
    """Change a site's name, time zone or country (audited); its code stays."""
    context = app_context(ctx)
    with context.session() as session:
        site, changed = sites.change(
            session,
            code,
            name=name,
            timezone=timezone,
            country=country,
            now=context.now(),
            actor=context.actor,
        )
        # A new country may bring a lower ceiling: say which policies it cuts short.
        over = policies.over_ceilings(session, site) if "country" in changed else []
    if not changed:
        typer.echo(f"site {site.code}: nothing changed")
        return
    said = ", ".join(f"{field} {old} -> {new}" for field, (old, new) in changed.items())
    typer.echo(f"site {site.code}: {said}")
    for line in over:
        typer.echo(f"facility: warning: {line}", err=True)


def _details(site: Site, context: AppContext) -> str:
    zone = sites.zone_of(site, context.settings)
    return "\n".join(
        [
            f"site:       {site.code}",
            f"name:       {site.name}",
            f"time zone:  {sites.zone_name(site, context.settings)}",
            f"country:    {site.country}",
            f"added:      {site_text(site.created_at, zone)} by {site.created_by}",
        ]
    )
