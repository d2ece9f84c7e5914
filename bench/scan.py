"""Camera scan benchmark: what a scan costs on a recordings root of millions of files.

A Frigate-layout tree (`YYYY-MM-DD/HH/<camera>/MM.SS.mp4`, 10-second segments, 100 cameras) of
`--files` empty files (hard links, see `make_files`), every one already indexed (rows seeded in bulk, as a long-running site has
them). Measured in the same run:

- baseline: a bare `os.scandir` walk of the whole tree (files and directories counted);
- the reconciliation (`Scanner.scan(full=True)`, the daemon's start and daily walk), printed;
- the steady-state scan (nothing new: the incremental scan a daemon runs every minute), median of
  five; target <= 1 % of the walk (the first of them, which looks at every directory as the CLI's
  scan does, is printed too);
- a scan after one new hour of one camera (360 files in a new hour directory) and one after a new
  hour of four cameras, every file indexed, five of each in turn, medians: target the cost per
  new file (beyond the steady-state scan) of the one within 0.5-2 x that of the four
  (proportional to what is new, not to the tree). One such scan takes tens of milliseconds, so a
  single one measures the machine's load or a garbage collection of the whole heap more than the
  scan;
- inotify: a file written and closed, then indexed by `connectors.camera_watch` (the daemon's
  watcher on the same scanner), five times: target the slowest <= 2 s;
- the peak RSS of the product's part (reconciliation, scans, watcher): target <= 250 MB.

    python bench/scan.py [--quick] [--files N] [--engine sqlite|postgresql]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    Figure,
    Timer,
    TimeText,
    arguments,
    finish,
    finish_seeding,
    in_child,
    load_rows,
    peak_rss_mb,
    raw_connection,
    reset_peak_rss,
    rss_figure,
    say,
    store,
    time_at_most,
    workdir,
)
from sqlalchemy import select

from connectors.camera import Scanner
from connectors.camera_watch import Watcher
from facility.settings import Settings
from facility.store import db
from facility.store.models import CameraSegment

CAMERAS = 100
SEGMENT = 10  # seconds, Frigate's default
PER_HOUR = 3600 // SEGMENT
NEW_HOURS = 5  # new-hour scans of each size; their median is the figure
# The recordings end two days before the bench's "now": every file has long settled.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def hours_for(files: int) -> int:
    return max(1, -(-files // (CAMERAS * PER_HOUR)))


def hour_start(index: int, hours: int) -> datetime:
    """The start of the `index`-th recorded hour (0: the oldest)."""
    return NOW - timedelta(days=2, hours=hours - index)


def relpath(camera: str, start: datetime) -> str:
    return f"{start:%Y-%m-%d}/{start:%H}/{camera}/{start:%M.%S}.mp4"


def hour_paths(camera: str, start: datetime) -> list[tuple[str, float]]:
    """(relative path, start epoch) of one hour of one camera."""
    base = start.timestamp()
    return [
        (relpath(camera, start + timedelta(seconds=s)), base + s) for s in range(0, 3600, SEGMENT)
    ]


def tree(files: int) -> list[tuple[str, datetime]]:
    """(camera, hour start) of every camera-hour directory, oldest first, enough for `files`."""
    hours = hours_for(files)
    found = []
    for h in range(hours):
        for c in range(CAMERAS):
            found.append((f"cam{c:03d}", hour_start(h, hours)))
            if len(found) * PER_HOUR >= files:
                return found
    return found


LINKS = 60_000  # hard links per inode (ext4 allows 65 000)


def make_files(root: Path, dirs: list[tuple[str, datetime]]) -> None:
    """The segment files, dated two days back with their directories.

    Each is a hard link to one of a few empty files (a new one every `LINKS`): to a walk, a scan
    and inotify a link is a regular file like any other, and making one allocates no inode, which
    is the slow part of creating millions of files on a busy disk.
    """
    past = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    sources = root.parent / "link-sources"
    sources.mkdir(exist_ok=True)
    made: set[Path] = set()
    source, links = None, LINKS
    for n, (camera, start) in enumerate(dirs):
        directory = root / relpath(camera, start).rsplit("/", 1)[0]
        directory.mkdir(parents=True, exist_ok=True)
        made.update((directory, directory.parent, directory.parent.parent))
        for path, _ in hour_paths(camera, start):
            if links == LINKS:
                source, links = sources / f"{n}-{path.replace('/', '-')}", 0
                source.touch()
            os.link(source, root / path)
            links += 1
        if n % 1000 == 999:
            say(f"  {n + 1:,} of {len(dirs):,} camera-hours")
    for directory in [*made, root]:
        os.utime(directory, (past, past))


def _seed(url: str, kind: str, dirs: list[tuple[str, datetime]]) -> None:
    t = TimeText(kind)
    conn = raw_connection(url)

    def rows():
        for camera, start in dirs:
            for path, at in hour_paths(camera, start):
                yield camera, path, t(at), t(at + SEGMENT), t(at + SEGMENT), t(at + SEGMENT)

    load_rows(
        conn, kind, "camera_segments",
        ("camera", "path", "start", "end", "retain_from", "known_at"), rows(),
    )  # fmt: skip
    conn.close()


def bare_walk(root: str) -> tuple[int, int]:
    """Files and directories under `root`: the cheapest full look a program can take."""
    files = dirs = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as listing:
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    dirs += 1
                    stack.append(entry.path)
                else:
                    files += 1
    return files, dirs


def write_hour(root: Path, camera: str, start: datetime) -> int:
    paths = hour_paths(camera, start)
    (root / paths[0][0]).parent.mkdir(parents=True, exist_ok=True)
    for path, _ in paths:
        os.close(os.open(root / path, os.O_CREAT | os.O_WRONLY, 0o644))
    return len(paths)


def indexed(engine, path: str) -> bool:
    with db.read_scope(engine) as session:
        found = session.execute(select(CameraSegment.id).where(CameraSegment.path == path))
        return found.first() is not None


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5_000_000, help="files in the tree")
    args = parser.parse_args()
    n = 36_000 if args.quick else args.files
    with workdir(args.workdir) as where, store(args.engine, where, "scan") as seeded:
        root = where / "recordings"
        dirs = tree(n)
        n = len(dirs) * PER_HOUR
        say(f"creating {n:,} files in {len(dirs):,} camera-hour directories")
        make_files(root, dirs)
        say("seeding their rows")
        in_child(_seed, seeded.url, args.engine, dirs)
        finish_seeding(seeded.url)

        say("baseline: a bare os.scandir walk, best of three")
        walks = []
        for _ in range(3):
            with Timer() as walk:
                files, directories = bare_walk(str(root))
            walks.append(walk.seconds)
        base = min(walks)
        say(f"  {files:,} files, {directories:,} directories in {base:.2f} s")

        engine = db.make_engine(seeded.url)
        settings = Settings(database_url=seeded.url, camera={"root": root})
        scanner = Scanner(engine, settings)
        reset_peak_rss()
        say("product: the reconciliation (the daemon's start)")
        with Timer() as full:
            reconciled = scanner.scan(now=NOW, full=True, actor="bench")
        say(f"  {reconciled.known:,} known, {reconciled.indexed} new, {full.seconds:.2f} s")

        say("product: steady-state scans, nothing new")
        steady_times = []
        for minute in range(5):
            with Timer() as steady:
                quiet = scanner.scan(now=NOW + timedelta(minutes=minute + 1), actor="bench")
            assert quiet.mode == "incremental" and quiet.indexed == 0, quiet
            steady_times.append(steady.seconds)
        steady_time = statistics.median(steady_times)

        say(f"product: new hours of one camera and of four cameras, {NEW_HOURS} of each in turn")
        hours = hours_for(n)
        later = hour_start(hours, hours)
        new_times: dict[int, list[float]] = {1: [], 4: []}
        all_indexed = True
        for k in range(2 * NEW_HOURS):
            cameras = (1, 4)[k % 2]
            added = sum(write_hour(root, f"cam{c:03d}", later) for c in range(cameras))
            later += timedelta(hours=1)
            time.sleep(2.1)  # past DIR_SETTLE: the directories' stamps are trusted again
            with Timer() as new:
                report = scanner.scan(now=NOW + timedelta(minutes=10 + k), actor="bench")
            new_times[cameras].append(new.seconds)
            all_indexed = all_indexed and report.indexed == added
        for cameras, times in new_times.items():
            say(f"  {cameras} camera(s): " + ", ".join(f"{t:.3f} s" for t in times))
        one, four = (statistics.median(new_times[c]) for c in (1, 4))

        say("product: inotify, a file written and closed, five times")
        watcher = Watcher(scanner, "bench", clock=lambda: NOW + timedelta(minutes=20))
        with Timer() as setup:
            watcher.start()
            watcher.watching.wait(timeout=3600)
        say(f"  watches added in {setup.seconds:.1f} s")
        latencies = []
        for k in range(5):
            start = later + timedelta(seconds=SEGMENT * k)
            path = relpath("cam050", start)
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            with open(root / path, "wb") as recording:
                recording.write(b"\x00" * 4096)
            closed = time.perf_counter()
            # One index lookup per look: a count of millions of rows would be the slow part.
            while not indexed(engine, path) and time.perf_counter() - closed < 10:
                time.sleep(0.01)
            latencies.append(time.perf_counter() - closed)
        say("  latencies: " + ", ".join(f"{t:.3f} s" for t in latencies))
        watcher.stop()
        peak = peak_rss_mb()
        engine.dispose()

    ok = all_indexed and reconciled.known == n
    per_file = max(one - steady_time, 0.0) / PER_HOUR * 1000
    per_file4 = max(four - steady_time, 0.0) / (4 * PER_HOUR) * 1000
    figures = [
        Figure("scan_files", float(files), "files"),
        Figure("scan_directories", float(directories), "dirs"),
        Figure("scan_walk_time", base, "s"),
        Figure("scan_reconcile_time", full.seconds, "s", base),
        # The first incremental scan of a scanner (the CLI's) looks at every directory.
        Figure("scan_first_incremental_time", steady_times[0], "s", base),
        Figure("scan_steady_time", steady_time, "s", base, "<= 0.01 x walk", time_at_most(0.01)),
        Figure("scan_new_hour_time", one, "s", base),
        Figure("scan_new_4hours_time", four, "s", base),
        Figure(
            "scan_new_file_ms",
            per_file,
            "ms",
            per_file4,
            "0.5-2 x (4 hours)",
            lambda _v, r: r is not None and 0.5 <= r <= 2,
        ),
        Figure(
            "scan_inotify_latency",
            max(latencies),
            "s",
            target="<= 2 s",
            check=lambda v, _r: v <= 2.0,
        ),
        Figure("scan_all_indexed", float(ok), "bool", target="1", check=lambda v, _r: v == 1),
        rss_figure(peak),
    ]
    return finish(
        f"camera scan, {n:,} files in {directories:,} directories, {args.engine}",
        figures,
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
