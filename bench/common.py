"""What every benchmark shares: arguments, databases, bulk seeding, peak RSS and the result lines.

A benchmark measures the product against a raw-library baseline in the same run and prints one
line per figure (name, value, unit, baseline, ratio, target, PASS/FAIL); it exits 1 when a target
is missed. Seeding is not measured and bypasses the product: rows go in with `executemany`
(SQLite) or `COPY` (PostgreSQL), in a child process so that its memory never counts against the
peak RSS of the work.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` from a clean clone, without installing
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from facility import sites as facility_sites  # noqa: E402
from facility.retention import policies  # noqa: E402
from facility.settings import Retention  # noqa: E402
from facility.store import db  # noqa: E402
from facility.store.models import DEFAULT_SITE, row_id  # noqa: E402
from facility.trail import audit, keys  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "FACILITY_BENCH_PG_URL",
    os.environ.get("FACILITY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)
RSS_TARGET_MB = 250.0
# The instant benchmarks treat as "now": fixed, so runs are comparable.
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SEED_CHUNK = 20_000
MAX_SITES = 999  # site codes are numbered `s001`...


# --- arguments and output ------------------------------------------------------------------------


# The visits columns both the purge and the on-site benches seed, in load_rows order.
VISIT_COLUMNS = (
    "id",
    "name",
    "name_key",
    "company",
    "host",
    "signed_in_at",
    "signed_out_at",
    "closed_by",
    "retain_from",
    "site_id",
)
# Likewise for badge loans and door events.
LOAN_COLUMNS = (
    "id",
    "badge",
    "visit_id",
    "issued_at",
    "returned_at",
    "lost",
    "retain_from",
    "site_id",
)
DOOR_EVENT_COLUMNS = (
    "id",
    "event_id",
    "door",
    "badge",
    "at",
    "granted",
    "source",
    "retain_from",
    "site_id",
)


def arguments(
    description: str, *, engines: bool = True, sites: bool = False
) -> argparse.ArgumentParser:
    """The options every bench takes: --quick, --engine and --workdir (and --sites if asked)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny size, for CI")
    if engines:
        parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    if sites:
        parser.add_argument(
            "--sites", type=_site_count, default=1, help="sites sharing the store (default 1)"
        )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where files go (default: a temporary dir)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the product's work (needs pyinstrument)"
    )
    return parser


def _site_count(value: str) -> int:
    """--sites: a whole number from 1 (argparse turns the error into one line and exit 2)."""
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_SITES:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number of sites from 1 to {MAX_SITES}"
        )
    return count


@contextlib.contextmanager
def profiled(enabled: bool) -> Iterator[None]:
    """Profile the block with pyinstrument and print the call tree on stderr, if enabled."""
    if not enabled:
        yield
        return
    from pyinstrument import Profiler  # a developer tool, not a dependency

    profiler = Profiler(interval=0.001)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False), file=sys.stderr)


@dataclass
class Figure:
    """One measured figure and the target it is held to (check None: printed only)."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = "-"
    check: Callable[[float, float | None], bool] | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        return None if self.check is None else bool(self.check(self.value, self.ratio))

    def line(self) -> str:
        verdict = {None: "INFO", True: "PASS", False: "FAIL"}[self.passed]
        base = "-" if self.baseline is None else _num(self.baseline)
        ratio = "-" if self.ratio is None else f"{self.ratio:.3f}"
        return (
            f"{self.name:<28} {_num(self.value):>12} {self.unit:<8} baseline {base:>12}  "
            f"ratio {ratio:>7}  target {self.target:<22} {verdict}"
        )


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}" if value < 1 else f"{value:.2f}"


def rate_at_least(ratio: float) -> Callable[[float, float | None], bool]:
    """Target: value >= ratio x baseline (rates: higher is better)."""
    return lambda _value, r: r is not None and r >= ratio


def time_at_most(ratio: float) -> Callable[[float, float | None], bool]:
    """Target: value <= ratio x baseline (times: lower is better)."""
    return lambda _value, r: r is not None and r <= ratio


def rss_figure(peak_mb: float, what: str = "peak_rss") -> Figure:
    """The peak RSS figure, held to the 250 MB target."""
    return Figure(
        what,
        peak_mb,
        "MB",
        target=f"<= {RSS_TARGET_MB:.0f} MB",
        check=lambda v, _r: v <= RSS_TARGET_MB,
    )


def finish(title: str, figures: Iterable[Figure], *, quick: bool = False) -> int:
    """Print the figure lines under a title; the exit code: 1 if any target was missed.

    A --quick run only shows that the bench works: its sizes are too small for the targets to
    mean anything, so it prints the verdicts and exits 0 whatever they are.
    """
    figures = list(figures)
    print(f"# {title}  ({datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')})", flush=True)
    for figure in figures:
        print(figure.line(), flush=True)
    failed = [f.name for f in figures if f.passed is False]
    if quick:
        print("# quick run: targets not enforced at this size", flush=True)
        return 0
    print(f"# {'FAILED: ' + ', '.join(failed) if failed else 'all targets met'}", flush=True)
    return 1 if failed else 0


def say(message: str) -> None:
    """A progress line on stderr (the figures go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- peak RSS ------------------------------------------------------------------------------------


def reset_peak_rss() -> None:
    """Start measuring the peak RSS from now on (Linux: clear the high-water mark)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """The peak RSS since `reset_peak_rss` (VmHWM), or of the whole process (ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- databases -----------------------------------------------------------------------------------


@contextlib.contextmanager
def workdir(path: Path | None) -> Iterator[Path]:
    """The bench's working directory: the one given (kept), or a temporary one (removed)."""
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="facility-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _pg_admin():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(name: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@dataclass
class Store:
    """A bench database: its URL, its engine kind, and the databases cloned from it."""

    url: str
    kind: str
    workdir: Path
    _clones: list[str]
    # Its sites' ids: the default site first, then those `store` added (rows are spread over them).
    site_ids: tuple[int, ...] = (DEFAULT_SITE,)

    def clone(self, label: str) -> str:
        """A copy of this database (file copy; CREATE DATABASE ... TEMPLATE); returns its URL."""
        if self.kind == "sqlite":
            source = Path(make_url(self.url).database)
            _checkpoint_sqlite(source)
            target = self.workdir / f"{label}-{uuid.uuid4().hex[:6]}.db"
            shutil.copyfile(source, target)
            self._clones.append(str(target))
            return f"sqlite:///{target}"
        name = f"facility_bench_{label}_{uuid.uuid4().hex[:8]}"
        admin = _pg_admin()
        with admin.connect() as conn:
            template = make_url(self.url).database
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        admin.dispose()
        self._clones.append(name)
        return _pg_url(name)

    def drop(self, url: str) -> None:
        """Remove a clone made by `clone` now rather than at the end."""
        if self.kind == "sqlite":
            path = Path(make_url(url).database)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            self._clones = [c for c in self._clones if c != str(path)]
        else:
            name = make_url(url).database
            _pg_drop(name)
            self._clones = [c for c in self._clones if c != name]


def _checkpoint_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _pg_drop(name: str) -> None:
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextlib.contextmanager
def store(kind: str, where: Path, label: str, sites: int = 1) -> Iterator[Store]:
    """A new database of `kind` at the schema's head with default policies and `sites` sites (the
    default site and the others made by `facility.sites.add`, as `facility site add` does);
    removed afterwards."""
    if kind == "sqlite":
        path = where / f"{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        name = f"facility_bench_{label}_{os.getpid()}"
        _pg_drop(name)
        admin = _pg_admin()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = _pg_url(name)
    # The workdir is the bench's home: audit entries are signed with the key there.
    audit.load_or_create_key(where / audit.KEY_FILE)
    keys.use_home(where)
    engine = db.make_engine(url, create=True)
    db.upgrade(engine)
    with db.session_scope(engine) as session:
        policies.seed(session, Retention(), now=T0 - timedelta(days=400), actor="bench")
        added = [
            facility_sites.add(
                session,
                code=f"s{n:03d}",
                name=f"Office {n}",
                timezone="Europe/Amsterdam",
                country="NL",
                now=T0 - timedelta(days=400),
                actor="bench",
            )
            for n in range(2, sites + 1)
        ]
        site_ids = (DEFAULT_SITE, *(row_id(site) for site in added))
    engine.dispose()
    result = Store(url, kind, where, [], site_ids)
    try:
        yield result
    finally:
        for clone in list(result._clones):
            if kind == "sqlite":
                result.drop(f"sqlite:///{clone}")
            else:
                _pg_drop(clone)
        if kind == "postgresql":
            _pg_drop(make_url(url).database)


def raw_connection(url: str):
    """A DB-API connection without SQLAlchemy: sqlite3 (autocommit) or psycopg (autocommit)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    import psycopg

    return psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database,
        password=parsed.password, autocommit=True,
    )  # fmt: skip


# --- seeding -------------------------------------------------------------------------------------


def sqlite_time(value: datetime) -> str:
    """How the store writes an instant on SQLite: naive UTC text that sorts."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class TimeText:
    """Fast text for instants given as epoch seconds, in each engine's stored form."""

    def __init__(self, kind: str) -> None:
        self._sqlite = kind == "sqlite"
        self._days: dict[int, str] = {}

    def __call__(self, epoch: float) -> str:
        seconds = int(epoch)
        micros = round((epoch - seconds) * 1_000_000)
        day, rest = divmod(seconds, 86_400)
        date = self._days.get(day)
        if date is None:
            date = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
            self._days[day] = date
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        if self._sqlite:
            return f"{date} {h:02d}:{m:02d}:{s:02d}.{micros:06d}"
        return f"{date} {h:02d}:{m:02d}:{s:02d}.{micros:06d}+00"


def load_rows(conn, kind: str, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
    """Bulk-insert rows (executemany in a transaction on SQLite, COPY on PostgreSQL)."""
    count = 0
    if kind == "sqlite":
        marks = ", ".join("?" * len(columns))
        cols = ", ".join(f'"{c}"' for c in columns)
        statement = f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'
        chunk: list[tuple] = []
        conn.execute("BEGIN")
        for row in rows:
            chunk.append(row)
            if len(chunk) >= SEED_CHUNK:
                conn.executemany(statement, chunk)
                count += len(chunk)
                chunk.clear()
        if chunk:
            conn.executemany(statement, chunk)
            count += len(chunk)
        conn.execute("COMMIT")
        return count
    cols = ", ".join(f'"{c}"' for c in columns)
    with conn.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


@contextlib.contextmanager
def indexes_dropped(conn, kind: str, tables: Iterable[str]) -> Iterator[None]:
    """Drop the tables' plain secondary indexes while seeding and rebuild them afterwards."""
    tables = list(tables)
    if kind == "sqlite":
        marks = ", ".join("?" * len(tables))
        found = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            tables,
        ).fetchall()
    else:
        found = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conname = i.indexname)",
            (tables,),
        ).fetchall()
    for name, _ in found:
        conn.execute(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        if kind == "sqlite":
            conn.execute("PRAGMA cache_size = -200000")
        for _, sql in found:
            conn.execute(sql)


def finish_seeding(url: str) -> None:
    """After bulk loading: checkpoint (SQLite) or VACUUM ANALYZE (PostgreSQL, as autovacuum would)."""
    conn = raw_connection(url)
    try:
        if isinstance(conn, sqlite3.Connection):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            conn.execute("VACUUM ANALYZE")
    finally:
        conn.close()


def in_child(target: Callable[..., None], *args) -> None:
    """Run target(*args) in a forked child process and wait; raise if it failed."""
    context = multiprocessing.get_context("fork")
    process = context.Process(target=target, args=args)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"seeding failed in a child process (exit {process.exitcode})")


class Timer:
    """Wall-clock seconds of a `with` block."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_exc) -> None:
        self.seconds = time.perf_counter() - self.start
