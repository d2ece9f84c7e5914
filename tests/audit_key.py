"""The audit key the tests' template databases are signed with, and a way to hand it to a home.

A database copied from a template carries entries signed with this key, so the home of every
process that uses such a database (the test's own, a daemon's) needs it, as a real host would.
A test that runs `facility init` on a database of its own gets a fresh key from init instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from facility.trail import audit

TEST_KEY = bytes(range(32))


def give_key(home: Path) -> Path:
    """Write the test key into `home` (created 0700) unless a key is there already."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / audit.KEY_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(TEST_KEY.hex() + "\n")
    return path
