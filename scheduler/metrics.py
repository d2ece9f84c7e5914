"""The daemon's Prometheus metrics, served with `prometheus_client` at `[metrics] listen`.

One collector builds every family at scrape time from what the daemon already knows: the jobs'
outcomes (the runner tells `Metrics.job_done`), the MQTT connector's counters and connection, the
inotify watcher, and the store's figures per site and kind (`facility.operations.gauges`, read at
most once per `STORE_EVERY` seconds whatever the scrape rate). A daemon works for one site: the
store's figures are its site's (label `site`), with those of the kinds that belong to no site
(`site=""`); built without a site (one process for every site), every site's. The purge's figures
are the daemon's site's. A store that cannot be read drops those
families and sets `facility_store_up` to 0; the rest is still served. Names and labels are listed
in the README (Metrics), with sample alert rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from facility.errors import FacilityError
from facility.operations import gauges
from facility.settings import Settings, listen_address
from facility.store import db, kinds
from facility.store.models import Site

if TYPE_CHECKING:  # the daemon hands them over; metrics never builds one
    from connectors.camera_watch import Watcher
    from connectors.mqtt import MqttConnector

log = logging.getLogger("facility.daemon")

STORE_EVERY = 30.0  # seconds a reading of the store is served before it is read again
# Job detail keys that count what a source brought in or refused, per kind of job.
_INGESTED = ("indexed", "stored", "updated")
_REJECTED = ("rejected_new", "rejected")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Metrics(Collector):
    """Everything the daemon exposes; register it, feed it, serve it."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Callable[[], datetime] = _utc_now,
        site: Site | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.site = site  # the daemon's site (None: figures of every site)
        self._lock = threading.Lock()
        self._last_success: dict[str, float] = {}
        self._last_seconds: dict[str, float] = {}
        self._runs: dict[tuple[str, str], int] = defaultdict(int)
        self._ingested: dict[str, int] = defaultdict(int)
        self._rejected: dict[str, int] = defaultdict(int)
        self._purge_rows: dict[str, int] = {}
        self._purge_rows_total: dict[str, int] = defaultdict(int)
        self._purge_files = 0
        self._purge_files_total = 0
        self._store: tuple[float, list[gauges.KindFigures] | None] = (0.0, None)
        self.mqtt: MqttConnector | None = None  # the MqttConnector, once there is one
        self.watcher: Watcher | None = None  # the camera Watcher, if it runs
        self._server: WSGIServer | None = None

    # --- fed by the daemon -----------------------------------------------------------------------

    def job_done(
        self, name: str, now: datetime, seconds: float, detail: dict[str, Any], failure: str | None
    ) -> None:
        """A job ran (the runner's `outcomes` hook)."""
        with self._lock:
            self._last_seconds[name] = seconds
            self._runs[name, "failure" if failure else "success"] += 1
            if failure:
                return
            self._last_success[name] = now.timestamp()
            source = _source(name)
            if source is not None:
                self._ingested[source] += sum(int(detail.get(k) or 0) for k in _INGESTED)
                rejected = next((k for k in _REJECTED if k in detail), None)
                self._rejected[source] += int(detail.get(rejected) or 0) if rejected else 0
            if name == "purge" and "files_deleted" in detail:
                self._purge_rows = {k: int(detail[k]) for k in kinds.NAMES if k in detail}
                for kind, rows in self._purge_rows.items():
                    self._purge_rows_total[kind] += rows
                self._purge_files = int(detail.get("files_deleted") or 0)
                self._purge_files_total += self._purge_files

    def serve(self) -> None:
        """Listen at `metrics.listen` (FacilityError naming it when the address is taken)."""
        listen = self.settings.metrics.listen
        if listen is None:
            return
        host, port = listen_address(listen)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=registry)
        except OSError as err:
            raise FacilityError(
                f"metrics.listen: cannot listen on {listen}: {err.strerror or err}"
            ) from err
        log.info("metrics served at http://%s/metrics", listen)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- read at each scrape -------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield from self._store_families()
        yield from self._job_families()
        yield from self._source_families()
        yield from self._purge_families()
        yield from self._mqtt_families()

    def _figures(self) -> list[gauges.KindFigures] | None:
        read_at, figures = self._store
        if time.monotonic() - read_at < STORE_EVERY and figures is not None:
            return figures
        try:
            with db.read_scope(self.engine) as session:  # never holds up a writer
                figures = gauges.kinds(
                    session,
                    now=self.clock(),
                    interval=self.settings.purge.interval,
                    grace=self.settings.holds.release_grace,
                    at=None if self.site is None else [self.site],
                )
        except FacilityError as err:
            log.warning("metrics: cannot read the store: %s", err)
            figures = None
        self._store = (time.monotonic(), figures)
        return figures

    def _store_families(self) -> Iterator[Metric]:
        figures = self._figures()
        up = GaugeMetricFamily("facility_store_up", "1 when the store could be read")
        up.add_metric([], 0 if figures is None else 1)
        yield up
        if figures is None:
            return
        labels = ["site", "kind"]
        records = GaugeMetricFamily(
            "facility_records", "Records kept, per site and kind", labels=labels
        )
        oldest = GaugeMetricFamily(
            "facility_oldest_record_age_seconds",
            "Age of the oldest retention clock, per site and kind (absent: none started)",
            labels=labels,
        )
        policy = GaugeMetricFamily(
            "facility_retention_policy_seconds", "Retention policy in force there", labels=labels
        )
        overdue = GaugeMetricFamily(
            "facility_overdue_records",
            "Records expired for longer than a purge interval and not held",
            labels=labels,
        )
        for figure in figures:
            where = [figure.site, figure.kind]
            records.add_metric(where, figure.records)
            overdue.add_metric(where, figure.overdue)
            if figure.oldest_age is not None:
                oldest.add_metric(where, figure.oldest_age.total_seconds())
            if figure.policy is not None:
                policy.add_metric(where, figure.policy.total_seconds())
        yield from (records, oldest, policy, overdue)

    def _job_families(self) -> Iterator[Metric]:
        with self._lock:
            success, seconds, runs = (
                dict(self._last_success),
                dict(self._last_seconds),
                dict(self._runs),
            )
        last = GaugeMetricFamily(
            "facility_job_last_success_timestamp_seconds",
            "When each job last succeeded (Unix time)",
            labels=["job"],
        )
        for job, at in sorted(success.items()):
            last.add_metric([job], at)
        took = GaugeMetricFamily(
            "facility_job_last_duration_seconds",
            "How long each job's last run took",
            labels=["job"],
        )
        for job, value in sorted(seconds.items()):
            took.add_metric([job], value)
        total = CounterMetricFamily(
            "facility_job_runs", "Job runs by outcome", labels=["job", "outcome"]
        )
        for (job, outcome), n in sorted(runs.items()):
            total.add_metric([job, outcome], n)
        yield from (last, took, total)

    def _source_families(self) -> Iterator[Metric]:
        with self._lock:
            ingested, rejected = dict(self._ingested), dict(self._rejected)
        if self.watcher is not None:
            ingested["camera"] = ingested.get("camera", 0) + self.watcher.indexed
        if self.mqtt is not None:
            counters = self.mqtt.counters()
            ingested["mqtt"] = counters.get("stored", 0) + counters.get("updated", 0)
            rejected["mqtt"] = counters.get("rejected", 0)
        stored = CounterMetricFamily(
            "facility_ingested", "Records stored (new or updated), per source", labels=["source"]
        )
        refused = CounterMetricFamily(
            "facility_rejected", "Inputs rejected, per source", labels=["source"]
        )
        for source in sorted(set(ingested) | set(rejected)):
            stored.add_metric([source], ingested.get(source, 0))
            refused.add_metric([source], rejected.get(source, 0))
        yield from (stored, refused)

    def _purge_families(self) -> Iterator[Metric]:
        with self._lock:
            rows, rows_total = dict(self._purge_rows), dict(self._purge_rows_total)
            files, files_total = self._purge_files, self._purge_files_total
        site = "" if self.site is None else self.site.code
        last = GaugeMetricFamily(
            "facility_purge_last_rows",
            "Rows the last purge deleted, per kind",
            labels=["site", "kind"],
        )
        total = CounterMetricFamily(
            "facility_purge_rows", "Rows deleted by purges, per kind", labels=["site", "kind"]
        )
        for kind in sorted(rows_total):
            last.add_metric([site, kind], rows.get(kind, 0))
            total.add_metric([site, kind], rows_total[kind])
        last_files = GaugeMetricFamily(
            "facility_purge_last_files", "Files the last purge deleted", labels=["site"]
        )
        last_files.add_metric([site], files)
        files_counter = CounterMetricFamily(
            "facility_purge_files", "Files deleted by purges", labels=["site"]
        )
        files_counter.add_metric([site], files_total)
        yield from (last, total, last_files, files_counter)

    def _mqtt_families(self) -> Iterator[Metric]:
        if self.mqtt is None:
            return
        status = self.mqtt.status()
        connected = GaugeMetricFamily(
            "facility_mqtt_connected", "1 while connected to the broker", labels=["broker"]
        )
        connected.add_metric([status.broker], 1 if status.connected else 0)
        pending = GaugeMetricFamily(
            "facility_mqtt_pending", "Messages received and not yet written"
        )
        pending.add_metric([], status.pending)
        yield from (connected, pending)


def _source(job: str) -> str | None:
    """The source a job reads, if it reads one."""
    if job == "camera-scan":
        return "camera"
    if job.startswith("lease-poll:"):
        return job
    return None
