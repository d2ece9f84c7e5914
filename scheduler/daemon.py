"""The daemon: an APScheduler 3.x scheduler running facility's jobs until SIGTERM or SIGINT.

`stop` is both the shutdown signal and what the main thread waits on, so a signal ends the wait at
once; the scheduler then lets the running job finish its batch and the process exits 0. A second
signal exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from connectors.camera import Scanner
from connectors.mqtt import MqttConnector
from facility import audit, db, limits, locks, purge
from facility.access import current_identity
from facility.settings import Settings
from scheduler import logs
from scheduler.jobs import Job, run_job
from scheduler.snapshot import write_snapshot

log = logging.getLogger("facility.daemon")

# Generous grace: a run that is late (busy machine, suspended VM) still runs, once (coalesce).
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
AUTO_CLOSE_INTERVAL = timedelta(minutes=5)


def build_scheduler() -> BackgroundScheduler:
    """A scheduler with the job defaults every facility job runs under, and its listeners."""
    scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
    scheduler.add_listener(_on_trouble, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


def _on_trouble(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_MISSED:
        log.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
    else:
        log.error("job %s crashed: %s", event.job_id, event.exception)


def build_jobs(engine: Engine, settings: Settings, actor: str, stop: threading.Event) -> list[Job]:
    """The jobs DESIGN.md lists, with intervals from the settings."""
    jobs = [
        Job(
            "purge", settings.purge.interval, lambda now: _purge(engine, settings, actor, now, stop)
        ),
        Job(
            "auto-close", AUTO_CLOSE_INTERVAL, lambda now: _auto_close(engine, settings, actor, now)
        ),
        Job(
            "snapshot",
            settings.snapshot.interval,
            lambda now: write_snapshot(engine, settings.snapshot_dir, settings.timezone, now=now),
        ),
    ]
    if settings.camera.root is not None:
        scanner = Scanner(engine, settings)  # one per daemon: it remembers refusals and rejects
        jobs.append(
            Job(
                "camera-scan", settings.camera.scan_interval, lambda now: _scan(scanner, actor, now)
            )
        )
    return jobs


def _scan(scanner: Scanner, actor: str, now: datetime) -> dict:
    report = scanner.scan(now=now, actor=actor)
    if report.refused:
        return {"skipped": f"refused to change anything: {report.refusal}"}
    keys = ("indexed", "vanished", "held_missing", "being_written", "rejected")
    return {key: report.as_json()[key] for key in keys}


def _purge(
    engine: Engine, settings: Settings, actor: str, now: datetime, stop: threading.Event
) -> dict:
    # `stop` ends a long purge after its current batch when the daemon is asked to stop.
    report = purge.run(engine, settings, now=now, actor=actor, stop=stop)
    if report.skipped:
        return {"skipped": "another daemon is purging this database"}
    deleted = {kind: result.deleted for kind, result in report.kinds.items()}
    return {**deleted, "files_refused": report.files.refused, "audit_head": report.audit_head}


def _auto_close(engine: Engine, settings: Settings, actor: str, now: datetime) -> dict:
    with locks.exclusive(engine, "auto-close") as mine:
        if not mine:
            return {"skipped": "another daemon is closing open records"}
        with db.session_scope(engine) as session:
            return limits.apply(session, settings.limits, now=now, actor=actor)


def run(settings: Settings, *, log_format: str = "text") -> int:
    """Run until a signal; return the exit code."""
    logs.configure(log_format)
    stop = threading.Event()
    _install_signal_handlers(stop)
    actor = current_identity().name
    engine = db.make_engine(settings.url)
    db.ensure_ready(engine)
    _audit(engine, actor, "daemon.start")
    scheduler = build_scheduler()
    for job in build_jobs(engine, settings, actor, stop):
        scheduler.add_job(
            run_job,
            "interval",
            seconds=max(job.interval.total_seconds(), 1),
            args=[engine, job],
            id=job.name,
            name=job.name,
            next_run_time=datetime.now(UTC),
        )
    mqtt = MqttConnector(settings, engine)
    mqtt.start()
    scheduler.start()
    log.info(
        "facility daemon started with database %s, broker %s", db.redact(settings.url), mqtt.broker
    )
    stop.wait()
    log.info("stopping: letting the running job finish its batch")
    mqtt.stop()  # writes and acks what is queued, publishes offline
    scheduler.shutdown(wait=True)
    _audit(engine, actor, "daemon.stop")
    log.info("facility daemon stopped")
    return 0


def _audit(engine: Engine, actor: str, action: str) -> None:
    with db.session_scope(engine) as session:
        audit.append(session, now=datetime.now(UTC), actor=actor, action=action)


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum, _frame) -> None:
        if stop.is_set():  # a second signal: the operator wants out now
            log.warning("second signal, exiting at once")
            os._exit(1)  # not sys.exit: the scheduler's worker threads would keep us alive
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
