"""The site's secret, kept outside the database, and the keys derived from it.

`audit.key` in FACILITY_HOME (`load_or_create_key`, created by `facility init`) holds the
site secret. Subject hashes are HMAC-SHA256 under it (`subject_hash`); the chain key and the head
file's key are derived from it under labels that can never be a subject-hash message, so no value
the trail shows is ever a key. One file rather than one per use: every host that runs the CLI, the
web app or a daemon against one database already needs the same `audit.key`, so an install
upgrades without handing out a new secret, and there is one file to protect and back up. Without
it the link from a subject to their entries is lost and the chain can no longer be verified, so it
is backed up with the configuration, not with the database.

The process learns where the key is once, at its edge (`use_home`): every `append` needs it, and
the core is called from many places with a session only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from facility.errors import FacilityError

KEY_FILE = "audit.key"  # in FACILITY_HOME unless configured otherwise
KEY_BYTES = 32
# Derivation labels: a subject-hash message is `kind NUL value`; these hold no NUL.
_CHAIN_LABEL = b"facility audit chain v1"
_HEADS_LABEL = b"facility audit heads v1"


@dataclass
class _Site:
    home: Path | None = None


_SITE = _Site()


def use_home(home: Path) -> None:
    """Say where this process finds the site's `audit.key` and head file (FACILITY_HOME)."""
    _SITE.home = Path(home)


def site_home() -> Path:
    """The directory `use_home` named."""
    if _SITE.home is None:  # a programming error at an edge, not a user's
        raise FacilityError("the audit trail's home was not set (audit.use_home)")
    return _SITE.home


def site_key() -> bytes:
    """The site secret from `audit.key` in the home; it must exist (`facility init` creates it)."""
    path = site_home() / KEY_FILE
    try:
        return _read_key(path)
    except FileNotFoundError:
        raise FacilityError(
            f"audit key {path} is missing: every host that uses this database needs the same "
            "audit.key; copy it from the host that ran `facility init` (or restore it from backup)"
        ) from None
    except OSError as err:  # a symlink (O_NOFOLLOW), no permission
        raise FacilityError(f"cannot use audit key {path}: {err.strerror}") from err


def derived_key(secret: bytes, label: bytes) -> bytes:
    """A key for one use, derived from the site secret under `label`."""
    return hmac.new(secret, label, hashlib.sha256).digest()


def chain_key(secret: bytes | None = None) -> bytes:
    """The key that signs the chain (from the site's `audit.key` unless `secret` is given)."""
    return derived_key(site_key() if secret is None else secret, _CHAIN_LABEL)


def heads_key(secret: bytes | None = None) -> bytes:
    """The key that signs the lines of the head file."""
    return derived_key(site_key() if secret is None else secret, _HEADS_LABEL)


def load_or_create_key(path: Path) -> bytes:
    """The site's subject-hash key from `path`, created (mode 0600, 32 random bytes) if missing."""
    try:
        try:
            return _read_key(path)
        except FileNotFoundError:
            _create_key(path)
        return _read_key(path)
    except OSError as err:  # a symlink (O_NOFOLLOW), no permission, a read-only home
        raise FacilityError(f"cannot use audit key {path}: {err.strerror}") from err


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        content = handle.read(4 * KEY_BYTES)
    # Group read is allowed (a `facility` group of CLI users); world access is not.
    if mode & (stat.S_IRWXO | stat.S_IWGRP):
        raise FacilityError(
            f"audit key {path} is accessible to others (mode {stat.S_IMODE(mode):o}); "
            "run chmod 600 (or 640 for a shared group) on it"
        )
    try:
        key = bytes.fromhex(content.decode("ascii").strip())
    except ValueError:  # not ASCII, or not hex
        key = b""
    if len(key) != KEY_BYTES:
        raise FacilityError(f"audit key {path} is not {KEY_BYTES} bytes of hex; restore it")
    return key


def _create_key(path: Path) -> None:
    """Write a new key atomically: two processes creating it at once end up with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if another process got there first: then theirs is the key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
