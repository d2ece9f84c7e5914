"""Removing camera segment files under the recordings root, never outside it (invariant 6).

A segment's path comes from the database, relative to the root. It is walked one directory at a
time with `O_NOFOLLOW | O_DIRECTORY`, each step relative to the directory opened before it, and the
file is unlinked relative to its parent's descriptor. No symlink is ever followed, and a directory
swapped for a symlink between the check and the unlink cannot redirect it: the kernel resolves
nothing by name above the file. The root itself is the operator's choice and may be a symlink.

`Remover` does this for a batch: it keeps the root and the parent directories it walked to open
(at most `_MAX_OPEN_DIRS`, least recently used closed first) and, from the second file asked for in
a directory on, lists that directory once (`scandir`: its file types come with the names) instead
of an `lstat` per file. A name the listing shows as a regular file is unlinked relative to the
parent: if it became a symlink since, the link itself goes, never its target; if it became a
directory, the unlink fails (an error outcome). Any other name gets the `lstat` check, so a
symlink, a missing file or a non-regular file is judged on the spot, as `remove` does. The price:
a directory renamed elsewhere (even out of the root) while the batch runs is still reached through
its open descriptor until the batch ends, where `remove` alone holds it for one file.

`Remover.prune` then removes the directories the batch emptied (a Frigate hour or day once its
last segment expired), deepest first and each parent it empties in turn, never the root. Each is
reached the same way, relative to its parent's descriptor with no link followed, checked to be the
very directory the files were deleted from (device and inode), and removed with `rmdir`, which
the kernel refuses for a directory holding anything at all: a file the recorder just wrote keeps
its directory. Directories whose files had already vanished count too, so a crash between the
last unlink and the prune is made good by the next run.

`root_state` is the positive-evidence check (STYLE rule 6): a root that is missing, not a
directory, or empty (a mount point with nothing mounted) means nothing gets deleted.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import os
import stat
from collections import OrderedDict
from enum import StrEnum
from itertools import islice
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What opening a path component with O_NOFOLLOW | O_DIRECTORY says when it is a symlink
# (ELOOP) or not a directory at all (ENOTDIR): either way the path is not ours to follow.
_NOT_A_PLAIN_DIR = {errno.ELOOP, errno.ENOTDIR}
# Path components that name no file: `_safe_parts` drops the first two and refuses the last.
_NOT_NAMES = frozenset({"", ".", ".."})
# Parent directories a Remover keeps open. Purge order (oldest first) interleaves the cameras, so
# this must exceed the cameras recording at once for a directory to stay open between its files;
# past it each file costs a walk, as `remove` does. Well under the usual limit of 1 024 fds.
_MAX_OPEN_DIRS = 128
# Entries above which a directory is not listed (its files get an lstat each): bounds the memory a
# Remover holds to _MAX_OPEN_DIRS x this many names. A Frigate hour of one camera has 360.
_MAX_LISTED = 4096


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
    with Remover(root) as remover:
        return remover.remove(relpath)


class Remover:
    """Deletes many segment files under one root, keeping the directories it walks open meanwhile.

    Use it as a context manager, for one batch and from one thread: leaving it closes every
    descriptor it holds.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._top: int | None = None
        # Keyed by the canonical directory path ("a/b"), most recently used last.
        self._dirs: OrderedDict[str, _Dir] = OrderedDict()
        # Directories a file was deleted from (or found gone in): path -> (device, inode).
        self._touched: dict[str, tuple[int, int]] = {}

    def __enter__(self) -> Remover:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every directory this remover holds open; it opens them again if used after."""
        while self._dirs:
            os.close(self._dirs.popitem()[1].fd)
        if self._top is not None:
            top, self._top = self._top, None
            os.close(top)

    def remove(self, relpath: str) -> Outcome:
        """Delete the segment file `relpath` under the root, without leaving it or following links."""
        head, _, name = relpath.rpartition("/")
        # The keys are checked canonical paths, so a directory part equal to one is plain, and
        # the whole path with it when the last component is: no need to split and check again.
        held = self._dirs.get(head) if head and _plain_name(name) else None
        if held is None:
            return self._remove_checked(relpath)
        self._dirs.move_to_end(head)
        return self._note(head, held, held.unlink(name, relpath))

    def prune(self) -> int:
        """Remove the directories this remover emptied, and parents that empties; return how many.

        Never the root, nothing outside it, nothing reached through a symlink, and never a
        directory that holds anything (rmdir refuses it).
        """
        if self._top is None:
            self._touched.clear()
            return 0
        pending = [(-key.count("/"), key, ident) for key, ident in self._touched.items()]
        self._touched.clear()
        heapq.heapify(pending)
        queued = {key for _, key, _ in pending}
        removed = 0
        while pending:  # deepest first, so a parent is tried after all its emptied children
            _, key, ident = heapq.heappop(pending)
            parent_key, _, name = key.rpartition("/")
            parent = self._emptied_parent(parent_key, name, ident, key)
            if parent is None:
                continue
            removed += 1
            if parent_key and parent_key not in queued:
                queued.add(parent_key)
                heapq.heappush(pending, (-parent_key.count("/"), parent_key, parent.ident))
        return removed

    def _emptied_parent(
        self, parent_key: str, name: str, ident: tuple[int, int], key: str
    ) -> _Dir | None:
        """Remove directory `key` if it is still the one with `ident` and empty; its parent, or None."""
        assert self._top is not None, "remove_empty_dirs returns early without it"
        try:
            parent = self._parent(self._top, parent_key.split("/") if parent_key else [])
            found = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        except (OSError, _Refused):
            return None
        if not stat.S_ISDIR(found.st_mode) or (found.st_dev, found.st_ino) != ident:
            return None  # replaced by something else since: not what this batch emptied
        held = self._dirs.pop(key, None)
        if held is not None:
            os.close(held.fd)
        try:
            os.rmdir(name, dir_fd=parent.fd)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                log.warning("cannot remove empty directory %r: %s", key, err.strerror)
            return None
        return parent

    def _note(self, key: str, directory: _Dir, outcome: Outcome) -> Outcome:
        """Remember the directory of a file that is gone now, for `prune`."""
        if key and outcome in (Outcome.deleted, Outcome.vanished):
            self._touched.setdefault(key, directory.ident)
        return outcome

    def _remove_checked(self, relpath: str) -> Outcome:
        """`remove` for a path whose directory is not held open under that spelling."""
        parts = _safe_parts(relpath)
        if parts is None:
            log.warning(
                "refused to delete %r: not a plain path inside the recordings root", relpath
            )
            return Outcome.refused
        top = self._top if self._top is not None else self._open_root(relpath)
        if top is None:
            return Outcome.error
        try:
            parent = self._parent(top, parts[:-1])
        except FileNotFoundError:
            return Outcome.vanished
        except _Refused:
            log.warning(
                "refused to delete %r: a directory on its path is a symlink or a file", relpath
            )
            return Outcome.refused
        except OSError as err:
            log.warning("cannot delete %r: %s", relpath, err.strerror)
            return Outcome.error
        return self._note("/".join(parts[:-1]), parent, parent.unlink(parts[-1], relpath))

    def _open_root(self, relpath: str) -> int | None:
        """Open the root (no O_NOFOLLOW: it may be a symlink); None, logged, when it cannot be."""
        try:
            self._top = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            # A missing root is no evidence that the file is gone (STYLE rule 6).
            log.warning(
                "cannot delete %r: recordings root %s: %s", relpath, self._root, err.strerror
            )
        return self._top

    def _parent(self, top: int, directories: list[str]) -> _Dir:
        """The open directory reached by `directories` from `top`, walked to when not held."""
        key = "/".join(directories)
        held = self._dirs.get(key)
        if held is not None:
            self._dirs.move_to_end(key)
            return held
        held = _Dir(_open_below(top, directories))
        if len(self._dirs) >= _MAX_OPEN_DIRS:
            os.close(self._dirs.popitem(last=False)[1].fd)
        self._dirs[key] = held
        return held


def _safe_parts(relpath: str) -> list[str] | None:
    """The path's components, or None when it is absolute, climbs with `..` or names nothing."""
    if not relpath or "\0" in relpath or relpath.startswith("/"):
        return None
    # PurePosixPath(relpath).parts for a relative path, at a fraction of its cost per file.
    parts = [part for part in relpath.split("/") if part and part != "."]
    if not parts or ".." in parts:
        return None
    return parts


def _plain_name(name: str) -> bool:
    """Whether `name` is a file name as `_safe_parts` keeps one (it holds no slash already)."""
    return name not in _NOT_NAMES and "\0" not in name


class _Refused(Exception):
    """A path component is a symlink or not a directory."""


def _open_below(top: int, directories: list[str]) -> int:
    """A new descriptor of the directory reached from `top` by `directories`, following no link."""
    fd = top
    try:
        for name in directories:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in _NOT_A_PLAIN_DIR:
                    raise _Refused(name) from err
                raise
            if fd != top:
                os.close(fd)
            fd = child
    except BaseException:
        if fd != top:
            os.close(fd)
        raise
    return os.dup(top) if fd == top else fd


class _Dir:
    """An open parent directory, and the names that were regular files when it was listed."""

    __slots__ = ("fd", "files", "ident", "used")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.files: set[str] | None = None  # None: not listed (yet)
        self.used = False
        found = os.fstat(fd)
        self.ident = (found.st_dev, found.st_ino)

    def unlink(self, name: str, relpath: str) -> Outcome:
        """Delete the regular file `name` in this directory: listed ones directly, others checked."""
        if self.files is None and self.used:
            # A second file here: listing once is cheaper than an lstat for each of the rest.
            self.files = _regular_files(self.fd)
        self.used = True
        if self.files and name in self.files:
            self.files.discard(name)
            return _unlink(self.fd, name, relpath)
        return _unlink_in(self.fd, name, relpath)


def _regular_files(fd: int) -> set[str]:
    """Names of the regular files in directory `fd`; none when it is too large or unreadable."""
    try:
        with os.scandir(fd) as entries:
            listed = list(islice(entries, _MAX_LISTED + 1))
    except OSError:
        return set()
    if len(listed) > _MAX_LISTED:
        return set()
    return {entry.name for entry in listed if entry.is_file(follow_symlinks=False)}


def _unlink_in(parent: int, name: str, relpath: str) -> Outcome:
    """Delete `name` in `parent` if an lstat shows a regular file there now."""
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
    return _unlink(parent, name, relpath)


def _unlink(parent: int, name: str, relpath: str) -> Outcome:
    """Unlink `name` relative to `parent`, known to have been a regular file."""
    try:
        # Relative to the parent's descriptor: if `name` were swapped for a symlink meanwhile,
        # unlink removes the link itself, never its target; a directory makes it fail.
        os.unlink(name, dir_fd=parent)
    except FileNotFoundError:
        return Outcome.vanished
    except OSError as err:
        log.warning("cannot delete %r: %s", relpath, err.strerror)
        return Outcome.error
    return Outcome.deleted


# --- reading a segment, and writing below another root, with the same care ----------------------


class PathRefused(Exception):
    """A path leaves its root, goes through a symlink or names something not a regular file."""


def open_segment(root: Path, relpath: str) -> int:
    """A read-only descriptor of the regular file `relpath` under `root`, following no link.

    The walk is the purge's: each directory opened relative to the one before with O_NOFOLLOW, the
    file itself too, and checked to be a regular file once open (fstat), so what is read is what
    was checked. FileNotFoundError when it is not there; PathRefused when the path is not a plain
    one inside the root, or goes through a symlink, or is not a regular file.
    """
    parts = _safe_parts(relpath)
    if parts is None:
        raise PathRefused(f"{relpath!r} is not a plain path inside {root}")
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        parent = _open_below(top, parts[:-1])
    except _Refused as err:
        raise PathRefused(f"{relpath!r}: a directory on its path is a symlink or a file") from err
    finally:
        os.close(top)
    try:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise PathRefused(f"{relpath!r} is a symlink") from err
            raise
    finally:
        os.close(parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathRefused(f"{relpath!r} is not a regular file")
    return fd


def open_directory(root: Path, relpath: str, *, create: bool = False) -> int:
    """A descriptor of directory `relpath` under `root` (created 0700 if asked), following no link.

    PathRefused when the path is not plain or a part of it is a symlink or a file.
    """
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_directory_at(top, relpath, create=create)
    finally:
        os.close(top)


def open_directory_at(top: int, relpath: str, *, create: bool = False) -> int:
    """`open_directory` below the open directory `top` (a new descriptor, even for "")."""
    parts = _safe_parts(relpath) if relpath else []
    if parts is None:
        raise PathRefused(f"{relpath!r} is not a plain relative path")
    fd = os.dup(top)
    try:
        for name in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=fd)
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as err:
                if err.errno in _NOT_A_PLAIN_DIR:
                    raise PathRefused(f"{relpath!r}: {name!r} is a symlink or a file") from err
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def split(relpath: str) -> tuple[str, str]:
    """A plain relative path's directory part and file name; PathRefused for any other path."""
    parts = _safe_parts(relpath)
    if parts is None:
        raise PathRefused(f"{relpath!r} is not a plain relative path")
    return "/".join(parts[:-1]), parts[-1]
