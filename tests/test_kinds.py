"""The registry of record kinds (`facility.store.kinds`): every part reads it, none lists its own.

Each test runs over every kind the registry declares, through the CLI and the web API: a kind added
there is checked in the settings, `policy show`/`policy set`, holds, the purge, the report and
subject export and erasure at once, and a module that kept a list of its own would leave the new
kind out and fail here. `SAMPLES` must give each kind a record: a new kind without one fails first.
The last test reads the product's source for literal lists of kinds.
"""

from __future__ import annotations

import ast
import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import ForeignKey

from facility.accounts import users
from facility.accounts.access import ROLES
from facility.cli.context import AppContext
from facility.names import name_key
from facility.settings import Settings
from facility.store import db, kinds
from facility.store.models import (
    BadgeLoan,
    CameraSegment,
    DataRequest,
    DoorEvent,
    ExpectedVisit,
    Host,
    HostNotification,
    Rejection,
    Visit,
    WifiLease,
)
from facility.web import create_app
from tests.conftest import T0

D = timedelta(days=1)
NOW = T0 + 30 * D
NAME, BADGE, MAC = "Ada Lovelace", "B17", "3c:22:fb:01:02:03"
SEGMENT = "2026-06-11/09/lobby/00.00.mp4"
PASSWORD = "correct horse"
# The subject option that reaches each kind's sample (None: no subject reaches it).
REACHED_BY = {
    "visits": ("--name", NAME),
    "badges": ("--name", NAME),
    "door_events": ("--name", NAME),
    "camera": None,
    "wifi": ("--mac", MAC),
    "rejections": ("--mac", MAC),
    "requests": ("--name", NAME),
    "expected": ("--name", NAME),
    "hosts": ("--name", NAME),
    "notifications": ("--name", NAME),
}
# Kinds a subject export shows but an erasure keeps: the record of having answered the person.
KEPT_BY_ERASURE = {"requests"}


def _samples(visit_id: int, host_id: int) -> dict[str, object]:
    """One record of each kind other than visits and hosts, past its default policy at NOW."""
    return {
        "badges": BadgeLoan(
            badge=BADGE,
            visit_id=visit_id,
            issued_at=NOW - 10 * D,
            returned_at=NOW - 10 * D,
            retain_from=NOW - 10 * D,
        ),
        "door_events": DoorEvent(
            event_id="e1",
            door="lobby",
            badge=BADGE,
            at=NOW - 10 * D,
            retain_from=NOW - 10 * D,
            known_at=NOW - 10 * D,
        ),
        "camera": CameraSegment(
            camera="lobby",
            path=SEGMENT,
            start=NOW - 20 * D,
            end=NOW - 20 * D,
            retain_from=NOW - 20 * D,
            known_at=NOW - 20 * D,
        ),
        "wifi": WifiLease(
            source="tests",
            mac=MAC,
            ip="10.0.0.5",
            starts=NOW - 401 * D,
            ends=NOW - 400 * D,
            last_seen=NOW - 400 * D,
            retain_from=NOW - 400 * D,
            known_at=NOW - 400 * D,
        ),
        "rejections": Rejection(
            at=NOW - 10 * D, source="tests", reason="unparsable", raw=f"lease {MAC} 10.0.0.5 ?"
        ),
        "requests": DataRequest(
            type="access",
            subject_kind="name",
            subject=NAME,
            subject_key=name_key(NAME),
            contact="ada@example.org",
            received_at=NOW - 800 * D,
            due_at=NOW - 770 * D,
            opened_by="tests",
            opened_at=NOW - 800 * D,
            closed_at=NOW - 790 * D,
            closed_by="tests",
            outcome="export sent",
            retain_from=NOW - 790 * D,
        ),
        "expected": ExpectedVisit(
            name=NAME,
            name_key=name_key(NAME),
            host="Charles Babbage",
            expected_on=(NOW - 10 * D).date(),
            created_at=NOW - 11 * D,
            created_by="tests",
            retain_from=NOW - 9 * D,
        ),
        "notifications": HostNotification(
            message_id="m1",
            host_id=host_id,
            channel="email",
            visitor=NAME,
            visitor_key=name_key(NAME),
            signed_in_at=NOW - 10 * D,
            next_attempt_at=NOW - 10 * D,
            retain_from=NOW - 10 * D,
        ),
    }


@pytest.fixture
def site(cli, monkeypatch, tmp_path):
    """One expired record of every kind, a recordings root holding the segment's file, NOW fixed."""
    monkeypatch.setattr(AppContext, "now", lambda self: NOW)
    root = tmp_path / "recordings"
    (root / SEGMENT).parent.mkdir(parents=True)
    (root / SEGMENT).write_bytes(b"\x00")
    monkeypatch.setenv("FACILITY_CAMERA__ROOT", str(root))
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        visit = Visit(
            name=NAME,
            name_key=name_key(NAME),
            signed_in_at=NOW - 10 * D,
            signed_out_at=NOW - 10 * D,
            retain_from=NOW - 10 * D,
        )
        # Ada as a host too, last used long ago: the directory entry a name reaches.
        host = Host(
            name=NAME,
            name_key=name_key(NAME),
            email="ada@example.org",
            added_at=NOW - 400 * D,
            retain_from=NOW - 400 * D,
        )
        session.add_all([visit, host])
        session.flush()
        samples = {"visits": visit, "hosts": host, **_samples(visit.id, host.id)}
        assert set(samples) == set(kinds.NAMES), "give every kind a sample record here"
        session.add_all(samples.values())
    engine.dispose()
    return cli


def _json(cli, *args: str, code: int = 0) -> dict:
    return json.loads(cli(*args, "--format", "json", code=code).stdout)


def test_every_kind_has_its_setting_and_its_policy(cli):
    retention = Settings().retention
    assert {k.name: getattr(retention, k.name) for k in kinds.ALL} == {
        k.name: k.retention for k in kinds.ALL
    }
    assert set(type(retention).model_fields) == set(kinds.NAMES)
    shown = _json(cli, "policy", "show")
    assert [(p["kind"], p["seconds"]) for p in shown] == [
        (k.name, k.retention.total_seconds()) for k in kinds.ALL
    ]
    # A lengthening of every kind (in force at once), within the default site's ceilings.
    for kind in kinds.ALL:
        longer = int((kind.retention + D).total_seconds())
        cli("policy", "set", kind.name, f"{longer}s", "--reason", "registry test")
    assert [(p["kind"], p["seconds"]) for p in _json(cli, "policy", "show")] == [
        (k.name, (k.retention + D).total_seconds()) for k in kinds.ALL
    ]
    refused = cli("policy", "set", "cctv", "3d", "--reason", "r", code=2)
    assert ", ".join(kinds.NAMES) in refused.stderr


def test_the_report_counts_every_kind_by_its_own_clock(site):
    body = _json(site, "report", code=1)  # every sample is overdue: the report fails
    assert list(body["kinds"]) == list(kinds.NAMES)
    for kind in kinds.ALL:
        status = body["kinds"][kind.name]
        assert (status["count"], status["overdue_unheld"]) == (1, 1), kind.name
        assert status["policy_seconds"] == kind.retention.total_seconds(), kind.name
    assert body["failures"] == [f"{k}: 1 record(s) overdue and not held" for k in kinds.NAMES]


def test_purge_deletes_every_kind_and_lists_every_holdable_one(site):
    dry = _json(site, "purge", "--dry-run")
    assert {k: v["deleted"] for k, v in dry["kinds"].items()} == dict.fromkeys(kinds.NAMES, 1)
    listed = _json(site, "purge", "--dry-run", "--list")
    assert listed["listed"]["totals"] == dict.fromkeys(kinds.HOLDABLE, 1)
    table = site("purge", "--dry-run", "--list").stdout
    for name in kinds.HOLDABLE:
        kind = kinds.get(name)
        headers = [kind.noun, *(header for _, header in kind.listed), "expired"]
        assert f"{name} that would go: 1" in table
        assert any(line.split() == " ".join(headers).split() for line in table.splitlines())
    done = _json(site, "purge")
    assert {k: v["deleted"] for k, v in done["kinds"].items()} == dict.fromkeys(kinds.NAMES, 1)
    after = _json(site, "report")
    assert {k: s["count"] for k, s in after["kinds"].items()} == dict.fromkeys(kinds.NAMES, 0)


def test_a_hold_on_a_whole_kind_keeps_every_holdable_kind_and_no_other(site):
    window = ["--from", (NOW - 500 * D).isoformat(), "--to", NOW.isoformat()]
    for name in kinds.HOLDABLE:
        site("hold", "place", f"INC-{name}", "--reason", "incident", *window, "--kind", name)
    for name in set(kinds.NAMES) - set(kinds.HOLDABLE):
        refused = site("hold", "place", "INC-X", "--reason", "r", *window, "--kind", name, code=2)
        assert f"--kind: {name!r} is not a kind" in refused.stderr
    done = _json(site, "purge")
    for kind in kinds.ALL:
        counts = done["kinds"][kind.name]
        assert (counts["deleted"], counts["held"]) == ((0, 1) if kind.holdable else (1, 0))
    report = _json(site, "report")
    keeps = {h["case"]: h["keeps"] for h in report["holds"]}
    assert keeps == {
        f"INC-{name}": {k: int(k == name) for k in kinds.HOLDABLE} for name in kinds.HOLDABLE
    }


def test_subject_export_and_erasure_reach_every_kind_a_subject_can(site):
    assert set(REACHED_BY) == set(kinds.NAMES), "say here which subject reaches a new kind"
    exported = {}
    for option, value in {by for by in REACHED_BY.values() if by}:
        exported[option] = json.loads(site("subject", "export", option, value).stdout)
    for kind, reached in REACHED_BY.items():
        for found in exported.values():
            assert kind in found["records"] or kind in found, f"no key for {kind}"
        if reached:
            body = exported[reached[0]]
            rows = body["records"][kind] if kind in body["records"] else body[kind]
            assert len(rows) == 1, kind
    erased = "\n".join(
        site("subject", "erase", option, value, "--reason", "request 7", "--yes").stdout
        for option, value in {by for by in REACHED_BY.values() if by}
    )
    for kind, reached in REACHED_BY.items():
        if reached and kind not in KEPT_BY_ERASURE:
            assert f"{kind} 1" in erased, kind
    assert "kept: 1 data-subject request(s)" in erased
    left = _json(site, "report", code=1)["kinds"]  # what no subject reaches is still overdue
    assert {k for k, s in left.items() if s["count"]} == {
        k for k, by in REACHED_BY.items() if not by
    } | KEPT_BY_ERASURE


def test_the_web_api_takes_every_holdable_kind_as_a_scope(db_url):
    engine = db.make_engine(db_url)
    with db.session_scope(engine) as session:
        users.add(
            session, now=T0, actor="tests", name="sam", password=PASSWORD, roles=("security",)
        )
    app = create_app(
        Settings(database_url=db_url), clock=lambda: NOW, engine=engine, secret=b"k" * 32
    )
    client = TestClient(app, base_url="https://testserver")
    session = client.post("/api/session", json={"name": "sam", "password": PASSWORD})
    client.headers["X-CSRF-Token"] = session.json()["csrf_token"]
    hold = {"case": "INC-1", "reason": "r", "from": "2026-06-01T00:00Z", "to": "2026-06-02T00:00Z"}
    placed = client.post("/api/holds", json=hold | {"scopes": [{"kind": k} for k in kinds.NAMES]})
    assert placed.status_code == 400, placed.text  # a kind no hold can keep is refused
    scopes = [{"kind": k} for k in kinds.HOLDABLE]
    placed = client.post("/api/holds", json=hold | {"scopes": scopes})
    assert placed.status_code == 201, placed.text
    assert [s["kind"] for s in placed.json()["scopes"]] == list(kinds.HOLDABLE)
    engine.dispose()


def test_declarations_agree_with_the_tables_and_the_roles():
    order = [kind.name for kind in kinds.DELETE_ORDER]
    assert sorted(order) == sorted(kinds.NAMES)
    tables = {kind.table.name: kind.name for kind in kinds.ALL}
    for kind in kinds.ALL:
        assert set(kind.seen_by) <= set(ROLES), kind.name
        assert set(kind.found_through) <= set(kinds.NAMES), kind.name
        walked = [list(index.columns) for index in kind.table.indexes]
        # A kind whose rows belong to no site (the requests) is walked by its clock alone.
        walk = [kind.table.c.site_id] if kind.per_site else []
        assert [*walk, kind.clock_column] in walked, (
            f"{kind.name}: purge and report walk each site's clock index"
        )
        assert all(column in kind.table.c for column, _ in kind.listed), kind.name
        assert kind.order_by in kind.table.c, kind.name
        # A row is deleted before the rows it points at (else ON DELETE rewrites it first).
        for key in kind.table.foreign_keys:
            assert isinstance(key, ForeignKey)
            target = tables.get(key.column.table.name)
            if target is not None:
                assert order.index(kind.name) < order.index(target), (kind.name, target)


def _kind_lists(path: Path) -> list[int]:
    """Lines of `path` with a literal tuple, list, set or dict naming four kinds or more."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if not isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict) or items is None:
            continue
        named = {i.value for i in items if isinstance(i, ast.Constant) and i.value in kinds.NAMES}
        if len(named) >= 4:
            found.append(node.lineno)
    return found


def test_no_module_of_the_product_lists_the_kinds_itself():
    top = Path(__file__).resolve().parent.parent
    registry = top / "facility" / "store" / "kinds.py"
    offenders = {
        str(path.relative_to(top)): lines
        for part in ("facility", "connectors", "scheduler")
        for path in sorted((top / part).rglob("*.py"))
        if "migrations" not in path.parts and path != registry
        for lines in [_kind_lists(path)]
        if lines
    }
    assert offenders == {}, "read facility.store.kinds instead"
