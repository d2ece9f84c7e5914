"""New segment files indexed as they close: inotify on the recordings root, through `watchdog`.

watchdog's inotify observer keeps a watch on every directory below the root (it adds one for each
directory created later, and re-adds them after a queue overflow); we ask it for files closed after
writing and files moved into place (a recorder that writes elsewhere and renames), and for files and
directories created (a new directory's first files may be written before its watch is in place). Its
callbacks run on watchdog's thread and only note the file and its directory; our own thread waits
`LATENCY` for more to arrive, then has the daemon's `Scanner` read those directories
(`Scanner.read`): the same merge, refusal rules and writing as a scan, with the closed files taken
as settled. The scans go on beside it: a lost event costs a scan interval, never a file.

Only inotify (Linux) is used: watchdog's fallbacks elsewhere poll the whole tree, which is what the
scans already do, better. Without it, or when the kernel's watch limit
(`fs.inotify.max_user_watches`) is reached, the daemon says so once and relies on the scans.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.api import BaseObserver

from connectors.camera import Scanner

log = logging.getLogger("facility.camera")

LATENCY = 0.3  # seconds: events that arrive together are read together


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Watcher:
    """Watches one scanner's root and hands what closed to `Scanner.read`."""

    def __init__(
        self, scanner: Scanner, actor: str, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self.scanner = scanner
        self.actor = actor
        self.clock = clock
        self._root = os.fsdecode(os.path.abspath(scanner.root))
        self._changed = threading.Condition()
        self._dirs: set[str] = set()
        self._closed: set[str] = set()
        self._stop = threading.Event()
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None
        self._failing: str | None = None
        self.watching = threading.Event()  # set once every directory has its watch
        self.indexed = 0  # files indexed through the watcher, for the metrics

    def start(self) -> None:
        """Start watching on a thread of its own (adding the watches walks the whole tree)."""
        self._thread = threading.Thread(target=self._run, name="facility-camera-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop watching; what was noted and not yet read is left to the next scan."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    # --- watchdog's side: note and wake ---------------------------------------------------------

    def noted(self, path: str | bytes, *, complete: bool) -> None:
        """A file at absolute `path` appeared (`complete`: closed or moved into place)."""
        relpath = self._relative(path)
        if relpath is None:
            return
        with self._changed:
            self._dirs.add(relpath.rpartition("/")[0])
            if complete:
                self._closed.add(relpath)
            self._changed.notify()

    def noted_dir(self, path: str | bytes) -> None:
        """A directory at absolute `path` appeared."""
        relpath = self._relative(path)
        if relpath is not None:
            with self._changed:
                self._dirs.add("" if relpath == "." else relpath)
                self._changed.notify()

    def _relative(self, path: str | bytes) -> str | None:
        relpath = os.path.relpath(os.fsdecode(path), self._root)
        return None if relpath.startswith("..") else relpath.replace(os.sep, "/")

    # --- our side: read what changed ------------------------------------------------------------

    def _run(self) -> None:
        if not self._watch():
            return
        while not self._stop.is_set():
            with self._changed:
                while not self._dirs and not self._stop.is_set():
                    self._changed.wait()
            if self._stop.wait(LATENCY):
                return
            with self._changed:
                dirs, self._dirs = self._dirs, set()
                closed, self._closed = self._closed, set()
            self._read(dirs, closed)

    def _watch(self) -> bool:
        try:
            from watchdog.events import (
                DirCreatedEvent,
                FileClosedEvent,
                FileCreatedEvent,
                FileMovedEvent,
            )
            from watchdog.observers.inotify import InotifyObserver
        except ImportError:  # not Linux: inotify is not there
            log.info("camera: inotify is not available here; new files wait for the next scan")
            return False
        handler = _Handler(self)
        observer = InotifyObserver()
        try:
            observer.schedule(
                handler,
                self._root,
                recursive=True,
                event_filter=[FileClosedEvent, FileMovedEvent, FileCreatedEvent, DirCreatedEvent],
            )
            observer.start()
        except OSError as err:
            log.warning(
                "camera: cannot watch %s (%s; raise fs.inotify.max_user_watches?): new files wait "
                "for the next scan",
                self._root,
                err.strerror or err,
            )
            return False
        self._observer = observer
        self.watching.set()
        log.info("camera: watching %s for new files (inotify)", self._root)
        return True

    def _read(self, dirs: set[str], closed: set[str]) -> None:
        try:
            report = self.scanner.read(dirs, now=self.clock(), closed=closed, actor=self.actor)
        except Exception as err:  # logged once per cause; the scans carry on regardless
            reason = f"{type(err).__name__}: {err}"
            if reason != self._failing:
                log.error("camera: reading what inotify reported failed: %s", reason)
            self._failing = reason
            return
        self._failing = None
        if report is not None and not report.refused:
            self.indexed += report.indexed
            if report.indexed:
                log.debug("camera: %d new file(s) indexed as they closed", report.indexed)


class _Handler(FileSystemEventHandler):
    """watchdog's event handler: only notes (it runs on watchdog's thread)."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            if event.event_type == "created":  # its files may predate its watch: read it
                self.watcher.noted_dir(event.src_path)
            return
        if event.event_type == "created":  # being written, or written before its directory's watch
            self.watcher.noted(event.src_path, complete=False)
        elif event.event_type == "closed":
            self.watcher.noted(event.src_path, complete=True)
        elif event.event_type == "moved" and event.dest_path:
            self.watcher.noted(event.dest_path, complete=True)
