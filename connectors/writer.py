"""The batching writer: one named thread that parses queued messages and stores them in batches.

A source (the MQTT connector) only queues `Incoming` items; this thread takes them in batches of
at most `batch_size`, collected for at most `batch_latency` (a bound, not a wait: when the queue
runs dry the batch is written at once, and under load batches grow while the previous one
commits). Each batch is parsed (`parse`, a pure function; anything it raises becomes a rejection),
checked against the clock (`ingest.admit`: an event time further ahead than `limits.clock_skew`
becomes a rejection too) and stored in ONE transaction: door events, leases and segments through `facility.sources.ingest`,
rejections as dead letters. Only after that commit is each item's `ack` called, so an item
acknowledged to its source is always stored (at-least-once end to end; the idempotent store makes
it exactly-once in the database).

A database that fails (locked, unreachable) is retried with backoff, logged once per outage; the
batch is not acknowledged meanwhile. An error that retrying cannot fix (a value the database
refuses) is isolated: the batch is stored item by item and the item that still fails becomes a
rejection, so one bad message never blocks the rest. `stop` writes what is queued, then exits;
what it cannot write in time stays unacknowledged, and the source delivers it again later.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from facility.errors import RejectedInput, StoreError
from facility.settings import Limits
from facility.sources import ingest
from facility.sources.records import DoorEventIn, LeaseIn, SegmentIn
from facility.store import db
from facility.store.models import DEFAULT_SITE

log = logging.getLogger("facility.writer")

Parsed = DoorEventIn | LeaseIn | SegmentIn | None
Parse = Callable[[str, bytes], Parsed]
Outcome = DoorEventIn | LeaseIn | SegmentIn | RejectedInput | None

RETRY_FIRST = 0.5  # seconds before the first retry of a failed batch; doubles up to RETRY_MAX
RETRY_MAX = 30.0
REJECTION_LOG_INTERVAL = 60.0  # one log line per rejection reason per interval
REJECTION_LOG_LINES = 10  # at most this many rejection lines per interval, whatever the reasons
_POLL = 0.5  # how often an idle writer looks at its stop flag


class _Wake(Enum):
    WAKE = "wake"  # queued by `stop` so that an idle writer notices at once


_WAKE = _Wake.WAKE  # a sentinel mypy can tell apart from an item (an enum member)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message from a source: where it came from, its bytes, and how to acknowledge it."""

    topic: str
    payload: bytes
    ack: Callable[[], None] | None = None


@dataclass
class Counters:
    """What the writer has done since it started (only committed work is counted)."""

    received: int = 0  # items taken off the queue
    stored: int = 0  # new rows
    updated: int = 0  # lease reports merged into a stored lease
    duplicates: int = 0  # already stored: a redelivery
    ignored: int = 0  # knowingly ignored (status topic, heartbeat, other device traffic)
    rejected: int = 0  # dead letters written to `rejections`
    batches: int = 0  # transactions committed
    retries: int = 0  # failed attempts to commit a batch


class _Permanent(Exception):
    """Storing failed in a way that retrying the same data cannot fix."""


class _GaveUp(Exception):
    """The writer is stopping and its time to retry is up."""


class BatchWriter:
    """A named thread that stores queued items in batches and acknowledges them after commit."""

    def __init__(
        self,
        engine: Engine,
        parse: Parse,
        *,
        batch_size: int = 500,
        batch_latency: timedelta = timedelta(milliseconds=200),
        clock: Callable[[], datetime] = _utc_now,
        name: str = "facility-writer",
        source: str = "mqtt",
        limits: Limits | None = None,
        site_zone: tzinfo = UTC,
        site_id: int = DEFAULT_SITE,
    ) -> None:
        self._engine = engine
        self._site_id = site_id  # every item is stored at the site of the source
        self._parse = parse
        self._limits = limits or Limits()
        self._zone = site_zone
        self._batch_size = batch_size
        self._latency = batch_latency.total_seconds()
        self._clock = clock
        self._source = source  # names the source of a rejection the parser did not name
        self._queue: queue.SimpleQueue[Incoming | _Wake] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._deadline: float | None = None  # monotonic time after which a stopping writer gives up
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._lock = threading.Lock()
        self._counters = Counters()
        self._rejections = _RejectionLog()
        self._outage_since: float | None = None
        self._abandoned = 0  # items of the batch a stopping writer gave up on
        self.last_error: str | None = None

    # --- the API a source and the daemon use ---------------------------------------------------

    def submit(self, item: Incoming) -> None:
        """Queue one item; never blocks (safe to call from a network callback)."""
        self._queue.put(item)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Write what is queued, then end the thread; True if everything queued was written."""
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        self._queue.put(_WAKE)
        if self._thread.is_alive():
            self._thread.join(timeout + 1.0)
        if self._thread.is_alive():
            log.warning(
                "writer did not finish within %.0f s; unwritten messages come again", timeout
            )
            return False
        left = self._abandoned + self._discard_queue()
        if left:
            log.warning(
                "writer stopped with %d message(s) not written; their source delivers them again",
                left,
            )
        return not left

    @property
    def pending(self) -> int:
        """Items queued and not yet written (about: the wake-up marker may count as one)."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        """Whether the writer thread runs."""
        return self._thread.is_alive()

    def counters(self) -> dict[str, int]:
        """A snapshot of the counters."""
        with self._lock:
            return asdict(self._counters)

    def _discard_queue(self) -> int:
        """Empty the queue of a finished writer; return how many items were left unwritten."""
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return left
            left += item is not _WAKE

    # --- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            if self._past_deadline():
                return
            batch = self._collect()
            if batch:
                try:
                    self._write(batch)
                except _GaveUp:
                    self._abandoned = len(batch)
                    return
            elif self._stopping.is_set():
                return

    def _collect(self) -> list[Incoming]:
        """Up to batch_size items: wait for the first, then take what is queued, within latency."""
        try:
            first = self._queue.get(timeout=0 if self._stopping.is_set() else _POLL)
        except queue.Empty:
            return []
        batch = [] if first is _WAKE else [first]
        until = time.monotonic() + self._latency
        while batch and len(batch) < self._batch_size and time.monotonic() < until:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break  # the queue ran dry: write now rather than wait for more
            if item is not _WAKE:
                batch.append(item)
        return batch

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    def _write(self, batch: list[Incoming]) -> None:
        intake = ingest.Intake(self._clock(), self._limits, self._zone, self._site_id)
        outcomes = [self._admit(item, self._parse_one(item), intake) for item in batch]
        try:
            counts = self._retrying(outcomes, intake)
        except _Permanent as err:
            log.warning("a batch could not be stored (%s); storing it message by message", err)
            counts = self._one_by_one(outcomes, intake)
        self._committed(batch, counts)
        for outcome in outcomes:
            if isinstance(outcome, RejectedInput):
                self._rejections.note(outcome)

    def _parse_one(self, item: Incoming) -> Outcome:
        try:
            return self._parse(item.topic, item.payload)
        except RejectedInput as err:
            return err
        except Exception as err:  # a parser bug must not kill the writer: keep the message
            return RejectedInput(
                f"unexpected {type(err).__name__} while parsing",
                source=self._source,
                raw=bytes(item.payload[: ingest.RAW_LIMIT]),
            )

    def _admit(self, item: Incoming, outcome: Outcome, intake: ingest.Intake) -> Outcome:
        """The outcome as it may be stored now; a time too far ahead makes it a rejection."""
        if outcome is None or isinstance(outcome, RejectedInput):
            return outcome
        try:
            return ingest.admit(outcome, intake)
        except RejectedInput as err:
            source = getattr(outcome, "source", None) or self._source
            raw = bytes(item.payload[: ingest.RAW_LIMIT])
            return RejectedInput(err.reason, source=source, raw=raw)

    def _one_by_one(self, outcomes: list[Outcome], intake: ingest.Intake) -> Counters:
        total = Counters()
        for outcome in outcomes:
            try:
                counts = self._retrying([outcome], intake)
            except _Permanent as err:
                rejection = _unstorable(outcome, err, self._source)
                self._rejections.note(rejection)
                counts = self._retrying_or_drop(rejection, intake)
            _add(total, counts)
        return total

    def _retrying_or_drop(self, rejection: RejectedInput, intake: ingest.Intake) -> Counters:
        try:
            return self._retrying([rejection], intake)
        except _Permanent as err:  # not even the dead letter fits: log it, do not block on it
            log.error("dropped a message that cannot be stored even as a rejection: %s", err)
            return Counters()

    def _retrying(self, outcomes: Sequence[Outcome], intake: ingest.Intake) -> Counters:
        """Store `outcomes` in one transaction, retrying transient failures with backoff."""
        delay = RETRY_FIRST
        while True:
            try:
                counts = self._store(outcomes, intake)
            except (StoreError, sa_exc.OperationalError, sa_exc.InterfaceError) as err:
                self._failed(err)
                self._sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            except Exception as err:  # a refused value or a bug: retrying the same data cannot help
                raise _Permanent(_first_line(err)) from err
            self._recovered()
            return counts

    def _store(self, outcomes: Sequence[Outcome], intake: ingest.Intake) -> Counters:
        counts = Counters()
        events = [o for o in outcomes if isinstance(o, DoorEventIn)]
        leases = [o for o in outcomes if isinstance(o, LeaseIn)]
        segments = [o for o in outcomes if isinstance(o, SegmentIn)]
        rejections = [o for o in outcomes if isinstance(o, RejectedInput)]
        with db.session_scope(self._engine) as session:
            new_events = ingest.store_door_events(session, events, intake) if events else 0
            new_leases, updated = ingest.store_leases(session, leases, intake) if leases else (0, 0)
            new_segments = ingest.store_segments(session, segments, intake) if segments else 0
            for rejection in rejections:
                ingest.record_rejection(session, rejection, now=intake.now, site_id=intake.site_id)
        counts.stored = new_events + new_leases + new_segments
        counts.updated = updated
        counts.duplicates = len(events) + len(leases) + len(segments) - counts.stored - updated
        counts.rejected = len(rejections)
        counts.ignored = sum(1 for o in outcomes if o is None)
        return counts

    def _committed(self, batch: list[Incoming], counts: Counters) -> None:
        for item in batch:
            if item.ack is not None:
                try:
                    item.ack()
                except Exception as err:  # the source redelivers what it did not hear back about
                    log.debug("acknowledging a message failed: %s", err)
        counts.received = len(batch)
        counts.batches = 1
        with self._lock:
            _add(self._counters, counts)

    def _failed(self, err: Exception) -> None:
        self.last_error = f"database: {_first_line(err)}"
        with self._lock:
            self._counters.retries += 1
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning(
                "database write failed (%s); retrying with backoff, %d message(s) waiting",
                _first_line(err),
                self._queue.qsize(),
            )

    def _recovered(self) -> None:
        if self._outage_since is not None:
            log.info(
                "database writes work again after %.0f s", time.monotonic() - self._outage_since
            )
            self._outage_since, self.last_error = None, None

    def _sleep(self, delay: float) -> None:
        """Back off before a retry; a stopping writer retries only until its deadline."""
        if self._stopping.is_set() and self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise _GaveUp
            delay = min(delay, remaining)
            time.sleep(delay)
            return
        self._stopping.wait(delay)


def _unstorable(outcome: Outcome, err: _Permanent, source: str) -> RejectedInput:
    """A dead letter for an item the database refused; NUL bytes escaped (PostgreSQL refuses them)."""
    if isinstance(outcome, RejectedInput):
        raw = outcome.raw if isinstance(outcome.raw, bytes) else str(outcome.raw).encode()
        return RejectedInput(
            outcome.reason, source=outcome.source, raw=raw.replace(b"\x00", b"\\x00")
        )
    return RejectedInput(
        f"could not be stored: {err}", source=source, raw=repr(outcome)[: ingest.RAW_LIMIT]
    )


def _add(total: Counters, counts: Counters) -> None:
    for name, value in asdict(counts).items():
        setattr(total, name, getattr(total, name) + value)


def _first_line(err: BaseException) -> str:
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


class _RejectionLog:
    """Logs rejections: one line per (source, reason) per interval, a few lines per interval."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self._window_start = 0.0
        self._lines = 0
        self._suppressed = 0

    def note(self, rejection: RejectedInput) -> None:
        """Log `rejection` unless its reason, or too many others, were logged recently."""
        now = time.monotonic()
        if now - self._window_start >= REJECTION_LOG_INTERVAL:
            if self._suppressed:
                log.warning(
                    "%d more rejection(s) not logged in the last %.0f s; see the rejections table",
                    self._suppressed,
                    REJECTION_LOG_INTERVAL,
                )
            self._window_start, self._lines, self._suppressed = now, 0, 0
            self._last = {k: t for k, t in self._last.items() if now - t < REJECTION_LOG_INTERVAL}
        key = (rejection.source, rejection.reason)
        last = self._last.get(key)
        if (last is not None and now - last < REJECTION_LOG_INTERVAL) or (
            self._lines >= REJECTION_LOG_LINES
        ):
            self._suppressed += 1
            return
        self._last[key] = now
        self._lines += 1
        log.warning("rejected a %s message: %s", rejection.source or "unknown", rejection.reason)
