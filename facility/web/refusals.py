"""Audit entries for refusals and lock-outs, at most one per kind and window (`digest`).

A kind is the actor, the action and its details; the details name the route template or the
account, never what the client typed, so the trail's entries stay small and say what was refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from facility.timefmt import utc_text
from facility.trail import audit
from facility.web.context import Web
from facility.web.digest import Repeats


def audit_once(web: Web, *, now: datetime, actor: str, action: str, **details: Any) -> None:
    """Audit this refusal now, or count it when the same one was audited within the window."""
    key = (actor, action, json.dumps(details, sort_keys=True))
    if web.digest.note(key, now):
        with web.session() as session:
            audit.append(session, now=now, actor=actor, action=action, **details)
            _write(session, web.digest.due(now), now)


def write_due(web: Web, now: datetime, *, everything: bool = False) -> int:
    """Write the counts of windows that have passed (or all of them); how many entries."""
    ready = web.digest.drain() if everything else web.digest.due(now)
    if ready:
        with web.session() as session:
            _write(session, ready, now)
    return len(ready)


def _write(session: Session, ready: list[Repeats], now: datetime) -> None:
    for repeats in ready:
        actor, action, details = repeats.key
        audit.append(
            session,
            now=now,
            actor=actor,
            action=f"{action}.repeated",
            **json.loads(details),
            count=repeats.count,
            first=utc_text(repeats.first),
            last=utc_text(repeats.last),
        )
