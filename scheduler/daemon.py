"""The daemon: an APScheduler 3.x scheduler running facility's jobs, and the MQTT connector.

Start: check the schema, find the site it runs for (`--site`, the `site` setting, or the only site:
one daemon per site, each with its own sources), build the jobs (`facility.operations.jobruns.schedule`
names them and their intervals, which `facility doctor` checks against), audit `daemon.start`,
connect to the broker in the background (a broker that is down stops nothing), start the scheduler.
Every job works at that site: its records, its purge, its snapshot, its job runs.

Stop, on SIGTERM or SIGINT: the `stop` event ends a long purge after its current batch; the
scheduler lets the running jobs finish while the MQTT connector writes and acknowledges what it
received and publishes `offline`; then `daemon.stop` is audited and the process exits 0. The stop
runs on a worker thread while the main thread only waits, so that a signal is handled at once even
when the stop is stuck (say, on a database lock): a second signal exits at once (1), and a stop
still unfinished after `STOP_LIMIT` seconds exits as well (1), inside systemd's TimeoutStopSec.
A job still running when the rest is done (a scan of a huge directory) is cut short: its current
transaction rolls back, and camera files are removed before their rows, so the next run converges.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from connectors import leasefile
from connectors.camera import Scanner
from connectors.camera_watch import Watcher
from connectors.mqtt import MqttConnector
from facility import sites
from facility.accounts.access import current_identity
from facility.errors import FacilityError
from facility.notify import deliver
from facility.operations import jobruns
from facility.retention import evidence, limits, purge
from facility.settings import DhcpSource, Settings, systemd_environment
from facility.store import db, locks
from facility.store.models import DEFAULT_SITE, Site, row_id
from facility.trail import audit, keys
from scheduler import instance, logs
from scheduler.jobs import Job, JobRunner, every_text
from scheduler.logs import fields
from scheduler.metrics import Metrics
from scheduler.notify import Notifier
from scheduler.snapshot import write_snapshot

log = logging.getLogger("facility.daemon")

# Generous grace: a run that is late (busy machine, suspended VM) still runs, once (coalesce).
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}
STOP_LIMIT = 8.5  # seconds from the signal to the exit, whatever is still running (bound: 10)
JOBS_LIMIT = 7.0  # seconds the running jobs get to finish their batch
MQTT_LIMIT = 5.0  # seconds the connector gets to write, acknowledge and say offline
REPEAT_SIGNAL = 1.0  # seconds: a signal this soon after the first is the same request (timeout(1))
SIGNAL_POLL = 0.1  # seconds between the main thread's looks at whether a signal came


def build_scheduler(runner: JobRunner | None = None) -> BackgroundScheduler:
    """A scheduler with the job defaults every facility job runs under, and its listener."""
    scheduler = BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")
    scheduler.add_listener(
        partial(_on_trouble, runner), EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
    )
    return scheduler


def _on_trouble(runner: JobRunner | None, event: JobEvent) -> None:
    if event.code == EVENT_JOB_MAX_INSTANCES:
        if runner is not None:
            runner.overran(event.job_id)
    elif event.code == EVENT_JOB_MISSED:
        log.warning(
            "job %s missed its run at %s",
            event.job_id,
            event.scheduled_run_time,
            extra=fields(event="job.missed", job=event.job_id),
        )
    else:  # JobRunner catches everything; this is a bug in the runner itself
        log.error(
            "job %s crashed: %s",
            event.job_id,
            event.exception,
            extra=fields(event="job.crashed", job=event.job_id),
        )


def build_jobs(
    engine: Engine,
    settings: Settings,
    actor: str,
    stop: threading.Event,
    scanner: Scanner | None = None,
    *,
    site: Site | None = None,
) -> list[Job]:
    """The jobs DESIGN.md lists for the daemon's site, named and timed by `jobruns.schedule`."""
    site = site or Site(
        id=DEFAULT_SITE, code="main", name="", timezone=settings.timezone, country="", created_by=""
    )
    zone = sites.zone_of(site, settings)
    work = {
        "purge": partial(_purge, engine, settings, actor, stop, site),
        "auto-close": partial(_auto_close, engine, settings, actor, site),
        "snapshot": partial(_snapshot, engine, settings, site),
    }
    if settings.camera.root is not None:
        # One per daemon: it remembers the directories' stamps, refusals and rejected files.
        scanner = scanner or Scanner(
            engine, settings, site_id=row_id(site), site_zone=zone, site_code=site.code
        )
        work["camera-scan"] = partial(_scan, scanner, actor, settings)
    for source in settings.dhcp:
        poll = partial(_poll, engine, source, settings, row_id(site), zone)
        work[jobruns.lease_poll_name(source.path)] = poll
    if settings.notify.configured:
        work["notify"] = partial(_notify, engine, settings, row_id(site), zone)
    schedule = jobruns.schedule(settings)
    assert set(schedule) == set(work), "jobruns.schedule and build_jobs disagree"
    return [Job(name, interval, work[name]) for name, interval in schedule.items()]


def _scan(scanner: Scanner, actor: str, settings: Settings, now: datetime) -> dict[str, Any]:
    # The first scan of a daemon walks the whole root, and so does one every reconcile_interval
    # after it: what a directory's stamp cannot show (a clock set back, a copied tree) is found then.
    every = settings.camera.reconcile_interval
    report = scanner.scan(now=now, actor=actor, full=scanner.reconciliation_due(now, every))
    if report.refused:
        return {"failed": f"refused to change anything: {report.refused}"}
    fields = (
        "mode",
        "dirs_read",
        "indexed",
        "vanished",
        "held_missing",
        "being_written",
        "rejected",
        "rejected_new",
    )
    done = {key: report.as_json()[key] for key in fields}
    if settings.evidence.root is not None:
        # Segments a hold keeps as they are recorded are preserved before the recorder's turn.
        preserved = evidence.preserve(
            scanner.engine, settings, now=now, actor=actor, site_id=scanner.site_id
        )
        done["preserved"] = preserved.done
    return done


def _poll(
    engine: Engine,
    source: DhcpSource,
    settings: Settings,
    site_id: int,
    zone: tzinfo,
    now: datetime,
) -> dict[str, Any]:
    report = leasefile.poll(
        engine, source, now=now, limits=settings.limits, site_zone=zone, site_id=site_id
    )
    if report.error:
        return {"failed": report.error}
    fields = ("leases", "stored", "updated", "rejected", "bytes_read")
    return {key: getattr(report, key) for key in fields}


def _snapshot(engine: Engine, settings: Settings, site: Site, now: datetime) -> dict[str, Any]:
    return write_snapshot(
        engine,
        settings.snapshot_dir,
        sites.zone_name(site, settings),
        now=now,
        site_id=row_id(site),
        site_name=site.name or None,
    )


def _purge(
    engine: Engine,
    settings: Settings,
    actor: str,
    stop: threading.Event | None,
    site: Site,
    now: datetime,
) -> dict[str, Any]:
    # `stop` ends a long purge after its current batch when the daemon is asked to stop.
    report = purge.run(
        engine,
        settings,
        now=now,
        actor=actor,
        stop=stop,
        only={row_id(site)},
        camera_site=row_id(site),
    )
    if report.skipped:
        return {"skipped": "another daemon is purging this database"}
    deleted = {kind: result.deleted for kind, result in report.kinds.items()}
    held = sum(result.held for result in report.kinds.values())
    files = report.files
    detail = {
        **deleted,
        "held": held,
        "files_deleted": files.deleted,
        "files_refused": files.refused,
    }
    if any("stopped early" in note for note in report.notes):
        detail["stopped_early"] = True
    return {**detail, "audit_head": report.audit_head}


def _notify(
    engine: Engine, settings: Settings, site_id: int, zone: tzinfo, now: datetime
) -> dict[str, Any]:
    # Retries what the sign-in queued and the web's sender could not deliver (or never saw): at
    # its own site, whose hosts its [notify] settings reach and whose time the message gives.
    done = deliver.send_due(
        engine,
        settings.notify,
        now=now,
        site_zone=zone,
        clock=lambda: datetime.now(UTC),
        site_id=site_id,
    )
    return done.as_detail()


def _auto_close(
    engine: Engine, settings: Settings, actor: str, site: Site, now: datetime
) -> dict[str, Any]:
    with locks.exclusive(engine, f"auto-close:{row_id(site)}") as mine:
        if not mine:
            return {"skipped": "another daemon is closing open records at this site"}
        with db.session_scope(engine) as session:
            return limits.apply(
                session, settings.limits, now=now, actor=actor, site_id=row_id(site), site=site.code
            )


def run(settings: Settings, *, log_format: str = "text", site_code: str | None = None) -> int:
    """Run for one site (`site_code`, else the `site` setting, else the only one) until a signal;
    return the exit code."""
    logs.configure(log_format)
    stop = threading.Event()
    signals = _Signals()
    signals.install()
    actor = current_identity().name
    engine = db.make_engine(settings.url)
    db.ensure_ready(engine)
    with db.read_scope(engine) as session:
        site = sites.resolve(session, explicit=site_code, configured=settings.site)
    keys.use_home(settings.home)
    keys.site_key()  # every job's audit entry is signed with it: a missing key stops the start
    lock = None
    if engine.dialect.name == "sqlite":  # PostgreSQL daemons share on purpose (advisory locks)
        assert engine.url.database is not None  # make_engine opens SQLite by file path only
        lock = instance.claim(
            Path(engine.url.database),
            now=datetime.now(UTC).astimezone(sites.zone_of(site, settings)),
        )
    try:
        return _run(settings, engine, actor, stop, signals, site)
    finally:
        if lock is not None:
            lock.release()


def _run(
    settings: Settings,
    engine: Engine,
    actor: str,
    stop: threading.Event,
    signals: _Signals,
    site: Site,
) -> int:
    runner = JobRunner(engine, site_id=row_id(site))
    zone = sites.zone_of(site, settings)
    scanner = None
    if settings.camera.root is not None:
        scanner = Scanner(
            engine, settings, site_id=row_id(site), site_zone=zone, site_code=site.code
        )
    jobs = build_jobs(engine, settings, actor, stop, scanner, site=site)
    # Checks the [mqtt] settings before anything starts.
    mqtt = MqttConnector(settings, engine, site_id=row_id(site), site_zone=zone)
    metrics = Metrics(engine, settings, site=site)
    metrics.mqtt = mqtt
    runner.outcomes.append(metrics.job_done)
    metrics.serve()  # a metrics address that is taken stops the start, before anything ran
    watcher = None
    if scanner is not None and settings.camera.watch:
        watcher = metrics.watcher = Watcher(scanner, actor)
    _audit(
        engine,
        actor,
        "daemon.start",
        pid=os.getpid(),
        host=socket.gethostname(),
        site=site.code,
        jobs=[job.name for job in jobs],
    )
    scheduler = build_scheduler(runner)
    for job in jobs:
        scheduler.add_job(
            runner.run,
            "interval",
            seconds=max(job.interval.total_seconds(), 1),
            args=[job],
            id=job.name,
            name=job.name,
            next_run_time=datetime.now(UTC),
        )
    mqtt.start()
    scheduler.start()
    if watcher is not None:
        watcher.start()
    notifier = Notifier(systemd_environment())
    log.info(
        "facility daemon started for site %s (%s) with database %s, broker %s; jobs: %s",
        site.code,
        site.name,
        db.redact(settings.url),
        mqtt.broker,
        ", ".join(job.name for job in jobs),
        extra=fields(
            event="daemon.start",
            pid=os.getpid(),
            site=site.code,
            database=db.redact(settings.url),
            broker=mqtt.broker,
            jobs=[job.name for job in jobs],
        ),
    )
    notifier.send("READY=1", "STATUS=running")
    name = signals.wait(_Pulse(notifier, runner, settings.daemon.stuck_after).tick)
    notifier.send("STOPPING=1")
    stop.set()  # a purge in progress ends after its current batch
    log.info("received %s", name, extra=fields(event="signal", signal=name))
    if watcher is not None:
        watcher.stop()
    metrics.stop()
    return _stop(engine, scheduler, mqtt, runner, actor, signals)


def _stop(
    engine: Engine,
    scheduler: BackgroundScheduler,
    mqtt: MqttConnector,
    runner: JobRunner,
    actor: str,
    signals: _Signals,
) -> int:
    """Stop on a worker thread, bounded; the main thread stays free to take a second signal."""
    scheduler.pause()  # no new run starts from here on; running ones finish their batch
    log.info(
        "stopping: running jobs finish their batch (%s)",
        ", ".join(runner.running()) or "none running",
        extra=fields(event="daemon.stopping", running=runner.running()),
    )
    outcome: dict[str, list[str]] = {}
    worker = threading.Thread(
        target=_wind_down,
        args=(engine, scheduler, mqtt, runner, actor, outcome),
        name="facility-stop",
        daemon=True,
    )
    worker.start()
    worker.join(max(0.0, STOP_LIMIT - (time.monotonic() - signals.first_at)))
    if worker.is_alive():
        log.error(
            "stop did not finish within %.0f s (still running: %s); exiting now",
            STOP_LIMIT,
            ", ".join(runner.running()) or "the shutdown itself",
            extra=fields(event="daemon.stop_overdue", running=runner.running()),
        )
        _exit_now(1)
    left = outcome.get("cut_short") or []
    log.info(
        "facility daemon stopped%s",
        f"; cut short: {', '.join(left)}" if left else "",
        extra=fields(event="daemon.stop", cut_short=left),
    )
    if left:  # their threads would hold up the interpreter's exit
        _exit_now(0)
    return 0


def _wind_down(
    engine: Engine,
    scheduler: BackgroundScheduler,
    mqtt: MqttConnector,
    runner: JobRunner,
    actor: str,
    outcome: dict[str, list[str]],
) -> None:
    """Let the jobs finish while MQTT winds down; then audit the stop."""
    deadline = time.monotonic() + JOBS_LIMIT
    jobs_done = threading.Thread(
        target=scheduler.shutdown, kwargs={"wait": True}, name="facility-jobs-stop", daemon=True
    )
    jobs_done.start()
    try:
        mqtt.stop(timeout=MQTT_LIMIT)  # writes and acks what is queued, publishes offline
    except Exception as err:  # stopping goes on: the broker keeps what we did not acknowledge
        log.warning("MQTT did not stop cleanly: %s", err)
    jobs_done.join(max(0.0, deadline - time.monotonic()))
    cut_short = runner.running() if jobs_done.is_alive() else []
    if cut_short:
        log.warning(
            "jobs still running after %.0f s, cut short: %s (the next start carries on)",
            JOBS_LIMIT,
            ", ".join(cut_short),
        )
    counters = mqtt.counters()
    try:
        _audit(
            engine,
            actor,
            "daemon.stop",
            pid=os.getpid(),
            cut_short=cut_short,
            mqtt_stored=counters.get("stored", 0),
            mqtt_rejected=counters.get("rejected", 0),
        )
    except FacilityError as err:
        log.error("could not audit the stop: %s", err)
    outcome["cut_short"] = cut_short


def _audit(engine: Engine, actor: str, action: str, **details: Any) -> None:
    with db.session_scope(engine) as session:
        audit.append(session, now=datetime.now(UTC), actor=actor, action=action, **details)


def _exit_now(code: int) -> None:
    """Exit without waiting for worker threads (a job cut short, a stop stuck on a lock)."""
    logging.shutdown()
    os._exit(code)


class _Signals:
    """SIGTERM and SIGINT: the first is noted for the main thread, a second (not a repeat) exits.

    The handler takes no lock: it interrupts the main thread wherever it is, and setting a
    `threading.Event` (or logging) from there deadlocks when the main thread holds that lock
    itself, in `Event.wait` or in the middle of a log line. So the main thread polls the note.
    """

    def __init__(self) -> None:
        self.first: str | None = None
        self.first_at = 0.0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    def wait(self, tick: Callable[[], None] = lambda: None) -> str:
        """Block until the first signal, calling `tick` between looks; return its name."""
        while self.first is None:
            tick()
            time.sleep(SIGNAL_POLL)  # a signal cuts the sleep short (PEP 475 resumes it after)
        return self.first

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.first is None:
            self.first_at = time.monotonic()
            self.first = name
            return
        if time.monotonic() - self.first_at < REPEAT_SIGNAL:
            return  # the same request delivered twice (timeout(1) signals child and group)
        logs.emergency(f"second signal ({name}): exiting at once", event="signal", signal=name)
        os._exit(1)


class _Pulse:
    """systemd's watchdog: pinged from the main thread while no job is stuck.

    A job still running after `daemon.stuck_after` (a lock that never comes, a mount that hangs)
    stops the pings, so systemd restarts the daemon after `WatchdogSec`; the pings resume if the
    job ends first. The main thread itself only waits for signals, so a ping also says it is alive.
    """

    def __init__(self, notifier: Notifier, runner: JobRunner, stuck_after: timedelta) -> None:
        self.notifier = notifier
        self.runner = runner
        self.stuck_after = stuck_after
        self.every = notifier.watchdog / 2 if notifier.watchdog else None
        self.last = 0.0
        self.stuck: list[str] = []

    def tick(self) -> None:
        if self.every is None or time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        stuck = self.runner.stuck(self.stuck_after)
        names = [name for name, _ in stuck]
        if names != self.stuck:
            if stuck:
                log.error(
                    "job %s has run for %.0f s (daemon.stuck_after is %s): stuck; the systemd "
                    "watchdog pings stop, so systemd restarts the daemon",
                    ", ".join(names),
                    max(seconds for _, seconds in stuck),
                    every_text(self.stuck_after),
                    extra=fields(event="job.stuck", jobs=names),
                )
            else:
                log.info("no job is stuck any more; the watchdog pings resume")
            self.stuck = names
        if not stuck:
            self.notifier.send("WATCHDOG=1")
