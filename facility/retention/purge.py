"""The purge run: delete every expired, unheld record of every kind, in bounded set-based batches.

A record expires at `retain_from + policy(kind)` under the policy in force at the run (the
`policies` table), so it goes when `retain_from <= now - policy`. A shortened policy is in force
only once its delay has passed (`policies.in_force`): until then the run keeps the longer one. Whether a hold keeps it is decided
inside the DELETE (`holds.unheld`: NOT EXISTS per way a hold can keep it), never row by row in
Python.

Batches walk the `retain_from` index with a keyset cursor on (retain_from, id): each batch covers at
most `purge.batch_size` expired rows after the cursor, held or not, and is one transaction. Held
rows are thus looked at once per run, not once per batch, and a long hold cannot make a batch
unbounded. Each batch first looks up which forms of scope the active holds have and checks only
those (`holds.forms_in_force`): with no holds a batch is a bare DELETE. On PostgreSQL the batch
locks `holds` and `hold_scopes` against writers (SHARE mode) until it commits, so a hold placed
meanwhile can neither slip between that look-up and the DELETE nor lose a file the batch already
chose; on SQLite the batch's write transaction (BEGIN IMMEDIATE) does the same.

Camera segments: a batch selects its expired unheld (id, path) rows, removes each file (one
`camera_files.Remover` per batch), removes the directories that left empty (never the root), and
deletes the rows whose file is deleted or already gone, in the same transaction. File first, then row: a crash in between leaves rows whose files are gone,
which the next run deletes as vanished. Refused paths and failed unlinks keep their rows and are
counted; the next run tries again. Without a recordings root, or with one that looks unmounted, no
camera row is touched.

Several purges at once: on PostgreSQL a run takes a session advisory lock (`facility.store.locks`,
`pg_try_advisory_lock`) and a second run skips (reported, not an error) rather than waiting: a
daemon stuck behind a long first purge could not shut down promptly, and the next interval catches
up anyway. On SQLite each batch's BEGIN IMMEDIATE serialises the work; two runs interleave batch
by batch and every row is counted by the run whose DELETE removed it.

Every kind of the registry (`facility.store.kinds`) goes this way, in its `DELETE_ORDER`, by its
own clock column (a rejected input's is the time it was refused); a kind no hold can keep skips
the hold check. Released holds whose grace has passed get their personal selectors pseudonymised
(`pseudonyms`). On SQLite the run ends by checkpointing and truncating the WAL (`db.scrub`): with
`secure_delete` on, nothing it deleted can be read back from the files.

Sites: a run purges each site in turn (every site, or those asked for), under that site's
effective policy (its own row, else the organisation's, never above its country's legal ceiling:
`policies.for_site`; every site's is read once, at the start of the run, as in force at its `now`),
with that site's open-record limits, its own advisory lock (so purges of different sites run at
once and two of one site never) and its own audit entry. A pass first asks, in one statement,
which kinds have a record at its site past the cutoff (`_due`); the others cost nothing more,
so a run's cost follows the sites that have something to purge. A hold keeps a
record of its own site, or of every site when it is the organisation's. Camera files are removed
only at the site whose recordings root this configuration names (`camera_site`): another site's
segment paths are relative to its own daemon's root.

Every run writes one audit entry (action `purge`) with counts per kind, and once it has committed
anchors its head in the home's head file (`trail.heads`); a dry run and a skipped run write none.
A run killed midway writes none either: the batches it committed are counted by
nobody, but what they deleted was expired and unheld, and the next run's entry covers the rest.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Engine,
    Integer,
    Row,
    Select,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from facility import sites
from facility.accounts import user_sessions
from facility.errors import FacilityError
from facility.privacy import restriction
from facility.retention import (
    camera_files,
    evidence,
    handover,
    holds,
    limits,
    policies,
    pseudonyms,
)
from facility.retention.camera_files import Outcome
from facility.settings import Settings
from facility.store import db, locks
from facility.store import kinds as registry
from facility.store.kinds import Kind
from facility.store.models import DEFAULT_SITE, row_id
from facility.timefmt import utc_fields, utc_text
from facility.timeutil import format_duration
from facility.trail import audit, heads, keys
from facility.visitors import muster

log = logging.getLogger(__name__)

# Rows per batch unless `purge.batch_size` says otherwise. A batch is one transaction, sized by how
# long it may hold its locks: on SQLite the database's write lock, which stops ingestion; on
# PostgreSQL only new holds wait (SHARE lock) and rows go faster, so a larger batch holds them no
# longer and saves per-batch look-ups. The sizes and their timings: bench/README.md.
DEFAULT_BATCH_SIZE = {"sqlite": 50_000, "postgresql": 200_000}
# The advisory lock (facility.store.locks) that lets one purge run at a time on PostgreSQL.
LOCK_NAME = "purge"
# SQLite page cache (KiB, as PRAGMA cache_size takes it negated) while a batch runs. A batch dirties
# pages all over the secondary indexes (badge, door, event id); with SQLite's default cache a
# large batch spills dirty pages to the WAL mid-transaction and reads them back, which slows it
# (bench/README.md). The connection's own size is restored after the batch, so the memory is held
# only while purging.
_SQLITE_BATCH_CACHE_KIB = 64 * 1024


@dataclass
class KindResult:
    """What a run did with one kind's expired records."""

    deleted: int = 0  # in a dry run: would be deleted
    held: int = 0  # expired but kept by an active hold
    errors: int = 0  # camera: rows kept because their file was refused or could not be removed
    kept_by: dict[str, int] | None = None  # dry run only: expired records kept, per case


@dataclass
class FileResult:
    """What happened to camera segment files."""

    deleted: int = 0
    vanished: int = 0
    refused: int = 0
    failed: int = 0  # unlink errors; counted in kinds.camera.errors too
    directories_removed: int = 0  # directories the purge emptied (never the root)


@dataclass
class PurgeReport:
    """The outcome of one run, in the stable shape of `purge --format json`."""

    at: datetime
    dry_run: bool
    kinds: dict[str, KindResult]
    files: FileResult
    audit_head: str
    notes: list[str] = field(default_factory=list)
    skipped: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    pseudonymised: int = 0  # personal hold selectors replaced by their keyed hash
    evidence: dict[str, Any] = field(default_factory=dict)  # evidence copies no hold keeps, removed
    exports: dict[str, Any] = field(
        default_factory=dict
    )  # case exports handed over or past their hold
    sites: dict[str, PurgeReport] = field(default_factory=dict)  # each site's, when several

    def as_json(self) -> dict[str, Any]:
        """DESIGN.md's shape, plus `notes`, `skipped`, `limits` and (dry run) `kept_by`."""
        kinds = {}
        for kind, result in self.kinds.items():
            entry: dict[str, Any] = {
                "deleted": result.deleted,
                "held": result.held,
                "errors": result.errors,
            }
            if result.kept_by is not None:
                entry["kept_by"] = dict(result.kept_by)
            kinds[kind] = entry
        # DESIGN.md's three file counts; the audit entry has the others.
        files = {k: getattr(self.files, k) for k in ("deleted", "vanished", "refused")}
        shown = {
            "at": utc_text(self.at),
            "dry_run": self.dry_run,
            "kinds": kinds,
            "files": files,
            "audit_head": self.audit_head,
            "notes": list(self.notes),
            "skipped": self.skipped,
            "limits": dict(self.limits),
            "pseudonymised_hold_scopes": self.pseudonymised,
            "evidence": dict(self.evidence),
            "exports": dict(self.exports),
        }
        if self.sites:  # several sites: the totals above, and each site's run
            shown["sites"] = {code: report.as_json() for code, report in self.sites.items()}
        return shown


def run(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    actor: str,
    dry_run: bool = False,
    stop: threading.Event | None = None,
    only: Collection[int] | None = None,
    camera_site: int | None = DEFAULT_SITE,
) -> PurgeReport:
    """One purge run at `now` of each site in turn (those in `only`, else every site); a dry run
    changes nothing and says what a run would do. With several sites the report is their totals,
    and each site's in `sites`.

    Setting `stop` (the daemon's shutdown event) ends the run after the current batch; what was
    done is still reported and audited, and the next run carries on. `camera_site` is the site
    whose recordings `settings.camera.root` holds (None: no site's files are removed).
    """
    with db.read_scope(engine) as session:
        listed = sites.listing(session)
        every = [(row_id(s), s.code) for s in listed]
        # Read once for every pass: the policies, site policies and ceilings in force at `now`.
        at_sites = policies.for_sites(session, listed, now=now)
        organisation = policies.in_force(session, now=now)
    chosen = [(site_id, code) for site_id, code in every if only is None or site_id in only]
    several = len(every) > 1
    done: dict[str, PurgeReport] = {}
    carry = _Carry()
    for index, (site_id, code) in enumerate(chosen):
        camera = site_id == camera_site
        site = _Site(site_id, code if several else None, camera=camera, organisation=index == 0)
        policy = _policy(at_sites[site_id], organisation, site)
        if dry_run:
            done[code] = _dry_run(engine, settings, policy, now=now, site=site)
            continue
        with locks.exclusive(engine, _lock_name(site_id)) as mine:
            if not mine:
                done[code] = _skipped(engine, now)
                continue
            size = settings.purge.batch_size or DEFAULT_BATCH_SIZE.get(engine.dialect.name, 50_000)
            work = _Pass(engine, now, settings.holds.release_grace, size, stop, site)
            done[code] = _run(work, settings, policy, actor=actor, carry=carry)
        if stop is not None and stop.is_set():
            break
    return _combined(done, now=now, dry_run=dry_run) if several else done[chosen[0][1]]


def _policy(
    at_site: dict[str, timedelta], organisation: dict[str, timedelta], site: _Site
) -> dict[str, timedelta]:
    """What the pass keeps each kind for: the site's policy (`at_site`, `policies.for_site`); a
    kind that belongs to no site under the `organisation`'s, in the one pass that purges those
    (left out of the others)."""
    policy = dict(at_site)
    for kind in registry.ALL:
        if not kind.per_site:
            policy.pop(kind.name, None)
            if site.organisation and kind.name in organisation:
                policy[kind.name] = organisation[kind.name]
    return policy


def _lock_name(site_id: int) -> str:
    """The advisory lock of one site's purges. The default site keeps the name purges took before
    sites existed, so an upgraded daemon and one not yet restarted never purge it at once."""
    return LOCK_NAME if site_id == DEFAULT_SITE else f"{LOCK_NAME}:{site_id}"


@dataclass(frozen=True)
class _Site:
    """The site a pass purges: its id, its code when several sites exist (notes and the audit
    entry name it then), whether its camera files are under this configuration's root, and
    whether it purges the organisation's kinds too (one pass of a run does)."""

    id: int
    code: str | None
    camera: bool
    organisation: bool = True  # also purges the kinds that belong to no site (the requests)


def _combined(done: dict[str, PurgeReport], *, now: datetime, dry_run: bool) -> PurgeReport:
    """The organisation's report: each site's counts added up, their notes named by site."""
    total = _empty_report(now, dry_run=dry_run)
    total.sites = done
    for code, report in done.items():
        for name, result in report.kinds.items():
            summed = total.kinds[name]
            summed.deleted += result.deleted
            summed.held += result.held
            summed.errors += result.errors
            if result.kept_by is not None:
                kept = summed.kept_by if summed.kept_by is not None else {}
                for case, count in result.kept_by.items():
                    kept[case] = kept.get(case, 0) + count
                summed.kept_by = kept
        for counter in fields(FileResult):
            added = getattr(total.files, counter.name) + getattr(report.files, counter.name)
            setattr(total.files, counter.name, added)
        for name, count in report.limits.items():
            total.limits[name] = total.limits.get(name, 0) + count
        total.pseudonymised += report.pseudonymised
        total.evidence = report.evidence or total.evidence  # one pass removes case files
        total.exports = report.exports or total.exports
        total.notes.extend(f"{code}: {note}" for note in report.notes)
        total.audit_head = report.audit_head or total.audit_head
    total.skipped = bool(done) and all(report.skipped for report in done.values())
    return total


@dataclass(frozen=True)
class _Pass:
    """What every batch of one run needs."""

    engine: Engine
    now: datetime
    grace: timedelta
    size: int
    stop: threading.Event | None
    site: _Site

    def unheld(self, session: Session, kind: str, table: Table) -> ColumnElement[bool]:
        """The batch's hold check: holds frozen until it commits, branches no hold meets left out.

        Frozen, a hold placed meanwhile cannot slip between the check of which scopes exist and
        the DELETE (on SQLite the batch's write lock does the same). True for a kind no hold keeps.
        """
        if not registry.get(kind).holdable:
            return true()
        holds.freeze(session)
        forms = holds.forms_in_force(session, now=self.now, grace=self.grace, site_id=self.site.id)
        dialect = self.engine.dialect.name
        return holds.unheld(
            kind, table, now=self.now, grace=self.grace, dialect=dialect, forms=forms
        )

    def stopping(self) -> bool:
        """Whether the run was asked to end after the current batch."""
        return self.stop is not None and self.stop.is_set()


@dataclass
class _Carry:
    """What a run's passes hand on: whether one has run yet (it settles the shortenings and does
    the organisation's housekeeping), and whether the WAL may still hold what a pass deleted."""

    first: bool = True
    wal_dirty: bool = False


def _run(
    work: _Pass, settings: Settings, policy: dict[str, timedelta], *, actor: str, carry: _Carry
) -> PurgeReport:
    site = work.site
    shortened: list[policies.Change] = []
    if carry.first:
        with db.session_scope(work.engine) as session:
            # A shortening counts once its delay has passed, never before (`policies`); `policy`
            # already counts it, this stores it and audits it.
            shortened = policies.settle(session, now=work.now, actor=actor)
    with db.session_scope(work.engine) as session:
        closed = limits.apply(
            session, settings.limits, now=work.now, actor=actor, site_id=site.id, site=site.code
        )
        # After the limits, which start clocks that may already have run out.
        due = _due(session, _cutoffs(policy, site, work.now), site.id)
    report = _empty_report(work.now, dry_run=False)
    report.limits = dict(closed)
    report.notes += [
        f"{c.kind}: the shortening to {format_duration(c.new)} took effect" for c in shortened
    ]
    for kind in registry.DELETE_ORDER:
        if work.stopping():
            break
        if not (kind.per_site or site.organisation):
            continue  # another pass of this run purges the organisation's kinds
        if kind.name not in policy:
            report.notes.append(f"{kind.name}: no retention policy in the database; nothing purged")
            continue
        cutoff = work.now - policy[kind.name]
        result = report.kinds[kind.name]
        root = _camera_root(settings, report, site) if kind.name == "camera" else None
        if kind.name not in due:
            continue  # nothing expired: nothing to delete, nothing held
        if kind.name == "camera":
            if root is not None:
                _purge_camera(work, root, cutoff, report)
        else:
            result.deleted = _purge_rows(work, kind, cutoff)
        if kind.holdable:
            held = _count(work.engine, kind, cutoff, work.now, work.grace, site.id, held=True)
            result.held = held
    if site.camera:  # evidence copies and exports are files of this configuration's host
        _case_files(work, settings, report)
    # The housekeeping below is the organisation's, at this run's `now`: after the first pass,
    # only a pass that deleted something can have left it more to do.
    deleted = any(result.deleted for result in report.kinds.values())
    if carry.first or deleted:
        _housekeeping(work, settings, report, actor=actor)
    if work.stopping():
        report.notes.append("stopped early (shutdown); the next run carries on")
    if carry.first or deleted or carry.wal_dirty or site.camera:
        carry.wal_dirty = not db.scrub(work.engine)
        if carry.wal_dirty:
            report.notes.append(
                "the WAL could not be emptied (a reader was busy); the next run does it"
            )
    carry.first = False
    report.audit_head = _audit(work.engine, report, policy, now=work.now, actor=actor, site=site)
    return report


def _housekeeping(work: _Pass, settings: Settings, report: PurgeReport, *, actor: str) -> None:
    """What goes with the purged records: roll-call names, expired web sessions, restrictions
    with nothing left to restrict, and the personal selectors of holds past their grace."""
    with db.session_scope(work.engine) as session:
        # A roll call outlives the visits it lists; the names go with the visits.
        forgotten = muster.forget_expired_names(session)
        ended = user_sessions.delete_expired(session, now=work.now)  # they name staff
        lifted = restriction.forget_ended(session)  # they name their subject
    if forgotten:
        report.notes.append(f"{forgotten} roll-call names removed with their visits")
    if ended:
        report.notes.append(f"{ended} expired web sessions deleted")
    if lifted:
        report.notes.append(f"{lifted} restriction(s) ended: nothing of their subject is left")
    report.pseudonymised = _pseudonymise(work, settings, report, actor=actor)


def _case_files(work: _Pass, settings: Settings, report: PurgeReport) -> None:
    """Evidence copies no hold keeps any more, and exports handed over or past their hold, go."""
    if work.stopping():
        return
    released = evidence.release(work.engine, settings, now=work.now)
    report.evidence = released.as_json()
    if released.skipped and released.skipped.startswith("evidence folder"):
        report.notes.append(f"evidence copies: {released.skipped}; none removed")
    removed = handover.remove_due(work.engine, settings, now=work.now)
    report.exports = removed.as_json()
    report.notes += removed.notes


def _pseudonymise(work: _Pass, settings: Settings, report: PurgeReport, *, actor: str) -> int:
    """Pseudonymise the personal selectors of holds past their grace; a missing key is a note."""
    with db.session_scope(work.engine) as session:
        if not pseudonyms.due(session, now=work.now, grace=work.grace):
            return 0
    try:
        key = keys.site_key()  # never a new key: the trail is signed with the site's
    except FacilityError as err:
        log.warning("hold selectors not pseudonymised: %s", err)
        report.notes.append(f"hold selectors not pseudonymised: {err}")
        return 0
    with db.session_scope(work.engine) as session:
        return pseudonyms.pseudonymise_released(
            session, now=work.now, grace=work.grace, key=key, actor=actor
        )


def _empty_report(now: datetime, *, dry_run: bool) -> PurgeReport:
    kinds = {kind: KindResult() for kind in registry.NAMES}
    return PurgeReport(at=now, dry_run=dry_run, kinds=kinds, files=FileResult(), audit_head="")


def _skipped(engine: Engine, now: datetime) -> PurgeReport:
    report = _empty_report(now, dry_run=False)
    report.skipped = True
    report.notes.append("another purge is running on this database; this run did nothing")
    with db.session_scope(engine) as session:
        report.audit_head = audit.head(session)
    return report


def _camera_root(settings: Settings, report: PurgeReport, site: _Site) -> Path | None:
    """The recordings root if camera rows may be purged; otherwise None and a note saying why."""
    if not site.camera:
        report.notes.append(
            "camera: this configuration's recordings root is another site's; its own daemon "
            "purges them (nothing purged)"
        )
        return None
    root = settings.camera.root
    if root is None:
        report.notes.append("camera: no recordings root configured (camera.root); nothing purged")
        return None
    problem = camera_files.root_state(root)
    if problem is not None:
        log.warning("camera purge skipped: %s", problem)
        report.notes.append(f"camera: {problem}; nothing purged")
        return None
    return root


# --- selecting batches ---------------------------------------------------------------------------


Position = tuple[datetime, int]


def _expired(kind: Kind, cutoff: datetime, site_id: int) -> ColumnElement[bool]:
    # A NULL clock (not started) never compares true: open records are never purged.
    if not kind.per_site:
        return kind.clock_column <= cutoff
    return and_(kind.table.c.site_id == site_id, kind.clock_column <= cutoff)


def _cutoffs(policy: dict[str, timedelta], site: _Site, now: datetime) -> dict[str, datetime]:
    """The instant each kind this pass purges expires at or before, by its policy."""
    return {
        kind.name: now - policy[kind.name]
        for kind in registry.ALL
        if (kind.per_site or site.organisation) and kind.name in policy
    }


def _due(session: Session, cutoffs: dict[str, datetime], site_id: int) -> frozenset[str]:
    """The kinds with a record at the site past its cutoff, in one statement.

    Each EXISTS is one probe of the kind's (site, clock) index. A kind with none has nothing to
    delete and nothing held, so its pass skips the batches, hold look-ups and counts: with many
    sites sharing the store those statements, run for every kind at every site, were most of a
    run that found little to delete.
    """
    if not cutoffs:
        return frozenset()
    names = list(cutoffs)
    probes = [
        exists().where(_expired(registry.get(name), cutoffs[name], site_id)).label(name)
        for name in names
    ]
    found = session.execute(select(*probes)).one()
    return frozenset(name for name, hit in zip(names, found, strict=True) if hit)


def _after(kind: Kind, cursor: Position | None) -> ColumnElement[bool]:
    """Rows after `cursor` in (clock, id) order; spelled so the index range is used."""
    clock, row = kind.clock_column, kind.table.c.id
    if cursor is None:
        return clock.is_not(None)
    at, row_id = cursor
    return and_(clock >= at, or_(clock > at, row > row_id))


def _up_to(kind: Kind, boundary: Position) -> ColumnElement[bool]:
    clock, row = kind.clock_column, kind.table.c.id
    at, row_id = boundary
    return and_(clock <= at, or_(clock < at, row <= row_id))


def _window(
    session: Session, kind: Kind, cutoff: datetime, cursor: Position | None, work: _Pass
) -> tuple[ColumnElement[bool], Position | None]:
    """The next batch's condition (at most `size` expired rows after `cursor`) and its end."""
    size = work.size
    where = and_(_expired(kind, cutoff, work.site.id), _after(kind, cursor))
    order = (kind.clock_column, kind.table.c.id)
    last = session.execute(
        select(*order).where(where).order_by(*order).offset(size - 1).limit(1)
    ).first()
    if last is None:  # fewer than `size` left: the batch ends at the last of them
        last = session.execute(
            select(*order).where(where).order_by(*(c.desc() for c in order)).limit(1)
        ).first()
        if last is None:
            return where, None
        return and_(where, _up_to(kind, tuple(last))), None
    return and_(where, _up_to(kind, tuple(last))), tuple(last)


# --- record kinds --------------------------------------------------------------------------------


def _purge_rows(work: _Pass, kind: Kind, cutoff: datetime) -> int:
    """Delete a kind's expired unheld rows batch by batch; return how many went."""
    table, cursor, deleted = kind.table, None, 0
    while True:
        with db.session_scope(work.engine) as session, _batch_cache(session):
            unheld = work.unheld(session, kind.name, table)
            where, cursor = _window(session, kind, cutoff, cursor, work)
            deleted += session.exec(delete(table).where(where, unheld)).rowcount
        if cursor is None or work.stopping():
            return deleted


def _purge_camera(work: _Pass, root: Path, cutoff: datetime, report: PurgeReport) -> None:
    """Remove expired unheld segment files, then their rows, batch by batch."""
    kind = registry.get("camera")
    table, cursor = kind.table, None
    while True:
        with db.session_scope(work.engine) as session, _batch_cache(session):
            unheld = work.unheld(session, kind.name, table)
            where, cursor = _window(session, kind, cutoff, cursor, work)
            rows = session.execute(select(table.c.id, table.c.path).where(where, unheld)).all()
            gone = _remove_files(root, rows, report)
            report.kinds["camera"].deleted += _delete_ids(session, table, gone)
        if cursor is None or work.stopping():
            return


@contextmanager
def _batch_cache(session: Session) -> Iterator[None]:
    """Engine settings for one batch: see _SQLITE_BATCH_CACHE_KIB and _no_jit."""
    if session.get_bind().dialect.name != "sqlite":
        _no_jit(session)
        yield
        return
    conn = session.connection()
    size = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_BATCH_CACHE_KIB}")
    try:
        yield
    finally:
        # Before the commit, which only writes the dirty pages out: nothing is read any more.
        with suppress(SQLAlchemyError):
            conn.exec_driver_sql(f"PRAGMA cache_size = {int(size)}")


def _no_jit(session: Session) -> None:
    """PostgreSQL: no JIT compilation in this transaction (SET LOCAL ends with it).

    The hold check's correlated subqueries make the planner's estimate of a batch large, and past
    `jit_inline_above_cost` PostgreSQL spends about as long compiling each statement as running
    it (EXPLAIN ANALYZE in bench/README.md). The statements here are simple index walks that gain
    nothing from JIT.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _remove_files(root: Path, rows: Sequence[Row[int, str]], report: PurgeReport) -> list[int]:
    """Remove each row's file; return the ids whose file is gone now (deleted or vanished)."""
    gone: list[int] = []
    with camera_files.Remover(root) as remover:
        for row_id, path in rows:
            outcome = remover.remove(path)
            if outcome is Outcome.deleted:
                report.files.deleted += 1
            elif outcome is Outcome.vanished:
                report.files.vanished += 1
            elif outcome is Outcome.refused:
                report.files.refused += 1
            else:
                report.files.failed += 1
            if outcome in (Outcome.deleted, Outcome.vanished):
                gone.append(row_id)
            else:
                report.kinds["camera"].errors += 1
        # Before the rows' commit: a crash in between leaves the rows, and the next run finds
        # their files vanished and tries the directories again.
        report.files.directories_removed += remover.prune()
    return gone


def _delete_ids(session: Session, table: Table, ids: list[int]) -> int:
    """Delete these rows in one statement, the ids passed as one parameter.

    A bound parameter per id needs chunks under SQLite's limit, a statement each; one JSON array
    (SQLite's json_each) or one int array (PostgreSQL's ANY) does not, and made the camera purge
    faster (bench/README.md).
    """
    if not ids:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        chosen = table.c.id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    else:
        listed: Select[Any] = select(literal_column("value")).select_from(
            func.json_each(json.dumps(ids))
        )
        chosen = table.c.id.in_(listed)
    return session.exec(delete(table).where(chosen)).rowcount


def _count(
    engine: Engine,
    kind: Kind,
    cutoff: datetime,
    now: datetime,
    grace: timedelta,
    site_id: int,
    *,
    held: bool,
) -> int:
    """Expired rows of `kind` that an active hold keeps (held) or does not keep.

    Held rows are counted as expired minus unheld, in one statement (one snapshot): `unheld` is
    the spelling PostgreSQL runs as anti-joins, where `held` would be a subquery per row.
    """
    table = kind.table
    unheld = _unheld(engine, kind, now, grace)
    expired = select(func.count()).select_from(table).where(_expired(kind, cutoff, site_id))
    statement = expired.where(unheld)
    if held:
        statement = select(expired.scalar_subquery() - statement.scalar_subquery())
    with db.session_scope(engine) as session:
        _no_jit(session)
        counted: int = session.execute(statement).scalar_one()
        return counted


def _unheld(engine: Engine, kind: Kind, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """No active hold keeps the row (always, for a kind no hold keeps)."""
    if not kind.holdable:
        return true()
    dialect = engine.dialect.name
    return holds.unheld(kind.name, kind.table, now=now, grace=grace, dialect=dialect)


# --- dry run, audit, lock ------------------------------------------------------------------------


def _dry_run(
    engine: Engine, settings: Settings, policy: dict[str, timedelta], *, now: datetime, site: _Site
) -> PurgeReport:
    """Count what a run would delete at `site` under `policy` and which cases keep what; change
    nothing."""
    report = _empty_report(now, dry_run=True)
    grace = settings.holds.release_grace
    with db.read_scope(engine) as session:
        due = _due(session, _cutoffs(policy, site, now), site.id)
        report.audit_head = audit.head(session)
    camera_root = _camera_root(settings, report, site)
    report.notes.append("open-record limits were not applied (a real run applies them first)")
    for kind in registry.ALL:
        if not (kind.per_site or site.organisation):
            continue  # another pass of this run purges the organisation's kinds
        if kind.name not in policy:
            report.notes.append(f"{kind.name}: no retention policy in the database; nothing purged")
            continue
        cutoff = now - policy[kind.name]
        result = report.kinds[kind.name]
        result.kept_by = {}
        if kind.name not in due:
            continue  # nothing expired: every count is zero
        if kind.holdable:
            result.held = _count(engine, kind, cutoff, now, grace, site.id, held=True)
            result.kept_by = _kept_by(engine, kind, cutoff, now, grace, site.id)
        if kind.name != "camera" or camera_root is not None:
            result.deleted = _count(engine, kind, cutoff, now, grace, site.id, held=False)
    return report


@dataclass
class Listing:
    """The records (and camera files) a run at `at` would delete, oldest clock first.

    `records` holds at most `limit` per kind when one was given; `totals` says how many there are.
    """

    records: dict[str, list[dict[str, Any]]]
    totals: dict[str, int]
    files: list[Path]  # the camera records' files, in the same order

    def as_json(self) -> dict[str, Any]:
        """`{"records": {KIND: [...]}, "totals": {KIND: n}, "files": [path, ...]}`."""
        return {
            "records": {kind: [utc_fields(r) for r in rows] for kind, rows in self.records.items()},
            "totals": dict(self.totals),
            "files": [str(path) for path in self.files],
        }


def would_delete(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime,
    limit: int | None = None,
    only: Collection[int] | None = None,
    camera_site: int | None = DEFAULT_SITE,
) -> Listing:
    """Which expired, unheld records a run at `now` would delete (before the open-record limits),
    at each site (those in `only`, else every site) under its own policy.

    Camera records are listed only when the recordings root may be purged, as in a real run.
    """
    grace = settings.holds.release_grace
    with db.read_scope(engine) as session:
        wanted = [s for s in sites.listing(session) if only is None or s.id in only]
        chosen = list(policies.for_sites(session, wanted, now=now).items())
    root = None
    if camera_site is not None and any(site_id == camera_site for site_id, _ in chosen):
        root = _camera_root(
            settings, _empty_report(now, dry_run=True), _Site(camera_site, None, True)
        )
    listing = Listing(records={}, totals={}, files=[])
    for name in registry.HOLDABLE:
        kind = registry.get(name)
        listing.records[name], listing.totals[name] = [], 0
        table = kind.table
        unheld = _unheld(engine, kind, now, grace)
        listed = (table.c[column] for column, _header in kind.listed)
        columns = [table.c.id, kind.clock_column, *listed]
        order = (kind.clock_column, table.c.id)
        for site_id, policy in chosen:
            if name not in policy or (
                name == "camera" and (root is None or site_id != camera_site)
            ):
                continue
            expired = _expired(kind, now - policy[name], site_id)
            statement = select(*columns).where(expired, unheld).order_by(*order)
            with db.session_scope(engine) as session:
                _no_jit(session)
                rows = session.execute(statement.limit(limit)).mappings().all()
                total = session.execute(
                    select(func.count()).select_from(table).where(expired, unheld)
                ).scalar_one()
            listing.records[name] += [
                {**row, "expired_at": row[kind.clock] + policy[name]} for row in rows
            ]
            listing.totals[name] += total
        # Oldest first across the sites, at most `limit` of them.
        listing.records[name] = sorted(
            listing.records[name], key=lambda row: (row[kind.clock], row["id"])
        )[:limit]
        if name == "camera" and root is not None:
            listing.files = [root / row["path"] for row in listing.records[name]]
    return listing


def _kept_by(
    engine: Engine, kind: Kind, cutoff: datetime, now: datetime, grace: timedelta, site_id: int
) -> dict[str, int]:
    where = _expired(kind, cutoff, site_id)
    statement = holds.kept_by(kind.name, kind.table, now=now, grace=grace, where=where)
    with db.session_scope(engine) as session:
        return {case: count for case, count in session.execute(statement).all()}


def _audit(
    engine: Engine,
    report: PurgeReport,
    policy: dict[str, timedelta],
    *,
    now: datetime,
    actor: str,
    site: _Site,
) -> str:
    """Write the run's one audit entry, anchor its head outside the database; return the head."""
    counts = report.as_json()
    where = {} if site.code is None else {"site": site.code}
    with db.session_scope(engine) as session:
        entry = audit.append(
            session,
            now=now,
            actor=actor,
            action="purge",
            **where,
            kinds=counts["kinds"],
            files=asdict(report.files),
            policy_seconds={k: int(v.total_seconds()) for k, v in policy.items()},
            notes=report.notes,
            evidence=report.evidence,
            exports=report.exports,
        )
    # Only once it has committed: an anchor must never name an entry that rolled back.
    problem = heads.anchor(engine, entry, kind="purge", now=now)
    if problem:
        report.notes.append(problem)
    return entry.hash
