"""On-site benchmark: who is on site, among 1 000 000 past visits and 5 000 000 door events.

The product (`facility.visitors.onsite.on_site` in its own session, as the CLI and the snapshot job call it)
against the same answer from one hand-written SQL query on a raw DB-API connection, asked in
turn, repeatedly. Targets: product p99 <= 20 ms, and product p99 <= 2 x baseline p99.

`--sites N`: the same totals spread over N sites sharing the store, each with its own 300 people
on site (badges numbered alike at every site); both sides list one site, the last one made.

    python bench/onsite.py [--quick] [--engine sqlite|postgresql] [--sites N] [--explain]
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from itertools import chain

from common import (
    DOOR_EVENT_COLUMNS,
    LOAN_COLUMNS,
    T0,
    VISIT_COLUMNS,
    Figure,
    TimeText,
    arguments,
    finish,
    finish_seeding,
    in_child,
    indexes_dropped,
    load_rows,
    peak_rss_mb,
    profiled,
    raw_connection,
    reset_peak_rss,
    rss_figure,
    say,
    store,
    time_at_most,
    workdir,
)
from sqlalchemy.dialects import postgresql, sqlite

from facility.store import db
from facility.visitors import onsite

BADGES = 2_000
ON_SITE = 300
DAY = 86_400

# The hand-written query: open visits (retain_from is NULL until sign-out, and indexed), their
# open loan, and the badge's last door event at that site since the loan began, from the
# (site_id, badge, at) index: the same shape as the product's since sites.
BASELINE_SQL = """
SELECT v.id, v.name, v.company, v.host, v.signed_in_at, l.badge,
       (SELECT e.door FROM door_events e
         WHERE e.site_id = l.site_id AND e.badge = l.badge AND e.at >= l.issued_at
         ORDER BY e.at DESC LIMIT 1),
       (SELECT e.at FROM door_events e
         WHERE e.site_id = l.site_id AND e.badge = l.badge AND e.at >= l.issued_at
         ORDER BY e.at DESC LIMIT 1)
FROM visits v
LEFT JOIN badge_loans l ON l.visit_id = v.id AND l.returned_at IS NULL
WHERE v.site_id = {mark} AND v.retain_from IS NULL AND v.signed_out_at IS NULL
ORDER BY v.signed_in_at, v.id
"""


def _baseline_sql(kind: str) -> str:
    return BASELINE_SQL.format(mark="?" if kind == "sqlite" else "%s")


def _seed(url: str, kind: str, visits: int, events: int, site_ids: tuple[int, ...]) -> None:
    """Past visits with returned loans, 300 open visits with open loans per site, door events;
    the rows dealt out over the sites in turn."""
    rng = random.Random(7)
    t = TimeText(kind)
    now = T0.timestamp()
    conn = raw_connection(url)
    past_from = now - 500 * DAY
    step = (now - DAY - past_from) / visits
    n = len(site_ids)

    def past() -> Iterator[tuple[int, float, float, int]]:
        """The same visits every call: loans are generated from them too."""
        r = random.Random(1)
        for i in range(visits):
            out = past_from + i * step + r.random() * step
            yield i + 1, out - r.randrange(600, 8 * 3600), out, site_ids[i % n]

    def open_visits() -> Iterator[tuple[int, float, int, int]]:
        """(visit id, sign-in, badge number, site): badges B0000... at every site."""
        r = random.Random(2)
        for k in range(ON_SITE * n):
            yield visits + k + 1, now - r.randrange(60, 10 * 3600), k // n, site_ids[k % n]

    with indexes_dropped(conn, kind, ("visits", "badge_loans", "door_events")):
        load_rows(
            conn,
            kind,
            "visits",
            VISIT_COLUMNS,
            chain(
                (
                    (
                        vid,
                        f"Visitor {vid}",
                        f"visitor {vid}",
                        "Acme",
                        "Host",
                        t(a),
                        t(b),
                        "reception",
                        t(b),
                        site,
                    )
                    for vid, a, b, site in past()
                ),
                (
                    (
                        vid,
                        f"Visitor {vid}",
                        f"visitor {vid}",
                        "Acme",
                        "Host",
                        t(a),
                        None,
                        None,
                        None,
                        site,
                    )
                    for vid, a, _k, site in open_visits()
                ),
            ),
        )
        load_rows(
            conn,
            kind,
            "badge_loans",
            LOAN_COLUMNS,
            chain(
                (
                    (vid, f"B{rng.randrange(BADGES):04d}", vid, t(a), t(b), False, t(b), site)
                    for vid, a, b, site in past()
                ),
                (
                    (vid, f"B{k:04d}", vid, t(a), None, False, None, site)
                    for vid, a, k, site in open_visits()
                ),
            ),
        )
        events_from = now - 25 * DAY
        estep = (now - events_from) / events
        load_rows(
            conn,
            kind,
            "door_events",
            DOOR_EVENT_COLUMNS,
            (
                (
                    i + 1,
                    f"ev-{i:09d}",
                    f"door-{rng.randrange(40)}",
                    f"B{rng.randrange(BADGES):04d}",
                    t(events_from + i * estep),
                    True,
                    "mqtt",
                    t(events_from + i * estep),
                    site_ids[i % n],
                )
                for i in range(events)
            ),
        )
    conn.close()


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latencies(
    url: str, kind: str, site: int, repeats: int, profile: bool
) -> tuple[list[float], int, list[float], int]:
    """Seconds per listing of `site`: the hand-written query on a raw connection and the product
    (each listing in its own session), in turn, so that a burst of load on the shared machine
    falls on both sides alike; and how many people each listed.
    (product seconds, product count, baseline seconds, baseline count)."""
    engine = db.make_engine(url)
    conn = raw_connection(url)
    sql = _baseline_sql(kind)
    product: list[float] = []
    base: list[float] = []
    count = base_count = 0
    with profiled(profile):
        for _ in range(repeats):
            start = time.perf_counter()
            rows = conn.execute(sql, (site,)).fetchall()
            base.append(time.perf_counter() - start)
            base_count = len(rows)
            start = time.perf_counter()
            with db.session_scope(engine) as session:
                listing = onsite.on_site(session, now=T0, site_id=site)
            product.append(time.perf_counter() - start)
            count = len(listing.people)
    conn.close()
    engine.dispose()
    return product, count, base, base_count


def explain(url: str, kind: str, site: int) -> None:
    """Print the plans of the product's on-site query and of the hand-written one for `site`."""
    dialect = sqlite.dialect() if kind == "sqlite" else postgresql.psycopg.dialect()
    product = (
        onsite._query()
        .params(site_id=site)
        .compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    )
    conn = raw_connection(url)
    prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
    plans = ((("product", str(product)), ()), (("baseline", _baseline_sql(kind)), (site,)))
    for (title, sql), params in plans:
        print(f"-- {kind} {title}:\n{sql.strip()}\n-- plan:")
        for row in conn.execute(prefix + sql, params).fetchall():
            print("   ", row[-1] if isinstance(conn, sqlite3.Connection) else row[0])
    conn.close()


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], sites=True)
    parser.add_argument("--explain", action="store_true", help="print both queries' plans")
    parser.add_argument("--repeats", type=int, default=300, help="listings per side")
    args = parser.parse_args()
    visits, events = (10_000, 50_000) if args.quick else (1_000_000, 5_000_000)
    repeats = 30 if args.quick else args.repeats
    with (
        workdir(args.workdir) as where,
        store(args.engine, where, "onsite", args.sites) as seeded,
    ):
        say(
            f"seeding {visits:,} visits and {events:,} door events over {args.sites} site(s) "
            f"on {args.engine}"
        )
        in_child(_seed, seeded.url, args.engine, visits, events, seeded.site_ids)
        finish_seeding(seeded.url)
        site = seeded.site_ids[-1]
        if args.explain:
            explain(seeded.url, args.engine, site)
        say(f"warming up both, then measuring site {site}, both in turn")
        latencies(seeded.url, args.engine, site, 3, False)
        reset_peak_rss()
        product, count, base, base_count = latencies(
            seeded.url, args.engine, site, repeats, args.profile
        )
        peak = peak_rss_mb()
    say(f"product listed {count}, baseline {base_count} (expected {ON_SITE})")
    ms = 1000
    p99, base_p99 = _percentile(product, 99) * ms, _percentile(base, 99) * ms
    figures = [
        Figure("onsite_p99", p99, "ms", base_p99, "<= 20 ms", lambda v, _r: v <= 20),
        Figure("onsite_p99_vs_baseline", p99, "ms", base_p99, "<= 2 x baseline", time_at_most(2)),
        Figure("onsite_p50", _percentile(product, 50) * ms, "ms", _percentile(base, 50) * ms),
        Figure(
            "onsite_count",
            count,
            "people",
            base_count,
            f"= {ON_SITE}",
            lambda v, _r: v == ON_SITE == base_count,
        ),
        rss_figure(peak),
    ]
    title = (
        f"onsite {visits:,} visits, {events:,} events over {args.sites} site(s), "
        f"{ON_SITE} on site at each, {args.engine}"
    )
    return finish(title, figures, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
