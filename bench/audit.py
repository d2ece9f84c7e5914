"""Audit verification benchmark: a trail of 35 000 entries, verified whole and from a checkpoint.

The product is `heads.verify_trail` in its own session, as `audit verify` and the report
call it: once with `full` (every entry's MAC recomputed), then from the checkpoint that run left,
with 100 entries added since (about a day of purge runs and other entries). The baseline, in the
same run: a raw DB-API connection reading every row and computing one HMAC-SHA256 over each row's
stored bytes, the least a whole walk can cost; the two take turns, three times, and the fastest of
each counts (other work on the machine slows one run or another). Targets: full <= 3 x baseline;
from a checkpoint <= 0.1 s whatever the trail's length (the fixed cost of a command: an engine, a
few queries, one fsync; the ratio to the whole walk is printed).

    python bench/audit.py [--quick] [--engine sqlite|postgresql] [--entries N]
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import sys
from datetime import timedelta

from common import (
    T0,
    Figure,
    Timer,
    TimeText,
    arguments,
    finish,
    finish_seeding,
    in_child,
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

from facility.store import db
from facility.store.kinds import HOLDABLE
from facility.trail import audit, heads, keys

COLUMNS = ("seq", "at", "actor", "action", "details", "prev_hash", "hash")
SINCE = 100  # entries added after the checkpoint
ROUNDS = 5  # checkpoint runs measured; the median is the figure
WHOLE_ROUNDS = 3  # whole walks and baselines, taken in turns; the fastest of each is the figure


def _details(i: int) -> dict:
    """What a purge run's entry holds: counts per kind, files, policy, notes."""
    return {
        "kinds": {k: {"deleted": i % 97, "held": i % 5, "errors": 0} for k in HOLDABLE},
        "files": {"deleted": i % 13, "vanished": 0, "refused": 0, "failed": 0},
        "policy_seconds": {k: 259200 for k in HOLDABLE},
        "notes": [],
    }


def _seed(url: str, kind: str, entries: int) -> None:
    """Entries 2..`entries`, signed as `audit.append` signs them, loaded in bulk."""
    key = keys.chain_key()
    conn = raw_connection(url)
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 1").fetchone()[0]
    when = TimeText(kind)

    def rows():
        nonlocal prev
        for seq in range(2, entries + 1):
            at = T0 + timedelta(minutes=15 * seq)
            details = _details(seq)
            text = audit.details_text(details)
            mac = audit.entry_mac(key, seq, at, "daemon", "purge", details, prev)
            yield (seq, when(at.timestamp()), "daemon", "purge", text, prev, mac)
            prev = mac

    load_rows(conn, kind, "audit_log", COLUMNS, rows())
    conn.close()


def baseline_walk(url: str) -> float:
    """Seconds to read every entry and compute one HMAC over its stored bytes."""
    key = keys.chain_key()
    conn = raw_connection(url)
    with Timer() as timer:
        cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq")
        for row in cursor:
            message = "|".join(str(value) for value in row[:6]).encode()
            hmac.new(key, message, hashlib.sha256).hexdigest()
    conn.close()
    return timer.seconds


def product_verify(url: str, *, full: bool, profile: bool = False) -> tuple[float, audit.Verdict]:
    """Seconds for one verification through the product, in its own session."""
    engine = db.make_engine(url)
    with profiled(profile), Timer() as timer, db.session_scope(engine) as session:
        verdict = heads.verify_trail(session, now=T0, full=full)
    engine.dispose()
    if not verdict.ok:
        raise SystemExit(f"the trail did not verify: {verdict.problem}")
    return timer.seconds, verdict


def add_entries(url: str, count: int, start: int) -> None:
    """Entries written by the product, as purge runs write them."""
    engine = db.make_engine(url)
    with db.session_scope(engine) as session:
        for i in range(count):
            at = T0 + timedelta(days=3650, minutes=start + i)
            audit.append(session, now=at, actor="daemon", action="purge", **_details(i))
    engine.dispose()


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=35_000, help="entries in the trail")
    args = parser.parse_args()
    entries = 2_000 if args.quick else args.entries
    with workdir(args.workdir) as where, store(args.engine, where, "audit") as seeded:
        say(f"seeding {entries:,} signed entries on {args.engine}")
        in_child(_seed, seeded.url, args.engine, entries)
        finish_seeding(seeded.url)
        say("warming up, then the baseline walk and a whole verification, in turns")
        baseline_walk(seeded.url)
        reset_peak_rss()
        bases, fulls = [], []
        for _ in range(WHOLE_ROUNDS):
            bases.append(baseline_walk(seeded.url))
            seconds, whole = product_verify(seeded.url, full=True, profile=args.profile)
            fulls.append(seconds)
        base, full = min(bases), min(fulls)
        since = []
        for round_ in range(ROUNDS):
            add_entries(seeded.url, SINCE, round_ * SINCE)
            seconds, verdict = product_verify(seeded.url, full=False)
            if verdict.checked != SINCE:
                raise SystemExit(f"walked {verdict.checked} entries, not {SINCE}")
            since.append(seconds)
        peak = peak_rss_mb()
    say(f"whole walk checked {whole.checked:,} entries; from a checkpoint {SINCE} each time")
    figures = [
        Figure("audit_verify_full", full, "s", base, "<= 3 x baseline", time_at_most(3)),
        Figure(
            "audit_verify_checkpoint",
            statistics.median(since),
            "s",
            full,
            "<= 0.1 s",
            lambda v, _r: v <= 0.1,
        ),
        Figure("audit_entries", whole.entries, "entries"),
        rss_figure(peak),
    ]
    return finish(f"audit verify, {args.engine}", figures, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
