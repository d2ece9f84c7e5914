"""The privacy notice a kiosk shows before a visitor signs in.

One function, so that the site's own notice (`facility notice`, when it exists) can take its
place here; until then it says, in plain words and from the policies in force, what is kept, why,
for how long, and who is told.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from facility.retention import policies
from facility.timeutil import format_duration


def privacy_notice(session: Session) -> list[str]:
    """The notice, as paragraphs of plain text."""
    policy = policies.current(session)
    kept = _spoken(policy.get("visits"))
    doors = _spoken(policy.get("door_events"))
    return [
        "We record your name, your company, whom you visit, and when you arrive and leave, so "
        "that we know who is in the building, above all in an emergency.",
        f"We keep this for {kept} after you leave, and then delete it. The doors your visitor "
        f"badge opens are recorded and kept for {doors}. An incident under investigation can "
        "keep records longer.",
        "When you sign in, the person you visit is told your name, your company and the time.",
        "Ask at reception to see what we keep about you, or to have it erased.",
    ]


def _spoken(duration: timedelta | None) -> str:
    """`3 days`, `12 hours`, or the short form for anything else."""
    if duration is None:
        return "a short time"
    days, rest = divmod(int(duration.total_seconds()), 86_400)
    if not rest and days:
        return f"{days} day{'s' if days != 1 else ''}"
    hours, rest = divmod(rest, 3_600)
    if not days and not rest and hours:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return format_duration(duration)
