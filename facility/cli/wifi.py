"""Wifi commands: dnsmasq's `--dhcp-script` hook, blocked devices, and objections.

`wifi ignore MAC` records that a device's owner objected (GDPR article 21): its leases are counted
at ingest and no longer stored, from every source (`sources.objections`).

`wifi dnsmasq-hook` runs inside dnsmasq's lease handling, one process per DHCP event, so it:

- always exits 0, for every action, argument and failure: dnsmasq runs its script helper one
  event at a time and only `init`'s exit code matters to it (non-zero stops dnsmasq). Bad input
  is recorded in `rejections` and printed on stderr; the lease file stays the source of truth
  and the lease-file poller picks up whatever the hook could not store.
- ignores every action but `add`, `old` and `del` without touching the database (`init` prints
  no leases: do not combine it with dnsmasq's `--leasefile-ro`).
- never holds dnsmasq up for long: short lock and connect timeouts (`HOOK_BUSY`) and at most
  `HOOK_ATTEMPTS` attempts, then one line on stderr and exit 0.
- checks no role: dnsmasq runs it as its own user, and the operating system decides whether that
  user may write the database (file permissions, PostgreSQL credentials). So it never writes a
  `refused` audit entry either, which would otherwise come with every DHCP event.

dnsmasq passes the script no arguments of its own, so point `--dhcp-script` at a two-line
wrapper: `#!/bin/sh` and `exec facility wifi dnsmasq-hook "$@"`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

from facility import sites
from facility.cli.context import AppContext, TableJsonCsv, app_context, permitted
from facility.errors import RejectedInput, SchemaNotReady, StoreError
from facility.files import write_private
from facility.render import csv_text, json_text, table
from facility.settings import hook_environment
from facility.sources import blocklist, ingest, objections
from facility.store import db
from facility.store.models import BlockedDevice, Site, row_id
from facility.timefmt import site_text, utc_text
from facility.trail import keys

HOOK_BUSY = 1.5  # seconds a hook attempt waits for a lock or a connection
HOOK_ATTEMPTS = 3
HOOK_PAUSE = 0.25  # seconds between attempts

wifi_app = typer.Typer(
    no_args_is_help=True, help="Wifi: dnsmasq's lease hook, blocked devices, objections."
)


class ExportFormat(StrEnum):
    """What `wifi export-blocklist` writes."""

    dnsmasq = "dnsmasq"
    kea = "kea"


def register(app: typer.Typer) -> None:
    """Add the wifi commands to `app`."""
    app.add_typer(wifi_app, name="wifi")


# --- dnsmasq --dhcp-script ---------------------------------------------------------------------


@wifi_app.command(
    "dnsmasq-hook",
    # Everything after ACTION is dnsmasq's, even when it looks like an option.
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@permitted("wifi.dnsmasq-hook")
def dnsmasq_hook(
    ctx: typer.Context,
    action: str | None = typer.Argument(
        None, metavar="ACTION", help="add, old or del; others are ignored."
    ),
    args: list[str] | None = typer.Argument(None, metavar="MAC IP [HOSTNAME]"),
) -> None:
    """Store one lease event from dnsmasq's --dhcp-script (DNSMASQ_* environment); exits 0.

    dnsmasq runs the script without arguments of its own: point --dhcp-script at a wrapper
    that runs `exec facility wifi dnsmasq-hook "$@"`.
    """
    argv = [] if action is None else [action, *(args or [])]
    try:
        _hook(app_context(ctx), argv)
    except Exception as err:  # dnsmasq must never see a failure: say it, leave it to the poller
        _say(f"not stored ({type(err).__name__}: {_first_line(err)}); the lease file has it")


def _hook(context: AppContext, argv: list[str]) -> None:
    from connectors.dhcp import HOOK_SOURCE, parse_hook  # the core never imports them at load time
    from connectors.leasefile import record_rejection

    now = context.now()
    settings = context.settings
    intake = ingest.Intake(now, settings.limits, settings.site_zone)
    try:
        lease = parse_hook(argv, hook_environment(), now=now)
        if lease is not None:  # a time too far ahead (DNSMASQ_LEASE_EXPIRES) is refused too
            lease = ingest.admit(lease, intake)
    except RejectedInput as err:
        rejection = RejectedInput(err.reason, source=HOOK_SOURCE, raw=" ".join(argv)[:512])
        _say(f"rejected: {err.reason}")

        def reject(session: Session) -> None:
            site = _site(session, context)
            record_rejection(session, rejection, now=now, site_id=row_id(site))

        _store_briefly(settings.url, reject)
        return
    if lease is not None:  # None: not a lease event, and no database is opened for it
        admitted = lease

        def store(session: Session) -> None:
            here = replace(intake, site_id=row_id(_site(session, context)))
            ingest.store_leases(session, [admitted], here)

        _store_briefly(settings.url, store)


def _site(session: Session, context: AppContext) -> Site:
    """The site the hook's dnsmasq serves: --site, the `site` setting, or the only one."""
    return sites.resolve(session, explicit=context.site_code, configured=context.settings.site)


def _store_briefly(url: str, write: Callable[[Session], object]) -> None:
    """Run `write` in one transaction, waiting at most HOOK_BUSY per attempt."""
    engine = _impatient(db.make_engine(url))
    started, checked = time.monotonic(), False
    try:
        for attempt in range(1, HOOK_ATTEMPTS + 1):
            try:
                if not checked:
                    db.ensure_ready(engine)
                    checked = True
                with db.session_scope(engine) as session:
                    write(session)
                return
            except SchemaNotReady:
                raise
            except (StoreError, sa_exc.OperationalError) as err:  # locked, busy, unreachable
                if attempt == HOOK_ATTEMPTS:
                    spent = time.monotonic() - started
                    _say(f"gave up after {attempt} attempts in {spent:.1f} s: {_first_line(err)}")
                    return
                time.sleep(HOOK_PAUSE)
    finally:
        engine.dispose()


def _impatient(engine: Engine) -> Engine:
    """The engine with the hook's short lock, statement and connect timeouts."""
    millis = int(HOOK_BUSY * 1000)
    sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "do_connect")
    def _short_connect(
        _dialect: object, _record: object, _cargs: object, cparams: dict[str, Any]
    ) -> None:
        if sqlite:
            cparams["timeout"] = HOOK_BUSY
        else:
            cparams["connect_timeout"] = 2  # libpq's minimum that it honours as given
            waits = f"-c lock_timeout={millis} -c statement_timeout={millis}"
            cparams["options"] = f"{cparams.get('options', '')} {waits}".strip()

    @event.listens_for(engine, "connect")
    def _short_busy(dbapi_conn: Any, _record: object) -> None:
        if (
            sqlite
        ):  # after the engine's own listener (facility.store.db), which sets the long default
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout={millis}")
            cursor.close()

    return engine


def _first_line(err: Exception) -> str:
    origin = getattr(err, "orig", None) or err  # a driver error's own words, without the SQL
    return str(origin).strip().splitlines()[0] if str(origin).strip() else type(err).__name__


def _say(message: str) -> None:
    typer.echo(f"facility wifi dnsmasq-hook: {message}", err=True)


# --- blocked devices ---------------------------------------------------------------------------

MAC = typer.Argument(..., help="The device's MAC address.")


@wifi_app.command("block")
@permitted("wifi.block")
def block(
    ctx: typer.Context,
    mac: str = MAC,
    reason: str = typer.Option(
        ..., "--reason", help="Why (audited: describe the misuse, not the person)."
    ),
) -> None:
    """Refuse a device DHCP from now on (export the blocklist to the DHCP server after)."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    with context.session() as session:
        change = blocklist.block(
            session, mac, reason=reason, actor=context.actor, now=context.now(), key=key
        )
    if change.changed:
        typer.echo(f"{change.mac}: blocked; run `facility wifi export-blocklist` for the server")
    else:
        typer.echo(f"{change.mac}: already {_since(change.device, context)}; nothing changed")


@wifi_app.command("unblock")
@permitted("wifi.unblock")
def unblock(
    ctx: typer.Context,
    mac: str = MAC,
    reason: str = typer.Option(..., "--reason", help="Why the block is lifted (audited)."),
) -> None:
    """Lift a device's block (export the blocklist to the DHCP server after)."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    with context.session() as session:
        change = blocklist.unblock(
            session, mac, reason=reason, actor=context.actor, now=context.now(), key=key
        )
    if change.changed:
        typer.echo(f"{change.mac}: unblocked; run `facility wifi export-blocklist` for the server")
    else:
        typer.echo(f"{change.mac}: was not blocked; nothing changed")


@wifi_app.command("blocked")
@permitted("wifi.blocked")
def blocked(
    ctx: typer.Context,
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json or csv."
    ),
) -> None:
    """The blocked devices, oldest block first."""
    context = app_context(ctx)
    with context.session() as session:
        devices = blocklist.blocked(session)
    if output_format is TableJsonCsv.json:
        typer.echo(json_text([_as_json(device) for device in devices]))
        return
    headers = ["mac", "blocked_at", "blocked_by", "reason"]
    if output_format is TableJsonCsv.csv:
        rows = [[d.mac, utc_text(d.blocked_at), d.blocked_by, d.reason] for d in devices]
        typer.echo(csv_text(headers, rows), nl=False)
        return
    zone = context.zone()
    rows = [[d.mac, site_text(d.blocked_at, zone), d.blocked_by, d.reason] for d in devices]
    typer.echo(table(["mac", "blocked since", "by", "reason"], rows))


@wifi_app.command("export-blocklist")
@permitted("wifi.export-blocklist")
def export_blocklist(
    ctx: typer.Context,
    output_format: ExportFormat = typer.Option(
        ..., "--format", help="dnsmasq (dhcp-host=MAC,ignore lines) or kea (DROP reservations)."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        help="Write to this file (mode 0600, replaced atomically) instead of stdout.",
    ),
) -> None:
    """Write the blocklist as a file for the DHCP server to include."""
    context = app_context(ctx)
    with context.session() as session:
        devices = blocklist.blocked(session)
    render = (
        blocklist.dnsmasq_config if output_format is ExportFormat.dnsmasq else blocklist.kea_config
    )
    text = render(devices)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_private(output, text)
    typer.echo(f"{len(devices)} blocked device(s) written to {output} ({output_format.value})")


def _since(device: BlockedDevice | None, context: AppContext) -> str:
    if device is None:
        return "blocked"
    when = site_text(device.blocked_at, context.zone())
    return f"blocked since {when} by {device.blocked_by}"


def _as_json(device: BlockedDevice) -> dict[str, Any]:
    return {
        "mac": device.mac,
        "reason": device.reason,
        "blocked_by": device.blocked_by,
        "blocked_at": utc_text(device.blocked_at),
    }


# --- objections (article 21) -------------------------------------------------------------------


@wifi_app.command("ignore")
@permitted("wifi.ignore")
def ignore(
    ctx: typer.Context,
    mac: str = MAC,
    reason: str = typer.Option(
        ..., "--reason", help="Why, e.g. the request's reference (audited; not the MAC)."
    ),
    request: int | None = typer.Option(
        None, "--request", help="The objection request this answers (`facility request list`)."
    ),
) -> None:
    """Stop storing a device's leases from now on: its owner objected (counted, not stored)."""
    from facility.privacy import requests, subjects

    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    subject = subjects.subject_from(mac=mac)
    with context.session() as session:
        requests.answering(session, request, command="wifi ignore", subject=subject)
        change = objections.ignore(
            session,
            mac,
            reason=reason,
            actor=context.actor,
            now=context.now(),
            key=key,
            request_id=request,
        )
    if change.changed:
        typer.echo(
            f"{change.mac}: its leases are no longer stored from now on; those stored before "
            "follow their policy (`facility subject erase --mac` removes them now)"
        )
    else:
        since = (
            "" if change.device is None else f" since {_when(change.device.ignored_at, context)}"
        )
        typer.echo(f"{change.mac}: already ignored{since}; nothing changed")


@wifi_app.command("unignore")
@permitted("wifi.unignore")
def unignore(
    ctx: typer.Context,
    mac: str = MAC,
    reason: str = typer.Option(..., "--reason", help="Why the objection is lifted (audited)."),
) -> None:
    """Store a device's leases again from now on (the objection is withdrawn)."""
    context = app_context(ctx)
    key = keys.site_key()  # never a new key: the trail is signed with the site's
    with context.session() as session:
        change = objections.unignore(
            session, mac, reason=reason, actor=context.actor, now=context.now(), key=key
        )
    if change.changed:
        typer.echo(f"{change.mac}: its leases are stored again from now on")
    else:
        typer.echo(f"{change.mac}: was not ignored; nothing changed")


@wifi_app.command("ignored")
@permitted("wifi.ignored")
def ignored(
    ctx: typer.Context,
    output_format: TableJsonCsv = typer.Option(
        TableJsonCsv.table, "--format", help="table, json or csv."
    ),
) -> None:
    """The devices whose leases are not stored, with how many reports were dropped."""
    context = app_context(ctx)
    with context.session() as session:
        devices = objections.ignored(session)
    found = [objections.as_json(d) for d in devices]
    if output_format is TableJsonCsv.json:
        typer.echo(json_text(found))
        return
    fields = ["mac", "ignored_at", "ignored_by", "reason", "request_id", "leases_ignored"]
    if output_format is TableJsonCsv.csv:
        typer.echo(csv_text(fields, [[d[f] for f in fields] for d in found]), nl=False)
        return
    zone = context.settings.site_zone
    rows = [[d.mac, site_text(d.ignored_at, zone), d.ignored_by, d.leases_ignored] for d in devices]
    typer.echo(table(["mac", "ignored since", "by", "leases not stored"], rows))


def _when(value: datetime, context: AppContext) -> str:
    return site_text(value, context.settings.site_zone)
