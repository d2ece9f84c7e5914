"""`facility doctor`: the health checks an operator runs, each an OK / WARN / FAIL line saying what to do.

Checks never change anything. A check that cannot run (the database is down) says so and the others
still run, so one broken part does not hide the state of the rest.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from facility import audit, db, jobruns
from facility.camera_files import root_state
from facility.errors import FacilityError
from facility.settings import Settings
from facility.timeutil import format_duration


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    status: str  # OK | WARN | FAIL
    name: str
    message: str


def run_checks(settings: Settings, *, now: datetime, config: Path | None) -> list[Check]:
    """Every check, in the order an operator fixes things."""
    checks = [Check("OK", "settings", f"valid ({config or 'defaults, no configuration file'})")]
    checks += list(_database(settings, now))
    checks.append(_broker(settings))
    checks.append(_recordings(settings))
    checks += [_lease_file(source.path) for source in settings.dhcp]
    checks.append(_roles(settings))
    checks.append(_audit_key(settings))
    return checks


def _database(settings: Settings, now: datetime) -> Iterator[Check]:
    where = db.redact(settings.url)
    try:
        engine = db.make_engine(settings.url)
        db.ensure_ready(engine)
    except FacilityError as err:
        yield Check("FAIL", "database", str(err))
        return
    yield Check("OK", "database", f"{where} reachable, schema at {db.head_revision()}")
    with db.session_scope(engine) as session:
        runs = {run.job: run for run in jobruns.all_runs(session)}
    engine.dispose()
    yield from _jobs(settings, runs, now)


def _jobs(settings: Settings, runs: dict, now: datetime) -> Iterator[Check]:
    expected = {"purge": settings.purge.interval, "snapshot": settings.snapshot.interval}
    if settings.camera.root is not None:
        expected["camera-scan"] = settings.camera.scan_interval
    for name, interval in expected.items():
        run = runs.get(name)
        if run is None or run.last_success is None:
            yield Check("WARN", f"job {name}", "never succeeded: is `facility daemon` running?")
            continue
        age = now - run.last_success
        failing = run.last_failure is not None and run.last_failure > run.last_success
        if failing:
            yield Check("WARN", f"job {name}", f"last run failed: {run.last_error}")
        elif age > 3 * interval + timedelta(minutes=1):
            yield Check(
                "WARN",
                f"job {name}",
                f"last success {format_duration(age)} ago (every {format_duration(interval)}): is the daemon running?",
            )
        else:
            yield Check("OK", f"job {name}", f"last success {format_duration(age)} ago")


def _broker(settings: Settings) -> Check:
    target = f"{settings.mqtt.host}:{settings.mqtt.port}"
    try:
        with socket.create_connection((settings.mqtt.host, settings.mqtt.port), timeout=3):
            return Check("OK", "mqtt broker", f"{target} accepts connections")
    except OSError as err:
        return Check(
            "WARN",
            "mqtt broker",
            f"{target} unreachable ({err.strerror or err}); door and lease messages wait until it is back",
        )


def _recordings(settings: Settings) -> Check:
    root = settings.camera.root
    if root is None:
        return Check("OK", "recordings", "camera.root not set: no camera data is kept")
    problem = root_state(root)
    if problem:
        return Check(
            "FAIL",
            "recordings",
            f"{problem}; mount it or fix camera.root (purge and scan refuse meanwhile)",
        )
    return Check("OK", "recordings", f"{root} present and not empty")


def _lease_file(path: Path) -> Check:
    if os.access(path, os.R_OK) and path.is_file():
        return Check("OK", "lease file", f"{path} readable")
    return Check(
        "FAIL",
        "lease file",
        f"{path} is missing or not readable by this user; fix [[dhcp]] path or permissions",
    )


def _roles(settings: Settings) -> Check:
    if settings.roles is None:
        return Check(
            "WARN",
            "roles",
            "no [roles] section: every user holds every role; map roles to users or @groups",
        )
    return Check("OK", "roles", "configured")


def _audit_key(settings: Settings) -> Check:
    path = settings.home / audit.KEY_FILE
    if not path.exists():
        return Check(
            "FAIL",
            "audit key",
            f"{path} is missing: run `facility init` (or restore it from backup)",
        )
    try:
        audit.load_or_create_key(path)
    except FacilityError as err:
        return Check("FAIL", "audit key", str(err))
    return Check("OK", "audit key", f"{path} present, private")
