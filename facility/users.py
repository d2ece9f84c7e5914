"""Local web accounts: argon2 password hashes, roles, and the lock-out after failed logins.

These accounts are for the web interface only; the CLI keeps using the OS login name and
`[roles]`. A name is lower case letters, digits and `._-`. A password is never taken from the
command line (the CLI reads it from a prompt or stdin) and only its argon2id hash is stored.

After `MAX_FAILED_LOGINS` wrong passwords in a row an account is locked for `LOCKOUT`: every
login is refused until then, even with the right password, and the lock is audited. Changing the
password (`set_password`) lifts a lock. Audit entries name the account and the roles, never a
password or hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from facility import audit
from facility.access import ROLES
from facility.errors import InputError
from facility.models import User

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes any length; a bound keeps a request from costing a lot
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: the user on success, else why not."""

    user: User | None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        """Whether the name and password were right and the account is not locked."""
        return self.user is not None


def clean_name(name: str) -> str:
    """An account name as stored (lower case); InputError unless it is a valid one."""
    cleaned = name.strip().lower()
    if not _NAME.fullmatch(cleaned):
        raise InputError(
            f"NAME: {name!r} is not an account name (letters, digits and ._-, at most 64)"
        )
    return cleaned


def clean_roles(roles: Iterable[str]) -> list[str]:
    """Roles as stored: known ones only, each once, in the order of ROLES."""
    given = {r.strip().lower() for r in roles if r.strip()}
    unknown = sorted(given - set(ROLES))
    if unknown:
        raise InputError(f"--role: {', '.join(unknown)} is not a role (one of {', '.join(ROLES)})")
    if not given:
        raise InputError(f"--role: give at least one role ({', '.join(ROLES)})")
    return [r for r in ROLES if r in given]


def check_password(password: str) -> str:
    """The password if it is acceptable; InputError saying why not."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"password: at most {MAX_PASSWORD} characters")
    return password


def roles_of(user: User) -> frozenset[str]:
    """The roles an account holds; `admin` holds every role."""
    held = frozenset(r for r in user.roles.split(",") if r)
    return frozenset(ROLES) if "admin" in held else held


def fingerprint(user: User) -> str:
    """A short digest of the stored hash: a session made under another password is stale."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


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
    """Give an account a new password; this also lifts a lock-out and ends its sessions."""
    user = _get(session, name)
    user.password_hash = _HASHER.hash(check_password(password))
    user.failed_logins, user.locked_until = 0, None
    session.add(user)
    session.flush()
    audit.append(session, now=now, actor=actor, action="user.passwd", user=user.name)
    return user


def set_roles(
    session: Session, *, now: datetime, actor: str, name: str, roles: Iterable[str]
) -> User:
    """Replace an account's roles."""
    user = _get(session, name)
    cleaned = clean_roles(roles)
    user.roles = ",".join(cleaned)
    session.add(user)
    session.flush()
    audit.append(session, now=now, actor=actor, action="user.roles", user=user.name, roles=cleaned)
    return user


def remove(session: Session, *, now: datetime, actor: str, name: str) -> None:
    """Delete an account; its sessions stop working at their next request."""
    user = _get(session, name)
    session.delete(user)
    session.flush()
    audit.append(session, now=now, actor=actor, action="user.remove", user=user.name)


def authenticate(session: Session, *, now: datetime, name: str, password: str) -> Login:
    """Check a name and password, counting failures and locking the account after too many."""
    try:
        key = clean_name(name)
    except InputError:
        key = None
    user = None
    if key is not None:
        user = session.exec(select(User).where(User.name == key).with_for_update()).first()
    if user is None:
        _verify(_dummy_hash(), password)  # spend the same time, so names cannot be probed
        return Login(None)
    if user.locked_until is not None and user.locked_until > now:
        return Login(None, locked_until=user.locked_until)
    if not _verify(user.password_hash, password):
        return _failed(session, user, now=now)
    user.failed_logins, user.locked_until = 0, None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    session.add(user)
    session.flush()
    return Login(user)


def _failed(session: Session, user: User, *, now: datetime) -> Login:
    user.failed_logins += 1
    locked = user.failed_logins >= MAX_FAILED_LOGINS
    if locked:
        user.failed_logins, user.locked_until = 0, now + LOCKOUT
    session.add(user)
    session.flush()
    if locked:
        audit.append(
            session,
            now=now,
            actor="web",  # whoever typed the passwords; not necessarily the account's owner
            action="user.locked",
            user=user.name,
            failed_logins=MAX_FAILED_LOGINS,
            until=user.locked_until.isoformat(),
        )
        return Login(None, locked_until=user.locked_until)
    return Login(None)


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("not a password anyone has")


def _get(session: Session, name: str) -> User:
    user = find(session, name)
    if user is None:
        raise InputError(f"NAME: there is no account {name.strip()!r}")
    return user
