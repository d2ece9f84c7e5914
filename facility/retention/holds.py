"""Incident holds: placing, extending and releasing them, and the SQL that says what they keep.

A hold names a case, a window [from, to] and scopes (kind, selector); a NULL selector keeps every
record of the kind in the window. A record is held when an active hold (not released, or released
less than `holds.release_grace` ago) has a scope that reaches its kind, whose selector matches it,
and whose window overlaps the record's own time span (closed intervals: touching counts).

What each scope reaches (the selector names whose records; the window is always tested against
each record's own span):

    camera C         segments of camera C
    door_events D    door events at door D
    badges B         loans of badge B, and door events of badge B
    wifi M           leases of MAC M
    visits NAME      visits of NAME (by name key); the badge loans of those visits; the door
                     events of those badges during those loans. Every loan or event this keeps
                     belongs to a visit the same hold keeps, so the links survive while it lasts.
    K, NULL          every record of kind K (and only of K) in the window

A hold belongs to a site (it keeps that site's records only) or, with no site, to the whole
organisation (it keeps every site's): each branch also asks `hold.site_id IS NULL OR
hold.site_id = record.site_id` (`_site_meets`), and a badge number reaches the loans and door
events of its own site only.

The rule is written once, as a list of branches per kind (the ways a scope can keep a record),
and spelled three ways from it: `held` (EXISTS per branch: hold show, reports, the scanner),
`unheld` (NOT EXISTS per branch: the purge's and the erasure's DELETE, which PostgreSQL turns into
anti-joins) and `kept_by` (counts per case). Nothing decides holdness row by row in Python.

Audit entries name the hold by case reference and the scopes by count per kind: badge numbers,
MAC addresses and names are personal data, and reasons are free text that may contain some, so
neither goes into the trail. The holds table itself keeps them, and holds are never deleted.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from facility.errors import InputError
from facility.names import clean_text, name_key
from facility.sites import narrow
from facility.sources.macs import normalise_mac
from facility.store import kinds as registry
from facility.store.models import (
    DEFAULT_SITE,
    BadgeLoan,
    Hold,
    HoldScope,
    Site,
    Visit,
    row_id,
    table_of,
)
from facility.timefmt import site_text, utc_text
from facility.timeutil import format_duration
from facility.trail import audit

_CASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/#-]{0,63}")
_H = table_of(Hold)
_S = table_of(HoldScope)


@dataclass(frozen=True, order=True)
class Scope:
    """One (kind, selector) pair of a hold; selector None keeps the whole kind."""

    kind: str
    selector: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `{"kind", "selector"}` shape of `hold list --format json`."""
        return {"kind": self.kind, "selector": self.selector}


# --- input ---------------------------------------------------------------------------------------


def scopes_from_options(
    *,
    cameras: Iterable[str] = (),
    doors: Iterable[str] = (),
    badges: Iterable[str] = (),
    macs: Iterable[str] = (),
    visitors: Iterable[str] = (),
    kinds: Iterable[str] = (),
) -> list[Scope]:
    """The scopes the CLI options name, validated and normalised, without duplicates."""
    scopes = [Scope("camera", _plain(c, "--camera")) for c in cameras]
    scopes += [Scope("door_events", _plain(d, "--door")) for d in doors]
    scopes += [Scope("badges", _badge(b)) for b in badges]
    scopes += [Scope("wifi", normalise_mac(m)) for m in macs]
    scopes += [Scope("visits", _visitor(v)) for v in visitors]
    scopes += [Scope(_kind(k), None) for k in kinds]
    return list(dict.fromkeys(scopes))


def _plain(value: str, what: str) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > 200 or not cleaned.isprintable():
        raise InputError(f"{what}: {value!r} is not a valid id")
    return cleaned


def _badge(value: str) -> str:
    cleaned = value.strip()
    if not cleaned or len(cleaned) > 64 or not cleaned.isprintable() or " " in cleaned:
        raise InputError(f"--badge: {value!r} is not a badge number")
    return cleaned


def _visitor(value: str) -> str:
    key = name_key(clean_text(value, what="--visitor") or "")
    if not key:
        raise InputError("--visitor: a visitor name must not be empty")
    return key


def _kind(value: str) -> str:
    if value not in registry.HOLDABLE:
        raise InputError(f"--kind: {value!r} is not a kind (one of {', '.join(registry.HOLDABLE)})")
    return value


def _case(value: str) -> str:
    cleaned = value.strip()
    if not _CASE.fullmatch(cleaned):
        raise InputError(
            f"CASE: {value!r} is not a case reference (letters, digits and ._:/#-, "
            "at most 64, e.g. INC-2026-0042)"
        )
    return cleaned


def _reason(value: str) -> str:
    cleaned = clean_text(value, what="--reason", limit=500)
    if not cleaned:
        raise InputError("--reason: give the reason (it stays with the hold)")
    return cleaned


# --- changes -------------------------------------------------------------------------------------


def place(
    session: Session,
    *,
    now: datetime,
    actor: str,
    case: str,
    reason: str,
    window_from: datetime,
    window_to: datetime,
    scopes: Sequence[Scope],
    review_by: datetime | None = None,
    grace: timedelta | None = None,
    site_zone: tzinfo = UTC,
    site_id: int | None = DEFAULT_SITE,
) -> Hold:
    """Place a new hold with at least one scope at a site (None: for the whole organisation);
    the case reference must be new."""
    case, reason, scopes = _case(case), _reason(reason), list(dict.fromkeys(scopes))
    if window_to < window_from:
        raise InputError(
            f"--to: {site_text(window_to, site_zone)} is before --from "
            f"{site_text(window_from, site_zone)}"
        )
    if not scopes:
        raise InputError(
            "hold place: give at least one of --camera, --door, --badge, --mac, --visitor, --kind"
        )
    existing = find(session, case)
    if existing is not None:
        raise InputError(_taken(existing, now=now, grace=grace))
    hold = Hold(
        site_id=site_id,
        case=case,
        reason=reason,
        window_from=window_from,
        window_to=window_to,
        placed_by=actor,
        placed_at=now,
        review_by=review_by,
    )
    session.add(hold)
    try:
        session.flush()
    except IntegrityError as err:  # placed by someone else a moment ago
        raise InputError(f"CASE: a hold {case} already exists; case references are unique") from err
    _add_scopes(session, hold, scopes)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="hold.place",
        case=case,
        site=None if site_id is None else _code(session, site_id),
        window_from=utc_text(window_from),
        window_to=utc_text(window_to),
        review_by=utc_text(review_by),
        **scope_summary(scopes),
    )
    return hold


def extend(
    session: Session,
    *,
    now: datetime,
    actor: str,
    case: str,
    window_to: datetime | None = None,
    scopes: Sequence[Scope] = (),
    site_zone: tzinfo = UTC,
) -> tuple[Hold, list[Scope]]:
    """Move a hold's end later and/or add scopes; return the hold and the scopes that were new."""
    hold = get(session, case)
    if hold.released_at is not None:
        raise InputError(
            f"CASE: hold {hold.case} was released at {site_text(hold.released_at, site_zone)}; "
            "reinstate it within the release grace, or place a new hold to keep its records"
        )
    if window_to is None and not scopes:
        raise InputError("hold extend: give --to and/or scopes to add")
    if window_to is not None and window_to < hold.window_to:
        raise InputError(
            f"--to: {site_text(window_to, site_zone)} is before the hold's end "
            f"{site_text(hold.window_to, site_zone)}; a hold's window can only grow"
        )
    have = set(scopes_of(session, hold))
    added = [s for s in dict.fromkeys(scopes) if s not in have]
    before = hold.window_to
    if window_to is not None:
        hold.window_to = window_to
        session.add(hold)
    _add_scopes(session, hold, added)
    if hold.window_to != before or added:
        audit.append(
            session,
            now=now,
            actor=actor,
            action="hold.extend",
            case=hold.case,
            window_to_before=utc_text(before),
            window_to=utc_text(hold.window_to),
            **scope_summary(added),
        )
    return hold, added


def release(
    session: Session,
    *,
    now: datetime,
    actor: str,
    case: str,
    reason: str,
    site_zone: tzinfo = UTC,
) -> Hold:
    """Release a hold; it keeps protecting for the release grace so a mistake can be undone."""
    hold = get(session, case)
    reason = _reason(reason)
    if hold.released_at is not None:
        raise InputError(
            f"CASE: hold {hold.case} was already released at "
            f"{site_text(hold.released_at, site_zone)}"
        )
    hold.released_at, hold.released_by, hold.release_reason = now, actor, reason
    session.add(hold)
    session.flush()
    audit.append(session, now=now, actor=actor, action="hold.release", case=hold.case)
    return hold


def reinstate(
    session: Session,
    *,
    now: datetime,
    actor: str,
    case: str,
    grace: timedelta,
    site_zone: tzinfo = UTC,
) -> Hold:
    """Undo a release while the hold still protects (within the release grace).

    After the grace its records may already be purged, so reinstating would promise what is
    gone: a new hold under a new case reference keeps what is left.
    """
    hold = get(session, case)
    if hold.released_at is None:
        raise InputError(f"CASE: hold {hold.case} is not released; nothing to reinstate")
    released_at = hold.released_at
    if not is_active(hold, now=now, grace=grace):
        raise InputError(
            f"CASE: hold {hold.case} was released at {site_text(released_at, site_zone)} and "
            f"stopped protecting at {site_text(released_at + grace, site_zone)} "
            f"(holds.release_grace {format_duration(grace)}); what it kept may be purged since, "
            "so it cannot be reinstated: place a new hold under a new case reference"
        )
    hold.released_at = hold.released_by = hold.release_reason = None
    session.add(hold)
    session.flush()
    audit.append(
        session,
        now=now,
        actor=actor,
        action="hold.reinstate",
        case=hold.case,
        released_at=utc_text(released_at),
    )
    return hold


def site_code(session: Session, hold: Hold) -> str | None:
    """The code of the site whose records the hold keeps; None: every site's (the organisation's)."""
    return None if hold.site_id is None else _code(session, hold.site_id)


def _code(session: Session, site_id: int) -> str:
    site = session.get(Site, site_id)
    return site.code if site is not None else str(site_id)


def _taken(hold: Hold, *, now: datetime, grace: timedelta | None) -> str:
    """Why a case reference cannot be placed again, and what undoes a mistaken release."""
    message = f"CASE: a hold {hold.case} already exists; case references are unique"
    if hold.released_at is not None and grace is not None and is_active(hold, now=now, grace=grace):
        return f"{message}; to undo its release, run: facility hold reinstate {hold.case}"
    return message


def _add_scopes(session: Session, hold: Hold, scopes: Iterable[Scope]) -> None:
    for scope in scopes:
        session.add(HoldScope(hold_id=row_id(hold), kind=scope.kind, selector=scope.selector))
    session.flush()


def scope_summary(scopes: Iterable[Scope]) -> dict[str, Any]:
    """What the audit trail says about scopes: counts per kind, and the kinds kept whole."""
    scopes = list(scopes)
    return {
        "scopes": dict(Counter(s.kind for s in scopes if s.selector is not None)),
        "whole_kinds": sorted(s.kind for s in scopes if s.selector is None),
    }


# --- reading -------------------------------------------------------------------------------------


def find(session: Session, case: str) -> Hold | None:
    """The hold with case reference `case`, or None."""
    return session.execute(select(Hold).where(col(Hold.case) == case.strip())).scalars().first()


def get(session: Session, case: str) -> Hold:
    """The hold with case reference `case`; InputError if there is none."""
    hold = find(session, case)
    if hold is None:
        raise InputError(f"CASE: there is no hold {case.strip()!r}")
    return hold


def get_by_id(session: Session, hold_id: int) -> Hold:
    """The hold with id `hold_id` (holds are never deleted: a missing one is a bug)."""
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise LookupError(f"no hold with id {hold_id}")
    return hold


def case_reference(value: str) -> str:
    """`value` as a case reference, checked as `hold place` checks one; InputError if it is not."""
    return _case(value)


def scopes_of(session: Session, hold: Hold) -> list[Scope]:
    """A hold's scopes, in a stable order."""
    rows = session.execute(
        select(_S.c.kind, _S.c.selector).where(_S.c.hold_id == hold.id).order_by(_S.c.id)
    ).all()
    return [Scope(kind, selector) for kind, selector in rows]


def history(session: Session, hold: Hold) -> list[tuple[str, datetime, str]]:
    """What was done to this hold, oldest first, from the audit trail: (action, when, by whom)."""
    found = []
    for entry in audit.entries(session, action="hold"):
        try:
            case = json.loads(entry.details).get("case")
        except (ValueError, AttributeError):
            continue
        if case == hold.case:
            found.append((entry.action.removeprefix("hold."), entry.at, entry.actor))
    return found


def is_active(hold: Hold, *, now: datetime, grace: timedelta) -> bool:
    """Whether the hold protects at `now`: not released, or released within the grace."""
    return hold.released_at is None or hold.released_at > now - grace


def listing(
    session: Session,
    *,
    now: datetime,
    grace: timedelta,
    include_inactive: bool = False,
    sites: int | Collection[int] | None = None,
) -> list[tuple[Hold, list[Scope]]]:
    """Holds with their scopes, oldest first: those that protect now, or all of them; of the
    given sites (and the organisation's, which keep records at every site), or of every site."""
    statement = select(Hold).order_by(col(Hold.placed_at), col(Hold.id))
    if sites is not None:
        statement = statement.where(or_(_H.c.site_id.is_(None), narrow(_H, sites)))
    if not include_inactive:
        statement = statement.where(_active_hold(now, grace))
    holds = session.execute(statement).scalars().all()
    return [(hold, scopes_of(session, hold)) for hold in holds]


def as_json(
    hold: Hold, scopes: Sequence[Scope], codes: dict[int, str] | None = None
) -> dict[str, Any]:
    """A hold in the stable `hold list --format json` shape; with the sites' `codes`, its `site`
    too (null: the whole organisation)."""
    where: dict[str, Any] = (
        {} if codes is None else {"site": None if hold.site_id is None else codes.get(hold.site_id)}
    )
    return where | {
        "case": hold.case,
        "reason": hold.reason,
        "from": utc_text(hold.window_from),
        "to": utc_text(hold.window_to),
        "status": "active" if hold.released_at is None else "released",
        "placed_by": hold.placed_by,
        "placed_at": utc_text(hold.placed_at),
        "review_by": utc_text(hold.review_by),
        "released_at": utc_text(hold.released_at),
        "scopes": [s.as_json() for s in scopes],
    }


def keeps(session: Session, hold: Hold, *, now: datetime, grace: timedelta) -> dict[str, int]:
    """How many records of each kind this hold keeps at `now` (zero once it no longer protects)."""
    counts = {}
    for kind in registry.HOLDABLE:
        table = registry.get(kind).table
        statement = select(func.count()).select_from(table)
        statement = statement.where(held(kind, table, now=now, grace=grace, hold_id=hold.id))
        counts[kind] = session.execute(statement).scalar_one()
    return counts


# --- the rule, in SQL ----------------------------------------------------------------------------
#
# Each kind's rule is a short list of branches: conditions on one scope (`hold_scopes` joined to
# its `holds` row), the record and perhaps further tables, none with an OR across scope kinds or
# between a selector and NULL. A row is held when an active hold has a scope meeting a branch.
# The branches are the one definition; `held`, `unheld` and `kept_by` spell them for the planners.


Form = tuple[str, bool]  # a scope's kind, and whether its selector is NULL (the whole kind)


@dataclass(frozen=True)
class _Branch:
    """One way a scope keeps a record: a condition on the scope, its hold and the record.

    A branch that goes through other records (a badge loan, a visit) names them in `tables` and
    says in `link` how they relate to the record; its `condition` may use them too. Such a branch
    is spelled nested by default, the records outside and the scopes inside, so that SQLite, which
    runs it per row, starts from the record's few loans and visits rather than from every visitor
    scope; `flat` joins everything in one subquery, which PostgreSQL plans from the scopes side
    and runs faster than the nested form (figures in bench/README.md).
    """

    form: Form  # the scopes it looks at: their kind, and whether they keep the whole kind
    condition: ColumnElement[bool]
    tables: tuple[FromClause, ...] = ()
    link: ColumnElement[bool] | None = None

    def exists(
        self, record: Table, active: ColumnElement[bool], *, flat: bool = False
    ) -> ColumnElement[bool]:
        """EXISTS (a scope of an `active` hold meeting this branch), correlated to `record`."""
        scoped = select(1).select_from(_S.join(_H, _S.c.hold_id == _H.c.id))
        scoped = scoped.where(active, self.condition)
        if not self.tables:
            return scoped.correlate(record).exists()
        if flat:
            return scoped.select_from(*self.tables).where(self._link()).correlate(record).exists()
        inner = scoped.correlate_except(_S, _H).exists()
        return (
            select(1)
            .select_from(*self.tables)
            .where(self._link(), inner)
            .correlate(record)
            .exists()
        )

    def _link(self) -> ColumnElement[bool]:
        assert self.link is not None, "a branch through other records says how they relate"
        return self.link

    def on_scope(self) -> ColumnElement[bool]:
        """The branch as a condition on the scope, its hold and the record alone."""
        if not self.tables:
            return self.condition
        inner = select(1).select_from(*self.tables).where(self._link(), self.condition)
        return inner.correlate_except(*self.tables).exists()


def held(
    kind: str, record: Table, *, now: datetime, grace: timedelta, hold_id: int | None = None
) -> ColumnElement[bool]:
    """An active hold keeps this row of `record`: one EXISTS per branch, correlated to `record`."""
    active = and_(_active_hold(now, grace), _site_meets(record))
    if hold_id is not None:
        active = and_(active, _H.c.id == hold_id)
    return or_(*(branch.exists(record, active) for branch in _BRANCHES[kind](record)))


def unheld(
    kind: str,
    record: Table,
    *,
    now: datetime,
    grace: timedelta,
    dialect: str,
    forms: Collection[Form] | None = None,
) -> ColumnElement[bool]:
    """No active hold keeps this row: `NOT held`, spelled as a NOT EXISTS per branch.

    Each NOT EXISTS standing alone in the WHERE is one that PostgreSQL plans as a hashed anti-join
    over the few scopes, where a NOT over an OR is a subquery run per row, many times slower than
    a bare DELETE (bench/README.md); SQLite runs either form per row, as index lookups. `dialect`
    is the engine's name (`session.get_bind().dialect.name`): see `_Branch` for what it changes.

    `forms` (from `forms_in_force`, in the same transaction, holds frozen) leaves out the
    branches that no active scope could meet: with no holds at all a purge is a bare DELETE.
    """
    active, flat = and_(_active_hold(now, grace), _site_meets(record)), dialect == "postgresql"
    branches = [b for b in _BRANCHES[kind](record) if forms is None or b.form in forms]
    return and_(true(), *(~branch.exists(record, active, flat=flat) for branch in branches))


def forms_in_force(
    session: Session, *, now: datetime, grace: timedelta, site_id: int | None = None
) -> frozenset[Form]:
    """The forms of the scopes of the holds active at `now` (that keep records at `site_id`, when
    given): what `unheld` must look at."""
    statement = (
        select(_S.c.kind, _S.c.selector.is_(None))
        .join(_H, _S.c.hold_id == _H.c.id)
        .where(_active_hold(now, grace))
        .distinct()
    )
    if site_id is not None:
        statement = statement.where(or_(_H.c.site_id.is_(None), _H.c.site_id == site_id))
    return frozenset((kind, bool(whole)) for kind, whole in session.execute(statement))


def kept_by(
    kind: str, record: Table, *, now: datetime, grace: timedelta, where: ColumnElement[bool]
) -> Select[str, int]:
    """(case, rows) for the rows of `record` meeting `where` that each active hold keeps."""
    return (
        select(_H.c.case, func.count(func.distinct(record.c.id)))
        .select_from(record, _S.join(_H, _S.c.hold_id == _H.c.id))
        .where(where, _active_hold(now, grace), _site_meets(record), matches(kind, record))
        .group_by(_H.c.case)
        .order_by(_H.c.case)
    )


def matches(kind: str, record: Table) -> ColumnElement[bool]:
    """The condition on `hold_scopes` and `holds` that the current scope keeps a row of `record`."""
    return or_(*(branch.on_scope() for branch in _BRANCHES[kind](record)))


def _active_hold(now: datetime, grace: timedelta) -> ColumnElement[bool]:
    return or_(_H.c.released_at.is_(None), _H.c.released_at > now - grace)


def _site_meets(record: Table) -> ColumnElement[bool]:
    """The hold keeps records of the record's site: an organisation hold, or one of that site."""
    return or_(_H.c.site_id.is_(None), _H.c.site_id == record.c.site_id)


def _named(kind: str, value: ColumnElement[Any]) -> ColumnElement[bool]:
    """A scope of `kind` whose selector equals `value`."""
    return and_(_S.c.kind == kind, _S.c.selector == value)


def _whole(kind: str) -> ColumnElement[bool]:
    """A scope that keeps every record of `kind` (selector NULL)."""
    return and_(_S.c.kind == kind, _S.c.selector.is_(None))


def _own(kind: str, value: ColumnElement[Any], within: ColumnElement[bool]) -> list[_Branch]:
    """A kind's own scopes, met `within` the window: naming the record's `value`, or the kind."""
    return [
        _Branch((kind, False), and_(_named(kind, value), within)),
        _Branch((kind, True), and_(_whole(kind), within)),
    ]


def _span_meets_window(start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[bool]:
    """[start, end] meets [window_from, window_to]; an end that is NULL is open (+inf)."""
    reaches = _H.c.window_from <= end
    if getattr(end, "nullable", True):
        reaches = or_(end.is_(None), reaches)
    return and_(start <= _H.c.window_to, reaches)


def _at_in_window(at: ColumnElement[Any]) -> ColumnElement[bool]:
    return and_(at >= _H.c.window_from, at <= _H.c.window_to)


def _visit_of_scope(visit: FromClause) -> ColumnElement[bool]:
    """The visit `visit` is one that the current visitor scope keeps."""
    return and_(
        _named("visits", visit.c.name_key),
        _span_meets_window(visit.c.signed_in_at, visit.c.signed_out_at),
    )


# Each holdable kind's branches, declared by `_rule` beside the function that builds them.
_BRANCHES: dict[str, Callable[[Table], list[_Branch]]] = {}


_Branches = Callable[[Table], list[_Branch]]


def _rule(kind: str) -> Callable[[_Branches], _Branches]:
    """Declare the decorated function as the branches of `kind`, a kind holds can keep."""

    def declare(branches: _Branches) -> _Branches:
        _BRANCHES[registry.get(kind).name] = branches
        return branches

    return declare


@_rule("visits")
def _visits_branches(t: Table) -> list[_Branch]:
    return _own("visits", t.c.name_key, _span_meets_window(t.c.signed_in_at, t.c.signed_out_at))


@_rule("badges")
def _badges_branches(t: Table) -> list[_Branch]:
    span = _span_meets_window(t.c.issued_at, t.c.returned_at)
    visit = table_of(Visit).alias("held_visit")
    # The loan was made on a visit this visitor scope keeps.
    by_visitor = _Branch(
        ("visits", False),
        and_(_visit_of_scope(visit), span),
        (visit,),
        link=visit.c.id == t.c.visit_id,
    )
    return [*_own("badges", t.c.badge, span), by_visitor]


@_rule("door_events")
def _door_events_branches(t: Table) -> list[_Branch]:
    within = _at_in_window(t.c.at)
    loan = table_of(BadgeLoan).alias("held_loan")
    visit = table_of(Visit).alias("held_visit")
    # The event happened while the badge was lent on a visit this visitor scope keeps.
    lent = and_(
        loan.c.site_id == t.c.site_id,  # a badge number is its own site's
        loan.c.badge == t.c.badge,
        loan.c.issued_at <= t.c.at,
        or_(loan.c.returned_at.is_(None), loan.c.returned_at >= t.c.at),
        visit.c.id == loan.c.visit_id,
    )
    return [
        *_own("door_events", t.c.door, within),
        _Branch(("badges", False), and_(_named("badges", t.c.badge), within)),
        _Branch(("visits", False), and_(_visit_of_scope(visit), within), (loan, visit), link=lent),
    ]


@_rule("camera")
def _camera_branches(t: Table) -> list[_Branch]:
    return _own("camera", t.c.camera, _span_meets_window(t.c.start, t.c.end))


@_rule("wifi")
def _wifi_branches(t: Table) -> list[_Branch]:
    # The lease's span ends at the later of its end and last sighting; no end means open.
    reaches = or_(
        t.c.ends.is_(None), t.c.ends >= _H.c.window_from, t.c.last_seen >= _H.c.window_from
    )
    return _own("wifi", t.c.mac, and_(t.c.starts <= _H.c.window_to, reaches))


def freeze(session: Session) -> None:
    """Keep holds from changing until this transaction commits (PostgreSQL; SQLite's lock does it).

    A deletion that checked the holds must not race a hold placed a moment later.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE holds, hold_scopes IN SHARE MODE"))
