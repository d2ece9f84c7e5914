"""Local web accounts: argon2 hashes, roles, lock-out, and `facility user` on the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import select

from facility import db, users
from facility.errors import InputError
from facility.models import AuditEntry, User

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch):
    """Cheap argon2 parameters; the test of the real ones puts them back."""
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024))


def _add(engine, name="rita", roles=("reception",), password=PASSWORD) -> None:
    with db.session_scope(engine) as session:
        users.add(session, now=T0, actor="tests", name=name, password=password, roles=roles)


def _login(engine, password: str, *, name="rita", now=T0) -> users.Login:
    with db.session_scope(engine) as session:
        return users.authenticate(session, now=now, name=name, password=password)


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
    assert _login(engine, PASSWORD).ok
    assert _login(engine, PASSWORD, name="RITA ").ok
    assert not _login(engine, "wrong password").ok
    assert not _login(engine, PASSWORD, name="nobody").ok
    assert not _login(engine, PASSWORD, name="../etc").ok


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


def test_five_wrong_passwords_lock_the_account_for_a_while(engine):
    _add(engine)
    for attempt in range(users.MAX_FAILED_LOGINS - 1):
        result = _login(engine, f"wrong {attempt}", now=T0 + timedelta(seconds=attempt))
        assert not result.ok and result.locked_until is None
    result = _login(engine, "wrong again", now=T0 + timedelta(seconds=10))
    assert result.locked_until == T0 + timedelta(seconds=10) + users.LOCKOUT
    # Locked: even the right password is refused until the lock passes.
    assert _login(engine, PASSWORD, now=T0 + timedelta(minutes=14)).locked_until is not None
    assert _login(engine, PASSWORD, now=T0 + timedelta(minutes=16)).ok
    with db.session_scope(engine) as session:
        user = session.get(User, "rita")
        assert (user.failed_logins, user.locked_until) == (0, None)
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "user.locked")).one()
        assert json.loads(entry.details)["user"] == "rita"


def test_a_login_with_cheaper_old_parameters_is_rehashed(engine, monkeypatch):
    _add(engine)  # hashed with the cheap parameters of these tests
    monkeypatch.setattr(users, "_HASHER", PasswordHasher())
    assert _login(engine, PASSWORD).ok
    with db.session_scope(engine) as session:
        assert "$m=65536,t=3,p=4$" in session.get(User, "rita").password_hash
    assert _login(engine, PASSWORD).ok


def test_a_success_resets_the_count_and_passwd_lifts_a_lock(engine):
    _add(engine)
    for _ in range(4):
        _login(engine, "wrong")
    assert _login(engine, PASSWORD).ok
    for _ in range(4):
        assert _login(engine, "wrong").locked_until is None  # the count started over
    assert _login(engine, "wrong").locked_until is not None
    with db.session_scope(engine) as session:
        before = users.fingerprint(session.get(User, "rita"))
        users.set_password(session, now=T0, actor="admin", name="rita", password="new password")
    assert _login(engine, "new password").ok
    with db.session_scope(engine) as session:
        assert users.fingerprint(session.get(User, "rita")) != before


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
    assert listed == [
        {
            "name": "rita",
            "roles": ["reception", "security"],
            "locked_until": None,
            "failed_logins": 0,
        }
    ]
    engine = db.make_engine(cli.url)
    assert _login(engine, "another password").ok
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
