"""The retention report: the evidence that nothing is kept past its policy, gathered in set-based SQL.

Per kind it counts the records, finds the oldest retention clock (`min(retain_from)`, one index
seek) and counts what is **overdue and unheld**: expired (`retain_from + policy <= now`) by more
than one purge interval, known for more than one purge interval too (`known_at`, where the table
has it: a record imported long after it expired gets its first purge like any other), and with no
active hold keeping it. That number must be 0; when it is not, the report names the first ids
(`ID_CAP`) and fails. So does any record whose clock starts further ahead than `clock_skew`
(invariant 11): such a clock would keep the record past every policy. Records past their policy
that a hold keeps are counted by case (`holds.kept_by`), and every count uses `holds.held`, the
rule purge obeys.

Ages are counted into buckets for the chart (a range count on the `retain_from` index for the
records within policy, and one grouped count over the expired range), so a year of a mid-size
site's data reports in seconds without reading a row into Python.

The rest comes from the bookkeeping: holds (active, with what they keep; review dates passed;
releases in the period), audit entries in the period (purge runs, auto-closes, camera scans that
refused, refused attempts), `rejections` by source, each daemon job's last run, and the audit
chain verified against its key and anchored heads (from the last checkpoint on, `trail.heads`),
with its entry count and head, so a later report can prove nothing was cut off.

The rights' register is on it too: the open data-subject requests, and a failure for any past
its deadline (`requests`); the shortenings of a policy still waiting for their delay; how many
subjects are restricted and how many devices' leases are not stored (objections); and the
version of the privacy notice in force (`notice`), which changes with every policy change; with
several sites, each site's notice version too (`site_notices`: their policies differ).

Every kind of the registry (`facility.store.kinds`) is reported this way, by its own clock (a
rejected input's is the time it was refused) and with the hold rule where a hold can keep it. The
personal selectors of released holds are counted too: one left in the clear longer than a purge
interval after the hold's grace is a failure, like an overdue record (`pseudonyms`).

Sites: each kind is counted against the policy in force at each site (`policies.for_site`), so a
site with a shorter policy of its own is held to it. With several sites the report has each
site's counts (`sites`) and, at the top, the organisation's: their sums (the age chart only where
every site's buckets agree). `only` narrows it to some sites.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, false, func, or_, select, true
from sqlmodel import Session, col

from facility import sites as offices
from facility.accounts import user_sessions
from facility.operations import jobruns
from facility.privacy import notice as notices
from facility.privacy import requests as request_register
from facility.privacy import restriction
from facility.retention import evidence, handover, holds, policies, pseudonyms
from facility.settings import Privacy
from facility.sources import objections as wifi_objections
from facility.store import kinds as registry
from facility.store.kinds import Kind
from facility.store.models import AuditEntry, EvidenceCopy, Hold, Rejection, row_id, table_of
from facility.timefmt import utc_text
from facility.timeutil import format_duration
from facility.trail import audit, heads

_E = table_of(EvidenceCopy)
DEFAULT_PERIOD = timedelta(days=30)
ID_CAP = 100  # overdue ids listed per kind; the count is always the full number
AGE_BUCKETS = 12  # chart buckets between age 0 and the policy line


# --- the report's parts --------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeBucket:
    """Records whose age (now - retain_from) falls in [start, end), by what keeps them."""

    start: timedelta
    end: timedelta
    within: int = 0  # not expired
    held: int = 0  # expired, kept by an active hold
    awaiting: int = 0  # expired less than one purge interval ago, not held: the next run takes it
    overdue: int = 0  # expired longer ago than that, not held: a failure

    def as_json(self) -> dict[str, Any]:
        """Seconds and counts."""
        return {
            "from_seconds": self.start.total_seconds(),
            "to_seconds": self.end.total_seconds(),
            "within": self.within,
            "held": self.held,
            "awaiting": self.awaiting,
            "overdue": self.overdue,
        }


@dataclass
class KindStatus:
    """What the store keeps of one kind, against its policy."""

    kind: str
    policy: timedelta | None  # None: no policy in the database (not initialised)
    count: int
    open: int  # clock not started (retain_from NULL): never purged by design
    oldest_retain_from: datetime | None
    oldest_age: timedelta | None
    overdue_unheld: int
    overdue_ids: list[int]
    awaiting: int  # expired, unheld, within one purge interval (of expiry or of becoming known)
    overdue_held: int  # expired and kept by a hold
    held_by_case: dict[str, int]
    ages: list[AgeBucket] = field(default_factory=list)
    future: int = 0  # clocks that start further ahead than the clock skew: a failure
    future_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """DESIGN.md's per-kind shape plus the ids, the held cases and the age buckets."""
        return {
            "policy_seconds": None if self.policy is None else int(self.policy.total_seconds()),
            "count": self.count,
            "oldest_retain_from": utc_text(self.oldest_retain_from),
            "overdue_unheld": self.overdue_unheld,
            "overdue_held": self.overdue_held,
            "open": self.open,
            "oldest_age_seconds": _seconds(self.oldest_age),
            "overdue_unheld_ids": list(self.overdue_ids),
            "overdue_unheld_ids_capped": self.overdue_unheld > len(self.overdue_ids),
            "awaiting_purge": self.awaiting,
            "overdue_held_by_case": dict(self.held_by_case),
            "ages": [b.as_json() for b in self.ages],
            "future_clock": self.future,
            "future_clock_ids": list(self.future_ids),
        }


@dataclass
class HoldStatus:
    """An active hold (or one released within the grace), with what it keeps now."""

    item: dict[str, Any]  # holds.as_json
    age: timedelta
    keeps: dict[str, int]
    review_passed: bool
    protects_until: datetime | None  # released: when the grace ends

    def as_json(self) -> dict[str, Any]:
        """`hold list`'s shape plus age, keeps and the review flag."""
        return self.item | {
            "age_seconds": _seconds(self.age),
            "keeps": dict(self.keeps),
            "review_passed": self.review_passed,
            "protects_until": utc_text(self.protects_until),
        }


@dataclass
class Report:
    """Everything the privacy officer's report shows, at one instant."""

    generated_at: datetime
    since: datetime
    interval: timedelta
    kinds: dict[str, KindStatus]
    holds: list[HoldStatus]
    releases: list[dict[str, Any]]
    purges: list[dict[str, Any]]
    auto_closes: list[dict[str, Any]]
    scan_refusals: list[dict[str, Any]]
    rejections: dict[str, int]
    jobs: list[dict[str, Any]]
    activity: dict[str, int]
    verdict: audit.Verdict
    hold_selectors: pseudonyms.Status = field(default_factory=lambda: pseudonyms.Status(0, 0, 0))
    web_sessions: dict[str, int] = field(default_factory=dict)  # live, expired (staff accounts)
    # With several sites: each site's kinds by code (the `kinds` above are their sums).
    sites: dict[str, dict[str, KindStatus]] = field(default_factory=dict)
    requests: request_register.Summary = field(
        default_factory=lambda: request_register.Summary([], [])
    )
    pending_policies: list[policies.Pending] = field(default_factory=list)
    notice: notices.Version | None = None
    # With several sites: the version of each site's notice in force (its policies differ).
    site_notices: dict[str, notices.Version] = field(default_factory=dict)
    restricted: int = 0  # subjects whose records are restricted (article 18)
    objections: dict[str, int] = field(default_factory=dict)  # devices, leases_ignored
    case_files: CaseFiles | None = None  # footage viewings, evidence copies, exports on disk

    @property
    def failures(self) -> list[str]:
        """Why the report fails (exit 1): overdue unheld records, a broken chain."""
        found = [
            f"{s.kind}: {s.overdue_unheld} record(s) overdue and not held"
            for s in self.kinds.values()
            if s.overdue_unheld
        ]
        found += [
            f"{s.kind}: {s.future} record(s) whose clock starts in the future (ids {_ids_text(s)})"
            for s in self.kinds.values()
            if s.future
        ]
        found += [
            f"{kind}: no retention policy" for kind in self.kinds if self.kinds[kind].policy is None
        ]
        if self.hold_selectors.overdue:
            found.append(
                f"hold scopes: {self.hold_selectors.overdue} personal selector(s) of released "
                "holds still in the clear past their grace"
            )
        if self.case_files is not None:
            found += self.case_files.failures
        if not self.verdict.ok:
            where = f" at seq {self.verdict.first_bad_seq}" if self.verdict.first_bad_seq else ""
            found.append(f"audit chain broken{where}: {self.verdict.problem}")
        if self.requests.overdue:
            found.append(
                f"requests: {len(self.requests.overdue)} data-subject request(s) past their "
                f"deadline: {request_register.ids_text(self.requests.overdue)}"
            )
        return found

    @property
    def warnings(self) -> list[str]:
        """What the officer should look at, without failing the report."""
        found = [
            f"hold {h.item['case']}: review date passed" for h in self.holds if h.review_passed
        ]
        if not self.purges:
            found.append("no purge run in the period")
        found += [
            f"job {j['job']}: last run failed ({j['last_error']})"
            for j in self.jobs
            if j["failing"]
        ]
        found += list(self.verdict.warnings)
        refused = self.files_refused
        if refused:
            found.append(f"{refused} camera file deletion(s) refused or failed in the period")
        if self.scan_refusals:
            found.append(f"{len(self.scan_refusals)} camera scan(s) refused in the period")
        found += [
            f"{p.kind}: a shortening to {format_duration(p.duration)} waits for its delay "
            f"(set by {p.set_by})"
            for p in self.pending_policies
        ]
        if self.case_files is not None:
            found += self.case_files.warnings
        return found

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return not self.failures

    @property
    def files_refused(self) -> int:
        """Camera file deletions refused or failed in the period's purge runs."""
        return sum(p["files"].get("refused", 0) + p["files"].get("failed", 0) for p in self.purges)

    def purge_totals(self) -> dict[str, int]:
        """Records deleted per kind by the period's purge runs."""
        totals: Counter[str] = Counter({kind: 0 for kind in registry.HOLDABLE})
        for run in self.purges:
            totals.update(run["deleted"])
        return dict(totals)

    def auto_close_totals(self) -> dict[str, int]:
        """Records closed per kind by the open-record limits in the period."""
        totals: Counter[str] = Counter()
        for entry in self.auto_closes:
            totals.update(entry["closed"])
        return dict(totals)

    def as_json(self) -> dict[str, Any]:
        """DESIGN.md's `report --format json` shape, with more keys beside it."""
        shown = {
            "generated_at": utc_text(self.generated_at),
            "since": utc_text(self.since),
            "ok": self.ok,
            "failures": self.failures,
            "warnings": self.warnings,
            "purge_interval_seconds": _seconds(self.interval),
            "kinds": {kind: status.as_json() for kind, status in self.kinds.items()},
            "holds": [h.as_json() for h in self.holds],
            "releases": self.releases,
            "purges": self.purges,
            "purge_totals": self.purge_totals(),
            "auto_closes": self.auto_closes,
            "files_refused": self.files_refused,
            "camera_scan_refusals": self.scan_refusals,
            "rejections": self.rejections,
            "hold_selectors": self.hold_selectors.as_json(),
            "jobs": self.jobs,
            "activity": self.activity,
            "web_sessions": self.web_sessions,
            "requests": self.requests.as_json(),
            "pending_policies": [{"kind": p.kind, **p.as_json()} for p in self.pending_policies],
            "notice": None if self.notice is None else self.notice.as_json(),
            "restricted_subjects": self.restricted,
            "objections": self.objections,
            "case_files": self.case_files.as_json() if self.case_files else None,
            "audit": {
                "ok": self.verdict.ok,
                "entries": self.verdict.entries,
                "head": self.verdict.head,
                "first_bad_seq": self.verdict.first_bad_seq,
                "problem": self.verdict.problem,
                "from_seq": self.verdict.from_seq,
                "checked": self.verdict.checked,
                "anchors": self.verdict.anchors,
            },
        }
        if self.sites:
            shown["sites"] = {
                code: {"kinds": {kind: status.as_json() for kind, status in found.items()}}
                | (
                    {"notice": self.site_notices[code].as_json()}
                    if code in self.site_notices
                    else {}
                )
                for code, found in self.sites.items()
            }
        return shown


# --- building it ---------------------------------------------------------------------------------


def build(
    session: Session,
    *,
    now: datetime,
    interval: timedelta,
    grace: timedelta,
    since: datetime | None = None,
    expected_head: str | None = None,
    skew: timedelta = timedelta(0),
    only: Collection[int] | None = None,
    privacy: Privacy | None = None,
) -> Report:
    """The report at `now`; the period (purges, releases, ...) runs from `since` (default 30 days).

    A clock up to `skew` (`limits.clock_skew`) ahead of `now` is not yet a failure. Records are
    counted at the sites in `only` (default: every site), each against its own policy.
    `privacy` (the `[privacy]` settings) goes into the version of the notice in force: with several
    sites each site's own (`site_notices`) beside the organisation's.
    """
    since = now - DEFAULT_PERIOD if since is None else since
    privacy = privacy or Privacy()
    _one_snapshot(session)
    every = offices.listing(session)
    several = len(every) > 1
    # With several sites, a kind that belongs to none (the requests) is the organisation's alone.
    kinds_at_sites = [k for k in registry.NAMES if registry.get(k).per_site or not several]
    per_site: dict[str, dict[str, KindStatus]] = {}
    site_notices: dict[str, notices.Version] = {}
    for site in every:
        if only is not None and site.id not in only:
            continue
        if several:
            site_notices[site.code] = notices.version(session, privacy, now=now, site=site)
        policy = policies.for_site(session, site, now=now)
        where = row_id(site) if several else None  # one site: every row, as before sites
        per_site[site.code] = {
            k: kind_status(session, k, policy.get(k), now, interval, grace, skew=skew, site=where)
            for k in kinds_at_sites
        }
    default = policies.in_force(session, now=now)
    found: dict[str, KindStatus] = {}
    for k in registry.NAMES:
        if k not in kinds_at_sites:
            found[k] = kind_status(session, k, default.get(k), now, interval, grace, skew=skew)
        elif len(per_site) > 1:  # the organisation's: under its default policy (a site: its own)
            found[k] = _added(k, default.get(k), [s[k] for s in per_site.values()])
        else:
            found[k] = next(iter(per_site.values()))[k]
    entries = _entries_since(session, since)
    return Report(
        generated_at=now,
        since=since,
        interval=interval,
        sites=per_site if several else {},
        kinds=found,
        holds=hold_statuses(session, now=now, grace=grace),
        releases=releases(session, since=since, grace=grace),
        purges=[_purge_run(e) for e in entries.get("purge", [])],
        auto_closes=[_auto_close(e) for e in entries.get("auto-close", [])],
        scan_refusals=[_scan_refusal(e) for e in entries.get("camera.scan.refused", [])],
        rejections=rejections_by_source(session, since=since),
        jobs=jobs(session),
        activity={action: len(found) for action, found in sorted(entries.items())},
        verdict=heads.verify_trail(session, now=now, expected_head=expected_head),
        hold_selectors=pseudonyms.status(session, now=now, grace=grace, interval=interval),
        web_sessions=user_sessions.counts(session, now=now),
        requests=request_register.summary(session, now=now),
        pending_policies=policies.pending(session, now=now),
        # One site: its notice (the organisation's policies unless it has its own); several: the
        # organisation's, and each site's in `site_notices`.
        notice=notices.version(
            session, privacy, now=now, site=every[0] if len(every) == 1 else None
        ),
        site_notices=site_notices,
        restricted=restriction.count(session),
        objections=wifi_objections.totals(session),
        case_files=case_files(
            session, entries.get("footage.view", []), now=now, grace=grace, interval=interval
        ),
    )


def _one_snapshot(session: Session) -> None:
    """On PostgreSQL read everything from one snapshot, so counts, holds and the head agree.

    SQLite's transaction already is one. A session already in a transaction keeps its own level.
    """
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def kind_status(
    session: Session,
    kind: str,
    policy: timedelta | None,
    now: datetime,
    interval: timedelta,
    grace: timedelta,
    *,
    skew: timedelta = timedelta(0),
    site: int | None = None,
) -> KindStatus:
    """One kind's counts against its policy (at one site, or over every row when `site` is None)."""
    declared = registry.get(kind)
    table, rf = declared.table, declared.clock_column
    here = offices.narrow(table, site)
    # Three statements, not one: each is an index-only count or a single seek on its own.
    total = _count(session, table, here)
    started = _count(session, table, here, rf.is_not(None))
    oldest = session.execute(select(func.min(rf)).where(here)).scalar_one()
    oldest_age = None if oldest is None else now - oldest
    status = KindStatus(
        kind=kind,
        policy=policy,
        count=total,
        open=total - started,
        oldest_retain_from=oldest,
        oldest_age=oldest_age,
        overdue_unheld=0,
        overdue_ids=[],
        awaiting=0,
        overdue_held=0,
        held_by_case={},
    )
    ahead = and_(here, rf > now + skew + declared.planned_ahead)
    status.future = _count(session, table, ahead)
    if status.future:
        status.future_ids = _ids(session, kind, ahead)
    if policy is None:
        return status
    kept = kept_by_hold(declared, now, grace)
    expired, overdue = rf <= now - policy, overdue_condition(kind, now, policy, interval)
    expired, overdue = and_(here, expired), and_(here, overdue)
    status.overdue_unheld = _count(session, table, overdue, ~kept)
    if status.overdue_unheld:
        status.overdue_ids = _ids(session, kind, overdue, ~kept)
    status.overdue_held = _count(session, table, expired, kept)
    status.awaiting = _count(session, table, expired, ~overdue, ~kept)
    if status.overdue_held:
        statement = holds.kept_by(kind, table, now=now, grace=grace, where=expired)
        status.held_by_case = {case: n for case, n in session.execute(statement).all()}
    status.ages = age_buckets(session, kind, policy, now, interval, grace, oldest_age, here)
    return status


def _added(kind: str, policy: timedelta | None, found: list[KindStatus]) -> KindStatus:
    """The organisation's status of a kind: its sites' added up, under the organisation's
    `policy`. Ages only where every site's buckets have the same edges."""
    oldest = [s.oldest_retain_from for s in found if s.oldest_retain_from is not None]
    ages = [s.oldest_age for s in found if s.oldest_age is not None]
    held_by_case: Counter[str] = Counter()
    for s in found:
        held_by_case.update(s.held_by_case)
    edges = {tuple((b.start, b.end) for b in s.ages) for s in found}
    buckets = []
    if len(edges) == 1 and found and found[0].ages:
        buckets = [
            AgeBucket(
                b.start,
                b.end,
                **{
                    what: sum(getattr(s.ages[i], what) for s in found)
                    for what in ("within", "held", "awaiting", "overdue")
                },
            )
            for i, b in enumerate(found[0].ages)
        ]
    return KindStatus(
        kind=kind,
        policy=policy,
        count=sum(s.count for s in found),
        open=sum(s.open for s in found),
        oldest_retain_from=min(oldest, default=None),
        oldest_age=max(ages, default=None),
        overdue_unheld=sum(s.overdue_unheld for s in found),
        overdue_ids=sorted(i for s in found for i in s.overdue_ids)[:ID_CAP],
        awaiting=sum(s.awaiting for s in found),
        overdue_held=sum(s.overdue_held for s in found),
        held_by_case=dict(sorted(held_by_case.items())),
        ages=buckets,
        future=sum(s.future for s in found),
        future_ids=sorted(i for s in found for i in s.future_ids)[:ID_CAP],
    )


def kept_by_hold(kind: Kind, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """An active hold keeps the row (never one of a kind no hold can keep)."""
    if not kind.holdable:
        return false()
    return holds.held(kind.name, kind.table, now=now, grace=grace)


def overdue_condition(
    kind: str, now: datetime, policy: timedelta, interval: timedelta
) -> ColumnElement[bool]:
    """Expired by more than one purge interval, and known to facility for longer than that."""
    declared = registry.get(kind)
    late = declared.clock_column <= now - policy - interval
    known_at = declared.table.c.get("known_at")
    if known_at is None:  # records facility makes itself (visits, loans): known when they happen
        return late
    # NULL: stored before facility kept track, known long ago.
    return and_(late, or_(known_at.is_(None), known_at <= now - interval))


def _count(session: Session, table: Table, *conditions: ColumnElement[bool]) -> int:
    statement = select(func.count()).select_from(table).where(*conditions)
    counted: int = session.execute(statement).scalar_one()
    return counted


def _ids(session: Session, kind: str, *conditions: ColumnElement[bool]) -> list[int]:
    declared = registry.get(kind)
    table, clock = declared.table, declared.clock_column
    statement = select(table.c.id).where(*conditions).order_by(clock, table.c.id).limit(ID_CAP)
    return list(session.execute(statement).scalars())


# --- ages, for the chart -------------------------------------------------------------------------


def bucket_edges(policy: timedelta, oldest_age: timedelta | None) -> list[timedelta]:
    """Age edges: AGE_BUCKETS up to the policy line, then enough to reach the oldest record."""
    if policy > timedelta(0):
        step = policy / AGE_BUCKETS
        within = [step * i for i in range(AGE_BUCKETS)] + [policy]  # the line itself, exactly
    else:  # nothing is within a zero policy but a clock that starts later: one bucket for those
        step = timedelta(hours=1)
        within = [-step, policy]
    beyond = max((oldest_age or policy) - policy, timedelta(0))
    # Past the line, buckets as wide as before unless that would take more than AGE_BUCKETS; at
    # least two, so the line never sits at the chart's edge. The last one also takes older rows.
    wide = max(step, beyond / AGE_BUCKETS)
    count = min(max(2, math.ceil(beyond / wide)), AGE_BUCKETS)
    return within + [policy + wide * i for i in range(1, count + 1)]


def age_buckets(
    session: Session,
    kind: str,
    policy: timedelta,
    now: datetime,
    interval: timedelta,
    grace: timedelta,
    oldest_age: timedelta | None,
    here: ColumnElement[bool] | None = None,
) -> list[AgeBucket]:
    """Started records by age: within policy, and past it split into held, awaiting, overdue."""
    declared = registry.get(kind)
    table, rf = declared.table, declared.clock_column
    here = true() if here is None else here
    edges = bucket_edges(policy, oldest_age)
    line = edges.index(policy)
    # Bucket i holds ages in [edges[i], edges[i+1]): retain_from in (now - edges[i+1], now - edges[i]].
    # The first also takes clocks that start in the future; the last, anything older. Past the
    # line one grouped count does it: few rows are there, and each needs the hold test anyway.
    whens = [(rf > now - end, i) for i, end in enumerate(edges[1:-1])]
    bucket = case(*whens, else_=len(edges) - 2).label("b")
    counts: dict[tuple[int, str], int] = Counter()
    for i in range(line):  # one index range count per bucket: no row is read, let alone decoded
        newer = [] if i == 0 else [rf <= now - edges[i]]
        counts[i, "within"] = _count(session, table, here, rf > now - edges[i + 1], *newer)
    kept = kept_by_hold(declared, now, grace)
    overdue = overdue_condition(kind, now, policy, interval)
    state = case((kept, "held"), (overdue, "overdue"), else_="awaiting").label("s")
    old = select(bucket, state).where(here, rf <= now - policy).subquery()
    statement = select(old.c.b, old.c.s, func.count()).group_by(old.c.b, old.c.s)
    for b, s, n in session.execute(statement):
        counts[max(int(b), line), s] += n  # expired rows always sit past the line
    return [
        AgeBucket(
            edges[i],
            edges[i + 1],
            **{s: counts[i, s] for s in ("within", "held", "awaiting", "overdue")},
        )
        for i in range(len(edges) - 1)
    ]


# --- holds ---------------------------------------------------------------------------------------


def hold_statuses(session: Session, *, now: datetime, grace: timedelta) -> list[HoldStatus]:
    """Holds that protect now, oldest first, with how many records of each kind each keeps."""
    found = holds.listing(session, now=now, grace=grace)
    keeps = {hold.case: dict.fromkeys(registry.HOLDABLE, 0) for hold, _ in found}
    if found:
        # One grouped count per kind for every hold at once, rather than one per hold and kind.
        for kind in registry.HOLDABLE:
            table = registry.get(kind).table
            statement = holds.kept_by(kind, table, now=now, grace=grace, where=true())
            for case_ref, n in session.execute(statement).all():
                keeps[case_ref][kind] = n
    return [
        HoldStatus(
            item=holds.as_json(hold, scopes),
            age=now - hold.placed_at,
            keeps=keeps[hold.case],
            review_passed=(
                hold.released_at is None and hold.review_by is not None and hold.review_by <= now
            ),
            protects_until=None if hold.released_at is None else hold.released_at + grace,
        )
        for hold, scopes in found
    ]


def releases(session: Session, *, since: datetime, grace: timedelta) -> list[dict[str, Any]]:
    """Holds released in the period, oldest release first."""
    statement = select(Hold).where(col(Hold.released_at) >= since).order_by(col(Hold.released_at))
    return [
        {
            "case": hold.case,
            "released_at": utc_text(hold.released_at),
            "released_by": hold.released_by,
            "reason": hold.release_reason,
            "protects_until": utc_text(hold.released_at + grace),
        }
        for hold in session.execute(statement).scalars()
    ]


# --- the case files: footage watched, evidence kept, exports on disk ----------------------------


@dataclass
class CaseFiles:
    """What the security side keeps and did: viewings per case, evidence copies, exports on disk."""

    footage_views: dict[str, int]  # per case, in the period
    evidence: dict[str, int]  # link, copy, bytes, unheld (no active hold keeps the segment)
    exports: list[dict[str, Any]]  # still on disk here, with when they became due for deletion
    interval: timedelta
    now: datetime

    def overdue_exports(self) -> list[dict[str, Any]]:
        """Exports whose copy should have gone more than one purge interval ago."""
        return [
            x
            for x in self.exports
            if x["due_since"] is not None and x["due_since"] <= self.now - self.interval
        ]

    @property
    def failures(self) -> list[str]:
        """An export kept here past its end, like an overdue record."""
        return [
            f"export {x['id']} of {x['case']}: still at {x['location']}, due for deletion "
            f"since {utc_text(x['due_since'])}"
            for x in self.overdue_exports()
        ]

    @property
    def warnings(self) -> list[str]:
        """Evidence copies no hold keeps, awaiting the next purge."""
        unheld = self.evidence.get("unheld", 0)
        return [f"{unheld} evidence copies no hold keeps await the next purge"] if unheld else []

    def as_json(self) -> dict[str, Any]:
        """Viewings per case, evidence counts, and the exports on disk."""
        return {
            "footage_views": dict(self.footage_views),
            "evidence": dict(self.evidence),
            "exports_on_disk": [
                {
                    "id": x["id"],
                    "case": x["case"],
                    "location": x["location"],
                    "exported_at": utc_text(x["exported_at"]),
                    "exported_by": x["exported_by"],
                    "handed_over_at": utc_text(x["handed_over_at"]),
                    "due_since": utc_text(x["due_since"]),
                }
                for x in self.exports
            ],
        }


def case_files(
    session: Session,
    viewings: list[AuditEntry],
    *,
    now: datetime,
    grace: timedelta,
    interval: timedelta,
) -> CaseFiles:
    """Footage viewings per case in the period, evidence copies, and exports still on disk."""
    views: Counter[str] = Counter(str(_details(e).get("case")) for e in viewings)
    copies = evidence.counts(session)
    table = registry.get("camera").table
    unkept = or_(_E.c.segment_id.is_(None), ~holds.held("camera", table, now=now, grace=grace))
    joined = _E.outerjoin(table, table.c.id == _E.c.segment_id)
    copies["unheld"] = session.execute(
        select(func.count()).select_from(joined).where(unkept)
    ).scalar_one()
    exports = [
        row | {"due_since": handover.due_since(row, grace)} for row in handover.listing(session)
    ]
    return CaseFiles(dict(sorted(views.items())), copies, exports, interval, now)


# --- the period's bookkeeping --------------------------------------------------------------------


def _entries_since(session: Session, since: datetime) -> dict[str, list[AuditEntry]]:
    by_action: dict[str, list[AuditEntry]] = {}
    for entry in audit.entries(session, since=since):
        by_action.setdefault(entry.action, []).append(entry)
    return by_action


def _details(entry: AuditEntry) -> dict[str, Any]:
    try:
        details = json.loads(entry.details)
    except ValueError:  # the chain check reports it; the report must still render
        return {}
    return details if isinstance(details, dict) else {}


def _purge_run(entry: AuditEntry) -> dict[str, Any]:
    details = _details(entry)
    kinds = details.get("kinds") or {}
    return {
        "seq": entry.seq,
        "at": utc_text(entry.at),
        "actor": entry.actor,
        "deleted": {k: v.get("deleted", 0) for k, v in kinds.items()},
        "held": {k: v.get("held", 0) for k, v in kinds.items()},
        "errors": {k: v.get("errors", 0) for k, v in kinds.items()},
        "files": details.get("files") or {},
        "notes": details.get("notes") or [],
    }


def _auto_close(entry: AuditEntry) -> dict[str, Any]:
    details = _details(entry)
    closed = {k: v for k, v in details.items() if isinstance(v, int)}
    return {"seq": entry.seq, "at": utc_text(entry.at), "actor": entry.actor, "closed": closed}


def _scan_refusal(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "at": utc_text(entry.at), **_details(entry)}


def rejections_by_source(session: Session, *, since: datetime) -> dict[str, int]:
    """Rejected inputs in the period, counted per source."""
    statement = (
        select(col(Rejection.source), func.count())
        .where(col(Rejection.at) >= since)
        .group_by(col(Rejection.source))
        .order_by(col(Rejection.source))
    )
    return {source: n for source, n in session.execute(statement).all()}


def jobs(session: Session) -> list[dict[str, Any]]:
    """Each daemon job's last success and failure."""
    return [
        {
            "job": run.job,
            "last_success": utc_text(run.last_success),
            "last_failure": utc_text(run.last_failure),
            "last_error": run.last_error,
            "failing": run.last_failure is not None
            and (run.last_success is None or run.last_failure > run.last_success),
        }
        for run in jobruns.all_runs(session)
    ]


def _ids_text(status: KindStatus) -> str:
    shown = ", ".join(map(str, status.future_ids))
    return shown + (", ..." if status.future > len(status.future_ids) else "")


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()
