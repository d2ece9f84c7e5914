"""Reception commands: visitors, badges, a typed-in door event, and who is on site now."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import typer

from facility.cli.context import AppContext, Format, app_context, permitted
from facility.errors import InputError
from facility.files import write_private
from facility.names import printable
from facility.sources import ingest
from facility.sources.records import DoorEventIn
from facility.store.models import row_id
from facility.timefmt import site_midnight, site_text
from facility.timeutil import format_duration
from facility.visitors import corrections, hosts, onsite, reception

visitor_app = typer.Typer(no_args_is_help=True, help="Sign visitors in and out.")
badge_app = typer.Typer(no_args_is_help=True, help="Lend and take back visitor badges.")
door_app = typer.Typer(no_args_is_help=True, help="Record door events by hand or from a script.")

AT = typer.Option(
    None,
    "--at",
    help="When it happened (ISO 8601, site time without an offset; 09:00 is today). Default: now.",
)
OLD_OK = typer.Option(
    False, "--yes", help="Record an --at older than the open-record limit without asking."
)


def register(app: typer.Typer) -> None:
    """Add the reception commands to `app`."""
    app.add_typer(visitor_app, name="visitor")
    app.add_typer(badge_app, name="badge")
    app.add_typer(door_app, name="door")
    app.command("onsite")(show_onsite)


@visitor_app.command("sign-in")
@permitted("visitor.sign-in")
def sign_in(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The visitor's name."),
    company: str | None = typer.Option(None, "--company"),
    host: str | None = typer.Option(None, "--host", help="Who they visit."),
    badge: str | None = typer.Option(None, "--badge", help="Lend this badge now."),
    at: str | None = AT,
    yes: bool = OLD_OK,
) -> None:
    """Sign a visitor in (and lend a badge)."""
    context = app_context(ctx)
    limits = context.settings.limits
    when = context.instant(at)
    if badge and limits.max_badge_out < limits.max_visit:
        limit = ("limits.max_badge_out", limits.max_badge_out)
        _recent_or_confirmed(
            context, when, limit, "its badge would be marked lost at once", yes=yes
        )
    else:
        limit = ("limits.max_visit", limits.max_visit)
        _recent_or_confirmed(context, when, limit, "the visit would be closed at once", yes=yes)
    with context.session() as session:
        visit = reception.sign_in(
            session,
            now=context.now(),
            name=name,
            company=company,
            host=host,
            badge=badge,
            at=when,
            skew=context.settings.limits.clock_skew,
            site_zone=context.zone(),
            site_id=row_id(context.site()),
        )
        told = hosts.told(session, visit.host, site_id=visit.site_id)
    suffix = f" with badge {badge}" if badge else ""
    signed_in = site_text(visit.signed_in_at, context.zone())
    typer.echo(
        f"visit {visit.id}: {printable(visit.name)} signed in at {signed_in}{printable(suffix)}{told}"
    )


@visitor_app.command("sign-out")
@permitted("visitor.sign-out")
def sign_out(
    ctx: typer.Context,
    visit_id: int | None = typer.Argument(None, metavar="[ID]", help="The visit's number."),
    name: str | None = typer.Option(
        None, "--name", help="The visitor's name, if only one is on site."
    ),
    badge: str | None = typer.Option(None, "--badge", help="The badge the visitor holds."),
    badge_kept: bool = typer.Option(
        False, "--badge-kept", help="The visitor keeps the badge for now."
    ),
    at: str | None = AT,
) -> None:
    """Sign a visitor out by visit ID, name or badge; their badge comes back unless --badge-kept."""
    if sum(x is not None for x in (visit_id, name, badge)) != 1:
        raise InputError("visitor sign-out: give exactly one of ID, --name or --badge")
    context = app_context(ctx)
    site = context.site()
    with context.session() as session:
        visit = reception.find_open_visit(
            session, visit_id=visit_id, name=name, badge=badge, site_id=row_id(site)
        )
        held = onsite.badges_of(session, row_id(visit))
        reception.sign_out(
            session,
            visit,
            now=context.now(),
            at=context.instant(at),
            badge_kept=badge_kept,
            skew=context.settings.limits.clock_skew,
            site_zone=context.zone(),
        )
    when = site_text(visit.signed_out_at, context.zone())
    back = onsite.badges_back(held, kept=badge_kept)
    typer.echo(f"visit {visit.id}: {printable(visit.name)} signed out at {when}{back}")


@visitor_app.command("edit")
@permitted("visitor.edit")
def edit(
    ctx: typer.Context,
    visit_id: int = typer.Argument(..., metavar="ID", help="The visit's number (today's)."),
    name: str | None = typer.Option(None, "--name", help="The corrected name."),
    company: str | None = typer.Option(
        None, "--company", help="The corrected company ('' clears)."
    ),
    host: str | None = typer.Option(None, "--host", help="The corrected host ('' clears)."),
    signed_in: str | None = typer.Option(None, "--signed-in", help="The true sign-in time."),
    signed_out: str | None = typer.Option(
        None, "--signed-out", help="The true sign-out time: the retention clock moves with it."
    ),
) -> None:
    """Correct one of today's visits; older ones are the privacy officer's (subject rectify)."""
    context = app_context(ctx)
    settings = context.settings
    change = corrections.Edit(
        name=name,
        company=company,
        host=host,
        signed_in_at=context.instant(signed_in, what="--signed-in"),
        signed_out_at=context.instant(signed_out, what="--signed-out"),
    )
    now, site, zone = context.now(), context.site(), context.zone()
    with context.session() as session:
        visit = corrections.todays_visit(
            session, visit_id, since=site_midnight(now, zone), site_id=row_id(site)
        )
        done = corrections.correct(
            session,
            visit,
            change,
            now=now,
            actor=context.actor,
            by="reception",
            skew=settings.limits.clock_skew,
            site_zone=zone,
        )
    typer.echo(done.describe(zone))


@badge_app.command("issue")
@permitted("badge.issue")
def issue(
    ctx: typer.Context,
    badge: str = typer.Argument(..., help="The badge number."),
    visit: int = typer.Option(..., "--visit", help="The visit that gets the badge."),
    at: str | None = AT,
    yes: bool = OLD_OK,
) -> None:
    """Lend a badge to a visitor who is signed in."""
    context = app_context(ctx)
    when = context.instant(at)
    limit = ("limits.max_badge_out", context.settings.limits.max_badge_out)
    _recent_or_confirmed(context, when, limit, "the loan would be marked lost at once", yes=yes)
    with context.session() as session:
        loan = reception.issue_badge(
            session,
            now=context.now(),
            badge=badge,
            visit_id=visit,
            at=when,
            skew=context.settings.limits.clock_skew,
            site_zone=context.zone(),
            site_id=row_id(context.site()),
        )
    typer.echo(f"badge {loan.badge} issued to visit {loan.visit_id}")


@badge_app.command("return")
@permitted("badge.return")
def give_back(
    ctx: typer.Context,
    badge: str = typer.Argument(..., help="The badge number."),
    at: str | None = AT,
) -> None:
    """Take a badge back."""
    context = app_context(ctx)
    with context.session() as session:
        loan = reception.return_badge(
            session,
            now=context.now(),
            badge=badge,
            at=context.instant(at),
            skew=context.settings.limits.clock_skew,
            site_zone=context.zone(),
            site_id=row_id(context.site()),
        )
    typer.echo(f"badge {loan.badge} returned (visit {loan.visit_id})")


@door_app.command("event")
@permitted("door.event")
def door_event(
    ctx: typer.Context,
    door: str = typer.Option(..., "--door", help="The door's id."),
    badge: str = typer.Option(..., "--badge", help="The badge presented."),
    denied: bool = typer.Option(False, "--denied", help="Access was refused."),
    event_id: str | None = typer.Option(
        None, "--event-id", help="Unique id; the same id is stored once."
    ),
    at: str | None = AT,
) -> None:
    """Record one door event (typed in or sent by a script)."""
    context = app_context(ctx)
    now = context.now()
    settings = context.settings
    skew = settings.limits.clock_skew
    site, zone = context.site(), context.zone()
    when = reception.check_not_future(context.instant(at) or now, now, skew=skew, site_zone=zone)
    door, badge = door.strip(), badge.strip()
    if not door or not badge:
        raise InputError("door event: --door and --badge must not be empty")
    # Without an id, the event's content is its identity: typing it twice stores it once.
    key = event_id or f"cli:{door}:{badge}:{when.isoformat()}"
    event = DoorEventIn(
        event_id=key, door=door, badge=badge, at=when, granted=not denied, source="cli"
    )
    intake = ingest.Intake(now, settings.limits, zone, row_id(site))
    with context.session() as session:
        stored = ingest.store_door_events(session, [event], intake)
    typer.echo(f"door event {key}: {'stored' if stored else 'already stored'}")


@permitted("onsite.view")
def show_onsite(
    ctx: typer.Context,
    output_format: Format = typer.Option(
        Format.table, "--format", help="table, json, csv or html."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Write to this file (mode 0600) instead of stdout."
    ),
) -> None:
    """Who is on site now, with the door where each badge was last presented."""
    context = app_context(ctx)
    site = context.site()
    # A reader: the evacuation list never waits for a writer (a purge, an import) to finish.
    with context.reading() as session:
        listing = onsite.on_site(
            session, now=context.now(), site_id=row_id(site), site_name=site.name
        )
    text = onsite.render(listing, output_format.value, context.zone_name())
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        write_private(output, text)
        typer.echo(f"{len(listing.people)} on site, written to {output}")


def _recent_or_confirmed(
    context: AppContext,
    at: datetime | None,
    limit: tuple[str, timedelta],
    consequence: str,
    *,
    yes: bool,
) -> None:
    """Go on if `at` is within the open-record `limit` (setting, duration) of now, or confirmed.

    A mistyped year would otherwise be accepted, closed by the open-record limit at the next
    auto-close and purged soon after: the record of the visit quietly lost.
    """
    setting, duration = limit
    if at is None or yes or at >= context.now() - duration:
        return
    shown = site_text(at, context.zone())
    problem = (
        f"--at: {shown} is further back than the open-record limit "
        f"({setting} = {format_duration(duration)}): {consequence}"
    )
    if not _interactive():
        raise InputError(f"{problem}; check the date, or pass --yes to record it anyway")
    typer.echo(problem, err=True)
    if not typer.confirm("Record it anyway?", default=False):
        raise InputError("--at: not confirmed; nothing was recorded")


def _interactive() -> bool:
    """Whether a person can answer a question on stdin (the seam tests replace)."""
    return sys.stdin.isatty()
