"""Camera purge benchmark: 100 000 expired segment files removed by the purge, with their rows.

The product (`facility.retention.purge.run` with a recordings root: each file removed through
`camera_files.remove`, which walks the path without following links, then its row deleted in the
same batch, and the directories it emptied removed) against a bare `os.unlink` loop over the same
number of files in a Frigate layout (50 cameras, 10-second segments), in the same order (oldest
first, as the purge goes), followed by an `os.rmdir` of each directory it emptied, deepest first.
Target: product files/s >= 0.5 x baseline files/s.

    python bench/camera.py [--quick] [--engine sqlite|postgresql]
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    T0,
    Figure,
    Timer,
    TimeText,
    arguments,
    finish,
    finish_seeding,
    in_child,
    load_rows,
    peak_rss_mb,
    profiled,
    rate_at_least,
    raw_connection,
    reset_peak_rss,
    rss_figure,
    say,
    store,
    workdir,
)

from facility.retention import purge
from facility.settings import Settings
from facility.store import db

CAMERAS = 50
SEGMENT = 10  # seconds, Frigate's default


def segment_paths(n: int) -> list[tuple[str, str, float]]:
    """(camera, relative path, end epoch) of n segments, Frigate layout, all long expired."""
    start = (T0 - timedelta(days=30)).timestamp()
    per_camera = -(-n // CAMERAS)
    out = []
    for c in range(CAMERAS):
        camera = f"cam{c:02d}"
        for k in range(per_camera):
            if len(out) == n:
                return out
            at = start + k * SEGMENT
            day, rest = divmod(int(at), 86_400)
            hour, rest = divmod(rest, 3600)
            date = datetime.fromtimestamp(day * 86_400, UTC).date().isoformat()
            path = f"{date}/{hour:02d}/{camera}/{rest // 60:02d}.{rest % 60:02d}.mp4"
            out.append((camera, path, at + SEGMENT))
    return out


def make_files(root: Path, paths: list[tuple[str, str, float]]) -> None:
    """Create the segment files (empty: the cost under test is the unlink, not the data)."""
    made: set[str] = set()
    for _camera, path, _end in paths:
        parent = path.rsplit("/", 1)[0]
        if parent not in made:
            (root / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        os.close(os.open(root / path, os.O_CREAT | os.O_WRONLY, 0o644))


def _directories(paths: list[tuple[str, str, float]]) -> list[str]:
    """Every directory above the segment files, below the root, deepest first."""
    found: set[str] = set()
    for _camera, path, _end in paths:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(found, key=lambda d: (-d.count("/"), d))


def _seed(url: str, kind: str, paths: list[tuple[str, str, float]]) -> None:
    t = TimeText(kind)
    conn = raw_connection(url)
    load_rows(
        conn, kind, "camera_segments", ("camera", "path", "start", "end", "retain_from"),
        ((camera, path, t(end - SEGMENT), t(end), t(end)) for camera, path, end in paths),
    )  # fmt: skip
    conn.close()


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000, help="how many segment files")
    args = parser.parse_args()
    n = 2_000 if args.quick else args.files
    with workdir(args.workdir) as where, store(args.engine, where, "camera") as seeded:
        paths = segment_paths(n)
        base_root, root = where / "base-root", where / "recordings"
        say(f"creating {n:,} files twice")
        make_files(base_root, paths)
        make_files(root, paths)
        in_child(_seed, seeded.url, args.engine, paths)
        finish_seeding(seeded.url)

        say("baseline: os.unlink loop, then os.rmdir of the emptied directories")
        # In the order the purge goes: oldest first (retain_from, then id).
        ordered = sorted(range(n), key=lambda i: (paths[i][2], i))
        full = [str(base_root / paths[i][1]) for i in ordered]
        emptied = _directories(paths)
        with Timer() as base:
            for path in full:
                os.unlink(path)
            for directory in emptied:
                os.rmdir(base_root / directory)

        say("product: facility.retention.purge.run with camera.root")
        engine = db.make_engine(seeded.url)
        settings = Settings(database_url=seeded.url, camera={"root": root})
        reset_peak_rss()
        with Timer() as timer, profiled(args.profile):
            report = purge.run(engine, settings, now=T0, actor="bench")
        peak = peak_rss_mb()
        engine.dispose()
        left = sum(len(files) for _d, _s, files in os.walk(root))
    deleted = report.files.deleted
    say(f"product removed {deleted:,} files, {report.kinds['camera'].deleted:,} rows; {left} left")
    ok = deleted == n and report.kinds["camera"].deleted == n and left == 0
    figures = [
        Figure(
            "camera_files_per_s",
            deleted / timer.seconds,
            "files/s",
            n / base.seconds,
            ">= 0.5 x baseline",
            rate_at_least(0.5),
        ),
        Figure("camera_time", timer.seconds, "s", base.seconds),
        Figure("camera_all_removed", float(ok), "bool", target="1", check=lambda v, _r: v == 1),
        rss_figure(peak),
    ]
    return finish(f"camera purge {n:,} files, {args.engine}", figures, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
