"""Local web accounts: argon2 password hashes, roles, and checking a password.

These accounts are for the web interface only; the CLI keeps using the OS login name and
`[roles]`. A name is lower case letters, digits and `._-`. A password is never taken from the
command line (the CLI reads it from a prompt or stdin) and only its argon2id hash is stored.

Checking a password (`verify`) costs an argon2 hash on purpose and touches no database: the web
server reads the account first, checks outside any transaction, and writes only what came of it
(a session, an upgraded hash). The limits on wrong passwords live in the web server
(`facility.web.throttle`). A new password, new roles or `revoke` end the account's sessions.
Audit entries name the account and the roles, never a password or hash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from facility import sites
from facility.accounts import user_sessions
from facility.accounts.permissions import ROLES, held
from facility.errors import InputError
from facility.store.models import User
from facility.trail import audit

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes any length; a bound keeps a request from costing a lot
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


def clean_name(name: str) -> str:
    """An account name as stored (lower case); InputError unless it is a valid one."""
    cleaned = name.strip().lower()
    if not _NAME.fullmatch(cleaned):
        raise InputError(
            f"NAME: {name!r} is not an account name (letters, digits and ._-, at most 64)"
        )
    return cleaned


def clean_roles(roles: Iterable[str]) -> list[str]:
    """Roles as stored: known ones only (`role`, or `role:site` for one site), each once, in the
    order of ROLES, each role everywhere before its sites."""
    given = {r.strip().lower() for r in roles if r.strip()}
    unknown = sorted(r for r in given if r.partition(":")[0] not in ROLES)
    if unknown:
        raise InputError(f"--role: {', '.join(unknown)} is not a role (one of {', '.join(ROLES)})")
    for grant in given:
        _, limited, site = grant.partition(":")
        if limited and not sites.CODE.fullmatch(site):
            raise InputError(
                f"--role: {grant!r} names no site code (role:site, e.g. reception:ams)"
            )
    if not given:
        raise InputError(f"--role: give at least one role ({', '.join(ROLES)})")
    return sorted(given, key=lambda r: (ROLES.index(r.partition(":")[0]), r))


def check_password(password: str) -> str:
    """The password if it is acceptable; InputError saying why not."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"password: at most {MAX_PASSWORD} characters")
    return password


def roles_of(user: User) -> frozenset[str]:
    """The roles an account holds (`admin`: every role)."""
    return held(r for r in user.roles.split(",") if r)


def find(session: Session, name: str) -> User | None:
    """The account called `name`, or None (also for a name that could not be one)."""
    try:
        return session.get(User, clean_name(name))
    except InputError:
        return None


def listing(session: Session) -> list[User]:
    """Every account, by name."""
    return list(session.exec(select(User).order_by(col(User.name))).all())


def add(
    session: Session, *, now: datetime, actor: str, name: str, password: str, roles: Iterable[str]
) -> User:
    """Create an account; the name must be new."""
    name, roles = clean_name(name), clean_roles(roles)
    password = check_password(password)
    if session.get(User, name) is not None:
        raise InputError(f"NAME: an account {name} already exists")
    user = User(name=name, password_hash=_HASHER.hash(password), roles=",".join(roles))
    session.add(user)
    session.flush()
    audit.append(session, now=now, actor=actor, action="user.add", user=name, roles=roles)
    return user


def set_password(session: Session, *, now: datetime, actor: str, name: str, password: str) -> User:
    """Give an account a new password; this ends its sessions."""
    user = _get(session, name)
    user.password_hash = _HASHER.hash(check_password(password))
    session.add(user)
    session.flush()
    ended = user_sessions.end_all(session, user.name)
    audit.append(
        session, now=now, actor=actor, action="user.passwd", user=user.name, sessions_ended=ended
    )
    return user


def set_roles(
    session: Session, *, now: datetime, actor: str, name: str, roles: Iterable[str]
) -> User:
    """Replace an account's roles; this ends its sessions (they were granted under the old ones)."""
    user = _get(session, name)
    cleaned = clean_roles(roles)
    user.roles = ",".join(cleaned)
    session.add(user)
    session.flush()
    ended = user_sessions.end_all(session, user.name)
    audit.append(
        session,
        now=now,
        actor=actor,
        action="user.roles",
        user=user.name,
        roles=cleaned,
        sessions_ended=ended,
    )
    return user


def remove(session: Session, *, now: datetime, actor: str, name: str) -> None:
    """Delete an account and its sessions."""
    user = _get(session, name)
    ended = user_sessions.end_all(session, user.name)
    session.delete(user)
    session.flush()
    audit.append(
        session, now=now, actor=actor, action="user.remove", user=user.name, sessions_ended=ended
    )


def revoke(session: Session, *, now: datetime, actor: str, name: str) -> int:
    """End every session of an account (it logs in again); how many there were."""
    user = _get(session, name)
    ended = user_sessions.end_all(session, user.name)
    audit.append(
        session, now=now, actor=actor, action="user.revoke", user=user.name, sessions=ended
    )
    return ended


def verify(user: User | None, password: str) -> bool:
    """Whether `password` is the account's; for no account, as slow as a real check and False.

    Touches no database: call it outside any transaction, it takes a deliberate while.
    """
    if user is None:
        _verify(_dummy_hash(), password)  # spend the same time, so names cannot be probed
        return False
    return _verify(user.password_hash, password)


def upgraded_hash(user: User, password: str) -> str | None:
    """A new hash of the (verified) password when the stored one has outdated parameters."""
    if _HASHER.check_needs_rehash(user.password_hash):
        return _HASHER.hash(password)
    return None


def store_upgraded_hash(session: Session, *, name: str, old: str, new: str) -> None:
    """Replace the hash `old` of account `name` by `new`, unless the password changed meanwhile."""
    user = session.get(User, name)
    if user is not None and user.password_hash == old:
        user.password_hash = new
        session.add(user)
        session.flush()


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    except UnicodeEncodeError:  # a lone surrogate: no password anyone can type
        return False


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("not a password anyone has")


def _get(session: Session, name: str) -> User:
    user = find(session, name)
    if user is None:
        raise InputError(f"NAME: there is no account {name.strip()!r}")
    return user
