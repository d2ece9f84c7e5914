"""The real web server for tests: `facility web` in its own process on a free loopback port.

Tests drive it over HTTP (httpx, raw sockets, or a browser) and stop it with SIGTERM, as systemd
would. Its output goes to a file (a full pipe would stall it) that a failure message shows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx2 as httpx
import pytest
from argon2 import PasswordHasher

from facility.accounts import users
from facility.store import db
from tests.services import free_port

PASSWORD = "correct horse battery"
FACILITY = Path(sys.executable).with_name("facility")
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024)


@dataclass
class Server:
    """A running `facility web` and the database behind it."""

    url: str
    db_url: str
    process: subprocess.Popen
    log: Path
    home: Path

    def engine(self):
        return db.make_engine(self.db_url)

    def client(self, **options) -> httpx.Client:
        """An HTTP client on this server (cookies kept, redirects not followed)."""
        return httpx.Client(base_url=self.url, timeout=30, **options)

    def rss_kib(self) -> int:
        """The server process's resident memory, KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS for the server process")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _wait_for(port: int, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            pytest.fail(f"facility web exited {process.returncode}:\n{output}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"facility web did not listen on port {port} within {timeout}s", pytrace=False)


def add_accounts(
    db_url: str,
    accounts: dict[str, Sequence[str]],
    *,
    password: str = PASSWORD,
    hasher: PasswordHasher = CHEAP_HASHER,
) -> None:
    """Create accounts (name: roles); cheap hashes unless `hasher` says otherwise.

    The server rehashes a cheap hash with its real parameters at the first good login.
    """
    saved = users._HASHER
    users._HASHER = hasher
    engine = db.make_engine(db_url)
    try:
        with db.session_scope(engine) as session:
            for name, roles in accounts.items():
                users.add(
                    session,
                    now=datetime.now(UTC),
                    actor="tests",
                    name=name,
                    password=password,
                    roles=list(roles),
                )
    finally:
        users._HASHER = saved
        engine.dispose()


def facility_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a facility process: none of the machine's FACILITY_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACILITY_")}
    env["FACILITY_HOME"] = str(home)
    env.update(extra)
    return env


@contextmanager
def running(tmp_path: Path, db_url: str, *, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`facility web` on `db_url` until the block ends (then SIGTERM)."""
    port = free_port()
    home = tmp_path / "var"
    command = [str(FACILITY), "--db", db_url, "web", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / f"web-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=facility_env(home, **(env or {})), stdout=out, stderr=out
        )
    server = Server(f"http://127.0.0.1:{port}", db_url, process, log, home)
    try:
        _wait_for(port, process, log)
        yield server
    finally:
        server.stop()


def login(client: httpx.Client, name: str, password: str = PASSWORD, **headers: str):
    """Log in through POST /api/session; the client keeps the cookie and sends the token."""
    response = client.post(
        "/api/session", json={"name": name, "password": password}, headers=headers
    )
    if response.status_code == 200:
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return response


def form_login(client: httpx.Client, name: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the login form, as a browser does; the response to the POST."""
    from tests.webapp import form_token

    token = form_token(client.get("/login").text)
    return client.post("/login", data={"csrf_token": token, "name": name, "password": password})
