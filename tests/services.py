"""Throwaway services for one test run: a PostgreSQL cluster and a Mosquitto broker of its own.

Nothing on the machine is configured or reused: the cluster is made with `initdb` in a temporary
directory owned by an unprivileged user (the test run's own user, or `postgres`/`nobody` when the
run is root, since PostgreSQL refuses to run as root), listens on loopback on a port of its own
with a random password, and is removed with its directory when the run ends. Whichever PostgreSQL
major version the system has is used (the newest, when several are installed).
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MOSQUITTO = "/usr/sbin/mosquitto"
_PG_ROOTS = (Path("/usr/lib/postgresql"), Path("/usr/pgsql"))


class ServiceError(RuntimeError):
    """A service the tests need could not be started; the message says what to install or check."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bindir() -> Path:
    """The directory of the newest installed PostgreSQL server's programs."""
    found = [p.parent for root in _PG_ROOTS for p in root.glob("*/bin/initdb")]
    if found:
        return max(found, key=lambda p: _major(p.parent.name))
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ServiceError("PostgreSQL server programs (initdb) not found: install postgresql")


def _major(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)) or (0,)


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run PostgreSQL as; None: the current user already is one."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServiceError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresCluster:
    """A PostgreSQL server of the test run's own; `url` connects as its superuser."""

    def __init__(self) -> None:
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.url = f"postgresql+psycopg://postgres:{self.password}@127.0.0.1:{self.port}/postgres"
        self.root: Path | None = None
        self._started = False

    def _run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        ids = {}
        if self.user is not None:
            ids = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(
            args,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
            **ids,
            **kwargs,
        )

    def start(self) -> str:
        """initdb and start the server; return its URL."""
        self.bindir = _pg_bindir()
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="facility-pg-"))
        self.data = self.root / "data"
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        password_file = self.root / "pw"
        password_file.write_text(self.password + "\n", encoding="ascii")
        if self.user is not None:
            os.chown(password_file, self.user.pw_uid, self.user.pw_gid)
        password_file.chmod(0o600)
        done = self._run(
            str(self.bindir / "initdb"),
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        password_file.unlink()
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        # Durability is worth nothing in a cluster deleted at the end of the run; speed is.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        done = self._run(
            str(self.bindir / "pg_ctl"),
            "--pgdata",
            str(self.data),
            "--log",
            str(self.root / "server.log"),
            "--options",
            options,
            "--wait",
            "--timeout",
            "60",
            "start",
        )
        self._started = True
        if done.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            self.stop()
            raise ServiceError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")
        atexit.register(self.stop)
        return self.url

    def stop(self) -> None:
        """Stop the server and remove its directory (safe to call twice)."""
        if self._started:
            self._started = False
            self._run(str(self.bindir / "pg_ctl"), "--pgdata", str(self.data), "-m", "fast", "stop")
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


class MosquittoBroker:
    """A Mosquitto broker on a loopback port of its own, without persistence or queue limits."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> int:
        """Start the broker and wait until it accepts connections; return its port."""
        if not Path(MOSQUITTO).exists():
            raise ServiceError(f"{MOSQUITTO} not found: install mosquitto")
        self.root = Path(tempfile.mkdtemp(prefix="facility-mqtt-"))
        conf = self.root / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\n",
            encoding="ascii",
        )
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self.port
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise ServiceError(f"Mosquitto did not start on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        """Stop the broker and remove its directory (safe to call twice)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
