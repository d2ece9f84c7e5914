"""Map a camera recording's file path to the segment it holds, without touching the filesystem.

The camera scanner walks the recordings root and hands each file's path, relative to the root and in
POSIX form, to `Layout.parse`; this module only reads the path. Layouts:

- `frigate` (Frigate >= 0.12): `YYYY-MM-DD/HH/<camera>/MM.SS.mp4`, UTC; camera `^[a-zA-Z0-9_-]+$`.
- `motioneye`: `Camera<N>/%Y-%m-%d/%H-%M-%S.<ext>` (mp4, avi, mkv, jpg, and the `.thumb` preview
  motionEye writes beside a movie, which shows the same people and so expires with it), wall time in
  the site's zone.
- `pattern`: a configured pattern of strftime fields (%Y %m %d %H %M %S, %% for a literal %),
  `{camera}` and optionally `{ext}`, e.g. `{camera}/%Y/%m/%d/%H-%M-%S.mp4`; wall time in the site's
  zone. %Y %m %d %H and `{camera}` are required; a missing %M or %S reads as 0.

All three are built by one pattern compiler, once per configuration, not once per file. A segment
ends `segment_length` after it starts; `end_from_next` shortens that to where the camera's next
segment starts, for recorders whose segments vary in length. A wall time that a DST change skips
or repeats resolves like `facility.timeutil.to_utc` (the earlier reading): the name cannot tell.

A layout's reading of a path is the only source of a segment row's camera and times (invariant
11): an MQTT announcement may confirm it, never change it, and agrees when it names the same camera
and a start within the layout's `resolution` (the finest time field its pattern has).

A path that does not fit raises `RejectedInput` (source "camera"). Note for the scanner: a rejected
file is never indexed, so it never expires either; it must be reported on every scan, not dropped.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import groupby
from operator import attrgetter
from typing import NoReturn

from facility.errors import ConfigError, RejectedInput
from facility.sources.records import SegmentIn
from facility.timefmt import site_text
from facility.timeutil import EARLIEST_PLAUSIBLE, to_utc

SOURCE = "camera"
LAYOUTS = ("frigate", "motioneye", "pattern")
FRIGATE_SEGMENT = timedelta(seconds=10)
# Times at or after this are a broken clock, not a recording; it also keeps `start + length` and
# later retention arithmetic far from datetime's year-9999 limit.
LATEST_PLAUSIBLE = datetime(2100, 1, 1, tzinfo=UTC)
MAX_PATH = 1024

_FIELD_RE = {"Y": "[0-9]{4}", "m": "[0-9]{2}", "d": "[0-9]{2}", "H": "[0-9]{2}", "M": "[0-9]{2}"}
_FIELD_RE["S"] = "[0-9]{2}"
_REQUIRED = ("Y", "m", "d", "H", "camera")
_TOKEN = re.compile(r"%(.)|%$|\{([^{}/]*)\}", re.DOTALL)
_CAMERA = re.compile(r"[a-zA-Z0-9_-]+")
_MOTIONEYE_CAMERA = re.compile(r"Camera[0-9]+")
_MOTIONEYE_EXT = re.compile(r"(mp4|avi|mkv|jpg)(\.thumb)?")
_ANY_EXT = re.compile(r"[A-Za-z0-9]{1,10}")
_BAD_CHAR_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def relpath_problem(path: str) -> str | None:
    """Why `path` is not a clean POSIX path relative to a root, or None if it is."""
    if not path:
        return "empty path"
    if len(path) > MAX_PATH:
        return f"path longer than {MAX_PATH} characters"
    if "\\" in path:
        return "backslash in path (paths are POSIX, relative to the recordings root)"
    if path.startswith("/"):
        return "absolute path (must be relative to the recordings root)"
    # Printable ASCII has none of those categories: the common case skips the per-character look.
    if not (path.isascii() and path.isprintable()) and any(
        unicodedata.category(ch) in _BAD_CHAR_CATEGORIES for ch in path
    ):
        return "control character, NUL or lone surrogate in path"
    parts = path.split("/")
    if ".." in parts:
        return "'..' part in path"
    # The path is the segment's unique key: `a/./b` or `a//b` would index one file twice.
    if "." in parts or "" in parts:
        return "empty or '.' part in path (path must be normalised)"
    return None


@dataclass(frozen=True, slots=True)
class Layout:
    """A compiled recordings layout: turns a relative file path into a `SegmentIn`."""

    name: str
    pattern: str
    zone: tzinfo
    segment_length: timedelta
    regex: re.Pattern[str]
    camera_re: re.Pattern[str]
    ext_re: re.Pattern[str]
    # The finest time field the pattern names: a path tells a start only to this precision.
    resolution: timedelta = timedelta(seconds=1)

    def parse(self, relpath: str) -> SegmentIn:
        """The segment held by the file at `relpath`; `RejectedInput` if the path does not fit."""
        if not isinstance(relpath, str):
            raise RejectedInput(f"path is a {type(relpath).__name__}, not a string", source=SOURCE)
        problem = relpath_problem(relpath)
        if problem:
            self._reject(relpath, problem)
        match = self.regex.fullmatch(relpath)
        if match is None:
            self._reject(relpath, f"does not match the {self.name} layout {self.pattern!r}")
        camera = match["camera"]
        if not self.camera_re.fullmatch(camera):
            self._reject(relpath, f"bad camera name {camera!r} for the {self.name} layout")
        ext = match.groupdict().get("ext")
        if ext is not None and not self.ext_re.fullmatch(ext):
            self._reject(relpath, f"unexpected file extension {ext!r}")
        start = self._start(relpath, match)
        return SegmentIn(camera=camera, path=relpath, start=start, end=start + self.segment_length)

    def _start(self, relpath: str, match: re.Match[str]) -> datetime:
        fields = {key: int(value) for key, value in match.groupdict().items() if key in _FIELD_RE}
        # Range-check the year before any zone arithmetic, which overflows near year 1 and 9999.
        if not EARLIEST_PLAUSIBLE.year <= fields["Y"] < LATEST_PLAUSIBLE.year:
            self._reject(relpath, f"year {fields['Y']} is outside 2000..2099 (recorder clock?)")
        try:
            wall = datetime(
                fields["Y"],
                fields["m"],
                fields["d"],
                fields["H"],
                fields.get("M", 0),
                fields.get("S", 0),
            )
        except ValueError as err:
            self._reject(relpath, f"no such date or time ({err})")
        start = to_utc(wall, self.zone)
        if not EARLIEST_PLAUSIBLE <= start < LATEST_PLAUSIBLE - self.segment_length:
            self._reject(relpath, f"start {site_text(start, self.zone)} is outside 2000..2099")
        return start

    def _reject(self, relpath: str, reason: str) -> NoReturn:
        raise RejectedInput(f"{relpath[:200]!r}: {reason}", source=SOURCE, raw=relpath[:512])


def compile_pattern(
    pattern: str, *, site_zone: tzinfo, segment_length: timedelta = FRIGATE_SEGMENT
) -> Layout:
    """Compile a `pattern` layout string (strftime fields plus `{camera}`) into a `Layout`."""
    return _compile(
        "pattern",
        pattern,
        zone=site_zone,
        segment_length=segment_length,
        camera_re=_CAMERA,
        ext_re=_ANY_EXT,
    )


def layout_for(
    name: str,
    *,
    pattern: str | None = None,
    site_zone: tzinfo,
    segment_length: timedelta | None = None,
) -> Layout:
    """The `Layout` called `name` (`frigate`, `motioneye` or `pattern`), built once."""
    length = FRIGATE_SEGMENT if segment_length is None else segment_length
    if name == "frigate":
        return _compile(
            name,
            "%Y-%m-%d/%H/{camera}/%M.%S.mp4",
            zone=UTC,
            segment_length=length,
            camera_re=_CAMERA,
            ext_re=_ANY_EXT,
        )
    if name == "motioneye":
        return _compile(
            name,
            "{camera}/%Y-%m-%d/%H-%M-%S.{ext}",
            zone=site_zone,
            segment_length=length,
            camera_re=_MOTIONEYE_CAMERA,
            ext_re=_MOTIONEYE_EXT,
        )
    if name == "pattern":
        if not pattern:
            raise ConfigError("camera.pattern: layout 'pattern' needs a pattern")
        return compile_pattern(pattern, site_zone=site_zone, segment_length=length)
    raise ConfigError(f"camera.layout: unknown layout {name!r} (use one of {', '.join(LAYOUTS)})")


def end_from_next(segments: Iterable[SegmentIn]) -> list[SegmentIn]:
    """The segments by camera and start, each ending no later than its camera's next start."""
    ordered = sorted(segments, key=lambda s: (s.camera, s.start, s.path))
    result: list[SegmentIn] = []
    for _, group in groupby(ordered, key=attrgetter("camera")):
        items = list(group)
        starts = sorted({s.start for s in items})
        for segment in items:
            # The next *later* start: two files with one start (a movie and its preview) do not
            # cut each other to zero length.
            later = bisect_right(starts, segment.start)
            if later < len(starts) and starts[later] < segment.end:
                segment = replace(segment, end=starts[later])
            result.append(segment)
    return result


def _compile(
    name: str,
    pattern: str,
    *,
    zone: tzinfo,
    segment_length: timedelta,
    camera_re: re.Pattern[str],
    ext_re: re.Pattern[str],
) -> Layout:
    if not isinstance(pattern, str):
        raise ConfigError("camera.pattern: must be a string")
    if segment_length <= timedelta(0):
        raise ConfigError(f"camera.segment_length: must be positive, not {segment_length}")
    problem = relpath_problem(pattern)
    if problem:
        raise ConfigError(f"camera.pattern: {pattern!r}: {problem}")
    regex, seen = _pattern_regex(pattern)
    missing = [
        f"%{key}" if key in _FIELD_RE else f"{{{key}}}" for key in _REQUIRED if key not in seen
    ]
    if missing:
        raise ConfigError(f"camera.pattern: {pattern!r} lacks {', '.join(missing)}")
    return Layout(
        name=name,
        pattern=pattern,
        zone=zone,
        segment_length=segment_length,
        regex=re.compile(regex),
        camera_re=camera_re,
        ext_re=ext_re,
        resolution=_resolution(seen),
    )


def _resolution(seen: set[str]) -> timedelta:
    """How precisely a path with these fields tells its start (a missing %M or %S reads as 0)."""
    if "S" in seen:
        return timedelta(seconds=1)
    return timedelta(minutes=1) if "M" in seen else timedelta(hours=1)


def _pattern_regex(pattern: str) -> tuple[str, set[str]]:
    """The regex source for `pattern`, and the names of the fields it contains."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for token in _TOKEN.finditer(pattern):
        parts.append(re.escape(pattern[position : token.start()]))
        position = token.end()
        parts.append(_token_regex(pattern, token, seen))
    parts.append(re.escape(pattern[position:]))
    return "".join(parts), seen


def _token_regex(pattern: str, token: re.Match[str], seen: set[str]) -> str:
    field, placeholder = token.group(1), token.group(2)
    if field == "%":
        return "%"
    if field is None and placeholder is None:
        raise ConfigError(f"camera.pattern: {pattern!r} ends with a lone '%'")
    key = field if field is not None else placeholder
    if field is not None and key not in _FIELD_RE:
        raise ConfigError(f"camera.pattern: unsupported directive %{key} (use %Y %m %d %H %M %S)")
    if placeholder is not None and key not in ("camera", "ext"):
        raise ConfigError(
            f"camera.pattern: unknown placeholder {{{key}}} (use {{camera}}, {{ext}})"
        )
    if key in seen:
        # A field used twice must read the same both times.
        return f"(?P={key})"
    seen.add(key)
    body = _FIELD_RE.get(key, "[^/]+")
    return f"(?P<{key}>{body})"
