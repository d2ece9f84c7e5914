"""What every request handler shares: the settings, the clock, the database and the templates."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from itsdangerous import URLSafeTimedSerializer
from jinja2 import Environment
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.requests import Request

from facility.settings import Settings
from facility.store import db
from facility.web.digest import Digest
from facility.web.notifier import Notifier
from facility.web.rate import Rate
from facility.web.throttle import LoginThrottle

HASHES_AT_ONCE = 1  # one argon2 check already takes much memory and every core for a while
HASH_WAIT = 3.0  # seconds a login waits for its turn; longer would tie up the server's threads
HASH_NICENESS = 10  # password checks yield the CPU to door events, the DHCP hook, the daemon
T = TypeVar("T")


class Busy(Exception):
    """Too many passwords are being checked at once."""


@dataclass(frozen=True)
class Web:
    """The app's state, built once by `create_app` from what the edge passed in."""

    settings: Settings
    engine: Engine
    clock: Callable[[], datetime]
    templates: Environment
    signer: URLSafeTimedSerializer
    throttle: LoginThrottle
    digest: Digest
    notifier: Notifier
    kiosk_rate: Rate
    site: str | None = None  # the site every terminal of this server serves (`[web] site`)
    turns: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(HASHES_AT_ONCE)
    )
    hasher: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            HASHES_AT_ONCE, thread_name_prefix="password-check", initializer=_yield_cpu
        )
    )

    def now(self) -> datetime:
        """The current instant from the injected clock, aware UTC."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the web clock must return an aware datetime")
        return now.astimezone(UTC)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error."""
        with db.session_scope(self.engine) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One transaction that only reads (no SQLite write lock)."""
        with db.read_scope(self.engine) as session:
            yield session

    def check_password(self, check: Callable[[], T]) -> T:
        """Run `check` (an argon2 hash) in the low-priority password thread, one at a time.

        Busy when the turn does not come within HASH_WAIT: a flood of logins waits in no queue.
        """
        if not self.turns.acquire(timeout=HASH_WAIT):
            raise Busy()
        try:
            return self.hasher.submit(check).result()
        finally:
            self.turns.release()


def web_of(request: Request) -> Web:
    """The Web state of the app serving `request`."""
    web: Web = request.app.state.web
    return web


def client_address(request: Request) -> str:
    """The client's address (a trusted proxy's X-Forwarded-For, else the peer)."""
    return request.client.host if request.client else "unknown"


def _yield_cpu() -> None:
    """Lower this thread's priority (Linux: per thread; the hash's own threads inherit it)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)
