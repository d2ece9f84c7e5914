"""One pass over the outbox: claim what is due, send each outside any transaction, note the outcome.

Run by the daemon's `notify` job and by the web server's background sender (`web.notifier`);
both may run at once, on one or several hosts: the claims keep them apart. A failure is logged
here in words that name no one, once per outage (again only when the reason changes, and a line
when sending works again), and stays on the row for `facility doctor`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Engine

from facility.errors import NotDelivered
from facility.notify import outbox, send
from facility.settings import Notify
from facility.store import db
from facility.timefmt import site_text

log = logging.getLogger("facility.notify")
BATCH = 50


class _Outage:
    """The reason last logged per channel in this process: an outage is logged once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._said: dict[str, str] = {}

    def failed(self, channel: str, reason: str) -> bool:
        """Note a failure; whether it is news (a new outage or a new reason)."""
        with self._lock:
            news = self._said.get(channel) != reason
            self._said[channel] = reason
            return news

    def worked(self, channel: str) -> bool:
        """Note a success; whether it ends an outage that was logged."""
        with self._lock:
            return self._said.pop(channel, None) is not None


_OUTAGE = _Outage()


@dataclass
class Pass:
    """What one pass did."""

    sent: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        """The daemon job's outcome: counts, or `failed` with the first reason."""
        if self.failed:
            others = len(set(self.reasons)) - 1
            more = f" (and {others} other reason(s))" if others else ""
            return {
                "failed": f"{self.failed} notification(s) not delivered: {self.reasons[0]}{more}",
                "sent": self.sent,
            }
        return {"sent": self.sent}


def lease(notify: Notify) -> timedelta:
    """How long a claim lasts: connect, TLS, login and data, each up to the timeout, and a margin."""
    return notify.timeout * 5 + timedelta(seconds=30)


def send_due(
    engine: Engine,
    notify: Notify,
    *,
    now: datetime,
    site_zone: tzinfo,
    clock: Callable[[], datetime],
    site_id: int | None = None,
) -> Pass:
    """Send every notification due at `now` (in batches) of the site `site_id` (None: of every
    site); `clock` stamps signatures and mail."""
    done = Pass()
    while True:
        with db.session_scope(engine) as session:
            claimed = outbox.claim_due(
                session, now=now, lease=lease(notify), limit=BATCH, site_id=site_id
            )
        for notification in claimed:
            try:
                send.deliver(notification, notify, site_zone=site_zone, clock=clock)
            except NotDelivered as err:
                reason = str(err)
                with db.session_scope(engine) as session:
                    again = outbox.failed(
                        session,
                        notification.id,
                        now=now,
                        error=reason,
                        pause=notify.retry_interval,
                    )
                done.failed += 1
                done.reasons.append(reason)
                news = _OUTAGE.failed(notification.channel, reason)
                log.log(
                    logging.WARNING if news else logging.DEBUG,
                    "host notification %d (%s, attempt %d) not delivered: %s; tried again at %s%s",
                    notification.id,
                    notification.channel,
                    notification.attempts,
                    reason,
                    site_text(again, site_zone) if again else "(it is gone)",
                    " (said once until the reason changes)" if news else "",
                )
            else:
                with db.session_scope(engine) as session:
                    outbox.delivered(session, notification.id)
                done.sent += 1
                if _OUTAGE.worked(notification.channel):
                    log.info("host notifications by %s are delivered again", notification.channel)
        if len(claimed) < BATCH:
            return done
