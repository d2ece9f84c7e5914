"""Property: after one purge, the surviving records are exactly what a plain-Python model keeps.

Random records of every kind, random policies, random holds (active, released inside and outside
the grace, windows touching or not) and a random `now`, all on an hour grid so that expiry and
window edges coincide often. One database per engine is reused across examples; record and hold
tables are cleared between them (the audit trail cannot be, and need not be).
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from facility.retention import holds
from facility.store import db
from facility.store.kinds import HOLDABLE as KINDS
from facility.store.kinds import get as kind_of
from facility.store.models import (
    BadgeLoan,
    CameraSegment,
    DoorEvent,
    Hold,
    HoldScope,
    Policy,
    Visit,
    WifiLease,
)
from tests.conftest import T0
from tests.factories import NO_LIMITS, H, make_settings, run

NAMES, BADGES, DOORS = ("ann", "bob"), ("B1", "B2"), ("D1", "D2")
CAMERAS, MACS = ("c1", "c2"), ("aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02")
SELECTORS = {
    "visits": NAMES,
    "badges": BADGES,
    "door_events": DOORS,
    "camera": CAMERAS,
    "wifi": MACS,
}
_examples = itertools.count()


def at(hours: int) -> datetime:
    """An instant on the grid."""
    return T0 + hours * H


# --- the scenario --------------------------------------------------------------------------------


@dataclass
class Scenario:
    """Everything one example stores, and when it purges."""

    now: int
    grace: int
    batch: int
    policy: dict[str, int]
    visits: list[dict] = field(default_factory=list)
    loans: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)
    leases: list[dict] = field(default_factory=list)
    holds: list[dict] = field(default_factory=list)


hours = st.integers(0, 12)
maybe_hours = st.none() | hours


@st.composite
def scenarios(draw) -> Scenario:
    """A random store and purge instant."""
    scenario = Scenario(
        now=draw(st.integers(0, 24)),
        grace=draw(st.sampled_from([0, 2])),
        batch=draw(st.sampled_from([1, 2, 5000])),
        policy={k: draw(st.integers(0, 8)) for k in KINDS},
    )
    for _ in range(draw(st.integers(0, 4))):
        start = draw(hours)
        length = draw(st.none() | st.integers(0, 6))  # None: still on site
        end = None if length is None else start + length
        scenario.visits.append({"name": draw(st.sampled_from(NAMES)), "in": start, "out": end})
    for _ in range(draw(st.integers(0, 4))):
        scenario.loans.append(_loan(draw, scenario.visits))
    _one_open_loan_per_badge(scenario.loans)
    for _ in range(draw(st.integers(0, 6))):
        event = {"door": draw(st.sampled_from(DOORS)), "badge": draw(st.sampled_from(BADGES))}
        scenario.events.append({**event, "at": draw(hours)})
    for _ in range(draw(st.integers(0, 4))):
        start = draw(hours)
        scenario.segments.append(
            {
                "camera": draw(st.sampled_from(CAMERAS)),
                "start": start,
                "end": start + draw(st.integers(0, 2)),
                "file": draw(st.booleans()),
            }
        )
    for _ in range(draw(st.integers(0, 3))):
        scenario.leases.append(_lease(draw))
    for _ in range(draw(st.integers(0, 3))):
        scenario.holds.append(_hold(draw, scenario.now))
    return scenario


def _loan(draw, visits: list[dict]) -> dict:
    """A loan, usually lent on one of the visits and inside it (a kept badge runs past it)."""
    visit = draw(st.none() | st.integers(0, len(visits) - 1)) if visits else None
    issued = draw(hours) if visit is None else visits[visit]["in"] + draw(st.integers(0, 2))
    returned = draw(st.none() | st.integers(issued, issued + 6))
    lost = returned is None and draw(st.booleans())
    retain = (
        returned if returned is not None else (issued + draw(st.integers(0, 4)) if lost else None)
    )
    badge = draw(st.sampled_from(BADGES))
    return {"badge": badge, "visit": visit, "issued": issued, "returned": returned, "lost": lost,
            "retain": retain}  # fmt: skip


def _one_open_loan_per_badge(loans: list[dict]) -> None:
    """The store allows one open, not-lost loan per badge: later ones become lost."""
    open_badges = set()
    for loan in loans:
        if loan["returned"] is None and not loan["lost"]:
            if loan["badge"] in open_badges:
                loan["lost"], loan["retain"] = True, loan["issued"]
            open_badges.add(loan["badge"])


def _lease(draw) -> dict:
    starts = draw(hours)
    ends = draw(st.none() | st.integers(starts, starts + 4))
    last_seen = draw(st.none() | st.integers(starts, starts + 6))
    if ends is not None:
        retain = max(ends, last_seen if last_seen is not None else ends)
    else:  # never-ending: open, or closed by the silence limit
        retain = draw(st.none() | st.integers(starts, starts + 6))
    mac = draw(st.sampled_from(MACS))
    return {"mac": mac, "starts": starts, "ends": ends, "last_seen": last_seen, "retain": retain}


def _hold(draw, now: int) -> dict:
    start = draw(hours)
    end = start + draw(st.integers(0, 8))
    released = draw(st.none() | st.integers(0, 4))  # hours before now, around the grace
    scopes = set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(KINDS))
        scopes.add((kind, draw(st.none() | st.sampled_from(SELECTORS[kind]))))
    return {
        "from": start,
        "to": end,
        "released": None if released is None else now - released,
        "scopes": sorted(scopes, key=str),
    }


# --- the reference model -------------------------------------------------------------------------


def _meets(start: int, end: int | None, hold: dict) -> bool:
    """[start, end or +inf] meets the hold's closed window."""
    return start <= hold["to"] and (end is None or end >= hold["from"])


def _selects(scope: tuple, kind: str, value) -> bool:
    return scope[0] == kind and scope[1] in (None, value)


def _visit_kept(s: Scenario, index: int | None, name: str, hold: dict) -> bool:
    if index is None:
        return False
    visit = s.visits[index]
    return visit["name"] == name and _meets(visit["in"], visit["out"], hold)


def _keeps(s: Scenario, kind: str, record: dict, hold: dict, scope: tuple) -> bool:
    """Whether `scope` of `hold` keeps `record` of `kind`: DESIGN.md's glossary, in Python."""
    sel = scope[1]
    if kind == "visits":
        return _selects(scope, "visits", record["name"]) and _meets(
            record["in"], record["out"], hold
        )
    if kind == "badges":
        if not _meets(record["issued"], record["returned"], hold):
            return False
        by_visitor = scope[0] == "visits" and sel is not None
        return _selects(scope, "badges", record["badge"]) or (
            by_visitor and _visit_kept(s, record["visit"], sel, hold)
        )
    if kind == "door_events":
        if not hold["from"] <= record["at"] <= hold["to"]:
            return False
        if _selects(scope, "door_events", record["door"]):
            return True
        if scope[0] == "badges" and sel == record["badge"]:
            return True
        return (
            scope[0] == "visits"
            and sel is not None
            and any(
                loan["badge"] == record["badge"]
                and loan["issued"] <= record["at"]
                and (loan["returned"] is None or loan["returned"] >= record["at"])
                and _visit_kept(s, loan["visit"], sel, hold)
                for loan in s.loans
            )
        )
    if kind == "camera":
        return _selects(scope, "camera", record["camera"]) and _meets(
            record["start"], record["end"], hold
        )
    reaches = (
        record["ends"] is None
        or record["ends"] >= hold["from"]
        or (record["last_seen"] is not None and record["last_seen"] >= hold["from"])
    )
    return _selects(scope, "wifi", record["mac"]) and record["starts"] <= hold["to"] and reaches


def _active(hold: dict, s: Scenario) -> bool:
    return hold["released"] is None or hold["released"] > s.now - s.grace


def _retain(kind: str, record: dict) -> int | None:
    return {
        "visits": lambda: record["out"],
        "badges": lambda: record["retain"],
        "door_events": lambda: record["at"],
        "camera": lambda: record["end"],
        "wifi": lambda: record["retain"],
    }[kind]()


def fates(s: Scenario) -> dict[str, list[tuple[bool, bool]]]:
    """(expired, held) for each record of each kind, in the order they were stored."""
    result = {}
    for kind, records in _records(s).items():
        result[kind] = []
        for record in records:
            retain = _retain(kind, record)
            expired = retain is not None and retain <= s.now - s.policy[kind]
            held = any(
                _active(h, s) and any(_keeps(s, kind, record, h, sc) for sc in h["scopes"])
                for h in s.holds
            )
            result[kind].append((expired, held))
    return result


def model(s: Scenario) -> dict[str, set[int]]:
    """Indexes of the records of each kind that must survive the purge."""
    return {
        kind: {i for i, (expired, held) in enumerate(fate) if not expired or held}
        for kind, fate in fates(s).items()
    }


def _records(s: Scenario) -> dict[str, list[dict]]:
    return {
        "visits": s.visits,
        "badges": s.loans,
        "door_events": s.events,
        "camera": s.segments,
        "wifi": s.leases,
    }


# --- storing a scenario and checking a purge -----------------------------------------------------


_MODELS = {
    "visits": Visit,
    "badges": BadgeLoan,
    "door_events": DoorEvent,
    "camera": CameraSegment,
    "wifi": WifiLease,
}


def _clear(engine) -> None:
    with db.session_scope(engine) as session:
        for model_ in (HoldScope, Hold, DoorEvent, BadgeLoan, Visit, CameraSegment, WifiLease):
            session.execute(delete(model_))


def _store(engine, s: Scenario, root: Path, example: int) -> dict[str, list[int]]:
    """Write the scenario (and the segment files it has); return each kind's ids in model order."""
    with db.session_scope(engine) as session:
        for kind, hours_ in s.policy.items():
            session.execute(update(Policy).where(Policy.kind == kind).values(seconds=hours_ * 3600))
        rows = {"visits": [_visit_row(v) for v in s.visits]}
        session.add_all(rows["visits"])
        session.flush()
        rows["badges"] = [_loan_row(loan, rows["visits"]) for loan in s.loans]
        rows["door_events"] = [_event_row(e, i, example) for i, e in enumerate(s.events)]
        rows["camera"] = [_segment_row(g, i, example) for i, g in enumerate(s.segments)]
        rows["wifi"] = [_lease_row(w, i) for i, w in enumerate(s.leases)]
        for kind in ("badges", "door_events", "camera", "wifi"):
            session.add_all(rows[kind])
        for hold in s.holds:
            _hold_rows(session, hold)
        session.flush()
        ids = {kind: [row.id for row in kind_rows] for kind, kind_rows in rows.items()}
    for segment, row in zip(s.segments, rows["camera"], strict=True):
        if segment["file"]:
            (root / row.path).parent.mkdir(parents=True, exist_ok=True)
            (root / row.path).write_bytes(b"x")
    return ids


def _visit_row(v: dict) -> Visit:
    out = None if v["out"] is None else at(v["out"])
    return Visit(name=v["name"], name_key=v["name"], signed_in_at=at(v["in"]), signed_out_at=out,
                 retain_from=out)  # fmt: skip


def _loan_row(loan: dict, visits: list[Visit]) -> BadgeLoan:
    return BadgeLoan(
        badge=loan["badge"],
        visit_id=None if loan["visit"] is None else visits[loan["visit"]].id,
        issued_at=at(loan["issued"]),
        returned_at=None if loan["returned"] is None else at(loan["returned"]),
        lost=loan["lost"],
        retain_from=None if loan["retain"] is None else at(loan["retain"]),
    )


def _event_row(e: dict, index: int, example: int) -> DoorEvent:
    return DoorEvent(event_id=f"e{example}-{index}", door=e["door"], badge=e["badge"],
                     at=at(e["at"]), retain_from=at(e["at"]))  # fmt: skip


def _segment_row(g: dict, index: int, example: int) -> CameraSegment:
    path = f"ex{example}/{g['camera']}/{index}.mp4"
    return CameraSegment(camera=g["camera"], path=path, start=at(g["start"]), end=at(g["end"]),
                         retain_from=at(g["end"]))  # fmt: skip


def _lease_row(w: dict, index: int) -> WifiLease:
    def maybe(value):
        return None if value is None else at(value)

    return WifiLease(source="prop", mac=w["mac"], ip=f"10.0.0.{index}", starts=at(w["starts"]),
                     ends=maybe(w["ends"]), last_seen=maybe(w["last_seen"]),
                     retain_from=maybe(w["retain"]))  # fmt: skip


_cases = itertools.count()


def _hold_rows(session, hold: dict) -> None:
    row = Hold(
        case=f"P-{next(_cases)}",
        reason="property",
        window_from=at(hold["from"]),
        window_to=at(hold["to"]),
        placed_by="tests",
        placed_at=T0,
        released_at=None if hold["released"] is None else at(hold["released"]),
    )
    session.add(row)
    session.flush()
    for kind, selector in hold["scopes"]:
        session.add(HoldScope(hold_id=row.id, kind=kind, selector=selector))


def _survivors(engine) -> dict[str, set[int]]:
    with db.session_scope(engine) as session:
        return {
            kind: set(session.execute(kind_of(kind).table.select().with_only_columns(
                kind_of(kind).table.c.id)).scalars())
            for kind in KINDS
        }  # fmt: skip


def _held_count(engine, kind: str, s: Scenario) -> int:
    """Expired rows of `kind` that `holds.held` keeps."""
    table = kind_of(kind).table
    kept = holds.held(kind, table, now=at(s.now), grace=timedelta(hours=s.grace))
    expired = table.c.retain_from <= at(s.now) - s.policy[kind] * H
    with db.session_scope(engine) as session:
        return session.execute(
            select(func.count()).select_from(table).where(expired, kept)
        ).scalar_one()


def check(engine, root: Path, s: Scenario) -> None:
    """Store `s`, purge once, and compare with the model."""
    example = next(_examples)
    _clear(engine)
    ids = _store(engine, s, root, example)
    settings = make_settings(root, batch=s.batch, grace=f"{s.grace}h", limits=NO_LIMITS)
    # The dry run counts with `holds.unheld`, the run deletes with it, and reports and `hold show`
    # count with `holds.held`: every spelling of the rule must agree with the model.
    dry = run(engine, settings, now=at(s.now), dry_run=True)
    for kind, fate in fates(s).items():
        expected_counts = (fate.count((True, False)), fate.count((True, True)))
        assert (dry.kinds[kind].deleted, dry.kinds[kind].held) == expected_counts, kind
        assert _held_count(engine, kind, s) == expected_counts[1], kind
    report = run(engine, settings, now=at(s.now))
    expected = {k: {ids[k][i] for i in kept} for k, kept in model(s).items()}
    assert _survivors(engine) == expected
    for kind in KINDS:
        assert report.kinds[kind].deleted == len(ids[kind]) - len(expected[kind])
        assert report.kinds[kind].errors == 0
    for index, (segment, row_id) in enumerate(zip(s.segments, ids["camera"], strict=True)):
        path = root / f"ex{example}/{segment['camera']}/{index}.mp4"
        assert path.exists() == (segment["file"] and row_id in expected["camera"])
    shutil.rmtree(root / f"ex{example}", ignore_errors=True)


@pytest.fixture
def root(tmp_path) -> Path:
    """A recordings root that does not look unmounted."""
    path = tmp_path / "recordings"
    path.mkdir()
    (path / "README").write_text("segments live here")
    return path


_SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@hsettings(max_examples=200, deadline=None, suppress_health_check=_SUPPRESS)
@given(s=scenarios())
def test_purge_keeps_exactly_what_the_model_keeps(engine, root, s):
    check(engine, root, s)


@pytest.fixture
def nightly_only(request) -> None:
    """Skip unless the run selected nightly tests (`-m nightly`): nothing deselects them by default."""
    if "nightly" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long property run: select it with -m nightly")


@pytest.mark.nightly
@hsettings(max_examples=3000, deadline=None, suppress_health_check=_SUPPRESS)
@given(s=scenarios())
def test_purge_keeps_exactly_what_the_model_keeps_nightly(nightly_only, engine, root, s):
    check(engine, root, s)
