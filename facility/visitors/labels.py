"""Visitor badge labels: one printable page per visit, at a label printer's size or on A4.

The page is self-contained (inline CSS, no image or font fetched), so `visitor label ID --output
FILE.html` can be opened and printed anywhere; the web terminal serves the same page with a print
button. Each size sets the printed page to the label itself (`@page`), so a label printer's driver
needs no margins or scaling: print at 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from sqlmodel import Session, col, select

from facility.errors import InputError
from facility.render import html_page
from facility.store.models import DEFAULT_SITE, BadgeLoan, Site, Visit


@dataclass(frozen=True)
class Size:
    """A label stock: the printed area and the page it sits on."""

    name: str
    description: str
    width_mm: int
    height_mm: int
    page: str  # the CSS @page size
    margin_mm: int = 0


SIZES: dict[str, Size] = {
    size.name: size
    for size in (
        Size("62x100", "Brother DK-11202, 62 x 100 mm", 62, 100, "62mm 100mm"),
        Size("89x36", "Brother DK-11208 / Dymo 99012, 89 x 36 mm", 89, 36, "89mm 36mm"),
        Size("a4", "A4 sheet: a 90 x 55 mm card to cut out for a badge holder", 90, 55, "A4", 15),
    )
}
DEFAULT_SIZE = "62x100"


@dataclass(frozen=True)
class Label:
    """What a label says."""

    visit_id: int
    name: str
    company: str | None
    host: str | None
    day: str  # the day of the visit, site time: `Wed 25 Nov 2026`
    badge: str | None


def size_of(name: str) -> Size:
    """The size called `name`; InputError naming --size otherwise."""
    try:
        return SIZES[name]
    except KeyError:
        raise InputError(
            f"--size: {name!r} is not a label size (one of {', '.join(SIZES)})"
        ) from None


def for_visit(
    session: Session, visit_id: int, *, site_zone: tzinfo, site_id: int = DEFAULT_SITE
) -> Label:
    """The label of visit `visit_id` of the site: its badge out now, else the last it was lent.

    Another site's visit is not found here, as if it did not exist (InputError naming the site).
    """
    visit = session.get(Visit, visit_id)
    if visit is None or visit.site_id != site_id:
        site = session.get(Site, site_id)
        at = "" if site is None else f" at site {site.code}"
        raise InputError(f"ID: there is no visit {visit_id}{at}")
    loan = session.exec(
        select(BadgeLoan)
        .where(BadgeLoan.visit_id == visit_id)
        .order_by(
            col(BadgeLoan.returned_at).is_(None).desc(),
            col(BadgeLoan.issued_at).desc(),
            col(BadgeLoan.id).desc(),
        )
    ).first()
    return Label(
        visit_id=visit_id,
        name=visit.name,
        company=visit.company,
        host=visit.host,
        day=visit.signed_in_at.astimezone(site_zone).strftime("%a %d %b %Y"),
        badge=None if loan is None else loan.badge,
    )


def render(label: Label, size: Size, *, print_button: str | None = None) -> str:
    """The label as one HTML page; `print_button` is the script that makes its button work."""
    length = len(label.name)
    name_class = "short" if length <= 16 else "medium" if length <= 28 else "long"
    return html_page(
        "label.html",
        label=label,
        size=size,
        name_class=name_class,
        print_script=print_button,
    )
