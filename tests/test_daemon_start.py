"""The daemon process: starts on an initialised database, stops cleanly on SIGTERM and Ctrl-C, logs
JSON lines on request and a missing broker once; and its job runner (in-process, injected clock):
a failure logged once per reason and stored every time, a recovery said, a skipped run not stored."""

from __future__ import annotations

import json
import logging
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facility.errors import StoreError
from facility.store import db
from facility.store.models import DEFAULT_SITE, JobRun
from scheduler.jobs import Job, JobRunner
from tests.brokers import free_port
from tests.conftest import fresh_database
from tests.daemons import Daemon, toml_text


def start(daemons: list, url: str, tmp_path: Path, **kwargs) -> Daemon:
    daemon = Daemon(None, tmp_path / "home", env={"FACILITY_DATABASE_URL": url})
    daemons.append(daemon)
    return daemon.start(**kwargs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_daemon_starts_logs_database_and_stops_with_exit_0(db_url, tmp_path, signum, daemons):
    daemon = start(daemons, db_url, tmp_path)
    assert db_url.split("://")[0] in daemon.matching("daemon started")[0]
    daemon.signal(signum)  # at once: the main thread is just starting to wait
    code, took = daemon.wait(10)
    assert code == 0 and took < 10, daemon.output
    assert daemon.matching("daemon stopped")


def test_daemon_refuses_an_uninitialised_database(tmp_path, daemons):
    daemon = start(daemons, f"sqlite:///{tmp_path / 'none.db'}", tmp_path, wait_started=False)
    code, _ = daemon.wait(30)
    assert code == 1
    assert "facility init" in daemon.output


def test_json_logs_are_one_object_per_line_and_a_missing_broker_is_said_once(request, tmp_path):
    url = next(fresh_database("sqlite", request, tmp_path))
    config = tmp_path / "facility.toml"
    config.write_text(
        toml_text(
            {
                "database_url": url,
                "mqtt": {"port": free_port()},  # nothing listens there
                "purge": {"interval": "1s"},
                "snapshot": {"interval": "1s"},
            }
        )
    )
    daemon = Daemon(config, tmp_path / "home", log_format="json").start()
    try:
        time.sleep(5)  # a few reconnect attempts and job rounds
        assert daemon.process.poll() is None, daemon.output
        code, took = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0 and took < 10, daemon.output
    assert not daemon.errors, "".join(daemon.errors)
    entries = [json.loads(line) for line in daemon.lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    events = [e.get("event") for e in entries]
    assert "daemon.start" in events and events[-1] == "daemon.stop", events
    runs = [e for e in entries if e.get("event") == "job.done" and e["job"] == "purge"]
    assert len(runs) >= 3 and all("audit_head" in run and "seconds" in run for run in runs)
    start = next(e for e in entries if e.get("event") == "daemon.start")
    assert {"purge", "auto-close", "snapshot"} <= set(start["jobs"])
    broker = ("unavailable", "cannot connect", "Connection refused", "connection lost")
    outage = [e for e in entries if any(word in e["message"] for word in broker)]
    assert len(outage) == 1, outage
    assert "running on" in outage[0]["message"]


# --- the job runner, in-process with an injected clock ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=30)
        return self.now


def test_a_failing_job_is_logged_once_stored_each_time_and_its_recovery_said(engine, caplog):
    clock, outcomes = Clock(), iter(["down", "down", "down", "other", None])

    def work(now: datetime) -> dict:
        reason = next(outcomes)
        if reason:
            raise StoreError(f"database is {reason}")
        return {"stored": 3}

    runner = JobRunner(engine, clock)
    job = Job("poll", timedelta(seconds=30), work)
    caplog.set_level(logging.INFO, logger="facility.jobs")
    for _ in range(4):
        runner.run(job)
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 2, failed  # "down" once, "other" once
    assert "database is down" in failed[0] and "database is other" in failed[1]
    with db.session_scope(engine) as session:
        run = session.get(JobRun, (DEFAULT_SITE, "poll"))
        assert run.last_failure == clock.now and run.last_error == "database is other"
        assert run.last_success is None
    runner.run(job)
    assert any("works again after 4 failed run(s)" in r.getMessage() for r in caplog.records)
    with db.session_scope(engine) as session:
        run = session.get(JobRun, (DEFAULT_SITE, "poll"))
        assert run.last_success == clock.now
        assert json.loads(run.last_detail)["stored"] == 3
        # A failure's text may quote what a source sent (a name, a host name): it is kept only
        # until the job works again.
        assert run.last_error is None and run.last_failure is not None


def test_a_failure_the_connector_reported_is_stored_not_logged_again(engine, caplog):
    runner = JobRunner(engine, Clock())
    job = Job("lease-poll:/x", timedelta(seconds=30), lambda now: {"failed": "/x does not exist"})
    caplog.set_level(logging.INFO, logger="facility.jobs")
    runner.run(job)
    assert not caplog.records
    with db.session_scope(engine) as session:
        assert (
            session.get(JobRun, (DEFAULT_SITE, "lease-poll:/x")).last_error == "/x does not exist"
        )


def test_a_skipped_run_stores_nothing(engine):
    runner = JobRunner(engine, Clock())
    runner.run(Job("purge", timedelta(seconds=1), lambda now: {"skipped": "another daemon"}))
    with db.session_scope(engine) as session:
        assert session.get(JobRun, (DEFAULT_SITE, "purge")) is None
