"""MQTT ingest benchmark: 200 000 door events through a real Mosquitto broker into the store.

A publisher (a separate process) sends QoS 1 door events with flow control: after every 500 it
waits for their acknowledgements, as DESIGN.md says publishers must. The product is the MQTT
connector (`connectors.mqtt.MqttConnector`: callbacks queue, the batching writer stores with
`ingest.store_door_events` and acknowledges after commit). The baseline, in the same run and
against the same broker, is a bare paho subscriber that decodes the JSON and stores rows with
sqlite3 `executemany` into a copy of the same `door_events` table, 500 rows per commit.
Target: connector events/s >= 0.5 x baseline events/s.

The bench starts its own Mosquitto on a free port with the limits DESIGN.md tells operators to
raise for the facility client: `max_inflight_messages` (how many unacknowledged messages the
broker sends at once: with manual acks this bounds the writer's batches) and
`max_queued_messages`.

    python bench/ingest.py [--quick] [--engine sqlite|postgresql]
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from common import (
    Figure,
    Timer,
    arguments,
    finish,
    peak_rss_mb,
    profiled,
    rate_at_least,
    reset_peak_rss,
    rss_figure,
    say,
    sqlite_time,
    store,
    workdir,
)
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import make_url

from connectors.mqtt import MqttConnector
from facility.settings import Settings
from facility.store import db

MOSQUITTO = "/usr/sbin/mosquitto"
WINDOW = 500  # the publisher waits for acknowledgements after every WINDOW messages
BROKER_INFLIGHT = 1000  # max_inflight_messages: > the writer's batch_size (500)
# max_queued_messages: at least what one run publishes. The publisher's flow control only covers
# publisher -> broker; a subscriber slower than the publisher builds a queue at the broker, and
# Mosquitto drops what goes beyond this limit ("Outgoing messages are being dropped").
BROKER_QUEUED = 250_000
TIMEOUT = 600.0  # seconds one side may take at most
STALL = 20.0  # seconds without progress after the publisher finished: something was lost


# --- the broker ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A Mosquitto of our own on a free loopback port, stopped by `close`."""

    def __init__(self, where: Path) -> None:
        self.port = _free_port()
        conf = where / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_inflight_messages {BROKER_INFLIGHT}\nmax_queued_messages {BROKER_QUEUED}\n"
            "set_tcp_nodelay true\n"
        )
        self._log = (where / "mosquitto.log").open("w")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


# --- the publisher (a child process) -------------------------------------------------------------


def payload(i: int) -> bytes:
    """Door event i: a unique id, one of 2 000 badges, epoch seconds."""
    at = 1_780_000_000 + i / 10
    return json.dumps(
        {"event_id": f"ev-{i}", "badge": f"B{i % 2000:04d}", "at": at, "result": "granted"}
    ).encode()


def publisher(port: int, prefix: str, count: int) -> int:
    """Publish `count` door events, waiting for the acks of every WINDOW; print 'go' first."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    print("go", flush=True)
    pending = []
    for i in range(count):
        pending.append(client.publish(f"{prefix}/doors/door-{i % 40}/events", payload(i), qos=1))
        if len(pending) == WINDOW or i == count - 1:
            for info in pending:
                info.wait_for_publish(timeout=60)
            pending.clear()
    client.disconnect()
    client.loop_stop()
    return 0


def start_publisher(port: int, prefix: str, count: int) -> subprocess.Popen:
    """The publisher process, once it is connected (it printed 'go')."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--publisher", str(port), prefix, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    if line != "go":
        process.kill()
        raise RuntimeError(f"publisher did not start: {line!r}")
    return process


def _wait(done, progress, process: subprocess.Popen, what: str) -> None:
    """Until done(); fail when it takes too long, or stalls after the publisher finished."""
    deadline = time.monotonic() + TIMEOUT
    last, since = progress(), time.monotonic()
    while not done():
        now = time.monotonic()
        if progress() != last:
            last, since = progress(), now
        elif process.poll() is not None and now - since > STALL:
            raise RuntimeError(
                f"{what}: stalled at {last} events after the publisher finished "
                "(did the broker drop messages? see mosquitto.log in the workdir)"
            )
        if now > deadline:
            raise RuntimeError(f"{what}: timed out after {TIMEOUT:.0f} s")
        time.sleep(0.01)
    if process.wait(30) != 0:
        raise RuntimeError(f"{what}: the publisher failed")


# --- the baseline --------------------------------------------------------------------------------


INSERT = (
    "INSERT OR IGNORE INTO door_events (event_id, door, badge, at, granted, source, retain_from)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class BareSubscriber:
    """paho + json + sqlite3 executemany: the least a subscriber that stores events must do."""

    def __init__(self, port: int, prefix: str, path: str) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.rows: list[tuple] = []
        self.stored = 0
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare")
        self.client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the bare subscriber did not get its subscription")

    def _on_message(self, _client, _userdata, message) -> None:
        doc = json.loads(message.payload)
        at = sqlite_time(datetime.fromtimestamp(doc["at"], UTC))
        door = message.topic.split("/")[2]
        row = (doc["event_id"], door, doc["badge"], at, doc["result"] == "granted", "mqtt", at)
        with self.lock:
            self.rows.append(row)
            if len(self.rows) >= 500:
                self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.execute("BEGIN")
            self.conn.executemany(INSERT, self.rows)
            self.conn.execute("COMMIT")
            self.stored += len(self.rows)
            self.rows.clear()

    def done(self, count: int) -> bool:
        with self.lock:
            if self.stored + len(self.rows) >= count:
                self.flush()
            return self.stored >= count

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.conn.close()


def run_baseline(broker: Broker, path: str, count: int) -> float:
    prefix = f"bare{uuid.uuid4().hex[:6]}"
    subscriber = BareSubscriber(broker.port, prefix, path)
    try:
        process = start_publisher(broker.port, prefix, count)
        with Timer() as timer:
            _wait(lambda: subscriber.done(count), lambda: subscriber.stored, process, "baseline")
    finally:
        subscriber.close()
    return count / timer.seconds


# --- the product ---------------------------------------------------------------------------------


def run_product(broker: Broker, url: str, count: int, profile: bool) -> tuple[float, dict]:
    prefix = f"fac{uuid.uuid4().hex[:6]}"
    settings = Settings(
        database_url=url,
        timezone="UTC",
        mqtt={
            "port": broker.port,
            "client_id": f"facility-bench-{prefix}",
            "topic_prefix": prefix,
            "esp_rfid_topic": "",
            "uhppoted_topic": "",
        },
    )
    engine = db.make_engine(url)
    connector = MqttConnector(settings, engine)
    connector.start()
    try:
        # The connector publishes `online` to <prefix>/status after subscribing to <prefix>/#,
        # so receiving it (ignored, and counted) proves the subscription is in place.
        deadline = time.monotonic() + 10
        while connector.counters()["ignored"] < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the connector did not subscribe")
            time.sleep(0.02)
        process = start_publisher(broker.port, prefix, count)
        with Timer() as timer, profiled(profile):
            stored = lambda: connector.counters()["stored"]  # noqa: E731
            _wait(lambda: stored() >= count, stored, process, "connector")
    finally:
        connector.stop()
        engine.dispose()
    return count / timer.seconds, connector.counters()


def main() -> int:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    count = 5_000 if args.quick else 200_000
    with workdir(args.workdir) as where, store(args.engine, where, "ingest") as product_store:
        broker = Broker(where)
        try:
            with store("sqlite", where, "ingest-bare") as bare_store:
                say(f"baseline: bare paho + sqlite3 executemany, {count:,} events")
                base_rate = run_baseline(broker, make_url(bare_store.url).database, count)
            say(f"product: MqttConnector on {args.engine}, {count:,} events")
            reset_peak_rss()
            rate, counters = run_product(broker, product_store.url, count, args.profile)
            peak = peak_rss_mb()
        finally:
            broker.close()
    say(f"connector counters: {counters}")
    figures = [
        Figure(
            "ingest_events_per_s",
            rate,
            "events/s",
            base_rate,
            ">= 0.5 x baseline",
            rate_at_least(0.5),
        ),
        Figure("ingest_batches", counters["batches"], "commits", target="-"),
        Figure(
            "ingest_stored",
            counters["stored"],
            "events",
            count,
            f"= {count}",
            lambda v, _r: v == count,
        ),
        rss_figure(peak),
    ]
    title = f"ingest {count:,} door events via Mosquitto, {args.engine}"
    return finish(title, figures, quick=args.quick)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--publisher":
        sys.exit(publisher(int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
    sys.exit(main())
