"""The daemon process: starts on an initialised database, stops cleanly on SIGTERM and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

FACILITY = str(Path(sys.executable).with_name("facility"))


def _start(url: str, tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "FACILITY_DATABASE_URL": url, "FACILITY_HOME": str(tmp_path / "home")}
    return subprocess.Popen(
        [FACILITY, "daemon"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _wait_for(proc: subprocess.Popen, needle: str, timeout: float = 20) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    proc.kill()
    raise AssertionError(f"daemon never said {needle!r}:\n{''.join(lines)}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_daemon_starts_logs_database_and_stops_with_exit_0(db_url, tmp_path, signum):
    proc = _start(db_url, tmp_path)
    started = _wait_for(proc, "daemon started")
    assert any(db_url.split("://")[0] in line for line in started)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "daemon stopped" in out


def test_daemon_refuses_an_uninitialised_database(tmp_path):
    proc = _start(f"sqlite:///{tmp_path / 'none.db'}", tmp_path)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "facility init" in out
