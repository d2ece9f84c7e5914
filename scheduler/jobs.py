"""Running jobs: the clock read, the work done, the outcome logged once and stored.

A job's work returns a dict of counts, or one of two outcomes that are not counts:
`{"skipped": why}` (nothing to do here: another daemon holds the lock), and `{"failed": why}` (the
work could not be done, and its connector already logged why, once per outage: a refused scan, an
unreadable lease file). A job that raises has failed too, and the runner logs that one line itself.
Either failure is stored and retried at the job's next time; the same failure again is not logged
again until it changes or the job works again (STYLE rule 7: jobs never die silently, nor spam the
log every second while a source is down).

A skipped run stores nothing: with several daemons on one database, `job_runs` then shows when the
work was last done by any of them, not when one of them last stood aside.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from facility.errors import FacilityError
from facility.operations import jobruns
from facility.store import db
from facility.store.models import DEFAULT_SITE
from scheduler.logs import fields

log = logging.getLogger("facility.jobs")

Work = Callable[[datetime], dict[str, Any] | None]
# Told of every run that did not stand aside: job name, its clock, seconds, detail, failure or None.
Outcome = Callable[[str, datetime, float, dict[str, Any], str | None], None]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    """A named piece of work and how often it runs."""

    name: str
    interval: timedelta
    work: Work


class JobRunner:
    """Runs jobs for one daemon, remembering which are failing and which are running now."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] = _utc_now,
        *,
        site_id: int = DEFAULT_SITE,
    ) -> None:
        self._engine = engine
        self._site_id = site_id  # job runs are kept per site: each site's daemon runs its own
        self._clock = clock
        self._lock = threading.Lock()
        self._failing: dict[str, tuple[str, int, bool]] = {}  # job -> (reason, runs, said)
        self._running: dict[str, float] = {}  # job -> monotonic start
        self._overran: set[str] = set()  # jobs whose overrun was logged during this run
        self.outcomes: list[Outcome] = []  # the metrics listen here

    def run(self, job: Job) -> None:
        """Run `job` once, log what it did, and store its success or failure."""
        now = self._clock()
        started = time.monotonic()
        with self._lock:
            self._running[job.name] = started
        try:
            detail, reason = self._work(job, now)
        finally:
            with self._lock:
                self._running.pop(job.name, None)
                self._overran.discard(job.name)
        seconds = round(time.monotonic() - started, 3)
        if "skipped" not in detail or reason is not None:
            for outcome in self.outcomes:
                outcome(job.name, now, seconds, detail, reason)
        if reason is not None:
            self._failed(job, now, reason, seconds, said="failed" in detail)
        elif "skipped" in detail:
            log.info(
                "job %s skipped: %s",
                job.name,
                detail["skipped"],
                extra=fields(event="job.skipped", job=job.name, reason=detail["skipped"]),
            )
        else:
            self._succeeded(job, now, detail, seconds)

    def running(self) -> list[str]:
        """The jobs running at this moment."""
        with self._lock:
            return sorted(self._running)

    def stuck(self, limit: timedelta) -> list[tuple[str, float]]:
        """The jobs running for longer than `limit`, with how many seconds they have run."""
        now = time.monotonic()
        with self._lock:
            running = list(self._running.items())
        return [(name, now - t) for name, t in running if now - t > limit.total_seconds()]

    def overran(self, name: str) -> None:
        """A run of `name` was due while the last one still ran; say so once per long run."""
        with self._lock:
            if name not in self._running or name in self._overran:
                return
            self._overran.add(name)
            took = time.monotonic() - self._running[name]
        log.info(
            "job %s still running after %.0f s; its next run waits until it is done",
            name,
            took,
            extra=fields(event="job.overran", job=name, seconds=round(took, 3)),
        )

    # --- outcomes ----------------------------------------------------------------------------

    @staticmethod
    def _work(job: Job, now: datetime) -> tuple[dict[str, Any], str | None]:
        try:
            detail = job.work(now) or {}
        except Exception as err:  # any failure is logged, stored and retried next time
            reason = str(err) if isinstance(err, FacilityError) else f"{type(err).__name__}: {err}"
            return {}, (reason.strip().splitlines() or [type(err).__name__])[0]
        if "failed" in detail:
            return detail, str(detail["failed"])
        return detail, None

    def _failed(self, job: Job, now: datetime, reason: str, seconds: float, said: bool) -> None:
        logged, runs, _ = self._failing.get(job.name, (None, 0, said))
        self._failing[job.name] = (reason, runs + 1, said)
        if said:  # the connector logged it (once per outage); the runner only stores it
            log.debug("job %s failed: %s", job.name, reason)
        elif reason != logged:
            log.error(
                "job %s failed: %s (runs again every %s; logged once until it changes)",
                job.name,
                reason,
                every_text(job.interval),
                extra=fields(event="job.failed", job=job.name, reason=reason, seconds=seconds),
            )
        else:
            log.debug("job %s failed again: %s", job.name, reason)
        self._store(job.name, now, quiet=reason == logged, error=reason)

    def _succeeded(self, job: Job, now: datetime, detail: dict[str, Any], seconds: float) -> None:
        failing = self._failing.pop(job.name, None)
        if failing is not None:
            log.log(
                logging.DEBUG if failing[2] else logging.INFO,  # the connector says it itself
                "job %s works again after %d failed run(s)",
                job.name,
                failing[1],
                extra=fields(event="job.recovered", job=job.name, failed_runs=failing[1]),
            )
        counts = ", ".join(f"{k}={v}" for k, v in detail.items())
        log.info(
            "job %s done in %.2f s%s",
            job.name,
            seconds,
            f": {counts}" if counts else "",
            extra=fields(event="job.done", job=job.name, seconds=seconds, **_plain(detail)),
        )
        self._store(job.name, now, detail={**detail, "seconds": seconds})

    def _store(self, name: str, now: datetime, *, quiet: bool = False, **outcome: Any) -> None:
        try:
            with db.session_scope(self._engine) as session:
                jobruns.record(session, name, now=now, site_id=self._site_id, **outcome)
        except FacilityError as err:  # the database is the thing that is down: say so, carry on
            level = logging.DEBUG if quiet else logging.WARNING
            log.log(level, "could not record the run of job %s: %s", name, err)


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail's values as JSON-ready scalars, keys that clash with the log's own renamed."""
    reserved = {"event", "job", "seconds", "time", "level", "logger", "message"}
    return {
        (f"detail_{k}" if k in reserved else k): (
            v if isinstance(v, int | float | str | bool) or v is None else str(v)
        )
        for k, v in detail.items()
    }


def every_text(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:g} min"
