"""Writing files that name people: private to their owner, whole or not at all, never via a symlink.

Every file facility writes with a list of people or devices in it (`--output` of on-site, report,
subject export and the blocklist; the daemon's on-site snapshot) goes through `write_private`:

- created 0600 whatever the umask or the mode of a file it replaces: the new content is written
  to a fresh temporary file (O_EXCL, O_NOFOLLOW) beside the target and renamed over it, so an
  existing file's mode, owner and hard links never carry over, and a reader sees the old file or
  the new one, never half of it;
- a symbolic link at the path is refused, never followed, and its target is left untouched (a
  link planted there a moment later is replaced by the rename, not followed either);
- a missing folder, a folder given as the file, or a folder we may not write raise InputError
  naming the option, so the CLI says so in one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import stat
from pathlib import Path

from facility.errors import FacilityError, InputError

PRIVATE = 0o600
_LIBC = ctypes.CDLL(None, use_errno=True)  # the C library, for syncfs(2), which os lacks
# Errors that mean the path given was wrong for us, as opposed to the disk failing under us.
_BAD_PATH = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "is a directory",
    errno.ELOOP: "is a symbolic link",
    errno.ENAMETOOLONG: "name too long",
}


def write_private(path: Path, text: str, *, what: str = "--output") -> None:
    """Replace `path` with `text` (UTF-8), mode 0600, without following a symlink."""
    path = Path(path)
    _check_target(path, what)
    folder = path.parent
    temporary = folder / f".{path.name}.{secrets.token_hex(6)}"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, PRIVATE)
    except OSError as err:
        raise _error(err, path, what) from err
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), PRIVATE)  # the umask may only have narrowed it; be exact
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise _error(err, path, what) from err
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _sync_directory(folder)


def private_directory(path: Path) -> str | None:
    """Create `path` 0700 if missing; make it 0700 if other users may enter it.

    A home that only its group may enter (0750, e.g. systemd's StateDirectoryMode) was shared on
    purpose and stays so; one open to everyone (0755, what a umask gives) was not. Returns what
    was changed, for `facility init` to say so, or None.
    """
    try:
        if not path.exists():
            path.mkdir(mode=0o700, parents=True)
            return None
        found = path.lstat()
        mode = stat.S_IMODE(found.st_mode)
        if stat.S_ISDIR(found.st_mode) and mode & stat.S_IRWXO:
            os.chmod(path, 0o700)
            return f"{path} {mode:o} -> 700"
    except OSError as err:
        raise FacilityError(f"home {path}: cannot make it private: {err.strerror}") from err
    return None


def _check_target(path: Path, what: str) -> None:
    if not path.name or path.name in (".", ".."):
        raise InputError(f"{what}: {path} names a directory, not a file")
    try:
        found = path.lstat()
    except FileNotFoundError:
        found = None
    except OSError as err:
        raise _error(err, path, what) from err
    if found is not None:
        if stat.S_ISLNK(found.st_mode):
            raise InputError(
                f"{what}: {path} is a symbolic link; refusing to write through it (remove it, "
                "or give the real path)"
            )
        if stat.S_ISDIR(found.st_mode):
            raise InputError(f"{what}: {path} is a directory; give a file name in it")
        if not stat.S_ISREG(found.st_mode):
            raise InputError(f"{what}: {path} is not a regular file")
    folder = path.parent
    if not folder.is_dir():
        state = "is not a directory" if folder.exists() else "does not exist"
        raise InputError(f"{what}: directory {folder.absolute()} {state}")


def _error(err: OSError, path: Path, what: str) -> FacilityError:
    reason = _BAD_PATH.get(err.errno or 0)
    if reason is not None:
        return InputError(f"{what}: cannot write {path}: {reason}")
    return FacilityError(f"{what}: cannot write {path}: {err.strerror or err}")


def _sync_directory(folder: Path) -> None:
    """Make the rename itself durable: a power cut must not bring back the previous file."""
    with contextlib.suppress(OSError):  # some file systems cannot sync a directory
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_file_system(fd: int) -> None:
    """Make everything written on the file system holding open file `fd` durable (syncfs(2)).

    For writing many files at once: one flush of that file system, where an fsync per file waits
    for the disk once per file; other file systems are not touched (os.sync would flush them all).
    Raises OSError when the kernel reports a failed write-back.
    """
    syncfs = getattr(_LIBC, "syncfs", None)
    if syncfs is None:  # not Linux: no per-file-system call
        os.sync()
        return
    if syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
