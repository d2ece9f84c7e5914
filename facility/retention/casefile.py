"""What a hold keeps, record by record: the case file security staff work from.

`hold show` counts what a hold keeps; this lists it, per kind, with each record's times and the
camera, door, badge or MAC that identifies it, using the very rule the purge obeys
(`holds.held` for that one hold). Camera segments come with the evidence copy preserved for them,
if any (`evidence`).

`visible` applies restrictions of processing (article 18, `privacy.restriction`): a restricted
person's records are left out of these listings for roles other than privacy, and counted as
`withheld` so that security staff know the hold keeps more than they are shown. Every listing, the
CLI's, the web page's, the API's and an export's, goes through it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlmodel import Session

from facility.errors import InputError
from facility.retention import holds
from facility.store import kinds as registry
from facility.store.models import EvidenceCopy, Hold, table_of
from facility.timefmt import utc_fields, utc_text

_EVIDENCE = table_of(EvidenceCopy)


@dataclass
class CaseFile:
    """The records one hold keeps at `now`, oldest first per kind."""

    hold: Hold
    scopes: list[holds.Scope]
    now: datetime
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # all of them, whatever `limit` showed
    withheld: dict[str, int] = field(
        default_factory=dict
    )  # restricted ones these roles may not see

    @property
    def protects(self) -> bool:
        """Whether the hold keeps anything at all (active, or released within the grace)."""
        return any(self.totals.values())


def _restriction() -> ModuleType:
    # Imported when called: `privacy.restriction` needs `privacy.subjects`, which needs this
    # package's `handover`, which needs this module.
    from facility.privacy import restriction

    return restriction


def visible(kind: str, table: Table, roles: Collection[str]) -> ColumnElement[bool]:
    """The records of `kind` that someone holding `roles` may see in a case file: all of them for
    the privacy role, else all but those of a person whose processing is restricted."""
    shown: ColumnElement[bool] = _restriction().visible(kind, roles, table)
    return shown


def _withheld(
    session: Session, kind: str, table: Table, held: ColumnElement[bool], roles: Collection[str]
) -> int:
    """How many records `held` picks that `visible` leaves out for `roles`."""
    restriction = _restriction()
    if restriction.sees_restricted(roles):
        return 0
    statement = (
        select(func.count()).select_from(table).where(held, restriction.restricted(kind, table))
    )
    counted: int = session.execute(statement).scalar_one()
    return counted


def kinds_asked(kinds: Iterable[str] | None) -> list[str]:
    """The holdable kinds asked for (all when none are), checked."""
    asked = list(kinds or ())
    for kind in asked:
        if kind not in registry.HOLDABLE:
            raise InputError(
                f"--kind: {kind!r} is not a kind a hold keeps (one of "
                f"{', '.join(registry.HOLDABLE)})"
            )
    return [kind for kind in registry.HOLDABLE if not asked or kind in asked]


def case_file(
    session: Session,
    case: str,
    *,
    now: datetime,
    grace: timedelta,
    roles: Collection[str],
    kinds: Iterable[str] | None = None,
    limit: int | None = None,
) -> CaseFile:
    """Every record hold `case` keeps at `now` (at most `limit` per kind), as `roles` may see them."""
    chosen = kinds_asked(kinds)
    hold = holds.get(session, case)
    found = CaseFile(hold=hold, scopes=holds.scopes_of(session, hold), now=now)
    for name in chosen:
        kind = registry.get(name)
        table = kind.table
        where = (
            holds.held(name, table, now=now, grace=grace, hold_id=hold.id),
            visible(name, table, roles),
        )
        columns = [table.c.id, kind.clock_column, *(table.c[c] for c, _ in kind.listed)]
        statement = select(*columns).where(*where)
        if name == "camera":
            evidence = select(_EVIDENCE.c.method).where(_EVIDENCE.c.segment_id == table.c.id)
            statement = statement.add_columns(evidence.scalar_subquery().label("evidence"))
        statement = statement.order_by(table.c[kind.order_by], table.c.id)
        rows = session.execute(statement.limit(limit)).mappings().all()
        found.records[name] = [dict(row) for row in rows]
        if limit is None or len(rows) < limit:
            found.totals[name] = len(rows)
        else:
            count = select(func.count()).select_from(table).where(*where)
            found.totals[name] = session.execute(count).scalar_one()
        hidden = _withheld(session, name, table, where[0], roles)
        if hidden:
            found.withheld[name] = hidden
    return found


def as_json(found: CaseFile) -> dict[str, Any]:
    """`hold records --format json`: the case, when, and the records per kind with totals."""
    return {
        "case": found.hold.case,
        "generated_at": utc_text(found.now),
        "totals": dict(found.totals),
        "withheld": dict(found.withheld),
        "records": {kind: [utc_fields(r) for r in rows] for kind, rows in found.records.items()},
    }


def csv_rows(found: CaseFile) -> tuple[list[str], list[list[Any]]]:
    """`hold records --format csv`: one row per record, `kind` first, the kinds' columns after."""
    fields: list[str] = []
    for rows in found.records.values():
        for row in rows:
            fields += [f for f in row if f not in fields]
    lines = [
        [kind, *(utc_fields(row).get(f) for f in fields)]
        for kind, rows in found.records.items()
        for row in rows
    ]
    return ["kind", *fields], lines


def segment_ids(session: Session, hold: Hold, *, now: datetime, grace: timedelta) -> list[int]:
    """The ids of the camera segments `hold` keeps at `now`."""
    table = registry.get("camera").table
    kept = holds.held("camera", table, now=now, grace=grace, hold_id=hold.id)
    return list(session.execute(select(table.c.id).where(kept).order_by(table.c.id)).scalars())


def keeps_segment(
    session: Session, case: str, segment_id: int, *, now: datetime, grace: timedelta
) -> bool:
    """Whether hold `case` exists and keeps camera segment `segment_id` at `now`."""
    hold = holds.find(session, case)
    if hold is None:
        return False
    table = registry.get("camera").table
    kept = holds.held("camera", table, now=now, grace=grace, hold_id=hold.id)
    statement = select(table.c.id).where(table.c.id == segment_id, kept)
    return session.execute(statement).first() is not None
