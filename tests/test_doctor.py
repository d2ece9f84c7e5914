"""`facility doctor`: every check OK on a healthy install, and each broken part named with what to do.

Runs the real CLI against real databases, the test broker, real directories and lease files. What
doctor prints on a healthy and on a broken setup is printed too (`pytest -s` shows it).
"""

from __future__ import annotations

import grp
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from facility.accounts.access import current_identity
from facility.operations import jobruns
from facility.settings import load_settings
from facility.store import db
from facility.trail import audit
from scheduler.daemon import build_jobs
from tests.brokers import free_port
from tests.conftest import MQTT_PORT, Cli, fresh_database
from tests.daemons import KEA_HEADER, toml_text

# Roles of a healthy install name a user and a group that exist here: this test run's own.
ME = current_identity().name
GROUP = grp.getgrgid(os.getegid()).gr_name


def install(tmp_path: Path, **overrides) -> Path:
    """A complete installation's configuration: recordings, a lease file, roles, the broker."""
    recordings = tmp_path / "recordings"
    (recordings / "2026-06-01" / "12" / "lobby").mkdir(parents=True, exist_ok=True)
    (recordings / "2026-06-01" / "12" / "lobby" / "00.00.mp4").write_bytes(b"\x00")
    evidence = tmp_path / "evidence"
    evidence.mkdir(mode=0o700, exist_ok=True)
    leases = tmp_path / "kea-leases4.csv"
    leases.write_text(KEA_HEADER)
    settings = {
        "timezone": "UTC",
        "mqtt": {"port": MQTT_PORT},
        "camera": {"root": str(recordings)},
        "evidence": {"root": str(evidence)},
        "dhcp": [{"format": "kea", "path": str(leases)}],
        "roles": {"reception": [f"@{GROUP}"], "security": [f"@{GROUP}"], "admin": [ME]},
    }
    for key, value in overrides.items():
        if value is None:
            settings.pop(key, None)
        elif isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    config = tmp_path / "facility.toml"
    config.write_text(toml_text(settings))
    return config


def record_runs(url: str, config: Path, *, ago: timedelta = timedelta(seconds=5), **errors) -> None:
    """Every job the settings call for ran successfully `ago`; `errors` name jobs that then failed."""
    settings = load_settings(config)
    engine = db.make_engine(url)
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        for name in jobruns.schedule(settings):
            jobruns.record(session, name, now=now - ago, detail={"seconds": 0.1})
        for name, reason in errors.items():
            jobruns.record(session, name.replace("_", "-"), now=now - ago / 2, error=reason)
    engine.dispose()


def doctor(cli: Cli, config: Path, code: int = 0, *, show: str | None = None) -> dict[str, tuple]:
    """Run doctor; return {check: (status, message)} (the table is printed when `show` is set)."""
    if show:
        table = cli("doctor", config=config, code=code)
        print(f"\n--- facility doctor, {show} (exit {code}) ---\n{table.output}")
    result = cli("doctor", "--format", "json", config=config, code=code)
    return {c["name"]: (c["status"], c["message"]) for c in json.loads(result.output)}


@pytest.fixture
def healthy(cli, tmp_path) -> Path:
    """A healthy install on each engine: initialised, every job recently successful."""
    config = install(tmp_path)
    cli("init", config=config)  # at head already; creates the audit key
    record_runs(cli.url, config)
    return config


@pytest.fixture
def one(request, tmp_path) -> Cli:
    """The CLI on an initialised SQLite database, for checks that do not depend on the engine."""
    databases = fresh_database("sqlite", request, tmp_path)
    cli = Cli(next(databases), tmp_path)
    config = install(tmp_path)
    cli("init", config=config)
    record_runs(cli.url, config)
    yield cli
    next(databases, None)


def test_a_healthy_install_is_all_ok(cli, healthy):
    checks = doctor(cli, healthy, show=f"healthy ({cli.url.split(':')[0]})")
    assert {status for status, _ in checks.values()} == {"OK"}, checks
    expected = {f"job {name}" for name in jobruns.schedule(load_settings(healthy))}
    assert expected <= set(checks)
    assert {"job purge", "job auto-close", "job snapshot", "job camera-scan"} <= expected
    assert any(name.startswith("job lease-poll:") for name in expected)


def test_an_unreachable_database_fails_and_the_other_checks_still_run(tmp_path, isolated_env):
    audit.load_or_create_key(isolated_env / audit.KEY_FILE)  # as `facility init` left it
    closed = free_port()
    cli = Cli(f"postgresql+psycopg://postgres@127.0.0.1:{closed}/facility", tmp_path)
    checks = doctor(cli, install(tmp_path), code=1, show="database unreachable")
    status, message = checks["database"]
    assert status == "FAIL" and f"127.0.0.1:{closed}" in message
    assert checks["jobs"][0] == "WARN"
    assert checks["mqtt broker"][0] == "OK" and checks["recordings"][0] == "OK"
    assert [name for name, (status, _) in checks.items() if status == "FAIL"] == ["database"]


def test_a_database_without_the_schema_fails_and_says_run_init(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    cli = Cli(f"sqlite:///{path}", tmp_path)
    status, message = doctor(cli, install(tmp_path), code=1)["database"]
    assert status == "FAIL"
    assert "has no schema" in message and "facility init" in message


def test_a_database_behind_the_code_fails_and_says_run_init(cli, healthy):
    # With one migration so far, "behind" is a database whose schema version is not recorded.
    set_version(cli.url, None)
    status, message = doctor(cli, healthy, code=1, show="database behind")["database"]
    assert status == "FAIL"
    assert "has no schema" in message and "facility init" in message


def test_a_database_from_a_newer_facility_fails_and_says_not_to_run_init(cli, healthy):
    set_version(cli.url, "9999")
    status, message = doctor(cli, healthy, code=1)["database"]
    assert status == "FAIL"
    assert "9999" in message and "newer" in message and "upgrade facility" in message


def set_version(url: str, revision: str | None) -> None:
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        session.execute(text("DELETE FROM alembic_version"))
        if revision:
            session.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    engine.dispose()


def test_a_missing_recordings_root_fails(one, tmp_path):
    config = install(tmp_path, camera={"root": str(tmp_path / "not-mounted")})
    checks = doctor(one, config, code=1, show="recordings root missing")
    status, message = checks["recordings"]
    assert status == "FAIL" and "not-mounted" in message and "does not exist" in message


def test_an_empty_recordings_root_fails(one, tmp_path):
    (tmp_path / "empty-root").mkdir()
    config = install(tmp_path, camera={"root": str(tmp_path / "empty-root")})
    status, message = doctor(one, config, code=1)["recordings"]
    assert status == "FAIL" and "empty" in message


@pytest.mark.parametrize("problem", ["missing", "directory", "no permission"])
def test_a_lease_file_that_cannot_be_read_fails(one, tmp_path, problem):
    path = tmp_path / "dhcpd.leases"
    if problem == "directory":
        path.mkdir()
    elif problem == "no permission":
        if os.geteuid() == 0:
            pytest.skip("root reads a file whatever its mode")
        path.write_text("")
        path.chmod(0)
    config = install(tmp_path, dhcp=[{"format": "isc", "path": str(path)}])
    checks = doctor(one, config, code=1, show=f"lease file: {problem}")
    status, message = checks["lease file"]
    assert status == "FAIL" and str(path) in message and "[[dhcp]]" in message


def test_no_roles_is_a_warning(one, tmp_path):
    config = install(tmp_path, roles=None)
    status, message = doctor(one, config)["roles"]
    assert status == "WARN" and "every user holds every role" in message


def test_a_job_whose_last_run_failed_warns_with_the_reason(cli, healthy):
    reason = "StoreError: database is locked"
    record_runs(
        cli.url, healthy, camera_scan="refused to change anything: root is empty", purge=reason
    )
    checks = doctor(cli, healthy, show="two jobs failing")
    assert checks["job purge"][0] == "WARN" and reason in checks["job purge"][1]
    assert "last run failed" in checks["job purge"][1]
    assert (
        checks["job camera-scan"][0] == "WARN" and "root is empty" in checks["job camera-scan"][1]
    )
    assert checks["job snapshot"][0] == "OK"


def test_jobs_that_stopped_running_or_never_ran_warn(cli, tmp_path):
    config = install(tmp_path)
    cli("init", config=config)
    assert doctor(cli, config)["job purge"] == (
        "WARN",
        "never ran: is `facility daemon` running?",
    )
    record_runs(cli.url, config, ago=timedelta(hours=2))
    status, message = doctor(cli, config)["job snapshot"]
    assert status == "WARN" and "last success 2h" in message and "every 1m" in message


def test_an_unreachable_broker_is_a_warning_not_a_failure(one, tmp_path):
    config = install(tmp_path, mqtt={"port": free_port()})
    status, message = doctor(one, config)["mqtt broker"]
    assert status == "WARN" and "unreachable" in message


def test_doctor_expects_exactly_the_jobs_the_daemon_runs(tmp_path):
    settings = load_settings(install(tmp_path))
    jobs = build_jobs(None, settings, "tests", stop=None)  # building runs nothing
    assert {job.name: job.interval for job in jobs} == jobruns.schedule(settings)


def _doctor_lines(cli: Cli, config: Path, name: str) -> list[tuple[str, str]]:
    result = cli("doctor", "--format", "json", config=config)
    return [(c["status"], c["message"]) for c in json.loads(result.output) if c["name"] == name]


def test_a_role_mapped_to_no_existing_user_or_group_warns(one, tmp_path):
    roles = {"reception": ["ghost-receptionist", "@ghost-desk"], "admin": [ME]}
    config = install(tmp_path, roles=roles)
    lines = _doctor_lines(one, config, "roles")
    assert [status for status, _ in lines] == ["WARN"], lines
    assert "roles.reception: ghost-receptionist, @ghost-desk is no user or group" in lines[0][1]


def test_nobody_holding_privacy_or_admin_warns(one, tmp_path):
    config = install(tmp_path, roles={"security": [f"@{GROUP}"], "admin": []})
    messages = [message for status, message in _doctor_lines(one, config, "roles")]
    assert any(m.startswith("nobody holds admin") for m in messages), messages
    assert any(m.startswith("nobody holds privacy") for m in messages), messages
    privacy_only = install(tmp_path, roles={"privacy": [ME], "admin": []})
    messages = [message for _, message in _doctor_lines(one, privacy_only, "roles")]
    assert [m for m in messages if m.startswith("nobody holds")] == [
        "nobody holds admin: policy changes and user accounts are impossible; add an existing "
        "user or @group to roles.admin"
    ]


def test_retention_the_database_does_not_follow_warns_naming_both_values(cli, tmp_path):
    config = install(tmp_path, retention={"visits": "5d", "camera": "14d"})
    cli("init", config=config)
    record_runs(cli.url, config)
    checks = doctor(cli, config, show="retention differs")
    status, message = checks["retention"]
    assert status == "WARN"
    assert "retention.visits = 5d in the configuration, 3d in the database" in message
    assert "camera" not in message and "facility policy sync" in message
    assert checks["settings"][0] == "OK"


def test_the_evidence_directory_is_checked(one, tmp_path):
    inside = install(tmp_path, evidence={"root": str(tmp_path / "recordings" / "evidence")})
    status, message = doctor(one, inside, code=1)["evidence"]
    assert status == "FAIL" and "inside camera.root" in message
    missing = install(tmp_path, evidence={"root": str(tmp_path / "nowhere")})
    assert doctor(one, missing, code=1)["evidence"][0] == "FAIL"
    os.chmod(tmp_path / "evidence", 0o755)
    status, message = doctor(one, install(tmp_path))["evidence"]
    assert status == "WARN" and "chmod 700" in message
    unset = install(tmp_path, evidence=None)
    status, message = doctor(one, unset)["evidence"]
    assert status == "WARN" and "not preserved" in message
    shm = Path("/dev/shm") / f"facility-doctor-{os.getpid()}"
    shm.mkdir(mode=0o700)
    try:
        status, message = doctor(one, install(tmp_path, evidence={"root": str(shm)}))["evidence"]
        assert status == "WARN" and "another file system" in message
    finally:
        shm.rmdir()
