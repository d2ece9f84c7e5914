"""The web server as an attacker and a careless client meet it: the real `facility web` over HTTP.

Refused requests cannot flood the audit trail; wrong passwords cannot lock a real user out from
elsewhere nor tell which accounts exist; a session ends on the server when it should, so its old
cookie is worth nothing; huge bodies are refused before they are read; hostile ids, times and text
get a 400 naming the field, and even an unexpected failure gets our error page with its headers.
"""

from __future__ import annotations

import json
import re
import select
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from sqlalchemy import func
from sqlmodel import select as sql_select

from facility.store import db
from facility.store.models import AuditEntry, Hold, Visit, WebSession
from facility.web.limits import MAX_BODY
from facility.web.sessions import COOKIE
from tests.conftest import Cli
from tests.webserver import PASSWORD, Server, add_accounts, login, running

MB = 1024 * 1024
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")
HOLD = {
    "case": "INC-1",
    "reason": "stolen laptop",
    "from": "2026-05-01T08:00",
    "to": "2026-05-01T18:00",
    "scopes": [{"kind": "door_events", "selector": "lab-2"}],
}


@pytest.fixture
def server(db_url, tmp_path) -> Iterator[Server]:
    """`facility web` on a fresh database of each engine, with a receptionist and a guard."""
    add_accounts(db_url, {"rita": ["reception"], "sam": ["security"]})
    with running(tmp_path, db_url) as running_server:
        yield running_server


@pytest.fixture
def sqlite_server(sqlite_template, tmp_path) -> Iterator[Server]:
    """The same on SQLite only, for what concerns the server process rather than the engine."""
    import shutil

    path = tmp_path / "facility.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    add_accounts(url, {"rita": ["reception"], "sam": ["security"]})
    with running(tmp_path, url) as running_server:
        yield running_server


def _trail(server: Server) -> list[AuditEntry]:
    engine = server.engine()
    with db.session_scope(engine) as session:
        entries = list(session.exec(sql_select(AuditEntry).order_by(AuditEntry.seq)).all())
    engine.dispose()
    return entries


def _secured(response: httpx.Response) -> None:
    missing = [h for h in SECURITY_HEADERS if h not in response.headers]
    assert not missing, f"{response.request.url} {response.status_code} lacks {missing}"


# --- finding 4: refusals cannot flood the trail --------------------------------------------------


def test_a_flood_of_refused_requests_adds_two_small_entries(sqlite_server):
    server = sqlite_server
    desk = server.client()
    assert login(desk, "rita").status_code == 200
    case = "X" * 1500  # long, but under the address limit: it is refused for want of a role
    before = len(_trail(server))
    sent, deadline = 0, time.monotonic() + 4
    while time.monotonic() < deadline:
        refused = desk.get(f"/api/holds/{case}")
        assert refused.status_code == 403, refused.text
        sent += 1
    # An address longer than the limit is refused before anything else: not audited at all.
    assert desk.get(f"/api/holds/{'Y' * 6000}").status_code == 414
    during = _trail(server)[before:]
    assert [(e.actor, e.action, json.loads(e.details)) for e in during] == [
        ("web:rita", "refused", {"command": "GET /api/holds/{case:path}", "needs": ["security"]})
    ]
    server.stop()  # SIGTERM: the count of the repeats is written on the way out
    assert "Application shutdown complete" in server.output()
    after = _trail(server)[before:]
    assert len(after) == 2 and all(case not in e.details for e in after)
    summary = json.loads(after[1].details)
    assert after[1].action == "refused.repeated"
    assert summary["command"] == "GET /api/holds/{case:path}" and summary["count"] == sent - 1
    assert sum(len(e.details) for e in after) < 1024
    print(f"\n{sent} refused requests in 4 s: {len(after)} audit entries")


# --- finding 7: wrong passwords ------------------------------------------------------------------


def _attempt(client: httpx.Client, name: str, password: str) -> tuple[int, str, float]:
    started = time.monotonic()
    response = client.post("/api/session", json={"name": name, "password": password})
    elapsed = time.monotonic() - started
    # The time of day in a lock message is the only thing allowed to differ.
    error = re.sub(r"\d\d:\d\d(:\d\d)?", "HH:MM", response.json()["error"])
    return response.status_code, error, elapsed


def test_a_stranger_cannot_lock_a_real_user_out_nor_learn_which_names_exist(
    sqlite_server, tmp_path
):
    server = sqlite_server
    # Rita's hash at the real cost (the CLI's), like the one checked for a name without account.
    Cli(server.db_url, tmp_path)("user", "passwd", "rita", input=f"{PASSWORD}\n")
    answers, seconds = {}, {}
    for name, address in (("rita", "203.0.113.9"), ("nobody", "203.0.113.10")):
        stranger = server.client(headers={"X-Forwarded-For": address})
        tries = [_attempt(stranger, name, f"guess {n}") for n in range(7)]
        answers[name] = [(status, message) for status, message, _ in tries]
        seconds[name] = statistics.median(elapsed for _, _, elapsed in tries[:4])
        # Locked at that address, even the right password is refused there.
        assert _attempt(stranger, name, PASSWORD)[:2] == answers[name][-1]
    assert answers["rita"] == answers["nobody"]
    assert [status for status, _ in answers["rita"]] == [401] * 7
    assert [m for _, m in answers["rita"][:4]] == ["wrong name or password"] * 4
    assert "5 wrong passwords in a row for this name from this address" in answers["rita"][4][1]
    # Checking an unknown name costs what checking a known one does (a real argon2 hash).
    assert 0.5 < seconds["nobody"] / seconds["rita"] < 2, seconds
    # Rita at her own desk is not locked out.
    desk = server.client(headers={"X-Forwarded-For": "192.0.2.10"})
    assert login(desk, "rita").status_code == 200
    assert desk.get("/api/me").json()["name"] == "rita"
    # The login form answers the same way.
    form = server.client(headers={"X-Forwarded-For": "203.0.113.9"})
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.get("/login").text).group(1)
    page = form.post("/login", data={"csrf_token": token, "name": "rita", "password": PASSWORD})
    assert page.status_code == 401 and "wrong passwords in a row" in page.text
    _secured(page)
    # The trail names the account that was locked, never the name without an account.
    locks = [e for e in _trail(server) if e.action.startswith("user.locked")]
    assert [json.loads(e.details)["user"] for e in locks] == ["rita"]


def test_an_address_that_guesses_too_fast_waits(sqlite_server):
    server = sqlite_server
    noisy = server.client(headers={"X-Forwarded-For": "198.51.100.4"})
    for n in range(10):  # the default `web.login_failures_per_minute`, each for another name
        assert _attempt(noisy, f"guess{n}", "wrong password")[0] == 401
    started = time.monotonic()
    held = noisy.post("/api/session", json={"name": "rita", "password": PASSWORD})
    assert held.status_code == 429 and "too many wrong passwords from this address" in held.text
    assert 0 < int(held.headers["retry-after"]) <= 61
    assert time.monotonic() - started < 0.5  # answered without checking a password
    _secured(held)
    basic = noisy.get("/api/me", auth=("rita", PASSWORD))
    assert basic.status_code == 429
    assert (
        login(server.client(headers={"X-Forwarded-For": "198.51.100.5"}), "rita").status_code == 200
    )


# --- finding 8: sessions live on the server ------------------------------------------------------


def _replayed(server: Server, cookie: str) -> tuple[int, int]:
    """What an old cookie gets: the API's status, and the page's (a redirect to log in)."""
    stale = server.client()
    stale.cookies.set(COOKIE, cookie, domain=urlsplit(server.url).hostname)
    page = stale.get("/reception")
    if page.status_code == 303:
        assert page.headers["location"].startswith("/login")
    return stale.get("/api/me").status_code, page.status_code


def _stored_sessions(server: Server) -> list[WebSession]:
    engine = server.engine()
    with db.session_scope(engine) as session:
        rows = list(session.exec(sql_select(WebSession)).all())
    engine.dispose()
    return rows


def test_logout_password_role_change_and_revoke_end_the_session(server, tmp_path):
    cli = Cli(server.db_url, tmp_path)
    password = PASSWORD

    def log_out_form(client: httpx.Client) -> None:
        token = client.headers["X-CSRF-Token"]
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303

    def change_password(client: httpx.Client) -> None:
        nonlocal password
        password = f"new password {len(password)}"
        cli("user", "passwd", "rita", input=f"{password}\n")

    endings = {
        "logout form": log_out_form,
        "DELETE /api/session": lambda c: c.delete("/api/session").raise_for_status(),
        "user passwd": change_password,
        "user roles": lambda c: cli("user", "roles", "rita", "--role", "reception"),
        "user revoke": lambda c: cli("user", "revoke", "rita"),
    }
    for how, end in endings.items():
        client = server.client(headers={"X-Forwarded-For": "10.1.1.1"})
        assert login(client, "rita", password).status_code == 200, how
        cookie = client.cookies[COOKIE]
        assert _replayed(server, cookie) == (200, 200), how
        end(client)
        assert _replayed(server, cookie) == (401, 303), how
        assert _stored_sessions(server) == [], how
    # `facility user sessions` lists who is signed in, from where.
    for address in ("10.2.2.1", "10.2.2.2"):
        client = server.client(headers={"X-Forwarded-For": address})
        assert login(client, "rita", password).status_code == 200
    assert login(server.client(headers={"X-Forwarded-For": "10.2.2.3"}), "sam").status_code == 200
    listed = json.loads(cli("user", "sessions", "--json").stdout)
    assert [(s["account"], s["address"]) for s in listed] == [
        ("rita", "10.2.2.1"),
        ("rita", "10.2.2.2"),
        ("sam", "10.2.2.3"),
    ]
    table = cli("user", "sessions", "sam").stdout
    assert "10.2.2.3" in table and "10.2.2.1" not in table


# --- finding 9: request bodies -------------------------------------------------------------------


def _post_huge(
    server: Server, path: str, *, chunked: bool, total: int = 200 * MB
) -> tuple[int, int, str]:
    """POST `total` bytes of JSON as fast as the server takes them: its status, bytes sent, and
    the answer (head and body)."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{framing}"
    data = (b"[" + b"1," * (32 * 1024 - 1) + b"1")[: min(64 * 1024, total)]  # 64 kB
    piece = f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n")
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server answered: it will not read the rest
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(data)
        answer = b""
        try:
            while chunk := sock.recv(65536):  # the server closes after refusing
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return status, sent, answer.decode("latin-1")


def test_a_200_mb_body_is_refused_before_it_is_read(sqlite_server):
    server = sqlite_server
    baseline = server.rss_kib()
    for chunked in (False, True):
        status, sent, _ = _post_huge(server, "/api/session", chunked=chunked)
        assert status == 413, (chunked, sent)
        assert sent < 64 * MB, f"the server read {sent // MB} MB before refusing"
        grown = (server.rss_kib() - baseline) // 1024
        assert grown < 30, f"the server grew {grown} MB"
        print(f"\n{'chunked' if chunked else 'Content-Length'}: refused after {sent // MB} MB sent")
    # Every route, known or not, with or without a login, refuses a declared body over the limit.
    for path in ("/api/session", "/login", "/api/visits", "/reception/sign-in", "/nowhere"):
        status, _, answer = _post_huge(server, path, chunked=False, total=MAX_BODY + 1)
        assert status == 413 and "larger than 1024 kB" in answer, path
        assert all(f"\r\n{h}: " in answer.lower() for h in SECURITY_HEADERS), answer
    # A body a little under the limit is read and judged as usual.
    under = {"name": "rita", "password": "x" * 900_000}
    assert server.client().post("/api/session", json=under).status_code == 401


# --- finding 10: hostile input -------------------------------------------------------------------


def _counts(server: Server) -> tuple[int, int]:
    engine = server.engine()
    with db.session_scope(engine) as session:
        visits = session.exec(sql_select(func.count()).select_from(Visit)).one()
        holds = session.exec(sql_select(func.count()).select_from(Hold)).one()
    engine.dispose()
    return visits, holds


def test_hostile_ids_times_and_text_are_400_naming_the_field(server):
    desk, guard = server.client(), server.client()
    assert login(desk, "rita").status_code == 200 and login(guard, "sam").status_code == 200
    token = desk.headers["X-CSRF-Token"]
    guard_token = guard.headers["X-CSRF-Token"]
    json_type = {"Content-Type": "application/json"}
    cases = [
        (desk, "GET", "/api/musters/9223372036854775808", None, "muster_id"),
        (desk, "GET", "/api/musters/2147483648", None, "muster_id"),
        (desk, "POST", "/api/visits/99999999999999999999/sign-out", {}, "visit_id"),
        (desk, "POST", "/api/badges", {"badge": "B1", "visit_id": 2**63}, "visit_id"),
        (desk, "POST", "/api/musters/1/entries/-1", {"status": "safe"}, "entry_id"),
        (desk, "POST", "/api/visits", {"name": "Ada", "at": "0001-01-01T00:00"}, "at"),
        (desk, "POST", "/api/visits", {"name": "Ada", "at": "9999-12-31T23:59"}, "at"),
        (desk, "POST", "/api/visits", '{"name": "Ada \\udc00"}', "name"),
        (desk, "POST", "/api/visits", {"name": "Ada\u0000"}, "name"),
        (desk, "POST", "/api/visits", {"name": "Ada", "company": "\ud800"}, "company"),
        (guard, "POST", "/api/holds", HOLD | {"review_by": "9999-12-31T14:00"}, "review_by"),
        (guard, "POST", "/api/holds", HOLD | {"from": "0001-01-01T00:00"}, "from"),
        (guard, "POST", "/api/holds/INC-1/extend", {"to": "9999-12-31T14:00"}, "to"),
        (guard, "GET", "/api/holds/INC%00", None, "case"),
        (guard, "POST", "/api/holds", HOLD | {"reason": "\udfff"}, "reason"),
        (desk, "GET", "/muster/9223372036854775808", None, "muster_id"),
        (desk, "POST", "/reception/visits/9223372036854775808/sign-out", {"csrf_token": token}, "visit_id"),
        (desk, "POST", "/reception/sign-in", {"csrf_token": token, "name": "Ada\x00"}, "name"),
        (guard, "POST", "/holds/place", {"csrf_token": guard_token} | HOLD | {"scopes": "", "review_by": "9999-12-31T14:00", "doors": "lab-2"}, "review by"),
        (guard, "POST", "/holds/place", {"csrf_token": guard_token} | HOLD | {"scopes": "", "from": "0001-01-01T00:00", "doors": "lab-2"}, "from"),
    ]  # fmt: skip
    before = _counts(server)
    for client, method, path, body, field in cases:
        if isinstance(body, str):
            response = client.request(method, path, content=body, headers=json_type)
        elif path.startswith("/api/"):  # \u escapes: a lone surrogate is no UTF-8
            content = None if body is None else json.dumps(body)
            response = client.request(method, path, content=content, headers=json_type)
        else:
            response = client.request(method, path, data=body)
        assert response.status_code in (400, 422), f"{method} {path}: {response.status_code}"
        _secured(response)
        if path.startswith("/api/"):
            message = response.json()["error"]
        else:
            found = re.search(r'<p class="(?:message|flash error)"[^>]*>([^<]*)</p>', response.text)
            message = found.group(1) if found else response.text
        assert message.startswith(f"{field}: ") or f"\n{field}: " in message, (path, message)
        assert "\n" not in message.strip() and "Traceback" not in response.text
    assert _counts(server) == before, "a refused request stored something"


def test_an_unexpected_failure_gets_our_error_page_and_headers(sqlite_server):
    server = sqlite_server
    desk = server.client()
    assert login(desk, "rita").status_code == 200
    # A row the code cannot read (damaged by hand): a failure nobody foresaw.
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "INSERT INTO visits (name, name_key, signed_in_at) VALUES ('Ada', 'ada', 'garbage')"
        )
    for path in ("/api/onsite", "/onsite"):
        # uvicorn closes the connection after a failure: a new one each time.
        response = desk.get(path, headers={"Connection": "close"})
        assert response.status_code == 500, path
        _secured(response)
        assert "Traceback" not in response.text and "garbage" not in response.text
        assert "something went wrong on the server" in response.text
    assert "Traceback" in server.output()  # the operator's log has it


def test_the_server_survives_a_burst_of_hostile_requests(sqlite_server):
    """Many clients at once sending every kind of junk: the server answers each, and stays up."""
    server = sqlite_server
    junk = [
        ("POST", "/api/visits", b'{"name": "\\ud800"}'),
        ("POST", "/api/session", b'{"name": "rita", "password": "\\udc00"}'),
        ("GET", "/api/musters/" + "9" * 40, b""),
        ("POST", "/api/holds/%00/release", b"{}"),
    ]
    failures: list[str] = []

    def hammer() -> None:
        with server.client(auth=("rita", PASSWORD)) as client:
            for method, path, body in junk * 3:
                response = client.request(
                    method, path, content=body, headers={"Content-Type": "application/json"}
                )
                if response.status_code >= 500 or "content-security-policy" not in response.headers:
                    failures.append(f"{method} {path}: {response.status_code}")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert server.process.poll() is None
