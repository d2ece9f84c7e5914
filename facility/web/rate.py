"""A sliding one-minute limit per key, in the server's memory (kiosks: per device and address).

Like the login limits (`throttle`), it costs no database write, is bounded in memory (the oldest
keys are dropped first), and each web process keeps its own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=1)
CAPACITY = 10_000


class Rate:
    """At most `per_minute` actions per key in any minute."""

    def __init__(self, per_minute: int, *, capacity: int = CAPACITY) -> None:
        self.per_minute = per_minute
        self.capacity = capacity
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()

    def take(self, keys: list[str], now: datetime) -> datetime | None:
        """Count one action under every key; None if allowed, else when to try again.

        A refused action is not counted, so waiting out the minute always helps.
        """
        with self._lock:
            windows = []
            for key in keys:
                recent = self._seen.get(key)
                if recent is None:
                    recent = deque()
                    self._seen[key] = recent
                    while len(self._seen) > self.capacity:
                        self._seen.popitem(last=False)
                self._seen.move_to_end(key)
                while recent and recent[0] <= now - WINDOW:
                    recent.popleft()
                windows.append(recent)
            full = [w for w in windows if len(w) >= self.per_minute]
            if full:
                return max(w[0] for w in full) + WINDOW
            for recent in windows:
                recent.append(now)
            return None
