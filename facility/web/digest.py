"""Repeated refusals written to the audit trail once per window, with a count, not once each.

The first refusal of a kind (an actor, and the route it was refused) is audited at once. The same
refusal again within `WINDOW` is only counted; when the window has passed, the count goes into one
entry (`refused.repeated`). So a client that hammers a refused route adds two entries a window
to the permanent trail, not one per request, and the trail still says how many there were.

Pure bookkeeping in memory: the caller writes the entries `note` and `due` hand back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)
CAPACITY = 10_000  # open windows kept at most; the oldest is handed back early beyond that


@dataclass
class Repeats:
    """Refusals of one kind counted, not yet written, since `first` and up to `last`."""

    key: tuple[str, ...]
    started: datetime
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None


class Digest:
    """Open windows per key; safe to share between the server's threads."""

    def __init__(self, window: timedelta = WINDOW, capacity: int = CAPACITY) -> None:
        self.window = window
        self.capacity = capacity
        self._lock = threading.Lock()
        self._open: dict[tuple[str, ...], Repeats] = {}  # oldest window first
        self._ready: list[Repeats] = []  # windows over, with repeats, not yet handed back

    def note(self, key: tuple[str, ...], now: datetime) -> bool:
        """Count one refusal; True when it opens a window and is to be audited now."""
        with self._lock:
            current = self._open.get(key)
            if current is not None and now - current.started < self.window:
                current.count += 1
                current.first = current.first or now
                current.last = now
                return False
            self._close(self._open.pop(key, None))
            self._open[key] = Repeats(key, now)
            while len(self._open) > self.capacity:
                self._close(self._open.pop(next(iter(self._open))))
            return True

    def due(self, now: datetime) -> list[Repeats]:
        """Counts of windows that have passed, taken out to be written."""
        with self._lock:
            for key in [k for k, r in self._open.items() if now - r.started >= self.window]:
                self._close(self._open.pop(key))
            ready, self._ready = self._ready, []
        return ready

    def drain(self) -> list[Repeats]:
        """Every count not yet written (at shutdown)."""
        with self._lock:
            for repeats in self._open.values():
                self._close(repeats)
            self._open = {}
            ready, self._ready = self._ready, []
        return ready

    def _close(self, repeats: Repeats | None) -> None:
        if repeats is not None and repeats.count:
            self._ready.append(repeats)
