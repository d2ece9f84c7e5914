"""The retention report as people and programs read it: Markdown, JSON, or one printable HTML file.

The HTML page is self-contained: its CSS is inline, each chart an inline SVG (`report_charts`), no
script, font or image is fetched, so it can be mailed, archived and printed as it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from markupsafe import Markup

from facility.privacy.report import KindStatus, Report
from facility.privacy.report_charts import COLOURS, LABELS, age_chart
from facility.render import html_page, json_text
from facility.store.kinds import NAMES
from facility.timefmt import hold_status, site_text
from facility.timeutil import format_duration, zone

RECENT_RUNS = 10  # purge runs listed one by one; the totals cover the whole period
_SECOND = timedelta(seconds=1)
REQUEST_HEADERS = ["request", "type", "received", "answer by", "extended", "state"]
PENDING_HEADERS = ["kind", "shortened to", "takes effect", "set by"]


def render(report: Report, output_format: str, zone_name: str) -> str:
    """The report as `md`, `json` or `html`, times in the site zone."""
    if output_format == "json":
        return json_text(report.as_json()) + "\n"
    view = _View(report, zone(zone_name), zone_name)
    if output_format == "html":
        return html_page("report.html", v=view, colours=COLOURS, labels=LABELS)
    return markdown(view)


def age(value: timedelta | None) -> str:
    """An age to the minute, e.g. `2d4h13m`; a clock that starts later reads `in 3h`."""
    if value is None:
        return ""
    minutes = int(abs(value.total_seconds()) // 60)
    text = format_duration(timedelta(minutes=minutes)) if minutes else "<1m"
    return f"in {text}" if value < timedelta(0) else text


class _View:
    """What both templates need, in display form."""

    def __init__(self, report: Report, site: tzinfo, zone_name: str) -> None:
        self.r, self.site, self.zone_name = report, site, zone_name
        self.generated = site_text(report.generated_at, site)
        self.since = site_text(report.since, site)
        self.interval = format_duration(report.interval)

    def time(self, value: datetime | str | None) -> str:
        """A stored instant (or its machine form) as site time."""
        return site_text(_instant(value), self.site)

    def kind_rows(self) -> list[list[Any]]:
        """One row per kind for the records table."""
        return [_kind_row(self.r.kinds[k], self) for k in self.r.kinds]

    def site_rows(self) -> list[list[Any]]:
        """With several sites: one row per site and kind, the site's code first."""
        return [
            [code, *_kind_row(status, self)]
            for code, found in self.r.sites.items()
            for status in found.values()
        ]

    def held_rows(self) -> list[list[Any]]:
        """(case, kind, records) kept past policy."""
        return [
            [case, s.kind, n]
            for s in self.r.kinds.values()
            for case, n in sorted(s.held_by_case.items())
        ]

    def overdue(self) -> list[KindStatus]:
        """The kinds with overdue unheld records."""
        return [s for s in self.r.kinds.values() if s.overdue_unheld]

    def hold_rows(self) -> list[list[Any]]:
        """One row per active hold."""
        rows = []
        for h in self.r.holds:
            item = h.item
            review = self.time(item["review_by"]) if item["review_by"] else ""
            if h.review_passed:
                review += " (passed)"
            released = _instant(item["released_at"])
            status = hold_status(
                released, h.protects_until, now=self.r.generated_at, site_zone=self.site
            )
            rows.append(
                [
                    item["case"],
                    self.time(item["placed_at"]),
                    age(h.age),
                    f"{self.time(item['from'])} to {self.time(item['to'])}",
                    status,
                    review,
                    ", ".join(_scope(s) for s in item["scopes"]),
                    ", ".join(f"{k} {n}" for k, n in h.keeps.items() if n) or "nothing",
                ]
            )
        return rows

    def recent_purges(self) -> list[list[Any]]:
        """The last RECENT_RUNS purge runs, newest first."""
        return [
            [
                self.time(p["at"]),
                p["actor"],
                _counts(p["deleted"]),
                _counts(p["held"]),
                p["files"].get("refused", 0) + p["files"].get("failed", 0),
            ]
            for p in reversed(self.r.purges[-RECENT_RUNS:])
        ]

    def activity_lines(self) -> list[str]:
        """The period's bookkeeping, one line each."""
        r = self.r
        last = f" (last {self.time(r.purges[-1]['at'])})" if r.purges else ""
        closes = r.auto_close_totals()
        lines = [
            f"Purge runs: {len(r.purges)}{last}; deleted {_counts(r.purge_totals())}",
            f"Camera file deletions refused or failed: {r.files_refused}",
            f"Auto-closes: {len(r.auto_closes)}" + (f" ({_counts(closes)})" if closes else ""),
            f"Camera scans refused: {len(r.scan_refusals)}"
            + "".join(
                f"; {self.time(s['at'])} {s.get('reason', '')}" for s in r.scan_refusals[-5:]
            ),
            "Rejected inputs: "
            + (", ".join(f"{source} {n}" for source, n in r.rejections.items()) or "none"),
            f"Personal selectors of released holds: {r.hold_selectors.pseudonymised} "
            f"pseudonymised, {r.hold_selectors.in_clear + r.hold_selectors.overdue} in the clear "
            f"({r.hold_selectors.overdue} past their grace)",
            f"Refused attempts (role): {r.activity.get('refused', 0)}",
            f"Web sessions: {r.web_sessions.get('live', 0)} live, "
            f"{r.web_sessions.get('expired', 0)} expired awaiting the next purge",
            f"Data-subject requests: {r.activity.get('subject.export', 0)} export(s), "
            f"{r.activity.get('subject.erase', 0)} erasure(s), "
            f"{r.activity.get('visit.rectify', 0)} correction(s); "
            f"{r.activity.get('request.open', 0)} request(s) received, "
            f"{r.activity.get('request.close', 0)} closed",
            f"Restricted subjects (article 18): {r.restricted}",
            f"Wifi objections (article 21): {r.objections.get('devices', 0)} device(s); "
            f"{r.objections.get('leases_ignored', 0)} lease report(s) counted and not stored",
        ]
        if r.case_files is not None:
            views = r.case_files.footage_views
            copies = r.case_files.evidence
            lines += [
                f"Footage viewings: {sum(views.values())}"
                + (
                    " (" + ", ".join(f"{case} {n}" for case, n in views.items()) + ")"
                    if views
                    else ""
                ),
                f"Evidence copies of held footage: {copies.get('link', 0)} linked, "
                f"{copies.get('copy', 0)} copied ({copies.get('bytes', 0)} bytes), "
                f"{copies.get('unheld', 0)} no hold keeps",
                f"Case exports still on disk here: {len(r.case_files.exports)}",
            ]
        return lines

    def request_rows(self) -> list[list[Any]]:
        """One row per open data-subject request: id, type, received, answer by, state."""
        return [
            [
                r["id"],
                r["type"],
                self.time(r["received_at"]),
                self.last_day(r["due_at"]),
                f"+{r['extended_months']} month(s)" if r["extended_months"] else "",
                "OVERDUE" if r["overdue"] else "open",
            ]
            for r in self.r.requests.open
        ]

    def last_day(self, due_at: str) -> str:
        """The last day an answer is on time, in site time (due_at is the first late instant)."""
        instant = _instant(due_at)
        return "" if instant is None else str((instant.astimezone(self.site) - _SECOND).date())

    def pending_rows(self) -> list[list[Any]]:
        """One row per shortening still waiting: kind, new policy, from when, set by."""
        return [
            [p.kind, format_duration(p.duration), self.time(p.takes_effect), p.set_by]
            for p in self.r.pending_policies
        ]

    def notice_line(self) -> str:
        """Which privacy notice is in force."""
        found = self.r.notice
        if found is None:
            return "Privacy notice: unknown"
        return (
            f"Privacy notice in force: version {found.digest} (retention as in force since "
            f"{self.time(found.since)}); `facility notice` prints it."
            if not self.r.site_notices
            else f"Privacy notice of the organisation's policies: version {found.digest} "
            f"(retention as in force since {self.time(found.since)}); each site's own below, "
            "`facility --site CODE notice` prints it."
        )

    def site_notice_rows(self) -> list[list[str]]:
        """With several sites: each site's notice in force (site, version, in force since)."""
        return [
            [code, found.digest, self.time(found.since)]
            for code, found in self.r.site_notices.items()
        ]

    def export_rows(self) -> list[list[Any]]:
        """One row per case export still on disk."""
        if self.r.case_files is None:
            return []
        return [
            [
                x["id"],
                x["case"],
                x["location"],
                f"{self.time(x['exported_at'])} by {x['exported_by']}",
                self.time(x["handed_over_at"]) if x["handed_over_at"] else "",
                self.time(x["due_since"]) if x["due_since"] else "while its hold protects",
            ]
            for x in self.r.case_files.exports
        ]

    def job_rows(self) -> list[list[Any]]:
        """One row per daemon job."""
        return [
            [
                j["job"],
                self.time(j["last_success"]) if j["last_success"] else "never",
                self.time(j["last_failure"]) if j["last_failure"] else "",
                ("FAILING: " + (j["last_error"] or "")) if j["failing"] else "ok",
            ]
            for j in self.r.jobs
        ]

    def charts(self) -> list[tuple[KindStatus, Markup]]:
        """Each kind with its chart (pygal's SVG, trusted: it escapes what it draws)."""
        return [(self.r.kinds[k], Markup(age_chart(self.r.kinds[k]))) for k in self.r.kinds]

    def audit_line(self) -> str:
        """The chain's verdict in one sentence."""
        v = self.r.verdict
        if v.ok:
            return f"Intact: {v.entries} entries, head {v.head} ({self.audit_scope()})"
        return f"BROKEN after {v.entries} good entries: {v.problem}; last good head {v.head}"

    def audit_scope(self) -> str:
        """How much of the chain this report walked, and the anchors it compared."""
        v = self.r.verdict
        walked = (
            f"checked from the checkpoint at entry {v.from_seq}"
            if v.from_seq
            else "every entry checked"
        )
        return f"{walked}; {v.anchors} head(s) anchored outside the database match"


KIND_HEADERS = [
    "kind",
    "policy",
    "records",
    "clock not started",
    "oldest clock start",
    "age",
    "overdue, not held",
    "past policy, held",
]
HOLD_HEADERS = ["case", "placed", "age", "window", "status", "review by", "scopes", "keeps now"]
PURGE_HEADERS = ["at", "by", "deleted", "held", "files refused"]
JOB_HEADERS = ["job", "last success", "last failure", "state"]
EXPORT_HEADERS = ["export", "case", "where", "exported", "handed over", "to be deleted from"]


def _instant(value: datetime | str | None) -> datetime | None:
    """An instant the report holds as itself or in its machine form (which ends in `Z`)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _kind_row(s: KindStatus, view: _View) -> list[Any]:
    policy = "none" if s.policy is None else format_duration(s.policy)
    oldest = view.time(s.oldest_retain_from) if s.oldest_retain_from else ""
    return [
        s.kind,
        policy,
        s.count,
        s.open,
        oldest,
        age(s.oldest_age),
        s.overdue_unheld,
        s.overdue_held,
    ]


def _scope(scope: dict[str, Any]) -> str:
    return f"{scope['kind']}:{scope['selector']}" if scope["selector"] else f"all {scope['kind']}"


def _counts(counts: dict[str, int]) -> str:
    order = sorted(counts, key=lambda k: (NAMES.index(k) if k in NAMES else len(NAMES), k))
    return ", ".join(f"{k} {counts[k]}" for k in order if counts[k]) or "nothing"


# --- Markdown ------------------------------------------------------------------------------------


def markdown(view: _View) -> str:
    """The report as Markdown: a summary a cron mail can carry, tables a person can read."""
    out = [
        "# Retention report",
        "",
        f"Generated {view.generated} ({view.zone_name}); period from {view.since}.",
        "",
        *_result(view.r),
        "",
        view.notice_line(),
        *_md_site_notices(view),
        *_md_records(view),
        *_md_holds(view),
        *_md_rights(view),
        *_md_activity(view),
        "",
        "## Audit trail",
        "",
        view.audit_line(),
        "",
    ]
    return "\n".join(out)


def _md_site_notices(view: _View) -> list[str]:
    rows = view.site_notice_rows()
    if not rows:
        return []
    return ["", md_table(["site", "privacy notice in force", "retention in force since"], rows)]


def _md_records(view: _View) -> list[str]:
    out = ["", "## Records against policy", "", md_table(KIND_HEADERS, view.kind_rows())]
    for s in view.overdue():
        shown = len(s.overdue_ids)
        more = f" (first {shown} of {s.overdue_unheld})" if s.overdue_unheld > shown else ""
        out += ["", f"**{s.kind} overdue, not held{more}:** ids {_ids(s.overdue_ids)}"]
    if view.held_rows():
        table = md_table(["case", "kind", "records"], view.held_rows())
        out += ["", "### Kept past policy by holds", "", table]
    if view.r.sites:
        table = md_table(["site", *KIND_HEADERS], view.site_rows())
        out += ["", "### Per site, each against its own policy", "", table]
    return out


def _md_holds(view: _View) -> list[str]:
    r = view.r
    out = ["", "## Holds", ""]
    none = "No hold protects anything now."
    out.append(md_table(HOLD_HEADERS, view.hold_rows()) if r.holds else none)
    if r.releases:
        rows = [
            [x["case"], view.time(x["released_at"]), x["released_by"], x["reason"]]
            for x in r.releases
        ]
        table = md_table(["case", "released", "by", "reason"], rows)
        out += ["", "### Released in the period", "", table]
    return out


def _md_rights(view: _View) -> list[str]:
    r = view.r
    out = ["", "## Data-subject requests", ""]
    rows = view.request_rows()
    out.append(md_table(REQUEST_HEADERS, rows) if rows else "No request is open.")
    if r.pending_policies:
        out += ["", "### Shortened policies waiting for their delay", ""]
        out.append(md_table(PENDING_HEADERS, view.pending_rows()))
    return out


def _md_activity(view: _View) -> list[str]:
    r = view.r
    out = ["", "## Activity in the period", ""]
    out += [f"- {line}" for line in view.activity_lines()]
    if view.export_rows():
        table = md_table(EXPORT_HEADERS, view.export_rows())
        out += ["", "### Case exports still on disk", "", table]
    if r.purges:
        table = md_table(PURGE_HEADERS, view.recent_purges())
        out += ["", f"### Last purge runs (of {len(r.purges)})", "", table]
    out += ["", "## Daemon jobs", ""]
    out.append(md_table(JOB_HEADERS, view.job_rows()) if r.jobs else "No daemon job has run yet.")
    return out


def _result(r: Report) -> list[str]:
    if r.ok:
        lines = [
            "**Result: OK.** Nothing is kept past its policy unless a hold keeps it, "
            "and the audit trail is intact."
        ]
    else:
        lines = ["**Result: FAILED.**", ""] + [f"- {f}" for f in r.failures]
    if r.warnings:
        lines += ["", "To look at:", ""] + [f"- {w}" for w in r.warnings]
    return lines


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown pipe table; pipes and line breaks in cells are escaped."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
