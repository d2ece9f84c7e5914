"""Who the acting user is, and which roles the `[roles]` setting gives them.

The actor is the OS login name of the effective user (from the password database, not from the
environment, so it cannot be claimed by setting $USER). With no `[roles]` section at all every
user holds every role; `facility doctor` warns about that. An entry may name a site after a colon
(`alice:ams`, `@desk-bru:bru`): that member holds the role at that site only (`reception:ams`).
What each role may do, and where, is declared in `permissions`.
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
    """The roles `identity` holds under the `[roles]` mapping (`role:site` for one site)."""
    if roles is None:
        return frozenset(ROLES)
    return held(
        role if site is None else f"{role}:{site}"
        for role in ROLES
        for site in _listed(identity, getattr(roles, role))
    )


def _listed(identity: Identity, members: list[str]) -> set[str | None]:
    """The sites at which `members` name `identity` (None: every site)."""
    found: set[str | None] = set()
    for member in members:
        who, _, site = member.partition(":")
        if who.startswith("@"):
            if who[1:] not in identity.groups:
                continue
        elif who != identity.name:
            continue
        found.add(site or None)
    return found
