"""The privacy notice a kiosk shows before a visitor signs in.

Its figures come from the site's own notice (`privacy.notice`, what `facility notice` prints),
so that the kiosk, the reception desk's sign-in terminal and the printed notice say the same
thing from the policies in force; the page links the whole notice (`/notice`).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlmodel import Session

from facility.privacy import notice
from facility.settings import Limits, Privacy
from facility.store.models import Site


def privacy_notice(
    session: Session,
    privacy: Privacy,
    limits: Limits,
    *,
    now: datetime,
    site_zone: tzinfo,
    site: Site | None = None,
) -> list[str]:
    """The notice, as paragraphs of plain text: the notice of `site` (what is in force there),
    or without it the organisation's."""
    told = notice.build(session, privacy, limits, now=now, site_zone=site_zone, site=site)
    return [
        "We record your name, your company, whom you visit, and when you arrive and leave, so "
        "that we know who is in the building, above all in an emergency.",
        *told.visitor_lines(),
        "An incident under investigation can keep records longer.",
        "When you sign in, the person you visit is told your name, your company and the time.",
        "Ask at reception to see what we keep about you, to have it corrected or erased, or to "
        "use your other rights: the full privacy notice says how.",
    ]
