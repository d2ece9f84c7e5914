"""Real MQTT brokers for tests: a Mosquitto process of a test's own, a flow-controlled publisher.

`Broker` runs Mosquitto on a free port with persistence, so a test can stop and restart it and
the persistent sessions and queued QoS 1 messages survive, as on a real site. `Publisher`
publishes QoS 1 and waits for the broker's acknowledgements every so many messages (DESIGN.md:
a publisher that does not wait loses messages to the broker's queue limits).
"""

from __future__ import annotations

import getpass
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import MQTT_PORT
from tests.services import MOSQUITTO, free_port


def wait_for(predicate: Callable[[], object], timeout: float = 10, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def acked(info: paho.MQTTMessageInfo) -> bool:
    """Whether the broker acknowledged a publish (one made while disconnected never says so)."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return False


class Publisher:
    """A plain paho client that publishes QoS 1 with flow control and republishes on loss."""

    def __init__(self, port: int = MQTT_PORT) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex}")
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.client.is_connected, 5, "the publisher to connect")
        self.republished = 0

    def send(self, messages: list[tuple[str, bytes]], *, every: int = 100, timeout: float = 45):
        """Publish all `messages`, waiting for the broker's acks every `every` messages."""
        deadline = time.monotonic() + timeout
        for start in range(0, len(messages), every):
            chunk = messages[start : start + every]
            infos = [self.client.publish(t, p, qos=1) for t, p in chunk]
            while True:
                settle = time.monotonic() + 3
                while time.monotonic() < settle and not all(map(acked, infos)):
                    time.sleep(0.005)
                lost = [m for m, i in zip(chunk, infos, strict=True) if not acked(i)]
                if not lost:
                    break
                assert time.monotonic() < deadline, f"{len(lost)} messages never acknowledged"
                wait_for(self.client.is_connected, max(1, deadline - time.monotonic()))
                chunk, infos = lost, [self.client.publish(t, p, qos=1) for t, p in lost]
                self.republished += len(lost)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(topic: str, port: int = MQTT_PORT, timeout: float = 2) -> bytes | None:
    """The retained message on `topic`, read by a fresh subscriber; None when there is none."""
    got: list[bytes] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"peek-{uuid.uuid4().hex}")
    client.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0] if got else None


def end_session(client_id: str, port: int = MQTT_PORT) -> None:
    """Connect once with a clean session: the broker forgets the test's persistent one."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        wait_for(client.is_connected, 5, "a clean session")
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


class Broker:
    """A Mosquitto process of the test's own, with persistence, that can be stopped and restarted."""

    def __init__(self, directory: Path, port: int | None = None, *, extra: str = "") -> None:
        self.port = port or free_port()
        store = directory / "mosquitto-store"
        store.mkdir(exist_ok=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            # `user`: run as us, not Debian's `mosquitto`, so it can write its store here.
            f"listener {self.port} 127.0.0.1\nuser {getpass.getuser()}\nallow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {store}/\nautosave_interval 1\nmax_queued_messages 0\n" + extra
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._listening, 5, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0
