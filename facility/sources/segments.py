"""What the camera scanner reads and writes in the store: segment rows by path, the directories it
has read, the rows of files that vanished, and its refusals (DESIGN.md: a connector never writes SQL).

Paths are compared in code-point order, the order the scanner walks the disk in. SQLite's default
collation is that order, and so is a PostgreSQL column under a C-like collation; under any other,
the queries name `COLLATE "C"` (an index on the site and that expression is made by migrations
0007 and 0011, so that ranges stay index lookups) and the full listing streams through one
server-side cursor. Everything here is one site's: its rows, its directories, its rejections
(each office's daemon scans its own recordings root).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Engine, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from facility.errors import RejectedInput
from facility.retention import holds
from facility.sources import ingest
from facility.sources.records import SegmentIn
from facility.store import db
from facility.store.models import DEFAULT_SITE, CameraDir, CameraSegment, table_of
from facility.trail import audit

PAGE = 5_000  # rows per keyset page
DIR_BATCH = 2_000  # directory rows per write
_BINARY_COLLATIONS = frozenset({"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"})
_T = table_of(CameraSegment)
_D = table_of(CameraDir)
_COLUMNS = (_T.c.id, _T.c.path, _T.c.camera, _T.c.start)


# What the scanner remembers of a directory: modification time, change time (ns), inode.
Stamp = tuple[int, int, int]


class Row(NamedTuple):
    """A segment row as the scanner compares it with the disk."""

    id: int
    path: str
    camera: str
    start: datetime


def count(engine: Engine, site_id: int = DEFAULT_SITE) -> int:
    """How many segment rows the site has."""
    statement = select(func.count()).select_from(_T).where(_T.c.site_id == site_id)
    with db.read_scope(engine) as session:
        counted: int = session.execute(statement).scalar_one()
        return counted


def count_up_to(engine: Engine, limit: int, site_id: int = DEFAULT_SITE) -> int:
    """How many segment rows the site has, but at most `limit`: it reads only that many index
    entries (of the site's (site_id, path) index).

    For the scanner's questions of the kind "more than N rows?", which a full count would answer
    at the cost of reading every row (an incremental scan then costs in proportion to the store).
    """
    first = select(_T.c.id).where(_T.c.site_id == site_id).limit(limit).subquery()
    with db.read_scope(engine) as session:
        counted: int = session.execute(select(func.count()).select_from(first)).scalar_one()
        return counted


def binary_order(engine: Engine) -> bool:
    """Whether the store orders `camera_segments.path` by code point."""
    if engine.dialect.name != "postgresql":
        return True
    with engine.connect() as conn:
        return _binary_order(conn)


def _binary_order(conn: Connection) -> bool:
    column = conn.execute(
        text(
            "SELECT collation_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'camera_segments' AND column_name = 'path'"
        )
    ).scalar()
    if column:
        return column in _BINARY_COLLATIONS
    collate, provider = conn.execute(
        text(
            "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM pg_database d "
            "WHERE datname = current_database()"
        )
    ).one()
    return provider in (None, "c", "b") and collate in _BINARY_COLLATIONS


def all_rows(
    engine: Engine, *, binary: bool, site_id: int = DEFAULT_SITE
) -> Generator[Row, None, None]:
    """Every segment row of the site, in code-point order of path."""
    return _paged(engine, site_id) if binary else _streamed(engine, site_id)


def rows_between(
    engine: Engine,
    low: str | None,
    high: str | None,
    *,
    binary: bool,
    site_id: int = DEFAULT_SITE,
) -> Generator[Row, None, None]:
    """The rows whose path is in [low, high) (None: unbounded), in code-point order of path."""
    return rows_in(engine, [(low, high)], binary=binary, site_id=site_id)


def rows_in(
    engine: Engine,
    ranges: Sequence[tuple[str | None, str | None]],
    *,
    binary: bool,
    site_id: int = DEFAULT_SITE,
) -> Generator[Row, None, None]:
    """The rows in each of `ranges` ([low, high), in ascending order, disjoint), in path order.

    One read transaction takes the ranges in turn, until one fills a page: the rest follow in
    new transactions, so that a huge range (a day's directory gone) never holds one open long.
    """
    path = _path(binary)
    pending = [(low, high, False) for low, high in ranges]  # False: low itself included
    while pending:
        found: list[Row] = []
        with db.read_scope(engine) as session:
            while pending:
                low, high, after = pending[0]
                query = select(*_COLUMNS).where(_T.c.site_id == site_id)
                query = query.order_by(path).limit(PAGE)
                if low is not None:
                    query = query.where(path > low if after else path >= low)
                if high is not None:
                    query = query.where(path < high)
                page = [Row(*row) for row in session.execute(query)]
                found += page
                if len(page) == PAGE:  # go on after its last row, in a new transaction
                    pending[0] = (page[-1].path, high, True)
                    break
                pending.pop(0)
        yield from found


def _path(binary: bool) -> ColumnElement[Any]:
    path: ColumnElement[Any] = _T.c.path if binary else _T.c.path.collate("C")
    return path


def _paged(engine: Engine, site_id: int) -> Generator[Row, None, None]:
    """Keyset pages on the (site, path) index, each in its own short transaction."""
    last: str | None = None
    while True:
        query = select(*_COLUMNS).where(_T.c.site_id == site_id).order_by(_T.c.path).limit(PAGE)
        if last is not None:
            query = query.where(_T.c.path > last)
        with db.read_scope(engine) as session:
            page = [Row(*row) for row in session.execute(query)]
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1].path


def _streamed(engine: Engine, site_id: int) -> Generator[Row, None, None]:
    """One server-side cursor in code-point order, for a PostgreSQL collation that is not."""
    query = select(*_COLUMNS).where(_T.c.site_id == site_id).order_by(_path(False))
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=PAGE).execute(query)
        for row in result:
            yield Row(*row)


def store(engine: Engine, segments: Sequence[SegmentIn], intake: ingest.Intake) -> int:
    """Index new segments in one transaction; returns how many were new."""
    with db.session_scope(engine) as session:
        return ingest.store_segments(session, segments, intake)


def drop(engine: Engine, ids: Sequence[int], *, now: datetime, grace: timedelta) -> tuple[int, int]:
    """Delete the rows `ids` of vanished files unless an active hold keeps them: (dropped, kept)."""
    held = holds.held("camera", _T, now=now, grace=grace)
    with db.session_scope(engine) as session:
        kept: int = session.execute(
            select(func.count()).select_from(_T).where(_T.c.id.in_(ids), held)
        ).scalar_one()
        dropped: int = session.exec(delete(_T).where(_T.c.id.in_(ids), ~held)).rowcount
    return dropped, kept


def record_rejections(
    engine: Engine,
    rejections: Iterable[RejectedInput],
    *,
    now: datetime,
    site_id: int = DEFAULT_SITE,
) -> None:
    """Keep files that do not fit the layout in the site's `rejections`, like any refused input."""
    with db.session_scope(engine) as session:
        for rejection in rejections:
            ingest.record_rejection(session, rejection, now=now, site_id=site_id)


def record_refusal(
    engine: Engine,
    *,
    now: datetime,
    actor: str,
    code: str,
    known: int,
    found: int,
    vanished: int,
    site_code: str | None = None,
) -> None:
    """Audit a scan that refused to change anything (counts only; the site's code, when named)."""
    with db.session_scope(engine) as session:
        audit.append(
            session,
            now=now,
            actor=actor,
            action="camera.scan.refused",
            **({} if site_code is None else {"site": site_code}),
            reason=code,
            known=known,
            found=found,
            vanished=vanished,
        )


# --- the directories the scanner has read ---------------------------------------------------------


def read_dirs(engine: Engine, site_id: int = DEFAULT_SITE) -> dict[str, Stamp | None]:
    """Every directory remembered for the site's root, and its stamp."""
    statement = select(_D.c.path, _D.c.stamp).where(_D.c.site_id == site_id)
    with db.read_scope(engine) as session:
        found = session.execute(statement).all()
    return {path: _stamp(text) for path, text in found}


def _stamp(text: str | None) -> Stamp | None:
    if text is None:
        return None
    mtime, ctime, inode = (int(part) for part in text.split(":"))
    return mtime, ctime, inode


def _text(stamp: Stamp | None) -> str | None:
    return None if stamp is None else ":".join(str(part) for part in stamp)


def save_dirs(
    engine: Engine,
    stamps: dict[str, Stamp | None],
    removed: Iterable[str],
    *,
    site_id: int = DEFAULT_SITE,
) -> None:
    """Remember the site's new stamps and forget its directories that are gone, in batches."""
    items, gone = list(stamps.items()), list(removed)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(gone), DIR_BATCH):
        batch = gone[start : start + DIR_BATCH]
        with db.session_scope(engine) as session:
            session.execute(delete(_D).where(_D.c.site_id == site_id, _D.c.path.in_(batch)))
    for start in range(0, len(items), DIR_BATCH):
        chunk = [
            {"site_id": site_id, "path": p, "stamp": _text(s)}
            for p, s in items[start : start + DIR_BATCH]
        ]
        statement = insert(_D).values(chunk)
        statement = statement.on_conflict_do_update(
            index_elements=[_D.c.site_id, _D.c.path], set_={"stamp": statement.excluded.stamp}
        )
        with db.session_scope(engine) as session:
            session.execute(statement)
