"""Purge benchmark: 1 000 000 records across kinds, half expired, 1 000 active holds keeping ~5 %.

The product (`facility.retention.purge.run`: bounded batches, one transaction each, the hold check inside the
DELETE) against a bare `DELETE FROM <table> WHERE retain_from < cutoff` per table with no holds,
each on its own copy of the same seeded store. Target: product time <= 2 x baseline.

`--scaling`: the product on two copies of the store, once at an instant where 1 % of the records
have expired and once where 50 % have. Target: time(1 %) <= 0.1 x time(50 %), the cost following
the rows to delete rather than the rows stored.

`--sites N`: the records and holds dealt out over N sites sharing the store (`purge.run` purges
each site in its own pass). With N > 1 and no `--scaling`, also: a bare DELETE per table for each
site in turn, and, in rounds (medians), the time per expired row against the same records seeded
on one site (target <= 1.5 x) and with twice the expired rows (target 1.33-3 x the time).

`--explain` prints the query plans of one purge batch's window query and DELETE (door events).

    python bench/purge.py [--quick] [--engine sqlite|postgresql] [--sites N] [--scaling] [--explain]
"""

from __future__ import annotations

import random
import sqlite3
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from common import (
    DOOR_EVENT_COLUMNS,
    LOAN_COLUMNS,
    T0,
    VISIT_COLUMNS,
    Figure,
    Store,
    Timer,
    TimeText,
    arguments,
    finish,
    finish_seeding,
    in_child,
    indexes_dropped,
    load_rows,
    peak_rss_mb,
    raw_connection,
    reset_peak_rss,
    rss_figure,
    say,
    store,
    time_at_most,
    workdir,
)
from sqlalchemy import delete, select

from facility.retention import holds, purge
from facility.settings import Retention, Settings
from facility.store import db, kinds
from facility.store.models import DEFAULT_SITE

SPREAD = timedelta(days=3)  # retain_from runs from policy - SPREAD to policy + SPREAD before T0
SHARES = {"door_events": 0.90, "visits": 0.04, "badges": 0.04, "wifi": 0.02}
# In the order purge deletes them, so the baseline does the same foreign-key work.
TABLES = {k.name: k.table.name for k in kinds.DELETE_ORDER if k.name in SHARES}
BADGES, DOORS, NAMES, MACS = 20_000, 50, 1_000, 1_000
HOLDS = {"badges": 900, "door_events": 50, "wifi": 25, "visits": 25}  # 1 000 holds
VISIT_LENGTH = 4 * 3600  # seconds a visit (and its badge loan) lasts


def _policy_seconds(kind: str) -> int:
    return int(getattr(Retention(), kind).total_seconds())


def _retain_from(kind: str, n: int, rng: random.Random):
    """n instants in ascending order, evenly spread so that half have expired at T0."""
    start = T0.timestamp() - _policy_seconds(kind) - SPREAD.total_seconds()
    step = 2 * SPREAD.total_seconds() / n
    for i in range(n):
        yield start + step * (i + rng.random() * 0.5)


def _seed(url: str, kind: str, total: int, site_ids: tuple[int, ...]) -> None:
    """Bulk-load the records, dealt out over the sites in turn (run in a child process)."""
    rng = random.Random(8)
    t = TimeText(kind)
    sizes = {k: max(1, int(total * share)) for k, share in SHARES.items()}
    n = len(site_ids)
    conn = raw_connection(url)
    with indexes_dropped(conn, kind, TABLES.values()):
        visits = [(i + 1, at) for i, at in enumerate(_retain_from("visits", sizes["visits"], rng))]
        load_rows(
            conn,
            kind,
            "visits",
            VISIT_COLUMNS,
            (
                (
                    vid,
                    f"Visitor {vid % NAMES}",
                    f"visitor {vid % NAMES}",
                    "Acme",
                    "Host",
                    t(out - VISIT_LENGTH),
                    t(out),
                    "reception",
                    t(out),
                    site_ids[vid % n],
                )
                for vid, out in visits
            ),
        )
        load_rows(
            conn,
            kind,
            "badge_loans",
            LOAN_COLUMNS,
            (
                (
                    vid,
                    f"B{rng.randrange(BADGES):05d}",
                    vid,
                    t(out - VISIT_LENGTH),
                    t(out),
                    False,
                    t(out),
                    site_ids[vid % n],
                )
                for vid, out in visits
            ),
        )
        load_rows(
            conn,
            kind,
            "door_events",
            DOOR_EVENT_COLUMNS,
            (
                (
                    i + 1,
                    f"ev-{i:09d}",
                    f"door-{rng.randrange(DOORS)}",
                    f"B{rng.randrange(BADGES):05d}",
                    t(at),
                    True,
                    "mqtt",
                    t(at),
                    site_ids[i % n],
                )
                for i, at in enumerate(_retain_from("door_events", sizes["door_events"], rng))
            ),
        )
        load_rows(
            conn,
            kind,
            "wifi_leases",
            (
                "id",
                "source",
                "mac",
                "ip",
                "hostname",
                "client_id",
                "starts",
                "ends",
                "last_seen",
                "closed_at",
                "retain_from",
                "site_id",
            ),
            (
                (
                    i + 1,
                    "bench",
                    _mac(rng.randrange(MACS)),
                    f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
                    None,
                    None,
                    t(at - 86_400),
                    t(at),
                    t(at),
                    None,
                    t(at),
                    site_ids[i % n],
                )
                for i, at in enumerate(_retain_from("wifi", sizes["wifi"], rng))
            ),
        )
    conn.close()


def _mac(n: int) -> str:
    return "02:00:00:00:" + f"{n >> 8:02x}:{n & 255:02x}"


def _place_holds(url: str, quick: bool, site_ids: tuple[int, ...]) -> None:
    """1 000 active holds (fewer with --quick) through the product's own `holds.place`, each at
    one of the sites in turn (a hold keeps its own site's records)."""
    rng = random.Random(9)
    scale = 10 if quick else 1
    engine = db.make_engine(url)
    wide = (T0 - timedelta(days=400), T0)
    with db.session_scope(engine) as session:
        n = 0
        for kind, count in HOLDS.items():
            for k in range(max(1, count // scale)):
                n += 1
                window = wide
                if kind == "badges":
                    scope = holds.Scope("badges", f"B{k:05d}")
                elif kind == "wifi":
                    scope = holds.Scope("wifi", _mac(k))
                elif kind == "visits":
                    scope = holds.Scope("visits", f"visitor {k}")
                else:  # one hour at one door, somewhere in the expired half
                    at = T0 - timedelta(days=3) - SPREAD * rng.random()
                    window = (at, at + timedelta(hours=1))
                    scope = holds.Scope("door_events", f"door-{k % DOORS}")
                holds.place(
                    session,
                    now=T0 - timedelta(days=300),
                    actor="bench",
                    case=f"INC-{n:05d}",
                    reason="benchmark",
                    window_from=window[0],
                    window_to=window[1],
                    scopes=[scope],
                    site_id=site_ids[n % len(site_ids)],
                )
    engine.dispose()


def seeded_store(
    kind: str, where: Path, total: int, quick: bool, sites: int, label: str = "purge"
) -> tuple[AbstractContextManager[Store], Store]:
    """A store context with the records and holds in place, spread over `sites` sites."""
    context = store(kind, where, label, sites)
    bench_store = context.__enter__()
    say(f"seeding {total:,} records over {sites} site(s) on {kind}")
    in_child(_seed, bench_store.url, kind, total, bench_store.site_ids)
    _place_holds(bench_store.url, quick, bench_store.site_ids)
    finish_seeding(bench_store.url)
    return context, bench_store


def product(url: str, now: datetime) -> tuple[float, purge.PurgeReport]:
    """One product purge run at `now`; (seconds, report)."""
    engine = db.make_engine(url)
    settings = Settings(database_url=url)
    with Timer() as timer:
        report = purge.run(engine, settings, now=now, actor="bench")
    engine.dispose()
    return timer.seconds, report


def baseline(url: str, site_ids: tuple[int, ...] = ()) -> tuple[float, int]:
    """A bare DELETE per table, no holds, at T0; with `site_ids`, one per table for each site in
    turn, as the product purges them; (seconds, rows deleted)."""
    conn = raw_connection(url)
    sqlite = isinstance(conn, sqlite3.Connection)
    if sqlite:
        conn.execute("PRAGMA foreign_keys=ON")  # as the product runs: visits -> badge_loans
    t = TimeText("sqlite" if sqlite else "postgresql")
    deleted = 0
    mark = "?" if sqlite else "%s"
    per_site = f"site_id = {mark} AND " if site_ids else ""
    with Timer() as timer:
        for site in site_ids or (None,):
            for kind, table in TABLES.items():
                cutoff = t(T0.timestamp() - _policy_seconds(kind))
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE {per_site}retain_from < {mark}",
                    (site, cutoff) if site_ids else (cutoff,),
                )
                deleted += cur.rowcount
    conn.close()
    return timer.seconds, deleted


def explain(url: str, kind: str) -> None:
    """Print the plans of a door-event purge batch: the window query and the DELETE."""
    engine = db.make_engine(url)
    door = kinds.get("door_events")
    table = door.table
    cutoff = T0 - timedelta(days=3)
    grace = Settings().holds.release_grace
    size = purge.DEFAULT_BATCH_SIZE[kind]
    site = purge._Site(DEFAULT_SITE, None, camera=False)
    work = purge._Pass(engine, T0, grace, size, None, site)
    with db.session_scope(engine) as session:
        purge._no_jit(session)  # as the product's batches run
        first = purge._window(session, door, cutoff, None, work)[1]
        where, _ = purge._window(session, door, cutoff, first, work)
        forms = holds.forms_in_force(session, now=T0, grace=grace)  # as each batch does
        unheld = holds.unheld("door_events", table, now=T0, grace=grace, dialect=kind, forms=forms)
        order = (table.c.retain_from, table.c.id)
        expired = purge._expired(door, cutoff, DEFAULT_SITE)
        window = select(*order).where(expired, purge._after(door, first))
        window = window.order_by(*order).offset(size - 1).limit(1)
        for title, statement in (
            ("window", window),
            ("delete", delete(table).where(where, unheld)),
        ):
            sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
            prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
            print(f"-- {kind} {title}:\n{sql}\n-- plan:")
            for row in session.connection().exec_driver_sql(prefix + sql):
                print("   ", row[-1] if kind == "sqlite" else row[0])
        session.rollback()
    engine.dispose()


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], sites=True)
    parser.add_argument("--scaling", action="store_true", help="1 %% vs 50 %% expired")
    parser.add_argument("--explain", action="store_true", help="print the DELETE's query plan")
    args = parser.parse_args()
    total = 10_000 if args.quick else 1_000_000
    figures: list[Figure] = []
    with workdir(args.workdir) as where:
        context, seeded = seeded_store(args.engine, where, total, args.quick, args.sites)
        try:
            if args.explain:
                explain(seeded.url, args.engine)
            if args.scaling:
                figures += _scaling(seeded)
            else:
                figures += _against_baseline(seeded, args.engine, total)
            if args.sites > 1 and not args.scaling:
                figures += _across_sites(seeded, args.engine, where, total, args.quick)
        finally:
            context.__exit__(None, None, None)
    title = (
        f"purge{' --scaling' if args.scaling else ''} {total:,} records over {args.sites} "
        f"site(s), {args.engine}"
    )
    return finish(title, figures, quick=args.quick)


@dataclass(frozen=True)
class Run:
    """One product purge on a copy of a seeded store."""

    seconds: float
    deleted: int
    held: int
    peak_mb: float

    @property
    def per_row_us(self) -> float:
        """Microseconds per expired row (deleted or held: the hold check runs on both)."""
        return 1e6 * self.seconds / max(1, self.deleted + self.held)


def _on_copy(seeded: Store, label: str, now: datetime) -> Run:
    """The product's purge at `now` on a fresh copy of `seeded`, its peak RSS its own."""
    url = seeded.clone(label)
    say(f"product: facility.retention.purge.run ({label}, {len(seeded.site_ids)} site(s))")
    reset_peak_rss()
    seconds, report = product(url, now)
    peak = peak_rss_mb()
    seeded.drop(url)
    run = Run(
        seconds,
        sum(k.deleted for k in report.kinds.values()),
        sum(k.held for k in report.kinds.values()),
        peak,
    )
    say(f"{label}: {seconds:.2f} s, {run.deleted:,} deleted, {run.held:,} held")
    return run


def _against_baseline(seeded: Store, kind: str, total: int) -> list[Figure]:
    url = seeded.clone("base")
    say("baseline: bare DELETE per table")
    base_seconds, base_deleted = baseline(url)
    seeded.drop(url)
    run = _on_copy(seeded, "product", T0)
    say(f"baseline deleted {base_deleted:,}")
    return [
        Figure("purge_time", run.seconds, "s", base_seconds, "<= 2 x baseline", time_at_most(2.0)),
        Figure("purge_deleted", run.deleted, "rows", base_deleted),
        Figure(
            "purge_held_pct", 100 * run.held / max(1, run.held + run.deleted), "%", target="~5 %"
        ),
        Figure(
            "purge_rows_per_s", run.deleted / run.seconds, "rows/s", base_deleted / base_seconds
        ),
        rss_figure(run.peak_mb),
    ]


# Per expired row, a purge over several sites costs what one over a single site does, and twice
# the expired rows cost about twice the time: flat within this factor either way.
PER_ROW_FLAT = 1.5
ROUNDS = 3


def _median(runs: list[Run]) -> Run:
    """The run of median time (of an odd number; the slower middle one of an even number)."""
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def _across_sites(many: Store, kind: str, where: Path, total: int, quick: bool) -> list[Figure]:
    """The time per expired row with the same records on one site and on `many`'s sites, and on
    `many` with a quarter and a half of the records expired; the runs in turn, `ROUNDS` times
    (medians: single runs moved by a third under load). Runs with nothing expired show what a
    run costs before any row (each site's pass has its own statements)."""
    context, one = seeded_store(kind, where, total, quick, 1, label="purge-one-site")
    nothing = T0 - SPREAD * 1.01  # before the first record expires: each pass's fixed cost
    plan = (
        ("one-site-0pct", one, nothing),
        ("sites-0pct", many, nothing),
        ("one-site-50pct", one, T0),
        ("sites-25pct", many, T0 - SPREAD / 2),
        ("sites-50pct", many, T0),
    )
    runs: dict[str, list[Run]] = {label: [] for label, _, _ in plan}
    per_site: list[float] = []
    try:
        for round_ in range(1 if quick else ROUNDS):
            url = many.clone("base-per-site")
            say(f"round {round_ + 1}: baseline, a bare DELETE per table for each site in turn")
            per_site.append(baseline(url, many.site_ids)[0])
            many.drop(url)
            for label, seeded, now in plan:
                runs[label].append(_on_copy(seeded, label, now))
    finally:
        context.__exit__(None, None, None)
    none_one, none, half_one, quarter, half = (_median(runs[label]) for label, _, _ in plan)
    per_site_seconds = sorted(per_site)[len(per_site) // 2]
    n = len(many.site_ids)
    return [
        Figure(
            "purge_time_vs_per_site",
            half.seconds,
            "s",
            per_site_seconds,
            "<= 2 x baseline",
            time_at_most(2.0),
        ),
        Figure("purge_row_1_site", half_one.per_row_us, "us/row", target="50 % expired"),
        Figure(
            f"purge_row_{n}_sites",
            half.per_row_us,
            "us/row",
            half_one.per_row_us,
            f"<= {PER_ROW_FLAT} x 1 site",
            time_at_most(PER_ROW_FLAT),
        ),
        Figure(
            f"purge_{n}_sites_2x_rows",
            half.seconds,
            "s",
            quarter.seconds,
            f"{2 / PER_ROW_FLAT:.2f}-{2 * PER_ROW_FLAT:.0f} x (25 % expired)",
            lambda _v, r: r is not None and 2 / PER_ROW_FLAT <= r <= 2 * PER_ROW_FLAT,
        ),
        Figure(f"purge_{n}_sites_none_expired", none.seconds, "s", none_one.seconds, "1 site"),
        Figure(
            f"purge_{n}_sites_expired",
            half.deleted + half.held,
            "rows",
            quarter.deleted + quarter.held,
            "2 x (25 % expired)",
        ),
        rss_figure(
            max(r.peak_mb for r in (none_one, none, half_one, quarter, half)),
            "peak_rss_across_sites",
        ),
    ]


def _scaling(seeded: Store) -> list[Figure]:
    runs = {
        label: _on_copy(seeded, label, now)
        for label, now in (("1pct", T0 - SPREAD * 0.98), ("50pct", T0))
    }
    return [
        Figure(
            "purge_1pct_time",
            runs["1pct"].seconds,
            "s",
            runs["50pct"].seconds,
            "<= 0.1 x time(50 %)",
            time_at_most(0.1),
        ),
        Figure("purge_50pct_time", runs["50pct"].seconds, "s"),
        rss_figure(max(run.peak_mb for run in runs.values())),
    ]


if __name__ == "__main__":
    sys.exit(main())
