"""The record kinds: each declared once, beside the tables that hold them.

A kind is one sort of stored data about people that a retention policy ends: its name (in
policies, hold scopes, reports, JSON keys and commands), its table, the column its retention
clock is kept in, its default policy (the `[retention]` setting of that name), whether an
incident hold can keep it, the roles whose work shows its records, and how people read it.

Settings, policies, holds, purge, the report, subject requests and the CLI and web read this
list; none keeps one of its own (tests/test_kinds.py checks each kind everywhere). Adding a kind
is one `Kind(...)` here plus its own code: the table and its migration, how holds reach it
(`retention.holds`, if holds can keep it) and how a data subject does (`privacy.subjects`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, Table
from sqlmodel import SQLModel

from facility.store.models import (
    BadgeLoan,
    CameraSegment,
    DataRequest,
    DoorEvent,
    ExpectedVisit,
    Host,
    HostNotification,
    Rejection,
    Visit,
    WifiLease,
    table_of,
)

# The legal bases most kinds rest on; `privacy.legal_basis.<kind>` in the settings overrides them.
SECURITY_INTEREST = (
    "legitimate interests (GDPR article 6(1)(f)): the safety and security of the people and "
    "property on the premises"
)
RECEPTION_INTEREST = (
    "legitimate interests (GDPR article 6(1)(f)): receiving visitors and telling the people they "
    "visit that they arrived"
)
LEGAL_OBLIGATION = (
    "legal obligation (GDPR article 6(1)(c)): answering data-protection requests (articles 12 "
    "to 22) and showing that they were answered (article 5(2))"
)


@dataclass(frozen=True)
class Kind:
    """One record kind and the rules every part applies to it."""

    name: str
    model: type[SQLModel]
    clock: str  # the column its retention clock is kept in (NULL: not started)
    retention: timedelta  # the default policy, `retention.<name>` in the settings
    retention_help: str  # that setting's description, as the README's table repeats it
    label: str  # what people call its records, plural
    noun: str  # one of its records, as a column header
    seen_by: tuple[str, ...]  # roles whose work shows its records (`admin` holds every role)
    order_by: str  # the column its records are listed by, oldest first
    holdable: bool = True  # an incident hold can keep its records (`retention.holds`)
    # A restriction of processing (article 18, `privacy.restriction`) hides its records from roles
    # without privacy: the records of what a person did on the premises.
    restrictable: bool = False
    # Kinds whose records lead to this one's: holds and subject requests reach it through them,
    # so its records are deleted before theirs (see DELETE_ORDER).
    found_through: tuple[str, ...] = ()
    # Columns `purge --dry-run --list` shows besides the id and clock: (column, header).
    listed: tuple[tuple[str, str], ...] = ()
    # What the privacy notice (article 13) and the register of processing (article 30) say about
    # it, in English; `privacy.wording` holds the other languages.
    purpose: str = ""  # why its records are kept
    data: str = ""  # what a record holds: the categories of personal data
    people: str = ""  # whom its records are about: the categories of data subjects
    clock_text: str = ""  # when its retention clock starts, as the notice says it
    legal_basis: str = SECURITY_INTEREST  # the default; `privacy.legal_basis.<name>` overrides it
    # The `limits.*` setting that starts the clock of a record left open (DESIGN invariant 4).
    open_limit: str | None = None
    at_sign_in: bool = False  # the sign-in terminal tells a visitor about it before they sign in
    # How far ahead of now its clock may start by design (a planned day), beyond the clock skew
    # every source is held to; the report fails on a clock further ahead than both.
    planned_ahead: timedelta = timedelta(0)

    @property
    def table(self) -> Table:
        """The table its records are kept in."""
        return table_of(self.model)

    @property
    def clock_column(self) -> Column[Any]:
        """The column its retention clock is kept in."""
        return self.table.c[self.clock]

    @property
    def per_site(self) -> bool:
        """Whether each record belongs to a site (else the organisation's, like the requests)."""
        return "site_id" in self.table.c


# In the order `policy show`, the report and JSON outputs list them.
ALL: tuple[Kind, ...] = (
    Kind(
        name="visits",
        restrictable=True,
        model=Visit,
        clock="retain_from",
        retention=timedelta(days=3),
        retention_help="how long a visit is kept after sign-out",
        label="visits",
        noun="visit",
        seen_by=("reception", "security", "privacy"),
        order_by="signed_in_at",
        listed=(("name", "name"), ("signed_in_at", "signed in"), ("signed_out_at", "signed out")),
        purpose="to know who is in the building, for everyone's safety in an evacuation and for "
        "security",
        data="name, company, the person visited, and the sign-in and sign-out times",
        people="visitors",
        clock_text="after sign-out",
        at_sign_in=True,
        open_limit="max_visit",
    ),
    Kind(
        name="badges",
        restrictable=True,
        model=BadgeLoan,
        clock="retain_from",
        retention=timedelta(days=3),
        retention_help="how long a badge loan is kept after return",
        label="badge loans",
        noun="loan",
        seen_by=("reception", "security", "privacy"),
        order_by="issued_at",
        found_through=("visits",),
        listed=(
            ("badge", "badge"),
            ("visit_id", "visit"),
            ("issued_at", "issued"),
            ("returned_at", "returned"),
            ("lost", "lost"),
        ),
        purpose="to know which visitor badge a visitor holds, so that it opens only the doors it "
        "should and comes back",
        data="the number of the badge lent, and when it was lent and returned",
        people="visitors",
        clock_text="after the badge is returned",
        at_sign_in=True,
        open_limit="max_badge_out",
    ),
    Kind(
        name="door_events",
        restrictable=True,
        model=DoorEvent,
        clock="retain_from",
        retention=timedelta(days=3),
        retention_help="how long a door event is kept",
        label="door events",
        noun="event",
        seen_by=("reception", "security", "privacy"),  # reception: the last door on site
        order_by="at",
        found_through=("badges",),
        listed=(("door", "door"), ("badge", "badge"), ("at", "at")),
        purpose="to secure the building: which badge opened which door, and when",
        data="the badge number, the door, the time, and whether the door opened",
        people="visitors and staff who use a badge",
        clock_text="after the door was used",
        at_sign_in=True,
    ),
    Kind(
        name="camera",
        model=CameraSegment,
        clock="retain_from",
        retention=timedelta(days=14),
        retention_help="how long a camera segment is kept after it ends",
        label="camera segments",
        noun="segment",
        seen_by=("security", "privacy"),
        order_by="start",
        listed=(("camera", "camera"), ("path", "file"), ("start", "start"), ("end", "end")),
        purpose="video surveillance of the premises, to prevent and investigate incidents",
        data="camera images of the premises, with the camera and the time they were recorded",
        people="everyone on the premises",
        clock_text="after the recording",
        at_sign_in=True,
    ),
    Kind(
        name="wifi",
        restrictable=True,
        model=WifiLease,
        clock="retain_from",
        retention=timedelta(days=365),
        retention_help="how long a lease is kept after it ends or was last seen",
        label="wifi leases",
        noun="lease",
        seen_by=("security", "privacy"),
        order_by="starts",
        listed=(
            ("mac", "mac"),
            ("ip", "ip"),
            ("hostname", "host name"),
            ("starts", "starts"),
            ("ends", "ends"),
            ("last_seen", "last seen"),
        ),
        purpose="to run and secure the wireless network: which device had which network address, "
        "and when",
        data="a device's hardware (MAC) address, its network address and name, and when it used "
        "the network",
        people="users of the wireless network",
        clock_text="after the device was last seen on the network",
        open_limit="max_lease_silence",
    ),
    # Rejected inputs are kept to show what was refused, and their raw excerpts name devices and
    # people too. Their clock is the time they were refused; an incident is about the records
    # that were stored, so no hold keeps them.
    Kind(
        name="rejections",
        model=Rejection,
        clock="at",
        retention=timedelta(days=7),
        retention_help="how long a rejected input (line, payload) is kept",
        label="rejected inputs",
        noun="rejection",
        seen_by=("privacy",),
        order_by="at",
        holdable=False,
        purpose="to show what input was refused, so that faults can be found and fixed",
        data="the refused input as it arrived, which may name a device or a person",
        people="visitors, staff and devices named in refused input",
        clock_text="after the input was refused",
    ),
    # The register of data-subject requests (`privacy.requests`): whom a request is about, how to
    # reach them, its deadline and outcome. An open request is in use; its clock starts when it
    # is closed, and the report fails on one past its deadline. No hold keeps one: it is the
    # controller's own record.
    Kind(
        name="requests",
        model=DataRequest,
        clock="retain_from",
        retention=timedelta(days=730),
        retention_help="how long a data-subject request is kept after it is closed",
        label="data-subject requests",
        noun="request",
        seen_by=("privacy",),
        order_by="received_at",
        holdable=False,
        purpose="to answer requests about personal data within the legal deadline, and to show "
        "that they were",
        data="the right used, whom the request is about, how to reach the person, its dates and "
        "its outcome",
        people="people who make a data-protection request",
        clock_text="after the request is closed",
        legal_basis=LEGAL_OBLIGATION,
    ),
    # The reception desk's own records. A hold is about what happened, not about who was
    # expected or whom to tell, so no hold keeps them.
    Kind(
        name="expected",
        model=ExpectedVisit,
        clock="retain_from",  # the end of the expected day
        retention=timedelta(days=1),
        retention_help="how long an expected visit is kept after its day ends",
        label="expected visits",
        noun="expected visit",
        seen_by=("reception", "privacy"),
        order_by="expected_on",
        holdable=False,
        purpose="to prepare a visitor's arrival at the reception desk and sign them in quickly",
        data="name, company, the person visited, the badge to lend, the expected day and the "
        "arrival",
        people="visitors who are announced",
        clock_text="after the expected day ends",
        legal_basis=RECEPTION_INTEREST,
        # An expected day is at most a year ahead (`visitors.expected`); its clock, that day's end.
        planned_ahead=timedelta(days=367),
    ),
    Kind(
        name="hosts",
        model=Host,
        clock="retain_from",  # last added, changed or named at a sign-in
        retention=timedelta(days=365),
        retention_help="how long a host stays in the directory after it was last used or changed",
        label="hosts (directory)",
        noun="host",
        seen_by=("reception", "privacy"),
        order_by="name_key",
        holdable=False,
        purpose="to know whom visitors come to see, and how to tell them that their visitor "
        "arrived",
        data="a member of staff's name, and the e-mail or webhook address to tell them at",
        people="staff whom visitors come to see",
        clock_text="after the entry was last used or changed",
        legal_basis=RECEPTION_INTEREST,
    ),
    Kind(
        name="notifications",
        model=HostNotification,
        clock="retain_from",  # when it was queued; a delivered one is deleted at once
        retention=timedelta(days=1),
        retention_help="how long an undelivered host notification is kept and retried",
        label="host notifications",
        noun="notification",
        seen_by=("privacy",),
        order_by="retain_from",
        holdable=False,
        found_through=("hosts",),  # a host's notifications go before the host's entry
        purpose="to tell a host that their visitor arrived, retrying until the message is "
        "delivered",
        data="the visitor's name and company, the sign-in time, the host, and the delivery "
        "attempts",
        people="visitors and the staff they visit",
        clock_text="after the message was queued (a delivered one is deleted at once)",
        legal_basis=RECEPTION_INTEREST,
    ),
)

# Not kinds: the evidence copies of held footage (`evidence_copies`) and case exports
# (`case_exports`) are not kept for a period of their own but for as long as a hold keeps their
# footage, or until an export is handed over or its hold ended; the purge ends them by that rule
# (`retention.evidence.release`, `retention.handover.remove_due`) and the report lists them.

_BY_NAME = {kind.name: kind for kind in ALL}
NAMES: tuple[str, ...] = tuple(_BY_NAME)
# The kinds an incident hold can keep: DESIGN.md's record kinds, and `hold place --kind`'s choices.
HOLDABLE: tuple[str, ...] = tuple(kind.name for kind in ALL if kind.holdable)
# The kinds a restriction of processing hides (`privacy.restriction`).
RESTRICTABLE: tuple[str, ...] = tuple(kind.name for kind in ALL if kind.restrictable)


def get(name: str) -> Kind:
    """The kind called `name`; KeyError if there is none (callers check input with NAMES)."""
    return _BY_NAME[name]


def described(names: Iterable[str]) -> str:
    """The kinds named, for help texts: `visits, badges (badge loans), ...`."""
    return ", ".join(
        name if get(name).label == name else f"{name} ({get(name).label})" for name in names
    )


def _deletion_order(kinds: tuple[Kind, ...]) -> tuple[Kind, ...]:
    """`kinds` in their own order, except that each comes before every kind it is found through."""
    left, ordered = list(kinds), []
    while left:
        free = next(k for k in left if not any(k.name in o.found_through for o in left))
        ordered.append(free)
        left.remove(free)
    return tuple(ordered)


# The order purges and erasures delete in. Deleting a visit before its badge loans would first
# make the foreign key set each loan's visit_id to NULL, and an erasure would lose the visits
# through which it finds a person's loans and their door events.
DELETE_ORDER: tuple[Kind, ...] = _deletion_order(ALL)
