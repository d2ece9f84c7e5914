"""How many daemons a database takes: one per SQLite file (the second refuses, naming the first),
several on PostgreSQL, each with an MQTT client id of its own; a takeover of one client id by
another process is logged as a takeover, never as a broker outage.

Real daemon processes, a real SQLite file and the real PostgreSQL, a Mosquitto of the test's own.
"""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path

from tests.conftest import fresh_database
from tests.daemons import Daemon, toml_text

OUTAGE = ("unavailable", "cannot connect")


def site(tmp_path: Path, name: str, url: str, port: int, **mqtt) -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    config = folder / "facility.toml"
    settings = {
        "database_url": url,
        "timezone": "UTC",
        "mqtt": {"port": port, "topic_prefix": f"t{uuid.uuid4().hex[:8]}", **mqtt},
    }
    config.write_text(toml_text(settings))
    return config


def daemon(daemons: list, config: Path, **kwargs) -> Daemon:
    found = Daemon(config, config.parent / "home")
    daemons.append(found)
    return found.start(**kwargs)


def client_id(found: Daemon) -> str:
    line = found.wait_for_line("MQTT: connecting to")
    return re.search(r"as '([^']+)'", line).group(1)


def test_a_second_daemon_on_one_sqlite_file_refuses_naming_the_first(
    request, tmp_path, broker, daemons
):
    url = next(fresh_database("sqlite", request, tmp_path))
    first = daemon(daemons, site(tmp_path, "first", url, broker.port))
    second = daemon(daemons, site(tmp_path, "second", url, broker.port), wait_started=False)
    code, _ = second.wait(30)
    assert code == 1, second.output
    assert f"pid {first.pid}" in second.output and "already runs on" in second.output
    assert not second.matching("daemon started")
    assert first.process.poll() is None

    first.process.send_signal(signal.SIGKILL)  # a crash leaves no stale lock behind
    first.wait(10)
    third = daemon(daemons, site(tmp_path, "third", url, broker.port))
    assert third.matching("daemon started")
    assert third.stop()[0] == 0


def test_daemons_on_postgresql_get_distinct_client_ids_and_keep_them(
    pg_url, tmp_path, broker, daemons
):
    north = daemon(daemons, site(tmp_path, "north", pg_url, broker.port))
    south = daemon(daemons, site(tmp_path, "south", pg_url, broker.port))
    ids = {client_id(north), client_id(south)}
    assert len(ids) == 2 and all(i.startswith("facility-") for i in ids), ids
    for found in (north, south):
        found.wait_for_line("MQTT: connected")
    assert north.stop()[0] == 0
    restarted = daemon(daemons, north.config)
    assert client_id(restarted) == client_id(north)  # the same session after a restart
    for found in (restarted, south):
        assert not found.matching("taken over") and not found.matching(
            lambda line: any(word in line for word in OUTAGE)
        ), found.output


def test_a_takeover_of_one_client_id_is_logged_as_a_takeover(pg_url, tmp_path, broker, daemons):
    shared = f"facility-shared-{uuid.uuid4().hex[:6]}"
    north = daemon(daemons, site(tmp_path, "north", pg_url, broker.port, client_id=shared))
    north.wait_for_line("MQTT: connected")
    south = daemon(daemons, site(tmp_path, "south", pg_url, broker.port, client_id=shared))
    north_said = north.wait_for_line("session taken over", 30)
    south_said = south.wait_for_line("session taken over", 30)
    assert f"process {south.pid} on" in north_said and repr(shared) in north_said
    assert f"process {north.pid} on" in south_said
    for found in (north, south):
        assert len(found.matching("session taken over")) == 1, found.output  # said once
        outage = found.matching(lambda line: any(word in line for word in OUTAGE))
        assert not outage, found.output
