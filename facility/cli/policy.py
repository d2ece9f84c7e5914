"""Policy commands: `policy show` and `policy set`, which asks before it shortens a policy."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import typer

from facility import policies
from facility.access import ROLES
from facility.cli.context import TableJson, app_context
from facility.errors import InputError
from facility.models import Policy
from facility.render import json_text, local_time, table
from facility.settings import POLICY_KINDS
from facility.timeutil import format_duration, parse_duration

policy_app = typer.Typer(no_args_is_help=True, help="Show and change retention policies.")


def register(app: typer.Typer) -> None:
    """Add the policy commands to `app`."""
    app.add_typer(policy_app, name="policy")


@policy_app.command("show")
def show(
    ctx: typer.Context,
    output_format: TableJson = typer.Option(TableJson.table, "--format", help="table or json."),
) -> None:
    """The retention policy of every kind, who last changed it and when."""
    context = app_context(ctx)
    # Policies are not personal data, and every role acts under them: any role may read them.
    context.require(*ROLES, command="policy show")
    with context.session() as session:
        ordered = policies.rows(session)
    if output_format is TableJson.json:
        typer.echo(json_text([_as_json(p) for p in ordered]))
        return
    zone = context.settings.site_zone
    headers = ["kind", "duration", "changed by", "changed at"]
    body = [[p.kind, _duration(p), p.changed_by, local_time(p.changed_at, zone)] for p in ordered]
    typer.echo(table(headers, body))


@policy_app.command("set")
def set_(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help=f"One of {', '.join(POLICY_KINDS)}."),
    duration: str = typer.Argument(..., help="How long to keep it: 3d, 12h, 90m or P14D."),
    reason: str = typer.Option(..., "--reason", help="Why the policy changes (audited)."),
    yes: bool = typer.Option(False, "--yes", help="Shorten without asking."),
) -> None:
    """Change how long a kind is kept; takes effect at the next purge."""
    context = app_context(ctx)
    context.require("admin", "privacy", command="policy set")
    policies.check_kind(kind)
    new = policies.check_duration(parse_duration(duration, what="DURATION"))
    now = context.now()
    with context.session() as session:
        old = policies.policy_of(session, kind)
        expiring = policies.expiring_if(session, kind, new, now=now)
    # The question is asked outside any transaction: a person thinking must not hold the lock.
    if new < old:
        _confirm_shortening(kind, old, new, expiring, yes=yes)
    with context.session() as session:
        change = policies.set_policy(
            session, kind, new, now=now, actor=context.actor, reason=reason
        )
        if change.old != old:  # someone else changed it while we asked: roll back, ask again
            raise InputError(
                f"KIND: the {kind} policy changed to {format_duration(change.old)} meanwhile; "
                "run the command again"
            )
    _report(change)


def _confirm_shortening(
    kind: str, old: timedelta, new: timedelta, expiring: int, *, yes: bool
) -> None:
    typer.echo(
        f"Shortening {kind} from {format_duration(old)} to {format_duration(new)}: up to "
        f"{expiring} record(s) not expired now will expire at the next purge (held ones are kept)."
    )
    if yes:
        return
    if not _interactive():
        raise InputError("policy set: shortening a policy needs confirmation; pass --yes")
    if not typer.confirm("Shorten the policy?", default=False):
        typer.echo("policy set: not confirmed; nothing changed", err=True)
        raise typer.Exit(1)


def _interactive() -> bool:
    """Whether a person can answer a question on stdin (the seam tests replace)."""
    return sys.stdin.isatty()


def _report(change: policies.Change) -> None:
    if change.old == change.new:
        typer.echo(f"{change.kind}: already {format_duration(change.new)}; nothing changed")
        return
    typer.echo(
        f"{change.kind}: {format_duration(change.old)} -> {format_duration(change.new)} "
        "(takes effect at the next purge)"
    )


def _duration(policy: Policy) -> str:
    return format_duration(timedelta(seconds=policy.seconds))


def _as_json(policy: Policy) -> dict:
    return {
        "kind": policy.kind,
        "duration": _duration(policy),
        "seconds": policy.seconds,
        "changed_by": policy.changed_by,
        "changed_at": _iso(policy.changed_at),
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
