"""The report's charts: per kind, how old the kept records are against the policy line.

Rendered server-side to SVG by pygal and inlined in the page. pygal puts its CSS inside the SVG;
`js=[]` leaves out the tooltip script it would otherwise load from the web and an XML filter
drops the inline settings meant for it, so the page has no script and needs no network. One histogram per kind: age on x, the policy as a vertical line, and past the line the
bars stack held (amber), awaiting the next purge (grey) and overdue (red), so a reader sees at a
glance that nothing red crosses it.

Counts go on a logarithmic y axis, drawn as log10(1 + n) on a linear one with labelled powers of
ten: pygal's own `logarithmic` would make the x axis logarithmic too, and age 0 has no logarithm.
On it a single record past the line stands visibly beside half a million within it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pygal
from pygal.style import Style

from facility.privacy.report import AgeBucket, KindStatus
from facility.timeutil import format_duration

COLOURS = {
    "within": "#3f6fb0",
    "overdue": "#c62828",
    "awaiting": "#9e9e9e",
    "held": "#e6a020",
    "policy": "#111111",
}
LABELS = {
    "within": "within policy",
    "overdue": "overdue, not held",
    "awaiting": "expired, awaiting the next purge",
    "held": "past policy, held",
}
SERIES = ("within", "overdue", "awaiting", "held", "policy")  # the order pygal draws them in
_UNITS = (
    ("days", timedelta(days=1)),
    ("hours", timedelta(hours=1)),
    ("minutes", timedelta(minutes=1)),
)
_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#ccc",
    opacity="1",  # opaque, so the bars stacked past the line read as a stack
    opacity_hover="1",
    colors=tuple(COLOURS[s] for s in SERIES),
    font_family="system-ui, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    title_font_size=13,
)


def age_chart(status: KindStatus) -> str:
    """An SVG histogram of `status`'s record ages with the policy line ('' without a policy)."""
    if status.policy is None or not status.ages:
        return ""
    unit_name, unit = _unit(status.ages[-1].end)
    end = status.ages[-1].end / unit
    power = _axis_power(status.ages)
    chart = pygal.Histogram(
        js=[],
        style=_STYLE,
        disable_xml_declaration=True,
        width=800,
        height=230,
        margin=6,
        show_legend=False,
        x_title=f"age ({unit_name} since the retention clock started)",
        y_title="records",
        range=(0, _height(10**power)),
        x_labels=_x_labels(status.policy / unit, end),
        x_value_formatter=lambda x: f"{x:g}",
        y_labels=[{"label": f"{10**k:,}", "value": _height(10**k)} for k in range(power + 1)],
        print_values=False,
    )
    _add_bars(chart, status.ages, unit)
    line, half = status.policy / unit, end / 300
    policy = f"policy {format_duration(status.policy)}"
    # pygal's Histogram sizes its x axis to the bars, not to `xrange`: an empty bar at the end
    # keeps the buckets past the line in view even when none has a record.
    chart.add(policy, [(_height(10**power), max(line - half, 0), line + half), (0, end, end)])
    chart.add_xml_filter(_without_scripts)
    svg: str = chart.render(is_unicode=True)
    return svg


def _without_scripts(root: Any) -> Any:  # the XML tree pygal built (lxml's or ElementTree's)
    """Drop the `<script>` pygal always writes: tooltip settings for a script we do not load."""
    for parent in list(root.iter()):
        for child in list(parent):
            if str(child.tag).rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _height(count: int) -> float:
    return math.log10(1 + count)


def _add_bars(chart: pygal.Histogram, ages: list[AgeBucket], unit: timedelta) -> None:
    """Within policy, then past it the stack drawn tallest first, each bar over the one before."""

    def bars(count: Callable[[AgeBucket], int]) -> list[tuple[float, float, float]]:
        found = [(count(b), b.start / unit, b.end / unit) for b in ages]
        return [(_height(n), start, end) for n, start, end in found if n > 0]

    chart.add(LABELS["within"], bars(lambda b: b.within))
    chart.add(LABELS["overdue"], bars(lambda b: b.held + b.awaiting + b.overdue))
    chart.add(LABELS["awaiting"], bars(lambda b: b.held + b.awaiting))
    chart.add(LABELS["held"], bars(lambda b: b.held))


def _unit(span: timedelta) -> tuple[str, timedelta]:
    for name, size in _UNITS:
        if span >= 2 * size:
            return name, size
    return _UNITS[-1]


def _axis_power(ages: list[AgeBucket]) -> int:
    """The y axis ends at the power of ten above the tallest bar (at least 10)."""
    highest = max(max(b.within, b.held + b.awaiting + b.overdue) for b in ages)
    return max(1, math.ceil(math.log10(highest + 1)))


def _x_labels(policy: float, end: float) -> list[float]:
    """Round ticks (1, 2 or 5 times a power of ten, about six of them) and the policy itself."""
    raw = end / 6 or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [round(i * step, 6) for i in range(int(end // step) + 1)]
    # A tick too close to the policy label would print over it.
    return sorted({policy, *(t for t in ticks if abs(t - policy) > step / 3)})
