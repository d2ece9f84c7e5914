"""The MQTT connector against the real Mosquitto broker: QoS 1 messages stored through the batching
writer on both engines, real equipment's samples, rejections, redelivery, the availability topic
and last will, a broker that is down at start, a crash before the commit, a database outage, and
1 000 events published while the broker process is stopped and restarted.

Each test uses its own topic prefix and client id, and removes its persistent session afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from connectors.mqtt import MqttConnector
from facility.errors import ConfigError
from facility.settings import Settings
from facility.store import db
from facility.store.models import CameraSegment, DoorEvent, Rejection, WifiLease
from tests.brokers import (
    Broker,
    Publisher,
    end_session,
    free_port,
    retained,
    wait_for,
)
from tests.conftest import MQTT_PORT, PG_ADMIN_URL, SAMPLES, fresh_database
from tests.factories import count

ROOT = Path(__file__).resolve().parents[1]


# --- helpers ---------------------------------------------------------------------------------


def door_event(i: int, *, door: str = "d1", badge: str = "b1") -> bytes:
    at = 1_780_000_000 + i
    return json.dumps(
        {"event_id": f"ev-{i}", "badge": badge, "at": at, "result": "granted"}
    ).encode()


class Names:
    """A prefix and client id of this test's own, and the settings built on them."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.prefix = f"t{tag}"
        self.client_id = f"facility-test-{tag}"

    def settings(self, port: int = MQTT_PORT, camera: dict | None = None, **mqtt) -> Settings:
        return Settings(
            timezone="UTC",
            camera=camera or {},
            mqtt={
                "port": port,
                "client_id": self.client_id,
                "topic_prefix": self.prefix,
                "esp_rfid_topic": f"{self.prefix}-esprfid",
                "uhppoted_topic": f"{self.prefix}-uhppoted/gateway",
                **mqtt,
            },
        )


@pytest.fixture
def names(request) -> Iterator[Names]:
    found = Names()
    yield found
    end_session(found.client_id)


@pytest.fixture
def sqlite_engine(request, tmp_path):
    """One SQLite database, for tests about the connection rather than storage."""
    databases = fresh_database("sqlite", request, tmp_path)
    engine = db.make_engine(next(databases))
    yield engine
    engine.dispose()
    next(databases, None)


def running(settings: Settings, engine) -> MqttConnector:
    connector = MqttConnector(settings, engine)
    connector.start()
    wait_for(lambda: connector.status().connected, 10, "the connector to connect")
    return connector


@pytest.fixture
def connect(names) -> Iterator[Callable[..., MqttConnector]]:
    """Start connectors on the shared broker; stop them after the test."""
    started: list[MqttConnector] = []

    def start(engine, camera: dict | None = None, **mqtt) -> MqttConnector:
        connector = running(names.settings(camera=camera, **mqtt), engine)
        started.append(connector)
        return connector

    yield start
    for connector in started:
        connector.stop()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    found = Publisher()
    yield found
    found.close()


@pytest.fixture
def own_broker(tmp_path) -> Iterator[Broker]:
    broker = Broker(tmp_path)
    yield broker
    broker.stop()


def samples(name: str) -> list[tuple[str, bytes]]:
    lines = (SAMPLES / "mqtt" / name).read_text(encoding="utf-8").splitlines()
    return [(d["topic"], json.dumps(d["payload"]).encode()) for d in map(json.loads, lines)]


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- storing ---------------------------------------------------------------------------------


def test_door_events_leases_and_segments_published_with_qos1_are_stored(
    engine, names, connect, publisher, tmp_path
):
    connector = connect(engine, camera={"root": str(tmp_path)})
    p = names.prefix
    lease = {
        "mac": "AA:BB:CC:DD:EE:01",
        "ip": "10.0.0.5",
        "hostname": "laptop",
        "action": "add",
        "at": "2026-06-01T12:00:00Z",
        "expires": "2026-06-01T13:00:00Z",
    }
    segment = {"path": "2026-06-01/11/front/00.00.mp4", "start": 1780311600, "end": 1780311610}
    publisher.send(
        [
            (f"{p}/doors/main/events", door_event(1)),
            (f"{p}/wifi/leases", json.dumps(lease).encode()),
            (f"{p}/cameras/front/segments", json.dumps(segment).encode()),
        ]
    )
    wait_for(lambda: connector.counters()["stored"] == 3, what="three rows")
    with db.session_scope(engine) as session:
        event = session.execute(select(DoorEvent)).scalar_one()
        stored_lease = session.execute(select(WifiLease)).scalar_one()
        stored_segment = session.execute(select(CameraSegment)).scalar_one()
    assert (event.event_id, event.door, event.badge, event.granted, event.source) == (
        "ev-1",
        "main",
        "b1",
        True,
        "mqtt",
    )
    assert utc(event.at) == datetime.fromtimestamp(1_780_000_001, UTC)
    assert (stored_lease.mac, stored_lease.ip, stored_lease.hostname) == (
        "aa:bb:cc:dd:ee:01",
        "10.0.0.5",
        "laptop",
    )
    assert utc(stored_lease.ends) == datetime(2026, 6, 1, 13, tzinfo=UTC)
    assert (stored_segment.camera, stored_segment.path) == ("front", segment["path"])
    assert utc(stored_segment.end) == datetime.fromtimestamp(1780311610, UTC)


def test_samples_from_door_controllers_are_stored_with_the_right_values(
    engine, names, connect, publisher
):
    connector = connect(engine, controller_timezone="America/Los_Angeles")
    messages = [
        (topic.replace("esprfid", f"{names.prefix}-esprfid", 1), payload)
        for topic, payload in samples("esp-rfid.jsonl")
    ] + [
        (topic.replace("uhppoted", f"{names.prefix}-uhppoted", 1), payload)
        for topic, payload in samples("uhppoted.jsonl")
    ]
    publisher.send(messages)
    wait_for(lambda: connector.counters()["received"] >= 7, what="the samples")  # + our status
    with db.session_scope(engine) as session:
        stored = {
            e.event_id: (e.door, e.badge, utc(e.at), e.granted, e.source)
            for e in session.execute(select(DoorEvent)).scalars()
        }
        (rejection,) = session.execute(select(Rejection)).scalars()
    assert stored == {
        "esp-rfid:door-main:7c2b9a11:1605991375": (
            "door-main",
            "7c2b9a11",
            datetime(2020, 11, 21, 20, 42, 55, tzinfo=UTC),
            True,
            "esp-rfid",
        ),
        "esp-rfid:door-garage:04a1b2c3d4:1605991391": (
            "door-garage",
            "04a1b2c3d4",
            datetime(2020, 11, 21, 20, 43, 11, tzinfo=UTC),
            False,
            "esp-rfid",
        ),
        # 16:18:55 PDT is 23:18:55 UTC.
        "uhppoted:405419896:50": (
            "405419896/4",
            "8165538",
            datetime(2019, 8, 9, 23, 18, 55, tzinfo=UTC),
            True,
            "uhppoted",
        ),
        "uhppoted:405419896:51": (
            "405419896/1",
            "8165539",
            datetime(2019, 8, 9, 23, 20, 2, tzinfo=UTC),
            False,
            "uhppoted",
        ),
    }
    # The esp-rfid event sent before NTP sync (time 12) is rejected, never stored as 1970.
    assert (rejection.source, "before 2000" in rejection.reason) == ("esp-rfid", True)
    counters = connector.counters()
    assert (counters["stored"], counters["rejected"]) == (4, 1)


def test_bad_payloads_go_to_rejections_and_the_connector_carries_on(
    engine, names, connect, publisher, caplog
):
    caplog.set_level(logging.INFO, logger="facility")
    connector = connect(engine)
    topic = f"{names.prefix}/doors/main/events"
    publisher.send(
        [
            (topic, b"not json"),
            (topic, b"not json"),
            (topic, b"not json"),
            (topic, b'{"event_id": "x"}'),
            (topic, b'{"a": \x00}'),  # PostgreSQL refuses NUL in text: still a dead letter
            (f"{names.prefix}/nowhere", b"{}"),
            (topic, door_event(7)),
        ]
    )
    wait_for(lambda: connector.counters()["rejected"] == 6, what="six rejections")
    wait_for(lambda: connector.counters()["stored"] == 1, what="the good event")
    with db.session_scope(engine) as session:
        reasons = sorted(r.reason for r in session.execute(select(Rejection)).scalars())
    assert len(reasons) == 6
    # One log line per reason, however often it comes.
    logged = [r.getMessage() for r in caplog.records if "rejected a mqtt message" in r.getMessage()]
    assert len(logged) == 4, logged
    assert any("not JSON" in r for r in reasons)
    assert any("missing field" in r for r in reasons)
    assert any("unknown topic" in r for r in reasons)
    assert connector.status().writer_alive


def test_the_same_message_twice_is_stored_once(engine, names, connect, publisher):
    connector = connect(engine)
    topic = f"{names.prefix}/doors/main/events"
    publisher.send([(topic, door_event(3)), (topic, door_event(3))])
    wait_for(lambda: connector.counters()["duplicates"] == 1, what="the duplicate")
    assert count(engine, DoorEvent) == 1
    assert connector.counters()["stored"] == 1


# --- availability ----------------------------------------------------------------------------


def test_status_is_online_retained_while_connected_and_offline_after_stop(sqlite_engine, names):
    connector = running(names.settings(), sqlite_engine)
    status = f"{names.prefix}/status"
    assert retained(status) == b"online"
    connector.stop()
    assert retained(status) == b"offline"
    assert not connector.status().connected


CRASHING_CLIENT = """
import sys, time
from facility.store import db
from facility.settings import Settings
from connectors.mqtt import MqttConnector
settings = Settings.model_validate_json(sys.argv[2])
connector = MqttConnector(settings, db.make_engine(sys.argv[1]))
connector.start()
while not connector.status().connected:
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(120)
"""


def spawn_connector(url: str, settings: Settings) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CLIENT, url, settings.model_dump_json()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "connected"
    return process


def test_the_last_will_says_offline_when_the_client_crashes(sqlite_engine, names):
    process = spawn_connector(str(sqlite_engine.url), names.settings())
    status = f"{names.prefix}/status"
    try:
        wait_for(lambda: retained(status, timeout=0.5) == b"online", 5, "online")
    finally:
        process.kill()
        process.wait(5)
    wait_for(lambda: retained(status, timeout=0.5) == b"offline", 5, "the will")


def test_a_crash_before_the_commit_loses_nothing(sqlite_engine, names, publisher):
    """Acknowledged only after commit: messages a killed process had not stored come again."""
    process = spawn_connector(str(sqlite_engine.url), names.settings())
    raw = create_engine(str(sqlite_engine.url)).raw_connection()
    try:
        raw.execute("BEGIN IMMEDIATE")  # the writer now waits on the database lock
        topic = f"{names.prefix}/doors/main/events"
        publisher.send([(topic, door_event(i)) for i in range(10)])
        time.sleep(0.5)  # delivered to the process, not stored, not acknowledged
        process.kill()
        process.wait(5)
    finally:
        raw.rollback()
        raw.close()
    assert count(sqlite_engine, DoorEvent) == 0
    connector = running(names.settings(), sqlite_engine)  # same client id: the same session
    try:
        wait_for(lambda: count(sqlite_engine, DoorEvent) == 10, 10, "the redelivery")
    finally:
        connector.stop()


def test_a_broker_down_at_start_stops_nothing_and_is_logged_once(
    sqlite_engine, names, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="facility")
    broker = Broker(tmp_path)
    connector = MqttConnector(names.settings(port=broker.port), sqlite_engine)
    started = time.monotonic()
    connector.start()
    assert time.monotonic() - started < 0.5
    try:
        wait_for(lambda: connector.status().last_error, 3, "the first failure")
        time.sleep(2.5)  # several attempts: 1 s, then 2 s apart
        status = connector.status()
        assert not status.connected
        assert "refused" in status.last_error.lower()
        unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(unavailable) == 1, [r.getMessage() for r in caplog.records]
        broker.start()
        wait_for(lambda: connector.status().connected, 10, "the reconnect")
        again = [r for r in caplog.records if "again after" in r.getMessage()]
        assert len(again) == 1
        publisher = Publisher(broker.port)
        publisher.send([(f"{names.prefix}/doors/main/events", door_event(1))])
        publisher.close()
        wait_for(lambda: count(sqlite_engine, DoorEvent) == 1, what="the event")
    finally:
        connector.stop()
        broker.stop()


def test_user_name_and_password_file_log_in_and_a_wrong_password_is_reported_once(
    sqlite_engine, names, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="facility")
    passwords = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "site", "s3cret"], check=True)
    broker = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {passwords}\n")
    broker.config.write_text(broker.config.read_text().replace("allow_anonymous true\n", ""))
    broker.start()
    secret = tmp_path / "mqtt.secret"
    secret.write_text("s3cret\n")
    try:
        good = names.settings(port=broker.port, username="site", password_file=secret)
        running(good, sqlite_engine).stop()
        secret.write_text("wrong\n")
        connector = MqttConnector(good, sqlite_engine)
        connector.start()
        try:
            wait_for(lambda: connector.status().last_error, 5, "the refusal")
            time.sleep(1.5)  # a retry, refused again: still one log line
            assert "not authorized" in connector.status().last_error.lower()
            refused = [r for r in caplog.records if "unavailable" in r.getMessage()]
            assert len(refused) == 1
        finally:
            connector.stop()
    finally:
        broker.stop()


def test_tls_with_the_configured_ca(sqlite_engine, names, tmp_path):
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )
    broker = Broker(
        tmp_path,
        extra=f"cafile {tmp_path / 'ca.crt'}\ncertfile {tmp_path / 'server.crt'}\n"
        f"keyfile {tmp_path / 'server.key'}\n",
    )
    broker.start()
    try:
        settings = names.settings(port=broker.port, tls_ca=tmp_path / "ca.crt")
        connector = running(settings, sqlite_engine)
        assert connector.status().connected
        connector.stop()
    finally:
        broker.stop()


def test_settings_that_cannot_work_are_named(sqlite_engine, names, tmp_path):
    for mqtt, key in [
        ({"topic_prefix": "site/#"}, "mqtt.topic_prefix"),
        ({"uhppoted_topic": "uhppoted/+"}, "mqtt.uhppoted_topic"),
        ({"tls_cert": tmp_path / "c.pem"}, "mqtt.tls_cert"),
        ({"tls_ca": tmp_path / "missing.pem"}, "mqtt.tls_ca"),
        ({"username": "u", "password_file": tmp_path / "missing"}, "mqtt.password_file"),
    ]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            MqttConnector(names.settings(**mqtt), sqlite_engine)


def test_stop_returns_promptly_while_the_broker_is_down(sqlite_engine, names):
    connector = MqttConnector(names.settings(port=free_port()), sqlite_engine)
    connector.start()
    time.sleep(1.5)
    started = time.monotonic()
    connector.stop()
    assert time.monotonic() - started < 3


# --- the database ----------------------------------------------------------------------------


def test_a_database_outage_is_retried_and_nothing_is_lost(pg_engine, names, connect, caplog):
    caplog.set_level(logging.INFO, logger="facility")
    connector = connect(pg_engine)
    name = make_url(str(pg_engine.url)).database
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    publisher = Publisher()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": name},
            )
        publisher.send([(f"{names.prefix}/doors/main/events", door_event(i)) for i in range(5)])
        wait_for(lambda: connector.counters()["retries"] >= 2, 10, "retries")
        assert connector.counters()["stored"] == 0
        assert "database" in connector.status().last_error
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        publisher.close()
    wait_for(lambda: connector.counters()["stored"] == 5, 15, "the retried batch")
    failed = [r for r in caplog.records if "database write failed" in r.getMessage()]
    assert len(failed) == 1
    assert any("work again" in r.getMessage() for r in caplog.records)


# --- the broker restarting -------------------------------------------------------------------


def test_1000_events_published_across_a_broker_restart_are_all_stored_once(
    engine, names, own_broker
):
    own_broker.start()
    connector = running(names.settings(port=own_broker.port), engine)
    publisher = Publisher(own_broker.port)
    topic = f"{names.prefix}/doors/main/events"
    messages = [(topic, door_event(i)) for i in range(1000)]
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            publisher.send(messages, every=100)
        except BaseException as err:  # reported by the test thread
            errors.append(err)

    thread = threading.Thread(target=publish)
    thread.start()
    try:
        wait_for(lambda: connector.counters()["stored"] >= 300, 20, "300 stored")
        own_broker.stop()  # SIGTERM: Mosquitto saves its sessions and queues
        time.sleep(0.5)
        own_broker.start()
        thread.join(60)
        assert not errors, errors
        with contextlib.suppress(AssertionError):  # the assertion below says what is missing
            wait_for(lambda: count(engine, DoorEvent) == 1000, 30, "all 1000 events")
    finally:
        publisher.close()
        connector.stop()
    with db.session_scope(engine) as session:
        ids = list(session.execute(select(DoorEvent.event_id)).scalars())
    missing = {f"ev-{i}" for i in range(1000)} - set(ids)
    assert not missing, (
        f"{len(missing)} missing, e.g. {sorted(missing)[:10]}: {connector.counters()}"
    )
    assert len(ids) == 1000
    assert connector.counters()["stored"] == 1000
    end_session(names.client_id, own_broker.port)
