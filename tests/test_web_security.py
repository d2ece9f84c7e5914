"""Web security: CSRF tokens, lock-out, cookie flags, escaping, roles, sessions that end."""

from __future__ import annotations

import json
from datetime import datetime
from http.cookies import SimpleCookie
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from facility.accounts import users
from facility.store import db
from facility.web.sessions import COOKIE
from facility.web.throttle import MAX_FAILURES
from tests.webapp import (
    PASSWORD,
    T0,
    add_user,
    audit_actions,
    form_token,
    login,
    make_app,
    stored,
)

pytestmark = pytest.mark.usefixtures("fast_hashes")

EVIL = "<script>alert(1)</script>"
EVIL_ATTRIBUTE = '"><img src=x onerror=alert(2)>'


@pytest.fixture
def app(db_url, engine, clock):
    add_user(engine, "rita", "reception")
    add_user(engine, "sam", "security")
    return make_app(db_url, engine, clock)


def _browser(app, scheme: str = "https") -> TestClient:
    return TestClient(app, base_url=f"{scheme}://testserver")


def _cookie_attributes(response) -> dict[str, str | bool]:
    header = next(v for k, v in response.headers.multi_items() if k.lower() == "set-cookie")
    morsel = SimpleCookie(header)[COOKIE]
    return {key: morsel[key] for key in ("httponly", "samesite", "secure", "path")}


def test_a_form_post_without_the_csrf_token_is_refused(app, engine):
    browser = _browser(app)
    assert login(browser, "rita").status_code == 303
    token = form_token(browser.get("/reception").text)
    before = stored(engine)
    for data in ({"name": "Ada"}, {"name": "Ada", "csrf_token": "forged"}):
        refused = browser.post("/reception/sign-in", data=data)
        assert refused.status_code == 403
        assert "did not come from this site" in refused.text
    assert stored(engine) == before
    # A token of another session does not pass either.
    other = _browser(app)
    login(other, "rita")
    other_token = form_token(other.get("/reception").text)
    assert other_token != token
    data = {"name": "Ada", "csrf_token": other_token}
    assert browser.post("/reception/sign-in", data=data).status_code == 403
    assert stored(engine) == before
    # The login and logout forms need it as well.
    fresh = _browser(app)
    response = fresh.post("/login", data={"name": "rita", "password": PASSWORD})
    assert response.status_code == 403
    assert browser.post("/logout", data={}).status_code == 403
    ok = browser.post("/reception/sign-in", data={"name": "Ada", "csrf_token": token})
    assert ok.status_code == 200 and "Ada signed in" in ok.text
    assert stored(engine)["visits"] == 1


def _from(app, address: str) -> TestClient:
    """A browser at `address` (the app trusts the proxy header, as behind a local proxy)."""
    proxied = ProxyHeadersMiddleware(app, trusted_hosts="*")
    return TestClient(proxied, base_url="https://testserver", headers={"X-Forwarded-For": address})


def test_five_wrong_passwords_lock_the_name_at_that_address_for_a_while(app, engine, clock):
    browser = _from(app, "10.0.0.66")
    for _ in range(MAX_FAILURES - 1):
        response = login(browser, "rita", "wrong password")
        assert response.status_code == 401 and "wrong name or password" in response.text
    fifth = login(browser, "rita", "wrong password")
    assert fifth.status_code == 401 and "5 wrong passwords in a row" in fifth.text
    assert "after 2026-06-01 11:15" in fifth.text  # site time, no seconds
    # The right password does not open it from that address while it is locked…
    assert login(browser, "rita", PASSWORD).status_code == 401
    assert browser.get("/api/me", auth=("rita", PASSWORD)).status_code == 401
    # …but does from anywhere else.
    assert login(_from(app, "10.0.0.7"), "rita", PASSWORD).status_code == 303
    clock.advance(minutes=14)
    assert "wrong passwords in a row" in login(browser, "rita", PASSWORD).text
    clock.advance(minutes=2)
    response = login(browser, "rita", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/reception"
    locks = [
        (actor, d["user"]) for actor, action, d in audit_actions(engine) if action == "user.locked"
    ]
    assert locks == [("web", "rita")]


def test_session_cookie_flags(app, db_url, engine, clock):
    response = login(_browser(app, "https"), "rita")
    assert _cookie_attributes(response) == {
        "httponly": True,
        "samesite": "strict",
        "secure": True,
        "path": "/",
    }
    # Plain HTTP on loopback (a terminal on the same machine): not Secure, or it would be dropped.
    assert _cookie_attributes(login(_browser(app, "http"), "rita"))["secure"] == ""
    forced = make_app(db_url, engine, clock, secure_cookies=True)
    assert _cookie_attributes(login(_browser(forced, "http"), "rita"))["secure"] is True
    # Behind a TLS proxy: X-Forwarded-Proto counts only from a trusted proxy address.
    proto = {"X-Forwarded-Proto": "https"}
    trusted = TestClient(ProxyHeadersMiddleware(app, trusted_hosts="*"), headers=proto)
    assert _cookie_attributes(login(trusted, "rita"))["secure"] is True
    untrusted = TestClient(ProxyHeadersMiddleware(app, trusted_hosts="10.9.9.9"), headers=proto)
    assert _cookie_attributes(login(untrusted, "rita"))["secure"] == ""


def test_templates_escape_what_visitors_are_called(app, engine):
    browser = _browser(app)
    login(browser, "rita")
    token = form_token(browser.get("/reception").text)
    for name in (EVIL, EVIL_ATTRIBUTE):
        data = {"name": name, "company": name, "host": name, "csrf_token": token}
        assert browser.post("/reception/sign-in", data=data).status_code == 200
    browser.post("/muster/start", data={"csrf_token": token})
    pages = ["/reception", "/onsite", "/muster/1", "/muster/1?show=open&q=%3Cscript%3E"]
    for path in pages:
        html = browser.get(path).text
        assert EVIL not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    # A failed form shows the typed text back, escaped too.
    bad = {"name": EVIL, "badge": "two words", "csrf_token": token}
    response = browser.post("/reception/sign-in", data=bad)
    assert response.status_code == 400 and EVIL not in response.text
    assert "&lt;script&gt;" in response.text


def test_security_headers(app):
    browser = _browser(app)
    login(browser, "rita")
    headers = browser.get("/onsite").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert browser.get("/static/facility.css").status_code == 200


def test_reception_cannot_reach_holds_and_the_refusal_is_audited(app, engine):
    browser = _browser(app)
    login(browser, "rita")
    reception = browser.get("/reception").text
    assert 'href="/holds"' not in reception and 'href="/onsite"' in reception
    refused = browser.get("/holds")
    assert refused.status_code == 403 and "needs role security" in refused.text
    token = form_token(reception)
    data = {"case": "INC-1", "reason": "x", "from": "2026-06-01T08:00", "to": "2026-06-01T09:00"}
    assert browser.post("/holds/place", data=data | {"csrf_token": token}).status_code == 403
    assert stored(engine)["holds"] == 0
    refusals = [d["command"] for _, action, d in audit_actions(engine) if action == "refused"]
    assert refusals == ["GET /holds", "POST /holds/place"]
    guard = _browser(app)
    login(guard, "sam")
    assert guard.get("/reception").status_code == 403
    assert guard.get("/holds").status_code == 200


def test_sessions_end_with_a_new_password_removal_or_tampering(app, engine):
    browser = _browser(app)
    login(browser, "rita")
    assert browser.get("/reception").status_code == 200
    with db.session_scope(engine) as session:
        users.set_password(session, now=T0, actor="t", name="rita", password="new password")
    gone = browser.get("/reception", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/login?next=/reception"
    login(browser, "rita", "new password")
    assert browser.get("/reception").status_code == 200
    with db.session_scope(engine) as session:
        users.remove(session, now=T0, actor="t", name="rita")
    assert browser.get("/reception", follow_redirects=False).status_code == 303
    tampered = _browser(app)
    tampered.cookies.set(COOKIE, "eyJ1Ijoicml0YSJ9.forged.signature")
    assert tampered.get("/api/me").status_code == 401


def test_login_goes_only_to_pages_of_this_site(app):
    browser = _browser(app)
    page = browser.get("/login?next=//evil.example/x").text
    data = {"csrf_token": form_token(page), "name": "rita", "password": PASSWORD}
    data["next"] = "//evil.example/x"
    response = browser.post("/login", data=data, follow_redirects=False)
    assert response.headers["location"] == "/reception"
    browser = _browser(app)
    page = browser.get("/login").text
    data = {"csrf_token": form_token(page), "name": "rita", "password": PASSWORD, "next": "/onsite"}
    assert (
        browser.post("/login", data=data, follow_redirects=False).headers["location"] == "/onsite"
    )


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # surrogates, NUL, all
TIMES = st.one_of(
    ANY_TEXT,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat()
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=ANY_TEXT, when=TIMES, number=st.integers(min_value=-(2**70), max_value=2**70))
def test_no_text_time_or_number_gets_a_500(app, engine, text, when, number):
    desk = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    desk.post("/api/session", json={"name": "rita", "password": PASSWORD})
    desk.headers["X-CSRF-Token"] = desk.get("/api/me").json()["csrf_token"]
    guard = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    guard.post("/api/session", json={"name": "sam", "password": PASSWORD})
    guard.headers["X-CSRF-Token"] = guard.get("/api/me").json()["csrf_token"]
    hold = {"case": "INC-P", "reason": text, "from": when, "to": "2026-06-01T08:00Z"}
    requests = [
        (desk, "POST", "/api/visits", {"name": text, "company": text, "at": when}),
        (desk, "POST", "/api/badges", {"badge": text, "visit_id": number}),
        (desk, "POST", f"/api/visits/{number}/sign-out", {"at": when}),
        (desk, "GET", f"/api/musters/{number}", None),
        (desk, "POST", f"/api/musters/{number}/entries/{number}", {"status": "safe"}),
        (guard, "POST", "/api/holds", hold | {"review_by": when, "scopes": [{"kind": "visits", "selector": text}]}),
        (guard, "GET", f"/api/holds/{quote(text, safe='', errors='surrogatepass')}", None),
    ]  # fmt: skip
    for client, method, path, body in requests:
        before = stored(engine)
        content = None if body is None else json.dumps(body)  # \u escapes: surrogates travel
        response = client.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code < 500, (path, body, response.text)
        assert "content-security-policy" in response.headers
        if response.status_code >= 400:
            assert "\n" not in response.json()["error"]
            assert stored(engine) == before, (path, body)


def test_a_login_that_cannot_get_its_turn_is_told_to_retry(app, monkeypatch):
    from facility.web import context

    monkeypatch.setattr(context, "HASH_WAIT", 0.2)
    web = app.state.web
    assert web.turns.acquire(timeout=1)  # another password check is under way
    try:
        response = _browser(app).post("/api/session", json={"name": "rita", "password": PASSWORD})
    finally:
        web.turns.release()
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert "checking many logins" in response.json()["error"]
    assert (
        _browser(app).post("/api/session", json={"name": "rita", "password": PASSWORD}).status_code
        == 200
    )
