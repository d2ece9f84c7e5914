"""Purge benchmark: 1 000 000 records across kinds, half expired, 1 000 active holds keeping ~5 %.

The product (`facility.retention.purge.run`: bounded batches, one transaction each, the hold check inside the
DELETE) against a bare `DELETE FROM <table> WHERE retain_from < cutoff` per table with no holds,
each on its own copy of the same seeded store. Target: product time <= 2 x baseline.

`--scaling`: the product on two copies of the store, once at an instant where 1 % of the records
have expired and once where 50 % have. Target: time(1 %) <= 0.1 x time(50 %), the cost following
the rows to delete rather than the rows stored.

`--explain` prints the query plans of one purge batch's window query and DELETE (door events).

    python bench/purge.py [--quick] [--engine sqlite|postgresql] [--scaling] [--explain]
"""

from __future__ import annotations

import random
import sqlite3
import sys
from datetime import timedelta

from common import (
    DOOR_EVENT_COLUMNS,
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


def _seed(url: str, kind: str, total: int) -> None:
    """Bulk-load the records (run in a child process)."""
    rng = random.Random(8)
    t = TimeText(kind)
    sizes = {k: max(1, int(total * share)) for k, share in SHARES.items()}
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
                )
                for vid, out in visits
            ),
        )
        load_rows(
            conn,
            kind,
            "badge_loans",
            ("id", "badge", "visit_id", "issued_at", "returned_at", "lost", "retain_from"),
            (
                (
                    vid,
                    f"B{rng.randrange(BADGES):05d}",
                    vid,
                    t(out - VISIT_LENGTH),
                    t(out),
                    False,
                    t(out),
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
                )
                for i, at in enumerate(_retain_from("wifi", sizes["wifi"], rng))
            ),
        )
    conn.close()


def _mac(n: int) -> str:
    return "02:00:00:00:" + f"{n >> 8:02x}:{n & 255:02x}"


def _place_holds(url: str, quick: bool) -> None:
    """1 000 active holds (fewer with --quick) through the product's own `holds.place`."""
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
                )
    engine.dispose()


def seeded_store(kind: str, where, total: int, quick: bool):
    """A store context with the records and holds in place."""
    context = store(kind, where, "purge")
    bench_store = context.__enter__()
    say(f"seeding {total:,} records on {kind}")
    in_child(_seed, bench_store.url, kind, total)
    _place_holds(bench_store.url, quick)
    finish_seeding(bench_store.url)
    return context, bench_store


def product(url: str, now) -> tuple[float, purge.PurgeReport]:
    """One product purge run at `now`; (seconds, report)."""
    engine = db.make_engine(url)
    settings = Settings(database_url=url)
    with Timer() as timer:
        report = purge.run(engine, settings, now=now, actor="bench")
    engine.dispose()
    return timer.seconds, report


def baseline(url: str) -> tuple[float, int]:
    """A bare DELETE per table, no holds, at T0; (seconds, rows deleted)."""
    conn = raw_connection(url)
    sqlite = isinstance(conn, sqlite3.Connection)
    if sqlite:
        conn.execute("PRAGMA foreign_keys=ON")  # as the product runs: visits -> badge_loans
    t = TimeText("sqlite" if sqlite else "postgresql")
    deleted = 0
    mark = "?" if sqlite else "%s"
    with Timer() as timer:
        for kind, table in TABLES.items():
            cutoff = t(T0.timestamp() - _policy_seconds(kind))
            cur = conn.execute(f"DELETE FROM {table} WHERE retain_from < {mark}", (cutoff,))
            deleted += cur.rowcount
    conn.close()
    return timer.seconds, deleted


def explain(url: str, kind: str) -> None:
    """Print the plans of a door-event purge batch: the window query and the DELETE."""
    engine = db.make_engine(url)
    table = kinds.get("door_events").table
    cutoff = T0 - timedelta(days=3)
    grace = Settings().holds.release_grace
    size = purge.DEFAULT_BATCH_SIZE[kind]
    with db.session_scope(engine) as session:
        purge._no_jit(session)  # as the product's batches run
        first = purge._window(session, table, cutoff, None, size)[1]
        where, _ = purge._window(session, table, cutoff, first, size)
        forms = holds.forms_in_force(session, now=T0, grace=grace)  # as each batch does
        unheld = holds.unheld("door_events", table, now=T0, grace=grace, dialect=kind, forms=forms)
        order = (table.c.retain_from, table.c.id)
        window = select(*order).where(purge._expired(table, cutoff), purge._after(table, first))
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
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--scaling", action="store_true", help="1 %% vs 50 %% expired")
    parser.add_argument("--explain", action="store_true", help="print the DELETE's query plan")
    args = parser.parse_args()
    total = 10_000 if args.quick else 1_000_000
    figures: list[Figure] = []
    with workdir(args.workdir) as where:
        context, seeded = seeded_store(args.engine, where, total, args.quick)
        try:
            if args.explain:
                explain(seeded.url, args.engine)
            if args.scaling:
                figures += _scaling(seeded, args.engine)
            else:
                figures += _against_baseline(seeded, args.engine, total)
        finally:
            context.__exit__(None, None, None)
    title = f"purge{' --scaling' if args.scaling else ''} {total:,} records, {args.engine}"
    return finish(title, figures, quick=args.quick)


def _against_baseline(seeded: Store, kind: str, total: int) -> list[Figure]:
    url = seeded.clone("base")
    say("baseline: bare DELETE per table")
    base_seconds, base_deleted = baseline(url)
    seeded.drop(url)
    url = seeded.clone("product")
    say("product: facility.retention.purge.run")
    reset_peak_rss()
    seconds, report = product(url, T0)
    peak = peak_rss_mb()
    seeded.drop(url)
    deleted = sum(k.deleted for k in report.kinds.values())
    held = sum(k.held for k in report.kinds.values())
    say(f"baseline deleted {base_deleted:,}; product deleted {deleted:,}, held {held:,}")
    return [
        Figure("purge_time", seconds, "s", base_seconds, "<= 2 x baseline", time_at_most(2.0)),
        Figure("purge_deleted", deleted, "rows", base_deleted),
        Figure("purge_held_pct", 100 * held / max(1, held + deleted), "%", target="~5 %"),
        Figure("purge_rows_per_s", deleted / seconds, "rows/s", base_deleted / base_seconds),
        rss_figure(peak),
    ]


def _scaling(seeded: Store, kind: str) -> list[Figure]:
    times = {}
    peak = 0.0
    for label, now in (("1pct", T0 - SPREAD * 0.98), ("50pct", T0)):
        url = seeded.clone(label)
        say(f"product at {label} expired")
        reset_peak_rss()
        seconds, report = product(url, now)
        peak = max(peak, peak_rss_mb())
        seeded.drop(url)
        deleted = sum(k.deleted for k in report.kinds.values())
        say(f"{label}: {seconds:.2f} s, {deleted:,} deleted")
        times[label] = seconds
    return [
        Figure(
            "purge_1pct_time",
            times["1pct"],
            "s",
            times["50pct"],
            "<= 0.1 x time(50 %)",
            time_at_most(0.1),
        ),
        Figure("purge_50pct_time", times["50pct"], "s"),
        rss_figure(peak),
    ]


if __name__ == "__main__":
    sys.exit(main())
