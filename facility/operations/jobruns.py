"""The last success and failure of each daemon job at each site, for `doctor` and the report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from facility.settings import Settings
from facility.store.models import DEFAULT_SITE, JobRun

# Open-record limits are checked this often; no setting, the limits themselves are hours long.
AUTO_CLOSE_INTERVAL = timedelta(minutes=5)


def schedule(settings: Settings) -> dict[str, timedelta]:
    """The jobs the daemon runs under `settings`, by name, and how often: its and doctor's list."""
    jobs = {
        "purge": settings.purge.interval,
        "auto-close": AUTO_CLOSE_INTERVAL,
        "snapshot": settings.snapshot.interval,
    }
    if settings.camera.root is not None:
        jobs["camera-scan"] = settings.camera.scan_interval
    for source in settings.dhcp:
        jobs[lease_poll_name(source.path)] = source.poll_interval
    if settings.notify.configured:
        jobs["notify"] = settings.notify.retry_interval
    return jobs


def lease_poll_name(path: Path | str) -> str:
    """The job that reads one `[[dhcp]]` lease file."""
    return f"lease-poll:{path}"


def record(
    session: Session,
    job: str,
    *,
    now: datetime,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
    site_id: int = DEFAULT_SITE,
) -> None:
    """Note one run of `job` at a site: a success with its counts, or a failure with its reason.

    A reason may quote what a source sent (a name, a host name): a success forgets it, so such
    text lives only while the job keeps failing.
    """
    run = session.get(JobRun, (site_id, job)) or JobRun(site_id=site_id, job=job)
    if error is None:
        run.last_success = now
        run.last_detail = json.dumps(detail or {}, sort_keys=True, default=str)
        run.last_error = None
    else:
        run.last_failure = now
        run.last_error = error[:500]
    session.add(run)


def all_runs(session: Session, site_id: int | None = None) -> list[JobRun]:
    """Every job that has run at least once (at one site, or at every site), by site and name."""
    statement = select(JobRun).order_by(col(JobRun.site_id), col(JobRun.job))
    if site_id is not None:
        statement = statement.where(JobRun.site_id == site_id)
    return list(session.exec(statement))
