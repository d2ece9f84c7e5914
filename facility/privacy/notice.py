"""The privacy notice (GDPR article 13), made from the policies in force and `[privacy]`.

What is recorded, why, on what legal basis, for how long and who sees it comes from the record
kinds (`store.kinds`: their texts, the roles whose work shows them) and the retention policies in
force (`retention.policies.in_force`, with any shortening still waiting); who is responsible,
where to ask and the legal bases a site chose come from the `[privacy]` settings. So a policy
change changes the notice at once, and nobody keeps a hand-written copy that goes stale.

Its version is a digest of everything it is made from (policies, pending shortenings, the
settings, the words), so two notices with the same version say the same; the report names the
version in force.

Per site (issue 15): the notice of an office tells what is in force there (`policies.at_site`: its
own policy, else the organisation's, never above its country's legal ceiling); with several sites
it names the office and, per kind, its country's ceiling, and its version is its own. A
single-site install's notice reads as before sites, with the organisation's version.

Text for a terminal or mail, HTML for the screen and for printing on A4 (one
self-contained page, like the report), in English or Dutch (`wording`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from importlib.resources import files
from typing import Any

from sqlmodel import Session, select

from facility import sites as offices
from facility.privacy import wording
from facility.render import html_page
from facility.retention import policies
from facility.settings import Limits, Privacy
from facility.store import kinds as registry
from facility.store.models import Policy, Site
from facility.timefmt import site_text, utc_text

ROLE_WORDS = {
    "reception": "reception staff",
    "security": "security staff",
    "privacy": "the privacy officer",
}
TEMPLATE = "notice.html"
WIDTH = 78


@dataclass(frozen=True)
class Version:
    """Which notice is in force: a digest of what it is made from, and since when."""

    digest: str
    since: datetime  # the latest policy change in force (or the seeding)

    def as_json(self) -> dict[str, Any]:
        """`{"version", "in_force_since"}`."""
        return {"version": self.digest, "in_force_since": utc_text(self.since)}


def version(
    session: Session, privacy: Privacy, *, now: datetime, site: Site | None = None
) -> Version:
    """The version of the notice at `now`, from the policy rows, the settings and the words: the
    organisation's policies, or with `site` what is in force there (`policies.at_site`) and,
    when there are several sites, the office itself (its notice names it and its ceilings)."""
    if site is None:
        rows = session.exec(select(Policy)).all()
        held = [
            (
                row.kind,
                int(policies.effective(row, now=now).total_seconds()),
                _pending_key(policies.pending_of(row, now=now)),
            )
            for row in rows
        ]
        starts = [row.changed_at for row in rows] + [
            row.pending_from for row in rows if row.pending_from and row.pending_from <= now
        ]
        office: dict[str, Any] = {}
    else:
        found = policies.at_site(session, site, now=now)
        held = [(p.kind, int(p.duration.total_seconds()), _pending_key(p.waiting)) for p in found]
        starts = [p.since for p in found if p.since is not None]
        starts += [p.ceiling_since for p in found if p.capped and p.ceiling_since is not None]
        office = {"site": _office(site, found)} if _several(session) else {}
    # A single site whose policies are the organisation's has the organisation's version.
    made_of = {
        "policies": sorted(held),
        "privacy": privacy.model_dump(),
        "words": _words_digest(),
        **office,
    }
    text = json.dumps(made_of, sort_keys=True, default=str)
    return Version(hashlib.sha256(text.encode()).hexdigest()[:12], max(starts, default=now))


def _several(session: Session) -> bool:
    return len(offices.listing(session)) > 1


def _office(site: Site, found: list[policies.InForce]) -> dict[str, Any]:
    """What a site's own notice says about the office: its name, zone and legal ceilings."""
    return {
        "code": site.code,
        "name": site.name,
        "country": site.country,
        "timezone": site.timezone,
        "ceilings": sorted(
            (p.kind, int(p.ceiling.total_seconds()), p.ceiling_source or "")
            for p in found
            if p.ceiling is not None
        ),
    }


def _pending_key(found: policies.Pending | None) -> Any:
    return None if found is None else [found.duration.total_seconds(), found.takes_effect]


@functools.cache
def _words_digest() -> str:
    """A digest of every word the notice can say: the catalogue, the kinds, the template."""
    template = (files("facility") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    texts = [inspect.getsource(wording), inspect.getsource(registry), template]
    return hashlib.sha256("\0".join(texts).encode()).hexdigest()


@dataclass(frozen=True)
class KindText:
    """One kind as the notice tells it, in the reader's language."""

    kind: str
    label: str
    purpose: str
    data: str
    people: str
    legal_basis: str
    duration: str  # the policy in force, in words: `3 days`
    clock: str  # when it starts: `after you sign out`
    pending: str  # a shortening waiting, as a sentence; "" when none
    left_open: str  # the open-record limit, as a sentence; "" when the kind has none
    seen_by: str
    retention: timedelta
    ceiling: str = ""  # the country's legal ceiling, as a sentence; "" when not told

    @property
    def how_long(self) -> str:
        """`3 days after you sign out`."""
        return f"{self.duration} {self.clock}"

    @property
    def how_long_in_full(self) -> str:
        """How long, the legal ceiling, the open-record limit and a shortening waiting."""
        parts = (self.how_long + ".", self.ceiling, self.left_open, self.pending)
        return " ".join(x for x in parts if x)


@dataclass(frozen=True)
class Notice:
    """Everything the notice says, in one language."""

    lang: str
    version: Version
    generated: str
    since: str
    controller: str
    contact: str
    dpo: str
    authority: str
    kinds: list[KindText]
    t: Callable[[str], str]
    office: str = ""  # the site's name, when the organisation has several

    def office_line(self) -> str:
        """`Office: Brussels.`, or "" when there is one site."""
        return self.sentence("Office: {office}.", office=self.office) if self.office else ""

    def sentence(self, text: str, **values: Any) -> str:
        """`text` in the notice's language, with `values` put in."""
        return self.t(text).format(**values)

    def responsible(self) -> list[str]:
        """The lines of "who is responsible"."""
        lines = [
            self.sentence(
                "{controller} is responsible for this data (the controller).",
                controller=self.controller,
            )
            if self.controller
            else self.t("Ask at reception who is responsible for this data.")
        ]
        lines.append(
            self.sentence("Questions and requests: {contact}.", contact=self.contact)
            if self.contact
            else self.t("Questions and requests: at reception.")
        )
        if self.dpo:
            lines.append(self.sentence("Data protection officer: {dpo}.", dpo=self.dpo))
        return lines

    def rights(self) -> list[str]:
        """The rights, one sentence each."""
        return [
            self.t(
                "See what we keep about you (access, article 15), and receive it in a "
                "machine-readable form (portability, article 20)."
            ),
            self.t("Have it corrected when it is wrong (rectification, article 16)."),
            self.t(
                "Have it erased (erasure, article 17), unless an incident investigation still "
                "needs it."
            ),
            self.t(
                "Have its use restricted while a question about it is settled (restriction, "
                "article 18): it is then kept, but shown to no one but the privacy officer."
            ),
            self.t(
                "Object to its use (objection, article 21); for the wireless network we then "
                "stop recording your device."
            ),
            self.sentence(
                "Complain to {authority}.",
                authority=self.authority or self.t("the data protection authority of your country"),
            ),
        ]

    def how_to(self) -> list[str]:
        """How to use the rights, and the deadline."""
        ask = (
            self.sentence(
                "Ask {contact}, in writing or at reception. Say which right you use and, for the "
                "wireless network, your device's hardware (MAC) address.",
                contact=self.contact,
            )
            if self.contact
            else self.t(
                "Ask at reception, or in writing. Say which right you use and, for the wireless "
                "network, your device's hardware (MAC) address."
            )
        )
        return [
            ask,
            self.t(
                "We answer within one month of receiving your request. When a request is complex "
                "we may take two more months; we then tell you so, and why, within the first "
                "month."
            ),
        ]

    def holds(self) -> str:
        """The one exception to the retention periods."""
        return self.t(
            "When an incident is investigated, the records it needs may be kept longer under an "
            "incident hold, and only as long as the investigation needs them. Every hold is "
            "recorded with its reason and reviewed."
        )

    def visitor_lines(self) -> list[str]:
        """One sentence per kind a visit records (`at_sign_in`), for the sign-in terminal."""
        return [
            self.sentence(
                "We keep {label} {duration} {clock}.",
                label=k.label,
                duration=k.duration,
                clock=k.clock,
            )
            for k in self.kinds
            if registry.get(k.kind).at_sign_in
        ]


@dataclass(frozen=True)
class _Policy:
    """One kind's policy as the notice tells it: in force, waiting, and the ceiling to name."""

    duration: timedelta
    pending: policies.Pending | None
    ceiling: timedelta | None = None
    ceiling_source: str = ""
    country: str = ""


def _policies(session: Session, site: Site | None, *, now: datetime) -> dict[str, _Policy]:
    """The organisation's policies in force (no `site`), or what is in force at `site`: its own,
    else the organisation's, never above its country's ceiling. The ceiling is named where it
    matters: in the notice of one office among several, or where it cuts the policy short."""
    if site is None:
        waiting = {p.kind: p for p in policies.pending(session, now=now)}
        return {
            kind: _Policy(duration, waiting.get(kind))
            for kind, duration in policies.in_force(session, now=now).items()
        }
    several = _several(session)
    return {
        p.kind: _Policy(
            p.duration,
            p.waiting,
            *(
                (p.ceiling, p.ceiling_source or "", site.country)
                if p.ceiling is not None and (several or p.capped)
                else ()
            ),
        )
        for p in policies.at_site(session, site, now=now)
    }


def build(
    session: Session,
    privacy: Privacy,
    limits: Limits,
    *,
    now: datetime,
    site_zone: tzinfo,
    lang: str = "en",
    strict: bool = False,
    site: Site | None = None,
) -> Notice:
    """The notice at `now` in `lang`; `strict` raises `wording.Untranslated` for a missing word.

    Without `site`, the organisation's policies; with it, that office's notice: the policies in
    force there, and (when there are several sites) its name and its country's legal ceilings.
    `site_zone` is the zone its times are written in (the site's own, `sites.zone_of`).
    """

    def t(text: str) -> str:
        return wording.say(text, lang, strict=strict)

    in_force = _policies(session, site, now=now)
    kinds = []
    for kind in registry.ALL:
        if kind.name not in in_force:
            continue
        clock = t(kind.clock_text)
        found = in_force[kind.name]
        duration, pending = found.duration, found.pending
        basis = privacy.legal_basis.get(kind.name)
        kinds.append(
            KindText(
                kind=kind.name,
                label=t(kind.label),
                purpose=t(kind.purpose),
                data=t(kind.data),
                people=t(kind.people),
                legal_basis=basis if basis else t(kind.legal_basis),
                duration=words(duration, t),
                clock=clock,
                pending=""
                if pending is None
                else t("From {when}: {duration} {clock}.").format(
                    when=site_text(pending.takes_effect, site_zone),
                    duration=words(pending.duration, t),
                    clock=clock,
                ),
                left_open=""
                if kind.open_limit is None
                else t("Left open, it is closed automatically after {duration}.").format(
                    duration=words(getattr(limits, kind.open_limit), t)
                ),
                seen_by=", ".join(t(ROLE_WORDS[r]) for r in kind.seen_by if r in ROLE_WORDS),
                retention=duration,
                ceiling=""
                if found.ceiling is None
                else t("Legal limit in {country}: {duration}. Source: {source}.").format(
                    country=found.country,
                    duration=words(found.ceiling, t),
                    source=found.ceiling_source.rstrip("."),
                ),
            )
        )
    made = version(session, privacy, now=now, site=site)
    return Notice(
        lang=lang,
        version=made,
        generated=site_text(now, site_zone),
        since=site_text(made.since, site_zone),
        controller=privacy.controller,
        contact=privacy.contact,
        dpo=privacy.dpo,
        authority=privacy.authority,
        kinds=kinds,
        t=t,
        office=site.name if site is not None and _several(session) else "",
    )


def words(value: timedelta, t: Callable[[str], str]) -> str:
    """A duration in words: `3 days`, `1 day and 12 hours`, `90 minutes` becomes `1 hour and
    30 minutes`."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(t(f"{{n}} {unit}" + ("" if count == 1 else "s")).format(n=count))
    if not parts:
        return t("{n} seconds").format(n=0)
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {t('and')} {parts[-1]}"


def render(notice: Notice, output_format: str) -> str:
    """The notice as `txt` or `html` (one self-contained page, A4 when printed)."""
    if output_format == "html":
        return html_page(TEMPLATE, n=notice)
    return text(notice)


def text(notice: Notice) -> str:
    """The notice as plain text, wrapped for a terminal or a mail."""
    t = notice.t
    out = [t("Privacy notice").upper(), t("How we handle your personal data on these premises"), ""]
    if notice.office:
        out += [*_wrapped(notice.office_line()), ""]
    out += _wrapped(
        notice.sentence(
            "Version {version}; retention as in force since {since}.",
            version=notice.version.digest,
            since=notice.since,
        )
        + " "
        + notice.sentence("Printed {when}.", when=notice.generated)
    )
    out += ["", t("Who is responsible"), ""]
    for line in notice.responsible():
        out += _wrapped(line, "  ")
    out += ["", t("What we record, why, and for how long"), ""]
    for k in notice.kinds:
        out.append(f"  {k.label[:1].upper()}{k.label[1:]} ({k.people})")
        for label, value in (
            (t("What"), k.data),
            (t("Why"), k.purpose),
            (t("Legal basis"), k.legal_basis),
            (t("How long"), k.how_long_in_full),
            (t("Who sees it"), k.seen_by),
        ):
            out += _wrapped(f"{label}: {value}", "    ", "      ")
        out.append("")
    out += [t("Kept longer only for an incident"), ""]
    out += _wrapped(notice.holds(), "  ")
    out += ["", t("Your rights"), ""]
    for line in notice.rights():
        out += _wrapped(line, "  - ", "    ")
    out += ["", t("How to use them"), ""]
    for line in notice.how_to():
        out += _wrapped(line, "  ")
    out += [""]
    out += _wrapped(
        t(
            "This notice is made from the retention policies in force: when a policy changes, so "
            "does this notice."
        )
    )
    return "\n".join(out) + "\n"


def _wrapped(line: str, first: str = "", rest: str | None = None) -> list[str]:
    return textwrap.wrap(
        line,
        WIDTH,
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_on_hyphens=False,
    )


def english(value: timedelta) -> str:
    """A duration in English words, as the register writes it."""
    return words(value, lambda text_: text_)
