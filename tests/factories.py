"""What the tests build and read back, in one place: fixed instants, rows of each kind, holds,
purge runs, audit entries, counts.

Plain functions over an engine or a URL. Fixtures with a setup and a teardown are in conftest.py,
the in-process web app in webapp.py, brokers in brokers.py, processes and whole sites in
daemons.py.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import select as select_rows

from facility.accounts.access import current_identity
from facility.names import name_key
from facility.retention import holds, purge
from facility.settings import Settings
from facility.store import db
from facility.store.models import (
    BadgeLoan,
    CameraSegment,
    DoorEvent,
    Policy,
    Site,
    Visit,
    WifiLease,
    row_id,
)
from facility.trail import audit

# A fixed instant for tests that pass `now` explicitly.
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
NOW = T0 + 30 * D
OLD = T0  # a month before NOW: past every policy but wifi's
_serial = itertools.count()
# Limits so long that purge's first step (limits.apply) changes nothing unless a test wants it.
NO_LIMITS = {"max_visit": "36500d", "max_badge_out": "36500d", "max_lease_silence": "36500d"}
# What an attacker with database access drops before editing the append-only audit log.
DROP_TRIGGERS = {
    "sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
    "postgresql": ["DROP TRIGGER audit_log_no_change ON audit_log"],
}


# --- times ---------------------------------------------------------------------------------------


def utc(*parts: int) -> datetime:
    """A UTC time from its parts, as `datetime` takes them."""
    return datetime(*parts, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


# --- building a store ----------------------------------------------------------------------------


def make_settings(root: Path | None = None, *, batch: int = 5000, grace: str = "24h", **extra):
    """Settings for a purge: a recordings root, a batch size, a release grace, no limits."""
    return Settings(
        camera={"root": root},
        purge={"batch_size": batch},
        holds={"release_grace": grace},
        limits=extra.pop("limits", NO_LIMITS),
        **extra,
    )


def add(engine, *rows) -> list[int]:
    """Store rows in one transaction; return their ids."""
    with db.session_scope(engine) as session:
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def visit(name: str, signed_in: datetime, signed_out: datetime | None = None) -> Visit:
    """A visit whose clock starts at sign-out."""
    return Visit(
        name=name,
        name_key=name_key(name),
        signed_in_at=signed_in,
        signed_out_at=signed_out,
        retain_from=signed_out,
    )


def loan(badge: str, visit_id: int | None, issued: datetime, returned: datetime | None):
    """A badge loan whose clock starts at return."""
    return BadgeLoan(
        badge=badge, visit_id=visit_id, issued_at=issued, returned_at=returned, retain_from=returned
    )


def door(door_id: str, badge: str, at: datetime) -> DoorEvent:
    """A door event whose clock starts when it happened."""
    return DoorEvent(event_id=f"t{next(_serial)}", door=door_id, badge=badge, at=at, retain_from=at)


def segment(camera: str, start: datetime, end: datetime | None = None, path: str | None = None):
    """A camera segment whose clock starts at its end."""
    end = end or start + timedelta(minutes=1)
    path = path or f"{camera}/{next(_serial)}.mp4"
    return CameraSegment(camera=camera, path=path, start=start, end=end, retain_from=end)


def lease(mac: str, starts: datetime, ends=None, last_seen=None, retain_from=None) -> WifiLease:
    """A lease; its clock starts at the later of end and last seen unless given."""
    if retain_from is None and ends is not None:
        retain_from = max(ends, last_seen or ends)
    return WifiLease(
        source="tests",
        mac=mac,
        ip=f"10.0.{next(_serial) % 250}.1",
        starts=starts,
        ends=ends,
        last_seen=last_seen,
        retain_from=retain_from,
    )


def place(engine, case: str, scopes, start, end, *, now=T0, released_at=None) -> None:
    """Place a hold (released at `released_at` if given)."""
    with db.session_scope(engine) as session:
        holds.place(
            session,
            now=now,
            actor="tests",
            case=case,
            reason="tests",
            window_from=start,
            window_to=end,
            scopes=[holds.Scope(*s) for s in scopes],
        )
        if released_at is not None:
            holds.release(session, now=released_at, actor="tests", case=case, reason="done")


def run(engine, settings=None, *, now=NOW, dry_run=False) -> purge.PurgeReport:
    """One purge run at `now`."""
    return purge.run(engine, settings or make_settings(), now=now, actor="tests", dry_run=dry_run)


def write_files(root: Path, *segments: CameraSegment) -> None:
    """Create each segment's file under `root`."""
    for seg in segments:
        path = root / seg.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"mp4")


# --- reading it back -----------------------------------------------------------------------------


def ids(engine, model) -> set[int]:
    """The ids of every row of `model` left."""
    with db.session_scope(engine) as session:
        return set(session.execute(select(model.id)).scalars())


def count(engine, model) -> int:
    """How many rows of `model` there are."""
    with db.session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def stored(engine) -> dict[str, WifiLease]:
    """The wifi leases stored, by IP; fails if one was stored twice."""
    with db.session_scope(engine) as session:
        rows = session.exec(select_rows(WifiLease)).all()
    assert len({row.ip for row in rows}) == len(rows), "a lease was stored twice"
    return {row.ip: row for row in rows}


def pending_policies(url: str) -> dict[str, tuple[int, datetime]]:
    """The shortenings waiting for their delay in the database at `url`: seconds and from when."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        rows = session.exec(select_rows(Policy)).all()
        found = {p.kind: (p.pending_seconds, p.pending_from) for p in rows if p.pending_seconds}
    engine.dispose()
    return found


def _policies(url: str) -> dict[str, int]:
    """The retention policies in the database at `url`, in seconds by kind."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        found = {p.kind: p.seconds for p in session.exec(select_rows(Policy)).all()}
    engine.dispose()
    return found


# --- the audit trail -----------------------------------------------------------------------------


def _fill(engine, count: int = 5) -> str:
    """Append `count` entries after the seed entry (seq 1); return the head."""
    with db.session_scope(engine) as session:
        for i in range(count):
            audit.append(
                session,
                now=T0 + timedelta(minutes=i + 1),
                actor="tests",
                action=f"test.step{i % 2}",
                step=i,
            )
        return audit.head(session)


def _tamper(engine, *statements: str) -> None:
    """Run SQL as an attacker with database access: append-only triggers dropped first."""
    with engine.begin() as conn:
        for statement in [*DROP_TRIGGERS[engine.dialect.name], *statements]:
            conn.exec_driver_sql(statement)  # as typed: no bind parameters in the SQL


def _verify_json(cli, *args: str, code: int) -> dict:
    """`facility audit verify --format json` with its stderr added under "stderr"."""
    result = cli("audit", "verify", "--format", "json", *args, code=code)
    return json.loads(result.stdout) | {"stderr": result.stderr}


def cli_commands(
    command: Any = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every runnable command of the CLI with its path of names (`("hold", "place")`), depth first."""
    if command is None:
        import typer

        from facility.cli import app

        command = typer.main.get_command(app)
    subcommands = getattr(command, "commands", None)  # a group (typer's own class, not click's)
    if subcommands is None:
        yield path, command
        return
    for name, sub in subcommands.items():
        yield from cli_commands(sub, (*path, name))


# --- sites ----------------------------------------------------------------------------------------


# Two offices in two countries with a legal camera ceiling each (NL 28 d, BE 31 d, seeded).
OFFICES = {
    "ams": ("Amsterdam", "Europe/Amsterdam", "NL"),
    "bru": ("Brussels", "Europe/Brussels", "BE"),
}


def add_offices(cli: Any, **more: tuple[str, str, str]) -> None:
    """`site add` the OFFICES (and `more`: code = (name, time zone, country)) through the CLI."""
    for code, (name, timezone, country) in (OFFICES | more).items():
        cli("site", "add", code, "--name", name, "--timezone", timezone, "--country", country)


def granted(cli, role: str, at: str) -> Path:
    """A configuration of its own (the test's default one stays unwritten) giving the running
    user `role` at site `at` only."""
    path = cli.tmp_path / f"{role}-{at}.toml"
    me = current_identity().name
    path.write_text(f'[roles]\nadmin = ["somebody-else"]\n{role} = ["{me}:{at}"]\n')
    return path


def notice_version(text: str) -> str:
    """The version a printed notice names (`Version 0123456789ab;`)."""
    found = re.search(r"Version ([0-9a-f]{12});", text)
    assert found, text[:300]
    return found.group(1)


def site_ids(url: str) -> dict[str, int]:
    """Each site's id by its code."""
    engine = db.make_engine(url)
    try:
        with db.session_scope(engine) as session:
            return {s.code: row_id(s) for s in session.exec(select_rows(Site))}
    finally:
        engine.dispose()


def old_door_events(engine, count: int, *, prefix: str, site_id: int | None = None) -> None:
    """`count` door events five days old (event ids `prefix-N`), at `site_id` (the default site)."""
    at = datetime.now(UTC) - timedelta(days=5)
    rows = [
        {
            "event_id": f"{prefix}-{i}",
            "door": "lobby",
            "badge": "B1",
            "at": at - timedelta(seconds=i),
            "granted": True,
            "source": "seed",
            "retain_from": at - timedelta(seconds=i),
        }
        | ({} if site_id is None else {"site_id": site_id})
        for i in range(count)
    ]
    with db.session_scope(engine) as session:
        session.execute(insert(DoorEvent.__table__), rows)
