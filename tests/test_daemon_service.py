"""The daemon as a service is watched: its Prometheus metrics scraped over HTTP and parsed with the
Prometheus text parser, systemd's notify protocol on a datagram socket of the test's own (a job
hung on a PostgreSQL lock stops the watchdog pings), and new camera files indexed as they close.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, text

from facility import sites
from facility.store import db
from facility.store.models import CameraSegment, Site
from scheduler.metrics import Metrics
from tests.brokers import Publisher, free_port, wait_for
from tests.conftest import MQTT_PORT, Cli, fresh_database
from tests.daemons import Daemon, door_message, frigate_path, toml_text
from tests.factories import NOW, add_offices, make_settings


def write_config(tmp_path: Path, url: str, prefix: str = "", **sections) -> Path:
    prefix = prefix or f"site{uuid.uuid4().hex[:8]}"
    settings = {
        "database_url": url,
        "timezone": "UTC",
        "mqtt": {
            "port": MQTT_PORT,
            "client_id": f"facility-{prefix}",
            "topic_prefix": prefix,
            "esp_rfid_topic": "",
            "uhppoted_topic": "",
        },
        **sections,
    }
    config = tmp_path / "facility.toml"
    config.write_text(toml_text(settings))
    return config


def segment(root: Path, camera: str, start: datetime) -> str:
    relpath = frigate_path(camera, start)
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    stamp = start.timestamp() + 10
    os.utime(path, (stamp, stamp))
    return relpath


def samples(body: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape by (name, sorted labels), parsed as Prometheus parses it."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_a_running_daemon_serves_prometheus_metrics(tmp_path, daemons):
    root = tmp_path / "recordings"
    now = datetime.now(UTC).replace(microsecond=0)
    for minute in (30, 20, 10):
        segment(root, "front", now - timedelta(minutes=minute))
    url = f"sqlite:///{tmp_path / 'var' / 'facility.db'}"
    port = free_port()
    prefix = f"site{uuid.uuid4().hex[:8]}"
    config = write_config(
        tmp_path,
        url,
        prefix,
        purge={"interval": "1s"},
        camera={"root": str(root), "scan_interval": "1s"},
        snapshot={"interval": "1s"},
        metrics={"listen": f"127.0.0.1:{port}"},
    )
    Cli(url, tmp_path)("init", config=config)
    daemon = Daemon(config, tmp_path / "var").start()
    daemons.append(daemon)
    daemon.wait_for_line("MQTT: connected")
    publisher = Publisher()
    try:
        publisher.send(
            [
                door_message(prefix, "m-1", now - timedelta(minutes=1)),
                (f"{prefix}/doors/lobby/events", b"{not json"),
            ]
        )
    finally:
        publisher.close()
    daemon.wait_for_line("job camera-scan done")
    daemon.wait_for_line("job purge done")

    def scrape() -> dict:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        return samples(response.text)

    def stored_door_event() -> bool:
        return scrape().get(("facility_ingested_total", (("source", "mqtt"),)), 0) >= 1

    wait_for(stored_door_event, 10, "the door event to be counted")
    found = scrape()
    assert found["facility_store_up", ()] == 1
    camera = (("kind", "camera"), ("site", "main"))
    assert found["facility_records", camera] == 3
    assert found["facility_retention_policy_seconds", camera] == 14 * 86400
    age = found["facility_oldest_record_age_seconds", camera]
    assert 19 * 60 < age < 30 * 60  # the oldest segment ended 29 min 50 s ago
    assert all(v == 0 for (name, _), v in found.items() if name == "facility_overdue_records")
    assert found["facility_ingested_total", (("source", "camera"),)] == 3
    assert found["facility_rejected_total", (("source", "mqtt"),)] == 1
    purged_at = found["facility_job_last_success_timestamp_seconds", (("job", "purge"),)]
    assert abs(purged_at - time.time()) < 30
    assert found["facility_job_last_duration_seconds", (("job", "camera-scan"),)] >= 0
    assert found["facility_job_runs_total", (("job", "purge"), ("outcome", "success"))] >= 1
    assert ("facility_purge_last_files", (("site", "main"),)) in found
    assert found["facility_mqtt_connected", (("broker", f"127.0.0.1:{MQTT_PORT}"),)] == 1
    assert daemon.stop()[0] == 0


@pytest.mark.usefixtures("fixed_clock")
def test_the_stores_figures_are_the_daemons_sites_under_its_own_policy(cli):
    """Scraped over HTTP from the collector a daemon serves: a daemon of one office shows that
    office's figures (label `site`) and the organisation's requests; one built without a site,
    every office's."""
    add_offices(cli)
    cli("--site", "bru", "policy", "set", "visits", "1d", "--reason", "Brussels: less", "--yes")
    cli("--site", "bru", "policy", "apply", "visits", "--reason", "tests: at once")
    cli("request", "open", "access", "--name", "Ada", "--received", "2026-06-30", "--contact", "a")
    for site, names in (("ams", ["Ada", "Bob"]), ("bru", ["Cy"])):
        for name in names:
            cli("--site", site, "visitor", "sign-in", name, "--at", "2026-06-29T10:00", "--yes")
            cli("--site", site, "visitor", "sign-out", "--name", name, "--at", "2026-06-29T11:00")
    engine = db.make_engine(cli.url)
    try:
        with db.session_scope(engine) as session:
            ams = sites.get(session, "ams")
            session.expunge(ams)

        def scrape(site: Site | None) -> dict:
            port = free_port()
            settings = make_settings(metrics={"listen": f"127.0.0.1:{port}"})
            metrics = Metrics(engine, settings, clock=lambda: NOW, site=site)
            metrics.serve()
            try:
                return samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            finally:
                metrics.stop()

        def figures(found: dict, name: str) -> dict[tuple[str, str], float]:
            return {
                (dict(labels)["site"], dict(labels)["kind"]): value
                for (metric, labels), value in found.items()
                if metric == name and dict(labels)["kind"] in ("visits", "requests")
            }

        at_ams = scrape(ams)
        assert figures(at_ams, "facility_records") == {("ams", "visits"): 2, ("", "requests"): 1}
        every = scrape(None)
        assert figures(every, "facility_records") == {
            ("ams", "visits"): 2,
            ("bru", "visits"): 1,
            ("main", "visits"): 0,
            ("", "requests"): 1,
        }
        # Signed out two days ago: within the organisation's 3 days that Amsterdam follows, past
        # Brussels' own day: overdue there and only there.
        policy = figures(every, "facility_retention_policy_seconds")
        assert (policy["ams", "visits"], policy["bru", "visits"]) == (3 * 86400, 86400)
        overdue = figures(every, "facility_overdue_records")
        assert (overdue["ams", "visits"], overdue["bru", "visits"]) == (0, 1)
        assert ("facility_purge_last_files", (("site", "ams"),)) in at_ams
    finally:
        engine.dispose()


def test_metrics_on_an_address_already_taken_stop_the_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'facility.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        config = write_config(tmp_path, url, metrics={"listen": listen})
        Cli(url, tmp_path)("init", config=config)
        daemon = Daemon(config, tmp_path / "var").start(wait_started=False)
        code, _ = daemon.wait(20)
    assert code == 1
    assert f"metrics.listen: cannot listen on {listen}" in daemon.output
    assert "Traceback" not in daemon.output


# --- systemd: Type=notify with a watchdog -----------------------------------------------------


class NotifySocket:
    """systemd's end of the notify protocol: a datagram socket that keeps what it receives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def drain(self, seconds: float) -> None:
        """Receive for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def pings(self, since: float = 0.0) -> list[float]:
        return [t for t, m in self.messages if "WATCHDOG=1" in m.splitlines() and t >= since]

    def said(self, line: str) -> bool:
        return any(line in m.splitlines() for _, m in self.messages)

    def close(self) -> None:
        self.sock.close()


def test_a_job_hung_on_a_lock_stops_the_watchdog_pings_until_it_ends(tmp_path, request, daemons):
    databases = fresh_database("postgresql", request, tmp_path)
    url = next(databases)
    config = write_config(
        tmp_path,
        url,
        purge={"interval": "1h"},
        snapshot={"interval": "1s"},
        daemon={"stuck_after": "2s"},
    )
    systemd = NotifySocket(tmp_path / "notify.sock")
    daemon = Daemon(
        config,
        tmp_path / "var",
        env={"NOTIFY_SOCKET": str(systemd.path), "WATCHDOG_USEC": "1000000"},
    ).start()
    daemons.append(daemon)
    locker = create_engine(url)
    try:
        systemd.drain(3)
        assert systemd.said("READY=1")
        assert len(systemd.pings()) >= 4  # every half WatchdogSec
        with locker.connect() as conn:
            conn.execute(text("LOCK TABLE visits IN ACCESS EXCLUSIVE MODE"))  # the snapshot waits
            locked = time.monotonic()
            daemon.wait_for_line("job snapshot has run for", timeout=10)
            systemd.drain(4)
            last = max(systemd.pings())
            # Pings stop once the snapshot has waited stuck_after (2 s; 3 s with one interval):
            # systemd, with WatchdogSec=1, would have restarted the daemon long since.
            assert last - locked < 3.5
            assert not systemd.pings(since=last + 0.01)
            assert time.monotonic() - last > 3
            conn.rollback()  # the lock goes: the snapshot finishes
        daemon.wait_for_line("the watchdog pings resume", timeout=10)
        systemd.drain(2)
        assert len(systemd.pings(since=time.monotonic() - 2)) >= 2
        assert daemon.stop()[0] == 0
        systemd.drain(0.5)
        assert systemd.said("STOPPING=1")
    finally:
        locker.dispose()
        systemd.close()
        daemon.kill()
        next(databases, None)


# --- inotify -------------------------------------------------------------------------------------


def test_a_new_file_is_indexed_within_two_seconds_of_closing(tmp_path, daemons):
    root = tmp_path / "recordings"
    now = datetime.now(UTC).replace(microsecond=0)
    segment(root, "front", now - timedelta(hours=1))
    url = f"sqlite:///{tmp_path / 'var' / 'facility.db'}"
    # Scans an hour apart: only the watcher can index the new file in time.
    config = write_config(tmp_path, url, camera={"root": str(root), "scan_interval": "1h"})
    Cli(url, tmp_path)("init", config=config)
    daemon = Daemon(config, tmp_path / "var").start()
    daemons.append(daemon)
    daemon.wait_for_line("watching")
    assert "mode=full" in daemon.wait_for_line("job camera-scan done")  # the start's walk
    engine = db.make_engine(url)

    def indexed() -> int:
        with db.session_scope(engine) as session:
            return session.execute(select(func.count()).select_from(CameraSegment)).scalar_one()

    try:
        assert indexed() == 1
        # As a recorder writes: open, write for a while, close; in an hour's directory just made.
        relpath = frigate_path("front", now)
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        with open(root / relpath, "wb") as recording:
            recording.write(b"\x00\x00\x00\x18ftypmp42")
            time.sleep(0.5)
            assert indexed() == 1  # still open: not yet
            recording.write(b"\x00" * 1024)
        closed = time.monotonic()
        wait_for(lambda: indexed() == 2, 5, "the closed file to be indexed")
        assert time.monotonic() - closed <= 2
    finally:
        engine.dispose()
    assert daemon.stop()[0] == 0
