"""The MQTT connector: a paho-mqtt 2.x client that feeds the batching writer.

Session: MQTT v3.1.1 with clean_session off, so the broker keeps our subscriptions and queues QoS 1
messages while we are away. Subscriptions (QoS 1) and the retained availability message
`<prefix>/status` = `online` are made in `on_connect`, so every reconnect restores them; the last
will is `offline`, retained, and a clean `stop` publishes it too. Nothing ever unsubscribes: that
would end the persistent session's subscription and lose what is published while we are down.

Connecting is asynchronous (`connect_async` + `loop_start`): a broker that is down at start stops
nothing; paho retries with backoff (1 s doubling to 60 s), and the outage is logged once, as is the
reconnect. `status()` tells `facility doctor` whether we are connected, since when, and the last
error.

Callbacks only copy the message and queue it (STYLE rule 5). Acknowledgement is manual: the writer
calls an item's `ack` after the transaction holding it committed, so a crash loses nothing the
broker was told we have. An ack belongs to the connection that delivered the message: after a
reconnect the broker redelivers what we had not acknowledged under new packet ids, so a late ack
for the old connection is dropped rather than sent, where it could acknowledge a different message.

Client id: the configured `mqtt.client_id`; unset, `facility` on SQLite (one daemon per database
file) and `facility-<host>-<hash of home>` on PostgreSQL, where several daemons share a database:
distinct per daemon, and the same across one daemon's restarts, so its session is kept.

A takeover: a broker closes the connection of a client when another connects with the same id,
and Mosquitto 2.0 says nothing about why (no DISCONNECT reason, even to MQTT 5 clients). So each
connection publishes a retained claim `{"instance", "pid", "host"}` on `facility/clients/<id>`
and subscribes to it: after an unexpected loss, the retained claim the broker hands back on
reconnecting tells whether another client took the id meanwhile (logged as a takeover, naming its
process and host) or the connection merely dropped. An outage is logged only once a reconnect
fails.

Broker limits (README): with manual acks the broker sends at most `max_inflight_messages` (default
20) unacknowledged messages at a time, which bounds our queue and our throughput; and it drops QoS
1 messages for a client beyond `max_queued_messages` (default 1000) while that client is slow or
away. Raise both for the facility client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import partial
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine

from connectors.camera_layout import layout_for
from connectors.payloads import parse_message, topic_filters
from connectors.writer import BatchWriter, Incoming, Parse
from facility.errors import ConfigError
from facility.settings import Mqtt, Settings
from facility.store.models import DEFAULT_SITE
from facility.timefmt import utc_text
from facility.timeutil import zone

log = logging.getLogger("facility.mqtt")

KEEPALIVE = 30  # seconds; a dead broker is noticed within about 1.5x this
CONNECT_TIMEOUT = 3.0  # seconds; bounds how long `stop` can wait on a connect in progress
RECONNECT_MIN = 1  # seconds; paho doubles the delay up to RECONNECT_MAX
RECONNECT_MAX = 60
ONLINE, OFFLINE = "online", "offline"
CLAIM_ROOT = "facility/clients"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MqttStatus:
    """The connector's state for logs and `facility doctor`."""

    broker: str  # host:port
    connected: bool
    since: datetime | None  # when the connection was last made or lost; None: never tried
    last_error: str | None  # the latest connection or database error, None when there was none
    pending: int  # messages received and not yet written
    writer_alive: bool
    counters: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "broker": self.broker,
            "connected": self.connected,
            "since": utc_text(self.since),
            "last_error": self.last_error,
            "pending": self.pending,
            "writer_alive": self.writer_alive,
            "counters": dict(self.counters),
        }


def parser_for(settings: Settings, site_zone: tzinfo | None = None) -> Parse:
    """`parse_message` bound to the site's prefix, time zones, equipment topics and layout."""
    site_zone = site_zone or settings.site_zone
    mqtt = settings.mqtt
    controller = zone(mqtt.controller_timezone) if mqtt.controller_timezone else None
    camera = settings.camera
    # Segment announcements are checked against the layout the scanner reads paths with.
    layout = None
    if camera.root is not None:
        layout = layout_for(
            camera.layout,
            pattern=camera.pattern,
            site_zone=site_zone,
            segment_length=camera.segment_length,
        )
    return partial(
        parse_message,
        prefix=mqtt.topic_prefix,
        site_zone=site_zone,
        controller_zone=controller,
        esp_rfid_topic=mqtt.esp_rfid_topic or None,
        uhppoted_topic=mqtt.uhppoted_topic or None,
        layout=layout,
    )


def client_id_for(settings: Settings, dialect: str) -> str:
    """The MQTT client id: configured, or a default that two daemons on one database never share."""
    if settings.mqtt.client_id:
        return settings.mqtt.client_id
    if dialect == "sqlite":
        return "facility"  # scheduler.instance lets one daemon run per SQLite file
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0])[:32] or "host"
    digest = hashlib.sha256(str(settings.home).encode()).hexdigest()[:8]
    return f"facility-{host}-{digest}"


def claim_topic(client_id: str) -> str:
    """The topic where each connection of `client_id` leaves its retained claim.

    Outside the site's topic prefix: a client id is one per broker, whatever prefix its user has.
    """
    return f"{CLAIM_ROOT}/{client_id}"


def subscriptions(mqtt: Mqtt) -> list[str]:
    """The topic filters the connector subscribes to."""
    return topic_filters(
        mqtt.topic_prefix,
        esp_rfid_topic=mqtt.esp_rfid_topic or None,
        uhppoted_topic=mqtt.uhppoted_topic or None,
    )


class MqttConnector:
    """Receives QoS 1 messages into a BatchWriter; `start`, `status`, `counters`, `stop`."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _utc_now,
        site_id: int = DEFAULT_SITE,
        site_zone: tzinfo | None = None,
    ) -> None:
        mqtt = settings.mqtt
        _check_topic("mqtt.topic_prefix", mqtt.topic_prefix)
        _check_topic("mqtt.esp_rfid_topic", mqtt.esp_rfid_topic, optional=True)
        _check_topic("mqtt.uhppoted_topic", mqtt.uhppoted_topic, optional=True)
        self._mqtt = mqtt
        self._clock = clock
        self.client_id = client_id_for(settings, engine.dialect.name)
        _check_topic("mqtt.client_id", self.client_id)
        self._status_topic = f"{mqtt.topic_prefix}/status"
        self._filters = subscriptions(mqtt)
        self._claim_topic = claim_topic(self.client_id)
        self._instance = uuid.uuid4().hex
        self._claim = json.dumps(
            {"instance": self._instance, "pid": os.getpid(), "host": socket.gethostname()}
        )
        local = site_zone or settings.site_zone
        self.writer = BatchWriter(
            engine,
            parser_for(settings, local),
            batch_size=mqtt.batch_size,
            batch_latency=mqtt.batch_latency,
            clock=clock,
            name="facility-mqtt-writer",
            limits=settings.limits,
            site_zone=local,
            site_id=site_id,
        )
        self._client = self._build_client()
        self._lock = threading.Lock()
        self._accepting = True
        self._generation = 0  # counts connections; an ack only goes out on its own connection
        self._ack_lock = threading.Lock()
        self._connected = False
        self._since: datetime | None = None
        self._error: str | None = None
        self._down_since: float | None = None
        self._ever_connected = False
        self._lost: tuple[str, float] | None = None  # an unexpected loss not explained yet
        self._takers: set[str] = set()  # instances seen taking our client id, each logged once

    @property
    def broker(self) -> str:
        """host:port of the broker."""
        return f"{self._mqtt.host}:{self._mqtt.port}"

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer and connect in the background; returns at once, broker up or not."""
        self.writer.start()
        self._client.connect_async(self._mqtt.host, self._mqtt.port, keepalive=KEEPALIVE)
        self._client.loop_start()
        log.info("MQTT: connecting to %s as %r", self.broker, self.client_id)

    def stop(self, timeout: float = 5.0) -> None:
        """Write and acknowledge what was received, publish `offline`, disconnect, end the loop."""
        deadline = time.monotonic() + timeout
        self._accepting = False  # what arrives from now on stays with the broker for next time
        self.writer.stop(timeout=timeout * 0.6)
        if self._client.is_connected():
            info = self._client.publish(self._status_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as err:
                log.warning("MQTT: could not publish %s before disconnecting: %s", OFFLINE, err)
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._connected = False
            self._since = self._clock()
        log.info("MQTT: disconnected from %s", self.broker)

    def status(self) -> MqttStatus:
        """Connected or not, since when, the last error, and what the writer did."""
        with self._lock:
            connected, since, error = self._connected, self._since, self._error
        return MqttStatus(
            broker=self.broker,
            connected=connected,
            since=since,
            last_error=error or self.writer.last_error,
            pending=self.writer.pending,
            writer_alive=self.writer.alive,
            counters=self.writer.counters(),
        )

    def counters(self) -> dict[str, int]:
        """The writer's counters: received, stored, updated, duplicates, ignored, rejected, ..."""
        return self.writer.counters()

    # --- the client --------------------------------------------------------------------------

    def _build_client(self) -> paho.Client:
        mqtt = self._mqtt
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        client.suppress_exceptions = True  # a bug in a callback must not end the network loop
        client.connect_timeout = CONNECT_TIMEOUT
        client.reconnect_delay_set(RECONNECT_MIN, RECONNECT_MAX)
        client.will_set(self._status_topic, OFFLINE, qos=1, retain=True)
        _credentials(client, mqtt)
        _tls(client, mqtt)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                self._down(f"broker refused the connection: {reason}")
                return
            self._new_connection()
            # The claim's subscription first: the broker then hands back the claim it kept, which
            # is the one before ours (our own arrives afterwards, not marked retained).
            client.subscribe([(topic, 1) for topic in [self._claim_topic, *self._filters]])
            client.publish(self._claim_topic, self._claim, qos=1, retain=True)
            client.publish(self._status_topic, ONLINE, qos=1, retain=True)
            if self._ever_connected and not flags.session_present:
                log.warning(
                    "MQTT: broker %s kept no session for %r: messages published while we were "
                    "away are lost (is broker persistence on?)",
                    self.broker,
                    self.client_id,
                )
            self._up()
        except Exception:  # never let a callback end the loop; say what went wrong
            log.exception("MQTT: error in on_connect")

    def _on_connect_fail(self, _client: paho.Client, _userdata: object) -> None:
        # paho calls this from inside its `except OSError:` clause, so the error is at hand.
        err = sys.exc_info()[1]
        self._down(f"cannot connect: {err}" if err else "cannot connect")

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: object,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._new_connection()  # before paho reconnects: no ack of this connection goes out later
        if not self._accepting or not self._connected:
            return  # our own stop, or a refused connection whose reason is already recorded
        # Not logged yet: a failed reconnect logs the outage, a claim on reconnecting a takeover.
        error = f"connection lost: {reason}"
        with self._lock:
            self._connected, self._since, self._error = False, self._clock(), error
        self._lost = (error, time.monotonic())

    def _on_message(
        self, client: paho.Client, _userdata: object, message: paho.MQTTMessage
    ) -> None:
        if not self._accepting:
            return  # not acknowledged: the broker keeps it for our next session
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers refuse these, but a callback must not raise
            topic = "<topic that is not UTF-8>"
        if topic.startswith(f"{CLAIM_ROOT}/"):  # claims, ours and other daemons' (`prefix/#`)
            try:
                client.ack(message.mid, message.qos)
                if topic == self._claim_topic and message.retain:
                    self._claimed(bytes(message.payload))
            except Exception:
                log.exception("MQTT: error reading the claim on %s", topic)
            return
        try:
            ack = partial(self._ack, message.mid, message.qos, self._generation)
            self.writer.submit(Incoming(topic, bytes(message.payload), ack))
        except Exception:
            log.exception("MQTT: error queueing a message")

    def _ack(self, mid: int, qos: int, generation: int) -> None:
        """Acknowledge a stored message, if the connection that delivered it is still the current."""
        with self._ack_lock:
            if generation == self._generation:
                self._client.ack(mid, qos)

    def _new_connection(self) -> None:
        """Start a new ack generation (called on the network thread, on connect and disconnect)."""
        with self._ack_lock:
            self._generation += 1

    def _claimed(self, payload: bytes) -> None:
        """The claim kept before ours: after an unexpected loss, tells takeover from a dropout."""
        if self._lost is None:
            return  # first connection, or after an outage already logged: nothing to explain
        reason, _ = self._lost
        self._lost = None
        try:
            claim = json.loads(payload)
            other, pid, host = claim["instance"], claim["pid"], claim["host"]
        except (ValueError, KeyError, TypeError):
            other, pid, host = None, "?", "?"
        if other == self._instance:
            log.info("MQTT: %s; connected to %s again at once", reason, self.broker)
            return
        if other in self._takers:
            return
        self._takers.add(other)
        log.warning(
            "MQTT: session taken over: another client (process %s on %s) connected to %s with "
            "our client id %r, and the broker closed our connection; each daemon needs its own "
            "mqtt.client_id (the broker is fine)",
            pid,
            host,
            self.broker,
            self.client_id,
            extra={"fields": {"event": "mqtt.takeover", "other_pid": pid, "other_host": host}},
        )

    # --- connection state, logged once per change ------------------------------------------

    def _up(self) -> None:
        # Logged before `status()` says connected, so whoever sees the state sees the line too.
        if self._down_since is not None:
            log.info(
                "MQTT: connected to %s again after %.0f s",
                self.broker,
                time.monotonic() - self._down_since,
            )
        elif not self._ever_connected:
            log.info(
                "MQTT: connected to %s, subscribed to %s", self.broker, ", ".join(self._filters)
            )
        self._ever_connected = True
        self._down_since = None
        with self._lock:
            self._connected, self._since, self._error = True, self._clock(), None

    def _down(self, error: str) -> None:
        if self._lost is not None:  # the loss before this failed reconnect is the outage's start
            lost, lost_at = self._lost
            self._lost = None
            error = f"{lost}; {error}"
            if self._down_since is None:
                self._down_since = lost_at
                log.warning(
                    "MQTT: broker %s unavailable (%s); running on, reconnecting in the background",
                    self.broker,
                    error,
                )
        with self._lock:
            was_connected = self._connected or self._since is None
            self._connected, self._error = False, error
            if was_connected:
                self._since = self._clock()
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "MQTT: broker %s unavailable (%s); running on, reconnecting in the background",
                self.broker,
                error,
            )


def _check_topic(key: str, topic: str, *, optional: bool = False) -> None:
    """A base topic must be a plain topic name: no wildcards, no empty first or last level."""
    if optional and not topic:
        return
    if (
        not topic
        or any(ch in topic for ch in "+#\0")
        or topic.startswith("/")
        or topic.endswith("/")
    ):
        raise ConfigError(
            f"{key}: {topic!r} must be a plain topic (no + or #, no leading or trailing /)"
        )


def _credentials(client: paho.Client, mqtt: Mqtt) -> None:
    if mqtt.password_file is not None and not mqtt.username:
        raise ConfigError("mqtt.password_file: set mqtt.username as well")
    if not mqtt.username:
        return
    password = None
    if mqtt.password_file is not None:
        try:
            password = mqtt.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(
                f"mqtt.password_file: cannot read {mqtt.password_file}: {err}"
            ) from err
    client.username_pw_set(mqtt.username, password)


def _tls(client: paho.Client, mqtt: Mqtt) -> None:
    if mqtt.tls_ca is None:
        if mqtt.tls_cert or mqtt.tls_key:
            raise ConfigError("mqtt.tls_cert: set mqtt.tls_ca as well (it turns TLS on)")
        return
    if mqtt.tls_key and not mqtt.tls_cert:
        raise ConfigError("mqtt.tls_key: set mqtt.tls_cert as well")
    try:
        client.tls_set(
            ca_certs=str(mqtt.tls_ca),
            certfile=str(mqtt.tls_cert) if mqtt.tls_cert else None,
            keyfile=str(mqtt.tls_key) if mqtt.tls_key else None,
        )
    except (OSError, ssl.SSLError, ValueError) as err:
        raise ConfigError(f"mqtt.tls_ca/tls_cert/tls_key: cannot set up TLS: {err}") from err
