"""Policy commands: `policy show`, `policy set` and `policy sync` (both ask before they shorten),
and the legal ceilings: `policy ceiling show | set`.

The database's policy is the one in force (every daemon and command agrees on it). The
configuration's `[retention]` only seeds it at `facility init`; afterwards every command warns
when the two differ, and `policy sync` applies the configuration, audited like `policy set`.
Without `--site` these work on the organisation's policies, which every site without its own
follows; with it, on that site's own. A policy above a legal ceiling that binds it is refused.

A shortening waits `policy.shortening_delay` before it is in force (`retention.policies`); `policy
show` says which are waiting, setting the old value again takes one back, and `policy apply`
(admin) puts one in force at once.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, tzinfo
from typing import Any

import typer

from facility import sites
from facility.cli.context import AppContext, TableJson, app_context, permitted
from facility.errors import InputError
from facility.render import json_text, table
from facility.retention import policies
from facility.store import kinds
from facility.store.models import Policy, Site
from facility.timefmt import site_text, utc_text
from facility.timeutil import format_duration, parse_duration

policy_app = typer.Typer(no_args_is_help=True, help="Show and change retention policies.")
ceiling_app = typer.Typer(
    no_args_is_help=True, help="Legal ceilings: the longest a country lets a kind be kept."
)


def register(app: typer.Typer) -> None:
    """Add the policy commands to `app`."""
    app.add_typer(policy_app, name="policy")
    policy_app.add_typer(ceiling_app, name="ceiling")


@policy_app.command("show")
@permitted("policy.show")
def show(
    ctx: typer.Context,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """The retention policy of every kind, who last changed it and when; per site, what is in
    force there and where it comes from (--site: that site's only)."""
    context = app_context(ctx)
    site = context.narrowed()
    now = context.now()
    with context.session() as session:
        if site is not None:
            effective = policies.at_site(session, site, now=now)
        else:
            ordered = policies.rows(session)
            every = sites.listing(session)
            per_site = {s.code: policies.at_site(session, s, now=now) for s in every}
    if site is not None:
        _show_site(site, effective, context, output_format)
        return
    if output_format is TableJson.json:
        typer.echo(json_text([_as_json(p, now) for p in ordered]))
        return
    zone = context.zone()
    headers = ["kind", "duration", "changed by", "changed at", "shortening waiting"]
    body = [
        [
            p.kind,
            format_duration(policies.effective(p, now=now)),
            p.changed_by,
            site_text(p.changed_at, zone),
            _waiting(policies.pending_of(p, now=now), zone),
        ]
        for p in ordered
    ]
    typer.echo(table(headers, body))
    differs = any(p.source == "site" or p.capped for found in per_site.values() for p in found)
    if len(per_site) > 1 or differs:
        typer.echo("\nin force per site (* its own policy, ! cut short by the legal ceiling):")
        codes = list(per_site)
        rows = [[kind, *(_cell(per_site[code], kind) for code in codes)] for kind in kinds.NAMES]
        typer.echo(table(["kind", *codes], rows))


def _cell(effective: list[policies.InForce], kind: str) -> str:
    found = next((p for p in effective if p.kind == kind), None)
    if found is None:
        return ""
    marks = ("*" if found.source == "site" else "") + ("!" if found.capped else "")
    return format_duration(found.duration) + marks


def _show_site(
    site: Site, effective: list[policies.InForce], context: AppContext, output_format: TableJson
) -> None:
    if output_format is TableJson.json:
        typer.echo(json_text([p.as_json() | {"site": site.code} for p in effective]))
        return
    zone = sites.zone_of(site, context.settings)
    rows = [
        [
            p.kind,
            format_duration(p.duration),
            p.source + (" (cut short by the ceiling)" if p.capped else ""),
            p.changed_by,
            site_text(p.changed_at, zone),
            "" if p.ceiling is None else f"{format_duration(p.ceiling)} ({site.country})",
            _waiting(p.waiting, zone),
        ]
        for p in effective
    ]
    headers = [
        "kind",
        "duration",
        "from",
        "changed by",
        "changed at",
        "legal ceiling",
        "shortening waiting",
    ]
    typer.echo(f"site {site.code} ({site.name}), {site.country}")
    typer.echo(table(headers, rows))


@policy_app.command("set")
@permitted("policy.set")
def set_(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help=f"One of {kinds.described(kinds.NAMES)}."),
    duration: str = typer.Argument(..., help="How long to keep it: 3d, 12h, 90m or P14D."),
    reason: str = typer.Option(..., "--reason", help="Why the policy changes (audited)."),
    yes: bool = typer.Option(False, "--yes", help="Shorten without asking."),
) -> None:
    """Change how long a kind is kept (the organisation's, or with --site that site's own); a
    shortening waits policy.shortening_delay (24h). Above a legal ceiling that binds it: refused."""
    context = app_context(ctx)
    site = context.narrowed()
    policies.check_kind(kind)
    new = policies.check_duration(parse_duration(duration, what="DURATION"))
    now = context.now()
    with context.session() as session:
        policies.check_ceiling(session, kind, new, site)  # before asking anything
        old = policies.policy_of(session, kind, site, now=now)
        expiring = policies.expiring_if(session, kind, new, now=now, site=site)
    # The question is asked outside any transaction: a person thinking must not hold the lock.
    if new < old:
        _confirm_shortening(kind, old, new, expiring, yes=yes)
    with context.session() as session:
        change = policies.set_policy(
            session,
            kind,
            new,
            now=now,
            actor=context.actor,
            reason=reason,
            delay=context.settings.policy.shortening_delay,
            site=site,
        )
        if change.old != old:  # someone else changed it while we asked: roll back, ask again
            raise InputError(
                f"KIND: the {kind} policy changed to {format_duration(change.old)} meanwhile; "
                "run the command again"
            )
    _report(change, context, site)


@policy_app.command("apply")
@permitted("policy.apply")
def apply(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help=f"One of {kinds.described(kinds.NAMES)}."),
    reason: str = typer.Option(..., "--reason", help="Why it cannot wait (audited)."),
) -> None:
    """Put a waiting shortening in force now, without its delay (admin)."""
    context = app_context(ctx)
    site = context.narrowed()
    with context.session() as session:
        change = policies.apply_now(
            session, kind, now=context.now(), actor=context.actor, reason=reason, site=site
        )
    what = change.kind if site is None else f"{change.kind} at {site.code}"
    typer.echo(
        f"{what}: {format_duration(change.old)} -> {format_duration(change.new)} in force "
        "now (takes effect at the next purge)"
    )


@policy_app.command("sync")
@permitted("policy.sync")
def sync(
    ctx: typer.Context,
    reason: str | None = typer.Option(
        None, "--reason", help="Why (audited; default: applied from the configuration file)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Shorten without asking."),
) -> None:
    """Apply the configuration's [retention] to the database (the organisation's policies, or with
    --site that site's own); asks before it shortens."""
    context = app_context(ctx)
    context.check_drift = False
    site = context.narrowed()
    configured = {
        kind: policies.check_duration(duration)
        for kind, duration in context.settings.retention_configured.items()
    }
    source = str(context.config) if context.config else "the environment"
    if not configured:
        typer.echo(f"{source} sets no [retention]: nothing to apply; the database keeps its policy")
        return
    now = context.now()
    with context.session() as session:
        planned = policies.drift(session, configured, site)
        for change in planned:
            policies.check_ceiling(session, change.kind, change.new, site)
        expiring = {
            c.kind: policies.expiring_if(session, c.kind, c.new, now=now, site=site)
            for c in planned
        }
    if not planned:
        typer.echo(f"the database's policies already match {source}; nothing changed")
        return
    shortening = [c for c in planned if c.shortens]
    for change in shortening:
        _tell_shortening(change.kind, change.old, change.new, expiring[change.kind])
    if shortening:
        _confirm("policy sync", yes=yes)
    why = reason if reason is not None else f"policy sync from {source}"
    with context.session() as session:
        done = []
        for change in planned:
            applied = policies.set_policy(
                session,
                change.kind,
                change.new,
                now=now,
                actor=context.actor,
                reason=why,
                site=site,
                delay=context.settings.policy.shortening_delay,
            )
            if applied.old != change.old:  # changed while we asked: roll back, ask again
                raise InputError(
                    f"policy sync: the {change.kind} policy changed to "
                    f"{format_duration(applied.old)} meanwhile; run the command again"
                )
            done.append(applied)
    for change in done:
        _report(change, context, site)


def _confirm_shortening(
    kind: str, old: timedelta, new: timedelta, expiring: int, *, yes: bool
) -> None:
    _tell_shortening(kind, old, new, expiring)
    _confirm("policy set", yes=yes)


def _tell_shortening(kind: str, old: timedelta, new: timedelta, expiring: int) -> None:
    typer.echo(
        f"Shortening {kind} from {format_duration(old)} to {format_duration(new)}: up to "
        f"{expiring} record(s) not expired now will expire once it takes effect (held ones are "
        "kept)."
    )


def _confirm(command: str, *, yes: bool) -> None:
    if yes:
        return
    if not _interactive():
        raise InputError(f"{command}: shortening a policy needs confirmation; pass --yes")
    if not typer.confirm("Shorten the policy?", default=False):
        typer.echo(f"{command}: not confirmed; nothing changed", err=True)
        raise typer.Exit(1)


def _interactive() -> bool:
    """Whether a person can answer a question on stdin (the seam tests replace)."""
    return sys.stdin.isatty()


def _report(change: policies.Change, context: AppContext, site: Site | None = None) -> None:
    zone = context.zone()
    what = change.kind if site is None else f"{change.kind} at {site.code}"
    if not change.changed:
        if change.waits:
            typer.echo(
                f"{what}: {format_duration(change.new)} already waits to take effect at "
                f"{site_text(change.takes_effect, zone)}; nothing changed"
            )
        else:
            typer.echo(f"{what}: already {format_duration(change.new)}; nothing changed")
        return
    moved = f"{what}: {format_duration(change.old)} -> {format_duration(change.new)}"
    if change.waits:
        delay = format_duration(context.settings.policy.shortening_delay)
        typer.echo(
            f"{moved} from {site_text(change.takes_effect, zone)} (policy.shortening_delay = "
            f"{delay}); until then {format_duration(change.old)} stays in force. To take it back: "
            f"`facility{_at(site)} policy set {change.kind} {format_duration(change.old)} --reason ...`; "
            f"to apply it now (admin): `facility{_at(site)} policy apply {change.kind} --reason ...`"
        )
        return
    withdrawn = (
        f"; the shortening to {format_duration(change.withdrawn)} that was waiting is withdrawn"
        if change.withdrawn is not None
        else ""
    )
    typer.echo(f"{moved} (takes effect at the next purge){withdrawn}")


# --- legal ceilings ------------------------------------------------------------------------------


@ceiling_app.command("show")
@permitted("policy.ceiling-show")
def ceiling_show(
    ctx: typer.Context,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """The legal ceilings: per country and kind, the longest it may be kept, and why."""
    context = app_context(ctx)
    with context.session() as session:
        found = policies.ceilings(session)
    if output_format is TableJson.json:
        typer.echo(
            json_text(
                [
                    {
                        "country": c.country,
                        "kind": c.kind,
                        "max_seconds": c.max_seconds,
                        "duration": format_duration(timedelta(seconds=c.max_seconds)),
                        "source": c.source,
                        "changed_by": c.changed_by,
                        "changed_at": utc_text(c.changed_at),
                    }
                    for c in found
                ]
            )
        )
        return
    rows = [
        [c.country, c.kind, format_duration(timedelta(seconds=c.max_seconds)), c.source]
        for c in found
    ]
    typer.echo(table(["country", "kind", "at most", "source"], rows))


@ceiling_app.command("set")
@permitted("policy.ceiling-set")
def ceiling_set(
    ctx: typer.Context,
    country: str = typer.Argument(..., help="ISO 3166-1 alpha-2 country code, e.g. NL."),
    kind: str = typer.Argument(..., help=f"One of {kinds.described(kinds.NAMES)}."),
    duration: str = typer.Argument(..., help="The longest it may be kept: 28d or P28D."),
    source: str = typer.Option(
        ..., "--source", help="The law or guideline it comes from (audited, shown with refusals)."
    ),
) -> None:
    """Set a country's legal ceiling for a kind; a policy above it is cut short to it."""
    context = app_context(ctx)
    cc = sites.check_country(country, what="COUNTRY")
    policies.check_kind(kind)
    longest = policies.check_duration(parse_duration(duration, what="DURATION"))
    with context.session() as session:
        old, over = policies.set_ceiling(
            session, cc, kind, longest, source=source, now=context.now(), actor=context.actor
        )
    was = "none" if old is None else format_duration(old)
    typer.echo(f"ceiling {cc} {kind}: {was} -> {format_duration(longest)}")
    for line in over:
        typer.echo(f"facility: warning: {line}", err=True)


def _duration(policy: Policy) -> str:
    return format_duration(timedelta(seconds=policy.seconds))


def _at(site: Site | None) -> str:
    return "" if site is None else f" --site {site.code}"


def _waiting(found: policies.Pending | None, zone: tzinfo) -> str:
    if found is None:
        return ""
    return f"{format_duration(found.duration)} from {site_text(found.takes_effect, zone)}"


def _as_json(policy: Policy, now: datetime) -> dict[str, Any]:
    waiting = policies.pending_of(policy, now=now)
    in_force = policies.effective(policy, now=now)
    return {
        "kind": policy.kind,
        "duration": format_duration(in_force),
        "seconds": int(in_force.total_seconds()),
        "changed_by": policy.changed_by,
        "changed_at": utc_text(policy.changed_at),
        "pending": None if waiting is None else waiting.as_json(),
    }
