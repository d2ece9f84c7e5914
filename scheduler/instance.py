"""One daemon per SQLite database: an exclusive lock on a file beside the database names its holder.

Two daemons on one SQLite file would both purge and both take the broker's session (PostgreSQL
sites coordinate through advisory locks and run several daemons on purpose). The lock is an
`flock` on `<database>.daemon`, held for the daemon's life and released by the kernel when the
process ends however it ends, so a crash never leaves a stale lock; the file holds the holder's
process id, host and start time for the message the next daemon gives.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from facility.errors import FacilityError
from facility.timefmt import site_text


class AlreadyRunning(FacilityError):
    """Another daemon holds this SQLite database (exit 1: stop it, or use that one)."""


class DaemonLock:
    """The lock one daemon holds on its SQLite database; `release` (or exit) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Free the lock (the file stays: removing it would race with a starting daemon)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def lock_path(database: Path) -> Path:
    """The lock file of a SQLite database file."""
    return database.with_name(database.name + ".daemon")


def claim(database: Path, *, now: datetime) -> DaemonLock:
    """Take the daemon lock of `database`, or raise AlreadyRunning naming the daemon that has it.

    `now` is the start in site time: the next daemon's message shows it as it is.
    """
    path = lock_path(database)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise FacilityError(
            f"cannot open the daemon lock {path}: {err.strerror}; check the permissions of "
            f"{path.parent}"
        ) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise AlreadyRunning(
            f"another facility daemon ({holder}) already runs on {database}; one daemon per "
            "SQLite database: stop that one first (several daemons need PostgreSQL)"
        ) from None
    os.ftruncate(fd, 0)
    started = site_text(now, now.tzinfo or UTC)  # `now` is in site time
    note = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
    os.pwrite(fd, json.dumps(note).encode(), 0)
    return DaemonLock(path, fd)


def _holder(fd: int) -> str:
    try:
        note = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(note['pid'])} on {note['host']}, started {note['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its process id is unknown"
