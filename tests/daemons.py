"""`facility daemon` as a real subprocess for tests: its configuration, its log lines, its memory.

`Daemon` starts the installed console script (the one beside this interpreter) with a
facility.toml of the test's own, collects stdout and stderr on reader threads (so a chatty daemon
never blocks on a full pipe), and offers waits on log lines, the exit code within a bound, and the
resident memory from /proc. Tests publish with `tests.brokers` and query the database directly.
`make_site` lays out a whole installation for it in tmp_path (configuration, database, broker,
recordings, lease file); `hook` runs the dnsmasq hook as dnsmasq does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from facility.store import db
from facility.store.models import AuditEntry
from tests.audit_key import give_key
from tests.brokers import Broker
from tests.conftest import Cli

FACILITY = str(Path(sys.executable).with_name("facility"))

KEA_HEADER = (
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,"
    "user_context\n"
)


def kea_row(ip: str, mac: str, expire: datetime, host: str = "") -> str:
    return f"{ip},{mac},,3600,{int(expire.timestamp())},1,0,0,{host},0,\n"


def frigate_path(camera: str, start: datetime) -> str:
    return f"{start:%Y-%m-%d}/{start:%H}/{camera}/{start:%M.%S}.mp4"


def door_message(prefix: str, event_id: str, at: datetime, door: str = "lobby") -> tuple:
    payload = {"event_id": event_id, "badge": "B17", "at": at.timestamp(), "result": "granted"}
    return f"{prefix}/doors/{door}/events", json.dumps(payload).encode()


def lease_message(prefix: str, mac: str, ip: str, action: str, at: datetime) -> tuple:
    payload = {
        "mac": mac,
        "ip": ip,
        "action": action,
        "at": at.timestamp(),
        "expires": (at + timedelta(hours=1)).timestamp(),
    }
    return f"{prefix}/wifi/leases", json.dumps(payload).encode()


def toml_text(data: dict[str, Any]) -> str:
    """A small TOML writer for test configurations: scalars, lists, tables, arrays of tables."""
    top, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"[{key}]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in value.items()))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                tables.append(
                    f"[[{key}]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in item.items())
                )
        else:
            top.append(f"{key} = {_value(value)}\n")
    return "".join(top) + "\n" + "\n".join(tables)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string


class Daemon:
    """One `facility daemon` process."""

    def __init__(
        self, config: Path | None, home: Path, *, log_format: str = "text", env: dict | None = None
    ) -> None:
        self.config = config
        self.home = home
        self.log_format = log_format
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []  # stdout, one log line each
        self.errors: list[str] = []  # stderr
        self._readers: list[threading.Thread] = []

    def start(self, wait_started: bool = True, timeout: float = 20) -> Daemon:
        give_key(self.home)  # the fixture databases are signed with it
        environment = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_")}
        environment.update({"FACILITY_HOME": str(self.home), **self.env})
        argv = [FACILITY, *(["--config", str(self.config)] if self.config else []), "daemon"]
        self.process = subprocess.Popen(
            [*argv, "--log-format", self.log_format],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        for stream, sink in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            reader = threading.Thread(target=_drain, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        if wait_started:
            self.wait_for_line("daemon started", timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def output(self) -> str:
        return "".join(self.lines) + "".join(self.errors)

    def matching(self, needle: str | Callable[[str], bool]) -> list[str]:
        test = needle if callable(needle) else (lambda line: needle in line)
        return [line for line in list(self.lines) if test(line)]

    def wait_for_line(
        self, needle: str | Callable[[str], bool], timeout: float = 20, *, after: int = 0
    ) -> str:
        """The first log line (from index `after`) that contains `needle` or satisfies it."""
        test = needle if callable(needle) else (lambda line: needle in line)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines)[after:]:
                if test(line):
                    return line
            if self.process is not None and self.process.poll() is not None:
                time.sleep(0.2)  # let the readers catch the last lines
                for line in list(self.lines)[after:]:
                    if test(line):
                        return line
                raise AssertionError(
                    f"daemon exited ({self.process.returncode}) without {needle!r}:\n{self.output}"
                )
            time.sleep(0.05)
        raise AssertionError(
            f"daemon never logged {needle!r} in {timeout} s:\n{self.output[-6000:]}"
        )

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> tuple[int, float]:
        """The exit code and how long the exit took; fails if it takes longer than `timeout`."""
        assert self.process is not None
        started = time.monotonic()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise AssertionError(
                f"daemon did not exit within {timeout} s:\n{self.output[-6000:]}"
            ) from None
        for reader in self._readers:
            reader.join(5)
        return code, time.monotonic() - started

    def stop(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM, then the exit code and how long it took."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (peak) of the process, in KiB, from /proc/<pid>/status."""
        found = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
        return found

    def kill(self) -> None:
        """Teardown: make sure nothing outlives the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _drain(stream, sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


# --- other commands run as their callers run them ------------------------------------------------


def hook(db_url: str, *argv: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess:
    """Run the hook as dnsmasq would: argv, DNSMASQ_* environment, its own process."""
    environment = {**os.environ, "FACILITY_DATABASE_URL": db_url, **env}
    return subprocess.run(
        [str(FACILITY), "wifi", "dnsmasq-hook", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- a whole site --------------------------------------------------------------------------------


@dataclass
class Site:
    """One installation in tmp_path: paths, settings, the CLI, the database and the broker."""

    tmp: Path
    home: Path
    url: str
    config: Path
    recordings: Path
    leases: Path
    prefix: str
    broker: Broker
    cli: Cli

    def count(self, model, *where) -> int:
        engine = db.make_engine(self.url)
        try:
            with db.session_scope(engine) as session:
                query = select(func.count()).select_from(model)
                return session.execute(query.where(*where) if where else query).scalar_one()
        finally:
            engine.dispose()

    def audit_entries(self, action: str | None = None) -> list[tuple[int, datetime, str, dict]]:
        engine = db.make_engine(self.url)
        try:
            with db.session_scope(engine) as session:
                query = select(AuditEntry).order_by(AuditEntry.seq)
                if action:
                    query = query.where(AuditEntry.action == action)
                return [
                    (e.seq, e.at, e.action, json.loads(e.details))
                    for e in session.execute(query).scalars()
                ]
        finally:
            engine.dispose()

    def purged(self, kind: str) -> int:
        """Rows of `kind` that the purge entries of the audit trail say were deleted."""
        return sum(d["kinds"][kind]["deleted"] for *_, d in self.audit_entries("purge"))

    def drop_file(self, relpath: str, when: datetime) -> Path:
        path = self.recordings / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
        # A file modified in the last 10 s is still being written: date it like the recorder did.
        stamp = min(when, datetime.now(UTC) - timedelta(minutes=1)).timestamp()
        os.utime(path, (stamp, stamp))
        return path

    def segment(self, camera: str, start: datetime) -> Path:
        """A Frigate segment file of `camera` starting at `start`."""
        return self.drop_file(frigate_path(camera, start), start)

    def run(self, *args: str, code: int = 0):
        """The CLI, in-process, with this site's configuration."""
        return self.cli(*args, code=code, config=self.config)

    def daemon(self, **kwargs) -> Daemon:
        return Daemon(self.config, self.home, **kwargs)


def make_site(tmp_path: Path, broker_extra: str = "", **overrides) -> Site:
    home = tmp_path / "var"
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    leases = tmp_path / "kea-leases4.csv"
    leases.write_text(KEA_HEADER)
    broker = Broker(tmp_path, extra=broker_extra)
    prefix = f"site{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{home / 'facility.db'}"
    settings = {
        "database_url": url,
        "timezone": "UTC",
        "purge": {"interval": "1s", "batch_size": 1000},
        "mqtt": {
            "port": broker.port,
            "client_id": f"facility-{prefix}",
            "topic_prefix": prefix,
            "esp_rfid_topic": "",
            "uhppoted_topic": "",
        },
        "camera": {"root": str(recordings), "scan_interval": "1s"},
        "dhcp": [{"format": "kea", "path": str(leases), "poll_interval": "1s"}],
        "snapshot": {"interval": "1s"},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    config = tmp_path / "facility.toml"
    config.write_text(toml_text(settings))
    cli = Cli(url, tmp_path)
    site = Site(tmp_path, home, url, config, recordings, leases, prefix, broker, cli)
    cli("init", config=config)
    return site
