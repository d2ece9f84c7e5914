"""A hold's timeline per camera, as SVG geometry: segments as spans, door events as ticks.

Pure arithmetic from times to x positions over the hold's window; the template draws it (SVG
attributes, no inline style, so the page's Content-Security-Policy stays strict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

WIDTH = 1000  # the drawing's own units; the SVG scales to the page
MIN_SPAN = 0.5  # a segment narrower than this is drawn this wide, so it can be seen and clicked


@dataclass(frozen=True)
class Span:
    """One segment on a camera's row."""

    segment_id: int
    x: float
    width: float
    title: str
    preserved: bool


@dataclass(frozen=True)
class Tick:
    """One door event."""

    x: float
    title: str


@dataclass
class Row:
    """One camera."""

    camera: str
    spans: list[Span] = field(default_factory=list)


@dataclass
class Timeline:
    """The rows, the door ticks drawn across them, and the window's labels."""

    rows: list[Row]
    ticks: list[Tick]
    start_label: str
    end_label: str
    width: int = WIDTH


def position(at: datetime, start: datetime, end: datetime) -> float:
    """`at`'s x within [start, end], clamped to the drawing."""
    total = (end - start).total_seconds() or 1.0
    return max(0.0, min(WIDTH, WIDTH * (at - start).total_seconds() / total))


def build(
    start: datetime,
    end: datetime,
    segments: list[dict[str, Any]],
    events: list[dict[str, Any]],
    *,
    label: Callable[[datetime], str],
) -> Timeline:
    """The timeline of `segments` (id, camera, start, end, evidence) and door `events` (door,
    badge, at) over the window [start, end]; `label` writes an instant for people."""
    if end <= start:
        end = start + timedelta(seconds=1)
    rows: dict[str, Row] = {}
    for seg in segments:
        x = position(seg["start"], start, end)
        width = max(MIN_SPAN, position(seg["end"], start, end) - x)
        title = f"{seg['camera']} {label(seg['start'])} to {label(seg['end'])}"
        rows.setdefault(seg["camera"], Row(seg["camera"])).spans.append(
            Span(seg["id"], round(x, 2), round(width, 2), title, seg.get("evidence") is not None)
        )
    ticks = [
        Tick(round(position(e["at"], start, end), 2), f"{e['door']} {e['badge']} {label(e['at'])}")
        for e in events
    ]
    ordered = [rows[name] for name in sorted(rows)]
    return Timeline(ordered, ticks, label(start), label(end))
