"""Who the acting user is, and which roles the `[roles]` setting gives them.

The actor is the OS login name of the effective user (from the password database, not from the
environment, so it cannot be claimed by setting $USER). With no `[roles]` section at all every
user holds every role; `facility doctor` warns about that. What each role may do is declared in
`permissions`.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from facility.accounts.permissions import ROLES, held
from facility.settings import Roles

__all__ = ["ROLES", "Identity", "current_identity", "roles_of"]


@dataclass(frozen=True)
class Identity:
    """An OS user and the names of the groups they belong to."""

    name: str
    groups: frozenset[str]


def current_identity() -> Identity:
    """The effective OS user and their groups."""
    entry = pwd.getpwuid(os.geteuid())
    names = set()
    for gid in {entry.pw_gid, *os.getgroups()}:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            continue
    return Identity(entry.pw_name, frozenset(names))


def roles_of(identity: Identity, roles: Roles | None) -> frozenset[str]:
    """The roles `identity` holds under the `[roles]` mapping."""
    if roles is None:
        return frozenset(ROLES)
    return held(role for role in ROLES if _listed(identity, getattr(roles, role)))


def _listed(identity: Identity, members: list[str]) -> bool:
    for member in members:
        if member.startswith("@"):
            if member[1:] in identity.groups:
                return True
        elif member == identity.name:
            return True
    return False
