"""Invariant 5 under crashes: a real `facility purge` killed with SIGKILL, again and again.

Each round adds expired segments (files and rows) and starts the installed `facility` script; it
is killed either at a random moment or just after it has started deleting. After every kill no
file may be left without its row (rows without files are allowed: the next run drops them as
vanished). A final uninterrupted run must leave no row without its file, no expired unheld file,
every held and unexpired file in place, and an audit chain that verifies.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from facility.retention import holds
from facility.store import db
from facility.store.models import CameraSegment
from facility.trail import audit

ROUNDS = 24
PER_ROUND = 125  # 24 x 125 = 3000 expired segment files
FACILITY = Path(sys.executable).parent / "facility"


@pytest.fixture
def store(sqlite_template, tmp_path) -> str:
    """A fresh SQLite database at head, default policies (camera 14 d)."""
    path = tmp_path / "facility.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _add_segments(engine, root: Path, camera: str, end: datetime, count: int, tag: str) -> None:
    rows = []
    for i in range(count):
        path = f"{tag}/{camera}/{i:04d}.mp4"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"\0" * 64)
        start = end - timedelta(seconds=10)
        rows.append(dict(camera=camera, path=path, start=start, end=end, retain_from=end))
    with db.session_scope(engine) as session:
        session.execute(insert(CameraSegment), rows)


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}


def _rows(engine) -> set[str]:
    with db.session_scope(engine) as session:
        return set(session.execute(select(CameraSegment.path)).scalars())


def _deleting_started(root: Path, before: int, proc: subprocess.Popen, limit: float) -> None:
    """Wait until the purge has removed a file (or exited, or `limit` seconds passed)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        # os.walk, not rglob: the purge removes the directories it empties while we count.
        if sum(len(files) for _, _, files in os.walk(root)) < before:
            return
        time.sleep(0.005)


def test_purge_killed_at_random_moments_converges(store, tmp_path):
    root, rng = tmp_path / "recordings", random.Random(os.getpid())
    root.mkdir()
    config = tmp_path / "facility.toml"
    config.write_text(f'[camera]\nroot = "{root}"\n[purge]\nbatch_size = 20\n')
    engine = db.make_engine(store)
    now = datetime.now(UTC)  # the subprocess reads the wall clock; margins are days wide
    old = now - timedelta(days=30)
    _add_segments(engine, root, "fresh", now - timedelta(days=1), 50, "fresh")
    _add_segments(engine, root, "held", old, 50, "held")
    with db.session_scope(engine) as session:
        window = (old - timedelta(minutes=1), old)
        holds.place(session, now=now, actor="tests", case="INC-KILL", reason="kill test",
                    window_from=window[0], window_to=window[1],
                    scopes=[holds.Scope("camera", "held")])  # fmt: skip
    kept = _files(root)
    command = [str(FACILITY), "--config", str(config), "--db", store, "purge"]
    orphans_seen = 0
    for round_ in range(ROUNDS):
        _add_segments(engine, root, "cam", old, PER_ROUND, f"r{round_}")
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if round_ % 2:
            time.sleep(rng.uniform(0.0, 1.2))  # anywhere: start-up, limits, a batch, the audit
        else:
            _deleting_started(root, len(_files(root)), proc, limit=10)
            time.sleep(rng.uniform(0.0, 0.03))  # inside the camera batches
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        files, rows = _files(root), _rows(engine)
        assert files <= rows, f"round {round_}: files without rows {sorted(files - rows)[:5]}"
        assert kept <= files
        orphans_seen += len(rows - files)
    final = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert "audit head: " in final.stdout
    files, rows = _files(root), _rows(engine)
    assert files == rows == kept  # no row without its file, no expired unheld file left
    with db.session_scope(engine) as session:
        verdict = audit.verify(session)
        assert verdict.ok, verdict.problem
        head = verdict.head
    assert final.stdout.strip().endswith(head)
    engine.dispose()
    print(f"rows left without files by kills (then cleaned up): {orphans_seen}")
