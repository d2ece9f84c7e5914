"""Limits on wrong passwords, kept in the server's memory: no database write for a failed login.

Two limits, neither of which lets a stranger lock a real user out:

- per client address: at most `per_minute` wrong passwords in any minute; beyond that every login
  from the address is answered 429 at once, without checking anything;
- per account name and client address: after `MAX_FAILURES` wrong passwords in a row for one name
  from one address, that name is locked at that address for `LOCKOUT`. The same name from another
  address is not affected, and a name with no account is counted and locked exactly like one with
  an account, so neither the answers nor their timing tell which accounts exist.

Memory stays bounded: each table keeps at most `capacity` entries, oldest dropped first. The
state lasts as long as the process; several web processes each keep their own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
WINDOW = timedelta(minutes=1)
CAPACITY = 10_000
_NAME_KEY = 64  # an account name is at most this long; a longer guess is keyed by its start


@dataclass(frozen=True)
class Verdict:
    """Why a login may not even be tried now, and until when."""

    reason: str  # "address" (too many from the address) or "locked" (this name at this address)
    until: datetime


@dataclass
class _Streak:
    failures: int = 0
    locked_until: datetime | None = None


_K = TypeVar("_K")
_V = TypeVar("_V")


class LoginThrottle:
    """The two limits; safe to share between the server's threads."""

    def __init__(self, per_minute: int, *, capacity: int = CAPACITY) -> None:
        self.per_minute = per_minute
        self.capacity = capacity
        self._lock = threading.Lock()
        self._addresses: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._streaks: OrderedDict[tuple[str, str], _Streak] = OrderedDict()

    def check(self, address: str, name: str, now: datetime) -> Verdict | None:
        """None if a login for `name` from `address` may be tried now."""
        with self._lock:
            recent = self._addresses.get(address)
            if recent is not None and len(recent) >= self.per_minute:
                until = recent[0] + WINDOW
                if until > now:
                    return Verdict("address", until)
            streak = self._streaks.get(_key(address, name))
            if streak and streak.locked_until and streak.locked_until > now:
                return Verdict("locked", streak.locked_until)
        return None

    def failed(self, address: str, name: str, now: datetime) -> datetime | None:
        """Count a wrong password; the end of the lock when this one locks the name here."""
        with self._lock:
            recent = self._remember(self._addresses, address, deque)
            recent.append(now)
            while len(recent) > self.per_minute:
                recent.popleft()
            streak = self._remember(self._streaks, _key(address, name), _Streak)
            if streak.locked_until and streak.locked_until <= now:
                streak.failures, streak.locked_until = 0, None
            streak.failures += 1
            if streak.failures >= MAX_FAILURES:
                streak.failures, streak.locked_until = 0, now + LOCKOUT
                return streak.locked_until
        return None

    def succeeded(self, address: str, name: str) -> None:
        """A right password: the name's streak at this address starts over."""
        with self._lock:
            self._streaks.pop(_key(address, name), None)

    def _remember(self, table: OrderedDict[_K, _V], key: _K, make: Callable[[], _V]) -> _V:
        value = table.get(key)
        if value is None:
            value = table[key] = make()
            while len(table) > self.capacity:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return value


def _key(address: str, name: str) -> tuple[str, str]:
    return address, name.strip().lower()[:_NAME_KEY]
