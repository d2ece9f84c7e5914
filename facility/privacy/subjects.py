"""Data-subject requests: everything stored about a person or a device (access), and erasure.

A subject is a visitor name, a MAC address or a badge number. Names match whole after cleaning and
folding case and accents (`names.name_key`): 'ASA BERG' and 'Åsa<zero-width space> Berg' find
'åsa berg'; 'Ann' does not find 'Anne'. What each subject reaches:

    name    visits with that name key; the badge loans of those visits; the door events of those
            badges during those loans (a loan never returned is open-ended, as for holds); the
            muster roll-call entries of those visits; the visits expected under that name; the
            person as a host (their directory entry) and the host notifications that name them,
            as visitor or as host
    mac     the wifi leases of that MAC (and, exported only, a standing block of it)
    badge   the loans of that badge and its door events, whoever held it; visits expected with it

Beyond the records, a subject is looked for in the rejected inputs (their reason and raw excerpt,
by the same matching as erasure reasons are checked with) and in hold scopes: a scope naming the
subject in the clear (a hold that protects, or one whose grace has not yet passed) or by its
pseudonym (`pseudonyms`). Erasure deletes the matching rejections and replaces the pseudonyms; a
scope in the clear belongs to a hold that protects and stays until it is pseudonymised.

Camera segments name no one, so no subject reaches them: footage of a person is found by camera and
time, and kept or not by holds, like any other segment.

The register of rights (`requests`, `restriction`, `sources.objections`) is exported too: the
subject's data-subject requests, its restriction and (a MAC) its objection to wifi recording.
Erasure keeps them: a request is the controller's record of having answered (it goes
`retention.requests` after it is closed), and an objection or a restriction is what the person
asked for (lifted by `wifi unignore` or `subject unrestrict`; a restriction also ends once
nothing of its subject is stored any more).

Everything is selected with set-based SQL. Erasure deletes, in one transaction, every selected
record no active hold keeps (`holds.unheld`, the rule purge obeys, inside each DELETE), door
events before loans before visits, because the later kinds are how the earlier ones are found. It
also leaves alone what is in use, a record whose retention clock has not started (a visit not
signed out, a badge still out, a lease still running): erasing an open visit would take a person
off the evacuation list. On PostgreSQL the transaction locks the hold tables against writers (SHARE
mode) so a hold placed meanwhile cannot lose a record the erasure already chose.

The audit trail names the subject by its keyed hash (`audit.subject_hash`) and records by counts,
never the name, MAC or badge. The reason is kept in the trail too, so it must not contain them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, delete, false, func, or_, select, true
from sqlmodel import Session

from facility.errors import InputError
from facility.names import clean_text, name_key
from facility.retention import handover, holds, pseudonyms
from facility.sites import narrow
from facility.sources import rejections
from facility.sources.macs import canonical_mac, normalise_mac
from facility.sources.rejections import Sites
from facility.store import kinds as registry
from facility.store.models import (
    BlockedDevice,
    DataRequest,
    IgnoredDevice,
    MusterEntry,
    Restriction,
    table_of,
)
from facility.timefmt import utc_fields, utc_text
from facility.trail import audit
from facility.visitors import muster

_V = registry.get("visits").table
_L = registry.get("badges").table
_E = registry.get("door_events").table
_W = registry.get("wifi").table
_X = registry.get("expected").table
_HO = registry.get("hosts").table
_N = registry.get("notifications").table
_M = table_of(MusterEntry)
_B = table_of(BlockedDevice)
_Q = table_of(DataRequest)
_I = table_of(IgnoredDevice)
_R = table_of(Restriction)
# What an erasure counts beside the kinds: hold scopes whose pseudonym named the subject (the link
# is cut).
HOLD_SCOPES = "hold_scopes"
# Kinds an export lists under a key of their own rather than under `records`: rejected inputs are
# found by their text, not by a column; the subject's requests are the register of answering them.
LISTED_APART = ("rejections", "requests")
_MAC_LIKE = re.compile(r"[0-9a-fA-F][0-9a-fA-F:.\-]{10,16}[0-9a-fA-F]")


@dataclass(frozen=True)
class Subject:
    """Whom a request is about: `kind` name, mac or badge; `key` is the form the store keeps."""

    kind: str
    value: str  # as the officer typed it, trimmed: what the export shows
    key: str

    def as_json(self) -> dict[str, Any]:
        """The export's `subject`."""
        return {"kind": self.kind, "value": self.value}

    def hashed(self, key: bytes) -> str:
        """The keyed hash that names this subject in the audit trail."""
        return audit.subject_hash(key, self.kind, self.key)


def subject_from(
    *, name: str | None = None, mac: str | None = None, badge: str | None = None
) -> Subject:
    """The subject the options name; exactly one of them must be given."""
    given = [(k, v) for k, v in (("name", name), ("mac", mac), ("badge", badge)) if v is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --name, --mac, --badge")
    kind, raw = given[0]
    if kind == "name":
        value = clean_text(raw, what="--name") or ""
        key = name_key(value)
    elif kind == "mac":
        value = raw.strip()
        key = normalise_mac(raw)
    else:
        value = key = raw.strip()
        if len(key) > 64 or not key.isprintable() or " " in key:
            raise InputError(f"--badge: {raw!r} is not a badge number")
    if not key:
        raise InputError(f"--{kind}: must not be empty")
    return Subject(kind, value, key)


# --- what a subject reaches, in SQL --------------------------------------------------------------


def selections(subject: Subject, sites: Sites = None) -> dict[str, ColumnElement[bool]]:
    """The condition on each kind's table that selects the subject's records (reached kinds only),
    at the given sites (None: every site)."""
    if subject.kind == "mac":
        found = {"wifi": _W.c.mac == subject.key}
    elif subject.kind == "badge":
        found = {
            "badges": _L.c.badge == subject.key,
            "door_events": _E.c.badge == subject.key,
            "expected": _X.c.badge == subject.key,
        }
    else:
        visited = {
            "visits": _V.c.name_key == subject.key,
            "badges": _L.c.visit_id.in_(_visit_ids(subject)),
            "door_events": _E.c.id.in_(_event_ids_of_visits(subject)),
        }
        found = visited | _at_the_desk(subject)
    if sites is None:
        return found
    # What belongs to no site (the requests) is reached only by who sees every site.
    return {
        k: and_(c, narrow(registry.get(k).table, sites))
        for k, c in found.items()
        if registry.get(k).per_site
    }


def _at_the_desk(subject: Subject) -> dict[str, ColumnElement[bool]]:
    """A name's records at the desk: expected under it, its host entry, notifications naming it."""
    as_host = select(_HO.c.id).where(_HO.c.name_key == subject.key)
    return {
        "expected": _X.c.name_key == subject.key,
        "hosts": _HO.c.name_key == subject.key,
        "notifications": or_(_N.c.visitor_key == subject.key, _N.c.host_id.in_(as_host)),
    }


def _visit_ids(subject: Subject) -> Select[Any]:
    return select(_V.c.id).where(_V.c.name_key == subject.key)


def _event_ids_of_visits(subject: Subject) -> Select[Any]:
    """Ids of the events of the visits' badges during their loans (uncorrelated: one pass)."""
    event = _E.alias("subject_event")
    during = and_(
        event.c.site_id == _L.c.site_id,  # a badge number is its own site's
        event.c.badge == _L.c.badge,
        event.c.at >= _L.c.issued_at,
        or_(_L.c.returned_at.is_(None), event.c.at <= _L.c.returned_at),
    )
    joined = _V.join(_L, _L.c.visit_id == _V.c.id).join(event, during)
    return select(event.c.id).select_from(joined).where(_V.c.name_key == subject.key)


# --- access --------------------------------------------------------------------------------------


@dataclass
class Export:
    """Everything stored about a subject, and which records a hold keeps."""

    subject: Subject
    generated_at: datetime
    records: dict[str, list[dict[str, Any]]]
    held: list[dict[str, Any]]
    matched_names: list[str]
    muster_entries: list[dict[str, Any]] = field(default_factory=list)
    blocked_devices: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    hold_scopes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    restrictions: list[dict[str, Any]] = field(default_factory=list)
    ignored_devices: list[dict[str, Any]] = field(default_factory=list)
    case_exports: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Records per kind."""
        return {kind: len(rows) for kind, rows in self.records.items()}

    def as_json(self) -> dict[str, Any]:
        """DESIGN.md's `subject export` shape plus the names matched and linked tables."""
        return {
            "subject": self.subject.as_json(),
            "generated_at": utc_text(self.generated_at),
            "records": self.records,
            "held": self.held,
            "matched_names": self.matched_names,
            "muster_entries": self.muster_entries,
            "blocked_devices": self.blocked_devices,
            "rejections": self.rejections,
            "hold_scopes": self.hold_scopes,
            "requests": self.requests,
            "restrictions": self.restrictions,
            "ignored_devices": self.ignored_devices,
            "case_exports": self.case_exports,
            "notes": [
                "camera recordings are not linked to people or devices and are not listed; "
                "ask for footage by camera and time",
                "evidence copies of held footage are camera recordings too: they last as long "
                "as a hold keeps their segment",
                "case_exports are hand-over packages kept here that hold these records; each is "
                "deleted once handed over, or once its hold is released and the grace passed",
            ],
        }


def export(
    session: Session,
    subject: Subject,
    *,
    now: datetime,
    grace: timedelta,
    actor: str,
    key: bytes,
    output_format: str = "json",
    sites: Sites = None,
    request_id: int | None = None,
) -> Export:
    """Everything stored about `subject` (at `sites`: those the caller may see; None: every
    site), audited under its keyed hash (and the request it answers, if named). The registers
    that belong to no site (requests, restrictions, ignored devices) only for every site."""
    chosen = selections(subject, sites)
    records = {
        kind: _rows(session, kind, chosen.get(kind))
        for kind in registry.NAMES
        if kind not in LISTED_APART
    }
    result = Export(
        subject=subject,
        generated_at=now,
        records=records,
        held=held_records(session, chosen, now=now, grace=grace),
        matched_names=_matched_names(session, subject, sites),
        muster_entries=_muster_entries(session, subject, sites),
        blocked_devices=_blocked(session, subject),
        rejections=rejections.rows(session, _rejection_ids(session, subject, sites)),
        hold_scopes=pseudonyms.scopes_naming(session, subject.kind, subject.key, key=key),
        requests=_linked(
            session, _Q, and_(_Q.c.subject_kind == subject.kind, _Q.c.subject_key == subject.key)
        )
        if sites is None
        else [],
        restrictions=_linked(
            session, _R, and_(_R.c.subject_kind == subject.kind, _R.c.subject_key == subject.key)
        )
        if sites is None
        else [],
        ignored_devices=_linked(session, _I, _I.c.mac == subject.key)
        if subject.kind == "mac" and sites is None
        else [],
        case_exports=exports_holding(session, chosen, now=now, grace=grace),
    )
    answering = {} if request_id is None else {"request": request_id}
    audit.append(
        session,
        now=now,
        actor=actor,
        action="subject.export",
        subject=subject.hashed(key),
        subject_kind=subject.kind,
        records=result.counts(),
        rejections=len(result.rejections),
        hold_scopes=len(result.hold_scopes),
        held=len({(h["kind"], h["id"]) for h in result.held}),
        case_exports=len(result.case_exports),
        format=output_format,
        **answering,
    )
    return result


def _linked(session: Session, table: Table, condition: ColumnElement[bool]) -> list[dict[str, Any]]:
    """The rows of a table of the rights' register that `condition` picks, oldest first."""
    statement = select(table).where(condition).order_by(table.c.id)
    return [utc_fields(row._mapping) for row in session.execute(statement)]


def _rows(
    session: Session, kind: str, condition: ColumnElement[bool] | None
) -> list[dict[str, Any]]:
    if condition is None:
        return []
    declared = registry.get(kind)
    table = declared.table
    statement = select(table).where(condition).order_by(table.c[declared.order_by], table.c.id)
    return [utc_fields(row._mapping) for row in session.execute(statement)]


def held_records(
    session: Session,
    chosen: dict[str, ColumnElement[bool]],
    *,
    now: datetime,
    grace: timedelta,
) -> list[dict[str, Any]]:
    """(kind, id, case) for each selected record and each active hold that keeps it."""
    found = []
    holdable = {k: c for k, c in chosen.items() if registry.get(k).holdable}
    for hold, _scopes in holds.listing(session, now=now, grace=grace):
        for kind, condition in holdable.items():
            table = registry.get(kind).table
            kept = holds.held(kind, table, now=now, grace=grace, hold_id=hold.id)
            for row_id in session.execute(select(table.c.id).where(condition, kept)).scalars():
                found.append({"kind": kind, "id": row_id, "case": hold.case})
    return sorted(found, key=lambda h: (registry.NAMES.index(h["kind"]), h["id"], h["case"]))


def exports_holding(
    session: Session,
    chosen: dict[str, ColumnElement[bool]],
    *,
    now: datetime,
    grace: timedelta,
) -> list[dict[str, Any]]:
    """The case exports kept here whose hold keeps some of the selected records now.

    An export holds the records its hold kept when it was written; a hold never shrinks, so while
    it protects, those records are still kept by it and found here. Once it no longer protects,
    the export is due for deletion at the next purge.
    """
    found = []
    for row in handover.listing(session):
        if not any(
            row["hold_id"] == hold.id for hold, _ in holds.listing(session, now=now, grace=grace)
        ):
            continue
        for kind, condition in chosen.items():
            if not _holdable(kind):  # the desk's own kinds: no hold keeps them
                continue
            table = registry.get(kind).table
            kept = holds.held(kind, table, now=now, grace=grace, hold_id=row["hold_id"])
            if session.execute(select(table.c.id).where(condition, kept).limit(1)).first():
                found.append(
                    {
                        "id": row["id"],
                        "case": row["case"],
                        "location": row["location"],
                        "exported_at": utc_text(row["exported_at"]),
                        "handed_over_at": utc_text(row["handed_over_at"]),
                    }
                )
                break
    return found


def _rejection_ids(session: Session, subject: Subject, sites: Sites = None) -> list[int]:
    return rejections.mentioning(session, lambda text_: _mentions(text_, subject), sites)


def _pseudonymised_scope_ids(session: Session, subject: Subject, key: bytes | None) -> list[int]:
    if key is None:
        return []
    found = pseudonyms.scopes_naming(session, subject.kind, subject.key, key=key)
    return [scope["id"] for scope in found if scope["pseudonymised"]]


def _matched_names(session: Session, subject: Subject, sites: Sites = None) -> list[str]:
    if subject.kind != "name":
        return []
    found = select(_V.c.name).where(_V.c.name_key == subject.key, narrow(_V, sites))
    statement = found.distinct()
    return sorted(session.execute(statement).scalars())


def _muster_entries(
    session: Session, subject: Subject, sites: Sites = None
) -> list[dict[str, Any]]:
    if subject.kind != "name":
        return []
    visits = _visit_ids(subject).where(narrow(_V, sites))
    statement = select(_M).where(_M.c.visit_id.in_(visits)).order_by(_M.c.id)
    return [utc_fields(row._mapping) for row in session.execute(statement)]


def _blocked(session: Session, subject: Subject) -> list[dict[str, Any]]:
    if subject.kind != "mac":
        return []
    statement = select(_B).where(_B.c.mac == subject.key)
    return [utc_fields(row._mapping) for row in session.execute(statement)]


# --- erasure -------------------------------------------------------------------------------------


@dataclass
class Erasure:
    """What an erasure will do or did: per kind erased, kept by holds, kept because open."""

    subject: Subject
    erased: dict[str, int]
    held: dict[str, int]
    open: dict[str, int]
    cases: dict[str, dict[str, int]]  # case -> kind -> records it keeps
    done: bool = False
    kept_requests: int = 0  # the subject's data-subject requests: the record of answering them
    restriction_ended: bool = False  # nothing of the subject is left, so its restriction went
    exports: dict[str, list[int]] = field(default_factory=dict)  # case -> its exports kept here

    @property
    def total_erased(self) -> int:
        """Records erased (or, before it runs, to be erased)."""
        return sum(self.erased.values())

    @property
    def total_held(self) -> int:
        """Records an active hold keeps."""
        return sum(self.held.values())

    @property
    def total_open(self) -> int:
        """Records in use (clock not started), kept."""
        return sum(self.open.values())

    def as_json(self) -> dict[str, Any]:
        """Counts per kind and the cases, for `--format json` and the audit entry."""
        return {
            "erased": self.erased,
            "held": self.held,
            "open": self.open,
            "cases": self.cases,
            "exports": self.exports,
        }


def plan(
    session: Session,
    subject: Subject,
    *,
    now: datetime,
    grace: timedelta,
    key: bytes | None = None,
    sites: Sites = None,
) -> Erasure:
    """What erasing `subject` now (at `sites`; None: every site) would erase and keep; changes
    nothing.

    Besides the records: the rejections that mention the subject, and (given the audit key) the
    pseudonymised hold scopes that name it.
    """
    chosen = selections(subject, sites)
    erased, held, kept_open = {}, {}, {}
    for kind, condition in chosen.items():
        table = registry.get(kind).table
        kept = holds.held(kind, table, now=now, grace=grace) if _holdable(kind) else false()
        erased[kind] = _count(session, table, condition, _started(table), ~kept)
        held[kind] = _count(session, table, condition, kept)
        kept_open[kind] = _count(session, table, condition, ~_started(table), ~kept)
    cases: dict[str, dict[str, int]] = {}
    for kind, condition in chosen.items():
        if not _holdable(kind):
            continue
        table = registry.get(kind).table
        statement = holds.kept_by(kind, table, now=now, grace=grace, where=condition)
        for case, n in session.execute(statement).all():
            cases.setdefault(case, {})[kind] = n
    erased["rejections"] = len(_rejection_ids(session, subject, sites))
    erased[HOLD_SCOPES] = len(_pseudonymised_scope_ids(session, subject, key))
    # Held evidence is never touched: the exports of the holds that keep these records stay.
    exports: dict[str, list[int]] = {}
    for found in exports_holding(session, chosen, now=now, grace=grace):
        exports.setdefault(found["case"], []).append(found["id"])
    return Erasure(subject, erased, held, kept_open, cases, exports=exports)


def erase(
    session: Session,
    subject: Subject,
    *,
    now: datetime,
    grace: timedelta,
    actor: str,
    key: bytes,
    reason: str,
    sites: Sites = None,
    request_id: int | None = None,
) -> Erasure:
    """Erase every record of `subject` (at `sites`; None: every site) that no active hold keeps
    and is not in use; audit it (with the request it answers, if named)."""
    reason = check_reason(reason, subject)
    holds.freeze(session)
    result = plan(session, subject, now=now, grace=grace, key=key, sites=sites)
    chosen, dialect = selections(subject, sites), session.get_bind().dialect.name
    for kind in registry.DELETE_ORDER:  # what finds a record is deleted after it
        if kind.name not in chosen:
            continue
        table = kind.table
        unheld = (
            holds.unheld(kind.name, table, now=now, grace=grace, dialect=dialect)
            if kind.holdable
            else true()
        )
        gone = and_(chosen[kind.name], _started(table), unheld)
        result.erased[kind.name] = session.exec(delete(table).where(gone)).rowcount
    ids = _rejection_ids(session, subject, sites)
    result.erased["rejections"] = rejections.erase(session, ids)
    scope_ids = _pseudonymised_scope_ids(session, subject, key)
    result.erased[HOLD_SCOPES] = pseudonyms.erase_pseudonyms(session, scope_ids)
    muster.forget_expired_names(session)  # roll-call entries of erased visits lose the name
    result.kept_requests = _count(
        session, _Q, _Q.c.subject_kind == subject.kind, _Q.c.subject_key == subject.key
    )
    result.restriction_ended = _end_restriction(session, subject, chosen)
    result.done = True
    answering = {} if request_id is None else {"request": request_id}
    if result.restriction_ended:
        answering["restriction_ended"] = True
    audit.append(
        session,
        now=now,
        actor=actor,
        action="subject.erase",
        subject=subject.hashed(key),
        subject_kind=subject.kind,
        reason=reason,
        erased=result.erased,
        held=result.held,
        open=result.open,
        cases=sorted(result.cases),
        exports_kept=sorted(i for ids in result.exports.values() for i in ids),
        **answering,
    )
    return result


def _end_restriction(
    session: Session, subject: Subject, chosen: dict[str, ColumnElement[bool]]
) -> bool:
    """Delete the subject's restriction when nothing of it is stored any more (`restriction`)."""
    if any(_count(session, registry.get(k).table, c) for k, c in chosen.items()):
        return False
    mine = and_(_R.c.subject_kind == subject.kind, _R.c.subject_key == subject.key)
    return bool(session.exec(delete(_R).where(mine)).rowcount)


def _holdable(kind: str) -> bool:
    return registry.get(kind).holdable


def _started(table: Table) -> ColumnElement[bool]:
    """The record's retention clock has started: it is no longer in use."""
    return table.c.retain_from.is_not(None)


def _count(session: Session, table: Table, *conditions: ColumnElement[bool]) -> int:
    counted: int = session.execute(
        select(func.count()).select_from(table).where(*conditions)
    ).scalar_one()
    return counted


def check_reason(reason: str, subject: Subject) -> str:
    """The erasure reason, cleaned; InputError if empty or if it names the subject."""
    cleaned = clean_text(reason, what="--reason", limit=500)
    if not cleaned:
        raise InputError("--reason: say why (e.g. the request's reference); it is audited")
    if _mentions(cleaned, subject):
        raise InputError(
            f"--reason: it contains the subject's {subject.kind}; the audit trail keeps the reason "
            "and must hold no personal data: cite the request's reference instead"
        )
    return cleaned


def _mentions(text_: str, subject: Subject) -> bool:
    if subject.kind == "mac":
        return any(canonical_mac(m) == subject.key for m in _MAC_LIKE.findall(text_))
    haystack = name_key(text_) if subject.kind == "name" else text_.casefold()
    needle = re.escape(subject.key.casefold())
    return re.search(rf"(?<![\w-]){needle}(?![\w-])", haystack) is not None
