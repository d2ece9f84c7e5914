"""A year compressed: a site's days run through the daemon's own jobs with an injected clock.

Every simulated day brings a site's daily volumes, scaled by `--scale` (DESIGN.md's site: 2 000
visits, 200 000 door events, 500 cameras of 1-minute segments, 50 000 leases a year; at the default
0.01, 20 visits with their badges, 2 000 door events, 5 cameras' 7 200 segment files on disk,
about 1.4 leases), plus six incident holds placed and released during the year. Visits and badges
go through reception, door events, leases through ingest, segment files through the recordings
root and the scanner. The daemon's jobs (`scheduler.daemon.build_jobs`, run by its `JobRunner`) run
at their intervals on the simulated clock, in steps of `--tick` (3 h): a job whose interval is
shorter runs once per step, as APScheduler's coalescing would after a late start; so the purge
interval is set to the tick, and the overdue rule follows it. The camera reconciliation runs weekly
instead of daily (a daily walk of every live file would take most of the run).

Per simulated month it prints the database size, the peak RSS of the process, the mean and the
longest purge, the on-site p99 (300 listings in their own sessions at the month's end, the lowest
of three rounds) and the report's time (best of three), and checks every simulated day that
nothing is overdue. The times are the work's CPU time, the purge's wall-clock time printed
beside it (`_on_cpu` says why). The leases of the year before the run are stored first, so every
policy's volume is reached from month 1 (`_year_before`). The times compared are taken at the end,
on copies of month 2's and month 12's stores measured in turn (`_side_by_side`): each month's own
figures met the machine's load of their own minute. Target: month 12 within 1.2 x month 2 on
every figure; overdue 0 throughout; no job failed. `--keep` copies every month's store aside.

    python bench/year.py [--quick] [--days N] [--scale F] [--tick 3h] [--engine sqlite|postgresql]
                         [--keep DIR]
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    Figure,
    arguments,
    finish,
    peak_rss_mb,
    reset_peak_rss,
    rss_figure,
    say,
    store,
    workdir,
)
from sqlalchemy import text

from connectors.camera import Scanner
from facility.operations import gauges
from facility.privacy import report
from facility.retention import holds, purge
from facility.settings import Settings
from facility.sources import ingest
from facility.sources.records import DoorEventIn, LeaseIn
from facility.store import db
from facility.store.models import Visit
from facility.timeutil import parse_duration
from facility.trail import audit, heads, keys
from facility.visitors import onsite, reception
from scheduler.daemon import build_jobs
from scheduler.jobs import JobRunner

START = datetime(2025, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
# DESIGN.md's site, per day.
VISITS, DOOR_EVENTS, CAMERAS, LEASES = 2_000, 200_000, 500, 50_000 / 365
SEGMENT = 60  # seconds: 1-minute segments
STAFF_BADGES = 300
ONSITE_CALLS = 300
LONGEST = timedelta(days=365)  # wifi leases', the longest default policy of a kind the site feeds
REPLAYS = 5  # rounds of the side-by-side measurement of month 2's and month 12's stores


@dataclass
class Month:
    """What one simulated month measured."""

    label: str
    purges: list[float] = field(default_factory=list)  # CPU seconds of each purge
    purges_wall: list[float] = field(default_factory=list)
    db_mb: float = 0.0
    rss_mb: float = 0.0
    onsite_p99_ms: float = 0.0
    report_s: float = 0.0
    overdue_max: int = 0
    rows: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        rows = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        return (
            f"month {self.label}: db {self.db_mb:7.1f} MB  rss {self.rss_mb:6.1f} MB  purge "
            f"{statistics.mean(self.purges or [0]):6.3f} s cpu, "
            f"{statistics.mean(self.purges_wall or [0]):6.3f} s wall (max {max(self.purges_wall or [0]):.3f})  "
            f"on-site p99 {self.onsite_p99_ms:6.2f} ms  report {self.report_s:6.3f} s  "
            f"overdue {self.overdue_max}  [{rows}]"
        )


@dataclass
class PlannedVisit:
    name: str
    badge: str
    signed_in: datetime
    signed_out: datetime | None  # None: forgot to sign out (auto-closed after limits.max_visit)
    returns_badge: bool
    visit_id: int | None = None


class Site:
    """The site's people, devices and cameras, and what they do in a window of time."""

    def __init__(self, scale: float, root: Path, seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.scale = scale
        self.root = root
        self.cameras = [f"cam{c:03d}" for c in range(max(1, round(CAMERAS * scale)))]
        self.visits: list[PlannedVisit] = []
        self.count = 0
        self.events = 0
        self.macs = [f"3c:22:fb:{i // 256:02x}:{i % 256:02x}:01" for i in range(200)]

    def plan_day(self, day: datetime) -> None:
        """Who visits on `day`."""
        for _ in range(_poisson(self.random, VISITS * self.scale)):
            self.count += 1
            start = day + timedelta(hours=7, minutes=self.random.randrange(11 * 60))
            stays = timedelta(minutes=self.random.randrange(30, 8 * 60))
            forgot = self.random.random() < 0.05
            self.visits.append(
                PlannedVisit(
                    name=f"Visitor {self.count}",
                    badge=f"V{self.count}",
                    signed_in=start,
                    signed_out=None if forgot else start + stays,
                    returns_badge=self.random.random() > 0.05,
                )
            )

    def reception(self, engine, start: datetime, end: datetime) -> None:
        """Sign in and out whoever did so in [start, end), at the times they did."""
        with db.session_scope(engine) as session:
            for visit in self.visits:
                if start <= visit.signed_in < end:
                    opened = reception.sign_in(
                        session, now=end, name=visit.name, badge=visit.badge, at=visit.signed_in
                    )
                    visit.visit_id = opened.id
            for visit in self.visits:
                out = visit.signed_out
                if out is not None and start <= out < end and visit.visit_id is not None:
                    row = session.get(Visit, visit.visit_id)
                    if row is not None and row.signed_out_at is None:
                        reception.sign_out(
                            session, row, now=end, at=out, badge_kept=not visit.returns_badge
                        )
        self.visits = [v for v in self.visits if v.signed_out is None or v.signed_out >= end]
        self.visits = [v for v in self.visits if v.signed_in >= end - 2 * DAY or v.visit_id is None]

    def door_events(self, start: datetime, end: datetime) -> list[DoorEventIn]:
        share = (end - start) / DAY
        found = []
        for _ in range(_poisson(self.random, DOOR_EVENTS * self.scale * share)):
            at = start + (end - start) * self.random.random()
            on_site = [v for v in self.visits if v.signed_in <= at and v.visit_id is not None]
            if on_site and self.random.random() < 0.2:
                badge = self.random.choice(on_site).badge
            else:
                badge = f"S{self.random.randrange(STAFF_BADGES):03d}"
            self.events += 1
            found.append(
                DoorEventIn(
                    event_id=f"e{self.events}",
                    door=f"door{self.random.randrange(20):02d}",
                    badge=badge,
                    at=at,
                    granted=self.random.random() > 0.02,
                    source="bench",
                )
            )
        return found

    def leases(self, start: datetime, end: datetime) -> list[LeaseIn]:
        share = (end - start) / DAY
        found = []
        for _ in range(_poisson(self.random, LEASES * self.scale * share)):
            at = start + (end - start) * self.random.random()
            mac = self.random.choice(self.macs)
            ip = f"10.0.{self.random.randrange(4)}.{self.random.randrange(2, 250)}"
            ends = at + timedelta(hours=self.random.randrange(1, 9))
            found.append(LeaseIn("bench", mac, ip, at, min(ends, end)))
        return found

    def record(self, start: datetime, end: datetime) -> int:
        """Write the segment files every camera recorded in [start, end)."""
        written = 0
        at = start
        while at < end:
            for camera in self.cameras:
                path = self.root / f"{at:%Y-%m-%d}/{at:%H}/{camera}/{at:%M.%S}.mp4"
                if at.minute == 0:
                    path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
                written += 1
            at += timedelta(seconds=SEGMENT)
        return written


@contextlib.contextmanager
def _recordings(given: Path | None) -> Iterator[Path]:
    """The recordings root: the folder given (kept), or a new one in memory (removed after).

    Creating millions of files on a disk that the database syncs to would cost more than the
    simulated site's work; what the scanner costs on a disk is bench/scan.py's to measure.
    """
    shm = Path("/dev/shm")
    if given is not None or not shm.is_dir() or not os.access(shm, os.W_OK):
        with workdir(given) as root:
            yield root
        return
    root = Path(tempfile.mkdtemp(prefix="facility-year-", dir=shm))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _poisson(rng: random.Random, mean: float) -> int:
    """A whole count with the given mean (the fraction drawn), enough for volumes."""
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0)


def db_size_mb(engine, url: str) -> float:
    if engine.dialect.name == "sqlite":
        return Path(engine.url.database).stat().st_size / 1e6
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_database_size(current_database())")).scalar() / 1e6


def p99(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.99))]


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="simulated days (at least 365)")
    parser.add_argument("--scale", type=float, default=0.01, help="share of a full site's volumes")
    parser.add_argument("--tick", default="3h", help="the simulated clock's step")
    parser.add_argument(
        "--recordings",
        type=Path,
        default=None,
        help="where the segment files go (default: a folder in /dev/shm when there is one)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="copy the store (database, head file, key) here at each month's end, to profile",
    )
    args = parser.parse_args()
    days, scale, tick = args.days, args.scale, parse_duration(args.tick)
    if args.quick:
        days, scale, tick = 62, 0.001, timedelta(days=1)
    logging.basicConfig(level=logging.ERROR)
    with (
        workdir(args.workdir) as where,
        store(args.engine, where, "year") as seeded,
        _recordings(args.recordings) as root,
    ):
        settings = _settings(where, seeded.url, root, tick)
        engine = db.make_engine(seeded.url)
        scanner = Scanner(engine, settings)
        clock = [START]
        runner = JobRunner(engine, clock=lambda: clock[0])
        jobs = build_jobs(engine, settings, "bench", threading.Event(), scanner)
        failures: list[str] = []
        purges: list[float] = []

        def outcome(name, _now, seconds, _detail, failure) -> None:
            if failure:
                failures.append(f"{name}: {failure}")
            if name == "purge":
                purges.append(seconds)
                month.purges.append(cpu.pop(name, 0.0))

        cpu: dict[str, float] = {}
        jobs = [replace(job, work=_on_cpu(job.name, job.work, cpu)) for job in jobs]

        runner.outcomes.append(outcome)
        site = Site(scale, root)
        backfilled = _year_before(engine, site, settings)
        frozen: list[Frozen] = []
        last_run = {job.name: START - DAY for job in jobs}
        months: list[Month] = []
        month = Month(f"{START:%Y-%m}")
        reset_peak_rss()
        overdue_seen = 0
        began = time.monotonic()
        say(
            f"{days} days at scale {scale}, tick {tick}, {len(site.cameras)} cameras; "
            f"{backfilled} leases of the {LONGEST.days} days before"
        )
        now = START
        end_of_run = START + days * DAY
        while now < end_of_run:
            later = now + tick
            if now.hour == 0 and now.minute == 0:
                site.plan_day(now)
                _incidents(engine, site, now)
            site.record(now, later)
            site.reception(engine, now, later)
            intake = ingest.Intake(later, settings.limits)
            with db.session_scope(engine) as session:
                ingest.store_door_events(session, site.door_events(now, later), intake)
                ingest.store_leases(session, site.leases(now, later), intake)
            now = clock[0] = later
            for job in jobs:
                if now - last_run[job.name] >= max(job.interval, tick):
                    runner.run(job)
                    last_run[job.name] = now
            month.purges_wall.extend(purges)
            purges.clear()
            if now.hour == 0 and now.minute == 0:
                overdue = _overdue(engine, settings, now)
                overdue_seen = max(overdue_seen, overdue)
                month.overdue_max = max(month.overdue_max, overdue)
            if f"{now:%Y-%m}" != month.label:
                _measure(month, engine, seeded.url, settings, now)
                months.append(month)
                say(month.line() + f"  ({time.monotonic() - began:.0f} s)")
                if args.keep is not None:
                    _keep(where, args.keep / f"{len(months):02d}-{month.label}")
                if len(months) in (2, 12):
                    frozen.append(_freeze(seeded, engine, where, len(months), now))
                month = Month(f"{now:%Y-%m}")
                reset_peak_rss()
        if month.purges:
            _measure(month, engine, seeded.url, settings, now)
            months.append(month)
            say(month.line())
        if len(frozen) == 1 and len(months) > 2:  # a run shorter than a year: its last month
            frozen.append(_freeze(seeded, engine, where, len(months), now))
        engine.dispose()
        replayed = _side_by_side(frozen, where, tick, REPLAYS if not args.quick else 2)
    return _verdict(months, replayed, overdue_seen, failures, args, days, scale)


def _settings(home: Path, url: str, root: Path, tick: timedelta) -> Settings:
    return Settings(
        home=home,
        database_url=url,
        purge={"interval": tick},
        camera={
            "root": root,
            "segment_length": f"{SEGMENT}s",
            "scan_interval": tick,
            "reconcile_interval": "7d",
            "watch": False,
        },
        snapshot={"interval": tick},
    )


def _keep(home: Path, into: Path) -> None:
    """A copy of the site's home as it is between two steps (nothing is writing then)."""
    shutil.copytree(home, into, dirs_exist_ok=True)


def _on_cpu(name: str, work, cpu: dict[str, float]):
    """`work`, noting the CPU seconds it took in `cpu[name]`.

    The figures compared across months are CPU time of the work (the wall time is printed
    beside): on a shared machine the wall time of one purge moves with other people's load
    within one run, which says nothing about the store.
    """

    def timed(now: datetime):
        started = time.thread_time()
        try:
            return work(now)
        finally:
            cpu[name] = time.thread_time() - started

    return timed


def _incidents(engine, site: Site, now: datetime) -> None:
    """An incident hold every two months on a camera and a door, released a month later."""
    day = (now - START).days
    if day % 60 == 10:
        with db.session_scope(engine) as session:
            holds.place(
                session,
                now=now,
                actor="bench",
                case=f"INC-{day:04d}",
                reason="bench incident",
                window_from=now - timedelta(days=2, hours=3),
                window_to=now - timedelta(days=2),
                scopes=[
                    holds.Scope("camera", site.cameras[0]),
                    holds.Scope("door_events", "door01"),
                ],
            )
    if day % 60 == 40:
        with db.session_scope(engine) as session:
            holds.release(
                session, now=now, actor="bench", case=f"INC-{day - 30:04d}", reason="closed"
            )


def _overdue(engine, settings: Settings, now: datetime) -> int:
    with db.session_scope(engine) as session:
        figures = gauges.kinds(
            session, now=now, interval=settings.purge.interval, grace=settings.holds.release_grace
        )
    return sum(f.overdue for f in figures)


def _measure(month: Month, engine, url: str, settings: Settings, now: datetime) -> None:
    # The least disturbed of three rounds: the machine is shared.
    month.onsite_p99_ms = min(_onsite_p99(engine, now) for _ in range(3)) * 1000
    reports = [_report(engine, settings, now) for _ in range(3)]
    month.report_s = min(seconds for seconds, _ in reports)
    month.rows = {kind: status.count for kind, status in reports[-1][1].kinds.items()}
    month.db_mb = db_size_mb(engine, url)
    month.rss_mb = peak_rss_mb()


def _onsite_p99(engine, now: datetime) -> float:
    """The p99 CPU seconds of ONSITE_CALLS on-site listings, each in its own session."""
    listings = []
    for _ in range(ONSITE_CALLS):
        started = time.thread_time()
        with db.session_scope(engine) as session:
            onsite.on_site(session, now=now)
        listings.append(time.thread_time() - started)
    return p99(listings)


def _report(engine, settings: Settings, now: datetime) -> tuple[float, report.Report]:
    """The report at `now` and the CPU seconds it took."""
    started = time.thread_time()
    with db.session_scope(engine) as session:
        built = report.build(
            session, now=now, interval=settings.purge.interval, grace=settings.holds.release_grace
        )
    return time.thread_time() - started, built


def _year_before(engine, site: Site, settings: Settings) -> int:
    """The leases of the LONGEST days before the run, stored day by day as they came.

    Wifi's policy is a year: started empty, the table would grow through all of the first year,
    and month 12 would be compared with a month 2 that holds a twelfth of the leases. With the
    year before in place every policy's volume is reached from month 1, as the issue's target
    assumes. (The audit trail is meant to grow for ever, and does.)
    """
    stored = 0
    day = START - LONGEST
    while day < START:
        found = site.leases(day, day + DAY)
        with db.session_scope(engine) as session:
            ingest.store_leases(session, found, ingest.Intake(day + DAY, settings.limits))
        stored += len(found)
        day += DAY
    return stored


@dataclass
class Frozen:
    """A copy of the store as a month ended (database, head file, key), measured again later."""

    month: int
    home: Path
    url: str
    now: datetime


def _freeze(seeded, engine, where: Path, month: int, now: datetime) -> Frozen:
    engine.dispose()  # PostgreSQL copies a database only while nobody is connected to it
    url = seeded.clone(f"year-month{month}")
    home = where / f"month{month}"
    home.mkdir()
    for name in (audit.KEY_FILE, heads.HEAD_FILE):
        shutil.copy2(where / name, home / name)
    return Frozen(month, home, url, now)


def _side_by_side(frozen: list[Frozen], where: Path, tick: timedelta, rounds: int) -> dict:
    """Month 2's and month 12's stores measured in turn, `rounds` times; the medians of each.

    Each month's own figures were taken minutes apart, months 2 and 12 up to twenty minutes
    apart, under whatever else the shared machine ran then; a run's load drifts by more than
    the 1.2 x the target allows. Taken in turn, the two stores meet the same load, so what
    differs is the stores. Each round purges the next tick of each copy (its own clock), then
    lists who is on site and builds the report at that time. Both copies purge with the same
    stand-in recordings root, holding one file and none of the segments: what the purge does
    in the database, the audit trail and the head file is compared, and removing a tick's files
    costs the same in any month (the camera policy is reached in month 1).
    """
    if len(frozen) < 2:
        return {}
    stand_in = where / "no-recordings"
    stand_in.mkdir()
    (stand_in / "placeholder").touch()
    figures: dict[int, dict[str, list[float]]] = {
        f.month: {"purge": [], "onsite": [], "report": []} for f in frozen
    }
    engines = {f.month: db.make_engine(f.url) for f in frozen}
    try:
        for turn in range(rounds + 1):  # the first round warms each copy's engine and cache
            for f in frozen:
                keys.use_home(f.home)
                engine, settings = engines[f.month], _settings(f.home, f.url, stand_in, tick)
                now = f.now + (turn + 1) * tick
                started = time.thread_time()
                purge.run(engine, settings, now=now, actor="bench")
                measured = {
                    "purge": time.thread_time() - started,
                    "onsite": _onsite_p99(engine, now),
                    "report": _report(engine, settings, now)[0],
                }
                for name, value in measured.items():
                    if turn:
                        figures[f.month][name].append(value)
    finally:
        keys.use_home(where)
        for engine in engines.values():
            engine.dispose()
    found = {
        f.month: {name: statistics.median(values) for name, values in figures[f.month].items()}
        for f in frozen
    }
    for f in frozen:
        shown = ", ".join(
            f"{name} " + " ".join(f"{v * 1000:.2f}" for v in values)
            for name, values in figures[f.month].items()
        )
        say(f"side by side, month {f.month} ({f.now:%Y-%m-%d}), ms per round: {shown}")
    return found


def _verdict(months, replayed, overdue_seen, failures, args, days, scale) -> int:
    print("# per simulated month")
    for month in months:
        print("#   " + month.line())
    figures = [Figure("year_days", float(days), "days"), Figure("year_scale", scale, "x")]
    if len(months) >= 3:
        second, last = months[1], months[-1] if len(months) < 12 else months[11]
        early, late = (replayed[k] for k in sorted(replayed))
        pairs = [
            ("year_db_size", last.db_mb, second.db_mb, "MB"),
            ("year_purge_mean", late["purge"], early["purge"], "s"),
            ("year_onsite_p99", late["onsite"] * 1000, early["onsite"] * 1000, "ms"),
            ("year_report_time", late["report"], early["report"], "s"),
            ("year_peak_rss", last.rss_mb, second.rss_mb, "MB"),
        ]
        for name, value, base, unit in pairs:
            figures.append(
                Figure(
                    name, value, unit, base, "<= 1.2 x month 2",
                    lambda _v, r: r is not None and r <= 1.2,
                )
            )  # fmt: skip
        figures.append(rss_figure(max(m.rss_mb for m in months)))
    figures.append(
        Figure("year_overdue_max", float(overdue_seen), "records", target="0",
               check=lambda v, _r: v == 0)
    )  # fmt: skip
    figures.append(
        Figure("year_job_failures", float(len(failures)), "runs", target="0",
               check=lambda v, _r: v == 0)
    )  # fmt: skip
    for failure in failures[:5]:
        say(f"job failed: {failure}")
    last_label = months[-1].label if months else "-"
    return finish(
        f"a year compressed: {days} days to {last_label}, scale {scale}, {args.engine}",
        figures,
        quick=args.quick,
    )


if __name__ == "__main__":
    sys.exit(main())
