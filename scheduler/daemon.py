"""The daemon: an APScheduler 3.x scheduler that runs facility's jobs until SIGTERM or SIGINT.

`stop` is both the shutdown signal and what the main loop waits on, so a signal ends the wait at
once; the scheduler then finishes the job that is running and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from facility.db import redact
from facility.settings import Settings

log = logging.getLogger("facility.daemon")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600}


def build_scheduler() -> BackgroundScheduler:
    """A scheduler with the job defaults every facility job runs under."""
    return BackgroundScheduler(job_defaults=JOB_DEFAULTS, timezone="UTC")


def run(settings: Settings) -> int:
    """Run until a signal; return the exit code."""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()
    _install_signal_handlers(stop)
    scheduler = build_scheduler()
    scheduler.start()
    log.info("facility daemon started with database %s", redact(settings.url))
    stop.wait()
    log.info("stopping: finishing the running job")
    scheduler.shutdown(wait=True)
    log.info("facility daemon stopped")
    return 0


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum, _frame) -> None:
        if stop.is_set():  # a second signal: the operator wants out now
            log.warning("second signal, exiting at once")
            sys.exit(1)
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
