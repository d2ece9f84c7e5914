"""Local web accounts: argon2 hashes, roles, their sessions, and `facility user` on the CLI."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from facility.accounts import user_sessions, users
from facility.errors import InputError
from facility.store import db
from facility.store.models import AuditEntry, User, WebSession

pytestmark = pytest.mark.usefixtures("fast_hashes")

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse"


def _add(engine, name="rita", roles=("reception",), password=PASSWORD) -> None:
    with db.session_scope(engine) as session:
        users.add(session, now=T0, actor="tests", name=name, password=password, roles=roles)


def _login(engine, password: str, *, name="rita") -> bool:
    with db.session_scope(engine) as session:
        user = users.find(session, name)
    return users.verify(user, password)


def test_accounts_store_argon2id_hashes_and_roles(engine, monkeypatch):
    monkeypatch.setattr(users, "_HASHER", PasswordHasher())  # what the code uses
    _add(engine, roles=["security", "reception", "security"])
    with db.session_scope(engine) as session:
        user = session.get(User, "rita")
        # argon2id with the library's recommended cost (RFC 9106's second choice: 64 MiB, t=3).
        assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
        assert PASSWORD not in user.password_hash
        assert user.roles == "reception,security"  # known roles, each once, in order
        assert users.roles_of(user) == {"reception", "security"}
        admin = users.add(
            session, now=T0, actor="t", name="Ann", password=PASSWORD, roles=["admin"]
        )
        assert admin.name == "ann"
        assert users.roles_of(admin) == {"reception", "security", "privacy", "admin"}
    assert _login(engine, PASSWORD)
    assert _login(engine, PASSWORD, name="RITA ")
    assert not _login(engine, "wrong password")
    assert not _login(engine, PASSWORD, name="nobody")
    assert not _login(engine, PASSWORD, name="../etc")
    assert not _login(engine, "\udc00 not text")


@pytest.mark.parametrize(
    ("name", "roles", "password", "message"),
    [
        ("bad name", ["reception"], PASSWORD, "not an account name"),
        ("", ["reception"], PASSWORD, "not an account name"),
        ("rita", ["janitor"], PASSWORD, "janitor is not a role"),
        ("rita", [], PASSWORD, "at least one role"),
        ("rita", ["reception"], "short", "at least 8 characters"),
        ("rita", ["reception"], "x" * 2000, "at most 1024"),
    ],
)
def test_add_refuses_bad_input(engine, name, roles, password, message):
    with pytest.raises(InputError, match=message), db.session_scope(engine) as session:
        users.add(session, now=T0, actor="t", name=name, password=password, roles=roles)
    with db.session_scope(engine) as session:
        assert users.listing(session) == []


def test_a_login_with_cheaper_old_parameters_is_rehashed(engine, monkeypatch):
    _add(engine)  # hashed with the cheap parameters of these tests
    monkeypatch.setattr(users, "_HASHER", PasswordHasher())
    with db.session_scope(engine) as session:
        user = users.find(session, "rita")
    assert users.verify(user, PASSWORD)
    upgraded = users.upgraded_hash(user, PASSWORD)
    assert upgraded is not None and "$m=65536,t=3,p=4$" in upgraded
    with db.session_scope(engine) as session:
        users.store_upgraded_hash(session, name="rita", old=user.password_hash, new=upgraded)
    assert _login(engine, PASSWORD)
    with db.session_scope(engine) as session:
        again = users.find(session, "rita")
    assert again.password_hash == upgraded and users.upgraded_hash(again, PASSWORD) is None
    # A hash upgraded by a login that raced with `user passwd` does not undo the new password.
    with db.session_scope(engine) as session:
        users.set_password(session, now=T0, actor="admin", name="rita", password="new password")
        users.store_upgraded_hash(session, name="rita", old=upgraded, new=upgraded)
    assert _login(engine, "new password")


def _sessions(engine) -> list[str]:
    with db.session_scope(engine) as session:
        return [row.account for row in session.exec(select(WebSession)).all()]


def test_passwd_roles_revoke_and_remove_end_the_sessions(engine):
    _add(engine)
    _add(engine, name="sam", roles=("security",))
    changes = [
        lambda s: users.set_password(s, now=T0, actor="t", name="rita", password="new password"),
        lambda s: users.set_roles(s, now=T0, actor="t", name="rita", roles=["security"]),
        lambda s: users.revoke(s, now=T0, actor="t", name="rita"),
        lambda s: users.remove(s, now=T0, actor="t", name="rita"),
    ]
    for change in changes:
        with db.session_scope(engine) as session:
            for account in ("rita", "rita", "sam"):
                user_sessions.start(session, account=account, address="10.0.0.1", now=T0)
        with db.session_scope(engine) as session:
            change(session)
        assert sorted(_sessions(engine)) == ["sam"] * (changes.index(change) + 1)
    with db.session_scope(engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "user.revoke")).all()
        assert [json.loads(e.details) for e in entries] == [{"user": "rita", "sessions": 2}]


def test_expired_sessions_go_at_the_next_login(engine):
    _add(engine)
    with db.session_scope(engine) as session:
        old = user_sessions.start(session, account="rita", address=None, now=T0)
        assert user_sessions.find(session, old, now=T0) is not None
    later = T0 + user_sessions.LIFETIME
    with db.session_scope(engine) as session:
        assert user_sessions.find(session, old, now=later) is None
        assert user_sessions.counts(session, now=later) == {"live": 0, "expired": 1}
        new = user_sessions.start(session, account="rita", address="::1", now=later)
    with db.session_scope(engine) as session:
        assert user_sessions.counts(session, now=later) == {"live": 1, "expired": 0}
        assert user_sessions.find(session, new, now=later).row.address == "::1"
        # Only the hash of the token is stored.
        assert new not in {row.id for row in session.exec(select(WebSession)).all()}


def test_cli_user_add_passwd_roles_remove(cli):
    # The password comes from stdin, never from the arguments.
    result = cli("user", "add", "rita", "--role", "reception", input=f"{PASSWORD}\n")
    assert "account rita added with role reception" in result.stdout
    assert PASSWORD not in result.stdout
    cli("user", "add", "rita", "--role", "reception", input=f"{PASSWORD}\n", code=2)
    assert "not a role" in cli("user", "add", "sam", "--role", "boss", input="x\n", code=2).stderr
    assert (
        "at least 8" in cli("user", "add", "sam", "--role", "security", input="pw\n", code=2).stderr
    )
    cli("user", "add", "sam", "--role", "security", code=2)  # no password at all
    cli("user", "passwd", "rita", input="another password\n")
    cli("user", "passwd", "nobody", input="another password\n", code=2)
    cli("user", "roles", "rita", "--role", "reception", "--role", "security")
    listed = json.loads(cli("user", "list", "--json").stdout)
    assert listed == [{"name": "rita", "roles": ["reception", "security"], "sessions": 0}]
    engine = db.make_engine(cli.url)
    assert _login(engine, "another password")
    cli("user", "remove", "rita")
    cli("user", "remove", "rita", code=2)
    assert "no accounts" in cli("user", "list").stdout
    with db.session_scope(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry)).all()]
        details = " ".join(e.details for e in session.exec(select(AuditEntry)).all())
    engine.dispose()
    assert actions.count("user.add") == 1 and "user.passwd" in actions and "user.remove" in actions
    assert PASSWORD not in details and "another password" not in details and "argon2" not in details


def test_cli_user_needs_admin(cli):
    config = cli.config('[roles]\nreception = ["somebody-else"]\n')
    result = cli(
        "user", "add", "rita", "--role", "admin", input=f"{PASSWORD}\n", config=config, code=3
    )
    assert "needs role admin" in result.stderr
    engine = db.make_engine(cli.url)
    with db.session_scope(engine) as session:
        assert users.listing(session) == []
        refused = session.exec(select(AuditEntry).where(AuditEntry.action == "refused")).one()
        assert json.loads(refused.details)["command"] == "user add"
    engine.dispose()


def test_cli_user_sessions_and_revoke(cli):
    for name in ("rita", "sam"):
        cli("user", "add", name, "--role", "reception", input=f"{PASSWORD}\n")
    engine = db.make_engine(cli.url)
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        user_sessions.start(session, account="rita", address="10.0.0.7", now=now)
        user_sessions.start(session, account="rita", address="10.0.0.8", now=now)
        user_sessions.start(session, account="sam", address="::1", now=now)
        # An expired session is not listed.
        user_sessions.start(session, account="sam", address="::2", now=now - timedelta(hours=13))
    listed = json.loads(cli("user", "sessions", "--json").stdout)
    assert [(s["account"], s["address"]) for s in listed] == [
        ("rita", "10.0.0.7"),
        ("rita", "10.0.0.8"),
        ("sam", "::1"),
    ]
    machine = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"  # the one form (facility.timefmt)
    assert all(re.fullmatch(machine, s["started_at"]) for s in listed), listed
    table = cli("user", "sessions", "rita").stdout
    assert "10.0.0.7" in table and "::1" not in table and "last used" in table
    assert "sessions" in cli("user", "list").stdout
    assert "rita: 2 sessions ended" in cli("user", "revoke", "rita").stdout
    assert cli("user", "sessions", "rita").stdout.strip() == "no live sessions"
    assert "no account 'nobody'" in cli("user", "revoke", "nobody", code=2).stderr
    assert "no account 'nobody'" in cli("user", "sessions", "nobody", code=2).stderr
    engine.dispose()


def test_purge_deletes_expired_sessions_and_the_report_counts_them(cli):
    cli("user", "add", "rita", "--role", "reception", input=f"{PASSWORD}\n")
    engine = db.make_engine(cli.url)
    now = datetime.now(UTC)
    with db.session_scope(engine) as session:
        user_sessions.start(session, account="rita", address="10.0.0.7", now=now)
        user_sessions.start(
            session, account="rita", address="10.0.0.8", now=now - timedelta(hours=13)
        )
    report = json.loads(cli("report", "--format", "json").stdout)
    assert report["web_sessions"] == {"live": 1, "expired": 1}
    assert "Web sessions: 1 live, 1 expired" in cli("report").stdout
    cli("purge")
    with db.session_scope(engine) as session:
        assert [row.address for row in session.exec(select(WebSession)).all()] == ["10.0.0.7"]
    engine.dispose()
    assert json.loads(cli("report", "--format", "json").stdout)["web_sessions"] == {
        "live": 1,
        "expired": 0,
    }
