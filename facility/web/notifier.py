"""The web server's background sender: hosts hear of a sign-in at once, and nobody waits for it.

A page that signed someone in calls `kick` after its transaction committed; one thread of this
process then sends what is due (`notify.deliver`), while the answer is already on its way. Kicks
that come while it sends are folded into one more pass, which goes over every office's outbox in
its own time zone (a server may serve several). Whatever fails waits in the outbox for
the daemon's `notify` job, which retries it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from facility import sites
from facility.notify import deliver
from facility.settings import Settings
from facility.store import db
from facility.store.models import row_id

log = logging.getLogger("facility.web")


class Notifier:
    """One daemon thread, started on the first kick, sending the outbox when kicked."""

    def __init__(self, engine: Engine, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Send what is due soon, on the background thread; return at once."""
        if not self._settings.notify.configured or self._stopping.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="facility-notify", daemon=True
                )
                self._thread.start()
        self._wanted.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the current pass; what is left waits for the daemon."""
        self._stopping.set()
        self._wanted.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stopping.is_set():
                return
            self._wanted.clear()
            try:
                # Office by office: each message tells the time of the office it was signed in at.
                with db.read_scope(self._engine) as session:
                    offices = [
                        (row_id(s), sites.zone_of(s, self._settings))
                        for s in sites.listing(session)
                    ]
                for site_id, zone in offices:
                    deliver.send_due(
                        self._engine,
                        self._settings.notify,
                        now=self._clock(),
                        site_zone=zone,
                        clock=self._clock,
                        site_id=site_id,
                    )
            except Exception:  # the database away, say: the daemon's job tries again
                log.exception("sending host notifications failed; the daemon will retry")
