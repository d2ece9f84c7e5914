"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test, and the CLI.

`db_url` is parametrized over both engines. Each test gets a fresh database copied from a template
migrated once per session (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL).

The run starts its own PostgreSQL cluster and Mosquitto broker (`tests.services`) and removes them
at the end, unless FACILITY_TEST_PG_URL / FACILITY_TEST_MQTT_PORT name servers to use instead. A
service that cannot be started or reached fails the run: it is never a reason to skip.

Fixtures that more than one module uses live here; plain helpers (rows, times, counts) in
factories.py. No test module imports another (tests/test_layout.py).
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import typer.testing
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from facility.accounts import users
from facility.retention import policies
from facility.settings import Retention
from facility.store import db
from facility.trail import keys
from tests.audit_key import give_key
from tests.factories import NOW, T0
from tests.services import MosquittoBroker, PostgresCluster, ServiceError

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.brokers import Broker
    from tests.daemons import Daemon
    from tests.webapp import Clock


# Typer's test runner turns the whole app into a Click command at every invocation, most of an
# in-process command's time; the app does not change while the tests run, so it is done once.
typer.testing._get_command = functools.cache(typer.testing._get_command)

# Each process (each xdist worker too) picks its own ports now and starts the services in
# pytest_configure, so module-level constants can name them.
_PG = None if os.environ.get("FACILITY_TEST_PG_URL") else PostgresCluster()
_BROKER = None if os.environ.get("FACILITY_TEST_MQTT_PORT") else MosquittoBroker()
PG_ADMIN_URL = _PG.url if _PG else os.environ["FACILITY_TEST_PG_URL"]
MQTT_PORT = _BROKER.port if _BROKER else int(os.environ["FACILITY_TEST_MQTT_PORT"])
SAMPLES = Path(__file__).resolve().parent / "samples"
ENGINES = ("sqlite", "postgresql")
# Debian's Chromium, driven by Playwright; never a browser Playwright would download.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _xdist_controller(config: pytest.Config) -> bool:
    """Whether this process only hands tests to xdist workers (which start their own services)."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", 0))


def pytest_configure(config: pytest.Config) -> None:
    if _xdist_controller(config):
        return
    try:
        for service in (_PG, _BROKER):
            if service is not None:
                service.start()
    except ServiceError as err:
        pytest.exit(f"the tests need this service: {err}", returncode=1)


def pytest_unconfigure(config: pytest.Config) -> None:
    for service in (_BROKER, _PG):
        if service is not None:
            service.stop()


def _seed(url: str, home: Path) -> None:
    # Signed with the test key, which every test's home holds (`isolated_env`).
    keys.use_home(give_key(home).parent)
    try:
        engine = db.make_engine(url, create=True)
        db.upgrade(engine)
        with db.session_scope(engine) as session:
            policies.seed(session, Retention(), now=T0, actor="tests")
        engine.dispose()
    finally:  # a template made in the middle of a test: back to that test's home
        if "FACILITY_HOME" in os.environ:
            keys.use_home(Path(os.environ["FACILITY_HOME"]))


def _pg_admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _seed(f"sqlite:///{path}", path.parent)
    return path


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory) -> Iterator[str]:
    name = f"facility_tpl_{os.getpid()}"
    admin = _pg_admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # any failure to reach it: say plainly what the suite needs
        pytest.fail(f"PostgreSQL at {db.redact(PG_ADMIN_URL)} is required: {err}", pytrace=False)
    _seed(
        make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False),
        tmp_path_factory.mktemp("pg-template"),
    )
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fresh_database(engine_name: str, request, tmp_path: Path) -> Iterator[str]:
    """A new database of `engine_name`, already at head with default policies; dropped after.

    Its trail is signed with the test key, which the test's home holds (`isolated_env`).
    """
    template = request.getfixturevalue(f"{'sqlite' if engine_name == 'sqlite' else 'pg'}_template")
    if engine_name == "sqlite":
        path = tmp_path / "facility.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    name = f"facility_t_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def database_at(engine_name: str, tmp_path: Path, revision: str) -> Iterator[str]:
    """A new database of `engine_name` migrated only to `revision`, empty: an install from before a
    migration, for the tests of that migration to fill; dropped after."""
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        name = f"facility_old_{uuid.uuid4().hex[:12]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url, create=True)
    db.upgrade(engine, target=revision)
    engine.dispose()
    yield url
    if engine_name != "sqlite":
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=ENGINES)
def db_url(request, tmp_path) -> Iterator[str]:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    yield from fresh_database(request.param, request, tmp_path)


@pytest.fixture
def engine(db_url):
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(request, tmp_path) -> Iterator[str]:
    """A fresh PostgreSQL database only, for what only PostgreSQL has or does."""
    databases = fresh_database("postgresql", request, tmp_path)
    yield next(databases)
    next(databases, None)


@pytest.fixture
def pg_engine(pg_url):
    """An engine on `pg_url`, disposed of before the database is dropped."""
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch) -> Path:
    """No facility.toml or FACILITY_* variable from the machine leaks into a test."""
    for key in list(os.environ):
        if key.startswith("FACILITY_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "var"
    monkeypatch.setenv("FACILITY_HOME", str(home))
    # The key the template databases are signed with, as on a host that ran `facility init`; and
    # what the CLI's edge does, for tests that call the core directly.
    give_key(home)
    keys.use_home(home)
    return home


class Cli:
    """Runs `facility` in-process against one database and asserts the exit code."""

    def __init__(self, url: str | None, tmp_path: Path) -> None:
        self.url = url
        self.tmp_path = tmp_path
        self.runner = CliRunner()

    def __call__(
        self, *args: str, code: int = 0, input: str | None = None, config: Path | None = None
    ):
        from facility.cli import app

        argv = (["--config", str(config)] if config else []) + (
            ["--db", self.url] if self.url else []
        )
        result = self.runner.invoke(app, [*argv, *args], input=input, catch_exceptions=False)
        assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}\n{result.output}"
        return result

    def config(self, body: str) -> Path:
        """Write a facility.toml for this test and return its path."""
        path = self.tmp_path / "facility.toml"
        path.write_text(body, encoding="utf-8")
        return path


@pytest.fixture
def cli(db_url, tmp_path) -> Cli:
    """The CLI on a fresh database of each engine."""
    return Cli(db_url, tmp_path)


# --- opted into with `pytestmark = pytest.mark.usefixtures(...)` ----------------------------------


@pytest.fixture
def fast_hashes(monkeypatch) -> None:
    """Cheap argon2 parameters, for tests about something else than what a hash costs."""
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def fixed_clock(monkeypatch) -> None:
    """The CLI reads the clock once per command: make it NOW."""
    from facility.cli.context import AppContext

    monkeypatch.setattr(AppContext, "now", lambda self: NOW)


# --- the web app in-process, brokers and daemons -------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    from tests.webapp import Clock  # the web app is imported by the tests that use it only

    return Clock()


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    """A Mosquitto of this test's own, which it may stop and start again."""
    from tests.brokers import Broker  # which imports this module

    found = Broker(tmp_path)
    found.start()
    yield found
    found.stop()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; killed afterwards if a failing test left one running."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the module's tests (installed by scripts/test.sh)."""
    from playwright.sync_api import sync_playwright  # only the browser tests need it

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()
