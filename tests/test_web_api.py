"""The JSON API under /api/: every endpoint, its bad input (400, nothing stored), roles, OpenAPI.

The helpers shared with the other web tests are in tests/webapp.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from facility.store import db
from facility.store.models import Hold
from tests.webapp import (
    PASSWORD,
    add_user,
    api_client,
    audit_actions,
    form_token,
    make_app,
    page_client,
    stored,
)

pytestmark = pytest.mark.usefixtures("fast_hashes")


@pytest.fixture
def app(db_url, engine, clock):
    add_user(engine, "rita", "reception")
    add_user(engine, "sam", "security")
    add_user(engine, "pia", "privacy")
    return make_app(db_url, engine, clock)


@pytest.fixture
def desk(app) -> TestClient:
    return api_client(app, "rita")


@pytest.fixture
def guard(app) -> TestClient:
    return api_client(app, "sam")


def refused(client: TestClient, engine, method: str, path: str, body, message: str, status=400):
    """The request is refused with `status` and a message containing `message`; nothing stored."""
    before = stored(engine)
    if body is None:
        response = client.request(method, path, headers={"Content-Type": "application/json"})
    elif isinstance(body, str | bytes):
        response = client.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = client.request(method, path, json=body)
    assert response.status_code == status, f"{method} {path} {body}: {response.text}"
    assert message in response.json()["error"], response.json()
    assert stored(engine) == before, f"{method} {path} {body} stored something"


# --- reception -----------------------------------------------------------------------------------


def test_reception_endpoints(desk, clock):
    created = desk.post(
        "/api/visits",
        json={"name": "Ada Lovelace", "company": "ACME", "host": "Bob", "badge": "B1"},
    )
    assert created.status_code == 201
    ada = created.json()
    assert ada == {
        "visit_id": ada["visit_id"],
        "name": "Ada Lovelace",
        "company": "ACME",
        "host": "Bob",
        "signed_in_at": "2026-06-01T09:00:00Z",
        "signed_out_at": None,
        "badge": "B1",
    }
    grace = desk.post("/api/visits", json={"name": "Grace", "at": "2026-06-01T10:30"}).json()
    assert grace["signed_in_at"] == "2026-06-01T08:30:00Z"  # site time (Amsterdam, UTC+2)
    issued = desk.post("/api/badges", json={"badge": "B2", "visit_id": grace["visit_id"]})
    assert issued.status_code == 201 and issued.json()["returned_at"] is None
    clock.advance(minutes=30)
    onsite = desk.get("/api/onsite").json()
    assert onsite["count"] == 2 and onsite["generated_at"] == "2026-06-01T09:30:00Z"
    assert [p["badge"] for p in onsite["people"]] == ["B2", "B1"]
    returned = desk.post("/api/badges/B2/return", json={})
    assert returned.json()["returned_at"] == "2026-06-01T09:30:00Z"
    out = desk.post(f"/api/visits/{ada['visit_id']}/sign-out", json={})
    assert out.status_code == 200 and out.json()["signed_out_at"] == "2026-06-01T09:30:00Z"
    kept = desk.post(f"/api/visits/{grace['visit_id']}/sign-out", json={"badge_kept": True})
    assert kept.status_code == 200
    today = desk.get("/api/visits/today").json()
    assert [v["name"] for v in today] == ["Ada Lovelace", "Grace"]  # newest sign-in first
    assert all(v["signed_out_at"] for v in today)
    assert desk.get("/api/onsite").json()["count"] == 0
    # B1 came back with Ada's sign-out, so it can go out again.
    again = desk.post("/api/visits", json={"name": "Linus", "badge": "B1"})
    assert again.status_code == 201


def test_reception_bad_input_is_400_and_stores_nothing(desk, engine):
    ada = desk.post("/api/visits", json={"name": "Ada", "badge": "B1"}).json()["visit_id"]
    cases = [
        ("POST", "/api/visits", {}, "name: required"),
        ("POST", "/api/visits", {"name": "   "}, "a visitor needs a name"),
        ("POST", "/api/visits", {"name": 42}, "name: "),
        ("POST", "/api/visits", {"name": "Bo", "colour": "red"}, "colour: not a known field"),
        ("POST", "/api/visits", {"name": "Bo", "badge": "B1"}, "already out"),
        ("POST", "/api/visits", {"name": "Bo", "badge": "B 7"}, "not a badge number"),
        ("POST", "/api/visits", {"name": "Bo", "at": "2026-06-02T09:00Z"}, "in the future"),
        ("POST", "/api/visits", {"name": "Bo", "at": "yesterday"}, "not an ISO 8601 time"),
        ("POST", "/api/visits", {"name": "x" * 201}, "longer than 200"),
        ("POST", "/api/visits", "{not json", "not valid JSON"),
        ("POST", "/api/visits", [1, 2], "body: "),
        ("POST", "/api/visits/999/sign-out", {}, "there is no visit 999"),
        ("POST", "/api/visits/abc/sign-out", {}, "visit_id: "),
        ("POST", f"/api/visits/{ada}/sign-out", {"at": "2026-06-01T08:00Z"}, "before the sign-in"),
        ("POST", "/api/badges", {"badge": "B2"}, "visit_id: required"),
        ("POST", "/api/badges", {"badge": "B2", "visit_id": 999}, "there is no visit 999"),
        ("POST", "/api/badges", {"badge": "B1", "visit_id": ada}, "already out"),
        ("POST", "/api/badges/B9/return", {}, "badge B9 is not out"),
    ]
    for method, path, body, message in cases:
        refused(desk, engine, method, path, body, message)
    desk.post(f"/api/visits/{ada}/sign-out", json={})
    refused(desk, engine, "POST", f"/api/visits/{ada}/sign-out", {}, "already signed out")
    refused(desk, engine, "POST", "/api/badges", {"badge": "B3", "visit_id": ada}, "signed out")


# --- roll call -----------------------------------------------------------------------------------


def test_roll_call_endpoints(desk, guard, clock):
    for name in ("Grace", "Ada"):
        desk.post("/api/visits", json={"name": name})
    started = desk.post("/api/musters", json={})
    assert started.status_code == 201
    call = started.json()
    assert call["counts"] == {"safe": 0, "missing": 0, "unknown": 2, "left": 0, "total": 2}
    assert [e["name"] for e in call["entries"]] == ["Ada", "Grace"]
    assert call["started_by"] == "web:rita"
    ada, grace = call["entries"]
    clock.advance(minutes=4)
    marked = guard.post(f"/api/musters/{call['id']}/entries/{ada['id']}", json={"status": "safe"})
    assert marked.json() == {
        "id": ada["id"],
        "visit_id": ada["visit_id"],
        "name": "Ada",
        "status": "safe",
        "marked_at": "2026-06-01T09:04:00Z",
        "marked_by": "web:sam",
    }
    desk.post(f"/api/musters/{call['id']}/entries/{grace['id']}", json={"status": "missing"})
    current = desk.get(f"/api/musters/{call['id']}").json()
    assert current["counts"] == {"safe": 1, "missing": 1, "unknown": 0, "left": 0, "total": 2}
    closed = desk.post(f"/api/musters/{call['id']}/close", json={}).json()
    assert closed["closed_by"] == "web:rita" and closed["closed_at"] == "2026-06-01T09:04:00Z"
    listed = guard.get("/api/musters").json()
    assert [(m["id"], m["counts"]["safe"]) for m in listed] == [(call["id"], 1)]


def test_roll_call_bad_input_is_400_and_stores_nothing(desk, engine):
    desk.post("/api/visits", json={"name": "Ada"})
    assert desk.get("/api/musters/7").status_code == 404
    refused(desk, engine, "POST", "/api/musters/7/close", {}, "no roll call 7")
    call = desk.post("/api/musters", json={}).json()
    entry = call["entries"][0]["id"]
    mark = f"/api/musters/{call['id']}/entries"
    cases = [
        ("POST", "/api/musters", {}, "is open since"),
        ("POST", f"{mark}/{entry}", {"status": "fine"}, "status: "),
        ("POST", f"{mark}/{entry}", {}, "status: required"),
        ("POST", f"{mark}/9999", {"status": "safe"}, "has no entry 9999"),
        ("POST", f"/api/musters/7/entries/{entry}", {"status": "safe"}, "no roll call 7"),
    ]
    for method, path, body, message in cases:
        refused(desk, engine, method, path, body, message)
    desk.post(f"/api/musters/{call['id']}/close", json={})
    refused(desk, engine, "POST", f"{mark}/{entry}", {"status": "safe"}, "is a record now")
    refused(desk, engine, "POST", f"/api/musters/{call['id']}/close", {}, "is a record now")
    assert desk.get("/api/musters?limit=0").status_code == 400


# --- holds ---------------------------------------------------------------------------------------

HOLD = {
    "case": "INC-2026-0042",
    "reason": "theft in the lab",
    "from": "2026-05-31T08:00Z",
    "to": "2026-06-01T08:00Z",
    "scopes": [
        {"kind": "camera", "selector": "lab-1"},
        {"kind": "visits", "selector": "Ada Lovelace"},
        {"kind": "wifi", "selector": "AA-BB-CC-DD-EE-FF"},
        {"kind": "door_events", "selector": None},
    ],
}


def test_hold_endpoints(app, guard, clock):
    placed = guard.post("/api/holds", json=HOLD | {"review_by": "2026-07-01"})
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert hold["from"] == "2026-05-31T08:00:00Z" and hold["status"] == "active"
    assert hold["placed_by"] == "web:sam"
    assert {"kind": "wifi", "selector": "aa:bb:cc:dd:ee:ff"} in hold["scopes"]
    assert {"kind": "visits", "selector": "ada lovelace"} in hold["scopes"]
    assert {"kind": "door_events", "selector": None} in hold["scopes"]
    case = "INC-2026/7#b"  # a case reference may hold / and #
    guard.post("/api/holds", json=HOLD | {"case": case, "scopes": [{"kind": "badges"}]})
    assert guard.get("/api/holds/INC-2026%2F7%23b").json()["case"] == case
    assert guard.get("/api/holds/INC-2026/7%23b").json()["case"] == case
    extended = guard.post(
        "/api/holds/INC-2026-0042/extend",
        json={"to": "2026-06-01T10:00Z", "scopes": [{"kind": "badges", "selector": "B7"}]},
    ).json()
    assert extended["to"] == "2026-06-01T10:00:00Z"
    assert {"kind": "badges", "selector": "B7"} in extended["scopes"]
    clock.advance(hours=1)
    released = guard.post("/api/holds/INC-2026-0042/release", json={"reason": "case closed"})
    assert released.json()["status"] == "released"
    assert [h["case"] for h in guard.get("/api/holds").json()] == ["INC-2026-0042", case]
    clock.advance(days=2)  # past the release grace, and past the session's lifetime
    assert guard.get("/api/holds").status_code == 401
    guard = api_client(app, "sam")
    assert [h["case"] for h in guard.get("/api/holds").json()] == [case]
    assert len(guard.get("/api/holds?all=true").json()) == 2
    assert guard.get("/api/holds/INC-404").status_code == 404


def test_hold_bad_input_is_400_and_stores_nothing(guard, engine):
    guard.post("/api/holds", json=HOLD)
    cases = [
        ({**HOLD, "case": "INC-1", "scopes": []}, "scopes: "),
        ({**HOLD, "case": "bad case!"}, "not a case reference"),
        ({**HOLD, "case": "INC-1", "to": "2026-05-01T00:00Z"}, "is before --from"),
        ({**HOLD, "case": "INC-1", "from": "soon"}, "from: 'soon' is not an ISO 8601 time"),
        ({**HOLD, "case": "INC-1", "reason": " "}, "give the reason"),
        ({**HOLD, "case": "INC-2026-0042"}, "already exists"),
        ({**HOLD, "case": "INC-1", "scopes": [{"kind": "shoes"}]}, "scopes.0.kind: "),
        ({**HOLD, "case": "INC-1", "scopes": [{"kind": "wifi", "selector": "nope"}]}, "MAC"),
        ({k: v for k, v in HOLD.items() if k != "to"} | {"case": "INC-1"}, "to: required"),
    ]
    for body, message in cases:
        refused(guard, engine, "POST", "/api/holds", body, message)
    extend = "/api/holds/INC-2026-0042/extend"
    refused(guard, engine, "POST", extend, {"to": "2026-01-01T00:00Z"}, "can only grow")
    refused(guard, engine, "POST", extend, {}, "give --to and/or scopes")
    refused(guard, engine, "POST", "/api/holds/INC-404/extend", {"to": HOLD["to"]}, "no hold")
    release = "/api/holds/INC-2026-0042/release"
    refused(guard, engine, "POST", release, {}, "reason: required")
    refused(guard, engine, "POST", release, {"reason": ""}, "give the reason")
    guard.post(release, json={"reason": "done"})
    refused(guard, engine, "POST", release, {"reason": "again"}, "already released")


# --- who may call what ---------------------------------------------------------------------------


def test_roles_decide_and_refusals_are_audited(app, desk, guard, engine):
    assert desk.get("/api/me").json()["roles"] == ["reception"]
    refused(desk, engine, "GET", "/api/holds", None, "needs role security", status=403)
    refused(desk, engine, "POST", "/api/holds", HOLD, "needs role security", status=403)
    refused(guard, engine, "POST", "/api/visits", {"name": "Ada"}, "needs role reception", 403)
    privacy = api_client(app, "pia")
    refused(privacy, engine, "GET", "/api/onsite", None, "needs role reception or security", 403)
    refusals = [(actor, d) for actor, action, d in audit_actions(engine) if action == "refused"]
    assert refusals == [
        ("web:rita", {"command": "GET /api/holds", "needs": ["security"]}),
        ("web:rita", {"command": "POST /api/holds", "needs": ["security"]}),
        ("web:sam", {"command": "POST /api/visits", "needs": ["reception"]}),
        ("web:pia", {"command": "GET /api/onsite", "needs": ["reception", "security"]}),
    ]


def test_authentication_basic_session_token_and_json_only(app, engine):
    anonymous = TestClient(app, base_url="https://testserver")
    assert anonymous.get("/api/onsite").status_code == 401
    assert anonymous.get("/api/onsite", auth=("rita", "wrong")).status_code == 401
    assert anonymous.get("/api/onsite", auth=("rita", PASSWORD)).status_code == 200
    signed = anonymous.post("/api/visits", json={"name": "Ada"}, auth=("rita", PASSWORD))
    assert signed.status_code == 201
    # Write requests must be JSON, even with Basic credentials (a form cannot be forged to it).
    form = anonymous.post("/api/musters", data={"x": "1"}, auth=("rita", PASSWORD))
    assert form.status_code == 415
    bad_login = anonymous.post("/api/session", json={"name": "rita", "password": "nope"})
    assert bad_login.status_code == 401 and "wrong name or password" in bad_login.json()["error"]
    client = api_client(app, "rita")
    token = client.headers.pop("X-CSRF-Token")
    refused(client, engine, "POST", "/api/musters", {}, "needs the X-CSRF-Token header", 403)
    client.headers["X-CSRF-Token"] = "forged"
    refused(client, engine, "POST", "/api/musters", {}, "needs the X-CSRF-Token header", 403)
    client.headers["X-CSRF-Token"] = token
    assert client.get("/api/me").json() == {
        "name": "rita",
        "roles": ["reception"],
        "site": "main",
        "csrf_token": token,
    }
    assert client.delete("/api/session").status_code == 204
    assert client.get("/api/me").status_code == 401


def test_openapi_document_lists_every_endpoint(app):
    document = TestClient(app).get("/api/openapi.json").json()
    assert document["info"]["title"] == "facility"
    paths = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert paths == {
        ("POST", "/api/session"),
        ("DELETE", "/api/session"),
        ("GET", "/api/me"),
        ("POST", "/api/visits"),
        ("GET", "/api/visits/today"),
        ("POST", "/api/visits/{visit_id}/sign-out"),
        ("POST", "/api/badges"),
        ("POST", "/api/badges/{badge}/return"),
        ("GET", "/api/onsite"),
        ("GET", "/api/musters"),
        ("POST", "/api/musters"),
        ("GET", "/api/musters/{muster_id}"),
        ("POST", "/api/musters/{muster_id}/entries/{entry_id}"),
        ("POST", "/api/musters/{muster_id}/close"),
        ("GET", "/api/holds"),
        ("POST", "/api/holds"),
        ("GET", "/api/holds/{case}"),
        ("GET", "/api/holds/{case}/records"),
        ("POST", "/api/holds/{case}/extend"),
        ("POST", "/api/holds/{case}/release"),
        ("GET", "/api/report"),
    }
    assert "HTTPBasic" in document["components"]["securitySchemes"]
    place = document["paths"]["/api/holds"]["post"]
    assert set(place["responses"]) >= {"201", "400", "401", "403"}
    # No page of the web interface is in the API document, and no CDN-loaded viewer is served.
    assert not any(path.startswith(("/reception", "/login")) for _, path in paths)
    assert TestClient(app).get("/docs").status_code == 404


def test_report_for_the_privacy_officer(app, engine):
    privacy = api_client(app, "pia")
    built = privacy.get("/api/report").json()
    assert set(built) >= {"generated_at", "kinds", "holds", "purges", "audit"}
    assert built["generated_at"] == "2026-06-01T09:00:00Z"
    refused(api_client(app, "rita"), engine, "GET", "/api/report", None, "needs role privacy", 403)


# --- the pages' forms, without a browser ---------------------------------------------------------


def test_hold_forms_keep_what_was_typed_and_say_why(app, engine):
    client, token = page_client(app, "sam")
    typed = {
        "csrf_token": token,
        "case": "INC-7",
        "reason": "tailgating at the lobby",
        "from": "2026-06-01T08:00",
        "to": "2026-06-01T10:00",
    }
    failed = client.post("/holds/place", data=typed)
    assert failed.status_code == 400 and "give at least one of" in failed.text
    assert 'value="tailgating at the lobby"' in failed.text and stored(engine)["holds"] == 0
    bad_time = client.post("/holds/place", data=typed | {"to": "noon", "doors": "lobby"})
    assert bad_time.status_code == 400 and "not an ISO 8601 time" in bad_time.text
    placed = client.post("/holds/place", data=typed | {"doors": "lobby, lab-2", "kinds": "wifi"})
    assert "hold INC-7 placed with 3 scope(s)" in placed.text
    current_end = re.search(r'name="to" value="([^"]+)"', placed.text).group(1)
    extended = client.post(
        "/holds/extend",
        data={"csrf_token": token, "case": "INC-7", "to": current_end, "badges": "B9"},
    )
    assert "1 scope(s) added" in extended.text
    unchanged = client.post("/holds/extend", data={"csrf_token": token, "case": "INC-7"})
    assert "give --to and/or scopes" in unchanged.text
    no_reason = client.post("/holds/release", data={"csrf_token": token, "case": "INC-7"})
    assert "give the reason" in no_reason.text
    released = client.post(
        "/holds/release", data={"csrf_token": token, "case": "INC-7", "reason": "solved"}
    )
    assert "keeps protecting until 2026-06-02 11:00" in released.text
    with db.session_scope(engine) as session:
        hold = session.execute(select(Hold)).scalar_one()
        assert (hold.placed_by, hold.released_by) == ("web:sam", "web:sam")
        assert hold.window_from == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # site time in
    assert "INC-7" in client.get("/holds?all=1").text


def test_a_release_is_taken_back_from_the_holds_page_while_the_hold_still_protects(
    app, engine, clock
):
    client, token = page_client(app, "sam")
    case = {"csrf_token": token, "case": "INC-8"}
    window = {"from": "2026-06-01T08:00", "to": "2026-06-01T10:00", "doors": "lobby"}
    client.post("/holds/place", data=case | {"reason": "theft"} | window)
    for _ in range(2):
        client.post("/holds/release", data=case | {"reason": "solved, wrongly"})
        assert "Take the release back" in client.get("/holds").text
        taken_back = client.post("/holds/reinstate", data=case)
        assert "hold INC-8 protects again" in taken_back.text
        assert "Take the release back" not in taken_back.text
        with db.session_scope(engine) as session:
            assert session.execute(select(Hold)).scalar_one().released_at is None
    client.post("/holds/release", data=case | {"reason": "solved"})
    clock.advance(hours=25)  # past the release grace (24 h): its records may be purged since
    client, token = page_client(app, "sam")  # the session ended meanwhile
    case["csrf_token"] = token
    assert "Take the release back" not in client.get("/holds?all=1").text
    late = client.post("/holds/reinstate", data=case)
    assert "cannot be reinstated" in late.text
    with db.session_scope(engine) as session:
        assert session.execute(select(Hold)).scalar_one().released_at is not None
    unknown = client.post("/holds/reinstate", data=case | {"case": "INC-404"}).text
    assert "hold INC-404: " in unknown and "no hold" in unknown


def test_roll_call_pages_say_what_went_wrong(app, engine):
    client, token = page_client(app, "rita")
    start = client.get("/muster").text
    assert "Start roll call" in start and "<strong>0</strong> people" in start
    client.post("/reception/sign-in", data={"csrf_token": token, "name": "Ada"})
    assert "started: 1 person" in client.post("/muster/start", data={"csrf_token": token}).text
    again = client.post("/muster/start", data={"csrf_token": token})
    assert "is open since" in again.text
    bad = client.post("/muster/1/entries/1", data={"csrf_token": token, "status": "fine"})
    assert "not one of" in bad.text
    marked = client.post(
        "/muster/1/entries/1",
        data={"csrf_token": token, "status": "safe", "show": "open", "next": ""},
        follow_redirects=False,
    )
    assert marked.headers["location"] == "/muster/1?show=open&q="  # Ada left the view
    assert client.get("/muster/99").status_code == 400
    closed = client.post("/muster/1/close", data={"csrf_token": token})
    assert "1 safe, 0 missing, 0 not checked" in closed.text
    assert "Earlier roll calls" in client.get("/muster").text


def test_report_pages(app):
    client, _ = page_client(app, "pia")
    assert client.get("/", follow_redirects=False).headers["location"] == "/report"
    summary = client.get("/report").text
    assert "Open the printable report" in summary
    printable = client.get("/report/print")
    assert printable.status_code == 200 and "<html" in printable.text
    assert printable.headers["content-security-policy"].startswith("default-src 'none'")


def test_reception_page_lists_today_and_who_is_still_in_from_before(app, desk):
    desk.post("/api/visits", json={"name": "Night Shift", "at": "2026-05-31T15:00"})
    desk.post("/api/visits", json={"name": "Ada", "badge": "B1"})
    client, _ = page_client(app, "rita")
    html = client.get("/reception").text
    assert "31 May 15:00" in html and ">11:00<" in html  # site time, Europe/Amsterdam
    assert html.index("Ada") < html.index("Night Shift")  # newest first
    assert 'aria-label="sign out Night Shift"' in html


# --- every route obeys its declared action; our errors answer by kind -----------------------------


def test_every_guarded_route_refuses_an_account_without_the_role(app, engine):
    """Walks the app: each route whose action needs a role answers 403 to an account without it."""
    from facility.accounts import permissions
    from facility.web.actions import action_of, routes

    accounts = {"reception": "rita", "security": "sam", "privacy": "pia"}
    pages = {name: page_client(app, name) for name in accounts.values()}
    expected = []
    for route in routes(app):
        name = action_of(route)
        action = permissions.declared(name or "")
        if action.public:
            continue
        refused = next(accounts[role] for role in accounts if role not in action.roles)
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            if path.startswith("/api/"):
                response = TestClient(app, base_url="https://testserver").request(
                    method, path, content=b"{}", auth=(refused, PASSWORD),
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
            else:
                client, token = pages[refused]
                form = {"csrf_token": token} if method == "POST" else None
                response = client.request(method, path, data=form)
            wanted = f"needs role {' or '.join(action.roles)}"
            assert response.status_code == 403, f"{method} {route.path}: {response.text}"
            assert wanted in response.text, f"{method} {route.path}: {response.text}"
            expected.append((f"web:{refused}", f"{method} {route.path}", list(action.roles)))
    refusals = [
        (a, d["command"], d["needs"]) for a, act, d in audit_actions(engine) if act == "refused"
    ]
    assert sorted(refusals) == sorted(expected) and len(expected) > 30


def test_core_errors_answer_by_kind_as_the_api_document_says(db_url, engine, clock):
    """Bad input 400, a missing role 403, a hold 409, the database away 503: pages and API alike."""
    from facility.errors import HeldError
    from facility.web.app import STATUS

    add_user(engine, "rita", "reception")
    app = make_app(db_url, engine, clock)
    described = TestClient(app).get("/api/openapi.json").json()["info"]["description"]
    for _kind, status, _title in STATUS:
        assert f"{status} (" in described, f"{status} is not in the API's description"

    desk = api_client(app, "rita")
    assert desk.post("/api/visits", json={"name": " "}).status_code == 400
    assert desk.get("/api/holds").status_code == 403
    page, _ = page_client(app, "rita")
    assert page.get("/holds").status_code == 403

    # No route removes records yet, so no request can meet a hold: this one stands in for one.
    @app.get("/api/held")
    def held() -> None:
        raise HeldError("subject erase: 1 record(s) kept by hold(s) INC-1", ["INC-1"])

    kept = TestClient(app).get("/api/held")
    assert kept.status_code == 409 and "INC-1" in kept.json()["error"]

    # A database that cannot be reached, for real: nothing listens on port 1.
    away = make_app(
        "postgresql+psycopg://facility@127.0.0.1:1/none",
        db.make_engine("postgresql+psycopg://facility@127.0.0.1:1/none"),
        clock,
    )
    client = TestClient(away, base_url="https://testserver")
    outage = client.get("/api/onsite", auth=("rita", PASSWORD))
    assert outage.status_code == 503 and "Connection refused" in outage.json()["error"]
    token = form_token(client.get("/login").text)
    login_page = client.post("/login", data={"csrf_token": token, "name": "rita", "password": "x"})
    assert login_page.status_code == 503 and "Connection refused" in login_page.text
