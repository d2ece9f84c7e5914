"""The last success and failure of each daemon job, kept so `doctor` and the report can show them."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, select

from facility.models import JobRun


def record(
    session: Session,
    job: str,
    *,
    now: datetime,
    error: str | None = None,
    detail: dict | None = None,
) -> None:
    """Note one run of `job`: a success with its counts, or a failure with its reason."""
    run = session.get(JobRun, job) or JobRun(job=job)
    if error is None:
        run.last_success = now
        run.last_detail = json.dumps(detail or {}, sort_keys=True, default=str)
    else:
        run.last_failure = now
        run.last_error = error[:500]
    session.add(run)


def all_runs(session: Session) -> list[JobRun]:
    """Every job that has run at least once, by name."""
    return list(session.exec(select(JobRun).order_by(JobRun.job)))
