"""Running one job: the clock read, the work done, the outcome logged once and stored.

A job that fails logs one line with the reason, records the failure and runs again at its next
time; it never takes the scheduler down with it (STYLE rule 7).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from facility import db, jobruns
from facility.errors import FacilityError

log = logging.getLogger("facility.jobs")

Work = Callable[[datetime], dict | None]


@dataclass(frozen=True)
class Job:
    """A named piece of work and how often it runs."""

    name: str
    interval: timedelta
    work: Work


def run_job(
    engine: Engine, job: Job, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> None:
    """Run `job` once, log what it did, and store its success or failure."""
    now = clock()
    try:
        detail = job.work(now) or {}
    except Exception as err:  # any failure is logged, stored and retried next time
        reason = str(err) if isinstance(err, FacilityError) else f"{type(err).__name__}: {err}"
        log.error("job %s failed: %s", job.name, reason.splitlines()[0] if reason else "")
        _store(engine, job.name, now, error=reason)
        return
    if detail.get("skipped"):
        log.info("job %s skipped: %s", job.name, detail["skipped"])
    else:
        counts = ", ".join(f"{k}={v}" for k, v in detail.items())
        log.info("job %s done%s", job.name, f": {counts}" if counts else "")
    _store(engine, job.name, now, detail=detail)


def _store(engine: Engine, name: str, now: datetime, **outcome) -> None:
    try:
        with db.session_scope(engine) as session:
            jobruns.record(session, name, now=now, **outcome)
    except FacilityError as err:  # the database is the thing that is down: say so, carry on
        log.warning("could not record the run of job %s: %s", name, err)
