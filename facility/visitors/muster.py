"""Evacuation roll calls (musters): started from the on-site list, ticked person by person, closed.

One roll call is open at a time at each site. Starting one copies everyone on site (at that site)
into it as `unknown`; whoever
checks people at the assembly point marks each `safe` or `missing` (or back to `unknown`); closing
it keeps it as the record of the drill or incident. The list follows reception while it is open:
someone who signs in joins it (`unknown`, with `joined_at`: arrived after the start) and someone
who signs out is marked `left` (with `left_at`), accounted for, unless already marked safe. A visit
closed by the open-record limit is not a departure and changes nothing here. The CLI and the web
interface both call these functions; reception calls `arrived` and `departed`.

A roll call outlives the visits it lists: when the purge deletes a visit its entries' `visit_id`
becomes NULL (ON DELETE SET NULL) and `forget_expired_names` then blanks their names, so what is
kept is the count and the marks, not the people. Audit entries name musters and entries by id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.names import name_key
from facility.store.models import DEFAULT_SITE, Muster, MusterEntry, row_id
from facility.timefmt import site_text, utc_text
from facility.trail import audit
from facility.visitors.onsite import on_site

STATUSES = ("safe", "missing", "unknown", "left")
# What a person at the assembly point can mark; `left` comes from signing out at reception.
MARKS = ("safe", "missing", "unknown")


@dataclass(frozen=True)
class RollCall:
    """A muster with its entries, ordered by name."""

    muster: Muster
    entries: list[MusterEntry]

    @property
    def counts(self) -> dict[str, int]:
        """How many people are safe, missing, unknown and left, and the total."""
        tally = Counter(e.status for e in self.entries)
        return {s: tally.get(s, 0) for s in STATUSES} | {"total": len(self.entries)}

    @property
    def unaccounted(self) -> list[MusterEntry]:
        """Entries nobody has marked safe: missing ones first, then unknown."""
        missing = [e for e in self.entries if e.status == "missing"]
        return missing + [e for e in self.entries if e.status == "unknown"]

    def as_json(self) -> dict[str, Any]:
        """The roll call as the API and `muster status --format json` give it."""
        m = self.muster
        return {
            "id": m.id,
            "started_at": utc_text(m.started_at),
            "started_by": m.started_by,
            "closed_at": utc_text(m.closed_at),
            "closed_by": m.closed_by,
            "counts": self.counts,
            "entries": [
                {
                    "id": e.id,
                    "visit_id": e.visit_id,
                    "name": e.name,
                    "status": e.status,
                    "marked_at": utc_text(e.marked_at),
                    "marked_by": e.marked_by,
                    "joined_at": utc_text(e.joined_at),
                    "left_at": utc_text(e.left_at),
                }
                for e in self.entries
            ],
        }


def start(
    session: Session,
    *,
    now: datetime,
    actor: str,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> RollCall:
    """Open a roll call of everyone on site now; refused while another one is open there."""
    current = open_muster(session, site_id)
    if current is not None:
        since = site_text(current.started_at, site_zone)
        raise InputError(f"roll call {current.id} is open since {since}; close it first")
    muster = Muster(site_id=site_id, started_at=now, started_by=actor)
    session.add(muster)
    session.flush()
    people = on_site(session, now=now, site_id=site_id).people
    session.add_all(
        MusterEntry(muster_id=row_id(muster), visit_id=p.visit_id, name=p.name) for p in people
    )
    session.flush()
    audit.append(
        session, now=now, actor=actor, action="muster.start", muster=muster.id, people=len(people)
    )
    return get(session, row_id(muster))


def mark(
    session: Session,
    *,
    now: datetime,
    actor: str,
    status: str,
    entry_id: int | None = None,
    name: str | None = None,
    muster_id: int | None = None,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> MusterEntry:
    """Mark one person of an open roll call (by entry id, or by name when it is unique)."""
    if status not in MARKS:
        raise InputError(f"STATUS: {status!r} is not one of {', '.join(MARKS)}")
    muster = _open_or_given(session, muster_id, site_zone, site_id)
    entry = _entry(session, muster, entry_id=entry_id, name=name)
    entry.status, entry.marked_at, entry.marked_by = status, now, actor
    session.add(entry)
    session.flush()
    audit.append(
        session,
        now=now,
        actor=actor,
        action="muster.mark",
        muster=muster.id,
        entry=entry.id,
        status=status,
    )
    return entry


def close(
    session: Session,
    *,
    now: datetime,
    actor: str,
    muster_id: int | None = None,
    site_zone: tzinfo = UTC,
    site_id: int = DEFAULT_SITE,
) -> RollCall:
    """Close the open roll call; it stays as the record, with whatever was still unknown."""
    muster = _open_or_given(session, muster_id, site_zone, site_id)
    muster.closed_at, muster.closed_by = now, actor
    session.add(muster)
    session.flush()
    call = get(session, row_id(muster))
    audit.append(
        session, now=now, actor=actor, action="muster.close", muster=muster.id, **call.counts
    )
    return call


def arrived(
    session: Session, *, visit_id: int, name: str, now: datetime, site_id: int = DEFAULT_SITE
) -> MusterEntry | None:
    """Put someone who just signed in on the site's open roll call, as arrived after its start."""
    muster = open_muster(session, site_id)
    if muster is None:
        return None
    entry = MusterEntry(muster_id=row_id(muster), visit_id=visit_id, name=name, joined_at=now)
    session.add(entry)
    session.flush()
    return entry


def departed(
    session: Session, *, visit_id: int, at: datetime, site_id: int = DEFAULT_SITE
) -> MusterEntry | None:
    """Mark someone who just signed out as left on the site's open roll call (safe stays safe)."""
    muster = open_muster(session, site_id)
    if muster is None:
        return None
    entry = session.exec(
        select(MusterEntry).where(
            MusterEntry.muster_id == muster.id, MusterEntry.visit_id == visit_id
        )
    ).first()
    if entry is None:
        return None
    entry.left_at = at
    if entry.status != "safe":
        entry.status = "left"
    session.add(entry)
    session.flush()
    return entry


def open_muster(session: Session, site_id: int = DEFAULT_SITE) -> Muster | None:
    """The site's roll call that is open, if any."""
    return session.exec(
        select(Muster)
        .where(Muster.site_id == site_id, col(Muster.closed_at).is_(None))
        .order_by(col(Muster.id).desc())
    ).first()


def get(session: Session, muster_id: int, site_id: int | None = None) -> RollCall:
    """A roll call with its entries; InputError if there is none with that id (at `site_id`)."""
    muster = session.get(Muster, muster_id)
    if muster is None or (site_id is not None and muster.site_id != site_id):
        raise InputError(f"there is no roll call {muster_id}" + ("" if muster is None else " here"))
    entries = session.exec(
        select(MusterEntry).where(MusterEntry.muster_id == muster_id).order_by(col(MusterEntry.id))
    ).all()
    # By name, the way people are looked for on a list; forgotten names last.
    ordered = sorted(entries, key=lambda e: (e.name is None, name_key(e.name or ""), e.id))
    return RollCall(muster, ordered)


def latest(session: Session, site_id: int = DEFAULT_SITE) -> RollCall | None:
    """The site's open roll call, else its most recent one, else None."""
    muster = (
        open_muster(session, site_id)
        or session.exec(
            select(Muster)
            .where(Muster.site_id == site_id)
            .order_by(col(Muster.started_at).desc(), col(Muster.id).desc())
        ).first()
    )
    return None if muster is None else get(session, row_id(muster))


def history(
    session: Session, *, limit: int = 50, site_id: int = DEFAULT_SITE
) -> list[tuple[Muster, dict[str, int]]]:
    """The site's most recent roll calls, newest first, with their counts."""
    musters = session.exec(
        select(Muster)
        .where(Muster.site_id == site_id)
        .order_by(col(Muster.started_at).desc(), col(Muster.id).desc())
        .limit(limit)
    ).all()
    tally: dict[int, Counter[str]] = {row_id(m): Counter() for m in musters}
    rows = session.execute(
        select(MusterEntry.muster_id, MusterEntry.status, func.count())
        .where(col(MusterEntry.muster_id).in_(list(tally)))
        .group_by(col(MusterEntry.muster_id), col(MusterEntry.status))
    )
    for muster_id, status, count in rows:
        tally[muster_id][status] = count
    return [
        (m, {s: tally[row_id(m)][s] for s in STATUSES} | {"total": tally[row_id(m)].total()})
        for m in musters
    ]


def forget_expired_names(session: Session) -> int:
    """Blank the names of entries whose visit is gone (purged or erased); return how many.

    The purge calls this after deleting visits, so a roll call keeps its counts and marks but not
    the names of people whose records have expired.
    """
    result = session.exec(
        update(MusterEntry)
        .where(col(MusterEntry.visit_id).is_(None), col(MusterEntry.name).is_not(None))
        .values(name=None)
    )
    return result.rowcount or 0


def _open_or_given(
    session: Session, muster_id: int | None, site_zone: tzinfo, site_id: int
) -> Muster:
    if muster_id is None:
        muster = open_muster(session, site_id)
        if muster is None:
            raise InputError("no roll call is open; start one with `facility muster start`")
        return muster
    muster = session.get(Muster, muster_id)
    if muster is None or muster.site_id != site_id:
        raise InputError(f"there is no roll call {muster_id}" + ("" if muster is None else " here"))
    if muster.closed_at is not None:
        closed = site_text(muster.closed_at, site_zone)
        raise InputError(f"roll call {muster.id} was closed at {closed}; it is a record now")
    return muster


def _entry(
    session: Session, muster: Muster, *, entry_id: int | None, name: str | None
) -> MusterEntry:
    if entry_id is not None:
        entry = session.get(MusterEntry, entry_id)
        if entry is None or entry.muster_id != muster.id:
            raise InputError(f"ENTRY: roll call {muster.id} has no entry {entry_id}")
        if name is not None and name_key(name) != name_key(entry.name or ""):
            # Both given: they must agree, so a mistyped number does not mark someone else.
            shown = entry.name if entry.name is not None else "(name removed)"
            raise InputError(f"ENTRY: entry {entry.id} is {shown}, not {name}")
        return entry
    key = name_key(name or "")
    if not key:
        raise InputError("NAME: give the person's name")
    entries = session.exec(select(MusterEntry).where(MusterEntry.muster_id == muster.id)).all()
    matches = [e for e in entries if e.name is not None and name_key(e.name) == key]
    if not matches:
        raise InputError(f"NAME: nobody called {name!r} is on roll call {muster.id}")
    if len(matches) > 1:
        ids = ", ".join(str(e.id) for e in matches)
        raise InputError(
            f"NAME: {len(matches)} people called {name!r} are on roll call {muster.id} "
            f"(entries {ids}); give --entry"
        )
    return matches[0]
