"""Removing camera segment files under the recordings root, never outside it (invariant 6).

A segment's path comes from the database, relative to the root. `remove` walks it one directory at a
time with `O_NOFOLLOW | O_DIRECTORY`, each step relative to the directory opened before it, and
unlinks the file relative to its parent's descriptor. No symlink is ever followed, and a directory
swapped for a symlink between the check and the unlink cannot redirect it: the kernel resolves
nothing by name above the file. The root itself is the operator's choice and may be a symlink.

`root_state` is the positive-evidence check (STYLE rule 6): a root that is missing, not a
directory, or empty (a mount point with nothing mounted) means nothing gets deleted.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from enum import StrEnum
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What opening a path component with O_NOFOLLOW | O_DIRECTORY says when it is a symlink
# (ELOOP) or not a directory at all (ENOTDIR): either way the path is not ours to follow.
_NOT_A_PLAIN_DIR = {errno.ELOOP, errno.ENOTDIR}


class Outcome(StrEnum):
    """What happened to one segment file."""

    deleted = "deleted"  # it was there and is gone now
    vanished = "vanished"  # it was already gone
    refused = "refused"  # the path leaves the root or goes through a symlink; left alone
    error = "error"  # the unlink failed (permissions, busy, read-only); try again next run


def root_state(root: Path) -> str | None:
    """Why nothing may be deleted under `root` (missing, not a directory, empty), or None."""
    try:
        with os.scandir(root) as entries:
            empty = next(entries, None) is None
    except FileNotFoundError:
        return f"recordings root {root} does not exist"
    except NotADirectoryError:
        return f"recordings root {root} is not a directory"
    except OSError as err:
        return f"recordings root {root} cannot be read: {err.strerror}"
    return f"recordings root {root} is empty (not mounted?)" if empty else None


def remove(root: Path, relpath: str) -> Outcome:
    """Delete the segment file `relpath` under `root` without leaving the root or following links."""
    parts = _safe_parts(relpath)
    if parts is None:
        log.warning("refused to delete %r: not a plain path inside the recordings root", relpath)
        return Outcome.refused
    try:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        # A missing root is no evidence that the file is gone (STYLE rule 6).
        log.warning("cannot delete %r: recordings root %s: %s", relpath, root, err.strerror)
        return Outcome.error
    try:
        parent = _open_parent(top, parts[:-1])
    except FileNotFoundError:
        return Outcome.vanished
    except _Refused:
        log.warning("refused to delete %r: a directory on its path is a symlink or a file", relpath)
        return Outcome.refused
    except OSError as err:
        log.warning("cannot delete %r: %s", relpath, err.strerror)
        return Outcome.error
    try:
        return _unlink_in(parent, parts[-1], relpath)
    finally:
        os.close(parent)


def _safe_parts(relpath: str) -> list[str] | None:
    """The path's components, or None when it is absolute, climbs with `..` or names nothing."""
    if not relpath or "\0" in relpath or relpath.startswith("/"):
        return None
    parts = list(PurePosixPath(relpath).parts)  # drops "." and empty components
    if not parts or ".." in parts:
        return None
    return parts


class _Refused(Exception):
    """A path component is a symlink or not a directory."""


def _open_parent(fd: int, directories: list[str]) -> int:
    """A descriptor of the file's parent directory, reached from `fd` without following links.

    Takes ownership of `fd`: it is closed, or returned when `directories` is empty.
    """
    try:
        for name in directories:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in _NOT_A_PLAIN_DIR:
                    raise _Refused(name) from err
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlink_in(parent: int, name: str, relpath: str) -> Outcome:
    try:
        mode = os.lstat(name, dir_fd=parent).st_mode
    except FileNotFoundError:
        return Outcome.vanished
    except OSError as err:
        log.warning("cannot delete %r: %s", relpath, err.strerror)
        return Outcome.error
    if not stat.S_ISREG(mode):
        # A symlink (even one pointing back inside), a directory, a fifo: not a segment file.
        log.warning("refused to delete %r: not a regular file", relpath)
        return Outcome.refused
    try:
        # Relative to the parent's descriptor: if `name` were swapped for a symlink meanwhile,
        # unlink removes the link itself, never its target.
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        return Outcome.vanished
    except OSError as err:
        log.warning("cannot delete %r: %s", relpath, err.strerror)
        return Outcome.error
    return Outcome.deleted
