"""Real footage for the case-file tests: short MP4 files made with Debian's ffmpeg, laid out in a
recordings tree as Frigate writes it, and the settings that point the product at it.

ffmpeg is installed by scripts/test.sh; a missing one fails the tests that need it, as a missing
Chromium does: it is never a reason to skip.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from facility.settings import Settings
from tests.factories import NO_LIMITS

FFMPEG = "/usr/bin/ffmpeg"
_MADE: dict[int, Path] = {}


def mp4(seconds: int = 2) -> bytes:
    """A real H.264 MP4 of `seconds` (a test pattern), made once per run and length."""
    if seconds not in _MADE:
        if not os.access(FFMPEG, os.X_OK):
            pytest.fail(f"{FFMPEG} is missing: apt-get install ffmpeg", pytrace=False)
        path = Path(tempfile.mkdtemp(prefix="facility-mp4-")) / "clip.mp4"
        command = [
            FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc=duration={seconds}:size=320x240:rate=10",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path),
        ]  # fmt: skip
        subprocess.run(command, check=True, timeout=60)
        _MADE[seconds] = path
    return _MADE[seconds].read_bytes()


def frigate_path(camera: str, start: datetime) -> str:
    """Where Frigate (0.12 and later) writes the segment of `camera` starting at `start` (UTC)."""
    at = start.astimezone(UTC)
    return f"{at:%Y-%m-%d/%H}/{camera}/{at:%M.%S}.mp4"


def record(
    root: Path,
    camera: str,
    start: datetime,
    count: int,
    *,
    every: timedelta = timedelta(seconds=10),
) -> list[str]:
    """`count` real segments of `camera` from `start` on, written as Frigate lays them out, with
    modification times in the past (settled); their relative paths."""
    made = []
    data = mp4()
    for i in range(count):
        relpath = frigate_path(camera, start + i * every)
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stamp = (start + i * every).timestamp()
        os.utime(path, (stamp, stamp))
        made.append(relpath)
    return made


def settings(
    tmp_path: Path, *, grace: str = "1h", evidence: Path | None = None, **extra
) -> Settings:
    """Settings with a recordings root and an evidence root under `tmp_path`."""
    root = tmp_path / "recordings"
    root.mkdir(exist_ok=True)
    return Settings(
        camera={"root": root},
        evidence={"root": evidence or tmp_path / "evidence"},
        holds={"release_grace": grace},
        limits=NO_LIMITS,
        **extra,
    )


def config(tmp_path: Path, settings: Settings) -> Path:
    """A facility.toml naming the same roots and grace, for the CLI."""
    path = tmp_path / "facility.toml"
    grace = int(settings.holds.release_grace.total_seconds())
    path.write_text(
        f'[camera]\nroot = "{settings.camera.root}"\n'
        f'[evidence]\nroot = "{settings.evidence.root}"\n'
        f'[holds]\nrelease_grace = "{grace}s"\n',
        encoding="utf-8",
    )
    return path


def tree(root: Path) -> dict[str, str]:
    """Every entry below `root` by relative path: 'file', 'dir' or 'link' (never followed)."""
    found = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            path = Path(folder) / name
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            found[path.relative_to(root).as_posix()] = kind
    return found
